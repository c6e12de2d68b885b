/*
 * kernel_match.h - answer tcpdmatch-style queries with the kernel program
 * itself: each query is one BPF_PROG_TEST_RUN of bpfwrap_decide_test on a
 * crafted TCP SYN (or UDP datagram), against the maps of a loader. Proof
 * that what the kernel enforces equals what the evaluator says.
 *
 * Library code: returns 0 or -errno, never prints. Not thread-safe: one
 * kernel_match per loader, used by one thread.
 */
#ifndef BPFWRAP_KERNEL_MATCH_H
#define BPFWRAP_KERNEL_MATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include "bpfwrap.h"

struct loader;
struct kernel_match;

struct km_query {
	const char *daemon;	/* socket owner's daemon name; NULL: no owner (OTHER) */
	int family;		/* AF_INET or AF_INET6 (packet family) */
	struct in6_addr client;	/* AF_INET: the first 4 bytes; ::ffff:a.b.c.d for mapped */
	uint16_t client_port;	/* host order; 0: 40000 */
	bool has_server;
	struct in6_addr server;	/* as client; default 127.0.0.1 / ::1 */
	uint16_t server_port;	/* host order; 0: 22 */
	int proto;		/* IPPROTO_TCP (0 = TCP) or IPPROTO_UDP */
	int sock_family;	/* receiving socket's family; 0: the packet's */
	uint32_t sock_state;	/* BPFWRAP_TEST_STATE_*; 0: LISTEN (TCP) / CLOSE (UDP) */
	uint8_t tcp_flags;	/* 0: a SYN */
	bool side_effects;	/* count and emit events like real traffic (tests) */
};

struct km_result {
	int retval;			/* program return: 1 pass, 0 drop */
	uint8_t final;			/* BPFWRAP_ALLOW, BPFWRAP_DENY, or BPFWRAP_ASK (held) */
	uint8_t entry_verdict;		/* matched entry's verdict (0: none consulted) */
	uint8_t verdict_if_unknown;	/* matched entry's */
	uint8_t reason;			/* enum bpfwrap_reason */
	uint32_t rule_id;
	uint32_t daemon_id;
	uint16_t flags;			/* matched entry's enum bpfwrap_rule_flags */
	uint8_t event;			/* enum bpfwrap_event_type sent, 0 none */
	uint32_t duration_ns;		/* as measured by the kernel */
};

/* kernel_match_new - prepare queries against an open loader's maps */
int kernel_match_new(struct loader *ld, struct kernel_match **out);

/* kernel_match_free - release a kernel_match (the loader stays) */
void kernel_match_free(struct kernel_match *km);

/* kernel_match_query - run one query through the kernel program */
int kernel_match_query(struct kernel_match *km, const struct km_query *q, struct km_result *r);

/* kernel_match_addr - decide (daemon, client address text) like tcpdmatch:
 * "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1" */
int kernel_match_addr(struct kernel_match *km, const char *daemon, const char *client,
		      struct km_result *r);

#endif /* BPFWRAP_KERNEL_MATCH_H */
