/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * bpfwrap.h - the ABI shared by the BPF programs (bpf/) and user space (user/).
 *
 * This is the only place where map keys, map values, verdicts and event
 * records are defined. Every field is fixed-width; byte order is stated per
 * field. Addresses and ports are kept in network byte order exactly as they
 * sit in the packet, so the kernel never converts them.
 *
 * Policy maps come in two generations (slot 0 and slot 1) behind
 * ARRAY_OF_MAPS outer maps (policy_v4_tree, policy_v4_ents, policy_v6,
 * policy_hosts_v6, policy_daemons, policy_counters); the `active` array
 * holds the generation number in force and its slot is generation & 1. A
 * program reads `active` once per packet, then looks up only the inner maps
 * of that slot it needs, so no packet ever sees half of two policies. User
 * space builds the idle slot's inner maps (sized to the compiled policy),
 * stores them in the outer maps, flips `active`, waits for an RCU grace
 * period (an outer-map update returns only after one), then deletes the old
 * slot's entries: a program that read the old generation has finished by
 * then, so it always finds that slot complete (see bpf/decide.bpf.h).
 *
 * Generation 0 means "no policy loaded": programs pass everything, as libwrap
 * does with neither file present (counted in BPFWRAP_STAT_NO_POLICY).
 */
#ifndef BPFWRAP_H
#define BPFWRAP_H

#ifndef __bpf__
#include <linux/types.h>	/* __u8 .. __u64, as libbpf and the uapi headers use them */
#endif

/* Longest daemon name the kernel keys on (process comm is 16; cgroup-given names
 * are cut to this). */
#define BPFWRAP_DAEMON_NAME_MAX 64
#define BPFWRAP_COMM_LEN 16
/* Longest cgroup directory name unit_names keys on ("ssh.service"); a unit
 * with a longer name is guarded by cgroup id only. */
#define BPFWRAP_UNIT_NAME_MAX 128

/* Daemon id 0 is the table for every daemon the policy does not name. */
#define BPFWRAP_DAEMON_OTHER 0

/* Address families as the kernel numbers them (the BPF side has no libc). */
#define BPFWRAP_AF_INET 2
#define BPFWRAP_AF_INET6 10

enum bpfwrap_verdict {
	BPFWRAP_ALLOW = 1,
	BPFWRAP_DENY = 2,
	BPFWRAP_ASK = 3, /* needs a host name, a user, or a pattern the tables cannot express */
};

/* policy_entry.flags: what the matched rule's options ask for. */
enum bpfwrap_rule_flags {
	BPFWRAP_F_SPAWN = 1 << 0,	/* rule has spawn/twist/banners: tell the agent */
	BPFWRAP_F_KEEPALIVE = 1 << 1,	/* keepalive option */
	BPFWRAP_F_LINGER = 1 << 2,	/* linger option (seconds in policy_entry.linger) */
	BPFWRAP_F_LOG_ACCEPT = 1 << 3,	/* log accepted connections of this rule */
	BPFWRAP_F_DEFAULT = 1 << 4,	/* no rule matched: libwrap's default allow */
	BPFWRAP_F_APPROX = 1 << 5,	/* ASK whose verdict_if_unknown is a fail-closed DENY
					 * (the exact unknown-name verdict was not computed) */
};

/* LPM key for IPv4 clients: prefixlen counts the 32 bits of daemon_id plus
 * the significant bits of addr. */
struct policy_key_v4 {
	__u32 prefixlen;	/* host order (LPM trie convention) */
	__u32 daemon_id;	/* big-endian, so it is the most significant part of the key */
	__u32 addr;		/* network order */
};

struct policy_key_v6 {
	__u32 prefixlen;	/* host order */
	__u32 daemon_id;	/* big-endian */
	__u8 addr[16];		/* network order */
};

/* Full-length prefixes of a lookup key (daemon id + address). */
#define BPFWRAP_V4_KEY_BITS (32 + 32)
#define BPFWRAP_V6_KEY_BITS (32 + 128)

