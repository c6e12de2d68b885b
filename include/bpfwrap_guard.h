/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * bpfwrap_guard.h - the ABI of bpfwrap's extensions ("guard"): sensor traps
 * and bans, per-source/instance/rate limits, reject mode, revoke. Shared by
 * bpf/guard.bpf.c and user/kernel/guard.c; the policy ABI (include/bpfwrap.h) is
 * unchanged. Every field is fixed-width, byte order stated per field.
 *
 * Client addresses are always 16 bytes: an IPv4 client (or an IPv4 packet
 * to a dual-stack socket) is stored as the v4-mapped ::ffff:a.b.c.d, so one
 * map and one LPM trie serve both families.
 *
 * Extension rules: rule ids 1..GUARD_RULES_MAX-1 index guard_rules. A reload
 * writes the new rules into the id half the live lists do not use (ids
 * 1..GUARD_HALF-1 or GUARD_HALF+1..GUARD_RULES_MAX-1), then replaces each
 * daemon's and port's list (one atomic map update each), then deletes what
 * is stale: a packet sees either a daemon's old list or its new one, and the
 * ids it finds there stay valid while it runs.
 */
#ifndef BPFWRAP_GUARD_H
#define BPFWRAP_GUARD_H

#include "bpfwrap.h"
#ifndef __bpf__
#include <linux/bpf.h>	/* struct bpf_spin_lock */
#endif

#define GUARD_RULES_MAX 256	/* guard_rules entries (ids), two halves */
#define GUARD_HALF 128		/* first id of the second half */
#define GUARD_LIST_MAX 16	/* rules per daemon or port, first match wins */
#define GUARD_DAEMONS_MAX 1024	/* guard_daemons entries */
#define GUARD_PORTS_MAX 4096	/* guard_ports entries (trap ports) */
#define GUARD_CLIENTS_MAX 16384	/* guard_clients LPM entries */
#define GUARD_BANS_MAX 65536	/* default size of guard_bans and guard_bans_unproven
				 * (bpfwrap run --max-bans): plain hashes, never evicted */
#define GUARD_CONNS_MAX 65536	/* guard_conns: per (daemon, client) connection counts */
#define GUARD_OWNERS_MAX 4096	/* guard_port_owner: bound ports of the cgroups */
#define GUARD_LIMIT_MAX 1000000	/* largest per_source / instances / cps value */

/* guard_trap_ports (ARRAY of __u64, written by user space): one bit per
 * port that has a guard_ports list, TCP ports in words 0..1023, UDP ports
 * in 1024..2047; lets sk_lookup skip the hash lookup for every other port.
 * A reload sets the new bits before it switches the lists and clears the
 * stale ones after. port is in host order. */
#define GUARD_PORT_WORDS 2048
#define GUARD_PORT_WORD(port, proto) ((__u32)((proto) == 17 ? 1024u : 0u) + ((__u32)(port) >> 6))
#define GUARD_PORT_BIT(port) (1ull << ((port) & 63))

/* guard_flags (ARRAY of __u32): what exists at all, so a packet that no
 * rule can concern costs no hash lookup. Nonzero = may exist. */
enum guard_flag {
	GUARD_FLAG_BANS,	/* a ban was made (set by the programs, and at start if any) */
	GUARD_FLAG_DAEMONS,	/* guard_daemons has an entry (set by user space) */
	GUARD_FLAG_ALL,		/* guard_daemons has the zero key (ALL lines) */
	GUARD_FLAG_LOOKUP,	/* a daemon's list has a trap or reject rule (sk_lookup acts) */
	GUARD_FLAG_UNPROVEN_BANS,	/* guard_bans_unproven has an entry (set by the programs) */
	GUARD_FLAG_RECORDING,	/* user space is running the owners iterators: a socket
				 * released meanwhile is marked (guard_sock_release) */
	GUARD_FLAG_MAX,
};

