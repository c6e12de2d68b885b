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
 * Files: compile_region.c (the region trie), compile_text.c (string
 * patterns and address texts), compile_pattern.c (client and daemon lists),
 * compile_sweep.c (effects, pieces and the sweep), compile_int.h (what they
 * share); this file collects the rules and daemon names, builds each rule's
 * pieces, runs the sweeps and assembles the compiled policy.
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
#include "compile_int.h"

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