/* What an entry decides for every client address under its prefix. */
struct policy_entry {
	__u8 verdict;		/* enum bpfwrap_verdict */
	__u8 verdict_if_unknown;	/* for ASK: verdict when name/user stay unknown (ALLOW|DENY) */
	__u16 flags;		/* enum bpfwrap_rule_flags, host order */
	__u32 rule_id;		/* host order; index into rule counters, 0 = default */
	__u32 linger;		/* host order, seconds, with BPFWRAP_F_LINGER */
};

/*
 * IPv4 tables (policy_v4_tree[slot], policy_v4_ents[slot], both ARRAYs
 * written by the loader): the compiled prefixes of each daemon table are
 * flattened into disjoint address intervals, each carrying the entry of the
 * longest prefix covering it; policy_v4_ents[i] is interval i's entry
 * (struct v4_ent), the intervals of one table in address order. A
 * lookup costs a few cache lines whatever the table size (an LPM trie of a
 * million prefixes walks about twenty nodes), and the loader fills both maps
 * with memcpy through mmap().
 *
 * policy_v4_tree holds 64-byte struct v4_node elements:
 *   [0]       header: key[0] = dir bits B (1..20), key[1] = tables T (daemon
 *             ids 0..T-1), key[2] = first node index
 *   [1 ..]    the directory: word d = (daemon << B) + (addr >> (32 - B))
 *             (addr a host-order number) is word d % 16 of element 1 + d / 16
 *             (key[0..14] then base as word 15), and describes the 2^(32-B)
 *             addresses of that bucket: BPFWRAP_V4_NONE (no entry: fail
 *             closed), height 0 (bits 31..28) = the interval index in bits
 *             27..0 covers the whole bucket, height h >= 1 = the root node
 *             index of a search tree of height h over the bucket's intervals.
 *   nodes     key[0..14]: ascending offsets within the bucket (addr masked
 *             to its low 32 - B bits), unused ones 0xffffffff; the child (or,
 *             at height 1, the interval) for offset x is base + the number
 *             of keys <= x.
 */
#define BPFWRAP_V4_NODE_KEYS 15
#define BPFWRAP_V4_DIR_BITS_MAX 20
#define BPFWRAP_V4_HEIGHT_MAX 7		/* 16^7 intervals per bucket */
#define BPFWRAP_V4_NONE 0xffffffffu
#define BPFWRAP_V4_IDX_MASK 0x0fffffffu
#define BPFWRAP_V4_HEIGHT_SHIFT 28

struct v4_node {
	__u32 key[BPFWRAP_V4_NODE_KEYS];	/* host order */
	__u32 base;				/* host order */
};

/* policy_v4_ents[i]: interval i's entry; verdict 0 = no prefix covers it
 * (fail closed). 16 bytes, the kernel's element stride, so that the loader
 * copies the whole table with one memcpy. */
struct v4_ent {
	struct policy_entry entry;
	__u32 _pad;
};

/*
 * IPv6 host-length entries (prefixlen 160) are not put in the trie but in a
 * sorted array (policy_hosts_v6[slot]) that the programs binary-search,
 * looked up before the trie: a host entry is the longest prefix there is.
 * Record 0 is a header whose key is the number of records after it;
 * records 1..n are sorted by key, ascending, without duplicates.
 */
struct host_rec_v6 {
	__u64 key_hi;		/* host order: daemon_id (high 32 bits) */
	__u64 addr_hi;		/* host order: address bytes 0..7 as a big-endian number */
	__u64 addr_lo;		/* host order: address bytes 8..15 */
	struct policy_entry entry;
	__u32 _pad;
};

/* Key of the daemon-name table: zero-padded name as the kernel knows it.
 * Names are lower-cased on both sides (libwrap compares daemon names
 * case-insensitively); the loader lower-cases the compiled names, the BPF
 * program the socket's name. */
struct daemon_key {
	char name[BPFWRAP_DAEMON_NAME_MAX];
};

