#!/bin/bash
# run.sh - bpfwrap benchmarks: connection rate against no policy, libwrap in
# process, tcpd fork+exec and nftables; kernel cost per decision, also of
# each extension (trap, limits, --reject; docs/extensions.md) per SYN;
# policy build time, memory and reload latency; a SYN flood with the agent
# consuming and logging the denials (CPU, log lines, ring-buffer drops);
# -> bench/REPORT.md.
#
# Usage: bench/run.sh [--full]      (as root; `make bench [FULL=1]`)
# Development only: BENCH_ROUNDS, BENCH_SECS, BENCH_*_SIZES, ... (see
# "Development overrides" below) shrink a run; BENCH_REPORT=FILE writes the
# report there instead; BENCH_PLAN=1 prints the sizing and exits.
#
# Builds its helpers from bench/*.c with cc (and bench/floor.bpf.c with
# clang) into build/bench/ (no Makefile rule: this script is their only
# user), and runs a snapshot copy of build/bpfwrap (others may rebuild it
# meanwhile). Every variant (no policy, bpfwrap at 10 / 10,000 / 1,000,000
# rules, bpfwrap with extensions, nftables, libwrap, tcpd) gets a network
# namespace of its own (loopback only) and a child cgroup under
# CGMNT/bpfwrap-bench-PID/ (CGMNT: the cgroup2 mount, from
# /proc/self/mountinfo; /sys/fs/cgroup on stock Debian 12, /sys/fs/cgroup/unified
# on a hybrid host); all are set up first, then
# measured in rounds: each round runs every variant once, in an order rotated
# per round, so machine noise hits all alike; the report quotes medians,
# min-max and per-round ratios. nftables rules go only into a benchmark
# namespace; the tcpd variant bind-mounts its hosts.allow and hosts.deny over
# /etc in a private mount namespace (the real files are never touched). BPF
# run-time statistics are on only during the cost phases (BPF_ENABLE_STATS
# held by bench_stats: off again when it exits, however it exits).
#
# Errors: a variant that fails to start is recorded as an error in the
# report and the run goes on without it; the exit status is 1 if anything
# failed. Whatever happens (error, ^C, SIGTERM), the EXIT trap stops every
# process this script started (by PID), detaches every bpfwrap pin
# directory and the floor program it made, deletes its namespaces, cgroups
# and temp directory.
set -u -o pipefail
export LC_ALL=C

usage() { echo "usage: bench/run.sh [--full]" >&2; exit 2; }
FULL=0
case "${1:-}" in --full) FULL=1 ;; "") ;; *) usage ;; esac
[ "$(id -u)" = 0 ] || { echo "bench: must run as root (namespaces, cgroups, BPF)" >&2; exit 1; }

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
BPFWRAP_BUILT=$ROOT/build/bpfwrap     # copied into WORK at start: others may rebuild meanwhile
BB=$ROOT/build/bench
# the first cgroup2 mount, as `bpfwrap run` takes it (findmnt reads /proc/self/mountinfo)
CGMNT=$(findmnt -n -l -t cgroup2 -o TARGET | head -1)
[ -n "$CGMNT" ] || { echo "bench: no cgroup2 file system is mounted" >&2; exit 1; }
TAG=bpfwrap-bench-$$
CG=$CGMNT/$TAG
PINS=/sys/fs/bpf/$TAG
REPORT=$ROOT/bench/REPORT.md
WORK=$(mktemp -d "/tmp/$TAG.XXXXXX") || exit 1
RES=$WORK/results
: >"$RES"
BPFWRAP=$WORK/bpfwrap
[ -x "$BPFWRAP_BUILT" ] && cp "$BPFWRAP_BUILT" "$BPFWRAP"

# Sizes. The default run is a few minutes; --full is longer and steadier.
if [ $FULL = 1 ]; then
	ROUNDS=7 SECS=4 RELOADS=300 COST_PKTS=20000 FLOOD_ROUNDS=5 BUILD_ROUNDS=3
	BUILD_ONLY="10000 100000 1000000"
else
	ROUNDS=5 SECS=1.25 RELOADS=100 COST_PKTS=5000 FLOOD_ROUNDS=3 BUILD_ROUNDS=2
	BUILD_ONLY="10000 100000"
