/*
 * test_spawn.c - background commands (user/agent/spawner.c): no waiting in the
 * caller, /dev/null on stdio, own process group, no leaked descriptors, a
 * fixed environment, the concurrency limit, per-rule token buckets,
 * SIGTERM/SIGKILL timeouts to the whole group, reaping through spawn_fd().
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <cmocka.h>

#include "spawner.h"

#define UTEST_NAME "test_spawn"
#include "unit/utest.h"

/* ms - CLOCK_MONOTONIC in ms */
static uint64_t ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* drive - run an epoll loop on spawn_fd until nothing runs or limit_ms passed; returns ms taken */
static uint64_t drive(struct spawner *sp, unsigned limit_ms)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	uint64_t start = ms();

	assert_true(ep >= 0);
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, spawn_fd(sp), &ev), 0);
	while (spawn_running(sp) && ms() - start < limit_ms) {
		if (epoll_wait(ep, &ev, 1, 100) > 0)
			spawn_process(sp);
	}
	close(ep);
	return ms() - start;
}

/* slurp - file contents (static buffer), "" if missing */
static const char *slurp(const char *name)
{
	static char buf[8192];
	char path[256];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fd = open(path, O_RDONLY);
	n = fd < 0 ? 0 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

/* test_background - spawn_run returns at once; the exit is seen through spawn_fd */
static void test_background(void **state)
{
	struct spawner *sp;
	struct spawn_stats st;
	char cmd[512];
	uint64_t t0;
	pid_t pid = 0;

	snprintf(cmd, sizeof(cmd), "sleep 0.3; echo done > %s/bg", tmpdir);
	assert_int_equal(spawn_open(&sp, NULL), 0);
	t0 = ms();
	assert_int_equal(spawn_run(sp, cmd, 1, &pid), 0);
	if (ms() - t0 > 150)
		fail_msg("spawn_run took %lu ms, want no waiting", (unsigned long)(ms() - t0));
	assert_true(pid > 0);
	assert_int_equal(spawn_running(sp), 1);
	drive(sp, 5000);
	assert_int_equal(spawn_running(sp), 0);
	assert_string_equal(slurp("bg"), "done\n");
	spawn_get_stats(sp, &st);
	assert_int_equal(st.started, 1);
	assert_int_equal(st.exited, 1);
	assert_int_equal(st.failed, 0);
	spawn_close(sp);
}

/* test_child_environment - stdio on /dev/null, own group, fds 0-2 only, fixed env (read from /proc) */
static void test_child_environment(void **state)
{
	int leak = open("/dev/zero", O_RDONLY);	/* no O_CLOEXEC: must not reach the child */
	struct spawner *sp;
	char path[128], target[256], buf[4096];
	int fds = 0, pgrp = 0;
	pid_t pid = 0;
	ssize_t n = 0;
	FILE *f;

	assert_true(leak >= 0);
	setenv("BPFWRAP_TEST_SECRET", "leaked", 1);
	assert_int_equal(spawn_open(&sp, NULL), 0);
	/* exec: the process keeps exactly what the spawned shell got */
	assert_int_equal(spawn_run(sp, "exec sleep 5", 1, &pid), 0);
	unsetenv("BPFWRAP_TEST_SECRET");
	close(leak);
	usleep(200000);
	for (int fd = 0; fd < 64; fd++) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
		len = readlink(path, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = 0;
		fds++;
		if (fd > 2 || strcmp(target, "/dev/null"))
			fail_msg("child fd %d got %s, want only fds 0-2 on /dev/null", fd, target);
	}
	assert_int_equal(fds, 3);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%*d %*s %*c %*d %d", &pgrp), 1);
	fclose(f);
	if (pgrp != pid)
		fail_msg("child process group got %d, want its own (%d)", pgrp, (int)pid);
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	n = (ssize_t)fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n > 0 ? n : 0] = 0;
	for (ssize_t i = 0; i < n; i++)
		if (!buf[i])
			buf[i] = ' ';
	if (strstr(buf, "BPFWRAP_TEST_SECRET") || strncmp(buf, "PATH=/usr/local/sbin:", 21))
		fail_msg("child env got \"%s\", want PATH and no inherited variables", buf);
	spawn_close(sp);
}

/* test_concurrency_limit - max_children running, the next one -EAGAIN and counted */
static void test_concurrency_limit(void **state)
{
	struct spawn_config cfg = { .max_children = 2 };
	struct spawner *sp;
	struct spawn_stats st;
	uint64_t t0;

	assert_int_equal(spawn_open(&sp, &cfg), 0);
	assert_int_equal(spawn_run(sp, "sleep 30", 1, NULL), 0);
	assert_int_equal(spawn_run(sp, "sleep 30", 2, NULL), 0);
	assert_int_equal(spawn_run(sp, "sleep 30", 3, NULL), -EAGAIN);
	spawn_get_stats(sp, &st);
	assert_int_equal(st.refused_busy, 1);
	assert_int_equal(st.started, 2);
	t0 = ms();
	spawn_close(sp);	/* kills both groups */
	if (ms() - t0 > 2000)
		fail_msg("spawn_close took %lu ms, want the children killed", (unsigned long)(ms() - t0));
}

