/*
 * compile.c - compile a parsed policy into per-daemon decision tables over
 * client addresses for the kernel's LPM tries (see compile.h for the contract).
 *
 * Model. libwrap decides a request by the first rule whose daemon list and
 * client list match. The kernel knows the daemon (its table id) and the client
 * address, not the client's host name, user or the server endpoint. We call
 * each possible value of those unknowns a "world"; the "unknown world" U is the
 * one where name and user are the string "unknown" and the server is unknown.
 * For a rule and a client address, a match value records, in all worlds
 * ("any") and in U, NO (matches in none), YES (matches in all) or MAYBE
 * (depends, or could not be computed). Lists combine with Kleene's
 * three-valued AND/OR/NOT, which is sound: YES and NO are never claimed
 * wrongly. Each address then keeps two first-match trackers, one over all
 * worlds and one over U: the first rule that could decide, whether a later
 * rule that could decide disagrees ("conflict"), and whether every world is
 * decided. No conflict over all worlds = the kernel decides (ALLOW/DENY);
 * otherwise ASK, with verdict_if_unknown from the U tracker (exact unless an
 * input was MAYBE in U; then DENY and BPFWRAP_F_APPROX).
 *
 * Algorithm. Each rule's client list becomes, per address family, a list of
 * disjoint prefixes ("pieces") with match values, built with a small binary
 * "region trie" that implements the set algebra of lists and EXCEPT (a lone
 * net/mask skips it). All pieces are sorted once in prefix order (radix sort
 * for IPv4, stable, so rule order is kept per prefix). For each daemon table
 * and family one linear sweep walks them depth-first with a stack of
 * enclosing prefixes; a prefix's state is the first-match fold, in rule
 * order, of its own pieces and its ancestors': the path's rule list is kept
 * with the fold state after each rule, a prefix rewrites only the part after
 * its first rule (binary search) and an undo log restores it on the way back.
 * An entry is emitted where the state differs from the enclosing prefix's,
 * so covered duplicates vanish; the region trie already merged adjacent
 * halves of one rule. A named daemon gets a sweep only if some daemon list
 * decides differently for it than for OTHER. Cost: a radix sort, then per
 * table about O(P log L + rewritten tails), P = pieces, L = rules reaching a
 * prefix before it is decided; all memory-sequential, which is what counts.
 *
 * What the kernel decides: net/mask, /len, [v6]/len, [v6], ALL, EXCEPT,
 * addresses, "a.b." prefixes, ".c.d.e" 3-octet suffixes, digit globs as far
 * as the enumeration budget goes (globs also match names, so they decide
 * only where the address matches), daemon names, options. ASK: names
 * (.domain, names, KNOWN, UNKNOWN, LOCAL, PARANOID, @netgroup), users,
 * ports, daemon@host, daemon globs for unnamed daemons, setenv with %,
 * non-contiguous masks with more than 12 free bits, 1-2 octet suffixes,
 * IPv6 text globs, and 255.255.255.255 (see build_rules).
 *
 * Errors: returns 0 or -errno (-EINVAL for bad arguments, -ENOMEM); never
 * prints. Nothing is left allocated on failure.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "compile.h"

/* compile_big_alloc - memory for a large table, on huge pages where possible */
void *compile_big_alloc(size_t size, bool zero)
{
	const size_t huge = (size_t)2 << 20;
	void *p;

	if (size < huge)
		return zero ? calloc(1, size ? size : 1) : malloc(size ? size : 1);
	if (size > SIZE_MAX - huge)
		return NULL;
	size = (size + huge - 1) / huge * huge;
	p = aligned_alloc(huge, size);
	if (!p)
		return NULL;
	madvise(p, size, MADV_HUGEPAGE);	/* a hint: failure only costs speed */
	if (zero)
		memset(p, 0, size);
	return p;
}

/* ---------------------------------------------------------------- values */

/* Three-valued match: the order makes AND = min, OR = max, NOT = 2 - x. */
enum tri { T_NO = 0, T_MAYBE = 1, T_YES = 2 };

/* A match value: the all-worlds tri in bits 0-1, the unknown-world tri in 2-3. */
typedef uint8_t mval;
#define MV(a, u)	((mval)((a) | ((u) << 2)))
#define MV_A(v)		((unsigned)(v) & 3u)
#define MV_U(v)		(((unsigned)(v) >> 2) & 3u)
#define MV_NO		MV(T_NO, T_NO)
#define MV_YES		MV(T_YES, T_YES)
#define MV_APPROX	MV(T_MAYBE, T_MAYBE)	/* could not be computed */

/* umin - smaller of two */
static unsigned umin(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

/* umax - larger of two */
static unsigned umax(unsigned a, unsigned b)
{
	return a > b ? a : b;
}

/* mv_and - Kleene AND, per world class */
static mval mv_and(mval x, mval y)
{
	return MV(umin(MV_A(x), MV_A(y)), umin(MV_U(x), MV_U(y)));
}

/* mv_or - Kleene OR, per world class */
static mval mv_or(mval x, mval y)
{
	return MV(umax(MV_A(x), MV_A(y)), umax(MV_U(x), MV_U(y)));
}

/* mv_not - Kleene NOT, per world class */
static mval mv_not(mval x)
{
	return MV(2 - MV_A(x), 2 - MV_U(x));
}

/* mv_name - the value of a match that depends only on the client name or user:
 * some worlds match; U matches when "unknown" does */
static mval mv_name(bool unknown_matches)
{
	return MV(T_MAYBE, unknown_matches ? T_YES : T_NO);
}

/* ------------------------------------------------------------ addresses */

/* An address as a bit string: host-order words, bit 0 is the MSB of w[0].
 * IPv4 uses w[0] only (width 32), IPv6 all four (width 128). */
struct akey {
	uint32_t w[4];
};

/* akey_bit - bit i of k */
static unsigned akey_bit(const struct akey *k, unsigned i)
{
	return (k->w[i >> 5] >> (31 - (i & 31))) & 1u;
}

/* akey_setbit - set bit i of k to b */
static void akey_setbit(struct akey *k, unsigned i, unsigned b)
{
	uint32_t m = 1u << (31 - (i & 31));

	if (b)
		k->w[i >> 5] |= m;
	else
		k->w[i >> 5] &= ~m;
}

/* akey_mask - clear every bit at position >= len */
static void akey_mask(struct akey *k, unsigned len)
{
	for (unsigned i = 0; i < 4; i++) {
		unsigned lo = i * 32;

		if (len <= lo)
			k->w[i] = 0;
		else if (len < lo + 32)
			k->w[i] &= ~(0xffffffffu >> (len - lo));
	}
}

/* akey_common - number of leading bits a and b share, at most max */
static unsigned akey_common(const struct akey *a, const struct akey *b, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < 4 && n < max; i++) {
		uint32_t x = a->w[i] ^ b->w[i];

		if (x) {
			n += (unsigned)__builtin_clz(x);
			break;
		}
		n += 32;
	}
	return umin(n, max);
}

/* akey_from_v6 - the bit string of an IPv6 address */
static void akey_from_v6(struct akey *k, const uint8_t a[16])
{
	for (unsigned i = 0; i < 4; i++)
		k->w[i] = (uint32_t)a[4 * i] << 24 | (uint32_t)a[4 * i + 1] << 16 |
			  (uint32_t)a[4 * i + 2] << 8 | a[4 * i + 3];
}

/* ----------------------------------------------------------- region trie */

/*
 * A full binary trie over address bits whose leaves carry match values: the
 * set algebra of client lists. Small (one per rule, reset between rules).
 * A node is a leaf when child[0] < 0.
 */
struct rnode {
	int32_t child[2];
	mval val;
};

struct rtrie {
	struct rnode *n;
	size_t count, cap;
};

/* rt_new - a new leaf with value v; -1 on ENOMEM */
static int32_t rt_new(struct rtrie *t, mval v)
{
	if (t->count == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct rnode *n;

		if (cap > INT32_MAX)
			return -1;
		n = realloc(t->n, cap * sizeof(*n));
		if (!n)
			return -1;
		t->n = n;
		t->cap = cap;
	}
	t->n[t->count] = (struct rnode){ { -1, -1 }, v };
	return (int32_t)t->count++;
}

/* rt_is_leaf - whether node i is a leaf */
static bool rt_is_leaf(const struct rtrie *t, int32_t i)
{
	return t->n[i].child[0] < 0;
}

/* rt_set - give every address under (k, len) value v, below node i at depth d;
 * returns the (possibly new) node index or -1 */
static int32_t rt_set(struct rtrie *t, int32_t i, const struct akey *k, unsigned len,
		      unsigned d, mval v)
{
	int32_t c, l, r;
	unsigned b;

	if (d == len) {
		t->n[i].child[0] = t->n[i].child[1] = -1;
		t->n[i].val = v;
		return i;
	}
	if (rt_is_leaf(t, i)) {
		if (t->n[i].val == v)
			return i;
		l = rt_new(t, t->n[i].val);
		r = l < 0 ? -1 : rt_new(t, t->n[i].val);
		if (r < 0)
			return -1;
		t->n[i].child[0] = l;
		t->n[i].child[1] = r;
	}
	b = akey_bit(k, d);
	c = rt_set(t, t->n[i].child[b], k, len, d + 1, v);
	if (c < 0)
		return -1;
	t->n[i].child[b] = c;
	l = t->n[i].child[0];
	r = t->n[i].child[1];
	if (rt_is_leaf(t, l) && rt_is_leaf(t, r) && t->n[l].val == t->n[r].val) {
		t->n[i].val = t->n[l].val;
		t->n[i].child[0] = t->n[i].child[1] = -1;
	}
	return i;
}

