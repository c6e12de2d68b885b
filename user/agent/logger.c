/*
 * logger.c - tcpd-style connection log lines, to the journal, syslog(3),
 * stderr or a file, with a bounded per-(rule, client) rate limit and a
 * global token bucket; a writer thread does the output so the caller never
 * blocks on a slow target (logger.h).
 *
 * Errors: 0 or -errno; a target that refuses a line is counted in
 * write_errors, a line that finds the queue full in lost. This module prints
 * only its own log output (and, once, the note that there is no syslog
 * socket).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/timerfd.h>

#include "expand.h"
#include "logger.h"

#define WAYS 4			/* rate-limit table associativity */
#define NAME_MAX_LEN 64		/* daemon names kept in the table */
#define LINE_MAX_LEN 2048	/* longest line we write: fields are cut to 127 */
#define RULE_TEXT_MAX 512	/* "FILE:LINE" of a rule */
#define DEFAULT_BURST 5
#define DEFAULT_INTERVAL_MS 60000
#define DEFAULT_SLOTS 4096
#define DEFAULT_QUEUE 1024
#define MILLI 1000		/* token bucket: milli-tokens per line, ms per s */
#define LOG_FILE_MODE 0640
/* The null device (major 1, minor 3 on Linux): accepted as a FILE target. */
#define NULL_DEV_MAJOR 1
#define NULL_DEV_MINOR 3

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

/* One line for the writer thread: the text, and the journal's fields. */
struct record {
	int priority;
	pid_t pid;
	uint32_t rule_id, suppressed;
	uint64_t count;		/* connections the line stands for (COUNT=) */
	bool has_event, refused;
	char daemon[NAME_MAX_LEN];
	char addr[POLICY_FIELD_MAX + 1], name[POLICY_FIELD_MAX + 1], user[POLICY_FIELD_MAX + 1];
	char rule[RULE_TEXT_MAX];
	size_t len;
	char text[LINE_MAX_LEN * 2];	/* file/stderr: the whole line; journal/syslog: the message */
};

/* The queue between the caller and the writer thread; mu guards all of it. */
struct writer {
	pthread_t thread;
	bool started, stop, done;
	pthread_mutex_t mu;
	pthread_cond_t more;	/* a record was queued, or stop */
	pthread_cond_t idle;	/* the queue emptied, or the thread ended */
	struct record *q;
	size_t cap, head, count;	/* q[head] is being written while count > 0 */
	uint64_t logged, write_errors;
};

