/*
 * loader.c - put bpfwrap into the kernel and keep it there (see loader.h).
 *
 * Lifecycle: open -> size (ring buffer, rodata) -> load (reusing maps pinned
 * under pin_dir, pinning the others) -> fill (loader_load_policy) -> attach
 * (bpf_link per program per cgroup, pinned). A policy load builds brand-new
 * inner maps sized to the compiled tables, stores them in the idle slot of
 * the ARRAY_OF_MAPS outer maps, flips `active`, waits for an RCU grace
 * period, then deletes the old slot's entries (each outer-map update/delete
 * returns only after a grace period, so once we return no program uses the
 * old maps); see the header comment of include/bpfwrap.h. The inner maps'
 * images are built in v4table.c; attaching, detaching and socket adoption
 * are in attach.c.
 *
 * Errors: every function returns -errno and prints nothing (libbpf's own
 * log goes wherever the caller pointed libbpf_set_print()). A failed policy
 * load leaves the generation in force untouched.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfwrap.skel.h"
#include "compile.h"
#include "loader.h"
#include "loader_int.h"
#include "util.h"
#include "v4table.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

/* pinned_map - the i-th map pinned under pin_dir (all but rodata and
 * test_names), NULL past the last */
static struct bpf_map *pinned_map(struct bpfwrap_bpf *s, size_t i)
{
	struct bpf_map *maps[] = {
		s->maps.sk_info, s->maps.cgroup_owner, s->maps.unit_names, s->maps.port_names,
		s->maps.policy_v4_tree,
		s->maps.policy_v4_ents, s->maps.policy_v6, s->maps.policy_hosts_v6,
		s->maps.policy_daemons,
		s->maps.policy_counters, s->maps.policy_info, s->maps.active,
		s->maps.agent_alive, s->maps.verdict_cache, s->maps.events,
		s->maps.flow_recent, s->maps.src_recent, s->maps.event_limits, s->maps.stats,
	};

	return i < sizeof(maps) / sizeof(maps[0]) ? maps[i] : NULL;
}

