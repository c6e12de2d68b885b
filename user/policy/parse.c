/*
 * parse.c - read hosts.allow and hosts.deny exactly as Debian's libwrap
 * (tcp_wrappers 7.6.q-32) reads them, into the tables of policy.h.
 *
 * libwrap never parses a table ahead of time: table_match() reads it line by
 * line for each request and stops at the first match. This parser reads the
 * whole file once and records everything libwrap would meet on its way, so
 * that policy_evaluate() can reproduce each decision:
 *  - xgets(): backslash-newline is deleted before anything else; a logical
 *    line holds at most 2046 characters + '\n'; a line that does not end in
 *    '\n' (no final newline, too long, `\` at EOF) makes libwrap give up on
 *    the rest of the table with an error (table->cut_off);
 *  - only '#' in column 1 starts a comment; a line without ':' is skipped
 *    with a warning; fields are split at the first two ':' outside [...];
 *  - list tokens are split at ", \t\r\n" and classified once (struct
 *    pattern), in the order libwrap's host_match()/string_match() test them;
 *  - options (field 3) are checked as process_options() checks them; the
 *    first error is recorded on the rule (libwrap denies when it matches).
 *
 * Errors: content never makes parsing fail; every problem becomes a
 * diagnostic ("FILE:LINE:COL: error|warning: message"). Only resource errors
 * (-ENOMEM, -EMFILE, ...) are returned as -errno. An unreadable table
 * (EACCES, ENOTDIR, ...) is TABLE_UNREADABLE, a missing one (or a directory)
 * TABLE_MISSING. Files are opened through readfile.h, never blocking: a table
 * or /path file that is not a regular file (a FIFO, a socket, a device) is
 * not read; a table is then TABLE_UNREADABLE (an error, reported as "not a
 * regular file (fifo)"), a /path file never matches (a warning).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include "policy.h"
#include "policy_int.h"
#include "readfile.h"

/* How deep /path files may include other /path files (a file that includes
 * itself is caught as a cycle first: load_file_patterns). */
#define FILE_DEPTH_MAX 8
/* Largest table or /path file read (a hosts file is a few KiB). */
#define FILE_SIZE_MAX (64u << 20)

/* ---- arena: everything a policy owns, freed at once ---- */

/*
 * Chunks are mapped anonymously: the kernel hands them out zeroed, so the
 * arena never clears memory itself (a calloc'd heap chunk is cleared once by
 * the kernel and once more by memset), and freeing a policy unmaps them
 * instead of shrinking the heap page by page. Chunks double from 64 KiB to
 * 4 MiB, so a small policy maps little and a million-rule one few chunks.
 * Structs are 8-byte aligned; strings (arena_bytes) are packed.
 */
#define ARENA_CHUNK_MIN (64u << 10)
#define ARENA_CHUNK_MAX (4u << 20)
#define ARENA_ALIGN 8

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;	/* bytes of data[] */
	size_t map_size;	/* the whole mapping */
	max_align_t data[];
};

struct arena {
	struct arena_chunk *head;
	size_t next_cap;	/* size of the next chunk's mapping */
};

/* arena_chunk_new - map a zeroed chunk with room for at least size bytes */
static struct arena_chunk *arena_chunk_new(struct arena *a, size_t size)
{
	size_t map_size = a->next_cap ? a->next_cap : ARENA_CHUNK_MIN;

	/* mappings of whole 2 MiB multiples: the kernel can back them with huge pages */
	if (map_size - sizeof(struct arena_chunk) < size)
		map_size = (sizeof(struct arena_chunk) + size + ARENA_CHUNK_MAX - 1) & ~(size_t)(ARENA_CHUNK_MAX - 1);
	struct arena_chunk *c = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				     -1, 0);

	if (c == MAP_FAILED)
		return NULL;
	/* big chunks in 2 MiB pages where the kernel allows it (THP "madvise"):
	 * a page fault per 4 KiB costs more than filling the page */
	if (map_size >= ARENA_CHUNK_MAX)
		madvise(c, map_size, MADV_HUGEPAGE);
	c->cap = map_size - sizeof(*c);
	c->map_size = map_size;
	c->next = a->head;
	a->head = c;
	if (a->next_cap < ARENA_CHUNK_MAX)
		a->next_cap = map_size * 2 > ARENA_CHUNK_MAX ? ARENA_CHUNK_MAX : map_size * 2;
	return c;
}

/* arena_take - size bytes at the given alignment, zeroed, from the current chunk or a new one */
static void *arena_take(struct arena *a, size_t size, size_t align)
{
	struct arena_chunk *c = a->head;
	size_t at = c ? (c->used + align - 1) & ~(align - 1) : 0;

	if (!c || at > c->cap || c->cap - at < size) {
		c = arena_chunk_new(a, size);
		if (!c)
			return NULL;
		at = 0;
	}
	c->used = at + size;
	return (char *)c->data + at;
}

/* arena_alloc - zeroed, 8-byte aligned memory that lives as long as the arena */
static void *arena_alloc(struct arena *a, size_t size)
{
	return arena_take(a, size ? size : 1, ARENA_ALIGN);
}