struct logger {
	enum target target;
	enum logger_format format;
	int facility, level;
	int fd;			/* T_STDERR, T_FILE; T_JOURNAL: the journal's socket */
	int timer_fd;
	char *path;		/* T_FILE */
	char hostname[256];
	char ident[NAME_MAX_LEN + 16];	/* syslog(3) ident "daemon[pid]", writer thread only */
	bool no_ratelimit, no_global_rate;
	unsigned burst, rate, rate_burst;
	uint64_t interval;
	struct rl_entry *table;
	size_t n_sets;
	uint64_t armed;		/* timer expiry in force, 0 = none */
	/* global bucket */
	uint64_t g_milli, g_last;
	bool g_started;
	/* what the next report line says: since report_since (0 = nothing to report) */
	uint64_t report_since;
	uint64_t g_suppressed;	/* connection lines suppressed by the global rate */
	uint64_t lost_reported, errors_reported;	/* stats values already reported */
	struct logger_stats stats;	/* the caller's counters (logged, write_errors: the writer's) */
	struct writer w;
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
	if (n >= 0 && (size_t)n < size && ev->count > 1) {
		/* seconds, rounded up: "in the last 0s" would read as nothing */
		unsigned long long secs = (ev->span_ms + MILLI - 1) / MILLI;
		int m = snprintf(buf + n, size - (size_t)n, " (%llu times in the last %llus)",
				 (unsigned long long)ev->count, secs ? secs : 1ull);

		n = m < 0 ? m : n + m;
	}
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
		if (ev->count > 1)
			sb_printf(sb, ",\"count\":%llu,\"span_ms\":%llu", (unsigned long long)ev->count,
				  (unsigned long long)ev->span_ms);
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

/* ---- the writer thread ---------------------------------------------------- */

/* JOURNAL_FIELDS - the most fields journal_send() sends for one record */
#define JOURNAL_FIELDS 16

/* jfield - one "KEY=value" of the journal's native protocol into buf (a value
 * with a newline in the binary form: KEY\n, 64-bit little-endian length,
 * value, \n); how many bytes, 0 if buf is too small */
static size_t jfield(char *buf, size_t size, const char *key, const char *value)
{
	size_t k = strlen(key), v = strlen(value);

	if (!strchr(value, '\n')) {
		int n = snprintf(buf, size, "%s=%s\n", key, value);

		return n > 0 && (size_t)n < size ? (size_t)n : 0;
	}
	if (k + 1 + 8 + v + 1 > size)
		return 0;
	memcpy(buf, key, k);
	buf[k] = '\n';
	for (int i = 0; i < 8; i++)
		buf[k + 1 + i] = (char)((uint64_t)v >> (8 * i));
	memcpy(buf + k + 9, value, v);
	buf[k + 9 + v] = '\n';
	return k + 10 + v;
}

/*
 * journal_send - one record to the journal's native socket, sent with the
 * daemon's PID in SCM_CREDENTIALS when bpfwrap may (CAP_SYS_ADMIN): journald
 * then files the line under the daemon's own _PID, _COMM and _SYSTEMD_UNIT,
 * as if sshd had written it, so `journalctl -u ssh` and fail2ban's journal
 * matches (_SYSTEMD_UNIT=..., _COMM=sshd) see it as they saw tcpd's or the
 * daemon's own libwrap lines. libsystemd's sd_journal_send() cannot set the
 * credentials. Without the capability, or when the daemon has exited, the
 * line goes with bpfwrap's own (SYSLOG_PID still names the daemon).
 */
static int journal_send(int fd, const struct record *r)
{
	char buf[LINE_MAX_LEN * 4 + 2048], num[3][24];
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct ucred cred = { .pid = r->pid, .uid = getuid(), .gid = getgid() };
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	const char *fields[JOURNAL_FIELDS][2] = {
		{ "MESSAGE", r->text }, { "PRIORITY", num[0] }, { "SYSLOG_FACILITY", num[1] },
		{ "SYSLOG_IDENTIFIER", r->daemon }, { "SYSLOG_PID", num[2] }, { "DAEMON", r->daemon },
		{ "CLIENT_ADDR", r->addr }, { "CLIENT_NAME", r->name }, { "CLIENT_USER", r->user },
		{ "RULE", r->rule },
		{ "VERDICT", !r->has_event ? "" : r->refused ? "refused" : "connect" },
	};
	char rule_id[16], suppressed[16], count[24];
	size_t len = 0, n_fields = 11;

	snprintf(num[0], sizeof(num[0]), "%d", LOG_PRI(r->priority));
	snprintf(num[1], sizeof(num[1]), "%d", LOG_FAC(r->priority));
	snprintf(num[2], sizeof(num[2]), "%ld", (long)r->pid);
	snprintf(rule_id, sizeof(rule_id), "%u", r->rule_id);
	snprintf(suppressed, sizeof(suppressed), "%u", r->suppressed);
	fields[n_fields][0] = "RULE_ID";
	fields[n_fields++][1] = rule_id;
	fields[n_fields][0] = "SUPPRESSED";
	fields[n_fields++][1] = suppressed;
	snprintf(count, sizeof(count), "%llu", (unsigned long long)(r->count ? r->count : 1));
	fields[n_fields][0] = "COUNT";
	fields[n_fields++][1] = count;
	for (size_t i = 0; i < n_fields; i++) {
		size_t n = jfield(buf + len, sizeof(buf) - len, fields[i][0], fields[i][1]);

		if (!n)
			return -EMSGSIZE;
		len += n;
	}
	iov.iov_base = buf;
	iov.iov_len = len;
	if (r->pid > 0 && r->pid != getpid()) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.space;
		msg.msg_controllen = sizeof(ctl.space);
		ctl.h.cmsg_level = SOL_SOCKET;
		ctl.h.cmsg_type = SCM_CREDENTIALS;
		ctl.h.cmsg_len = CMSG_LEN(sizeof(cred));
		memcpy(CMSG_DATA(&ctl.h), &cred, sizeof(cred));
		if (sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)len)
			return 0;
		if (errno != EPERM && errno != ESRCH)
			return -errno;
		msg.msg_control = NULL;	/* not allowed, or the daemon is gone: as ourselves */
		msg.msg_controllen = 0;
	}
	return sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

