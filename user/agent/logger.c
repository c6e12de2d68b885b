/*
 * logger.c - tcpd-style connection log lines, to the journal, syslog(3),
 * stderr or a file, with a bounded per-(rule, client) rate limit (logger.h).
 *
 * Errors: 0 or -errno; a target that refuses a line is counted in
 * write_errors. This module prints only its own log output (and, once, the
 * note that there is no syslog socket).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <systemd/sd-journal.h>

#include "expand.h"
#include "logger.h"

#define WAYS 4			/* rate-limit table associativity */
#define NAME_MAX_LEN 64		/* daemon names kept in the table */
#define LINE_MAX_LEN 2048	/* longest line we write: fields are cut to 127 */

enum target { T_JOURNAL, T_SYSLOG, T_STDERR, T_FILE };

/* One (rule, client address) rate-limit window. */
struct rl_entry {
	uint64_t window_start;	/* ms, first event of the current window */
	uint64_t last_used;	/* ms, for LRU eviction */
	uint32_t rule_id;
	uint32_t count;		/* events in this window */
	uint32_t suppressed;	/* events not written in this window */
	pid_t pid;
	bool used;
	char addr[64];
	char daemon[NAME_MAX_LEN];
};

struct logger {
	enum target target;
	enum logger_format format;
	int facility, level;
	int fd;			/* T_STDERR, T_FILE */
	int timer_fd;
	char *path;		/* T_FILE */
	char hostname[256];
	char ident[NAME_MAX_LEN + 16];	/* syslog(3) ident "daemon[pid]", must outlive openlog */
	bool no_ratelimit;
	unsigned burst, global_burst;
	uint64_t interval;
	struct rl_entry *table;
	size_t n_sets;
	uint64_t armed;		/* timer expiry in force, 0 = none */
	uint64_t g_start;	/* global window */
	uint32_t g_count, g_suppressed;
	struct logger_stats stats;
};

/* String builder that never overflows: `over` records a cut. */
struct sbuf {
	char *p;
	size_t size, len;
	bool over;
};

/* sb_printf - append formatted text */
static void sb_printf(struct sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->over)
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->p + sb->len, sb->size - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sb->size - sb->len) {
		sb->over = true;
		sb->p[sb->len] = 0;
		return;
	}
	sb->len += (size_t)n;
}

/* sb_json_string - append s as a quoted JSON string; control and non-ASCII bytes as \u00XX */
static void sb_json_string(struct sbuf *sb, const char *s)
{
	sb_printf(sb, "\"");
	for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c && !sb->over; c++) {
		if (*c == '"' || *c == '\\')
			sb_printf(sb, "\\%c", *c);
		else if (*c == '\n')
			sb_printf(sb, "\\n");
		else if (*c == '\r')
			sb_printf(sb, "\\r");
		else if (*c == '\t')
			sb_printf(sb, "\\t");
		else if (*c < 0x20 || *c >= 0x7f)
			sb_printf(sb, "\\u%04x", *c);
		else
			sb_printf(sb, "%c", *c);
	}
	sb_printf(sb, "\"");
}

/* logger_now_ms - CLOCK_MONOTONIC in milliseconds */
uint64_t logger_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* logger_sanitize - copy src to dst[size], every byte outside '!'..'~' as '_'; -E2BIG if cut */
int logger_sanitize(const char *src, char *dst, size_t size)
{
	size_t i = 0;

	if (!size)
		return -E2BIG;
	for (; src[i] && i + 1 < size; i++)
		dst[i] = src[i] > ' ' && src[i] <= '~' ? src[i] : '_';
	dst[i] = 0;
	return src[i] ? -E2BIG : 0;
}

/* field - a request field as tcpd shows it, sanitized into buf */
static const char *field(const char *v, char *buf, size_t size)
{
	logger_sanitize(v && *v ? v : "unknown", buf, size);
	return buf;
}

