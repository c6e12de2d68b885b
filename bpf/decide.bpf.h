/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * decide.bpf.h - the whole ingress decision as always-inline functions, so
 * that the attached program (bpfwrap_ingress) and its test twin
 * (bpfwrap_decide_test, run with BPF_PROG_TEST_RUN) execute the same code.
 * The attached program differs only in where the socket view comes from:
 * the real skb->sk and its sk_info storage there, cb[] words and the
 * test_names map in the twin (BPF_PROG_TEST_RUN gives a fake socket in
 * state TCP_CLOSE without storage).
 *
 * Promise on errors: a packet that needs a decision and cannot be parsed,
 * or finds the policy maps missing or incomplete, is dropped (fail closed)
 * and counted in `stats`; a full ring buffer only loses the event (counted),
 * never changes a verdict.
 */
#ifndef BPFWRAP_DECIDE_BPF_H
#define BPFWRAP_DECIDE_BPF_H

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10
#define IPV6_HOPOPTS 0
#define IPV6_ROUTING 43
#define IPV6_FRAGMENT 44
#define IPV6_DSTOPTS 60
#define IPV6_EXT_MAX 4		/* extension headers walked before giving up (drop) */

#ifndef READ_ONCE
#define READ_ONCE(x) (*(const volatile typeof(x) *)&(x))
#endif
#ifndef WRITE_ONCE
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))
#endif

/* Configuration, set by the loader before load. */
const volatile __u64 dedup_ns = 60ull * 1000 * 1000 * 1000;	/* one event per flow per this */

/* What the decision needs to know about the receiving socket. */
struct sock_view {
	__u32 state;		/* BPF_TCP_* */
	__u32 protocol;		/* IPPROTO_TCP / IPPROTO_UDP */
	__u32 family;		/* socket family */
	const struct sock_info *owner;	/* NULL: guarded, but no memory for its sk_info */
};

/* A parsed packet. Addresses in network order; v4 in the first 4 bytes. */
struct pkt {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;		/* network order */
	__u16 dport;		/* network order */
	__u8 family;		/* packet family: BPFWRAP_AF_INET / _INET6 */
	__u8 proto;
	__u8 tcp_flags;
	__u8 _pad;
};

/* The outcome of one decision. */
struct decision {
	__u32 generation;
	__u32 daemon_id;
	__u32 rule_id;
	__u32 linger;
	__u16 flags;		/* matched entry's flags */
	__u8 entry_verdict;	/* 0 when no entry was consulted */
	__u8 vif;		/* entry's verdict_if_unknown */
	__u8 final;		/* BPFWRAP_ALLOW, BPFWRAP_DENY, or BPFWRAP_ASK (dropped, asked) */
	__u8 reason;		/* enum bpfwrap_reason */
	__u8 event;		/* enum bpfwrap_event_type emitted, 0 none */
	__u8 _pad;
};

/* stat_inc - add one to a global counter unless quiet */
static __always_inline void stat_inc(__u32 idx, bool quiet)
{
	__u64 *v;

	if (quiet)
		return;
	v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
}

