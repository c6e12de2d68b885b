/*
 * test_ident.c - the RFC 1413 client (user/agent/ident.c) against a fake identd
 * inside this test on 127.0.0.1: good replies, ERROR replies, wrong ports,
 * hostile users (control bytes, non-ASCII, 300 characters), oversized and
 * silent replies, refused connections; and the reply parser on its own.
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
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "ident.h"

#define CPORT 40001
#define SPORT 22

enum mode { REPLY, SILENT, HUGE };

static int listen_fd = -1;
static uint16_t identd_port;
static volatile bool stop;
static pthread_t thread;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static enum mode mode;
static char reply[2048];
static size_t reply_len;
static char last_query[128];

/* identd_main - accept, read the query, answer as the current mode says */
static void *identd_main(void *unused)
{
	int held = -1;

	while (!stop) {
		struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
		char q[128];
		size_t qlen = 0;
		int fd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept(listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		if (held >= 0)
			close(held), held = -1;
		while (qlen < sizeof(q) - 1) {	/* the query line, 1 s at most */
			struct pollfd r = { .fd = fd, .events = POLLIN };
			ssize_t n;

			if (poll(&r, 1, 1000) <= 0)
				break;
			n = read(fd, q + qlen, sizeof(q) - 1 - qlen);
			if (n <= 0)
				break;
			qlen += (size_t)n;
			if (memchr(q, '\n', qlen))
				break;
		}
		q[qlen] = 0;
		pthread_mutex_lock(&lock);
		snprintf(last_query, sizeof(last_query), "%s", q);
		if (mode == REPLY) {
			if (write(fd, reply, reply_len) < 0)
				break;
			close(fd);
		} else if (mode == HUGE) {
			char big[5000];

			memset(big, 'A', sizeof(big));
			if (write(fd, big, sizeof(big)) < 0)
				break;
			held = fd;
		} else {
			held = fd;	/* say nothing, keep it open */
		}
		pthread_mutex_unlock(&lock);
	}
	if (held >= 0)
		close(held);
	return NULL;
}

struct got {
	int calls;
	char user[256];
	int status;
};

/* on_result - ident callback: record what came */
static void on_result(void *arg, const struct ident_result *res)
{
	struct got *g = arg;

	g->calls++;
	snprintf(g->user, sizeof(g->user), "%s", res->user);
	g->status = res->status;
}

/* ms - CLOCK_MONOTONIC in ms */
static uint64_t ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* drive - epoll loop on ident_fd until nothing is pending or limit_ms passed */
static void drive(struct identer *id, unsigned limit_ms)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	uint64_t start = ms();

	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, ident_fd(id), &ev), 0);
	while (ident_pending(id) && ms() - start < limit_ms)
		if (epoll_wait(ep, &ev, 1, 50) > 0)
			ident_process(id);
	close(ep);
}

static char long_user[301];

