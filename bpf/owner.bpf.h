/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * owner.bpf.h - which sockets are guarded, and as which daemon
 * (include/bpfwrap.h, "Which sockets are guarded"; docs/design.md,
 * "Identity"). Shared by bpfwrap.bpf.c and guard.bpf.c, after maps.bpf.h.
 *
 *   owner_at_create  cgroup/sock_create, in the creating process: from the
 *                    cgroup ids of its ancestors (cgroup_owner) and the
 *                    directory names of its cgroup and a few parents
 *                    (unit_names), so a service restarted into a new cgroup
 *                    is known before any agent has seen that cgroup.
 *   sock_owner       every other program: the socket's sk_info, or, for a
 *                    socket older than the programs, one made now from its
 *                    cgroup's ids (no process context: no names, no comm).
 *
 * A socket that is not guarded has no sk_info and is never decided. Nothing
 * here fails open for a guarded socket: without memory for sk_info it is
 * decided as daemon OTHER (counted in BPFWRAP_STAT_NO_OWNER).
 */
#ifndef BPFWRAP_OWNER_BPF_H
#define BPFWRAP_OWNER_BPF_H

#include <bpf/bpf_core_read.h>

#define OWNER_CGROUP_DEPTH 16	/* cgroup levels searched in cgroup_owner */
#define OWNER_UNIT_DEPTH 4	/* directory names read upwards from the socket's cgroup */

/* Kernels before 6.15 call kernfs_node's parent `parent`, later `__parent`. */
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

/* kn_parent - a kernfs node's parent directory, on old and new kernels */
static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

/* owner_fill - write the chosen name (or UNNAMED) into a new sk_info */
static __always_inline void owner_fill(struct sock_info *si, const struct cgroup_owner *best)
{
	if (best) {
		__builtin_memcpy(&si->daemon, &best->daemon, sizeof(si->daemon));
		si->flags |= BPFWRAP_SOCK_CGROUP_NAME;
		si->tgid = best->pid;
	} else {
		__builtin_memset(&si->daemon, 0, sizeof(si->daemon));
		si->flags |= BPFWRAP_SOCK_UNNAMED;
	}
}

/* owner_guarded - do the folded enum bpfwrap_cgroup_flags of a socket's
 * cgroups guard it */
static __always_inline bool owner_guarded(__u32 flags)
{
	return (flags & (BPFWRAP_CG_GUARDED | BPFWRAP_CG_EXEMPT)) == BPFWRAP_CG_GUARDED;
}

/*
 * owner_at_create - in the creating process: the folded flags of a new
 * socket's cgroups (guarded: owner_guarded()), and the name they give it,
 * into *name with *named true (else the caller names it by comm). The name of the nearest
 * directory in unit_names wins (the loader writes those for units only),
 * else the deepest non-empty name in cgroup_owner. The loops keep only
 * scalars and stack bytes across iterations (no map pointers, no
 * comparisons of levels): the verifier then sees few states per iteration.
 */
static __always_inline __u32 owner_at_create(struct daemon_key *name, bool *named)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct kernfs_node *kn;
	__u32 flags = 0;

	*named = false;
	/* The directory names: a cgroup the loader has not seen yet (made by
	 * `systemctl restart` a moment ago) is still known by its name. */
	kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
	for (int up = 0; up < OWNER_UNIT_DEPTH; up++) {
		struct unit_key key = {};
		const struct cgroup_owner *o;
		const char *dname;

		if (!kn)
			break;
		dname = BPF_CORE_READ(kn, name);
		if (bpf_probe_read_kernel_str(key.name, sizeof(key.name), dname) <= 0)
			break;
		o = bpf_map_lookup_elem(&unit_names, &key);
		if (o) {
			flags |= o->flags;
			if (o->daemon.name[0] && !*named) {
				__builtin_memcpy(name, &o->daemon, sizeof(*name));
				*named = true;
			}
		}
		kn = kn_parent(kn);
	}
	for (int level = OWNER_CGROUP_DEPTH; level >= 1; level--) {
		__u64 id = bpf_get_current_ancestor_cgroup_id(level);
		const struct cgroup_owner *o;

		if (!id)
			continue;
		o = bpf_map_lookup_elem(&cgroup_owner, &id);
		if (!o)
			continue;
		flags |= o->flags;
		if (o->daemon.name[0] && !*named) {
			__builtin_memcpy(name, &o->daemon, sizeof(*name));
			*named = true;
		}
	}
	return flags;
}

/*
 * owner_by_port - name a super-server's socket after the service of its
 * local port (port_names), once: the name is kept in sk_info and accepted
 * sockets inherit it. A port not (yet) in the map keeps the super-server's
 * own name and is looked up again at the next packet.
 */
static __always_inline void owner_by_port(struct bpf_sock *sk, struct sock_info *si)
{
	struct port_key key = { .port = (__u16)sk->src_port, .proto = (__u8)sk->protocol };
	const struct daemon_key *name = bpf_map_lookup_elem(&port_names, &key);

	if (!name)
		return;
	__builtin_memcpy(&si->daemon, name, sizeof(si->daemon));
	WRITE_ONCE(si->daemon_cache, 0);
	si->flags = (si->flags & ~(__u32)(BPFWRAP_SOCK_BY_PORT | BPFWRAP_SOCK_UNNAMED)) |
		    BPFWRAP_SOCK_CGROUP_NAME;
}

/*
 * sock_owner - the owner of a socket the programs see; false if it is not
 * guarded (leave it alone). *out is NULL for a guarded socket without
 * sk_info (no memory): decided as daemon OTHER.
 */
static __always_inline bool sock_owner(struct bpf_sock *sk, const struct sock_info **out)
{
	const struct cgroup_owner *best = NULL;
	__u64 best_id = 0;
	__u32 flags = 0;
	struct sock_info *si;

	si = bpf_sk_storage_get(&sk_info, sk, 0, 0);
	*out = si;
	if (si) {
		if (si->flags & BPFWRAP_SOCK_BY_PORT)
			owner_by_port(sk, si);
		return true;
	}
	/* Older than the programs: ask its cgroup (the one it was created in).
	 * Only scalars cross iterations (see owner_at_create). */
	for (int level = 1; level <= OWNER_CGROUP_DEPTH; level++) {
		__u64 id = bpf_sk_ancestor_cgroup_id(sk, level);
		const struct cgroup_owner *o;

		if (!id)
			break;
		o = bpf_map_lookup_elem(&cgroup_owner, &id);
		if (!o)
			continue;
		flags |= o->flags;
		if (o->daemon.name[0])
			best_id = id;
	}
	if (!owner_guarded(flags))
		return false;
	si = bpf_sk_storage_get(&sk_info, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!si)
		return true;
	si->flags = BPFWRAP_SOCK_LATE;
	si->tgid = 0;
	__builtin_memset(si->comm, 0, sizeof(si->comm));
	if (best_id)
		best = bpf_map_lookup_elem(&cgroup_owner, &best_id);
	owner_fill(si, best);
	if (flags & BPFWRAP_CG_BY_PORT) {
		si->flags |= BPFWRAP_SOCK_BY_PORT;
		owner_by_port(sk, si);
	}
	*out = si;
	return true;
}

#endif /* BPFWRAP_OWNER_BPF_H */
