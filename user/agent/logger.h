/*
 * logger.h - connection log lines as tcpd writes them, with rate limiting.
 *
 *   sshd[812]: refused connect from evil.example (192.0.2.7)
 *   sshd[812]: refused connect from 192.0.2.9 (192.0.2.9) (57 times in the last 60s)
 *   sshd[812]: connect from alice@host.example
 *
 * ("refused connect from CLIENT (ADDR)" is Debian libwrap's refuse() format,
 * the one fail2ban's tcpwrapper/sshd filters expect; "connect from CLIENT" is
 * tcpd's.) CLIENT is %c (user@host, host name or address). Everything that
 * came from the network is sanitized: a line never holds a control
 * character, a newline or a blank inside a field. A line that stands for
 * several refused connections (the kernel aggregates a client's denials)
 * ends in "(N times in the last Ts)", after the tcpd text, so that the
 * "refused connect from CLIENT (ADDR)" prefix ban tools parse stays intact.
 *
 * Targets: "syslog" (default) sends to the journal with structured fields
 * (DAEMON, CLIENT_ADDR, CLIENT_NAME, CLIENT_USER, RULE=file:line, RULE_ID,
 * VERDICT, COUNT = connections the line stands for, and
 * SYSLOG_IDENTIFIER/SYSLOG_PID = the daemon's, so it reads and forwards like
 * tcpd's line) when the journal socket exists, else syslog(3)
 * with ident "DAEMON[PID]"; with neither socket it says so once on stderr and
 * writes to stderr. "stderr" writes "DAEMON[PID]: message" lines; any other
 * value is a FILE appended with syslog-style lines ("Mmm dd hh:mm:ss host
 * DAEMON[PID]: message") that fail2ban reads as it is. LOGGER_JSON writes one
 * JSON object per line instead of the text.
 *
 * Rate limits, so that a flood of any shape writes a bounded number of lines:
 *  - per (rule id, client address) at most `burst` lines per `interval_ms`;
 *    the rest are counted and, when the window ends, one line
 *    "DAEMON[PID]: N similar messages suppressed (client ADDR)" is written.
 *    The table has a fixed number of slots (4-way set associative, least
 *    recently used way evicted, its pending summary written first), so a
 *    flood of distinct sources costs O(1) CPU per event and fixed memory;
 *  - a global token bucket over every connection line and per-client
 *    summary: `rate` lines per second with bursts of `rate_burst` (default
 *    20/s, bursts of 200: at most 1,400 lines in any minute, whatever the
 *    sources). Lines beyond it are counted, and once per interval_ms one
 *    line "bpfwrap[PID]: N connection log lines suppressed in the last S s
 *    (global rate R/s)" says how many.
 * The agent's own messages (logger_message) are not rate limited.
 *
 * Never blocking: lines are formatted in the caller and handed to a writer
 * thread through a bounded queue (queue_len lines); the thread alone talks
 * to the journal, syslog(3), the file or stderr, any of which can block (a
 * stalled journald or syslog daemon fills its socket, a pipe nobody reads,
 * a file on a hung network filesystem). When the queue is full a line is
 * dropped and counted (stats.lost), and once per interval a line "N log
 * lines lost in the last S s: the log target did not keep up" follows when
 * the target takes lines again. logger_close() waits at most
 * LOGGER_CLOSE_WAIT_MS for the queue to drain, then gives up on a target
 * that does not return (the thread and its memory are left to the exit).
 *
 * FILE targets (logger_file_open) are opened the way log daemons do, so a
 * user who can write somewhere cannot make root append to a file of their
 * choice: O_NOFOLLOW (a symbolic link is refused), O_APPEND|O_CREAT, mode
 * 0640; every directory from the file's up to / must belong to root or to
 * us and must not be writable by others unless it has the sticky bit
 * (group-writable is accepted for group root); the file must be a regular
 * file (or the null device) with one link, owned by root or us.
 *
 * Errors: functions return 0 or -errno; a failed write is counted
 * (logger_stats), never retried in a loop. Times are CLOCK_MONOTONIC ms
 * (monotonic_ms(), util.h).
 */
#ifndef BPFWRAP_LOGGER_H
#define BPFWRAP_LOGGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy.h"
#include "util.h"

enum logger_format {
	LOGGER_TEXT,		/* tcpd-style lines */
	LOGGER_JSON,		/* one JSON object per line */
};

/* How long logger_close() waits for the writer to drain the queue. */
#define LOGGER_CLOSE_WAIT_MS 1000
/* Defaults of the global budget: lines per second, and the burst. */
#define LOGGER_DEFAULT_RATE 20
#define LOGGER_DEFAULT_RATE_BURST 200

