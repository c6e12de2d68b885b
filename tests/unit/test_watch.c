/*
 * test_watch.c - the policy file watcher (user/agent/watch.c): every way admins
 * and tools change hosts.deny gives exactly one reload after the debounce;
 * other files in the directory give none. In prompt mode (the agent's), a
 * completed write reloads within a few ms, an unfinished one waits, and a
 * steady stream of writes is capped at one reload per max wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "watch.h"

#define DEBOUNCE_MS 200

static char tmpdir[] = "/tmp/test_watch.XXXXXX";
static char deny[256], allow[256], other[256], tmpfile_[256], linkdir[256];

/* ms - CLOCK_MONOTONIC in ms */
static uint64_t ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* write_file - create/replace path with text */
static void write_file(const char *path, const char *text, int flags)
{
	int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Ways to change the files. */
static void do_append(void) { write_file(deny, "ALL: 192.0.2.1\n", O_APPEND); }
static void do_rewrite(void) { write_file(deny, "ALL: 192.0.2.2\n", O_TRUNC); }
static void do_rename(void)
{
	write_file(tmpfile_, "ALL: 192.0.2.3\n", O_TRUNC);
	assert_int_equal(rename(tmpfile_, deny), 0);
}
static void do_delete_create(void)
{
	assert_int_equal(unlink(deny), 0);
	usleep(50000);
	write_file(deny, "ALL: 192.0.2.4\n", O_TRUNC);
}
static void do_burst(void)
{
	for (int i = 0; i < 40; i++) {
		write_file(deny, "ALL: 192.0.2.5\n", O_APPEND);
		usleep(3000);
	}
}
static void do_chmod(void) { assert_int_equal(chmod(allow, 0600), 0); }
static void do_other(void) { write_file(other, "x\n", O_APPEND); }
static void do_nothing(void) { }

/* do_append_open - fail2ban style: append and keep the file open (no close event) */
static int held_fd = -1;
static void do_append_open(void)
{
	held_fd = open(deny, O_WRONLY | O_APPEND);
	assert_true(held_fd >= 0);
	assert_int_equal(write(held_fd, "ALL: 192.0.2.6\n", 15), 15);
}

/* run_loop - epoll on watch_fd for dur_ms; counts reloads, records when the first came */
static int run_loop(struct watcher *w, unsigned dur_ms, uint64_t *first_at)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), reloads = 0;
	struct epoll_event ev = { .events = EPOLLIN };
	uint64_t start = ms();

	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, watch_fd(w), &ev), 0);
	while (ms() - start < dur_ms) {
		if (epoll_wait(ep, &ev, 1, 20) > 0 && watch_process(w) == 1) {
			if (!reloads && first_at)
				*first_at = ms();
			reloads++;
		}
	}
	close(ep);
	return reloads;
}

/* test_changes - each kind of change: exactly one reload, not before the debounce */
static void test_changes(void **state)
{
	static const struct {
		const char *name;
		void (*change)(void);
		int want;
	} cases[] = {
		{ "append and close", do_append, 1 },
		{ "append, file kept open", do_append_open, 1 },
		{ "rewrite in place", do_rewrite, 1 },
		{ "replace by rename (editors)", do_rename, 1 },
		{ "delete then create", do_delete_create, 1 },
		{ "burst of 40 appends", do_burst, 1 },
		{ "chmod", do_chmod, 1 },
		{ "other file in the same dir", do_other, 0 },
		{ "no change", do_nothing, 0 },
	};
	int failures = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct watcher *w;
		uint64_t changed, first = 0;
		int got;

		assert_int_equal(watch_open(&w, DEBOUNCE_MS), 0);
		assert_int_equal(watch_add(w, deny), 0);
		assert_int_equal(watch_add(w, allow), 0);
		assert_int_equal(watch_add(w, deny), 0);	/* twice: no-op */
		cases[i].change();
		changed = ms();
		got = run_loop(w, DEBOUNCE_MS * 4, &first);
		if (held_fd >= 0) {
			close(held_fd);
			held_fd = -1;
		}
		if (got != cases[i].want) {
			print_error("%s: got %d reloads, want %d\n", cases[i].name, got, cases[i].want);
			failures++;
		} else if (got && first - changed < DEBOUNCE_MS - 20) {
			print_error("%s: reload after %lu ms, want >= %d (debounce)\n", cases[i].name,
				    (unsigned long)(first - changed), DEBOUNCE_MS);
			failures++;
		}
		watch_close(w);
	}
	assert_int_equal(failures, 0);
}

/* test_debounce_extends - events keep coming: no reload until they stop */
static void test_debounce_extends(void **state)
{
	struct watcher *w;
	uint64_t start;
	int reloads = 0;

	assert_int_equal(watch_open(&w, DEBOUNCE_MS), 0);
	assert_int_equal(watch_add(w, deny), 0);
	start = ms();
	while (ms() - start < 600) {	/* an append every 50 ms for 600 ms */
		do_append();
		usleep(50000);
		if (watch_process(w) == 1)
			reloads++;
	}
	if (reloads)
		fail_msg("got %d reloads during a steady stream of writes, want 0 until it stops", reloads);
	assert_int_equal(run_loop(w, DEBOUNCE_MS * 3, NULL), 1);
	watch_close(w);
}

/* test_prompt - watch_open_prompt(): completed writes reload within a few ms,
 * unfinished ones wait up to the cap, bursts still coalesce */
