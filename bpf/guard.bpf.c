// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * guard.bpf.c - bpfwrap's extensions beyond tcpd, decided in the kernel next
 * to the policy program (bpfwrap.bpf.c), attached alongside it with
 * BPF_F_ALLOW_MULTI (every program must pass a packet for it to pass):
 *
 *   guard_ingress     cgroup_skb/ingress: a new flow to a service of the
 *                     cgroup from a banned client is dropped; per_source /
 *                     instances / cps refuse a TCP SYN over the limit; a
 *                     UDP datagram to a trap service is dropped (and bans
 *                     with `unproven`).
 *   guard_lookup      sk_lookup, per network namespace: sees every lookup,
 *                     closed ports included. A TCP attempt on a trap (port,
 *                     or daemon) is steered to the agent's own listener
 *                     (guard_trap_sk): the handshake completes with bpfwrap,
 *                     which bans only then (guard_trap_proven); a forged
 *                     SYN, ACK, RST, FIN or SYN-ACK bans nobody. In reject
 *                     mode a policy DENY, a ban or a limit is answered with
 *                     SK_DROP, i.e. an immediate RST (TCP) or ICMP port
 *                     unreachable (UDP) instead of a timeout.
 *   guard_trap_proven sk_lookup, never attached: run by the agent (test run)
 *                     for each trap connection it accepted; makes the ban.
 *   guard_sockops     sockops: counts established connections per (daemon,
 *                     client) and per daemon from PASSIVE_ESTABLISHED to the
 *                     TCP_CLOSE state callback; a completed handshake with a
 *                     trap daemon the namespace hook did not steer bans here.
 *   guard_post_bind4/6  cgroup/post_bind: which daemon owns a bound port
 *                     (sk_lookup runs before any socket is chosen).
 *   guard_sock_release  cgroup/sock_release: the port is nobody's once the
 *                     last socket of its daemon bound there is gone.
 *   guard_owners_tcp/udp  iter: the same for sockets bound before bpfwrap.
 *   guard_recount_tcp iter/tcp: at start, counts the connections still open
 *                     that an earlier run counted (its counts died with it).
 *   guard_revoke_tcp  iter/tcp: closes (bpf_sock_destroy) a trap daemon's
 *                     connections, and with --revoke the established
 *                     connections accepted by a service whose client is now
 *                     banned or denied by the policy in force.
 *
 * The policy maps of bpfwrap.bpf.c (maps.bpf.h) are shared: user space
 * reuses their pinned instances before load (bpf_map__reuse_fd through pin
 * paths), so decide() here reads exactly the policy the ingress program
 * enforces, and events go to the agent's ring buffer.
 *
 * Errors: nothing here fails open against the policy. A full ban map
 * refuses the new ban (GUARD_STAT_BANS_REFUSED; bans in force are never
 * evicted); a full counter map leaves a connection uncounted
 * (GUARD_STAT_MAP_FULL); a lost event is counted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bpfwrap.h"
#include "bpfwrap_guard.h"
#include "maps.bpf.h"
#include "decide.bpf.h"
#include "owner.bpf.h"

#define SK_DROP 0
#define SK_PASS 1
#define NSEC_PER_SEC 1000000000ull
/* TCP states (include/net/tcp_states.h) */
#define TCP_STATE_ESTABLISHED 1
#define TCP_STATE_FIN_WAIT1 4
#define TCP_STATE_FIN_WAIT2 5
#define TCP_STATE_CLOSE_WAIT 8
#define TCP_STATE_LAST_ACK 9
#define TCP_STATE_LISTEN 10
#define TCP_STATE_CLOSING 11

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space before load: deny with RST/ICMP unless a rule says drop. */
const volatile bool reject_all = false;
/* Set by user space before load (--revoke): guard_revoke_tcp closes the
 * connections of banned or denied clients, not only trapped ones. */
const volatile bool revoke_all = false;

/* bpf_sock_destroy - kfunc (kernel 6.5+), callable from iter/tcp and iter/udp only */
extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

/* guard_rules[id]: extension rules (struct guard_rule). Written by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GUARD_RULES_MAX);
	__type(key, __u32);
	__type(value, struct guard_rule);
} guard_rules SEC(".maps");

/* guard_daemons: daemon name (lower-case) -> its rule list; the zero key
 * holds the list of ALL lines. Written by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GUARD_DAEMONS_MAX);
	__type(key, struct daemon_key);
	__type(value, struct guard_list);
} guard_daemons SEC(".maps");

/* guard_ports: trap port -> rule list. Written by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GUARD_PORTS_MAX);
	__type(key, struct guard_port_key);
	__type(value, struct guard_list);
} guard_ports SEC(".maps");

/* guard_trap_ports: a bit per port with a guard_ports list. User space. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GUARD_PORT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} guard_trap_ports SEC(".maps");

/* guard_flags: enum guard_flag, nonzero if such entries may exist. Bans by
 * the programs (and user space at start), the rest by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GUARD_FLAG_MAX);
	__type(key, __u32);
	__type(value, __u32);
} guard_flags SEC(".maps");

/* guard_clients: (rule id, client prefix) -> 1 applies / 0 excepted. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GUARD_CLIENTS_MAX);
	__type(key, struct guard_client_key);
	__type(value, __u8);
} guard_clients SEC(".maps");

/* guard_bans: client (16 bytes, v4-mapped) -> struct guard_ban, the bans of
 * clients that proved their address (include/bpfwrap_guard.h); and
 * guard_bans_unproven, those of `unproven` UDP traps. Written by the
 * programs and by `bpfwrap unban`. Plain hashes sized by user space
 * (--max-bans): full, they refuse a new ban and evict none; the policy maps
 * are separate and never touched. */
struct guard_addr {
	__u8 a[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GUARD_BANS_MAX);
	__type(key, struct guard_addr);
	__type(value, struct guard_ban);
} guard_bans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GUARD_BANS_MAX);
	__type(key, struct guard_addr);
	__type(value, struct guard_ban);
} guard_bans_unproven SEC(".maps");

/* guard_trap_sk: enum guard_trap_sk_slot -> the agent's trap listener.
 * Written by user space; a socket leaves it when the agent closes it. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, GUARD_TRAP_SK_MAX);
	__type(key, __u32);
	__type(value, __u64);
} guard_trap_sk SEC(".maps");

/* The counts (include/bpfwrap_guard.h, "Counts"): guard_dstate, guard_conns
 * and guard_sk belong to one run of the programs: user space never pins them. */

