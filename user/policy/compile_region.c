/*
 * compile_region.c - the region trie of the policy compiler (see compile.c):
 * a full binary trie over address bits whose leaves carry match values, with
 * which a client list's patterns are combined (OR, AND, EXCEPT) into one
 * map from addresses to match values.
 *
 * Errors: the functions that allocate return -1 when out of memory; nothing
 * here prints.
 */
#include <stdlib.h>

#include "compile_int.h"

/* ----------------------------------------------------------- region trie */

/* rt_new - a new leaf with value v; -1 on ENOMEM */
int32_t rt_new(struct rtrie *t, mval v)
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
bool rt_is_leaf(const struct rtrie *t, int32_t i)
{
	return t->n[i].child[0] < 0;
}

/* rt_set - give every address under (k, len) value v, below node i at depth d;
 * returns the (possibly new) node index or -1 */
int32_t rt_set(struct rtrie *t, int32_t i, const struct akey *k, unsigned len,
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
int32_t rt_prefix(struct rtrie *t, const struct akey *k, unsigned len, mval v)
{
	int32_t root = rt_new(t, MV_NO);

	return root < 0 ? -1 : rt_set(t, root, k, len, 0, v);
}

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
int32_t rt_combine(struct rtrie *t, int32_t a, int32_t b, enum rt_op op)
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
int rt_leaf_val(const struct rtrie *t, int32_t i)
{
	return rt_is_leaf(t, i) ? t->n[i].val : -1;
}
