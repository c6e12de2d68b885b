/*
 * statedir.h - the state directory `bpfwrap run` keeps for `bpfwrap status`
 * (bpffs holds only BPF objects): /run/bpfwrap/default for the default pin
 * directory, else a name made from the pin directory. In it: `state`
 * (key=value: files, load time, generation, pid, cgroups with their attach
 * points and ids, the last refused reload), hosts.allow and hosts.deny as
 * loaded (status parses them under the original names, so rule ids,
 * file:line and texts are those of the policy in force even after the files
 * were edited), `carried`, the per-rule counts of earlier generations (see
 * struct rule_tally), and `agent`, the agent's log and spawn counters
 * (struct agent_record).
 *
 * Errors: functions return 0 or -errno and print nothing.
 */
#ifndef BPFWRAP_USER_STATEDIR_H
#define BPFWRAP_USER_STATEDIR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bpfwrap.h"

#define STATE_ROOT "/run/bpfwrap"
#define STATE_CGROUPS_MAX 64	/* cgroups a run attaches and its state records */

struct policy;

/* One --cgroup PATH[=NAME] of a run. */
struct run_cgroup {
	char path[PATH_MAX];	/* resolved, absolute, on the cgroup2 mount */
	char name[BPFWRAP_DAEMON_NAME_MAX];	/* daemon name, "" = process names */
	char attach[PATH_MAX];	/* where its programs go (units.h) */
	uint64_t attach_id;	/* that cgroup's id while they are attached, else 0 */
};

/*
 * Per-rule decision counts across reloads. The kernel counts per generation
 * (a reload starts at zero); a rule that is still there after a reload (same
 * file, same text, same occurrence of that text) keeps its count: the new
 * generation's `carried` holds what the earlier ones counted, and `status`
 * adds it to the kernel's count. Decisions counted between reading the old
 * counters and the flip are lost (a few at most).
 */
struct rule_tally {
	uint64_t *keys;		/* per rule id: hash of (file, text); [0] = no rule */
	uint64_t *carried;	/* per rule id: decisions counted by earlier generations */
	size_t n;		/* rule ids: n_rules + 1 */
};

/* What is in force, as save_state() records it. */
struct state_record {
	const char *allow, *deny;	/* the policy files (made absolute in the state) */
	const struct run_cgroup *cgroups;
	size_t n_cgroups;
	time_t loaded_at;
	uint32_t generation;
	size_t n_rules, n_entries;
	const char *last_error;	/* why the last reload was refused ("" or NULL: it was not) */
	time_t last_error_at;
	const char *ext_error;	/* why the last extensions reload was refused ("" or NULL:
				 * it was not; the lines in force stay) */
	time_t ext_error_at;
	const struct rule_tally *tally;	/* counts of earlier generations; NULL: none */
};

/* The run's state file, read back. */
struct saved_state {
	char allow[PATH_MAX], deny[PATH_MAX];
	long long loaded;
	unsigned generation;
	int pid;
	char cgroups[STATE_CGROUPS_MAX][PATH_MAX + BPFWRAP_DAEMON_NAME_MAX + 1];
	char attach[STATE_CGROUPS_MAX][PATH_MAX];	/* per cgroup, "" from an older run */
	unsigned long long attach_id[STATE_CGROUPS_MAX];	/* 0: not attached when saved */
	size_t n_cgroups;
	char reload_error[1024];	/* "" = the last reload was not refused */
	long long reload_error_at;
	char ext_error[1024];	/* "" = the last extensions reload was not refused */
	long long ext_error_at;
};

/* What the agent counted (logger and spawner limits), as `run` records it in
 * the file `agent` of its state directory every AGENT_RECORD_MS and at exit. */
struct agent_record {
	long long at;			/* time(NULL) when recorded */
	int pid;			/* the run that counted */
	uint64_t lines;			/* log lines written */
	uint64_t suppressed_client;	/* connection lines held back by the per-client limit */
	uint64_t suppressed_global;	/* ... by the global rate */
	uint64_t lost;			/* lines the log target did not take (queue full, errors) */
	unsigned log_rate, log_burst;	/* the global rate in force; 0/0: none */
	uint64_t spawned;		/* commands started */
	uint64_t refused_busy, refused_rate, refused_total;	/* commands refused by each limit */
	unsigned spawn_total;		/* commands per minute in total; 0: none */
	uint64_t unseen;		/* guarded sockets created outside (unseen.h) */
	uint64_t unseen_partly;		/* ports shared with unguarded sockets */
	uint64_t unseen_outside;	/* sockets created inside, held only outside */
	uint64_t unseen_errors;		/* parts of the last scan that could not be read */
	long long unseen_at;		/* time(NULL) of the last scan; 0: none yet */
};

/* How often `run` records the agent's counters. */
#define AGENT_RECORD_MS 5000

/* state_dir - /run/bpfwrap/default for the default pin dir, else a name made from the pin dir */
int state_dir(const char *pin_dir, char *buf, size_t size);

/* save_state - record what is in force for `status` (files, copies of the
 * policy files if copy, cgroups, the last refused reload, carried counts) */
int save_state(const char *pin_dir, const struct state_record *r, bool copy);

/* load_saved_state - parse the key=value state file of a state dir */
int load_saved_state(const char *dir, struct saved_state *st);

/* load_saved_policy - parse the copies of the files in force under their own names */
int load_saved_policy(const char *dir, const struct saved_state *st, struct policy **out);

/* load_carried - add the counts saved for generation gen to counts[0..n)
 * (nothing when the file is missing or older) */
void load_carried(const char *dir, uint32_t gen, uint64_t *counts, size_t n);

/* save_agent_record - write the agent's counters (file `agent`) into the state dir of pin_dir */
int save_agent_record(const char *pin_dir, const struct agent_record *r);

/* load_agent_record - read them back from a state dir; -ENOENT when there are none */
int load_agent_record(const char *dir, struct agent_record *r);

/* remove_state - delete a state directory and the files run puts there */
void remove_state(const char *dir);

/* tally_next - the tally for policy pol that replaces old: its rule keys, and
 * carried counts (total[]: old's final kernel counters, old->n of them, or
 * NULL) for the rules also in old; 0 or -ENOMEM (next is then empty) */
int tally_next(const struct rule_tally *old, const struct policy *pol, uint64_t *total,
	       struct rule_tally *next);

/* tally_free - release a rule_tally */
void tally_free(struct rule_tally *t);

/* state_dir_safe - 0 if dir is a directory (not a link) of ours that no one else may write;
 * -ELOOP, -ENOTDIR, -EPERM, -errno */
int state_dir_safe(const char *dir);

#endif /* BPFWRAP_USER_STATEDIR_H */