fi
CONC=16                         # connections in flight in the concurrent mode
SRCS=127.0.0.2-127.0.0.9        # client source addresses (allowed)
DENIED_SRC=127.0.1.1            # flood source (denied by hosts.deny ALL : ALL)
PROBE_SRC=127.0.2.77            # reload probe (toggled between denied and allowed)
PORT=8080 SINK_PORT=8081
MAXCONN=2000000 TCPD_MAXCONN=20000
BPF_SIZES="10 10000 1000000"
BUILD_SIZES="10000 100000 1000000"  # 10,000 and 1,000,000 also come from the variants' agents
WRAP_SIZES="10 1000 10000"
TCPD_SIZES="10 1000"
NFT_SIZES="10000"
# Extensions (docs/extensions.md), each on bpfwrap at EXT_N rules next to
# bpf:EXT_N: xtrap = a trap rule on ports nothing uses (never hit), xlimit =
# per_source/instances/cps on the measured daemon, too high ever to fire,
# xreject = --reject. All get the cost phases; EXT_CONN also the
# connection-rate rounds.
EXT_N=10000
EXT_KINDS="xtrap xlimit xreject"
EXT_CONN="xlimit"
TRAP_PORTS=2000-2019            # the never-hit trap (nothing connects there)
LOG_BURST=5                     # agents' --log-burst: lines per rule and client per minute
# Development overrides (not for reported runs): sizes, and BENCH_REPORT to
# write the report elsewhere than bench/REPORT.md.
ROUNDS=${BENCH_ROUNDS:-$ROUNDS} SECS=${BENCH_SECS:-$SECS} RELOADS=${BENCH_RELOADS:-$RELOADS}
BPF_SIZES=${BENCH_BPF_SIZES:-$BPF_SIZES} BUILD_ONLY=${BENCH_BUILD_ONLY-$BUILD_ONLY}
BUILD_SIZES=${BENCH_BUILD_SIZES:-$BUILD_SIZES} COST_PKTS=${BENCH_COST_PKTS:-$COST_PKTS}
FLOOD_ROUNDS=${BENCH_FLOOD_ROUNDS:-$FLOOD_ROUNDS} BUILD_ROUNDS=${BENCH_BUILD_ROUNDS:-$BUILD_ROUNDS}
WRAP_SIZES=${BENCH_WRAP_SIZES-$WRAP_SIZES} TCPD_SIZES=${BENCH_TCPD_SIZES-$TCPD_SIZES}
NFT_SIZES=${BENCH_NFT_SIZES-$NFT_SIZES} EXT_N=${BENCH_EXT_N:-$EXT_N}
EXT_KINDS=${BENCH_EXT_KINDS-$EXT_KINDS} EXT_CONN=${BENCH_EXT_CONN-$EXT_CONN}
REPORT=${BENCH_REPORT:-$REPORT}
PAUSED_PKTS=$((COST_PKTS < 3000 ? COST_PKTS : 3000))  # syn_deny_paused: events fit the 1 MiB ring
if [ -n "${BENCH_PLAN:-}" ]; then   # print the sizing and stop (checks argument handling)
	echo "full=$FULL rounds=$ROUNDS secs=$SECS reloads=$RELOADS cost_pkts=$COST_PKTS" \
		"flood_rounds=$FLOOD_ROUNDS build_rounds=$BUILD_ROUNDS build_only=[$BUILD_ONLY]" \
		"bpf=[$BPF_SIZES] wrap=[$WRAP_SIZES] tcpd=[$TCPD_SIZES] nft=[$NFT_SIZES]" \
		"ext=[$EXT_KINDS] at $EXT_N, conn=[$EXT_CONN] report=$REPORT"
	rm -rf "$WORK"
	exit 0
fi

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

