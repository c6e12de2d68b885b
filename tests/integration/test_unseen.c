/*
 * test_unseen.c - sockets of a guarded cgroup that bpfwrap cannot decide
 * (user/agent/unseen.c, docs/bpfwrap.8 LIMITS): a listener created outside
 * the guarded cgroup and inherited by a process that joins it afterwards is
 * counted by `bpfwrap status` ("unseen: 1") and warned about by `run`; a
 * server that creates its own listener inside is not (unseen: 0); an
 * SO_REUSEPORT group with members inside and outside is "partly" seen.
 *
 * Each test: its own network namespace and child cgroup (itest.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "integration/itest.h"

#define PORT 8090
#define SCAN_WAIT_MS 20000	/* run looks every 10 s */
#define POLL_MS 500
#define STATUS_MAX 65536

/* What the inheriting child is given. */
struct heir_args {
	const char *cgroup;	/* joins it after the socket exists */
};

/* heir_body - itest_child_start body: join the guarded cgroup holding the inherited listener */
static void heir_body(int report, const void *arg)
{
	const struct heir_args *a = arg;

	if (itest_cgroup_join(a->cgroup)) {
		dprintf(report, "cannot join %s\n", a->cgroup);
		_exit(1);
	}
	prctl(PR_SET_NAME, "heird");
	dprintf(report, "ready\n");
	for (;;)
		pause();	/* the alarm of itest_child_start ends it */
}

/* listener - a TCP listener on 127.0.0.1:port (SO_REUSEPORT if reuse), or -errno */
static int make_listener(uint16_t port, bool reuse)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 8)) {
		int err = -errno;

		if (fd >= 0)
			close(fd);
		return err;
	}
	return fd;
}

/* listener - make_listener in the test process (outside the cgroup), or fail */
static int listener(uint16_t port, bool reuse)
{
	int fd = make_listener(port, reuse);

	if (fd < 0)
		fail_msg("listener on 127.0.0.1:%u: %s", port, strerror(-fd));
	return fd;
}

/* member_body - itest_child_start body: join the guarded cgroup, then open an
 * SO_REUSEPORT listener there */
static void member_body(int report, const void *arg)
{
	const struct heir_args *a = arg;
	int fd;

	if (itest_cgroup_join(a->cgroup) || (fd = make_listener(PORT, true)) < 0) {
		dprintf(report, "cannot listen in %s\n", a->cgroup);
		_exit(1);
	}
	dprintf(report, "ready\n");
	for (;;)
		pause();	/* the alarm of itest_child_start ends it */
}

/* start_guard - bpfwrap run on the test's cgroup, ready, or fail */
static void start_guard(struct itest_env *env)
{
	ITEST_NEED_BPFWRAP(env);
	if (itest_policy(env, "", "ALL: 127.0.0.3\n"))
		fail_msg("cannot write the policy files");
	if (itest_bpfwrap_start_ready(env, &env->bw[0], NULL, NULL))
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");
}

/* wait_status - wait until `bpfwrap status` shows want; fail with the last output if not */
static void wait_status(struct itest_env *env, const char *want)
{
	static char out[STATUS_MAX];
	int64_t end = itest_now_ms() + SCAN_WAIT_MS;

	do {
		out[0] = '\0';
		const char *line;

		if (itest_bpfwrap_cmd(env, "status", out, sizeof(out)) == 0 &&
		    (line = strstr(out, want))) {
			printf("# %.*s\n", (int)strcspn(line, "\n"), line);
			return;
		}
		itest_sleep_ms(POLL_MS);
	} while (itest_now_ms() < end);
	itest_bpfwrap_read(&env->bw[0], 0);
	fail_msg("status: got\n%s\nwant a line with \"%s\" within %d ms; run said:\n%s", out, want,
		 SCAN_WAIT_MS, env->bw[0].log);
}