/* Extra values of enum bpfwrap_reason (event.reason) the guard emits. */
#define GUARD_R_BANNED 20	/* the client is banned (a trap fired earlier) */
#define GUARD_R_TRAP 21		/* this attempt hit a trap: the client is now banned */
#define GUARD_R_PER_SOURCE 22	/* per_source limit */
#define GUARD_R_INSTANCES 23	/* instances limit */
#define GUARD_R_CPS 24		/* cps limit */
#define GUARD_R_REJECT 25	/* policy DENY answered with RST / ICMP (reject mode) */
#define GUARD_R_TRAP_UNPROVEN 26	/* an `unproven` UDP trap banned a datagram's source */

/* guard_rule.flags */
enum guard_rule_flags {
	GUARD_F_TRAP = 1 << 0,		/* an attempt bans the client for deny_s */
	GUARD_F_REJECT = 1 << 1,	/* deny with RST / ICMP unreachable */
	GUARD_F_DROP = 1 << 2,		/* deny silently even with --reject */
	GUARD_F_PER_SOURCE = 1 << 3,
	GUARD_F_INSTANCES = 1 << 4,
	GUARD_F_CPS = 1 << 5,
	GUARD_F_UNPROVEN = 1 << 6,	/* trap: a UDP datagram bans its (unproven) source too */
};

/* guard_rules[id] (ARRAY, written by user space). All host order. */
struct guard_rule {
	__u32 flags;		/* enum guard_rule_flags */
	__u32 deny_s;		/* trap: ban seconds, 0 = until removed */
	__u32 per_source;	/* max concurrent connections per client address */
	__u32 instances;	/* max concurrent connections in total */
	__u32 cps_rate;		/* new connections per second ... */
	__u32 cps_burst;	/* ... with this burst (>= 1) */
	__u32 line;		/* line in the extensions file, for logs */
	__u8 src_plen4;		/* per_source counts IPv4 clients per this prefix (1..32;
				 * 0 = GUARD_SRC_PLEN4_DEFAULT) */
	__u8 src_plen6;		/* ... and IPv6 clients (1..128; 0 = GUARD_SRC_PLEN6_DEFAULT) */
	__u16 _pad;
};

/* per_source's default client prefixes: an IPv4 address, an IPv6 /64 (one
 * host or LAN is given a /64: counting per /128 would let it open 2^64 times
 * the limit). A line's `source_prefix v4/N v6/M` overrides them. */
#define GUARD_SRC_PLEN4_DEFAULT 32
#define GUARD_SRC_PLEN6_DEFAULT 64

/* guard_daemons (HASH struct daemon_key -> guard_list; the all-zero key is
 * the list for daemons no line names) and guard_ports (HASH port_key ->
 * guard_list). Written by user space. */
struct guard_list {
	__u32 n;			/* rules used, <= GUARD_LIST_MAX; host order */
	__u16 rule[GUARD_LIST_MAX];	/* rule ids in file order, host order */
};

/* Key of guard_ports and guard_port_owner. */
struct guard_port_key {
	__u16 port;		/* network order */
	__u8 proto;		/* IPPROTO_TCP / IPPROTO_UDP */
	__u8 _pad;
};

/* guard_clients (LPM_TRIE, written by user space): which clients a rule
 * applies to. prefixlen counts the 32 bits of rule_id plus address bits.
 * Value: 1 = the rule applies, 0 = excepted. */
struct guard_client_key {
	__u32 prefixlen;	/* host order */
	__u32 rule_id;		/* big-endian: the most significant part of the key */
	__u8 addr[16];		/* network order, IPv4 as ::ffff:a.b.c.d */
};

#define GUARD_CLIENT_KEY_BITS (32 + 128)

