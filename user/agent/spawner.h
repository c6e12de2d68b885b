/*
 * spawner.h - run the shell commands of the `spawn` and `twist` options in the
 * background, bounded, without ever waiting in the caller.
 *
 * A command runs as /bin/sh -c COMMAND with stdin, stdout and stderr on
 * /dev/null, in its own process group, with default signal dispositions, an
 * empty signal mask, no inherited descriptors beyond 0-2, and a fixed
 * environment (PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin).
 * The caller expands and sanitizes the command first (expand.h).
 *
 * Limits: at most max_children at once (-EAGAIN beyond); per rule a token
 * bucket of rate_burst commands per rate_interval_ms (-EBUSY beyond); each
 * command gets timeout_ms, then SIGTERM to its group, then after kill_grace_ms
 * SIGKILL to its group. Refusals are counted (spawn_get_stats) for the logs.
 *
 * Reaping: each child is watched through a pidfd, and the pidfds plus a
 * timer for the deadlines sit in one internal epoll set whose fd
 * (spawn_fd()) the agent adds to its own epoll loop; when it is readable,
 * call spawn_process(). The agent must not set SIGCHLD to SIG_IGN nor call
 * waitpid(-1, ...) elsewhere (either would steal the exit status).
 *
 * twist: tcpd runs twist as the service, connected to the client. bpfwrap
 * decides before the handshake (the kernel drops the SYN, or the reject mode
 * resets it), so there is no connection to hand to a command. bpfwrap
 * therefore runs a twist command exactly like spawn -- same expansions (the
 * client's address, name and ports are known), same limits, output to
 * /dev/null -- and the client sees the connection denied. `check` warns that
 * twist text never reaches the client.
 *
 * Errors: 0 or -errno; nothing is printed.
 *
 * (Named spawner.h, not spawn.h: user/ is on the include path and spawn.h
 * would hide the system <spawn.h>.)
 */
#ifndef BPFWRAP_SPAWNER_H
#define BPFWRAP_SPAWNER_H

#include <stdint.h>
#include <sys/types.h>

struct spawn_config {
	unsigned max_children;	/* running at once; 0 = 16 */
	unsigned timeout_ms;	/* per command; 0 = 30000 */
	unsigned kill_grace_ms;	/* SIGTERM -> SIGKILL; 0 = 2000 */
	unsigned rate_burst;	/* commands per rule per interval; 0 = 10 */
	unsigned rate_interval_ms;	/* 0 = 60000 */
	unsigned rate_slots;	/* rules tracked at once; 0 = 1024 */
	const char *shell;	/* NULL = "/bin/sh" (tests) */
};

struct spawn_stats {
	uint64_t started;	/* commands started */
	uint64_t exited;	/* reaped: exited (any status) */
	uint64_t failed;	/* reaped: exit status != 0 or killed by a signal */
	uint64_t timed_out;	/* got SIGTERM after timeout_ms */
	uint64_t killed;	/* needed SIGKILL after the grace time */
	uint64_t refused_busy;	/* -EAGAIN: max_children running */
	uint64_t refused_rate;	/* -EBUSY: the rule's rate limit */
	uint64_t errors;	/* posix_spawn/pidfd failures */
};

struct spawner;

/* spawn_open - a spawner with cfg (NULL = defaults); 0, -ENOMEM or -errno */
int spawn_open(struct spawner **out, const struct spawn_config *cfg);

/* spawn_close - SIGKILL every running group, reap, free */
void spawn_close(struct spawner *sp);

/* spawn_run - start /bin/sh -c command for rule_id; 0, -EAGAIN (busy), -EBUSY (rate), -errno */
int spawn_run(struct spawner *sp, const char *command, uint32_t rule_id, pid_t *pid_out);

/* spawn_fd - epoll fd that is readable when a child exited or a deadline passed */
int spawn_fd(const struct spawner *sp);

/* spawn_process - reap exited children, signal overdue groups; returns how many were reaped */
int spawn_process(struct spawner *sp);

/* spawn_running - children not yet reaped */
unsigned spawn_running(const struct spawner *sp);

/* spawn_get_stats - counters since spawn_open */
void spawn_get_stats(const struct spawner *sp, struct spawn_stats *out);

#endif /* BPFWRAP_SPAWNER_H */
