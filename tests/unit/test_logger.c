/*
 * test_logger.c - tcpd-style log lines (user/agent/logger.c): text and JSON
 * formatting with hostile names, fail2ban's tcpwrapper regex, severity
 * names, the rate limit and its summaries, the global cap, the syslog
 * fallback to stderr, the journal when there is one.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "fail2ban.h"
#include "logger.h"

#define UTEST_NAME "test_logger"
#include "unit/utest.h"

/* read_file - whole file into a static buffer */
static const char *read_all(const char *path)
{
	static char buf[1 << 20];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

/* count_lines - newlines in s that contain needle */
static int count_lines(const char *s, const char *needle)
{
	int n = 0;

	for (const char *line = s; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (memmem(line, len, needle, strlen(needle)))
			n++;
		line += len + (end ? 1 : 0);
	}
	return n;
}

/* temp_path - a fresh file name under tmpdir */
static const char *temp_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	unlink(path);
	return path;
}

struct text_case {
	const char *name;
	struct request req;
	bool refused;
	const char *want;
};

static const struct text_case text_cases[] = {
	{ "refused, name known", { .daemon = "sshd", .client_addr = "192.0.2.7", .client_name = "evil.example" },
	  true, "refused connect from evil.example (192.0.2.7)" },
	{ "refused, unknown name", { .daemon = "sshd", .client_addr = "192.0.2.7", .client_name = "unknown" },
	  true, "refused connect from 192.0.2.7 (192.0.2.7)" },
	{ "refused, paranoid", { .daemon = "sshd", .client_addr = "2001:db8::5", .client_name = "paranoid" },
	  true, "refused connect from 2001:db8::5 (2001:db8::5)" },
	{ "refused, with user", { .daemon = "in.telnetd", .client_addr = "192.0.2.8", .client_name = "h.example", .user = "bob" },
	  true, "refused connect from bob@h.example (192.0.2.8)" },
	{ "connect as tcpd", { .daemon = "sshd", .client_addr = "192.0.2.9", .client_name = "ok.example" },
	  false, "connect from ok.example" },
	{ "hostile name", { .daemon = "sshd", .client_addr = "192.0.2.7", .client_name = "a b\nsshd[1]: refused connect from x (6.6.6.6)" },
	  true, "refused connect from a_b_sshd[1]:_refused_connect_from_x_(6.6.6.6) (192.0.2.7)" },
	{ "hostile user", { .daemon = "sshd", .client_addr = "192.0.2.7", .user = "r\x1b[2Joot\r" },
	  true, "refused connect from r_[2Joot_@192.0.2.7 (192.0.2.7)" },
	{ "nothing known", { 0 }, true, "refused connect from unknown (unknown)" },
};