/*
 * guard_bans and guard_bans_unproven (HASH, key: 16-byte client address,
 * network order, IPv4 v4-mapped; value struct guard_ban). guard_bans holds
 * the bans of clients that proved their address: a TCP trap bans only when
 * the handshake completes (the client answered our SYN-ACK), never on a
 * segment alone. guard_bans_unproven holds the bans of UDP traps whose line
 * says `unproven` (a datagram's source is never proven). Both are plain
 * hashes of bpfwrap run --max-bans entries: nothing is ever evicted; a full
 * map refuses the new ban (GUARD_STAT_BANS_REFUSED), so a flood of unproven
 * sources can neither evict nor crowd out a proven ban. Expired bans are
 * deleted on their next hit and by the agent's sweep. Written by the
 * programs and by `unban`. Times are CLOCK_BOOTTIME nanoseconds
 * (bpf_ktime_get_boot_ns), host order.
 */
struct guard_ban {
	__u64 since_ns;		/* when the ban was made */
	__u64 expires_ns;	/* 0 = until removed */
	__u64 hits;		/* attempts refused while banned, host order */
	__u16 port;		/* trap port that fired, network order */
	__u8 proto;
	__u8 _pad;
	__u32 line;		/* extensions file line of the trap rule */
};

/*
 * Counts. A count lives exactly as long as the programs that keep it: the
 * maps below (guard_dstate, guard_conns, guard_sk) are made by each guard
 * run and never pinned, so they go when the guard's programs go (bpfwrap
 * run without the extensions, detach); a new run recounts the connections
 * still open from guard_accepted (guard_recount_tcp) before it enforces.
 */

/* guard_dstate (HASH struct daemon_key -> this): per-daemon connection
 * count and the cps limiter (GCRA: theoretical arrival time). Written by the
 * programs only. */
struct guard_dstate {
	struct bpf_spin_lock lock;	/* guards tat */
	__u32 _pad;
	__s64 conns;		/* established connections counted by sockops */
	__u64 tat_ns;		/* CLOCK_MONOTONIC, GCRA theoretical arrival time */
};

/* guard_conns (HASH guard_conn_key -> __s64): established connections per
 * (daemon, client). Written by the programs only; an entry is deleted at
 * zero. */
struct guard_conn_key {
	struct daemon_key daemon;
	__u8 addr[16];		/* network order, v4-mapped; masked to the rule's source prefix */
};

/* guard_sk (SK_STORAGE, this run's): what this run counted for a socket, so
 * the TCP_CLOSE callback (connections) or guard_sock_release (bound ports)
 * undoes exactly that. Written by the programs. */
struct guard_sk_state {
	struct daemon_key daemon;
	__u8 addr[16];		/* the key it was counted under in guard_conns */
	struct guard_port_key owned;	/* GUARD_SK_OWNER: its reference in guard_port_owner */
	__u32 _pad;
	__u64 flags;		/* enum guard_sk_flags (64 bits: atomic ops) */
};

enum guard_sk_flags {
	GUARD_SK_SOURCE = 1 << 1,	/* counted in guard_conns */
	GUARD_SK_TOTAL = 1 << 2,	/* counted in guard_dstate.conns */
	GUARD_SK_CLAIMED = 1 << 3,	/* its bound port is being recorded (once) */
	GUARD_SK_OWNER = 1 << 4,	/* holds a reference on guard_port_owner[owned] */
	GUARD_SK_RELEASED = 1 << 5,	/* released by its process (guard_sock_release) */
};

/*
 * guard_port_owner (HASH struct guard_port_key -> this, this run's, never
 * pinned): which daemon has a socket bound to a port, for the namespace hook
 * (it runs before any socket is chosen). A reference per bound socket of
 * that daemon: post_bind (or the owners iterators, for sockets bound
 * earlier) takes one, the socket's release (cgroup/sock_release) drops it,
 * and the entry goes with the last one, so a port a guarded daemon left is
 * nobody's. Another daemon binding the port takes the entry over.
 */
struct guard_owner {
	struct sock_info si;	/* the binding socket's owner (sk_info) */
	__s64 refs;		/* bound sockets of si.daemon on the port */
};

