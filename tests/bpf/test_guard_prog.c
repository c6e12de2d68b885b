/*
 * test_guard_prog.c - the guard's namespace program (guard_lookup in
 * bpf/guard.bpf.c) on crafted lookups with BPF_PROG_TEST_RUN: a trap port
 * bans, the ban map stays bounded under a flood of distinct (spoofed)
 * sources, excepted clients are never banned, and what a lookup costs.
 * The object is loaded on its own (nothing attached, nothing pinned; no
 * policy loaded, so decide() sees generation 0). Needs root; on a kernel
 * without BPF_PROG_TEST_RUN for sk_lookup (ENOTSUPP) it skips with "# skip:
 * reason". An object that does not load fails, with libbpf's log and the
 * verifier's; so does any other error of a test run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>	/* cmocka needs it; bpfwrap itself never uses setjmp */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "bpfwrap_guard.h"
#include "guard.skel.h"

#define TRAP_PORT 2000
#define FLOOD (GUARD_BANS_MAX + GUARD_BANS_MAX / 2)	/* more sources than the map holds */
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
	struct guard_list list = { .n = 1, .rule = { 1 } };
	struct guard_port_key pk = { .port = htons(TRAP_PORT), .proto = IPPROTO_TCP };
	struct guard_client_key ck;
	struct guard_bpf *s;
	uint32_t id = 1, word;
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
	return s;
}

/* lookup - run guard_lookup for an IPv4 TCP lookup; its verdict, or -errno; *ns per run */
static int lookup(struct guard_bpf *s, uint32_t src_be, uint16_t port, int repeat, uint32_t *ns)
{
	struct bpf_sk_lookup ctx;
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = repeat);

	memset(&ctx, 0, sizeof(ctx));
	ctx.family = AF_INET;
	ctx.protocol = IPPROTO_TCP;
	ctx.remote_ip4 = src_be;
	ctx.remote_port = htons(40000);
	ctx.local_ip4 = htonl(0x7f000001);
	ctx.local_port = port;
	if (bpf_prog_test_run_opts(bpf_program__fd(s->progs.guard_lookup), &o))
		return -errno;
	if (ns)
		*ns = o.duration;
	return (int)o.retval;
}

/* checked_lookup - lookup(); skips the test on a kernel without BPF_PROG_TEST_RUN for
 * sk_lookup (ENOTSUPP), fails it on any other error (then s is destroyed) */
static int checked_lookup(struct guard_bpf *s, uint32_t src_be, uint16_t port, int repeat,
			  uint32_t *ns)
{
	int rc = lookup(s, src_be, port, repeat, ns);

	if (rc == -524 /* ENOTSUPP */ || rc == -EOPNOTSUPP) {
		guard_bpf__destroy(s);
		printf("# skip: this kernel has no BPF_PROG_TEST_RUN for sk_lookup\n");
		skip();
	}
	if (rc < 0) {
		guard_bpf__destroy(s);
		fail_msg("BPF_PROG_TEST_RUN of guard_lookup, port %u: got %s, want a verdict",
			 (unsigned)port, strerror(-rc));
	}
	return rc;
}

/* count_bans - entries in the ban map (bounded walk) */
static long count_bans(struct guard_bpf *s)
{
	uint8_t key[16], next[16];
	void *prev = NULL;
	long n = 0;
	int fd = bpf_map__fd(s->maps.guard_bans);

	while (n <= 2L * GUARD_BANS_MAX && bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, sizeof(key));
		prev = key;
		n++;
	}
	return n;
}

/* is_banned - does the ban map hold this IPv4 client (v4-mapped key) */
static bool is_banned(struct guard_bpf *s, uint32_t src_be)
{
	uint8_t key[16] = { [10] = 0xff, [11] = 0xff };
	struct guard_ban b;

	memcpy(&key[12], &src_be, 4);
	return bpf_map_lookup_elem(bpf_map__fd(s->maps.guard_bans), key, &b) == 0;
}

