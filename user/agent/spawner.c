/*
 * spawner.c - background shell commands for spawn/twist with a concurrency
 * limit, per-rule and total token buckets and timeouts; children are reaped through
 * pidfds in an epoll set the agent polls (spawner.h).
 *
 * Errors: 0 or -errno; nothing is printed. A command that cannot be started
 * is counted in stats.errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include "spawner.h"
#include "util.h"

#define TIMER_TAG UINT32_MAX	/* epoll data of the deadline timer */
#define RATE_RULES_MAX (1u << 20)	/* rule ids above share the last bucket */
#define DEFAULT_TOTAL_BURST 60	/* commands per interval, all rules together */

enum stage { RUNNING, TERMINATED, KILLED };

struct child {
	bool used;
	pid_t pid;		/* also the process group id */
	int pidfd;
	enum stage stage;
	uint64_t deadline;	/* ms: next signal is due */
};

struct bucket {
	uint64_t millitokens;
	uint64_t last;		/* ms of the last refill; 0 = never used */
};

struct spawner {
	struct spawn_config cfg;
	int epfd, timer_fd;
	struct child *children;
	unsigned running;
	struct bucket *buckets;	/* per rule id */
	size_t n_buckets;
	struct bucket total;	/* all rules together */
	uint64_t armed;
	struct spawn_stats stats;
};

static char *const child_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	NULL,
};

/* spawn_open - a spawner with cfg (NULL = defaults); 0, -ENOMEM or -errno */
int spawn_open(struct spawner **out, const struct spawn_config *cfg)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = TIMER_TAG };
	struct spawner *sp;
	int err;

	*out = NULL;
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	if (cfg)
		sp->cfg = *cfg;
	if (!sp->cfg.max_children)
		sp->cfg.max_children = 16;
	if (!sp->cfg.timeout_ms)
		sp->cfg.timeout_ms = 30000;
	if (!sp->cfg.kill_grace_ms)
		sp->cfg.kill_grace_ms = 2000;
	if (!sp->cfg.rate_burst)
		sp->cfg.rate_burst = 10;
	if (!sp->cfg.rate_interval_ms)
		sp->cfg.rate_interval_ms = 60000;
	if (!sp->cfg.total_burst)
		sp->cfg.total_burst = DEFAULT_TOTAL_BURST;
	if (!sp->cfg.shell)
		sp->cfg.shell = "/bin/sh";
	sp->epfd = epoll_create1(EPOLL_CLOEXEC);
	sp->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	sp->children = calloc(sp->cfg.max_children, sizeof(*sp->children));
	if (sp->epfd < 0 || sp->timer_fd < 0 || !sp->children) {
		err = sp->children ? -errno : -ENOMEM;
		goto fail;
	}
	if (epoll_ctl(sp->epfd, EPOLL_CTL_ADD, sp->timer_fd, &ev) < 0) {
		err = -errno;
		goto fail;
	}
	*out = sp;
	return 0;
fail:
	spawn_close(sp);
	return err;
}

