/*
 * kernel_match.c - tcpdmatch answered by the kernel (see kernel_match.h).
 *
 * A query becomes Ethernet + IPv4/IPv6 + TCP/UDP headers built from packed
 * structs (BPF_PROG_TEST_RUN for cgroup_skb programs strips an Ethernet
 * header first), the socket the twin should pretend to see goes into the
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
#include <stdlib.h>
#include <string.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfwrap.skel.h"
#include "kernel_match.h"
#include "loader.h"

#define ETH_HLEN 14

struct eth_hdr {
	uint8_t dst[6];
	uint8_t src[6];
	uint16_t proto;		/* network order */
} __attribute__((packed));

struct ip4_hdr {
	uint8_t ver_ihl;
	uint8_t tos;
	uint16_t tot_len;
	uint16_t id;
	uint16_t frag_off;
	uint8_t ttl;
	uint8_t protocol;
	uint16_t check;
	uint32_t saddr;
	uint32_t daddr;
} __attribute__((packed));

struct ip6_hdr {
	uint32_t ver_tc_flow;
	uint16_t payload_len;
	uint8_t nexthdr;
	uint8_t hop_limit;
	uint8_t saddr[16];
	uint8_t daddr[16];
} __attribute__((packed));

struct tcp_hdr {
	uint16_t sport;
	uint16_t dport;
	uint32_t seq;
	uint32_t ack;
	uint8_t doff;		/* data offset << 4 */
	uint8_t flags;
	uint16_t window;
	uint16_t check;
	uint16_t urg;
} __attribute__((packed));

struct udp_hdr {
	uint16_t sport;
	uint16_t dport;
	uint16_t len;
	uint16_t check;
} __attribute__((packed));

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

/* build_packet - Ethernet + IP + L4 for the query; returns the length */
static int build_packet(const struct km_query *q, uint8_t *buf, size_t size)
{
	static const uint8_t lo6[16] = { [15] = 1 };
	int proto = q->proto ? q->proto : IPPROTO_TCP;
	size_t l4len = proto == IPPROTO_TCP ? sizeof(struct tcp_hdr) : sizeof(struct udp_hdr);
	struct eth_hdr eth = { .proto = 0 };
	size_t off = 0;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return -EINVAL;
	if (q->family == AF_INET) {
		struct ip4_hdr ip = {
			.ver_ihl = 0x45,
			.tot_len = htons((uint16_t)(sizeof(ip) + l4len)),
			.ttl = 64,
			.protocol = (uint8_t)proto,
		};

		if (size < ETH_HLEN + sizeof(ip) + l4len)
			return -ENOBUFS;
		eth.proto = htons(0x0800);
		memcpy(&ip.saddr, &q->client, 4);
		if (q->has_server)
			memcpy(&ip.daddr, &q->server, 4);
		else
			ip.daddr = htonl(INADDR_LOOPBACK);
		memcpy(buf, &eth, ETH_HLEN);
		memcpy(buf + ETH_HLEN, &ip, sizeof(ip));
		off = ETH_HLEN + sizeof(ip);
	} else if (q->family == AF_INET6) {
		struct ip6_hdr ip = {
			.ver_tc_flow = htonl(6u << 28),
			.payload_len = htons((uint16_t)l4len),
			.nexthdr = (uint8_t)proto,
			.hop_limit = 64,
		};

		if (size < ETH_HLEN + sizeof(ip) + l4len)
			return -ENOBUFS;
		eth.proto = htons(0x86DD);
		memcpy(ip.saddr, &q->client, 16);
		memcpy(ip.daddr, q->has_server ? (const uint8_t *)&q->server : lo6, 16);
		memcpy(buf, &eth, ETH_HLEN);
		memcpy(buf + ETH_HLEN, &ip, sizeof(ip));
		off = ETH_HLEN + sizeof(ip);
	} else {
		return -EAFNOSUPPORT;
	}

	if (proto == IPPROTO_TCP) {
		struct tcp_hdr th = {
			.sport = htons(q->client_port ? q->client_port : 40000),
			.dport = htons(q->server_port ? q->server_port : 22),
			.seq = htonl(1),
			.doff = 5 << 4,
			.flags = q->tcp_flags ? q->tcp_flags : 0x02,
			.window = htons(65535),
		};

		memcpy(buf + off, &th, sizeof(th));
	} else {
		struct udp_hdr uh = {
			.sport = htons(q->client_port ? q->client_port : 40000),
			.dport = htons(q->server_port ? q->server_port : 53),
			.len = htons(sizeof(uh)),
		};

		memcpy(buf + off, &uh, sizeof(uh));
	}
	return (int)(off + l4len);
}

/* kernel_match_query - run one query through the kernel program */
int kernel_match_query(struct kernel_match *km, const struct km_query *q, struct km_result *r)
{
	uint8_t pkt[128];
	struct __sk_buff ctx_in, ctx_out;
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	uint32_t idx = 0;
	int proto = q->proto ? q->proto : IPPROTO_TCP;
	int len, err;

	memset(r, 0, sizeof(*r));
	len = build_packet(q, pkt, sizeof(pkt));
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
	opts.data_in = pkt;
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