/* guard_dstate: daemon -> connection count and cps state. Programs only. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GUARD_DAEMONS_MAX);
	__type(key, struct daemon_key);
	__type(value, struct guard_dstate);
} guard_dstate SEC(".maps");

/* guard_conns: (daemon, client) -> established connections. sockops only. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GUARD_CONNS_MAX);
	__type(key, struct guard_conn_key);
	__type(value, __s64);
} guard_conns SEC(".maps");

/* guard_sk: per socket, what this run counted for it. Programs only. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct guard_sk_state);
} guard_sk SEC(".maps");

/* guard_accepted: per accepted socket, enum guard_accepted_flags; pinned, so a
 * later run knows which open connections to recount and may revoke. sockops. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32);
} guard_accepted SEC(".maps");

/* guard_port_owner: bound (port, proto) -> the daemon bound there and how many
 * of its sockets are (include/bpfwrap_guard.h). Written by post_bind, the
 * owners iterators (user space runs them) and guard_sock_release; this
 * run's, never pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GUARD_OWNERS_MAX);
	__type(key, struct guard_port_key);
	__type(value, struct guard_owner);
} guard_port_owner SEC(".maps");

/* guard_stats: enum guard_stat counters. Programs only. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GUARD_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} guard_stats SEC(".maps");

/* guard_events: struct guard_event for user/kernel/guard.c (trap hits, limits). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} guard_events SEC(".maps");

/* gstat_inc - add one to a guard counter */
static __always_inline void gstat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&guard_stats, &idx);

	if (v)
		*v += 1;
}

/* gflag - a guard_flags value (an inlined array load, no hash) */
static __always_inline bool gflag(__u32 idx)
{
	__u32 *v = bpf_map_lookup_elem(&guard_flags, &idx);

	return v && READ_ONCE(*v);
}

/* trap_port - the port (network order) may have a guard_ports list */
static __always_inline bool trap_port(__u16 port_be, __u8 proto)
{
	__u16 port = bpf_ntohs(port_be);
	__u32 w = GUARD_PORT_WORD(port, proto);
	__u64 *v = bpf_map_lookup_elem(&guard_trap_ports, &w);

	return v && (READ_ONCE(*v) & GUARD_PORT_BIT(port));
}

/* to_addr16 - a client address as 16 bytes, IPv4 as ::ffff:a.b.c.d */
static __always_inline void to_addr16(struct guard_addr *out, __u8 family, const __u8 *addr)
{
	__builtin_memset(out, 0, sizeof(*out));
	if (family == BPFWRAP_AF_INET) {
		out->a[10] = 0xff;
		out->a[11] = 0xff;
		__builtin_memcpy(&out->a[12], addr, 4);
	} else {
		__builtin_memcpy(out->a, addr, 16);
	}
}

/* ban_in - the client has a ban in force in one ban map; counts a hit if count */
static __always_inline bool ban_in(void *map, struct guard_addr *addr, bool count)
{
	struct guard_ban *b = bpf_map_lookup_elem(map, addr);
	__u64 exp;

	if (!b)
		return false;
	exp = READ_ONCE(b->expires_ns);
	if (exp && exp <= bpf_ktime_get_boot_ns()) {
		bpf_map_delete_elem(map, addr);
		return false;
	}
	if (count)
		__sync_fetch_and_add(&b->hits, 1);
	return true;
}

/* is_banned - the client has a ban in force (proven or unproven); counts a hit if count */
static __always_inline bool is_banned(struct guard_addr *addr, bool count)
{
	if (gflag(GUARD_FLAG_BANS) && ban_in(&guard_bans, addr, count))
		return true;
	return gflag(GUARD_FLAG_UNPROVEN_BANS) && ban_in(&guard_bans_unproven, addr, count);
}

/* flag_raise - set a guard_flags value to 1 (before the entry it announces exists) */
static __always_inline void flag_raise(__u32 idx)
{
	__u32 *f = bpf_map_lookup_elem(&guard_flags, &idx);

	if (f && !READ_ONCE(*f))
		WRITE_ONCE(*f, 1);
}

/*
 * ban_add - ban a client for the trap rule's time (extending a ban in force).
 * proven: the client completed a handshake (guard_bans); else an `unproven`
 * UDP trap (guard_bans_unproven). A full map refuses the ban, counted.
 */
static __always_inline void ban_add(struct guard_addr *addr, const struct guard_rule *r,
				    __u16 port, __u8 proto, bool proven)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 exp = r->deny_s ? now + (__u64)r->deny_s * NSEC_PER_SEC : 0;
	struct guard_ban nb = {}, *b;
	void *map = proven ? (void *)&guard_bans : (void *)&guard_bans_unproven;

	gstat_inc(proven ? GUARD_STAT_TRAPS : GUARD_STAT_UNPROVEN_BANS);
	/* the flag before the ban exists: readers then look it up */
	flag_raise(proven ? GUARD_FLAG_BANS : GUARD_FLAG_UNPROVEN_BANS);
	b = bpf_map_lookup_elem(map, addr);
	if (b) {
		__u64 old = READ_ONCE(b->expires_ns);

		if (old && (!exp || exp > old))
			b->expires_ns = exp;
		__sync_fetch_and_add(&b->hits, 1);
		return;
	}
	nb.since_ns = now;
	nb.expires_ns = exp;
	nb.port = port;
	nb.proto = proto;
	nb.line = r->line;
	if (bpf_map_update_elem(map, addr, &nb, BPF_NOEXIST) && !bpf_map_lookup_elem(map, addr))
		gstat_inc(GUARD_STAT_BANS_REFUSED);
}