struct logger_config {
	const char *target;	/* "syslog" (NULL = this), "stderr", or a file path */
	enum logger_format format;
	int facility;		/* 0 = LOG_AUTHPRIV */
	int level;		/* 0 or -1 = LOG_INFO (LOG_EMERG is never a default); `severity` overrides per event */
	unsigned burst;		/* lines per (rule, client) per interval; 0 = 5 */
	unsigned interval_ms;	/* per-client window and summary interval; 0 = 60000 */
	unsigned rate;		/* global: connection lines per second; 0 = LOGGER_DEFAULT_RATE */
	unsigned rate_burst;	/* global burst; 0 = LOGGER_DEFAULT_RATE_BURST (at least rate) */
	bool no_global_rate;	/* no global budget */
	unsigned slots;		/* rate-limit table entries; 0 = 4096 (rounded up to 4-way sets) */
	unsigned queue_len;	/* lines waiting for the writer thread; 0 = 1024 */
	bool no_ratelimit;	/* no per-client limit (the global budget still holds) */
	const char *syslog_socket;	/* NULL = "/dev/log" */
	const char *journal_socket;	/* NULL = "/run/systemd/journal/socket"; "" = never the journal */
};

/* One connection decision to log. */
struct logger_event {
	const struct request *req;	/* daemon, client_addr, client_name, user */
	pid_t pid;		/* the daemon's pid; <= 0 unknown */
	bool refused;
	uint32_t rule_id;	/* 0 = no rule (libwrap's default) */
	const char *rule_file;	/* file of the rule, NULL if none */
	unsigned rule_line;
	int priority;		/* `severity` option as facility|level, -1 = default */
	uint64_t count;		/* connections the line stands for; 0 or 1: just one */
	uint64_t span_ms;	/* with count > 1: over this long */
};

struct logger_stats {
	uint64_t logged;	/* lines written to the target */
	uint64_t suppressed;	/* connection lines not written: the per-client limit */
	uint64_t suppressed_global;	/* connection lines not written: the global rate */
	uint64_t evicted;	/* rate-limit entries reused for another client */
	uint64_t lost;		/* lines dropped: the writer's queue was full */
	uint64_t write_errors;	/* lines the target did not take */
	uint64_t queued;	/* lines waiting for the writer now */
	unsigned rate, rate_burst;	/* the global budget in force; 0/0: none */
};

struct logger;

/* logger_open - create a logger for cfg (NULL = defaults); -EINVAL, -ENOMEM, -errno of the FILE
 * (logger_file_open: -ELOOP a symbolic link, -EPERM an unsafe directory or owner,
 * -EMLINK a hard-linked file, -EINVAL not a regular file) */
int logger_open(struct logger **out, const struct logger_config *cfg);

/* logger_close - write pending summaries, close the target, free */
void logger_close(struct logger *lg);

/* logger_log - log one decision, subject to the rate limits; 0 (logged or counted) or -errno */
int logger_log(struct logger *lg, const struct logger_event *ev, uint64_t now_ms);

/* logger_message - the agent's own line ("bpfwrap[PID]: text"), not rate limited; level as syslog(3) */
int logger_message(struct logger *lg, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* logger_flush - wait until every queued line was written (at most timeout_ms); 0 or -ETIMEDOUT */
int logger_flush(struct logger *lg, unsigned timeout_ms);

/* logger_file_open - open a FILE target as described above; fd or -errno, why[] says what was refused */
int logger_file_open(const char *path, char *why, size_t why_size);

/* logger_fd - timer fd (epoll: readable) that fires when a suppression window ends */
int logger_fd(const struct logger *lg);

/* logger_process - write summaries of windows ended by now_ms (per client, global, lost lines), re-arm the timer */
int logger_process(struct logger *lg, uint64_t now_ms);

/* logger_get_stats - counters since logger_open */
void logger_get_stats(const struct logger *lg, struct logger_stats *out);

/* logger_target_name - "journal", "syslog", "stderr" or the file path actually in use */
const char *logger_target_name(const struct logger *lg);

/* logger_parse_severity - `[facility.]level` (auth.info, notice; any case) into facility|level */
int logger_parse_severity(const char *text, int default_facility, int *priority);

/* logger_format_text - "refused connect from CLIENT (ADDR)" / "connect from CLIENT", sanitized */
int logger_format_text(const struct logger_event *ev, char *buf, size_t size);

/* logger_format_json - the event as one JSON object (no newline), strings escaped */
int logger_format_json(const struct logger_event *ev, const char *time_text, char *buf, size_t size);

/* logger_sanitize - copy src to dst[size], every byte outside '!'..'~' as '_'; -E2BIG if cut */
int logger_sanitize(const char *src, char *dst, size_t size);


#endif /* BPFWRAP_LOGGER_H */