/* parse_packet - read addresses, ports and TCP flags; -1 for anything else */
static __always_inline int parse_packet(struct __sk_buff *skb, struct pkt *p)
{
	__u32 l4off;
	__u8 proto;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr iph;

		if (bpf_skb_load_bytes(skb, 0, &iph, sizeof(iph)) < 0)
			return -1;
		if (iph.version != 4 || iph.ihl < 5)
			return -1;
		/* A later fragment has no transport header (reassembly happens
		 * before socket delivery, so this is garbage). */
		if (iph.frag_off & bpf_htons(IP_OFFSET))
			return -1;
		__builtin_memcpy(p->saddr, &iph.saddr, 4);
		__builtin_memcpy(p->daddr, &iph.daddr, 4);
		p->family = BPFWRAP_AF_INET;
		proto = iph.protocol;
		l4off = iph.ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		__u8 nh;
		int i;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0)
			return -1;
		if (ip6.version != 6)
			return -1;
		__builtin_memcpy(p->saddr, &ip6.saddr, 16);
		__builtin_memcpy(p->daddr, &ip6.daddr, 16);
		p->family = BPFWRAP_AF_INET6;
		nh = ip6.nexthdr;
		l4off = sizeof(ip6);
		/* Walk a bounded number of extension headers to TCP/UDP. */
		for (i = 0; i < IPV6_EXT_MAX; i++) {
			struct {
				__u8 nexthdr;
				__u8 len;
				__u16 frag_off;	/* fragment header only, network order */
			} ext;

			if (nh == IPPROTO_TCP || nh == IPPROTO_UDP)
				break;
			if (nh != IPV6_HOPOPTS && nh != IPV6_ROUTING && nh != IPV6_DSTOPTS &&
			    nh != IPV6_FRAGMENT)
				return -1;
			if (bpf_skb_load_bytes(skb, l4off, &ext, sizeof(ext)) < 0)
				return -1;
			if (nh == IPV6_FRAGMENT) {
				if (ext.frag_off & bpf_htons(0xfff8))
					return -1;	/* not the first fragment */
				l4off += 8;
			} else {
				l4off += ((__u32)ext.len + 1) * 8;
			}
			nh = ext.nexthdr;
		}
		proto = nh;
	} else {
		return -1;
	}

	p->proto = proto;
	if (proto == IPPROTO_TCP) {
		__u8 th[14];	/* ports, seq, ack, data offset, flags */

		if (bpf_skb_load_bytes(skb, l4off, th, sizeof(th)) < 0)
			return -1;
		__builtin_memcpy(&p->sport, &th[0], 2);
		__builtin_memcpy(&p->dport, &th[2], 2);
		p->tcp_flags = th[13];
	} else if (proto == IPPROTO_UDP) {
		__u8 uh[8];

		if (bpf_skb_load_bytes(skb, l4off, uh, sizeof(uh)) < 0)
			return -1;
		__builtin_memcpy(&p->sport, &uh[0], 2);
		__builtin_memcpy(&p->dport, &uh[2], 2);
		p->tcp_flags = 0;
	} else {
		return -1;
	}
	return 0;
}

/* is_v4_mapped - the address is ::ffff:a.b.c.d */
static __always_inline bool is_v4_mapped(const __u8 *a)
{
	__u64 hi;
	__u32 mid;

	__builtin_memcpy(&hi, a, 8);
	__builtin_memcpy(&mid, a + 8, 4);
	return hi == 0 && mid == bpf_htonl(0x0000ffff);
}

#define HOST_SEARCH_STEPS 32	/* enough for 2^32 records */

/*
 * The IPv6 host array is binary-searched in bpf_loop() callbacks: the verifier
 * checks a callback once, whereas an open-coded 32-step loop is walked step
 * by step for every path into it (it tripled the instructions the verifier
 * processed for the ingress program).
 */
struct host_search {
	void *arr;		/* the inner array map */
	__u64 k0, k1, k2;	/* v4: k0 = key; v6: daemon, address hi, address lo */
	__u32 lo, hi;		/* [lo, hi): records still possible */
	struct policy_entry *found;
};

/* host_step_v6 - one bisection step over a host_rec_v6 array */
static long host_step_v6(__u32 i, void *ctx)
{
	struct host_search *s = ctx;
	struct host_rec_v6 *r;
	__u32 mid;

	if (s->lo >= s->hi)
		return 1;
	mid = s->lo + (s->hi - s->lo) / 2;
	r = bpf_map_lookup_elem(s->arr, &mid);
	if (!r)
		return 1;
	if (r->key_hi == s->k0 && r->addr_hi == s->k1 && r->addr_lo == s->k2) {
		s->found = &r->entry;
		return 1;
	}
	if (r->key_hi < s->k0 ||
	    (r->key_hi == s->k0 && (r->addr_hi < s->k1 || (r->addr_hi == s->k1 && r->addr_lo < s->k2))))
		s->lo = mid + 1;
	else
		s->hi = mid;
	return 0;
}

/* host_count - the number of records of a host array (its header), 0 if none */
static __always_inline __u32 host_count(void *arr)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(arr, &zero);

	return n ? (__u32)*n : 0;
}

/*
 * v4_find - the entry for (daemon, addr) in the IPv4 interval tables (layout
 * in include/bpfwrap.h): the bucket's directory word, then at most
 * BPFWRAP_V4_HEIGHT_MAX nodes, then the interval's entry. NULL (fail
 * closed) for anything the layout does not allow.
 */