# stop_pid - SIGTERM (or $2) one of our processes, wait (bounded: $3 seconds,
# default 5), SIGKILL if needed, reap
stop_pid() {
	local pid=$1 sig=${2:-TERM} secs=${3:-5} i
	[ -n "${LIVE[$pid]:-}" ] || return 0
	kill -"$sig" "$pid" 2>/dev/null
	kill -CONT "$pid" 2>/dev/null	# in case it was paused (decision_costs)
	for i in $(seq $((secs * 20))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
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
	[ -d "$CG/floor/srv" ] && bpftool cgroup detach "$CG/floor/srv" ingress id \
		"$(bpftool cgroup show "$CG/floor/srv" -j 2>/dev/null | jq -r '.[0].id // 0')" 2>/dev/null
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
	if [ ! -f "$BB/floor.bpf.o" ] || [ bench/floor.bpf.c -nt "$BB/floor.bpf.o" ]; then
		clang -O2 -g -target bpf -Wall -Wextra -Werror -Wno-unused-parameter \
			-I/usr/include/"$(gcc -print-multiarch)" -c bench/floor.bpf.c -o "$BB/floor.bpf.o" || return 1
	fi
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
	# 10: the floor variant's allowed address comes from it
	for n in $(printf '%s\n' 10 $BPF_SIZES $EXT_N $BUILD_SIZES $WRAP_SIZES $TCPD_SIZES $NFT_SIZES | sort -nu); do
		mkdir -p "$WORK/pol/$n" && "$BB/bench_gen" -n "$n" -o "$WORK/pol/$n" -s 1 || return 1
	done
}

# ------------------------------------------------------------- bpfwrap agent
# agent_start - ID N CGDIR NS: start `bpfwrap run` on N rules (the files in
# WORK/pol/N, or the directory AGENT_POL) for CGDIR/srv, its connection log
# in WORK/ID.log, plus the extension arguments in AGENT_XARGS (extension
# kind in AGENT_EXT); sets AGENT and records the time from exec to "ready"
# and the kernel memory
AGENT_XARGS=() AGENT_EXT=
agent_start() {
	local id=$1 n=$2 cgdir=$3 ns=$4 pol=${AGENT_POL:-$WORK/pol/$2} t0 ready
	mkdir -p "$PINS" || return 1
	t0=$(now)
	spawn "$cgdir/agt" "$ns" "$WORK/$id.agent" "agent $id" "$BPFWRAP" run \
		--allow "$pol/hosts.allow" --deny "$pol/hosts.deny" \
		--cgroup "$cgdir/srv=benchd" --pin-dir "$PINS/$id" --detach-on-exit \
		--log "$WORK/$id.log" --log-burst $LOG_BURST "${AGENT_XARGS[@]}"
	AGENT=$SPAWNED
	if ! wait_for "$WORK/$id.agent" "$AGENT" 900 ready; then
		fail "$id: bpfwrap run did not get ready: $(tail -c 300 "$WORK/$id.agent" | tr '\n' ' ')"
		return 1
	fi
	ready=$(since "$t0")
	AGENT_T0=$t0
	record "kind=build n=$n id=$id ${AGENT_EXT:+ext=$AGENT_EXT }ready_s=$ready" \
		"memlock=$(agent_memlock "$cgdir/srv" "$AGENT" "$PINS/$id")"
}

# agent_stop - PID ID: stop an agent, detach its pins
agent_stop() {
	stop_pid "$1" TERM 60
	"$BPFWRAP" detach --pin-dir "$PINS/$2" >/dev/null 2>&1
	rm -rf "${PINS:?}/$2"
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

# netns_prog_ids - PINDIR: ids of the programs bpfwrap attached to a network
# namespace (the guard's sk_lookup; its link is pinned as link-netns-*)
netns_prog_ids() {
	local f
	find "$1" -maxdepth 1 -name 'link-netns-*' 2>/dev/null | while read -r f; do
		bpftool link show pinned "$f" -j 2>/dev/null | jq -r '.prog_id // empty'
	done
}

# prog_stats - CGDIR [PINDIR]: "id:name:type:run_cnt:run_time_ns" for each
# program attached to the cgroup, and to the namespace by PINDIR's links
prog_stats() {
	local id
	for id in $(agent_prog_ids "$1"; [ -n "${2:-}" ] && netns_prog_ids "$2"); do
		bpftool prog show id "$id" -j 2>/dev/null |
			jq -r '"\(.id):\(.name // "-"):\(.type):\(.run_cnt // 0):\(.run_time_ns // 0)"'
	done
}

# status_stats - PINDIR: bpfwrap status's "statistics:" line as key:value words
status_stats() {
	"$BPFWRAP" status --pin-dir "$1" 2>/dev/null | sed -n 's/^statistics: *//p' | head -1 |
		sed 's/, */,/g; s/ \([0-9][0-9]*\)/:\1/g; s/ /_/g'
}

# ext_args - KIND ID: the extensions file WORK/ID.ext and the `bpfwrap run`
# arguments for an extension variant, into AGENT_XARGS and AGENT_EXT
ext_args() {
	local kind=$1 id=$2
	AGENT_XARGS=() AGENT_EXT=$kind
	case $kind in
	xtrap)
		printf '%s\n' "# a trap on ports nothing uses: present, never hit" \
			"$TRAP_PORTS/tcp : ALL : trap 1h" >"$WORK/$id.ext"
		AGENT_XARGS=(--extensions "$WORK/$id.ext") ;;
	xlimit)
		printf '%s\n' "# limits on the measured daemon, too high ever to fire" \
			"benchd : ALL : per_source 1000000 : instances 1000000 : cps 1000000/1000000" >"$WORK/$id.ext"
		AGENT_XARGS=(--extensions "$WORK/$id.ext") ;;
	xreject)
		AGENT_XARGS=(--reject) ;;
	*)
		return 1 ;;
	esac
}

# ---------------------------------------------------------------- variants
declare -A V_T0=() V_ID=() V_NS=() V_CG=() V_SRV=() V_AGENT=() V_SINK=() V_MAXC=()

