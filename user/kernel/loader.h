/*
 * loader.h - put bpfwrap into the kernel and keep it there: load the BPF
 * object, write compiled policies into the idle generation and flip, attach
 * to cgroups with pinned bpf_links, adopt sockets that predate bpfwrap,
 * report counters, detach and unpin.
 *
 * Library code: every function returns 0 (or a count) or -errno and never
 * prints. A failed policy load leaves the policy in force untouched.
 */
#ifndef BPFWRAP_LOADER_H
#define BPFWRAP_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpfwrap.h"

struct compiled_policy;
struct bpfwrap_bpf;

/* Default pin directory on bpffs. */
#define LOADER_PIN_DIR "/sys/fs/bpf/bpfwrap"
/* Programs attached to each cgroup (sock_create, sockops, ingress). */
#define LOADER_PROGS_PER_CGROUP 3
/* How the kernel names bpfwrap's programs (bpf_prog_info.name). */
#define LOADER_PROG_PREFIX "bpfwrap_"

struct loader_opts {
	/* Where maps and links are pinned; NULL = nothing pinned (a private
	 * instance, e.g. for kernel match: links die with the loader). Pinned
	 * maps found there are reused, so a restarted agent adopts the
	 * enforcement in force. */
	const char *pin_dir;
	uint32_t ringbuf_bytes;	/* 0: 1 MiB; power of two, >= page size */
	uint64_t dedup_ns;	/* 0: 60 s; one event per flow per this */
	/* Written into event_limits when either is set (else those in force,
	 * defaults for new maps, stay): */
	uint64_t agg_ns;	/* 0: 60 s; a client's plain denials to one daemon and
				 * port: one event per this (include/bpfwrap.h, src_recent) */
	uint32_t event_cap;	/* DENY and SPAWN events per second, all sources;
				 * 0: BPFWRAP_EVENT_CAP_DEFAULT; BPFWRAP_EVENT_CAP_NONE */
};

struct loader;

/* Summed view for `status`. */
struct loader_status {
	uint32_t generation;		/* 0 = no policy loaded */
	uint32_t v4_entries;		/* entries of the active policy (prefixes + hosts) */
	uint32_t v6_entries;
	uint32_t v4_hosts;		/* of which host (/32, /128) entries */
	uint32_t v6_hosts;
	uint32_t daemons;
	uint32_t rules;			/* counter slots - 1 */
	uint64_t stats[BPFWRAP_STAT_MAX];	/* summed over CPUs */
	uint32_t agent_pid;
	bool agent_alive;
	bool maps_reused;		/* pinned maps were adopted at open */
};

/* loader_open - open, size, load the BPF object; reuse/pin maps in opts->pin_dir */
int loader_open(const struct loader_opts *opts, struct loader **out);

/* loader_close - release the process's handles; pinned maps and links stay */
void loader_close(struct loader *ld);

/* loader_skel - the skeleton (programs and maps) of an open loader */
struct bpfwrap_bpf *loader_skel(struct loader *ld);

/* loader_generation - the generation in force (0 = none) */
int loader_generation(struct loader *ld, uint32_t *gen);

/* loader_load_policy - write cp into the idle slot, flip, free the old slot */
int loader_load_policy(struct loader *ld, const struct compiled_policy *cp);

/* loader_load_policy_counted - loader_load_policy, and when a policy was in
 * force, its final per-rule counts in old_counts[0..n) (read after the flip,
 * once no program can add to them; zeros if they cannot be read). On
 * failure old_counts is untouched. */
int loader_load_policy_counted(struct loader *ld, const struct compiled_policy *cp,
			       uint64_t *old_counts, size_t n);

/* loader_attach_cgroup - attach ingress, sock_create and sockops to a cgroup v2
 * directory with bpf_links (replacing older programs in place if pinned) */
int loader_attach_cgroup(struct loader *ld, const char *cgroup_path);

/* loader_detach_cgroup - remove this instance's links (and pins) from a cgroup */
int loader_detach_cgroup(struct loader *ld, const char *cgroup_path);

/* loader_forget_cgroup_id - detach, unpin and forget this instance's links
 * for a cgroup id, also when the cgroup's directory is gone */
int loader_forget_cgroup_id(struct loader *ld, uint64_t cgid);

/* loader_links_attached - of this instance's links for cgroup id cgid (*held
 * of them), how many the kernel reports still attached to that cgroup (a
 * link detached by `bpfwrap detach` or by hand is not) */
int loader_links_attached(struct loader *ld, uint64_t cgid, size_t *held);

/* loader_pinned_links - of the links pinned in pin_dir for cgroup id cgid,
 * how many the kernel reports attached to it (0..LOADER_PROGS_PER_CGROUP);
 * needs no open loader */
