/*
 * loader_int.h - what loader.c (lifecycle, policy loads, status) and
 * attach.c (cgroups, links, adoption) share: the loader instance itself.
 * Internal to user/kernel; the public interface is loader.h.
 */
#ifndef BPFWRAP_LOADER_INT_H
#define BPFWRAP_LOADER_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader.h"

struct bpf_link;

#define MAX_LINKS 64		/* cgroups x programs per instance */

/* The programs attached to every cgroup, in attach order: owners are
 * recorded before anything decides on them. */
enum attach_prog { AP_SOCK_CREATE, AP_SOCKOPS, AP_INGRESS, AP_MAX };

struct link_slot {
	uint64_t cgroup_id;
	enum attach_prog prog;
	struct bpf_link *link;
};

struct loader {
	struct bpfwrap_bpf *skel;
	char pin_dir[PATH_MAX];	/* empty: nothing pinned */
	bool maps_reused;
	struct link_slot links[MAX_LINKS];
	size_t n_links;
};

/* path_join - dir + "/" + name into buf; -ENAMETOOLONG if it does not fit */
int path_join(char *buf, size_t size, const char *dir, const char *name);

#endif /* BPFWRAP_LOADER_INT_H */
