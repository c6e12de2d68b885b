/*
 * test_expand.c - % expansion (user/policy/expand.c): named cases with the expected
 * text, then a differential run against the real libwrap percent_x()
 * (Debian libwrap0-dev, linked with -lwrap) over every %x and hostile values.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <cmocka.h>
#include <tcpd.h>

#include "expand.h"

/* libwrap wants the program to define these */
int allow_severity = LOG_INFO;
int deny_severity = LOG_WARNING;

static const struct request full = {
	.daemon = "sshd",
	.client_addr = "192.0.2.7",
	.client_name = "host.example.org",
	.user = "alice",
	.server_addr = "10.0.0.1",
	.server_name = "srv.example.org",
	.server_port = 22,
};

static const struct request hostile = {
	.daemon = "in.ftpd",
	.client_addr = "2001:db8::1",
	.client_name = ";rm -rf / `id` $(reboot)\n|&<>'\"",
	.user = "r\x01oot;ls",
	.server_addr = "::ffff:10.0.0.1",
	.server_name = NULL,
	.server_port = 21,
};

static const struct request empty = { 0 };

static const struct request paranoid_req = {
	.daemon = "sshd", .client_addr = "198.51.100.9", .client_name = "paranoid",
	.user = "UNKNOWN", .server_addr = "10.0.0.1", .server_name = "unknown",
};

struct expand_case {
	const char *name;
	const struct request *req;
	const char *fmt;
	const char *want;
	int want_rc;
	size_t size;		/* 0 = 512 */
};

static const struct expand_case cases[] = {
	{ "client address", &full, "%a", "192.0.2.7", 0, 0 },
	{ "server address", &full, "%A", "10.0.0.1", 0, 0 },
	{ "client info with user", &full, "%c", "alice@host.example.org", 0, 0 },
	{ "daemon", &full, "%d", "sshd", 0, 0 },
	{ "client host", &full, "%h", "host.example.org", 0, 0 },
	{ "server host", &full, "%H", "srv.example.org", 0, 0 },
	{ "client name", &full, "%n", "host.example.org", 0, 0 },
	{ "server name", &full, "%N", "srv.example.org", 0, 0 },
	{ "pid", &full, "%p", "4242", 0, 0 },
	{ "server info", &full, "%s", "sshd@srv.example.org", 0, 0 },
	{ "user", &full, "%u", "alice", 0, 0 },
	{ "percent", &full, "100%%", "100%", 0, 0 },
	{ "literal text kept", &full, "echo 'x;y' | mail -s \"%d\" root", "echo 'x;y' | mail -s \"sshd\" root", 0, 0 },
	{ "unknown letter is empty", &full, "[%z]", "[]", 0, 0 },
	{ "trailing percent literal", &full, "50%", "50%", 0, 0 },
	{ "all unknown", &empty, "%a %A %c %d %h %H %n %N %s %u", "unknown unknown unknown unknown unknown unknown unknown unknown unknown unknown", 0, 0 },
	{ "paranoid host shows address", &paranoid_req, "%h %n %c", "198.51.100.9 paranoid 198.51.100.9", 0, 0 },
	{ "unknown server name: server address", &paranoid_req, "%H %s", "10.0.0.1 sshd@10.0.0.1", 0, 0 },
	{ "hostile name sanitized", &hostile, "%n", "_rm_-rf_/__id____reboot________", 0, 0 },
	{ "hostile user sanitized", &hostile, "%u", "r_oot_ls", 0, 0 },
	{ "hostile client info", &hostile, "%c", "r_oot_ls@_rm_-rf_/__id____reboot________", 0, 0 },
	{ "v6 addresses keep colons", &hostile, "%a %A", "2001:db8::1 ::ffff:10.0.0.1", 0, 0 },
	{ "exact fit", &full, "%d", "sshd", 0, 5 },
	{ "one byte short", &full, "%d", "", -ENAMETOOLONG, 4 },
	{ "literal too long", &full, "abcdef", "", -ENAMETOOLONG, 6 },
};

