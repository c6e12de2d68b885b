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
 * old maps); see the header comment of include/bpfwrap.h.
 *
 * Errors: every function returns -errno and prints nothing (libbpf's own
 * log goes wherever the caller pointed libbpf_set_print()). A failed policy
 * load leaves the generation in force untouched; a failed attach undoes
 * the links it made.
 */
#include <ctype.h>
#include <stddef.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfwrap.skel.h"
#include "compile.h"
#include "loader.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define CGROUP_ROOT_ID 1	/* cgroup v2 root: never attached (SAFETY) */
#define BATCH_CHUNK 65536	/* entries per bpf_map_update_batch call */
#define ADOPT_DEPTH_MAX 16	/* cgroup levels walked by adoption */
#define MAX_LINKS 64		/* cgroups x programs per instance */

/* The programs attached to every cgroup, in attach order: owners are
 * recorded before anything decides on them. */
enum attach_prog { AP_SOCK_CREATE, AP_SOCKOPS, AP_INGRESS, AP_MAX };
static const char *const attach_names[AP_MAX] = { "sock_create", "sockops", "ingress" };

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

/* pinned_map - the i-th map pinned under pin_dir (all but rodata and
 * test_names), NULL past the last */
static struct bpf_map *pinned_map(struct bpfwrap_bpf *s, size_t i)
{
	struct bpf_map *maps[] = {
		s->maps.sk_info, s->maps.cgroup_names, s->maps.policy_v4_tree,
		s->maps.policy_v4_ents, s->maps.policy_v6, s->maps.policy_hosts_v6,
		s->maps.policy_daemons,
		s->maps.policy_counters, s->maps.policy_info, s->maps.active,
		s->maps.agent_alive, s->maps.verdict_cache, s->maps.events,
		s->maps.flow_recent, s->maps.stats,
	};

	return i < sizeof(maps) / sizeof(maps[0]) ? maps[i] : NULL;
}