/* path_join - dir + "/" + name into buf; -ENAMETOOLONG if it does not fit */
int path_join(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* mkdir_bpffs - create pin_dir (one level) on a bpffs mount */
static int mkdir_bpffs(const char *dir)
{
	struct statfs sfs;
	char parent[PATH_MAX];
	char *slash;

	if (strlen(dir) >= sizeof(parent))
		return -ENAMETOOLONG;
	strcpy(parent, dir);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = 0;
	if (statfs(parent, &sfs) < 0)
		return -errno;
	if ((unsigned long)sfs.f_type != BPF_FS_MAGIC)
		return -ENOTSUP;	/* not bpffs: mount -t bpf bpf /sys/fs/bpf */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* set_event_limits - the aggregation window and event cap of opts into
 * event_limits, if opts sets either (the cap's second starts over); a
 * loader opened only to look (status) leaves those in force */
static int set_event_limits(struct loader *ld, const struct loader_opts *opts)
{
	struct event_limits el = { 0 };
	uint32_t zero = 0;

	if (!opts || (!opts->agg_ns && !opts->event_cap))
		return 0;
	el.interval_ns = opts->agg_ns;
	el.cap_per_s = opts->event_cap;
	return bpf_map_update_elem(bpf_map__fd(ld->skel->maps.event_limits), &zero, &el, BPF_ANY) < 0
		       ? -errno
		       : 0;
}

/* loader_src_slot - src_recent[idx] (include/bpfwrap.h), as the programs left it */
int loader_src_slot(struct loader *ld, uint32_t idx, struct src_slot *out)
{
	if (idx >= BPFWRAP_SRC_SLOTS)
		return -EINVAL;
	return bpf_map_lookup_elem(bpf_map__fd(ld->skel->maps.src_recent), &idx, out) < 0 ? -errno : 0;
}

/* loader_open - open, size, load the BPF object; reuse/pin maps in opts->pin_dir */
int loader_open(const struct loader_opts *opts, struct loader **out)
{
	struct loader *ld;
	char path[PATH_MAX];
	struct bpf_map *m;
	size_t i;
	int err;

	*out = NULL;
	ld = calloc(1, sizeof(*ld));
	if (!ld)
		return -ENOMEM;
	ld->skel = bpfwrap_bpf__open();
	if (!ld->skel) {
		err = -errno;
		goto fail;
	}
	/* Size and configure before load. */
	if (opts && opts->ringbuf_bytes) {
		err = bpf_map__set_max_entries(ld->skel->maps.events, opts->ringbuf_bytes);
		if (err)
			goto fail;
	}
	if (opts && opts->dedup_ns)
		ld->skel->rodata->dedup_ns = opts->dedup_ns;
	/* The test twin is loaded (kernel match needs it) but never attached. */
	bpf_program__set_autoattach(ld->skel->progs.bpfwrap_decide_test, false);

	if (opts && opts->pin_dir) {
		if (strlen(opts->pin_dir) >= sizeof(ld->pin_dir) - 64) {
			err = -ENAMETOOLONG;
			goto fail;
		}
		strcpy(ld->pin_dir, opts->pin_dir);
		err = mkdir_bpffs(ld->pin_dir);
		if (err)
			goto fail;
		for (i = 0; (m = pinned_map(ld->skel, i)); i++) {
			err = path_join(path, sizeof(path), ld->pin_dir, bpf_map__name(m));
			if (err)
				goto fail;
			if (access(path, F_OK) == 0)
				ld->maps_reused = true;
			/* libbpf reuses a compatible pinned map, else creates and pins. */
			err = bpf_map__set_pin_path(m, path);
			if (err)
				goto fail;
		}
	}
	err = bpfwrap_bpf__load(ld->skel);
	if (err)
		goto fail;
	err = set_event_limits(ld, opts);
	if (err)
		goto fail;
	*out = ld;
	return 0;
fail:
	loader_close(ld);
	return err < 0 ? err : -EINVAL;
}

/* loader_close - release the process's handles; pinned maps and links stay */
void loader_close(struct loader *ld)
{
	if (!ld)
		return;
	for (size_t i = 0; i < ld->n_links; i++)
		bpf_link__destroy(ld->links[i].link);	/* a pinned link survives its fd */
	bpfwrap_bpf__destroy(ld->skel);
	free(ld);
}

/* loader_skel - the skeleton (programs and maps) of an open loader */
struct bpfwrap_bpf *loader_skel(struct loader *ld)
{
	return ld->skel;
}

/* loader_events_fd - the ring buffer's fd, for ring_buffer__new() */
int loader_events_fd(struct loader *ld)
{
	return bpf_map__fd(ld->skel->maps.events);
}

/* loader_generation - the generation in force (0 = none) */
int loader_generation(struct loader *ld, uint32_t *gen)
{
	struct active_gen ag;
	uint32_t zero = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(ld->skel->maps.active), &zero, &ag) < 0)
		return -errno;
	*gen = ag.generation;
	return 0;
}

/* The outer maps, in one fixed order. */
enum outer_idx { O_T4, O_E4, O_V6, O_H6, O_DAEMONS, O_COUNTERS, O_MAX };

/* outer_fds - the outer maps' fds, indexed by enum outer_idx */
static void outer_fds(struct loader *ld, int fds[O_MAX])
{
	fds[O_T4] = bpf_map__fd(ld->skel->maps.policy_v4_tree);
	fds[O_E4] = bpf_map__fd(ld->skel->maps.policy_v4_ents);
	fds[O_V6] = bpf_map__fd(ld->skel->maps.policy_v6);
	fds[O_H6] = bpf_map__fd(ld->skel->maps.policy_hosts_v6);
	fds[O_DAEMONS] = bpf_map__fd(ld->skel->maps.policy_daemons);
	fds[O_COUNTERS] = bpf_map__fd(ld->skel->maps.policy_counters);
}

/* inner_fd - an fd for the inner map at outer[slot], or -errno */
static int inner_fd(int outer, uint32_t slot)
{
	uint32_t id;
	int fd;

	if (bpf_map_lookup_elem(outer, &slot, &id) < 0)
		return -errno;
	fd = bpf_map_get_fd_by_id(id);
	return fd < 0 ? -errno : fd;
}

/*
 * slot_counters - per-rule hits in the counters map at outer_counters[slot]:
 * counts[i] for rule id i, i < n; returns the map's size (n_rules + 1) or
 * -errno. Read in batches: one syscall per rule took 10 ms at 10,000 rules.
 */
static int slot_counters(int outer_counters, uint32_t slot, uint64_t *counts, size_t n)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info), next = 0, done = 0, want;
	uint32_t *keys = NULL;
	int fd, err;

	fd = inner_fd(outer_counters, slot);
	if (fd < 0)
		return fd;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
		err = -errno;
		goto out;
	}
	want = info.max_entries < n ? info.max_entries : (uint32_t)n;
	keys = malloc((want ? want : 1) * sizeof(*keys));
	if (!keys) {
		err = -ENOMEM;
		goto out;
	}
	while (done < want) {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 count = want - done;
		int rc = bpf_map_lookup_batch(fd, done ? &next : NULL, &next, keys, counts + done,
					      &count, &opts);

		if (rc < 0 && errno != ENOENT) {
			err = -errno;
			goto out;
		}
		done += count;
		if (rc < 0 || count == 0)
			break;	/* ENOENT: the end of the map */
	}
	err = (int)info.max_entries;
