/*
 * instance.h - one `bpfwrap run` per pin directory and per cgroup.
 *
 * Two runs on one pin directory would fight over its generations; two runs
 * (other pin directories) whose cgroups overlap would stack two sets of
 * programs on the sockets there: every connection decided twice, logged and
 * spawned for twice. So a run claims its pin directory and its attach points
 * before it touches anything:
 *
 *   - a record per pin directory, /run/bpfwrap/KEY.lock (KEY as for the
 *     state directory, statedir.h), holding the run's pid, its pin directory
 *     and its attach points. A run holds flock(LOCK_EX) on it for its whole
 *     life; the lock dies with the process (kill -9 included). After a run
 *     stops the record stays, unlocked: its pins still enforce on those
 *     attach points. `bpfwrap detach` (and a start that fails with nothing
 *     left pinned) removes it.
 *   - the claim compares, under /run/bpfwrap/.registry (flock, held only
 *     while claiming), this run's attach points with every other record's:
 *     the same cgroup, or one inside the other, is refused, whether the
 *     other run is alive (its pid) or stopped with its pins in force.
 *   - and asks the kernel: a bpfwrap program attached to one of the attach
 *     points that no link pinned in this pin directory holds is another
 *     instance's (one /run/bpfwrap does not know of), also refused.
 *
 * Errors: functions return 0 or -errno and print nothing; a refusal is
 * -EBUSY with struct instance_conflict saying who holds what.
 */
#ifndef BPFWRAP_INSTANCE_H
#define BPFWRAP_INSTANCE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long a claim waits for another claim, and detach for a run to exit. */
#define INSTANCE_WAIT_MS 5000

struct instance;

/* Why a claim was refused. */
struct instance_conflict {
	int pid;			/* the run that holds it (running), or the last one; 0: unknown */
	bool running;			/* that run is alive */
	char pin_dir[PATH_MAX];		/* its pin directory ("" when only the kernel knows) */
	char theirs[PATH_MAX];		/* its attach point ("": the pin directory itself) */
	char mine[PATH_MAX];		/* this run's attach point that overlaps */
	uint32_t prog_id;		/* found in the kernel only: the program attached there */
};

/* instance_claim - claim pin_dir and the attach points attach[0..n) for this
 * process: 0 and *out (keep it for the life of the run), -EBUSY with *c
 * filled when another run holds or enforces them, -errno */
int instance_claim(const char *pin_dir, const char *const *attach, size_t n,
		   struct instance **out, struct instance_conflict *c);

/* instance_release - give the claim up (the lock) at exit; forget: also remove
 * the record, nothing of this pin directory is left in force */
void instance_release(struct instance *in, bool forget);

/* instance_holder - the pid of the run holding pin_dir: 1 and *pid, 0 if no
 * run holds it, -errno */
int instance_holder(const char *pin_dir, int *pid);

/* instance_wait_released - wait up to timeout_ms for the run holding pin_dir
 * to exit: 0 once none holds it, -ETIMEDOUT */
int instance_wait_released(const char *pin_dir, int timeout_ms);

/* instance_forget - remove the record of pin_dir if no run holds it (after
 * `bpfwrap detach`): 0, -EBUSY if a run holds it, -errno */
int instance_forget(const char *pin_dir);

#endif /* BPFWRAP_INSTANCE_H */
