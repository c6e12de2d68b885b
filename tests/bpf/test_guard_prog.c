/*
 * test_guard_prog.c - the guard's namespace programs (guard_lookup and
 * guard_trap_proven in bpf/guard.bpf.c) on crafted lookups with
 * BPF_PROG_TEST_RUN: a trap port steers every segment to the agent's
 * listener and bans nobody by itself; a completed handshake
 * (guard_trap_proven) bans; excepted clients are never banned; a flood of
 * distinct (spoofed) sources bans nobody and evicts nothing, and a full ban
 * map refuses new bans (counted) instead of evicting old ones; what a
 * lookup costs. The object is loaded on its own (nothing attached, nothing
 * pinned; no policy loaded, so decide() sees generation 0), in a network
 * namespace of the test's own (the listener binds its loopback). Needs
 * root; on a kernel without BPF_PROG_TEST_RUN for sk_lookup (ENOTSUPP) it
 * skips with "# skip: reason". An object that does not load fails, with
 * libbpf's log and the verifier's; so does any other error of a test run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>	/* cmocka needs it; bpfwrap itself never uses setjmp */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "bpfwrap_guard.h"
#include "guard.skel.h"

#define TRAP_PORT 2000
#define UDP_TRAP_PORT 69
#define SMALL_BANS 1024	/* the ban maps' size in these tests (bpfwrap run --max-bans) */
#define FLOOD (GUARD_BANS_MAX + GUARD_BANS_MAX / 2)	/* more sources than a default map holds */
#define SK_DROP 0
#define SK_PASS 1

/* print_libbpf - libbpf's warnings only */
static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

/* open_guard - the loaded guard object with one trap rule on TRAP_PORT/tcp for
 * ALL EXCEPT 10.255.0.0/16; fails the test when it does not load */
static struct guard_bpf *open_guard(bool reject)
{
	struct guard_rule rule = { .flags = GUARD_F_TRAP, .deny_s = 60, .line = 1 };
	struct guard_rule forever = { .flags = GUARD_F_TRAP | GUARD_F_UNPROVEN, .line = 2 };
	struct guard_list list = { .n = 1, .rule = { 1 } }, list2 = { .n = 1, .rule = { 2 } };
	struct guard_port_key pk = { .port = htons(TRAP_PORT), .proto = IPPROTO_TCP };
	struct guard_port_key pku = { .port = htons(UDP_TRAP_PORT), .proto = IPPROTO_UDP };
	struct guard_client_key ck;
	struct guard_bpf *s;
	uint32_t id = 1, id2 = 2, word;
	uint64_t bits;
	uint8_t one = 1, zero = 0;
	int err;

	if (geteuid() != 0) {
		printf("# skip: loading BPF needs root\n");
		skip();
	}
	libbpf_set_print(print_libbpf);
	s = guard_bpf__open();
	assert_non_null(s);
	s->rodata->reject_all = reject;
	bpf_map__set_max_entries(s->maps.guard_bans, SMALL_BANS);
	bpf_map__set_max_entries(s->maps.guard_bans_unproven, SMALL_BANS);
	err = guard_bpf__load(s);
	if (err) {
		guard_bpf__destroy(s);
		fail_msg("guard object: load got %s, want success (the verifier's log is above)",
			 strerror(-err));
	}
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.guard_rules), &id, &rule, 0), 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.guard_ports), &pk, &list, 0), 0);
	/* the port's bit, as user/kernel/guard.c sets it with the list */
	word = GUARD_PORT_WORD(TRAP_PORT, IPPROTO_TCP);
	bits = GUARD_PORT_BIT(TRAP_PORT);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.guard_trap_ports), &word, &bits, 0),
			 0);
	memset(&ck, 0, sizeof(ck));
	ck.prefixlen = 32;	/* the rule id alone: ALL */
	ck.rule_id = htonl(1);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.guard_clients), &ck, &one, 0), 0);
	ck.prefixlen = 32 + 96 + 16;	/* EXCEPT 10.255.0.0/16, v4-mapped */
	ck.addr[10] = ck.addr[11] = 0xff;
	ck.addr[12] = 10;
	ck.addr[13] = 255;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.guard_clients), &ck, &zero, 0), 0);
	/* rule 2: UDP_TRAP_PORT/udp : ALL : trap forever : unproven */
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.guard_rules), &id2, &forever, 0), 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.guard_ports), &pku, &list2, 0), 0);
	word = GUARD_PORT_WORD(UDP_TRAP_PORT, IPPROTO_UDP);
	bits = GUARD_PORT_BIT(UDP_TRAP_PORT);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.guard_trap_ports), &word, &bits, 0),
			 0);
	memset(&ck, 0, sizeof(ck));
	ck.prefixlen = 32;
	ck.rule_id = htonl(2);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.guard_clients), &ck, &one, 0), 0);
	return s;
}

