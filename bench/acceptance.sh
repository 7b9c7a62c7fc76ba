#!/usr/bin/env bash
# Runs the long acceptance scenarios of the issues (real Docker runs of the
# reference store, minutes each) and prints one line per run: the scenario,
# whether the exit code was the one wanted, the time, what was left in
# Docker, and the verdict line. Not part of .ci/run: all of it takes about
# an hour. Usage: bench/acceptance.sh [SECTION...]
#
# Sections: basic racy nemesis overlap detect (= stale-read early-ack
# no-fsync) clock; default: all.
# Environment: CLOCK_INTERVAL and DETECT_INTERVAL set the nemesis interval
# of the clock and detection sections (default 10s); JEPSEN_BIN runs that
# binary instead of building one.
# Output: bench/out/acceptance/ (a store directory and a log per run).
set -uo pipefail
cd "$(dirname "$0")/.."
out=bench/out/acceptance
mkdir -p "$out"
# JEPSEN_BIN: use this binary instead of building one from the tree.
if [ -n "${JEPSEN_BIN:-}" ]; then
	J=$JEPSEN_BIN
else
	go build -o "$out/jepsen" ./cmd/jepsen || exit 2
	J="$PWD/$out/jepsen"
fi
store="$PWD/$out/store"

leftovers() {
	local n
	n=$( (docker ps -aq --filter label=jepsen.run; docker network ls -q --filter label=jepsen.run;
		docker volume ls -q --filter label=jepsen.run) | wc -l)
	echo "$n"
}

# run NAME WANT ARGS...: one jepsen run, its exit code against WANT.
run() {
	local name=$1 want=$2
	shift 2
	local log="$out/$name.log"
	local t0=$SECONDS
	"$J" run --store "$store" "$@" >"$log" 2>&1
	local rc=$?
	local verdict
	verdict=$(grep -m1 -E '^(VALID|INVALID|UNKNOWN)' "$log" || tail -1 "$log")
	local ok=PASS
	[ "$rc" = "$want" ] || ok=MISS
	printf '%-28s %s exit=%s want=%s %3ss leftovers=%s | %s\n' "$name" "$ok" "$rc" "$want" \
		$((SECONDS - t0)) "$(leftovers)" "$verdict" | tee -a "$out/summary.txt"
}

sections=("$@")
[ ${#sections[@]} -gt 0 ] || sections=(basic racy nemesis overlap detect clock)
for s in "${sections[@]}"; do
	case $s in
	basic)
		run register-20s 0 --time-limit 20s
		run set-20s 0 --time-limit 20s --workload set
		;;
	racy)
		for i in 1 2 3 4 5; do run racy-cas-$i 1 --time-limit 30s --env RAFTKV_BUG=racy-cas; done
		;;
	nemesis)
		for n in partition kill pause packet partition,kill,pause,packet; do
			run "correct-${n//,/+}-x3" 0 --time-limit 30s --nemesis "$n" --runs 3
		done
		;;
	overlap)
		# Every fault family at once (network, process, clock): no false
		# positives from overlapping faults.
		run correct-all-families-x3 0 --time-limit 30s --nemesis partition,kill,pause,packet,clock --runs 3
		run correct-all-families-set-x3 0 --time-limit 30s --workload set --nemesis partition,kill,pause,packet,clock --runs 3
		;;
	detect) "$0" stale-read early-ack no-fsync ;;
	stale-read)
		for i in 1 2 3 4 5; do run stale-read-${DETECT_INTERVAL:-10s}-$i 1 --time-limit 60s --nemesis-interval "${DETECT_INTERVAL:-10s}" --nemesis partition --env RAFTKV_BUG=stale-read; done
		;;
	early-ack)
		for i in 1 2 3 4 5; do run early-ack-${DETECT_INTERVAL:-10s}-$i 1 --time-limit 60s --nemesis-interval "${DETECT_INTERVAL:-10s}" --nemesis partition --workload set --env RAFTKV_BUG=early-ack; done
		;;
	no-fsync)
		# The bug stops calling fsync: only a power loss (not a kill, which
		# keeps the page cache) loses what it wrote.
		for i in 1 2 3 4 5; do run no-fsync-${DETECT_INTERVAL:-10s}-$i 1 --time-limit 60s --nemesis-interval "${DETECT_INTERVAL:-10s}" --nemesis power-loss --workload set --env RAFTKV_BUG=no-fsync; done
		;;
	clock)
		# CLOCK_INTERVAL: the --nemesis-interval of these runs (default 10s).
		iv=${CLOCK_INTERVAL:-10s}
		before=$(date +%s%N)
		mono0=$(cat /proc/uptime | cut -d' ' -f1)
		for i in 1 2 3 4 5; do
			run lease-read-$iv-$i 1 --time-limit 60s --nemesis clock,partition --nemesis-interval "$iv" --env RAFTKV_BUG=lease-read
		done
		run correct-clock+partition-$iv-x3 0 --time-limit 60s --nemesis clock,partition --nemesis-interval "$iv" --runs 3
		after=$(date +%s%N)
		mono1=$(cat /proc/uptime | cut -d' ' -f1)
		# The host's wall clock must have advanced exactly as its uptime did.
		drift=$(awk -v w=$(((after - before) / 1000000)) -v a="$mono0" -v b="$mono1" 'BEGIN{printf "%d", w - (b - a) * 1000}')
		echo "host clock: wall advanced vs uptime differ by ${drift} ms (must be near 0)" | tee -a "$out/summary.txt"
		;;
	*) echo "unknown section $s" >&2; exit 2 ;;
	esac
done
