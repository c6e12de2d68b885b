/*
 * guard.h - the guard: the BPF object (bpf/guard.bpf.c) that enforces
 * bpfwrap's extensions beyond tcpd (docs/extensions.md) next to the policy
 * program. The extensions file and its parser are in extensions.h
 * (user/policy); this is the loader: attach, compile a parsed file into the
 * guard maps, report and revoke.
 *
 * Errors: functions return -errno; the running guard writes its one-line
 * reports (trap hits, limits, revoked connections, file diagnostics) to the
 * FILE given in guard_opts.log and nowhere else.
 */
#ifndef BPFWRAP_USER_GUARD_H
#define BPFWRAP_USER_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bpfwrap_guard.h"
#include "extensions.h"

struct guard_opts {
	const char *pin_dir;		/* the policy loader's pin dir (required) */
	const char *extensions;		/* extensions file, NULL = none */
	bool reject;			/* --reject: deny with RST / ICMP unreachable */
	bool revoke;			/* --revoke: close connections newly denied */
	uint32_t max_bans;		/* size of each ban map; 0 = GUARD_BANS_MAX */
	const char *const *cgroups;	/* cgroup v2 directories to attach to */
	size_t n_cgroups;
	FILE *log;			/* where the guard reports; NULL = stdout */
};

#define GUARD_MAX_BANS_LIMIT (1u << 24)	/* largest --max-bans */

struct guard;

/* guard_open - load the guard object (sharing the pinned policy maps), attach
 * it to the cgroups and to this process's network namespace (never the
 * root one), load the extensions file, start the event/revoke thread */
int guard_open(const struct guard_opts *o, struct guard **out);

/* guard_reload - re-read the extensions file (errors: the rules in force stay),
 * then revoke what the policy in force denies if --revoke */
int guard_reload(struct guard *g);

/* guard_last_error - why the last (re)load of the extensions file was refused
 * (its first error as FILE:LINE:COL: error: ..., or why it could not be read
 * or loaded); "" if it was not */
const char *guard_last_error(const struct guard *g);

/* guard_revoke - close established connections of banned or denied clients;
 * returns how many were closed */
int guard_revoke(struct guard *g);

/* guard_close - stop the thread and release handles; pinned links and maps stay */
void guard_close(struct guard *g);

/* guard_forget - detach and unpin a previous run's guard links under pin_dir
 * and the maps that serve only them (the bans, and which connections were
 * accepted, stay pinned); for a run without extensions. How many pins went. */
int guard_forget(const char *pin_dir);

/* guard_wanted - do these options need the guard at all */
bool guard_wanted(const struct guard_opts *o);

/* guard_pin_path - pin_dir/name into buf; 0 or -ENAMETOOLONG */
int guard_pin_path(char *buf, size_t size, const char *dir, const char *name);

/* guard_delete_keys_where - delete every key (ksz bytes) of map fd for which
 * stale() holds; how many, or -errno */
int guard_delete_keys_where(int fd, size_t ksz, bool (*stale)(const void *key, const void *arg),
			    const void *arg);

#endif /* BPFWRAP_USER_GUARD_H */
