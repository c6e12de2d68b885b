/*
 * test_prog.c - the BPF decision on crafted packets with BPF_PROG_TEST_RUN
 * (needs root). The maps are filled by hand from compiled_policy structs
 * built here, so this level does not depend on the compiler: longest prefix,
 * per-daemon tables vs OTHER, v4/v6/v4-mapped clients, ASK with and without
 * an agent, the verdict cache, counters, events, the fast path, garbage
 * packets, and slot flips (also under concurrent queries).
 *
 * Every case prints "got X, want Y" on failure. A kernel without
 * BPF_PROG_TEST_RUN for cgroup_skb skips with "# skip: reason".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>	/* cmocka needs it; bpfwrap itself never uses setjmp */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfwrap.skel.h"
#include "compile.h"
#include "kernel_match.h"
#include "loader.h"

/* ---- hand-built policies ---------------------------------------------- */

#define D_SSHD 1
#define D_FTPD 2
#define D_VSFTPD 3

/* v4 - an IPv4 table entry: daemon, "a.b.c.d", prefix length, entry */
static struct compiled_v4 v4(uint32_t daemon, const char *net, unsigned len, uint8_t verdict,
			     uint32_t rule, uint8_t vif, uint16_t flags)
{
	struct compiled_v4 e;

	memset(&e, 0, sizeof(e));
	e.key.prefixlen = 32 + len;
	e.key.daemon_id = htonl(daemon);
	inet_pton(AF_INET, net, &e.key.addr);
	e.entry.verdict = verdict;
	e.entry.verdict_if_unknown = vif;
	e.entry.flags = flags;
	e.entry.rule_id = rule;
	return e;
}

/* v6 - an IPv6 table entry */
static struct compiled_v6 v6(uint32_t daemon, const char *net, unsigned len, uint8_t verdict,
			     uint32_t rule, uint8_t vif, uint16_t flags)
{
	struct compiled_v6 e;

	memset(&e, 0, sizeof(e));
	e.key.prefixlen = 32 + len;
	e.key.daemon_id = htonl(daemon);
	inet_pton(AF_INET6, net, e.key.addr);
	e.entry.verdict = verdict;
	e.entry.verdict_if_unknown = vif;
	e.entry.flags = flags;
	e.entry.rule_id = rule;
	return e;
}

#define A BPFWRAP_ALLOW
#define D BPFWRAP_DENY
#define Q BPFWRAP_ASK

static struct compiled_daemon main_daemons[] = {
	{ .id = D_SSHD, .name = "sshd" },
	{ .id = D_FTPD, .name = "ftpd" },
	{ .id = D_VSFTPD, .name = "VSFTPD" },	/* the loader lower-cases */
};
static struct compiled_v4 main_v4[16];
static struct compiled_v6 main_v6[16];
static struct compiled_policy main_policy;

/* build_main_policy - the policy most cases run against */
static void build_main_policy(void)
{
	size_t n = 0, m = 0;

	main_v4[n++] = v4(0, "0.0.0.0", 0, A, 0, A, BPFWRAP_F_DEFAULT);
	main_v4[n++] = v4(0, "10.0.0.0", 8, D, 5, D, 0);
	main_v4[n++] = v4(D_SSHD, "0.0.0.0", 0, D, 4, D, BPFWRAP_F_SPAWN);
	main_v4[n++] = v4(D_SSHD, "192.168.0.0", 16, A, 1, A, BPFWRAP_F_KEEPALIVE);
	main_v4[n++] = v4(D_SSHD, "192.168.1.0", 24, D, 2, D, 0);
	main_v4[n++] = v4(D_SSHD, "192.168.1.7", 32, Q, 3, D, BPFWRAP_F_SPAWN);
	main_v4[n++] = v4(D_SSHD, "172.16.0.0", 12, Q, 6, A, 0);
	main_v4[n++] = v4(D_FTPD, "0.0.0.0", 0, A, 0, A, BPFWRAP_F_DEFAULT);
	main_v4[n++] = v4(D_VSFTPD, "0.0.0.0", 0, D, 7, D, 0);
	main_v4[n++] = v4(0, "172.20.0.0", 16, Q, 9, D, 0);	/* OTHER asks (a daemon glob) */
	main_v6[m++] = v6(0, "::", 0, A, 0, A, BPFWRAP_F_DEFAULT);
	main_v6[m++] = v6(D_SSHD, "::", 0, D, 4, D, 0);
	main_v6[m++] = v6(D_SSHD, "2001:db8::", 32, A, 1, A, 0);
	main_v6[m++] = v6(D_SSHD, "2001:db8:1::", 48, D, 2, D, 0);
	main_v6[m++] = v6(D_SSHD, "2001:db8:2::", 48, Q, 8, D, 0);
	main_v6[m++] = v6(D_FTPD, "::", 0, A, 0, A, BPFWRAP_F_DEFAULT);
	main_v6[m++] = v6(D_VSFTPD, "::", 0, D, 7, D, 0);

	memset(&main_policy, 0, sizeof(main_policy));
	main_policy.daemons = main_daemons;
	main_policy.n_daemons = sizeof(main_daemons) / sizeof(main_daemons[0]);
	main_policy.v4 = main_v4;
	main_policy.n_v4 = n;
	main_policy.v6 = main_v6;
	main_policy.n_v6 = m;
	main_policy.n_rules = 10;
	main_policy.n_ask = 4;
}

/* ---- fixture ---------------------------------------------------------- */

struct fixture {
	struct loader *ld;
	struct kernel_match *km;
	struct ring_buffer *rb;
	struct event last;
	int n_events;
};

static bool test_run_supported = true;
static const char *skip_reason = "";

/* on_event - ring buffer callback: keep the last event */
static int on_event(void *ctx, void *data, size_t size)
{
	struct fixture *f = ctx;

	if (size >= sizeof(f->last)) {
		memcpy(&f->last, data, sizeof(f->last));
		f->n_events++;
	}
	return 0;
}

/* setup - a private loader (nothing pinned) with the main policy loaded */
static int setup(void **state)
{
	struct loader_opts o = { .pin_dir = NULL };
	struct fixture *f = calloc(1, sizeof(*f));
	struct km_result r;
	int err;

	if (!f)
		return -1;
	*state = f;
	if (geteuid() != 0) {
		test_run_supported = false;
		skip_reason = "needs root (loading BPF)";
		return 0;
	}
	err = loader_open(&o, &f->ld);
	if (err) {
		/* A verifier rejection is a failure, not a skip. */
		fprintf(stderr, "loader_open: %s (libbpf's log above has the verifier's)\n",
			strerror(-err));
		return -1;
	}
	build_main_policy();
	err = loader_load_policy(f->ld, &main_policy);
	if (err) {
		fprintf(stderr, "loader_load_policy: %s\n", strerror(-err));
		return -1;
	}
	if (kernel_match_new(f->ld, &f->km))
		return -1;
	f->rb = ring_buffer__new(loader_events_fd(f->ld), on_event, f, NULL);
	if (!f->rb)
		return -1;
	/* Probe BPF_PROG_TEST_RUN for cgroup_skb once: a kernel without it says
	 * ENOTSUPP (no test_run for the program type); any other error, EINVAL
	 * included, is ours (a context or packet the kernel refuses) and fails. */
	err = kernel_match_addr(f->km, "sshd", "192.168.5.5", &r);
	if (err == -524 /* ENOTSUPP */ || err == -EOPNOTSUPP) {
		test_run_supported = false;
		skip_reason = "this kernel has no BPF_PROG_TEST_RUN for cgroup_skb";
	} else if (err) {
		fprintf(stderr, "first query (kernel_match_addr sshd 192.168.5.5): %s\n",
			strerror(-err));
		return -1;
	}
	*state = f;
	return 0;
}

/* teardown - drop everything the fixture made */
static int teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	ring_buffer__free(f->rb);
	kernel_match_free(f->km);
	loader_close(f->ld);
	free(f);
	return 0;
}

#define REQUIRE_TEST_RUN()                                     \
	do {                                                   \
		if (!test_run_supported) {                     \
			printf("# skip: %s\n", skip_reason);   \
			skip();                                \
		}                                              \
	} while (0)

/* query - one query; fails the test on a run error */
static struct km_result query(struct fixture *f, const char *daemon, const char *client,
			      int proto, uint32_t state, bool effects)
{
	struct km_query q;
	struct km_result r;
	int err;

	memset(&q, 0, sizeof(q));
	q.daemon = daemon;
	if (inet_pton(AF_INET, client, &q.client) == 1)
		q.family = AF_INET;
	else
		assert_int_equal(inet_pton(AF_INET6, client, &q.client), 1), q.family = AF_INET6;
	q.proto = proto;
	q.sock_state = state;
	q.side_effects = effects;
	err = kernel_match_query(f->km, &q, &r);
	if (err)
		fail_msg("query %s %s: got error %s, want success", daemon ? daemon : "(none)",
			 client, strerror(-err));
	return r;
}

/* vname - a verdict as text */
static const char *vname(int v)
{
	return v == A ? "ALLOW" : v == D ? "DENY" : v == Q ? "ASK" : "none";
}

/* ---- decision table --------------------------------------------------- */