/*
 * sk_info (BPF_MAP_TYPE_SK_STORAGE, BPF_F_CLONE so accepted sockets inherit
 * it): who owns a socket. Written by the cgroup/sock_create program in the
 * creating process's context, or by the loader for sockets that existed
 * before bpfwrap (adoption through pidfd_getfd). All fields host order.
 */
struct sock_info {
	struct daemon_key daemon;	/* cgroup-given name, else comm; lower-case */
	char comm[BPFWRAP_COMM_LEN];	/* creating process's comm, as is */
	__u32 tgid;			/* creating process */
	__u32 flags;			/* enum bpfwrap_sock_flags */
	__u64 daemon_cache;		/* written by the programs: generation << 32 |
					 * that generation's daemon id for `daemon`, so the
					 * name is looked up once per socket and policy;
					 * 0 (or another generation) = not known */
};

enum bpfwrap_sock_flags {
	BPFWRAP_SOCK_CGROUP_NAME = 1 << 0,	/* daemon came from cgroup_owner or unit_names */
	BPFWRAP_SOCK_ADOPTED = 1 << 1,		/* written by the loader, not at creation */
	BPFWRAP_SOCK_LATE = 1 << 2,		/* written by ingress for a socket that
						 * predates the programs (from its cgroup) */
	BPFWRAP_SOCK_UNNAMED = 1 << 3,		/* guarded, but no name is known for its
						 * cgroup: decided as daemon OTHER */
	BPFWRAP_SOCK_BY_PORT = 1 << 4,		/* a super-server's socket: named from
						 * port_names by its local port at its
						 * first packet */
};

/* `active` (ARRAY, 1 entry, written by the loader): the generation in force,
 * host order; slot = generation & 1; 0 = no policy loaded yet. */
struct active_gen {
	__u32 generation;
};

/* policy_info[slot] (ARRAY, 2 entries, written by the loader before a flip,
 * read only by user space for `status`): what the slot's tables hold. */
struct policy_info {
	__u32 v4_prefixes;	/* compiled IPv4 entries shorter than /32 */
	__u32 v4_hosts;		/* compiled IPv4 /32 entries */
	__u32 v6_prefixes;
	__u32 v6_hosts;
	__u32 daemons;
	__u32 rules;		/* n_rules; counters hold rules + 1 */
};

/* agent_alive (ARRAY, 1 entry, written by the agent as a heartbeat): the
 * agent is alive while bpf_ktime_get_ns() (CLOCK_MONOTONIC) < expires_ns.
 * While it is not, ASK entries decide with verdict_if_unknown. Host order. */
struct agent_alive {
	__u32 pid;		/* the agent's pid, for status */
	__u32 _pad;
	__u64 expires_ns;	/* CLOCK_MONOTONIC nanoseconds */
};

/*
 * verdict_cache (LRU_HASH, written by the agent after answering an ASK, read
 * by the programs for ASK entries). An answer may be reused only for
 * requests that agree with the one decided on everything its evaluation
 * read (the agent knows: user/policy/policy.h, enum request_input), so it is
 * stored in two levels:
 *   base key     (generation, daemon, client address), refine 0. Its value
 *                is the verdict when deciding read nothing else; otherwise
 *                a marker whose `refine` names the further fields to key on.
 *   refined key  the base key with refine = the marker's bits and the
 *                fields they name filled in (the others stay zero); its
 *                value is the verdict (refine 0).
 * The marker's bits only grow while it lives: the agent stores each answer
 * under the union of what this and earlier answers for the same base key
 * read, so the programs always look under the key the answer was stored
 * with. An answer that read the client's user is keyed on the whole flow
 * (server address and port, client port): tcpd asked identd for every
 * connection, so one answer serves only that connection's retransmitted SYNs.
 * The generation ties an answer to the policy it was computed for: a reload
 * makes every cached answer stale at once. Daemon OTHER stands for every
 * daemon the policy does not name, so its keys also hold a hash of the
 * socket's daemon name (0 for a named daemon: its id is its name): the 64-bit
 * FNV-1a of struct daemon_key's eight 64-bit words (host order), basis
 * BPFWRAP_NAME_HASH_BASIS, prime BPFWRAP_NAME_HASH_PRIME, one step per word.
 * (A process that can name itself can take any daemon's name outright, so a
 * hash gives it nothing more.) Addresses: IPv4 and v4-mapped ones as family
 * BPFWRAP_AF_INET in bytes 0..3, zeros after.
 */