/* guard_accepted (SK_STORAGE, pinned: it outlives a run): facts about a
 * socket, not counts. Written by sockops. */
enum guard_accepted_flags {
	GUARD_ACC_PASSIVE = 1 << 0,	/* accepted by a service of the cgroups: counted,
					 * recounted by a later run, revocable */
	GUARD_ACC_TRAPPED = 1 << 1,	/* a trap daemon's connection: its client is banned,
					 * guard_revoke_tcp closes it */
};

/* guard_stats (PERCPU_ARRAY of __u64, written by the programs). */
enum guard_stat {
	GUARD_STAT_BANNED,	/* attempts refused because the client is banned */
	GUARD_STAT_TRAPS,	/* proven trap hits: bans made or renewed after a handshake */
	GUARD_STAT_PER_SOURCE,	/* refused by per_source */
	GUARD_STAT_INSTANCES,	/* refused by instances */
	GUARD_STAT_CPS,		/* refused by cps */
	GUARD_STAT_REJECTED,	/* policy denials answered with RST / ICMP */
	GUARD_STAT_REVOKED,	/* established connections closed */
	GUARD_STAT_MAP_FULL,	/* a counter could not be stored */
	GUARD_STAT_TRAP_PACKETS,	/* segments and datagrams to a trap, before any proof
					 * (a handshake's SYN, forged SYNs, ACKs, RSTs ...);
					 * none of them bans by itself */
	GUARD_STAT_BANS_REFUSED,	/* a ban not stored: its map is full */
	GUARD_STAT_UNPROVEN_BANS,	/* bans made by `unproven` UDP traps */
	GUARD_STAT_MAX,
};

/* guard_trap_sk (SOCKMAP, written by user/kernel/guard.c): the agent's own
 * listening sockets (loopback, port 0) that trap connections are steered
 * to, so that the handshake completes with bpfwrap and never with a
 * service; the agent accepts and bans (guard_trap_proven). Absent: a trap
 * attempt is refused (RST) and bans nobody. */
enum guard_trap_sk_slot {
	GUARD_TRAP_SK_V4,	/* AF_INET listener */
	GUARD_TRAP_SK_V6,	/* AF_INET6 listener (IPV6_V6ONLY) */
	GUARD_TRAP_SK_MAX,
};

/* guard_events (RINGBUF, written by the programs, read by user/kernel/guard.c):
 * trap hits, so user space logs them and revokes the new ban's connections. */
struct guard_event {
	__u64 time_ns;		/* CLOCK_MONOTONIC */
	__u32 reason;		/* GUARD_R_* */
	__u32 line;		/* extensions file line */
	__u32 limit;		/* the limit that fired, or ban seconds */
	__u16 port;		/* server port, network order */
	__u8 proto;
	__u8 flags;		/* enum guard_event_flags */
	__u8 addr[16];		/* client, network order, v4-mapped */
	char daemon[BPFWRAP_DAEMON_NAME_MAX];
};

enum guard_event_flags {
	GUARD_EV_CLOSE = 1 << 0,	/* a trap daemon's connection waits for guard_revoke_tcp */
};

/* Records the revoke iterators write (bpf_seq_write), one per connection
 * closed: the user side logs them. */
struct guard_revoked {
	__u8 laddr[16];		/* network order, v4-mapped for IPv4 */
	__u8 raddr[16];
	__u16 lport;		/* host order */
	__u16 rport;		/* host order */
	__u32 reason;		/* GUARD_R_TRAP, GUARD_R_BANNED or BPFWRAP_R_POLICY / BPFWRAP_R_CACHE */
	__u32 rule_id;		/* policy rule that denies (0 for a ban) */
	__s32 err;		/* bpf_sock_destroy() result */
	char daemon[BPFWRAP_DAEMON_NAME_MAX];
};

#endif /* BPFWRAP_GUARD_H */