/* run_lookup - run an sk_lookup program of the guard for an IPv4 lookup from
 * src_be to 127.0.0.1:port; its verdict, or -errno; *ns per run, *cookie the
 * selected socket's (0 none) */
static int run_lookup(int prog_fd, uint8_t proto, uint32_t src_be, uint16_t port, int repeat,
		      uint32_t *ns, uint64_t *cookie)
{
	struct bpf_sk_lookup ctx;
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .ctx_out = &ctx, .ctx_size_out = sizeof(ctx), .repeat = repeat);

	memset(&ctx, 0, sizeof(ctx));
	ctx.family = AF_INET;
	ctx.protocol = proto;
	ctx.remote_ip4 = src_be;
	ctx.remote_port = htons(40000);
	ctx.local_ip4 = htonl(0x7f000001);
	ctx.local_port = port;
	if (bpf_prog_test_run_opts(prog_fd, &o))
		return -errno;
	if (ns)
		*ns = o.duration;
	if (cookie)
		*cookie = ctx.cookie;
	return (int)o.retval;
}

/* lookup - guard_lookup for a TCP lookup (a segment the program cannot tell apart) */
static int lookup(struct guard_bpf *s, uint32_t src_be, uint16_t port, int repeat, uint32_t *ns)
{
	return run_lookup(bpf_program__fd(s->progs.guard_lookup), IPPROTO_TCP, src_be, port, repeat,
			  ns, NULL);
}

/* prove - guard_trap_proven for a handshake from src_be that completed on port */
static int prove(struct guard_bpf *s, uint32_t src_be, uint16_t port)
{
	return run_lookup(bpf_program__fd(s->progs.guard_trap_proven), IPPROTO_TCP, src_be, port, 1,
			  NULL, NULL);
}

/* skip_without_test_run - a test run's result rc: skips the test on a kernel without
 * BPF_PROG_TEST_RUN for sk_lookup (ENOTSUPP), fails it on any other error (then s is
 * destroyed) */
static void skip_without_test_run(struct guard_bpf *s, int rc)
{
	if (rc >= 0)
		return;
	guard_bpf__destroy(s);
	if (rc == -524 /* ENOTSUPP */ || rc == -EOPNOTSUPP) {
		printf("# skip: this kernel has no BPF_PROG_TEST_RUN for sk_lookup\n");
		skip();
	}
	fail_msg("BPF_PROG_TEST_RUN of an sk_lookup program: got %s, want a verdict",
		 strerror(-rc));
}

/* count_keys - entries in a map (bounded walk) */
static long count_keys(int fd)
{
	uint8_t key[16], next[16];
	void *prev = NULL;
	long n = 0;

	while (n <= 2L * FLOOD && bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, sizeof(key));
		prev = key;
		n++;
	}
	return n;
}

/* in_map - does a ban map hold this IPv4 client (v4-mapped key) */
static bool in_map(int fd, uint32_t src_be)
{
	uint8_t key[16] = { [10] = 0xff, [11] = 0xff };
	struct guard_ban b;

	memcpy(&key[12], &src_be, 4);
	return bpf_map_lookup_elem(fd, key, &b) == 0;
}