/* logger_format_text - "refused connect from CLIENT (ADDR)" / "connect from CLIENT", sanitized */
int logger_format_text(const struct logger_event *ev, char *buf, size_t size)
{
	char client[EXPAND_INFO_MAX + 1], client_s[EXPAND_INFO_MAX + 1], addr[POLICY_FIELD_MAX + 1];
	int n;

	if (!ev || !ev->req || !buf || !size)
		return -EINVAL;
	expand_client(ev->req, client, sizeof(client));
	logger_sanitize(client, client_s, sizeof(client_s));
	if (ev->refused)
		n = snprintf(buf, size, "refused connect from %s (%s)", client_s,
			     field(ev->req->client_addr, addr, sizeof(addr)));
	else
		n = snprintf(buf, size, "connect from %s", client_s);
	return n < 0 || (size_t)n >= size ? -E2BIG : 0;
}

/* time_iso - local time as 2024-05-01T12:00:00+0200 */
static void time_iso(char *buf, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	if (!strftime(buf, size, "%Y-%m-%dT%H:%M:%S%z", &tm))
		buf[0] = 0;
}

/* json_event - the JSON object for ev (or, ev == NULL, for a plain message) into sb */
static void json_event(struct sbuf *sb, const char *time_text, const char *daemon, pid_t pid,
		       const struct logger_event *ev, const char *message, uint32_t suppressed)
{
	sb_printf(sb, "{\"time\":");
	sb_json_string(sb, time_text);
	sb_printf(sb, ",\"daemon\":");
	sb_json_string(sb, daemon);
	sb_printf(sb, ",\"pid\":%ld", (long)pid);
	if (ev) {
		char client[EXPAND_INFO_MAX + 1];
		const struct request *r = ev->req;

		expand_client(r, client, sizeof(client));
		sb_printf(sb, ",\"verdict\":\"%s\",\"client\":", ev->refused ? "refused" : "connect");
		sb_json_string(sb, client);
		sb_printf(sb, ",\"client_addr\":");
		sb_json_string(sb, r->client_addr && *r->client_addr ? r->client_addr : "unknown");
		sb_printf(sb, ",\"client_name\":");
		sb_json_string(sb, r->client_name && *r->client_name ? r->client_name : "unknown");
		sb_printf(sb, ",\"user\":");
		sb_json_string(sb, r->user && *r->user ? r->user : "unknown");
		sb_printf(sb, ",\"rule_id\":%u,\"rule\":", ev->rule_id);
		if (ev->rule_file) {
			char rule[512];

			snprintf(rule, sizeof(rule), "%s:%u", ev->rule_file, ev->rule_line);
			sb_json_string(sb, rule);
		} else {
			sb_printf(sb, "null");
		}
	}
	if (suppressed)
		sb_printf(sb, ",\"suppressed\":%u", suppressed);
	sb_printf(sb, ",\"message\":");
	sb_json_string(sb, message);
	sb_printf(sb, "}");
}

/* logger_format_json - the event as one JSON object (no newline), strings escaped */
int logger_format_json(const struct logger_event *ev, const char *time_text, char *buf, size_t size)
{
	char message[LINE_MAX_LEN];
	struct sbuf sb = { buf, size, 0, false };
	int err;

	if (!ev || !ev->req || !buf || !size)
		return -EINVAL;
	err = logger_format_text(ev, message, sizeof(message));
	if (err)
		return err;
	buf[0] = 0;
	json_event(&sb, time_text, ev->req->daemon && *ev->req->daemon ? ev->req->daemon : "unknown",
		   ev->pid, ev, message, 0);
	return sb.over ? -E2BIG : 0;
}

/* priority_of - facility|level for an event: the severity option, else the configured default */
static int priority_of(const struct logger *lg, int priority, int default_level)
{
	if (priority < 0)
		return lg->facility | default_level;
	if (!(priority & LOG_FACMASK))
		return lg->facility | priority;
	return priority;
}