#define BPFWRAP_NAME_HASH_BASIS 0xcbf29ce484222325ull
#define BPFWRAP_NAME_HASH_PRIME 0x100000001b3ull
#define BPFWRAP_NAME_WORDS (BPFWRAP_DAEMON_NAME_MAX / 8)

enum bpfwrap_cache_refine {
	BPFWRAP_CACHE_SERVER = 1 << 0,		/* the server address (daemon@host patterns) */
	BPFWRAP_CACHE_SERVER_PORT = 1 << 1,	/* the server port (port patterns) */
	BPFWRAP_CACHE_CLIENT_PORT = 1 << 2,	/* the client port: with the two above, the flow */
};
#define BPFWRAP_CACHE_REFINE_ALL 7

struct verdict_key {
	__u32 generation;	/* host order */
	__u32 daemon_id;	/* host order */
	__u8 family;		/* BPFWRAP_AF_INET or BPFWRAP_AF_INET6 (client and server) */
	__u8 refine;		/* 0: base key; else enum bpfwrap_cache_refine bits */
	__u16 client_port;	/* network order, with BPFWRAP_CACHE_CLIENT_PORT; else 0 */
	__u16 server_port;	/* network order, with BPFWRAP_CACHE_SERVER_PORT; else 0 */
	__u16 _pad;
	__u8 addr[16];		/* client, network order */
	__u8 server[16];	/* network order, with BPFWRAP_CACHE_SERVER; else 0 */
	__u64 daemon_hash;	/* daemon OTHER: the hash of the socket's name; else 0 */
};

struct verdict_value {
	__u8 verdict;		/* BPFWRAP_ALLOW or BPFWRAP_DENY; anything else is ignored */
	__u8 refine;		/* base key only: nonzero = a marker (look under the
				 * refined key; verdict and rule_id mean nothing) */
	__u8 _pad[2];
	__u32 rule_id;		/* host order: the rule the agent's evaluation matched */
	__u64 expires_ns;	/* CLOCK_MONOTONIC; an expired answer is ignored */
};

/*
 * Which sockets are guarded, and as which daemon (see docs/design.md,
 * "Identity"). A socket is guarded when its cgroup, or an ancestor, is in
 * cgroup_owner with BPFWRAP_CG_GUARDED, or when its cgroup's directory name
 * (or an ancestor's, a few levels up) is in unit_names with that flag: the
 * name survives `systemctl restart`, which makes a new cgroup with a new id.
 * Its daemon is the deepest non-empty name of either map; with none, the
 * creating process's comm (a socket created before the programs were
 * attached has no comm: BPFWRAP_SOCK_UNNAMED, daemon OTHER, counted).
 * Sockets that are not guarded get no sk_info and are never decided: the
 * programs may be attached to a parent slice, for every service in it.
 *
 * cgroup_owner (HASH, written by the loader): cgroup v2 id (host order, =
 * the directory's inode number) -> struct cgroup_owner.
 * unit_names (HASH, written by the loader): struct unit_key -> struct
 * cgroup_owner.
 */
struct cgroup_owner {
	struct daemon_key daemon;	/* lower-case; empty: no name for this cgroup */
	__u32 flags;			/* enum bpfwrap_cgroup_flags */
	__u32 pid;			/* the unit's main process (0: none known): the
					 * PID logged for a socket older than the
					 * programs, whose creator they never saw */
};