/* journal_connect - a datagram socket connected to the journal's native socket */
static int journal_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 1 };	/* a stalled journal holds the writer 1 s at most */
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* write_record - put one record out to the target (writer thread only); 0 or -errno */
static int write_record(struct logger *lg, const struct record *r)
{
	switch (lg->target) {
	case T_JOURNAL:
		return journal_send(lg->fd, r);
	case T_SYSLOG:
		/* ident "daemon[pid]" so the line reads "sshd[812]: refused connect ..." */
		snprintf(lg->ident, sizeof(lg->ident), "%s[%ld]", r->daemon, (long)r->pid);
		openlog(lg->ident, LOG_NDELAY, lg->facility);
		syslog(r->priority, "%s", r->text);
		return 0;
	default:
		/* one write(2) per line: O_APPEND keeps lines whole next to fail2ban/other writers */
		for (;;) {
			ssize_t n = write(lg->fd, r->text, r->len);

			if (n == (ssize_t)r->len)
				return 0;
			if (n < 0 && errno == EINTR)
				continue;
			return n < 0 ? -errno : -EIO;
		}
	}
}

/* writer_main - the writer thread: write queued records in order until told to stop */
static void *writer_main(void *arg)
{
	struct logger *lg = arg;
	struct writer *w = &lg->w;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->count && !w->stop)
			pthread_cond_wait(&w->more, &w->mu);
		if (!w->count)
			break;
		/* q[head] stays ours until count drops: the caller only fills the tail */
		const struct record *r = &w->q[w->head];

		pthread_mutex_unlock(&w->mu);
		int err = write_record(lg, r);

		pthread_mutex_lock(&w->mu);
		if (err)
			w->write_errors++;
		else
			w->logged++;
		w->head = (w->head + 1) % w->cap;
		if (!--w->count)
			pthread_cond_broadcast(&w->idle);
	}
	w->done = true;
	pthread_cond_broadcast(&w->idle);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* writer_start - the queue and the thread; signals stay with the caller's threads */
static int writer_start(struct logger *lg, size_t cap)
{
	struct writer *w = &lg->w;
	pthread_condattr_t ca;
	sigset_t all, old;
	int err;

	w->cap = cap;
	w->q = calloc(cap, sizeof(*w->q));	/* pages are touched only when lines queue up */
	if (!w->q)
		return -ENOMEM;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->more, &ca);
	pthread_cond_init(&w->idle, &ca);
	pthread_condattr_destroy(&ca);
	/* the thread blocks every signal: SIGPIPE from a closed stderr becomes EPIPE */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&w->thread, NULL, writer_main, lg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	w->started = true;
	return 0;
}