/* arm - (re)arm the deadline timer for the earliest deadline of a running child */
static void arm(struct spawner *sp)
{
	struct itimerspec its = { 0 };
	uint64_t next = 0;

	for (unsigned i = 0; i < sp->cfg.max_children; i++) {
		struct child *c = &sp->children[i];

		if (c->used && c->stage != KILLED && (!next || c->deadline < next))
			next = c->deadline;
	}
	if (next == sp->armed)
		return;
	if (next) {
		its.it_value.tv_sec = (time_t)(next / 1000);
		its.it_value.tv_nsec = (long)(next % 1000) * 1000000;
	}
	if (timerfd_settime(sp->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		sp->armed = next;
}

/* bucket_refill - bring a bucket of cap milli-tokens up to date: cap per rate_interval_ms */
static void bucket_refill(const struct spawner *sp, struct bucket *b, uint64_t cap, uint64_t now)
{
	if (!b->last) {
		b->millitokens = cap;
	} else if (now > b->last) {
		uint64_t add = (now - b->last) * cap / sp->cfg.rate_interval_ms;

		b->millitokens = b->millitokens + add > cap ? cap : b->millitokens + add;
	}
	if (now >= b->last)
		b->last = now ? now : 1;
}

/* rule_bucket - rule_id's bucket, brought up to date; NULL without memory */
static struct bucket *rule_bucket(struct spawner *sp, uint32_t rule_id, uint64_t now)
{
	size_t idx = rule_id < RATE_RULES_MAX ? rule_id : RATE_RULES_MAX;

	if (idx >= sp->n_buckets) {
		size_t n = idx + 64 < RATE_RULES_MAX + 1 ? idx + 64 : RATE_RULES_MAX + 1;
		struct bucket *nb = realloc(sp->buckets, n * sizeof(*nb));

		if (!nb)
			return NULL;
		memset(nb + sp->n_buckets, 0, (n - sp->n_buckets) * sizeof(*nb));
		sp->buckets = nb;
		sp->n_buckets = n;
	}
	bucket_refill(sp, &sp->buckets[idx], (uint64_t)sp->cfg.rate_burst * 1000, now);
	return &sp->buckets[idx];
}

/* take_tokens - one token from rule_id's bucket and the total one; -EBUSY (counted) if either is empty */
static int take_tokens(struct spawner *sp, uint32_t rule_id, uint64_t now)
{
	struct bucket *b = rule_bucket(sp, rule_id, now);

	if (!b || b->millitokens < 1000) {
		sp->stats.refused_rate++;	/* no memory: fail closed, no command */
		return -EBUSY;
	}
	if (!sp->cfg.no_total_limit) {
		bucket_refill(sp, &sp->total, (uint64_t)sp->cfg.total_burst * 1000, now);
		if (sp->total.millitokens < 1000) {
			sp->stats.refused_total++;
			return -EBUSY;
		}
		sp->total.millitokens -= 1000;
	}
	b->millitokens -= 1000;
	return 0;
}

/* start - posix_spawn the shell in its own group with /dev/null on 0-2 */
static int start(struct spawner *sp, const char *command, pid_t *pid)
{
	char *argv[] = { "sh", "-c", (char *)command, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int err;

	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	if ((err = posix_spawnattr_init(&attr)))
		return -err;
	if ((err = posix_spawn_file_actions_init(&fa))) {
		posix_spawnattr_destroy(&attr);
		return -err;
	}
	err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
					      POSIX_SPAWN_SETSIGDEF);
	err = err ?: posix_spawnattr_setpgroup(&attr, 0);
	err = err ?: posix_spawnattr_setsigmask(&attr, &none);
	err = err ?: posix_spawnattr_setsigdefault(&attr, &all);
	err = err ?: posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	err = err ?: posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	err = err ?: posix_spawn_file_actions_adddup2(&fa, 1, 2);
	err = err ?: posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	err = err ?: posix_spawn(pid, sp->cfg.shell, &fa, &attr, argv, child_env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return -err;
}

/* spawn_run - start /bin/sh -c command for rule_id; 0, -EAGAIN (busy), -EBUSY (rate), -errno */
int spawn_run(struct spawner *sp, const char *command, uint32_t rule_id, pid_t *pid_out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct child *slot = NULL;
	uint64_t now = monotonic_ms();
	pid_t pid;
	int err, pidfd;

	if (!sp || !command)
		return -EINVAL;
	for (unsigned i = 0; i < sp->cfg.max_children && !slot; i++)
		if (!sp->children[i].used)
			slot = &sp->children[i];
	if (!slot) {
		sp->stats.refused_busy++;
		return -EAGAIN;
	}
	err = take_tokens(sp, rule_id, now);
	if (err)
		return err;
	err = start(sp, command, &pid);
	if (err) {
		sp->stats.errors++;
		return err;
	}
	/* the child stays a zombie until we reap it, so its pid cannot be reused here */
	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		err = -errno;
		kill(-pid, SIGKILL);
		waitpid(pid, NULL, 0);	/* just killed: returns at once */
		sp->stats.errors++;
		return err;
	}
	ev.data.u32 = (uint32_t)(slot - sp->children);
	if (epoll_ctl(sp->epfd, EPOLL_CTL_ADD, pidfd, &ev) < 0) {
		err = -errno;
		kill(-pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(pidfd);
		sp->stats.errors++;
		return err;
	}
	*slot = (struct child){ .used = true, .pid = pid, .pidfd = pidfd, .stage = RUNNING,
				.deadline = now + sp->cfg.timeout_ms };
	sp->running++;
	sp->stats.started++;
	arm(sp);
	if (pid_out)
		*pid_out = pid;
	return 0;
}

/* release - forget a reaped child */
static void release(struct spawner *sp, struct child *c)
{
	epoll_ctl(sp->epfd, EPOLL_CTL_DEL, c->pidfd, NULL);
	close(c->pidfd);
	c->used = false;
	sp->running--;
}

/* spawn_process - reap exited children, signal overdue groups; returns how many were reaped */
int spawn_process(struct spawner *sp)
{
	uint64_t expirations, now = monotonic_ms();
	int reaped = 0;

	if (!sp)
		return -EINVAL;
	if (read(sp->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return -errno;
	sp->armed = 0;	/* a read timer is disarmed */
	for (unsigned i = 0; i < sp->cfg.max_children; i++) {
		struct child *c = &sp->children[i];
		siginfo_t si = { 0 };

		if (!c->used)
			continue;
		if (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid) {
			sp->stats.exited++;
			if (si.si_code != CLD_EXITED || si.si_status != 0)
				sp->stats.failed++;
			release(sp, c);
			reaped++;
			continue;
		}
		if (now < c->deadline || c->stage == KILLED)
			continue;
		if (c->stage == RUNNING) {
			kill(-c->pid, SIGTERM);
			c->stage = TERMINATED;
			c->deadline = now + sp->cfg.kill_grace_ms;
			sp->stats.timed_out++;
		} else {
			kill(-c->pid, SIGKILL);
			c->stage = KILLED;
			sp->stats.killed++;
		}
	}
	arm(sp);
	return reaped;
}

/* spawn_close - SIGKILL every running group, reap, free */
void spawn_close(struct spawner *sp)
{
	if (!sp)
		return;
	for (unsigned i = 0; sp->children && i < sp->cfg.max_children; i++) {
		struct child *c = &sp->children[i];

		if (!c->used)
			continue;
		kill(-c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);	/* SIGKILL: returns promptly */
		release(sp, c);
	}
	if (sp->epfd >= 0)
		close(sp->epfd);
	if (sp->timer_fd >= 0)
		close(sp->timer_fd);
	free(sp->children);
	free(sp->buckets);
	free(sp);
}

/* spawn_fd - epoll fd that is readable when a child exited or a deadline passed */
int spawn_fd(const struct spawner *sp)
{
	return sp ? sp->epfd : -EINVAL;
}

/* spawn_running - children not yet reaped */
unsigned spawn_running(const struct spawner *sp)
{
	return sp->running;
}

/* spawn_get_stats - counters since spawn_open */
void spawn_get_stats(const struct spawner *sp, struct spawn_stats *out)
{
	*out = sp->stats;
	out->total_burst = sp->cfg.no_total_limit ? 0 : sp->cfg.total_burst;
}