enum bpfwrap_cgroup_flags {
	BPFWRAP_CG_GUARDED = 1 << 0,	/* this cgroup and every descendant are guarded */
	BPFWRAP_CG_EXPLICIT = 1 << 1,	/* the name came from --cgroup PATH=NAME */
	BPFWRAP_CG_EXEMPT = 1 << 2,	/* never guarded, whatever an ancestor says
					 * (bpfwrap's own cgroup: its DNS and ident
					 * replies, the commands it spawns) */
	BPFWRAP_CG_BY_PORT = 1 << 3,	/* runs inetd or xinetd: its sockets take the
					 * daemon name of their port (port_names) */
};

/* port_names (HASH, written by the loader from inetd.conf and xinetd's
 * configuration): the local port of a super-server's socket -> the daemon
 * name tcpd would have seen for that service (argv[0]'s basename; xinetd:
 * the server's basename or its `libwrap` name). */
struct port_key {
	__u16 port;		/* host order */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 _pad;
};

/* A cgroup directory's own name ("ssh.service"), zero-padded. */
struct unit_key {
	char name[BPFWRAP_UNIT_NAME_MAX];
};

/* Global counters (PERCPU_ARRAY, BPFWRAP_STAT_MAX entries of __u64, written by
 * the programs, read and summed by the loader). */
enum bpfwrap_stat {
	BPFWRAP_STAT_PACKETS,		/* packets that needed a decision */
	BPFWRAP_STAT_FAST_PATH,		/* packets passed before parsing (established, ...) */
	BPFWRAP_STAT_ALLOW,		/* decided allow */
	BPFWRAP_STAT_DENY,		/* decided deny (dropped) */
	BPFWRAP_STAT_ASK,		/* dropped while the agent is asked */
	BPFWRAP_STAT_CACHE_HIT,		/* decided by the verdict cache */
	BPFWRAP_STAT_AGENT_DOWN,	/* ASK decided with verdict_if_unknown */
	BPFWRAP_STAT_MALFORMED,		/* unparseable packet to a listener: dropped */
	BPFWRAP_STAT_NO_POLICY,		/* generation 0: passed */
	BPFWRAP_STAT_NO_MAPS,		/* slot maps missing twice: dropped (fail closed) */
	BPFWRAP_STAT_NO_ENTRY,		/* no LPM entry (compiler contract broken): dropped */
	BPFWRAP_STAT_EVENTS_LOST,	/* ring buffer full: event not sent */
	BPFWRAP_STAT_NO_OWNER,		/* guarded socket without a name: daemon OTHER */
	BPFWRAP_STAT_SOCKOPT_FAILED,	/* bpf_setsockopt for keepalive failed */
	BPFWRAP_STAT_DENY_FOLDED,	/* denials counted into their client's last event, none sent */
	BPFWRAP_STAT_EVENTS_CAPPED,	/* log events not sent: the global cap per second was spent */
	BPFWRAP_STAT_MAX,
};

/* Per-rule counters: policy_counters[slot] is an ARRAY of __u64 with
 * n_rules + 1 entries indexed by rule id (0 = default allow). They count
 * decided connection attempts (TCP SYNs, retransmits included, and UDP
 * datagrams) per slot: a reload starts the new policy's counters at zero. */

/* Ring buffer records. One event per flow, carrying the entry's flags, so
 * the agent logs and spawns from it:
 *   DENY    a TCP SYN or UDP datagram was dropped by a DENY decision (with
 *           BPFWRAP_F_SPAWN the agent runs the rule's spawn, as tcpd does for
 *           a booby-trap rule in hosts.deny); one per flow per dedup_ns.
 *           A plain denial (no spawn, not "agent down") is aggregated
 *           instead: one event per (client, daemon, server port) per
 *           event_limits.interval_ns, the first at once, the others counted
 *           (src_recent below, event.agg_*).
 *   ASK     the agent must decide; the flow is held (dropped) meanwhile.
 *   ACCEPT  sockops saw a TCP connection accepted under a rule with
 *           LOG_ACCEPT, SPAWN or LINGER (kernel 6.18's bpf_setsockopt()
 *           refuses SO_LINGER: the event reports the rule's linger so it is
 *           at least visible; see BPFWRAP_STAT_SOCKOPT_FAILED).
 *   SPAWN   a UDP datagram was allowed by a rule with BPFWRAP_F_SPAWN (UDP
 *           has no accept); one per flow per dedup_ns. */