# variant_setup - V (kind:rules): a namespace and cgroup of its own, the guard
# (bpfwrap agent, nftables set, or none), the server, a warm-up
variant_setup() {
	local v=$1 kind=${1%%:*} n=${1#*:} id ns cgdir pol
	[ "$kind" = none ] && n=0
	id=$kind-$n
	[ "$kind" = none ] && id=none
	ns=$TAG-$id
	cgdir=$CG/$id
	pol=$WORK/pol/$n
	V_ID[$v]=$id V_NS[$v]=$ns V_CG[$v]=$cgdir V_MAXC[$v]=$MAXCONN
	mkdir -p "$cgdir/srv" "$cgdir/cli" "$cgdir/agt" "$cgdir/fld" && ns_new "$ns" ||
		{ fail "$id: namespace/cgroup setup"; return 1; }
	case $kind in
	none)
		spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" "$BB/bench_server" -p $PORT -t 3600 ;;
	bpf|x*)
		AGENT_XARGS=() AGENT_EXT=
		if [ "$kind" != bpf ]; then
			ext_args "$kind" "$id" || { fail "unknown variant $v"; return 1; }
		fi
		agent_start "$id" "$n" "$cgdir" "$ns" || { AGENT_XARGS=() AGENT_EXT=; return 1; }
		AGENT_XARGS=() AGENT_EXT=
		V_AGENT[$v]=$AGENT V_T0[$v]=$AGENT_T0
		spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" "$BB/bench_server" -p $PORT -t 3600 ;;
	wrap)
		spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" "$BB/bench_server" -m wrap \
			-A "$pol/hosts.allow" -D "$pol/hosts.deny" -p $PORT -t 3600 ;;
	tcpd)
		V_MAXC[$v]=$TCPD_MAXCONN
		# Private mount namespace: tcpd reads the bind-mounted copies; the
		# real /etc/hosts.allow and /etc/hosts.deny are never written.
		spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" unshare -m --propagation private \
			sh -c 'mount --bind "$1/hosts.allow" /etc/hosts.allow &&
			       mount --bind "$1/hosts.deny" /etc/hosts.deny &&
			       exec "$2" -m tcpd -p "$3" -t 3600' sh "$pol" "$BB/bench_server" $PORT ;;
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
		# Only ever inside the benchmark's own namespace, never the root one.
		nsenter --net="/run/netns/$ns" nft -f "$WORK/$id.nft" || { fail "$id: nft -f"; return 1; }
		spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" "$BB/bench_server" -p $PORT -t 3600 ;;
	*)
		fail "unknown variant $v"; return 1 ;;
	esac
	V_SRV[$v]=$SPAWNED
	if ! wait_for "$WORK/$id.srv" "$SPAWNED" 10 ready; then
		fail "$id: server did not start: $(tr '\n' ' ' <"$WORK/$id.srv")"
		return 1
	fi
	if [ -n "${V_AGENT[$v]:-}" ]; then
		spawn "$cgdir/srv" "$ns" "$WORK/$id.sink" "sink $id" "$BB/bench_server" -m sink -p $SINK_PORT -t 3600
		V_SINK[$v]=$SPAWNED
		wait_for "$WORK/$id.sink" "$SPAWNED" 10 ready || { fail "$id: sink server"; return 1; }
	fi
	run_in "$cgdir/cli" "$ns" 30 "$BB/bench_load" -d 127.0.0.1:$PORT -s $SRCS -c 1 -n 200 -t 2 >/dev/null
	server_counters "$v" >/dev/null
}

# server_counters - V: the server's counters since the last call (SIGUSR1)
server_counters() {
	local v=$1 f=$WORK/${V_ID[$1]}.srv lines i
	lines=$(wc -l <"$f")
	kill -USR1 "${V_SRV[$v]}" 2>/dev/null || return 1
	for i in $(seq 200); do
		[ "$(wc -l <"$f")" -gt "$lines" ] && break
		sleep 0.01
	done
	tail -n 1 "$f"
}

# variant_measure - V ROUND: sequential and concurrent connection rate
variant_measure() {
	local v=$1 round=$2 mode c out
	for mode in seq conc; do
		c=1
		[ $mode = conc ] && c=$CONC
		out=$(run_in "${V_CG[$v]}/cli" "${V_NS[$v]}" $(awk -v s="$SECS" 'BEGIN { printf "%d", s + 20 }') \
			"$BB/bench_load" -d 127.0.0.1:$PORT -s $SRCS -c $c -n "${V_MAXC[$v]}" -t "$SECS") ||
			fail "${V_ID[$v]}: load generator ($mode): $out"
		record "kind=conn variant=$v mode=$mode round=$round $out"
	done
	record "kind=server variant=$v round=$round $(server_counters "$v")"
}