static __always_inline struct policy_entry *v4_find(void *tree, void *ents, __u32 daemon,
						    __u32 addr)
{
	__u32 idx = 0, bits, d, x, w, h;
	struct v4_node *n;
	struct v4_ent *ent;

	n = bpf_map_lookup_elem(tree, &idx);
	if (!n)
		return NULL;
	bits = n->key[0];
	if (bits < 1 || bits > BPFWRAP_V4_DIR_BITS_MAX || daemon >= n->key[1])
		return NULL;
	d = (daemon << bits) + (addr >> (32 - bits));
	x = addr & (0xffffffffu >> bits);
	idx = 1 + d / 16;
	n = bpf_map_lookup_elem(tree, &idx);
	if (!n)
		return NULL;
	w = ((__u32 *)n)[d & 15];
	if (w == BPFWRAP_V4_NONE)
		return NULL;
	h = w >> BPFWRAP_V4_HEIGHT_SHIFT;
	idx = w & BPFWRAP_V4_IDX_MASK;
	if (h > BPFWRAP_V4_HEIGHT_MAX)
		return NULL;
	for (int i = 0; i < BPFWRAP_V4_HEIGHT_MAX; i++) {
		__u32 r = 0;

		if (h == 0)
			break;
		n = bpf_map_lookup_elem(tree, &idx);
		if (!n)
			return NULL;
		/* Branch-free (BPF has no setcc: a compare would be a jump,
		 * and 15 jumps a level multiply the verifier's paths):
		 * key <= x exactly when x - key, in 64 bits, is not negative. */
#pragma unroll
		for (int j = 0; j < BPFWRAP_V4_NODE_KEYS; j++)
			r += 1 - (__u32)(((__u64)x - n->key[j]) >> 63);
		idx = n->base + r;
		h--;
	}
	ent = bpf_map_lookup_elem(ents, &idx);
	if (!ent || ent->entry.verdict == 0)
		return NULL;	/* an interval no prefix covers */
	return &ent->entry;
}

/* host_find_v6 - binary search of a sorted IPv6 host array */
static __always_inline struct policy_entry *host_find_v6(void *arr, __u64 khi, __u64 ahi,
							 __u64 alo)
{
	struct host_search s = { .arr = arr, .k0 = khi, .k1 = ahi, .k2 = alo, .lo = 1 };

	s.hi = host_count(arr) + 1;
	if (s.hi <= 1)
		return NULL;
	bpf_loop(HOST_SEARCH_STEPS, host_step_v6, &s, 0);
	return s.found;
}

/* be64_at - 8 bytes of network-order data as a host-order number */
static __always_inline __u64 be64_at(const __u8 *p)
{
	__u64 v;

	__builtin_memcpy(&v, p, 8);
	return bpf_be64_to_cpu(v);
}

/* agent_is_alive - the agent's heartbeat has not expired */
static __always_inline bool agent_is_alive(__u64 now)
{
	__u32 zero = 0;
	struct agent_alive *a = bpf_map_lookup_elem(&agent_alive, &zero);

	return a && READ_ONCE(a->expires_ns) > now;
}

/* A request's endpoints as the policy sees them: an IPv4 packet, or an
 * IPv6 one from a v4-mapped client, is decided as IPv4 (4-byte addresses). */
struct endpoints {
	const __u8 *client;
	const __u8 *server;	/* NULL: not known (then neither are the ports) */
	__u16 sport;		/* network order */
	__u16 dport;		/* network order */
	__u8 family;		/* BPFWRAP_AF_INET / BPFWRAP_AF_INET6 */
};

/* packet_endpoints - client and server of p, v4-mapped folded to IPv4 */
static __always_inline void packet_endpoints(const struct pkt *p, struct endpoints *ep)
{
	ep->family = p->family;
	ep->client = p->saddr;
	ep->server = p->daddr;
	ep->sport = p->sport;
	ep->dport = p->dport;
	if (p->family == BPFWRAP_AF_INET6 && is_v4_mapped(p->saddr)) {
		ep->family = BPFWRAP_AF_INET;
		ep->client = &p->saddr[12];
		ep->server = is_v4_mapped(p->daddr) ? &p->daddr[12] : p->daddr;
	}
}

/* copy_addr - an address of `family` into a 16-byte key field (v4: 4 bytes) */
static __always_inline void copy_addr(__u8 *dst, const __u8 *src, __u8 family)
{
	if (family == BPFWRAP_AF_INET)
		__builtin_memcpy(dst, src, 4);
	else
		__builtin_memcpy(dst, src, 16);
}

/* name_hash - the hash of a socket's daemon name for verdict_cache keys
 * (include/bpfwrap.h); no owner hashes the empty name */
static __always_inline __u64 name_hash(const struct sock_info *owner)
{
	__u64 h = BPFWRAP_NAME_HASH_BASIS;

#pragma unroll
	for (int i = 0; i < BPFWRAP_NAME_WORDS; i++) {
		__u64 w = 0;

		if (owner)
			__builtin_memcpy(&w, owner->daemon.name + 8 * i, sizeof(w));
		h = (h ^ w) * BPFWRAP_NAME_HASH_PRIME;
	}
	return h;
}

