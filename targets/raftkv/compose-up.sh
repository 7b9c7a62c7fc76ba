#!/bin/sh
# Starts (or stops) the five-node raftkv reference cluster of
# docker-compose.yml, built offline: a static binary in a FROM scratch image.
#
#   targets/raftkv/compose-up.sh          # build and start n1..n5 on 127.0.0.1:8081..8085
#   RAFTKV_BUG=racy-cas targets/raftkv/compose-up.sh
#   targets/raftkv/compose-up.sh down     # stop and remove containers, network, volumes
#   targets/raftkv/compose-up.sh smoke    # start, PUT via n1, GET via n5, tear down
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
project=${COMPOSE_PROJECT_NAME:-jepsen-raftkv}

if docker compose version >/dev/null 2>&1; then
	compose() { docker compose -p "$project" -f "$root/docker-compose.yml" "$@"; }
elif command -v docker-compose >/dev/null 2>&1; then
	compose() { docker-compose -p "$project" -f "$root/docker-compose.yml" "$@"; }
else
	echo "compose-up.sh: neither 'docker compose' nor 'docker-compose' is installed" >&2
	exit 2
fi

up() {
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$here/raftkv" ./targets/raftkv)
	# The classic builder: no BuildKit frontend image to pull.
	DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0 compose up -d --build
}

# wait_ready PORT: until the node answers /health and knows a leader.
wait_ready() {
	i=0
	until curl -fsS "http://127.0.0.1:$1/leader" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ "$i" -gt 100 ]; then
			echo "compose-up.sh: node on port $1 has no leader after 20s" >&2
			compose logs --tail 20 >&2 || true
			return 1
		fi
		sleep 0.2
	done
}

case "${1:-up}" in
up)
	up
	for p in 8081 8082 8083 8084 8085; do wait_ready "$p"; done
	echo "raftkv cluster up: n1..n5 on http://127.0.0.1:8081..8085 (stop: $0 down)"
	;;
down)
	compose down -v --remove-orphans
	;;
smoke)
	trap 'compose down -v --remove-orphans >/dev/null 2>&1 || true' EXIT
	up
	for p in 8081 8082 8083 8084 8085; do wait_ready "$p"; done
	curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/json' -d '{"value":42}' http://127.0.0.1:8081/kv/smoke
	got=$(curl -fsS http://127.0.0.1:8085/kv/smoke)
	if [ "$got" != '{"value":42}' ]; then
		echo "compose-up.sh smoke: GET via n5 answered '$got', want '{\"value\":42}'" >&2
		exit 1
	fi
	echo "compose smoke: PUT via n1, GET via n5 = $got"
	;;
*)
	echo "usage: $0 [up|down|smoke]" >&2
	exit 2
	;;
esac