/*
 * Denials aggregated per client. src_recent (ARRAY of struct src_slot,
 * BPFWRAP_SRC_SLOTS entries, written by the programs, read by the agent) is
 * direct-mapped: slot = a hash of the src_key. A denial whose key holds its
 * slot and whose window (window_ns, the time of its last event) is younger
 * than the interval only adds one to count; otherwise it sends an event
 * (window_ns = now) that carries count, cumulative since the key took the
 * slot (since_ns), so that the agent logs "N times in the last T" from the
 * difference to what it reported before; the agent also reads the slot once
 * a window has ended, for denials no later event will report. A key that
 * takes over a slot reports the evicted key and its count in its event. Two
 * keys on one slot evict each other: extra events, never a lost verdict.
 */
#define BPFWRAP_SRC_SLOTS 16384	/* power of two */

struct src_key {
	__u8 addr[16];		/* client as in the packet, network order (v4: bytes 0..3) */
	__u32 daemon_id;	/* host order */
	__u16 dport;		/* server port, network order */
	__u8 family;		/* packet family */
	__u8 proto;
};

/* Times of src_slot and event_limits are CLOCK_MONOTONIC_COARSE (cheaper to
 * read per SYN; a tick's error is nothing against windows of seconds). */
struct src_slot {
	struct src_key key;
	__u64 since_ns;		/* the key took the slot */
	__u64 window_ns;	/* the key's last event */
	__u64 count;		/* the key's denials since since_ns; 0 = free slot */
};

/* event_limits[0] (ARRAY, written by the loader at open; cap_window_ns and
 * cap_count by the programs): how often log events may be sent. Every
 * DENY and SPAWN event counts against cap_per_s per second, whatever its
 * source (ASK and ACCEPT do not: a question
 * holds a client, an accept is a proven connection); one over the cap is not
 * sent and counted in BPFWRAP_STAT_EVENTS_CAPPED. Host order. */
#define BPFWRAP_AGG_INTERVAL_DEFAULT_NS (60ull * 1000000000ull)
#define BPFWRAP_EVENT_CAP_DEFAULT 1000	/* events per second */
#define BPFWRAP_EVENT_CAP_NONE 0xffffffffu

struct event_limits {
	__u64 interval_ns;	/* aggregation window; 0 = BPFWRAP_AGG_INTERVAL_DEFAULT_NS */
	__u32 cap_per_s;	/* 0 = BPFWRAP_EVENT_CAP_DEFAULT; BPFWRAP_EVENT_CAP_NONE = no cap */
	__u32 _pad;
	__u64 cap_window_ns;	/* start of the current second */
	__u64 cap_count;	/* events sent in it */
};

enum bpfwrap_event_type {
	BPFWRAP_EV_DENY = 1,
	BPFWRAP_EV_ASK = 2,
	BPFWRAP_EV_ACCEPT = 3,
	BPFWRAP_EV_SPAWN = 4,
};

/* Why a verdict was reached (event.reason, test results). */
enum bpfwrap_reason {
	BPFWRAP_R_POLICY = 1,	/* LPM entry ALLOW/DENY */
	BPFWRAP_R_CACHE = 2,	/* verdict cache */
	BPFWRAP_R_AGENT_DOWN = 3,	/* ASK, no agent: verdict_if_unknown */
	BPFWRAP_R_ASK = 4,	/* ASK sent to the agent: dropped for now */
	BPFWRAP_R_FAST_PATH = 5,	/* not a new flow: passed without a decision */
	BPFWRAP_R_MALFORMED = 6,	/* garbage: dropped */
	BPFWRAP_R_NO_POLICY = 7,	/* generation 0: passed */
	BPFWRAP_R_NO_MAPS = 8,	/* inner maps missing: dropped */
	BPFWRAP_R_NO_ENTRY = 9,	/* no covering entry: dropped */
};

