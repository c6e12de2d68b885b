/*
 * test_lifecycle.c - bpfwrap over time: live reload under a stream of
 * connections, a broken policy on reload, kill -9 and restart, `detach`
 * leaving nothing behind, and `status` counters. Same world as
 * test_enforce.c (itest.h): private netns, child cgroup, real sockets.
 *
 * Needs root. A case fails when its world cannot be made, and skips (with
 * "# skip: why") only for a missing kernel feature (see itest.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/un.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "integration/itest.h"
#include "loader.h"

#define DENY_ALL "ALL: ALL\n"

/* expect_no_misses - fail the test when a probe table had misses */
static void expect_no_misses(int misses, struct itest_env *env)
{
	if (misses) {
		for (size_t i = 0; i < sizeof(env->bw) / sizeof(env->bw[0]); i++)
			if (env->bw[i].len)
				fprintf(stderr, "itest: bpfwrap[%zu] said:\n%s\n", i, env->bw[i].log);
		fail_msg("%d probe(s) got the wrong outcome (see the lines above)", misses);
	}
}

/* start_server - start a server or fail the test */
static struct itest_server *start_server(struct itest_env *env, int family, const char *addr,
					 uint16_t port, const char *comm)
{
	struct itest_server_opts o = {
		.type = SOCK_STREAM, .family = family, .addr = addr, .port = port, .comm = comm,
		.v6only = 1,
	};
	struct itest_server *srv = NULL;
	int err = itest_server_start(env, &o, &srv);

	if (err)
		fail_msg("server %s on [%s]:%u: got %s, want running", comm, addr, port, strerror(-err));
	return srv;
}

/* start_bpfwrap - bpfwrap run number i on the test's world, ready, or fail the test */
static void start_bpfwrap(struct itest_env *env, int i, const char *allow, const char *deny)
{
	ITEST_NEED_BPFWRAP(env);
	if (allow && itest_policy(env, allow, deny))
		fail_msg("cannot write the policy files");
	if (itest_bpfwrap_start_ready(env, &env->bw[i], NULL, NULL))
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");
}

/* hup_and_wait - SIGHUP bpfwrap and wait for the line that says how the reload went */
static void hup_and_wait(struct itest_env *env, const char *want)
{
	kill(env->bw[0].pid, SIGHUP);
	if (itest_bpfwrap_wait(&env->bw[0], want, 10000))
		fail_msg("after SIGHUP: got no \"%s\" line, want one; bpfwrap said:\n%s", want,
			 env->bw[0].log);
}

/*
 * The swap policies. For daemon echod both allow .4 and deny .5; OLD alone
 * allows .2, NEW alone .3. NEW names other daemons first, so echod's table id
 * differs between them: a packet decided with one policy's daemon ids and
 * the other's tables lands in the wrong table (or none) and then denies .4
 * or allows .5 -- a half-swapped policy is visible.
 */
#define SWAP_OLD_ALLOW "echod: 127.0.0.2 127.0.0.4\n"
#define SWAP_NEW_ALLOW "aaa: 127.0.0.5 127.0.0.6\nbbb: 127.0.0.5\necho: 127.0.0.5\n" \
		       "echod: 127.0.0.3 127.0.0.4\n"
#define SWAP_ROUNDS 6
#define SWAP_MAX_DENIED 120

/* test_reload_swap_under_load - every connection is decided by one whole policy */
static void test_reload_swap_under_load(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe after[] = {
		{ "new policy allows .3", AF_INET, "127.0.0.3", "127.0.0.1", 8080, true },
		{ "new policy denies .2", AF_INET, "127.0.0.2", "127.0.0.1", 8080, false },
		{ "both allow .4", AF_INET, "127.0.0.4", "127.0.0.1", 8080, true },
		{ "both deny .5", AF_INET, "127.0.0.5", "127.0.0.1", 8080, false },
	};
	int denied_fds[SWAP_MAX_DENIED], n_denied = 0, allowed = 0, slow = 0, failed = 0, leaked = 0;
	long long start = itest_now_ms(), drops0, drops;

	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	start_bpfwrap(env, 0, SWAP_OLD_ALLOW, DENY_ALL);
	drops0 = itest_tcpext("ListenDrops");
	for (int round = 0; round < SWAP_ROUNDS; round++) {
		bool to_new = round % 2 == 0 || round == SWAP_ROUNDS - 1;
		bool reloaded = false;
		long long round_end;

		assert_int_equal(itest_write_file(env->allow, to_new ? SWAP_NEW_ALLOW : SWAP_OLD_ALLOW), 0);
		kill(env->bw[0].pid, SIGHUP);
		/* connections all through the reload, and 100 ms past it */
		round_end = itest_now_ms() + 5000;
		for (int i = 0; i < 5000 && itest_now_ms() < round_end; i++) {
			long long t0 = itest_now_ms();
			int rc = itest_tcp_connect(AF_INET, "127.0.0.4", "127.0.0.1", 8080, 950);

			/* over ~1 s the first SYN was dropped and a retransmit got in */
			if (rc) {
				failed++;
				fprintf(stderr, "itest: round %d: .4: got %s, want connected\n", round, itest_outcome(rc));
			} else if (itest_now_ms() - t0 > 900) {
				slow++;
			} else {
				allowed++;
			}
			if (i % 16 == 0 && n_denied < SWAP_MAX_DENIED) {
				/* .5 is denied by both: fire and check at the end */
				struct sockaddr_storage s, d;
				socklen_t sl, dl;
				int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

				itest_sockaddr(AF_INET, "127.0.0.5", 0, &s, &sl);
				itest_sockaddr(AF_INET, "127.0.0.1", 8080, &d, &dl);
				if (fd >= 0 && bind(fd, (struct sockaddr *)&s, sl) == 0) {
					connect(fd, (struct sockaddr *)&d, dl);
					denied_fds[n_denied++] = fd;
				} else if (fd >= 0) {
					close(fd);
				}
			}
			if (!reloaded) {
				itest_bpfwrap_read(&env->bw[0], 0);
				if (strstr(env->bw[0].log + env->bw[0].seen, "reloaded")) {
					reloaded = itest_bpfwrap_wait(&env->bw[0], "reloaded", 0) == 0;
					round_end = itest_now_ms() + 100;
				}
			}
		}
		if (!reloaded && itest_bpfwrap_wait(&env->bw[0], "reloaded", 5000))
			fail_msg("round %d: got no \"reloaded\" line, want one; bpfwrap said:\n%s", round,
				 env->bw[0].log);
	}
	/* a .5 connection that completed was allowed by a mixed policy */
	itest_sleep_ms(50);
	for (int i = 0; i < n_denied; i++) {
		struct pollfd p = { .fd = denied_fds[i], .events = POLLOUT };
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (poll(&p, 1, 0) == 1 && !getsockopt(denied_fds[i], SOL_SOCKET, SO_ERROR, &soerr, &len) &&
		    soerr == 0)
			leaked++;
		close(denied_fds[i]);
	}
	/* a SYN the listener itself dropped (accept queue full) is not bpfwrap's */
	drops = itest_tcpext("ListenDrops") - drops0;
	printf("# swap: %d rounds in %lld ms: %d connections from .4 allowed, %d slow, %d failed "
	       "(kernel listen drops %lld); %d from .5, %d got in\n", SWAP_ROUNDS, itest_now_ms() - start,
	       allowed, slow, failed, drops, n_denied, leaked);
	if (slow || failed || leaked) {
		char out[16384];

		itest_bpfwrap_cmd(env, "status", out, sizeof(out));
		fprintf(stderr, "itest: bpfwrap status after the swaps:\n%s", out);
		fail_msg("half-swapped decisions: got %d slow + %d failed .4 and %d admitted .5, want 0",
			 slow, failed, leaked);
	}
	if (allowed < SWAP_ROUNDS * 10)
		fail_msg("stream: got %d connections, want >= %d (the swap was not under load)", allowed,
			 SWAP_ROUNDS * 10);
	expect_no_misses(itest_probe_tcp(after, sizeof(after) / sizeof(after[0])), env);
}