struct decide_case {
	const char *name;
	const char *daemon;	/* NULL: socket without owner */
	const char *client;
	int proto;
	int want_ret;
	int want_final;
	uint32_t want_rule;
	uint32_t want_daemon;
	uint8_t want_reason;
};

static const struct decide_case decide_cases[] = {
	{ "v4 sshd allowed /16", "sshd", "192.168.5.5", 0, 1, A, 1, D_SSHD, BPFWRAP_R_POLICY },
	{ "v4 sshd longer /24 denies", "sshd", "192.168.1.5", 0, 0, D, 2, D_SSHD, BPFWRAP_R_POLICY },
	{ "v4 sshd /0 fallback", "sshd", "8.8.8.8", 0, 0, D, 4, D_SSHD, BPFWRAP_R_POLICY },
	{ "v4 unnamed daemon -> OTHER default", "httpd", "8.8.8.8", 0, 1, A, 0, 0, BPFWRAP_R_POLICY },
	{ "v4 unnamed daemon -> OTHER deny", "httpd", "10.1.2.3", 0, 0, D, 5, 0, BPFWRAP_R_POLICY },
	{ "v4 no owner -> OTHER", NULL, "10.1.2.3", 0, 0, D, 5, 0, BPFWRAP_R_POLICY },
	{ "v4 ftpd default", "ftpd", "10.1.2.3", 0, 1, A, 0, D_FTPD, BPFWRAP_R_POLICY },
	{ "v4 daemon case-insensitive", "VsFtpd", "1.2.3.4", 0, 0, D, 7, D_VSFTPD, BPFWRAP_R_POLICY },
	{ "mapped sshd allowed in v4 table", "sshd", "::ffff:192.168.5.5", 0, 1, A, 1, D_SSHD, BPFWRAP_R_POLICY },
	{ "mapped sshd denied in v4 table", "sshd", "::ffff:192.168.1.5", 0, 0, D, 2, D_SSHD, BPFWRAP_R_POLICY },
	{ "mapped OTHER 10/8", "httpd", "::ffff:10.9.9.9", 0, 0, D, 5, 0, BPFWRAP_R_POLICY },
	{ "v6 sshd allowed /32", "sshd", "2001:db8:5::1", 0, 1, A, 1, D_SSHD, BPFWRAP_R_POLICY },
	{ "v6 sshd longer /48 denies", "sshd", "2001:db8:1::1", 0, 0, D, 2, D_SSHD, BPFWRAP_R_POLICY },
	{ "v6 sshd /0 fallback", "sshd", "2001:db9::1", 0, 0, D, 4, D_SSHD, BPFWRAP_R_POLICY },
	{ "v6 OTHER default", "httpd", "2001:db8:1::1", 0, 1, A, 0, 0, BPFWRAP_R_POLICY },
	{ "v6 not-mapped ::1 in v6 table", "sshd", "::1", 0, 0, D, 4, D_SSHD, BPFWRAP_R_POLICY },
	{ "udp v4 sshd denied", "sshd", "192.168.1.5", IPPROTO_UDP, 0, D, 2, D_SSHD, BPFWRAP_R_POLICY },
	{ "udp v6 sshd allowed", "sshd", "2001:db8:5::1", IPPROTO_UDP, 1, A, 1, D_SSHD, BPFWRAP_R_POLICY },
	{ "ask without agent -> vif DENY", "sshd", "192.168.1.7", 0, 0, D, 3, D_SSHD, BPFWRAP_R_AGENT_DOWN },
	{ "ask without agent -> vif ALLOW", "sshd", "172.16.3.4", 0, 1, A, 6, D_SSHD, BPFWRAP_R_AGENT_DOWN },
	{ "v6 ask without agent -> vif DENY", "sshd", "2001:db8:2::9", 0, 0, D, 8, D_SSHD, BPFWRAP_R_AGENT_DOWN },
};

/* check_case - run one decide_case and compare every field */
static void check_case(struct fixture *f, const struct decide_case *c)
{
	struct km_result r = query(f, c->daemon, c->client, c->proto, 0, false);

	if (r.retval != c->want_ret)
		fail_msg("%s: retval got %d, want %d", c->name, r.retval, c->want_ret);
	if (r.final != c->want_final)
		fail_msg("%s: verdict got %s, want %s", c->name, vname(r.final), vname(c->want_final));
	if (r.rule_id != c->want_rule)
		fail_msg("%s: rule got %u, want %u", c->name, r.rule_id, c->want_rule);
	if (r.daemon_id != c->want_daemon)
		fail_msg("%s: daemon id got %u, want %u", c->name, r.daemon_id, c->want_daemon);
	if (r.reason != c->want_reason)
		fail_msg("%s: reason got %u, want %u", c->name, r.reason, c->want_reason);
}

/* test_decisions - the decision table on the main policy, agent down */
static void test_decisions(void **state)
{
	struct fixture *f = *state;

	REQUIRE_TEST_RUN();
	assert_int_equal(loader_agent_heartbeat(f->ld, 0, 0), 0);
	for (size_t i = 0; i < sizeof(decide_cases) / sizeof(decide_cases[0]); i++)
		check_case(f, &decide_cases[i]);
}

/* test_ask_agent_alive - ASK holds the flow and sends an ASK event */
static void test_ask_agent_alive(void **state)
{
	struct fixture *f = *state;
	struct km_result r;
	struct km_query q;

	REQUIRE_TEST_RUN();
	assert_int_equal(loader_agent_heartbeat(f->ld, (uint32_t)getpid(), 10ull * 1000000000), 0);
	memset(&q, 0, sizeof(q));
	q.daemon = "sshd";
	q.family = AF_INET;
	inet_pton(AF_INET, "172.16.9.9", &q.client);
	q.client_port = 41001;
	q.side_effects = true;
	ring_buffer__consume(f->rb);
	f->n_events = 0;
	assert_int_equal(kernel_match_query(f->km, &q, &r), 0);
	if (r.retval != 0 || r.final != Q || r.reason != BPFWRAP_R_ASK)
		fail_msg("ask, agent alive: got ret %d %s reason %u, want ret 0 ASK reason %u",
			 r.retval, vname(r.final), r.reason, BPFWRAP_R_ASK);
	if (r.event != BPFWRAP_EV_ASK)
		fail_msg("ask event: got type %u, want %u", r.event, BPFWRAP_EV_ASK);
	ring_buffer__consume(f->rb);
	if (f->n_events != 1)
		fail_msg("events read: got %d, want 1", f->n_events);
	if (f->last.type != BPFWRAP_EV_ASK || f->last.rule_id != 6 || f->last.daemon_id != D_SSHD ||
	    strcmp(f->last.daemon, "sshd") || f->last.family != BPFWRAP_AF_INET ||
	    f->last.proto != IPPROTO_TCP || ntohs(f->last.sport) != 41001 ||
	    ntohs(f->last.dport) != 22 || memcmp(f->last.saddr, &q.client, 4) ||
	    f->last.verdict_if_unknown != A)
		fail_msg("ask event: got type %u rule %u daemon %u '%s' fam %u proto %u ports %u>%u, "
			 "want ASK rule 6 daemon 1 'sshd' fam 2 proto 6 ports 41001>22",
			 f->last.type, f->last.rule_id, f->last.daemon_id, f->last.daemon,
			 f->last.family, f->last.proto, ntohs(f->last.sport), ntohs(f->last.dport));
	/* The retransmitted SYN of the same flow: held again, no second event. */
	assert_int_equal(kernel_match_query(f->km, &q, &r), 0);
	if (r.retval != 0 || r.event != 0)
		fail_msg("retransmit: got ret %d event %u, want ret 0 event 0", r.retval, r.event);
	/* A non-ASK entry is not affected by the agent. */
	r = query(f, "sshd", "192.168.5.5", 0, 0, false);
	if (r.retval != 1 || r.reason != BPFWRAP_R_POLICY)
		fail_msg("allow with agent alive: got ret %d reason %u, want 1 %u", r.retval,
			 r.reason, BPFWRAP_R_POLICY);
	assert_int_equal(loader_agent_heartbeat(f->ld, 0, 0), 0);
	r = query(f, "sshd", "172.16.9.9", 0, 0, false);
	if (r.retval != 1 || r.reason != BPFWRAP_R_AGENT_DOWN)
		fail_msg("after the agent died: got ret %d reason %u, want 1 %u", r.retval, r.reason,
			 BPFWRAP_R_AGENT_DOWN);
}

/* cache - store an agent's answer for (daemon id, client) that read nothing else */
static int cache(struct fixture *f, uint32_t gen, uint32_t daemon_id, int family, const void *addr,
		 uint8_t verdict, uint32_t rule, uint64_t ttl_ns)
{
	struct cache_answer a = {
		.generation = gen, .daemon_id = daemon_id, .family = family, .client = addr,
		.verdict = verdict, .rule_id = rule, .ttl_ns = ttl_ns,
	};

	return loader_cache_verdict(f->ld, &a);
}

