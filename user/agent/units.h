/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * units.h - the guarded cgroups of `bpfwrap run`: where the programs are
 * attached, which sockets they guard, and under which daemon name (docs/
 * design.md, "Identity"). A `--cgroup PATH[=NAME]` becomes a guard_target;
 * units_sync() puts the targets into the kernel's cgroup_owner and
 * unit_names maps through the loader and attaches what exists.
 *
 * The rules:
 *   - PATH's last component a systemd unit that systemd removes and makes
 *     again (`.service`, `.socket`, `.scope`): the programs go on its parent
 *     (a slice, never the root), so `systemctl restart` or a unit that does
 *     not exist yet (boot) leaves no gap; the unit's sockets are recognised
 *     by the directory's name in the kernel (unit_names).
 *   - Any other PATH (a slice, a container's cgroup): the programs go on it.
 *     If it does not exist yet, it is waited for and attached when it
 *     appears (units_sync() on each tick).
 *   - The daemon name is NAME; without one, the name tcpd would have used:
 *     the program of the service (ExecStart's argv[0], from systemd over
 *     D-Bus), for a socket unit the program of the service it triggers;
 *     a guarded service's socket units are guarded under its name too.
 *     Under a slice without NAME each unit below gets its own program's
 *     name. A unit whose daemon is inetd or xinetd is a super-server: its
 *     sockets take the name of their port's service (units_files). Where nothing names a cgroup, a socket is named by the process
 *     that creates it (comm); a socket older than bpfwrap in such a cgroup
 *     cannot be named and is counted (status: "no owner") and warned about.
 *
 * Errors: every function returns 0 or -errno and never prints; what could
 * not be named is returned in units_report for the caller to report once.
 */
#ifndef BPFWRAP_UNITS_H
#define BPFWRAP_UNITS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpfwrap.h"

struct loader;

#define UNITS_MAX 64		/* --cgroup options */

/* One --cgroup PATH[=NAME]. */
struct guard_target {
	char arg[PATH_MAX];			/* as given, for messages */
	char path[PATH_MAX];			/* absolute, on the cgroup2 mount (may not exist) */
	char attach[PATH_MAX];			/* where the programs go */
	char unit[BPFWRAP_UNIT_NAME_MAX];	/* last component if a systemd unit, else "" */
	char name[BPFWRAP_DAEMON_NAME_MAX];	/* NAME, or the derived program name, or "" */
	bool explicit_name;			/* NAME was given */
	bool attached;				/* the programs are on `attach` */
	uint64_t attach_id;			/* its cgroup id when they were attached */
};

/* What units_sync() could not do, for the caller to say once. */
struct units_report {
	size_t waiting;				/* targets whose attach point does not exist */
	size_t unnamed;				/* guarded unit cgroups without a name */
	char first_unnamed[PATH_MAX];		/* one of them, for the message */
	size_t port_names;			/* super-server services named by port */
	int superserver_err;			/* reading their files failed (-errno) */
};

/* units_cgroup2_mount - the cgroup2 mount point from /proc/self/mountinfo */
int units_cgroup2_mount(char *buf, size_t size);

/* units_plan - parse PATH[=NAME] into t (PATH relative to the cgroup2 mount
 * or absolute under it); *why says what is wrong on -EINVAL/-EPERM */
int units_plan(const char *arg, struct guard_target *t, const char **why);

/* units_is_systemd_unit - is a cgroup directory name a unit systemd re-creates */
bool units_is_systemd_unit(const char *name);

/* The super-servers' configuration files (NULL: the defaults below). */
struct units_files {
	const char *inetd_conf;		/* /etc/inetd.conf */
	const char *xinetd_conf;	/* /etc/xinetd.conf (and its includedir) */
};

#define UNITS_INETD_CONF "/etc/inetd.conf"
#define UNITS_XINETD_CONF "/etc/xinetd.conf"

/* units_sync - write every target's names into the kernel and attach what
 * exists; safe to call again at any time (refreshes names and ids). A
 * cgroup whose daemon is inetd or xinetd names its sockets by port, from
 * those files (port_names). */
int units_sync(struct loader *ld, struct guard_target *t, size_t n, const struct units_files *files,
	       struct units_report *rep);

/* units_is_superserver - is a daemon name inetd's or xinetd's */
bool units_is_superserver(const char *name);

#endif /* BPFWRAP_UNITS_H */
