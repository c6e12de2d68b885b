/*
 * test_units.c - the guarded cgroups as systemd makes them (user/agent/units.c,
 * bpf/owner.bpf.h): a `--cgroup PARENT/NAME.service=DAEMON` is enforced on its
 * parent, so a service cgroup that is removed and made again (`systemctl
 * restart`) or that does not exist yet (boot) never runs unguarded; the daemon
 * name comes from the cgroup, not from the process; sockets outside the guarded
 * unit are left alone; a guarded cgroup that does not exist yet is attached the
 * moment it appears.
 *
 * Each test: its own network namespace and child cgroup (itest.h); the "units"
 * are directories below that child cgroup, never anything of the machine's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "integration/itest.h"

#define RESTARTS 25		/* service restarts per test, each probed at once
				 * (BPFWRAP_UNIT_RESTARTS=N for a longer run) */
#define DENY_ALL "ALL: ALL\n"

/* unit_path - env->cgroup/NAME into buf */
static void unit_path(const struct itest_env *env, const char *name, char *buf, size_t size)
{
	if (snprintf(buf, size, "%s/%s", env->cgroup, name) >= (int)size)
		fail_msg("cgroup path too long");
}

/* unit_make - mkdir a unit cgroup below the test's cgroup */
static void unit_make(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST)
		fail_msg("mkdir %s: got %s, want success", path, strerror(errno));
}

/* unit_remove - rmdir an (emptied) unit cgroup, as systemd does on stop */
static void unit_remove(const char *path)
{
	for (int i = 0; i < 100; i++) {
		if (!rmdir(path) || errno == ENOENT)
			return;
		if (errno != EBUSY)
			break;
		itest_sleep_ms(10);
	}
	fail_msg("rmdir %s: got %s, want success", path, strerror(errno));
}

/* serve_in - a TCP server on 127.0.0.1:port in cgroup, named comm; fails the test if not */
static struct itest_server *serve_in(struct itest_env *env, const char *cgroup, uint16_t port,
				     const char *comm)
{
	struct itest_server_opts o = {
		.type = SOCK_STREAM, .family = AF_INET, .addr = "127.0.0.1", .port = port,
		.comm = comm, .cgroup = cgroup,
	};
	struct itest_server *srv = NULL;
	int err = itest_server_start(env, &o, &srv);

	if (err)
		fail_msg("server %s in %s: got %s, want running", comm, cgroup, strerror(-err));
	return srv;
}

/* server_stop - kill the last server started and reap it; its slot is free again */
static void server_stop(struct itest_env *env, struct itest_server *srv)
{
	assert_ptr_equal(srv, &env->servers[env->n_servers - 1]);
	itest_server_kill(srv);
	env->n_servers--;
}

/* start_guard - bpfwrap run with one whole --cgroup argument, ready, or fail */
static void start_guard(struct itest_env *env, const char *cgroup_arg, const char *allow,
			const char *deny)
{
	ITEST_NEED_BPFWRAP(env);
	if (itest_policy(env, allow, deny))
		fail_msg("cannot write the policy files");
	if (itest_bpfwrap_start_ready(env, &env->bw[0], cgroup_arg, NULL))
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");
}

/* expect - one probe's outcome, or fail with what happened */
static void expect(const char *what, const char *src, uint16_t port, bool allow)
{
	int rc = itest_tcp_connect(AF_INET, src, "127.0.0.1", port,
				   allow ? ITEST_ALLOW_TIMEOUT_MS : ITEST_DENY_TIMEOUT_MS);

	if ((rc == 0) != allow)
		fail_msg("%s: %s -> 127.0.0.1:%u got %s, want %s", what, src, port, itest_outcome(rc),
			 allow ? "connected" : "dropped");
}

/* test_unit_named_by_cgroup_and_restarts - the daemon is the unit's name, not the
 * process's; RESTARTS re-creations of the unit's cgroup never let a denied client in;
 * a sibling unit is not guarded */