/* test_verdict_cache - the agent's cached answers decide ASK entries */
static void test_verdict_cache(void **state)
{
	struct fixture *f = *state;
	const uint64_t ten_s = 10ull * 1000000000;
	struct in6_addr a6, m6;
	struct in_addr a4;
	struct km_result r;
	uint32_t gen;

	REQUIRE_TEST_RUN();
	assert_int_equal(loader_generation(f->ld, &gen), 0);
	assert_int_equal(loader_agent_heartbeat(f->ld, (uint32_t)getpid(), ten_s), 0);

	inet_pton(AF_INET, "172.16.1.1", &a4);
	assert_int_equal(cache(f, gen, D_SSHD, AF_INET, &a4, D, 9, ten_s), 0);
	r = query(f, "sshd", "172.16.1.1", 0, 0, false);
	if (r.retval != 0 || r.final != D || r.rule_id != 9 || r.reason != BPFWRAP_R_CACHE)
		fail_msg("cache deny: got ret %d %s rule %u reason %u, want 0 DENY 9 %u", r.retval,
			 vname(r.final), r.rule_id, r.reason, BPFWRAP_R_CACHE);
	/* The same answer for the mapped spelling of the client. */
	r = query(f, "sshd", "::ffff:172.16.1.1", 0, 0, false);
	if (r.reason != BPFWRAP_R_CACHE || r.final != D)
		fail_msg("cache mapped: got %s reason %u, want DENY %u", vname(r.final), r.reason,
			 BPFWRAP_R_CACHE);
	/* Stored as mapped, found as IPv4. */
	inet_pton(AF_INET6, "::ffff:172.16.1.2", &m6);
	assert_int_equal(cache(f, gen, D_SSHD, AF_INET6, &m6, A, 6, ten_s), 0);
	r = query(f, "sshd", "172.16.1.2", 0, 0, false);
	if (r.retval != 1 || r.reason != BPFWRAP_R_CACHE)
		fail_msg("cache stored mapped: got ret %d reason %u, want 1 %u", r.retval, r.reason,
			 BPFWRAP_R_CACHE);
	/* Another daemon's or another generation's answer is not used. */
	inet_pton(AF_INET, "172.16.1.3", &a4);
	assert_int_equal(cache(f, gen + 1, D_SSHD, AF_INET, &a4, A, 6, ten_s), 0);
	assert_int_equal(cache(f, gen, D_FTPD, AF_INET, &a4, A, 6, ten_s), 0);
	r = query(f, "sshd", "172.16.1.3", 0, 0, false);
	if (r.final != Q || r.reason != BPFWRAP_R_ASK)
		fail_msg("cache of other gen/daemon: got %s reason %u, want ASK %u", vname(r.final),
			 r.reason, BPFWRAP_R_ASK);
	/* An expired answer is not used. */
	inet_pton(AF_INET, "172.16.1.4", &a4);
	assert_int_equal(cache(f, gen, D_SSHD, AF_INET, &a4, A, 6, 0), 0);
	r = query(f, "sshd", "172.16.1.4", 0, 0, false);
	if (r.reason != BPFWRAP_R_ASK)
		fail_msg("expired cache: got reason %u, want %u", r.reason, BPFWRAP_R_ASK);
	/* IPv6. */
	inet_pton(AF_INET6, "2001:db8:2::77", &a6);
	assert_int_equal(cache(f, gen, D_SSHD, AF_INET6, &a6, A, 8, ten_s), 0);
	r = query(f, "sshd", "2001:db8:2::77", 0, 0, false);
	if (r.retval != 1 || r.reason != BPFWRAP_R_CACHE || r.rule_id != 8)
		fail_msg("v6 cache: got ret %d reason %u rule %u, want 1 %u 8", r.retval, r.reason,
			 r.rule_id, BPFWRAP_R_CACHE);
	/* A cached answer for a non-ASK entry changes nothing. */
	inet_pton(AF_INET, "192.168.5.6", &a4);
	assert_int_equal(cache(f, gen, D_SSHD, AF_INET, &a4, D, 9, ten_s), 0);
	r = query(f, "sshd", "192.168.5.6", 0, 0, false);
	if (r.retval != 1 || r.reason != BPFWRAP_R_POLICY)
		fail_msg("cache on ALLOW entry: got ret %d reason %u, want 1 %u", r.retval, r.reason,
			 BPFWRAP_R_POLICY);
	assert_int_equal(loader_agent_heartbeat(f->ld, 0, 0), 0);
}

/* flow_query - a SYN from client:cport to server:22 for daemon (v4 or v6 texts) */
static struct km_result flow_query(struct fixture *f, const char *daemon, const char *client,
				   uint16_t cport, const char *server)
{
	struct km_query q;
	struct km_result r;

	memset(&q, 0, sizeof(q));
	q.daemon = daemon;
	q.family = strchr(client, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(q.family, client, &q.client), 1);
	assert_int_equal(inet_pton(q.family, server, &q.server), 1);
	q.has_server = true;
	q.client_port = cport;
	q.server_port = 22;
	if (kernel_match_query(f->km, &q, &r))
		fail_msg("query %s %s:%u -> %s: got an error, want a decision", daemon, client, cport,
			 server);
	return r;
}

/* cache_flow - store an answer for (daemon, client:cport -> server:22) that read refine */
static void cache_flow(struct fixture *f, uint32_t daemon_id, const char *daemon,
		       const char *client, uint16_t cport, const char *server, unsigned refine,
		       uint8_t verdict, uint32_t rule)
{
	struct daemon_key dk;
	struct in6_addr c, sv;
	struct cache_answer a;
	int fam = strchr(client, ':') ? AF_INET6 : AF_INET;
	int err;

	memset(&dk, 0, sizeof(dk));
	snprintf(dk.name, sizeof(dk.name), "%s", daemon);
	assert_int_equal(inet_pton(fam, client, &c), 1);
	assert_int_equal(inet_pton(fam, server, &sv), 1);
	memset(&a, 0, sizeof(a));
	assert_int_equal(loader_generation(f->ld, &a.generation), 0);
	a.daemon_id = daemon_id;
	a.daemon = &dk;
	a.family = fam;
	a.client = &c;
	a.server = &sv;
	a.client_port = htons(cport);
	a.server_port = htons(22);
	a.refine = refine;
	a.verdict = verdict;
	a.rule_id = rule;
	a.ttl_ns = 10ull * 1000000000;
	err = loader_cache_verdict(f->ld, &a);
	if (err)
		fail_msg("cache %s %s:%u -> %s: got %s, want stored", daemon, client, cport, server,
			 strerror(-err));
}

/* want_cached - r was decided by the cache as v, else fail naming what */
static void want_cached(const struct km_result *r, uint8_t v, const char *what)
{
	if (r->reason != BPFWRAP_R_CACHE || r->final != v)
		fail_msg("%s: got %s reason %u, want %s from the cache (reason %u)", what,
			 vname(r->final), r->reason, vname(v), BPFWRAP_R_CACHE);
}

/* want_asked - r was held for the agent (no cached answer fits), else fail */
static void want_asked(const struct km_result *r, const char *what)
{
	if (r->reason != BPFWRAP_R_ASK || r->final != Q)
		fail_msg("%s: got %s reason %u, want ASK (no cached answer fits)", what,
			 vname(r->final), r->reason);
}

/*
 * test_verdict_cache_refined - an answer is reused only for requests that
 * agree on what it read: the server address (daemon@host), the whole flow
 * (a user answer), the daemon's name (OTHER stands for many daemons)
 */
static void test_verdict_cache_refined(void **state)
{
	struct fixture *f = *state;
	struct km_result r;

	REQUIRE_TEST_RUN();
	assert_int_equal(loader_agent_heartbeat(f->ld, (uint32_t)getpid(), 10ull * 1000000000), 0);

	/* rtd@10.9.0.11: allowed there; the same client to 10.9.0.1 is asked */
	cache_flow(f, D_SSHD, "sshd", "172.16.7.7", 40000, "10.9.0.11", BPFWRAP_CACHE_SERVER, A, 6);
	r = flow_query(f, "sshd", "172.16.7.7", 40001, "10.9.0.11");
	want_cached(&r, A, "server 10.9.0.11, answer keyed on it");
	r = flow_query(f, "sshd", "172.16.7.7", 40002, "10.9.0.1");
	want_asked(&r, "server 10.9.0.1 after an answer for 10.9.0.11");
	r = flow_query(f, "sshd", "::ffff:172.16.7.7", 40003, "::ffff:10.9.0.11");
	want_cached(&r, A, "v4-mapped client and server 10.9.0.11");
	cache_flow(f, D_SSHD, "sshd", "172.16.7.7", 40002, "10.9.0.1", BPFWRAP_CACHE_SERVER, D, 9);
	r = flow_query(f, "sshd", "172.16.7.7", 40004, "10.9.0.1");
	want_cached(&r, D, "server 10.9.0.1, its own answer");
	r = flow_query(f, "sshd", "172.16.7.7", 40005, "10.9.0.11");
	want_cached(&r, A, "server 10.9.0.11 after 10.9.0.1's denial");
	/* An answer that read nothing more is stored under the marker's key,
	 * so it does not become an answer for every server. */
	cache_flow(f, D_SSHD, "sshd", "172.16.7.7", 40006, "10.9.0.2", 0, A, 6);
	r = flow_query(f, "sshd", "172.16.7.7", 40007, "10.9.0.2");
	want_cached(&r, A, "server 10.9.0.2, plain answer under the marker");
	r = flow_query(f, "sshd", "172.16.7.7", 40008, "10.9.0.3");
	want_asked(&r, "server 10.9.0.3, never answered");
	/* Callers without the server (the guard's revoke walk) find no refined answer. */
	r = query(f, "sshd", "172.16.7.7", 0, 0, false);
	if (r.final == A || r.final == D)
		if (r.reason == BPFWRAP_R_CACHE)
			fail_msg("no server given: got %s from the cache, want no answer",
				 vname(r.final));

	/* alice@host: the answer holds for its own connection only */
	cache_flow(f, D_SSHD, "sshd", "172.16.8.8", 41000, "127.0.0.1", BPFWRAP_CACHE_REFINE_ALL, A,
		   6);
	r = flow_query(f, "sshd", "172.16.8.8", 41000, "127.0.0.1");
	want_cached(&r, A, "the user answer's own flow (retransmitted SYN)");
	r = flow_query(f, "sshd", "172.16.8.8", 41001, "127.0.0.1");
	want_asked(&r, "a new connection from the same host after a user answer");

	/* daemon OTHER: keyed by the socket's name */
	cache_flow(f, 0, "httpd", "172.20.1.1", 42000, "127.0.0.1", 0, A, 9);
	r = flow_query(f, "httpd", "172.20.1.1", 42001, "127.0.0.1");
	want_cached(&r, A, "OTHER daemon httpd, its own answer");
	r = flow_query(f, "smtpd", "172.20.1.1", 42002, "127.0.0.1");
	want_asked(&r, "OTHER daemon smtpd after httpd's answer");
	/* A named daemon's answer is keyed by its id alone. */
	cache_flow(f, D_SSHD, "sshd", "172.16.9.1", 42003, "127.0.0.1", 0, D, 9);
	r = flow_query(f, "sshd", "172.16.9.1", 42004, "127.0.0.2");
	want_cached(&r, D, "named daemon, plain answer, another server");
	assert_int_equal(loader_agent_heartbeat(f->ld, 0, 0), 0);
}