int loader_pinned_links(const char *pin_dir, uint64_t cgid);

/* loader_foreign_program - a bpfwrap program attached to the cgroup at
 * cgroup_path that no link pinned in pin_dir holds (another instance's, or a
 * stopped one's): 1 and its id in *prog_id, 0 if none, -errno */
int loader_foreign_program(const char *pin_dir, const char *cgroup_path, uint32_t *prog_id);

/* loader_n_links - how many links this instance holds or adopted */
size_t loader_n_links(const struct loader *ld);

/* loader_unpin_all - detach every pinned link under pin_dir, unpin every map,
 * remove the directory (works without an open loader) */
int loader_unpin_all(const char *pin_dir);

/*
 * Which cgroups are guarded, and their daemon names: the cgroup_owner and
 * unit_names maps (include/bpfwrap.h, "Which sockets are guarded"). Names
 * are lower-cased; flags are enum bpfwrap_cgroup_flags; flags 0 with an
 * empty name removes the entry.
 */
/* loader_set_cgroup_owner - the cgroup at cgroup_path (and below): name,
 * flags, and the PID to log for its sockets older than the programs */
int loader_set_cgroup_owner(struct loader *ld, const char *cgroup_path, const char *name,
			    uint32_t flags, uint32_t pid);

/* loader_set_unit_name - every cgroup directory called `unit`: name, flags */
int loader_set_unit_name(struct loader *ld, const char *unit, const char *name, uint32_t flags);

/* loader_unit_name - the name and flags unit_names holds for `unit`; -ENOENT if none */
int loader_unit_name(struct loader *ld, const char *unit, char *name, size_t size, uint32_t *flags);

/* loader_set_port_names - port_names holds exactly these n (port, proto,
 * name) entries (a super-server's services, include/bpfwrap.h) */
int loader_set_port_names(struct loader *ld, const struct port_key *keys,
			  const char (*names)[BPFWRAP_DAEMON_NAME_MAX], size_t n);

/* loader_adopt_sockets - record the owner of every TCP/UDP socket already open
 * by processes in cgroup_path and its descendants; returns how many were
 * recorded (sockets with an owner already are kept as they are) */
int loader_adopt_sockets(struct loader *ld, const char *cgroup_path);

/* loader_status - generation, table sizes, global stats, agent heartbeat */
int loader_status(struct loader *ld, struct loader_status *st);

/* loader_rule_counters - per-rule hits of the active policy: counts[i] for
 * rule id i, i < n; returns how many ids the policy has (n_rules + 1) */
int loader_rule_counters(struct loader *ld, uint64_t *counts, size_t n);

/* loader_agent_heartbeat - mark the agent alive for ttl_ns (0: mark dead) */
int loader_agent_heartbeat(struct loader *ld, uint32_t pid, uint64_t ttl_ns);

/* An agent's answer for the verdict cache: the request it decided and which
 * of its fields beyond (daemon, client) deciding read (include/bpfwrap.h,
 * verdict_cache). */
struct cache_answer {
	uint32_t generation;	/* the policy the answer was computed with */
	uint32_t daemon_id;
	const struct daemon_key *daemon;	/* the socket's name as the kernel has it
						 * (event.daemon); keyed for daemon OTHER;
						 * NULL = no name */
	int family;		/* AF_INET or AF_INET6, of client and server */
	const void *client;	/* v4-mapped addresses are stored as IPv4 */
	const void *server;	/* read with BPFWRAP_CACHE_SERVER */
	uint16_t client_port;	/* network order, read with BPFWRAP_CACHE_CLIENT_PORT */
	uint16_t server_port;	/* network order, read with BPFWRAP_CACHE_SERVER_PORT */
	unsigned refine;	/* enum bpfwrap_cache_refine: what else the verdict read */
	uint8_t verdict;	/* BPFWRAP_ALLOW or BPFWRAP_DENY */
	uint32_t rule_id;
	uint64_t ttl_ns;	/* of the answer (and of the base key's marker) */
};

/* loader_cache_verdict - store an answer under every field it read: the
 * refined key when a.refine, or an earlier answer for the same base key,
 * names more fields (then the base key holds the marker), else the base key */
int loader_cache_verdict(struct loader *ld, const struct cache_answer *a);

/* loader_src_slot - src_recent[idx] (include/bpfwrap.h), as the programs left it */
int loader_src_slot(struct loader *ld, uint32_t idx, struct src_slot *out);

/* loader_events_fd - the ring buffer's fd, for ring_buffer__new() */
int loader_events_fd(struct loader *ld);

/* loader_cgroup_id - the cgroup v2 id of a directory (its inode number) */
int loader_cgroup_id(const char *cgroup_path, uint64_t *id);

#endif /* BPFWRAP_LOADER_H */
