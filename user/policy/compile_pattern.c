/*
 * compile_pattern.c - the match values of a rule's lists for the policy
 * compiler (see compile.c): a client list (with EXCEPT and /path files) as a
 * region trie per address family, and a daemon list's value for one daemon
 * name or for the daemons the policy does not name.
 *
 * Errors: host_list_map() returns -1 when out of memory; nothing here prints.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "compile_int.h"

/* ------------------------------------------------------- client patterns */

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
int32_t host_list_map(struct cctx *c, const struct pattern_list *l, size_t from,
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
mval daemon_list_val(const struct pattern_list *l, size_t from, const char *name)
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