static void test_prompt(void **state)
{
	static const struct {
		const char *name;
		void (*change)(void);
		int want;
		unsigned min_ms, max_ms;	/* when the first reload may come */
	} cases[] = {
		{ "append and close", do_append, 1, 0, 60 },
		{ "rewrite in place", do_rewrite, 1, 0, 60 },
		{ "replace by rename (editors)", do_rename, 1, 0, 60 },
		{ "chmod", do_chmod, 1, 0, 60 },
		/* the create and close 50 ms after the delete end the wait */
		{ "delete then create", do_delete_create, 1, 45, 120 },
		{ "append, file kept open (waits the cap)", do_append_open, 1, DEBOUNCE_MS - 20, DEBOUNCE_MS + 80 },
		{ "other file in the same dir", do_other, 0, 0, 0 },
		{ "no change", do_nothing, 0, 0, 0 },
	};
	int failures = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct watcher *w;
		uint64_t changed, first = 0;
		int got;

		assert_int_equal(watch_open_prompt(&w, 5, DEBOUNCE_MS), 0);
		assert_int_equal(watch_add(w, deny), 0);
		assert_int_equal(watch_add(w, allow), 0);
		changed = ms();
		cases[i].change();
		got = run_loop(w, DEBOUNCE_MS * 3, &first);
		if (held_fd >= 0) {
			close(held_fd);
			held_fd = -1;
		}
		if (got != cases[i].want) {
			print_error("%s: got %d reloads, want %d\n", cases[i].name, got, cases[i].want);
			failures++;
		} else if (got && (first - changed < cases[i].min_ms || first - changed > cases[i].max_ms)) {
			print_error("%s: reload after %lu ms, want %u..%u\n", cases[i].name,
				    (unsigned long)(first - changed), cases[i].min_ms, cases[i].max_ms);
			failures++;
		}
		watch_close(w);
	}
	assert_int_equal(failures, 0);
}

/* test_prompt_stream - a steady stream of completed writes, 2 ms apart for
 * 700 ms: coalesced, one reload per cap (200 ms), not one per write */
static void test_prompt_stream(void **state)
{
	struct watcher *w;
	uint64_t start;
	int reloads = 0;

	assert_int_equal(watch_open_prompt(&w, 5, DEBOUNCE_MS), 0);
	assert_int_equal(watch_add(w, deny), 0);
	start = ms();
	while (ms() - start < 700) {
		do_append();
		usleep(2000);
		if (watch_process(w) == 1)
			reloads++;
	}
	reloads += run_loop(w, 100, NULL);	/* the end of the stream: settles */
	if (reloads < 2 || reloads > 6)
		fail_msg("got %d reloads for a 700 ms stream of writes, want 2..6 (capped at one per %d ms)",
			 reloads, DEBOUNCE_MS);
	watch_close(w);
}

/* test_symlink - a symlinked policy file: edits of the target are seen */
static void test_symlink(void **state)
{
	char target[300], link[300];
	struct watcher *w;

	snprintf(target, sizeof(target), "%s/real.deny", linkdir);
	snprintf(link, sizeof(link), "%s/linked.deny", tmpdir);
	write_file(target, "ALL: 10.0.0.1\n", O_TRUNC);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(watch_open(&w, DEBOUNCE_MS), 0);
	assert_int_equal(watch_add(w, link), 0);
	write_file(target, "ALL: 10.0.0.2\n", O_APPEND);
	assert_int_equal(run_loop(w, DEBOUNCE_MS * 3, NULL), 1);
	watch_close(w);
}

/* test_clear - after watch_clear nothing is reported; an edit made during a reload is not lost */
static void test_clear(void **state)
{
	struct watcher *w;

	assert_int_equal(watch_open(&w, DEBOUNCE_MS), 0);
	assert_int_equal(watch_add(w, deny), 0);
	watch_clear(w);
	do_append();
	if (run_loop(w, DEBOUNCE_MS * 2, NULL) != 0)
		fail_msg("got a reload for a file no longer watched, want none");
	watch_clear(w);
	do_append();	/* between clear and re-add, as while the agent reloads */
	assert_int_equal(watch_add(w, deny), 0);
	assert_int_equal(run_loop(w, DEBOUNCE_MS * 3, NULL), 1);
	watch_close(w);
}

/* test_errors - a file in a missing directory cannot be watched */
static void test_errors(void **state)
{
	struct watcher *w;

	assert_int_equal(watch_open(&w, 0), 0);
	assert_int_equal(watch_add(w, "/nonexistent-dir/hosts.allow"), -ENOENT);
	assert_int_equal(watch_add(w, "/tmp/"), -EINVAL);
	watch_close(w);
}

static int setup(void **state)
{
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(deny, sizeof(deny), "%s/hosts.deny", tmpdir);
	snprintf(allow, sizeof(allow), "%s/hosts.allow", tmpdir);
	snprintf(other, sizeof(other), "%s/hosts.deny.bak", tmpdir);
	snprintf(tmpfile_, sizeof(tmpfile_), "%s/.hosts.deny.swp", tmpdir);
	snprintf(linkdir, sizeof(linkdir), "%s/elsewhere", tmpdir);
	if (mkdir(linkdir, 0755) < 0)
		return -1;
	write_file(deny, "", O_TRUNC);
	write_file(allow, "", O_TRUNC);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_changes),
		cmocka_unit_test(test_debounce_extends),
		cmocka_unit_test(test_prompt),
		cmocka_unit_test(test_prompt_stream),
		cmocka_unit_test(test_symlink),
		cmocka_unit_test(test_clear),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