/* path_join - dir + "/" + name into buf; -ENAMETOOLONG if it does not fit */
static int path_join(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* link_pin_path - where the link of (cgroup, program) is pinned */
static int link_pin_path(const struct loader *ld, char *buf, size_t size, uint64_t cgid,
			 enum attach_prog p)
{
	int n = snprintf(buf, size, "%s/link-%llu-%s", ld->pin_dir, (unsigned long long)cgid,
			 attach_names[p]);

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

/* loader_cgroup_id - the cgroup v2 id of a directory (its inode number) */
int loader_cgroup_id(const char *cgroup_path, uint64_t *id)
{
	struct statfs sfs;
	struct stat st;

	if (statfs(cgroup_path, &sfs) < 0 || stat(cgroup_path, &st) < 0)
		return -errno;
	if ((unsigned long)sfs.f_type != CGROUP2_SUPER_MAGIC || !S_ISDIR(st.st_mode))
		return -ENOTDIR;
	*id = st.st_ino;
	return 0;
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

/* update_batched - write n key/value pairs, in batches where the kernel can */
static int update_batched(int fd, const void *keys, const void *values, size_t n, size_t ksz,
			  size_t vsz)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	size_t done = 0;

	while (done < n) {
		__u32 count = n - done > BATCH_CHUNK ? BATCH_CHUNK : (__u32)(n - done);
		const char *k = (const char *)keys + done * ksz;
		const char *v = (const char *)values + done * vsz;

		if (bpf_map_update_batch(fd, k, v, &count, &opts) == 0) {
			done += count;
			continue;
		}
		if (errno != EINVAL && errno != ENOTSUP && errno != EOPNOTSUPP)
			return -errno;
		/* No batch op for this map type: one element at a time. */
		for (; done < n; done++) {
			if (bpf_map_update_elem(fd, (const char *)keys + done * ksz,
						(const char *)values + done * vsz, BPF_ANY) < 0)
				return -errno;
		}
	}
	return 0;
}

/* create_inner - a new inner map of the idle slot */
static int create_inner(enum bpf_map_type type, const char *name, size_t ksz, size_t vsz,
			size_t entries, __u32 flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = flags);
	int fd;

	if (entries == 0)
		entries = 1;	/* max_entries must be >= 1; an empty table stays empty */
	if (entries > UINT32_MAX)
		return -E2BIG;
	fd = bpf_map_create(type, name, ksz, vsz, (__u32)entries, &o);
	return fd < 0 ? -errno : fd;
}

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

static const struct family_layout layout_v6 = {
	AF_INET6, sizeof(struct compiled_v6), offsetof(struct compiled_v6, entry), 20,
	BPFWRAP_V6_KEY_BITS, sizeof(struct host_rec_v6), "bpfwrap_v6", "bpfwrap_h6",
};

/* cmp_prefix - order trie entries by (daemon, address, prefix length) */
static int cmp_prefix(const void *a, const void *b, void *arg)
{
	const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
	const struct family_layout *fl = arg;
	__u32 lx, ly;
	int c = memcmp(x + 4, y + 4, fl->data_len);

	if (c)
		return c;
	memcpy(&lx, x, 4);
	memcpy(&ly, y, 4);
	return lx < ly ? -1 : lx > ly;
}

/* be_u64 - 8 network-order bytes as a number */
static uint64_t be_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* cmp_host - order IPv6 host records by their numeric key */
static int cmp_host(const void *a, const void *b, void *arg)
{
	const struct host_rec_v6 *x = a, *y = b;

	(void)arg;
	if (x->key_hi != y->key_hi)
		return x->key_hi < y->key_hi ? -1 : 1;
	if (x->addr_hi != y->addr_hi)
		return x->addr_hi < y->addr_hi ? -1 : 1;
	return x->addr_lo < y->addr_lo ? -1 : x->addr_lo > y->addr_lo;
}

/* host_rec_set - record i of the IPv6 host array from a compiled host entry */
static void host_rec_set(uint8_t *recs, size_t i, const uint8_t *e, const struct family_layout *fl)
{
	struct host_rec_v6 *r = (struct host_rec_v6 *)(void *)(recs + i * fl->rec_size);
	__u32 daemon_be;

	memcpy(&daemon_be, e + 4, 4);
	memset(r, 0, sizeof(*r));
	r->key_hi = ntohl(daemon_be);
	r->addr_hi = be_u64(e + 8);
	r->addr_lo = be_u64(e + 16);
	memcpy(&r->entry, e + fl->entry_off, sizeof(r->entry));
}

/*
 * build_hosts - the sorted host array of one family: records 1..n built in
 * place in the mmap()ed map (one memcpy-speed pass; sorted only if the
 * compiler's order is not sorted already), record 0 the count.
 */
static int build_hosts(const uint8_t *const *hosts, size_t n, const struct family_layout *fl)
{
	size_t len, page = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *recs;
	bool sorted = true;
	int fd, err = 0;

	fd = create_inner(BPF_MAP_TYPE_ARRAY, fl->host_name, sizeof(__u32), fl->rec_size, n + 1,
			  BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	if (fd < 0)
		return fd;
	/* The kernel lays elements out every round_up(value_size, 8) bytes;
	 * both record types are multiples of 8 already. */
	len = ((n + 1) * fl->rec_size + page - 1) / page * page;
	recs = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (recs == MAP_FAILED) {
		err = -errno;
		close(fd);
		return err;
	}
	for (size_t i = 0; i < n; i++) {
		host_rec_set(recs, i + 1, hosts[i], fl);
		if (i > 0 && sorted &&
		    cmp_host(recs + i * fl->rec_size, recs + (i + 1) * fl->rec_size, (void *)fl) >= 0)
			sorted = false;
	}
	if (!sorted)
		qsort_r(recs + fl->rec_size, n, fl->rec_size, cmp_host, (void *)fl);
	for (size_t i = 1; i < n && !err; i++) {
		if (cmp_host(recs + i * fl->rec_size, recs + (i + 1) * fl->rec_size, (void *)fl) == 0) {
			err = -EINVAL;	/* two entries for one (daemon, host) */
			break;
		}
	}
	/* Header: the count, in the first key field of either layout. */
	memset(recs, 0, fl->rec_size);
	{
		uint64_t count = n;

		memcpy(recs, &count, sizeof(count));
	}
	munmap(recs, len);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/*
 * fill_family - create and fill one family's trie and host array. Host
 * entries go to the sorted array (a memcpy to load, looked up first); the
 * rest is inserted into the trie in (daemon, address) order, which the
 * kernel's trie inserts about 3x faster than a random order (measured 1.8 s
 * vs 5.9 s for 10^6 prefixes).
 */
static int fill_family(const void *entries, size_t n, const struct family_layout *fl,
		       int *lpm_fd, int *host_fd, __u32 *n_prefixes, __u32 *n_hosts)
{
	const size_t lkey = 4 + fl->data_len, ev = sizeof(struct policy_entry);
	const uint8_t **lpm = NULL, **hosts = NULL;
	uint8_t *lk = NULL, *lv = NULL;
	size_t nl = 0, nh = 0, i;
	int err = -ENOMEM;

	*lpm_fd = *host_fd = -1;
	lpm = malloc((n ? n : 1) * sizeof(*lpm));
	hosts = malloc((n ? n : 1) * sizeof(*hosts));
	if (!lpm || !hosts)
		goto out;
	for (i = 0; i < n; i++) {
		const uint8_t *e = (const uint8_t *)entries + i * fl->stride;
		__u32 plen;

		memcpy(&plen, e, 4);
		if (plen < 32 || plen > fl->host_bits) {
			err = -EINVAL;	/* the daemon id is always fully significant */
			goto out;
		}
		if (plen == fl->host_bits)
			hosts[nh++] = e;
		else
			lpm[nl++] = e;
	}
	*n_prefixes = (__u32)nl;
	*n_hosts = (__u32)nh;
	qsort_r(lpm, nl, sizeof(*lpm), cmp_prefix, (void *)fl);
	lk = malloc((nl ? nl : 1) * lkey);
	lv = malloc((nl ? nl : 1) * ev);
	if (!lk || !lv)
		goto out;
	for (i = 0; i < nl; i++) {
		memcpy(lk + i * lkey, lpm[i], lkey);
		memcpy(lv + i * ev, lpm[i] + fl->entry_off, ev);
	}

	*lpm_fd = create_inner(BPF_MAP_TYPE_LPM_TRIE, fl->lpm_name, lkey, ev, nl,
			       BPF_F_NO_PREALLOC);
	if (*lpm_fd < 0) {
		err = *lpm_fd;
		goto out;
	}
	err = update_batched(*lpm_fd, lk, lv, nl, lkey, ev);
	if (err)
		goto out;
	*host_fd = build_hosts(hosts, nh, fl);
	if (*host_fd < 0)
		err = *host_fd;
out:
	free(lpm);
	free(hosts);
	free(lk);
	free(lv);
	if (err) {
		if (*lpm_fd >= 0)
			close(*lpm_fd);
		if (*host_fd >= 0)
			close(*host_fd);
		*lpm_fd = *host_fd = -1;
	}
	return err;
}

/* ---- IPv4 interval tables (layout: include/bpfwrap.h) ------------------ */

/* A compiled IPv4 entry as a number: daemon << 32 | address, and its length. */
struct v4_src {
	uint64_t key;		/* daemon id << 32 | address (host order), masked */
	uint32_t len;		/* address prefix length 0..32 */
	uint32_t i;		/* index into the compiled entries */
};

/* Growing arrays of the build. */
struct v4_build {
	uint32_t *start;		/* interval start addresses (host order) */
	struct v4_ent *ent;		/* interval entries; verdict 0 = no entry */
	size_t n, cap;
	struct v4_node *node;
	size_t n_node, cap_node;
};

/* cmp_v4_src - order by (daemon, address, length) */
static int cmp_v4_src(const void *a, const void *b)
{
	const struct v4_src *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* v4_emit - start an interval at `start` deciding with e (NULL: no entry),
 * merged into the previous one of the table when that decides the same */
static int v4_emit(struct v4_build *b, size_t table_first, uint32_t start,
		   const struct policy_entry *e)
{
	static const struct policy_entry none;

	if (!e)
		e = &none;
	if (b->n > table_first && !memcmp(&b->ent[b->n - 1].entry, e, sizeof(*e)))
		return 0;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		uint32_t *st = realloc(b->start, cap * sizeof(*st));
		struct v4_ent *en;

		if (!st)
			return -ENOMEM;
		b->start = st;
		en = realloc(b->ent, cap * sizeof(*en));
		if (!en)
			return -ENOMEM;
		b->ent = en;
		b->cap = cap;
	}
	b->start[b->n] = start;
	b->ent[b->n].entry = *e;
	b->ent[b->n]._pad = 0;
	b->n++;
	return 0;
}

/* v4_node_new - append a node; its index among the nodes, or -ENOMEM */
static long v4_node_new(struct v4_build *b)
{
	if (b->n_node == b->cap_node) {
		size_t cap = b->cap_node ? b->cap_node * 2 : 1024;
		struct v4_node *nn = realloc(b->node, cap * sizeof(*nn));

		if (!nn)
			return -ENOMEM;
		b->node = nn;
		b->cap_node = cap;
	}
	memset(&b->node[b->n_node], 0xff, sizeof(b->node[0]));
	return (long)b->n_node++;
}

/*
 * v4_sweep - the intervals of one daemon table from its entries (sorted by
 * address, then length): a stack of the enclosing prefixes; each stretch of
 * addresses takes the innermost prefix's entry.
 */
static int v4_sweep(struct v4_build *b, const struct compiled_v4 *cv, const struct v4_src *src,
		    size_t n)
{
	struct {
		uint64_t end;	/* last address, inclusive */
		const struct policy_entry *e;
	} stack[34];
	size_t first = b->n, sp = 0;
	uint64_t c = 0;	/* first address without an interval yet */
	int err;

	for (size_t i = 0; i <= n; i++) {
		uint64_t s = i < n ? (uint32_t)src[i].key : UINT64_C(1) << 32;

		if (i > 0 && i < n && src[i].key == src[i - 1].key && src[i].len == src[i - 1].len)
			return -EINVAL;	/* two entries for one prefix */
		while (sp && stack[sp - 1].end < s) {
			sp--;
			if (c <= stack[sp].end) {
				err = v4_emit(b, first, (uint32_t)c, stack[sp].e);
				if (err)
					return err;
				c = stack[sp].end + 1;
			}
		}
		if (c < s) {
			err = v4_emit(b, first, (uint32_t)c, sp ? stack[sp - 1].e : NULL);
			if (err)
				return err;
			c = s;
		}
		if (i == n)
			break;
		if (sp == sizeof(stack) / sizeof(stack[0]))
			return -EINVAL;	/* cannot happen: lengths grow along the stack */
		stack[sp].end = s + (UINT64_C(1) << (32 - src[i].len)) - 1;
		stack[sp].e = &cv[src[i].i].entry;
		sp++;
	}
	return 0;
}

/*
 * v4_bucket - the directory word of one bucket whose intervals are
 * first..first+n-1 (offsets off[0] = 0 < off[1] < ...): one interval
 * directly, else a tree built bottom-up, 16 children per node. ids is
 * scratch space for n numbers; off is overwritten.
 */
static int v4_bucket(struct v4_build *b, uint32_t node0, size_t first, uint32_t *off,
		     uint32_t *ids, size_t n, uint32_t *word)
{
	uint32_t h = 0;
	size_t m = n;

	if (n == 1) {
		*word = b->ent[first].entry.verdict ? (uint32_t)first : BPFWRAP_V4_NONE;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = (uint32_t)(first + i);
	while (m > 1) {
		size_t k = 0;

		for (size_t g = 0; g < m; g += 16, k++) {
			long ni = v4_node_new(b);
			struct v4_node *nd;

			if (ni < 0)
				return (int)ni;
			nd = &b->node[ni];
			for (size_t j = 1; j < 16 && g + j < m; j++)
				nd->key[j - 1] = off[g + j];
			nd->base = ids[g];
			off[k] = off[g];
			ids[k] = node0 + (uint32_t)ni;
		}
		m = k;
		h++;
	}
	if (h > BPFWRAP_V4_HEIGHT_MAX || ids[0] > BPFWRAP_V4_IDX_MASK)
		return -E2BIG;
	*word = h << BPFWRAP_V4_HEIGHT_SHIFT | ids[0];
	return 0;
}

/* A run of elements to copy into an array map. */
struct seg {
	const void *data;
	size_t n;
};

/* map_fill - create an mmap()able inner array holding the segments' elements
 * (vsz bytes each) one after the other; the fd or -errno */
static int map_fill(const char *name, size_t vsz, const struct seg *segs, size_t n_segs)
{
	size_t stride = (vsz + 7) / 8 * 8, page = (size_t)sysconf(_SC_PAGESIZE), len, n = 0;
	uint8_t *mem, *at;
	int fd, err;

	for (size_t i = 0; i < n_segs; i++)
		n += segs[i].n;
	fd = create_inner(BPF_MAP_TYPE_ARRAY, name, sizeof(__u32), vsz, n,
			  BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	if (fd < 0 || n == 0)
		return fd;
	len = (n * stride + page - 1) / page * page;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		err = -errno;
		close(fd);
		return err;
	}
	at = mem;
	for (size_t i = 0; i < n_segs; i++) {
		if (stride == vsz) {
			if (segs[i].n)
				memcpy(at, segs[i].data, segs[i].n * vsz);
			at += segs[i].n * vsz;
			continue;
		}
		for (size_t k = 0; k < segs[i].n; k++, at += stride)
			memcpy(at, (const uint8_t *)segs[i].data + k * vsz, vsz);
	}
	munmap(mem, len);
	return fd;
}

/*
 * fill_v4 - the IPv4 interval tables of a compiled policy: entries sorted
 * by (daemon, address, length) (the compiler's order already, else sorted
 * here), swept into intervals per daemon table, bucketed by the top B
 * address bits, a search tree per bucket with more than one interval.
 */
static int fill_v4(const struct compiled_v4 *cv, size_t n, int *tree_fd, int *ents_fd,
		   __u32 *n_prefixes, __u32 *n_hosts)
{
	struct v4_build b = { 0 };
	struct v4_src *src = NULL;
	uint32_t *dir = NULL, *off = NULL, *ids = NULL, tables = 1, bits = 1, node0;
	size_t *tfirst = NULL, n_dir, dir_elems, nh = 0, i, j;
	struct v4_node head;
	struct seg segs[3];
	bool sorted = true;
	int err = -ENOMEM;

	*tree_fd = *ents_fd = -1;
	src = compile_big_alloc((n ? n : 1) * sizeof(*src), false);
	if (!src)
		goto out;
	for (i = 0; i < n; i++) {
		uint32_t plen = cv[i].key.prefixlen, d = ntohl(cv[i].key.daemon_id);
		uint32_t a = ntohl(cv[i].key.addr), len = plen - 32;

		if (plen < 32 || plen > BPFWRAP_V4_KEY_BITS) {
			err = -EINVAL;	/* the daemon id is always fully significant */
			goto out;
		}
		if (len < 32)
			a &= len ? ~(0xffffffffu >> len) : 0;
		nh += len == 32;
		src[i].key = (uint64_t)d << 32 | a;
		src[i].len = len;
		src[i].i = (uint32_t)i;
		if (d >= tables)
			tables = d + 1;
		if (i > 0 && sorted && cmp_v4_src(&src[i - 1], &src[i]) > 0)
			sorted = false;
	}
	*n_hosts = (__u32)nh;
	*n_prefixes = (__u32)(n - nh);
	if (tables > (1u << 20)) {
		err = -E2BIG;
		goto out;
	}
	if (!sorted)
		qsort(src, n, sizeof(*src), cmp_v4_src);
	/* An entry opens at most two intervals (its start, the address after
	 * its end), a table one more: no growing on the way. */
	b.cap = 2 * n + tables + 1;
	b.start = compile_big_alloc(b.cap * sizeof(*b.start), false);
	b.ent = compile_big_alloc(b.cap * sizeof(*b.ent), false);
	b.cap_node = b.cap / 8 + 1024;
	b.node = compile_big_alloc(b.cap_node * sizeof(*b.node), false);
	if (!b.start || !b.ent || !b.node)
		goto out;

	/* Intervals, table by table; tfirst[t]..tfirst[t + 1] are table t's. */
	tfirst = calloc((size_t)tables + 1, sizeof(*tfirst));
	if (!tfirst)
		goto out;
	for (i = 0, j = 0; j < tables; j++) {
		size_t k = i;

		tfirst[j] = b.n;
		while (k < n && src[k].key >> 32 == j)
			k++;
		if (k > i) {
			err = v4_sweep(&b, cv, src + i, k - i);
			if (err)
				goto out;
		}
		i = k;
	}
	tfirst[tables] = b.n;
	if (b.n > BPFWRAP_V4_IDX_MASK) {
		err = -E2BIG;
		goto out;
	}

	/* Directory: 8 to 16 intervals per bucket on average, so that most
	 * buckets need one node (at most 16 intervals), at most 2^20 buckets a
	 * table; the directory has at most a word per eight intervals. */
	while (bits < BPFWRAP_V4_DIR_BITS_MAX && ((size_t)tables << (bits + 1)) * 8 <= b.n)
		bits++;
	n_dir = (size_t)tables << bits;
	dir_elems = (n_dir + 15) / 16;
	node0 = (uint32_t)(1 + dir_elems);
	dir = compile_big_alloc(dir_elems * 16 * sizeof(*dir), false);
	off = compile_big_alloc((b.n ? b.n : 1) * sizeof(*off), false);
	ids = compile_big_alloc((b.n ? b.n : 1) * sizeof(*ids), false);
	if (!dir || !off || !ids)
		goto out;
	memset(dir, 0xff, dir_elems * 16 * sizeof(*dir));
	for (j = 0; j < tables; j++) {
		size_t p = tfirst[j], e = tfirst[j + 1];
		uint64_t width = UINT64_C(1) << (32 - bits);

		if (p == e)
			continue;	/* no entries: BPFWRAP_V4_NONE, fail closed */
		for (uint64_t bk = 0; bk < (UINT64_C(1) << bits); bk++) {
			uint64_t lo = bk * width, hi = lo + width;
			size_t q;

			while (p + 1 < e && b.start[p + 1] <= lo)
				p++;
			off[0] = 0;
			for (q = p + 1; q < e && b.start[q] < hi; q++)
				off[q - p] = (uint32_t)(b.start[q] - lo);
			err = v4_bucket(&b, node0, p, off, ids, q - p, &dir[(j << bits) + bk]);
			if (err)
				goto out;
		}
	}

	/* The tree map: header, directory, nodes. */
	memset(&head, 0, sizeof(head));
	head.key[0] = bits;
	head.key[1] = tables;
	head.key[2] = node0;
	segs[0] = (struct seg){ &head, 1 };
	segs[1] = (struct seg){ dir, dir_elems };
	segs[2] = (struct seg){ b.node, b.n_node };
	*tree_fd = map_fill("bpfwrap_v4t", sizeof(head), segs, 3);
	if (*tree_fd < 0) {
		err = *tree_fd;
		goto out;
	}
	segs[0] = (struct seg){ b.ent, b.n };
	*ents_fd = map_fill("bpfwrap_v4e", sizeof(struct v4_ent), segs, 1);
	err = *ents_fd < 0 ? *ents_fd : 0;
out:
	free(src);
	free(tfirst);
	free(dir);
	free(off);
	free(ids);
	free(b.start);
	free(b.ent);
	free(b.node);
	if (err) {
		if (*tree_fd >= 0)
			close(*tree_fd);
		if (*ents_fd >= 0)
			close(*ents_fd);
		*tree_fd = *ents_fd = -1;
	}
	return err;
}

/* daemon_key_set - lower-cased, zero-padded key from a name (cut to fit) */
static void daemon_key_set(struct daemon_key *k, const char *name, size_t max)
{
	size_t i;

	memset(k, 0, sizeof(*k));
	if (max > sizeof(k->name) - 1)
		max = sizeof(k->name) - 1;
	for (i = 0; i < max && name[i]; i++)
		k->name[i] = (char)tolower((unsigned char)name[i]);
}

/* fill_daemons - create and fill the daemon-name table */
static int fill_daemons(const struct compiled_policy *cp)
{
	int fd;

	fd = create_inner(BPF_MAP_TYPE_HASH, "bpfwrap_dmn", sizeof(struct daemon_key),
			  sizeof(__u32), cp->n_daemons, 0);
	if (fd < 0)
		return fd;
	for (size_t i = 0; i < cp->n_daemons; i++) {
		struct daemon_key k;
		__u32 id = cp->daemons[i].id;

		daemon_key_set(&k, cp->daemons[i].name, sizeof(cp->daemons[i].name));
		if (id == BPFWRAP_DAEMON_OTHER || !k.name[0]) {
			close(fd);
			return -EINVAL;
		}
		/* EEXIST: two daemon names equal case-insensitively. */
		if (bpf_map_update_elem(fd, &k, &id, BPF_NOEXIST) < 0) {
			int err = -errno;

			close(fd);
			return err;
		}
	}
	return fd;
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

/* prog_of - the program attached as p */
static struct bpf_program *prog_of(struct loader *ld, enum attach_prog p)
{
	switch (p) {
	case AP_SOCK_CREATE:
		return ld->skel->progs.bpfwrap_sock_create;
	case AP_SOCKOPS:
		return ld->skel->progs.bpfwrap_sockops;
	default:
		return ld->skel->progs.bpfwrap_ingress;
	}
}

/* find_link - this instance's link for (cgroup, program), or -1 */
static int find_link(const struct loader *ld, uint64_t cgid, enum attach_prog p)
{
	for (size_t i = 0; i < ld->n_links; i++)
		if (ld->links[i].cgroup_id == cgid && ld->links[i].prog == p)
			return (int)i;
	return -1;
}

/* drop_link - detach, unpin and forget link i */
static void drop_link(struct loader *ld, size_t i)
{
	struct bpf_link *l = ld->links[i].link;

	bpf_link__detach(l);
	if (ld->pin_dir[0])
		bpf_link__unpin(l);
	bpf_link__destroy(l);
	ld->links[i] = ld->links[--ld->n_links];
}

/* loader_attach_cgroup - attach ingress, sock_create and sockops to a cgroup */
int loader_attach_cgroup(struct loader *ld, const char *cgroup_path)
{
	char pin[PATH_MAX];
	size_t made[AP_MAX], n_made = 0;
	uint64_t cgid;
	int cgfd, err = 0;

	err = loader_cgroup_id(cgroup_path, &cgid);
	if (err)
		return err;
	if (cgid == CGROUP_ROOT_ID)
		return -EPERM;	/* never the root cgroup: that is the whole machine */
	cgfd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		return -errno;

	for (enum attach_prog p = 0; p < AP_MAX; p++) {
		struct bpf_program *prog = prog_of(ld, p);
		struct bpf_link *link = NULL;
		int idx = find_link(ld, cgid, p);

		if (ld->pin_dir[0]) {
			err = link_pin_path(ld, pin, sizeof(pin), cgid, p);
			if (err)
				goto undo;
		}
		if (idx >= 0)
			continue;	/* attached by this instance already */
		if (ld->pin_dir[0] && access(pin, F_OK) == 0) {
			/* A link from an earlier run (or an older bpfwrap):
			 * make-before-break, swap our program into it; there
			 * is no instant without a program attached. */
			if (ld->n_links == MAX_LINKS) {
				err = -ENOSPC;
				goto undo;
			}
			link = bpf_link__open(pin);
			if (!link) {
				err = -errno;
				goto undo;
			}
			if (bpf_link__update_program(link, prog) < 0) {
				err = -errno;
				bpf_link__destroy(link);
				goto undo;
			}
			ld->links[ld->n_links++] = (struct link_slot){ cgid, p, link };
			continue;
		}
		if (ld->n_links == MAX_LINKS) {
			err = -ENOSPC;
			goto undo;
		}
		link = bpf_program__attach_cgroup(prog, cgfd);
		if (!link) {
			err = -errno;
			goto undo;
		}
		if (ld->pin_dir[0] && bpf_link__pin(link, pin) < 0) {
			err = -errno;
			bpf_link__detach(link);
			bpf_link__destroy(link);
			goto undo;
		}
		ld->links[ld->n_links++] = (struct link_slot){ cgid, p, link };
		made[n_made++] = p;
	}
	close(cgfd);
	return 0;
undo:
	/* Remove only what this call created; adopted links stay. */
	while (n_made > 0) {
		int idx = find_link(ld, cgid, made[--n_made]);

		if (idx >= 0)
			drop_link(ld, (size_t)idx);
	}
	close(cgfd);
	return err;
}

/* loader_detach_cgroup - remove this instance's links (and pins) from a cgroup */
int loader_detach_cgroup(struct loader *ld, const char *cgroup_path)
{
	char pin[PATH_MAX];
	uint64_t cgid;
	int err, found = 0;

	err = loader_cgroup_id(cgroup_path, &cgid);
	if (err)
		return err;
	for (enum attach_prog p = 0; p < AP_MAX; p++) {
		int idx = find_link(ld, cgid, p);

		if (idx < 0 && ld->pin_dir[0] &&
		    link_pin_path(ld, pin, sizeof(pin), cgid, p) == 0 && access(pin, F_OK) == 0) {
			struct bpf_link *l = bpf_link__open(pin);

			if (l && ld->n_links < MAX_LINKS) {
				ld->links[ld->n_links++] = (struct link_slot){ cgid, p, l };
				idx = (int)ld->n_links - 1;
			} else {
				bpf_link__destroy(l);
			}
		}
		if (idx >= 0) {
			drop_link(ld, (size_t)idx);
			found++;
		}
	}
	return found ? 0 : -ENOENT;
}

/* loader_n_links - how many links this instance holds or adopted */
size_t loader_n_links(const struct loader *ld)
{
	return ld->n_links;
}

/* loader_unpin_all - detach pinned links, unpin maps, remove pin_dir */
int loader_unpin_all(const char *pin_dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int err = 0;

	d = opendir(pin_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (path_join(path, sizeof(path), pin_dir, de->d_name)) {
			err = -ENAMETOOLONG;
			continue;
		}
		if (!strncmp(de->d_name, "link-", 5)) {
			struct bpf_link *l = bpf_link__open(path);

			if (l) {
				bpf_link__detach(l);	/* also detaches if another fd holds it */
				bpf_link__destroy(l);
			}
		}
		if (unlink(path) < 0 && !err)
			err = -errno;
	}
	closedir(d);
	if (rmdir(pin_dir) < 0 && !err)
		err = -errno;
	return err;
}

/* loader_set_cgroup_name - sockets created in cgroup_path belong to `name` */
int loader_set_cgroup_name(struct loader *ld, const char *cgroup_path, const char *name)
{
	int fd = bpf_map__fd(ld->skel->maps.cgroup_names);
	struct daemon_key k;
	uint64_t cgid;
	int err;

	err = loader_cgroup_id(cgroup_path, &cgid);
	if (err)
		return err;
	if (!name)
		return bpf_map_delete_elem(fd, &cgid) < 0 && errno != ENOENT ? -errno : 0;
	if (!name[0] || strlen(name) >= BPFWRAP_DAEMON_NAME_MAX)
		return -EINVAL;
	daemon_key_set(&k, name, BPFWRAP_DAEMON_NAME_MAX - 1);
	return bpf_map_update_elem(fd, &cgid, &k, BPF_ANY) < 0 ? -errno : 0;
}

/* read_comm - /proc/PID/comm without the newline */
static int read_comm(int pid, char comm[BPFWRAP_COMM_LEN])
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(comm, 0, BPFWRAP_COMM_LEN);
	n = read(fd, comm, BPFWRAP_COMM_LEN - 1);
	close(fd);
	if (n < 0)
		return -errno;
	comm[strcspn(comm, "\n")] = 0;
	return 0;
}

/* adopt_pid - write sk_info for each inet TCP/UDP socket of pid; count them */
static int adopt_pid(struct loader *ld, int pid, const struct daemon_key *cgname)
{
	int skfd = bpf_map__fd(ld->skel->maps.sk_info);
	struct sock_info si;
	char dirpath[64], linkpath[PATH_MAX], target[64];
	struct dirent *de;
	int pidfd, n = 0;
	DIR *d;

	memset(&si, 0, sizeof(si));
	if (read_comm(pid, si.comm) < 0)
		return 0;	/* gone meanwhile */
	si.tgid = (uint32_t)pid;
	si.flags = BPFWRAP_SOCK_ADOPTED;
	if (cgname) {
		si.daemon = *cgname;
		si.flags |= BPFWRAP_SOCK_CGROUP_NAME;
	} else {
		daemon_key_set(&si.daemon, si.comm, BPFWRAP_COMM_LEN - 1);
	}

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return errno == ESRCH ? 0 : -errno;
	snprintf(dirpath, sizeof(dirpath), "/proc/%d/fd", pid);
	d = opendir(dirpath);
	if (!d) {
		close(pidfd);
		return 0;
	}
	while ((de = readdir(d))) {
		int tfd, sfd, domain, proto;
		socklen_t len = sizeof(int);
		ssize_t tl;

		if (de->d_name[0] == '.')
			continue;
		if (path_join(linkpath, sizeof(linkpath), dirpath, de->d_name))
			continue;
		tl = readlink(linkpath, target, sizeof(target) - 1);
		if (tl <= 0)
			continue;
		target[tl] = 0;
		if (strncmp(target, "socket:", 7))
			continue;
		tfd = atoi(de->d_name);
		sfd = (int)syscall(SYS_pidfd_getfd, pidfd, tfd, 0);
		if (sfd < 0)
			continue;
		if (getsockopt(sfd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
		    (domain == AF_INET || domain == AF_INET6) &&
		    getsockopt(sfd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 &&
		    (proto == IPPROTO_TCP || proto == IPPROTO_UDP)) {
			/* NOEXIST: an owner recorded at creation is the truth. */
			if (bpf_map_update_elem(skfd, &sfd, &si, BPF_NOEXIST) == 0)
				n++;
		}
		close(sfd);
	}
	closedir(d);
	close(pidfd);
	return n;
}

/* adopt_cgroup - adopt the processes of one cgroup directory, then its children */
static int adopt_cgroup(struct loader *ld, const char *path, const struct daemon_key *inherited,
			int depth)
{
	int names_fd = bpf_map__fd(ld->skel->maps.cgroup_names);
	struct daemon_key own;
	const struct daemon_key *name = inherited;
	char sub[PATH_MAX];
	uint64_t cgid;
	struct dirent *de;
	FILE *f;
	DIR *d;
	int total = 0, pid, r;

	if (depth > ADOPT_DEPTH_MAX)
		return 0;
	if (loader_cgroup_id(path, &cgid) == 0 && bpf_map_lookup_elem(names_fd, &cgid, &own) == 0)
		name = &own;
	if (path_join(sub, sizeof(sub), path, "cgroup.procs"))
		return -ENAMETOOLONG;
	f = fopen(sub, "re");
	if (!f)
		return -errno;
	while (fscanf(f, "%d", &pid) == 1) {
		r = adopt_pid(ld, pid, name);
		if (r > 0)
			total += r;
	}
	fclose(f);

	d = opendir(path);
	if (!d)
		return total;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (path_join(sub, sizeof(sub), path, de->d_name))
			continue;
		r = adopt_cgroup(ld, sub, name, depth + 1);
		if (r > 0)
			total += r;
	}
	closedir(d);
	return total;
}

/* loader_adopt_sockets - record owners of sockets opened before bpfwrap */
int loader_adopt_sockets(struct loader *ld, const char *cgroup_path)
{
	int names_fd = bpf_map__fd(ld->skel->maps.cgroup_names);
	struct daemon_key k, *inherited = NULL;
	char parent[PATH_MAX];
	uint64_t cgid;
	char *slash;
	int err;

	err = loader_cgroup_id(cgroup_path, &cgid);
	if (err)
		return err;
	/* A name given to an ancestor applies here too. */
	if (strlen(cgroup_path) >= sizeof(parent))
		return -ENAMETOOLONG;
	strcpy(parent, cgroup_path);
	for (int level = 0; level < ADOPT_DEPTH_MAX; level++) {
		slash = strrchr(parent, '/');
		if (!slash || slash == parent)
			break;
		*slash = 0;
		if (loader_cgroup_id(parent, &cgid) < 0)
			break;
		if (bpf_map_lookup_elem(names_fd, &cgid, &k) == 0) {
			inherited = &k;
			break;
		}
	}
	return adopt_cgroup(ld, cgroup_path, inherited, 0);
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
	struct timespec ts;
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
		clock_gettime(CLOCK_MONOTONIC, &ts);
		st->agent_pid = aa.pid;
		st->agent_alive =
			aa.expires_ns > (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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

/* monotonic_ns - CLOCK_MONOTONIC now, the clock of bpf_ktime_get_ns() */
static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* loader_agent_heartbeat - mark the agent alive for ttl_ns (0: mark dead) */
int loader_agent_heartbeat(struct loader *ld, uint32_t pid, uint64_t ttl_ns)
{
	struct agent_alive aa = { .pid = pid, .expires_ns = ttl_ns ? monotonic_ns() + ttl_ns : 0 };
	uint32_t zero = 0;

	return bpf_map_update_elem(bpf_map__fd(ld->skel->maps.agent_alive), &zero, &aa,
				   BPF_ANY) < 0 ? -errno : 0;
}

/* loader_cache_verdict - store the agent's answer in the verdict cache */
int loader_cache_verdict(struct loader *ld, uint32_t generation, uint32_t daemon_id, int family,
			 const void *addr, uint8_t verdict, uint32_t rule_id, uint64_t ttl_ns)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	struct verdict_key k;
	struct verdict_value v;

	if (verdict != BPFWRAP_ALLOW && verdict != BPFWRAP_DENY)
		return -EINVAL;
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.generation = generation;
	k.daemon_id = daemon_id;
	if (family == AF_INET) {
		k.family = BPFWRAP_AF_INET;
		memcpy(k.addr, addr, 4);
	} else if (family == AF_INET6) {
		if (!memcmp(addr, mapped, sizeof(mapped))) {
			k.family = BPFWRAP_AF_INET;
			memcpy(k.addr, (const uint8_t *)addr + 12, 4);
		} else {
			k.family = BPFWRAP_AF_INET6;
			memcpy(k.addr, addr, 16);
		}
	} else {
		return -EAFNOSUPPORT;
	}
	v.verdict = verdict;
	v.rule_id = rule_id;
	v.expires_ns = monotonic_ns() + ttl_ns;
	return bpf_map_update_elem(bpf_map__fd(ld->skel->maps.verdict_cache), &k, &v, BPF_ANY) < 0
		       ? -errno
		       : 0;
}