/* is_banned - does the proven ban map hold this IPv4 client */
static bool is_banned(struct guard_bpf *s, uint32_t src_be)
{
	return in_map(bpf_map__fd(s->maps.guard_bans), src_be);
}

/* gstat - a guard counter summed over CPUs */
static uint64_t gstat(struct guard_bpf *s, uint32_t idx)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t sum = 0, *v = calloc((size_t)(ncpu > 0 ? ncpu : 1), sizeof(*v));

	if (v && bpf_map_lookup_elem(bpf_map__fd(s->maps.guard_stats), &idx, v) == 0)
		for (int c = 0; c < ncpu; c++)
			sum += v[c];
	free(v);
	return sum;
}

/* test_segment_alone_never_bans - a lookup of a trap port (a SYN, or a forged ACK, RST,
 * FIN or SYN-ACK: sk_lookup cannot tell them apart) bans nobody; without the agent's
 * listener it is refused */
static void test_segment_alone_never_bans(void **state)
{
	struct guard_bpf *s = open_guard(false);
	uint32_t a = htonl(0xc0000207);
	int rc;

	rc = lookup(s, a, 8080, 1, NULL);
	skip_without_test_run(s, rc);
	if (rc != SK_PASS)
		fail_msg("non-trap port: got %d, want SK_PASS", rc);
	for (int i = 0; i < 5; i++) {
		rc = lookup(s, a, TRAP_PORT, 1, NULL);
		if (rc != SK_DROP || is_banned(s, a))
			fail_msg("trap port, no listener, segment %d: got verdict %d banned %d, want "
				 "SK_DROP and not banned", i, rc, is_banned(s, a));
	}
	if (gstat(s, GUARD_STAT_TRAP_PACKETS) != 5 || gstat(s, GUARD_STAT_TRAPS) != 0)
		fail_msg("counters: got trap_packets %llu trap_hits %llu, want 5 and 0",
			 (unsigned long long)gstat(s, GUARD_STAT_TRAP_PACKETS),
			 (unsigned long long)gstat(s, GUARD_STAT_TRAPS));
	guard_bpf__destroy(s);
}

/* own_netns - this process in a new network namespace with lo up; false if it cannot */
static bool own_netns(void)
{
	static bool done;
	struct ifreq ifr;
	int fd;

	if (done)
		return true;
	if (unshare(CLONE_NEWNET))
		return false;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	done = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags |= IFF_UP) &&
	       ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
	close(fd);
	return done;
}

/* test_trap_steers_to_listener - with the agent's listener in guard_trap_sk, a trap port's
 * lookup selects it (the kernel then answers as that listener: only a real handshake
 * completes); other ports are left alone */
static void test_trap_steers_to_listener(void **state)
{
	struct guard_bpf *s = open_guard(false);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint64_t cookie = 0, want = 0, v;
	socklen_t len = sizeof(want);
	uint32_t k = GUARD_TRAP_SK_V4, a = htonl(0xc0000207);
	int fd, rc;

	if (!own_netns()) {
		guard_bpf__destroy(s);
		fail_msg("a network namespace of the test's own: got %s, want one", strerror(errno));
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &want, &len), 0);
	v = (uint64_t)fd;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.guard_trap_sk), &k, &v, 0), 0);
	rc = run_lookup(bpf_program__fd(s->progs.guard_lookup), IPPROTO_TCP, a, TRAP_PORT, 1, NULL,
			&cookie);
	skip_without_test_run(s, rc);
	if (rc != SK_PASS || cookie != want || is_banned(s, a))
		fail_msg("trap port with a listener: got verdict %d socket %#llx banned %d, want "
			 "SK_PASS, the listener %#llx, not banned", rc, (unsigned long long)cookie,
			 is_banned(s, a), (unsigned long long)want);
	cookie = 0;
	rc = run_lookup(bpf_program__fd(s->progs.guard_lookup), IPPROTO_TCP, a, 8080, 1, NULL,
			&cookie);
	if (rc != SK_PASS || cookie)
		fail_msg("other port: got verdict %d socket %#llx, want SK_PASS and none", rc,
			 (unsigned long long)cookie);
	close(fd);
	guard_bpf__destroy(s);
}