/* guard_event_send_flags - one record for user/kernel/guard.c */
static __always_inline void guard_event_send_flags(__u32 reason, const struct guard_rule *r,
						   __u32 limit, const struct guard_addr *addr,
						   __u16 port, __u8 proto,
						   const struct daemon_key *dk, __u8 flags)
{
	struct guard_event *ev = bpf_ringbuf_reserve(&guard_events, sizeof(*ev), 0);

	if (!ev) {
		stat_inc(BPFWRAP_STAT_EVENTS_LOST, false);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->time_ns = bpf_ktime_get_ns();
	ev->reason = reason;
	ev->line = r ? r->line : 0;
	ev->limit = limit;
	ev->port = port;
	ev->proto = proto;
	ev->flags = flags;
	__builtin_memcpy(ev->addr, addr->a, 16);
	if (dk)
		__builtin_memcpy(ev->daemon, dk->name, sizeof(ev->daemon));
	bpf_ringbuf_submit(ev, 0);
}

/* guard_event_send - one record for user/kernel/guard.c */
static __always_inline void guard_event_send(__u32 reason, const struct guard_rule *r, __u32 limit,
					     const struct guard_addr *addr, __u16 port, __u8 proto,
					     const struct daemon_key *dk)
{
	guard_event_send_flags(reason, r, limit, addr, port, proto, dk, 0);
}

/* guard_match - the first rule of a list that applies to the client, 0 none */
static __always_inline __u32 guard_match(const struct guard_list *l, const struct guard_addr *addr)
{
	struct guard_client_key k = { .prefixlen = GUARD_CLIENT_KEY_BITS };
	__u32 n = l->n;

	__builtin_memcpy(k.addr, addr->a, 16);
	for (__u32 i = 0; i < GUARD_LIST_MAX; i++) {
		__u8 *v;

		if (i >= n)
			break;
		k.rule_id = bpf_htonl(l->rule[i]);
		v = bpf_map_lookup_elem(&guard_clients, &k);
		if (v && *v)
			return l->rule[i];
	}
	return 0;
}

/* daemon_rule - the extension rule for (daemon, client), NULL if none */
static __always_inline const struct guard_rule *daemon_rule(const struct daemon_key *dk,
							    const struct guard_addr *addr)
{
	struct guard_list *l;
	struct daemon_key zero = {};
	__u32 id;

	if (!gflag(GUARD_FLAG_DAEMONS))
		return NULL;
	l = bpf_map_lookup_elem(&guard_daemons, dk);
	if (!l && gflag(GUARD_FLAG_ALL))
		l = bpf_map_lookup_elem(&guard_daemons, &zero);
	if (!l)
		return NULL;
	id = guard_match(l, addr);
	return id ? bpf_map_lookup_elem(&guard_rules, &id) : NULL;
}

/* port_rule - the extension rule of a trap port for the client, NULL if none */
static __always_inline const struct guard_rule *port_rule(const struct guard_port_key *pk,
							  const struct guard_addr *addr)
{
	struct guard_list *l;
	__u32 id;

	if (!trap_port(pk->port, pk->proto))
		return NULL;
	l = bpf_map_lookup_elem(&guard_ports, pk);
	if (!l)
		return NULL;
	id = guard_match(l, addr);
	return id ? bpf_map_lookup_elem(&guard_rules, &id) : NULL;
}

/* source_mask - cut a client address (16 bytes, v4-mapped) to the rule's
 * per_source prefix for its family (r NULL: the defaults), in place */
static __always_inline void source_mask(__u8 *a, const struct guard_rule *r)
{
	__u32 len;

	if (is_v4_mapped(a))
		len = 96 + (r && r->src_plen4 ? r->src_plen4 : GUARD_SRC_PLEN4_DEFAULT);
	else
		len = r && r->src_plen6 ? r->src_plen6 : GUARD_SRC_PLEN6_DEFAULT;
	for (__u32 i = 0; i < 16; i++) {
		if (len >= i * 8 + 8)
			continue;
		a[i] &= len > i * 8 ? (__u8)(0xff << (8 - (len - i * 8))) : 0;
	}
}

/* dstate_get - a daemon's limiter state, created on first use */
static __always_inline struct guard_dstate *dstate_get(const struct daemon_key *dk)
{
	struct guard_dstate *ds = bpf_map_lookup_elem(&guard_dstate, dk);
	struct guard_dstate init = {};

	if (ds)
		return ds;
	bpf_map_update_elem(&guard_dstate, dk, &init, BPF_NOEXIST);
	ds = bpf_map_lookup_elem(&guard_dstate, dk);
	if (!ds)
		gstat_inc(GUARD_STAT_MAP_FULL);
	return ds;
}

/*
 * limit_check - which limit refuses a new TCP connection of daemon dk from
 * addr: GUARD_R_* or 0. consume: take a cps token when allowed (the cgroup
 * hook, which sees each SYN once); sk_lookup only looks. cps: check the
 * rate too (not on the ACK that completes a handshake: its SYN was rated).
 */
static __always_inline __u32 limit_check(const struct guard_rule *r, const struct daemon_key *dk,
					 const struct guard_addr *addr, bool consume, bool cps,
					 __u32 *limit)
{
	struct guard_dstate *ds;

	if (r->flags & GUARD_F_PER_SOURCE) {
		struct guard_conn_key ck;
		__s64 *n;

		__builtin_memcpy(&ck.daemon, dk, sizeof(ck.daemon));
		__builtin_memcpy(ck.addr, addr->a, 16);
		source_mask(ck.addr, r);
		n = bpf_map_lookup_elem(&guard_conns, &ck);
		if (n && READ_ONCE(*n) >= (__s64)r->per_source) {
			*limit = r->per_source;
			return GUARD_R_PER_SOURCE;
		}
	}
	if (!(r->flags & (GUARD_F_INSTANCES | GUARD_F_CPS)))
		return 0;
	ds = dstate_get(dk);
	if (!ds)
		return 0;
	if ((r->flags & GUARD_F_INSTANCES) && READ_ONCE(ds->conns) >= (__s64)r->instances) {
		*limit = r->instances;
		return GUARD_R_INSTANCES;
	}
	if (cps && (r->flags & GUARD_F_CPS) && r->cps_rate) {
		/* GCRA: one token per 1/rate s, up to burst at once. */
		__u64 interval = NSEC_PER_SEC / r->cps_rate;
		__u64 tol = interval * (r->cps_burst > 1 ? r->cps_burst - 1 : 0);
		__u64 now = bpf_ktime_get_ns(), tat;
		bool refuse;

		bpf_spin_lock(&ds->lock);
		tat = ds->tat_ns > now ? ds->tat_ns : now;
		refuse = tat - now > tol;
		if (!refuse && consume)
			ds->tat_ns = tat + interval;
		bpf_spin_unlock(&ds->lock);
		if (refuse) {
			*limit = r->cps_rate;
			return GUARD_R_CPS;
		}
	}
	return 0;
}

/* stat_of - the guard counter of a refusal reason */
static __always_inline __u32 stat_of(__u32 reason)
{
	switch (reason) {
	case GUARD_R_PER_SOURCE:
		return GUARD_STAT_PER_SOURCE;
	case GUARD_R_INSTANCES:
		return GUARD_STAT_INSTANCES;
	case GUARD_R_CPS:
		return GUARD_STAT_CPS;
	case GUARD_R_REJECT:
		return GUARD_STAT_REJECTED;
	default:
		return GUARD_STAT_BANNED;
	}
}

/* deny_event - a DENY event for the agent (logged as "refused connect"); false
 * if not sent (the flow had one within dedup_ns, or the ring buffer is full) */
static __always_inline bool deny_event(__u32 reason, const struct sock_view *sv,
				       const struct pkt *p, struct decision *d)
{
	__u32 zero = 0;
	struct active_gen *ag = bpf_map_lookup_elem(&active, &zero);

	if (reason) {
		/* a guard refusal: no policy rule decided it */
		__builtin_memset(d, 0, sizeof(*d));
		d->reason = reason;
		d->generation = ag ? ag->generation : 0;
	}
	d->final = BPFWRAP_DENY;
	return emit_event(BPFWRAP_EV_DENY, d, sv, p, true);
}

/* udp_trap - a datagram hit a trap: its source is not proven, so it bans only
 * on a line that says `unproven` (guard_bans_unproven) */
static __always_inline void udp_trap(const struct guard_rule *r, struct guard_addr *addr,
				     __u16 port, const struct daemon_key *dk)
{
	if (!(r->flags & GUARD_F_UNPROVEN))
		return;
	ban_add(addr, r, port, IPPROTO_UDP, false);
	guard_event_send(GUARD_R_TRAP_UNPROVEN, r, r->deny_s, addr, port, IPPROTO_UDP, dk);
}

/*
 * handshake_check - an ACK (no SYN, no RST) to a listening socket: the
 * segment that completes a handshake (or a syncookie one), which the kernel
 * hands to the listener's filters before it makes the connection. The
 * limits are checked again here: the SYN was checked against the
 * connections established then, and a client that holds its handshakes
 * (ten SYNs, the ACKs later) would pass them all. Over the limit the ACK
 * is dropped: the connection is not made, the server's SYN-ACK
 * retransmissions let a later ACK complete it once the count allows, or
 * the half-open connection times out. cps is not checked again (its SYN
 * was rated). A stray ACK is dropped over the limit too (the kernel would
 * have answered it with an RST).
 */
static __always_inline int handshake_check(struct bpf_sock *sk, struct sock_view *sv,
					   const struct pkt *p, struct decision *d,
					   struct guard_addr *addr, const struct daemon_key *zero)
{
	const struct daemon_key *dk;
	const struct guard_rule *r;
	__u32 reason, limit = 0;

	if (!gflag(GUARD_FLAG_DAEMONS))
		return 1;
	if (!sock_owner(sk, &sv->owner))
		return 1;
	to_addr16(addr, p->family, p->saddr);
	dk = sv->owner ? &sv->owner->daemon : zero;
	r = daemon_rule(dk, addr);
	if (!r || !(r->flags & (GUARD_F_PER_SOURCE | GUARD_F_INSTANCES)))
		return 1;
	reason = limit_check(r, dk, addr, false, false, &limit);
	if (!reason)
		return 1;
	gstat_inc(stat_of(reason));
	if (deny_event(reason, sv, p, d))
		guard_event_send(reason, r, limit, addr, p->dport, p->proto, dk);
	return 0;
}

/* guard_ingress - bans, trap services and limits for a new flow to a service */
SEC("cgroup_skb/ingress")
int guard_ingress(struct __sk_buff *skb)
{
	struct decision d = {};
	struct sock_view sv = {};
	struct daemon_key zero = {};
	const struct daemon_key *dk;
	const struct guard_rule *r;
	struct guard_addr addr;
	struct bpf_sock *sk;
	struct pkt p = {};
	__u32 reason, limit = 0;

	sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	sv.state = sk->state;
	sv.protocol = sk->protocol;
	sv.family = sk->family;
	if (sv.protocol == IPPROTO_TCP) {
		if (sv.state != BPF_TCP_LISTEN)
			return 1;
	} else if (sv.protocol != IPPROTO_UDP || sv.state == BPF_TCP_ESTABLISHED) {
		return 1;
	}
	if (!gflag(GUARD_FLAG_BANS) && !gflag(GUARD_FLAG_UNPROVEN_BANS) && !gflag(GUARD_FLAG_DAEMONS))
		return 1;	/* no ban and no daemon rule: nothing here can refuse */
	/* unparseable packets are the policy program's to drop */
	if (parse_packet(skb, &p) < 0 || p.proto != sv.protocol)
		return 1;
	if (p.proto == IPPROTO_TCP) {
		__u8 f = p.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST);

		if (f == TCP_FLAG_ACK)
			return handshake_check(sk, &sv, &p, &d, &addr, &zero);
		if (f != TCP_FLAG_SYN)
			return 1;
	}
	if (!sock_owner(sk, &sv.owner))
		return 1;	/* not a guarded service's socket */
	to_addr16(&addr, p.family, p.saddr);

	if (is_banned(&addr, true)) {
		gstat_inc(GUARD_STAT_BANNED);
		deny_event(GUARD_R_BANNED, &sv, &p, &d);
		return 0;
	}
	dk = sv.owner ? &sv.owner->daemon : &zero;
	r = daemon_rule(dk, &addr);
	if (!r)
		return 1;
	if (r->flags & GUARD_F_TRAP) {
		gstat_inc(GUARD_STAT_TRAP_PACKETS);
		if (p.proto == IPPROTO_TCP)
			return 1;	/* only a completed handshake bans: guard_sockops */
		udp_trap(r, &addr, p.dport, dk);
		deny_event(GUARD_R_TRAP, &sv, &p, &d);
		return 0;
	}
	if (p.proto != IPPROTO_TCP ||
	    !(r->flags & (GUARD_F_PER_SOURCE | GUARD_F_INSTANCES | GUARD_F_CPS)))
		return 1;
	if (r->flags & GUARD_F_CPS) {
		/* a client the policy denies must not spend the service's rate */
		const __u8 *client = p.saddr;
		__u8 fam = p.family;

		if (fam == BPFWRAP_AF_INET6 && is_v4_mapped(p.saddr)) {
			fam = BPFWRAP_AF_INET;
			client = &p.saddr[12];
		}
		decide(sv.owner, fam, client, false, true, &d);
		if (d.final != BPFWRAP_ALLOW)
			return 1;
	}
	reason = limit_check(r, dk, &addr, true, true, &limit);
	if (!reason)
		return 1;
	gstat_inc(stat_of(reason));
	/* one log line per flow per dedup_ns, like the policy's denials */
	if (deny_event(reason, &sv, &p, &d))
		guard_event_send(reason, r, limit, &addr, p.dport, p.proto, dk);
	return 0;
}