/* test_trap_port_bans - a lookup of the trap port is refused and bans; others are not */
static void test_trap_port_bans(void **state)
{
	struct guard_bpf *s = open_guard(false);
	uint32_t a = htonl(0xc0000207), excepted = htonl(0x0aff0001);
	int rc;

	rc = checked_lookup(s, a, 8080, 1, NULL);
	if (rc != SK_PASS)
		fail_msg("non-trap port before the ban: got %d, want SK_PASS", rc);
	rc = lookup(s, a, TRAP_PORT, 1, NULL);
	if (rc != SK_DROP || !is_banned(s, a))
		fail_msg("trap port: got verdict %d banned %d, want SK_DROP and banned", rc,
			 is_banned(s, a));
	/* drop mode: the banned client passes here; the cgroup program drops it silently */
	rc = lookup(s, a, 8080, 1, NULL);
	if (rc != SK_PASS)
		fail_msg("banned client, drop mode, no owner: got %d, want SK_PASS", rc);
	rc = lookup(s, excepted, TRAP_PORT, 1, NULL);
	if (rc != SK_PASS || is_banned(s, excepted))
		fail_msg("excepted client on the trap port: got verdict %d banned %d, want SK_PASS, "
			 "not banned", rc, is_banned(s, excepted));
	guard_bpf__destroy(s);
}

/* test_reject_bans_everywhere - with --reject a banned client is refused on every port */
static void test_reject_bans_everywhere(void **state)
{
	struct guard_bpf *s = open_guard(true);
	uint32_t a = htonl(0xc0000207), b = htonl(0xc0000208);
	int rc;

	checked_lookup(s, a, TRAP_PORT, 1, NULL);
	rc = lookup(s, a, 8080, 1, NULL);
	if (rc != SK_DROP)
		fail_msg("banned client, reject mode: got %d, want SK_DROP", rc);
	rc = lookup(s, b, 8080, 1, NULL);
	if (rc != SK_PASS)
		fail_msg("other client, reject mode, no owner: got %d, want SK_PASS", rc);
	guard_bpf__destroy(s);
}

/* test_flood_bounded - 1.5x more distinct sources than the ban map holds: every one is
 * refused, the map never holds more than its size, and the newest bans are kept (LRU
 * evicts the oldest) */
static void test_flood_bounded(void **state)
{
	struct guard_bpf *s = open_guard(false);
	long n;
	int misses = 0, kept = 0;

	for (uint32_t i = 0; i < FLOOD; i++) {
		int rc = checked_lookup(s, htonl(0x64000000u + i), TRAP_PORT, 1, NULL);	/* 100.x.y.z */

		if (rc != SK_DROP && misses++ < 5)
			printf("source %u: got %d, want SK_DROP\n", i, rc);
	}
	n = count_bans(s);
	for (uint32_t i = FLOOD - 100; i < FLOOD; i++)
		kept += is_banned(s, htonl(0x64000000u + i));
	guard_bpf__destroy(s);
	if (misses)
		fail_msg("%d of %d trap hits not refused", misses, FLOOD);
	if (n > GUARD_BANS_MAX || n < GUARD_BANS_MAX / 2)
		fail_msg("ban map after %d sources: got %ld entries, want <= %d (and most of it used)",
			 FLOOD, n, GUARD_BANS_MAX);
	if (kept != 100)
		fail_msg("newest 100 bans: got %d kept, want 100 (LRU evicts the oldest)", kept);
}

/* test_cost - ns per lookup on the paths that matter (printed, not asserted: a benchmark) */
static void test_cost(void **state)
{
	struct guard_bpf *s = open_guard(false);
	uint32_t ns_none = 0, ns_trap = 0, ns_banned = 0;
	uint32_t a = htonl(0xc0000209);

	checked_lookup(s, a, 9999, 100000, &ns_none);
	checked_lookup(s, a, TRAP_PORT, 100000, &ns_trap);
	checked_lookup(s, a, 8080, 100000, &ns_banned);
	printf("# info: guard_lookup ns per lookup: no rule %u, trap port hit %u, banned client %u\n",
	       ns_none, ns_trap, ns_banned);
	guard_bpf__destroy(s);
	assert_true(ns_none > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trap_port_bans),
		cmocka_unit_test(test_reject_bans_everywhere),
		cmocka_unit_test(test_flood_bounded),
		cmocka_unit_test(test_cost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
