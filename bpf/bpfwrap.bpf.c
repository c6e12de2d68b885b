// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * bpfwrap.bpf.c - the kernel half of bpfwrap: hosts.allow/hosts.deny decided
 * per new inbound flow for the sockets of a cgroup.
 *
 *   bpfwrap_ingress      cgroup_skb/ingress: decides TCP packets to LISTEN
 *                        sockets and datagrams to unconnected UDP sockets;
 *                        returns 0 (drop) for DENY and for a pending ASK.
 *   bpfwrap_sock_create  cgroup/sock_create: records a guarded socket's
 *                        owner (daemon name, comm, tgid) in sk_info
 *                        (bpf/owner.bpf.h: which sockets are guarded).
 *   bpfwrap_sockops      sockops: on a passively established connection,
 *                        applies keepalive/linger and reports the accept.
 *   bpfwrap_decide_test  never attached: the ingress logic for
 *                        BPF_PROG_TEST_RUN (see decide.bpf.h and the cb[]
 *                        protocol in include/bpfwrap.h).
 *
 * Maps and their writers: bpf/maps.bpf.h. Errors: see decide.bpf.h — fail
 * closed on anything unparseable or missing, never on a full ring buffer.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bpfwrap.h"
#include "maps.bpf.h"
#include "decide.bpf.h"
#include "owner.bpf.h"

#define SOL_SOCKET 1
#define SO_KEEPALIVE 9
#define SO_LINGER 13

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* bpfwrap_ingress - decide a packet delivered to a socket of the cgroup */
SEC("cgroup_skb/ingress")
int bpfwrap_ingress(struct __sk_buff *skb)
{
	struct decision d = {};
	struct sock_view sv = {};
	struct bpf_sock *sk;

	sk = skb->sk;
	if (!sk)
		return 1;
	/* Established TCP and connected UDP leave on the common socket fields,
	 * before any helper call: only LISTEN (TCP) and CLOSE (an unconnected
	 * UDP socket) can take a new flow. */
	if (sk->state != BPF_TCP_LISTEN && sk->state != BPF_TCP_CLOSE)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;	/* request/timewait socks: not a new flow to a service */
	sv.state = sk->state;
	sv.protocol = sk->protocol;
	sv.family = sk->family;
	/* Fast path before touching storage: established TCP and anything
	 * that is neither TCP nor UDP. ingress_decide repeats the test. */
	if (sv.protocol == IPPROTO_TCP && sv.state != BPF_TCP_LISTEN)
		return 1;
	if (!sock_owner(sk, &sv.owner))
		return 1;	/* not a guarded service's socket */
	return ingress_decide(skb, &sv, false, &d);
}

/*
 * bpfwrap_decide_test - the ingress decision for BPF_PROG_TEST_RUN.
 * Test runs give skb->sk as a fake socket in TCP_CLOSE without sk_info, so
 * this twin takes the socket's state, protocol, family and owner from the
 * cb[] words of ctx_in (owner = test_names[cb[0] - 1]) and calls exactly the
 * code the attached program calls. It writes the decision to cb[] of
 * ctx_out. Never attached: the loader does not auto-attach it.
 */
SEC("cgroup_skb/ingress")
int bpfwrap_decide_test(struct __sk_buff *skb)
{
	struct decision d = {};
	struct sock_view sv = {};
	/* Read every ctx field once into a local: clang would otherwise
	 * select between two ctx offsets and the verifier refuses a
	 * dereference of a modified ctx pointer. */
	__u32 idx = skb->cb[0];
	__u32 proto = READ_ONCE(skb->cb[2]);
	__u32 fam = READ_ONCE(skb->cb[4]);
	__u32 pkt_fam = READ_ONCE(skb->family);
	__u32 tflags = skb->cb[3];
	bool quiet = tflags & BPFWRAP_TEST_F_QUIET;
	int ret;

	sv.state = skb->cb[1];
	sv.protocol = proto ? proto : IPPROTO_TCP;
	sv.family = fam ? fam : pkt_fam;
	if (idx > 0 && idx <= BPFWRAP_TEST_NAMES_MAX) {
		idx -= 1;
		sv.owner = bpf_map_lookup_elem(&test_names, &idx);
	}
	ret = ingress_decide(skb, &sv, quiet, &d);
	if (tflags & BPFWRAP_TEST_F_NO_OUTPUT)
		return ret;
	skb->cb[0] = BPFWRAP_TEST_MAGIC | d.reason;
	skb->cb[1] = d.entry_verdict | (__u32)d.vif << 8 | (__u32)d.final << 16;
	skb->cb[2] = d.rule_id;
	skb->cb[3] = d.daemon_id;
	skb->cb[4] = d.flags | (__u32)d.event << 16;
	return ret;
}

/* lower_name - lower-case an ASCII daemon name in place */
static __always_inline void lower_name(char *s, int n)
{
	for (int i = 0; i < n; i++) {
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] += 'a' - 'A';
	}
}