/* lookup_pkt - the packet view of an sk_lookup context (for events) */
static __always_inline void lookup_pkt(struct bpf_sk_lookup *ctx, struct pkt *p)
{
	p->proto = ctx->protocol;
	p->sport = ctx->remote_port;
	p->dport = bpf_htons((__u16)ctx->local_port);
	if (ctx->family == BPFWRAP_AF_INET) {
		__u32 r = ctx->remote_ip4, l = ctx->local_ip4;

		p->family = BPFWRAP_AF_INET;
		__builtin_memcpy(p->saddr, &r, 4);
		__builtin_memcpy(p->daddr, &l, 4);
	} else {
		__u32 r[4], l[4];

		r[0] = ctx->remote_ip6[0];
		r[1] = ctx->remote_ip6[1];
		r[2] = ctx->remote_ip6[2];
		r[3] = ctx->remote_ip6[3];
		l[0] = ctx->local_ip6[0];
		l[1] = ctx->local_ip6[1];
		l[2] = ctx->local_ip6[2];
		l[3] = ctx->local_ip6[3];
		p->family = BPFWRAP_AF_INET6;
		__builtin_memcpy(p->saddr, r, 16);
		__builtin_memcpy(p->daddr, l, 16);
	}
}

/*
 * trap_steer - give a TCP packet to the agent's trap listener, whatever it
 * is (SYN, ACK, RST, FIN, SYN-ACK): the kernel then answers it as any
 * listener does, and only a real handshake reaches accept(). SK_PASS with
 * the listener selected, or SK_DROP (no listener: RST, nobody banned).
 */