out:
	free(keys);
	close(fd);
	return err;
}

/* loader_load_policy - write cp into the idle slot, flip, free the old slot */
int loader_load_policy(struct loader *ld, const struct compiled_policy *cp)
{
	return loader_load_policy_counted(ld, cp, NULL, 0);
}

/* loader_load_policy_counted - loader_load_policy, also handing back the
 * replaced policy's per-rule counts */
int loader_load_policy_counted(struct loader *ld, const struct compiled_policy *cp,
			       uint64_t *old_counts, size_t n)
{
	int inner[O_MAX], outer[O_MAX];
	uint32_t gen = 0, next, slot, old_slot, zero = 0;
	struct policy_info info;
	struct active_gen ag;
	int err, i;

	for (i = 0; i < O_MAX; i++)
		inner[i] = -1;
	err = loader_generation(ld, &gen);
	if (err)
		return err;
	next = gen + 1;
	if (next == 0)
		next = 2;	/* 0 means "no policy"; 2 keeps the slot alternating */
	slot = next & 1;
	old_slot = gen & 1;
	outer_fds(ld, outer);

	if (cp->n_v4 > UINT32_MAX || cp->n_v6 > UINT32_MAX || cp->n_daemons > UINT32_MAX)
		return -E2BIG;
	memset(&info, 0, sizeof(info));
	err = fill_v4(cp->v4, cp->n_v4, &inner[O_T4], &inner[O_E4], &info.v4_prefixes,
		      &info.v4_hosts);
	if (err)
		goto out;
	err = fill_family(cp->v6, cp->n_v6, &layout_v6, &inner[O_V6], &inner[O_H6],
			  &info.v6_prefixes, &info.v6_hosts);
	if (err)
		goto out;
	info.daemons = (__u32)cp->n_daemons;
	info.rules = cp->n_rules;
	inner[O_DAEMONS] = fill_daemons(cp);
	if (inner[O_DAEMONS] < 0) {
		err = inner[O_DAEMONS];
		goto out;
	}
	inner[O_COUNTERS] = create_inner(BPF_MAP_TYPE_ARRAY, "bpfwrap_cnt", sizeof(__u32),
					 sizeof(__u64), (size_t)cp->n_rules + 1, BPF_F_INNER_MAP);
	if (inner[O_COUNTERS] < 0) {
		err = inner[O_COUNTERS];
		goto out;
	}
	if (bpf_map_update_elem(bpf_map__fd(ld->skel->maps.policy_info), &slot, &info,
				BPF_ANY) < 0) {
		err = -errno;
		goto out;
	}
	/* The idle slot: no program reads it (it is empty: the previous flip
	 * deleted it after waiting for its readers). */
	for (i = 0; i < O_MAX; i++) {
		if (bpf_map_update_elem(outer[i], &slot, &inner[i], BPF_ANY) < 0) {
			err = -errno;
			for (int j = 0; j < i; j++)
				bpf_map_delete_elem(outer[j], &slot);
			goto out;
		}
	}
	ag.generation = next;
	if (bpf_map_update_elem(bpf_map__fd(ld->skel->maps.active), &zero, &ag, BPF_ANY) < 0) {
		err = -errno;
		for (i = 0; i < O_MAX; i++)
			bpf_map_delete_elem(outer[i], &slot);
		goto out;
	}
	/* Free the old generation, but only once no program can still hold it:
	 * the programs look up a slot's inner maps lazily, after reading
	 * `active`, and count on the slot of the generation they read staying
	 * complete while they run (decide.bpf.h). Storing a new slot's map
	 * again changes nothing but returns only after an RCU grace period
	 * (every outer-map update waits for running programs): after it,
	 * every program reading generation `gen` has finished. */
	if (gen != 0) {
		/* Cannot fail for a map already stored there; if it did, a
		 * program still on the old generation would deny (NO_MAPS),
		 * never allow. */
		(void)bpf_map_update_elem(outer[0], &slot, &inner[0], BPF_ANY);
		/* No program adds to the old counters any more: they are final. */
		if (old_counts && slot_counters(outer[O_COUNTERS], old_slot, old_counts, n) < 0)
			memset(old_counts, 0, n * sizeof(*old_counts));
		for (i = 0; i < O_MAX; i++)
			bpf_map_delete_elem(outer[i], &old_slot);	/* ENOENT is fine */
	}
	err = 0;
out:
	for (i = 0; i < O_MAX; i++)
		if (inner[i] >= 0)
			close(inner[i]);	/* the outer map holds its own reference */
	return err;
}