/* test_reload_broken_keeps_old - a policy with errors on SIGHUP leaves the old one in force */
static void test_reload_broken_keeps_old(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe old[] = {
		{ "old policy still allows .2", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
		{ "broken policy's allow of .3 not in force", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
	};
	const struct itest_probe fixed[] = {
		{ "fixed policy allows .3", AF_INET, "127.0.0.3", "127.0.0.1", 8080, true },
		{ "fixed policy denies .2", AF_INET, "127.0.0.2", "127.0.0.1", 8080, false },
	};

	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	start_bpfwrap(env, 0, "echod: 127.0.0.2\n", DENY_ALL);
	/* line 2: a bad option; and no final newline: both errors libwrap acts on */
	assert_int_equal(itest_write_file(env->allow, "echod: 127.0.0.3\nechod: 127.0.0.4 : frobnicate\n"
						      "echod: 127.0.0.2 : deny"), 0);
	hup_and_wait(env, "reload failed");
	if (!strstr(env->bw[0].log, "hosts.allow:2") && !strstr(env->bw[0].log, "hosts.allow:3"))
		fail_msg("diagnostics: got \"%s\", want hosts.allow:LINE", env->bw[0].log);
	expect_no_misses(itest_probe_tcp(old, sizeof(old) / sizeof(old[0])), env);
	assert_int_equal(itest_write_file(env->allow, "echod: 127.0.0.3\n"), 0);
	hup_and_wait(env, "reloaded");
	expect_no_misses(itest_probe_tcp(fixed, sizeof(fixed) / sizeof(fixed[0])), env);
}

/* test_reload_on_edit - edits of the files reload without SIGHUP (an editor's rename, fail2ban's append) */
static void test_reload_on_edit(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *const watch[] = { "--watch", NULL };
	const struct itest_probe renamed[] = {
		{ "after the save: .3 allowed", AF_INET, "127.0.0.3", "127.0.0.1", 8080, true },
		{ "after the save: .4 denied", AF_INET, "127.0.0.4", "127.0.0.1", 8080, false },
		{ "after the save: .5 allowed by default", AF_INET, "127.0.0.5", "127.0.0.1", 8080, true },
	};
	const struct itest_probe appended[] = {
		{ "after the append: .5 banned", AF_INET, "127.0.0.5", "127.0.0.1", 8080, false },
		{ "after the append: .3 still allowed", AF_INET, "127.0.0.3", "127.0.0.1", 8080, true },
	};
	const char ban[] = "ALL: 127.0.0.5\n";
	int fd;

	ITEST_NEED_BPFWRAP(env);
	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	assert_int_equal(itest_policy(env, "echod: 127.0.0.2\n", DENY_ALL), 0);
	if (itest_bpfwrap_start_ready(env, &env->bw[0], NULL, watch))
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");
	/* an editor's save: a new file renamed over the old one */
	assert_int_equal(itest_policy(env, "echod: 127.0.0.3\n", "echod: 127.0.0.4\n"), 0);
	if (itest_bpfwrap_wait(&env->bw[0], "reloaded", 5000))
		fail_msg("after a save: got no \"reloaded\" line, want one; bpfwrap said:\n%s", env->bw[0].log);
	expect_no_misses(itest_probe_tcp(renamed, sizeof(renamed) / sizeof(renamed[0])), env);
	/* fail2ban's hostsdeny action: append a line in place */
	fd = open(env->deny, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, ban, strlen(ban)), (int)strlen(ban));
	close(fd);
	if (itest_bpfwrap_wait(&env->bw[0], "reloaded", 5000))
		fail_msg("after an append: got no \"reloaded\" line, want one; bpfwrap said:\n%s", env->bw[0].log);
	expect_no_misses(itest_probe_tcp(appended, sizeof(appended) / sizeof(appended[0])), env);
}

/* test_reload_on_include_edit - an edit of a /path file the policy names reloads too */
static void test_reload_on_include_edit(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *const watch[] = { "--watch", NULL };
	const struct itest_probe before[] = {
		{ "listed: .2 allowed", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
		{ "not listed yet: .3 denied", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
	};
	const struct itest_probe after[] = {
		{ "added to the file: .3 allowed", AF_INET, "127.0.0.3", "127.0.0.1", 8080, true },
	};
	char list[PATH_MAX], allow[PATH_MAX + 16];

	ITEST_NEED_BPFWRAP(env);
	snprintf(list, sizeof(list), "%s/clients", env->dir);
	snprintf(allow, sizeof(allow), "echod: %s\n", list);
	assert_int_equal(itest_write_file(list, "127.0.0.2\n"), 0);
	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	assert_int_equal(itest_policy(env, allow, DENY_ALL), 0);
	if (itest_bpfwrap_start_ready(env, &env->bw[0], NULL, watch))
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");
	expect_no_misses(itest_probe_tcp(before, sizeof(before) / sizeof(before[0])), env);
	assert_int_equal(itest_write_file(list, "127.0.0.2 127.0.0.3\n"), 0);
	if (itest_bpfwrap_wait(&env->bw[0], "reloaded", 5000))
		fail_msg("after editing %s: got no \"reloaded\" line, want one; bpfwrap said:\n%s", list,
			 env->bw[0].log);
	expect_no_misses(itest_probe_tcp(after, sizeof(after) / sizeof(after[0])), env);
}

/* fifo_over - replace path by a FIFO nobody writes to (mkfifo + rename, as `mv f hosts.deny`) */
static void fifo_over(const char *path)
{
	char tmp[PATH_MAX + 8];

	snprintf(tmp, sizeof(tmp), "%s.fifo", path);
	unlink(tmp);
	assert_int_equal(mkfifo(tmp, 0600), 0);
	assert_int_equal(rename(tmp, path), 0);
}

/* test_fifo_deny_never_blocks - hosts.deny replaced by a FIFO (issue 16 item
 * 4): the inotify reload and SIGHUP say "not a regular file (fifo)" at once
 * instead of hanging in open(); the agent keeps answering, a later edit
 * loads, SIGTERM exits promptly; a start with a FIFO is ready (the table is
 * unreadable: libwrap's error, every request that reaches it denied) */
static void test_fifo_deny_never_blocks(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	/* detach on exit: the second start below is a fresh one */
	const char *const watch[] = { "--watch", "--detach-on-exit", NULL };
	const struct itest_probe with_fifo[] = {
		{ "hosts.allow still allows .2", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
		{ ".3 reaches the FIFO (or the old deny): denied", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
	};
	const struct itest_probe edited[] = {
		{ "the regular file is in force: .3 no longer denied", AF_INET, "127.0.0.3", "127.0.0.1", 8080, true },
		{ "the regular file is in force: .4 denied", AF_INET, "127.0.0.4", "127.0.0.1", 8080, false },
	};
	long long t0;
	int st;

	if (env->no_bpfwrap[0])
		ITEST_SKIP("%s", env->no_bpfwrap);
	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	assert_int_equal(itest_policy(env, "echod: 127.0.0.2\n", DENY_ALL), 0);
	if (itest_bpfwrap_start_ready(env, &env->bw[0], NULL, watch))
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");

	/* the inotify reload: an error at once, whatever is then in force */
	fifo_over(env->deny);
	if (itest_bpfwrap_wait(&env->bw[0], "not a regular file (fifo)", 5000) ||
	    itest_bpfwrap_wait(&env->bw[0], "reload", 5000))
		fail_msg("after mv fifo hosts.deny: got no \"not a regular file (fifo)\" and reload line "
			 "within 5 s, want both; bpfwrap said:\n%s", env->bw[0].log);
	/* SIGHUP: answered at once too (a blocked agent would not) */
	kill(env->bw[0].pid, SIGHUP);
	if (itest_bpfwrap_wait(&env->bw[0], "not a regular file (fifo)", 5000))
		fail_msg("after SIGHUP: got no answer within 5 s, want the FIFO error; bpfwrap said:\n%s",
			 env->bw[0].log);
	expect_no_misses(itest_probe_tcp(with_fifo, sizeof(with_fifo) / sizeof(with_fifo[0])), env);

	/* a regular file again: loaded */
	assert_int_equal(itest_write_file(env->deny, "ALL: 127.0.0.4\n"), 0);
	if (itest_bpfwrap_wait(&env->bw[0], "reloaded", 5000))
		fail_msg("after a regular hosts.deny: got no \"reloaded\" line, want one; bpfwrap said:\n%s",
			 env->bw[0].log);
	expect_no_misses(itest_probe_tcp(edited, sizeof(edited) / sizeof(edited[0])), env);

	/* a FIFO again, then SIGTERM: exits at once */
	fifo_over(env->deny);
	itest_bpfwrap_wait(&env->bw[0], "not a regular file (fifo)", 5000);
	t0 = itest_now_ms();
	st = itest_bpfwrap_stop(&env->bw[0], SIGTERM);
	if (st != 0 || itest_now_ms() - t0 > 3000)
		fail_msg("SIGTERM with a FIFO hosts.deny: got status %d after %lld ms, want 0 within 3 s; "
			 "bpfwrap said:\n%s", st, itest_now_ms() - t0, env->bw[0].log);

	/* a start with the FIFO in place: ready, the table unreadable */
	if (itest_bpfwrap_start_ready(env, &env->bw[0], NULL, NULL))
		fail_msg("bpfwrap run with a FIFO hosts.deny: got no \"ready\" line, want one (output above)");
	if (!strstr(env->bw[0].log, "not a regular file (fifo)"))
		fail_msg("start with a FIFO: got no \"not a regular file (fifo)\", want it; bpfwrap said:\n%s",
			 env->bw[0].log);
	expect_no_misses(itest_probe_tcp(with_fifo, sizeof(with_fifo) / sizeof(with_fifo[0])), env);
}

/* test_log_file_refused - --log FILE through a planted symbolic link (issue
 * 16 item 5): run refuses before loading anything, says why, and the file
 * the link names is not touched */
static void test_log_file_refused(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char precious[PATH_MAX], link_path[PATH_MAX], out[4096];
	char *argv[16];
	struct stat st;
	int argc = 0, rc;

	if (env->no_bpfwrap[0])
		ITEST_SKIP("%s", env->no_bpfwrap);
	assert_int_equal(itest_policy(env, "echod: 127.0.0.2\n", DENY_ALL), 0);
	snprintf(precious, sizeof(precious), "%s/precious", env->dir);
	snprintf(link_path, sizeof(link_path), "%s/bpfwrap.log", env->dir);
	assert_int_equal(itest_write_file(precious, ""), 0);
	assert_int_equal(symlink(precious, link_path), 0);
	argv[argc++] = env->bpfwrap_bin;
	argv[argc++] = "run";
	argv[argc++] = "--pin-dir";
	argv[argc++] = env->pin_dir;
	argv[argc++] = "--cgroup";
	argv[argc++] = env->cgroup;
	argv[argc++] = "--allow";
	argv[argc++] = env->allow;
	argv[argc++] = "--deny";
	argv[argc++] = env->deny;
	argv[argc++] = "--log";
	argv[argc++] = link_path;
	argv[argc] = NULL;
	rc = itest_run(argv, out, sizeof(out), 10000);
	if (rc != 1 || !strstr(out, "symbolic link"))
		fail_msg("run --log LINK: got exit %d \"%s\", want 1 and \"symbolic link\"", rc, out);
	if (access(env->pin_dir, F_OK) == 0)
		fail_msg("run --log LINK: got a pin dir, want nothing loaded");
	assert_int_equal(stat(precious, &st), 0);
	assert_int_equal(st.st_size, 0);
}

/* test_sd_notify_ready - with NOTIFY_SOCKET set, run tells systemd READY=1 once enforcing */
static void test_sd_notify_ready(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char msg[1024] = "";
	struct pollfd p;
	int fd, err;

	ITEST_NEED_BPFWRAP(env);
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/notify", env->dir) >= (int)sizeof(sun.sun_path))
		fail_msg("notify socket path %s/notify: too long for a unix socket", env->dir);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(itest_policy(env, "echod: 127.0.0.2\n", DENY_ALL), 0);
	setenv("NOTIFY_SOCKET", sun.sun_path, 1);
	err = itest_bpfwrap_start_ready(env, &env->bw[0], NULL, NULL);
	unsetenv("NOTIFY_SOCKET");
	if (err) {
		close(fd);
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");
	}
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	for (int i = 0; i < 4 && !strstr(msg, "READY=1"); i++) {
		ssize_t n;

		if (poll(&p, 1, 2000) != 1)
			break;
		n = recv(fd, msg, sizeof(msg) - 1, 0);
		if (n < 0)
			break;
		msg[n] = '\0';
	}
	close(fd);
	if (!strstr(msg, "READY=1"))
		fail_msg("notify socket: got \"%s\", want READY=1", msg);
}

/* One bad `bpfwrap run` command line and what it must say. */
struct bad_run {
	const char *name;
	const char *args[8];
	int want_rc;
	const char *want_msg;
};

/* test_run_refuses_bad_arguments - usage errors: exit 2, one line saying what is wrong, nothing pinned */
static void test_run_refuses_bad_arguments(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct bad_run cases[] = {
		{ "no cgroup", { "run", "--allow", "/dev/null", NULL }, 2, "give at least one --cgroup" },
		{ "not a cgroup", { "run", "--cgroup", "/tmp", NULL }, 2, "not under the cgroup2 mount" },
		{ "dot-dot", { "run", "--cgroup", "system.slice/../x", NULL }, 2, "'..' are not allowed" },
		{ "empty daemon name", { "run", "--cgroup", env->cgroup, NULL }, 2, NULL },
		{ "stray argument", { "run", "--cgroup", env->cgroup, "extra", NULL }, 2, "unexpected argument" },
	};
	char cg_empty_name[PATH_MAX + 2];
	int misses = 0;

	ITEST_NEED_BPFWRAP(env);
	snprintf(cg_empty_name, sizeof(cg_empty_name), "%s=", env->cgroup);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[16] = { env->bpfwrap_bin };
		char out[4096];
		int argc = 1, rc;

		for (int j = 0; cases[i].args[j] && argc < 12; j++)
			argv[argc++] = (char *)cases[i].args[j];
		if (i == 3)
			argv[3] = cg_empty_name;
		argv[argc++] = "--pin-dir";
		argv[argc++] = env->pin_dir;
		argv[argc] = NULL;
		rc = itest_run(argv, out, sizeof(out), 10000);
		if (rc != cases[i].want_rc || (cases[i].want_msg && !strstr(out, cases[i].want_msg)) ||
		    !strstr(out, "bpfwrap")) {
			fprintf(stderr, "itest: %s: got exit %d \"%s\", want exit %d \"%s\"\n", cases[i].name, rc,
				out, cases[i].want_rc, cases[i].want_msg ? cases[i].want_msg : "bpfwrap: ...");
			misses++;
		}
		if (access(env->pin_dir, F_OK) == 0) {
			fprintf(stderr, "itest: %s: got a pin dir, want none\n", cases[i].name);
			misses++;
		}
	}
	if (misses)
		fail_msg("%d bad command line(s) handled wrongly (see above)", misses);
}

/* cgroup_prog_count - how many programs are attached to the cgroup (all cgroup hooks) */
static int cgroup_prog_count(const char *cgroup, uint32_t *ids, size_t max)
{
	static const enum bpf_attach_type types[] = {
		BPF_CGROUP_INET_INGRESS, BPF_CGROUP_INET_EGRESS, BPF_CGROUP_INET_SOCK_CREATE,
		BPF_CGROUP_SOCK_OPS, BPF_CGROUP_INET4_POST_BIND, BPF_CGROUP_INET6_POST_BIND,
		BPF_CGROUP_INET_SOCK_RELEASE, BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT,
		BPF_CGROUP_UDP4_RECVMSG, BPF_CGROUP_UDP6_RECVMSG, BPF_CGROUP_SETSOCKOPT,
		BPF_CGROUP_GETSOCKOPT,
	};
	int fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC), total = 0;

	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		uint32_t got[64], cnt = 64, flags = 0;

		if (bpf_prog_query(fd, types[i], 0, &flags, got, &cnt))
			continue;
		for (uint32_t j = 0; j < cnt; j++) {
			if (ids && (size_t)total < max)
				ids[total] = got[j];
			total++;
		}
	}
	close(fd);
	return total;
}

/* test_kill9_stays_enforced_and_readopts - fail-static after kill -9; a restart adopts the pins */
static void test_kill9_stays_enforced_and_readopts(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe a[] = {
		{ "policy A allows .2", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
		{ "policy A denies .3", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
		{ "policy A allows .2 (v6 server)", AF_INET6, "fd00::2", "fd00::1", 8080, true },
		{ "policy A denies fd00::3", AF_INET6, "fd00::3", "fd00::1", 8080, false },
	};
	const struct itest_probe a_new_server[] = {
		{ "server born while no agent: A allows .2", AF_INET, "127.0.0.2", "127.0.0.1", 8081, true },
		{ "server born while no agent: A denies .3", AF_INET, "127.0.0.3", "127.0.0.1", 8081, false },
	};
	const struct itest_probe b[] = {
		{ "policy B allows .3", AF_INET, "127.0.0.3", "127.0.0.1", 8080, true },
		{ "policy B denies .2", AF_INET, "127.0.0.2", "127.0.0.1", 8080, false },
		{ "policy B allows .3 (port 8081)", AF_INET, "127.0.0.3", "127.0.0.1", 8081, true },
		{ "policy B denies .2 (port 8081)", AF_INET, "127.0.0.2", "127.0.0.1", 8081, false },
	};
	int before, after_kill, after_restart;

	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	start_server(env, AF_INET6, "fd00::1", 8080, "echod");
	start_bpfwrap(env, 0, "echod: 127.0.0.2 [fd00::2]\n", DENY_ALL);
	expect_no_misses(itest_probe_tcp(a, sizeof(a) / sizeof(a[0])), env);
	before = cgroup_prog_count(env->cgroup, NULL, 0);

	assert_int_equal(itest_bpfwrap_stop(&env->bw[0], SIGKILL), 128 + SIGKILL);
	after_kill = cgroup_prog_count(env->cgroup, NULL, 0);
	if (after_kill != before)
		fail_msg("programs on the cgroup after kill -9: got %d, want %d", after_kill, before);
	expect_no_misses(itest_probe_tcp(a, sizeof(a) / sizeof(a[0])), env);
	start_server(env, AF_INET, "127.0.0.1", 8081, "echod");
	expect_no_misses(itest_probe_tcp(a_new_server, 2), env);

	assert_int_equal(itest_policy(env, "echod: 127.0.0.3\n", DENY_ALL), 0);
	start_bpfwrap(env, 1, NULL, NULL);
	if (!strstr(env->bw[1].log, "adopting"))
		fail_msg("restart: got \"%s\", want a line saying it adopts the pinned enforcement",
			 env->bw[1].log);
	after_restart = cgroup_prog_count(env->cgroup, NULL, 0);
	if (after_restart != before)
		fail_msg("programs on the cgroup after restart: got %d, want %d (links re-used, not added)",
			 after_restart, before);
	expect_no_misses(itest_probe_tcp(b, sizeof(b) / sizeof(b[0])), env);
}

/* test_restart_drops_old_cgroup - a restart without a cgroup the last run had detaches it */
static void test_restart_drops_old_cgroup(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	struct itest_server_opts in_b = {
		.type = SOCK_STREAM, .family = AF_INET, .addr = "127.0.0.1", .port = 8081, .comm = "echod",
		.in_cgroup2 = true,
	};
	struct itest_server *srv_b;
	const struct itest_probe both[] = {
		{ "cgroup A enforced", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
		{ "cgroup B enforced", AF_INET, "127.0.0.3", "127.0.0.1", 8081, false },
	};
	const struct itest_probe only_a[] = {
		{ "cgroup A still enforced", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
		{ "cgroup B released", AF_INET, "127.0.0.3", "127.0.0.1", 8081, true },
	};
	const char *extra[3] = { "--cgroup", NULL, NULL };
	int n;

	ITEST_NEED_BPFWRAP(env);
	if (itest_cgroup2_create(env))
		fail_msg("cannot create a second cgroup: %s", strerror(errno));
	extra[1] = env->cgroup2;
	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	assert_int_equal(itest_server_start(env, &in_b, &srv_b), 0);
	assert_int_equal(itest_policy(env, "echod: 127.0.0.2\n", DENY_ALL), 0);
	if (itest_bpfwrap_start_ready(env, &env->bw[0], NULL, extra))
		fail_msg("bpfwrap run on two cgroups: got no \"ready\" line, want one (output above)");
	expect_no_misses(itest_probe_tcp(both, 2), env);
	assert_int_equal(itest_bpfwrap_stop(&env->bw[0], SIGTERM), 0);

	start_bpfwrap(env, 1, NULL, NULL);
	if (!strstr(env->bw[1].log, "detached from cgroup"))
		fail_msg("restart: got \"%s\", want a line saying it detached %s", env->bw[1].log, env->cgroup2);
	expect_no_misses(itest_probe_tcp(only_a, 2), env);
	n = cgroup_prog_count(env->cgroup2, NULL, 0);
	if (n != 0)
		fail_msg("programs on the dropped cgroup: got %d, want 0", n);
}

/* test_detach_on_exit - run --detach-on-exit removes everything when told to stop */
static void test_detach_on_exit(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *const extra[] = { "--detach-on-exit", NULL };
	const struct itest_probe before[] = {
		{ "enforced while running", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
	};
	const struct itest_probe after[] = {
		{ "free after exit", AF_INET, "127.0.0.3", "127.0.0.1", 8080, true },
	};
	int rc, n;

	ITEST_NEED_BPFWRAP(env);
	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	assert_int_equal(itest_policy(env, "echod: 127.0.0.2\n", DENY_ALL), 0);
	if (itest_bpfwrap_start_ready(env, &env->bw[0], NULL, extra))
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");
	expect_no_misses(itest_probe_tcp(before, 1), env);
	rc = itest_bpfwrap_stop(&env->bw[0], SIGINT);
	if (rc != 0)
		fail_msg("exit status after SIGINT: got %d, want 0; it said:\n%s", rc, env->bw[0].log);
	if (access(env->pin_dir, F_OK) == 0)
		fail_msg("pin dir %s: got still there, want removed", env->pin_dir);
	n = cgroup_prog_count(env->cgroup, NULL, 0);
	if (n != 0)
		fail_msg("programs attached to the cgroup: got %d, want 0", n);
	expect_no_misses(itest_probe_tcp(after, 1), env);
}

/* The BPF objects a run made, by id. */
struct idset {
	uint32_t ids[256];
	size_t n;
};

/* idset_add - remember an id once */
static void idset_add(struct idset *s, uint32_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ids[i] == id)
			return;
	if (s->n < sizeof(s->ids) / sizeof(s->ids[0]))
		s->ids[s->n++] = id;
}

/* fd_kind - "prog", "map" or "link" from /proc/self/fdinfo */
static const char *fd_kind(int fd)
{
	char path[64], buf[2048];
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return "?";
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return "?";
	buf[n] = '\0';
	if (strstr(buf, "link_type:"))
		return "link";
	if (strstr(buf, "prog_type:"))
		return "prog";
	if (strstr(buf, "map_type:"))
		return "map";
	return "?";
}

/* add_map - a map and, for a map of maps, its inner maps */
static void add_map(int fd, struct idset *maps)
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return;
	idset_add(maps, info.id);
	if (info.type != BPF_MAP_TYPE_ARRAY_OF_MAPS && info.type != BPF_MAP_TYPE_HASH_OF_MAPS)
		return;
	for (uint32_t k = 0; k < info.max_entries && k < 64; k++) {
		uint32_t inner = 0;

		if (info.type == BPF_MAP_TYPE_ARRAY_OF_MAPS && bpf_map_lookup_elem(fd, &k, &inner) == 0 && inner)
			idset_add(maps, inner);
	}
}

/* add_prog - a program and the maps it uses */
static void add_prog(uint32_t id, struct idset *progs, struct idset *maps)
{
	uint32_t map_ids[64];
	struct bpf_prog_info info = { 0 };
	uint32_t len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	if (fd < 0)
		return;
	idset_add(progs, id);
	info.nr_map_ids = 64;
	info.map_ids = (uint64_t)(uintptr_t)map_ids;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
		for (uint32_t i = 0; i < info.nr_map_ids && i < 64; i++) {
			int mfd = bpf_map_get_fd_by_id(map_ids[i]);

			if (mfd >= 0) {
				add_map(mfd, maps);
				close(mfd);
			}
		}
	}
	close(fd);
}

/* collect_ours - every prog, map and link id of the run: pins, the cgroup's links and programs */
static void collect_ours(struct itest_env *env, struct idset *progs, struct idset *maps,
			 struct idset *links)
{
	struct stat cg;
	uint32_t id = 0, attached[64];
	int n;
	DIR *d = opendir(env->pin_dir);
	struct dirent *de;

	for (int budget = 512; d && (de = readdir(d)) && budget > 0; budget--) {
		char path[PATH_MAX];
		const char *kind;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", env->pin_dir, de->d_name) >= (int)sizeof(path))
			continue;
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		kind = fd_kind(fd);
		if (!strcmp(kind, "map")) {
			add_map(fd, maps);
		} else if (!strcmp(kind, "prog")) {
			struct bpf_prog_info info = { 0 };
			uint32_t len = sizeof(info);

			if (!bpf_obj_get_info_by_fd(fd, &info, &len))
				add_prog(info.id, progs, maps);
		} else if (!strcmp(kind, "link")) {
			struct bpf_link_info info = { 0 };
			uint32_t len = sizeof(info);

			if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
				idset_add(links, info.id);
				add_prog(info.prog_id, progs, maps);
			}
		}
		close(fd);
	}
	if (d)
		closedir(d);
	/* every link on our cgroup (the pins could have missed one) */
	if (stat(env->cgroup, &cg) == 0) {
		for (int budget = 100000; budget > 0 && bpf_link_get_next_id(id, &id) == 0; budget--) {
			struct bpf_link_info info = { 0 };
			uint32_t len = sizeof(info);
			int fd = bpf_link_get_fd_by_id(id);

			if (fd < 0)
				continue;
			if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == BPF_LINK_TYPE_CGROUP &&
			    info.cgroup.cgroup_id == (uint64_t)cg.st_ino) {
				idset_add(links, info.id);
				add_prog(info.prog_id, progs, maps);
			}
			close(fd);
		}
	}
	n = cgroup_prog_count(env->cgroup, attached, 64);
	for (int i = 0; i < n && i < 64; i++)
		add_prog(attached[i], progs, maps);
}

/* still_there - ids of a kind that still exist (after a bounded wait for deferred frees) */
static size_t still_there(const struct idset *s, int (*get_fd)(uint32_t), char *buf, size_t size)
{
	size_t left = 0, off = 0;

	for (int tries = 0; tries < 60; tries++) {
		left = 0;
		off = 0;
		buf[0] = '\0';
		for (size_t i = 0; i < s->n; i++) {
			int fd = get_fd(s->ids[i]);

			if (fd >= 0) {
				close(fd);
				left++;
				if (off < size)
					off += (size_t)snprintf(buf + off, size - off, " %u", s->ids[i]);
			}
		}
		if (!left)
			break;
		itest_sleep_ms(50);
	}
	return left;
}

/* test_detach_leaves_nothing - after `bpfwrap detach` no pin, link, program or map of ours exists */
static void test_detach_leaves_nothing(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe enforced[] = {
		{ "enforced after exit (pinned)", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
	};
	const struct itest_probe detached[] = {
		{ "after detach .3 gets in", AF_INET, "127.0.0.3", "127.0.0.1", 8080, true },
	};
	struct idset progs = { 0 }, maps = { 0 }, links = { 0 };
	char out[8192], left_ids[512];
	size_t left;
	int rc, n;

	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	start_bpfwrap(env, 0, "echod: 127.0.0.2\n", DENY_ALL);
	collect_ours(env, &progs, &maps, &links);
	printf("# detach: the run made %zu programs, %zu maps, %zu links\n", progs.n, maps.n, links.n);
	if (progs.n == 0 || maps.n == 0 || links.n == 0)
		fail_msg("found %zu programs, %zu maps, %zu links of the run, want some of each", progs.n,
			 maps.n, links.n);

	/* SIGTERM: bpfwrap exits, the policy stays pinned and enforcing */
	rc = itest_bpfwrap_stop(&env->bw[0], SIGTERM);
	if (rc != 0)
		fail_msg("bpfwrap exit status after SIGTERM: got %d, want 0; it said:\n%s", rc, env->bw[0].log);
	expect_no_misses(itest_probe_tcp(enforced, 1), env);

	rc = itest_bpfwrap_cmd(env, "detach", out, sizeof(out));
	if (rc != 0)
		fail_msg("bpfwrap detach: got exit %d (%s), want 0", rc, out);
	if (access(env->pin_dir, F_OK) == 0)
		fail_msg("pin dir %s: got still there, want removed", env->pin_dir);
	n = cgroup_prog_count(env->cgroup, NULL, 0);
	if (n != 0)
		fail_msg("programs attached to the cgroup: got %d, want 0", n);
	left = still_there(&links, bpf_link_get_fd_by_id, left_ids, sizeof(left_ids));
	if (left)
		fail_msg("links left: got %zu (ids%s), want 0", left, left_ids);
	left = still_there(&progs, bpf_prog_get_fd_by_id, left_ids, sizeof(left_ids));
	if (left)
		fail_msg("programs left: got %zu (ids%s), want 0", left, left_ids);
	left = still_there(&maps, bpf_map_get_fd_by_id, left_ids, sizeof(left_ids));
	if (left)
		fail_msg("maps left: got %zu (ids%s), want 0", left, left_ids);
	expect_no_misses(itest_probe_tcp(detached, 1), env);
}

/* counter_of - the decision count on the status line that names where (file:line) */
static long long counter_of(const char *status, const char *where)
{
	const char *hit = strstr(status, where);
	const char *bol;

	if (!hit)
		return -1;
	for (bol = hit; bol > status && bol[-1] != '\n'; bol--)
		;
	return strtoll(bol, NULL, 10);
}

/* test_status_counters - status names the cgroup, the files and counts per rule */
static void test_status_counters(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe probes[] = {
		{ "allow rule 1", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
		{ "allow rule 1", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
		{ "allow rule 1", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
		{ "deny rule", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
		{ "deny rule", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
	};
	char out[16384], where_allow[PATH_MAX + 8], where_allow2[PATH_MAX + 8], where_deny[PATH_MAX + 8];
	long long c_allow, c_allow2, c_deny;
	int rc;

	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	start_bpfwrap(env, 0, "echod: 127.0.0.2\nsshd: 127.0.0.3\n", "echod: ALL\n");
	expect_no_misses(itest_probe_tcp(probes, sizeof(probes) / sizeof(probes[0])), env);
	/* the policy files change after loading: status shows what is in force */
	assert_int_equal(itest_policy(env, "# edited\n", "# edited\n"), 0);
	rc = itest_bpfwrap_cmd(env, "status", out, sizeof(out));
	printf("%s", out);
	if (rc != 0)
		fail_msg("bpfwrap status: got exit %d, want 0", rc);
	if (!strstr(out, env->cgroup))
		fail_msg("status: got no line naming %s, want one", env->cgroup);
	snprintf(where_allow, sizeof(where_allow), "%s:1", env->allow);
	snprintf(where_allow2, sizeof(where_allow2), "%s:2", env->allow);
	snprintf(where_deny, sizeof(where_deny), "%s:1", env->deny);
	if (!strstr(out, "echod: 127.0.0.2") || !strstr(out, "echod: ALL"))
		fail_msg("status: got no rule texts, want \"echod: 127.0.0.2\" and \"echod: ALL\"");
	c_allow = counter_of(out, where_allow);
	c_allow2 = counter_of(out, where_allow2);
	c_deny = counter_of(out, where_deny);
	/* an allowed TCP connection may be counted for its SYN and its final ACK */
	if (c_allow < 3 || c_allow > 6)
		fail_msg("%s counter: got %lld, want 3..6", where_allow, c_allow);
	if (c_allow2 != 0)
		fail_msg("%s counter: got %lld, want 0", where_allow2, c_allow2);
	if (c_deny < 2 || c_deny > 4)
		fail_msg("%s counter: got %lld, want 2..4 (one SYN per client, maybe a retransmit)",
			 where_deny, c_deny);
}

/* test_status_counters_survive_reload - a rule still there after a reload, on
 * another line, keeps its count; a new rule starts at 0 */
static void test_status_counters_survive_reload(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe before[] = {
		{ "allowed before the reload", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
		{ "allowed before the reload", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
		{ "denied before the reload", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
	};
	const struct itest_probe after[] = {
		{ "allowed after the reload", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
	};
	char out[16384], where_new[PATH_MAX + 8], where_moved[PATH_MAX + 8], where_deny[PATH_MAX + 8];
	long long c_new, c_moved, c_deny;

	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	start_bpfwrap(env, 0, "echod: 127.0.0.2\n", "echod: ALL\n");
	expect_no_misses(itest_probe_tcp(before, sizeof(before) / sizeof(before[0])), env);
	assert_int_equal(itest_policy(env, "echod: 127.0.0.4\necho: 127.0.0.9\nechod: 127.0.0.2\n",
				      "echod: ALL\n"), 0);
	hup_and_wait(env, "reloaded");
	expect_no_misses(itest_probe_tcp(after, sizeof(after) / sizeof(after[0])), env);
	if (itest_bpfwrap_cmd(env, "status", out, sizeof(out)) != 0)
		fail_msg("bpfwrap status: got a failure, want exit 0:\n%s", out);
	snprintf(where_new, sizeof(where_new), "%s:1", env->allow);
	snprintf(where_moved, sizeof(where_moved), "%s:3", env->allow);
	snprintf(where_deny, sizeof(where_deny), "%s:1", env->deny);
	c_new = counter_of(out, where_new);
	c_moved = counter_of(out, where_moved);
	c_deny = counter_of(out, where_deny);
	/* 3 connections in all (each a SYN, maybe also its final ACK) */
	if (c_moved < 3 || c_moved > 6)
		fail_msg("%s (moved from line 1) counter: got %lld, want 3..6\n%s", where_moved, c_moved, out);
	if (c_new != 0)
		fail_msg("%s (new rule) counter: got %lld, want 0\n%s", where_new, c_new, out);
	if (c_deny < 1 || c_deny > 2)
		fail_msg("%s counter: got %lld, want 1..2\n%s", where_deny, c_deny, out);
}

/* ---- one instance per pin dir and per cgroup; detach under run; failed starts; status ---- */

/* status_head - `bpfwrap status` up to its statistics line (what a refused run must not change) */
static void status_head(struct itest_env *env, char *out, size_t size)
{
	char *cut;
	int rc = itest_bpfwrap_cmd(env, "status", out, size);

	if (rc != 0)
		fail_msg("bpfwrap status: got exit %d, want 0:\n%s", rc, out);
	cut = strstr(out, "statistics:");
	if (cut)
		*cut = '\0';
}

/* run_refused - start run number i with extra args; it must exit 1 at once saying
 * want; other_pin_dir (may be NULL): its own, removed before anything is checked */
static void run_refused(struct itest_env *env, int i, const char *cgroup_arg,
			const char *const *extra, const char *want, const char *other_pin_dir)
{
	bool said;
	int rc;

	if (itest_bpfwrap_start(env, &env->bw[i], cgroup_arg, extra))
		fail_msg("cannot start a second bpfwrap run");
	said = itest_bpfwrap_wait(&env->bw[i], "refused", 10000) == 0;
	/* no signal if it said so: it must exit by itself */
	rc = itest_bpfwrap_stop(&env->bw[i], said ? 0 : SIGTERM);
	if (other_pin_dir && access(other_pin_dir, F_OK) == 0) {
		char *argv[] = { env->bpfwrap_bin, "detach", "--pin-dir", (char *)other_pin_dir, NULL };
		char out[4096];

		itest_run(argv, out, sizeof(out), 10000);
		fail_msg("second run: got pin dir %s, want none; it said:\n%s", other_pin_dir,
			 env->bw[i].log);
	}
	if (!said || rc != 1 || !strstr(env->bw[i].log, want) || strstr(env->bw[i].log, "ready"))
		fail_msg("second run: got exit %d \"%s\", want exit 1 naming \"%s\"", rc, env->bw[i].log,
			 want);
}

/* test_second_run_same_pin_dir_refused - a second run on the pin dir is refused
 * naming the first's pid, and changes nothing of the first */
static void test_second_run_same_pin_dir_refused(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe probes[] = {
		{ "first run still allows .2", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
		{ "first run still denies .3", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
	};
	static char before[16384], after[16384];
	char want[64];
	int n;

	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	start_bpfwrap(env, 0, "echod: 127.0.0.2\n", DENY_ALL);
	status_head(env, before, sizeof(before));
	/* another policy: a second run that got through would load it */
	assert_int_equal(itest_policy(env, "echod: 127.0.0.3\n", DENY_ALL), 0);
	snprintf(want, sizeof(want), "pid %d", (int)env->bw[0].pid);
	run_refused(env, 1, NULL, NULL, want, NULL);
	if (!strstr(env->bw[1].log, env->pin_dir))
		fail_msg("refusal: got \"%s\", want it to name %s", env->bw[1].log, env->pin_dir);
	status_head(env, after, sizeof(after));
	if (strcmp(before, after))
		fail_msg("status changed by the refused run:\nbefore:\n%s\nafter:\n%s", before, after);
	n = cgroup_prog_count(env->cgroup, NULL, 0);
	if (n != 3)
		fail_msg("programs on the cgroup: got %d, want 3 (one run's)", n);
	expect_no_misses(itest_probe_tcp(probes, 2), env);
	if (kill(env->bw[0].pid, 0) || strstr(env->bw[0].log + env->bw[0].seen, "reload"))
		fail_msg("first run: got it gone or reloading, want it running untouched:\n%s",
			 env->bw[0].log);
}

/* test_second_run_same_cgroup_refused - another pin dir on the same cgroup, or on a
 * unit whose programs go on it, is refused naming the first run's pid and pin dir */
static void test_second_run_same_cgroup_refused(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char other[PATH_MAX], unit[PATH_MAX + 32], want[64];
	const char *extra[] = { "--pin-dir", other, NULL };
	int n;

	if (snprintf(other, sizeof(other), "%s-b", env->pin_dir) >= (int)sizeof(other))
		fail_msg("pin path too long");
	snprintf(unit, sizeof(unit), "%s/x.service=echod", env->cgroup);
	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	start_bpfwrap(env, 0, "echod: 127.0.0.2\n", DENY_ALL);
	snprintf(want, sizeof(want), "pid %d", (int)env->bw[0].pid);
	for (int round = 0; round < 2; round++) {
		run_refused(env, 1, round ? unit : NULL, extra, want, other);
		if (!strstr(env->bw[1].log, env->pin_dir))
			fail_msg("round %d: got \"%s\", want it to name pin dir %s", round, env->bw[1].log,
				 env->pin_dir);
	}
	n = cgroup_prog_count(env->cgroup, NULL, 0);
	if (n != 3)
		fail_msg("programs on the cgroup: got %d, want 3 (one run's, not stacked)", n);
}

/* wait_exit - run i must exit by itself within timeout_ms saying want; its exit status */
static int wait_exit(struct itest_env *env, int i, const char *want, int timeout_ms)
{
	int err = itest_bpfwrap_wait(&env->bw[i], want, timeout_ms);

	if (err)
		fail_msg("got \"%s\" (%s), want a line \"%s\"", env->bw[i].log, strerror(-err), want);
	/* signal 0: only waits; a run that does not exit by itself is killed
	 * after 5 s and reported as killed */
	return itest_bpfwrap_stop(&env->bw[i], 0);
}

/* test_detach_under_run - `bpfwrap detach` makes a live run say so and exit 0;
 * it never claims enforcement after */
static void test_detach_under_run(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const struct itest_probe free_now[] = {
		{ "after detach .3 gets in", AF_INET, "127.0.0.3", "127.0.0.1", 8080, true },
	};
	char out[8192];
	int rc;

	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	start_bpfwrap(env, 0, "echod: 127.0.0.2\n", DENY_ALL);
	rc = itest_bpfwrap_cmd(env, "detach", out, sizeof(out));
	if (rc != 0)
		fail_msg("bpfwrap detach: got exit %d (%s), want 0", rc, out);
	rc = wait_exit(env, 0, "detached by", 5000);
	if (rc != 0 || strstr(env->bw[0].log, "stays enforced") || strstr(env->bw[0].log, "reloaded"))
		fail_msg("run after detach: got exit %d saying\n%s\nwant exit 0, no claim of enforcement",
			 rc, env->bw[0].log);
	if (cgroup_prog_count(env->cgroup, NULL, 0) != 0)
		fail_msg("programs on the cgroup after detach: got some, want none");
	expect_no_misses(itest_probe_tcp(free_now, 1), env);
	rc = itest_bpfwrap_cmd(env, "status", out, sizeof(out));
	if (rc != 3)
		fail_msg("status after detach: got exit %d (%s), want 3 (nothing pinned)", rc, out);
}

/* test_links_lost_under_run - the run notices by itself (its 1-s check) pins
 * removed without a signal, and links detached by something else */
static void test_links_lost_under_run(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char pin[PATH_MAX];
	struct stat cg;
	int rc, fd;

	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	start_bpfwrap(env, 0, "echod: 127.0.0.2\n", DENY_ALL);
	/* what detach does, but no one tells the run */
	assert_int_equal(loader_unpin_all(env->pin_dir), 0);
	rc = wait_exit(env, 0, "detached by", 5000);
	if (rc != 0 || strstr(env->bw[0].log, "stays enforced"))
		fail_msg("run after its pins went: got exit %d saying\n%s\nwant exit 0", rc, env->bw[0].log);

	/* one link detached by hand (bpftool link detach): the pins are still there */
	start_bpfwrap(env, 1, "echod: 127.0.0.2\n", DENY_ALL);
	assert_int_equal(stat(env->cgroup, &cg), 0);
	if (snprintf(pin, sizeof(pin), "%s/link-%llu-ingress", env->pin_dir,
		     (unsigned long long)cg.st_ino) >= (int)sizeof(pin))
		fail_msg("pin path too long");
	fd = bpf_obj_get(pin);
	if (fd < 0)
		fail_msg("link pin %s: got %s, want one", pin, strerror(errno));
	rc = bpf_link_detach(fd);
	close(fd);
	assert_int_equal(rc, 0);
	rc = wait_exit(env, 1, "not by bpfwrap", 5000);
	if (rc != 1 || strstr(env->bw[1].log, "stays enforced"))
		fail_msg("run after a link was detached: got exit %d saying\n%s\nwant exit 1", rc,
			 env->bw[1].log);
}

/* nothing_left - no pin dir, no state, no record of the run, status says not active */
static void nothing_left(struct itest_env *env, const char *what)
{
	char dir[PATH_MAX], lock[PATH_MAX + 8], out[4096];
	int rc;

	itest_state_dir(env->pin_dir, dir, sizeof(dir));
	snprintf(lock, sizeof(lock), "%s.lock", dir);
	if (access(env->pin_dir, F_OK) == 0)
		fail_msg("%s: got pin dir %s, want none", what, env->pin_dir);
	if (access(dir, F_OK) == 0 || access(lock, F_OK) == 0)
		fail_msg("%s: got state %s (or its .lock), want none", what, dir);
	rc = itest_bpfwrap_cmd(env, "status", out, sizeof(out));
	if (rc != 3 || !strstr(out, "not active"))
		fail_msg("%s: status got exit %d \"%s\", want 3 \"not active\"", what, rc, out);
	if (cgroup_prog_count(env->cgroup, NULL, 0) != 0)
		fail_msg("%s: got programs on the cgroup, want none", what);
}

/* test_failed_start_removes_what_it_made - a start that fails leaves no pins and no
 * state; one that adopted a previous run's pins leaves those in force */
static void test_failed_start_removes_what_it_made(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *const bad_log[] = { "--log", "/nonexistent/dir/x", NULL };
	const char *const bad_ext[] = { "--extensions", "/nonexistent/bpfwrap.conf", NULL };
	const struct itest_probe kept[] = {
		{ "adopted pins still deny .3", AF_INET, "127.0.0.3", "127.0.0.1", 8080, false },
		{ "adopted pins still allow .2", AF_INET, "127.0.0.2", "127.0.0.1", 8080, true },
	};
	char out[16384];
	int rc;

	if (env->no_bpfwrap[0])
		ITEST_SKIP("%s", env->no_bpfwrap);
	start_server(env, AF_INET, "127.0.0.1", 8080, "echod");
	assert_int_equal(itest_policy(env, "echod: 127.0.0.2\n", DENY_ALL), 0);
	/* before anything is loaded, and (extensions) after the programs are attached */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(itest_bpfwrap_start(env, &env->bw[0], NULL, i ? bad_ext : bad_log), 0);
		rc = itest_bpfwrap_stop(&env->bw[0], 0);	/* waits for it to exit */
		if (rc != 1 || strstr(env->bw[0].log, "ready"))
			fail_msg("bad %s: got exit %d \"%s\", want exit 1", i ? "--extensions" : "--log", rc,
				 env->bw[0].log);
		nothing_left(env, i ? "bad --extensions" : "bad --log");
	}
	/* a previous run's pins, adopted by a start that fails: they stay */
	start_bpfwrap(env, 0, NULL, NULL);
	assert_int_equal(itest_bpfwrap_stop(&env->bw[0], SIGTERM), 0);
	assert_int_equal(itest_bpfwrap_start(env, &env->bw[1], NULL, bad_ext), 0);
	rc = itest_bpfwrap_stop(&env->bw[1], 0);
	if (rc != 1 || !strstr(env->bw[1].log, "stays in force"))
		fail_msg("adopting start that fails: got exit %d \"%s\", want 1 and \"stays in force\"", rc,
			 env->bw[1].log);
	rc = itest_bpfwrap_cmd(env, "status", out, sizeof(out));
	if (rc != 0 || !strstr(out, "\nattached:   "))
		fail_msg("status after it: got exit %d\n%s\nwant 0 with the cgroup attached", rc, out);
	expect_no_misses(itest_probe_tcp(kept, 2), env);
}

/* cgroup_line - the status line that starts with what (e.g. "waiting:") and names
 * PATH=... (a --cgroup PATH=NAME of the run); "" if there is none */
static const char *cgroup_line(const char *out, const char *what, const char *path, char *buf,
			       size_t size)
{
	char key[PATH_MAX + 8];
	const char *hit;

	snprintf(key, sizeof(key), " %s=", path);
	for (const char *line = out; *line;) {
		const char *eol = strchrnul(line, '\n');

		hit = strstr(line, key);
		if (!strncmp(line, what, strlen(what)) && hit && hit < eol) {
			snprintf(buf, size, "%.*s", (int)(eol - line), line);
			return buf;
		}
		line = *eol ? eol + 1 : eol;
	}
	return "";
}

/* kill_server - kill the last server started and reap it, so its cgroup can go */
static void kill_server(struct itest_env *env)
{
	struct itest_server *srv = &env->servers[env->n_servers - 1];

	kill(srv->pid, SIGKILL);
	waitpid(srv->pid, NULL, 0);
	srv->pid = 0;
	close(srv->report_fd);
	srv->report_fd = -1;
	env->n_servers--;
}

/* rmdir_wait - remove an emptied cgroup (its processes may take a moment to leave) */
static void rmdir_wait(const char *path)
{
	for (int i = 0; i < 100 && rmdir(path) && errno == EBUSY; i++)
		itest_sleep_ms(20);
	if (access(path, F_OK) == 0)
		fail_msg("rmdir %s: got %s, want it gone", path, strerror(errno));
}

/* status_says - poll status (bounded) until its line about path starts with what
 * and contains want */
static void status_says(struct itest_env *env, const char *what, const char *path,
			const char *want, const char *why)
{
	static char out[16384], line[4096];

	for (int i = 0; i < 30; i++) {
		if (itest_bpfwrap_cmd(env, "status", out, sizeof(out)) == 0 &&
		    strstr(cgroup_line(out, what, path, line, sizeof(line)), want))
			return;
		itest_sleep_ms(100);
	}
	fail_msg("%s: status got\n%s\nwant a line \"%s %s=...%s...\"", why, out, what, path, want);
}

/* test_status_shows_only_real_attachments - per --cgroup, where its programs are and
 * whether the kernel has them there: a removed cgroup is waiting (run alive) or gone
 * (run stopped); a removed unit is guarded through its parent */
static void test_status_shows_only_real_attachments(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char sub[PATH_MAX], unit[PATH_MAX], arg[PATH_MAX + 16], want[PATH_MAX + 32], out[8192];
	struct itest_server_opts o = {
		.type = SOCK_STREAM, .family = AF_INET, .addr = "127.0.0.1", .port = 8080,
		.comm = "echod", .cgroup = sub,
	};
	struct itest_server *srv;

	if (snprintf(sub, sizeof(sub), "%s/sub", env->cgroup) >= (int)sizeof(sub) ||
	    snprintf(unit, sizeof(unit), "%s/svc.service", env->cgroup) >= (int)sizeof(unit))
		fail_msg("cgroup path too long");
	if (mkdir(sub, 0755))
		fail_msg("mkdir %s: %s", sub, strerror(errno));
	assert_int_equal(itest_server_start(env, &o, &srv), 0);
	assert_int_equal(itest_policy(env, "echod: 127.0.0.2\n", DENY_ALL), 0);
	snprintf(arg, sizeof(arg), "%s=echod", sub);
	if (itest_bpfwrap_start_ready(env, &env->bw[0], arg, NULL))
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");
	snprintf(want, sizeof(want), ", on %s (", sub);
	status_says(env, "attached:", sub, want, "a plain cgroup");
	if (itest_bpfwrap_cmd(env, "status", out, sizeof(out)) != 0 || !strstr(out, "no owner:"))
		fail_msg("status: got\n%s\nwant a \"no owner:\" line", out);
	/* removed under the live run: waited for again, then attached again */
	kill_server(env);
	rmdir_wait(sub);
	status_says(env, "waiting:", sub, "does not exist yet", "removed under a live run");
	if (mkdir(sub, 0755))
		fail_msg("mkdir %s: %s", sub, strerror(errno));
	status_says(env, "attached:", sub, want, "made again");
	/* removed while no run is there: gone */
	assert_int_equal(itest_bpfwrap_stop(&env->bw[0], SIGTERM), 0);
	rmdir_wait(sub);
	status_says(env, "gone:", sub, "was removed", "removed with no run");
	assert_int_equal(itest_bpfwrap_cmd(env, "detach", out, sizeof(out)), 0);

	/* a unit: its programs are on the parent; the unit may come and go */
	snprintf(arg, sizeof(arg), "%s=echod", unit);
	if (mkdir(unit, 0755))
		fail_msg("mkdir %s: %s", unit, strerror(errno));
	if (itest_bpfwrap_start_ready(env, &env->bw[1], arg, NULL))
		fail_msg("bpfwrap run on a unit: got no \"ready\" line, want one (output above)");
	snprintf(want, sizeof(want), ", on %s (", env->cgroup);
	status_says(env, "attached:", unit, want, "a unit");
	rmdir_wait(unit);
	status_says(env, "attached:", unit, "svc.service does not exist now", "a removed unit");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ITEST_CASE(test_reload_swap_under_load),
		ITEST_CASE(test_reload_broken_keeps_old),
		ITEST_CASE(test_reload_on_edit),
		ITEST_CASE(test_reload_on_include_edit),
		ITEST_CASE(test_fifo_deny_never_blocks),
		ITEST_CASE(test_log_file_refused),
		ITEST_CASE(test_kill9_stays_enforced_and_readopts),
		ITEST_CASE(test_restart_drops_old_cgroup),
		ITEST_CASE(test_detach_leaves_nothing),
		ITEST_CASE(test_detach_on_exit),
		ITEST_CASE(test_status_counters),
		ITEST_CASE(test_status_counters_survive_reload),
		ITEST_CASE(test_sd_notify_ready),
		ITEST_CASE(test_run_refuses_bad_arguments),
		ITEST_CASE(test_second_run_same_pin_dir_refused),
		ITEST_CASE(test_second_run_same_cgroup_refused),
		ITEST_CASE(test_detach_under_run),
		ITEST_CASE(test_links_lost_under_run),
		ITEST_CASE(test_failed_start_removes_what_it_made),
		ITEST_CASE(test_status_shows_only_real_attachments),
	};

	return cmocka_run_group_tests_name("integration/lifecycle", tests, NULL, NULL);
}