/* test_format_text - tcpd's line text for each named case */
static void test_format_text(void **state)
{
	int failures = 0;

	for (size_t i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
		const struct text_case *c = &text_cases[i];
		struct logger_event ev = { .req = &c->req, .pid = 812, .refused = c->refused, .priority = -1 };
		char buf[1024];
		int rc = logger_format_text(&ev, buf, sizeof(buf));

		if (rc || strcmp(buf, c->want)) {
			print_error("%s: got rc %d \"%s\", want \"%s\"\n", c->name, rc, buf, c->want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* test_fail2ban_regex - written lines match fail2ban's tcpwrapper filter, HOST = the real address */
static void test_fail2ban_regex(void **state)
{
	regex_t re;
	int failures = 0;

	assert_int_equal(regcomp(&re, fail2ban_tcpwrapper_ere, REG_EXTENDED), 0);
	for (int target = 0; target < 2; target++) {
		for (size_t i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
			const struct text_case *c = &text_cases[i];
			struct logger_config cfg = { .no_ratelimit = true };
			struct logger_event ev = { .req = &c->req, .pid = 812, .refused = c->refused, .priority = -1 };
			struct logger *lg;
			regmatch_t m[20];
			const char *path = temp_path("f2b.log"), *text, *line;
			char host[128] = "";
			const char *want = c->req.client_addr ? c->req.client_addr : "unknown";
			bool want_match = c->refused;	/* "unknown" too: tcpd writes the same */

			cfg.target = target ? path : "stderr";
			if (!target) {	/* stderr target: capture fd 2 in the file */
				int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), saved = dup(2);

				dup2(fd, 2);
				close(fd);
				assert_int_equal(logger_open(&lg, &cfg), 0);
				assert_int_equal(logger_log(lg, &ev, 0), 0);
				logger_close(lg);
				dup2(saved, 2);
				close(saved);
			} else {
				assert_int_equal(logger_open(&lg, &cfg), 0);
				assert_int_equal(logger_log(lg, &ev, 0), 0);
				logger_close(lg);
			}
			text = read_all(path);
			/* a FILE line starts with "Mmm dd hh:mm:ss ": fail2ban cuts the date */
			line = target ? text + 16 : text;
			if (regexec(&re, line, 20, m, 0) == 0) {
				/* the HOST group: the first non-empty of ip4, ip6, dns */
				for (int g = 13; g < 20; g++)
					if (g != 14 && m[g].rm_so >= 0 && m[g].rm_eo > m[g].rm_so) {
						snprintf(host, sizeof(host), "%.*s", (int)(m[g].rm_eo - m[g].rm_so),
							 line + m[g].rm_so);
						break;
					}
			}
			if (want_match && strcmp(host, want)) {
				print_error("%s (%s): line \"%s\": fail2ban HOST got \"%s\", want \"%s\"\n",
					    c->name, target ? "file" : "stderr", line, host, want);
				failures++;
			}
			if (!want_match && host[0]) {
				print_error("%s: line \"%s\" matched fail2ban with HOST \"%s\", want no match\n",
					    c->name, line, host);
				failures++;
			}
			if (strchr(line, '\n') != line + strlen(line) - 1) {
				print_error("%s: got more than one line: \"%s\"\n", c->name, line);
				failures++;
			}
		}
	}
	regfree(&re);
	assert_int_equal(failures, 0);
}

/* test_severity - `[facility.]level` names as hosts_options(5) has them */
static void test_severity(void **state)
{
	static const struct {
		const char *text;
		int rc, want;
	} cases[] = {
		{ "auth.info", 0, LOG_AUTH | LOG_INFO },
		{ "notice", 0, LOG_AUTHPRIV | LOG_NOTICE },
		{ "LOCAL7.Debug", 0, LOG_LOCAL7 | LOG_DEBUG },
		{ "mail.emerg", 0, LOG_MAIL | LOG_EMERG },
		{ "authpriv.warning", 0, LOG_AUTHPRIV | LOG_WARNING },
		{ "err", 0, LOG_AUTHPRIV | LOG_ERR },
		{ "bogus", -EINVAL, 0 },
		{ "auth.", -EINVAL, 0 },
		{ ".info", -EINVAL, 0 },
		{ "auth.info.x", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int prio = -1, rc = logger_parse_severity(cases[i].text, LOG_AUTHPRIV, &prio);

		if (rc != cases[i].rc || (!rc && prio != cases[i].want))
			fail_msg("severity \"%s\": got rc %d prio %d, want rc %d prio %d", cases[i].text, rc,
				 prio, cases[i].rc, cases[i].want);
	}
}

/* test_json - one object per line, quotes/backslashes/control bytes escaped */
static void test_json(void **state)
{
	const struct request req = { .daemon = "sshd", .client_addr = "192.0.2.7",
				     .client_name = "a\"b\\c\nd\x01\xff", .user = NULL };
	struct logger_event ev = { .req = &req, .pid = 812, .refused = true, .rule_id = 3,
				   .rule_file = "/etc/hosts.deny", .rule_line = 7, .priority = -1 };
	struct logger_config cfg = { .format = LOGGER_JSON, .no_ratelimit = true };
	const char *path = temp_path("json.log"), *text;
	struct logger *lg;
	char buf[2048];

	assert_int_equal(logger_format_json(&ev, "T", buf, sizeof(buf)), 0);
	if (!strstr(buf, "\"client_name\":\"a\\\"b\\\\c\\nd\\u0001\\u00ff\""))
		fail_msg("json got %s, want client_name escaped", buf);
	if (!strstr(buf, "\"rule\":\"/etc/hosts.deny:7\"") || !strstr(buf, "\"verdict\":\"refused\"") ||
	    !strstr(buf, "\"pid\":812") || !strstr(buf, "\"rule_id\":3"))
		fail_msg("json got %s, want rule, verdict, pid, rule_id fields", buf);
	for (const char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			fail_msg("json got raw byte 0x%02x at %zd", (unsigned char)*c, c - buf);
	assert_int_equal(logger_format_json(&ev, "T", buf, 40), -E2BIG);

	cfg.target = path;
	assert_int_equal(logger_open(&lg, &cfg), 0);
	assert_int_equal(logger_log(lg, &ev, 0), 0);
	assert_int_equal(logger_message(lg, LOG_NOTICE, "policy reloaded: %d rules\n", 4), 0);
	logger_close(lg);
	text = read_all(path);
	assert_int_equal(count_lines(text, "{\"time\":"), 2);
	if (!strstr(text, "\"message\":\"policy reloaded: 4 rules_\"}\n"))
		fail_msg("json got %s, want the agent message as one line", text);
}

/* test_ratelimit - burst lines per window, then one summary when the window ends */
static void test_ratelimit(void **state)
{
	const struct request a = { .daemon = "sshd", .client_addr = "192.0.2.7" };
	const struct request b = { .daemon = "sshd", .client_addr = "192.0.2.8" };
	struct logger_config cfg = { .burst = 2, .interval_ms = 1000, .slots = 64 };
	struct logger_event ea = { .req = &a, .pid = 812, .refused = true, .rule_id = 5, .priority = -1 };
	struct logger_event eb = { .req = &b, .pid = 812, .refused = true, .rule_id = 5, .priority = -1 };
	struct logger_event ea6 = ea;
	struct logger_stats st;
	const char *path = temp_path("rl.log"), *text;
	struct logger *lg;

	ea6.rule_id = 6;
	cfg.target = path;
	assert_int_equal(logger_open(&lg, &cfg), 0);
	assert_true(logger_fd(lg) >= 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(logger_log(lg, &ea, 100 + i), 0);
	assert_int_equal(logger_log(lg, &eb, 200), 0);	/* another client: own window */
	assert_int_equal(logger_log(lg, &ea6, 200), 0);	/* another rule: own window */
	assert_int_equal(logger_process(lg, 1099), 0);	/* window not over yet */
	text = read_all(path);
	if (count_lines(text, "refused connect from 192.0.2.7") != 3 || count_lines(text, "suppressed") != 0)
		fail_msg("before window end got:\n%s\nwant 3 lines for 192.0.2.7 and no summary", text);
	assert_int_equal(logger_process(lg, 1100), 0);
	text = read_all(path);
	if (count_lines(text, "sshd[812]: 3 similar messages suppressed (client 192.0.2.7)") != 1)
		fail_msg("at window end got:\n%s\nwant one summary of 3", text);
	assert_int_equal(logger_log(lg, &ea, 1200), 0);	/* new window: logged again */
	logger_get_stats(lg, &st);
	logger_close(lg);
	text = read_all(path);
	assert_int_equal(count_lines(text, "refused connect from 192.0.2.7 (192.0.2.7)"), 4);
	assert_int_equal(count_lines(text, "suppressed"), 1);
	if (st.suppressed != 3 || st.logged != 6)
		fail_msg("stats got suppressed %lu logged %lu, want 3 and 6", (unsigned long)st.suppressed,
			 (unsigned long)st.logged);
}

/* test_flood_bounded - a million distinct sources: fixed table, evictions, global cap holds */
static void test_flood_bounded(void **state)
{
	struct logger_config cfg = { .burst = 1, .interval_ms = 1000, .slots = 256, .global_burst = 100 };
	struct logger_event ev = { .pid = 812, .refused = true, .rule_id = 9, .priority = -1 };
	const char *path = temp_path("flood.log"), *text;
	struct logger_stats st;
	struct logger *lg;
	uint64_t start = logger_now_ms();

	cfg.target = path;
	assert_int_equal(logger_open(&lg, &cfg), 0);
	for (uint32_t i = 0; i < 1000000; i++) {
		char addr[32];
		struct request req = { .daemon = "sshd", .client_addr = addr };

		snprintf(addr, sizeof(addr), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		ev.req = &req;
		assert_int_equal(logger_log(lg, &ev, 10 + i / 100000), 0);	/* all within 1 s */
	}
	assert_int_equal(logger_process(lg, 2000), 0);
	logger_get_stats(lg, &st);
	logger_close(lg);
	text = read_all(path);
	print_message("1000000 sources: %lu logged, %lu suppressed, %lu evicted in %lu ms\n",
		      (unsigned long)st.logged, (unsigned long)st.suppressed, (unsigned long)st.evicted,
		      (unsigned long)(logger_now_ms() - start));
	assert_int_equal(count_lines(text, "refused connect from"), 100);
	assert_int_equal(count_lines(text, "999900 messages suppressed (global rate limit)"), 1);
	assert_true(st.evicted >= 1000000 - 256);
}

/* test_syslog_fallback - no syslog socket: one note, then lines on stderr */
static void test_syslog_fallback(void **state)
{
	const struct request req = { .daemon = "vsftpd", .client_addr = "192.0.2.44" };
	struct logger_config cfg = { .syslog_socket = "/nonexistent/dev-log", .journal_socket = "" };
	struct logger_event ev = { .req = &req, .pid = 77, .refused = true, .priority = -1 };
	const char *path = temp_path("stderr.log"), *text;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), saved = dup(2);
	struct logger *lg;
	int rc;

	dup2(fd, 2);
	close(fd);
	rc = logger_open(&lg, &cfg);
	if (!rc) {
		logger_log(lg, &ev, 0);
		logger_log(lg, &ev, 1);
	}
	dup2(saved, 2);
	close(saved);
	assert_int_equal(rc, 0);
	assert_string_equal(logger_target_name(lg), "stderr");
	logger_close(lg);
	text = read_all(path);
	assert_int_equal(count_lines(text, "no syslog socket at /nonexistent/dev-log, logging to stderr"), 1);
	assert_int_equal(count_lines(text, "vsftpd[77]: refused connect from 192.0.2.44 (192.0.2.44)"), 2);
}

/* test_journal - with a journal socket the default target is the journal, fields and all */
static void test_journal(void **state)
{
	const struct request req = { .daemon = "sshd", .client_addr = "192.0.2.45", .client_name = "j.example" };
	struct logger_event ev = { .req = &req, .pid = 78, .refused = true, .rule_id = 2,
				   .rule_file = "/etc/hosts.deny", .rule_line = 2, .priority = -1 };
	struct stat st;
	struct logger *lg;

	if (stat("/run/systemd/journal/socket", &st) < 0) {
		print_message("# skip: no journal socket (/run/systemd/journal/socket) on this machine\n");
		skip();
	}
	assert_int_equal(logger_open(&lg, NULL), 0);
	assert_string_equal(logger_target_name(lg), "journal");
	assert_int_equal(logger_log(lg, &ev, 0), 0);
	logger_close(lg);
}

/* test_open_errors - unwritable FILE target is an error, not a silent drop */
static void test_open_errors(void **state)
{
	struct logger_config cfg = { .target = "/nonexistent-dir/x.log" };
	struct logger *lg = (struct logger *)1;

	assert_int_equal(logger_open(&lg, &cfg), -ENOENT);
	assert_null(lg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_text),
		cmocka_unit_test(test_fail2ban_regex),
		cmocka_unit_test(test_severity),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_ratelimit),
		cmocka_unit_test(test_flood_bounded),
		cmocka_unit_test(test_syslog_fallback),
		cmocka_unit_test(test_journal),
		cmocka_unit_test(test_open_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
