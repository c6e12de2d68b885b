/*
 * test_agent.c - the agent inside `bpfwrap run`, end to end: tcpd log lines
 * (exact format, fail2ban's regex), host name rules answered through a fake
 * DNS server and cached in the kernel, live reload of an appended hosts.deny
 * and a broken edit, spawn with hostile names and users, spawn limits under a
 * flood, kill -9 of the agent, the systemd unit and `make install`.
 *
 * Same world as test_enforce.c (itest.h): private netns, child cgroup, real
 * sockets; the fake DNS server and identd run as children in the namespace,
 * outside the cgroup. Needs root. A case fails when its world cannot be
 * made, and skips (with "# skip: why") only for a missing kernel feature (see
 * itest.h) or, for the unit check, a missing systemd-analyze.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <regex.h>

#include "agent.h"
#include "expand.h"
#include "fail2ban.h"
#include "integration/itest.h"

#define DENY_ALL "ALL: ALL\n"
#define DNS_PORT 5353
#define DNS_SERVER "127.0.0.1:5353"
#define PORT 8080

/* The names the fake DNS server gives: .5 and .8 verify, .6 lies (PARANOID). */
static const struct itest_rr name_records[] = {
	{ "127.0.0.5", ITEST_RR_PTR, "good.trusted.test" },
	{ "good.trusted.test", ITEST_RR_A, "127.0.0.5" },
	{ "127.0.0.6", ITEST_RR_PTR, "liar.trusted.test" },
	{ "liar.trusted.test", ITEST_RR_A, "127.0.0.99" },
	{ "127.0.0.8", ITEST_RR_PTR, "good2.trusted.test" },
	{ "good2.trusted.test", ITEST_RR_A, "127.0.0.8" },
};

