/*
 * evaluate.c - the reference evaluator: decide one request exactly as
 * Debian's libwrap hosts_access() does (tcp_wrappers 7.6.q-32), on a policy
 * parsed by parse.c.
 *
 * libwrap's order: hosts.allow top to bottom, the first rule whose daemon
 * list and client list match decides (allow, unless its options deny or are
 * broken); else hosts.deny the same way (deny, unless `allow`); else allow.
 * A table that libwrap cannot read, or whose reading stops at a bad line, is
 * an error: no match in hosts.allow, deny in hosts.deny (rules before the
 * bad line still match first).
 *
 * Speed: the request is prepared once (fields cut to 127 characters, lower
 * cased, "::ffff:a.b.c.d" stripping and the client address parsed once);
 * every pattern was classified and lower-cased at parse time, so matching a
 * rule is a few comparisons.
 *
 * Errors: none; policy_evaluate() always returns a decision.
 */
#include <netdb.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "expand.h"
#include "policy.h"
#include "policy_int.h"

/* One request field as libwrap's string_match() and host_match() see it. */
struct field {
	char raw[POLICY_FIELD_MAX + 1];	/* cut to 127, "unknown" if not set */
	char low[POLICY_FIELD_MAX + 1];	/* lower-cased */
	size_t len;
	size_t strip;			/* 7 if "::ffff:" + dotted quad, else 0 */
	uint64_t hash;			/* pol_hash() of low + strip */
	int v6_state;			/* 0 not parsed yet, 1 parsed, -1 not IPv6 */
	struct in6_addr v6;		/* of raw + strip, for [v6] patterns */
	bool is_unknown;		/* "unknown", any case */
	bool is_paranoid;		/* "paranoid", any case */
	unsigned input;			/* enum request_input: which field of the request */
	unsigned *seen;			/* the query's inputs read so far */
};

/* A host endpoint (client or server): address and name, plus the parsed address. */
struct endpoint {
	struct field addr, name;
	bool v4_ok;			/* dotted quad, directly or as ::ffff:a.b.c.d */
	uint32_t v4;			/* network order */
	int a6_state;			/* the address for [net]/len: 0 unparsed, 1 ok, -1 no */
	struct in6_addr a6;
};

struct query {
	const struct request *req;
	struct field daemon, user;
	struct endpoint client, server;
	int server_port;
	unsigned inputs;		/* enum request_input: what the decision read */
};

/* set_field - copy (cut to 127) and lower-case one request field; reading it
 * later (read_field) adds `input` to *seen */
static void set_field(struct field *f, const char *v, unsigned input, unsigned *seen)
{
	if (!v || !*v)
		v = "unknown";
	size_t n = strnlen(v, POLICY_FIELD_MAX);

	memcpy(f->raw, v, n);
	f->raw[n] = '\0';
	for (size_t i = 0; i < n; i++)
		f->low[i] = (char)pol_lower((unsigned char)v[i]);
	f->low[n] = '\0';
	f->len = n;
	f->strip = pol_strip_mapped(f->raw);
	f->hash = pol_hash(f->low + f->strip, n - f->strip);
	f->v6_state = 0;
	f->is_unknown = n == 7 && memcmp(f->low, "unknown", 7) == 0;
	f->is_paranoid = n == 8 && memcmp(f->low, "paranoid", 8) == 0;
	f->input = input;
	f->seen = seen;
}

/* read_field - note that the decision depends on this field; returns it */
static inline struct field *read_field(struct field *f)
{
	*f->seen |= f->input;
	return f;
}

/* set_endpoint - an endpoint's fields and its IPv4 reading (masked_match4) */
static void set_endpoint(struct endpoint *e, const char *addr, const char *name,
			 unsigned addr_input, unsigned name_input, unsigned *seen)
{
	set_field(&e->addr, addr, addr_input, seen);
	set_field(&e->name, name, name_input, seen);
	e->v4_ok = pol_dot_quad(e->addr.raw, &e->v4);
	if (!e->v4_ok && e->addr.strip)
		e->v4_ok = pol_dot_quad(e->addr.raw + e->addr.strip, &e->v4);
	e->a6_state = 0;
}

