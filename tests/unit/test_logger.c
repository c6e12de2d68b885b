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
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
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
	uint64_t count, span_ms;	/* an aggregated line: connections it stands for */
};

static const struct text_case text_cases[] = {
	{ "refused, name known", { .daemon = "sshd", .client_addr = "192.0.2.7", .client_name = "evil.example" },
	  true, "refused connect from evil.example (192.0.2.7)", 0, 0 },
	{ "refused, unknown name", { .daemon = "sshd", .client_addr = "192.0.2.7", .client_name = "unknown" },
	  true, "refused connect from 192.0.2.7 (192.0.2.7)", 0, 0 },
	{ "refused, paranoid", { .daemon = "sshd", .client_addr = "2001:db8::5", .client_name = "paranoid" },
	  true, "refused connect from 2001:db8::5 (2001:db8::5)", 0, 0 },
	{ "refused, with user", { .daemon = "in.telnetd", .client_addr = "192.0.2.8", .client_name = "h.example", .user = "bob" },
	  true, "refused connect from bob@h.example (192.0.2.8)", 0, 0 },
	{ "connect as tcpd", { .daemon = "sshd", .client_addr = "192.0.2.9", .client_name = "ok.example" },
	  false, "connect from ok.example", 0, 0 },
	{ "hostile name", { .daemon = "sshd", .client_addr = "192.0.2.7", .client_name = "a b\nsshd[1]: refused connect from x (6.6.6.6)" },
	  true, "refused connect from a_b_sshd[1]:_refused_connect_from_x_(6.6.6.6) (192.0.2.7)", 0, 0 },
	{ "hostile user", { .daemon = "sshd", .client_addr = "192.0.2.7", .user = "r\x1b[2Joot\r" },
	  true, "refused connect from r_[2Joot_@192.0.2.7 (192.0.2.7)", 0, 0 },
	{ "nothing known", { 0 }, true, "refused connect from unknown (unknown)", 0, 0 },
	{ "aggregated: the count after tcpd's text", { .daemon = "sshd", .client_addr = "192.0.2.7" },
	  true, "refused connect from 192.0.2.7 (192.0.2.7) (57 times in the last 60s)", 57, 60000 },
	{ "aggregated: seconds rounded up", { .daemon = "sshd", .client_addr = "2001:db8::5" },
	  true, "refused connect from 2001:db8::5 (2001:db8::5) (2 times in the last 2s)", 2, 1200 },
	{ "aggregated: one is a plain line", { .daemon = "sshd", .client_addr = "192.0.2.7" },
	  true, "refused connect from 192.0.2.7 (192.0.2.7)", 1, 5000 },
};