/* test_proven_trap_bans - a completed handshake on a trap port bans (guard_trap_proven);
 * not an excepted client, not on another port */
static void test_proven_trap_bans(void **state)
{
	struct guard_bpf *s = open_guard(false);
	uint32_t a = htonl(0xc0000207), excepted = htonl(0x0aff0001), b = htonl(0xc0000208);
	int rc;

	rc = prove(s, a, TRAP_PORT);
	skip_without_test_run(s, rc);
	if (rc != SK_PASS || !is_banned(s, a))
		fail_msg("proven on the trap port: got %d banned %d, want SK_PASS and banned", rc,
			 is_banned(s, a));
	/* drop mode: the banned client passes here; the cgroup program drops it silently */
	rc = lookup(s, a, 8080, 1, NULL);
	if (rc != SK_PASS)
		fail_msg("banned client, drop mode, no owner: got %d, want SK_PASS", rc);
	rc = prove(s, excepted, TRAP_PORT);
	if (rc != SK_DROP || is_banned(s, excepted))
		fail_msg("excepted client proven on the trap port: got %d banned %d, want SK_DROP, "
			 "not banned", rc, is_banned(s, excepted));
	rc = prove(s, b, 8080);
	if (rc != SK_DROP || is_banned(s, b))
		fail_msg("proven on another port: got %d banned %d, want SK_DROP, not banned", rc,
			 is_banned(s, b));
	if (gstat(s, GUARD_STAT_TRAPS) != 1)
		fail_msg("trap_hits: got %llu, want 1", (unsigned long long)gstat(s, GUARD_STAT_TRAPS));
	guard_bpf__destroy(s);
}

/* test_udp_trap_unproven - a datagram to a UDP trap bans only on an `unproven` line, and
 * into the unproven map */
static void test_udp_trap_unproven(void **state)
{
	struct guard_bpf *s = open_guard(false);
	struct guard_rule plain = { .flags = GUARD_F_TRAP, .deny_s = 60, .line = 2 };
	uint32_t a = htonl(0xc0000209), b = htonl(0xc000020a), id2 = 2;
	int rc, ufd = bpf_map__fd(s->maps.guard_bans_unproven);

	rc = run_lookup(bpf_program__fd(s->progs.guard_lookup), IPPROTO_UDP, a, UDP_TRAP_PORT, 1,
			NULL, NULL);
	skip_without_test_run(s, rc);
	if (rc != SK_DROP || !in_map(ufd, a) || is_banned(s, a))
		fail_msg("udp trap with unproven: got %d unproven-banned %d proven-banned %d, want "
			 "SK_DROP, 1, 0", rc, in_map(ufd, a), is_banned(s, a));
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.guard_rules), &id2, &plain, 0), 0);
	rc = run_lookup(bpf_program__fd(s->progs.guard_lookup), IPPROTO_UDP, b, UDP_TRAP_PORT, 1,
			NULL, NULL);
	if (rc != SK_DROP || in_map(ufd, b))
		fail_msg("udp trap without unproven: got %d banned %d, want SK_DROP, not banned", rc,
			 in_map(ufd, b));
	guard_bpf__destroy(s);
}

/* test_reject_bans_everywhere - with --reject a banned client is refused on every port */
static void test_reject_bans_everywhere(void **state)
{
	struct guard_bpf *s = open_guard(true);
	uint32_t a = htonl(0xc0000207), b = htonl(0xc0000208);
	int rc;

	rc = prove(s, a, TRAP_PORT);
	skip_without_test_run(s, rc);
	rc = lookup(s, a, 8080, 1, NULL);
	if (rc != SK_DROP)
		fail_msg("banned client, reject mode: got %d, want SK_DROP", rc);
	rc = lookup(s, b, 8080, 1, NULL);
	if (rc != SK_PASS)
		fail_msg("other client, reject mode, no owner: got %d, want SK_PASS", rc);
	guard_bpf__destroy(s);
}