/*
 * One event. Addresses as the daemon sees them: an IPv4 packet to an IPv6
 * socket is reported as family AF_INET6 with ::ffff:a.b.c.d (what tcpd's
 * getpeername() would give); family AF_INET uses the first 4 bytes.
 */
struct event {
	__u64 time_ns;		/* CLOCK_MONOTONIC */
	__u32 type;		/* enum bpfwrap_event_type */
	__u32 rule_id;		/* host order; the deciding rule (0 = default) */
	__u32 daemon_id;	/* host order */
	__u32 pid;		/* tgid that created the socket, 0 unknown */
	__u32 generation;	/* policy generation that decided */
	__u16 flags;		/* matched entry's enum bpfwrap_rule_flags */
	__u8 verdict;		/* final verdict (ALLOW|DENY), ASK for type ASK */
	__u8 verdict_if_unknown;	/* the entry's, for ASK */
	__u8 reason;		/* enum bpfwrap_reason */
	__u8 family;		/* BPFWRAP_AF_INET / BPFWRAP_AF_INET6 */
	__u8 proto;		/* IPPROTO_TCP (6) / IPPROTO_UDP (17) */
	__u8 _pad;
	__u16 sport;		/* client port, network order */
	__u16 dport;		/* server port, network order */
	__u32 linger;		/* entry's linger seconds (BPFWRAP_F_LINGER) */
	__u8 saddr[16];		/* client address, network order */
	__u8 daddr[16];		/* server address, network order */
	char daemon[BPFWRAP_DAEMON_NAME_MAX];	/* socket's daemon name */
	char comm[BPFWRAP_COMM_LEN];	/* socket's creating process */
	/* An aggregated DENY (src_recent above); agg_slot 0: not aggregated. */
	__u32 agg_slot;		/* src_recent index + 1 */
	__u32 _pad2;
	__u64 agg_count;	/* the slot's count, this denial included */
	__u64 agg_since_ns;	/* the slot's since_ns */
	struct src_key agg_key;	/* the slot's key: this denial's */
	struct src_key evicted;	/* the key this event's key took the slot from */
	__u64 evicted_count;	/* its count then; 0: the slot was free or already this key's */
};

/*
 * The test twin (program bpfwrap_decide_test, never attached) is run with
 * BPF_PROG_TEST_RUN. It takes what a real socket would give through the
 * __sk_buff cb[] words of ctx_in and returns its result through cb[] of
 * ctx_out (both host order):
 *   in  cb[0] index + 1 into test_names (0: the socket has no sk_info)
 *       cb[1] socket state (BPF_TCP_* numbering; BPFWRAP_TEST_STATE_LISTEN ...)
 *       cb[2] socket protocol (0: IPPROTO_TCP)
 *       cb[3] enum bpfwrap_test_flags
 *       cb[4] socket family (0: the packet's)
 *   out cb[0] BPFWRAP_TEST_MAGIC | reason
 *       cb[1] entry verdict | verdict_if_unknown << 8 | final verdict << 16
 *       cb[2] rule id
 *       cb[3] daemon id
 *       cb[4] entry flags | event type emitted << 16
 * The return value is the program's: 1 pass, 0 drop.
 */
#define BPFWRAP_TEST_NAMES_MAX 256
#define BPFWRAP_TEST_MAGIC 0xb9f00000u
#define BPFWRAP_TEST_MAGIC_MASK 0xfff00000u
#define BPFWRAP_TEST_STATE_ESTABLISHED 1
#define BPFWRAP_TEST_STATE_CLOSE 7
#define BPFWRAP_TEST_STATE_LISTEN 10

enum bpfwrap_test_flags {
	BPFWRAP_TEST_F_QUIET = 1 << 0,	/* no counters, no events, no stats (kernel match) */
	BPFWRAP_TEST_F_NO_OUTPUT = 1 << 1,	/* leave cb[] as given, so that a run with
						 * `repeat` decides the same input every time */
};

#endif /* BPFWRAP_H */
