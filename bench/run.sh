#!/bin/bash
# run.sh - bpfwrap benchmarks: connection rate against no policy, libwrap in
# process, tcpd fork+exec and nftables; kernel cost per decision; policy
# build time, memory and reload latency; a SYN flood; -> bench/REPORT.md.
#
# Usage: bench/run.sh [--full]      (as root; `make bench [FULL=1]`)
#
# Builds its helpers from bench/*.c with cc into build/bench/ (no Makefile
# rule: this script is their only user). Every server, client, flood and
# agent runs in a network namespace of its own (loopback only) and a child
# cgroup under /sys/fs/cgroup/unified/bpfwrap-bench-PID/; nftables rules go
# only into such a namespace; the tcpd variant bind-mounts its hosts.allow
# and hosts.deny over /etc in a private mount namespace (the real files are
# never touched). Variants are interleaved: each round runs every variant
# once, in an order rotated per round, so machine noise hits all alike; the
# report quotes medians, min-max and per-round ratios.
#
# Errors: a variant that fails to start is recorded as an error in the
# report and the run goes on; the exit status is 1 if anything failed.
# Whatever happens (error, ^C, SIGTERM), the EXIT trap stops every process
# this script started (by PID), detaches every bpfwrap pin directory it
# made, deletes its namespaces and cgroups and the temp directory.
set -u -o pipefail
export LC_ALL=C

usage() { echo "usage: bench/run.sh [--full]" >&2; exit 2; }
FULL=0
case "${1:-}" in --full) FULL=1 ;; "") ;; *) usage ;; esac
[ "$(id -u)" = 0 ] || { echo "bench: must run as root (namespaces, cgroups, BPF)" >&2; exit 1; }

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
BPFWRAP=$ROOT/build/bpfwrap
BB=$ROOT/build/bench
CGMNT=/sys/fs/cgroup/unified
TAG=bpfwrap-bench-$$
CG=$CGMNT/$TAG
PINS=/sys/fs/bpf/$TAG
REPORT=$ROOT/bench/REPORT.md
WORK=$(mktemp -d "/tmp/$TAG.XXXXXX") || exit 1
RES=$WORK/results
: >"$RES"

# Sizes. The default run is a few minutes; --full is longer and steadier.
if [ $FULL = 1 ]; then
	ROUNDS=7 SECS=4 RELOADS=300 COST_PKTS=20000 FLOOD_ROUNDS=5
else
	ROUNDS=5 SECS=1.5 RELOADS=100 COST_PKTS=5000 FLOOD_ROUNDS=3
fi
# Development overrides (not for reported runs): BENCH_ROUNDS, BENCH_SECS, BENCH_RELOADS.
ROUNDS=${BENCH_ROUNDS:-$ROUNDS} SECS=${BENCH_SECS:-$SECS} RELOADS=${BENCH_RELOADS:-$RELOADS}
CONC=16                         # connections in flight in the concurrent mode
SRCS=127.0.0.2-127.0.0.9        # client source addresses (allowed)
DENIED_SRC=127.0.1.1            # flood source (denied by hosts.deny ALL : ALL)
PROBE_SRC=127.0.2.77            # reload probe (toggled between denied and allowed)
PORT=8080 SINK_PORT=8081
MAXCONN=2000000 TCPD_MAXCONN=20000
BPF_SIZES="10 10000 1000000"
BUILD_SIZES="10000 100000 1000000"
WRAP_SIZES="10 1000 10000"
TCPD_SIZES="10 1000"
NFT_SIZES="10000"

# ---------------------------------------------------------------- bookkeeping
declare -A LIVE=()      # pid -> what, for every process still running
NSES=()                 # network namespaces made
FAILED=0

# log - progress on stderr
log() { printf 'bench: %s\n' "$*" >&2; }

# record - one result line: key=value ...
record() { printf '%s\n' "$*" >>"$RES"; }

# fail - note an error in the results and on stderr
fail() { FAILED=1; log "error: $*"; record "kind=error msg=$(printf '%s' "$*" | tr ' =' '_:')"; return 1; }

