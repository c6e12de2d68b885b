#!/bin/bash
# demo.sh - bpfwrap on the example policy in examples/: check it, decide a
# few clients the way tcpdmatch would, then (as root) enforce it in the
# kernel for a real TCP service: a denied client times out and is logged
# tcpd-style, an edit of hosts.allow is picked up live, a broken edit is
# refused while the policy in force stays.
#
# Safety: the live part makes its own network namespace and child cgroup
# (never the root ones), uses addresses only inside that namespace, and
# removes everything it made on exit, also on failure or ^C.
set -u
BIN=$(realpath "${1:-build/bpfwrap}")
cd "$(dirname "$0")/.." || exit 1
A=examples/hosts.allow D=examples/hosts.deny

# show - print a command like a terminal would, then run it
show() { echo "\$ $*"; "$@"; echo; }
# bpfwrap - the binary under test, shown as `bpfwrap`
bpfwrap() { "$BIN" "$@"; }

echo "=== 1. check and match (no root, no kernel) ==="
show bpfwrap check --allow $A --deny $D
show bpfwrap match --allow $A --deny $D --no-dns sshd 203.0.113.7
show bpfwrap match --allow $A --deny $D --no-dns sshd 198.51.100.9

if [ "$(id -u)" != 0 ]; then
	echo "(run as root for the live part: kernel enforcement, logging, live reload)"
	exit 0
fi
for tool in socat ip nsenter; do
	command -v $tool >/dev/null || { echo "demo: $tool is missing (make demo installs it)" >&2; exit 1; }
done

echo "=== 2. enforcement in the kernel, live ==="
TAG=bpfwrap-demo-$$
CGMNT=$(findmnt -n -t cgroup2 -o TARGET | head -1)
[ -n "$CGMNT" ] || { echo "demo: no cgroup v2 mount" >&2; exit 1; }
CG=$CGMNT/$TAG PINS=/sys/fs/bpf/$TAG NS=$TAG
TMP=$(mktemp -d "/tmp/$TAG.XXXXXX") || exit 1
RUN_PID="" SERVER_PID=""

# cleanup - stop what we started (by PID), remove what we made
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	if [ -n "$RUN_PID" ]; then
		kill "$RUN_PID" 2>/dev/null
		wait "$RUN_PID" 2>/dev/null
	fi
	[ -d "$PINS" ] && "$BIN" detach --pin-dir "$PINS" >/dev/null 2>&1
	[ -d "$CG" ] && rmdir "$CG" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
ip netns add "$NS" || exit 1
ip -n "$NS" link set lo up
# the service's address and three clients, all on the namespace's loopback
for a in 192.0.2.1 203.0.113.7 198.51.100.9; do ip -n "$NS" addr add $a/32 dev lo; done
mkdir "$CG" || exit 1
cp $A $D "$TMP/"
ALLOW=$TMP/hosts.allow DENY=$TMP/hosts.deny LOG=$TMP/bpfwrap.log

echo "\$ bpfwrap run --allow hosts.allow --deny hosts.deny --cgroup $TAG=sshd --log $LOG --detach-on-exit &"
"$BIN" run --allow "$ALLOW" --deny "$DENY" --cgroup "$CG=sshd" --pin-dir "$PINS" \
	--log "$LOG" --detach-on-exit >"$TMP/run.out" 2>&1 &
RUN_PID=$!
for _ in $(seq 100); do grep -q "ready:" "$TMP/run.out" && break; sleep 0.1; done
cat "$TMP/run.out"
grep -q "ready:" "$TMP/run.out" || { echo "demo: bpfwrap run did not start" >&2; exit 1; }

# The service: a one-line banner server on port 22, its socket made inside
# the cgroup (join it first, then enter the namespace).
sh -c 'echo $$ >"$1/cgroup.procs" && exec nsenter --net="/run/netns/$2" \
	socat TCP-LISTEN:22,bind=192.0.2.1,reuseaddr,fork SYSTEM:"echo SSH-2.0-demo"' \
	sh "$CG" "$NS" &
SERVER_PID=$!
sleep 0.5

# client - connect to the service from address $1; prints what happened
client() {
	local out
	if out=$(nsenter --net="/run/netns/$NS" timeout 5 \
		socat -T2 - "TCP:192.0.2.1:22,bind=$1,connect-timeout=2" </dev/null 2>&1) &&
	   [ -n "$out" ]; then
		echo "  client $1: connected, server says: $out"
	else
		echo "  client $1: no connection (the kernel dropped its SYN)"
	fi
}

echo "--- an allowed client (hosts.allow: sshd : 203.0.113.) and a denied one:"
client 203.0.113.7
client 198.51.100.9
sleep 0.5
echo "--- the log line bpfwrap wrote for the denied client (tcpd's format):"
sed 's/^/  /' "$LOG"
echo "--- the per-rule counters in the kernel (bpfwrap status):"
"$BIN" status --pin-dir "$PINS" | sed -n '/decisions/,$p' | sed "s|$TMP/||; s/^/  /"
echo

echo "--- live reload: allow 198.51.100.9 by appending a rule to hosts.allow"
echo "\$ echo 'sshd : 198.51.100.9' >> hosts.allow"
echo 'sshd : 198.51.100.9' >>"$ALLOW"
for _ in $(seq 50); do grep -q "reloaded:" "$TMP/run.out" && break; sleep 0.1; done
grep "reloaded:" "$TMP/run.out" | sed 's/^/  /'
client 198.51.100.9
echo

echo "--- a broken edit (a half-written line, no final newline) is refused:"
echo "\$ printf 'sshd : 10.0.0.1 EXCEPT' >> hosts.allow"
printf 'sshd : 10.0.0.1 EXCEPT' >>"$ALLOW"
for _ in $(seq 50); do grep -q "stays in force\|keeping generation" "$TMP/run.out" && break; sleep 0.1; done
grep -A3 "policy files changed" "$TMP/run.out" | tail -n +4 | sed 's/^/  /'
grep "stays in force\|keeping generation\|error" "$TMP/run.out" | tail -3 | sed 's/^/  /'
client 198.51.100.9
echo

echo "\$ bpfwrap status"
"$BIN" status --pin-dir "$PINS" | sed "s|$TMP/||g; s/^/  /"
echo
echo "demo done: stopping bpfwrap (--detach-on-exit removes every program and map)"