static __always_inline int trap_steer(struct bpf_sk_lookup *ctx)
{
	__u32 k = ctx->family == BPFWRAP_AF_INET6 ? GUARD_TRAP_SK_V6 : GUARD_TRAP_SK_V4;
	struct bpf_sock *sk = bpf_map_lookup_elem(&guard_trap_sk, &k);
	long err;

	if (!sk)
		return SK_DROP;
	err = bpf_sk_assign(ctx, sk, BPF_SK_LOOKUP_F_REPLACE);
	bpf_sk_release(sk);
	return err ? SK_DROP : SK_PASS;
}

/* trap_lookup - an attempt on a trap (port, or a daemon's port dk): TCP to
 * the trap listener, UDP dropped (banning only with `unproven`) */
static __always_inline int trap_lookup(struct bpf_sk_lookup *ctx, const struct guard_rule *r,
				       struct guard_addr *addr, const struct guard_port_key *pk,
				       const struct daemon_key *dk)
{
	gstat_inc(GUARD_STAT_TRAP_PACKETS);
	if (pk->proto == IPPROTO_TCP)
		return trap_steer(ctx);
	udp_trap(r, addr, pk->port, dk);
	return SK_DROP;
}

/*
 * guard_trap_proven - run by the agent (BPF_PROG_TEST_RUN, never attached)
 * for each connection its trap listener accepted: remote_* is the client,
 * local_port the port it connected to. Bans the client under the trap
 * rule of that port, or of the daemon bound there, as guard_lookup found
 * it; SK_PASS if it banned, SK_DROP if no trap rule applies (any more).
 */
SEC("sk_lookup")
int guard_trap_proven(struct bpf_sk_lookup *ctx)
{
	struct guard_port_key pk = {};
	const struct guard_rule *r;
	const struct guard_owner *owner;
	const struct daemon_key *dk = NULL;
	struct guard_addr addr;
	struct pkt p = {};

	if (ctx->protocol != IPPROTO_TCP ||
	    (ctx->family != BPFWRAP_AF_INET && ctx->family != BPFWRAP_AF_INET6))
		return SK_DROP;
	lookup_pkt(ctx, &p);
	to_addr16(&addr, p.family, p.saddr);
	pk.port = p.dport;
	pk.proto = IPPROTO_TCP;
	r = port_rule(&pk, &addr);
	if (!r || !(r->flags & GUARD_F_TRAP)) {
		owner = bpf_map_lookup_elem(&guard_port_owner, &pk);
		if (!owner)
			return SK_DROP;
		dk = &owner->si.daemon;
		r = daemon_rule(dk, &addr);
		if (!r || !(r->flags & GUARD_F_TRAP))
			return SK_DROP;
	}
	ban_add(&addr, r, p.dport, IPPROTO_TCP, true);
	guard_event_send(GUARD_R_TRAP, r, r->deny_s, &addr, p.dport, IPPROTO_TCP, dk);
	return SK_PASS;
}

/*
 * guard_lookup - the namespace's view: every TCP packet that matches no
 * established socket and every datagram to an unconnected socket, whether
 * a socket listens on the port or not. SK_DROP makes the kernel answer as
 * for a closed port (RST, ICMP port unreachable); SK_PASS lets the normal
 * lookup and then the cgroup programs decide.
 */