# now - wall clock seconds with microseconds
now() { printf '%s' "$EPOCHREALTIME"; }

# since - seconds elapsed since $1 (from now)
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

# stop_pid - SIGTERM (or $2) one of our processes, wait (bounded), SIGKILL if needed, reap
stop_pid() {
	local pid=$1 sig=${2:-TERM} i
	[ -n "${LIVE[$pid]:-}" ] || return 0
	kill -"$sig" "$pid" 2>/dev/null
	for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "LIVE[$pid]"
}

# cleanup - stop everything we started, remove what we made (EXIT trap)
cleanup() {
	local pid d ns
	trap - EXIT INT TERM
	for pid in "${!LIVE[@]}"; do stop_pid "$pid"; done
	if [ -d "$PINS" ]; then
		for d in "$PINS"/*/; do
			[ -d "$d" ] || continue
			"$BPFWRAP" detach --pin-dir "${d%/}" >/dev/null 2>&1
			rm -rf "${d%/}"
		done
		rmdir "$PINS" 2>/dev/null
	fi
	for ns in "${NSES[@]}"; do ip netns del "$ns" 2>/dev/null; done
	[ -d "$CG" ] && find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
	[ -d "$CG" ] && log "warning: could not remove $CG"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# ns_new - a network namespace with loopback up and room for many connections
ns_new() {
	ip netns add "$1" || return 1
	NSES+=("$1")
	ip -n "$1" link set lo up &&
	nsenter --net="/run/netns/$1" sysctl -q -w net.ipv4.ip_local_port_range="1024 65000" \
		net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096
}

# ns_del - delete a namespace made by ns_new
ns_del() {
	local ns=$1 i keep=()
	ip netns del "$ns" 2>/dev/null
	for i in "${NSES[@]}"; do [ "$i" = "$ns" ] || keep+=("$i"); done
	NSES=("${keep[@]}")
}

# spawn - CGDIR NS OUT WHAT CMD...: run CMD in the background inside the cgroup
# (joined first: nsenter does not remount /sys) and the namespace; sets SPAWNED
spawn() {
	local cg=$1 ns=$2 out=$3 what=$4
	shift 4
	(echo "$BASHPID" >"$cg/cgroup.procs" && exec nsenter --net="/run/netns/$ns" "$@") >"$out" 2>&1 &
	SPAWNED=$!
	LIVE[$SPAWNED]=$what
}

# run_in - CGDIR NS SECS CMD...: run CMD in the foreground there, bounded by SECS
run_in() {
	local cg=$1 ns=$2 secs=$3
	shift 3
	(echo "$BASHPID" >"$cg/cgroup.procs" && exec nsenter --net="/run/netns/$ns" \
		timeout -k 3 "$secs" "$@")
}

# wait_for - OUT PID SECS PATTERN: wait until OUT has PATTERN, PID is alive
wait_for() {
	local out=$1 pid=$2 secs=$3 pat=$4 i
	for i in $(seq $((secs * 100))); do
		grep -q -- "$pat" "$out" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.01
	done
	return 1
}

# have_run - does build/bpfwrap have a working `run`?
have_run() { [ -x "$BPFWRAP" ] && "$BPFWRAP" help 2>&1 | grep -qw run; }

# ------------------------------------------------------------------ building
build_tools() {
	local t libs
	mkdir -p "$BB" || return 1
	for t in server load gen reload stats; do
		libs=
		[ $t = server ] && libs="-lwrap -lnsl"
		[ $t = stats ] && libs="-lbpf"
		if [ ! -x "$BB/bench_$t" ] || [ "bench/bench_$t.c" -nt "$BB/bench_$t" ]; then
			cc -O2 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE \
				-o "$BB/bench_$t" "bench/bench_$t.c" $libs || return 1
		fi
	done
}

# gen_policies - WORK/pol/N/{hosts.allow,hosts.deny,nft.elements} for every size used
gen_policies() {
	local n
	for n in $(printf '%s\n' $BPF_SIZES $BUILD_SIZES $WRAP_SIZES $TCPD_SIZES $NFT_SIZES | sort -nu); do
		mkdir -p "$WORK/pol/$n" && "$BB/bench_gen" -n "$n" -o "$WORK/pol/$n" -s 1 || return 1
	done
}

# ------------------------------------------------------------- bpfwrap agent
# agent_start - ID N CGDIR NS: start `bpfwrap run` on N rules for CGDIR/srv;
# sets AGENT (pid) and AGENT_READY_S (seconds from exec to "ready")
agent_start() {
	local id=$1 n=$2 cgdir=$3 ns=$4 t0
	mkdir -p "$PINS" || return 1
	t0=$(now)
	spawn "$cgdir/agt" "$ns" "$WORK/$id.agent" "agent $id" "$BPFWRAP" run \
		--allow "$WORK/pol/$n/hosts.allow" --deny "$WORK/pol/$n/hosts.deny" \
		--cgroup "$cgdir/srv=benchd" --pin-dir "$PINS/$id" --detach-on-exit
	AGENT=$SPAWNED
	if ! wait_for "$WORK/$id.agent" "$AGENT" 600 ready; then
		fail "$id: bpfwrap run did not get ready: $(tail -c 300 "$WORK/$id.agent" | tr '\n' ' ')"
		return 1
	fi
	AGENT_READY_S=$(since "$t0")
	record "kind=build n=$n id=$id ready_s=$AGENT_READY_S memlock=$(agent_memlock "$cgdir/srv" "$AGENT" "$PINS/$id")"
}

# agent_stop - ID: stop the agent, detach its pins
agent_stop() {
	local id=$1
	stop_pid "$AGENT"
	"$BPFWRAP" detach --pin-dir "$PINS/$id" >/dev/null 2>&1
	rm -rf "${PINS:?}/$id"
}

# agent_prog_ids - CGDIR: ids of the programs attached to that cgroup
agent_prog_ids() {
	bpftool cgroup show "$1" -j 2>/dev/null | jq -r '.[].id' 2>/dev/null | sort -nu
}

# agent_memlock - SRV_CGDIR PID PINDIR: bytes of kernel memory (memlock) of
# every map the agent holds: maps of the attached programs, maps the agent
# has open, maps pinned, and the inner maps of map-in-map outer maps
agent_memlock() {
	local cg=$1 pid=$2 pin=$3 ids id f inner
	ids=$(
		for id in $(agent_prog_ids "$cg"); do
			bpftool prog show id "$id" -j 2>/dev/null | jq -r '.map_ids[]?'
		done
		grep -h '^map_id:' /proc/"$pid"/fdinfo/* 2>/dev/null | awk '{ print $2 }'
		find "$pin" -type f 2>/dev/null | while read -r f; do
			bpftool map show pinned "$f" -j 2>/dev/null | jq -r '.id // empty'
		done
	)
	ids=$(printf '%s\n' $ids | sort -nu)
	inner=$(for id in $ids; do
		if bpftool map show id "$id" -j 2>/dev/null | jq -e '.type | test("of_maps")' >/dev/null; then
			bpftool map dump id "$id" -j 2>/dev/null | jq -r '.[] | .value? // empty |
				if type == "number" then . elif type == "array" then
				(map(if type == "string" then (ltrimstr("0x") | explode |
				 map(if . >= 97 then . - 87 else . - 48 end) | .[0] * 16 + .[1]) else . end) |
				 .[0] + .[1] * 256 + .[2] * 65536 + .[3] * 16777216) else empty end'
		fi
	done)
	printf '%s\n' $ids $inner | sort -nu | while read -r id; do
		[ -n "$id" ] && bpftool map show id "$id" -j 2>/dev/null | jq -r '.bytes_memlock // 0'
	done | awk '{ s += $1 } END { printf "%d", s }'
}

# prog_stats - CGDIR: "id:name:type:run_cnt:run_time_ns" for each attached program
prog_stats() {
	local id
	for id in $(agent_prog_ids "$1"); do
		bpftool prog show id "$id" -j 2>/dev/null |
			jq -r '"\(.id):\(.name // "-"):\(.type):\(.run_cnt // 0):\(.run_time_ns // 0)"'
	done
}

# cost_phase - ID N CGDIR PHASE CMD...: run CMD (bounded) with stats on, record
# per-program run_cnt and run_time_ns deltas
cost_phase() {
	local id=$1 n=$2 cgdir=$3 phase=$4 before after line
	shift 4
	before=$(prog_stats "$cgdir/srv")
	"$@" >/dev/null 2>&1
	sleep 0.05
	after=$(prog_stats "$cgdir/srv")
	while IFS=: read -r pid pname ptype cnt ns; do
		line=$(printf '%s\n' "$before" | awk -F: -v id="$pid" '$1 == id { print $4, $5 }')
		set -- $line
		record "kind=cost n=$n id=$id phase=$phase prog=$pname type=$ptype runs=$((cnt - ${1:-0})) ns=$((ns - ${2:-0}))"
	done <<<"$after"
}

# decision_costs - ID N CGDIR NS: scenario 2 on a running agent and server
decision_costs() {
	local id=$1 n=$2 cgdir=$3 ns=$4 stats sink allowed
	spawn "$cgdir/agt" "$ns" "$WORK/$id.stats" "stats $id" "$BB/bench_stats" -t 120
	stats=$SPAWNED
	wait_for "$WORK/$id.stats" "$stats" 10 ready || { fail "$id: BPF_ENABLE_STATS: $(cat "$WORK/$id.stats")"; return 1; }
	# An allowed client that is not local: its SYN-ACK has no route, so no
	# RST comes back and each SYN is exactly one run of the ingress program.
	allowed=$(awk 'NR == 1 { split($3, a, "/"); print a[1] }' "$WORK/pol/$n/hosts.allow")
	[ "$n" -le 1 ] && allowed=127.0.0.2
	cost_phase "$id" "$n" "$cgdir" syn_deny run_in "$cgdir/cli" "$ns" 30 \
		hping3 -q -S -p $PORT -a $DENIED_SRC -c "$COST_PKTS" -i u20 127.0.0.1
	cost_phase "$id" "$n" "$cgdir" syn_allow run_in "$cgdir/cli" "$ns" 30 \
		hping3 -q -S -p $PORT -a "$allowed" -c "$COST_PKTS" -i u20 127.0.0.1
	spawn "$cgdir/srv" "$ns" "$WORK/$id.sink" "sink $id" "$BB/bench_server" -m sink -p $SINK_PORT -t 120
	sink=$SPAWNED
	if wait_for "$WORK/$id.sink" "$sink" 10 ready; then
		cost_phase "$id" "$n" "$cgdir" established run_in "$cgdir/cli" "$ns" 60 \
			"$BB/bench_load" -d 127.0.0.1:$SINK_PORT -s 127.0.0.2 -E $((COST_PKTS * 4))
	fi
	stop_pid "$sink"
	stop_pid "$stats"
}

# ----------------------------------------------------- scenario 1: variants
# variant_run - ROUND VARIANT: one run of one variant (kind:rules), in a fresh
# namespace and cgroup: start the guard and the server, warm up, measure the
# sequential and the concurrent connection rate
variant_run() {
	local round=$1 v=$2 kind=${2%%:*} n=${2#*:} id ns cgdir pol srv_pid maxc=$MAXCONN c mode out
	id=r$round-${kind}-$n
	[ "$kind" = none ] && { id=r$round-none; n=0; }
	ns=$TAG-$id
	cgdir=$CG/$id
	pol=$WORK/pol/$n
	AGENT=
	mkdir -p "$cgdir/srv" "$cgdir/cli" "$cgdir/agt" && ns_new "$ns" || { fail "$id: namespace/cgroup setup"; return 1; }
	case $kind in
	none)
		spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" "$BB/bench_server" -p $PORT -t 600 ;;
	bpf)
		agent_start "$id" "$n" "$cgdir" "$ns" || { variant_end "$id" "$ns" "$cgdir"; return 1; }
		spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" "$BB/bench_server" -p $PORT -t 600 ;;
	wrap)
		spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" "$BB/bench_server" -m wrap \
			-A "$pol/hosts.allow" -D "$pol/hosts.deny" -p $PORT -t 600 ;;
	tcpd)
		maxc=$TCPD_MAXCONN
		# Private mount namespace: tcpd reads the bind-mounted copies; the
		# real /etc/hosts.allow and /etc/hosts.deny are never written.
		spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" unshare -m --propagation private \
			sh -c 'mount --bind "$1/hosts.allow" /etc/hosts.allow &&
			       mount --bind "$1/hosts.deny" /etc/hosts.deny &&
			       exec "$2" -m tcpd -p "$3" -t 600' sh "$pol" "$BB/bench_server" $PORT ;;
	nft)
		{
			echo "table ip bpfwrap_bench {"
			echo " set allow4 { type ipv4_addr; flags interval; auto-merge; elements = {"
			cat "$pol/nft.elements"
			echo " } }"
			echo " chain input {"
			echo "  type filter hook input priority 0; policy accept;"
			echo "  tcp dport $PORT tcp flags & (syn | ack) == syn ip saddr != @allow4 drop"
			echo " }"
			echo "}"
		} >"$WORK/$id.nft"
		# Only ever inside the benchmark's own namespace.
		nsenter --net="/run/netns/$ns" nft -f "$WORK/$id.nft" || { fail "$id: nft -f"; variant_end "$id" "$ns" "$cgdir"; return 1; }
		spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" "$BB/bench_server" -p $PORT -t 600 ;;
	*)
		fail "unknown variant $v"; return 1 ;;
	esac
	srv_pid=$SPAWNED
	if ! wait_for "$WORK/$id.srv" "$srv_pid" 10 ready; then
		fail "$id: server did not start: $(tr '\n' ' ' <"$WORK/$id.srv")"
		variant_end "$id" "$ns" "$cgdir"
		return 1
	fi
	run_in "$cgdir/cli" "$ns" 20 "$BB/bench_load" -d 127.0.0.1:$PORT -s $SRCS -c 1 -n 200 -t 1 >/dev/null
	for mode in seq conc; do
		c=1
		[ $mode = conc ] && c=$CONC
		out=$(run_in "$cgdir/cli" "$ns" $(awk -v s="$SECS" 'BEGIN { printf "%d", s + 15 }') \
			"$BB/bench_load" -d 127.0.0.1:$PORT -s $SRCS -c $c -n $maxc -t "$SECS") ||
			fail "$id: load generator ($mode): $out"
		record "kind=conn variant=${kind}$( [ "$kind" = none ] || echo ":$n") mode=$mode round=$round $out"
	done
	[ "$kind" = bpf ] && decision_costs "$id" "$n" "$cgdir" "$ns"
	stop_pid "$srv_pid"
	record "kind=server variant=${kind}:$n round=$round $(tail -n 1 "$WORK/$id.srv")"
	variant_end "$id" "$ns" "$cgdir"
}

# variant_end - ID NS CGDIR: stop what a variant started, remove its namespace and cgroup
variant_end() {
	local id=$1 ns=$2 cgdir=$3 pid
	for pid in "${!LIVE[@]}"; do
		case ${LIVE[$pid]} in *" $id") stop_pid "$pid" ;; esac
	done
	[ -n "${AGENT:-}" ] && agent_stop "$id"
	AGENT=
	ns_del "$ns"
	find "$cgdir" -depth -type d -exec rmdir {} \; 2>/dev/null
}

# build_only - ROUND N: start an agent on N rules, record ready time and memory, stop
build_only() {
	local round=$1 n=$2 id=r$1-build-$2 ns cgdir
	ns=$TAG-$id
	cgdir=$CG/$id
	AGENT=
	mkdir -p "$cgdir/srv" "$cgdir/agt" && ns_new "$ns" || { fail "$id: setup"; return 1; }
	agent_start "$id" "$n" "$cgdir" "$ns"
	variant_end "$id" "$ns" "$cgdir"
}

# ------------------------------------------------------- scenario 3: reload
reload_run() {
	local n=10000 id=reload ns cgdir srv out
	ns=$TAG-$id
	cgdir=$CG/$id
	AGENT=
	mkdir -p "$cgdir/srv" "$cgdir/cli" "$cgdir/agt" "$WORK/pol/reload" && ns_new "$ns" || { fail "reload: setup"; return 1; }
	cp "$WORK/pol/$n/hosts.allow" "$WORK/pol/$n/hosts.deny" "$WORK/pol/reload/"
	# the agent reads the copies; bench_reload rewrites hosts.allow from the base
	cp "$WORK/pol/$n/hosts.allow" "$WORK/reload.base"
	spawn "$cgdir/agt" "$ns" "$WORK/$id.agent" "agent $id" "$BPFWRAP" run \
		--allow "$WORK/pol/reload/hosts.allow" --deny "$WORK/pol/reload/hosts.deny" \
		--cgroup "$cgdir/srv=benchd" --pin-dir "$PINS/$id" --detach-on-exit
	AGENT=$SPAWNED
	wait_for "$WORK/$id.agent" "$AGENT" 120 ready || { fail "reload: agent not ready"; variant_end "$id" "$ns" "$cgdir"; return 1; }
	spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" "$BB/bench_server" -p $PORT -t 600
	srv=$SPAWNED
	wait_for "$WORK/$id.srv" "$srv" 10 ready || { fail "reload: server"; variant_end "$id" "$ns" "$cgdir"; return 1; }
	out=$(run_in "$cgdir/cli" "$ns" $((RELOADS * 6 + 30)) "$BB/bench_reload" -f "$WORK/pol/reload/hosts.allow" \
		-b "$WORK/reload.base" -d 127.0.0.1:$PORT -s $PROBE_SRC -n "$RELOADS") || fail "reload: $out"
	record "kind=reload n=$n $out"
	variant_end "$id" "$ns" "$cgdir"
}

# -------------------------------------------------------- scenario 4: flood
# flood_setup - ID KIND: a namespace with a server, and for KIND bpf an agent on 10,000 rules
flood_setup() {
	local id=$1 kind=$2 ns=$TAG-$1 cgdir=$CG/$1
	mkdir -p "$cgdir/srv" "$cgdir/cli" "$cgdir/agt" "$cgdir/fld" && ns_new "$ns" || return 1
	if [ "$kind" = bpf ]; then
		agent_start "$id" 10000 "$cgdir" "$ns" || return 1
		FLOOD_AGENT=$AGENT
	fi
	spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" "$BB/bench_server" -p $PORT -t 900
	wait_for "$WORK/$id.srv" "$SPAWNED" 10 ready
}

# cpu_ticks - PID: utime + stime of a process, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# flood_one - ROUND ID KIND FLOOD(0|1): the allowed client's sequential rate,
# with or without a bounded SYN flood from a denied address running alongside
flood_one() {
	local round=$1 id=$2 kind=$3 flood=$4 ns=$TAG-$2 cgdir=$CG/$2 hp= out t0 c0=0 c1=0 l0=0 l1=0 secs sent=0 el
	if [ "$flood" = 1 ]; then
		[ "$kind" = bpf ] && { c0=$(cpu_ticks "$FLOOD_AGENT"); l0=$(wc -l <"$WORK/$id.agent"); }
		t0=$(now)
		spawn "$cgdir/fld" "$ns" "$WORK/$id.hping.$round" "hping $id" timeout -k 2 $(awk -v s="$SECS" 'BEGIN { printf "%d", s + 10 }') \
			hping3 -S -p $PORT -a $DENIED_SRC -c 2000000 --faster 127.0.0.1
		hp=$SPAWNED
		sleep 0.2
	fi
	out=$(run_in "$cgdir/cli" "$ns" 30 "$BB/bench_load" -d 127.0.0.1:$PORT -s $SRCS -c 1 -n $MAXCONN -t "$SECS")
	if [ -n "$hp" ]; then
		stop_pid "$hp" INT
		el=$(since "$t0")
		sent=$(grep -o '^[0-9]* packets transmitted' "$WORK/$id.hping.$round" | awk '{ print $1 }')
		[ "$kind" = bpf ] && { c1=$(cpu_ticks "$FLOOD_AGENT"); l1=$(wc -l <"$WORK/$id.agent"); }
		record "kind=flood variant=$kind flood=1 round=$round flood_secs=$el syns_sent=${sent:-0} agent_cpu_ticks=$((c1 - c0)) hz=$(getconf CLK_TCK) log_lines=$((l1 - l0)) $out"
	else
		record "kind=flood variant=$kind flood=0 round=$round $out"
	fi
}

flood_run() {
	local r
	AGENT=
	FLOOD_AGENT=
	flood_setup flood-none none || { fail "flood: setup none"; return 1; }
	if have_run; then
		flood_setup flood-bpf bpf || fail "flood: setup bpf"
	fi
	for r in $(seq "$FLOOD_ROUNDS"); do
		flood_one "$r" flood-none none 0
		flood_one "$r" flood-none none 1
		if [ -n "$FLOOD_AGENT" ]; then
			flood_one "$r" flood-bpf bpf 0
			flood_one "$r" flood-bpf bpf 1
		fi
	done
	if [ -n "$FLOOD_AGENT" ]; then
		record "kind=flood_status $( "$BPFWRAP" status --pin-dir "$PINS/flood-bpf" 2>&1 | grep -iE 'drop|lost|ring|full|denied|deny' | head -8 | tr '\n=' ';:' | tr ' ' '_')"
		AGENT=$FLOOD_AGENT
		variant_end flood-bpf "$TAG-flood-bpf" "$CG/flood-bpf"
	fi
	AGENT=
	variant_end flood-none "$TAG-flood-none" "$CG/flood-none"
}

# ---------------------------------------------------------------------- main
T_START=$(now)
log "building helpers into $BB"
build_tools || { log "cannot build the helpers"; exit 1; }
mkdir -p "$CG" || { log "cannot create $CG"; exit 1; }
log "generating policies ($(printf '%s\n' $BPF_SIZES $BUILD_SIZES $WRAP_SIZES $TCPD_SIZES | sort -nu | tr '\n' ' '))"
gen_policies || { log "cannot generate policies"; exit 1; }

VARIANTS=(none)
BPF_OK=0
if have_run; then
	BPF_OK=1
	for n in $BPF_SIZES; do VARIANTS+=("bpf:$n"); done
else
	record "kind=note msg=bpfwrap_run_not_available:_bpfwrap_variants_not_measured"
	log "build/bpfwrap has no working 'run': bpfwrap variants are not measured"
fi
for n in $WRAP_SIZES; do VARIANTS+=("wrap:$n"); done
for n in $TCPD_SIZES; do VARIANTS+=("tcpd:$n"); done
for n in $NFT_SIZES; do VARIANTS+=("nft:$n"); done

record "kind=meta full=$FULL rounds=$ROUNDS secs=$SECS conc=$CONC srcs=$SRCS reloads=$RELOADS cost_pkts=$COST_PKTS flood_rounds=$FLOOD_ROUNDS"
record "kind=meta load_start=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
nv=${#VARIANTS[@]}
for round in $(seq "$ROUNDS"); do
	log "round $round/$ROUNDS: ${VARIANTS[*]}"
	for k in $(seq 0 $((nv - 1))); do
		v=${VARIANTS[$(((k + round - 1) % nv))]}
		variant_run "$round" "$v"
	done
	if [ $BPF_OK = 1 ]; then
		build_only "$round" 100000
	fi
done
if [ $BPF_OK = 1 ]; then
	log "reload latency ($RELOADS reloads at 10,000 rules)"
	reload_run
fi
log "flood ($FLOOD_ROUNDS rounds)"
flood_run
record "kind=meta load_end=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) total_s=$(since "$T_START")"

log "writing $REPORT"
python3 bench/report.py "$RES" "$FULL" >"$REPORT.tmp" && mv "$REPORT.tmp" "$REPORT" || { log "report failed; raw results: $RES"; cp "$RES" "$ROOT/build/bench/results.last"; FAILED=1; }
cp "$RES" "$ROOT/build/bench/results.last"
log "done in $(since "$T_START") s; raw results in build/bench/results.last"
exit $FAILED
