/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * unseen.h - sockets of the guarded cgroups that bpfwrap cannot decide
 * (docs/bpfwrap.8, LIMITS). The kernel charges a socket to the cgroup of the
 * process that created it, so a listener created outside a guarded cgroup
 * and passed in (SCM_RIGHTS, systemd's fd store, inherited before the
 * process joined) is never decided, and an SO_REUSEPORT group with members
 * inside and outside a guarded cgroup is decided only for the inside ones.
 *
 * unseen_scan() lists the TCP listening and the bound UDP sockets of the
 * caller's network namespace with sock_diag (each with its cgroup id, as
 * `ss --cgroup` shows), and the sockets the processes of the guarded cgroups
 * hold (/proc/PID/fd). It counts:
 *   unseen   sockets held by a guarded process whose cgroup is not in a
 *            guarded subtree (the target paths and everything below them,
 *            and for a NAME.service target its sibling NAME.socket, whose
 *            listeners systemd creates and bpfwrap guards as the service's;
 *            a socket unit paired otherwise (Service=) is counted unseen);
 *   partly   address/port/protocol groups with listeners both inside and
 *            outside the guarded subtrees (SO_REUSEPORT);
 *   outside  the converse: sockets created in a guarded subtree that no
 *            guarded process holds (passed out; still decided as the guarded
 *            daemon).
 * Sockets in other network namespaces are not seen.
 *
 * Errors: unseen_scan() returns 0 or -errno and never prints; a part that
 * cannot be read (a netlink query, a process that exits) is counted in
 * rep->errors and skipped, the rest is still counted. Every wait is bounded
 * (netlink with a receive timeout), every list has a cap.
 */
#ifndef BPFWRAP_UNSEEN_H
#define BPFWRAP_UNSEEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "units.h"

#define UNSEEN_NEW_MAX 16	/* newly found unseen sockets returned per scan */
#define UNSEEN_SAID_MAX 1024	/* unseen sockets remembered as reported */

/* One unseen socket, for the warning. */
struct unseen_sock {
	uint64_t inode;		/* the socket's inode */
	pid_t pid;		/* a guarded process that holds it */
	char comm[16];		/* its name */
	const char *proto;	/* "tcp" or "udp" */
	uint16_t port;		/* local port, host order */
};

/* What one scan found. */
struct unseen_report {
	size_t unseen;		/* held in a guarded cgroup, created outside */
	size_t partly;		/* ports shared by guarded and unguarded sockets */
	size_t outside;		/* created in a guarded cgroup, held only outside */
	size_t errors;		/* parts that could not be read */
	size_t n_new;		/* unseen sockets not reported by an earlier scan */
	struct unseen_sock new_socks[UNSEEN_NEW_MAX];
};

/* What earlier scans reported, so each socket is reported once. */
struct unseen_state {
	uint64_t said[UNSEEN_SAID_MAX];	/* inodes found unseen by the last scan, sorted */
	size_t n_said;
};

/* unseen_scan - count the sockets of targets t[0..n) bpfwrap cannot decide (see above) */
int unseen_scan(struct unseen_state *st, const struct guard_target *t, size_t n,
		struct unseen_report *rep);

#endif /* BPFWRAP_UNSEEN_H */