/* test_counters - per-rule counters count SYNs and datagrams, not quiet runs */
static void test_counters(void **state)
{
	struct fixture *f = *state;
	uint64_t before[16], after[16];
	struct loader_status st0, st1;
	struct km_query q;
	struct km_result r;
	int n;

	REQUIRE_TEST_RUN();
	n = loader_rule_counters(f->ld, before, 16);
	if (n != 11)
		fail_msg("counter slots: got %d, want 11", n);
	assert_int_equal(loader_status(f->ld, &st0), 0);
	for (int i = 0; i < 3; i++)
		query(f, "sshd", "192.168.5.5", 0, 0, true);	/* rule 1 */
	query(f, "sshd", "192.168.1.5", IPPROTO_UDP, 0, true);	/* rule 2 */
	query(f, "sshd", "192.168.5.5", 0, 0, false);	/* quiet: not counted */
	memset(&q, 0, sizeof(q));
	q.daemon = "sshd";
	q.family = AF_INET;
	inet_pton(AF_INET, "192.168.5.5", &q.client);
	q.tcp_flags = 0x10;	/* the handshake's ACK: decided, not counted */
	q.side_effects = true;
	assert_int_equal(kernel_match_query(f->km, &q, &r), 0);
	if (r.retval != 1 || r.reason != BPFWRAP_R_POLICY)
		fail_msg("ACK to listener: got ret %d reason %u, want 1 %u", r.retval, r.reason,
			 BPFWRAP_R_POLICY);
	assert_int_equal(loader_rule_counters(f->ld, after, 16), 11);
	if (after[1] - before[1] != 3)
		fail_msg("rule 1 counter: got +%llu, want +3",
			 (unsigned long long)(after[1] - before[1]));
	if (after[2] - before[2] != 1)
		fail_msg("rule 2 counter: got +%llu, want +1",
			 (unsigned long long)(after[2] - before[2]));
	assert_int_equal(loader_status(f->ld, &st1), 0);
	if (st1.stats[BPFWRAP_STAT_ALLOW] - st0.stats[BPFWRAP_STAT_ALLOW] != 4)
		fail_msg("ALLOW stat: got +%llu, want +4",
			 (unsigned long long)(st1.stats[BPFWRAP_STAT_ALLOW] - st0.stats[BPFWRAP_STAT_ALLOW]));
	if (st1.stats[BPFWRAP_STAT_DENY] - st0.stats[BPFWRAP_STAT_DENY] != 1)
		fail_msg("DENY stat: got +%llu, want +1",
			 (unsigned long long)(st1.stats[BPFWRAP_STAT_DENY] - st0.stats[BPFWRAP_STAT_DENY]));
	if (st1.v4_entries != main_policy.n_v4 || st1.v6_entries != main_policy.n_v6 ||
	    st1.daemons != 3 || st1.rules != 10)
		fail_msg("status sizes: got v4 %u v6 %u daemons %u rules %u, want %zu %zu 3 10",
			 st1.v4_entries, st1.v6_entries, st1.daemons, st1.rules, main_policy.n_v4,
			 main_policy.n_v6);
}

/* test_counters_handed_back - a reload hands back the old policy's final counts */
static void test_counters_handed_back(void **state)
{
	struct fixture *f = *state;
	uint64_t now[16], old[16];
	int n;

	REQUIRE_TEST_RUN();
	n = loader_rule_counters(f->ld, now, 16);
	if (n != 11)
		fail_msg("counter slots: got %d, want 11", n);
	for (int i = 0; i < 5; i++)
		query(f, "sshd", "192.168.5.5", 0, 0, true);	/* rule 1 */
	memset(old, 0xff, sizeof(old));
	assert_int_equal(loader_load_policy_counted(f->ld, &main_policy, old, 16), 0);
	if (old[1] != now[1] + 5)
		fail_msg("rule 1 handed back: got %llu, want %llu", (unsigned long long)old[1],
			 (unsigned long long)(now[1] + 5));
	for (int i = 11; i < 16; i++)
		if (old[i] != UINT64_MAX)
			fail_msg("slot %d past the map's 11: written (%llu), want untouched", i,
				 (unsigned long long)old[i]);
	/* the new generation counts from 0 */
	assert_int_equal(loader_rule_counters(f->ld, now, 16), 11);
	if (now[1] != 0)
		fail_msg("rule 1 after the reload: got %llu, want 0", (unsigned long long)now[1]);
}

/* test_deny_event - a denied SYN sends one DENY event carrying the rule's flags */
static void test_deny_event(void **state)
{
	struct fixture *f = *state;
	struct km_query q;
	struct km_result r;

	REQUIRE_TEST_RUN();
	ring_buffer__consume(f->rb);
	f->n_events = 0;
	memset(&q, 0, sizeof(q));
	q.daemon = "sshd";
	q.family = AF_INET;
	inet_pton(AF_INET, "8.8.4.4", &q.client);
	q.client_port = 50505;
	q.sock_family = AF_INET6;	/* dual-stack listener: reported as mapped */
	q.side_effects = true;
	assert_int_equal(kernel_match_query(f->km, &q, &r), 0);
	ring_buffer__consume(f->rb);
	if (f->n_events != 1 || f->last.type != BPFWRAP_EV_DENY || f->last.rule_id != 4 ||
	    !(f->last.flags & BPFWRAP_F_SPAWN) || f->last.family != BPFWRAP_AF_INET6 ||
	    f->last.saddr[10] != 0xff || memcmp(&f->last.saddr[12], &q.client, 4))
		fail_msg("deny event: got %d events, type %u rule %u flags %#x family %u, "
			 "want 1 DENY rule 4 with SPAWN, family 10 mapped",
			 f->n_events, f->last.type, f->last.rule_id, f->last.flags, f->last.family);
	/* The same flow again (a SYN retransmit): dropped, no second event;
	 * another source port is another flow: an event. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(kernel_match_query(f->km, &q, &r), 0);
		ring_buffer__consume(f->rb);
		if (r.retval != 0 || r.event != 0 || f->n_events != 1)
			fail_msg("retransmit %d: got ret %d event %u, %d events, want 0 0, 1", i,
				 r.retval, r.event, f->n_events);
	}
	q.client_port = 50506;
	assert_int_equal(kernel_match_query(f->km, &q, &r), 0);
	ring_buffer__consume(f->rb);
	if (r.event != BPFWRAP_EV_DENY || f->n_events != 2)
		fail_msg("new flow: got event %u, %d events, want %u, 2", r.event, f->n_events,
			 BPFWRAP_EV_DENY);
}

/* agg_fixture_open - a private loader with the main policy, aggregation
 * window agg_ms and event cap `cap`, and a kernel_match on it */
static void agg_fixture_open(uint64_t agg_ms, uint32_t cap, struct loader **ld,
			     struct kernel_match **km)
{
	struct loader_opts o = { .pin_dir = NULL, .agg_ns = agg_ms * 1000000ull, .event_cap = cap };

	build_main_policy();
	assert_int_equal(loader_open(&o, ld), 0);
	assert_int_equal(loader_load_policy(*ld, &main_policy), 0);
	assert_int_equal(kernel_match_new(*ld, km), 0);
}

/* deny_syn - a SYN to httpd (OTHER: 10/8 denied by rule 5, no spawn) from client:port */
static struct km_result deny_syn(struct kernel_match *km, const char *client, uint16_t port)
{
	struct km_query q;
	struct km_result r;

	memset(&q, 0, sizeof(q));
	q.daemon = "httpd";
	q.family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, client, &q.client), 1);
	q.client_port = port;
	q.side_effects = true;
	assert_int_equal(kernel_match_query(km, &q, &r), 0);
	if (r.retval != 0 || r.final != D || r.rule_id != 5)
		fail_msg("%s:%u to httpd: got ret %d %s rule %u, want 0 DENY 5", client, port,
			 r.retval, vname(r.final), r.rule_id);
	return r;
}

