/*
 * kernel_match.c - tcpdmatch answered by the kernel (see kernel_match.h).
 *
 * A query becomes Ethernet + IPv4/IPv6 + TCP/UDP headers built from the
 * <linux/if_ether.h>, <linux/ip.h>, <linux/ipv6.h>, <linux/tcp.h> and
 * <linux/udp.h> structs, laid out as the kernel selftests' test packets
 * (BPF_PROG_TEST_RUN for cgroup_skb programs strips an Ethernet header
 * first), the socket the twin should pretend to see goes into the
 * __sk_buff cb[] words, and the decision comes back in cb[] of ctx_out (the
 * protocol is documented in include/bpfwrap.h). Daemon names are given to
 * the twin through the test_names map: each distinct name is written once
 * and then referred to by index.
 *
 * Errors: -errno from the kernel or for bad input (-EINVAL), nothing printed.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfwrap.skel.h"
#include "kernel_match.h"
#include "loader.h"

/* Defaults for what a query leaves out. */
#define KM_CLIENT_PORT 40000
#define KM_TCP_PORT 22
#define KM_UDP_PORT 53
#define KM_TTL 64
#define KM_TCP_WINDOW 65535
#define KM_TCP_DOFF 5		/* 32-bit words: a header without options */
#define KM_TCP_FLAGS_SHIFT 16	/* the flags byte's place in tcp_flag_word() */
#define KM_IP4_IHL 5		/* 32-bit words: a header without options */

/* The L4 header of a test packet. */
union km_l4 {
	struct tcphdr tcp;
	struct udphdr udp;
};

/* Test packets laid out as the kernel selftests' pkt_v4 / pkt_v6. */
struct km_pkt_v4 {
	struct ethhdr eth;
	struct iphdr iph;
	union km_l4 l4;
} __attribute__((packed));

struct km_pkt_v6 {
	struct ethhdr eth;
	struct ipv6hdr iph;
	union km_l4 l4;
} __attribute__((packed));

union km_pkt {
	struct km_pkt_v4 v4;
	struct km_pkt_v6 v6;
};

struct kernel_match {
	int prog_fd;
	int names_fd;
	char names[BPFWRAP_TEST_NAMES_MAX][BPFWRAP_DAEMON_NAME_MAX];
	unsigned n_names;
	unsigned next_victim;	/* round-robin reuse once the table is full */
};

/* kernel_match_new - prepare queries against an open loader's maps */
int kernel_match_new(struct loader *ld, struct kernel_match **out)
{
	struct bpfwrap_bpf *s = loader_skel(ld);
	struct kernel_match *km;

	*out = NULL;
	km = calloc(1, sizeof(*km));
	if (!km)
		return -ENOMEM;
	km->prog_fd = bpf_program__fd(s->progs.bpfwrap_decide_test);
	km->names_fd = bpf_map__fd(s->maps.test_names);
	if (km->prog_fd < 0 || km->names_fd < 0) {
		free(km);
		return -EBADF;
	}
	*out = km;
	return 0;
}

/* kernel_match_free - release a kernel_match (the loader stays) */
void kernel_match_free(struct kernel_match *km)
{
	free(km);
}

/* name_index - the test_names index + 1 for a daemon name, writing it if new */
static int name_index(struct kernel_match *km, const char *daemon, uint32_t *idx)
{
	struct sock_info si;
	char key[BPFWRAP_DAEMON_NAME_MAX];
	unsigned i;
	size_t n;

	n = strlen(daemon);
	if (n == 0 || n >= BPFWRAP_DAEMON_NAME_MAX)
		return -EINVAL;
	memset(key, 0, sizeof(key));
	for (i = 0; i < n; i++)
		key[i] = (char)tolower((unsigned char)daemon[i]);
	for (i = 0; i < km->n_names; i++) {
		if (!memcmp(km->names[i], key, sizeof(key))) {
			*idx = i + 1;
			return 0;
		}
	}
	if (km->n_names < BPFWRAP_TEST_NAMES_MAX) {
		i = km->n_names;
	} else {
		i = km->next_victim;
		km->next_victim = (km->next_victim + 1) % BPFWRAP_TEST_NAMES_MAX;
	}
	/* What sock_create would record for a cgroup-named daemon. */
	memset(&si, 0, sizeof(si));
	memcpy(si.daemon.name, key, sizeof(key));
	memcpy(si.comm, key, BPFWRAP_COMM_LEN - 1);
	si.tgid = 0;
	si.flags = BPFWRAP_SOCK_CGROUP_NAME;
	if (bpf_map_update_elem(km->names_fd, &i, &si, BPF_ANY) < 0)
		return -errno;
	memcpy(km->names[i], key, sizeof(key));
	if (i == km->n_names)
		km->n_names++;
	*idx = i + 1;
	return 0;
}

/* build_l4 - the TCP or UDP header for the query */
static union km_l4 build_l4(const struct km_query *q, int proto)
{
	uint16_t sport = q->client_port ? q->client_port : KM_CLIENT_PORT;
	union km_l4 l4;

	memset(&l4, 0, sizeof(l4));

	if (proto == IPPROTO_TCP) {
		l4.tcp.source = htons(sport);
		l4.tcp.dest = htons(q->server_port ? q->server_port : KM_TCP_PORT);
		l4.tcp.seq = htonl(1);
		l4.tcp.doff = KM_TCP_DOFF;
		l4.tcp.window = htons(KM_TCP_WINDOW);
		/* a query's flags byte as is, else a SYN (linux/tcp.h's flag word) */
		tcp_flag_word(&l4.tcp) |= q->tcp_flags
			? htonl((uint32_t)q->tcp_flags << KM_TCP_FLAGS_SHIFT) : TCP_FLAG_SYN;
	} else {
		l4.udp.source = htons(sport);
		l4.udp.dest = htons(q->server_port ? q->server_port : KM_UDP_PORT);
		l4.udp.len = htons(sizeof(l4.udp));
	}
	return l4;
}

