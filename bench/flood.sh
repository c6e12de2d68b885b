#!/bin/bash
# flood.sh - a random-source SYN flood against a guarded service, and what it
# costs bpfwrap: log lines written, events the kernel sent, events it folded
# or capped, the agent's CPU time.
#
# Usage: bench/flood.sh [BPFWRAP] [SECONDS]     (as root; default build/bpfwrap, 10 s)
#
# Everything happens in a network namespace of its own (loopback only: the
# spoofed sources' answers have no route out of it) and a child cgroup of
# the cgroup2 mount; both, the pins and the agent are removed on exit, also
# on failure. hping3 runs for SECONDS at most (timeout).
set -u
BIN=$(realpath "${1:-build/bpfwrap}")
SECS=${2:-10}
PORT=8080
ID=bwflood-$$
NS=$ID
CG2=$(findmnt -n -o TARGET -t cgroup2 | head -1)
CG=$CG2/$ID
PIN=/sys/fs/bpf/$ID
WORK=$(mktemp -d /tmp/$ID.XXXXXX)
SERVER_PID= AGENT_PID=

# cleanup - stop what we started (by PID), remove the namespace, cgroup, pins, files
cleanup() {
	[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	"$BIN" detach --pin-dir "$PIN" >/dev/null 2>&1
	ip netns del "$NS" 2>/dev/null
	for _ in $(seq 50); do rmdir "$CG" 2>/dev/null && break; sleep 0.1; done
	rm -rf "$WORK"
}
trap cleanup EXIT

# cpu_ticks - user+system clock ticks of a process
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

[ "$(id -u)" = 0 ] || { echo "flood.sh: run as root" >&2; exit 1; }
[ -n "$CG2" ] || { echo "flood.sh: no cgroup2 mount" >&2; exit 1; }
command -v hping3 >/dev/null || { echo "flood.sh: needs hping3 (scripts/install-deps.sh bench)" >&2; exit 1; }
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
ip netns add "$NS" && ip -n "$NS" link set lo up || exit 1
mkdir "$CG" || exit 1

printf 'floodsrv: 127.0.0.2\n' >"$WORK/hosts.allow"
printf 'ALL: ALL\n' >"$WORK/hosts.deny"
mkdir -m 0750 "$WORK/log"

# the service: born in the child cgroup and the namespace
(echo $BASHPID >"$CG/cgroup.procs" &&
	exec nsenter --net=/run/netns/"$NS" python3 -c '
import socket, sys, ctypes
ctypes.CDLL(None).prctl(15, b"floodsrv", 0, 0, 0)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4096)
while True:
    c, _ = s.accept(); c.close()
' $PORT) &
SERVER_PID=$!

nsenter --net=/run/netns/"$NS" "$BIN" run --cgroup "$CG" --pin-dir "$PIN" --no-watch \
	--allow "$WORK/hosts.allow" --deny "$WORK/hosts.deny" --log "$WORK/log/bpfwrap.log" \
	>"$WORK/agent.out" 2>&1 &
AGENT_PID=$!
for _ in $(seq 100); do grep -q ready "$WORK/agent.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$WORK/agent.out" || { echo "flood.sh: bpfwrap not ready:"; cat "$WORK/agent.out"; exit 1; }
sleep 0.5

HZ=$(getconf CLK_TCK)
cpu0=$(cpu_ticks "$AGENT_PID")
lines0=$(wc -l <"$WORK/log/bpfwrap.log" 2>/dev/null || echo 0)
t0=$(date +%s.%N)
timeout --signal=INT "$SECS" nsenter --net=/run/netns/"$NS" \
	hping3 --flood --rand-source -S -p $PORT 127.0.0.1 >"$WORK/hping.out" 2>&1
t1=$(date +%s.%N)
sleep 2	# the agent's last interval of folded and suppressed lines
cpu1=$(cpu_ticks "$AGENT_PID")
lines1=$(wc -l <"$WORK/log/bpfwrap.log")
sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$WORK/hping.out" | tail -1)
"$BIN" status --pin-dir "$PIN" >"$WORK/status.out" 2>&1

awk -v s="$t0" -v e="$t1" -v c0="$cpu0" -v c1="$cpu1" -v hz="$HZ" -v l0="$lines0" -v l1="$lines1" \
    -v sent="${sent:-0}" 'BEGIN {
	d = e - s
	printf "flood: %d s of hping3 --flood --rand-source -S (%d SYNs sent, %.0f/s)\n", d, sent, sent / d
	printf "log lines written: %d (%.1f per second, %.0f per minute)\n", l1 - l0, (l1 - l0) / d, (l1 - l0) * 60 / d
	printf "agent CPU: %.2f s over %.1f s (%.1f%% of one core)\n", (c1 - c0) / hz, d + 2, 100 * (c1 - c0) / hz / (d + 2)
}'
grep -E '^(statistics|log|events|denials)' "$WORK/status.out"