/* test_rate_limit - rate_burst per rule per interval, buckets per rule, refill over time */
static void test_rate_limit(void **state)
{
	struct spawn_config cfg = { .rate_burst = 2, .rate_interval_ms = 400 };
	static const struct {
		const char *name;
		uint32_t rule;
		unsigned sleep_ms;	/* before this step */
		int want;
	} steps[] = {
		{ "rule 1, first", 1, 0, 0 },
		{ "rule 1, second", 1, 0, 0 },
		{ "rule 1, third: over the burst", 1, 0, -EBUSY },
		{ "rule 2 has its own bucket", 2, 0, 0 },
		{ "rule 1 after 250 ms: one token back", 1, 250, 0 },
		{ "rule 1 again: empty", 1, 0, -EBUSY },
	};
	struct spawner *sp;
	struct spawn_stats st;

	assert_int_equal(spawn_open(&sp, &cfg), 0);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int rc;

		if (steps[i].sleep_ms)
			usleep(steps[i].sleep_ms * 1000);
		rc = spawn_run(sp, "true", steps[i].rule, NULL);
		if (rc != steps[i].want)
			fail_msg("%s: got %d, want %d", steps[i].name, rc, steps[i].want);
	}
	drive(sp, 5000);
	spawn_get_stats(sp, &st);
	assert_int_equal(st.refused_rate, 2);
	assert_int_equal(st.started, 4);
	spawn_close(sp);
}

/* test_timeout - SIGTERM to the group at the timeout, SIGKILL after the grace time */
static void test_timeout(void **state)
{
	static const struct {
		const char *name;
		const char *cmd;
		uint64_t want_timed_out, want_killed;
	} cases[] = {
		{ "obeys SIGTERM", "sleep 30", 1, 0 },
		{ "ignores SIGTERM", "trap '' TERM; sleep 30; sleep 30", 1, 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spawn_config cfg = { .timeout_ms = 200, .kill_grace_ms = 300 };
		struct spawner *sp;
		struct spawn_stats st;
		uint64_t took;

		assert_int_equal(spawn_open(&sp, &cfg), 0);
		assert_int_equal(spawn_run(sp, cases[i].cmd, 1, NULL), 0);
		took = drive(sp, 5000);
		spawn_get_stats(sp, &st);
		if (spawn_running(sp) || st.timed_out != cases[i].want_timed_out ||
		    st.killed != cases[i].want_killed || st.failed != 1)
			fail_msg("%s: got running %u timed_out %lu killed %lu failed %lu after %lu ms, "
				 "want 0 %lu %lu 1", cases[i].name, spawn_running(sp),
				 (unsigned long)st.timed_out, (unsigned long)st.killed,
				 (unsigned long)st.failed, (unsigned long)took,
				 (unsigned long)cases[i].want_timed_out, (unsigned long)cases[i].want_killed);
		spawn_close(sp);
	}
}

/* test_group_killed - a background grandchild in the group dies with the timeout too */
static void test_group_killed(void **state)
{
	struct spawn_config cfg = { .timeout_ms = 200, .kill_grace_ms = 300 };
	struct spawner *sp;
	char cmd[512];
	long bg = 0;
	bool gone = false;

	snprintf(cmd, sizeof(cmd), "sleep 30 & echo $! > %s/bgpid; wait", tmpdir);
	assert_int_equal(spawn_open(&sp, &cfg), 0);
	assert_int_equal(spawn_run(sp, cmd, 1, NULL), 0);
	drive(sp, 5000);
	spawn_close(sp);
	bg = atol(slurp("bgpid"));
	assert_true(bg > 0);
	for (int i = 0; i < 50 && !gone; i++) {	/* reparented: init reaps it */
		char path[64], st[256] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%ld/stat", bg);
		f = fopen(path, "r");
		gone = !f || !fgets(st, sizeof(st), f) || strstr(st, ") Z ");
		if (f)
			fclose(f);
		if (!gone)
			usleep(20000);
	}
	if (!gone) {
		kill((pid_t)bg, SIGKILL);
		fail_msg("background child %ld got still running, want killed with its group", bg);
	}
}

/* test_exec_failure - a shell that cannot run is an error, counted */
static void test_exec_failure(void **state)
{
	struct spawn_config cfg = { .shell = "/nonexistent/sh" };
	struct spawner *sp;
	struct spawn_stats st;

	assert_int_equal(spawn_open(&sp, &cfg), 0);
	assert_int_equal(spawn_run(sp, "true", 1, NULL), -ENOENT);
	spawn_get_stats(sp, &st);
	assert_int_equal(st.errors, 1);
	assert_int_equal(spawn_running(sp), 0);
	spawn_close(sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_background),
		cmocka_unit_test(test_child_environment),
		cmocka_unit_test(test_concurrency_limit),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_group_killed),
		cmocka_unit_test(test_exec_failure),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
