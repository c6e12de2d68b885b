/*
 * agent.h - the user-space half of enforcement inside `bpfwrap run`: read the
 * kernel's ring buffer and act like tcpd around each decision.
 *
 *   DENY    log "DAEMON[PID]: refused connect from CLIENT (ADDR)" (tcpd's
 *           deny_severity, LOG_WARNING, or the rule's `severity`); run the
 *           rule's spawn/twist commands if it has any. The kernel sends a
 *           plain denial (no commands) once per client, daemon and port per
 *           aggregation window and counts the rest (include/bpfwrap.h,
 *           src_recent): the first is logged at once, and a line for the
 *           others, "... (N times in the last Ts)", follows with the next
 *           event of that client or, when none comes, once the window has
 *           ended (the agent looks at the slots a few times a window, and
 *           at all of them when it exits).
 *   ACCEPT  (sockops, after the handshake) log "DAEMON[PID]: connect from
 *           CLIENT" when --log-accept is given or the rule has a `severity`
 *           option (tcpd logs every accept at allow_severity, LOG_INFO; we
 *           do not by default: a busy service would flood the log with lines
 *           nobody filters on); run the rule's spawn/twist commands.
 *   SPAWN   a UDP datagram allowed by a rule with spawn: like ACCEPT.
 *   ASK     the kernel needs a host name or a user: resolve the client
 *           (reverse + forward, resolve.h), ask its identd if the policy has
 *           user@host patterns (ident.h), decide with policy_evaluate(),
 *           store the verdict in the kernel's verdict cache for cache_ttl
 *           (the client's retransmitted SYN is then decided in the kernel),
 *           and log a denial at once. The answer is keyed on everything
 *           the evaluation read (struct decision.inputs): the daemon and
 *           client always, the server address and port when a daemon@host
 *           or port pattern was matched, and the whole flow, for at most
 *           5 s, when the client's user was (tcpd asked identd for every
 *           connection, so a user answer is never reused for another one).
 *           An allow is logged by the ACCEPT event of the retransmitted
 *           SYN's connection (the compiled ASK entries carry
 *           BPFWRAP_F_LOG_ACCEPT for that: agent_mark_policy()). One
 *           question per (daemon, client, server address and port) is in
 *           flight at a time.
 *           A DENY the kernel made because no agent was alive (reason
 *           AGENT_DOWN) less than 10 s ago is treated as an ASK: the kernel
 *           sends one event per flow, so without an answer that flow's
 *           retransmitted SYNs would stay unanswered for the dedup window.
 *
 * Host names are not looked up just to write a log line (a DNS query per
 * denied SYN would let a flood drive DNS traffic); a line shows the name when
 * the agent learned it answering an ASK (kept for cache_ttl), else the
 * address. A spawn command with %h, %n or %c is expanded after the name is
 * resolved; %u is "unknown" unless an ident answer is known for the client
 * (asked only for ASK with user patterns, and for a spawning rule with the
 * rfc931 option). Every expansion passes expand.h's character filter.
 *
 * banners: tcpd writes the banner file to the client before the daemon runs;
 * bpfwrap decides before the handshake and never owns the connection, so
 * banners are not sent (a rule with banners and no spawn/twist does nothing
 * here). twist: tcpd replaced the daemon by the command, so the daemon never
 * served the client; bpfwrap cannot hand it the connection (spawner.h), so a
 * rule with twist refuses the client (agent_mark_policy() turns its ALLOW
 * entries into DENY; an ASK answered by it is DENY) and runs the command like
 * spawn. aclexec runs like spawn: its exit status cannot decide a connection
 * the kernel already decided.
 *
 * Heartbeat: while the agent runs, it marks itself alive in the kernel every
 * AGENT_HEARTBEAT_MS for AGENT_HEARTBEAT_TTL_MS; ASK entries are then held for
 * the agent. Killed, it stops; after the TTL the kernel decides ASK with the
 * entry's verdict_if_unknown (fail-static, never a silent allow). A clean
 * agent_close() marks it dead at once.
 *
 * Bounds under a flood: every connection line goes through the logger's
 * per-client limit and global budget (logger.h); spawn commands through the
 * spawner's limits (spawner.h): at once, per rule, and in total. Commands
 * the limits refused are counted and, at most once per
 * AGENT_SPAWN_REPORT_MS, one line says how many and which limit held.
 * agent_get_stats() has every counter, for `status`.
 *
 * Errors: functions return 0 or -errno. The agent never prints on stdout or
 * stderr itself; everything it has to say goes through its logger.
 */