static void test_unit_named_by_cgroup_and_restarts(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char svc[PATH_MAX], other[PATH_MAX], arg[PATH_MAX + 16];
	const char *env_n = getenv("BPFWRAP_UNIT_RESTARTS");
	int restarts = env_n && atoi(env_n) > 0 ? atoi(env_n) : RESTARTS;
	struct itest_server *srv;
	int accepted_denied = 0;

	unit_path(env, "svc.service", svc, sizeof(svc));
	unit_path(env, "other.service", other, sizeof(other));
	snprintf(arg, sizeof(arg), "%s=sshd", svc);
	/* svc.service does not exist yet: the programs go on its parent */
	start_guard(env, arg, "sshd: 127.0.0.2\n", DENY_ALL);
	if (strstr(env->bw[0].log, "waiting"))
		fail_msg("parent exists: got \"%s\", want no waiting", env->bw[0].log);
	unit_make(other);
	serve_in(env, other, 8081, "otherd");
	expect("a sibling unit is not guarded", "127.0.0.3", 8081, true);
	for (int i = 0; i < restarts; i++) {
		unit_make(svc);
		/* the process is "srvd": only the cgroup can say "sshd" */
		srv = serve_in(env, svc, 8080, "srvd");
		if (itest_tcp_connect(AF_INET, "127.0.0.3", "127.0.0.1", 8080, ITEST_DENY_TIMEOUT_MS) == 0)
			accepted_denied++;
		if (i == 0 || i == restarts - 1)
			expect("allowed for sshd", "127.0.0.2", 8080, true);
		server_stop(env, srv);
		unit_remove(svc);
	}
	printf("# restarts: %d re-creations of the unit's cgroup, %d denied connections accepted\n",
	       restarts, accepted_denied);
	if (accepted_denied)
		fail_msg("denied connections accepted across %d restarts: got %d, want 0", restarts,
			 accepted_denied);
}

/* test_socket_older_than_bpfwrap - a listener opened before bpfwrap, in a unit
 * named on the command line, is decided as that daemon */
static void test_socket_older_than_bpfwrap(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char svc[PATH_MAX], arg[PATH_MAX + 16];

	unit_path(env, "ssh.service", svc, sizeof(svc));
	unit_make(svc);
	serve_in(env, svc, 8080, "srvd");
	snprintf(arg, sizeof(arg), "%s=sshd", svc);
	start_guard(env, arg, "sshd: 127.0.0.2\n", "sshd: 127.0.0.3\n");
	expect("allowed for sshd", "127.0.0.2", 8080, true);
	expect("denied for sshd", "127.0.0.3", 8080, false);
	expect("neither: allowed", "127.0.0.4", 8080, true);
}

/* test_missing_cgroup_waited_for - a guarded cgroup that does not exist yet is
 * waited for, attached when it appears, and enforced */
static void test_missing_cgroup_waited_for(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char late[PATH_MAX];

	unit_path(env, "late", late, sizeof(late));
	start_guard(env, late, "echod: 127.0.0.2\n", DENY_ALL);
	if (!strstr(env->bw[0].log, "waiting for 1 cgroup"))
		fail_msg("missing cgroup: got \"%s\", want a line saying it waits", env->bw[0].log);
	unit_make(late);
	if (itest_bpfwrap_wait(&env->bw[0], "attached to", 5000))
		fail_msg("cgroup made: got \"%s\", want \"attached to\" within 5 s", env->bw[0].log);
	serve_in(env, late, 8080, "echod");
	expect("allowed", "127.0.0.2", 8080, true);
	expect("denied", "127.0.0.3", 8080, false);
}

/* test_inetd_names_by_port - sockets of a guarded inetd take the name of their
 * port's service from inetd.conf, whether they predate bpfwrap or not */
static void test_inetd_names_by_port(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char svc[PATH_MAX], arg[PATH_MAX + 16], conf[PATH_MAX];
	const char *extra[] = { "--inetd-conf", conf, "--xinetd-conf", "/nonexistent", NULL };

	unit_path(env, "inetd.service", svc, sizeof(svc));
	unit_make(svc);
	snprintf(conf, sizeof(conf), "%s/inetd.conf", env->dir);
	if (itest_write_file(conf, "8080 stream tcp nowait root /usr/sbin/tcpd /usr/sbin/in.telnetd\n"
				   "8081 stream tcp nowait root /usr/sbin/in.ftpd in.ftpd -l\n"))
		fail_msg("cannot write %s", conf);
	/* 8080 listens before bpfwrap, 8081 after: both are "inetd" processes */
	serve_in(env, svc, 8080, "inetd");
	snprintf(arg, sizeof(arg), "%s=inetd", svc);
	ITEST_NEED_BPFWRAP(env);
	if (itest_policy(env, "in.telnetd: 127.0.0.2\nin.ftpd: 127.0.0.3\n", DENY_ALL))
		fail_msg("cannot write the policy files");
	if (itest_bpfwrap_start_ready(env, &env->bw[0], arg, extra))
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");
	serve_in(env, svc, 8081, "inetd");
	expect("in.telnetd allows .2", "127.0.0.2", 8080, true);
	expect("in.telnetd denies .3", "127.0.0.3", 8080, false);
	expect("in.ftpd allows .3", "127.0.0.3", 8081, true);
	expect("in.ftpd denies .2", "127.0.0.2", 8081, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ITEST_CASE(test_unit_named_by_cgroup_and_restarts),
		ITEST_CASE(test_socket_older_than_bpfwrap),
		ITEST_CASE(test_missing_cgroup_waited_for),
		ITEST_CASE(test_inetd_names_by_port),
	};

	return cmocka_run_group_tests_name("integration/units", tests, NULL, NULL);
}