/* percpu_sum - sum one key of a per-CPU __u64 map */
static int percpu_sum(int fd, uint32_t key, uint64_t *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;

	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &key, vals) < 0) {
		free(vals);
		return -errno;
	}
	*sum = 0;
	for (int i = 0; i < ncpu; i++)
		*sum += vals[i];
	free(vals);
	return 0;
}

/* inner_max - max_entries of outer[slot] (0 if missing) */
static uint32_t inner_max(int outer, uint32_t slot)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int fd = inner_fd(outer, slot);
	uint32_t n = 0;

	if (fd < 0)
		return 0;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
		n = info.max_entries;
	close(fd);
	return n;
}

/* loader_status - generation, table sizes, global stats, agent heartbeat */
int loader_status(struct loader *ld, struct loader_status *st)
{
	struct agent_alive aa;
	int outer[O_MAX], err;
	uint32_t zero = 0, slot;

	memset(st, 0, sizeof(*st));
	st->maps_reused = ld->maps_reused;
	err = loader_generation(ld, &st->generation);
	if (err)
		return err;
	slot = st->generation & 1;
	outer_fds(ld, outer);
	if (st->generation) {
		struct policy_info info;

		/* The slot's inner maps must exist; their contents are in policy_info. */
		if (!inner_max(outer[O_T4], slot) || !inner_max(outer[O_COUNTERS], slot))
			return -ENOENT;
		if (bpf_map_lookup_elem(bpf_map__fd(ld->skel->maps.policy_info), &slot, &info) < 0)
			return -errno;
		st->v4_entries = info.v4_prefixes + info.v4_hosts;
		st->v6_entries = info.v6_prefixes + info.v6_hosts;
		st->v4_hosts = info.v4_hosts;
		st->v6_hosts = info.v6_hosts;
		st->daemons = info.daemons;
		st->rules = info.rules;
	}
	for (uint32_t i = 0; i < BPFWRAP_STAT_MAX; i++) {
		err = percpu_sum(bpf_map__fd(ld->skel->maps.stats), i, &st->stats[i]);
		if (err)
			return err;
	}
	if (bpf_map_lookup_elem(bpf_map__fd(ld->skel->maps.agent_alive), &zero, &aa) == 0) {
		st->agent_pid = aa.pid;
		st->agent_alive = aa.expires_ns > monotonic_ns();
	}
	return 0;
}

/* loader_rule_counters - per-rule hits of the active policy */
int loader_rule_counters(struct loader *ld, uint64_t *counts, size_t n)
{
	uint32_t gen = 0;
	int err;

	err = loader_generation(ld, &gen);
	if (err)
		return err;
	if (gen == 0)
		return 0;
	return slot_counters(bpf_map__fd(ld->skel->maps.policy_counters), gen & 1, counts, n);
}

/* loader_agent_heartbeat - mark the agent alive for ttl_ns (0: mark dead) */
int loader_agent_heartbeat(struct loader *ld, uint32_t pid, uint64_t ttl_ns)
{
	struct agent_alive aa = { .pid = pid, .expires_ns = ttl_ns ? monotonic_ns() + ttl_ns : 0 };
	uint32_t zero = 0;

	return bpf_map_update_elem(bpf_map__fd(ld->skel->maps.agent_alive), &zero, &aa,
				   BPF_ANY) < 0 ? -errno : 0;
}