/*
 * cache_find - the agent's answer for this request, or NULL: the base key
 * (generation, daemon, client), and when its value is a marker, the key
 * refined by the fields the marker names (include/bpfwrap.h, verdict_cache;
 * not found when the caller does not know them).
 */
static __always_inline struct verdict_value *cache_find(const struct sock_info *owner,
							 const struct endpoints *ep,
							 const struct decision *d, __u64 now)
{
	struct verdict_key vk = {
		.generation = d->generation,
		.daemon_id = d->daemon_id,
		.family = ep->family,
	};
	struct verdict_value *vv;
	__u8 refine;

	copy_addr(vk.addr, ep->client, ep->family);
	if (d->daemon_id == BPFWRAP_DAEMON_OTHER)
		vk.daemon_hash = name_hash(owner);
	vv = bpf_map_lookup_elem(&verdict_cache, &vk);
	if (!vv || READ_ONCE(vv->expires_ns) <= now)
		return NULL;
	refine = READ_ONCE(vv->refine) & BPFWRAP_CACHE_REFINE_ALL;
	if (!refine)
		return vv;
	if (!ep->server)
		return NULL;
	vk.refine = refine;
	if (refine & BPFWRAP_CACHE_SERVER)
		copy_addr(vk.server, ep->server, ep->family);
	if (refine & BPFWRAP_CACHE_SERVER_PORT)
		vk.server_port = ep->dport;
	if (refine & BPFWRAP_CACHE_CLIENT_PORT)
		vk.client_port = ep->sport;
	vv = bpf_map_lookup_elem(&verdict_cache, &vk);
	if (!vv || READ_ONCE(vv->expires_ns) <= now || vv->refine)
		return NULL;
	return vv;
}

/*
 * decide_endpoints - the verdict for client ep->client (v4-mapped folded to
 * IPv4 by the caller; the server and ports for answers the agent keyed on
 * them) towards daemon `owner`. count: add the decision to the rule
 * counters. Fills d; never fails open: every path that cannot find a policy
 * entry ends in DENY except generation 0 (no policy at all: libwrap allows).
 */
static __always_inline void decide_endpoints(const struct sock_info *owner,
					     const struct endpoints *ep, bool count, bool quiet,
					     struct decision *d)
{
	__u32 zero = 0, slot;
	struct active_gen *ag;
	struct policy_entry *e;
	const __u8 *addr = ep->client;
	__u8 family = ep->family;
	void *t1, *t2;
	__u32 *idp;
	__u64 now;
	ag = bpf_map_lookup_elem(&active, &zero);
	if (!ag)
		goto no_maps;
	d->generation = READ_ONCE(ag->generation);
	if (d->generation == 0) {
		d->final = BPFWRAP_ALLOW;
		d->reason = BPFWRAP_R_NO_POLICY;
		stat_inc(BPFWRAP_STAT_NO_POLICY, quiet);
		return;
	}
	/* Only the inner maps this packet needs are looked up (each one is an
	 * outer-map slot and a map header: cache lines a SYN pays for). The
	 * loader deletes a slot only after a flip and an RCU grace period
	 * (loader_load_policy), so while this program runs, the slot of the
	 * generation it read stays complete: a missing map is never a race. */
	slot = d->generation & 1;

	d->daemon_id = BPFWRAP_DAEMON_OTHER;
	if (owner) {
		/* The socket's storage remembers its id under this generation
		 * (one 64-bit word: never half of two generations). */
		struct sock_info *w = (struct sock_info *)owner;
		__u64 cached = READ_ONCE(w->daemon_cache);

		if (owner->flags & BPFWRAP_SOCK_UNNAMED)
			stat_inc(BPFWRAP_STAT_NO_OWNER, quiet);

		if (cached >> 32 == d->generation) {
			d->daemon_id = (__u32)cached;
		} else {
			t1 = bpf_map_lookup_elem(&policy_daemons, &slot);
			if (!t1)
				goto no_maps;
			idp = bpf_map_lookup_elem(t1, &owner->daemon);
			if (idp)
				d->daemon_id = *idp;
			WRITE_ONCE(w->daemon_cache, (__u64)d->generation << 32 | d->daemon_id);
		}
	} else {
		stat_inc(BPFWRAP_STAT_NO_OWNER, quiet);
	}