/* field_v6 - the (stripped) field as an IPv6 address, parsed once */
static bool field_v6(struct field *f)
{
	if (!f->v6_state)
		f->v6_state = pol_parse_v6(f->raw + f->strip, &f->v6) ? 1 : -1;
	return f->v6_state > 0;
}

/* tail_eq - s[0..n) == t[0..n), compared from the end (suffixes differ there first) */
static inline bool tail_eq(const char *s, const char *t, size_t n)
{
	while (n) {
		n--;
		if (s[n] != t[n])
			return false;
	}
	return true;
}

/* head_eq - s[0..n) == t[0..n), compared from the start */
static inline bool head_eq(const char *s, const char *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != t[i])
			return false;
	return true;
}

/* string_match - libwrap's string_match(pattern, subject) on prepared data */
static inline bool string_match(const struct pattern *p, struct field *f)
{
	const char *s = f->low + f->strip;
	size_t n = f->len - f->strip;

	if (p->skind != STR_ALL)
		read_field(f);	/* ALL matches whatever the field holds */
	switch (p->skind) {
	case STR_GLOB:
		return pol_glob(s, p->low);
	case STR_SUFFIX:
		return n > p->len && tail_eq(s + n - p->len, p->low, p->len);
	case STR_ALL:
		return true;
	case STR_KNOWN:
		return !(n == 7 && memcmp(s, "unknown", 7) == 0);
	case STR_PREFIX:
		return n >= p->len && head_eq(s, p->low, p->len);
	case STR_V6:
		return p->valid && field_v6(f) && memcmp(&p->v6, &f->v6, sizeof(f->v6)) == 0;
	case STR_EXACT:
		return n == p->len && f->hash == p->hash && head_eq(s, p->low, n);
	}
	return false;
}

/* name_known - libwrap's HOSTNAME_KNOWN() */
static bool name_known(const struct field *name)
{
	return !name->is_unknown && !name->is_paranoid;
}

/* netgroup_domain - libwrap's yp_get_default_domain(), once per process */
static const char *netgroup_domain(void)
{
	static char domain[1025];
	static int state;	/* 0 unknown, 1 set, -1 none */

	if (!state) {
		if (getdomainname(domain, sizeof(domain) - 1) || !domain[0] || !strcmp(domain, "(none)"))
			state = -1;
		else
			state = 1;
	}
	return state > 0 ? domain : NULL;
}

/* netmask_match - host_match()'s net/mask branch */
static bool netmask_match(const struct pattern *p, struct endpoint *e)
{
	read_field(&e->addr);
	if (e->v4_ok) {
		/* masked_match4 on the address, or on its ::ffff: dotted tail;
		 * a dotted client never reaches the IPv6 branch */
		uint32_t net, mask;

		if (p->family != AF_INET || !p->valid)
			return false;
		memcpy(&net, &p->net.s6_addr[0], 4);
		memcpy(&mask, &p->mask.s6_addr[0], 4);
		return (e->v4 & mask) == net;
	}
	if (p->family != AF_INET6 || !p->valid)
		return false;
	if (!e->a6_state)
		e->a6_state = pol_parse_v6(e->addr.raw, &e->a6) ? 1 : -1;
	if (e->a6_state < 0)
		return false;
	for (int i = 0; i < 16; i++)
		if ((e->a6.s6_addr[i] & p->mask.s6_addr[i]) != p->net.s6_addr[i])
			return false;
	return true;
}