/* cache_addr - an address of the answer's family into a key field: v4-mapped
 * as IPv4; the key's family; -EAFNOSUPPORT for another family */
static int cache_addr(int family, const void *addr, uint8_t *dst, uint8_t *key_family)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (family == AF_INET) {
		*key_family = BPFWRAP_AF_INET;
		memcpy(dst, addr, 4);
	} else if (family == AF_INET6) {
		if (!memcmp(addr, mapped, sizeof(mapped))) {
			*key_family = BPFWRAP_AF_INET;
			memcpy(dst, (const uint8_t *)addr + 12, 4);
		} else {
			*key_family = BPFWRAP_AF_INET6;
			memcpy(dst, addr, 16);
		}
	} else {
		return -EAFNOSUPPORT;
	}
	return 0;
}

/* name_hash - a daemon name's hash as the programs compute it (include/bpfwrap.h,
 * verdict_cache); NULL is the empty name */
static uint64_t name_hash(const struct daemon_key *k)
{
	struct daemon_key none = { { 0 } };
	uint64_t h = BPFWRAP_NAME_HASH_BASIS, w;

	if (!k)
		k = &none;
	for (size_t i = 0; i < BPFWRAP_NAME_WORDS; i++) {
		memcpy(&w, k->name + 8 * i, sizeof(w));
		h = (h ^ w) * BPFWRAP_NAME_HASH_PRIME;
	}
	return h;
}

/* loader_cache_verdict - store the agent's answer in the verdict cache */
int loader_cache_verdict(struct loader *ld, const struct cache_answer *a)
{
	int fd = bpf_map__fd(ld->skel->maps.verdict_cache);
	struct verdict_key base, k;
	struct verdict_value v, old;
	uint64_t now = monotonic_ns();
	unsigned refine;
	uint8_t fam;
	int err;

	if (a->verdict != BPFWRAP_ALLOW && a->verdict != BPFWRAP_DENY)
		return -EINVAL;
	if (a->refine & ~(unsigned)BPFWRAP_CACHE_REFINE_ALL)
		return -EINVAL;
	memset(&base, 0, sizeof(base));
	memset(&old, 0, sizeof(old));
	base.generation = a->generation;
	base.daemon_id = a->daemon_id;
	err = cache_addr(a->family, a->client, base.addr, &base.family);
	if (err)
		return err;
	if (a->daemon_id == BPFWRAP_DAEMON_OTHER)
		base.daemon_hash = name_hash(a->daemon);
	/* A live marker's bits stay: the programs look under them. */
	refine = a->refine;
	if (bpf_map_lookup_elem(fd, &base, &old) || !old.refine || old.expires_ns <= now)
		memset(&old, 0, sizeof(old));
	refine |= old.refine & BPFWRAP_CACHE_REFINE_ALL;

	memset(&v, 0, sizeof(v));
	v.verdict = a->verdict;
	v.rule_id = a->rule_id;
	v.expires_ns = now + a->ttl_ns;
	if (!refine)
		return bpf_map_update_elem(fd, &base, &v, BPF_ANY) < 0 ? -errno : 0;

	k = base;
	k.refine = (uint8_t)refine;
	if (refine & BPFWRAP_CACHE_SERVER) {
		if (!a->server)
			return -EINVAL;	/* an earlier answer read the server, this request has none */
		err = cache_addr(a->family, a->server, k.server, &fam);
		if (err)
			return err;
		if (fam != base.family)
			return -EINVAL;	/* client and server of different families */
	}
	if (refine & BPFWRAP_CACHE_SERVER_PORT)
		k.server_port = a->server_port;
	if (refine & BPFWRAP_CACHE_CLIENT_PORT)
		k.client_port = a->client_port;
	/* The answer first, then the marker: a program that sees the marker
	 * finds the answer (or, racing, an older marker and its own answers). */
	if (bpf_map_update_elem(fd, &k, &v, BPF_ANY) < 0)
		return -errno;
	memset(&v, 0, sizeof(v));
	v.refine = (uint8_t)refine;
	v.expires_ns = now + a->ttl_ns;
	if (old.refine == refine && old.expires_ns > v.expires_ns)
		v.expires_ns = old.expires_ns;
	return bpf_map_update_elem(fd, &base, &v, BPF_ANY) < 0 ? -errno : 0;
}
