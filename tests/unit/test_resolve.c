/*
 * test_resolve.c - double-reverse host name lookup (user/agent/resolve.c) against a
 * fake DNS server that runs inside this test on 127.0.0.1 (UDP, random
 * port): good names, forward mismatches, CNAME tricks, no PTR, timeouts, and
 * hostile PTR names (shell metacharacters, backticks, $(...), newlines, 300
 * characters) that must come out "paranoid" and never as the name.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "fakedns.h"
#include "resolve.h"

#define T_A FAKEDNS_A
#define T_CNAME FAKEDNS_CNAME
#define T_PTR FAKEDNS_PTR
#define T_AAAA FAKEDNS_AAAA

/* One record the fake server knows. owner: a name, or for PTR the address text. */
struct rr {
	const char *owner;
	int type;
	const char *data;	/* address text (A/AAAA) or a name (PTR/CNAME), labels split at '.' */
};

static char long300[320], long182[200];
static const char *drop_addr = "192.0.2.12";	/* the server never answers its PTR */

static struct rr records[] = {
	{ "192.0.2.1", T_PTR, "good.example" },
	{ "good.example", T_A, "192.0.2.1" },
	{ "192.0.2.2", T_PTR, "liar.example" },
	{ "liar.example", T_A, "192.0.2.99" },
	{ "2001:db8::1", T_PTR, "six.example" },
	{ "six.example", T_AAAA, "2001:db8::1" },
	{ "192.0.2.4", T_PTR, ";rm -rf /" },
	{ "192.0.2.5", T_PTR, "`reboot`.evil.example" },
	{ "`reboot`.evil.example", T_A, "192.0.2.5" },
	{ "192.0.2.6", T_PTR, "$(reboot).evil.example" },
	{ "$(reboot).evil.example", T_A, "192.0.2.6" },
	{ "192.0.2.7", T_PTR, "a\nb.evil.example" },
	{ "192.0.2.8", T_PTR, long300 },
	{ "192.0.2.9", T_PTR, long182 },
	{ long182, T_A, "192.0.2.9" },
	{ "192.0.2.10", T_PTR, "nofwd.example" },
	{ "192.0.2.11", T_PTR, "alias.example" },
	{ "alias.example", T_CNAME, "real.example" },
	{ "real.example", T_A, "192.0.2.11" },
	{ "192.0.2.13", T_PTR, "Mixed-Case.Example" },
	{ "mixed-case.example", T_A, "192.0.2.13" },
	{ "192.0.2.14", T_PTR, "multi.example" },
	{ "multi.example", T_A, "192.0.2.200" },
	{ "multi.example", T_A, "192.0.2.14" },
	{ "192.0.2.15", T_PTR, "x y.evil.example" },
	{ "192.0.2.16", T_PTR, "under_score.example" },
	{ "under_score.example", T_A, "192.0.2.16" },
};

static int dns_fd = -1;
static uint16_t dns_port;
static volatile bool dns_stop;
static pthread_t dns_thread;

/* reverse_name - the in-addr.arpa / ip6.arpa name of an address (fails the test if none) */
static void reverse_name(const char *addr, char *out, size_t size)
{
	fakedns_reverse_name(addr, out, size);
	assert_true(out[0] != '\0');
}

/* owner_matches - does a record's owner answer the question name? */
static bool owner_matches(const struct rr *r, const char *qname, int qtype)
{
	char rev[128];

	if (r->type == T_PTR) {
		reverse_name(r->owner, rev, sizeof(rev));
		return !strcasecmp(rev, qname);
	}
	return !strcasecmp(r->owner, qname);
}

