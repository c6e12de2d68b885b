#!/bin/bash
# systemd-rootfs.sh - build (once) and cache the Debian 12 root file system the
# real-systemd test level boots in systemd-nspawn; print its directory.
#
# Usage: scripts/systemd-rootfs.sh            build if needed, print the cached directory
#        scripts/systemd-rootfs.sh --key      print only the cache key
# Environment: BPFWRAP_TEST_CACHE (default /var/cache/bpfwrap-test): where the
# tree is kept, as base-KEY/ (KEY: a hash of the suite, mirror, package list and
# this script), so a changed package list builds a new tree. The tree is built
# in a temporary directory and renamed into place only when complete; a lock
# serializes concurrent runs. The mirror is the one apt uses on this machine
# (/etc/apt/sources.list.d/*.sources, /etc/apt/sources.list), so debootstrap
# needs no other network access than apt itself. Needs root and debootstrap
# (scripts/install-deps.sh installs it).
set -euo pipefail

SUITE=bookworm
# What the tests need inside: systemd as init, the real OpenSSH server, a client
# that binds its source address (nc -s), and the run-time libraries of the
# bpfwrap package (its Depends), since the container has no network for apt.
PKGS="systemd systemd-sysv dbus openssh-server netcat-openbsd iproute2 procps
      libbpf1 libc-ares2 libelf1 zlib1g libsystemd0"
CACHE=${BPFWRAP_TEST_CACHE:-/var/cache/bpfwrap-test}

# apt_mirror - the first Debian archive URI apt uses here for main
apt_mirror() {
	local f uri=""
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		# deb822 stanzas: the URIs of a stanza whose Suites has bookworm (not -security)
		uri=$(awk -v suite="$SUITE" '
			/^[[:space:]]*$/ { if (u != "" && s) { print u; exit } u = ""; s = 0; next }
			tolower($1) == "uris:" { u = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) s = 1 }
			END { if (u != "" && s) print u }' "$f" | head -1)
		[ -n "$uri" ] && break
	done
	if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
		uri=$(awk -v suite="$SUITE" '$1 == "deb" {
			i = 2; if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
			if ($(i + 1) == suite) { print $i; exit } }' /etc/apt/sources.list)
	fi
	echo "${uri:-http://deb.debian.org/debian}"
}

MIRROR=$(apt_mirror)
# the key: suite, mirror, packages and this script's commands (not its comments)
KEY=$( { echo "$SUITE $MIRROR"; echo $PKGS; grep -v '^[[:space:]]*#' "$0"; } | sha256sum | cut -c1-16)
if [ "${1:-}" = --key ]; then
	echo "$KEY"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "systemd-rootfs: needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "systemd-rootfs: no debootstrap (scripts/install-deps.sh)" >&2; exit 1; }

BASE=$CACHE/base-$KEY
mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock -w 1800 9 || { echo "systemd-rootfs: $CACHE/lock held for 30 min" >&2; exit 1; }
if [ -f "$BASE/.complete" ]; then
	echo "$BASE"
	exit 0
fi

# remove_tree - remove a half-built tree (debootstrap may leave mounts in it)
remove_tree() {
	local m
	for m in $(awk -v t="$1/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	rm -rf --one-file-system "$1"
}
# cleanup - on exit, remove what this run left half-built
cleanup() {
	remove_tree "$tmp"
}
# under the lock, any other half-built tree is from a run that was killed
for old in "$CACHE"/tmp-*; do
	[ -e "$old" ] && remove_tree "$old"
done
tmp=$(mktemp -d "$CACHE/tmp-$KEY.XXXXXX")
trap cleanup EXIT
start=$SECONDS
echo "systemd-rootfs: debootstrap $SUITE from $MIRROR into $tmp (key $KEY)" >&2
include=$(echo $PKGS | tr ' ' ,)
if ! debootstrap --variant=minbase --include="$include" "$SUITE" "$tmp/root" "$MIRROR" >"$tmp/debootstrap.log" 2>&1; then
	tail -30 "$tmp/debootstrap.log" >&2
	[ -f "$tmp/root/debootstrap/debootstrap.log" ] && tail -30 "$tmp/root/debootstrap/debootstrap.log" >&2
	echo "systemd-rootfs: debootstrap failed" >&2
	exit 1
fi
R=$tmp/root
# A machine of its own: a name, an empty machine-id (systemd makes one at boot),
# no package caches, the apt sources of the mirror used.
echo bpfwrap-test >"$R/etc/hostname"
: >"$R/etc/machine-id"
rm -f "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/*_Packages
# Nothing in the container may wait for a network it does not have.
for u in systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer; do
	ln -sf /dev/null "$R/etc/systemd/system/$u"
done
# sshd answers on 127.0.0.1:22 only; no password logins are ever possible.
mkdir -p "$R/etc/ssh/sshd_config.d"
printf 'ListenAddress 127.0.0.1\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n' \
	>"$R/etc/ssh/sshd_config.d/bpfwrap-test.conf"
for p in $PKGS; do
	chroot "$R" dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" ||
		{ echo "systemd-rootfs: $p is not installed in the tree" >&2; exit 1; }
done
touch "$R/.complete"
mv "$R" "$BASE"
# trees of other keys are stale: only one is kept
for old in "$CACHE"/base-*; do
	[ "$old" = "$BASE" ] || rm -rf --one-file-system "$old"
done
echo "systemd-rootfs: built in $((SECONDS - start)) s" >&2
echo "$BASE"