/* emit - write one line for daemon[pid] to the target; ev (may be NULL) adds structured fields */
static int emit(struct logger *lg, const char *daemon, pid_t pid, int priority,
		const struct logger_event *ev, const char *message, uint32_t suppressed)
{
	char line[LINE_MAX_LEN * 2], name[NAME_MAX_LEN], stamp[64];
	struct sbuf sb = { line, sizeof(line), 0, false };
	int err = 0;

	logger_sanitize(daemon && *daemon ? daemon : "unknown", name, sizeof(name));
	if (pid <= 0)
		pid = 0;
	if (lg->target == T_JOURNAL) {
		char addr[POLICY_FIELD_MAX + 1] = "", cname[POLICY_FIELD_MAX + 1] = "";
		char user[POLICY_FIELD_MAX + 1] = "", rule[512] = "";

		if (ev) {
			field(ev->req->client_addr, addr, sizeof(addr));
			field(ev->req->client_name, cname, sizeof(cname));
			field(ev->req->user, user, sizeof(user));
			if (ev->rule_file)
				snprintf(rule, sizeof(rule), "%s:%u", ev->rule_file, ev->rule_line);
		}
		err = sd_journal_send("MESSAGE=%s", message, "PRIORITY=%d", LOG_PRI(priority),
				      "SYSLOG_FACILITY=%d", LOG_FAC(priority), "SYSLOG_IDENTIFIER=%s", name,
				      "SYSLOG_PID=%ld", (long)pid, "DAEMON=%s", name,
				      "CLIENT_ADDR=%s", addr, "CLIENT_NAME=%s", cname, "CLIENT_USER=%s", user,
				      "RULE=%s", rule, "RULE_ID=%u", ev ? ev->rule_id : 0,
				      "VERDICT=%s", !ev ? "" : ev->refused ? "refused" : "connect",
				      "SUPPRESSED=%u", suppressed, NULL);
		if (err < 0)
			lg->stats.write_errors++;
		else
			lg->stats.logged++;
		return err < 0 ? err : 0;
	}
	if (lg->format == LOGGER_JSON) {
		time_iso(stamp, sizeof(stamp));
		json_event(&sb, stamp, name, pid, ev, message, suppressed);
	} else if (lg->target == T_FILE) {
		time_t now = time(NULL);
		struct tm tm;

		localtime_r(&now, &tm);
		if (!strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm))
			stamp[0] = 0;
		sb_printf(&sb, "%s %s %s[%ld]: %s", stamp, lg->hostname, name, (long)pid, message);
	} else if (lg->target == T_STDERR) {
		sb_printf(&sb, "%s[%ld]: %s", name, (long)pid, message);
	} else {
		sb_printf(&sb, "%s", message);
	}
	if (sb.over)
		return -E2BIG;	/* cannot happen: every field is cut to 127 */
	if (lg->target == T_SYSLOG) {
		/* ident "daemon[pid]" so the line reads "sshd[812]: refused connect ..." */
		snprintf(lg->ident, sizeof(lg->ident), "%s[%ld]", name, (long)pid);
		openlog(lg->ident, LOG_NDELAY, lg->facility);
		syslog(priority, "%s", line);
		lg->stats.logged++;
		return 0;
	}
	sb_printf(&sb, "\n");
	/* one write(2) per line: O_APPEND keeps lines whole next to fail2ban/other writers */
	if (write(lg->fd, line, sb.len) != (ssize_t)sb.len) {
		lg->stats.write_errors++;
		return -EIO;
	}
	lg->stats.logged++;
	return 0;
}