/* src_slot_of - src_recent's slot for a key, as decide.bpf.h's src_hash computes it */
static uint32_t src_slot_of(const struct src_key *k)
{
	const uint32_t *w = (const uint32_t *)k;
	uint32_t h = 0x811c9dc5;

	for (size_t i = 0; i < sizeof(*k) / 4; i++)
		h = (h ^ w[i]) * 0x9e3779b1u;
	h ^= h >> 15;
	return h & (BPFWRAP_SRC_SLOTS - 1);
}

/* httpd_key - the aggregation key of a SYN from an IPv4 client to httpd (OTHER), port 22 */
static struct src_key httpd_key(uint32_t addr_be)
{
	struct src_key k;

	memset(&k, 0, sizeof(k));
	memcpy(k.addr, &addr_be, 4);
	k.daemon_id = BPFWRAP_DAEMON_OTHER;
	k.dport = htons(22);
	k.family = BPFWRAP_AF_INET;
	k.proto = IPPROTO_TCP;
	return k;
}

/*
 * test_deny_aggregated - plain denials send one event per (client, daemon,
 * port) per window, counting the rest; distinct clients each get theirs at
 * once; after the window the next denial's event carries the count; a key
 * that takes over a slot reports the one it evicted; a global cap bounds the
 * events per second and counts what it held back
 */
static void test_deny_aggregated(void **state)
{
	struct fixture *f = *state;
	struct ring_buffer *rb;
	struct loader_status st;
	struct kernel_match *km;
	struct src_slot slot;
	struct loader *ld;
	struct km_result r;
	struct src_key k0, k1;
	uint32_t a0, a1 = 0;
	char text[INET_ADDRSTRLEN];
	const int n = 50;
	int events = 0;

	REQUIRE_TEST_RUN();
	agg_fixture_open(300, 0, &ld, &km);
	rb = ring_buffer__new(loader_events_fd(ld), on_event, f, NULL);
	assert_non_null(rb);
	f->n_events = 0;
	for (int i = 0; i < n; i++) {
		r = deny_syn(km, "10.1.1.1", (uint16_t)(30000 + i));	/* a new flow each time */
		events += r.event == BPFWRAP_EV_DENY;
	}
	ring_buffer__consume(rb);
	if (events != 1 || f->n_events != 1)
		fail_msg("%d denied SYNs from one client: got %d events (%d read), want 1", n, events,
			 f->n_events);
	if (!f->last.agg_slot || f->last.agg_count != 1 || f->last.evicted_count)
		fail_msg("first event: got slot %u count %llu evicted %llu, want a slot, count 1, "
			 "none evicted", f->last.agg_slot, (unsigned long long)f->last.agg_count,
			 (unsigned long long)f->last.evicted_count);
	assert_int_equal(loader_src_slot(ld, f->last.agg_slot - 1, &slot), 0);
	if (slot.count != (uint64_t)n || memcmp(&slot.key, &f->last.agg_key, sizeof(slot.key)))
		fail_msg("slot after %d SYNs: got count %llu, want %d for the event's key", n,
			 (unsigned long long)slot.count, n);
	assert_int_equal(loader_status(ld, &st), 0);
	if (st.stats[BPFWRAP_STAT_DENY_FOLDED] != (uint64_t)n - 1)
		fail_msg("denials folded: got %llu, want %d",
			 (unsigned long long)st.stats[BPFWRAP_STAT_DENY_FOLDED], n - 1);

	/* distinct clients: each logged at once */
	for (int i = 2; i <= 6; i++) {
		snprintf(text, sizeof(text), "10.1.1.%d", i);
		r = deny_syn(km, text, 40000);
		if (r.event != BPFWRAP_EV_DENY)
			fail_msg("first SYN from %s: got no event, want one", text);
	}
	ring_buffer__consume(rb);
	if (f->n_events != 6)
		fail_msg("events after 5 more clients: got %d, want 6", f->n_events);

	/* after the window: the next denial's event counts all of them */
	usleep(350 * 1000);
	r = deny_syn(km, "10.1.1.1", 31000);
	ring_buffer__consume(rb);
	if (r.event != BPFWRAP_EV_DENY || f->n_events != 7 || f->last.agg_count != (uint64_t)n + 1)
		fail_msg("after the window: got event %u, %d events, count %llu, want DENY, 7, %d",
			 r.event, f->n_events, (unsigned long long)f->last.agg_count, n + 1);

	/* a key that takes over a slot reports the one it evicted */
	inet_pton(AF_INET, "10.1.1.1", &a0);
	k0 = httpd_key(a0);
	for (uint32_t i = 1; i < 1u << 20 && !a1; i++) {
		uint32_t cand = htonl(0x0a020000u + i);	/* 10.2.x.y */

		k1 = httpd_key(cand);
		if (src_slot_of(&k1) == src_slot_of(&k0))
			a1 = cand;
	}
	if (!a1)
		fail_msg("no address in 10.2/16 shares 10.1.1.1's slot, want one");
	if (src_slot_of(&k0) != f->last.agg_slot - 1)
		fail_msg("slot of 10.1.1.1: got %u from the kernel, %u computed here, want equal",
			 f->last.agg_slot - 1, src_slot_of(&k0));
	inet_ntop(AF_INET, &a1, text, sizeof(text));
	r = deny_syn(km, text, 32000);
	ring_buffer__consume(rb);
	if (r.event != BPFWRAP_EV_DENY || f->last.agg_count != 1 ||
	    f->last.evicted_count != (uint64_t)n + 1 ||
	    memcmp(&f->last.evicted, &k0, sizeof(k0)))
		fail_msg("%s taking 10.1.1.1's slot: got count %llu, evicted count %llu, want 1 and "
			 "%d for 10.1.1.1", text, (unsigned long long)f->last.agg_count,
			 (unsigned long long)f->last.evicted_count, n + 1);
	ring_buffer__free(rb);
	kernel_match_free(km);
	loader_close(ld);

	/* the global cap: 3 events a second whatever the sources */
	agg_fixture_open(300, 3, &ld, &km);
	events = 0;
	for (int i = 1; i <= 10; i++) {
		snprintf(text, sizeof(text), "10.3.0.%d", i);
		events += deny_syn(km, text, 40000).event == BPFWRAP_EV_DENY;
	}
	assert_int_equal(loader_status(ld, &st), 0);
	if (events != 3 || st.stats[BPFWRAP_STAT_EVENTS_CAPPED] != 7)
		fail_msg("10 clients, cap 3/s: got %d events, %llu capped, want 3 and 7", events,
			 (unsigned long long)st.stats[BPFWRAP_STAT_EVENTS_CAPPED]);
	kernel_match_free(km);
	loader_close(ld);
}

/* test_fast_path - established TCP and connected UDP pass undecided */
static void test_fast_path(void **state)
{
	struct fixture *f = *state;
	struct km_query q;
	struct km_result r;
	static const struct {
		const char *name;
		int proto;
		uint32_t state;
		uint8_t flags;
	} cases[] = {
		{ "tcp established", IPPROTO_TCP, BPFWRAP_TEST_STATE_ESTABLISHED, 0x10 },
		{ "tcp syn_sent (client socket)", IPPROTO_TCP, 2, 0x12 },
		{ "udp connected", IPPROTO_UDP, BPFWRAP_TEST_STATE_ESTABLISHED, 0 },
		{ "rst to listener", IPPROTO_TCP, BPFWRAP_TEST_STATE_LISTEN, 0x04 },
	};

	REQUIRE_TEST_RUN();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&q, 0, sizeof(q));
		q.daemon = "sshd";
		q.family = AF_INET;
		inet_pton(AF_INET, "8.8.8.8", &q.client);	/* a denied client */
		q.proto = cases[i].proto;
		q.sock_state = cases[i].state;
		q.tcp_flags = cases[i].flags;
		assert_int_equal(kernel_match_query(f->km, &q, &r), 0);
		if (r.retval != 1 || r.reason != BPFWRAP_R_FAST_PATH)
			fail_msg("%s: got ret %d reason %u, want 1 %u", cases[i].name, r.retval,
				 r.reason, BPFWRAP_R_FAST_PATH);
	}
}

/* test_host_tables - /32 and /128 entries (host arrays) beat every prefix,
 * per daemon, in any input order; duplicates are refused */