/* rt_prefix - a new trie: v under (k, len), NO elsewhere; -1 on ENOMEM */
static int32_t rt_prefix(struct rtrie *t, const struct akey *k, unsigned len, mval v)
{
	int32_t root = rt_new(t, MV_NO);

	return root < 0 ? -1 : rt_set(t, root, k, len, 0, v);
}

enum rt_op { RT_AND, RT_OR, RT_ANDNOT };

/* rt_apply_op - one operation on two values */
static mval rt_apply_op(enum rt_op op, mval a, mval b)
{
	switch (op) {
	case RT_AND:
		return mv_and(a, b);
	case RT_OR:
		return mv_or(a, b);
	default:
		return mv_and(a, mv_not(b));
	}
}

/* rt_combine - a new trie for (a op b); -1 on ENOMEM */
static int32_t rt_combine(struct rtrie *t, int32_t a, int32_t b, enum rt_op op)
{
	int32_t r[2], n;

	if (rt_is_leaf(t, a) && rt_is_leaf(t, b))
		return rt_new(t, rt_apply_op(op, t->n[a].val, t->n[b].val));
	/* Shortcuts that keep tries small when one side is constant. */
	if (rt_is_leaf(t, a)) {
		mval va = t->n[a].val;

		if ((op == RT_AND || op == RT_ANDNOT) && va == MV_NO)
			return a;
		if (op == RT_OR && va == MV_YES)
			return a;
		if (op == RT_OR && va == MV_NO)
			return b;
	}
	if (rt_is_leaf(t, b)) {
		mval vb = t->n[b].val;

		if ((op == RT_AND && vb == MV_YES) || (op != RT_AND && vb == MV_NO))
			return a;
	}
	for (unsigned i = 0; i < 2; i++) {
		int32_t ca = rt_is_leaf(t, a) ? a : t->n[a].child[i];
		int32_t cb = rt_is_leaf(t, b) ? b : t->n[b].child[i];

		r[i] = rt_combine(t, ca, cb, op);
		if (r[i] < 0)
			return -1;
	}
	if (rt_is_leaf(t, r[0]) && rt_is_leaf(t, r[1]) && t->n[r[0]].val == t->n[r[1]].val)
		return r[0];
	n = rt_new(t, MV_NO);
	if (n < 0)
		return -1;
	t->n[n].child[0] = r[0];
	t->n[n].child[1] = r[1];
	return n;
}

/* rt_leaf_val - a trie that is one leaf: its value; else -1 */
static int rt_leaf_val(const struct rtrie *t, int32_t i)
{
	return rt_is_leaf(t, i) ? t->n[i].val : -1;
}

/* ------------------------------------------------------ string matching */