SEC("sk_lookup")
int guard_lookup(struct bpf_sk_lookup *ctx)
{
	struct guard_port_key pk = {};
	struct decision d = {};
	struct sock_view sv = {};
	const struct guard_rule *r;
	const struct guard_owner *owner;
	struct guard_addr addr;
	struct pkt p = {};
	const __u8 *client;
	__u8 fam;
	__u32 reason, limit = 0;
	bool reject;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return SK_PASS;
	if (ctx->family != BPFWRAP_AF_INET && ctx->family != BPFWRAP_AF_INET6)
		return SK_PASS;
	lookup_pkt(ctx, &p);
	to_addr16(&addr, p.family, p.saddr);
	pk.port = p.dport;
	pk.proto = p.proto;
	sv.family = p.family;
	sv.protocol = p.proto;

	if (is_banned(&addr, reject_all)) {
		if (!reject_all)
			return SK_PASS;	/* a service of ours drops it silently (guard_ingress) */
		gstat_inc(GUARD_STAT_BANNED);
		owner = bpf_map_lookup_elem(&guard_port_owner, &pk);
		sv.owner = owner ? &owner->si : NULL;
		if (owner)
			deny_event(GUARD_R_BANNED, &sv, &p, &d);
		return SK_DROP;
	}
	r = port_rule(&pk, &addr);
	if (r && (r->flags & GUARD_F_TRAP))
		return trap_lookup(ctx, r, &addr, &pk, NULL);
	if (!reject_all && !gflag(GUARD_FLAG_LOOKUP))
		return SK_PASS;	/* no daemon trap or reject rule: nothing to refuse here */
	owner = bpf_map_lookup_elem(&guard_port_owner, &pk);
	sv.owner = owner ? &owner->si : NULL;
	if (!owner)
		return SK_PASS;	/* nothing of ours is bound there */
	r = daemon_rule(&owner->si.daemon, &addr);
	if (r && (r->flags & GUARD_F_TRAP))
		return trap_lookup(ctx, r, &addr, &pk, &owner->si.daemon);
	if (r)
		reject = (r->flags & GUARD_F_REJECT) || (reject_all && !(r->flags & GUARD_F_DROP));
	else
		reject = reject_all;
	if (!reject)
		return SK_PASS;

	fam = p.family;
	client = p.saddr;
	if (fam == BPFWRAP_AF_INET6 && is_v4_mapped(p.saddr)) {
		fam = BPFWRAP_AF_INET;
		client = &p.saddr[12];
	}
	decide(&owner->si, fam, client, false, true, &d);
	if (d.final == BPFWRAP_DENY && d.reason != BPFWRAP_R_NO_MAPS) {
		/* what the ingress program would have counted for this drop */
		__u32 slot = d.generation & 1, rid = d.rule_id;
		void *cnt = bpf_map_lookup_elem(&policy_counters, &slot);
		__u64 *c = cnt ? bpf_map_lookup_elem(cnt, &rid) : NULL;

		if (c)
			__sync_fetch_and_add(c, 1);
		stat_inc(BPFWRAP_STAT_PACKETS, false);
		stat_inc(BPFWRAP_STAT_DENY, false);
		gstat_inc(GUARD_STAT_REJECTED);
		deny_event(0, &sv, &p, &d);
		return SK_DROP;
	}
	if (d.final != BPFWRAP_ALLOW || !r || p.proto != IPPROTO_TCP)
		return SK_PASS;	/* ASK: the ingress program holds the flow for the agent */
	reason = limit_check(r, &owner->si.daemon, &addr, false, true, &limit);
	if (!reason)
		return SK_PASS;
	gstat_inc(stat_of(reason));
	if (deny_event(reason, &sv, &p, &d))
		guard_event_send(reason, r, limit, &addr, p.dport, p.proto, &owner->si.daemon);
	return SK_DROP;
}

/* conn_count - add delta to a (daemon, client) count; delete it at zero */
static __always_inline bool conn_count(const struct guard_sk_state *st, __s64 delta)
{
	struct guard_conn_key ck;
	__s64 *n, zero = 0;

	__builtin_memcpy(&ck.daemon, &st->daemon, sizeof(ck.daemon));
	__builtin_memcpy(ck.addr, st->addr, 16);
	n = bpf_map_lookup_elem(&guard_conns, &ck);
	if (!n && delta > 0) {
		bpf_map_update_elem(&guard_conns, &ck, &zero, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&guard_conns, &ck);
	}
	if (!n)
		return false;
	if (__sync_fetch_and_add(n, delta) + delta <= 0 && delta < 0)
		bpf_map_delete_elem(&guard_conns, &ck);
	return true;
}

/* count_conn - count a connection of st's (daemon, client) in this run's maps;
 * the flags say what was counted (a full map leaves it uncounted, counted) */
static __always_inline void count_conn(struct guard_sk_state *st)
{
	struct guard_dstate *ds;
	__u64 got = 0;

	if (conn_count(st, 1))
		got |= GUARD_SK_SOURCE;
	else
		gstat_inc(GUARD_STAT_MAP_FULL);
	ds = dstate_get(&st->daemon);
	if (ds) {
		__sync_fetch_and_add(&ds->conns, 1);
		got |= GUARD_SK_TOTAL;
	}
	__sync_fetch_and_or(&st->flags, got);
}

/* uncount_conn - undo what count_conn counted for st, once (the flags are
 * claimed atomically) */
static __always_inline void uncount_conn(struct guard_sk_state *st)
{
	__u64 had = __sync_fetch_and_and(&st->flags, ~(__u64)(GUARD_SK_SOURCE | GUARD_SK_TOTAL));
	struct guard_dstate *ds;

	if (had & GUARD_SK_SOURCE)
		conn_count(st, -1);
	if (had & GUARD_SK_TOTAL) {
		ds = bpf_map_lookup_elem(&guard_dstate, &st->daemon);
		if (ds)
			__sync_fetch_and_add(&ds->conns, -1);
	}
}

/* guard_sockops - count accepted connections from establishment to close */
SEC("sockops")
int guard_sockops(struct bpf_sock_ops *skops)
{
	const struct guard_rule *r;
	struct guard_sk_state *st;
	struct bpf_sock *sk = skops->sk;
	__u32 op = skops->op, *acc;

	if (!sk)
		return 1;
	if (op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
		const struct sock_info *owner = bpf_sk_storage_get(&sk_info, sk, 0, 0);
		__u8 raw[16];

		if (!owner)
			return 1;	/* not guarded (accepted sockets inherit sk_info) */
		st = bpf_sk_storage_get(&guard_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		acc = bpf_sk_storage_get(&guard_accepted, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!st || !acc) {
			gstat_inc(GUARD_STAT_MAP_FULL);
			return 1;
		}
		__builtin_memset(st, 0, sizeof(*st));
		__builtin_memcpy(&st->daemon, &owner->daemon, sizeof(st->daemon));
		if (skops->family == BPFWRAP_AF_INET) {
			__u32 a = skops->remote_ip4;

			__builtin_memcpy(raw, &a, 4);
			to_addr16((struct guard_addr *)st->addr, BPFWRAP_AF_INET, raw);
		} else {
			__u32 a[4];

			a[0] = skops->remote_ip6[0];
			a[1] = skops->remote_ip6[1];
			a[2] = skops->remote_ip6[2];
			a[3] = skops->remote_ip6[3];
			__builtin_memcpy(st->addr, a, 16);
		}
		*acc = GUARD_ACC_PASSIVE;
		r = daemon_rule(&st->daemon, (const struct guard_addr *)st->addr);
		if (r && (r->flags & GUARD_F_TRAP)) {
			/* a trap daemon the namespace hook did not steer (no hook in the
			 * root namespace, or no owner known): the client proved its
			 * address; ban it, and guard_revoke_tcp closes this connection */
			__u16 port = bpf_htons((__u16)skops->local_port);

			ban_add((struct guard_addr *)st->addr, r, port, IPPROTO_TCP, true);
			*acc |= GUARD_ACC_TRAPPED;
			guard_event_send_flags(GUARD_R_TRAP, r, r->deny_s,
					       (const struct guard_addr *)st->addr, port, IPPROTO_TCP,
					       &st->daemon, GUARD_EV_CLOSE);
			return 1;
		}
		source_mask(st->addr, r);
		count_conn(st);
		/* the close callback, also for a later run that recounts this socket */
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						 BPF_SOCK_OPS_STATE_CB_FLAG);
		return 1;
	}
	if (op != BPF_SOCK_OPS_STATE_CB || skops->args[1] != BPF_TCP_CLOSE)
		return 1;
	st = bpf_sk_storage_get(&guard_sk, sk, 0, 0);
	if (st)
		uncount_conn(st);
	return 1;
}