/* test_format_text - tcpd's line text for each named case */
static void test_format_text(void **state)
{
	int failures = 0;

	for (size_t i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
		const struct text_case *c = &text_cases[i];
		struct logger_event ev = { .req = &c->req, .pid = 812, .refused = c->refused, .priority = -1,
					   .count = c->count, .span_ms = c->span_ms };
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
			struct logger_event ev = { .req = &c->req, .pid = 812, .refused = c->refused,
						   .priority = -1, .count = c->count, .span_ms = c->span_ms };
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
	assert_int_equal(logger_flush(lg, 5000), 0);
	text = read_all(path);
	if (count_lines(text, "refused connect from 192.0.2.7") != 3 || count_lines(text, "suppressed") != 0)
		fail_msg("before window end got:\n%s\nwant 3 lines for 192.0.2.7 and no summary", text);
	assert_int_equal(logger_process(lg, 1100), 0);
	assert_int_equal(logger_flush(lg, 5000), 0);
	text = read_all(path);
	if (count_lines(text, "sshd[812]: 3 similar messages suppressed (client 192.0.2.7)") != 1)
		fail_msg("at window end got:\n%s\nwant one summary of 3", text);
	assert_int_equal(logger_log(lg, &ea, 1200), 0);	/* new window: logged again */
	assert_int_equal(logger_flush(lg, 5000), 0);
	logger_get_stats(lg, &st);
	logger_close(lg);
	text = read_all(path);
	assert_int_equal(count_lines(text, "refused connect from 192.0.2.7 (192.0.2.7)"), 4);
	assert_int_equal(count_lines(text, "suppressed"), 1);
	if (st.suppressed != 3 || st.logged != 6)
		fail_msg("stats got suppressed %lu logged %lu, want 3 and 6", (unsigned long)st.suppressed,
			 (unsigned long)st.logged);
}

/* test_flood_bounded - a million distinct sources: fixed table, evictions, the global bucket holds */
static void test_flood_bounded(void **state)
{
	struct logger_config cfg = { .burst = 1, .interval_ms = 1000, .slots = 256, .rate = 1, .rate_burst = 100 };
	struct logger_event ev = { .pid = 812, .refused = true, .rule_id = 9, .priority = -1 };
	const char *path = temp_path("flood.log"), *text;
	struct logger_stats st;
	struct logger *lg;
	uint64_t start = monotonic_ms();

	cfg.target = path;
	assert_int_equal(logger_open(&lg, &cfg), 0);
	for (uint32_t i = 0; i < 1000000; i++) {
		char addr[32];
		struct request req = { .daemon = "sshd", .client_addr = addr };

		snprintf(addr, sizeof(addr), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		ev.req = &req;
		assert_int_equal(logger_log(lg, &ev, 10 + i / 100000), 0);	/* all within 10 ms */
	}
	assert_int_equal(logger_process(lg, 2000), 0);
	assert_int_equal(logger_flush(lg, 5000), 0);
	logger_get_stats(lg, &st);
	logger_close(lg);
	text = read_all(path);
	print_message("1000000 sources: %lu logged, %lu suppressed (global), %lu evicted in %lu ms\n",
		      (unsigned long)st.logged, (unsigned long)st.suppressed_global, (unsigned long)st.evicted,
		      (unsigned long)(monotonic_ms() - start));
	assert_int_equal(count_lines(text, "refused connect from"), 100);
	assert_int_equal(count_lines(text, "bpfwrap["), 1);
	assert_int_equal(count_lines(text, "999900 connection log lines suppressed in the last 2 s (global rate 1/s"), 1);
	assert_int_equal(st.suppressed_global, 999900);
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
		logger_flush(lg, 5000);
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

/* test_journal_native - the journal's native protocol on a socket of our own:
 * the fields, and the daemon's PID in SCM_CREDENTIALS (journald files the
 * line under the daemon's _PID, _COMM and unit) where we may send it (root:
 * CAP_SYS_ADMIN), else our own */
static void test_journal_native(void **state)
{
	const struct request req = { .daemon = "sshd", .client_addr = "192.0.2.46",
				     .client_name = "unknown" };
	struct logger_event ev = { .req = &req, .refused = true, .rule_id = 3,
				   .rule_file = "/etc/hosts.deny", .rule_line = 3, .priority = -1 };
	struct logger_config cfg = { .syslog_socket = "/nonexistent/dev-log" };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	char buf[8192], path[300];
	struct iovec iov = { buf, sizeof(buf) - 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.space,
			      .msg_controllen = sizeof(ctl.space) };
	struct ucred cred = { 0 };
	struct logger *lg;
	int fd, one = 1;
	pid_t daemon_pid;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/journal.socket", tmpdir);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* the "daemon": a child that lives until we are done */
	daemon_pid = fork();
	assert_true(daemon_pid >= 0);
	if (daemon_pid == 0) {
		alarm(10);
		pause();
		_exit(0);
	}
	ev.pid = daemon_pid;
	cfg.journal_socket = path;
	assert_int_equal(logger_open(&lg, &cfg), 0);
	assert_string_equal(logger_target_name(lg), "journal");
	assert_int_equal(logger_log(lg, &ev, 0), 0);
	logger_close(lg);	/* drains the writer */
	n = recvmsg(fd, &msg, MSG_DONTWAIT);
	kill(daemon_pid, SIGKILL);
	waitpid(daemon_pid, NULL, 0);
	close(fd);
	if (n <= 0)
		fail_msg("journal datagram: got %s, want one", n < 0 ? strerror(errno) : "nothing");
	buf[n] = '\0';
	if (!strstr(buf, "MESSAGE=refused connect from 192.0.2.46 (192.0.2.46)\n") ||
	    !strstr(buf, "SYSLOG_IDENTIFIER=sshd\n") || !strstr(buf, "RULE_ID=3\n"))
		fail_msg("journal fields: got \"%s\", want MESSAGE, SYSLOG_IDENTIFIER=sshd, RULE_ID=3", buf);
	snprintf(path, sizeof(path), "SYSLOG_PID=%d\n", (int)daemon_pid);
	if (!strstr(buf, path))
		fail_msg("journal fields: got \"%s\", want %s", buf, path);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
	if (cred.pid != (geteuid() == 0 ? daemon_pid : getpid()))
		fail_msg("sender's credentials: got pid %d, want %d (%s)", (int)cred.pid,
			 (int)(geteuid() == 0 ? daemon_pid : getpid()),
			 geteuid() == 0 ? "the daemon's" : "ours: no CAP_SYS_ADMIN");
}

/* test_open_errors - unwritable FILE target is an error, not a silent drop */
static void test_open_errors(void **state)
{
	struct logger_config cfg = { .target = "/nonexistent-dir/x.log" };
	struct logger *lg = (struct logger *)1;

	assert_int_equal(logger_open(&lg, &cfg), -ENOENT);
	assert_null(lg);
}

/* test_file_refusals - --log FILE is opened as log daemons do: a planted
 * symbolic link, a hard link, a FIFO, a directory, a directory others may
 * write without the sticky bit, a file or directory of another user are
 * refused (the file the link names is not touched); a sticky directory and
 * the null device are fine */
static void test_file_refusals(void **state)
{
	char base[256], target[300], link_path[300], dir[300], path[400], why[512];
	struct logger_config cfg = { 0 };
	struct logger *lg;
	struct stat st;
	int fd;
	bool root = geteuid() == 0;

	snprintf(base, sizeof(base), "%s/refusals", tmpdir);
	assert_int_equal(mkdir(base, 0755), 0);
	snprintf(target, sizeof(target), "%s/precious", base);
	fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);

	/* a symbolic link planted where the log goes */
	snprintf(link_path, sizeof(link_path), "%s/link.log", base);
	assert_int_equal(symlink(target, link_path), 0);
	cfg.target = link_path;
	lg = (struct logger *)1;
	assert_int_equal(logger_open(&lg, &cfg), -ELOOP);
	assert_null(lg);
	assert_int_equal(logger_file_open(link_path, why, sizeof(why)), -ELOOP);
	assert_non_null(strstr(why, "symbolic link"));
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 0);

	/* a hard link: another name of any file */
	snprintf(path, sizeof(path), "%s/hard.log", base);
	assert_int_equal(link(target, path), 0);
	assert_int_equal(logger_file_open(path, why, sizeof(why)), -EMLINK);
	assert_non_null(strstr(why, "hard links"));

	/* a FIFO: refused without blocking (alarm: a hang fails) */
	snprintf(path, sizeof(path), "%s/fifo.log", base);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(10);
	assert_int_equal(logger_file_open(path, why, sizeof(why)), -EINVAL);
	alarm(0);
	assert_non_null(strstr(why, "not a regular file (fifo)"));

	/* a directory */
	assert_int_equal(logger_file_open(base, why, sizeof(why)), -EISDIR);

	/* a directory everyone may write, without the sticky bit */
	snprintf(dir, sizeof(dir), "%s/open", base);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(chmod(dir, 0777), 0);
	snprintf(path, sizeof(path), "%s/bpfwrap.log", dir);
	assert_int_equal(logger_file_open(path, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "without the sticky bit"));
	assert_int_equal(access(path, F_OK), -1);	/* nothing created there */

	/* the same with the sticky bit (like /tmp): accepted, file created 0640 */
	assert_int_equal(chmod(dir, 01777), 0);
	fd = logger_file_open(path, why, sizeof(why));
	if (fd < 0)
		fail_msg("sticky directory: got %d (%s), want an fd", fd, why);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640 & ~umask(022));
	close(fd);
	umask(022);

	/* a subdirectory of a directory others may write: refused too (any level) */
	assert_int_equal(chmod(dir, 0777), 0);
	snprintf(path, sizeof(path), "%s/sub", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/sub/x.log", dir);
	assert_int_equal(logger_file_open(path, why, sizeof(why)), -EPERM);

	if (root) {
		/* as root: a file, or a directory, that belongs to another user */
		snprintf(path, sizeof(path), "%s/theirs.log", base);
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(chown(path, 65534, 65534), 0);
		assert_int_equal(logger_file_open(path, why, sizeof(why)), -EPERM);
		assert_non_null(strstr(why, "neither root nor us"));
		snprintf(dir, sizeof(dir), "%s/theirs", base);
		assert_int_equal(mkdir(dir, 0755), 0);
		assert_int_equal(chown(dir, 65534, 65534), 0);
		snprintf(path, sizeof(path), "%s/x.log", dir);
		assert_int_equal(logger_file_open(path, why, sizeof(why)), -EPERM);
		/* group-writable by a group other than root */
		assert_int_equal(chown(dir, 0, 65534), 0);
		assert_int_equal(chmod(dir, 0775), 0);
		assert_int_equal(logger_file_open(path, why, sizeof(why)), -EPERM);
		assert_non_null(strstr(why, "writable by group 65534"));
	} else {
		print_message("# not root: the other-owner cases are skipped\n");
	}

	/* the null device is a fine place for lines nobody wants */
	fd = logger_file_open("/dev/null", why, sizeof(why));
	assert_true(fd >= 0);
	close(fd);
}

/* test_global_rate - a random-source flood over a minute (every source new,
 * so the per-client limit never fires): at most rate * 60 + burst lines, and
 * one counted summary for the minute */
static void test_global_rate(void **state)
{
	struct logger_config cfg = { .interval_ms = 60000 };	/* defaults: 20/s, bursts of 200 */
	struct logger_event ev = { .pid = 812, .refused = true, .rule_id = 9, .priority = -1 };
	const char *path = temp_path("global.log"), *text;
	uint64_t t0 = monotonic_ms(), lines;
	struct logger_stats st;
	struct logger *lg;
	char want[128];

	cfg.target = path;
	assert_int_equal(logger_open(&lg, &cfg), 0);
	for (uint32_t i = 0; i < 600000; i++) {	/* 10,000 SYNs per second for 60 s */
		char addr[32];
		struct request req = { .daemon = "sshd", .client_addr = addr };

		snprintf(addr, sizeof(addr), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		ev.req = &req;
		assert_int_equal(logger_log(lg, &ev, t0 + i / 10), 0);
	}
	/* the summary is due an interval after the first suppression (after the burst) */
	assert_int_equal(logger_process(lg, t0 + 61000), 0);
	assert_int_equal(logger_flush(lg, 5000), 0);
	logger_get_stats(lg, &st);
	text = read_all(path);
	lines = (uint64_t)count_lines(text, "refused connect from");
	print_message("600000 distinct sources in 60 s: %llu lines, %llu suppressed (global)\n",
		      (unsigned long long)lines, (unsigned long long)st.suppressed_global);
	if (lines > LOGGER_DEFAULT_RATE * 60 + LOGGER_DEFAULT_RATE_BURST || lines < LOGGER_DEFAULT_RATE * 59)
		fail_msg("got %llu connection lines in a minute, want at most %d and about %d",
			 (unsigned long long)lines, LOGGER_DEFAULT_RATE * 60 + LOGGER_DEFAULT_RATE_BURST,
			 LOGGER_DEFAULT_RATE * 60);
	snprintf(want, sizeof(want), "]: %llu connection log lines suppressed in the last 61 s (global rate 20/s",
		 (unsigned long long)(600000 - lines));
	if (count_lines(text, want) != 1 || count_lines(text, "suppressed") != 1)
		fail_msg("got:\n%.2000s\nwant one summary line \"%s\"", text + (strlen(text) > 2000 ? strlen(text) - 2000 : 0), want);
	assert_int_equal(st.suppressed_global, 600000 - lines);
	logger_close(lg);
}

/* A logger left to its stuck writer thread stays reachable from here. */
static struct logger *volatile abandoned;

/* test_never_blocks - a target that takes nothing (stderr is a full pipe
 * nobody reads) never blocks the caller: lines beyond the queue are counted
 * as lost, logger_close() returns within LOGGER_CLOSE_WAIT_MS, and the loss
 * is reported once the target takes lines again */
static void test_never_blocks(void **state)
{
	const struct request req = { .daemon = "sshd", .client_addr = "192.0.2.9" };
	struct logger_config cfg = { .target = "stderr", .no_ratelimit = true, .no_global_rate = true,
				     .queue_len = 16 };
	struct logger_event ev = { .req = &req, .pid = 812, .refused = true, .priority = -1 };
	struct logger_stats st;
	struct logger *lg;
	int pfd[2], saved = dup(2);
	uint64_t t0, spent;
	char junk[4096];

	assert_int_equal(pipe2(pfd, O_NONBLOCK), 0);
	while (write(pfd[1], junk, sizeof(junk)) > 0)	/* fill the pipe */
		;
	assert_int_equal(fcntl(pfd[1], F_SETFL, 0), 0);	/* and make its writer block */
	dup2(pfd[1], 2);
	close(pfd[1]);
	alarm(30);
	assert_int_equal(logger_open(&lg, &cfg), 0);
	t0 = monotonic_ms();
	for (int i = 0; i < 5000; i++)
		assert_int_equal(logger_log(lg, &ev, t0), 0);
	spent = monotonic_ms() - t0;
	assert_int_equal(logger_flush(lg, 100), -ETIMEDOUT);
	logger_get_stats(lg, &st);
	t0 = monotonic_ms();
	abandoned = lg;
	logger_close(lg);	/* gives up on the writer */
	uint64_t close_ms = monotonic_ms() - t0;

	/* let the stuck writer finish into the pipe, then give stderr back */
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };

		if (poll(&p, 1, 300) <= 0)
			break;
		if (read(pfd[0], junk, sizeof(junk)) <= 0)
			break;
	}
	dup2(saved, 2);
	close(saved);
	close(pfd[0]);
	alarm(0);
	print_message("5000 lines to a blocked target: %llu ms in logger_log, %llu lost, close %llu ms\n",
		      (unsigned long long)spent, (unsigned long long)st.lost, (unsigned long long)close_ms);
	assert_true(spent < 2000);
	assert_true(st.lost >= 5000 - 16 - 1);
	assert_true(close_ms < LOGGER_CLOSE_WAIT_MS + 1000);
}