/* test_flood_cannot_evict - a `forever` ban, then 1.5x more distinct spoofed sources than a
 * default ban map holds hit the trap port: none is banned and the forever ban stays; then
 * 1.5x more proven bans than the (small) map holds: it fills, keeps every earlier ban,
 * and refuses the rest, counted */
static void test_flood_cannot_evict(void **state)
{
	struct guard_bpf *s = open_guard(false);
	struct guard_rule forever = { .flags = GUARD_F_TRAP, .deny_s = 0, .line = 1 };
	uint32_t first = htonl(0xc0000201), id = 1;
	uint64_t refused;
	long n;
	int rc, misses = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.guard_rules), &id, &forever, 0), 0);
	rc = prove(s, first, TRAP_PORT);
	skip_without_test_run(s, rc);
	for (uint32_t i = 0; i < FLOOD; i++) {
		rc = lookup(s, htonl(0x64000000u + i), TRAP_PORT, 1, NULL);	/* 100.x.y.z */
		if (rc != SK_DROP && misses++ < 5)
			printf("source %u: got %d, want SK_DROP\n", i, rc);
	}
	n = count_keys(bpf_map__fd(s->maps.guard_bans));
	if (misses || n != 1 || !is_banned(s, first))
		fail_msg("after %d spoofed sources: got %d not refused, %ld bans, forever ban %s; want "
			 "0, 1, kept", FLOOD, misses, n, is_banned(s, first) ? "kept" : "evicted");
	for (uint32_t i = 0; i < SMALL_BANS + SMALL_BANS / 2; i++)
		prove(s, htonl(0x65000000u + i), TRAP_PORT);	/* 101.x.y.z */
	n = count_keys(bpf_map__fd(s->maps.guard_bans));
	refused = gstat(s, GUARD_STAT_BANS_REFUSED);
	if (n != SMALL_BANS || !is_banned(s, first) || !is_banned(s, htonl(0x65000000u)) ||
	    refused != SMALL_BANS / 2 + 1)
		fail_msg("after %d proven bans into %d entries: got %ld entries, forever ban %s, first "
			 "new ban %s, %llu refused; want %d, kept, kept, %d", SMALL_BANS + SMALL_BANS / 2,
			 SMALL_BANS, n, is_banned(s, first) ? "kept" : "evicted",
			 is_banned(s, htonl(0x65000000u)) ? "kept" : "evicted",
			 (unsigned long long)refused, SMALL_BANS, SMALL_BANS / 2 + 1);
	guard_bpf__destroy(s);
}

/* test_cost - ns per lookup on the paths that matter (printed, not asserted: a benchmark) */
static void test_cost(void **state)
{
	struct guard_bpf *s = open_guard(false);
	uint32_t ns_none = 0, ns_trap = 0, ns_banned = 0;
	uint32_t a = htonl(0xc0000209);

	skip_without_test_run(s, lookup(s, a, 9999, 100000, &ns_none));
	skip_without_test_run(s, lookup(s, a, TRAP_PORT, 100000, &ns_trap));
	skip_without_test_run(s, prove(s, a, TRAP_PORT));
	skip_without_test_run(s, lookup(s, a, 8080, 100000, &ns_banned));
	printf("# info: guard_lookup ns per lookup: no rule %u, trap port %u, banned client %u\n",
	       ns_none, ns_trap, ns_banned);
	guard_bpf__destroy(s);
	assert_true(ns_none > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_segment_alone_never_bans),
		cmocka_unit_test(test_trap_steers_to_listener),
		cmocka_unit_test(test_proven_trap_bans),
		cmocka_unit_test(test_udp_trap_unproven),
		cmocka_unit_test(test_reject_bans_everywhere),
		cmocka_unit_test(test_flood_cannot_evict),
		cmocka_unit_test(test_cost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
