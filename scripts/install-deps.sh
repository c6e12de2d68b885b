#!/bin/sh
# install-deps.sh - install the Debian packages bpfwrap builds, tests and benches with.
# Idempotent and non-interactive: does nothing when every package is present.
# (debootstrap and systemd-container: the systemd level boots a Debian 12 tree
# in systemd-nspawn; make deb installs its own build deps.)
# Usage: scripts/install-deps.sh [bench]
set -eu
PKGS="clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make gcc
      libcmocka-dev libc-ares-dev libsystemd-dev libwrap0-dev tcpd
      libclang-rt-14-dev iproute2 util-linux procps systemd socat
      debootstrap systemd-container"
if [ "${1:-}" = bench ]; then
	PKGS="$PKGS nftables hping3 linux-perf"
fi
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