/* test_loss_reported - lines lost to a stalled target are reported once it takes lines again */
static void test_loss_reported(void **state)
{
	const struct request req = { .daemon = "sshd", .client_addr = "192.0.2.10" };
	struct logger_config cfg = { .target = "stderr", .no_ratelimit = true, .no_global_rate = true,
				     .queue_len = 4, .interval_ms = 200 };
	struct logger_event ev = { .req = &req, .pid = 812, .refused = true, .priority = -1 };
	int pfd[2], saved = dup(2);
	struct logger *lg;
	char buf[1 << 16];
	size_t len = 0;
	ssize_t n;

	assert_int_equal(pipe2(pfd, O_NONBLOCK), 0);
	while (write(pfd[1], buf, sizeof(buf)) > 0)
		;
	assert_int_equal(fcntl(pfd[1], F_SETFL, 0), 0);
	dup2(pfd[1], 2);
	close(pfd[1]);
	alarm(30);
	assert_int_equal(logger_open(&lg, &cfg), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(logger_log(lg, &ev, monotonic_ms()), 0);
	/* the reader wakes up: drain what was there */
	while (read(pfd[0], buf, sizeof(buf)) > 0)
		;
	assert_int_equal(logger_flush(lg, 5000), 0);
	usleep(250 * 1000);	/* the report interval */
	assert_int_equal(logger_process(lg, monotonic_ms()), 0);
	assert_int_equal(logger_flush(lg, 5000), 0);
	logger_close(lg);
	dup2(saved, 2);
	close(saved);
	while ((n = read(pfd[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(pfd[0]);
	alarm(0);
	if (!strstr(buf, "log lines lost in the last") || !strstr(buf, "did not keep up"))
		fail_msg("got:\n%s\nwant the line \"N log lines lost in the last S s: the log target did not keep up\"", buf);
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
		cmocka_unit_test(test_journal_native),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_file_refusals),
		cmocka_unit_test(test_global_rate),
		cmocka_unit_test(test_never_blocks),
		cmocka_unit_test(test_loss_reported),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
