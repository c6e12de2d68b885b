/*
 * v4table.h - build the inner maps of a compiled policy (v4table.c): the
 * IPv4 interval tables, the IPv6 trie and host array, the daemon-name
 * table. Internal to user/kernel: the loader stores what these return in
 * the idle slot of its outer maps.
 *
 * Every function returns an fd (or 0) or -errno and never prints.
 */
#ifndef BPFWRAP_V4TABLE_H
#define BPFWRAP_V4TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <linux/bpf.h>

struct compiled_v4;
struct compiled_policy;
struct daemon_key;

/* Where the parts of a compiled table entry sit (compiled_v4 / compiled_v6). */
struct family_layout {
	int family;		/* AF_INET / AF_INET6 */
	size_t stride;		/* sizeof(struct compiled_vN) */
	size_t entry_off;	/* offsetof(struct compiled_vN, entry) */
	size_t data_len;	/* daemon id + address bytes after prefixlen */
	__u32 host_bits;	/* prefixlen of a host entry */
	size_t rec_size;	/* sizeof(struct host_rec_vN) */
	const char *lpm_name, *host_name;
};

/* layout_v6 - where the parts of a compiled_v6 entry sit */
extern const struct family_layout layout_v6;

/* create_inner - a new inner map of the idle slot */
int create_inner(enum bpf_map_type type, const char *name, size_t ksz, size_t vsz,
		 size_t entries, __u32 flags);

/* fill_family - create and fill one family's trie (*lpm_fd) and sorted host
 * array (*host_fd); both -1 on failure */
int fill_family(const void *entries, size_t n, const struct family_layout *fl,
		int *lpm_fd, int *host_fd, __u32 *n_prefixes, __u32 *n_hosts);

/* fill_v4 - the IPv4 interval tables of a compiled policy: the tree map
 * (header, directory, nodes) in *tree_fd, the intervals in *ents_fd; both
 * -1 on failure */
int fill_v4(const struct compiled_v4 *cv, size_t n, int *tree_fd, int *ents_fd,
	    __u32 *n_prefixes, __u32 *n_hosts);

/* daemon_key_set - lower-cased, zero-padded key from a name (cut to fit) */
void daemon_key_set(struct daemon_key *k, const char *name, size_t max);

/* fill_daemons - create and fill the daemon-name table */
int fill_daemons(const struct compiled_policy *cp);

#endif /* BPFWRAP_V4TABLE_H */