/* answer - build the response to one query into out; 0 = drop it */
static size_t answer(const unsigned char *q, size_t qlen, unsigned char *out)
{
	char qname[300];
	size_t qend, n;
	int qtype, ancount = 0;
	bool known = false;
	char drop[128];

	qend = fakedns_question(q, qlen, qname, sizeof(qname), &qtype);
	if (!qend)
		return 0;
	reverse_name(drop_addr, drop, sizeof(drop));
	if (!strcasecmp(qname, drop))
		return 0;
	n = fakedns_reply(out, q, qend);
	for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
		const struct rr *r = &records[i];
		unsigned char rdata[512];
		size_t rdlen;
		int rtype = r->type;

		if (!owner_matches(r, qname, qtype))
			continue;
		known = true;
		if (rtype != qtype && !(rtype == T_CNAME && (qtype == T_A || qtype == T_AAAA)))
			continue;
		if (rtype == T_A)
			rdlen = inet_pton(AF_INET, r->data, rdata) == 1 ? 4 : 0;
		else if (rtype == T_AAAA)
			rdlen = inet_pton(AF_INET6, r->data, rdata) == 1 ? 16 : 0;
		else
			rdlen = fakedns_put_name(rdata, r->data);
		n = fakedns_put_answer(out, n, rtype, rdata, rdlen);
		ancount++;
		if (rtype == T_CNAME) {	/* add the target's records of the asked type */
			for (size_t j = 0; j < sizeof(records) / sizeof(records[0]); j++) {
				if (records[j].type != qtype || strcasecmp(records[j].owner, r->data))
					continue;
				n += fakedns_put_name(out + n, r->data);
				out[n++] = 0, out[n++] = (unsigned char)qtype;
				out[n++] = 0, out[n++] = 1;
				out[n++] = 0, out[n++] = 0, out[n++] = 0, out[n++] = 60;
				rdlen = qtype == T_A ? 4 : 16;
				out[n++] = 0, out[n++] = (unsigned char)rdlen;
				inet_pton(qtype == T_A ? AF_INET : AF_INET6, records[j].data, out + n);
				n += rdlen;
				ancount++;
			}
		}
	}
	if (!known)
		out[3] = 0x83;	/* NXDOMAIN */
	out[7] = (unsigned char)ancount;
	return n;
}

/* dns_main - the fake server loop: answer until told to stop */
static void *dns_main(void *unused)
{
	while (!dns_stop) {
		struct pollfd pfd = { .fd = dns_fd, .events = POLLIN };
		unsigned char q[512], out[4096];
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n;
		size_t len;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recvfrom(dns_fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fromlen);
		if (n <= 0)
			continue;
		len = answer(q, (size_t)n, out);
		if (len)
			sendto(dns_fd, out, len, 0, (struct sockaddr *)&from, fromlen);
	}
	return NULL;
}

/* Collected callback results. */
struct got {
	bool called;
	int calls;
	char name[256];
	int status;
	char reason[128];
};

/* on_result - resolve callback: record what came */
static void on_result(void *arg, const struct resolve_result *res)
{
	struct got *g = arg;

	g->called = true;
	g->calls++;
	snprintf(g->name, sizeof(g->name), "%s", res->name);
	snprintf(g->reason, sizeof(g->reason), "%s", res->reason);
	g->status = res->status;
}

/* ms - CLOCK_MONOTONIC in ms */
static uint64_t ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* drive - epoll loop on resolve_fd until nothing is pending or limit_ms passed */
static void drive(struct resolver *r, unsigned limit_ms)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	uint64_t start = ms();

	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, resolve_fd(r), &ev), 0);
	while (resolve_pending(r) && ms() - start < limit_ms)
		if (epoll_wait(ep, &ev, 1, 50) > 0)
			resolve_process(r);
	close(ep);
}

/* open_resolver - a resolver pointed at the fake server */
static struct resolver *open_resolver(void)
{
	char servers[64];
	struct resolve_config cfg = { .servers = servers, .timeout_ms = 300, .tries = 1, .dns_only = true };
	struct resolver *r;

	snprintf(servers, sizeof(servers), "127.0.0.1:%u", dns_port);
	assert_int_equal(resolve_open(&r, &cfg), 0);
	return r;
}

/* test_lookups - every table case, all in flight at once */
static void test_lookups(void **state)
{
	static const struct {
		const char *name;
		const char *addr;
		const char *want;
		int want_status;
	} cases[] = {
		{ "good double reverse", "192.0.2.1", "good.example", 0 },
		{ "v4-mapped looked up as IPv4", "::ffff:192.0.2.1", "good.example", 0 },
		{ "IPv6", "2001:db8::1", "six.example", 0 },
		{ "forward points elsewhere", "192.0.2.2", "paranoid", 0 },
		{ "no PTR", "192.0.2.3", "unknown", 0 },
		{ "hostile: shell command", "192.0.2.4", "paranoid", 0 },
		{ "hostile: backticks", "192.0.2.5", "paranoid", 0 },
		{ "hostile: $(...)", "192.0.2.6", "paranoid", 0 },
		{ "hostile: newline", "192.0.2.7", "paranoid", 0 },
		{ "hostile: 300 characters", "192.0.2.8", "paranoid", 0 },
		{ "valid DNS, longer than 127", "192.0.2.9", "paranoid", 0 },
		{ "no forward record", "192.0.2.10", "paranoid", 0 },
		{ "forward is a CNAME (tcpd: name/name mismatch)", "192.0.2.11", "paranoid", 0 },
		{ "server does not answer", "192.0.2.12", "unknown", -ETIMEDOUT },
		{ "case kept as the PTR has it", "192.0.2.13", "Mixed-Case.Example", 0 },
		{ "address among several", "192.0.2.14", "multi.example", 0 },
		{ "hostile: blank", "192.0.2.15", "paranoid", 0 },
		{ "underscore accepted", "192.0.2.16", "under_score.example", 0 },
	};
	enum { N = sizeof(cases) / sizeof(cases[0]) };
	struct got got[N];
	struct resolver *r = open_resolver();
	int failures = 0;

	memset(got, 0, sizeof(got));
	for (size_t i = 0; i < N; i++)
		assert_int_equal(resolve_start(r, cases[i].addr, on_result, &got[i]), 0);
	for (size_t i = 0; i < N; i++)
		if (got[i].called)
			fail_msg("%s: callback ran inside resolve_start, want it from resolve_process", cases[i].name);
	drive(r, 5000);
	for (size_t i = 0; i < N; i++) {
		if (got[i].calls != 1 || strcmp(got[i].name, cases[i].want) ||
		    got[i].status != cases[i].want_status) {
			print_error("%s (%s): got %d calls, name \"%s\", status %d (%s); want 1, \"%s\", %d\n",
				    cases[i].name, cases[i].addr, got[i].calls, got[i].name, got[i].status,
				    got[i].reason, cases[i].want, cases[i].want_status);
			failures++;
		}
	}
	resolve_close(r);
	assert_int_equal(failures, 0);
}