/* counted_state - a TCP state in which an accepted connection counts: from
 * established until TCP_CLOSE (as sockops counts it) */
static __always_inline bool counted_state(int state)
{
	return state == TCP_STATE_ESTABLISHED || state == TCP_STATE_FIN_WAIT1 ||
	       state == TCP_STATE_FIN_WAIT2 || state == TCP_STATE_CLOSE_WAIT ||
	       state == TCP_STATE_LAST_ACK || state == TCP_STATE_CLOSING;
}

/* skc_client - a socket's peer as 16 bytes (v4-mapped) into addr; its family */
static __always_inline __u8 skc_client(struct sock_common *skc, struct guard_addr *addr)
{
	__u8 raw[16];

	if (skc->skc_family == BPFWRAP_AF_INET) {
		__u32 a = skc->skc_daddr;

		__builtin_memcpy(raw, &a, 4);
		to_addr16(addr, BPFWRAP_AF_INET, raw);
		return BPFWRAP_AF_INET;
	}
	__builtin_memcpy(raw, skc->skc_v6_daddr.in6_u.u6_addr8, 16);
	to_addr16(addr, BPFWRAP_AF_INET6, raw);
	return BPFWRAP_AF_INET6;
}

/*
 * guard_recount_tcp - run once by user space when the guard starts, after its
 * programs are attached: count each open connection that a service accepted
 * (guard_accepted) and this run has not counted yet (accepted before it
 * started). The iterator holds the socket's lock, as the state callback
 * does, so a connection closing meanwhile is either seen closed here or
 * uncounted there. The close callback was enabled by the run that accepted it.
 */
SEC("iter/tcp")
int guard_recount_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	const struct sock_info *owner;
	struct guard_sk_state *st;
	struct guard_addr addr;
	struct tcp_sock *tp;
	struct sock *sk;
	__u32 *acc;

	if (!skc || !counted_state(skc->skc_state))
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	sk = (struct sock *)tp;
	acc = bpf_sk_storage_get(&guard_accepted, sk, 0, 0);
	if (!acc || (*acc & (GUARD_ACC_PASSIVE | GUARD_ACC_TRAPPED)) != GUARD_ACC_PASSIVE)
		return 0;
	owner = bpf_sk_storage_get(&sk_info, sk, 0, 0);
	if (!owner)
		return 0;
	st = bpf_sk_storage_get(&guard_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st || (st->flags & (GUARD_SK_SOURCE | GUARD_SK_TOTAL)))
		return 0;	/* this run's sockops counted it */
	__builtin_memcpy(&st->daemon, &owner->daemon, sizeof(st->daemon));
	skc_client(skc, &addr);
	__builtin_memcpy(st->addr, addr.a, 16);
	source_mask(st->addr, daemon_rule(&st->daemon, &addr));
	count_conn(st);
	return 0;
}

/* same_daemon - two daemon keys are equal (word by word: no memcmp in BPF) */
static __always_inline bool same_daemon(const struct daemon_key *a, const struct daemon_key *b)
{
	const __u64 *x = (const __u64 *)a->name, *y = (const __u64 *)b->name;

	for (int i = 0; i < BPFWRAP_DAEMON_NAME_MAX / 8; i++)
		if (x[i] != y[i])
			return false;
	return true;
}

/* owner_ref - one more bound socket of si's daemon on pk (an entry of another
 * daemon is taken over: the last binder's name wins); false if not stored */
static __always_inline bool owner_ref(const struct guard_port_key *pk, const struct sock_info *si)
{
	struct guard_owner *o = bpf_map_lookup_elem(&guard_port_owner, pk);
	struct guard_owner no = {};

	if (o && same_daemon(&o->si.daemon, &si->daemon)) {
		__sync_fetch_and_add(&o->refs, 1);
		return true;
	}
	__builtin_memcpy(&no.si, si, sizeof(no.si));
	no.refs = 1;
	if (bpf_map_update_elem(&guard_port_owner, pk, &no, BPF_ANY)) {
		gstat_inc(GUARD_STAT_MAP_FULL);
		return false;
	}
	return true;
}

/* owner_drop - drop st's reference on its port's entry, once (the flag is
 * claimed atomically); the last one removes the entry */
static __always_inline void owner_drop(struct guard_sk_state *st)
{
	__u64 had = __sync_fetch_and_and(&st->flags, ~(__u64)GUARD_SK_OWNER);
	struct guard_owner *o;

	if (!(had & GUARD_SK_OWNER))
		return;
	o = bpf_map_lookup_elem(&guard_port_owner, &st->owned);
	if (!o || !same_daemon(&o->si.daemon, &st->daemon))
		return;	/* another daemon took the port over */
	if (__sync_fetch_and_add(&o->refs, -1) <= 1)
		bpf_map_delete_elem(&guard_port_owner, &st->owned);
}

/*
 * owner_take - record that st's socket (owner si) is bound to pk, once: by
 * post_bind, or by an owners iterator for a socket bound earlier (whichever
 * claims it first). A socket an iterator finds may be released at the same
 * moment (the release program runs without the socket's lock): it marks
 * the socket released, and whichever of the two comes second drops the
 * reference.
 */
static __always_inline void owner_take(struct guard_sk_state *st, const struct sock_info *si,
				       const struct guard_port_key *pk)
{
	if (__sync_fetch_and_or(&st->flags, GUARD_SK_CLAIMED) & GUARD_SK_CLAIMED)
		return;
	__builtin_memcpy(&st->owned, pk, sizeof(st->owned));
	__builtin_memcpy(&st->daemon, &si->daemon, sizeof(st->daemon));
	if (!owner_ref(pk, si))
		return;
	__sync_fetch_and_or(&st->flags, GUARD_SK_OWNER);
	if (READ_ONCE(st->flags) & GUARD_SK_RELEASED)
		owner_drop(st);
}