static void test_host_tables(void **state)
{
	struct fixture *f = *state;
	struct compiled_daemon d[] = { { .id = 1, .name = "sshd" }, { .id = 7, .name = "ftpd" } };
	struct compiled_v4 t4[] = {
		v4(7, "10.0.0.9", 32, D, 21, D, 0),
		v4(1, "10.0.0.9", 32, A, 22, A, 0),
		v4(1, "0.0.0.0", 0, D, 20, D, 0),
		v4(0, "0.0.0.0", 0, A, 0, A, 0),
		v4(1, "255.255.255.255", 32, A, 23, A, 0),
		v4(1, "0.0.0.0", 32, A, 24, A, 0),
		v4(1, "10.0.0.0", 24, D, 25, D, 0),
		v4(7, "0.0.0.0", 0, A, 0, A, 0),
		v4(1, "10.0.0.8", 32, A, 26, A, 0),
	};
	struct compiled_v6 t6[] = {
		v6(1, "2001:db8::2", 128, A, 31, A, 0),
		v6(1, "2001:db8::1", 128, D, 32, D, 0),
		v6(0, "::", 0, A, 0, A, 0),
		v6(1, "::", 0, D, 30, D, 0),
		v6(7, "2001:db8::1", 128, A, 33, A, 0),
		v6(7, "::", 0, D, 34, D, 0),
		v6(1, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128, A, 35, A, 0),
	};
	struct compiled_policy p = { .daemons = d, .n_daemons = 2, .v4 = t4, .n_v4 = 9, .v6 = t6,
				     .n_v6 = 7, .n_rules = 40 };
	static const struct {
		const char *daemon, *client;
		uint32_t rule;
	} cases[] = {
		{ "sshd", "10.0.0.9", 22 }, { "ftpd", "10.0.0.9", 21 }, { "sshd", "10.0.0.8", 26 },
		{ "sshd", "10.0.0.10", 25 }, { "sshd", "10.0.0.7", 25 }, { "sshd", "255.255.255.255", 23 },
		{ "sshd", "0.0.0.0", 24 }, { "sshd", "11.0.0.9", 20 }, { "httpd", "10.0.0.9", 0 },
		{ "sshd", "::ffff:10.0.0.9", 22 }, { "sshd", "2001:db8::1", 32 },
		{ "sshd", "2001:db8::2", 31 }, { "sshd", "2001:db8::3", 30 }, { "ftpd", "2001:db8::1", 33 },
		{ "ftpd", "2001:db8::2", 34 }, { "httpd", "2001:db8::1", 0 },
		{ "sshd", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 35 },
	};
	struct loader_status st;
	struct km_result r;

	REQUIRE_TEST_RUN();
	assert_int_equal(loader_load_policy(f->ld, &p), 0);
	assert_int_equal(loader_status(f->ld, &st), 0);
	if (st.v4_hosts != 5 || st.v6_hosts != 4 || st.v4_entries != 9 || st.v6_entries != 7)
		fail_msg("host counts: got v4 %u/%u v6 %u/%u, want 5/9 4/7", st.v4_hosts,
			 st.v4_entries, st.v6_hosts, st.v6_entries);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(kernel_match_addr(f->km, cases[i].daemon, cases[i].client, &r), 0);
		if (r.rule_id != cases[i].rule)
			fail_msg("%s %s: rule got %u, want %u", cases[i].daemon, cases[i].client,
				 r.rule_id, cases[i].rule);
	}
	/* The same (daemon, host) twice is a compiler bug: refused, old policy stays. */
	t4[8] = t4[1];
	if (loader_load_policy(f->ld, &p) != -EINVAL)
		fail_msg("duplicate host entry: got success, want -EINVAL");
	assert_int_equal(kernel_match_addr(f->km, "sshd", "10.0.0.8", &r), 0);
	if (r.rule_id != 26)
		fail_msg("after refused load: rule got %u, want 26", r.rule_id);
	assert_int_equal(loader_load_policy(f->ld, &main_policy), 0);
}

/* ---- garbage ---------------------------------------------------------- */

/* raw_run - run the twin on raw bytes (Ethernet header included) */
static int raw_run(struct fixture *f, const void *pkt, size_t len, uint32_t state, uint32_t proto,
		   int *retval, uint32_t *reason)
{
	struct __sk_buff in, out;
	LIBBPF_OPTS(bpf_test_run_opts, o);

	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	in.cb[1] = state;
	in.cb[2] = proto;
	in.cb[3] = BPFWRAP_TEST_F_QUIET;
	o.data_in = pkt;
	o.data_size_in = (uint32_t)len;
	o.ctx_in = &in;
	o.ctx_size_in = sizeof(in);
	o.ctx_out = &out;
	o.ctx_size_out = sizeof(out);
	if (bpf_prog_test_run_opts(bpf_program__fd(loader_skel(f->ld)->progs.bpfwrap_decide_test),
				   &o) < 0)
		return -errno;
	*retval = (int)o.retval;
	*reason = out.cb[0] & 0xff;
	return 0;
}

/* A valid v4 TCP SYN from 192.168.5.5 (allowed for OTHER), to mutate. */
static void good_v4_syn(uint8_t *p, size_t *len)
{
	static const uint8_t pkt[] = {
		/* eth */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00,
		/* ip */ 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 192, 168, 5, 5, 127, 0, 0, 1,
		/* tcp */ 0x9c, 0x40, 0, 22, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
		0, 0, 0, 0,
	};

	memcpy(p, pkt, sizeof(pkt));
	*len = sizeof(pkt);
}