/* build_packet - Ethernet + IP + L4 for the query; returns the length */
static int build_packet(const struct km_query *q, union km_pkt *pkt)
{
	int proto = q->proto ? q->proto : IPPROTO_TCP;
	size_t l4len = proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr);

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return -EINVAL;
	memset(pkt, 0, sizeof(*pkt));
	if (q->family == AF_INET) {
		struct km_pkt_v4 *p = &pkt->v4;

		p->eth.h_proto = htons(ETH_P_IP);
		p->iph.version = 4;
		p->iph.ihl = KM_IP4_IHL;
		p->iph.tot_len = htons((uint16_t)(sizeof(p->iph) + l4len));
		p->iph.ttl = KM_TTL;
		p->iph.protocol = (uint8_t)proto;
		memcpy(&p->iph.saddr, &q->client, sizeof(p->iph.saddr));
		if (q->has_server)
			memcpy(&p->iph.daddr, &q->server, sizeof(p->iph.daddr));
		else
			p->iph.daddr = htonl(INADDR_LOOPBACK);
		p->l4 = build_l4(q, proto);
		return (int)(offsetof(struct km_pkt_v4, l4) + l4len);
	}
	if (q->family == AF_INET6) {
		struct km_pkt_v6 *p = &pkt->v6;

		p->eth.h_proto = htons(ETH_P_IPV6);
		p->iph.version = 6;
		p->iph.payload_len = htons((uint16_t)l4len);
		p->iph.nexthdr = (uint8_t)proto;
		p->iph.hop_limit = KM_TTL;
		memcpy(&p->iph.saddr, &q->client, sizeof(p->iph.saddr));
		if (q->has_server)
			memcpy(&p->iph.daddr, &q->server, sizeof(p->iph.daddr));
		else
			p->iph.daddr = in6addr_loopback;
		p->l4 = build_l4(q, proto);
		return (int)(offsetof(struct km_pkt_v6, l4) + l4len);
	}
	return -EAFNOSUPPORT;
}

/* kernel_match_query - run one query through the kernel program */
int kernel_match_query(struct kernel_match *km, const struct km_query *q, struct km_result *r)
{
	union km_pkt pkt;
	struct __sk_buff ctx_in, ctx_out;
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	uint32_t idx = 0;
	int proto = q->proto ? q->proto : IPPROTO_TCP;
	int len, err;

	memset(r, 0, sizeof(*r));
	len = build_packet(q, &pkt);
	if (len < 0)
		return len;
	if (q->daemon) {
		err = name_index(km, q->daemon, &idx);
		if (err)
			return err;
	}
	memset(&ctx_in, 0, sizeof(ctx_in));
	memset(&ctx_out, 0, sizeof(ctx_out));
	ctx_in.cb[0] = idx;
	ctx_in.cb[1] = q->sock_state ? q->sock_state
				     : proto == IPPROTO_TCP ? BPFWRAP_TEST_STATE_LISTEN
							    : BPFWRAP_TEST_STATE_CLOSE;
	ctx_in.cb[2] = (uint32_t)proto;
	ctx_in.cb[3] = q->side_effects ? 0 : BPFWRAP_TEST_F_QUIET;
	ctx_in.cb[4] = q->sock_family == AF_INET	? BPFWRAP_AF_INET
		       : q->sock_family == AF_INET6 ? BPFWRAP_AF_INET6
						    : 0;
	opts.data_in = &pkt;
	opts.data_size_in = (uint32_t)len;
	opts.ctx_in = &ctx_in;
	opts.ctx_size_in = sizeof(ctx_in);
	opts.ctx_out = &ctx_out;
	opts.ctx_size_out = sizeof(ctx_out);
	opts.repeat = 1;
	if (bpf_prog_test_run_opts(km->prog_fd, &opts) < 0)
		return -errno;
	if ((ctx_out.cb[0] & BPFWRAP_TEST_MAGIC_MASK) != BPFWRAP_TEST_MAGIC)
		return -EPROTO;	/* the twin did not run to the end */
	r->retval = (int)opts.retval;
	r->reason = (uint8_t)(ctx_out.cb[0] & 0xff);
	r->entry_verdict = (uint8_t)(ctx_out.cb[1] & 0xff);
	r->verdict_if_unknown = (uint8_t)((ctx_out.cb[1] >> 8) & 0xff);
	r->final = (uint8_t)((ctx_out.cb[1] >> 16) & 0xff);
	r->rule_id = ctx_out.cb[2];
	r->daemon_id = ctx_out.cb[3];
	r->flags = (uint16_t)(ctx_out.cb[4] & 0xffff);
	r->event = (uint8_t)(ctx_out.cb[4] >> 16);
	r->duration_ns = opts.duration;
	return 0;
}

/* kernel_match_addr - decide (daemon, client address text) like tcpdmatch */
int kernel_match_addr(struct kernel_match *km, const char *daemon, const char *client,
		      struct km_result *r)
{
	struct km_query q;

	memset(&q, 0, sizeof(q));
	q.daemon = daemon;
	if (inet_pton(AF_INET, client, &q.client) == 1)
		q.family = AF_INET;
	else if (inet_pton(AF_INET6, client, &q.client) == 1)
		q.family = AF_INET6;
	else
		return -EINVAL;
	return kernel_match_query(km, &q, r);
}