/* glob_match - libwrap's (Debian) case-insensitive * and ? match */
static bool glob_match(const char *p, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s) {
		if (*p == '*') {
			star = p++;
			resume = s;
		} else if (*p && (*p == '?' || tolower((unsigned char)*p) == tolower((unsigned char)*s))) {
			p++;
			s++;
		} else if (star) {
			p = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == 0;
}

/* has_prefix_ci - s starts with prefix (any case) */
static bool has_prefix_ci(const char *s, const char *prefix, size_t n)
{
	return strncasecmp(s, prefix, n) == 0;
}

/*
 * string_match_text - libwrap's string_match() of pattern text t (of kind k;
 * v6 for STR_V6) against a concrete subject, e.g. a daemon name or the name
 * "unknown". Subjects are cut to POLICY_FIELD_MAX like request fields.
 */
static bool string_match_text(enum string_kind k, const char *t, const struct in6_addr *v6,
			      const char *subject)
{
	char cut[POLICY_FIELD_MAX + 1];
	const char *s = subject;
	struct in_addr a4;
	size_t ls = strnlen(subject, POLICY_FIELD_MAX + 1), lt = strlen(t);

	/* called a million times for big policies: copy only when cutting */
	if (ls > POLICY_FIELD_MAX) {
		memcpy(cut, subject, POLICY_FIELD_MAX);
		cut[POLICY_FIELD_MAX] = 0;
		s = cut;
		ls = POLICY_FIELD_MAX;
	}
	if (ls > 7 && has_prefix_ci(s, "::ffff:", 7) && inet_pton(AF_INET, s + 7, &a4) == 1) {
		s += 7;
		ls -= 7;
	}
	switch (k) {
	case STR_GLOB:
		return glob_match(t, s);
	case STR_SUFFIX:
		return ls > lt && strcasecmp(s + ls - lt, t) == 0;
	case STR_ALL:
		return true;
	case STR_KNOWN:
		return strcasecmp(s, "unknown") != 0;
	case STR_PREFIX:
		return has_prefix_ci(s, t, lt);
	case STR_V6: {
		struct in6_addr a6;
		char buf[POLICY_FIELD_MAX + 1];
		char *pct;

		snprintf(buf, sizeof(buf), "%s", s);
		pct = strchr(buf, '%');
		if (pct)
			*pct = 0;
		return v6 && inet_pton(AF_INET6, buf, &a6) == 1 && memcmp(&a6, v6, 16) == 0;
	}
	case STR_EXACT:
	default:
		return strcasecmp(s, t) == 0;
	}
}

/* pattern_string_match - string_match() of a string pattern against a subject */
static bool pattern_string_match(const struct pattern *p, const char *subject)
{
	if (p->kind == PAT_KNOWN)
		return strcasecmp(subject, "unknown") != 0;
	if (p->kind != PAT_STRING || (p->skind == STR_V6 && !p->valid))
		return false;
	return string_match_text(p->skind, p->low, &p->v6, subject);
}

/* -------------------------------------------- address-text enumeration */

/*
 * libwrap compares string patterns with the address text (inet_ntoa's
 * "a.b.c.d"). To turn such a pattern into prefixes we walk the octets with
 * pruning: after a fixed text prefix "a." or "a.b.", a product of the
 * pattern's glob automaton with an automaton for the remaining octet texts
 * tells whether every completion matches, none does, or it depends (then we
 * go one octet deeper; the last octet is tested directly). A budget bounds
 * the work; regions left over become MAYBE ("ask").
 */

#define GLOB_MAX 126		/* positions fit in 128 bits */
#define TEXT_BUDGET_PATTERN (1u << 17)	/* automaton steps per pattern */
#define TEXT_BUDGET_TOTAL (1u << 24)	/* automaton steps per compile */
#define NONCONTIG_MAX_BITS 12	/* net/mask expansion: at most 4096 prefixes */
#define FILE_DEPTH_MAX 8	/* /path inside /path */

struct gset {
	uint64_t b[2];
};

struct glob {
	char p[GLOB_MAX + 2];	/* lower-case glob */
	unsigned n;		/* its length */
};

/* gs_has - position i is in s */
static bool gs_has(const struct gset *s, unsigned i)
{
	return (s->b[i >> 6] >> (i & 63)) & 1u;
}

/* gs_add - add position i to s */
static void gs_add(struct gset *s, unsigned i)
{
	s->b[i >> 6] |= 1ull << (i & 63);
}

/* gs_empty - s has no position */
static bool gs_empty(const struct gset *s)
{
	return !s->b[0] && !s->b[1];
}

/* glob_closure - add the positions reachable by letting a `*` match nothing */
static void glob_closure(const struct glob *g, struct gset *s)
{
	for (unsigned i = 0; i < g->n; i++)
		if (gs_has(s, i) && g->p[i] == '*')
			gs_add(s, i + 1);
}

/* glob_step - the glob automaton's positions after reading c */
static struct gset glob_step(const struct glob *g, const struct gset *s, char c)
{
	struct gset r = { { 0, 0 } };

	for (unsigned i = 0; i < g->n; i++) {
		if (!gs_has(s, i))
			continue;
		if (g->p[i] == '*')
			gs_add(&r, i);
		else if (g->p[i] == '?' || g->p[i] == c)
			gs_add(&r, i + 1);
	}
	glob_closure(g, &r);
	return r;
}

/* glob_steps - glob_step over a string */
static struct gset glob_steps(const struct glob *g, struct gset s, const char *str)
{
	for (; *str && !gs_empty(&s); str++)
		s = glob_step(g, &s, *str);
	return s;
}

/* States of an automaton for one decimal octet 0..255 without leading zeros. */
enum oct_state {
	OCT_START,	/* nothing read */
	OCT_END,	/* complete, no digit may follow ("0", "3x", "1xx", "2[6-9]", ...) */
	OCT_ONE,	/* complete, one more digit may follow */
	OCT_TWO,	/* "1": complete, two more digits may follow */
	OCT_2,		/* "2" */
	OCT_25,		/* "25" */
	OCT_NSTATES,
};

/* oct_next - the octet automaton's state after digit d, or -1 */
static int oct_next(int q, int d)
{
	switch (q) {
	case OCT_START:
		return d == 0 ? OCT_END : d == 1 ? OCT_TWO : d == 2 ? OCT_2 : OCT_ONE;
	case OCT_ONE:
		return OCT_END;
	case OCT_TWO:
		return OCT_ONE;
	case OCT_2:
		return d <= 4 ? OCT_ONE : d == 5 ? OCT_25 : OCT_END;
	case OCT_25:
		return d <= 5 ? OCT_END : -1;
	default:
		return -1;
	}
}

struct text_ctx {
	const struct glob *g;
	struct rtrie *rt;
	int32_t root;
	unsigned budget;	/* steps left for this pattern */
	unsigned *total;	/* steps left for the whole compile */
	bool exhausted;
	/* memo of visited (octets left, octet state, positions) */
	struct memo_ent {
		struct gset s;
		uint32_t gen;	/* valid when equal to the context's gen */
		uint8_t r, q;
	} memo[1024];
	uint32_t gen;
	bool acc, rej, memo_full;
};

/* text_spend - charge one automaton step; false when the budget is gone */
static bool text_spend(struct text_ctx *c)
{
	if (!c->budget || !*c->total) {
		c->exhausted = true;
		return false;
	}
	c->budget--;
	(*c->total)--;
	return true;
}

/* memo_visit - mark a product state; false if it was already visited */
static bool memo_visit(struct text_ctx *c, unsigned r, unsigned q, const struct gset *s)
{
	uint64_t h = (s->b[0] * 0x9e3779b97f4a7c15ull) ^ (s->b[1] * 0xc2b2ae3d27d4eb4full) ^
		     (r * 131u + q) * 0x165667b19e3779f9ull;
	size_t n = sizeof(c->memo) / sizeof(c->memo[0]);

	for (size_t i = 0, j = (size_t)(h >> 40) % n; i < n; i++, j = (j + 1) % n) {
		struct memo_ent *e = &c->memo[j];

		if (e->gen != c->gen) {
			*e = (struct memo_ent){ *s, c->gen, (uint8_t)r, (uint8_t)q };
			return true;
		}
		if (e->r == r && e->q == q && e->s.b[0] == s->b[0] && e->s.b[1] == s->b[1])
			return false;
	}
	c->memo_full = true;
	return false;
}

/* text_explore - from (r octets after the current one, octet state q, glob
 * positions s), record whether some completion matches (acc) or not (rej) */
static void text_explore(struct text_ctx *c, unsigned r, int q, const struct gset *s)
{
	if (c->acc && c->rej)
		return;
	if (gs_empty(s)) {
		c->rej = true;
		return;
	}
	if (!memo_visit(c, r, (unsigned)q, s) || !text_spend(c))
		return;
	if (q != OCT_START) {
		if (r == 0) {
			if (gs_has(s, c->g->n))
				c->acc = true;
			else
				c->rej = true;
		} else {
			struct gset t = glob_step(c->g, s, '.');

			text_explore(c, r - 1, OCT_START, &t);
		}
	}
	for (int d = 0; d <= 9; d++) {
		int q2 = oct_next(q, d);
		struct gset t;

		if (q2 < 0)
			continue;
		t = glob_step(c->g, s, (char)('0' + d));
		text_explore(c, r, q2, &t);
	}
}

enum text_class { TEXT_NONE, TEXT_ALL, TEXT_MIXED };

/* text_classify - do all, none or some completions of r+1 octets match from s? */
static enum text_class text_classify(struct text_ctx *c, unsigned r, const struct gset *s)
{
	if (gs_empty(s))
		return TEXT_NONE;
	c->gen++;	/* forget the previous classification's states */
	c->acc = c->rej = c->memo_full = false;
	text_explore(c, r, OCT_START, s);
	if (c->memo_full || c->exhausted)
		return TEXT_MIXED;
	return c->acc ? (c->rej ? TEXT_MIXED : TEXT_ALL) : TEXT_NONE;
}

/* text_walk - classify the octet after `fixed` (k octets, text t) for each
 * value; set matching regions YES, undecidable ones MAYBE; 0 or -ENOMEM */
static int text_walk(struct text_ctx *c, uint32_t fixed, unsigned k, const char *t,
		     const struct gset *s)
{
	for (unsigned v = 0; v < 256; v++) {
		char text[20];
		uint32_t addr = fixed | v << (24 - 8 * k);
		struct akey key = { { addr, 0, 0, 0 } };
		enum text_class cls;
		struct gset s2;
		mval val = MV_NO;

		if (k == 3) {
			snprintf(text, sizeof(text), "%s%u", t, v);
			if (!text_spend(c))
				val = MV_APPROX;
			else if (glob_match(c->g->p, text))
				val = MV_YES;
		} else {
			char num[8];

			snprintf(num, sizeof(num), "%u.", v);
			snprintf(text, sizeof(text), "%s%s", t, num);
			s2 = glob_steps(c->g, *s, num);
			cls = text_classify(c, 2 - k, &s2);
			if (cls == TEXT_ALL) {
				val = MV_YES;
			} else if (cls == TEXT_MIXED) {
				if (c->exhausted) {
					val = MV_APPROX;
				} else {
					int err = text_walk(c, addr, k + 1, text, &s2);

					if (err)
						return err;
					continue;
				}
			}
		}
		if (val != MV_NO && rt_set(c->rt, c->root, &key, 8 * (k + 1), 0, val) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* glob_from_pattern - the string pattern as one glob (suffix .x = "?*.x",
 * prefix x. = "x.*"); false if it is too long to analyse */
static bool glob_from_pattern(enum string_kind k, const char *text, struct glob *g)
{
	size_t n = strlen(text);
	const char *pre = k == STR_SUFFIX ? "?*" : "";
	const char *post = k == STR_PREFIX ? "*" : "";
	int len = snprintf(g->p, sizeof(g->p), "%s%s%s", pre, text, post);

	if (len < 0 || (size_t)len >= sizeof(g->p) || n > GLOB_MAX)
		return false;
	for (char *q = g->p; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	g->n = (unsigned)len;
	return true;
}

/* glob_literals_within - every non-wildcard character of g is in `set` */
static bool glob_literals_within(const struct glob *g, const char *set)
{
	for (unsigned i = 0; i < g->n; i++)
		if (g->p[i] != '*' && g->p[i] != '?' && !strchr(set, g->p[i]))
			return false;
	return true;
}

/* v4_text_prefix - a prefix pattern of 1..3 canonical octets ("10.", "1.2.3."):
 * its prefix; false if not of that simple form */
static bool v4_text_prefix(const char *t, uint32_t *addr, unsigned *len)
{
	unsigned octets = 0;
	uint32_t a = 0;

	while (*t) {
		unsigned v = 0, digits = 0;

		while (isdigit((unsigned char)*t)) {
			v = v * 10 + (unsigned)(*t - '0');
			if (++digits > 3)
				return false;
			t++;
		}
		if (*t != '.' || !digits || v > 255 || (digits > 1 && *(t - digits) == '0'))
			return false;
		t++;
		if (++octets > 3)
			return false;
		a |= v << (24 - 8 * (octets - 1));
	}
	*addr = a;
	*len = 8 * octets;
	return octets > 0;
}

/*
 * v4_text_suffix - a suffix pattern against dotted quads. ".x.y" can only end
 * the text at an octet boundary, so it must be 1..3 whole canonical octets:
 * fixed last octets, free first ones. Sets the octet values and count;
 * false if the suffix can never match an address.
 */
static bool v4_text_suffix(const char *t, uint32_t *tail, unsigned *octets)
{
	uint32_t a;
	unsigned len;
	char buf[32];

	if (t[0] != '.' || strlen(t) > 16)
		return false;
	snprintf(buf, sizeof(buf), "%s.", t + 1);	/* reuse the prefix reader: "x.y." */
	if (!v4_text_prefix(buf, &a, &len))
		return false;
	*octets = len / 8;
	*tail = a >> (32 - len);
	return true;
}

/* suffix_map_v4 - the addresses ending in the given octets (at most 256
 * prefixes; a shorter suffix asks everywhere) */
static int32_t suffix_map_v4(struct rtrie *rt, uint32_t tail, unsigned octets)
{
	struct akey key = { { 0, 0, 0, 0 } };
	int32_t root;

	if (octets < 3)
		return rt_new(rt, MV_APPROX);	/* 65536+ scattered /32s: too many */
	root = rt_new(rt, MV_NO);
	for (uint32_t a = 0; root >= 0 && a < 256; a++) {
		key.w[0] = a << 24 | tail;
		root = rt_set(rt, root, &key, 32, 0, MV_YES);
	}
	return root;
}

/*
 * text_map_v4 - the IPv4 addresses whose inet_ntoa text a string pattern
 * matches, as a region trie (YES where it matches, MAYBE where not computed)
 */
static int32_t text_map_v4(struct rtrie *rt, enum string_kind k, const char *text,
			   unsigned *total)
{
	struct text_ctx *c;
	struct glob g;
	struct in_addr a4;
	char canon[INET_ADDRSTRLEN];
	struct akey key = { { 0, 0, 0, 0 } };
	uint32_t addr;
	unsigned len;
	int32_t root;
	struct gset s0 = { { 1, 0 } };
	int err;

	switch (k) {
	case STR_ALL:
		return rt_new(rt, MV_YES);
	case STR_V6:
	case STR_KNOWN:
		return rt_new(rt, MV_NO);	/* a dotted quad is no [v6]; KNOWN is handled by the caller */
	case STR_EXACT:
		if (inet_pton(AF_INET, text, &a4) == 1 &&
		    inet_ntop(AF_INET, &a4, canon, sizeof(canon)) &&
		    strcasecmp(canon, text) == 0) {
			key.w[0] = ntohl(a4.s_addr);
			return rt_prefix(rt, &key, 32, MV_YES);
		}
		return rt_new(rt, MV_NO);
	case STR_PREFIX:
		if (v4_text_prefix(text, &addr, &len)) {
			key.w[0] = addr;
			return rt_prefix(rt, &key, len, MV_YES);
		}
		break;
	case STR_SUFFIX:
		if (strspn(text, "0123456789.") != strlen(text))
			return rt_new(rt, MV_NO);
		if (!v4_text_suffix(text, &addr, &len))
			return rt_new(rt, MV_NO);
		return suffix_map_v4(rt, addr, len);
	default:
		break;
	}
	if (!glob_from_pattern(k, text, &g))
		return rt_new(rt, MV_APPROX);
	if (!glob_literals_within(&g, "0123456789."))
		return rt_new(rt, MV_NO);	/* a letter never occurs in a dotted quad */
	root = rt_new(rt, MV_NO);
	c = calloc(1, sizeof(*c));
	if (root < 0 || !c) {
		free(c);
		return -1;
	}
	*c = (struct text_ctx){ .g = &g, .rt = rt, .root = root,
				.budget = TEXT_BUDGET_PATTERN, .total = total };
	glob_closure(&g, &s0);
	switch (text_classify(c, 3, &s0)) {
	case TEXT_ALL:
		rt->n[root].val = MV_YES;
		err = 0;
		break;
	case TEXT_NONE:
		err = 0;
		break;
	default:
		err = c->exhausted ? (rt->n[root].val = MV_APPROX, 0) : text_walk(c, 0, 0, "", &s0);
		break;
	}
	free(c);
	return err ? -1 : root;
}

/* v6_compat_region - value v where inet_ntop writes an IPv6 address as
 * "::a.b.c.d" (::/96 except ::/112), NO elsewhere; v4-mapped addresses are
 * decided in the IPv4 table */
static int32_t v6_compat_region(struct rtrie *rt, mval v)
{
	struct akey key = { { 0, 0, 0, 0 } };
	int32_t root = rt_prefix(rt, &key, 96, v);

	/* ::/112 prints without a dotted quad ("::", "::1", "::102"). */
	if (root >= 0)
		root = rt_set(rt, root, &key, 112, 0, MV_NO);
	return root;
}

/*
 * text_map_v6 - the IPv6 addresses whose inet_ntop text a string pattern
 * matches. Exact texts are decided; texts that could match only the
 * "::a.b.c.d" spelling ask there; other globs ask everywhere.
 */
static int32_t text_map_v6(struct rtrie *rt, enum string_kind k, const char *text,
			   const struct in6_addr *v6)
{
	struct glob g;
	struct in6_addr a6;
	char canon[INET6_ADDRSTRLEN];
	struct akey key;
	unsigned q = 0, stars = 0;

	switch (k) {
	case STR_ALL:
		return rt_new(rt, MV_YES);
	case STR_KNOWN:
		return rt_new(rt, MV_NO);
	case STR_V6:
		akey_from_v6(&key, v6->s6_addr);
		return rt_prefix(rt, &key, 128, MV_YES);
	case STR_EXACT:
		if (inet_pton(AF_INET6, text, &a6) == 1 &&
		    inet_ntop(AF_INET6, &a6, canon, sizeof(canon)) &&
		    strcasecmp(canon, text) == 0) {
			akey_from_v6(&key, a6.s6_addr);
			return rt_prefix(rt, &key, 128, MV_YES);
		}
		return rt_new(rt, MV_NO);
	default:
		break;
	}
	if (!glob_from_pattern(k, text, &g))
		return rt_new(rt, MV_APPROX);
	if (!glob_literals_within(&g, "0123456789abcdef:."))
		return rt_new(rt, MV_NO);
	if (strchr(g.p, '.'))
		return v6_compat_region(rt, MV_APPROX);	/* only "::a.b.c.d" has a dot */
	for (unsigned i = 0; i < g.n; i++) {
		if (g.p[i] == '?')
			q++;
		else if (g.p[i] == '*')
			stars++;
		else
			return rt_new(rt, MV_APPROX);
	}
	/* Only wildcards: every text of at least q characters (all are >= 2). */
	return rt_new(rt, stars && q <= 2 ? MV_YES : MV_APPROX);
}

/* ------------------------------------------------------- client patterns */

struct cctx {
	const struct policy *policy;
	struct rtrie rt;
	unsigned text_total;	/* text enumeration budget left */
};

static int32_t host_list_map(struct cctx *c, const struct pattern_list *l, size_t from,
			     int family, unsigned depth, bool is_file);

/* netmask_map - a net/mask or [net]/len pattern over one family */
static int32_t netmask_map(struct rtrie *rt, const struct pattern *p, int family)
{
	struct akey key = { { 0, 0, 0, 0 } };
	uint32_t net, mask, free_hi[32];
	unsigned t, k = 0, len;
	int32_t root;

	if (!p->valid || p->family != family)
		return rt_new(rt, MV_NO);
	if (family == AF_INET6) {
		struct akey m;

		akey_from_v6(&key, p->net.s6_addr);
		akey_from_v6(&m, p->mask.s6_addr);
		for (len = 0; len < 128 && akey_bit(&m, len); len++)
			;
		akey_mask(&key, len);	/* libwrap masks both sides for IPv6 */
		return rt_prefix(rt, &key, len, MV_YES);
	}
	memcpy(&net, p->net.s6_addr, 4);
	memcpy(&mask, p->mask.s6_addr, 4);
	net = ntohl(net);
	mask = ntohl(mask);
	if (net & ~mask)
		return rt_new(rt, MV_NO);	/* libwrap does not mask the net: never matches */
	t = mask ? (unsigned)__builtin_ctz(mask) : 32;
	len = 32 - t;
	for (unsigned b = t; b < 32; b++)
		if (!(mask & (1u << b)))
			free_hi[k++] = 1u << b;
	if (k > NONCONTIG_MAX_BITS) {
		unsigned ones = (unsigned)__builtin_clz(~mask | 1u);

		key.w[0] = net;
		akey_mask(&key, ones);
		return rt_prefix(rt, &key, ones, MV_APPROX);
	}
	root = rt_new(rt, MV_NO);
	for (uint32_t combo = 0; root >= 0 && combo < (1u << k); combo++) {
		key.w[0] = net;
		for (unsigned i = 0; i < k; i++)
			if (combo & (1u << i))
				key.w[0] |= free_hi[i];
		root = rt_set(rt, root, &key, len, 0, MV_YES);
	}
	return root;
}

/*
 * could_match_a_name - can host pattern p match some client host name? The
 * names a request can carry are "unknown", "paranoid" and verified DNS names
 * made of letters, digits, '-', '_' and dots (resolve_name_ok(); libwrap
 * also turns a numeric reverse name into "paranoid"). So a [v6] pattern
 * (binary IPv6 comparison) or one with any other character ("::1", "a:b")
 * matches no name, and "ALL : [::1]" needs no name for IPv4 clients.
 */
static bool could_match_a_name(const struct pattern *p)
{
	if (p->skind == STR_V6)
		return false;
	for (const char *c = p->low; *c; c++) {
		bool glob = p->skind == STR_GLOB && (*c == '*' || *c == '?');

		if (!glob && !isalnum((unsigned char)*c) && !strchr("-_.", *c))
			return false;
	}
	return true;
}

/* host_item_map - one client pattern over one family (0 = IPv4, else IPv6) */
static int32_t host_item_map(struct cctx *c, const struct pattern *p, int family,
			     unsigned depth, bool in_file)
{
	struct rtrie *rt = &c->rt;
	int32_t a, b;

	if (p->user && p->host) {	/* user@host: user known only via ident */
		bool ua = p->user->kind == PAT_STRING && p->user->skind == STR_ALL;
		mval uv = ua ? MV_YES : mv_name(pattern_string_match(p->user, "unknown"));

		a = host_item_map(c, p->host, family, depth, in_file);
		b = a < 0 ? -1 : rt_new(rt, uv);
		return b < 0 ? -1 : rt_combine(rt, a, b, RT_AND);
	}
	switch (p->kind) {
	case PAT_EXCEPT:
		/* Only inside a /path file, where it is an ordinary word. */
		return rt_new(rt, mv_name(strcasecmp("unknown", p->low) == 0));
	case PAT_NETGROUP:
		/* innetgr() on the client name: depends on the name and on NIS. */
		return rt_new(rt, MV_APPROX);
	case PAT_FILE:
		if (!p->file_patterns)
			return rt_new(rt, MV_NO);
		if (depth >= FILE_DEPTH_MAX)
			return rt_new(rt, MV_APPROX);
		return host_list_map(c, p->file_patterns, 0, family, depth + 1, true);
	case PAT_KNOWN:
		return rt_new(rt, mv_name(false));	/* name known: never in U */
	case PAT_LOCAL:
		return rt_new(rt, mv_name(false));
	case PAT_NETMASK:
		return netmask_map(rt, p, family);
	case PAT_PORT:
		return rt_new(rt, MV_NO);
	case PAT_STRING:
		break;
	}
	if (p->skind == STR_KNOWN)	/* host context: address and name known */
		return rt_new(rt, mv_name(false));
	if (p->skind == STR_ALL)
		return rt_new(rt, MV_YES);
	if (p->skind == STR_V6 && !p->valid)
		a = rt_new(rt, MV_NO);
	else if (family == AF_INET)
		a = text_map_v4(rt, p->skind, p->low, &c->text_total);
	else
		a = text_map_v6(rt, p->skind, p->low, &p->v6);
	if (a < 0 || !p->also_name || !could_match_a_name(p))
		return a;
	b = rt_new(rt, mv_name(pattern_string_match(p, "unknown")));
	return b < 0 ? -1 : rt_combine(rt, a, b, RT_OR);
}

/*
 * host_list_map - a client list from item `from` with libwrap's EXCEPT:
 * (items before the first EXCEPT) AND NOT (the rest as a list). In a /path
 * file every word is just OR'ed (EXCEPT is a word there).
 */
static int32_t host_list_map(struct cctx *c, const struct pattern_list *l, size_t from,
			     int family, unsigned depth, bool is_file)
{
	int32_t acc = rt_new(&c->rt, MV_NO), rest, m;
	size_t i;

	for (i = from; acc >= 0 && i < l->count; i++) {
		if (!is_file && l->items[i].kind == PAT_EXCEPT)
			break;
		if (rt_leaf_val(&c->rt, acc) == MV_YES)
			continue;	/* already matches everywhere */
		m = host_item_map(c, &l->items[i], family, depth, is_file);
		acc = m < 0 ? -1 : rt_combine(&c->rt, acc, m, RT_OR);
	}
	if (acc < 0 || i == l->count)
		return acc;
	if (i == from)
		return rt_new(&c->rt, MV_NO);	/* a list starting with EXCEPT never matches */
	if (rt_leaf_val(&c->rt, acc) == MV_NO)
		return acc;
	rest = host_list_map(c, l, i + 1, family, depth, false);
	return rest < 0 ? -1 : rt_combine(&c->rt, acc, rest, RT_ANDNOT);
}

/* ------------------------------------------------------ daemon patterns */

/* server_host_unknown - a daemon@host host part against an unknown server
 * (address and name "unknown"): the U-world value */
static unsigned server_host_unknown(const struct pattern *h, unsigned depth)
{
	unsigned best = T_NO;

	switch (h->kind) {
	case PAT_STRING:
		return pattern_string_match(h, "unknown") ? T_YES : T_NO;
	case PAT_FILE:
		if (!h->file_patterns)
			return T_NO;
		if (depth >= FILE_DEPTH_MAX)
			return T_MAYBE;
		for (size_t i = 0; i < h->file_patterns->count; i++)
			best = umax(best, server_host_unknown(&h->file_patterns->items[i], depth + 1));
		return best;
	case PAT_NETGROUP:
		return T_MAYBE;
	default:
		return T_NO;	/* KNOWN, LOCAL, net/mask: never for an unknown host */
	}
}

/* daemon_item_val - one daemon-list item for daemon `name` (NULL: any daemon
 * the policy does not name exactly; those have tables of their own) */
static mval daemon_item_val(const struct pattern *p, const char *name)
{
	const char *t = p->low;	/* daemon@host: the daemon part */
	enum string_kind k = p->skind;
	mval v;

	if (p->kind == PAT_PORT)
		return MV(T_MAYBE, T_NO);	/* the server port: unknown to the tables */
	if (p->kind == PAT_KNOWN)
		return name && !strcasecmp(name, "unknown") ? MV_NO : MV_YES;
	if (p->kind != PAT_STRING)
		return MV_APPROX;
	if (name)
		v = pattern_string_match(p, name) ? MV_YES : MV_NO;
	else if (k == STR_ALL)
		v = MV_YES;
	else if (k == STR_EXACT && strlen(t) < BPFWRAP_DAEMON_NAME_MAX && t[0])
		v = MV_NO;	/* that name has its own table */
	else if (k == STR_KNOWN)
		v = MV_YES;	/* "unknown" then has its own table (collect_names) */
	else
		v = MV_APPROX;	/* depends on which unnamed daemon */
	if (p->server && v != MV_NO) {
		const struct pattern *h = p->server;
		bool all = h->kind == PAT_STRING && h->skind == STR_ALL;

		v = mv_and(v, all ? MV_YES : MV(T_MAYBE, server_host_unknown(h, 0)));
	}
	return v;
}

/* daemon_list_val - a daemon list with EXCEPT, from item `from` */
static mval daemon_list_val(const struct pattern_list *l, size_t from, const char *name)
{
	mval acc = MV_NO;
	size_t i;

	for (i = from; i < l->count && l->items[i].kind != PAT_EXCEPT; i++)
		acc = mv_or(acc, daemon_item_val(&l->items[i], name));
	if (i == l->count)
		return acc;
	if (i == from || acc == MV_NO)
		return MV_NO;
	return mv_and(acc, mv_not(daemon_list_val(l, i + 1, name)));
}

/* -------------------------------------------------------- rules, effects */

/* What a deciding rule does; two rules with equal effects are interchangeable
 * for the kernel (the rule id only feeds counters). */
struct effect {
	uint8_t verdict;
	uint16_t flags;		/* without BPFWRAP_F_DEFAULT */
	uint32_t linger;
	uint32_t rule_id;	/* 0 = default or table error */
	uint32_t spawn_key;	/* rule id when the rule has options the agent acts on
				 * (spawn, twist, banners, severity, ...): then only
				 * that rule is interchangeable with itself */
	bool is_default;
	bool dynamic;		/* a setenv may fail per request: then deny */
};

/* rule_effect - the effect of a rule when it matches */
static struct effect rule_effect(const struct rule *r, bool is_deny)
{
	struct effect e = { .verdict = is_deny ? BPFWRAP_DENY : BPFWRAP_ALLOW, .rule_id = r->id };

	if (r->options_error) {
		e.verdict = BPFWRAP_DENY;
		return e;
	}
	for (size_t i = 0; i < r->n_options; i++) {
		const struct option *o = &r->options[i];

		switch (o->kind) {
		case OPT_ALLOW:
			e.verdict = BPFWRAP_ALLOW;
			break;
		case OPT_DENY:
			e.verdict = BPFWRAP_DENY;
			break;
		case OPT_SPAWN:
		case OPT_TWIST:
		case OPT_BANNERS:
		case OPT_ACLEXEC:
			e.flags |= BPFWRAP_F_SPAWN;
			break;
		case OPT_KEEPALIVE:
			e.flags |= BPFWRAP_F_KEEPALIVE;
			break;
		case OPT_LINGER:
			e.flags |= BPFWRAP_F_LINGER;
			e.linger = o->number < 0 ? 0 : (uint32_t)o->number;
			break;
		default:
			e.spawn_key = r->id;	/* severity, rfc931, nice, ...: the agent looks */
			break;
		}
	}
	if (e.flags & BPFWRAP_F_SPAWN)
		e.spawn_key = r->id;
	e.dynamic = r->options_dynamic && e.verdict == BPFWRAP_ALLOW;
	return e;
}

/* effect_same - two effects the kernel cannot tell apart */
static bool effect_same(const struct effect *a, const struct effect *b)
{
	return a->verdict == b->verdict && a->flags == b->flags && a->linger == b->linger &&
	       a->spawn_key == b->spawn_key;
}

/* One rule in evaluation order (index 0 is unused, so 0 means "none"). */
struct crule {
	const struct rule *rule;	/* NULL for the pseudo rules */
	struct effect eff;
	bool bcast;			/* the 255.255.255.255 pseudo rule */
};

/* A prefix of a rule's client map with its match value. */
struct piece {
	struct akey key;
	uint32_t rule;		/* crule index */
	uint8_t len;
	mval val;
};

struct piece_vec {
	struct piece *v;
	size_t count, cap;
};

/* pieces_push - append a piece; -ENOMEM on failure */
static int pieces_push(struct piece_vec *pv, const struct akey *k, unsigned len, uint32_t rule,
		       mval val)
{
	if (pv->count == pv->cap) {
		size_t cap = pv->cap ? pv->cap * 2 : 1024;
		struct piece *n = realloc(pv->v, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		pv->v = n;
		pv->cap = cap;
	}
	pv->v[pv->count++] = (struct piece){ *k, rule, (uint8_t)len, val };
	return 0;
}

/* rt_to_pieces - the non-NO leaves of a region trie as prefixes of a rule */
static int rt_to_pieces(const struct rtrie *t, int32_t i, struct akey *k, unsigned d,
			uint32_t rule, struct piece_vec *pv)
{
	int err;

	if (rt_is_leaf(t, i))
		return t->n[i].val == MV_NO ? 0 : pieces_push(pv, k, d, rule, t->n[i].val);
	for (unsigned b = 0; b < 2; b++) {
		akey_setbit(k, d, b);
		err = rt_to_pieces(t, t->n[i].child[b], k, d + 1, rule, pv);
		if (err)
			return err;
	}
	akey_setbit(k, d, 0);
	return 0;
}

/* piece_cmp - prefix order (key, then shorter first), then rule order */
static int piece_cmp(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	for (unsigned i = 0; i < 4; i++)
		if (x->key.w[i] != y->key.w[i])
			return x->key.w[i] < y->key.w[i] ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* pieces_sort_v4 - stable LSD radix sort of IPv4 pieces by (address, length):
 * 1M pieces sort in a few passes over memory; -ENOMEM on failure */
static int pieces_sort_v4(struct piece_vec *pv)
{
	struct piece *tmp = compile_big_alloc((pv->count ? pv->count : 1) * sizeof(*tmp), false);
	size_t *cnt = malloc(65536 * sizeof(*cnt));
	/* digits of key = addr << 8 | len, least significant first */
	static const unsigned shift[3] = { 0, 8, 24 }, bits[3] = { 8, 16, 16 };

	if (!tmp || !cnt) {
		free(tmp);
		free(cnt);
		return -ENOMEM;
	}
	for (unsigned pass = 0; pass < 3; pass++) {
		size_t nb = (size_t)1 << bits[pass], sum = 0;
		uint64_t mask = nb - 1;
		struct piece *src = pv->v;

		memset(cnt, 0, nb * sizeof(*cnt));
		for (size_t i = 0; i < pv->count; i++)
			cnt[(((uint64_t)src[i].key.w[0] << 8 | src[i].len) >> shift[pass]) & mask]++;
		for (size_t d = 0; d < nb; d++) {
			size_t c = cnt[d];

			cnt[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < pv->count; i++)
			tmp[cnt[(((uint64_t)src[i].key.w[0] << 8 | src[i].len) >> shift[pass]) & mask]++] = src[i];
		pv->v = tmp;	/* ping-pong: the sorted copy becomes the vector */
		tmp = src;
	}
	pv->cap = pv->count ? pv->count : 1;
	free(tmp);
	free(cnt);
	return 0;
}

/* ------------------------------------------------------------ decision */

/*
 * The first-match state of a set of addresses: two trackers, one over all
 * worlds (a_*) and one over the unknown world (u_*), fed with the rules
 * that reach the addresses, in rule order.
 */
enum {
	ST_A_CONF = 1 << 0,	/* worlds are decided by rules of different effect */
	ST_A_DONE = 1 << 1,	/* every world is decided */
	ST_U_CONF = 1 << 2,	/* the unknown world's verdict is not determined */
	ST_U_DONE = 1 << 3,	/* the unknown world is decided */
};

struct tstate {
	uint32_t a_rule, u_rule;	/* first deciding rule (crule index), 0 = none */
	uint8_t st;
};

/* state_final - no later rule can change the entry */
static bool state_final(const struct tstate *s)
{
	return (s->st & ST_A_DONE) || ((s->st & ST_A_CONF) && (s->st & ST_U_DONE));
}

/* state_step - rule r with match value v reaches the addresses */
static void state_step(const struct crule *rules, struct tstate *s, uint32_t r, mval v)
{
	unsigned a = MV_A(v), u = MV_U(v);
	/* A rule whose options may fail per request (setenv with %) decides
	 * allow or deny depending on the request: a conflict by itself. */
	bool dynamic = rules[r].eff.dynamic;

	if (!(s->st & ST_A_DONE) && a != T_NO) {
		if (!s->a_rule)
			s->a_rule = r;
		else if (!effect_same(&rules[s->a_rule].eff, &rules[r].eff))
			s->st |= ST_A_CONF;
		if (dynamic)
			s->st |= ST_A_CONF;
		if (a == T_YES)
			s->st |= ST_A_DONE;
	}
	if (!(s->st & ST_U_DONE) && u != T_NO) {
		if (!s->u_rule)
			s->u_rule = r;
		else if (rules[s->u_rule].eff.verdict != rules[r].eff.verdict)
			s->st |= ST_U_CONF;
		if (dynamic)
			s->st |= ST_U_CONF;
		if (u == T_YES) {
			s->st |= ST_U_DONE;
			/* Name the first rule certain to match in U: an earlier
			 * one that only may (a netgroup, which never matches
			 * without NIS, ...) is usually not the one libwrap
			 * matches there. Only counters and logs read the id;
			 * without a conflict the verdict is the same. */
			if (!(s->st & ST_U_CONF))
				s->u_rule = r;
		}
	}
}

/* One emitted entry before it gets its daemon id. */
struct tentry {
	struct akey key;
	uint8_t len;
	struct policy_entry e;
};

struct tentry_vec {
	struct tentry *v;
	size_t count, cap;
};

/* state_entry - the kernel entry for a final state */
static struct policy_entry state_entry(const struct crule *rules, const struct tstate *s)
{
	const struct effect *ua = &rules[s->u_rule].eff;
	struct policy_entry e;

	memset(&e, 0, sizeof(e));
	e.rule_id = ua->rule_id;
	if (!(s->st & ST_A_CONF)) {
		const struct effect *a = &rules[s->a_rule].eff;

		e.verdict = e.verdict_if_unknown = a->verdict;
		e.flags = a->flags | (ua->is_default ? BPFWRAP_F_DEFAULT : 0);
		e.linger = a->linger;
		return e;
	}
	e.verdict = BPFWRAP_ASK;
	if (s->st & ST_U_CONF) {
		e.verdict_if_unknown = BPFWRAP_DENY;
		e.flags = BPFWRAP_F_APPROX;
	} else {
		e.verdict_if_unknown = ua->verdict;
		e.flags = ua->flags | (ua->is_default ? BPFWRAP_F_DEFAULT : 0);
		e.linger = ua->linger;
	}
	return e;
}

/* entry_eq - two entries decide the same */
static bool entry_eq(const struct policy_entry *a, const struct policy_entry *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* tentry_push - append an entry; -ENOMEM on failure */
static int tentry_push(struct tentry_vec *v, const struct akey *k, unsigned len,
		       const struct policy_entry *e)
{
	if (v->count == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		struct tentry *n = realloc(v->v, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		v->v = n;
		v->cap = cap;
	}
	v->v[v->count++] = (struct tentry){ *k, (uint8_t)len, *e };
	return 0;
}

/* A rule reaching a prefix, kept in rule order, with the state after it. */
struct act {
	uint32_t rule;
	mval val;
	struct tstate after;
};

struct act_vec {
	struct act *v;
	size_t count, cap;
};

/* act_reserve - room for n entries in total; -ENOMEM on failure */
static int act_reserve(struct act_vec *a, size_t n)
{
	if (n > a->cap) {
		size_t cap = n * 2 + 64;
		struct act *v = realloc(a->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	return 0;
}

/*
 * An enclosing prefix during the sweep. The rules reaching the innermost
 * prefix are acts[0 .. n) (cut after the rule that made the state final);
 * a prefix rewrote its parent's list from `ins` on and saved the parent's
 * entries there in the undo log, to put them back when it is left.
 */
struct frame {
	struct akey key;
	unsigned len;
	size_t n, ins;
	size_t undo_off, undo_n;
	struct tstate state;
	struct policy_entry entry;	/* the entry that decides its own addresses */
};

/* frame_contains - the prefix (k, len) lies within frame f */
static bool frame_contains(const struct frame *f, const struct akey *k, unsigned len)
{
	return f->len <= len && akey_common(&f->key, k, f->len) == f->len;
}

/* acts_lower_bound - first position in acts[0 .. n) with a rule after r */
static size_t acts_lower_bound(const struct act *a, size_t n, uint32_t r)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a[mid].rule < r)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * sweep_table - one table from pieces sorted in prefix order. Walking them
 * is a depth-first walk of the prefix tree: a stack holds the enclosing
 * prefixes; each prefix's state folds, in rule order, the rules of its own
 * pieces and those of its ancestors, resuming the parent's fold where its
 * first rule falls. An entry is emitted where the state differs from the
 * enclosing prefix's. dv[r]: rule r's daemon-list value.
 */
static int sweep_table(const struct crule *rules, const struct piece_vec *pv, const mval *dv,
		       struct tentry_vec *out)
{
	struct frame stack[130];
	struct act_vec acts = { 0 }, undo = { 0 }, grp = { 0 };
	unsigned depth = 0;
	int err = 0;

	/* at most one entry per prefix with pieces, plus the /0: no regrowing */
	if (out->cap < pv->count + 1) {
		struct tentry *n = out->v ? realloc(out->v, (pv->count + 1) * sizeof(*n))
					  : compile_big_alloc((pv->count + 1) * sizeof(*n), false);

		if (!n)
			return -ENOMEM;
		out->v = n;
		out->cap = pv->count + 1;
	}
	for (size_t i = 0, j; !err && i < pv->count; i = j) {
		const struct piece *p = &pv->v[i];
		struct frame *up, *f;
		size_t pn, t, g = 0;

		/* the group of pieces at this prefix, with the daemon applied */
		grp.count = 0;
		for (j = i; j < pv->count && pv->v[j].len == p->len &&
			    !memcmp(&pv->v[j].key, &p->key, sizeof(p->key)); j++) {
			mval v = mv_and(dv[pv->v[j].rule], pv->v[j].val);

			if (v == MV_NO)
				continue;
			if ((err = act_reserve(&grp, grp.count + 1)))
				break;
			grp.v[grp.count++] = (struct act){ .rule = pv->v[j].rule, .val = v };
		}
		if (err || !grp.count)
			continue;
		while (depth && !frame_contains(&stack[depth - 1], &p->key, p->len)) {
			f = &stack[--depth];
			if (f->undo_n)
				memcpy(acts.v + f->ins, undo.v + f->undo_off, f->undo_n * sizeof(*acts.v));
			undo.count = f->undo_off;
		}
		if (depth >= sizeof(stack) / sizeof(stack[0])) {
			err = -EINVAL;	/* cannot happen: prefixes nest at most 129 deep */
			break;
		}
		up = depth ? &stack[depth - 1] : NULL;
		f = &stack[depth];
		f->key = p->key;
		f->len = p->len;
		pn = up ? up->n : 0;
		/* a rule makes disjoint pieces: no rule is both here and above */
		f->ins = acts_lower_bound(acts.v, pn, grp.v[0].rule);
		f->undo_off = undo.count;
		f->undo_n = 0;
		if (up && f->ins == pn && state_final(&up->state)) {
			f->n = pn;	/* decided above by earlier rules */
			f->state = up->state;
		} else {
			f->undo_n = pn - f->ins;
			if ((err = act_reserve(&undo, undo.count + f->undo_n)) ||
			    (err = act_reserve(&acts, pn + grp.count)))
				break;
			if (f->undo_n)	/* (memcpy from a NULL vector is undefined even for 0) */
				memcpy(undo.v + undo.count, acts.v + f->ins, f->undo_n * sizeof(*acts.v));
			undo.count += f->undo_n;
			if (f->ins)
				f->state = acts.v[f->ins - 1].after;
			else
				memset(&f->state, 0, sizeof(f->state));
			/* merge the parent's tail (saved) with this prefix's rules */
			f->n = f->ins;
			t = f->undo_off;
			while ((t < undo.count || g < grp.count) && !state_final(&f->state)) {
				struct act x = (g == grp.count || (t < undo.count && undo.v[t].rule < grp.v[g].rule))
						       ? undo.v[t++] : grp.v[g++];

				state_step(rules, &f->state, x.rule, x.val);
				x.after = f->state;
				acts.v[f->n++] = x;
			}
		}
		if (!state_final(&f->state)) {
			err = -EINVAL;	/* cannot happen: the default rule covers /0 */
			break;
		}
		f->entry = state_entry(rules, &f->state);
		if (!up || !entry_eq(&f->entry, &up->entry))
			err = tentry_push(out, &f->key, f->len, &f->entry);
		depth++;
	}
	free(acts.v);
	free(undo.v);
	free(grp.v);
	return err;
}

/* ------------------------------------------------------------ compile */

struct compiler {
	const struct policy *policy;
	struct crule *rules;		/* 1..n_crules-1 */
	size_t n_crules;
	struct piece_vec pieces[2];
	char (*names)[BPFWRAP_DAEMON_NAME_MAX];	/* named daemons, sorted */
	size_t n_names;
};

/* name_lower - the daemon key form of a name: ASCII lower case; false if it
 * does not fit a key (such names are decided in the OTHER table) */
static bool name_lower(const char *name, char out[BPFWRAP_DAEMON_NAME_MAX])
{
	size_t n = strlen(name);

	if (!n || n >= BPFWRAP_DAEMON_NAME_MAX)
		return false;
	memset(out, 0, BPFWRAP_DAEMON_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	return true;
}

/* name_cmp - qsort/bsearch order of daemon names */
static int name_cmp(const void *a, const void *b)
{
	return strncmp(a, b, BPFWRAP_DAEMON_NAME_MAX);
}

/* add_name - add a daemon name to the named set, kept sorted and unique
 * (big policies repeat a few names a million times) */
static int add_name(struct compiler *cc, size_t *cap, const char *name)
{
	char key[BPFWRAP_DAEMON_NAME_MAX];
	size_t lo = 0, hi = cc->n_names;

	if (!name_lower(name, key))
		return 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = name_cmp(key, cc->names[mid]);

		if (!c)
			return 0;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (cc->n_names == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		void *n = realloc(cc->names, ncap * sizeof(*cc->names));

		if (!n)
			return -ENOMEM;
		cc->names = n;
		*cap = ncap;
	}
	memmove(cc->names[lo + 1], cc->names[lo], (cc->n_names - lo) * sizeof(*cc->names));
	memcpy(cc->names[lo], key, BPFWRAP_DAEMON_NAME_MAX);
	cc->n_names++;
	return 0;
}

/* collect_names - every daemon named exactly in a daemon list, "unknown" if
 * a daemon list uses KNOWN, and the caller's extra names; sorted, unique */
static int collect_names(struct compiler *cc, const char *const *extra, size_t n_extra)
{
	size_t cap = 0;
	bool known = false;
	int err = 0;

	for (size_t i = 1; !err && i < cc->n_crules; i++) {
		const struct rule *r = cc->rules[i].rule;

		for (size_t j = 0; r && !err && j < r->daemons.count; j++) {
			const struct pattern *p = &r->daemons.items[j];
			if (p->kind == PAT_KNOWN)
				known = true;
			if (p->kind != PAT_STRING)
				continue;
			switch (p->skind) {
			case STR_EXACT:
				err = add_name(cc, &cap, p->low);
				break;
			case STR_KNOWN:
				known = true;
				break;
			default:
				break;
			}
		}
	}
	for (size_t i = 0; !err && i < n_extra; i++)
		if (extra[i])
			err = add_name(cc, &cap, extra[i]);
	if (!err && known)	/* so that KNOWN is YES for every unnamed daemon */
		err = add_name(cc, &cap, "unknown");
	return err;
}

/*
 * build_rules - rules in evaluation order, then the pseudo rules for a
 * broken hosts.deny and for the default allow. First of all comes a pseudo
 * rule for 255.255.255.255: libwrap's inet_addr() reads it as INADDR_NONE,
 * so "::ffff:255.255.255.255" is an IPv6 address to libwrap and decides
 * unlike "255.255.255.255"; one IPv4 entry cannot hold both, so it asks.
 */
static int build_rules(struct compiler *cc)
{
	const struct policy *p = cc->policy;
	const struct table *deny = &p->deny;
	const struct table *allow = &p->allow;
	bool deny_error = deny->state == TABLE_UNREADABLE || deny->cut_off;
	size_t n = 1, cap;

	/* An unreadable hosts.allow is "no match there": its rules never decide. */
	cap = 2 + (allow->state == TABLE_UNREADABLE ? 0 : allow->n_rules) +
	      (deny->state == TABLE_UNREADABLE ? 0 : deny->n_rules) + 2;
	cc->rules = compile_big_alloc(cap * sizeof(*cc->rules), true);
	if (!cc->rules)
		return -ENOMEM;
	cc->rules[n].eff = (struct effect){ .verdict = BPFWRAP_DENY, .dynamic = true };
	cc->rules[n++].bcast = true;
	for (size_t i = 0; allow->state != TABLE_UNREADABLE && i < allow->n_rules; i++, n++) {
		cc->rules[n].rule = &allow->rules[i];
		cc->rules[n].eff = rule_effect(&allow->rules[i], false);
	}
	for (size_t i = 0; deny->state != TABLE_UNREADABLE && i < deny->n_rules; i++, n++) {
		cc->rules[n].rule = &deny->rules[i];
		cc->rules[n].eff = rule_effect(&deny->rules[i], true);
	}
	if (deny_error)
		cc->rules[n++].eff = (struct effect){ .verdict = BPFWRAP_DENY };
	cc->rules[n++].eff = (struct effect){ .verdict = BPFWRAP_ALLOW, .is_default = true };
	cc->n_crules = n;
	return 0;
}

/* fast_simple - a client list that is one plain net/mask or one dotted-quad
 * address: its prefix without a region trie (the common case in big
 * policies, e.g. hosts.deny written by fail2ban); false if not that simple */
static bool fast_simple(const struct pattern_list *l, int family, struct akey *k, unsigned *len,
			mval *val)
{
	const struct pattern *p = l->count == 1 ? &l->items[0] : NULL;
	uint32_t net, mask;
	struct in_addr a4;
	char canon[INET_ADDRSTRLEN];

	if (!p || p->user)
		return false;
	memset(k, 0, sizeof(*k));
	*val = MV_NO;
	if (p->kind == PAT_STRING && p->skind == STR_EXACT && !p->also_name) {
		/* digits and dots only: the address text alone */
		if (family == AF_INET && inet_pton(AF_INET, p->low, &a4) == 1 &&
		    inet_ntop(AF_INET, &a4, canon, sizeof(canon)) && !strcmp(canon, p->low)) {
			k->w[0] = ntohl(a4.s_addr);
			*len = 32;
			*val = MV_YES;
		}
		return true;
	}
	if (p->kind != PAT_NETMASK)
		return false;
	if (!p->valid || p->family != family)
		return true;
	if (family != AF_INET)
		return false;
	memcpy(&net, p->net.s6_addr, 4);
	memcpy(&mask, p->mask.s6_addr, 4);
	net = ntohl(net);
	mask = ntohl(mask);
	if (~mask & (~mask + 1))
		return false;	/* non-contiguous: the general path expands it */
	if (net & ~mask)
		return true;	/* unmasked net: never matches */
	k->w[0] = net;
	*len = (unsigned)__builtin_popcount(mask);
	*val = MV_YES;
	return true;
}

/* build_maps - each rule's client list as prefixes, per family, then sorted
 * in prefix order */
static int build_maps(struct compiler *cc)
{
	struct cctx c = { .policy = cc->policy, .text_total = TEXT_BUDGET_TOTAL };
	int err = 0;

	/* most rules give one IPv4 piece: avoid growing a huge vector */
	cc->pieces[0].v = compile_big_alloc((cc->n_crules + 16) * sizeof(*cc->pieces[0].v), false);
	if (!cc->pieces[0].v)
		return -ENOMEM;
	cc->pieces[0].cap = cc->n_crules + 16;
	for (uint32_t i = 1; !err && i < cc->n_crules; i++) {
		const struct crule *r = &cc->rules[i];

		for (unsigned f = 0; !err && f < 2; f++) {
			int family = f ? AF_INET6 : AF_INET;
			struct akey k = { { 0, 0, 0, 0 } };
			unsigned len;
			mval v;
			int32_t root;

			if (r->bcast) {
				k.w[0] = 0xffffffffu;
				if (!f)
					err = pieces_push(&cc->pieces[f], &k, 32, i, MV_APPROX);
			} else if (!r->rule) {	/* pseudo rules match every address */
				err = pieces_push(&cc->pieces[f], &k, 0, i, MV_YES);
			} else if (fast_simple(&r->rule->clients, family, &k, &len, &v)) {
				if (v != MV_NO)
					err = pieces_push(&cc->pieces[f], &k, len, i, v);
			} else {
				c.rt.count = 0;
				root = host_list_map(&c, &r->rule->clients, 0, family, 0, false);
				err = root < 0 ? -ENOMEM : rt_to_pieces(&c.rt, root, &k, 0, i, &cc->pieces[f]);
			}
		}
	}
	free(c.rt.n);
	if (!err)
		err = pieces_sort_v4(&cc->pieces[0]);
	if (!err && cc->pieces[1].count)
		qsort(cc->pieces[1].v, cc->pieces[1].count, sizeof(*cc->pieces[1].v), piece_cmp);
	return err;
}

/* lists_same - two daemon lists of plain items read alike (so decide alike) */
static bool lists_same(const struct pattern_list *a, const struct pattern_list *b)
{
	if (a->count != b->count)
		return false;
	for (size_t i = 0; i < a->count; i++) {
		const struct pattern *x = &a->items[i], *y = &b->items[i];

		if (x->kind != y->kind || x->skind != y->skind || x->server || y->server ||
		    x->port != y->port || x->valid != y->valid || strcmp(x->low, y->low) ||
		    (x->skind == STR_V6 && memcmp(&x->v6, &y->v6, sizeof(x->v6))))
			return false;
	}
	return true;
}

/* list_names_daemon - whether a daemon list's value can differ between
 * daemons (anything but ALL, ports and EXCEPT) */
static bool list_names_daemon(const struct pattern_list *l)
{
	for (size_t i = 0; i < l->count; i++) {
		const struct pattern *p = &l->items[i];

		if (p->kind != PAT_EXCEPT && p->kind != PAT_PORT &&
		    !(p->kind == PAT_STRING && p->skind == STR_ALL))
			return true;
	}
	return false;
}

/* tables_equal - two emitted tables are the same */
static bool tables_equal(const struct tentry_vec *a, const struct tentry_vec *b)
{
	if (a->count != b->count)
		return false;
	for (size_t i = 0; i < a->count; i++)
		if (a->v[i].len != b->v[i].len || memcmp(&a->v[i].key, &b->v[i].key, sizeof(a->v[i].key)) ||
		    !entry_eq(&a->v[i].e, &b->v[i].e))
			return false;
	return true;
}

/* append_entries - copy a table into the output with its daemon id */
static int append_entries(struct compiled_policy *cp, const struct tentry_vec *tv, unsigned f,
			  uint32_t id, size_t *cap)
{
	size_t need = (f ? cp->n_v6 : cp->n_v4) + tv->count;

	if (need > *cap) {
		size_t ncap = need < 32 ? 64 : need * 2;
		void *old = f ? (void *)cp->v6 : (void *)cp->v4;
		size_t esz = f ? sizeof(*cp->v6) : sizeof(*cp->v4);
		void *n = old ? realloc(old, ncap * esz) : compile_big_alloc(ncap * esz, false);

		if (!n)
			return -ENOMEM;
		if (f)
			cp->v6 = n;
		else
			cp->v4 = n;
		*cap = ncap;
	}
	for (size_t i = 0; i < tv->count; i++) {
		const struct tentry *te = &tv->v[i];

		if (te->e.verdict == BPFWRAP_ASK)
			cp->n_ask++;
		if (f) {
			struct compiled_v6 *o = &cp->v6[cp->n_v6++];

			memset(o, 0, sizeof(*o));
			o->key.prefixlen = 32 + te->len;
			o->key.daemon_id = htonl(id);
			for (unsigned w = 0; w < 4; w++) {
				uint32_t be = htonl(te->key.w[w]);

				memcpy(o->key.addr + 4 * w, &be, 4);
			}
			o->entry = te->e;
		} else {
			struct compiled_v4 *o = &cp->v4[cp->n_v4++];

			memset(o, 0, sizeof(*o));
			o->key.prefixlen = 32 + te->len;
			o->key.daemon_id = htonl(id);
			o->key.addr = htonl(te->key.w[0]);
			o->entry = te->e;
		}
	}
	return 0;
}

/* compile_policy - build the kernel tables for a parsed policy */
int compile_policy(const struct policy *policy, const char *const *extra_daemons,
		   size_t n_extra_daemons, struct compiled_policy **out)
{
	struct compiler cc = { .policy = policy };
	struct compiled_policy *cp;
	struct tentry_vec other[2] = { { 0 } }, mine[2] = { { 0 } };
	size_t cap[2] = { 0, 0 }, n_daemons = 0, n_dep = 0;
	mval *dv = NULL, *dv_other = NULL;
	uint32_t *dep = NULL;	/* rules whose daemon list depends on the name */
	bool *dep_same = NULL;	/* dep[k]'s list reads like dep[k - 1]'s */
	int err;

	if (!policy || !out || (n_extra_daemons && !extra_daemons))
		return -EINVAL;
	*out = NULL;
	cp = calloc(1, sizeof(*cp));
	if (!cp)
		return -ENOMEM;
	err = build_rules(&cc);
	if (!err)
		err = collect_names(&cc, extra_daemons, n_extra_daemons);
	if (!err)
		err = build_maps(&cc);
	if (!err && (!(dv = malloc(cc.n_crules * sizeof(*dv))) ||
		     !(dv_other = malloc(cc.n_crules * sizeof(*dv))) ||
		     !(dep = malloc(cc.n_crules * sizeof(*dep))) ||
		     !(dep_same = malloc(cc.n_crules * sizeof(*dep_same)))))
		err = -ENOMEM;
	for (uint32_t i = 1; !err && i < cc.n_crules; i++) {
		const struct rule *r = cc.rules[i].rule;

		dv_other[i] = r ? daemon_list_val(&r->daemons, 0, NULL) : MV_YES;
		if (r && list_names_daemon(&r->daemons)) {
			dep_same[n_dep] = n_dep && lists_same(&cc.rules[dep[n_dep - 1]].rule->daemons, &r->daemons);
			dep[n_dep++] = i;
		}
	}
	for (unsigned f = 0; !err && f < 2; f++)
		err = sweep_table(cc.rules, &cc.pieces[f], dv_other, &other[f]);
	for (unsigned f = 0; !err && f < 2; f++)
		err = append_entries(cp, &other[f], f, BPFWRAP_DAEMON_OTHER, &cap[f]);
	if (!err && cc.n_names) {
		cp->daemons = calloc(cc.n_names, sizeof(*cp->daemons));
		if (!cp->daemons)
			err = -ENOMEM;
	}
	for (size_t d = 0; !err && d < cc.n_names; d++) {
		bool same = true;

		/* only rules whose daemon list names daemons can decide differently */
		memcpy(dv, dv_other, cc.n_crules * sizeof(*dv));
		for (size_t k = 0; k < n_dep; k++) {
			dv[dep[k]] = dep_same[k] ? dv[dep[k - 1]]
						 : daemon_list_val(&cc.rules[dep[k]].rule->daemons, 0, cc.names[d]);
			same = same && dv[dep[k]] == dv_other[dep[k]];
		}
		if (same)
			continue;	/* the same values as OTHER: the same table */
		for (unsigned f = 0; !err && f < 2; f++) {
			mine[f].count = 0;
			err = sweep_table(cc.rules, &cc.pieces[f], dv, &mine[f]);
		}
		/* Emitted tables carry no daemon id yet: compare them as they are. */
		if (err || (tables_equal(&mine[0], &other[0]) && tables_equal(&mine[1], &other[1])))
			continue;	/* decides like any unnamed daemon: no table needed */
		n_daemons++;
		cp->daemons[n_daemons - 1].id = (uint32_t)n_daemons;
		memcpy(cp->daemons[n_daemons - 1].name, cc.names[d], BPFWRAP_DAEMON_NAME_MAX);
		for (unsigned f = 0; !err && f < 2; f++)
			err = append_entries(cp, &mine[f], f, (uint32_t)n_daemons, &cap[f]);
	}
	cp->n_daemons = n_daemons;
	cp->n_rules = (uint32_t)policy->n_rules;
	if (!err && policy->n_rules) {
		cp->rules = calloc(policy->n_rules, sizeof(*cp->rules));
		if (!cp->rules)
			err = -ENOMEM;
	}
	for (size_t i = 1; !err && i < cc.n_crules; i++) {
		const struct rule *r = cc.rules[i].rule;

		if (r && r->id >= 1 && r->id <= policy->n_rules)
			cp->rules[r->id - 1] = (struct compiled_rule){ r->id, r };
	}
	for (unsigned f = 0; f < 2; f++) {
		free(other[f].v);
		free(mine[f].v);
		free(cc.pieces[f].v);
	}
	free(cc.rules);
	free(cc.names);
	free(dv);
	free(dv_other);
	free(dep);
	free(dep_same);
	if (err) {
		compiled_policy_free(cp);
		return err;
	}
	*out = cp;
	return 0;
}

/* compiled_policy_free - release what compile_policy built */
void compiled_policy_free(struct compiled_policy *cp)
{
	if (!cp)
		return;
	free(cp->daemons);
	free(cp->v4);
	free(cp->v6);
	free(cp->rules);
	free(cp);
}

/* daemon_key_cmp - bsearch order of a name key against a compiled daemon */
static int daemon_key_cmp(const void *key, const void *elem)
{
	const struct compiled_daemon *d = elem;

	return strncmp(key, d->name, BPFWRAP_DAEMON_NAME_MAX);
}

/* compiled_daemon_id - the table id for a daemon name (BPFWRAP_DAEMON_OTHER if unnamed) */
uint32_t compiled_daemon_id(const struct compiled_policy *cp, const char *name)
{
	char key[BPFWRAP_DAEMON_NAME_MAX];
	const struct compiled_daemon *d;

	if (!cp || !name || !name_lower(name, key) || !cp->n_daemons)
		return BPFWRAP_DAEMON_OTHER;
	d = bsearch(key, cp->daemons, cp->n_daemons, sizeof(*cp->daemons), daemon_key_cmp);
	return d ? d->id : BPFWRAP_DAEMON_OTHER;
}