/* test_garbage - unparseable packets to a listener are dropped, never allowed */
static void test_garbage(void **state)
{
	struct fixture *f = *state;
	uint8_t p[256];
	size_t len;
	int ret;
	uint32_t reason;

	REQUIRE_TEST_RUN();
	/* The unmodified packet passes (OTHER allows 192.168/16 by default). */
	good_v4_syn(p, &len);
	assert_int_equal(raw_run(f, p, len, BPFWRAP_TEST_STATE_LISTEN, IPPROTO_TCP, &ret, &reason), 0);
	if (ret != 1)
		fail_msg("good packet: got ret %d reason %u, want 1", ret, reason);

	struct {
		const char *name;
		int what;
	} cases[] = {
		{ "ip header cut", 1 },	{ "tcp header cut", 2 },   { "ihl 4", 3 },
		{ "version 6 in v4", 4 }, { "later fragment", 5 },  { "icmp to tcp listener", 6 },
		{ "udp to tcp listener", 7 }, { "v6 header cut", 8 }, { "v6 ext chain too long", 9 },
		{ "v6 unknown next header", 10 }, { "ihl beyond packet", 11 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		good_v4_syn(p, &len);
		switch (cases[i].what) {
		case 1: len = 14 + 12; break;
		case 2: len = 14 + 20 + 10; break;
		case 3: p[14] = 0x44; break;
		case 4: p[14] = 0x65; break;
		case 5: p[14 + 6] = 0x00; p[14 + 7] = 0x10; break;
		case 6: p[14 + 9] = 1; break;
		case 7: p[14 + 9] = 17; len = 14 + 20 + 8; break;
		case 8:
			p[12] = 0x86; p[13] = 0xdd; memset(p + 14, 0, 30); p[14] = 0x60; len = 14 + 30;
			break;
		case 9:
		case 10: {
			/* IPv6: hop-by-hop headers chained past the walk limit, or an
			 * unknown next header */
			memset(p, 0, sizeof(p));
			p[12] = 0x86; p[13] = 0xdd; p[14] = 0x60;
			p[14 + 6] = cases[i].what == 9 ? 0 : 253;
			p[14 + 8 + 15] = 1;	/* saddr ::1 */
			for (int h = 0; h < 6; h++)
				p[14 + 40 + h * 8] = 0;	/* next = hop-by-hop again */
			len = 14 + 40 + 6 * 8 + 20;
			break;
		}
		case 11: p[14] = 0x4f; break;	/* 60-byte header, TCP read beyond the end */
		}
		int err = raw_run(f, p, len, BPFWRAP_TEST_STATE_LISTEN, IPPROTO_TCP, &ret, &reason);

		/* BPF_PROG_TEST_RUN itself refuses a packet shorter than its
		 * IP header (as the stack never delivers one): nothing to run. */
		if (err == -EINVAL && (cases[i].what == 1 || cases[i].what == 8))
			continue;
		if (err)
			fail_msg("%s: test run got %s, want success", cases[i].name, strerror(-err));
		if (ret != 0 || reason != BPFWRAP_R_MALFORMED)
			fail_msg("%s: got ret %d reason %u, want 0 %u", cases[i].name, ret, reason,
				 BPFWRAP_R_MALFORMED);
	}
	/* Garbage to an established socket is not ours to judge: fast path. */
	good_v4_syn(p, &len);
	len = 14 + 20 + 2;	/* no TCP header */
	assert_int_equal(raw_run(f, p, len, BPFWRAP_TEST_STATE_ESTABLISHED, IPPROTO_TCP, &ret,
				 &reason), 0);
	if (ret != 1 || reason != BPFWRAP_R_FAST_PATH)
		fail_msg("garbage to established: got ret %d reason %u, want 1 %u", ret, reason,
			 BPFWRAP_R_FAST_PATH);
	/* A valid IPv6 SYN with one hop-by-hop header is parsed through it. */
	memset(p, 0, sizeof(p));
	p[12] = 0x86; p[13] = 0xdd; p[14] = 0x60; p[14 + 5] = 8 + 20; p[14 + 6] = 0;
	p[14 + 8] = 0x20; p[14 + 9] = 0x01; p[14 + 10] = 0x0d; p[14 + 11] = 0xb8;
	p[14 + 12] = 0; p[14 + 13] = 5; p[14 + 23] = 1;	/* saddr 2001:db8:5::1 */
	p[14 + 40] = 6;	/* hop-by-hop: next TCP, len 0 */
	p[14 + 48 + 12] = 0x50; p[14 + 48 + 13] = 0x02;
	len = 14 + 40 + 8 + 20;
	assert_int_equal(raw_run(f, p, len, BPFWRAP_TEST_STATE_LISTEN, IPPROTO_TCP, &ret, &reason), 0);
	if (ret != 1 || reason != BPFWRAP_R_POLICY)
		fail_msg("v6 with hop-by-hop: got ret %d reason %u, want 1 %u", ret, reason,
			 BPFWRAP_R_POLICY);
}

/* ---- generations ------------------------------------------------------ */

/* Two policies whose daemon ids are swapped: a packet that mixed A's daemon
 * table with B's trie (or the reverse) would see rule 2 or 4, never 1 or 3. */
static struct compiled_daemon gen_a_daemons[] = { { .id = 1, .name = "sshd" }, { .id = 2, .name = "ftpd" } };
static struct compiled_daemon gen_b_daemons[] = { { .id = 2, .name = "sshd" }, { .id = 1, .name = "ftpd" } };
static struct compiled_v4 gen_a_v4[3], gen_b_v4[3];
static struct compiled_v6 gen_a_v6[1], gen_b_v6[1];
static struct compiled_policy gen_a, gen_b;

/* build_gen_policies - policies A and B */
static void build_gen_policies(void)
{
	gen_a_v4[0] = v4(1, "0.0.0.0", 0, A, 1, A, 0);
	gen_a_v4[1] = v4(2, "0.0.0.0", 0, D, 2, D, 0);
	gen_a_v4[2] = v4(0, "0.0.0.0", 0, D, 90, D, 0);
	gen_b_v4[0] = v4(2, "0.0.0.0", 0, A, 3, A, 0);
	gen_b_v4[1] = v4(1, "0.0.0.0", 0, D, 4, D, 0);
	gen_b_v4[2] = v4(0, "0.0.0.0", 0, D, 90, D, 0);
	gen_a_v6[0] = v6(0, "::", 0, D, 90, D, 0);
	gen_b_v6[0] = v6(0, "::", 0, D, 90, D, 0);
	gen_a = (struct compiled_policy){ .daemons = gen_a_daemons, .n_daemons = 2, .v4 = gen_a_v4,
					  .n_v4 = 3, .v6 = gen_a_v6, .n_v6 = 1, .n_rules = 90 };
	gen_b = (struct compiled_policy){ .daemons = gen_b_daemons, .n_daemons = 2, .v4 = gen_b_v4,
					  .n_v4 = 3, .v6 = gen_b_v6, .n_v6 = 1, .n_rules = 90 };
}

/* test_flip_sequential - each load wins at once, the old slot is emptied */
static void test_flip_sequential(void **state)
{
	struct fixture *f = *state;
	struct bpfwrap_bpf *s;
	uint32_t gen0, gen, id;
	struct km_result r;

	REQUIRE_TEST_RUN();
	s = loader_skel(f->ld);
	build_gen_policies();
	assert_int_equal(loader_generation(f->ld, &gen0), 0);
	for (int i = 0; i < 6; i++) {
		const struct compiled_policy *p = i % 2 ? &gen_b : &gen_a;
		uint32_t want = i % 2 ? 3 : 1, old_slot;
		int fds[4] = { bpf_map__fd(s->maps.policy_v4_tree), bpf_map__fd(s->maps.policy_v6),
			       bpf_map__fd(s->maps.policy_daemons),
			       bpf_map__fd(s->maps.policy_counters) };

		assert_int_equal(loader_load_policy(f->ld, p), 0);
		assert_int_equal(loader_generation(f->ld, &gen), 0);
		if (gen != gen0 + (uint32_t)i + 1)
			fail_msg("generation: got %u, want %u", gen, gen0 + i + 1);
		r = query(f, "sshd", "1.2.3.4", 0, 0, false);
		if (r.rule_id != want)
			fail_msg("after load %d: rule got %u, want %u", i, r.rule_id, want);
		old_slot = (gen - 1) & 1;
		for (int k = 0; k < 4; k++) {
			if (bpf_map_lookup_elem(fds[k], &old_slot, &id) == 0 || errno != ENOENT)
				fail_msg("old slot %u of outer map %d: got present, want ENOENT",
					 old_slot, k);
		}
	}
	/* A failed load (bad daemon id) leaves the policy in force. */
	static struct compiled_daemon bad_d[] = { { .id = 0, .name = "x" } };
	struct compiled_policy bad = gen_a;

	bad.daemons = bad_d;
	bad.n_daemons = 1;
	assert_int_equal(loader_generation(f->ld, &gen0), 0);
	if (loader_load_policy(f->ld, &bad) != -EINVAL)
		fail_msg("bad policy: got success, want -EINVAL");
	assert_int_equal(loader_generation(f->ld, &gen), 0);
	if (gen != gen0)
		fail_msg("generation after failed load: got %u, want %u", gen, gen0);
	r = query(f, "sshd", "1.2.3.4", 0, 0, false);
	if (r.rule_id != 3)
		fail_msg("after failed load: rule got %u, want 3", r.rule_id);
	/* Back to the main policy for the other tests. */
	assert_int_equal(loader_load_policy(f->ld, &main_policy), 0);
}

struct hammer {
	struct kernel_match *km;
	volatile int stop;
	long queries, bad, errors;
	uint32_t bad_rule;
};

/* hammer_thread - query as fast as possible, count inconsistent answers */
static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	struct km_result r;

	for (long n = 0; !h->stop && n < 5000000; n++) {
		if (kernel_match_addr(h->km, "sshd", "1.2.3.4", &r)) {
			h->errors++;
			continue;
		}
		h->queries++;
		if (r.rule_id != 1 && r.rule_id != 3) {
			h->bad++;
			h->bad_rule = r.rule_id;
		}
	}
	return NULL;
}

/* test_flip_concurrent - no query ever sees half of two policies */
static void test_flip_concurrent(void **state)
{
	struct fixture *f = *state;
	struct hammer h = { .km = NULL };
	pthread_t t;

	REQUIRE_TEST_RUN();
	build_gen_policies();
	assert_int_equal(kernel_match_new(f->ld, &h.km), 0);
	assert_int_equal(loader_load_policy(f->ld, &gen_a), 0);
	assert_int_equal(pthread_create(&t, NULL, hammer_thread, &h), 0);
	for (int i = 0; i < 40; i++)
		assert_int_equal(loader_load_policy(f->ld, i % 2 ? &gen_a : &gen_b), 0);
	h.stop = 1;
	pthread_join(t, NULL);
	kernel_match_free(h.km);
	printf("# %ld queries during 40 flips\n", h.queries);
	if (h.errors)
		fail_msg("query errors: got %ld, want 0", h.errors);
	if (h.bad)
		fail_msg("mixed-generation answers: got %ld (last rule %u), want 0", h.bad,
			 h.bad_rule);
	if (h.queries == 0)
		fail_msg("queries during flips: got 0, want > 0");
	assert_int_equal(loader_load_policy(f->ld, &main_policy), 0);
}

/* test_no_policy - generation 0 passes, like libwrap without files */
static void test_no_policy(void **state)
{
	struct loader_opts o = { .pin_dir = NULL };
	struct kernel_match *km;
	struct loader *ld;
	struct km_result r;

	(void)state;
	REQUIRE_TEST_RUN();
	assert_int_equal(loader_open(&o, &ld), 0);
	assert_int_equal(kernel_match_new(ld, &km), 0);
	assert_int_equal(kernel_match_addr(km, "sshd", "10.0.0.1", &r), 0);
	if (r.retval != 1 || r.reason != BPFWRAP_R_NO_POLICY)
		fail_msg("no policy: got ret %d reason %u, want 1 %u", r.retval, r.reason,
			 BPFWRAP_R_NO_POLICY);
	kernel_match_free(km);
	loader_close(ld);
}

/* test_query_rate - kernel match sustains thousands of queries per second */
static void test_query_rate(void **state)
{
	struct fixture *f = *state;
	struct timespec t0, t1;
	struct km_result r;
	const int n = 20000;
	double secs;

	REQUIRE_TEST_RUN();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++)
		assert_int_equal(kernel_match_addr(f->km, i % 2 ? "sshd" : "ftpd", "192.168.1.5", &r), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("# kernel match: %d queries in %.3f s (%.0f/s)\n", n, secs, n / secs);
	if (n / secs < 2000)
		fail_msg("query rate: got %.0f/s, want >= 2000/s", n / secs);
}

