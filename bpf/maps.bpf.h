/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * maps.bpf.h - every map of bpfwrap's BPF object, with who writes it and the
 * byte order of what it holds (the types are in include/bpfwrap.h). Included
 * once, by bpfwrap.bpf.c; the loader pins all of them except the test-only
 * and read-only ones (see user/kernel/loader.c).
 */
#ifndef BPFWRAP_MAPS_BPF_H
#define BPFWRAP_MAPS_BPF_H

/*
 * Inner-map templates of the policy generations. User space creates the real
 * inner maps per policy with max_entries sized to the compiled tables; the
 * kernel compares only type, key/value size and flags for LPM tries and
 * hashes (bpf_map_meta_equal), so max_entries 1 here is just a template.
 * LPM tries must be BPF_F_NO_PREALLOC. Sizes are given as key_size/value_size:
 * clang 14 emits a struct used only through a template's __type() pointer
 * as a BTF forward declaration, which libbpf cannot size. The counter arrays need
 * BPF_F_INNER_MAP (template and every inner map) so their sizes may differ.
 */
/* IPv4 interval tables (include/bpfwrap.h): mmap()able so the loader fills
 * them with memcpy. */
struct v4_tree_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct v4_node));
};

struct v4_ents_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct v4_ent));
};

struct lpm_v6_map {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct policy_key_v6));
	__uint(value_size, sizeof(struct policy_entry));
};

/* Sorted IPv6 host array: BPF_F_MMAPABLE so the loader fills it with memcpy. */
struct hosts_v6_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct host_rec_v6));
};

struct daemons_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct daemon_key));	/* lower-case, zero-padded */
	__uint(value_size, sizeof(__u32));		/* daemon id, host order, >= 1 */
};

/* Kernel 6.18 refuses BPF_F_INNER_MAP on PERCPU_ARRAY (EINVAL), and without
 * it every inner array must have the template's size; so the per-rule
 * counters are a plain ARRAY updated with atomic adds. */
struct counters_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));	/* rule id, host order */
	__uint(value_size, sizeof(__u64));	/* decisions by that rule */
};

/* policy_v4_tree[slot]: IPv4 (and v4-mapped) client directory and search
 * trees. Written by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct v4_tree_map);
} policy_v4_tree SEC(".maps");

/* policy_v4_ents[slot]: the entry of each IPv4 interval. Written by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct v4_ents_map);
} policy_v4_ents SEC(".maps");

/* policy_v6[slot]: IPv6 client table. Written by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct lpm_v6_map);
} policy_v6 SEC(".maps");

/* policy_hosts_v6[slot]: IPv6 /128 entries, sorted array. Written by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct hosts_v6_map);
} policy_hosts_v6 SEC(".maps");

/* policy_daemons[slot]: daemon name -> id of the policy. Written by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct daemons_map);
} policy_daemons SEC(".maps");

/* policy_counters[slot]: per-rule hit counters. Created by the loader,
 * incremented by the programs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct counters_map);
} policy_counters SEC(".maps");

/* active[0]: the generation in force (struct active_gen). Written by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct active_gen);
} active SEC(".maps");

/* policy_info[slot]: table sizes for `status` (struct policy_info). Written
 * by the loader, not read by the programs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct policy_info);
} policy_info SEC(".maps");

/* agent_alive[0]: the agent's heartbeat (struct agent_alive). Written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct agent_alive);
} agent_alive SEC(".maps");

/* verdict_cache: the agent's answers to ASK (struct verdict_key/value).
 * Written by the agent, read by the programs. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct verdict_key);
	__type(value, struct verdict_value);
} verdict_cache SEC(".maps");

/* cgroup_owner: cgroup v2 id (host order) -> struct cgroup_owner: the
 * guarded cgroups and the names of cgroups (include/bpfwrap.h, "Which
 * sockets are guarded"). Written by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct cgroup_owner);
} cgroup_owner SEC(".maps");

/* unit_names: cgroup directory name ("ssh.service") -> struct
 * cgroup_owner, for cgroups made after the loader looked (a restarted
 * service). Written by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct unit_key);
	__type(value, struct cgroup_owner);
} unit_names SEC(".maps");

/* port_names: a super-server's local port -> daemon name (include/bpfwrap.h).
 * Written by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct port_key);
	__type(value, struct daemon_key);
} port_names SEC(".maps");

/* sk_info: per-socket owner (struct sock_info). Written by sock_create and by
 * the loader's adoption of older sockets; cloned into accepted sockets. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct sock_info);
} sk_info SEC(".maps");

/* events: struct event records for the agent. Written by the programs. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* flow_recent: the flows that got an event lately, so that SYN retransmits
 * and repeated datagrams of one flow give one event per dedup_ns. A
 * direct-mapped cache (slot = hash of the 5-tuple), not an LRU hash: a hit
 * or a replacement is a plain array access, where an LRU insert takes locks
 * and, once full, evicts — on every SYN of a flood from changing ports. Two
 * flows sharing a slot just evict each other (an extra event, never a lost
 * verdict). Written by the programs only. */
struct flow_key {
	__u8 saddr[16];		/* network order */
	__u8 daddr[16];		/* network order */
	__u16 sport;		/* network order */
	__u16 dport;		/* network order */
	__u8 family;
	__u8 proto;
	__u8 _pad[2];
};

struct flow_slot {
	struct flow_key key;
	__u64 seen_ns;		/* CLOCK_MONOTONIC of the event sent */
};

#define FLOW_SLOTS 16384	/* power of two */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FLOW_SLOTS);
	__type(key, __u32);
	__type(value, struct flow_slot);
} flow_recent SEC(".maps");

/* src_recent: denials aggregated per (client, daemon, server port), the
 * layout and protocol in include/bpfwrap.h. A direct-mapped array for the
 * reason flow_recent is one: a flood from changing sources costs a plain
 * array access per SYN, never an LRU insert. Written by the programs, read
 * by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFWRAP_SRC_SLOTS);
	__type(key, __u32);
	__type(value, struct src_slot);
} src_recent SEC(".maps");

/* event_limits[0]: aggregation window and global event cap (struct
 * event_limits). Written by the loader at open, the cap's second by the
 * programs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event_limits);
} event_limits SEC(".maps");

/* stats: global counters indexed by enum bpfwrap_stat. Written by the programs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPFWRAP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* test_names[i]: the socket owner the test twin pretends to see for cb[0] =
 * i + 1. Written by tests and user/kernel/kernel_match.c only; never pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFWRAP_TEST_NAMES_MAX);
	__type(key, __u32);
	__type(value, struct sock_info);
} test_names SEC(".maps");

#endif /* BPFWRAP_MAPS_BPF_H */
