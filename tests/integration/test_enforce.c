/*
 * test_enforce.c - bpfwrap enforcing hosts.allow/hosts.deny on real sockets:
 * real servers in a child cgroup inside a private network namespace, real
 * clients from several source addresses, `bpfwrap run` as a child process.
 *
 * A denied TCP client is one whose SYN is dropped: its connect() does not
 * complete within ITEST_DENY_TIMEOUT_MS (the kernel would retransmit after
 * 1 s). A denied UDP datagram never reaches the server; the server reports
 * what it received through a pipe. Every case also shows that the allowed
 * side works, so a drop is never confused with a broken setup.
 *
 * Needs root. A case fails when its world cannot be made, and skips (with
 * "# skip: why") only for a missing kernel feature (see itest.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "integration/itest.h"

#define DENY_ALL "ALL: ALL\n"

/* expect_no_misses - fail the test when a probe table had misses */
static void expect_no_misses(int misses, struct itest_env *env)
{
	if (misses) {
		for (size_t i = 0; i < sizeof(env->bw) / sizeof(env->bw[0]); i++)
			if (env->bw[i].len)
				fprintf(stderr, "itest: bpfwrap said:\n%s\n", env->bw[i].log);
		fail_msg("%d probe(s) got the wrong outcome (see the lines above)", misses);
	}
}

/* start_server - start a server or fail the test */
static struct itest_server *start_server(struct itest_env *env, int type, int family, const char *addr,
					 uint16_t port, int v6only, const char *comm)
{
	struct itest_server_opts o = {
		.type = type, .family = family, .addr = addr, .port = port, .v6only = v6only, .comm = comm,
	};
	struct itest_server *srv = NULL;
	int err = itest_server_start(env, &o, &srv);

	if (err)
		fail_msg("server %s on [%s]:%u: got %s, want running", comm, addr, port, strerror(-err));
	return srv;
}

/* start_bpfwrap - bpfwrap run on the test's world, ready, or fail the test */
static void start_bpfwrap(struct itest_env *env, const char *allow, const char *deny,
			  const char *cgroup_name)
{
	ITEST_NEED_BPFWRAP(env);
	if (itest_policy(env, allow, deny))
		fail_msg("cannot write the policy files");
	if (itest_bpfwrap_start_ready(env, &env->bw[0], cgroup_name, NULL))
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");
}

