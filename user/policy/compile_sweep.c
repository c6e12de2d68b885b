/*
 * compile_sweep.c - the decision tables of the policy compiler (see
 * compile.c): what a deciding rule does (its effect), each rule's client
 * map as prefix pieces, their sort in prefix order, and the sweep that folds
 * the pieces of one daemon table, in rule order, into first-match entries.
 *
 * Errors: 0 or -ENOMEM (-EINVAL only from checks that cannot fail); nothing
 * here prints. What a failed sweep appended to its output is the caller's
 * to free.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compile_int.h"

/* -------------------------------------------------------- rules, effects */

/* rule_effect - the effect of a rule when it matches */
struct effect rule_effect(const struct rule *r, bool is_deny)
{
	struct effect e = { .verdict = is_deny ? BPFWRAP_DENY : BPFWRAP_ALLOW, .rule_id = r->id };

	if (r->options_error) {
		e.verdict = BPFWRAP_DENY;
		return e;
	}
	for (size_t i = 0; i < r->n_options; i++) {
		const struct rule_option *o = &r->options[i];

		switch (o->kind) {
		case ROPT_ALLOW:
			e.verdict = BPFWRAP_ALLOW;
			break;
		case ROPT_DENY:
			e.verdict = BPFWRAP_DENY;
			break;
		case ROPT_SPAWN:
		case ROPT_TWIST:
		case ROPT_BANNERS:
		case ROPT_ACLEXEC:
			e.flags |= BPFWRAP_F_SPAWN;
			break;
		case ROPT_KEEPALIVE:
			e.flags |= BPFWRAP_F_KEEPALIVE;
			break;
		case ROPT_LINGER:
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

/* pieces_push - append a piece; -ENOMEM on failure */
int pieces_push(struct piece_vec *pv, const struct akey *k, unsigned len, uint32_t rule,
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
int rt_to_pieces(const struct rtrie *t, int32_t i, struct akey *k, unsigned d,
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
int piece_cmp(const void *a, const void *b)
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
int pieces_sort_v4(struct piece_vec *pv)
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
bool entry_eq(const struct policy_entry *a, const struct policy_entry *b)
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
int sweep_table(const struct crule *rules, const struct piece_vec *pv, const mval *dv,
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