/* deadline_in - CLOCK_MONOTONIC now + ms, for pthread_cond_timedwait */
static struct timespec deadline_in(unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / MILLI;
	ts.tv_nsec += (long)(ms % MILLI) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* writer_wait - wait until the queue is empty (or the thread ended); 0 or -ETIMEDOUT */
static int writer_wait(struct writer *w, unsigned timeout_ms)
{
	struct timespec until = deadline_in(timeout_ms);
	int err = 0;

	pthread_mutex_lock(&w->mu);
	while ((w->count || (w->stop && !w->done)) && !err)
		if (pthread_cond_timedwait(&w->idle, &w->mu, &until) == ETIMEDOUT)
			err = -ETIMEDOUT;
	pthread_mutex_unlock(&w->mu);
	return err;
}

/* logger_flush - wait until every queued line was written (at most timeout_ms); 0 or -ETIMEDOUT */
int logger_flush(struct logger *lg, unsigned timeout_ms)
{
	if (!lg)
		return -EINVAL;
	return lg->w.started ? writer_wait(&lg->w, timeout_ms) : 0;
}

static void arm(struct logger *lg, uint64_t when);

/* report_soon - something to report (lost lines, global suppressions): one line per interval */
static void report_soon(struct logger *lg, uint64_t now)
{
	if (lg->report_since)
		return;
	lg->report_since = now ? now : 1;
	arm(lg, lg->report_since + lg->interval);
}

/* enqueue - hand a record to the writer; a full queue drops it (counted in lost) */
static int enqueue(struct logger *lg, const struct record *r)
{
	struct writer *w = &lg->w;
	bool full;

	pthread_mutex_lock(&w->mu);
	full = w->count == w->cap;
	if (!full) {
		w->q[(w->head + w->count) % w->cap] = *r;
		w->count++;
		pthread_cond_signal(&w->more);
	}
	lg->stats.logged = w->logged;
	lg->stats.write_errors = w->write_errors;
	pthread_mutex_unlock(&w->mu);
	if (full)
		lg->stats.lost++;
	if (lg->stats.lost > lg->lost_reported || lg->stats.write_errors > lg->errors_reported)
		report_soon(lg, monotonic_ms());
	return full ? -EAGAIN : 0;
}

/* emit - format one line for daemon[pid] and queue it; ev (may be NULL) adds structured fields */
static int emit(struct logger *lg, const char *daemon, pid_t pid, int priority,
		const struct logger_event *ev, const char *message, uint32_t suppressed)
{
	struct record r;
	struct sbuf sb = { r.text, sizeof(r.text), 0, false };
	char stamp[64];

	memset(&r, 0, offsetof(struct record, text));
	r.text[0] = '\0';
	logger_sanitize(daemon && *daemon ? daemon : "unknown", r.daemon, sizeof(r.daemon));
	r.pid = pid > 0 ? pid : 0;
	r.priority = priority;
	r.suppressed = suppressed;
	if (ev) {
		r.has_event = true;
		r.refused = ev->refused;
		r.rule_id = ev->rule_id;
		r.count = ev->count > 1 ? ev->count : 1;
		field(ev->req->client_addr, r.addr, sizeof(r.addr));
		field(ev->req->client_name, r.name, sizeof(r.name));
		field(ev->req->user, r.user, sizeof(r.user));
		if (ev->rule_file)
			snprintf(r.rule, sizeof(r.rule), "%s:%u", ev->rule_file, ev->rule_line);
	}
	if (lg->target == T_JOURNAL) {
		sb_printf(&sb, "%s", message);
	} else if (lg->format == LOGGER_JSON) {
		time_iso(stamp, sizeof(stamp));
		json_event(&sb, stamp, r.daemon, r.pid, ev, message, suppressed);
	} else if (lg->target == T_FILE) {
		time_t now = time(NULL);
		struct tm tm;

		localtime_r(&now, &tm);
		if (!strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm))
			stamp[0] = 0;
		sb_printf(&sb, "%s %s %s[%ld]: %s", stamp, lg->hostname, r.daemon, (long)r.pid, message);
	} else if (lg->target == T_STDERR) {
		sb_printf(&sb, "%s[%ld]: %s", r.daemon, (long)r.pid, message);
	} else {
		sb_printf(&sb, "%s", message);
	}
	if (lg->target == T_FILE || lg->target == T_STDERR)
		sb_printf(&sb, "\n");
	if (sb.over)
		return -E2BIG;	/* cannot happen: every field is cut to 127 */
	r.len = sb.len;
	return enqueue(lg, &r);
}

/* ---- rate limits ---------------------------------------------------------- */