# variant_teardown - V: stop its processes, detach, remove namespace and cgroup
variant_teardown() {
	local v=$1 id=${V_ID[$1]} pid
	for pid in "${!LIVE[@]}"; do
		case ${LIVE[$pid]} in *" $id") [ "$pid" = "${V_AGENT[$v]:-}" ] || stop_pid "$pid" ;; esac
	done
	[ -n "${V_AGENT[$v]:-}" ] && agent_stop "${V_AGENT[$v]}" "$id"
	ns_del "${V_NS[$v]}"
	find "${V_CG[$v]}" -depth -type d -exec rmdir {} \; 2>/dev/null
}

# ---------------------------------------------------- scenario 2: decision cost
# floor_setup - the "floor" variant: a pass-everything cgroup_skb program
# (bench/floor.bpf.c) on a cgroup of its own, with a server and a sink
floor_setup() {
	local v=floor id=floor ns=$TAG-floor cgdir=$CG/floor
	V_ID[$v]=$id V_NS[$v]=$ns V_CG[$v]=$cgdir
	mkdir -p "$cgdir/srv" "$cgdir/cli" "$PINS/floor" && ns_new "$ns" || return 1
	bpftool prog load "$BB/floor.bpf.o" "$PINS/floor/prog" type cgroup/skb &&
	bpftool cgroup attach "$cgdir/srv" ingress pinned "$PINS/floor/prog" multi || return 1
	spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" "$BB/bench_server" -p $PORT -t 3600
	V_SRV[$v]=$SPAWNED
	wait_for "$WORK/$id.srv" "$SPAWNED" 10 ready || return 1
	spawn "$cgdir/srv" "$ns" "$WORK/$id.sink" "sink $id" "$BB/bench_server" -m sink -p $SINK_PORT -t 3600
	wait_for "$WORK/$id.sink" "$SPAWNED" 10 ready
}

# floor_teardown - detach the floor program, remove its namespace and cgroup
floor_teardown() {
	local pid
	for pid in "${!LIVE[@]}"; do
		case ${LIVE[$pid]} in *" floor") stop_pid "$pid" ;; esac
	done
	bpftool cgroup detach "$CG/floor/srv" ingress pinned "$PINS/floor/prog" 2>/dev/null
	rm -rf "${PINS:?}/floor"
	ns_del "$TAG-floor"
	find "$CG/floor" -depth -type d -exec rmdir {} \; 2>/dev/null
}

# cost_phase - V ROUND PHASE SENT CMD...: run CMD (bounded; it sends SENT
# packets), record per-program run_cnt and run_time_ns deltas of the
# programs on V's server cgroup and on its namespace (the guard's sk_lookup)
cost_phase() {
	local v=$1 round=$2 phase=$3 sent=$4 before after line pid pname ptype cnt rt pin=$PINS/${V_ID[$1]}
	shift 4
	before=$(prog_stats "${V_CG[$v]}/srv" "$pin")
	"$@" >/dev/null 2>&1
	sleep 0.05
	after=$(prog_stats "${V_CG[$v]}/srv" "$pin")
	while IFS=: read -r pid pname ptype cnt rt; do
		[ -n "$pid" ] || continue
		line=$(printf '%s\n' "$before" | awk -F: -v id="$pid" '$1 == id { print $4, $5 }')
		set -- $line
		record "kind=cost variant=$v n=${v#*:} round=$round phase=$phase sent=$sent prog=$pname" \
			"type=$ptype runs=$((cnt - ${1:-0})) ns=$((rt - ${2:-0}))"
	done <<<"$after"
}

# decision_costs - ROUND: scenario 2 for every bpfwrap variant, with BPF
# run-time statistics on for just these phases
decision_costs() {
	local round=$1 v n cg ns allowed stats
	spawn "$CG/misc" "$TAG-misc" "$WORK/stats.$round" "stats" "$BB/bench_stats" -t 300
	stats=$SPAWNED
	wait_for "$WORK/stats.$round" "$stats" 10 ready ||
		{ fail "BPF_ENABLE_STATS: $(cat "$WORK/stats.$round")"; stop_pid "$stats"; return 1; }
	for v in "${VARIANTS[@]}" "${XVARIANTS[@]}" $([ $FLOOR_OK = 1 ] && echo floor); do
		case ${v%%:*} in bpf|x*|floor) ;; *) continue ;; esac
		n=${v#*:} cg=${V_CG[$v]} ns=${V_NS[$v]}
		[ "$v" = floor ] && n=10
		# An allowed client that is not local: its SYN-ACK has no route, so
		# no RST comes back and each SYN is exactly one run of the ingress program.
		allowed=$(awk 'NR == 1 { split($3, a, "/"); print a[1] }' "$WORK/pol/$n/hosts.allow")
		[ "$v" = floor ] ||
			cost_phase "$v" "$round" syn_deny "$COST_PKTS" run_in "$cg/cli" "$ns" 60 \
				hping3 -q -S -p $PORT -a $DENIED_SRC -c "$COST_PKTS" -i u20 127.0.0.1
		# the same denied SYNs with the agent paused (SIGSTOP): the ring buffer
		# then has no consumer to wake, which isolates the wake-up's share
		# (at most PAUSED_PKTS: their events must fit the 1 MiB ring buffer)
		if [ "$v" = "bpf:$EXT_N" ] && [ -n "${V_AGENT[$v]:-}" ] && kill -STOP "${V_AGENT[$v]}"; then
			cost_phase "$v" "$round" syn_deny_paused "$PAUSED_PKTS" run_in "$cg/cli" "$ns" 60 \
				hping3 -q -S -p $PORT -a $DENIED_SRC -c "$PAUSED_PKTS" -i u20 127.0.0.1
			kill -CONT "${V_AGENT[$v]}"
		fi
		cost_phase "$v" "$round" syn_allow "$COST_PKTS" run_in "$cg/cli" "$ns" 60 \
			hping3 -q -S -p $PORT -a "$allowed" -c "$COST_PKTS" -i u20 127.0.0.1
		cost_phase "$v" "$round" established $((COST_PKTS * 4)) run_in "$cg/cli" "$ns" 60 \
			"$BB/bench_load" -d 127.0.0.1:$SINK_PORT -s 127.0.0.2 -E $((COST_PKTS * 4))
	done
	stop_pid "$stats"
}