	if (family == BPFWRAP_AF_INET) {
		__u32 a4;

		t1 = bpf_map_lookup_elem(&policy_v4_tree, &slot);
		t2 = bpf_map_lookup_elem(&policy_v4_ents, &slot);
		if (!t1 || !t2)
			goto no_maps;
		__builtin_memcpy(&a4, addr, 4);
		e = v4_find(t1, t2, d->daemon_id, bpf_ntohl(a4));
	} else {
		struct policy_key_v6 k6 = {
			.prefixlen = BPFWRAP_V6_KEY_BITS,
			.daemon_id = bpf_htonl(d->daemon_id),
		};

		t1 = bpf_map_lookup_elem(&policy_hosts_v6, &slot);
		t2 = bpf_map_lookup_elem(&policy_v6, &slot);
		if (!t1 || !t2)
			goto no_maps;
		__builtin_memcpy(k6.addr, addr, 16);
		e = host_find_v6(t1, d->daemon_id, be64_at(addr), be64_at(addr + 8));
		if (!e)
			e = bpf_map_lookup_elem(t2, &k6);
	}
	if (!e) {
		d->final = BPFWRAP_DENY;
		d->reason = BPFWRAP_R_NO_ENTRY;
		stat_inc(BPFWRAP_STAT_NO_ENTRY, quiet);
		return;
	}

	d->entry_verdict = e->verdict;
	d->vif = e->verdict_if_unknown;
	d->flags = e->flags;
	d->rule_id = e->rule_id;
	d->linger = e->linger;
	if (e->verdict == BPFWRAP_ALLOW) {
		d->final = BPFWRAP_ALLOW;
		d->reason = BPFWRAP_R_POLICY;
	} else if (e->verdict == BPFWRAP_ASK) {
		struct verdict_value *vv;

		now = bpf_ktime_get_ns();
		vv = cache_find(owner, ep, d, now);
		if (vv && (vv->verdict == BPFWRAP_ALLOW || vv->verdict == BPFWRAP_DENY)) {
			d->final = vv->verdict;
			d->rule_id = vv->rule_id;
			d->reason = BPFWRAP_R_CACHE;
			stat_inc(BPFWRAP_STAT_CACHE_HIT, quiet);
		} else if (agent_is_alive(now)) {
			d->final = BPFWRAP_ASK;
			d->reason = BPFWRAP_R_ASK;
		} else {
			d->final = e->verdict_if_unknown == BPFWRAP_ALLOW ? BPFWRAP_ALLOW : BPFWRAP_DENY;
			d->reason = BPFWRAP_R_AGENT_DOWN;
			stat_inc(BPFWRAP_STAT_AGENT_DOWN, quiet);
		}
	} else {
		/* DENY, and any value the ABI does not know: fail closed. */
		d->final = BPFWRAP_DENY;
		d->reason = BPFWRAP_R_POLICY;
	}

	if (count && !quiet && d->final != BPFWRAP_ASK) {
		__u32 rid = d->rule_id;
		__u64 *c = NULL;

		t1 = bpf_map_lookup_elem(&policy_counters, &slot);
		if (t1)
			c = bpf_map_lookup_elem(t1, &rid);
		if (c)
			__sync_fetch_and_add(c, 1);
	}
	return;

no_maps:
	d->final = BPFWRAP_DENY;
	d->reason = BPFWRAP_R_NO_MAPS;
	stat_inc(BPFWRAP_STAT_NO_MAPS, quiet);
}

/* decide_packet - decide_endpoints for packet p's client, server and ports */
static __always_inline void decide_packet(const struct sock_info *owner, const struct pkt *p,
					  bool count, bool quiet, struct decision *d)
{
	struct endpoints ep;

	packet_endpoints(p, &ep);
	decide_endpoints(owner, &ep, count, quiet, d);
}

/* decide - decide_endpoints for a client address alone (family as folded by
 * the caller): server and ports unknown, so an answer the agent keyed on
 * them is not found (ASK) */
static __always_inline void decide(const struct sock_info *owner, __u8 family, const __u8 *addr,
				   bool count, bool quiet, struct decision *d)
{
	struct endpoints ep = { .client = addr, .family = family };

	decide_endpoints(owner, &ep, count, quiet, d);
}

