/*
 * compile_text.c - string patterns for the policy compiler (see compile.c):
 * libwrap's string_match() of a pattern against a concrete subject, and the
 * addresses whose text (inet_ntoa, inet_ntop) a string pattern matches, as
 * a region trie: exact where the enumeration stays within its budget,
 * MAYBE ("ask") where it does not.
 *
 * Errors: the region builders return -1 when out of memory; nothing here
 * prints.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile_int.h"

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
bool pattern_string_match(const struct pattern *p, const char *subject)
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
int32_t text_map_v4(struct rtrie *rt, enum string_kind k, const char *text,
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
int32_t text_map_v6(struct rtrie *rt, enum string_kind k, const char *text,
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