# ------------------------------------------------------ scenario 3: build, reload
# build_only - ROUND N: start an agent on N rules in a fresh namespace and
# cgroup, record its ready time and memory, stop it
build_only() {
	local round=$1 n=$2 id=build-$2-r$1 ns cgdir
	ns=$TAG-$id
	cgdir=$CG/$id
	mkdir -p "$cgdir/srv" "$cgdir/agt" && ns_new "$ns" || { fail "$id: setup"; return 1; }
	if agent_start "$id" "$n" "$cgdir" "$ns"; then
		agent_stop "$AGENT" "$id"
	fi
	ns_del "$ns"
	find "$cgdir" -depth -type d -exec rmdir {} \; 2>/dev/null
}

# reload_run - reload latency at 10,000 rules: bench_reload rewrites the
# agent's hosts.allow; if the agent's file watch does not pick the writes
# up, the measurement is repeated with a SIGHUP after each write
reload_run() {
	local n=10000 id=reload ns cgdir srv out agent trigger=inotify
	ns=$TAG-$id
	cgdir=$CG/$id
	mkdir -p "$cgdir/srv" "$cgdir/cli" "$cgdir/agt" "$WORK/pol/reload" && ns_new "$ns" ||
		{ fail "reload: setup"; return 1; }
	cp "$WORK/pol/$n/hosts.allow" "$WORK/pol/$n/hosts.deny" "$WORK/pol/reload/"
	cp "$WORK/pol/$n/hosts.allow" "$WORK/reload.base"
	AGENT_POL=$WORK/pol/reload agent_start "$id" "$n" "$cgdir" "$ns" && agent=$AGENT &&
	spawn "$cgdir/srv" "$ns" "$WORK/$id.srv" "server $id" "$BB/bench_server" -p $PORT -t 900 &&
	srv=$SPAWNED && wait_for "$WORK/$id.srv" "$srv" 10 ready || { fail "reload: agent or server"; reload_end; return 1; }
	out=$(run_in "$cgdir/cli" "$ns" 60 "$BB/bench_reload" -f "$WORK/pol/reload/hosts.allow" \
		-b "$WORK/reload.base" -d 127.0.0.1:$PORT -s $PROBE_SRC -n 4)
	case $out in
	*missed=0*) ;;
	*)
		trigger=sighup
		record "kind=note msg=reload:_the_agent_did_not_apply_a_rewritten_hosts.allow_by_itself_($out);_measured_with_SIGHUP_after_each_write"
		# back to the base policy before measuring
		cp "$WORK/reload.base" "$WORK/pol/reload/hosts.allow" && kill -HUP "$agent" && sleep 1 ;;
	esac
	out=$(run_in "$cgdir/cli" "$ns" $((RELOADS * 6 + 30)) "$BB/bench_reload" -f "$WORK/pol/reload/hosts.allow" \
		-b "$WORK/reload.base" -d 127.0.0.1:$PORT -s $PROBE_SRC -n "$RELOADS" \
		$([ $trigger = sighup ] && echo "-H $agent")) || fail "reload: $out"
	record "kind=reload n=$n trigger=$trigger $out"
	reload_end
}

# reload_end - tear the reload setup down
reload_end() {
	local pid
	for pid in "${!LIVE[@]}"; do
		case ${LIVE[$pid]} in "server reload") stop_pid "$pid" ;; esac
	done
	for pid in "${!LIVE[@]}"; do
		case ${LIVE[$pid]} in "agent reload") agent_stop "$pid" reload ;; esac
	done
	ns_del "$TAG-reload"
	find "$CG/reload" -depth -type d -exec rmdir {} \; 2>/dev/null
}