/* fill_event - the common fields of an event record */
static __always_inline void fill_event(struct event *ev, __u32 type, const struct decision *d,
				       const struct sock_view *sv, const struct pkt *p)
{
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->time_ns = bpf_ktime_get_ns();
	ev->type = type;
	ev->rule_id = d->rule_id;
	ev->daemon_id = d->daemon_id;
	ev->generation = d->generation;
	ev->flags = d->flags;
	ev->verdict = d->final;
	ev->verdict_if_unknown = d->vif;
	ev->reason = d->reason;
	ev->proto = p->proto;
	ev->sport = p->sport;
	ev->dport = p->dport;
	ev->linger = d->linger;
	if (p->family == BPFWRAP_AF_INET && sv->family == BPFWRAP_AF_INET6) {
		/* IPv4 on a dual-stack socket: the daemon sees ::ffff:a.b.c.d */
		ev->family = BPFWRAP_AF_INET6;
		ev->saddr[10] = 0xff;
		ev->saddr[11] = 0xff;
		__builtin_memcpy(&ev->saddr[12], p->saddr, 4);
		ev->daddr[10] = 0xff;
		ev->daddr[11] = 0xff;
		__builtin_memcpy(&ev->daddr[12], p->daddr, 4);
	} else {
		ev->family = p->family;
		__builtin_memcpy(ev->saddr, p->saddr, 16);
		__builtin_memcpy(ev->daddr, p->daddr, 16);
	}
	if (sv->owner) {
		__builtin_memcpy(ev->daemon, sv->owner->daemon.name, sizeof(ev->daemon));
		__builtin_memcpy(ev->comm, sv->owner->comm, sizeof(ev->comm));
		ev->pid = sv->owner->tgid;
	}
}

/* hash_words - FNV-style mix of n 32-bit words (n a constant: unrolled) */
static __always_inline __u32 hash_words(const void *p, int n)
{
	const __u32 *w = p;
	__u32 h = 0x811c9dc5;

#pragma unroll
	for (int i = 0; i < n; i++)
		h = (h ^ w[i]) * 0x9e3779b1u;
	return h ^ (h >> 15);
}