/* arm - make the timer fire at `when` (ms) unless it already fires earlier */
static void arm(struct logger *lg, uint64_t when)
{
	struct itimerspec its = { 0 };

	if (!when)
		when = 1;
	if (lg->armed && lg->armed <= when)
		return;
	its.it_value.tv_sec = (time_t)(when / 1000);
	its.it_value.tv_nsec = (long)(when % 1000) * 1000000;
	if (timerfd_settime(lg->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		lg->armed = when;
}

/* summarize - write "N similar messages suppressed" for an entry and clear its count */
static void summarize(struct logger *lg, struct rl_entry *e)
{
	char message[256];

	snprintf(message, sizeof(message), "%u similar messages suppressed (client %s)",
		 e->suppressed, e->addr);
	emit(lg, e->daemon, e->pid, lg->facility | LOG_NOTICE, NULL, message, e->suppressed);
	e->suppressed = 0;
}

/* summarize_global - the global cap's summary line */
static void summarize_global(struct logger *lg)
{
	char message[128];

	snprintf(message, sizeof(message), "%u messages suppressed (global rate limit)", lg->g_suppressed);
	emit(lg, "bpfwrap", getpid(), lg->facility | LOG_NOTICE, NULL, message, lg->g_suppressed);
	lg->g_suppressed = 0;
}

/* hash - FNV-1a over the rule id and the address text */
static uint64_t hash(uint32_t rule_id, const char *addr)
{
	uint64_t h = 1469598103934665603ULL;

	for (int i = 0; i < 4; i++) {
		h ^= (rule_id >> (8 * i)) & 0xff;
		h *= 1099511628211ULL;
	}
	for (const unsigned char *c = (const unsigned char *)addr; *c; c++) {
		h ^= *c;
		h *= 1099511628211ULL;
	}
	return h;
}

/* lookup - the entry for (rule, addr), reusing the least recently used way if absent */
static struct rl_entry *lookup(struct logger *lg, uint32_t rule_id, const char *addr,
			       const char *daemon, pid_t pid, uint64_t now)
{
	struct rl_entry *set = &lg->table[(hash(rule_id, addr) % lg->n_sets) * WAYS];
	struct rl_entry *victim = NULL;

	for (int i = 0; i < WAYS; i++) {
		struct rl_entry *e = &set[i];

		if (e->used && e->rule_id == rule_id && !strcmp(e->addr, addr))
			return e;
		if (!victim || (victim->used && (!e->used || e->last_used < victim->last_used)))
			victim = e;
	}
	if (victim->used) {
		lg->stats.evicted++;
		if (victim->suppressed)
			summarize(lg, victim);
	}
	memset(victim, 0, sizeof(*victim));
	victim->used = true;
	victim->rule_id = rule_id;
	victim->window_start = now;
	snprintf(victim->addr, sizeof(victim->addr), "%s", addr);
	logger_sanitize(daemon, victim->daemon, sizeof(victim->daemon));
	victim->pid = pid;
	return victim;
}

/* global_allows - count one line against the global cap; false when over it */
static bool global_allows(struct logger *lg, uint64_t now)
{
	if (!lg->global_burst)
		return true;
	if (now >= lg->g_start + lg->interval) {
		if (lg->g_suppressed)
			summarize_global(lg);
		lg->g_start = now;
		lg->g_count = 0;
	}
	if (lg->g_count >= lg->global_burst) {
		lg->g_suppressed++;
		arm(lg, lg->g_start + lg->interval);
		return false;
	}
	lg->g_count++;
	return true;
}

/* logger_log - log one decision, subject to the rate limits; 0 (logged or counted) or -errno */
int logger_log(struct logger *lg, const struct logger_event *ev, uint64_t now_ms)
{
	char message[LINE_MAX_LEN], addr[64];
	const char *daemon;
	int err;

	if (!lg || !ev || !ev->req)
		return -EINVAL;
	daemon = ev->req->daemon && *ev->req->daemon ? ev->req->daemon : "unknown";
	if (!lg->no_ratelimit) {
		struct rl_entry *e;

		field(ev->req->client_addr, addr, sizeof(addr));
		e = lookup(lg, ev->rule_id, addr, daemon, ev->pid, now_ms);
		e->last_used = now_ms;
		if (now_ms >= e->window_start + lg->interval) {
			if (e->suppressed)
				summarize(lg, e);
			e->window_start = now_ms;
			e->count = 0;
		}
		if (++e->count > lg->burst) {
			e->suppressed++;
			e->pid = ev->pid;
			lg->stats.suppressed++;
			arm(lg, e->window_start + lg->interval);
			return 0;
		}
		if (!global_allows(lg, now_ms)) {
			lg->stats.suppressed++;
			return 0;
		}
	}
	err = logger_format_text(ev, message, sizeof(message));
	if (err)
		return err;
	return emit(lg, daemon, ev->pid, priority_of(lg, ev->priority, lg->level), ev, message, 0);
}

/* logger_message - the agent's own line ("bpfwrap[PID]: text"), not rate limited */
int logger_message(struct logger *lg, int level, const char *fmt, ...)
{
	char raw[LINE_MAX_LEN], message[LINE_MAX_LEN];
	va_list ap;

	if (!lg || !fmt)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);	/* a cut message is still worth writing */
	va_end(ap);
	/* keep blanks, drop control characters: one message is one line */
	for (size_t i = 0; raw[i]; i++)
		message[i] = (unsigned char)raw[i] < ' ' || raw[i] == 0x7f ? '_' : raw[i];
	message[strlen(raw)] = 0;
	return emit(lg, "bpfwrap", getpid(), LOG_DAEMON | LOG_PRI(level), NULL, message, 0);
}

/* logger_process - write summaries of windows ended by now_ms, re-arm the timer */
int logger_process(struct logger *lg, uint64_t now_ms)
{
	uint64_t expirations, next = 0;

	if (!lg)
		return -EINVAL;
	if (read(lg->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return -errno;
	for (size_t i = 0; i < lg->n_sets * WAYS; i++) {
		struct rl_entry *e = &lg->table[i];
		uint64_t end = e->window_start + lg->interval;

		if (!e->used || !e->suppressed)
			continue;
		if (now_ms >= end)
			summarize(lg, e);
		else if (!next || end < next)
			next = end;
	}
	if (lg->g_suppressed) {
		if (now_ms >= lg->g_start + lg->interval)
			summarize_global(lg);
		else if (!next || lg->g_start + lg->interval < next)
			next = lg->g_start + lg->interval;
	}
	lg->armed = 0;
	if (next) {
		arm(lg, next);
	} else {
		struct itimerspec off = { 0 };

		timerfd_settime(lg->timer_fd, TFD_TIMER_ABSTIME, &off, NULL);
	}
	return 0;
}

/* is_socket - path exists and is a socket */
static bool is_socket(const char *path)
{
	struct stat st;

	return path && *path && stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* logger_open - create a logger for cfg (NULL = defaults); -EINVAL, -ENOMEM, -errno of the FILE */
int logger_open(struct logger **out, const struct logger_config *cfg)
{
	static const struct logger_config defaults;
	const char *target, *journal, *dev_log;
	struct logger *lg;
	size_t slots;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg)
		cfg = &defaults;
	lg = calloc(1, sizeof(*lg));
	if (!lg)
		return -ENOMEM;
	lg->fd = -1;
	lg->format = cfg->format;
	lg->facility = cfg->facility ? cfg->facility : LOG_AUTHPRIV;
	lg->level = cfg->level > 0 ? cfg->level : LOG_INFO;	/* 0 is LOG_EMERG: never a default */
	lg->burst = cfg->burst ? cfg->burst : 5;
	lg->interval = cfg->interval_ms ? cfg->interval_ms : 60000;
	lg->global_burst = cfg->global_burst;
	lg->no_ratelimit = cfg->no_ratelimit;
	slots = cfg->slots ? cfg->slots : 4096;
	lg->n_sets = (slots + WAYS - 1) / WAYS;
	lg->table = calloc(lg->n_sets * WAYS, sizeof(*lg->table));
	lg->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!lg->table || lg->timer_fd < 0) {
		err = lg->table ? -errno : -ENOMEM;
		goto fail;
	}
	if (gethostname(lg->hostname, sizeof(lg->hostname) - 1) < 0)
		snprintf(lg->hostname, sizeof(lg->hostname), "localhost");
	lg->hostname[strcspn(lg->hostname, ".")] = 0;	/* syslog shows the short name */

	target = cfg->target ? cfg->target : "syslog";
	journal = cfg->journal_socket ? cfg->journal_socket : "/run/systemd/journal/socket";
	dev_log = cfg->syslog_socket ? cfg->syslog_socket : "/dev/log";
	if (!strcmp(target, "syslog")) {
		if (is_socket(journal)) {
			lg->target = T_JOURNAL;
		} else if (is_socket(dev_log)) {
			lg->target = T_SYSLOG;
		} else {
			/* the one note this module prints: where the lines go instead */
			fprintf(stderr, "bpfwrap: no syslog socket at %s, logging to stderr\n", dev_log);
			lg->target = T_STDERR;
			lg->fd = STDERR_FILENO;
		}
	} else if (!strcmp(target, "stderr")) {
		lg->target = T_STDERR;
		lg->fd = STDERR_FILENO;
	} else {
		lg->target = T_FILE;
		lg->path = strdup(target);
		lg->fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
		if (!lg->path || lg->fd < 0) {
			err = lg->path ? -errno : -ENOMEM;
			goto fail;
		}
	}
	*out = lg;
	return 0;
fail:
	logger_close(lg);
	return err;
}

/* logger_close - write pending summaries, close the target, free */
void logger_close(struct logger *lg)
{
	if (!lg)
		return;
	if (lg->table)
		for (size_t i = 0; i < lg->n_sets * WAYS; i++)
			if (lg->table[i].used && lg->table[i].suppressed)
				summarize(lg, &lg->table[i]);
	if (lg->g_suppressed)
		summarize_global(lg);
	if (lg->target == T_SYSLOG)
		closelog();
	if (lg->target == T_FILE && lg->fd >= 0)
		close(lg->fd);
	if (lg->timer_fd >= 0)
		close(lg->timer_fd);
	free(lg->table);
	free(lg->path);
	free(lg);
}

/* logger_fd - timer fd (epoll: readable) that fires when a suppression window ends */
int logger_fd(const struct logger *lg)
{
	return lg ? lg->timer_fd : -EINVAL;
}

/* logger_get_stats - counters since logger_open */
void logger_get_stats(const struct logger *lg, struct logger_stats *out)
{
	*out = lg->stats;
}

/* logger_target_name - "journal", "syslog", "stderr" or the file path actually in use */
const char *logger_target_name(const struct logger *lg)
{
	switch (lg->target) {
	case T_JOURNAL: return "journal";
	case T_SYSLOG: return "syslog";
	case T_STDERR: return "stderr";
	default: return lg->path;
	}
}

struct code_name {
	const char *name;
	int code;
};

/* Names as libwrap's severity option knows them, plus authpriv/ftp/syslog/lpr. */
static const struct code_name facilities[] = {
	{ "kern", LOG_KERN }, { "user", LOG_USER }, { "mail", LOG_MAIL }, { "daemon", LOG_DAEMON },
	{ "auth", LOG_AUTH }, { "syslog", LOG_SYSLOG }, { "lpr", LOG_LPR }, { "news", LOG_NEWS },
	{ "uucp", LOG_UUCP }, { "cron", LOG_CRON }, { "authpriv", LOG_AUTHPRIV }, { "ftp", LOG_FTP },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

static const struct code_name levels[] = {
	{ "emerg", LOG_EMERG }, { "alert", LOG_ALERT }, { "crit", LOG_CRIT }, { "err", LOG_ERR },
	{ "warning", LOG_WARNING }, { "notice", LOG_NOTICE }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
};

/* find_code - case-insensitive lookup of the first len bytes of name */
static int find_code(const struct code_name *t, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(t[i].name) == len && !strncasecmp(t[i].name, name, len))
			return t[i].code;
	return -1;
}

/* logger_parse_severity - `[facility.]level` (auth.info, notice; any case) into facility|level */
int logger_parse_severity(const char *text, int default_facility, int *priority)
{
	const char *dot;
	int fac = default_facility, lev;

	if (!text || !priority)
		return -EINVAL;
	dot = strchr(text, '.');
	if (dot) {
		fac = find_code(facilities, sizeof(facilities) / sizeof(facilities[0]), text,
				(size_t)(dot - text));
		if (fac < 0)
			return -EINVAL;
		text = dot + 1;
	}
	lev = find_code(levels, sizeof(levels) / sizeof(levels[0]), text, strlen(text));
	if (lev < 0)
		return -EINVAL;
	*priority = fac | lev;
	return 0;
}