/* test_load_million - 1,000,000 IPv4 entries load in well under 3 s */
static void test_load_million(void **state)
{
	struct fixture *f = *state;
	const size_t n = 1000000;
	struct compiled_policy p;
	struct compiled_v4 *e;
	struct compiled_v6 e6 = v6(0, "::", 0, A, 0, A, 0);
	struct timespec t0, t1;
	struct km_result r;
	double secs;

	REQUIRE_TEST_RUN();
	e = calloc(n, sizeof(*e));
	assert_non_null(e);
	e[0] = v4(0, "0.0.0.0", 0, A, 0, A, 0);
	for (size_t i = 1; i < n; i++) {
		/* 11/8, in an order far from sorted (odd multiplier: a bijection) */
		uint32_t a = htonl(0x0b000000u | (uint32_t)((i * 2654435761u) & 0xffffff));

		e[i].key.prefixlen = 64;
		e[i].key.daemon_id = htonl(0);
		e[i].key.addr = a;
		e[i].entry.verdict = D;
		e[i].entry.verdict_if_unknown = D;
		e[i].entry.rule_id = 1 + (uint32_t)(i % 1000);
	}
	memset(&p, 0, sizeof(p));
	p.v4 = e;
	p.n_v4 = n;
	p.v6 = &e6;
	p.n_v6 = 1;
	p.n_rules = 1000;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(loader_load_policy(f->ld, &p), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("# loaded %zu v4 entries in %.3f s\n", n, secs);
	for (size_t i = 1; i < n; i += 99991) {
		char text[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &e[i].key.addr, text, sizeof(text));
		assert_int_equal(kernel_match_addr(f->km, "any", text, &r), 0);
		if (r.retval != 0 || r.rule_id != e[i].entry.rule_id)
			fail_msg("1M table, %s: got ret %d rule %u, want 0 %u", text, r.retval,
				 r.rule_id, e[i].entry.rule_id);
	}
	assert_int_equal(kernel_match_addr(f->km, "any", "12.0.0.1", &r), 0);
	if (r.retval != 1 || r.rule_id != 0)
		fail_msg("1M table default: got ret %d rule %u, want 1 0", r.retval, r.rule_id);
	free(e);
	if (secs >= 3.0)
		fail_msg("load time: got %.3f s, want < 3 s", secs);
	assert_int_equal(loader_load_policy(f->ld, &main_policy), 0);
}

/* rng_next - xorshift32, deterministic per seed */
static uint32_t rng_next(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* host_mask - the netmask of a prefix length 0..32, host order */
static uint32_t host_mask(uint32_t len)
{
	return (uint32_t)(~(UINT64_C(0xffffffff) >> len));
}

/* ref_lpm - the longest prefix of daemon d covering a (host order) among
 * e[0..n); its index, or -1 */
static long ref_lpm(const struct compiled_v4 *e, size_t n, uint32_t d, uint32_t a)
{
	long best = -1;
	uint32_t best_len = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t len = e[i].key.prefixlen - 32, net = ntohl(e[i].key.addr);
		uint32_t mask = host_mask(len);

		if (ntohl(e[i].key.daemon_id) != d || ((a ^ net) & mask))
			continue;
		if (best < 0 || len > best_len) {
			best = (long)i;
			best_len = len;
		}
	}
	return best;
}

/*
 * test_v4_intervals - the IPv4 interval tables against a brute-force
 * longest-prefix match: nested random prefixes crowded into a few /16s (so
 * buckets get trees of height 2 and more), three daemon tables, one of them
 * without a /0 (addresses no prefix covers must fail closed: NO_ENTRY),
 * queries at every prefix's first and last address, just outside, and random.
 */
static void test_v4_intervals(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = { "other-daemon", "sshd", "ftpd" };
	const size_t n = 3000;
	struct compiled_policy p;
	struct compiled_v4 *e;
	struct compiled_v6 e6 = v6(0, "::", 0, A, 0, A, 0);
	uint32_t x = 12345;
	size_t m = 0, checked = 0;

	REQUIRE_TEST_RUN();
	e = calloc(n, sizeof(*e));
	assert_non_null(e);
	e[m++] = v4(0, "0.0.0.0", 0, A, 1, A, 0);
	e[m++] = v4(D_SSHD, "0.0.0.0", 0, D, 2, D, 0);
	/* D_FTPD: no /0 */
	while (m < n) {
		uint32_t d = rng_next(&x) % 3, len = 8 + rng_next(&x) % 25;
		uint32_t a = (0x0a000000u | (rng_next(&x) % 3) << 16) ^ (rng_next(&x) & 0xffff);
		struct compiled_v4 c;
		char text[INET_ADDRSTRLEN];
		struct in_addr ia;
		bool dup = false;

		if (rng_next(&x) % 8 == 0)
			a = rng_next(&x);	/* anywhere */
		a &= host_mask(len);
		ia.s_addr = htonl(a);
		inet_ntop(AF_INET, &ia, text, sizeof(text));
		c = v4(d, text, len, rng_next(&x) % 2 ? A : D, (uint32_t)m + 1, D, 0);
		for (size_t i = 0; i < m && !dup; i++)
			dup = !memcmp(&e[i].key, &c.key, sizeof(c.key));
		if (!dup)
			e[m++] = c;
	}
	memset(&p, 0, sizeof(p));
	p.daemons = main_daemons;
	p.n_daemons = 2;
	p.v4 = e;
	p.n_v4 = m;
	p.v6 = &e6;
	p.n_v6 = 1;
	p.n_rules = (uint32_t)m + 1;
	assert_int_equal(loader_load_policy(f->ld, &p), 0);
	for (size_t q = 0; q < 4 * m; q++) {
		const struct compiled_v4 *src = &e[q / 4];
		uint32_t len = src->key.prefixlen - 32, net = ntohl(src->key.addr);
		uint32_t last = net | ~host_mask(len), a;
		char text[INET_ADDRSTRLEN];
		struct in_addr ia;
		struct km_result r;
		long want;

		switch (q % 4) {
		case 0: a = net; break;
		case 1: a = last; break;
		case 2: a = q % 8 == 2 ? net - 1 : last + 1; break;
		default: a = (0x0a000000u | (rng_next(&x) % 3) << 16) ^ (rng_next(&x) & 0xffff); break;
		}
		for (uint32_t d = 0; d < 3; d++) {
			want = ref_lpm(e, m, d, a);
			ia.s_addr = htonl(a);
			inet_ntop(AF_INET, &ia, text, sizeof(text));
			assert_int_equal(kernel_match_addr(f->km, names[d], text, &r), 0);
			if (want < 0) {
				if (r.reason != BPFWRAP_R_NO_ENTRY || r.retval != 0)
					fail_msg("daemon %s, %s: got reason %u ret %d, want NO_ENTRY 0",
						 names[d], text, r.reason, r.retval);
			} else if (r.rule_id != e[want].entry.rule_id ||
				   r.entry_verdict != e[want].entry.verdict) {
				fail_msg("daemon %s, %s: got rule %u verdict %u, want rule %u verdict %u",
					 names[d], text, r.rule_id, r.entry_verdict,
					 e[want].entry.rule_id, e[want].entry.verdict);
			}
			checked++;
		}
	}
	printf("# %zu prefixes, %zu lookups equal to the brute-force match\n", m, checked);
	free(e);
	assert_int_equal(loader_load_policy(f->ld, &main_policy), 0);
}

/* test_ringbuf_full - a full ring buffer loses events (counted), never a verdict */
static void test_ringbuf_full(void **state)
{
	struct loader_opts o = { .pin_dir = NULL, .ringbuf_bytes = 4096 };
	struct kernel_match *km;
	struct loader_status st;
	struct loader *ld;
	struct km_query q;
	struct km_result r;
	int lost_verdicts = 0;

	(void)state;
	REQUIRE_TEST_RUN();
	build_main_policy();
	assert_int_equal(loader_open(&o, &ld), 0);
	assert_int_equal(loader_load_policy(ld, &main_policy), 0);
	assert_int_equal(kernel_match_new(ld, &km), 0);
	memset(&q, 0, sizeof(q));
	q.daemon = "sshd";
	q.family = AF_INET;
	inet_pton(AF_INET, "8.8.8.8", &q.client);
	q.side_effects = true;
	/* ~200-byte events in a 4 KiB buffer nobody reads: most are lost. */
	for (int i = 0; i < 100; i++) {
		q.client_port = (uint16_t)(20000 + i);	/* a new flow each time */
		assert_int_equal(kernel_match_query(km, &q, &r), 0);
		if (r.retval != 0 || r.final != D)
			lost_verdicts++;
	}
	assert_int_equal(loader_status(ld, &st), 0);
	if (lost_verdicts)
		fail_msg("verdicts with a full ring buffer: got %d not DENY, want 0", lost_verdicts);
	if (st.stats[BPFWRAP_STAT_EVENTS_LOST] < 50 || st.stats[BPFWRAP_STAT_DENY] != 100)
		fail_msg("full ring buffer: got lost %llu deny %llu, want >= 50 and 100",
			 (unsigned long long)st.stats[BPFWRAP_STAT_EVENTS_LOST],
			 (unsigned long long)st.stats[BPFWRAP_STAT_DENY]);
	kernel_match_free(km);
	loader_close(ld);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decisions),
		cmocka_unit_test(test_ask_agent_alive),
		cmocka_unit_test(test_verdict_cache),
		cmocka_unit_test(test_verdict_cache_refined),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_counters_handed_back),
		cmocka_unit_test(test_deny_event),
		cmocka_unit_test(test_deny_aggregated),
		cmocka_unit_test(test_fast_path),
		cmocka_unit_test(test_host_tables),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_flip_sequential),
		cmocka_unit_test(test_flip_concurrent),
		cmocka_unit_test(test_no_policy),
		cmocka_unit_test(test_ringbuf_full),
		cmocka_unit_test(test_query_rate),
		cmocka_unit_test(test_load_million),
		cmocka_unit_test(test_v4_intervals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