/* test_name_ok - the validator on its own */
static void test_name_ok(void **state)
{
	static const struct {
		const char *name;
		bool ok;
	} cases[] = {
		{ "host.example.org", true }, { "a", true }, { "x-1_y.example", true },
		{ "", false }, { ".example", false }, { "a..b", false }, { "a b", false },
		{ "a;b", false }, { "a`b`", false }, { "$(x)", false }, { "a\nb", false },
		{ "a\xc3\xa9", false }, { "a/b", false },
	};
	char max[POLICY_FIELD_MAX + 2];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (resolve_name_ok(cases[i].name) != cases[i].ok)
			fail_msg("resolve_name_ok(\"%s\") got %d, want %d", cases[i].name, !cases[i].ok,
				 cases[i].ok);
	memset(max, 'a', sizeof(max) - 1);
	max[sizeof(max) - 1] = 0;
	assert_false(resolve_name_ok(max));	/* 128 */
	max[POLICY_FIELD_MAX] = 0;
	assert_true(resolve_name_ok(max));	/* 127 */
}

/* test_limits - bad input and a full table are errors; close cancels what is in flight */
static void test_limits(void **state)
{
	char servers[64];
	struct resolve_config cfg = { .servers = servers, .timeout_ms = 2000, .tries = 1, .max_pending = 2,
				      .dns_only = true };
	struct got a = { 0 }, b = { 0 }, c = { 0 };
	struct resolver *r;

	snprintf(servers, sizeof(servers), "127.0.0.1:%u", dns_port);
	assert_int_equal(resolve_open(&r, &cfg), 0);
	assert_int_equal(resolve_start(r, "not-an-address", on_result, &a), -EINVAL);
	assert_int_equal(resolve_start(r, "192.0.2.300", on_result, &a), -EINVAL);
	assert_int_equal(resolve_start(r, drop_addr, on_result, &a), 0);
	assert_int_equal(resolve_start(r, drop_addr, on_result, &b), 0);
	assert_int_equal(resolve_start(r, drop_addr, on_result, &c), -EAGAIN);
	resolve_close(r);
	if (a.calls != 1 || a.status != -ECANCELED || b.calls != 1 || b.status != -ECANCELED || c.calls)
		fail_msg("close got calls %d/%d/%d status %d/%d, want 1/1/0 and -ECANCELED", a.calls, b.calls,
			 c.calls, a.status, b.status);
	cfg.servers = "not a server list";
	assert_int_equal(resolve_open(&r, &cfg), -EINVAL);
}

static int setup(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	char *p = long300;

	/* 300 characters: 6 labels of 49 and dots; over DNS's 255 limit */
	for (int i = 0; i < 6; i++) {
		memset(p, 'a' + i, 49);
		p += 49;
		*p++ = '.';
	}
	p[-1] = 0;
	p = long182;	/* a valid DNS name of 182 characters */
	for (int i = 0; i < 3; i++) {
		memset(p, 'k' + i, 60);
		p += 60;
		*p++ = '.';
	}
	memcpy(p, "ex", 3);
	dns_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (dns_fd < 0 || bind(dns_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(dns_fd, (struct sockaddr *)&sin, &len) < 0)
		return -1;
	dns_port = ntohs(sin.sin_port);
	return pthread_create(&dns_thread, NULL, dns_main, NULL) ? -1 : 0;
}

static int teardown(void **state)
{
	dns_stop = true;
	pthread_join(dns_thread, NULL);
	close(dns_fd);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_name_ok),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