/* arm - make the timer fire at `when` (ms) unless it already fires earlier */
static void arm(struct logger *lg, uint64_t when)
{
	struct itimerspec its = { 0 };

	if (!when)
		when = 1;
	if (lg->armed && lg->armed <= when)
		return;
	its.it_value.tv_sec = (time_t)(when / MILLI);
	its.it_value.tv_nsec = (long)(when % MILLI) * 1000000;
	if (timerfd_settime(lg->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		lg->armed = when;
}

/* global_allows - take one line from the global bucket; false (counted by the caller) when empty */
static bool global_allows(struct logger *lg, uint64_t now)
{
	uint64_t cap = (uint64_t)lg->rate_burst * MILLI;

	if (lg->no_global_rate)
		return true;
	if (!lg->g_started) {
		lg->g_started = true;
		lg->g_milli = cap;
		lg->g_last = now;
	} else if (now > lg->g_last) {
		/* rate lines per second = rate milli-tokens per ms */
		uint64_t add = (now - lg->g_last) * lg->rate;

		lg->g_milli = lg->g_milli + add > cap ? cap : lg->g_milli + add;
		lg->g_last = now;
	}
	if (lg->g_milli < MILLI)
		return false;
	lg->g_milli -= MILLI;
	return true;
}

/* global_suppress - count n connection lines the global bucket held back */
static void global_suppress(struct logger *lg, uint64_t n, uint64_t now)
{
	lg->g_suppressed += n;
	report_soon(lg, now);
}

/* summarize - "N similar messages suppressed" for an entry (if the global bucket allows); clear its count */
static void summarize(struct logger *lg, struct rl_entry *e, uint64_t now)
{
	char message[256];

	if (!global_allows(lg, now)) {
		global_suppress(lg, e->suppressed, now);	/* its lines join the global count */
		e->suppressed = 0;
		return;
	}
	snprintf(message, sizeof(message), "%u similar messages suppressed (client %s)",
		 e->suppressed, e->addr);
	emit(lg, e->daemon, e->pid, lg->facility | LOG_NOTICE, NULL, message, e->suppressed);
	e->suppressed = 0;
}

/* report - the global summary and the lost-lines line, for what happened since report_since */
static void report(struct logger *lg, uint64_t now)
{
	uint64_t secs = (now - lg->report_since + MILLI - 1) / MILLI;
	uint64_t lost = lg->stats.lost - lg->lost_reported;
	uint64_t errors = lg->stats.write_errors - lg->errors_reported;
	char message[256];

	lg->report_since = 0;
	if (lg->g_suppressed) {
		snprintf(message, sizeof(message),
			 "%llu connection log lines suppressed in the last %llu s (global rate %u/s, burst %u)",
			 (unsigned long long)lg->g_suppressed, (unsigned long long)secs, lg->rate,
			 lg->rate_burst);
		emit(lg, "bpfwrap", getpid(), lg->facility | LOG_NOTICE, NULL, message,
		     lg->g_suppressed > UINT32_MAX ? UINT32_MAX : (uint32_t)lg->g_suppressed);
		lg->g_suppressed = 0;
	}
	if (lost || errors) {
		snprintf(message, sizeof(message),
			 "%llu log lines lost in the last %llu s: the log target did not keep up "
			 "(%llu dropped with the queue full, %llu write errors)",
			 (unsigned long long)(lost + errors), (unsigned long long)secs,
			 (unsigned long long)lost, (unsigned long long)errors);
		lg->lost_reported = lg->stats.lost;
		lg->errors_reported = lg->stats.write_errors;
		emit(lg, "bpfwrap", getpid(), LOG_DAEMON | LOG_WARNING, NULL, message, 0);
	}
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
			summarize(lg, victim, now);
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
				summarize(lg, e, now_ms);
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
	}
	if (!global_allows(lg, now_ms)) {
		lg->stats.suppressed_global++;
		global_suppress(lg, 1, now_ms);
		return 0;
	}
	err = logger_format_text(ev, message, sizeof(message));
	if (err)
		return err;
	err = emit(lg, daemon, ev->pid, priority_of(lg, ev->priority, lg->level), ev, message, 0);
	return err == -EAGAIN ? 0 : err;	/* a full queue is counted in lost */
}

/* logger_message - the agent's own line ("bpfwrap[PID]: text"), not rate limited */
int logger_message(struct logger *lg, int level, const char *fmt, ...)
{
	char raw[LINE_MAX_LEN], message[LINE_MAX_LEN];
	va_list ap;
	int err;

	if (!lg || !fmt)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);	/* a cut message is still worth writing */
	va_end(ap);
	/* keep blanks, drop control characters: one message is one line */
	for (size_t i = 0; raw[i]; i++)
		message[i] = (unsigned char)raw[i] < ' ' || raw[i] == 0x7f ? '_' : raw[i];
	message[strlen(raw)] = 0;
	err = emit(lg, "bpfwrap", getpid(), LOG_DAEMON | LOG_PRI(level), NULL, message, 0);
	return err == -EAGAIN ? 0 : err;
}

/* logger_process - write summaries of windows ended by now_ms (per client, global, lost lines), re-arm the timer */
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
			summarize(lg, e, now_ms);
		else if (!next || end < next)
			next = end;
	}
	if (lg->report_since && now_ms >= lg->report_since + lg->interval)
		report(lg, now_ms);
	/* report() may queue lines whose loss starts a new window: take it into account */
	if (lg->report_since && (!next || lg->report_since + lg->interval < next))
		next = lg->report_since + lg->interval;
	lg->armed = 0;
	if (next) {
		arm(lg, next);
	} else {
		struct itimerspec off = { 0 };

		timerfd_settime(lg->timer_fd, TFD_TIMER_ABSTIME, &off, NULL);
	}
	return 0;
}

