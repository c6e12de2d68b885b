/*
 * v4table.c - the images of a compiled policy's inner maps, built by the
 * loader before a flip (see loader.c): the IPv4 interval tables (a
 * directory per daemon table over the top address bits, a search tree per
 * bucket; layout in include/bpfwrap.h), each IPv6 trie with its sorted host
 * array, and the daemon-name table. Every builder creates brand-new maps
 * and fills them; nothing here touches a map the programs can read.
 *
 * Errors: every function returns the new map's fd (or 0) or -errno and
 * prints nothing; on failure the maps it created are closed again.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "compile.h"
#include "v4table.h"

#define BATCH_CHUNK 65536	/* entries per bpf_map_update_batch call */

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
int create_inner(enum bpf_map_type type, const char *name, size_t ksz, size_t vsz,
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

/* layout_v6 - where the parts of a compiled_v6 entry sit */
const struct family_layout layout_v6 = {
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
int fill_family(const void *entries, size_t n, const struct family_layout *fl,
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
int fill_v4(const struct compiled_v4 *cv, size_t n, int *tree_fd, int *ents_fd,
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
void daemon_key_set(struct daemon_key *k, const char *name, size_t max)
{
	size_t i;

	memset(k, 0, sizeof(*k));
	if (max > sizeof(k->name) - 1)
		max = sizeof(k->name) - 1;
	for (i = 0; i < max && name[i]; i++)
		k->name[i] = (char)tolower((unsigned char)name[i]);
}

/* fill_daemons - create and fill the daemon-name table */
int fill_daemons(const struct compiled_policy *cp)
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