/* bpfwrap_sock_create - remember who created a guarded inet TCP/UDP socket */
SEC("cgroup/sock_create")
int bpfwrap_sock_create(struct bpf_sock *sk)
{
	struct daemon_key name;
	struct sock_info *si;
	bool named;
	__u32 flags;

	if (sk->family != BPFWRAP_AF_INET && sk->family != BPFWRAP_AF_INET6)
		return 1;
	if (sk->protocol != IPPROTO_TCP && sk->protocol != IPPROTO_UDP)
		return 1;
	flags = owner_at_create(&name, &named);
	if (!owner_guarded(flags))
		return 1;	/* not guarded: no sk_info, never decided */
	si = bpf_sk_storage_get(&sk_info, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!si)
		return 1;	/* no memory: the socket is decided as daemon OTHER */
	bpf_get_current_comm(si->comm, sizeof(si->comm));
	si->tgid = bpf_get_current_pid_tgid() >> 32;
	si->flags = 0;
	if (named) {
		__builtin_memcpy(&si->daemon, &name, sizeof(si->daemon));
		si->flags |= BPFWRAP_SOCK_CGROUP_NAME;
	} else {
		/* tcpd's name for a daemon: its program's (comm: argv[0]'s
		 * basename, cut to 15 characters). */
		__builtin_memset(&si->daemon, 0, sizeof(si->daemon));
		__builtin_memcpy(si->daemon.name, si->comm, sizeof(si->comm));
		si->daemon.name[BPFWRAP_COMM_LEN - 1] = 0;
		lower_name(si->daemon.name, BPFWRAP_COMM_LEN);
	}
	if (flags & BPFWRAP_CG_BY_PORT)
		si->flags |= BPFWRAP_SOCK_BY_PORT;	/* named at its first packet */
	return 1;
}

/*
 * bpfwrap_sockops - a connection to a service socket was accepted: apply the
 * rule's keepalive/linger and report the accept when the rule logs accepts or
 * spawns. The matched entry is looked up again from the peer address (the
 * same decide() as ingress; counters are not touched twice).
 */
SEC("sockops")
int bpfwrap_sockops(struct bpf_sock_ops *skops)
{
	struct decision d = {};
	struct sock_view sv = {};
	struct pkt p = {};
	struct bpf_sock *sk;

	if (skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	sk = skops->sk;
	if (!sk)
		return 1;
	sv.state = BPF_TCP_ESTABLISHED;
	sv.protocol = IPPROTO_TCP;
	sv.family = skops->family;
	sv.owner = bpf_sk_storage_get(&sk_info, sk, 0, 0);
	if (!sv.owner)
		return 1;	/* not guarded (an accepted socket inherits its listener's sk_info) */

	p.proto = IPPROTO_TCP;
	/* remote_port: network order in the upper 16 bits on little-endian
	 * (the kernel's ctx rewrite shifts it); local_port: host order. */
	p.sport = (__u16)(skops->remote_port >> 16);
	p.dport = bpf_htons((__u16)skops->local_port);
	if (skops->family == BPFWRAP_AF_INET) {
		__u32 a = skops->remote_ip4, l = skops->local_ip4;

		p.family = BPFWRAP_AF_INET;
		__builtin_memcpy(p.saddr, &a, 4);
		__builtin_memcpy(p.daddr, &l, 4);
	} else if (skops->family == BPFWRAP_AF_INET6) {
		__u32 a[4], l[4];

		a[0] = skops->remote_ip6[0];
		a[1] = skops->remote_ip6[1];
		a[2] = skops->remote_ip6[2];
		a[3] = skops->remote_ip6[3];
		l[0] = skops->local_ip6[0];
		l[1] = skops->local_ip6[1];
		l[2] = skops->local_ip6[2];
		l[3] = skops->local_ip6[3];
		p.family = BPFWRAP_AF_INET6;
		__builtin_memcpy(p.saddr, a, 16);
		__builtin_memcpy(p.daddr, l, 16);
	} else {
		return 1;
	}

	decide_packet(sv.owner, &p, false, true, &d);
	if (d.final != BPFWRAP_ALLOW || d.reason == BPFWRAP_R_NO_POLICY)
		return 1;

	if (d.flags & BPFWRAP_F_KEEPALIVE) {
		int one = 1;

		if (bpf_setsockopt(skops, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)))
			stat_inc(BPFWRAP_STAT_SOCKOPT_FAILED, false);
	}
	if (d.flags & BPFWRAP_F_LINGER) {
		/* Kernel 6.18's bpf_setsockopt() refuses SO_LINGER (it is not in
		 * its SOL_SOCKET list; tests/bpf/test_loader.c checks). The
		 * failure is counted and the accept event carries the linger.
		 * Tried anyway: a later kernel may allow it. */
		struct {
			int l_onoff;
			int l_linger;
		} lg = { 1, (int)d.linger };

		if (bpf_setsockopt(skops, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)))
			stat_inc(BPFWRAP_STAT_SOCKOPT_FAILED, false);
	}
	if (d.flags & (BPFWRAP_F_LOG_ACCEPT | BPFWRAP_F_SPAWN | BPFWRAP_F_LINGER))
		emit_event(BPFWRAP_EV_ACCEPT, &d, &sv, &p, false);
	return 1;
}