# ------------------------------------------------------------ scenario 4: flood
# cpu_ticks - PID: utime + stime of a process, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# log_size - FILE: "lines bytes summary-lines" of an agent's connection log
# (summary lines: the logger's "N similar messages suppressed")
log_size() {
	if [ -f "$1" ]; then
		printf '%s %s %s\n' "$(wc -l <"$1")" "$(wc -c <"$1")" "$(grep -c 'messages suppressed' "$1")"
	else
		echo "0 0 0"
	fi
}

# flood_log_total - V: after V's agent exited, its whole connection log
# (every flood round and the summaries written at exit) and the agent's own
# count of the denials it handled (its exit line)
flood_log_total() {
	local v=$1 id=${V_ID[$1]} lines bytes sup supn denials
	read -r lines bytes sup <<<"$(log_size "$WORK/$id.log")"
	supn=$(grep -o '[0-9]* similar messages suppressed' "$WORK/$id.log" 2>/dev/null |
		awk '{ s += $1 } END { printf "%d", s }')
	denials=$(sed -n 's/^bpfwrap: agent: \([0-9]*\) denials.*/\1/p' "$WORK/$id.agent" | tail -1)
	record "kind=floodlog variant=${v%%:*} rounds=$FLOOD_ROUNDS agent_secs=$(since "${V_T0[$v]}")" \
		"log_burst=$LOG_BURST log_lines=$lines log_bytes=$bytes" \
		"suppressed_lines=$sup suppressed_total=${supn:-0} agent_denials=${denials:-unknown}" \
		"refused_lines=$(grep -c 'refused connect' "$WORK/$id.log" 2>/dev/null)"
	cp "$WORK/$id.log" "$BB/flood-agent.log.last" 2>/dev/null
}

# flood_one - V ROUND FLOOD(0|1): the allowed client's sequential rate against
# V's server, with or without a bounded SYN flood from a denied address
flood_one() {
	local v=$1 round=$2 flood=$3 cg=${V_CG[$1]} ns=${V_NS[$1]} id=${V_ID[$1]} agent=${V_AGENT[$1]:-}
	local hp out t0 c0=0 c1=0 l0=0 l1=0 b0=0 b1=0 u0=0 u1=0 s0= s1= sent el log=$WORK/${V_ID[$1]}.log
	if [ "$flood" = 0 ]; then
		out=$(run_in "$cg/cli" "$ns" 30 "$BB/bench_load" -d 127.0.0.1:$PORT -s $SRCS -c 1 -n $MAXCONN -t "$SECS")
		record "kind=flood variant=${v%%:*} flood=0 round=$round $out"
		return
	fi
	if [ -n "$agent" ]; then
		c0=$(cpu_ticks "$agent")
		read -r l0 b0 u0 <<<"$(log_size "$log")"
		s0=$(status_stats "$PINS/$id")
	fi
	t0=$(now)
	spawn "$cg/fld" "$ns" "$WORK/$id.hping.$round" "hping $id" timeout -k 2 \
		$(awk -v s="$SECS" 'BEGIN { printf "%d", s + 10 }') \
		hping3 -S -p $PORT -a $DENIED_SRC -c 2000000 --faster 127.0.0.1
	hp=$SPAWNED
	sleep 0.2
	out=$(run_in "$cg/cli" "$ns" 30 "$BB/bench_load" -d 127.0.0.1:$PORT -s $SRCS -c 1 -n $MAXCONN -t "$SECS")
	stop_pid "$hp" INT
	el=$(since "$t0")
	sent=$(grep -o '^[0-9]* packets transmitted' "$WORK/$id.hping.$round" | awk '{ print $1 }')
	if [ -n "$agent" ]; then
		s1=$(status_stats "$PINS/$id")
		# let the agent drain what the ring buffer still holds: that work
		# (CPU, lines) belongs to the flood too
		sleep 0.2
		c1=$(cpu_ticks "$agent")
		read -r l1 b1 u1 <<<"$(log_size "$log")"
	fi
	record "kind=flood variant=${v%%:*} flood=1 round=$round flood_secs=$el syns_sent=${sent:-0}" \
		"agent_cpu_ticks=$((c1 - c0)) hz=$(getconf CLK_TCK) log_lines=$((l1 - l0))" \
		"log_bytes=$((b1 - b0)) log_suppressed_lines=$((u1 - u0))" \
		"status_before=${s0:-none} status_after=${s1:-none} $out"
}