/* show_log - print the test's connection log (bounded) */
static void show_log(const struct itest_env *env)
{
	char path[PATH_MAX + 16], all[8192];
	int fd;
	ssize_t got;

	snprintf(path, sizeof(path), "%s/conn.log", env->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	got = fd >= 0 ? read(fd, all, sizeof(all) - 1) : -1;
	if (fd >= 0)
		close(fd);
	all[got > 0 ? got : 0] = '\0';
	fprintf(stderr, "itest: %s holds:\n%s\n", path, all);
}

/* show_and_fail - print what bpfwrap said and logged, then fail with the message */
#define show_and_fail(env, ...)                                                         \
	do {                                                                            \
		for (size_t i_ = 0; i_ < 2; i_++)                                       \
			if ((env)->bw[i_].len)                                          \
				fprintf(stderr, "itest: bpfwrap[%zu] said:\n%s\n", i_,  \
					(env)->bw[i_].log);                             \
		show_log(env);                                                          \
		fail_msg(__VA_ARGS__);                                                  \
	} while (0)

/* start_server - an echod TCP server on 127.0.0.1:PORT in the test cgroup, or fail */
static struct itest_server *start_server(struct itest_env *env)
{
	struct itest_server_opts o = {
		.type = SOCK_STREAM, .family = AF_INET, .addr = "127.0.0.1", .port = PORT,
		.comm = "echod",
	};
	struct itest_server *srv = NULL;
	int err = itest_server_start(env, &o, &srv);

	if (err)
		fail_msg("server echod on 127.0.0.1:%u: got %s, want running", PORT, strerror(-err));
	return srv;
}

/* log_path - the test's connection log file */
static const char *log_path(struct itest_env *env, char *buf, size_t size)
{
	snprintf(buf, size, "%s/conn.log", env->dir);
	return buf;
}

/* start_agent - bpfwrap run number i with --log FILE and extra args, ready, or fail */
static void start_agent(struct itest_env *env, int i, const char *const *extra)
{
	static char logfile[PATH_MAX];
	const char *argv[24];
	int n = 0;

	ITEST_NEED_BPFWRAP(env);
	if (extra && extra[0] && !strcmp(extra[0], "--watch"))
		argv[n++] = *extra++;
	argv[n++] = "--log";
	argv[n++] = log_path(env, logfile, sizeof(logfile));
	for (; extra && *extra && n < 23; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	if (itest_bpfwrap_start_ready(env, &env->bw[i], NULL, argv))
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");
}

/* start_dns - the fake DNS server with the given records, or fail */
static void start_dns(struct itest_env *env, const struct itest_rr *rrs, size_t n)
{
	static struct itest_fakedns d;

	d = (struct itest_fakedns){ .addr = "127.0.0.1", .port = DNS_PORT, .rrs = rrs, .n_rrs = n };
	if (itest_fakedns_start(env, &d))
		fail_msg("fake DNS server: got no \"ready\", want one");
}

/* find_line - the first line of path containing needle, into buf; false if none */
static bool find_line(const char *path, const char *needle, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	bool found = false;

	if (!f)
		return false;
	for (int i = 0; i < 100000 && fgets(buf, (int)size, f); i++) {
		if (strstr(buf, needle)) {
			buf[strcspn(buf, "\n")] = '\0';
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

/* wait_line - wait up to timeout_ms for a log line containing needle, or fail */
static void wait_line(struct itest_env *env, const char *needle, char *buf, size_t size,
		      int timeout_ms)
{
	char path[PATH_MAX];

	log_path(env, path, sizeof(path));
	if (itest_file_wait(path, needle, 1, timeout_ms) < 1 || !find_line(path, needle, buf, size)) {
		char all[8192] = "";
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t got = fd >= 0 ? read(fd, all, sizeof(all) - 1) : -1;

		if (fd >= 0)
			close(fd);
		all[got > 0 ? got : 0] = '\0';
		show_and_fail(env, "log %s: got no line with \"%s\", want one; the log holds:\n%s", path,
			      needle, all);
	}
}

/* stat_of - a global counter from `bpfwrap status` ("..., asked N, ..."), -1 if absent */
static long long stat_of(struct itest_env *env, const char *label)
{
	char out[16384], key[64];
	const char *p;

	if (itest_bpfwrap_cmd(env, "status", out, sizeof(out)) != 0)
		return -1;
	snprintf(key, sizeof(key), " %s ", label);
	p = strstr(out, key);
	return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

/* connect_ms - connect from src, return the outcome and the time it took */
static int connect_ms(const char *src, int timeout_ms, long long *took)
{
	long long t0 = itest_now_ms();
	int rc = itest_tcp_connect(AF_INET, src, "127.0.0.1", PORT, timeout_ms);

	*took = itest_now_ms() - t0;
	return rc;
}

/*
 * start_named - echod, the fake DNS server with name_records, hosts.allow
 * `allow` and hosts.deny DENY_ALL, the agent with extra; then
 * good.trusted.test (127.0.0.5) must connect, or the test fails naming it
 * `what`; the time it took into *took
 */
static void start_named(struct itest_env *env, const char *allow, const char *const *extra,
			const char *what, long long *took)
{
	int rc;

	start_server(env);
	start_dns(env, name_records, sizeof(name_records) / sizeof(name_records[0]));
	assert_int_equal(itest_policy(env, allow, DENY_ALL), 0);
	start_agent(env, 0, extra);
	rc = connect_ms("127.0.0.5", 5000, took);
	if (rc)
		show_and_fail(env, "%s: got %s, want connected", what, itest_outcome(rc));
}

/* match_line - does line match the extended regular expression ere */
static bool match_line(const char *ere, const char *line, regmatch_t *m, size_t nm)
{
	regex_t re;
	bool ok;

	assert_int_equal(regcomp(&re, ere, REG_EXTENDED), 0);
	ok = regexec(&re, line, nm, m, 0) == 0;
	regfree(&re);
	return ok;
}

/*
 * wait_syslog_line - wait for the log line containing needle (into line) and
 * check it is "Mmm dd hh:mm:ss HOST echod[pid]: " and then the ERE msg, or
 * fail naming it `what`
 */
static void wait_syslog_line(struct itest_env *env, const char *needle, pid_t pid, const char *msg,
			     const char *what, char *line, size_t size)
{
	char ere[512];

	wait_line(env, needle, line, size, 5000);
	snprintf(ere, sizeof(ere),
		 "^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [^ ]+ echod\\[%d\\]: %s$",
		 (int)pid, msg);
	if (!match_line(ere, line, NULL, 0))
		fail_msg("%s: got \"%s\", want /%s/", what, line, ere);
}

/* test_log_lines_tcpd_format - denied and accepted connections give tcpd's lines,
 * and fail2ban's tcpwrapper filter finds the denied client's address */
static void test_log_lines_tcpd_format(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *const extra[] = { "--log-accept", NULL };
	const struct itest_probe probes[] = {
		{ "allowed by hosts.allow", AF_INET, "127.0.0.2", "127.0.0.1", PORT, true },
		{ "denied by hosts.deny", AF_INET, "127.0.0.3", "127.0.0.1", PORT, false },
	};
	struct itest_server *srv;
	char line[1024];
	regmatch_t m[20];
	int misses;

	srv = start_server(env);
	assert_int_equal(itest_policy(env, "echod: 127.0.0.2\n", DENY_ALL), 0);
	start_agent(env, 0, extra);
	misses = itest_probe_tcp(probes, 2);
	if (misses)
		show_and_fail(env, "%d probe(s) got the wrong outcome", misses);

	/* syslog-style file line: "Mmm dd hh:mm:ss HOST echod[PID]: MESSAGE" */
	wait_syslog_line(env, "refused connect from 127.0.0.3", srv->pid,
			 "refused connect from 127\\.0\\.0\\.3 \\(127\\.0\\.0\\.3\\)", "deny line", line,
			 sizeof(line));
	if (strlen(line) < 16 || !match_line(fail2ban_tcpwrapper_ere, line + 16, m, 20))
		fail_msg("fail2ban tcpwrapper regex: got no match for \"%s\", want one", line);
	/* group 13 is <HOST>'s ip4 alternative */
	if (m[13].rm_so < 0 || strncmp(line + 16 + m[13].rm_so, "127.0.0.3", 9) ||
	    m[13].rm_eo - m[13].rm_so != 9)
		fail_msg("fail2ban <HOST>: got \"%.*s\", want \"127.0.0.3\"",
			 (int)(m[13].rm_eo - m[13].rm_so), line + 16 + (m[13].rm_so > 0 ? m[13].rm_so : 0));

	wait_syslog_line(env, "]: connect from 127.0.0.2", srv->pid, "connect from 127\\.0\\.0\\.2",
			 "accept line", line, sizeof(line));
	if (match_line(fail2ban_tcpwrapper_ere, line + 16, NULL, 0))
		fail_msg("fail2ban regex: got a match for the accept line \"%s\", want none", line);
}

/* test_log_json_severity - --log-format json names the rule; without --log-accept only
 * accepts of a rule with a severity option are logged */
static void test_log_json_severity(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *const extra[] = { "--log-format", "json", NULL };
	const struct itest_probe probes[] = {
		{ "allowed, rule with severity", AF_INET, "127.0.0.2", "127.0.0.1", PORT, true },
		{ "allowed, plain rule", AF_INET, "127.0.0.4", "127.0.0.1", PORT, true },
		{ "denied", AF_INET, "127.0.0.3", "127.0.0.1", PORT, false },
	};
	char line[1024], want[PATH_MAX + 64], path[PATH_MAX];
	int misses;

	start_server(env);
	assert_int_equal(itest_policy(env, "echod: 127.0.0.2: severity auth.notice\necho: 127.0.0.9\n"
					   "echod: 127.0.0.4\n", DENY_ALL), 0);
	start_agent(env, 0, extra);
	misses = itest_probe_tcp(probes, 3);
	if (misses)
		show_and_fail(env, "%d probe(s) got the wrong outcome", misses);
	wait_line(env, "\"client_addr\":\"127.0.0.3\"", line, sizeof(line), 5000);
	snprintf(want, sizeof(want), "\"rule\":\"%s:1\"", env->deny);
	if (!strstr(line, "\"daemon\":\"echod\"") || !strstr(line, "\"verdict\":\"refused\"") ||
	    !strstr(line, want))
		fail_msg("json deny line: got %s, want daemon echod, verdict refused, %s", line, want);
	wait_line(env, "\"client_addr\":\"127.0.0.2\"", line, sizeof(line), 5000);
	snprintf(want, sizeof(want), "\"rule\":\"%s:1\"", env->allow);
	if (!strstr(line, "\"verdict\":\"connect\"") || !strstr(line, want))
		fail_msg("json accept line: got %s, want verdict connect, %s", line, want);
	if (itest_file_lines(log_path(env, path, sizeof(path)), "127.0.0.4") != 0)
		show_and_fail(env, "accept of a rule without severity: got a log line, want none "
				   "(no --log-accept)");
}

/* test_name_rule_paranoid_cached - `.trusted.test` allows a client whose names verify,
 * denies one whose forward lookup disagrees; the answers are then decided in the kernel */
static void test_name_rule_paranoid_cached(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *const extra[] = { "--log-accept", "--dns-server", DNS_SERVER, NULL };
	long long took, asked, hits, asked2, hits2;
	char line[1024];
	int rc;

	start_named(env, "echod: .trusted.test\n", extra, "good.trusted.test (127.0.0.5)", &took);
	printf("# first connection that needs a host name: %lld ms (SYN held, agent asks DNS, "
	       "retransmitted SYN decided by the kernel's cache)\n", took);
	wait_line(env, "connect from good.trusted.test", line, sizeof(line), 5000);

	rc = connect_ms("127.0.0.6", 2500, &took);
	if (rc != -ETIMEDOUT)
		show_and_fail(env, "liar.trusted.test (127.0.0.6, forward lookup 127.0.0.99): got %s, "
				   "want dropped (PARANOID)", itest_outcome(rc));
	/* tcpd shows the address, not the paranoid name */
	wait_line(env, "refused connect from 127.0.0.6 (127.0.0.6)", line, sizeof(line), 5000);

	/* now in the kernel's verdict cache: no new question */
	asked = stat_of(env, "asked");
	hits = stat_of(env, "cache hits");
	rc = connect_ms("127.0.0.5", 500, &took);
	if (rc)
		show_and_fail(env, "127.0.0.5 again: got %s, want connected at once (cached)",
			      itest_outcome(rc));
	if (took > 300)
		fail_msg("127.0.0.5 again: got %lld ms, want < 300 ms (no SYN retransmit)", took);
	rc = connect_ms("127.0.0.6", ITEST_DENY_TIMEOUT_MS, &took);
	if (rc != -ETIMEDOUT)
		fail_msg("127.0.0.6 again: got %s, want dropped", itest_outcome(rc));
	asked2 = stat_of(env, "asked");
	hits2 = stat_of(env, "cache hits");
	if (asked < 0 || hits < 0)
		fail_msg("status: got no asked/cache hits counters, want them");
	if (asked2 != asked)
		fail_msg("asked counter: got %lld after cached connects, want %lld (no new question)",
			 asked2, asked);
	if (hits2 < hits + 2)
		fail_msg("cache hits: got %lld, want >= %lld (one per client)", hits2, hits + 2);
}

/* test_user_rule_ident - `alice@127.0.0.7` asks the client's identd: alice gets in,
 * mallory on another host with the same kind of rule does not */
static void test_user_rule_ident(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	static const struct itest_fakeident alice = { .addr = "127.0.0.7", .user = "alice" };
	static const struct itest_fakeident mallory = { .addr = "127.0.0.10", .user = "mallory" };
	const char *const extra[] = { "--log-accept", "--dns-server", DNS_SERVER, NULL };
	long long took;
	char line[1024];
	int rc;

	start_server(env);
	start_dns(env, name_records, 1);	/* no names for .7 and .10: "unknown" at once */
	if (itest_fakeident_start(env, &alice) || itest_fakeident_start(env, &mallory))
		fail_msg("fake identd: got no \"ready\", want one");
	assert_int_equal(itest_policy(env, "echod: alice@127.0.0.7 alice@127.0.0.10\n", DENY_ALL), 0);
	start_agent(env, 0, extra);
	rc = connect_ms("127.0.0.7", 5000, &took);
	if (rc)
		show_and_fail(env, "alice@127.0.0.7: got %s, want connected", itest_outcome(rc));
	wait_line(env, "connect from alice@127.0.0.7", line, sizeof(line), 5000);
	rc = connect_ms("127.0.0.10", 2500, &took);
	if (rc != -ETIMEDOUT)
		show_and_fail(env, "mallory@127.0.0.10: got %s, want dropped", itest_outcome(rc));
	wait_line(env, "refused connect from mallory@127.0.0.10 (127.0.0.10)", line, sizeof(line), 5000);
}

/* connect_to - connect from src to dst:PORT; the outcome, the time it took in *took */
static int connect_to(const char *src, const char *dst, int timeout_ms, long long *took)
{
	long long t0 = itest_now_ms();
	int rc = itest_tcp_connect(AF_INET, src, dst, PORT, timeout_ms);

	*took = itest_now_ms() - t0;
	return rc;
}

/*
 * test_cache_keyed_on_server - `rtd@127.0.0.11: ALL` (the rest denied): an
 * answer for one server address is never reused for another on the same
 * listener, either way round; a repeat to the same address is decided by
 * the kernel's cache at once (issue: the cache key ignored the server)
 */
static void test_cache_keyed_on_server(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *const extra[] = { "--dns-server", DNS_SERVER, NULL };
	const struct itest_server_opts o = {
		.type = SOCK_STREAM, .family = AF_INET, .addr = "0.0.0.0", .port = PORT, .comm = "rtd",
	};
	struct itest_server *srv = NULL;
	long long took;
	int rc;

	if (itest_server_start(env, &o, &srv))
		fail_msg("server rtd on 0.0.0.0:%u: got an error, want running", PORT);
	start_dns(env, name_records, 1);	/* no names for these clients: "unknown" at once */
	assert_int_equal(itest_policy(env, "rtd@127.0.0.11: ALL\n", DENY_ALL), 0);
	start_agent(env, 0, extra);

	rc = connect_to("127.0.0.5", "127.0.0.11", 5000, &took);
	if (rc)
		show_and_fail(env, "127.0.0.5 -> 127.0.0.11: got %s, want connected", itest_outcome(rc));
	rc = connect_to("127.0.0.5", "127.0.0.1", 2500, &took);
	if (rc != -ETIMEDOUT)
		show_and_fail(env, "127.0.0.5 -> 127.0.0.1 right after an allow for 127.0.0.11: got %s "
				   "after %lld ms, want dropped (the answer was for another server)",
			      itest_outcome(rc), took);
	rc = connect_to("127.0.0.5", "127.0.0.11", 500, &took);
	if (rc || took > 300)
		show_and_fail(env, "127.0.0.5 -> 127.0.0.11 again: got %s after %lld ms, want connected "
				   "at once (cached for that server)", itest_outcome(rc), took);

	/* the other way round: a denial for .1 must not refuse .11 */
	rc = connect_to("127.0.0.6", "127.0.0.1", 2500, &took);
	if (rc != -ETIMEDOUT)
		show_and_fail(env, "127.0.0.6 -> 127.0.0.1: got %s, want dropped", itest_outcome(rc));
	rc = connect_to("127.0.0.6", "127.0.0.11", 5000, &took);
	if (rc)
		show_and_fail(env, "127.0.0.6 -> 127.0.0.11 after a denial for 127.0.0.1: got %s, "
				   "want connected", itest_outcome(rc));
}

/*
 * test_cache_user_per_connection - `echod: alice@127.0.0.3`: identd says
 * alice for the first connection, mallory for every later one; the second
 * connection is refused, as tcpd (which asked identd every time) would
 * (issue: one answer for alice let every later connection in for the TTL)
 */
static void test_cache_user_per_connection(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	static const char *const users[] = { "alice", "mallory", NULL };
	static const struct itest_fakeident ident = { .addr = "127.0.0.3", .users = users };
	const char *const extra[] = { "--log-accept", "--dns-server", DNS_SERVER, NULL };
	char line[1024];
	long long took;
	int rc;

	start_server(env);
	start_dns(env, name_records, 1);
	if (itest_fakeident_start(env, &ident))
		fail_msg("fake identd: got no \"ready\", want one");
	assert_int_equal(itest_policy(env, "echod: alice@127.0.0.3\n", DENY_ALL), 0);
	start_agent(env, 0, extra);
	rc = connect_ms("127.0.0.3", 5000, &took);
	if (rc)
		show_and_fail(env, "alice@127.0.0.3: got %s, want connected", itest_outcome(rc));
	wait_line(env, "connect from alice@127.0.0.3", line, sizeof(line), 5000);
	rc = connect_ms("127.0.0.3", 2500, &took);
	if (rc != -ETIMEDOUT)
		show_and_fail(env, "second connection from 127.0.0.3 (identd now says mallory): got %s "
				   "after %lld ms, want dropped", itest_outcome(rc), took);
	wait_line(env, "refused connect from mallory@127.0.0.3 (127.0.0.3)", line, sizeof(line), 5000);
}

/*
 * test_deny_aggregated - 20 denied connections from one client give one
 * line at once and, when the window (--log-interval 2) has ended, one line
 * "(19 times in the last 2s)" that fail2ban's filter still reads; other
 * clients each get their own line at once; `status` counts what was folded
 */
static void test_deny_aggregated(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *const extra[] = { "--log-interval", "2", NULL };
	char path[PATH_MAX], line[1024];
	regmatch_t m[20];
	long long folded;

	start_server(env);
	assert_int_equal(itest_policy(env, "", DENY_ALL), 0);
	start_agent(env, 0, extra);
	log_path(env, path, sizeof(path));
	for (int i = 0; i < 20; i++)	/* 20 flows: 20 denied SYNs */
		if (itest_tcp_connect(AF_INET, "127.0.0.3", "127.0.0.1", PORT, 25) == 0)
			fail_msg("connection %d from 127.0.0.3: got connected, want dropped", i);
	for (int i = 4; i <= 5; i++) {
		char src[32];

		snprintf(src, sizeof(src), "127.0.0.%d", i);
		if (itest_tcp_connect(AF_INET, src, "127.0.0.1", PORT, 25) == 0)
			fail_msg("%s: got connected, want dropped", src);
	}
	wait_line(env, "refused connect from 127.0.0.4 (127.0.0.4)", line, sizeof(line), 1500);
	wait_line(env, "refused connect from 127.0.0.5 (127.0.0.5)", line, sizeof(line), 1500);
	if (itest_file_lines(path, "refused connect from 127.0.0.3") != 1)
		show_and_fail(env, "within the window: got %d lines for 127.0.0.3, want 1 (the first "
				   "denial, the others counted)", itest_file_lines(path, "refused connect from 127.0.0.3"));
	wait_line(env, "(127.0.0.3) (19 times in the last ", line, sizeof(line), 5000);
	printf("# summary: %s\n", line);
	if (itest_file_lines(path, "refused connect from 127.0.0.3") != 2)
		show_and_fail(env, "after the window: got %d lines for 127.0.0.3, want 2",
			      itest_file_lines(path, "refused connect from 127.0.0.3"));
	/* fail2ban reads the summary as a refusal of 127.0.0.3 (group 13: ip4) */
	if (strlen(line) < 16 || !match_line(fail2ban_tcpwrapper_ere, line + 16, m, 20) ||
	    m[13].rm_so < 0 || strncmp(line + 16 + m[13].rm_so, "127.0.0.3", 9) ||
	    m[13].rm_eo - m[13].rm_so != 9)
		fail_msg("fail2ban tcpwrapper regex on \"%s\": got no 127.0.0.3, want it", line);
	folded = stat_of(env, "denials folded");
	if (folded != 19)
		fail_msg("status: got denials folded %lld, want 19", folded);
}

/* test_live_reload_append_and_broken - fail2ban's append to hosts.deny bans within a bounded
 * time without a restart; a broken edit keeps the policy and the log names file:line */
static void test_live_reload_append_and_broken(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *const extra[] = { "--watch", NULL };
	const char ban[] = "ALL: 127.0.0.9\n";
	char line[1024], out[16384], want[PATH_MAX + 16];
	long long t0, took;
	int fd, rc = 0;

	start_server(env);
	assert_int_equal(itest_policy(env, "", "echod: 127.0.0.66\n"), 0);
	start_agent(env, 0, extra);
	rc = connect_ms("127.0.0.9", ITEST_ALLOW_TIMEOUT_MS, &took);
	if (rc)
		show_and_fail(env, "127.0.0.9 before the ban: got %s, want connected", itest_outcome(rc));

	fd = open(env->deny, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, ban, strlen(ban)), (int)strlen(ban));
	close(fd);
	t0 = itest_now_ms();
	for (int i = 0; i < 100 && itest_now_ms() - t0 < 5000; i++) {
		rc = itest_tcp_connect(AF_INET, "127.0.0.9", "127.0.0.1", PORT, 300);
		if (rc)
			break;
		itest_sleep_ms(50);
	}
	if (rc != -ETIMEDOUT)
		show_and_fail(env, "127.0.0.9 after the append: got %s, want dropped within 5 s",
			      itest_outcome(rc));
	printf("# appended ban in force after %lld ms\n", itest_now_ms() - t0);
	wait_line(env, "refused connect from 127.0.0.9", line, sizeof(line), 5000);

	/* no final newline: libwrap stops reading there (an error): refused */
	assert_int_equal(itest_write_file(env->deny, "ALL: 127.0.0.9\nALL: 127.0.0.8"), 0);
	if (itest_bpfwrap_wait(&env->bw[0], "reload failed", 5000))
		show_and_fail(env, "after a broken edit: got no \"reload failed\" line, want one");
	rc = connect_ms("127.0.0.8", ITEST_ALLOW_TIMEOUT_MS, &took);
	if (rc)
		show_and_fail(env, "127.0.0.8 after the broken edit: got %s, want connected (old policy)",
			      itest_outcome(rc));
	snprintf(want, sizeof(want), "%s:2", env->deny);
	wait_line(env, want, line, sizeof(line), 3000);
	if (!strstr(line, "bpfwrap["))
		fail_msg("diagnostic line: got \"%s\", want it from bpfwrap[PID]", line);
	if (itest_bpfwrap_cmd(env, "status", out, sizeof(out)) != 0)
		fail_msg("bpfwrap status failed: %s", out);
	if (!strstr(out, "last reload: refused") || !strstr(out, want))
		fail_msg("status: got\n%s\nwant \"last reload: refused ... %s\"", out, want);
}

/* test_spawn_sanitized - hostile PTR names and ident users never reach the shell unfiltered */
static void test_spawn_sanitized(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	static char pwned[300], spawned[300], user[700], evil1[400], evil2[400];
	static struct itest_rr rrs[6];
	static struct itest_fakeident ident;
	const char *const extra[] = { "--dns-server", DNS_SERVER, NULL };
	const char *clients[] = { "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7" };
	char deny[PATH_MAX * 2], line[1024];
	FILE *f;
	int n = 0;

	snprintf(pwned, sizeof(pwned), "%s/pwned", env->dir);
	snprintf(spawned, sizeof(spawned), "%s/spawned", env->dir);
	snprintf(evil1, sizeof(evil1), "`touch %s`.evil.test", pwned);
	snprintf(evil2, sizeof(evil2), "$(touch${IFS}%s).evil.test", pwned);
	snprintf(user, sizeof(user), "`touch${IFS}%s`;$(touch${IFS}%s)", pwned, pwned);
	rrs[0] = (struct itest_rr){ "127.0.0.4", ITEST_RR_PTR, ";rm -rf /" };
	rrs[1] = (struct itest_rr){ "127.0.0.5", ITEST_RR_PTR, evil1 };
	rrs[2] = (struct itest_rr){ evil1, ITEST_RR_A, "127.0.0.5" };
	rrs[3] = (struct itest_rr){ "127.0.0.6", ITEST_RR_PTR, evil2 };
	rrs[4] = (struct itest_rr){ evil2, ITEST_RR_A, "127.0.0.6" };
	ident = (struct itest_fakeident){ .addr = "127.0.0.7", .user = user };

	start_server(env);
	start_dns(env, rrs, 5);
	if (itest_fakeident_start(env, &ident))
		fail_msg("fake identd: got no \"ready\", want one");
	snprintf(deny, sizeof(deny), "ALL: ALL: rfc931 3: spawn /bin/echo %%a %%n %%h %%u >> %s\n",
		 spawned);
	assert_int_equal(itest_policy(env, "", deny), 0);
	start_agent(env, 0, extra);
	for (size_t i = 0; i < 4; i++)
		if (itest_tcp_connect(AF_INET, clients[i], "127.0.0.1", PORT, ITEST_DENY_TIMEOUT_MS) != -ETIMEDOUT)
			fail_msg("%s: got connected, want dropped", clients[i]);
	if (itest_file_wait(spawned, "127.0.0.", 4, 8000) < 4)
		show_and_fail(env, "spawn: got %d lines in %s, want 4", itest_file_lines(spawned, "127.0.0."),
			      spawned);
	f = fopen(spawned, "re");
	assert_non_null(f);
	while (n < 16 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		printf("# spawned: %s\n", line);
		if (line[strspn(line, EXPAND_OK_CHARS " ")])
			fail_msg("spawn argument: got \"%s\", want only [A-Za-z0-9!@%%-_=+:,./] words", line);
		n++;
	}
	fclose(f);
	if (access(pwned, F_OK) == 0)
		fail_msg("%s: got created by a hostile name or user, want never", pwned);
	/* .4's name fails c-ares/resolve checks: paranoid, shown as the address */
	if (itest_file_lines(spawned, "127.0.0.4 paranoid 127.0.0.4") != 1)
		fail_msg("127.0.0.4 (PTR \";rm -rf /\"): got no \"127.0.0.4 paranoid 127.0.0.4\" line");
	/* .7's user came through ident and was filtered by the % expansion */
	if (itest_file_lines(spawned, "127.0.0.7 unknown 127.0.0.7 _touch_") != 1)
		fail_msg("127.0.0.7 (ident user with backticks): got no filtered \"_touch_...\" user");
}

/* test_spawn_flood_bounded - a flood of denied connections runs at most --spawn-rate commands */
static void test_spawn_flood_bounded(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *const extra[] = { "--spawn-rate", "3", "--spawn-max", "2", NULL };
	char deny[PATH_MAX * 2], flood[PATH_MAX];
	int lines;

	snprintf(flood, sizeof(flood), "%s/flood", env->dir);
	snprintf(deny, sizeof(deny), "ALL: ALL: spawn /bin/echo %%a >> %s\n", flood);
	start_server(env);
	assert_int_equal(itest_policy(env, "", deny), 0);
	start_agent(env, 0, extra);
	for (int i = 0; i < 40; i++)	/* 40 flows: 40 DENY events */
		if (itest_tcp_connect(AF_INET, "127.0.0.3", "127.0.0.1", PORT, 25) == 0)
			fail_msg("flood connection %d: got connected, want dropped", i);
	itest_file_wait(flood, "127.0.0.3", 40, 2000);	/* would time out: give them time to run */
	lines = itest_file_lines(flood, "127.0.0.3");
	printf("# 40 denied connections ran %d spawn commands (--spawn-rate 3)\n", lines);
	if (lines < 1 || lines > 3)
		show_and_fail(env, "spawned commands: got %d, want 1..3", lines);
}

/* test_log_rate_global - a flood from many sources (each new, so the
 * per-client limit never holds) writes at most --log-rate's burst plus its
 * rate per second of connection lines (issue 16 item 2) */
static void test_log_rate_global(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *const extra[] = { "--log-rate", "5/20", NULL };
	char path[PATH_MAX];
	long long t0, secs;
	int lines, bound;

	start_server(env);
	assert_int_equal(itest_policy(env, "", DENY_ALL), 0);
	start_agent(env, 0, extra);
	t0 = itest_now_ms();
	for (int i = 0; i < 300; i++) {	/* 300 sources, one SYN each */
		char src[32];

		snprintf(src, sizeof(src), "127.0.%d.%d", 1 + i / 200, 1 + i % 200);
		if (itest_tcp_connect(AF_INET, src, "127.0.0.1", PORT, 1) == 0)
			fail_msg("flood connection from %s: got connected, want dropped", src);
	}
	log_path(env, path, sizeof(path));
	itest_file_wait(path, "refused connect from", 300, 1500);	/* would time out: let them come */
	secs = (itest_now_ms() - t0 + 999) / 1000;
	lines = itest_file_lines(path, "refused connect from");
	bound = 20 + 5 * (int)secs;
	printf("# 300 sources in %lld s: %d connection lines (--log-rate 5/20: at most %d)\n", secs, lines,
	       bound);
	if (lines < 20 || lines > bound)
		show_and_fail(env, "connection lines: got %d, want 20..%d", lines, bound);
	/* status shows what the global rate held back (recorded by run at exit) */
	assert_int_equal(itest_bpfwrap_stop(&env->bw[0], SIGTERM), 0);
	char out[8192];
	const char *held;
	long long global = -1;

	itest_bpfwrap_cmd(env, "status", out, sizeof(out));
	held = strstr(out, "held back per client, ");
	if (held)
		sscanf(held, "held back per client, %lld by the global rate", &global);
	/* every event past the budget is counted (the kernel may send fewer than 300) */
	if (global <= 0 || global > 300 - lines || !strstr(out, "by the global rate (5/s, bursts of 20)") ||
	    !strstr(out, "spawn:      0 commands run"))
		show_and_fail(env, "status: got:\n%s\nwant a log: line with 1..%d held back \"by the global "
			      "rate (5/s, bursts of 20)\" and a spawn: line", out, 300 - lines);
}

/* test_twist_refuses - a twist rule in hosts.allow: the daemon never serves the client
 * (tcpd ran the command instead); bpfwrap refuses it and runs the command */
static void test_twist_refuses(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe probes[] = {
		{ "twist rule: the daemon never sees the client", AF_INET, "127.0.0.4", "127.0.0.1", PORT, false },
		{ "plain allow rule", AF_INET, "127.0.0.2", "127.0.0.1", PORT, true },
	};
	char allow[PATH_MAX * 2], twisted[PATH_MAX], line[1024];
	struct itest_server *srv;
	int misses;

	snprintf(twisted, sizeof(twisted), "%s/twisted", env->dir);
	snprintf(allow, sizeof(allow), "echod: 127.0.0.4: twist /bin/echo go away %%a >> %s\n"
		 "echod: 127.0.0.2\n", twisted);
	srv = start_server(env);
	assert_int_equal(itest_policy(env, allow, DENY_ALL), 0);
	start_agent(env, 0, NULL);
	misses = itest_probe_tcp(probes, 2);
	if (misses)
		show_and_fail(env, "%d probe(s) got the wrong outcome", misses);
	if (itest_file_wait(twisted, "go away 127.0.0.4", 1, 5000) != 1)
		show_and_fail(env, "twist command: got no \"go away 127.0.0.4\" in %s, want one", twisted);
	wait_line(env, "refused connect from 127.0.0.4", line, sizeof(line), 5000);
	itest_server_read(srv, 200);
	if (strstr(srv->buf, "accept 127.0.0.4"))
		fail_msg("server: got \"accept 127.0.0.4\", want the twisted client never accepted");
}

/* test_agent_kill9_restart - with the agent gone, name rules fall back to their if-unknown
 * verdict (never an allow they would not give), address rules keep working; a restarted
 * agent answers again */
static void test_agent_kill9_restart(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *const extra[] = { "--log-accept", "--dns-server", DNS_SERVER, NULL };
	const struct itest_probe down[] = {
		{ "agent down: address rule still allows", AF_INET, "127.0.0.2", "127.0.0.1", PORT, true },
		{ "agent down: unknown name denies", AF_INET, "127.0.0.8", "127.0.0.1", PORT, false },
		{ "agent down: paranoid client denied", AF_INET, "127.0.0.6", "127.0.0.1", PORT, false },
		{ "agent down: other client denied", AF_INET, "127.0.0.3", "127.0.0.1", PORT, false },
	};
	long long took, agent_down;
	char line[1024];
	int rc, misses;

	start_named(env, "echod: 127.0.0.2 .trusted.test\n", extra, "127.0.0.5 with the agent", &took);

	rc = itest_bpfwrap_stop(&env->bw[0], SIGKILL);
	if (rc != 128 + SIGKILL)
		fail_msg("bpfwrap after kill -9: got status %d, want %d", rc, 128 + SIGKILL);
	itest_sleep_ms(AGENT_HEARTBEAT_TTL_MS + 300);	/* the heartbeat runs out */
	misses = itest_probe_tcp(down, sizeof(down) / sizeof(down[0]));
	if (misses)
		show_and_fail(env, "%d probe(s) got the wrong outcome with the agent down", misses);
	agent_down = stat_of(env, "agent down");
	if (agent_down < 1)
		fail_msg("agent down counter: got %lld, want >= 1", agent_down);

	start_agent(env, 1, extra);
	rc = connect_ms("127.0.0.8", 5000, &took);
	if (rc)
		show_and_fail(env, "good2.trusted.test after the restart: got %s, want connected",
			      itest_outcome(rc));
	wait_line(env, "connect from good2.trusted.test", line, sizeof(line), 5000);
	rc = connect_ms("127.0.0.6", 2500, &took);
	if (rc != -ETIMEDOUT)
		fail_msg("liar after the restart: got %s, want dropped", itest_outcome(rc));
}

/* repo_root - the source tree this test binary was built from (has Makefile and docs/) */
static bool repo_root(char *out, size_t size)
{
	char self[PATH_MAX], probe[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return false;
	self[n] = '\0';
	for (int up = 0; up < 8; up++) {
		char *slash = strrchr(self, '/');

		if (!slash || slash == self)
			return false;
		*slash = '\0';
		snprintf(probe, sizeof(probe), "%s/docs/bpfwrap.service", self);
		if (access(probe, R_OK) == 0) {
			snprintf(probe, sizeof(probe), "%s/Makefile", self);
			if (access(probe, R_OK) == 0 && snprintf(out, size, "%s", self) < (int)size)
				return true;
		}
	}
	return false;
}

/* test_make_install - `make install DESTDIR=...` puts the binary, man page and unit in place */
static void test_make_install(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char root[PATH_MAX], dest[PATH_MAX], path[PATH_MAX * 2], out[8192];
	const char *const want[] = { "/usr/local/sbin/bpfwrap", "/usr/local/share/man/man8/bpfwrap.8",
				     "/etc/systemd/system/bpfwrap.service" };
	int rc;

	if (!repo_root(root, sizeof(root)))
		fail_msg("got no source tree (docs/bpfwrap.service, Makefile) above this test binary, "
			 "want the one it was built in");
	snprintf(path, sizeof(path), "%s/build/bpfwrap", root);
	if (access(path, X_OK))
		fail_msg("no %s to install: %s (make first)", path, strerror(errno));
	snprintf(dest, sizeof(dest), "%s/destdir", env->dir);
	{
		char destarg[PATH_MAX + 16];
		/* -o: never rebuild here, install what was built */
		char *argv[] = { "make", "--no-print-directory", "-C", root, "-o", "build/bpfwrap",
				 "install", destarg, "PREFIX=/usr/local", NULL };

		snprintf(destarg, sizeof(destarg), "DESTDIR=%s", dest);
		rc = itest_run(argv, out, sizeof(out), 60000);
	}
	if (rc != 0)
		fail_msg("make install: got exit %d, want 0; it said:\n%s", rc, out);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", dest, want[i]);
		if (access(path, R_OK))
			fail_msg("make install: got no %s, want it", path);
	}
	snprintf(path, sizeof(path), "%s/usr/local/sbin/bpfwrap", dest);
	if (access(path, X_OK))
		fail_msg("make install: %s is not executable", path);
}

/* test_systemd_unit_verify - systemd-analyze verify accepts docs/bpfwrap.service */
static void test_systemd_unit_verify(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char root[PATH_MAX], unit[PATH_MAX + 32], copy[PATH_MAX], bin[PATH_MAX + 16], out[16384];
	char *text = NULL, *p;
	size_t len = 0;
	FILE *in, *o;
	int rc;

	if (access("/usr/bin/systemd-analyze", X_OK) && access("/bin/systemd-analyze", X_OK))
		ITEST_SKIP("systemd-analyze is not installed (scripts/install-deps.sh installs systemd)");
	if (!repo_root(root, sizeof(root)))
		fail_msg("got no source tree (docs/bpfwrap.service, Makefile) above this test binary, "
			 "want the one it was built in");
	snprintf(unit, sizeof(unit), "%s/docs/bpfwrap.service", root);
	snprintf(bin, sizeof(bin), "%s/build/bpfwrap", root);
	if (access(bin, X_OK))
		fail_msg("no %s: %s (make first)", bin, strerror(errno));
	/* verify checks that ExecStart= exists: point it at the built binary */
	in = fopen(unit, "re");
	assert_non_null(in);
	o = open_memstream(&text, &len);
	assert_non_null(o);
	for (char line[4096]; fgets(line, sizeof(line), in);) {
		if ((p = strstr(line, "/usr/local/sbin/bpfwrap"))) {
			fprintf(o, "%.*s%s%s", (int)(p - line), line, bin, p + strlen("/usr/local/sbin/bpfwrap"));
			continue;
		}
		fputs(line, o);
	}
	fclose(in);
	fclose(o);
	snprintf(copy, sizeof(copy), "%s/bpfwrap.service", env->dir);
	assert_int_equal(itest_write_file(copy, text), 0);
	free(text);
	{
		char *argv[] = { "systemd-analyze", "verify", "--man=no", copy, NULL };

		rc = itest_run(argv, out, sizeof(out), 30000);
	}
	printf("# systemd-analyze verify: exit %d%s%s\n", rc, out[0] ? ": " : "", out);
	if (rc != 0 || strstr(out, "bpfwrap.service:"))
		fail_msg("systemd-analyze verify %s: got exit %d and\n%s\nwant exit 0, no complaint", unit,
			 rc, out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ITEST_CASE(test_log_lines_tcpd_format),
		ITEST_CASE(test_log_json_severity),
		ITEST_CASE(test_name_rule_paranoid_cached),
		ITEST_CASE(test_user_rule_ident),
		ITEST_CASE(test_cache_keyed_on_server),
		ITEST_CASE(test_cache_user_per_connection),
		ITEST_CASE(test_deny_aggregated),
		ITEST_CASE(test_live_reload_append_and_broken),
		ITEST_CASE(test_spawn_sanitized),
		ITEST_CASE(test_spawn_flood_bounded),
		ITEST_CASE(test_log_rate_global),
		ITEST_CASE(test_twist_refuses),
		ITEST_CASE(test_agent_kill9_restart),
		ITEST_CASE(test_make_install),
		ITEST_CASE(test_systemd_unit_verify),
	};

	return cmocka_run_group_tests_name("agent", tests, NULL, NULL);
}