/* arena_strndup - copy n bytes and a terminating NUL into the arena */
static char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_take(a, n + 1, 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* arena_lower - lower-cased copy of n bytes */
static char *arena_lower(struct arena *a, const char *s, size_t n)
{
	char *p = arena_take(a, n + 1, 1);

	if (p) {
		for (size_t i = 0; i < n; i++)
			p[i] = (char)pol_lower((unsigned char)s[i]);
		p[n] = '\0';
	}
	return p;
}

/* arena_free - release every chunk */
static void arena_free(struct arena *a)
{
	while (a && a->head) {
		struct arena_chunk *next = a->head->next;

		munmap(a->head, a->head->map_size);
		a->head = next;
	}
}

/* ---- helpers shared with evaluate.c (policy_int.h) ---- */

/* pol_dot_quad - libwrap's dot_quad_addr(): exactly 4 runs of non-dots, then inet_addr() */
bool pol_dot_quad(const char *s, uint32_t *addr)
{
	int runs = 0;
	bool in_run = false;

	for (const char *p = s; *p; p++) {
		if (*p == '.') {
			in_run = false;
		} else if (!in_run) {
			in_run = true;
			runs++;
		}
	}
	if (runs != 4)
		return false;
	in_addr_t a = inet_addr(s);
	if (a == INADDR_NONE)
		return false;
	*addr = a;
	return true;
}

/* pol_parse_v6 - getaddrinfo(s, AF_INET6, AI_PASSIVE|AI_NUMERICHOST) as libwrap calls it */
bool pol_parse_v6(const char *s, struct in6_addr *out)
{
	struct addrinfo hints = {
		.ai_flags = AI_PASSIVE | AI_NUMERICHOST,
		.ai_family = AF_INET6,
		.ai_socktype = SOCK_STREAM,
	};
	struct addrinfo *res = NULL;

	if (getaddrinfo(s, NULL, &hints, &res) != 0 || !res)
		return false;
	bool ok = res->ai_family == AF_INET6 && res->ai_addrlen >= sizeof(struct sockaddr_in6);
	if (ok)
		*out = ((const struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
	freeaddrinfo(res);
	return ok;
}

/* pol_glob - libwrap's match_pattern_ylo() on lower-cased strings: '*' any run, '?' one char */
bool pol_glob(const char *s, const char *p)
{
	const char *star_p = NULL, *star_s = NULL;

	/* iterative wildcard match with backtracking to the last '*': same
	 * language as ylo's recursive version, linear stack */
	for (;;) {
		if (*p == '*') {
			while (*p == '*')
				p++;
			if (!*p)
				return true;
			star_p = p;
			star_s = s;
			continue;
		}
		if (*s && (*p == '?' || *p == *s)) {
			p++;
			s++;
			continue;
		}
		if (!*p && !*s)
			return true;
		if (!star_p || !*star_s)
			return false;
		p = star_p;
		s = ++star_s;
	}
}

/* pol_strip_mapped - 7 for "::ffff:" (any case) + dotted quad, else 0 */
size_t pol_strip_mapped(const char *s)
{
	uint32_t a;

	if (strncasecmp(s, "::ffff:", 7) == 0 && pol_dot_quad(s + 7, &a))
		return 7;
	return 0;
}

/* ---- parser state ---- */

/* Longest token a one-token list may share with an earlier rule (parse_list). */
#define SHARE_TEXT_MAX 64

/* The last one-token list of a context that another rule may share. */
struct shared_list {
	const char *file;	/* the table (NULL: none yet) */
	unsigned col;		/* the token's column, on its rule's first line */
	size_t n;
	struct pattern *items;
	char text[SHARE_TEXT_MAX];
};

struct parser {
	struct policy *policy;
	struct arena *arena;
	int err;		/* first resource error (-errno), sticky */
	struct shared_list shared[2];	/* by enum list_ctx */
	/* the /path files being read, outermost first (cycle detection) */
	struct open_file {
		dev_t dev;
		ino_t ino;
		const char *path;
	} chain[FILE_DEPTH_MAX];
	int chain_len;
};

/* A logical line with the physical position of every character. */
struct lline {
	char text[POLICY_LINE_BUF + 1];
	unsigned line[POLICY_LINE_BUF + 1];
	unsigned col[POLICY_LINE_BUF + 1];
	size_t len;
};

/* Reader over a table in memory, like libwrap's FILE * + tcpd_context. */
struct reader {
	const char *buf;
	size_t size, off;
	unsigned line, col;	/* position of buf[off] */
};

/* oom - remember a resource error; returns NULL for convenience */
static void *oom(struct parser *ps)
{
	if (!ps->err)
		ps->err = -ENOMEM;
	return NULL;
}

/* add_diag - append one diagnostic; file must live in the arena */
static void add_diag(struct parser *ps, enum diag_severity sev, const char *file, unsigned line,
		     unsigned col, const char *hint, const char *fmt, ...)
{
	struct diag_list *dl = &ps->policy->diags;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (dl->count == dl->cap) {
		size_t cap = dl->cap ? dl->cap * 2 : 16;
		struct diag *items = realloc(dl->items, cap * sizeof(*items));

		if (!items) {
			oom(ps);
			return;
		}
		dl->items = items;
		dl->cap = cap;
	}
	struct diag *d = &dl->items[dl->count];
	d->severity = sev;
	d->pos.file = file;
	d->pos.line = line;
	d->pos.col = col;
	d->message = arena_strndup(ps->arena, msg, strlen(msg));
	d->hint = hint ? arena_strndup(ps->arena, hint, strlen(hint)) : NULL;
	if (!d->message || (hint && !d->hint)) {
		oom(ps);
		return;
	}
	dl->count++;
}

/*
 * read_logical - libwrap's xgets() into a char[2048]: fgets() pieces, each
 * "\\\n" deleted, until a '\n' that is not escaped, EOF, or a full buffer.
 * Returns false at EOF with nothing read. NUL bytes behave as in libwrap
 * (strlen() stops there and the rest of that fgets() piece is lost).
 */
static bool read_logical(struct reader *r, struct lline *ll)
{
	size_t n = 0;			/* strlen(start) so far */
	int len = POLICY_LINE_BUF;	/* room left, as libwrap's len */

	for (;;) {
		if (r->off >= r->size) {	/* fgets() returns NULL */
			ll->len = n;
			ll->text[n] = '\0';
			return n > 0;
		}
		/* fgets(ptr, len, fp): up to len - 1 bytes, through a '\n' */
		size_t k = 0, max = (size_t)len - 1;
		while (k < max && r->off < r->size) {
			char c = r->buf[r->off++];

			ll->text[n + k] = c;
			ll->line[n + k] = r->line;
			ll->col[n + k] = r->col;
			k++;
			if (c == '\n') {
				r->line++;
				r->col = 1;
				break;
			}
			r->col++;
		}
		ll->text[n + k] = '\0';
		size_t got = strnlen(ll->text + n, k);

		if (got > 0 && ll->text[n + got - 1] == '\n') {
			if (got >= 2 && ll->text[n + got - 2] == '\\') {
				n += got - 2;
				len -= (int)(got - 2);
				ll->text[n] = '\0';
				if (len == 1) {
					ll->len = n;
					return true;
				}
				continue;
			}
			ll->len = n + got;
			return true;
		}
		n += got;
		len -= (int)got;
		ll->text[n] = '\0';
		if (len == 1) {
			ll->len = n;
			return true;
		}
	}
}

/* split_at - libwrap's split_at(): index of the first `delim` outside [...] in s[from..n), or -1 */
static long split_at(const char *s, size_t from, size_t n, char delim)
{
	int bracket = 0;

	for (size_t i = from; i < n && s[i]; i++) {
		if (s[i] == '[')
			bracket++;
		else if (s[i] == ']')
			bracket--;
		else if (bracket == 0 && s[i] == delim)
			return (long)i;
	}
	return -1;
}

/* eq_ci - case-insensitive equality of s[0..n) with a NUL-terminated keyword */
static bool eq_ci(const char *s, size_t n, const char *kw)
{
	return strlen(kw) == n && strncasecmp(s, kw, n) == 0;
}

/* ---- pattern classification ---- */

/* pat_low - p->low for token t[0..n): p->text itself when that is the same
 * bytes already in the wanted case (most tokens), else a new copy */
static const char *pat_low(struct parser *ps, const struct pattern *p, const char *t, size_t n,
			   bool fold)
{
	if (p->text && !strncmp(p->text, t, n) && p->text[n] == '\0') {
		size_t i = 0;

		while (fold && i < n && !(t[i] >= 'A' && t[i] <= 'Z'))
			i++;
		if (!fold || i == n)
			return p->text;
	}
	return fold ? arena_lower(ps->arena, t, n) : arena_strndup(ps->arena, t, n);
}

struct tokpos {
	const char *file;
	unsigned line, col;
};

static int classify_host(struct parser *ps, struct pattern *p, const char *t, size_t n,
			 struct tokpos pos, int depth);

/* classify_string - string_match()'s order: glob, .suffix, ALL, KNOWN, prefix., [v6], exact */
static void classify_string(struct parser *ps, struct pattern *p, const char *t, size_t n)
{
	p->kind = PAT_STRING;
	p->low = pat_low(ps, p, t, n, true);
	p->len = n;
	p->valid = true;
	if (!p->low) {
		oom(ps);
		return;
	}
	p->hash = pol_hash(p->low, n);
	if (memchr(t, '*', n) || memchr(t, '?', n))
		p->skind = STR_GLOB;
	else if (n && t[0] == '.')
		p->skind = STR_SUFFIX;
	else if (eq_ci(t, n, "ALL"))
		p->skind = STR_ALL;
	else if (eq_ci(t, n, "KNOWN"))
		p->skind = STR_KNOWN;
	else if (n && t[n - 1] == '.')
		p->skind = STR_PREFIX;
	else if (n >= 2 && t[0] == '[' && t[n - 1] == ']') {
		char inner[256];

		p->skind = STR_V6;
		p->family = AF_INET6;
		p->valid = n - 2 < sizeof(inner);
		if (p->valid) {
			memcpy(inner, t + 1, n - 2);
			inner[n - 2] = '\0';
			p->valid = pol_parse_v6(inner, &p->v6);
		}
	} else
		p->skind = STR_EXACT;
}

/* v6_mask - the mask of an IPv6 prefix of len bits */
static void v6_mask(struct in6_addr *m, unsigned len)
{
	memset(m, 0, sizeof(*m));
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = len > 8 * i ? len - 8 * i : 0;

		m->s6_addr[i] = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
	}
}

/* classify_netmask - host_match()'s net/mask: IPv4 via masked_match4, else IPv6 [net]/len */
static void classify_netmask(struct parser *ps, struct pattern *p, const char *t, size_t n,
			     size_t slash, struct tokpos pos)
{
	char net[POLICY_LINE_BUF + 1], mask[POLICY_LINE_BUF + 1];
	uint32_t net4, mask4;

	p->kind = PAT_NETMASK;
	p->low = pat_low(ps, p, t, n, true);
	p->len = n;
	if (!p->low) {
		oom(ps);
		return;
	}
	memcpy(net, t, slash);
	net[slash] = '\0';
	memcpy(mask, t + slash + 1, n - slash - 1);
	mask[n - slash - 1] = '\0';

	if (net[0] != '[') {
		/* masked_match4(): dotted net; mask dotted, else cidr_mask_addr()
		 * = (int)strtol() in 1..32 (so "/255.255.255.255" is no mask) */
		p->family = AF_INET;
		bool ok = pol_dot_quad(net, &net4);
		if (ok && !pol_dot_quad(mask, &mask4)) {
			int bits = (int)strtol(mask, NULL, 10);

			ok = bits >= 1 && bits <= 32;
			mask4 = ok ? htonl(0xffffffffu << (32 - bits)) : 0;
		}
		if (ok) {
			memcpy(&p->net.s6_addr[0], &net4, 4);
			memcpy(&p->mask.s6_addr[0], &mask4, 4);
		}
		if (!ok) {
			add_diag(ps, DIAG_WARNING, pos.file, pos.line, pos.col,
				 "write NET/MASK as four dotted numbers and /LEN (1..32) or /MASK",
				 "bad net/mask '%.*s': never matches", (int)n, t);
		} else if (net4 & ~mask4) {
			char fixed[INET_ADDRSTRLEN];
			struct in_addr fa = { .s_addr = net4 & mask4 };
			char hint[128];

			inet_ntop(AF_INET, &fa, fixed, sizeof(fixed));
			snprintf(hint, sizeof(hint), "perhaps you meant %s/%.64s", fixed, mask);
			add_diag(ps, DIAG_WARNING, pos.file, pos.line, pos.col, hint,
				 "net '%.64s' has bits outside mask '%.64s': libwrap never matches it", net, mask);
			ok = false;
		}
		p->valid = ok;
		return;
	}

	/* IPv6: "[net]/len", len = (int)strtol() in 0..128, both sides masked */
	p->family = AF_INET6;
	p->valid = false;
	size_t nl = strlen(net);
	if (nl >= 2 && net[nl - 1] == ']') {
		net[nl - 1] = '\0';
		int bits = (int)strtol(mask, NULL, 10);

		if (bits >= 0 && bits <= 128 && pol_parse_v6(net + 1, &p->net)) {
			p->prefix_len = (unsigned)bits;
			v6_mask(&p->mask, p->prefix_len);
			for (int i = 0; i < 16; i++)
				p->net.s6_addr[i] &= p->mask.s6_addr[i];
			p->valid = true;
		}
	}
	if (!p->valid)
		add_diag(ps, DIAG_WARNING, pos.file, pos.line, pos.col,
			 "write an IPv6 network as [ADDRESS]/LEN with LEN 0..128",
			 "bad IPv6 net/len '%.*s': never matches", (int)n, t);
}

/* load_file_patterns - the /path hack: every blank-separated word of the file is a host pattern */
static void load_file_patterns(struct parser *ps, struct pattern *p, const char *path,
			       struct tokpos pos, int depth)
{
	if (depth >= FILE_DEPTH_MAX) {
		add_diag(ps, DIAG_WARNING, pos.file, pos.line, pos.col, NULL,
			 "pattern file '%s' nested more than %d files deep: never matches", path,
			 FILE_DEPTH_MAX);
		return;
	}
	mode_t type;
	int fd = readfile_open(path, &type);
	if (fd < 0) {
		char why[READFILE_ERR_MAX];

		if (fd == -ENOMEM || fd == -EMFILE || fd == -ENFILE)
			ps->err = ps->err ? ps->err : fd;
		else if (fd == -EISDIR)	/* libwrap: fopen() works, fgets() finds nothing */
			add_diag(ps, DIAG_WARNING, pos.file, pos.line, pos.col, NULL,
				 "pattern file '%s' is a directory: never matches", path);
		else if (fd == -EINVAL && type)	/* libwrap: may block in fopen() or fgets() */
			add_diag(ps, DIAG_WARNING, pos.file, pos.line, pos.col,
				 "make it a regular file",
				 "pattern file '%s': %s: bpfwrap does not read it (libwrap would block on it): "
				 "never matches", path, readfile_strerror(fd, type, why, sizeof(why)));
		else
			add_diag(ps, DIAG_WARNING, pos.file, pos.line, pos.col, NULL,
				 "cannot open pattern file '%s': %s: never matches", path, strerror(-fd));
		return;
	}
	/*
	 * A file that includes itself, directly or through others: libwrap
	 * opens it again and again until it crashes (stack) or runs out of
	 * file descriptors, where that innermost item does not match. Here the
	 * item that closes the cycle never matches: the words it would bring
	 * in are the words of files already being read further out, and a
	 * /path item matches when any word does, so every decision equals
	 * libwrap's under a small fd limit (docs/check.md). It is an error:
	 * under the usual limit libwrap itself serves no one.
	 */
	struct stat st;
	bool known = fstat(fd, &st) == 0;
	if (known) {
		for (int i = 0; i < ps->chain_len; i++) {
			if (ps->chain[i].dev != st.st_dev || ps->chain[i].ino != st.st_ino)
				continue;
			char hint[512], via[1024];
			size_t vl = 0;

			via[0] = '\0';
			for (int j = i; j < ps->chain_len && vl < sizeof(via); j++) {
				int w = snprintf(via + vl, sizeof(via) - vl, "%.200s -> ", ps->chain[j].path);

				vl = w < 0 ? sizeof(via) : vl + (size_t)w;
			}
			snprintf(hint, sizeof(hint), "remove '%.200s' from %.200s", path, pos.file);
			add_diag(ps, DIAG_ERROR, pos.file, pos.line, pos.col, hint,
				 "pattern file '%s' includes itself (%s%s): libwrap recurses until it crashes; "
				 "bpfwrap: this item never matches", path, via, path);
			close(fd);
			return;
		}
	}
	bool pushed = known && ps->chain_len < FILE_DEPTH_MAX;
	if (pushed)
		ps->chain[ps->chain_len++] = (struct open_file){ st.st_dev, st.st_ino, path };
	char *buf;
	size_t len;
	int read_err;	/* libwrap's fscanf() sees EOF there: what was read counts */
	int err = readfile_fd(fd, FILE_SIZE_MAX, &buf, &len, &read_err);
	close(fd);
	if (err) {
		if (pushed)
			ps->chain_len--;
		oom(ps);
		return;
	}

	const char *fname = arena_strndup(ps->arena, path, strlen(path));
	size_t count = 0;
	for (size_t i = 0; i < len;) {	/* fscanf("%s") words: separated by isspace() */
		while (i < len && isspace((unsigned char)buf[i]))
			i++;
		if (i < len)
			count++;
		while (i < len && !isspace((unsigned char)buf[i]))
			i++;
	}
	struct pattern_list *pl = arena_alloc(ps->arena, sizeof(*pl));
	struct pattern *items = arena_alloc(ps->arena, (count ? count : 1) * sizeof(*items));
	if (!fname || !pl || !items) {
		free(buf);
		if (pushed)
			ps->chain_len--;
		oom(ps);
		return;
	}
	unsigned line = 1, col = 1;
	size_t k = 0;
	for (size_t i = 0; i < len && k < count;) {
		while (i < len && isspace((unsigned char)buf[i])) {
			if (buf[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
			i++;
		}
		if (i >= len)
			break;
		size_t start = i;
		unsigned scol = col;
		while (i < len && !isspace((unsigned char)buf[i])) {
			i++;
			col++;
		}
		/* fscanf's %s stops at NUL only in the destination: a word with a
		 * NUL compares as its first part in libwrap; do the same */
		size_t wl = strnlen(buf + start, i - start);
		struct tokpos wpos = { fname, line, scol };

		items[k].pos = (struct srcpos){ fname, line, scol };
		items[k].text = arena_strndup(ps->arena, buf + start, wl);
		if (!items[k].text) {
			oom(ps);
			break;
		}
		classify_host(ps, &items[k], buf + start, wl, wpos, depth + 1);
		k++;
	}
	free(buf);
	if (pushed)
		ps->chain_len--;
	pl->items = items;
	pl->count = k;
	p->file_patterns = pl;
}

/* classify_host - host_match()'s order: @netgroup, /path, KNOWN, LOCAL, net/mask, string */
static int classify_host(struct parser *ps, struct pattern *p, const char *t, size_t n,
			 struct tokpos pos, int depth)
{
	long slash;

	p->pos = (struct srcpos){ pos.file, pos.line, pos.col };
	if (n > POLICY_LINE_BUF) {
		/* only a word of a /path file can be this long (libwrap would
		 * overflow its buffer): an exact string that matches nothing */
		p->kind = PAT_STRING;
		p->skind = STR_EXACT;
		p->low = pat_low(ps, p, t, n, true);
		p->len = n;
	} else if (n && t[0] == '@') {
		p->kind = PAT_NETGROUP;
		p->low = pat_low(ps, p, t, n, false);	/* innetgr() gets the name as written */
		p->len = n;
		p->valid = true;
	} else if (n && t[0] == '/') {
		char path[POLICY_LINE_BUF + 1];

		p->kind = PAT_FILE;
		p->low = pat_low(ps, p, t, n, false);
		p->len = n;
		p->valid = true;
		memcpy(path, t, n);
		path[n] = '\0';
		load_file_patterns(ps, p, path, pos, depth);
	} else if (eq_ci(t, n, "KNOWN")) {
		p->kind = PAT_KNOWN;
		p->low = pat_low(ps, p, t, n, true);
		p->len = n;
		p->valid = true;
	} else if (eq_ci(t, n, "LOCAL")) {
		p->kind = PAT_LOCAL;
		p->low = pat_low(ps, p, t, n, true);
		p->len = n;
		p->valid = true;
	} else if ((slash = split_at(t, 0, n, '/')) >= 0) {
		classify_netmask(ps, p, t, n, (size_t)slash, pos);
	} else {
		classify_string(ps, p, t, n);
		/* NOT_INADDR(): anything but digits, '.' and '/' is also tried on the name */
		size_t i = 0;
		while (i < n && strchr("01234567890./", t[i]))
			i++;
		p->also_name = i < n;
	}
	if (!p->low)
		return -ENOMEM;
	return 0;
}

/* classify_daemon_part - server_match()'s daemon test: a port number (Debian), else a string */
static void classify_daemon_part(struct parser *ps, struct pattern *p, const char *t, size_t n)
{
	char buf[POLICY_LINE_BUF + 1], junk;
	unsigned port;

	memcpy(buf, t, n);
	buf[n] = '\0';
	if (sscanf(buf, "%u%c", &port, &junk) == 1 && port <= 65535) {
		p->kind = PAT_PORT;
		p->port = (uint16_t)port;
		p->low = pat_low(ps, p, t, n, true);
		p->len = n;
		p->valid = true;
		if (!p->low)
			oom(ps);
		return;
	}
	classify_string(ps, p, t, n);
}

enum list_ctx { CTX_DAEMON, CTX_CLIENT };

/* classify_token - one list token in its context (EXCEPT, daemon[@host], [user@]host) */
static void classify_token(struct parser *ps, struct pattern *p, const char *t, size_t n,
			   struct tokpos pos, enum list_ctx ctx)
{
	long at;

	p->pos = (struct srcpos){ pos.file, pos.line, pos.col };
	p->text = arena_strndup(ps->arena, t, n);
	if (!p->text) {
		oom(ps);
		return;
	}
	if (eq_ci(t, n, "EXCEPT")) {
		p->kind = PAT_EXCEPT;
		p->low = pat_low(ps, p, t, n, true);
		p->len = n;
		return;
	}
	at = split_at(t, 1, n, '@');	/* libwrap: split_at(tok + 1, '@') */
	if (ctx == CTX_DAEMON) {
		size_t dn = at >= 0 ? (size_t)at : n;

		classify_daemon_part(ps, p, t, dn);
		if (at >= 0) {
			struct pattern *h = arena_alloc(ps->arena, sizeof(*h));
			struct tokpos hp = { pos.file, pos.line, pos.col + (unsigned)at + 1 };

			if (!h) {
				oom(ps);
				return;
			}
			h->text = arena_strndup(ps->arena, t + at + 1, n - (size_t)at - 1);
			classify_host(ps, h, t + at + 1, n - (size_t)at - 1, hp, 0);
			p->server = h;
		}
		return;
	}
	if (at < 0) {
		classify_host(ps, p, t, n, pos, 0);
		return;
	}
	struct pattern *u = arena_alloc(ps->arena, sizeof(*u));
	struct pattern *h = arena_alloc(ps->arena, sizeof(*h));
	struct tokpos hp = { pos.file, pos.line, pos.col + (unsigned)at + 1 };
	if (!u || !h) {
		oom(ps);
		return;
	}
	u->pos = p->pos;
	u->text = arena_strndup(ps->arena, t, (size_t)at);
	classify_string(ps, u, t, (size_t)at);
	h->text = arena_strndup(ps->arena, t + at + 1, n - (size_t)at - 1);
	classify_host(ps, h, t + at + 1, n - (size_t)at - 1, hp, 0);
	/* the pattern itself reads as its host part; `user` adds the user test */
	char *text = p->text;
	*p = *h;
	p->text = text;
	p->pos = u->pos;
	p->user = u;
	p->host = h;
}

/* parse_list - split ll->text[from..to) at ", \t\r\n" and classify each token */
static void parse_list(struct parser *ps, const struct lline *ll, size_t from, size_t to,
		       const char *file, enum list_ctx ctx, struct pattern_list *out)
{
	static const char sep[] = ", \t\r\n";
	size_t count = 0, first = 0, first_end = 0;

	for (size_t i = from; i < to;) {
		while (i < to && strchr(sep, ll->text[i]))
			i++;
		if (i < to && !count++)
			first = i;
		while (i < to && !strchr(sep, ll->text[i]))
			i++;
		if (count == 1 && !first_end)
			first_end = i;
	}
	/*
	 * A list of one plain token (`ALL`, `sshd`), on the rule's first line
	 * at the same column as in the rule before, that classified without a
	 * diagnostic, is the same list as there: share its items. A fail2ban
	 * file of a million `ALL: ADDRESS` lines then holds one `ALL` pattern
	 * instead of a million. Such a pattern's pos.line is the earlier
	 * rule's (policy.h); user@host, daemon@host and /path tokens are never
	 * shared, so no pattern reached through one is.
	 */
	struct shared_list *sh = &ps->shared[ctx];
	size_t n = first_end - first;
	bool shareable = count == 1 && n < SHARE_TEXT_MAX && ll->line[first] == ll->line[0] &&
			 ll->text[first] != '/' && !memchr(ll->text + first, '@', n);

	if (shareable && sh->file == file && sh->col == ll->col[first] && sh->n == n &&
	    !memcmp(sh->text, ll->text + first, n)) {
		out->items = sh->items;
		out->count = 1;
		return;
	}
	out->count = 0;
	out->items = arena_alloc(ps->arena, (count ? count : 1) * sizeof(*out->items));
	if (!out->items) {
		oom(ps);
		return;
	}
	size_t diags_before = ps->policy->diags.count;
	for (size_t i = from; i < to;) {
		while (i < to && strchr(sep, ll->text[i]))
			i++;
		if (i >= to)
			break;
		size_t start = i;
		while (i < to && !strchr(sep, ll->text[i]))
			i++;
		struct tokpos pos = { file, ll->line[start], ll->col[start] };
		classify_token(ps, &out->items[out->count++], ll->text + start, i - start, pos, ctx);
	}
	if (shareable && !ps->err && ps->policy->diags.count == diags_before) {
		sh->file = file;
		sh->col = ll->col[first];
		sh->n = n;
		sh->items = out->items;
		memcpy(sh->text, ll->text + first, n);
	}
}

/* ---- options (field 3), as process_options() checks them ---- */

enum { NEED_ARG = 2, USE_LAST = 4, OPT_ARG = 8, EXPAND_ARG = 16 };

static const struct option_def {
	const char *name;
	enum rule_option_kind kind;
	int flags;
} option_defs[] = {	/* libwrap's option_table, in its order */
	{ "user", ROPT_USER, NEED_ARG },
	{ "group", ROPT_GROUP, NEED_ARG },
	{ "umask", ROPT_UMASK, NEED_ARG },
	{ "linger", ROPT_LINGER, NEED_ARG },
	{ "keepalive", ROPT_KEEPALIVE, 0 },
	{ "aclexec", ROPT_ACLEXEC, NEED_ARG | EXPAND_ARG },
	{ "spawn", ROPT_SPAWN, NEED_ARG | EXPAND_ARG },
	{ "twist", ROPT_TWIST, NEED_ARG | USE_LAST | EXPAND_ARG },
	{ "rfc931", ROPT_RFC931, OPT_ARG },
	{ "setenv", ROPT_SETENV, NEED_ARG | EXPAND_ARG },
	{ "nice", ROPT_NICE, OPT_ARG },
	{ "severity", ROPT_SEVERITY, NEED_ARG },
	{ "allow", ROPT_ALLOW, USE_LAST },
	{ "deny", ROPT_DENY, USE_LAST },
	{ "banners", ROPT_BANNERS, NEED_ARG },
};

/* Debian's syslog name tables (options.c log_fac / log_sev). */
static const char *const log_facilities[] = {
	"kern", "user", "mail", "daemon", "auth", "lpr", "news", "uucp", "cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
};
static const char *const log_severities[] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

/* in_names - case-insensitive lookup in a name table */
static bool in_names(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(names[i], s) == 0)
			return true;
	return false;
}

/* An option field being cut, with the position of each character. */
struct ofield {
	char *s;
	const unsigned *line, *col;
};

/* is_space - isspace() in the C locale (libwrap's chop_string) */
static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/*
 * check_option_value - what the option function does with its value that
 * can fail (tcpd_jump) without a request. Returns an error message or NULL.
 * Writes the parsed number, if any.
 */
static const char *check_option_value(enum rule_option_kind kind, char *value, long *number,
				      char *msg, size_t size, bool *dynamic)
{
	char junk;
	int i = 0;
	unsigned u = 0;

	switch (kind) {
	case ROPT_USER: {
		long dot = split_at(value, 0, strlen(value), '.');

		if (dot >= 0) {
			value[dot] = '\0';
			if (!getgrnam(value + dot + 1)) {
				snprintf(msg, size, "unknown group: \"%s\"", value + dot + 1);
				value[dot] = '.';
				return msg;
			}
		}
		const struct passwd *pw = getpwnam(value);
		bool ok = pw != NULL;
		if (!ok) {
			snprintf(msg, size, "unknown user: \"%s\"", value);
		} else if (dot < 0 && pw->pw_uid != 0) {
			/* Debian's libwrap calls setuid() before setgid(); the
			 * setgid() then fails with EPERM and the request is denied */
			snprintf(msg, size, "user \"%s\" without a group: libwrap sets the uid first and its "
				 "setgid() fails; write \"user %s.GROUP\"", value, value);
			ok = false;
		}
		if (dot >= 0)
			value[dot] = '.';
		return ok ? NULL : msg;
	}
	case ROPT_GROUP:
		if (!getgrnam(value)) {
			snprintf(msg, size, "unknown group: \"%s\"", value);
			return msg;
		}
		return NULL;
	case ROPT_UMASK:
		if (sscanf(value, "%o%c", &u, &junk) != 1 || u > 0777) {
			snprintf(msg, size, "bad umask value: \"%s\"", value);
			return msg;
		}
		*number = (long)u;
		return NULL;
	case ROPT_LINGER:
		if (sscanf(value, "%d%c", &i, &junk) != 1 || i < 0) {
			snprintf(msg, size, "bad linger value: \"%s\"", value);
			return msg;
		}
		*number = i;
		return NULL;
	case ROPT_RFC931:
		if (value && (sscanf(value, "%d%c", &i, &junk) != 1 || i <= 0)) {
			snprintf(msg, size, "bad rfc931 timeout: \"%s\"", value);
			return msg;
		}
		*number = value ? i : 0;
		return NULL;
	case ROPT_NICE:
		i = 10;
		if (value && sscanf(value, "%d%c", &i, &junk) != 1) {
			snprintf(msg, size, "bad nice value: \"%s\"", value);
			return msg;
		}
		*number = i;
		return NULL;
	case ROPT_SEVERITY: {
		/* [facility.]level: both names must be in Debian's tables */
		long dot = split_at(value, 0, strlen(value), '.');
		const char *bad = NULL;

		if (dot >= 0) {
			value[dot] = '\0';
			if (!in_names(log_facilities, sizeof(log_facilities) / sizeof(*log_facilities), value))
				bad = value;
		}
		const char *level = dot >= 0 ? value + dot + 1 : value;
		if (!bad && !in_names(log_severities, sizeof(log_severities) / sizeof(*log_severities), level))
			bad = level;
		if (bad)
			snprintf(msg, size, "bad syslog facility or severity: \"%s\"", bad);
		if (dot >= 0)
			value[dot] = '.';
		return bad ? msg : NULL;
	}
	case ROPT_SETENV: {
		/* setenv(name, ...) with name = first word of the expanded value:
		 * EINVAL ("memory allocation failure") if it holds '='. Expansions
		 * are never blank, so only a '%' can make the name depend on the
		 * request. */
		size_t wl = strcspn(value, " \t\r\n");

		if (memchr(value, '%', wl)) {
			*dynamic = true;
			return NULL;
		}
		if (memchr(value, '=', wl)) {
			snprintf(msg, size, "setenv: variable name \"%.*s\" holds '=' (libwrap: memory allocation failure)",
				 (int)wl, value);
			return msg;
		}
		return NULL;
	}
	default:
		return NULL;
	}
}

/* get_field - libwrap's get_field(): next ':'-separated field of *cur, "\:" becomes ':' */
static bool get_field(struct ofield *cur, struct ofield *out)
{
	char *src = cur->s, *dst = cur->s;
	unsigned *dl = (unsigned *)cur->line, *dc = (unsigned *)cur->col;
	const unsigned *sl = cur->line, *sc = cur->col;

	if (!src || !*src)
		return false;
	*out = *cur;
	while (*src) {
		if (*src == ':') {
			src++;
			sl++;
			sc++;
			break;
		}
		if (src[0] == '\\' && src[1] == ':') {
			src++;
			sl++;
			sc++;
		}
		*dl++ = *sl++;
		*dc++ = *sc++;
		*dst++ = *src++;
	}
	*dst = '\0';
	cur->s = src;
	cur->line = sl;
	cur->col = sc;
	return true;
}

/* parse_options - process_options() without a request: record options and the first error */
static void parse_options(struct parser *ps, struct rule *rule, struct lline *ll, size_t from,
			  const char *file)
{
	char msg[POLICY_LINE_BUF + 128];
	struct ofield cur = { ll->text + from, ll->line + from, ll->col + from }, field, next;
	size_t max = 1;

	for (size_t i = from; i < ll->len; i++)
		max += ll->text[i] == ':';
	rule->options = arena_alloc(ps->arena, max * sizeof(*rule->options));
	if (!rule->options) {
		oom(ps);
		return;
	}
	bool have = get_field(&cur, &field);
	while (have) {
		bool have_next = get_field(&cur, &next);
		const char *err = NULL;

		/* chop_string(): strip isspace() at both ends */
		char *key = field.s;
		size_t ko = 0;
		while (is_space(key[ko]))
			ko++;
		/* an all-blank field: point at its start, not past its end */
		size_t at = key[ko] ? ko : 0;
		key += ko;
		size_t kl = strlen(key);
		while (kl && is_space(key[kl - 1]))
			key[--kl] = '\0';
		unsigned line = field.line[at];
		unsigned col = field.col[at];

		/* name [=] value: the separator is one of "= \t\r\n"; after a
		 * blank separator one '=' may follow (Debian) */
		char *value = key + strcspn(key, "= \t\r\n");
		if (*value) {
			bool was_eq = *value == '=';

			*value++ = '\0';
			value += strspn(value, " \t\r\n");
			if (!was_eq && *value == '=') {
				*value++ = '\0';
				value += strspn(value, " \t\r\n");
			}
		}
		if (!*value)
			value = NULL;

		const struct option_def *def = NULL;
		if (!*key) {
			err = "missing option name";
		} else {
			for (size_t i = 0; i < sizeof(option_defs) / sizeof(*option_defs); i++)
				if (strcasecmp(option_defs[i].name, key) == 0) {
					def = &option_defs[i];
					break;
				}
			if (!def) {
				snprintf(msg, sizeof(msg), "bad option name: \"%s\"", key);
				err = msg;
			} else if (!value && (def->flags & NEED_ARG)) {
				snprintf(msg, sizeof(msg), "option \"%s\" requires value", key);
				err = msg;
			} else if (value && !(def->flags & (NEED_ARG | OPT_ARG))) {
				snprintf(msg, sizeof(msg), "option \"%s\" requires no value", key);
				err = msg;
			} else if (have_next && (def->flags & USE_LAST)) {
				snprintf(msg, sizeof(msg), "option \"%s\" must be at end", key);
				err = msg;
			}
		}
		struct rule_option *o = &rule->options[rule->n_options];
		if (!err) {
			bool dynamic = false;

			o->kind = def->kind;
			o->pos = (struct srcpos){ file, line, col };
			o->value = value ? arena_strndup(ps->arena, value, strlen(value)) : NULL;
			if (value && !o->value) {
				oom(ps);
				return;
			}
			err = check_option_value(def->kind, value, &o->number, msg, sizeof(msg), &dynamic);
			if (dynamic)
				rule->options_dynamic = true;
			if (!err)
				rule->n_options++;
		}
		if (err) {
			const char *hint = NULL;

			if (!*key && !have_next && !rule->n_options)
				hint = "remove the trailing ':' (an empty option field makes libwrap deny)";
			else if (def && (def->kind == ROPT_ALLOW || def->kind == ROPT_DENY || def->kind == ROPT_TWIST) && have_next)
				hint = "move it to the end of the line";
			rule->options_error = true;
			rule->options_error_msg = arena_strndup(ps->arena, err, strlen(err));
			add_diag(ps, DIAG_ERROR, file, line, col, hint,
				 "%s: libwrap denies every request this rule matches", err);
			return;
		}
		field = next;
		have = have_next;
	}
}

/* ---- tables ---- */

/* add_rule - the next zeroed rule of the table's array (sized by parse_table) */
static struct rule *add_rule(struct parser *ps, struct table *t, size_t *cap)
{
	if (t->n_rules == *cap)
		return oom(ps);	/* cannot happen: a rule takes at least one line */
	return &t->rules[t->n_rules++];
}

/* parse_table - table_match()'s reading loop over a whole table */
static void parse_table(struct parser *ps, struct table *t, const char *buf, size_t size)
{
	struct reader r = { buf, size, 0, 1, 1 };
	struct lline *ll = malloc(sizeof(*ll));
	size_t cap = 1;
	const char *file = t->path;

	/* one array for all rules, in the arena: at most one rule per line */
	for (const char *p = buf; (p = memchr(p, '\n', size - (size_t)(p - buf))); p++)
		cap++;
	t->rules = arena_alloc(ps->arena, cap * sizeof(*t->rules));
	if (!ll || !t->rules) {
		free(ll);
		oom(ps);
		return;
	}
	while (!ps->err && read_logical(&r, ll)) {
		const char *s = ll->text;
		size_t n = ll->len;
		unsigned line0 = ll->line[0], col0 = ll->col[0];

		if (n == 0 || s[n - 1] != '\n') {
			/* libwrap: "missing newline or line too long", then it
			 * ignores all the subsequent rules (the table is an error) */
			const char *why, *hint;

			if (n != POLICY_LINE_BUF - 1) {
				bool bs = size >= 2 && buf[size - 1] == '\n' && buf[size - 2] == '\\';

				why = bs ? "backslash-newline continues past the end of the file"
					 : "missing newline at the end of the file";
				hint = bs ? "remove the final backslash" : "end the last line with a newline";
			} else {
				why = "logical line longer than 2046 characters";
				hint = "split the rule into several rules";
			}
			t->cut_off = true;
			t->cut_pos = (struct srcpos){ file, line0, col0 };
			add_diag(ps, DIAG_ERROR, file, line0, col0, hint,
				 "%s: libwrap ignores this and all later rules%s", why,
				 t->is_deny ? " and denies every request that reaches them"
					    : " (no match in this table)");
			break;
		}
		if (s[0] == '#')
			continue;
		if (s[strspn(s, " \t\r\n")] == '\0')
			continue;
		long c1 = split_at(s, 0, n, ':');
		if (c1 < 0) {
			add_diag(ps, DIAG_WARNING, file, line0, col0, "write DAEMONS : CLIENTS [: OPTIONS]",
				 "missing \":\" separator: line skipped");
			continue;
		}
		long c2 = split_at(s, (size_t)c1 + 1, n, ':');
		struct rule *rule = add_rule(ps, t, &cap);
		if (!rule)
			break;
		rule->pos = (struct srcpos){ file, line0, col0 };
		rule->text = arena_strndup(ps->arena, s, n - 1);
		if (!rule->text) {
			oom(ps);
			break;
		}
		parse_list(ps, ll, 0, (size_t)c1, file, CTX_DAEMON, &rule->daemons);
		parse_list(ps, ll, (size_t)c1 + 1, c2 >= 0 ? (size_t)c2 : n, file, CTX_CLIENT, &rule->clients);
		if (!rule->daemons.count)
			add_diag(ps, DIAG_WARNING, file, line0, col0, NULL, "empty daemon list: rule never matches");
		else if (!rule->clients.count)
			add_diag(ps, DIAG_WARNING, file, line0, col0, NULL, "empty client list: rule never matches");
		if (c2 >= 0) {
			rule->has_options = true;
			parse_options(ps, rule, ll, (size_t)c2 + 1, file);
		}
	}
	free(ll);
}

/* read_whole - read a table file; 0, or -errno with t->state set for libwrap's view */
static int read_whole(const char *path, char **out, size_t *len, struct table *t)
{
	mode_t type;
	int fd = readfile_open(path, &type);
	char *buf;

	*out = NULL;
	*len = 0;
	t->open_errno = 0;
	t->file_type = (uint32_t)type;
	if (fd < 0) {
		t->open_errno = -fd;
		if (fd == -ENOMEM || fd == -EMFILE || fd == -ENFILE)
			return fd;
		/* a directory: libwrap's fopen() works and fgets() finds nothing */
		t->state = fd == -ENOENT || fd == -EISDIR ? TABLE_MISSING : TABLE_UNREADABLE;
		return 0;
	}
	/* libwrap's fgets() would see EOF at a read error: what was read so far counts */
	int read_err;
	int err = readfile_fd(fd, FILE_SIZE_MAX, &buf, len, &read_err);
	close(fd);
	if (err)
		return -ENOMEM;	/* out of memory, or larger than any table */
	if (read_err)
		t->open_errno = read_err;
	*out = buf;
	t->state = TABLE_OK;
	return 0;
}

/* setup_table - name and kind of a table */
static int setup_table(struct parser *ps, struct table *t, const char *name, bool is_deny)
{
	t->is_deny = is_deny;
	t->path = arena_strndup(ps->arena, name, strlen(name));
	return t->path ? 0 : -ENOMEM;
}

/* fast_pat_of - the compact form of one list token */
static struct fast_pat fast_pat_of(const struct pattern *p, enum list_ctx ctx)
{
	struct fast_pat f = { .op = FP_GENERIC, .p = p, .low = p->low, .len = (uint32_t)p->len, .hash = p->hash };

	if (p->kind == PAT_EXCEPT)
		f.op = FP_EXCEPT;
	else if (p->kind == PAT_STRING && ctx == CTX_DAEMON && !p->server)
		f.op = FP_STR;
	else if (p->kind == PAT_STRING && ctx == CTX_CLIENT && !p->user)
		f.op = FP_HOSTSTR;
	f.skind = (uint8_t)p->skind;
	f.also_name = p->also_name;
	return f;
}

/* build_fast - every rule's compact lists, contiguous in the arena */
static void build_fast(struct parser *ps, struct table *t)
{
	for (size_t i = 0; i < t->n_rules && !ps->err; i++) {
		struct rule *r = &t->rules[i];
		size_t n = r->daemons.count + r->clients.count;
		struct rule_fast *rf = arena_alloc(ps->arena, sizeof(*rf) + n * sizeof(rf->items[0]));

		if (!rf) {
			oom(ps);
			return;
		}
		rf->n_daemons = (uint32_t)r->daemons.count;
		rf->n_clients = (uint32_t)r->clients.count;
		for (size_t k = 0; k < r->daemons.count; k++)
			rf->items[k] = fast_pat_of(&r->daemons.items[k], CTX_DAEMON);
		for (size_t k = 0; k < r->clients.count; k++)
			rf->items[r->daemons.count + k] = fast_pat_of(&r->clients.items[k], CTX_CLIENT);
		r->fast = rf;
	}
}

/* finish - number the rules and hand the policy out, or free it on a resource error */
static int finish(struct parser *ps, struct policy **out)
{
	uint32_t id = 1;

	build_fast(ps, &ps->policy->allow);
	build_fast(ps, &ps->policy->deny);
	if (ps->err) {
		int err = ps->err;

		policy_free(ps->policy);
		*out = NULL;
		return err;
	}
	for (size_t i = 0; i < ps->policy->allow.n_rules; i++)
		ps->policy->allow.rules[i].id = id++;
	for (size_t i = 0; i < ps->policy->deny.n_rules; i++)
		ps->policy->deny.rules[i].id = id++;
	ps->policy->n_rules = ps->policy->allow.n_rules + ps->policy->deny.n_rules;
	*out = ps->policy;
	return 0;
}

/* parser_init - an empty policy with its arena */
static int parser_init(struct parser *ps)
{
	memset(ps, 0, sizeof(*ps));
	ps->policy = calloc(1, sizeof(*ps->policy));
	ps->arena = calloc(1, sizeof(*ps->arena));
	if (!ps->policy || !ps->arena) {
		free(ps->policy);
		free(ps->arena);
		return -ENOMEM;
	}
	ps->policy->priv = ps->arena;
	return 0;
}

/* policy_parse_buffers - parse from memory (tests, fuzzing); names are for diagnostics */
int policy_parse_buffers(struct policy **out, const char *allow_name, const char *allow_text,
			 size_t allow_len, const char *deny_name, const char *deny_text,
			 size_t deny_len)
{
	struct parser ps;
	int err = parser_init(&ps);

	*out = NULL;
	if (err)
		return err;
	struct table *tabs[2] = { &ps.policy->allow, &ps.policy->deny };
	const char *names[2] = { allow_name ? allow_name : "hosts.allow", deny_name ? deny_name : "hosts.deny" };
	const char *texts[2] = { allow_text, deny_text };
	size_t lens[2] = { allow_len, deny_len };
	for (int i = 0; i < 2 && !ps.err; i++) {
		if (setup_table(&ps, tabs[i], names[i], i == 1)) {
			ps.err = -ENOMEM;
			break;
		}
		if (!texts[i]) {
			tabs[i]->state = TABLE_MISSING;
			continue;
		}
		parse_table(&ps, tabs[i], texts[i], lens[i]);
	}
	return finish(&ps, out);
}

/* policy_load - parse hosts.allow and hosts.deny (either may be NULL = missing) */
int policy_load(struct policy **out, const char *allow_path, const char *deny_path)
{
	struct parser ps;
	int err = parser_init(&ps);

	*out = NULL;
	if (err)
		return err;
	struct table *tabs[2] = { &ps.policy->allow, &ps.policy->deny };
	const char *paths[2] = { allow_path, deny_path };
	for (int i = 0; i < 2 && !ps.err; i++) {
		char *buf = NULL;
		size_t len = 0;

		if (setup_table(&ps, tabs[i], paths[i] ? paths[i] : (i ? "hosts.deny" : "hosts.allow"), i == 1)) {
			ps.err = -ENOMEM;
			break;
		}
		if (!paths[i]) {
			tabs[i]->state = TABLE_MISSING;
			continue;
		}
		err = read_whole(paths[i], &buf, &len, tabs[i]);
		if (err) {
			ps.err = err;
			break;
		}
		if (tabs[i]->state == TABLE_UNREADABLE && tabs[i]->open_errno == EINVAL && tabs[i]->file_type)
			add_diag(&ps, DIAG_ERROR, tabs[i]->path, 0, 0,
				 "make it a regular file (libwrap would block on a FIFO)",
				 "not a regular file (%s): bpfwrap does not read it and treats it as unreadable, "
				 "libwrap's error%s", readfile_type_name(tabs[i]->file_type),
				 i ? ": every request that reaches it is denied" : " (no match in this table)");
		else if (tabs[i]->state == TABLE_UNREADABLE)
			add_diag(&ps, DIAG_ERROR, tabs[i]->path, 0, 0, NULL,
				 "cannot open %s: %s: libwrap treats this as an error%s", paths[i],
				 strerror(tabs[i]->open_errno),
				 i ? " and denies every request that reaches it" : " (no match in this table)");
		else if (tabs[i]->state == TABLE_MISSING && tabs[i]->open_errno == EISDIR)
			add_diag(&ps, DIAG_WARNING, tabs[i]->path, 0, 0,
				 "put the rules in a regular file",
				 "is a directory: libwrap reads it as an empty table (no rule in it matches)");
		else if (tabs[i]->state == TABLE_OK)
			parse_table(&ps, tabs[i], buf, len);
		free(buf);
	}
	return finish(&ps, out);
}

/* policy_free - release a policy and everything it owns */
void policy_free(struct policy *policy)
{
	if (!policy)
		return;
	free(policy->diags.items);	/* the rules live in the arena */
	arena_free(policy->priv);
	free(policy->priv);
	free(policy);
}