# ---------------------------------------------------------------------- main
T_START=$(now)
log "building helpers into $BB"
build_tools || { log "cannot build the helpers"; exit 1; }
mkdir -p "$CG/misc" && ns_new "$TAG-misc" || { log "cannot create $CG or a namespace"; exit 1; }
log "generating policies ($(printf '%s\n' 10 $BPF_SIZES $EXT_N $BUILD_SIZES $WRAP_SIZES $TCPD_SIZES $NFT_SIZES | sort -nu | tr '\n' ' '))"
gen_policies || { log "cannot generate policies"; exit 1; }

record "kind=meta full=$FULL rounds=$ROUNDS secs=$SECS conc=$CONC srcs=$SRCS reloads=$RELOADS cost_pkts=$COST_PKTS flood_rounds=$FLOOD_ROUNDS flood_n=$EXT_N ext_n=$EXT_N"
record "kind=meta load_start=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
record "kind=meta cgmnt=$CGMNT"

WANT=(none)
BPF_OK=0
if have_run; then
	BPF_OK=1
	for n in $BPF_SIZES; do WANT+=("bpf:$n"); done
	# the extensions' baseline (same round) and the flood's guard
	case " $BPF_SIZES " in *" $EXT_N "*) ;; *) WANT+=("bpf:$EXT_N") ;; esac
	for k in $EXT_CONN; do WANT+=("$k:$EXT_N"); done
else
	record "kind=note msg=build/bpfwrap_has_no_run_command:_bpfwrap_variants_not_measured"
	log "build/bpfwrap has no working 'run': bpfwrap variants are not measured"
fi
for n in $NFT_SIZES; do WANT+=("nft:$n"); done
for n in $WRAP_SIZES; do WANT+=("wrap:$n"); done
for n in $TCPD_SIZES; do WANT+=("tcpd:$n"); done

VARIANTS=()
for v in "${WANT[@]}"; do
	log "setting up $v"
	if variant_setup "$v"; then
		VARIANTS+=("$v")
	else
		variant_teardown "$v"
	fi
done
nv=${#VARIANTS[@]}
# cost-only extension variants (no connection-rate rounds)
XVARIANTS=()
if [ $BPF_OK = 1 ]; then
	for k in $EXT_KINDS; do
		case " $EXT_CONN " in *" $k "*) continue ;; esac
		log "setting up $k:$EXT_N"
		if variant_setup "$k:$EXT_N"; then
			XVARIANTS+=("$k:$EXT_N")
		else
			variant_teardown "$k:$EXT_N"
		fi
	done
fi
HAVE_BPF=0
for v in "${VARIANTS[@]}"; do [ "${v%%:*}" = bpf ] && HAVE_BPF=1; done
FLOOR_OK=0
if [ $HAVE_BPF = 1 ]; then
	if floor_setup; then FLOOR_OK=1; else fail "floor program setup"; floor_teardown; fi
fi

for round in $(seq "$ROUNDS"); do
	log "round $round/$ROUNDS"
	for k in $(seq 0 $((nv - 1))); do
		variant_measure "${VARIANTS[$(((k + round - 1) % nv))]}" "$round"
	done
	[ $HAVE_BPF = 1 ] && decision_costs "$round"
	if [ $HAVE_BPF = 1 ] && [ "$round" -le "$BUILD_ROUNDS" ]; then
		for n in $BUILD_ONLY; do build_only "$round" "$n"; done
	fi
done

log "flood ($FLOOD_ROUNDS rounds)"
FLOOD_VARIANTS=()
for v in none "bpf:$EXT_N"; do [ -n "${V_SRV[$v]:-}" ] && FLOOD_VARIANTS+=("$v"); done
for round in $(seq "$FLOOD_ROUNDS"); do
	for v in "${FLOOD_VARIANTS[@]}"; do
		flood_one "$v" "$round" 0
		flood_one "$v" "$round" 1
	done
done

for v in "${VARIANTS[@]}" "${XVARIANTS[@]}"; do variant_teardown "$v"; done
# the flood's agent has exited now: its exit line and its whole log
for v in "${FLOOD_VARIANTS[@]}"; do [ -n "${V_AGENT[$v]:-}" ] && flood_log_total "$v"; done
[ $FLOOR_OK = 1 ] && floor_teardown
if [ $HAVE_BPF = 1 ]; then
	log "reload latency ($RELOADS reloads at 10,000 rules)"
	reload_run
fi
record "kind=meta load_end=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) total_s=$(since "$T_START")"

log "writing $REPORT"
cp "$RES" "$BB/results.last"
if python3 bench/report.py "$RES" "$FULL" >"$WORK/REPORT.md"; then
	mv "$WORK/REPORT.md" "$REPORT"
else
	log "report failed; raw results in $BB/results.last"
	FAILED=1
fi
log "done in $(since "$T_START") s"
exit $FAILED