/* host_match - libwrap's host_match(pattern, endpoint) */
static bool host_match(const struct pattern *p, struct endpoint *e)
{
	switch (p->kind) {
	case PAT_NETGROUP:
		return innetgr(p->text + 1, read_field(&e->name)->raw, NULL, netgroup_domain()) == 1;
	case PAT_FILE:
		if (p->file_patterns)
			for (size_t i = 0; i < p->file_patterns->count; i++)
				if (host_match(&p->file_patterns->items[i], e))
					return true;
		return false;
	case PAT_KNOWN:
		return !read_field(&e->addr)->is_unknown && name_known(read_field(&e->name));
	case PAT_LOCAL:
		return !strchr(read_field(&e->name)->raw, '.') && name_known(&e->name);
	case PAT_NETMASK:
		return netmask_match(p, e);
	case PAT_STRING:
		return string_match(p, &e->addr) || (p->also_name && string_match(p, &e->name));
	case PAT_EXCEPT:
	case PAT_PORT:
		break;
	}
	return false;
}

/* daemon_match - server_match(): daemon part (port or string), then the server host */
static bool daemon_match(const struct pattern *p, struct query *q)
{
	bool m;

	if (p->kind == PAT_PORT) {
		q->inputs |= INPUT_SERVER_PORT;
		m = q->server_port > 0 && q->server_port == p->port;	/* 0 or -1: unknown */
	} else {
		m = string_match(p, &q->daemon);
	}
	return m && (!p->server || host_match(p->server, &q->server));
}

/* client_match - client_match(): host part, then the user part of user@host */
static bool client_match(const struct pattern *p, struct query *q)
{
	if (p->user)
		return host_match(p->host, &q->client) && string_match(p->user, &q->user);
	return host_match(p, &q->client);
}

/* list_match - libwrap's list_match(): first match, then EXCEPT a EXCEPT b = a EXCEPT (b EXCEPT c) */
static bool list_match(const struct pattern_list *l, size_t from, struct query *q,
		       bool (*fn)(const struct pattern *, struct query *))
{
	for (size_t i = from; i < l->count; i++) {
		if (l->items[i].kind == PAT_EXCEPT)
			return false;
		if (fn(&l->items[i], q)) {
			size_t j = i + 1;

			while (j < l->count && l->items[j].kind != PAT_EXCEPT)
				j++;
			return j == l->count || !list_match(l, j + 1, q, fn);
		}
	}
	return false;
}

/* setenv_fails - libwrap's setenv option for this request: the expanded name is empty or has '=' */
static bool setenv_fails(const struct rule_option *o, struct query *q)
{
	char buf[8192];
	const char *s;
	size_t n;

	q->inputs |= INPUT_ALL;	/* the expansion may read any field */
	if (expand_percent(o->value, q->req, getpid(), buf, sizeof(buf)) < 0)
		return false;	/* libwrap would exit here; nothing to decide */
	s = buf + strspn(buf, " \t\n\v\f\r");
	n = strcspn(s, " \t\r\n");
	return n == 0 || memchr(s, '=', n) != NULL;
}

/* fast_string - string_match() for a compact token */
static inline bool fast_string(const struct fast_pat *fp, struct field *f)
{
	const char *s = f->low + f->strip;
	size_t n = f->len - f->strip;

	if (fp->skind != STR_ALL)
		read_field(f);	/* ALL matches whatever the field holds */
	switch (fp->skind) {
	case STR_SUFFIX:
		return n > fp->len && tail_eq(s + n - fp->len, fp->low, fp->len);
	case STR_ALL:
		return true;
	case STR_PREFIX:
		return n >= fp->len && head_eq(s, fp->low, fp->len);
	case STR_EXACT:
		return n == fp->len && f->hash == fp->hash && head_eq(s, fp->low, n);
	default:
		return string_match(fp->p, f);
	}
}

/* fast_one - one compact token of a daemon (client=false) or client list */
static inline bool fast_one(const struct fast_pat *fp, struct query *q, bool client)
{
	switch (fp->op) {
	case FP_STR:
		return fast_string(fp, &q->daemon);
	case FP_HOSTSTR:
		return fast_string(fp, &q->client.addr) || (fp->also_name && fast_string(fp, &q->client.name));
	default:
		return client ? client_match(fp->p, q) : daemon_match(fp->p, q);
	}
}