/* test_plumbing_without_bpfwrap - the harness itself: every client reaches every server */
static void test_plumbing_without_bpfwrap(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe probes[] = {
		{ "v4 from .2", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
		{ "v4 from .3", AF_INET, "127.0.0.3", "127.0.0.1", 8080, true },
		{ "v6 from fd00::2", AF_INET6, "fd00::2", "fd00::1", 8081, true },
		{ "no server", AF_INET, "127.0.0.2", "127.0.0.1", 8089, false },
	};
	struct itest_server *udp;
	int rc;

	start_server(env, SOCK_STREAM, AF_INET, "127.0.0.1", 8080, 0, "echod");
	start_server(env, SOCK_STREAM, AF_INET6, "fd00::1", 8081, 1, "echod");
	udp = start_server(env, SOCK_DGRAM, AF_INET, "127.0.0.1", 8053, 0, "echod");
	/* no server on 8089: RST, connection refused (not a timeout) */
	rc = itest_tcp_connect(AF_INET, "127.0.0.2", "127.0.0.1", 8089, ITEST_DENY_TIMEOUT_MS);
	if (rc != -ECONNREFUSED)
		fail_msg("closed port: got %s, want connection refused", itest_outcome(rc));
	expect_no_misses(itest_probe_tcp(probes, 3), env);
	assert_int_equal(itest_udp_send(AF_INET, "127.0.0.3", "127.0.0.1", 8053, "hello"), 0);
	if (!itest_server_saw(udp, "recv 127.0.0.3 hello", 2000))
		fail_msg("udp: got \"%s\", want \"recv 127.0.0.3 hello\"", udp->buf);
}

/* test_tcp4_allow_deny - IPv4: the allowed source connects, the others are dropped */
static void test_tcp4_allow_deny(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe probes[] = {
		{ "allowed source", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
		{ "allowed by net/mask", AF_INET, "127.0.0.9", "127.0.0.1", 8080, true },
		{ "denied source", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
		{ "except", AF_INET, "127.0.0.10", "127.0.0.1", 8080, false },
		{ "server outside the cgroup is not ours", AF_INET, "127.0.0.3", "127.0.0.1", 8090, true },
		{ "allowed source again", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
	};
	struct itest_server_opts ctl = {
		.type = SOCK_STREAM, .family = AF_INET, .addr = "127.0.0.1", .port = 8090,
		.comm = "echod", .outside_cgroup = true,
	};
	struct itest_server *srv, *outside;

	srv = start_server(env, SOCK_STREAM, AF_INET, "127.0.0.1", 8080, 0, "echod");
	assert_int_equal(itest_server_start(env, &ctl, &outside), 0);
	start_bpfwrap(env, "echod: 127.0.0.2, 127.0.0.8/255.255.255.248 EXCEPT 127.0.0.10\n", DENY_ALL,
		      NULL);
	expect_no_misses(itest_probe_tcp(probes, sizeof(probes) / sizeof(probes[0])), env);
	itest_server_read(srv, 200);
	if (strstr(srv->buf, "accept 127.0.0.3\n") || strstr(srv->buf, "accept 127.0.0.10\n"))
		fail_msg("server accepted a denied client: got \"%s\", want only .2 and .9", srv->buf);
	if (!strstr(srv->buf, "accept 127.0.0.2\n"))
		fail_msg("server reports: got \"%s\", want \"accept 127.0.0.2\"", srv->buf);
}

/* test_tcp6_allow_deny - IPv6 addresses and [net]/len */
static void test_tcp6_allow_deny(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe probes[] = {
		{ "allowed [v6]", AF_INET6, "fd00::2", "fd00::1", 2222, true },
		{ "allowed [net]/len", AF_INET6, "fd00::5", "fd00::1", 2222, true },
		{ "denied v6", AF_INET6, "fd00::3", "fd00::1", 2222, false },
		{ "denied ::1", AF_INET6, "::1", "::1", 2222, false },
	};

	start_server(env, SOCK_STREAM, AF_INET6, "::", 2222, 1, "echod");
	start_bpfwrap(env, "echod: [fd00::2] [fd00::4]/126\n", DENY_ALL, NULL);
	expect_no_misses(itest_probe_tcp(probes, sizeof(probes) / sizeof(probes[0])), env);
}

/* test_tcp_dualstack_mapped - a dual-stack v6 listener reached by IPv4 (::ffff:a.b.c.d) */
static void test_tcp_dualstack_mapped(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe probes[] = {
		{ "mapped allowed", AF_INET, "127.0.0.2", "127.0.0.1", 2323, true },
		{ "mapped denied", AF_INET, "127.0.0.3", "127.0.0.1", 2323, false },
		{ "mapped by prefix pattern", AF_INET, "127.0.1.7", "127.0.0.1", 2323, true },
		{ "native v6 allowed", AF_INET6, "fd00::2", "fd00::1", 2323, true },
		{ "native v6 denied", AF_INET6, "fd00::3", "fd00::1", 2323, false },
	};
	struct itest_server *srv;

	srv = start_server(env, SOCK_STREAM, AF_INET6, "::", 2323, 0, "echod");
	start_bpfwrap(env, "echod: 127.0.0.2 [fd00::2] 127.0.1.\n", DENY_ALL, NULL);
	expect_no_misses(itest_probe_tcp(probes, sizeof(probes) / sizeof(probes[0])), env);
	if (!itest_server_saw(srv, "accept ::ffff:127.0.0.2\n", 1000))
		fail_msg("server saw: got \"%s\", want \"accept ::ffff:127.0.0.2\"", srv->buf);
}

/* One UDP case: a server, a denied and an allowed datagram, in that order. */
struct udp_case {
	const char *name;
	int family;		/* server family */
	const char *bind;
	int v6only;
	int client_family;
	const char *dst, *denied_src, *allowed_src;
	const char *want_seen;	/* the allowed sender as the server sees it */
};

/* test_udp_denied_never_delivered - a datagram from a denied source never reaches the server */
static void test_udp_denied_never_delivered(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct udp_case cases[] = {
		{ "udp4", AF_INET, "127.0.0.1", 0, AF_INET, "127.0.0.1", "127.0.0.3", "127.0.0.2",
		  "127.0.0.2" },
		{ "udp6", AF_INET6, "fd00::1", 1, AF_INET6, "fd00::1", "fd00::3", "fd00::2", "fd00::2" },
		{ "udp mapped", AF_INET6, "::", 0, AF_INET, "127.0.0.1", "127.0.0.3", "127.0.0.2",
		  "::ffff:127.0.0.2" },
	};
	int misses = 0;

	start_bpfwrap(env, "echod: 127.0.0.2 [fd00::2]\n", DENY_ALL, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct udp_case *c = &cases[i];
		uint16_t port = (uint16_t)(5300 + i);
		struct itest_server *srv = start_server(env, SOCK_DGRAM, c->family, c->bind, port,
							 c->v6only, "echod");
		char want[128], denied_payload[64];

		snprintf(denied_payload, sizeof(denied_payload), "denied-%zu", i);
		/* loopback keeps order: once the allowed one is in, the denied one would be too */
		assert_int_equal(itest_udp_send(c->client_family, c->denied_src, c->dst, port, denied_payload), 0);
		assert_int_equal(itest_udp_send(c->client_family, c->allowed_src, c->dst, port, "allowed"), 0);
		snprintf(want, sizeof(want), "recv %s allowed\n", c->want_seen);
		if (!itest_server_saw(srv, want, 2000)) {
			fprintf(stderr, "itest: %s: got \"%s\", want \"%s\"\n", c->name, srv->buf, want);
			misses++;
		}
		itest_server_read(srv, 100);
		if (strstr(srv->buf, denied_payload)) {
			fprintf(stderr, "itest: %s: denied datagram: got delivered (\"%s\"), want dropped\n",
				c->name, srv->buf);
			misses++;
		}
	}
	expect_no_misses(misses, env);
}

/* test_daemon_by_comm - the daemon is the process name that bound the socket */
static void test_daemon_by_comm(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe probes[] = {
		{ "sshd allows .2", AF_INET, "127.0.0.2", "127.0.0.1", 22, true },
		{ "sshd denies .3", AF_INET, "127.0.0.3", "127.0.0.1", 22, false },
		{ "ftpd allows .3", AF_INET, "127.0.0.3", "127.0.0.1", 21, true },
		{ "ftpd denies .2", AF_INET, "127.0.0.2", "127.0.0.1", 21, false },
		{ "unnamed daemon: ALL rule", AF_INET, "127.0.0.4", "127.0.0.1", 25, true },
		{ "unnamed daemon denies .2", AF_INET, "127.0.0.2", "127.0.0.1", 25, false },
	};

	start_bpfwrap(env, "sshd: 127.0.0.2\nftpd: 127.0.0.3\nALL EXCEPT sshd ftpd: 127.0.0.4\n",
		      DENY_ALL, NULL);
	/* bound after bpfwrap started: classified when they bind */
	start_server(env, SOCK_STREAM, AF_INET, "127.0.0.1", 22, 0, "sshd");
	start_server(env, SOCK_STREAM, AF_INET, "127.0.0.1", 21, 0, "ftpd");
	start_server(env, SOCK_STREAM, AF_INET, "127.0.0.1", 25, 0, "exim4");
	expect_no_misses(itest_probe_tcp(probes, sizeof(probes) / sizeof(probes[0])), env);
}

/* test_daemon_by_cgroup_name - --cgroup PATH=NAME names the daemon, whatever the process is called */
static void test_daemon_by_cgroup_name(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe probes[] = {
		{ "cgroup name rule allows .2", AF_INET, "127.0.0.2", "127.0.0.1", 22, true },
		{ "process-name rule does not apply", AF_INET, "127.0.0.3", "127.0.0.1", 22, false },
	};

	start_bpfwrap(env, "sshd: 127.0.0.2\nopenssh-serv: 127.0.0.3\n", DENY_ALL, "sshd");
	start_server(env, SOCK_STREAM, AF_INET, "127.0.0.1", 22, 0, "openssh-serv");
	expect_no_misses(itest_probe_tcp(probes, sizeof(probes) / sizeof(probes[0])), env);
}

/* test_listening_before_start - services that were listening before bpfwrap are classified */
static void test_listening_before_start(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe probes[] = {
		{ "old sshd allows .2", AF_INET, "127.0.0.2", "127.0.0.1", 22, true },
		{ "old sshd denies .3", AF_INET, "127.0.0.3", "127.0.0.1", 22, false },
		{ "old v6 sshd allows fd00::2", AF_INET6, "fd00::2", "fd00::1", 22, true },
		{ "old v6 sshd denies fd00::3", AF_INET6, "fd00::3", "fd00::1", 22, false },
		{ "old ftpd allows .3", AF_INET, "127.0.0.3", "127.0.0.1", 21, true },
		{ "old ftpd denies .2", AF_INET, "127.0.0.2", "127.0.0.1", 21, false },
	};
	struct itest_server *udp;

	start_server(env, SOCK_STREAM, AF_INET, "127.0.0.1", 22, 0, "sshd");
	start_server(env, SOCK_STREAM, AF_INET6, "fd00::1", 22, 1, "sshd");
	start_server(env, SOCK_STREAM, AF_INET, "127.0.0.1", 21, 0, "ftpd");
	udp = start_server(env, SOCK_DGRAM, AF_INET, "127.0.0.1", 514, 0, "sshd");
	/* a misclassified sshd would fall under the ALL EXCEPT rule and let .3 in */
	start_bpfwrap(env, "sshd: 127.0.0.2 [fd00::2]\nALL EXCEPT sshd: 127.0.0.3 [fd00::3]\n",
		      DENY_ALL, NULL);
	expect_no_misses(itest_probe_tcp(probes, sizeof(probes) / sizeof(probes[0])), env);
	assert_int_equal(itest_udp_send(AF_INET, "127.0.0.3", "127.0.0.1", 514, "denied"), 0);
	assert_int_equal(itest_udp_send(AF_INET, "127.0.0.2", "127.0.0.1", 514, "allowed"), 0);
	if (!itest_server_saw(udp, "recv 127.0.0.2 allowed", 2000) || strstr(udp->buf, "denied"))
		fail_msg("old udp sshd: got \"%s\", want only \"recv 127.0.0.2 allowed\"", udp->buf);
}

/* test_startup_with_errors_fails_closed - a broken hosts.deny at start-up denies, like libwrap */
static void test_startup_with_errors_fails_closed(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe probes[] = {
		{ "hosts.allow still allows", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
		{ "cut-off hosts.deny denies", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
	};

	start_server(env, SOCK_STREAM, AF_INET, "127.0.0.1", 8080, 0, "echod");
	/* no final newline: Debian's libwrap reports an error and denies what reaches hosts.deny */
	start_bpfwrap(env, "echod: 127.0.0.2\n", "echod: 127.0.0.9", NULL);
	expect_no_misses(itest_probe_tcp(probes, sizeof(probes) / sizeof(probes[0])), env);
	if (!strstr(env->bw[0].log, "hosts.deny:1"))
		fail_msg("diagnostics: got \"%s\", want one naming hosts.deny:1", env->bw[0].log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ITEST_CASE(test_plumbing_without_bpfwrap),
		ITEST_CASE(test_tcp4_allow_deny),
		ITEST_CASE(test_tcp6_allow_deny),
		ITEST_CASE(test_tcp_dualstack_mapped),
		ITEST_CASE(test_udp_denied_never_delivered),
		ITEST_CASE(test_daemon_by_comm),
		ITEST_CASE(test_daemon_by_cgroup_name),
		ITEST_CASE(test_listening_before_start),
		ITEST_CASE(test_startup_with_errors_fails_closed),
	};

	return cmocka_run_group_tests_name("integration/enforce", tests, NULL, NULL);
}