/* owner_record - a guarded socket (one with sk_info) was bound: its port is its daemon's */
static __always_inline void owner_record(struct bpf_sock *sk)
{
	struct guard_port_key pk = {};
	struct guard_sk_state *st;
	struct sock_info *si;

	if (sk->protocol != IPPROTO_TCP && sk->protocol != IPPROTO_UDP)
		return;
	si = bpf_sk_storage_get(&sk_info, sk, 0, 0);
	if (!si || !sk->src_port)
		return;
	st = bpf_sk_storage_get(&guard_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		gstat_inc(GUARD_STAT_MAP_FULL);
		return;
	}
	pk.port = bpf_htons((__u16)sk->src_port);
	pk.proto = sk->protocol;
	owner_take(st, si, &pk);
}

/* guard_post_bind4 - an IPv4 socket of the cgroup was bound */
SEC("cgroup/post_bind4")
int guard_post_bind4(struct bpf_sock *sk)
{
	owner_record(sk);
	return 1;
}

/* guard_post_bind6 - an IPv6 socket of the cgroup was bound */
SEC("cgroup/post_bind6")
int guard_post_bind6(struct bpf_sock *sk)
{
	owner_record(sk);
	return 1;
}

/*
 * guard_sock_release - a socket of the cgroup was released by its process
 * (its last close): a bound port it held is no longer its daemon's, so a
 * service that binds the port later is not taken for that daemon. While user
 * space runs the owners iterators (GUARD_FLAG_RECORDING) a released guarded
 * socket is marked even if nothing was recorded for it yet (owner_take).
 */
SEC("cgroup/sock_release")
int guard_sock_release(struct bpf_sock *sk)
{
	struct guard_sk_state *st;
	__u64 create = 0;

	if (!bpf_sk_storage_get(&sk_info, sk, 0, 0))
		return 1;	/* not a guarded socket: nothing of ours */
	if (gflag(GUARD_FLAG_RECORDING))
		create = BPF_SK_STORAGE_GET_F_CREATE;
	st = bpf_sk_storage_get(&guard_sk, sk, 0, create);
	if (!st)
		return 1;
	__sync_fetch_and_or(&st->flags, GUARD_SK_RELEASED);
	owner_drop(st);
	return 1;
}

/* owner_from_iter - record a bound guarded socket found by an iterator */
static __always_inline void owner_from_iter(struct sock *sk, __u16 port, __u8 proto)
{
	struct guard_port_key pk = {};
	struct guard_sk_state *st;
	struct sock_info *si;

	si = bpf_sk_storage_get(&sk_info, sk, 0, 0);
	if (!si || !port)
		return;
	st = bpf_sk_storage_get(&guard_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st || (st->flags & GUARD_SK_RELEASED))
		return;
	pk.port = bpf_htons(port);
	pk.proto = proto;
	owner_take(st, si, &pk);
}

/* guard_owners_tcp - listening sockets that predate the post_bind programs */
SEC("iter/tcp")
int guard_owners_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;

	if (!skc || skc->skc_state != TCP_STATE_LISTEN)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (tp)
		owner_from_iter((struct sock *)tp, skc->skc_num, IPPROTO_TCP);
	return 0;
}

/* guard_owners_udp - bound, unconnected UDP sockets that predate post_bind */
SEC("iter/udp")
int guard_owners_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *up = ctx->udp_sk;
	struct sock *sk;

	if (!up)
		return 0;
	sk = (struct sock *)up;
	if (sk->__sk_common.skc_state == TCP_STATE_ESTABLISHED)
		return 0;
	owner_from_iter(sk, sk->__sk_common.skc_num, IPPROTO_UDP);
	return 0;
}

/*
 * guard_revoke_tcp - close each connection a trap daemon accepted (guard_sk
 * says trapped) and, with revoke_all (--revoke), each established
 * connection that a service of the cgroups accepted (guard_sk says passive)
 * whose client is banned now or denied by the policy in force (a final DENY
 * of an entry or of the agent's cached answer; ASK is left alone). One
 * struct guard_revoked per close.
 */
SEC("iter/tcp")
int guard_revoke_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct guard_revoked rec = {};
	struct decision d = {};
	__u32 *acc;
	const struct sock_info *owner;
	struct guard_addr addr;
	struct tcp_sock *tp;
	struct sock *sk;
	__u8 fam, raw[16];
	const __u8 *client;
	int state;

	if (!skc)
		return 0;
	state = skc->skc_state;
	if (state != TCP_STATE_ESTABLISHED && state != TCP_STATE_CLOSE_WAIT)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	sk = (struct sock *)tp;
	acc = bpf_sk_storage_get(&guard_accepted, sk, 0, 0);
	if (!acc || !(*acc & GUARD_ACC_PASSIVE))
		return 0;
	owner = bpf_sk_storage_get(&sk_info, sk, 0, 0);

	if (skc->skc_family == BPFWRAP_AF_INET) {
		__u32 a = skc->skc_daddr, l = skc->skc_rcv_saddr;

		fam = BPFWRAP_AF_INET;
		__builtin_memcpy(raw, &a, 4);
		to_addr16((struct guard_addr *)rec.laddr, BPFWRAP_AF_INET, (const __u8 *)&l);
	} else {
		fam = BPFWRAP_AF_INET6;
		__builtin_memcpy(raw, skc->skc_v6_daddr.in6_u.u6_addr8, 16);
		__builtin_memcpy(rec.laddr, skc->skc_v6_rcv_saddr.in6_u.u6_addr8, 16);
	}
	to_addr16(&addr, fam, raw);
	client = raw;
	if (fam == BPFWRAP_AF_INET6 && is_v4_mapped(raw)) {
		fam = BPFWRAP_AF_INET;
		client = &raw[12];
	}
	if (*acc & GUARD_ACC_TRAPPED) {
		rec.reason = GUARD_R_TRAP;
	} else if (!revoke_all) {
		return 0;
	} else if (is_banned(&addr, false)) {
		rec.reason = GUARD_R_BANNED;
	} else {
		decide(owner, fam, client, false, true, &d);
		if (d.final != BPFWRAP_DENY ||
		    (d.reason != BPFWRAP_R_POLICY && d.reason != BPFWRAP_R_CACHE))
			return 0;
		rec.reason = d.reason;
		rec.rule_id = d.rule_id;
	}
	__builtin_memcpy(rec.raddr, addr.a, 16);
	rec.lport = skc->skc_num;
	rec.rport = bpf_ntohs(skc->skc_dport);
	if (owner)
		__builtin_memcpy(rec.daemon, owner->daemon.name, sizeof(rec.daemon));
	rec.err = bpf_sock_destroy(skc);
	if (rec.err == 0)
		gstat_inc(GUARD_STAT_REVOKED);
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