/* words_eq - are n 64-bit words at a and b the same (n a constant: unrolled) */
static __always_inline bool words_eq(const void *a, const void *b, int n)
{
	const __u64 *x = a, *y = b;
	__u64 diff = 0;

#pragma unroll
	for (int i = 0; i < n; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

/* flow_hash - a slot of flow_recent for a 5-tuple */
static __always_inline __u32 flow_hash(const struct flow_key *fk)
{
	return hash_words(fk, (int)(sizeof(*fk) / 4)) & (FLOW_SLOTS - 1);
}

/* flow_key_eq - two 5-tuples are the same */
static __always_inline bool flow_key_eq(const struct flow_key *a, const struct flow_key *b)
{
	return words_eq(a, b, (int)(sizeof(*a) / 8));
}

/*
 * Waking the agent for every event costs more than the decision itself under
 * a flood (a wake-up is an IPI on this kind of VM): log-only events (deny,
 * accept, spawn) wake it at most once per WAKE_EVERY_NS, or when
 * WAKE_BACKLOG bytes wait; a question (ASK) always wakes it, a client's
 * SYN is waiting for the answer. The agent drains again shortly after every
 * batch (agent.c), so an event that did not wake it waits at most that long.
 */
#define WAKE_EVERY_NS 1000000ull	/* 1 ms */
#define WAKE_BACKLOG (128 * 1024)	/* bytes in the ring buffer */

__u64 wake_last_ns;	/* when a log event last woke the agent (.bss; races are harmless) */

/* submit_flags - bpf_ringbuf_submit() flags for an event of this type */
static __always_inline __u64 submit_flags(__u32 type, __u64 now)
{
	if (type == BPFWRAP_EV_ASK)
		return 0;	/* adaptive: wakes the agent unless it is busy reading */
	if (now - READ_ONCE(wake_last_ns) >= WAKE_EVERY_NS ||
	    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKE_BACKLOG) {
		wake_last_ns = now;
		return 0;
	}
	return BPF_RB_NO_WAKEUP;
}

#define NSEC_PER_SEC 1000000000ull

/* event_cap_allows - count one log event against event_limits' budget for
 * this second (now: CLOCK_MONOTONIC_COARSE, the clock of every cap and
 * src_recent time); false (counted) when it is spent */
static __always_inline bool event_cap_allows(struct event_limits *el, __u64 now)
{
	__u32 cap = READ_ONCE(el->cap_per_s);

	if (!cap)
		cap = BPFWRAP_EVENT_CAP_DEFAULT;
	if (cap == BPFWRAP_EVENT_CAP_NONE)
		return true;
	/* Racy across CPUs on purpose: at worst a few events more or less
	 * around the turn of a second. */
	if (now - READ_ONCE(el->cap_window_ns) >= NSEC_PER_SEC) {
		WRITE_ONCE(el->cap_window_ns, now);
		WRITE_ONCE(el->cap_count, 0);
	}
	if (READ_ONCE(el->cap_count) >= cap) {
		stat_inc(BPFWRAP_STAT_EVENTS_CAPPED, false);
		return false;
	}
	__sync_fetch_and_add(&el->cap_count, 1);
	return true;
}

/* emit_flow_event - send one event; with dedup, at most one per flow per
 * dedup_ns (as long as the flow keeps its flow_recent slot); DENY and SPAWN
 * events within the global cap */
static __always_inline bool emit_flow_event(__u32 type, const struct decision *d,
				       const struct sock_view *sv, const struct pkt *p, bool dedup)
{
	struct flow_key fk = {};
	struct flow_slot *slot = NULL;
	struct event_limits *el;
	struct event *ev;
	__u64 now = bpf_ktime_get_ns();
	__u32 h, zero = 0;

	if (dedup) {
		__builtin_memcpy(fk.saddr, p->saddr, 16);
		__builtin_memcpy(fk.daddr, p->daddr, 16);
		fk.sport = p->sport;
		fk.dport = p->dport;
		fk.family = p->family;
		fk.proto = p->proto;
		h = flow_hash(&fk);
		slot = bpf_map_lookup_elem(&flow_recent, &h);
		if (slot && flow_key_eq(&slot->key, &fk) && now - READ_ONCE(slot->seen_ns) < dedup_ns)
			return false;
	}
	if (type == BPFWRAP_EV_DENY || type == BPFWRAP_EV_SPAWN) {
		el = bpf_map_lookup_elem(&event_limits, &zero);
		if (el && !event_cap_allows(el, bpf_ktime_get_coarse_ns()))
			return false;	/* not marked seen: a later packet may get through */
	}
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		stat_inc(BPFWRAP_STAT_EVENTS_LOST, false);
		return false;	/* not marked seen: the next packet tries again */
	}
	fill_event(ev, type, d, sv, p);
	bpf_ringbuf_submit(ev, submit_flags(type, now));
	if (slot) {
		slot->key = fk;
		slot->seen_ns = now;
	}
	return true;
}

/* src_hash - a slot of src_recent for a key */
static __always_inline __u32 src_hash(const struct src_key *k)
{
	return hash_words(k, (int)(sizeof(*k) / 4)) & (BPFWRAP_SRC_SLOTS - 1);
}

/* src_key_eq - two aggregation keys are the same */
static __always_inline bool src_key_eq(const struct src_key *a, const struct src_key *b)
{
	return words_eq(a, b, (int)(sizeof(*a) / 8));
}

/*
 * emit_denial - a plain denial, aggregated per (client, daemon, server
 * port) in src_recent (include/bpfwrap.h): the first of a window sends an
 * event at once, the others only count. True if an event was sent.
 */
static __always_inline bool emit_denial(const struct decision *d, const struct sock_view *sv,
					const struct pkt *p)
{
	struct event_limits *el;
	struct src_slot *slot;
	struct src_key k = {};
	struct event *ev;
	/* CLOCK_MONOTONIC_COARSE: a tick's resolution is plenty for windows
	 * of seconds, and reading it costs a fraction of bpf_ktime_get_ns() */
	__u64 now = bpf_ktime_get_coarse_ns(), interval;
	__u32 h, zero = 0;
	bool same;

	__builtin_memcpy(k.addr, p->saddr, 16);
	k.daemon_id = d->daemon_id;
	k.dport = p->dport;
	k.family = p->family;
	k.proto = p->proto;
	h = src_hash(&k);
	slot = bpf_map_lookup_elem(&src_recent, &h);
	el = bpf_map_lookup_elem(&event_limits, &zero);
	if (!slot || !el)
		return emit_flow_event(BPFWRAP_EV_DENY, d, sv, p, true);	/* cannot happen: arrays */
	interval = READ_ONCE(el->interval_ns);
	if (!interval)
		interval = BPFWRAP_AGG_INTERVAL_DEFAULT_NS;
	same = READ_ONCE(slot->count) && src_key_eq(&slot->key, &k);
	if (same && now - READ_ONCE(slot->window_ns) < interval) {
		__sync_fetch_and_add(&slot->count, 1);
		stat_inc(BPFWRAP_STAT_DENY_FOLDED, false);
		return false;
	}
	if (!event_cap_allows(el, now))
		goto unsent;
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		stat_inc(BPFWRAP_STAT_EVENTS_LOST, false);
		goto unsent;
	}
	fill_event(ev, BPFWRAP_EV_DENY, d, sv, p);
	ev->agg_slot = h + 1;
	ev->agg_key = k;
	if (same) {
		__sync_fetch_and_add(&slot->count, 1);
		ev->agg_count = READ_ONCE(slot->count);
		ev->agg_since_ns = READ_ONCE(slot->since_ns);
		WRITE_ONCE(slot->window_ns, now);
	} else {
		if (READ_ONCE(slot->count)) {
			ev->evicted = slot->key;
			ev->evicted_count = READ_ONCE(slot->count);
		}
		WRITE_ONCE(slot->count, 0);	/* a free slot while the key changes */
		slot->key = k;
		slot->since_ns = now;
		slot->window_ns = now;
		WRITE_ONCE(slot->count, 1);
		ev->agg_count = 1;
		ev->agg_since_ns = now;
	}
	bpf_ringbuf_submit(ev, submit_flags(BPFWRAP_EV_DENY, ev->time_ns));
	return true;

unsent:
	/* A key that holds its slot keeps the count for its next event (or
	 * the agent's look at the slot); a new key tries again next time. */
	if (same)
		__sync_fetch_and_add(&slot->count, 1);
	return false;
}