/* test_exchanges - one query per case against the fake identd */
static void test_exchanges(void **state)
{
	static const struct {
		const char *name;
		enum mode mode;
		const char *reply;	/* may contain one %s: long_user */
		const char *want_user;
		int want_status;
	} cases[] = {
		{ "plain", REPLY, "40001 , 22 : USERID : UNIX : alice\r\n", "alice", 0 },
		{ "charset and tight spacing", REPLY, "40001,22:USERID:UNIX,US-ASCII:bob\r\n", "bob", 0 },
		{ "extra words after the user", REPLY, "40001 , 22 : USERID : UNIX :   carol extra\r\n", "carol", 0 },
		{ "no newline, then close", REPLY, "40001 , 22 : USERID : UNIX : dave", "dave", 0 },
		{ "shell characters kept, printable", REPLY, "40001 , 22 : USERID : UNIX : $(reboot);`x`\r\n",
		  "$(reboot);`x`", 0 },
		{ "ERROR reply", REPLY, "40001 , 22 : ERROR : NO-USER\r\n", "unknown", -ENOENT },
		{ "wrong ports", REPLY, "40002 , 22 : USERID : UNIX : eve\r\n", "unknown", -EBADMSG },
		{ "control byte in user", REPLY, "40001 , 22 : USERID : UNIX : r\x01oot\r\n", "unknown", -EBADMSG },
		{ "escape sequence in user", REPLY, "40001 , 22 : USERID : UNIX : \x1b[2J\r\n", "unknown", -EBADMSG },
		{ "non-ASCII user", REPLY, "40001 , 22 : USERID : UNIX : r\xc3\xa9mi\r\n", "unknown", -EBADMSG },
		{ "newline ends the line", REPLY, "40001 , 22 : USERID : UNIX : ali\nce\r\n", "ali", 0 },
		{ "NUL inside the line", REPLY, "40001 , 22 : USERID : UNIX : ali\0ce\r\n", "unknown", -EBADMSG },
		{ "garbage", REPLY, "hello\r\n", "unknown", -EBADMSG },
		{ "empty reply", REPLY, "", "unknown", -EBADMSG },
		{ "300-character user cut to 127", REPLY, "40001 , 22 : USERID : UNIX : %s\r\n", NULL, 0 },
		{ "endless line", HUGE, "", "unknown", -EMSGSIZE },
		{ "silent identd", SILENT, "", "unknown", -ETIMEDOUT },
	};
	int failures = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ident_config cfg = { .timeout_ms = 400, .port = identd_port };
		struct identer *id;
		struct got got = { 0 };
		char want_long[POLICY_FIELD_MAX + 1];
		const char *want_user = cases[i].want_user;
		char query[128];

		pthread_mutex_lock(&lock);
		mode = cases[i].mode;
		if (!strcmp(cases[i].name, "NUL inside the line")) {	/* the literal stops at its NUL */
			static const char nul[] = "40001 , 22 : USERID : UNIX : ali\0ce\r\n";

			memcpy(reply, nul, sizeof(nul) - 1);
			reply_len = sizeof(nul) - 1;
		} else {
			snprintf(reply, sizeof(reply), cases[i].reply, long_user);
			reply_len = strlen(reply);
		}
		last_query[0] = 0;
		pthread_mutex_unlock(&lock);
		if (!want_user) {
			snprintf(want_long, sizeof(want_long), "%.127s", long_user);
			want_user = want_long;
		}
		assert_int_equal(ident_open(&id, &cfg), 0);
		assert_int_equal(ident_start(id, "127.0.0.1", CPORT, "127.0.0.1", SPORT, on_result, &got), 0);
		assert_int_equal(got.calls, 0);	/* never from inside ident_start */
		drive(id, 3000);
		ident_close(id);
		pthread_mutex_lock(&lock);
		snprintf(query, sizeof(query), "%s", last_query);
		pthread_mutex_unlock(&lock);
		if (got.calls != 1 || strcmp(got.user, want_user) || got.status != cases[i].want_status) {
			print_error("%s: got %d calls, user \"%s\", status %d; want 1, \"%s\", %d\n",
				    cases[i].name, got.calls, got.user, got.status, want_user,
				    cases[i].want_status);
			failures++;
		}
		if (strcmp(query, "40001 , 22\r\n")) {
			print_error("%s: identd got query \"%s\", want \"40001 , 22\\r\\n\"\n", cases[i].name, query);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* test_refused - nobody listens on the ident port */
static void test_refused(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct ident_config cfg = { .timeout_ms = 1000 };
	struct identer *id;
	struct got got = { 0 };

	/* a port that was free a moment ago */
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	cfg.port = ntohs(sin.sin_port);
	assert_int_equal(ident_open(&id, &cfg), 0);
	assert_int_equal(ident_start(id, "::ffff:127.0.0.1", CPORT, "::ffff:127.0.0.1", SPORT, on_result, &got), 0);
	drive(id, 3000);
	ident_close(id);
	if (got.calls != 1 || got.status != -ECONNREFUSED || strcmp(got.user, "unknown"))
		fail_msg("got %d calls status %d user %s, want 1 -ECONNREFUSED unknown", got.calls, got.status,
			 got.user);
}

/* test_limits - bad addresses, a full table, cancel on close */
static void test_limits(void **state)
{
	struct ident_config cfg = { .timeout_ms = 5000, .max_pending = 1, .port = identd_port };
	struct identer *id;
	struct got a = { 0 }, b = { 0 };

	pthread_mutex_lock(&lock);
	mode = SILENT;
	pthread_mutex_unlock(&lock);
	assert_int_equal(ident_open(&id, &cfg), 0);
	assert_int_equal(ident_start(id, "no-address", CPORT, NULL, SPORT, on_result, &a), -EINVAL);
	assert_int_equal(ident_start(id, "127.0.0.1", CPORT, NULL, SPORT, on_result, &a), 0);
	assert_int_equal(ident_start(id, "127.0.0.1", CPORT, NULL, SPORT, on_result, &b), -EAGAIN);
	ident_close(id);
	if (a.calls != 1 || a.status != -ECANCELED || b.calls)
		fail_msg("got calls %d/%d status %d, want 1/0 -ECANCELED", a.calls, b.calls, a.status);
}

/* test_parse - the parser alone, named lines */
static void test_parse(void **state)
{
	static const struct {
		const char *line;
		int rc;
		const char *user;
	} cases[] = {
		{ "6193, 23 : USERID : UNIX : stjohns", 0, "stjohns" },
		{ "6193 , 23 : userid : OTHER :x", 0, "x" },
		{ "6193, 23 : ERROR : INVALID-PORT", -ENOENT, "unknown" },
		{ "6193, 23 : USERID : : x", 0, "x" },	/* tcpd: %*[^:] takes the blank */
		{ "6193, 23 : USERID : UNIX :", -EBADMSG, "unknown" },
		{ "6193, 23 : USERID : UNIX", -EBADMSG, "unknown" },
		{ "99999, 23 : USERID : UNIX : x", -EBADMSG, "unknown" },
		{ "6193 23 : USERID : UNIX : x", -EBADMSG, "unknown" },
		{ "", -EBADMSG, "unknown" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char user[POLICY_FIELD_MAX + 1];
		int rc = ident_parse_reply(cases[i].line, 6193, 23, user, sizeof(user));

		if (rc != cases[i].rc || strcmp(user, cases[i].user))
			fail_msg("parse \"%s\": got %d \"%s\", want %d \"%s\"", cases[i].line, rc, user,
				 cases[i].rc, cases[i].user);
	}
}

static int setup(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);

	memset(long_user, 'u', 300);
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(listen_fd, 16) < 0 || getsockname(listen_fd, (struct sockaddr *)&sin, &len) < 0)
		return -1;
	identd_port = ntohs(sin.sin_port);
	return pthread_create(&thread, NULL, identd_main, NULL) ? -1 : 0;
}

static int teardown(void **state)
{
	stop = true;
	pthread_join(thread, NULL);
	close(listen_fd);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exchanges),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
