/*
 * compile_int.h - what the parts of the policy compiler share (compile.c and
 * the compile_*.c files; the model and the algorithm are described at the top
 * of compile.c): three-valued match values, addresses as bit strings, the
 * region trie, and the rules, pieces and entries of the per-table sweep.
 * Internal to user/policy; the public interface is compile.h.
 */
#ifndef BPFWRAP_COMPILE_INT_H
#define BPFWRAP_COMPILE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "compile.h"
#include "policy.h"

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
static inline unsigned umin(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

/* umax - larger of two */
static inline unsigned umax(unsigned a, unsigned b)
{
	return a > b ? a : b;
}

/* mv_and - Kleene AND, per world class */
static inline mval mv_and(mval x, mval y)
{
	return MV(umin(MV_A(x), MV_A(y)), umin(MV_U(x), MV_U(y)));
}

/* mv_or - Kleene OR, per world class */
static inline mval mv_or(mval x, mval y)
{
	return MV(umax(MV_A(x), MV_A(y)), umax(MV_U(x), MV_U(y)));
}

/* mv_not - Kleene NOT, per world class */
static inline mval mv_not(mval x)
{
	return MV(2 - MV_A(x), 2 - MV_U(x));
}

/* mv_name - the value of a match that depends only on the client name or user:
 * some worlds match; U matches when "unknown" does */
static inline mval mv_name(bool unknown_matches)
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
static inline unsigned akey_bit(const struct akey *k, unsigned i)
{
	return (k->w[i >> 5] >> (31 - (i & 31))) & 1u;
}

/* akey_setbit - set bit i of k to b */
static inline void akey_setbit(struct akey *k, unsigned i, unsigned b)
{
	uint32_t m = 1u << (31 - (i & 31));

	if (b)
		k->w[i >> 5] |= m;
	else
		k->w[i >> 5] &= ~m;
}

/* akey_mask - clear every bit at position >= len */
static inline void akey_mask(struct akey *k, unsigned len)
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
static inline unsigned akey_common(const struct akey *a, const struct akey *b, unsigned max)
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
static inline void akey_from_v6(struct akey *k, const uint8_t a[16])
{
	for (unsigned i = 0; i < 4; i++)
		k->w[i] = (uint32_t)a[4 * i] << 24 | (uint32_t)a[4 * i + 1] << 16 |
			  (uint32_t)a[4 * i + 2] << 8 | a[4 * i + 3];
}

/* ---------------------------------------- region trie (compile_region.c) */

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

enum rt_op { RT_AND, RT_OR, RT_ANDNOT };

/* rt_new - a new leaf with value v; -1 on ENOMEM */
int32_t rt_new(struct rtrie *t, mval v);

/* rt_is_leaf - whether node i is a leaf */
bool rt_is_leaf(const struct rtrie *t, int32_t i);

/* rt_set - give every address under (k, len) value v, below node i at depth d;
 * returns the (possibly new) node index or -1 */
int32_t rt_set(struct rtrie *t, int32_t i, const struct akey *k, unsigned len,
	       unsigned d, mval v);

/* rt_prefix - a new trie: v under (k, len), NO elsewhere; -1 on ENOMEM */
int32_t rt_prefix(struct rtrie *t, const struct akey *k, unsigned len, mval v);

/* rt_combine - a new trie for (a op b); -1 on ENOMEM */
int32_t rt_combine(struct rtrie *t, int32_t a, int32_t b, enum rt_op op);

/* rt_leaf_val - a trie that is one leaf: its value; else -1 */
int rt_leaf_val(const struct rtrie *t, int32_t i);

/* -------------------------------------- string patterns (compile_text.c) */

#define TEXT_BUDGET_TOTAL (1u << 24)	/* automaton steps per compile */
#define NONCONTIG_MAX_BITS 12	/* net/mask expansion: at most 4096 prefixes */
#define FILE_DEPTH_MAX 8	/* /path inside /path */

/* pattern_string_match - string_match() of a string pattern against a subject */
bool pattern_string_match(const struct pattern *p, const char *subject);

/*
 * text_map_v4 - the IPv4 addresses whose inet_ntoa text a string pattern
 * matches, as a region trie (YES where it matches, MAYBE where not computed)
 */
int32_t text_map_v4(struct rtrie *rt, enum string_kind k, const char *text,
		    unsigned *total);

/*
 * text_map_v6 - the IPv6 addresses whose inet_ntop text a string pattern
 * matches. Exact texts are decided; texts that could match only the
 * "::a.b.c.d" spelling ask there; other globs ask everywhere.
 */
int32_t text_map_v6(struct rtrie *rt, enum string_kind k, const char *text,
		    const struct in6_addr *v6);

/* --------------------------- client and daemon lists (compile_pattern.c) */

struct cctx {
	const struct policy *policy;
	struct rtrie rt;
	unsigned text_total;	/* text enumeration budget left */
};

/*
 * host_list_map - a client list from item `from` with libwrap's EXCEPT:
 * (items before the first EXCEPT) AND NOT (the rest as a list). In a /path
 * file every word is just OR'ed (EXCEPT is a word there).
 */
int32_t host_list_map(struct cctx *c, const struct pattern_list *l, size_t from,
		      int family, unsigned depth, bool is_file);

/* daemon_list_val - a daemon list with EXCEPT, from item `from` */
mval daemon_list_val(const struct pattern_list *l, size_t from, const char *name);

/* ------------------------------------ rules and tables (compile_sweep.c) */

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

/* rule_effect - the effect of a rule when it matches */
struct effect rule_effect(const struct rule *r, bool is_deny);

/* pieces_push - append a piece; -ENOMEM on failure */
int pieces_push(struct piece_vec *pv, const struct akey *k, unsigned len, uint32_t rule,
		mval val);

/* rt_to_pieces - the non-NO leaves of a region trie as prefixes of a rule */
int rt_to_pieces(const struct rtrie *t, int32_t i, struct akey *k, unsigned d,
		 uint32_t rule, struct piece_vec *pv);

/* piece_cmp - prefix order (key, then shorter first), then rule order */
int piece_cmp(const void *a, const void *b);

/* pieces_sort_v4 - stable LSD radix sort of IPv4 pieces by (address, length):
 * 1M pieces sort in a few passes over memory; -ENOMEM on failure */
int pieces_sort_v4(struct piece_vec *pv);

/* entry_eq - two entries decide the same */
bool entry_eq(const struct policy_entry *a, const struct policy_entry *b);

/*
 * sweep_table - one table from pieces sorted in prefix order. Walking them
 * is a depth-first walk of the prefix tree: a stack holds the enclosing
 * prefixes; each prefix's state folds, in rule order, the rules of its own
 * pieces and those of its ancestors, resuming the parent's fold where its
 * first rule falls. An entry is emitted where the state differs from the
 * enclosing prefix's. dv[r]: rule r's daemon-list value.
 */
int sweep_table(const struct crule *rules, const struct piece_vec *pv, const mval *dv,
		struct tentry_vec *out);

#endif /* BPFWRAP_COMPILE_INT_H */