/* ---- opening and closing ---------------------------------------------------- */

/* is_socket - path exists and is a socket */
static bool is_socket(const char *path)
{
	struct stat st;

	return path && *path && stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* is_null_dev - the null device */
static bool is_null_dev(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == NULL_DEV_MAJOR &&
	       minor(st->st_rdev) == NULL_DEV_MINOR;
}

/* trusted_owner - root or the user we run as */
static bool trusted_owner(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* dir_refusal - why only root and we cannot be sure of what dir holds; 0 if we can */
static int dir_refusal(const char *dir, const struct stat *st, char *why, size_t size)
{
	bool sticky = st->st_mode & S_ISVTX;

	if (!S_ISDIR(st->st_mode)) {
		snprintf(why, size, "%s is not a directory", dir);
		return -ENOTDIR;
	}
	if (!trusted_owner(st->st_uid)) {
		snprintf(why, size, "directory %s belongs to uid %u, neither root nor us", dir,
			 (unsigned)st->st_uid);
		return -EPERM;
	}
	if ((st->st_mode & S_IWOTH) && !sticky) {
		snprintf(why, size, "directory %s is writable by everyone (mode %04o) without the sticky bit",
			 dir, (unsigned)(st->st_mode & 07777));
		return -EPERM;
	}
	if ((st->st_mode & S_IWGRP) && st->st_gid != 0 && !sticky) {
		snprintf(why, size, "directory %s is writable by group %u (mode %04o) without the sticky bit",
			 dir, (unsigned)st->st_gid, (unsigned)(st->st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* logger_file_open - open a FILE target as log daemons do (logger.h); fd or -errno, why[] says what was refused */
int logger_file_open(const char *path, char *why, size_t why_size)
{
	char dir_buf[PATH_MAX], base_buf[PATH_MAX], real[PATH_MAX], walk[PATH_MAX];
	const char *base;
	struct stat st, parent;
	int dfd, fd, err;

	why[0] = '\0';
	if (!path || !*path || strlen(path) >= sizeof(dir_buf)) {
		snprintf(why, why_size, "empty or too long");
		return -EINVAL;
	}
	snprintf(dir_buf, sizeof(dir_buf), "%s", path);
	snprintf(base_buf, sizeof(base_buf), "%s", path);
	base = basename(base_buf);
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..") || path[strlen(path) - 1] == '/') {
		snprintf(why, why_size, "names a directory, not a file");
		return -EISDIR;
	}
	if (!realpath(dirname(dir_buf), real)) {
		err = -errno;
		snprintf(why, why_size, "directory %s: %s", dir_buf, strerror(-err));
		return err;
	}
	/* every directory from the file's up to /: only root or we may change it */
	snprintf(walk, sizeof(walk), "%s", real);
	for (bool first = true;; first = false) {
		if (stat(walk, &st) < 0) {
			err = -errno;
			snprintf(why, why_size, "directory %s: %s", walk, strerror(-err));
			return err;
		}
		if (first)
			parent = st;
		err = dir_refusal(walk, &st, why, why_size);
		if (err)
			return err;
		if (!strcmp(walk, "/"))
			break;
		char *slash = strrchr(walk, '/');	/* realpath() gave an absolute path */

		slash[slash == walk ? 1 : 0] = '\0';
	}
	dfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		err = -errno;
		snprintf(why, why_size, "directory %s: %s", real, strerror(-err));
		return err;
	}
	if (fstat(dfd, &st) < 0 || st.st_dev != parent.st_dev || st.st_ino != parent.st_ino) {
		close(dfd);
		snprintf(why, why_size, "directory %s changed while it was checked", real);
		return -EAGAIN;
	}
	/* look before opening: opening a device can have effects of its own */
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(st.st_mode)) {
			close(dfd);
			snprintf(why, why_size, "is a symbolic link (refused: it could lead anywhere)");
			return -ELOOP;
		}
		if (!S_ISREG(st.st_mode) && !is_null_dev(&st)) {
			close(dfd);
			snprintf(why, why_size, "not a regular file (%s)",
				 S_ISDIR(st.st_mode) ? "directory" : S_ISFIFO(st.st_mode) ? "fifo" :
				 S_ISSOCK(st.st_mode) ? "socket" : "device");
			return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		}
	}
	fd = openat(dfd, base, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
			       O_CLOEXEC, LOG_FILE_MODE);
	err = fd < 0 ? -errno : 0;
	close(dfd);
	if (err) {
		snprintf(why, why_size, "%s", err == -ELOOP ? "is a symbolic link (refused: it could lead anywhere)"
							    : strerror(-err));
		return err;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		snprintf(why, why_size, "%s", strerror(-err));
	} else if (is_null_dev(&st)) {
		err = 0;
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(why, why_size, "not a regular file");
		err = -EINVAL;
	} else if (st.st_nlink != 1) {
		snprintf(why, why_size, "has %lu hard links (refused: another name could be any file)",
			 (unsigned long)st.st_nlink);
		err = -EMLINK;
	} else if (!trusted_owner(st.st_uid)) {
		snprintf(why, why_size, "belongs to uid %u, neither root nor us", (unsigned)st.st_uid);
		err = -EPERM;
	}
	if (err) {
		close(fd);
		return err;
	}
	return fd;
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
	lg->burst = cfg->burst ? cfg->burst : DEFAULT_BURST;
	lg->interval = cfg->interval_ms ? cfg->interval_ms : DEFAULT_INTERVAL_MS;
	lg->rate = cfg->rate ? cfg->rate : LOGGER_DEFAULT_RATE;
	lg->rate_burst = cfg->rate_burst ? cfg->rate_burst : LOGGER_DEFAULT_RATE_BURST;
	if (lg->rate_burst < lg->rate)
		lg->rate_burst = lg->rate;
	lg->no_global_rate = cfg->no_global_rate;
	lg->no_ratelimit = cfg->no_ratelimit;
	slots = cfg->slots ? cfg->slots : DEFAULT_SLOTS;
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
		int jfd = is_socket(journal) ? journal_connect(journal) : -ENOENT;

		if (jfd >= 0) {
			lg->target = T_JOURNAL;
			lg->fd = jfd;
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
		char why[PATH_MAX + 128];

		lg->target = T_FILE;
		lg->path = strdup(target);
		if (!lg->path) {
			err = -ENOMEM;
			goto fail;
		}
		lg->fd = logger_file_open(target, why, sizeof(why));
		if (lg->fd < 0) {
			err = lg->fd;
			goto fail;
		}
	}
	err = writer_start(lg, cfg->queue_len ? cfg->queue_len : DEFAULT_QUEUE);
	if (err)
		goto fail;
	*out = lg;
	return 0;
fail:
	logger_close(lg);
	return err;
}

/* logger_close - write pending summaries, let the writer drain (bounded), close the target, free */
void logger_close(struct logger *lg)
{
	struct writer *w;

	if (!lg)
		return;
	w = &lg->w;
	if (w->started) {
		uint64_t now = monotonic_ms();

		for (size_t i = 0; lg->table && i < lg->n_sets * WAYS; i++)
			if (lg->table[i].used && lg->table[i].suppressed)
				summarize(lg, &lg->table[i], now);
		if (lg->report_since)
			report(lg, now);
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->more);
		pthread_mutex_unlock(&w->mu);
		if (writer_wait(w, LOGGER_CLOSE_WAIT_MS)) {
			/* the target does not return: leave the thread, and what it uses, to the exit */
			pthread_detach(w->thread);
			return;
		}
		pthread_join(w->thread, NULL);
		pthread_cond_destroy(&w->more);
		pthread_cond_destroy(&w->idle);
		pthread_mutex_destroy(&w->mu);
	}
	if (lg->target == T_SYSLOG)
		closelog();
	if ((lg->target == T_FILE || lg->target == T_JOURNAL) && lg->fd >= 0)
		close(lg->fd);
	if (lg->timer_fd >= 0)
		close(lg->timer_fd);
	free(w->q);
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
	struct writer *w = (struct writer *)&lg->w;

	*out = lg->stats;
	out->rate = lg->no_global_rate ? 0 : lg->rate;
	out->rate_burst = lg->no_global_rate ? 0 : lg->rate_burst;
	if (!w->started)
		return;
	pthread_mutex_lock(&w->mu);
	out->logged = w->logged;
	out->write_errors = w->write_errors;
	out->queued = w->count;
	pthread_mutex_unlock(&w->mu);
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