/* fast_list - list_match() over compact tokens */
static bool fast_list(const struct fast_pat *items, size_t n, struct query *q, bool client)
{
	for (size_t i = 0; i < n; i++) {
		if (items[i].op == FP_EXCEPT)
			return false;
		if (fast_one(&items[i], q, client)) {
			size_t j = i + 1;

			while (j < n && items[j].op != FP_EXCEPT)
				j++;
			return j == n || !fast_list(items + j + 1, n - j - 1, q, client);
		}
	}
	return false;
}

enum { NO = 0, YES = 1, ERR = -1 };

/* table_match - libwrap's table_match(): YES with the rule, NO, or ERR */
static int table_match(const struct table *t, struct query *q, const struct rule **rule)
{
	*rule = NULL;
	if (t->state == TABLE_UNREADABLE)
		return ERR;
	for (size_t i = 0; i < t->n_rules; i++) {
		const struct rule *r = &t->rules[i];
		const struct rule_fast *f = r->fast;
		bool m;

		if (f)
			m = fast_list(f->items, f->n_daemons, q, false) &&
			    fast_list(f->items + f->n_daemons, f->n_clients, q, true);
		else
			m = list_match(&r->daemons, 0, q, daemon_match) && list_match(&r->clients, 0, q, client_match);
		if (m) {
			*rule = r;
			return YES;
		}
	}
	return t->cut_off ? ERR : NO;
}

/* rule_verdict - the matched rule's options: -1 deny, 1 allow, 0 the table's default */
static int rule_verdict(const struct rule *r, struct query *q, bool *option_error)
{
	*option_error = false;
	if (r->options_error) {
		*option_error = true;
		return -1;
	}
	if (r->options_dynamic)
		for (size_t i = 0; i < r->n_options; i++)
			if (r->options[i].kind == ROPT_SETENV && setenv_fails(&r->options[i], q)) {
				*option_error = true;
				return -1;
			}
	if (r->n_options) {
		enum rule_option_kind last = r->options[r->n_options - 1].kind;

		if (last == ROPT_ALLOW)
			return 1;
		if (last == ROPT_DENY)
			return -1;
	}
	return 0;
}

/* policy_evaluate - decide one request exactly as libwrap's hosts_access() */
void policy_evaluate(const struct policy *policy, const struct request *req, struct decision *out)
{
	struct query q;
	const struct rule *rule;
	bool option_error;

	q.req = req;
	q.inputs = 0;
	set_field(&q.daemon, req->daemon, INPUT_DAEMON, &q.inputs);
	set_field(&q.user, req->user, INPUT_USER, &q.inputs);
	set_endpoint(&q.client, req->client_addr, req->client_name, INPUT_CLIENT_ADDR,
		     INPUT_CLIENT_NAME, &q.inputs);
	set_endpoint(&q.server, req->server_addr, req->server_name, INPUT_SERVER_ADDR,
		     INPUT_SERVER_NAME, &q.inputs);
	q.server_port = req->server_port;

	const struct table *tabs[2] = { &policy->allow, &policy->deny };
	for (int i = 0; i < 2; i++) {
		int m = table_match(tabs[i], &q, &rule);

		if (m == YES) {
			int v = rule_verdict(rule, &q, &option_error);

			out->allow = v ? v > 0 : i == 0;
			out->reason = option_error ? REASON_OPTION_ERROR : REASON_RULE;
			out->rule = rule;
			out->table = tabs[i];
			out->inputs = q.inputs;
			return;
		}
		if (m == ERR && i == 1) {
			out->allow = false;
			out->reason = REASON_TABLE_ERROR;
			out->rule = NULL;
			out->table = tabs[i];
			out->inputs = q.inputs;
			return;
		}
	}
	out->allow = true;
	out->reason = REASON_DEFAULT;
	out->rule = NULL;
	out->table = NULL;
	out->inputs = q.inputs;
}