/* test_cases - every named case: output text and return code */
static void test_cases(void **state)
{
	int failures = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct expand_case *c = &cases[i];
		char out[512];
		size_t size = c->size ? c->size : sizeof(out);
		int rc = expand_percent(c->fmt, c->req, 4242, out, size);

		if (rc != c->want_rc || strcmp(out, c->want)) {
			print_error("%s: expand(\"%s\") got rc %d \"%s\", want rc %d \"%s\"\n", c->name,
				    c->fmt, rc, out, c->want_rc, c->want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* test_long_values - fields are cut to 127 like libwrap; 127+1+127 fits %c */
static void test_long_values(void **state)
{
	char longname[400], longuser[300], out[1024], want[300];
	struct request req = full;

	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	memset(longuser, 'u', sizeof(longuser) - 1);
	longuser[sizeof(longuser) - 1] = 0;
	req.client_name = longname;
	req.user = longuser;
	assert_int_equal(expand_percent("%n", &req, 1, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), POLICY_FIELD_MAX);
	assert_int_equal(expand_percent("%c", &req, 1, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "%.127s@%.127s", longuser, longname);
	if (strcmp(out, want))
		fail_msg("%%c got \"%s\", want \"%s\"", out, want);
}

/* test_check - expand_check finds the first unknown sequence */
static void test_check(void **state)
{
	static const struct {
		const char *fmt;
		int rc;
		size_t at;
	} checks[] = {
		{ "echo %a %A %c %d %h %H %n %N %p %s %u %%", 0, 0 },
		{ "echo 100%", 0, 0 },
		{ "echo %%z", 0, 0 },
		{ "echo %a %z", -EINVAL, 8 },
		{ "%q", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		size_t at = 0;
		int rc = expand_check(checks[i].fmt, &at);

		if (rc != checks[i].rc || (rc && at != checks[i].at))
			fail_msg("check(\"%s\") got %d at %zu, want %d at %zu", checks[i].fmt, rc, at,
				 checks[i].rc, checks[i].at);
	}
}

/* libwrap_expand - percent_x() of the real libwrap for req */
static void libwrap_expand(const struct request *r, const char *fmt, char *out, size_t size)
{
	struct request_info ri;

	request_init(&ri, 0);
	if (r->daemon)
		request_set(&ri, RQ_DAEMON, r->daemon, 0);
	if (r->client_addr)
		request_set(&ri, RQ_CLIENT_ADDR, r->client_addr, 0);
	if (r->client_name)
		request_set(&ri, RQ_CLIENT_NAME, r->client_name, 0);
	if (r->user)
		request_set(&ri, RQ_USER, r->user, 0);
	if (r->server_addr)
		request_set(&ri, RQ_SERVER_ADDR, r->server_addr, 0);
	if (r->server_name)
		request_set(&ri, RQ_SERVER_NAME, r->server_name, 0);
	percent_x(out, (int)size, (char *)fmt, &ri);
}

/* test_differential_libwrap - equal to libwrap's percent_x for every %x on varied requests */
static void test_differential_libwrap(void **state)
{
	static const char *fmts[] = {
		"%a", "%A", "%c", "%d", "%h", "%H", "%n", "%N", "%p", "%s", "%u", "%%",
		"/usr/bin/safe_finger -l @%h | mail -s '%d-%h' root &",
		"echo \"%c %s\" >> /var/log/x; %u%",
	};
	char longname[200];
	const struct request user_unknown = {
		.daemon = "telnetd", .client_addr = "1.2.3.4", .user = "unknown", .server_name = "srv",
	};
	const struct request user_Unknown = {
		.daemon = "telnetd", .client_addr = "1.2.3.4", .user = "UnKnown", .server_addr = "5.6.7.8",
	};
	struct request longreq = full;
	const struct request *reqs[] = { &full, &hostile, &empty, &paranoid_req, &user_unknown,
					 &user_Unknown, &longreq };
	int compared = 0, failures = 0;

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	longreq.client_name = longname;
	longreq.user = longname;
	for (size_t r = 0; r < sizeof(reqs) / sizeof(reqs[0]); r++) {
		for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
			char ours[1024], theirs[1024];

			assert_int_equal(expand_percent(fmts[f], reqs[r], getpid(), ours, sizeof(ours)), 0);
			libwrap_expand(reqs[r], fmts[f], theirs, sizeof(theirs));
			compared++;
			if (strcmp(ours, theirs)) {
				print_error("request %zu, \"%s\": got \"%s\", want (libwrap) \"%s\"\n", r,
					    fmts[f], ours, theirs);
				failures++;
			}
		}
	}
	print_message("compared %d expansions with libwrap\n", compared);
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_long_values),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_differential_libwrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
