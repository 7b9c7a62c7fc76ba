#!/bin/sh
# prepare.sh: make rootfs/, the build context of Dockerfile, from Debian's
# redis-server package, offline: the redis-server binary, a POSIX shell
# (dash, for the jepsen.yaml command) and every shared library they link,
# at the paths the loader expects. No image is pulled.
#
# The harness runs it before every build (see the jepsen-prepare line of
# Dockerfile); it is quick and idempotent. If redis-server is missing and
# this runs as root with apt-get, it installs the package; otherwise it
# says what to do and fails.
set -eu
cd "$(dirname "$0")"

bin=$(command -v redis-server 2>/dev/null || true)
[ -n "$bin" ] || bin=/usr/bin/redis-server
if [ ! -x "$bin" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "targets/redis: redis-server is not installed; installing Debian's redis-server package (apt-get install redis-server)" >&2
		if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >&2 ||
			{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >&2; }; }; then
			echo "targets/redis: apt-get install redis-server failed; install it by hand, or set build: {image: redis:7} in jepsen.yaml if you have a registry" >&2
			exit 1
		fi
	else
		echo "targets/redis: redis-server is not installed: run 'sudo apt-get install redis-server' (Debian/Ubuntu), or set build: {image: redis:7} in targets/redis/jepsen.yaml if you have a registry" >&2
		exit 1
	fi
	bin=/usr/bin/redis-server
fi
command -v ldd >/dev/null 2>&1 || { echo "targets/redis: ldd is missing (Debian package libc-bin)" >&2; exit 1; }
sh=$(readlink -f /bin/sh)

tmp=$(mktemp -d rootfs.tmp.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
copy() { # copy SRC DEST-in-rootfs, following symlinks
	mkdir -p "$tmp$(dirname "$2")"
	cp -L "$1" "$tmp$2"
}
copy "$bin" /usr/bin/redis-server
copy "$sh" /bin/sh
for f in "$bin" "$sh"; do
	# "libfoo.so => /lib/.../libfoo.so (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
	ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
done | sort -u | while read -r lib; do
	copy "$lib" "$lib"
done
# The loader finds the libraries at the same paths through the host's cache.
[ -f /etc/ld.so.cache ] && copy /etc/ld.so.cache /etc/ld.so.cache
"$bin" --version | sed 's/^/targets\/redis: /' >&2

rm -rf rootfs
mv "$tmp" rootfs
trap - EXIT