#ifndef BPFWRAP_AGENT_H
#define BPFWRAP_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ident.h"
#include "logger.h"
#include "resolve.h"
#include "spawner.h"

struct loader;
struct policy;
struct compiled_policy;
struct compiled_daemon;

#define AGENT_HEARTBEAT_MS 500
#define AGENT_HEARTBEAT_TTL_MS 2000

struct agent_config {
	struct logger_config log;
	struct spawn_config spawn;
	struct resolve_config resolve;
	struct ident_config ident;
	bool log_accept;	/* log every accepted connection, not only `severity` rules */
	unsigned cache_ttl_ms;	/* kernel verdict cache and name cache; 0 = 60000 */
	unsigned max_pending;	/* ASK/spawn lookups in flight; 0 = 256 */
	unsigned agg_interval_ms;	/* the kernel's aggregation window for denials
					 * (loader_opts.agg_ns); 0 = 60000 */
};

struct agent_stats {
	uint64_t events[5];	/* by enum bpfwrap_event_type (index 0: malformed) */
	uint64_t asked;		/* ASK events answered */
	uint64_t ask_deduped;	/* ASK events for a question already in flight */
	uint64_t ask_allowed, ask_denied;
	uint64_t ask_overflow;	/* no job slot: answered with the name unknown */
	uint64_t cache_errors;	/* loader_cache_verdict failed */
	uint64_t spawned;	/* commands started */
	uint64_t spawn_refused;	/* concurrency or rate limit */
	uint64_t spawn_errors;	/* expansion or start failed */
	uint64_t logged;	/* decisions handed to the logger */
	struct logger_stats log;	/* what the logger wrote, suppressed, lost */
	struct spawn_stats spawn;	/* commands started, refused by each limit */
	uint64_t denials;	/* refused connections the log accounts for (an
				 * aggregated line stands for several) */
	uint64_t deny_summaries;	/* lines for denials the kernel only counted */
};

/* How often the agent says how many spawn commands its limits refused. */
#define AGENT_SPAWN_REPORT_MS 60000

struct agent;

/* agent_open - logger, spawner, resolver, ident client and ring buffer consumer for ld */
int agent_open(struct agent **out, struct loader *ld, const struct agent_config *cfg);

/* agent_flush - handle the queued events, then write the lines for denials
 * the kernel only counted so far (at exit; agent_close does it too) */
void agent_flush(struct agent *a);

/* agent_close - mark the agent dead in the kernel, stop children, flush the log, free */
void agent_close(struct agent *a);

/* agent_set_policy - the policy now in force as generation gen (the agent takes
 * ownership of pol; cp is only read, for its daemon ids) */
int agent_set_policy(struct agent *a, struct policy *pol, const struct compiled_policy *cp,
		     uint32_t generation);

/* agent_mark_policy - before loading: set BPFWRAP_F_LOG_ACCEPT on the compiled
 * entries whose accepts the agent must hear about; make twist rules deny */
void agent_mark_policy(const struct agent *a, const struct policy *pol, struct compiled_policy *cp);

/* agent_start - begin the heartbeat: from now on ASK entries wait for the agent */
int agent_start(struct agent *a);

/* agent_fd - epoll fd: readable when an event, a lookup, a child or a timer needs work */
int agent_fd(const struct agent *a);

/* agent_process - do all work that is ready, without blocking */
int agent_process(struct agent *a);

/* agent_logger - the agent's logger, for run's own messages */
struct logger *agent_logger(struct agent *a);

/* agent_get_stats - counters since agent_open */
void agent_get_stats(const struct agent *a, struct agent_stats *out);

#endif /* BPFWRAP_AGENT_H */