/*
 * emit_event - send one event for a decision: a plain denial (dedup, no
 * spawn to run per connection, not "agent down", which the agent asks
 * about per flow) aggregated per client (emit_denial), anything else per
 * flow (emit_flow_event)
 */
static __always_inline bool emit_event(__u32 type, const struct decision *d,
				       const struct sock_view *sv, const struct pkt *p, bool dedup)
{
	if (type == BPFWRAP_EV_DENY && dedup && !(d->flags & BPFWRAP_F_SPAWN) &&
	    d->reason != BPFWRAP_R_AGENT_DOWN)
		return emit_denial(d, sv, p);
	return emit_flow_event(type, d, sv, p, dedup);
}

/*
 * ingress_decide - the ingress hook's logic for one packet to socket sv.
 * Returns 1 (pass) or 0 (drop) and fills d (d->reason always set).
 *
 * New flows are TCP packets to a LISTEN socket (the SYN, the ACK that
 * completes a normal or syncookie handshake; RSTs pass, they open nothing)
 * and every datagram to an unconnected UDP socket. Everything else takes the
 * fast path out before any parsing.
 */
static __always_inline int ingress_decide(struct __sk_buff *skb, const struct sock_view *sv,
					  bool quiet, struct decision *d)
{
	struct pkt p = {};
	bool count;
	__u32 ev = 0;

	if (sv->protocol == IPPROTO_TCP) {
		if (sv->state != BPF_TCP_LISTEN)
			goto fast;
	} else if (sv->protocol == IPPROTO_UDP) {
		if (sv->state == BPF_TCP_ESTABLISHED)
			goto fast;	/* connected UDP socket: a client, not a service */
	} else {
		goto fast;
	}

	stat_inc(BPFWRAP_STAT_PACKETS, quiet);
	if (parse_packet(skb, &p) < 0 || p.proto != sv->protocol) {
		d->final = BPFWRAP_DENY;
		d->reason = BPFWRAP_R_MALFORMED;
		stat_inc(BPFWRAP_STAT_MALFORMED, quiet);
		return 0;
	}
	if (p.proto == IPPROTO_TCP) {
		if (p.tcp_flags & TCP_FLAG_RST)
			goto fast;
		count = (p.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	} else {
		count = true;
	}

	decide_packet(sv->owner, &p, count, quiet, d);

	if (d->final == BPFWRAP_ALLOW) {
		stat_inc(BPFWRAP_STAT_ALLOW, quiet);
		/* TCP accepts are reported by sockops once the handshake is done;
		 * a UDP datagram has no accept, so spawn is reported here. */
		if (p.proto == IPPROTO_UDP && (d->flags & BPFWRAP_F_SPAWN))
			ev = BPFWRAP_EV_SPAWN;
	} else if (d->final == BPFWRAP_ASK) {
		stat_inc(BPFWRAP_STAT_ASK, quiet);
		ev = BPFWRAP_EV_ASK;
	} else {
		stat_inc(BPFWRAP_STAT_DENY, quiet);
		ev = BPFWRAP_EV_DENY;
	}
	if (ev && !quiet && emit_event(ev, d, sv, &p, true))
		d->event = ev;
	return d->final == BPFWRAP_ALLOW;

fast:
	d->final = BPFWRAP_ALLOW;
	d->reason = BPFWRAP_R_FAST_PATH;
	stat_inc(BPFWRAP_STAT_FAST_PATH, quiet);
	return 1;
}

#endif /* BPFWRAP_DECIDE_BPF_H */