/* test_inherited_listener_unseen - a listener made outside, held inside: unseen 1, warned */
static void test_inherited_listener_unseen(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	struct heir_args a = { .cgroup = env->cgroup };
	int fd, err;

	start_guard(env);	/* found by a later scan, not the one at start */
	fd = listener(PORT, false);
	err = itest_child_start(env, heir_body, &a, "heir");
	close(fd);	/* only the child in the guarded cgroup holds it now */
	if (err)
		fail_msg("heir child: got %s, want running", strerror(-err));
	wait_status(env, "unseen:     1 listeners");
	if (itest_bpfwrap_wait(&env->bw[0], "created outside the guarded cgroup", 2000) ||
	    !strstr(env->bw[0].log, "heird"))
		fail_msg("run: got \"%s\", want a warning naming heird", env->bw[0].log);
}

/* test_own_listener_seen - a server that makes its listener inside: unseen 0 */
static void test_own_listener_seen(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	struct itest_server_opts o = {
		.type = SOCK_STREAM, .family = AF_INET, .addr = "127.0.0.1", .port = PORT,
		.comm = "ownd",
	};
	struct itest_server *srv = NULL;
	int err = itest_server_start(env, &o, &srv);

	if (err)
		fail_msg("server: got %s, want running", strerror(-err));
	start_guard(env);
	wait_status(env, "unseen:     0 listeners");
	if (strstr(env->bw[0].log, "created outside the guarded cgroup"))
		fail_msg("run: got \"%s\", want no unseen warning", env->bw[0].log);
}

/* test_reuseport_partly_seen - an SO_REUSEPORT group with a member inside the
 * guarded cgroup and one outside: one port partly seen, nothing unseen */
static void test_reuseport_partly_seen(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	struct heir_args a = { .cgroup = env->cgroup };
	int fd, err;

	err = itest_child_start(env, member_body, &a, "member");
	if (err)
		fail_msg("member child: got %s, want running", strerror(-err));
	fd = listener(PORT, true);	/* after the fork: the member must not inherit it */
	start_guard(env);
	wait_status(env, "unseen:     0 listeners created outside the guarded cgroups (never "
			 "decided), 1 ports shared");
	close(fd);
}

/* What the socket-unit child is given. */
struct unit_args {
	char socket_unit[PATH_MAX];	/* creates the listener here, as systemd does */
	char service[PATH_MAX];		/* then moves here, as the activated service */
};

/* activated_body - itest_child_start body: listen in NAME.socket, run in NAME.service */
static void activated_body(int report, const void *arg)
{
	const struct unit_args *a = arg;

	if (itest_cgroup_join(a->socket_unit) || make_listener(PORT, false) < 0 ||
	    itest_cgroup_join(a->service)) {
		dprintf(report, "cannot listen in %s from %s\n", a->socket_unit, a->service);
		_exit(1);
	}
	dprintf(report, "ready\n");
	for (;;)
		pause();	/* the alarm of itest_child_start ends it */
}

/* test_socket_unit_seen - a guarded NAME.service holding the listener its
 * NAME.socket created is not unseen (bpfwrap guards both as the service) */
static void test_socket_unit_seen(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	static struct unit_args a;
	char arg[PATH_MAX + 16];
	int err;

	if (snprintf(a.socket_unit, sizeof(a.socket_unit), "%s/echo.socket", env->cgroup) >=
		    (int)sizeof(a.socket_unit) ||
	    snprintf(a.service, sizeof(a.service), "%s/echo.service", env->cgroup) >=
		    (int)sizeof(a.service))
		fail_msg("cgroup path too long");
	if (mkdir(a.socket_unit, 0755) || mkdir(a.service, 0755))
		fail_msg("mkdir units: %s", strerror(errno));
	err = itest_child_start(env, activated_body, &a, "activated");
	if (err)
		fail_msg("activated child: got %s, want running", strerror(-err));
	snprintf(arg, sizeof(arg), "%s=echod", a.service);
	ITEST_NEED_BPFWRAP(env);
	if (itest_policy(env, "", "ALL: 127.0.0.3\n"))
		fail_msg("cannot write the policy files");
	if (itest_bpfwrap_start_ready(env, &env->bw[0], arg, NULL))
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");
	wait_status(env, "unseen:     0 listeners");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ITEST_CASE(test_inherited_listener_unseen),
		ITEST_CASE(test_own_listener_seen),
		ITEST_CASE(test_reuseport_partly_seen),
		ITEST_CASE(test_socket_unit_seen),
	};

	return cmocka_run_group_tests_name("integration/unseen", tests, NULL, NULL);
}
