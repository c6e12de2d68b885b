/*
 * lint.c - the analysis behind `bpfwrap check` (the command is
 * user/cli/check.c), the tcpdchk equivalent with better diagnostics.
 *
 * The parser (parse.c) already reports what libwrap itself complains about
 * (a cut-off table, bad options, a line without ':'). This module adds the
 * lint layer: every place where libwrap quietly does something else than the
 * reader expects -- a net/mask that never matches, an unbracketed IPv6
 * address, an indented '#', a rule that an earlier rule shadows, a hosts.deny
 * without a catch-all -- each at FILE:LINE:COL, with a hint where the fix is
 * obvious. docs/check.md lists every diagnostic.
 *
 * Errors are what makes libwrap deny or ignore something; warnings are what
 * makes a line mean something else than it seems to; notes are information.
 *
 * policy_lint() only reads the policy (and stat()s the /path and banners
 * files it names); it never prints and returns 0 or -ENOMEM.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "expand.h"
#include "lint.h"
#include "policy.h"

/* How deep /path files are followed for lint (they may name each other). */
#define FILE_DEPTH_MAX 4

/* How many patterns a note names before it says "...". */
#define NOTE_NAMES_MAX 4

struct lint {
	const struct policy *policy;
	struct diag_list *out;
	int err;		/* sticky: -ENOMEM once any allocation failed */
	/* out->items[parse_first..+parse_n) are the parser's, copied; a lint
	 * diagnostic that says the same thing better drops the parser's. */
	size_t parse_first, parse_n;
	bool *dropped;
};

/* Per rule: the patterns that need DNS or ident, for one note per rule. */
struct rule_needs {
	const struct pattern *dns[NOTE_NAMES_MAX];
	size_t n_dns;
	struct srcpos ident_pos;
	const char *ident_why;	/* first reason an ident lookup is needed, or NULL */
};

/* A parsed net/mask pattern, when it can match something. */
struct netp {
	int family;
	uint32_t net4, mask4;	/* host order */
	struct in6_addr net6;
	int plen6;
};

/* ---- diagnostics ---------------------------------------------------- */

/* xfmt - printf into a new string; NULL (and l->err set) when out of memory */
__attribute__((format(printf, 2, 3)))
static char *xfmt(struct lint *l, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		s = NULL;
		l->err = -ENOMEM;
	}
	va_end(ap);
	return s;
}

/* check_diag_push - append d (taking its strings) to list; 0 or -ENOMEM */
int check_diag_push(struct diag_list *list, const struct diag *d)
{
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 16;
		struct diag *items = realloc(list->items, cap * sizeof(*items));

		if (!items)
			return -ENOMEM;
		list->items = items;
		list->cap = cap;
	}
	list->items[list->count++] = *d;
	return 0;
}

/* emit - add one diagnostic; takes msg and hint (either may be NULL after ENOMEM) */
static void emit(struct lint *l, enum diag_severity sev, const struct srcpos *pos, char *msg,
		 char *hint)
{
	struct diag d = { .severity = sev, .pos = *pos, .message = msg, .hint = hint };

	if (!msg || check_diag_push(l->out, &d) < 0) {
		l->err = -ENOMEM;
		free(msg);
		free(hint);
	}
}

/* supersede - drop the parser's warnings at pos; or, with prefix, the first
 * parser diagnostic at or after pos->line whose message starts with it
 * (returned, still readable until drop_superseded) */
static const struct diag *supersede(struct lint *l, const struct srcpos *pos, const char *prefix)
{
	for (size_t i = 0; i < l->parse_n && l->dropped && l->parse_first + i < l->out->count; i++) {
		const struct diag *d = &l->out->items[l->parse_first + i];

		if (l->dropped[i] || !d->pos.file || !pos->file || strcmp(d->pos.file, pos->file))
			continue;
		if (prefix) {
			if (d->pos.line >= pos->line && d->message &&
			    !strncmp(d->message, prefix, strlen(prefix))) {
				l->dropped[i] = true;
				return d;
			}
		} else if (d->pos.line == pos->line && d->pos.col == pos->col &&
			   d->severity == DIAG_WARNING) {
			l->dropped[i] = true;
		}
	}
	return NULL;
}

/* at_col - pos on the same line as base, at column col */
static struct srcpos at_col(const struct srcpos *base, size_t col)
{
	struct srcpos p = *base;

	p.col = (unsigned)col;
	return p;
}

/* ---- small readers in libwrap's own syntax -------------------------- */

/* quad_parse - an IPv4 net or mask as libwrap reads it: exactly four parts in
 * inet_addr() syntax (octal, hex). 0, -EINVAL (not a quad) or -ERANGE
 * (255.255.255.255 is INADDR_NONE: libwrap takes it for an error).
 * *odd is set when a part is octal or hex. */
static int quad_parse(const char *s, size_t n, uint32_t *out, bool *odd)
{
	char buf[64];
	struct in_addr a;
	int dots = 0;

	*odd = false;
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.')
			dots++;
		else if (!isalnum((unsigned char)s[i]))
			return -EINVAL;
		if ((i == 0 || s[i - 1] == '.') && s[i] == '0' && i + 1 < n && s[i + 1] != '.')
			*odd = true;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (dots != 3 || !inet_aton(buf, &a))
		return -EINVAL;
	*out = ntohl(a.s_addr);
	return *out == 0xffffffffu ? -ERANGE : 0;
}

/* ntoa4 - dotted text of a host-order IPv4 address into buf */
static const char *ntoa4(uint32_t a, char buf[INET_ADDRSTRLEN])
{
	struct in_addr in = { .s_addr = htonl(a) };

	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

/* len_parse - a /len as libwrap reads it (atoi): the value, *rest = what atoi ignored */
static long len_parse(const char *s, const char **rest)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s)		/* no digits: atoi gives 0 and ignores it all */
		v = 0;
	*rest = end;
	return v;
}

/* prefix_mask4 - host-order mask of a /len, 1..32 */
static uint32_t prefix_mask4(long len)
{
	return len >= 32 ? 0xffffffffu : ~(0xffffffffu >> len);
}

/* v6_in_brackets - parse "[addr]..." (scope ignored); *after = past ']' */
static bool v6_in_brackets(const char *s, struct in6_addr *a, const char **after)
{
	char buf[INET6_ADDRSTRLEN + 64];
	const char *close = strchr(s, ']');
	size_t n;

	if (s[0] != '[' || !close)
		return false;
	n = (size_t)(close - s - 1);
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s + 1, n);
	buf[n] = '\0';
	buf[strcspn(buf, "%")] = '\0';
	*after = close + 1;
	return inet_pton(AF_INET6, buf, a) == 1;
}

/* v6_mapped - ::ffff:a.b.c.d? */
static bool v6_mapped(const struct in6_addr *a)
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return !memcmp(a->s6_addr, pfx, sizeof(pfx));
}

/* prefix6_eq - do a and b agree on their first plen bits? */
static bool prefix6_eq(const struct in6_addr *a, const struct in6_addr *b, int plen)
{
	for (int i = 0; i < 16 && plen > 8 * i; i++) {
		int bits = plen - 8 * i >= 8 ? 8 : plen - 8 * i;
		uint8_t m = (uint8_t)(0xff << (8 - bits));

		if ((a->s6_addr[i] ^ b->s6_addr[i]) & m)
			return false;
	}
	return true;
}

/* net_usable - parse a net/mask pattern; true when it can match a client */
static bool net_usable(const char *text, struct netp *n)
{
	const char *slash, *rest;
	bool odd;
	long len;

	memset(n, 0, sizeof(*n));
	if (text[0] == '[') {
		if (!v6_in_brackets(text, &n->net6, &rest) || rest[0] != '/')
			return false;
		len = len_parse(rest + 1, &rest);
		if (len < 0 || len > 128)
			return false;
		n->family = AF_INET6;
		n->plen6 = (int)len;
		return true;
	}
	slash = strchr(text, '/');
	if (!slash || quad_parse(text, (size_t)(slash - text), &n->net4, &odd) < 0)
		return false;
	if (strchr(slash + 1, '.')) {
		if (quad_parse(slash + 1, strlen(slash + 1), &n->mask4, &odd) < 0)
			return false;
	} else {
		len = len_parse(slash + 1, &rest);
		if (len < 1 || len > 32)
			return false;
		n->mask4 = prefix_mask4(len);
	}
	n->family = AF_INET;
	return (n->net4 & ~n->mask4) == 0;
}

/* also_name - libwrap's NOT_INADDR: a host pattern with a character other
 * than digits, '.' and '/' is matched against the host name too */
static bool also_name(const char *s)
{
	return s[strspn(s, "0123456789./")] != '\0';
}

/* is_plain_all - the ALL keyword, with no user@ or daemon@ part */
static bool is_plain_all(const struct pattern *p)
{
	return p->kind == PAT_STRING && p->skind == STR_ALL && !p->host && !p->server;
}

/* list_has_except - does the list use EXCEPT anywhere? */
static bool list_has_except(const struct pattern_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		if (list->items[i].kind == PAT_EXCEPT)
			return true;
	return false;
}

/* rule_denies - libwrap's verdict when this rule matches */
static bool rule_denies(const struct table *t, const struct rule *r)
{
	if (r->options_error)
		return true;
	for (size_t i = 0; i < r->n_options; i++) {
		if (r->options[i].kind == ROPT_DENY)
			return true;
		if (r->options[i].kind == ROPT_ALLOW)
			return false;
	}
	return t->is_deny;
}

/* ---- host patterns --------------------------------------------------- */

/* need_dns - remember a pattern that needs the client's host name */
static void need_dns(struct rule_needs *rn, const struct pattern *p)
{
	if (rn->n_dns < NOTE_NAMES_MAX)
		rn->dns[rn->n_dns] = p;
	rn->n_dns++;
}

/* need_ident - remember the first reason for an ident lookup */
static void need_ident(struct rule_needs *rn, const struct srcpos *pos, const char *why)
{
	if (!rn->ident_why) {
		rn->ident_pos = *pos;
		rn->ident_why = why;
	}
}

/* lint_net4 - an IPv4 net/mask: every way it can fail to mean what it says */
static void lint_net4(struct lint *l, const struct pattern *p)
{
	const char *text = p->text, *slash = strchr(text, '/'), *mtext = slash + 1, *rest;
	size_t nlen = (size_t)(slash - text);
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
	uint32_t net, mask;
	bool odd_net, odd_mask = false;
	long len = -1;
	int r;

	r = quad_parse(text, nlen, &net, &odd_net);
	if (r == -ERANGE) {
		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "net 255.255.255.255 is rejected by libwrap: `%s` never matches", text), NULL);
		return;
	}
	if (r < 0) {
		/* A short dotted net (10.0/8): say what it probably meant. */
		char padded[32];
		int dots = 0;
		bool digits = nlen > 0 && nlen < 16;

		for (size_t i = 0; digits && i < nlen; i++) {
			if (text[i] == '.')
				dots++;
			else if (!isdigit((unsigned char)text[i]))
				digits = false;
		}
		char *hint = NULL;
		if (digits && dots < 3 && text[nlen - 1] != '.') {
			snprintf(padded, sizeof(padded), "%.*s%s", (int)nlen, text,
				 dots == 0 ? ".0.0.0" : dots == 1 ? ".0.0" : ".0");
			hint = xfmt(l, "write the net as four parts: %s/%s", padded, mtext);
		}
		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "`%.*s` is not a dotted quad (a.b.c.d): `%s` never matches", (int)nlen,
			  text, text),
		     hint);
		return;
	}

	if (strchr(mtext, '.')) {
		r = quad_parse(mtext, strlen(mtext), &mask, &odd_mask);
		if (r == -ERANGE) {
			emit(l, DIAG_WARNING, &p->pos,
			     xfmt(l, "libwrap rejects the mask 255.255.255.255: `%s` never matches", text),
			     xfmt(l, "write %.*s/32", (int)nlen, text));
			return;
		}
		if (r < 0) {
			emit(l, DIAG_WARNING, &p->pos,
			     xfmt(l, "bad mask `%s`: `%s` never matches", mtext, text), NULL);
			return;
		}
	} else {
		len = len_parse(mtext, &rest);
		if (len == 0) {
			emit(l, DIAG_WARNING, &p->pos,
			     xfmt(l, "prefix length /%s reads as 0, and a /0 never matches an IPv4 client",
				  mtext),
			     xfmt(l, "use ALL"));
			return;
		}
		if (len < 0 || len > 32) {
			emit(l, DIAG_WARNING, &p->pos,
			     xfmt(l, "prefix length /%s is outside 1..32: `%s` never matches", mtext, text),
			     NULL);
			return;
		}
		if (*rest)
			emit(l, DIAG_WARNING, &p->pos,
			     xfmt(l, "libwrap reads the prefix length /%s as /%ld", mtext, len),
			     xfmt(l, "write %.*s/%ld", (int)nlen, text, len));
		mask = prefix_mask4(len);
	}

	if (odd_net || odd_mask) {
		ntoa4(net, a);
		ntoa4(mask, b);
		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "a leading 0 is octal and 0x hex to libwrap: `%s` is %s/%s", text, a, b),
		     xfmt(l, "write %s/%s if that is meant", a, b));
	}

	if (net & ~mask) {
		char *hint = len > 0 ? xfmt(l, "perhaps you meant %s/%ld", ntoa4(net & mask, a), len)
				     : xfmt(l, "perhaps you meant %s/%s", ntoa4(net & mask, a), mtext);

		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "the net in `%s` is not masked (host bits set), so this never matches",
			  text),
		     hint);
	}
}

/* lint_net6 - an [IPv6]/len net */
static void lint_net6(struct lint *l, const struct pattern *p)
{
	struct in6_addr a;
	const char *after, *rest;
	long len;

	if (!v6_in_brackets(p->text, &a, &after)) {
		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "`%s`: not an IPv6 address in brackets, never matches", p->text), NULL);
		return;
	}
	if (after[0] != '/')
		return;
	len = len_parse(after + 1, &rest);
	if (rest == after + 1) {
		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "prefix length /%s reads as 0: `%s` matches every IPv6 client", after + 1,
			  p->text),
		     xfmt(l, "give a length, e.g. /64"));
		return;
	}
	if (len < 0 || len > 128) {
		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "prefix length /%s is outside 0..128: `%s` never matches", after + 1,
			  p->text),
		     NULL);
		return;
	}
	if (*rest)
		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "libwrap reads the prefix length /%s as /%ld", after + 1, len),
		     xfmt(l, "write %.*s/%ld", (int)(after - p->text), p->text, len));
	if (v6_mapped(&a) && len >= 96) {
		char v4[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &a.s6_addr[12], v4, sizeof(v4));
		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "IPv4 clients (also as ::ffff:a.b.c.d) never match an IPv6 net: `%s` "
			     "never matches",
			  p->text),
		     xfmt(l, "write %s/%ld", v4, len - 96));
	}
}

static void lint_host(struct lint *l, const struct table *t, const struct rule *r,
		      const struct pattern *p, bool grants, int depth, struct rule_needs *rn);

/* lint_file - a /path pattern: missing, empty, and the patterns inside */
static void lint_file(struct lint *l, const struct table *t, const struct rule *r,
		      const struct pattern *p, bool grants, int depth, struct rule_needs *rn)
{
	struct stat st;

	if (!p->file_patterns)
		return;		/* unreadable: the parser said so */
	if (p->file_patterns->count > 0) {
		if (depth < FILE_DEPTH_MAX)
			for (size_t i = 0; i < p->file_patterns->count; i++)
				lint_host(l, t, r, &p->file_patterns->items[i], grants, depth + 1, rn);
		return;
	}
	if (stat(p->text, &st) == 0)
		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "%s holds no patterns: this pattern never matches", p->text), NULL);
}

/* lint_string_host - a host pattern that libwrap string-matches */
static void lint_string_host(struct lint *l, const struct pattern *p, bool grants,
			     struct rule_needs *rn)
{
	const char *s = p->text;
	size_t n = strlen(s);
	struct in6_addr a6;
	const char *after;
	uint32_t a4;
	bool odd;

	if (!strcasecmp(s, "FAIL")) {
		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "FAIL is no longer a keyword: it is matched as a host named `FAIL`"),
		     xfmt(l, "use EXCEPT"));
		return;
	}
	if (!strcasecmp(s, "UNKNOWN") || !strcasecmp(s, "PARANOID")) {
		need_dns(rn, p);
		if (grants)
			emit(l, DIAG_WARNING, &p->pos,
			     xfmt(l, "%s grants access to clients whose %s: whoever controls their DNS "
				     "can arrange that",
				  s, !strcasecmp(s, "UNKNOWN") ? "name or address lookup fails"
							       : "name and address do not match"),
			     NULL);
		return;
	}

	switch (p->skind) {
	case STR_ALL:
		return;
	case STR_V6:
		if (v6_in_brackets(s, &a6, &after) && v6_mapped(&a6)) {
			char v4[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &a6.s6_addr[12], v4, sizeof(v4));
			emit(l, DIAG_WARNING, &p->pos,
			     xfmt(l, "`%s` never matches: libwrap sees a mapped client as %s", s, v4),
			     xfmt(l, "write %s", v4));
		}
		return;
	case STR_EXACT:
		if (!also_name(s) && quad_parse(s, n, &a4, &odd) == 0 &&
		    inet_pton(AF_INET, s, &a6) != 1) {
			char v4[INET_ADDRSTRLEN];

			emit(l, DIAG_WARNING, &p->pos,
			     xfmt(l, "`%s` is compared as text with the client address, so it never "
				     "matches",
				  s),
			     xfmt(l, "write %s", ntoa4(a4, v4)));
			return;
		}
		break;
	case STR_PREFIX:
		if (also_name(s))
			emit(l, DIAG_WARNING, &p->pos,
			     xfmt(l, "`%s` ends in a dot: it matches names that start with it, not a domain",
				  s),
			     xfmt(l, "for the domain write .%.*s", (int)(n - 1), s));
		break;
	case STR_GLOB:
		if (grants && !strpbrk(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-[:"))
			emit(l, DIAG_WARNING, &p->pos,
			     xfmt(l, "the wildcard `%s` is matched against the client's host name too: a "
				     "host named like %s.attacker.example matches it",
				  s, s),
			     xfmt(l, "match addresses with a net/mask or a prefix ending in '.'"));
		break;
	case STR_SUFFIX:
	case STR_KNOWN:
		break;
	}
	if (n > POLICY_FIELD_MAX && p->skind != STR_GLOB)
		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "this pattern is %zu characters, but libwrap cuts names to %d: it never "
			     "matches",
			  n, POLICY_FIELD_MAX),
		     NULL);
	if (also_name(s) && p->skind != STR_V6)
		need_dns(rn, p);
}

/* lint_host - one host pattern (client list, user@host, daemon@host, /path word) */
static void lint_host(struct lint *l, const struct table *t, const struct rule *r,
		      const struct pattern *p, bool grants, int depth, struct rule_needs *rn)
{
	if (p->host) {		/* user@host */
		if (grants && !(p->user && p->user->kind == PAT_STRING && p->user->skind == STR_ALL))
			emit(l, DIAG_WARNING, &p->pos,
			     xfmt(l, "`%s`: the user name comes from the client's own ident server, so "
				     "whoever runs the client can claim any user",
				  p->text),
			     NULL);
		need_ident(rn, &p->pos, "user@host pattern");
		lint_host(l, t, r, p->host, grants, depth, rn);
		return;
	}
	switch (p->kind) {
	case PAT_EXCEPT:
	case PAT_PORT:
		return;
	case PAT_NETGROUP:
	case PAT_KNOWN:
	case PAT_LOCAL:
		need_dns(rn, p);
		return;
	case PAT_FILE:
		lint_file(l, t, r, p, grants, depth, rn);
		return;
	case PAT_NETMASK: {
		size_t before = l->out->count;

		if (p->text[0] == '[')
			lint_net6(l, p);
		else if (strchr(p->text, '/'))
			lint_net4(l, p);
		if (l->out->count > before)	/* more precise than the parser's "bad net/mask" */
			supersede(l, &p->pos, NULL);
		return;
	}
	case PAT_STRING:
		lint_string_host(l, p, grants, rn);
		return;
	}
}

/* ---- daemon patterns ------------------------------------------------- */

/* looks_like_host - would a reader take this daemon pattern for a client? */
static bool looks_like_host(const char *s)
{
	struct in6_addr a6;

	if (s[0] == '[' || s[0] == '.' || s[0] == '@')
		return true;
	if (!strcasecmp(s, "LOCAL") || !strcasecmp(s, "UNKNOWN") || !strcasecmp(s, "PARANOID"))
		return true;
	if (inet_pton(AF_INET6, s, &a6) == 1)
		return true;
	/* digits, dots (and a /mask) with at least one dot: an address, prefix or net */
	return s[strspn(s, "0123456789./")] == '\0' && strchr(s, '.');
}

/* lint_daemon - one daemon pattern */
static void lint_daemon(struct lint *l, const struct table *t, const struct rule *r,
			const struct pattern *p, bool grants, struct rule_needs *rn)
{
	const char *s = p->text;

	if (p->server) {	/* daemon@host: the host part is a host pattern */
		lint_host(l, t, r, p->server, grants, 0, rn);
		return;
	}
	if (p->kind != PAT_STRING)
		return;
	if (s[0] == '/') {
		const char *base = strrchr(s, '/') + 1;

		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "daemon names are compared whole: `%s` never matches", s),
		     *base ? xfmt(l, "write %s", base) : NULL);
		return;
	}
	if (looks_like_host(s)) {
		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "`%s` in the daemon list looks like a client: the daemon list comes first",
			  s),
		     xfmt(l, "write `daemon : %s`", s));
		return;
	}
	if (strlen(s) > POLICY_FIELD_MAX && p->skind != STR_GLOB)
		emit(l, DIAG_WARNING, &p->pos,
		     xfmt(l, "this pattern is %zu characters, but libwrap cuts names to %d: it never "
			     "matches",
			  strlen(s), POLICY_FIELD_MAX),
		     NULL);
}

/* ---- lists, options, rules ------------------------------------------- */

/* lint_list - EXCEPT misuse, then each pattern (empty lists: the parser) */
static void lint_list(struct lint *l, const struct table *t, const struct rule *r,
		      const struct pattern_list *list, bool is_daemons, struct rule_needs *rn)
{
	const char *what = is_daemons ? "daemon" : "client";
	bool allows = !rule_denies(t, r);
	int excepts = 0;

	if (list->count == 0)
		return;		/* the parser says "empty list" */
	if (list->items[0].kind == PAT_EXCEPT) {
		emit(l, DIAG_WARNING, &list->items[0].pos,
		     xfmt(l, "the %s list starts with EXCEPT, so it never matches: this rule is never "
			     "used",
			  what),
		     xfmt(l, "write `ALL EXCEPT ...`"));
		return;
	}
	for (size_t i = 0; i < list->count; i++) {
		const struct pattern *p = &list->items[i];

		if (p->kind == PAT_EXCEPT) {
			excepts++;
			if (i + 1 == list->count)
				emit(l, DIAG_WARNING, &p->pos,
				     xfmt(l, "nothing follows EXCEPT: it excludes nothing"), NULL);
			else if (list->items[i + 1].kind == PAT_EXCEPT)
				emit(l, DIAG_WARNING, &list->items[i + 1].pos,
				     xfmt(l, "EXCEPT EXCEPT: the list after the first EXCEPT never "
					     "matches, so it excludes nothing"),
				     NULL);
			continue;
		}
		/* A pattern grants access when the rule allows and it is not excepted. */
		bool grants = allows && excepts % 2 == 0;

		if (is_daemons)
			lint_daemon(l, t, r, p, grants, rn);
		else
			lint_host(l, t, r, p, grants, 0, rn);
	}
}

/* lint_options - options that libwrap accepts but that surprise */
static void lint_options(struct lint *l, const struct table *t, const struct rule *r,
			 struct rule_needs *rn)
{
	for (size_t i = 0; i < r->n_options; i++) {
		const struct rule_option *o = &r->options[i];
		struct stat st;
		size_t bad;

		switch (o->kind) {
		case ROPT_DENY:
			if (!t->is_deny)
				emit(l, DIAG_NOTE, &o->pos,
				     xfmt(l, "`deny` in hosts.allow: matching requests are denied here "
					     "and never reach hosts.deny"),
				     NULL);
			break;
		case ROPT_ALLOW:
			if (t->is_deny)
				emit(l, DIAG_NOTE, &o->pos,
				     xfmt(l, "`allow` in hosts.deny: matching requests are allowed"), NULL);
			break;
		case ROPT_TWIST:
			if (!rule_denies(t, r))
				emit(l, DIAG_NOTE, &o->pos,
				     xfmt(l, "twist replaces the service: matching clients get the "
					     "command, not the daemon"),
				     NULL);
			__attribute__((fallthrough));	/* and its % expansions */
		case ROPT_SPAWN:
			if (!o->value)
				break;
			for (size_t off = 0; expand_check(o->value + off, &bad) < 0;) {
				char c = o->value[off + bad + 1];

				emit(l, DIAG_WARNING, &o->pos,
				     xfmt(l, "unknown expansion %%%c expands to nothing", c ? c : ' '),
				     xfmt(l, "write %%%% for a percent sign"));
				off += bad + (c ? 2 : 1);
			}
			if (strstr(o->value, "%u") || strstr(o->value, "%c"))
				need_ident(rn, &o->pos, "%u/%c expansion");
			break;
		case ROPT_BANNERS:
			if (!o->value)
				break;
			if (stat(o->value, &st) < 0)
				emit(l, DIAG_WARNING, &o->pos,
				     xfmt(l, "banners directory %s: %s: no banner is sent", o->value,
					  strerror(errno)),
				     NULL);
			else if (!S_ISDIR(st.st_mode))
				emit(l, DIAG_WARNING, &o->pos,
				     xfmt(l, "banners %s is not a directory: no banner is sent", o->value),
				     NULL);
			break;
		case ROPT_RFC931:
			need_ident(rn, &o->pos, "rfc931 option");
			break;
		default:
			break;
		}
	}
}

/* lint_comment_like - an indented '#': libwrap reads a rule */
static void lint_comment_like(struct lint *l, const struct rule *r)
{
	size_t lead = strspn(r->text, " \t");

	if (lead > 0 && r->text[lead] == '#') {
		struct srcpos pos = at_col(&r->pos, lead + 1);

		emit(l, DIAG_WARNING, &pos,
		     xfmt(l, "this line is a rule, not a comment: `%s`", r->text + lead),
		     xfmt(l, "only # in column 1 starts a comment: remove the blanks before it"));
	}
}

/* lint_v6_spill - an unbracketed IPv6 address: libwrap splits it at ':' and
 * reads the rest as options */
static void lint_v6_spill(struct lint *l, const struct rule *r)
{
	const char *s = r->text;
	size_t colon[2], nc = 0, start, end;
	int bracket = 0;
	char cand[INET6_ADDRSTRLEN + 16], addr[INET6_ADDRSTRLEN + 16];
	struct in6_addr a6;

	for (size_t i = 0; s[i] && nc < 2; i++) {
		if (s[i] == '[')
			bracket++;
		else if (s[i] == ']')
			bracket--;
		else if (s[i] == ':' && bracket == 0)
			colon[nc++] = i;
	}
	if (nc < 2)
		return;
	/* The token in front of the second ':' (after any user@) ... */
	start = colon[1];
	while (start > colon[0] + 1 && !strchr(" \t,\r\n@", s[start - 1]))
		start--;
	/* ... and the address characters behind it. */
	end = colon[1] + 1;
	while (s[end] && (isxdigit((unsigned char)s[end]) || strchr(":./", s[end])))
		end++;
	if (end - start >= sizeof(cand))
		return;
	for (size_t i = start; i < colon[1]; i++)
		if (!isxdigit((unsigned char)s[i]))
			return;
	snprintf(cand, sizeof(cand), "%.*s", (int)(end - start), s + start);
	snprintf(addr, sizeof(addr), "%.*s", (int)strcspn(cand, "/"), cand);
	if (inet_pton(AF_INET6, addr, &a6) != 1)
		return;

	/* Its column: the last client pattern if that is the token's start. */
	struct srcpos pos = at_col(&r->pos, start + 1);
	const struct pattern_list *cl = &r->clients;

	if (cl->count > 0) {
		const struct pattern *last = &cl->items[cl->count - 1];
		const char *t = last->host ? last->host->text : last->text;

		if (strlen(t) == colon[1] - start && !strncmp(t, s + start, colon[1] - start))
			pos = last->host ? last->host->pos : last->pos;
	}
	const char *slash = strchr(cand, '/');

	if (r->options_error && r->options_error_msg)
		supersede(l, &r->pos, r->options_error_msg);	/* "bad option name" says less */
	emit(l, r->options_error ? DIAG_ERROR : DIAG_WARNING, &pos,
	     xfmt(l, "IPv6 address %s without brackets: libwrap splits it at ':' and reads the rest "
		     "as options%s",
		  cand, r->options_error ? ", then denies every request this rule matches" : ""),
	     v6_mapped(&a6) && !slash ? xfmt(l, "write %s", addr + 7)
				      : xfmt(l, "write [%s]%s", addr, slash ? slash : ""));
}

/* edit_distance - Levenshtein distance of two short lower-case words (capped at 9) */
static unsigned edit_distance(const char *a, const char *b)
{
	unsigned row[32], n = (unsigned)strlen(b);

	if (strlen(a) >= 31 || n >= 31)
		return 9;
	for (unsigned j = 0; j <= n; j++)
		row[j] = j;
	for (unsigned i = 1; a[i - 1]; i++) {
		unsigned diag = row[0];

		row[0] = i;
		for (unsigned j = 1; j <= n; j++) {
			unsigned up = row[j];
			unsigned best = diag + (tolower((unsigned char)a[i - 1]) != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[n] > 9 ? 9 : row[n];
}

/* lint_option_name - a misspelt option: the parser's error, with "did you mean" */
static void lint_option_name(struct lint *l, const struct rule *r)
{
	static const char *const names[] = {
		"allow", "deny", "spawn", "twist", "banners", "severity", "keepalive", "linger",
		"rfc931", "nice", "umask", "user", "group", "setenv", "aclexec",
	};
	static const char prefix[] = "bad option name: \"";
	const char *msg = r->options_error_msg, *best = NULL;
	char name[32];
	unsigned best_d = 3;	/* at most 2 edits */
	const struct diag *d;

	if (!r->options_error || !msg || strncmp(msg, prefix, sizeof(prefix) - 1))
		return;
	snprintf(name, sizeof(name), "%.*s", (int)strcspn(msg + sizeof(prefix) - 1, "\""),
		 msg + sizeof(prefix) - 1);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		unsigned dist = edit_distance(name, names[i]);

		if (dist < best_d) {
			best_d = dist;
			best = names[i];
		}
	}
	if (!best || !(d = supersede(l, &r->pos, msg)))
		return;
	emit(l, d->severity, &d->pos, xfmt(l, "%s", d->message), xfmt(l, "did you mean `%s`?", best));
}

/* emit_needs - the rule's one note about DNS and one about ident */
static void emit_needs(struct lint *l, const struct rule_needs *rn)
{
	if (rn->n_dns > 0) {
		char names[512] = "";
		size_t used = 0;

		for (size_t i = 0; i < rn->n_dns && i < NOTE_NAMES_MAX; i++) {
			int n = snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
					 rn->dns[i]->text);

			if (n < 0 || (size_t)n >= sizeof(names) - used)
				break;
			used += (size_t)n;
		}
		emit(l, DIAG_NOTE, &rn->dns[0]->pos,
		     xfmt(l, "needs the client's host name (reverse and forward DNS): %s%s", names,
			  rn->n_dns > NOTE_NAMES_MAX ? ", ..." : ""),
		     NULL);
	}
	if (rn->ident_why)
		emit(l, DIAG_NOTE, &rn->ident_pos,
		     xfmt(l, "%s: needs an ident (RFC 931) query to the client", rn->ident_why), NULL);
}

/* lint_rule - everything about one rule on its own */
static void lint_rule(struct lint *l, const struct table *t, const struct rule *r)
{
	struct rule_needs rn = { 0 };
	struct rule own;
	struct pattern d0, c0;

	/* a one-token list shared with an earlier rule (policy.h) carries that
	 * rule's line: lint a copy that points at this rule's line */
	if ((r->daemons.count == 1 && r->daemons.items[0].pos.line < r->pos.line) ||
	    (r->clients.count == 1 && r->clients.items[0].pos.line < r->pos.line)) {
		own = *r;
		if (r->daemons.count == 1 && r->daemons.items[0].pos.line < r->pos.line) {
			d0 = r->daemons.items[0];
			d0.pos.line = r->pos.line;
			own.daemons.items = &d0;
		}
		if (r->clients.count == 1 && r->clients.items[0].pos.line < r->pos.line) {
			c0 = r->clients.items[0];
			c0.pos.line = r->pos.line;
			own.clients.items = &c0;
		}
		r = &own;
	}
	lint_comment_like(l, r);
	lint_v6_spill(l, r);
	lint_option_name(l, r);
	lint_list(l, t, r, &r->daemons, true, &rn);
	lint_list(l, t, r, &r->clients, false, &rn);
	lint_options(l, t, r, &rn);
	emit_needs(l, &rn);
}

/* ---- shadowing --------------------------------------------------------- */

/* prefix4_covers - does a digits-only prefix "a.b." cover every address of net n? */
static bool prefix4_covers(const char *prefix, const struct netp *n)
{
	uint32_t val = 0, top;
	int k = 0;
	const char *s = prefix;

	while (*s) {
		char *end;
		unsigned long v;

		if (!isdigit((unsigned char)*s) || (s[0] == '0' && isdigit((unsigned char)s[1])))
			return false;
		v = strtoul(s, &end, 10);
		if (v > 255 || *end != '.' || k == 3)
			return false;
		val = val << 8 | (uint32_t)v;
		k++;
		s = end + 1;
	}
	if (k == 0)
		return false;
	top = ~(0xffffffffu >> (8 * k));
	val <<= 32 - 8 * k;
	return (n->mask4 & top) == top && (n->net4 & top) == val;
}

/* host_covers - does host pattern a match every client that b matches? */
static bool host_covers(const struct pattern *a, const struct pattern *b)
{
	struct netp na, nb;
	struct in6_addr v6;
	struct in_addr v4;
	const char *after;
	size_t la = strlen(a->text), lb = strlen(b->text);

	if (a->kind == PAT_EXCEPT || b->kind == PAT_EXCEPT)
		return false;
	if (a->kind == b->kind && !strcmp(a->text, b->text))
		return true;
	if (a->kind == PAT_STRING && a->skind == STR_ALL)
		return true;
	if (a->kind == PAT_STRING && b->kind == PAT_STRING && a->skind == b->skind &&
	    a->skind != STR_GLOB && !strcasecmp(a->text, b->text))
		return true;

	if (a->kind == PAT_NETMASK && net_usable(a->text, &na)) {
		if (b->kind == PAT_NETMASK && net_usable(b->text, &nb) && nb.family == na.family) {
			if (na.family == AF_INET)
				return (nb.mask4 & na.mask4) == na.mask4 &&
				       (nb.net4 & na.mask4) == na.net4;
			return nb.plen6 >= na.plen6 && prefix6_eq(&na.net6, &nb.net6, na.plen6);
		}
		if (b->kind == PAT_STRING && b->skind == STR_EXACT && na.family == AF_INET &&
		    inet_pton(AF_INET, b->text, &v4) == 1)
			return (ntohl(v4.s_addr) & na.mask4) == na.net4;
		if (b->kind == PAT_STRING && b->skind == STR_V6 && na.family == AF_INET6 &&
		    v6_in_brackets(b->text, &v6, &after) && !*after)
			return prefix6_eq(&na.net6, &v6, na.plen6);
		return false;
	}
	if (a->kind != PAT_STRING || b->kind == PAT_EXCEPT)
		return false;
	/* b may match the host name only if a does too. */
	if (b->kind == PAT_STRING && also_name(b->text) && !also_name(a->text))
		return false;
	if (a->skind == STR_PREFIX && !also_name(a->text)) {
		if (b->kind == PAT_NETMASK)
			return net_usable(b->text, &nb) && nb.family == AF_INET &&
			       prefix4_covers(a->text, &nb);
		return b->kind == PAT_STRING && (b->skind == STR_EXACT || b->skind == STR_PREFIX) &&
		       !strncasecmp(a->text, b->text, la);
	}
	if (a->skind == STR_SUFFIX)
		return b->kind == PAT_STRING && (b->skind == STR_EXACT || b->skind == STR_SUFFIX) &&
		       lb > la && !strcasecmp(b->text + lb - la, a->text);
	return false;
}

/* client_covers - does client pattern a match every client that b matches? */
static bool client_covers(const struct pattern *a, const struct pattern *b)
{
	if (a->host) {		/* user@host covers only user@host */
		if (!b->host || !a->user || !b->user)
			return false;
		bool users = (a->user->kind == PAT_STRING && a->user->skind == STR_ALL) ||
			     !strcasecmp(a->user->text, b->user->text);
		return users && host_covers(a->host, b->host);
	}
	return host_covers(a, b->host ? b->host : b);
}

/* daemon_covers - does daemon pattern a match every daemon that b matches? */
static bool daemon_covers(const struct pattern *a, const struct pattern *b)
{
	if (is_plain_all(a))
		return true;
	if (a->server || b->server)
		return !strcasecmp(a->text, b->text) && a->kind == b->kind;
	if (a->kind == PAT_PORT && b->kind == PAT_PORT)
		return a->port == b->port;
	return a->kind == PAT_STRING && b->kind == PAT_STRING && a->skind == b->skind &&
	       a->skind != STR_GLOB && a->skind != STR_KNOWN && !strcasecmp(a->text, b->text);
}

/* list_covers - does list a (no EXCEPT) match everything list b matches?
 * b's patterns after its first EXCEPT only take away, so they are ignored. */
static bool list_covers(const struct pattern_list *a, const struct pattern_list *b, bool daemons)
{
	size_t n = 0;

	for (; n < b->count && b->items[n].kind != PAT_EXCEPT; n++) {
		bool covered = false;

		for (size_t i = 0; i < a->count && !covered; i++)
			covered = daemons ? daemon_covers(&a->items[i], &b->items[n])
					  : client_covers(&a->items[i], &b->items[n]);
		if (!covered)
			return false;
	}
	return n > 0;
}

struct ref {
	const struct table *t;
	const struct rule *r;
};

/* shadow_candidate - can this rule shadow later ones (simple enough to judge)? */
static bool shadow_candidate(const struct rule *r)
{
	return r->daemons.count > 0 && r->clients.count > 0 && !list_has_except(&r->daemons) &&
	       !list_has_except(&r->clients);
}

/* report_shadow - rule `late` never decides anything: `early` decides first */
static void report_shadow(struct lint *l, const struct ref *early, const struct ref *late)
{
	bool d1 = rule_denies(early->t, early->r), d2 = rule_denies(late->t, late->r);
	const char *where = early->r->pos.file;

	if (d1 == d2)
		emit(l, DIAG_WARNING, &late->r->pos,
		     xfmt(l, "redundant: %s:%u already %s every request this rule matches", where,
			  early->r->pos.line, d1 ? "denies" : "allows"),
		     xfmt(l, "remove it"));
	else
		emit(l, DIAG_WARNING, &late->r->pos,
		     xfmt(l, "never used: %s:%u already %s every request this rule would %s", where,
			  early->r->pos.line, d1 ? "denies" : "allows", d2 ? "deny" : "allow"),
		     early->t == late->t ? xfmt(l, "move it above line %u", early->r->pos.line)
					 : xfmt(l, "remove it, or narrow %s:%u", where,
						early->r->pos.line));
}

/*
 * The shadow index. Comparing every rule with every earlier one is
 * quadratic (a 1,000,000-rule fail2ban file never finishes), so each
 * candidate rule E is filed under a 64-bit key per (daemon item, client
 * item) pair, built from what decides whether that item covers another:
 * ALL, the exact pattern, an IPv4/IPv6 net and its prefix length, a
 * "a.b." prefix, a ".suffix". A later rule L looks up only the keys whose
 * patterns could cover its first daemon and first client item (ALL, the
 * same text, the nets that contain its address: at most 33 IPv4 prefix
 * lengths, its dotted prefixes and suffixes), and every candidate found is
 * confirmed with list_covers() itself: the index only narrows the search,
 * so the answer (the earliest covering rule) is the pairwise one. Rules it
 * cannot key (user@host patterns, a non-contiguous IPv4 mask, too many
 * items) are compared pairwise, within a work budget; when the budget or a
 * bucket scan runs out, check says so in a note.
 */

/* Key pairs filed per rule; a rule with more is compared pairwise. */
#define SHADOW_PAIRS_MAX 256
/* list_covers() calls spent on rules the index cannot key, in all. */
#define SHADOW_WORK_MAX 20000000UL
/* Rules confirmed per bucket and lookup before giving up on that bucket. */
#define SHADOW_BUCKET_SCAN 64
/* Keys one pattern can have / can be covered through. */
#define KEYS_MAX 4400

struct sh_slot {
	uint64_t key;		/* 0: empty */
	uint32_t head, tail;	/* entries, in rule order */
};

struct sh_entry {
	uint32_t rule;		/* index into the refs */
	uint32_t next;		/* next entry of the bucket, or UINT32_MAX */
};

struct shadow_index {
	struct sh_slot *slots;
	size_t cap, used;	/* cap: a power of two */
	struct sh_entry *ent;
	size_t n_ent, cap_ent;
	uint64_t n4_lens;	/* IPv4 prefix lengths 0..32 filed */
	bool any_v6, any_prefix, any_suffix;
};

enum { KT_DALL = 1, KT_DSERVER, KT_DPORT, KT_DSTR, KT_CALL, KT_CTEXT, KT_CSTR, KT_N4, KT_N6,
       KT_PREFIX, KT_SUFFIX };

/* key_mix - a 64-bit finalizer (splitmix64) */
static uint64_t key_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* key_text - key of a kind tag, a number and text (lower-cased when fold) */
static uint64_t key_text(int tag, uint64_t num, const char *s, size_t n, bool fold)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)tag;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		h = (h ^ (fold ? (unsigned char)tolower(c) : c)) * 0x100000001b3ULL;
	}
	return key_mix(h ^ key_mix(num + ((uint64_t)tag << 56)));
}

/* key_n4 - key of an IPv4 net (host order, already masked) and its prefix length */
static uint64_t key_n4(uint32_t net, unsigned len)
{
	return key_mix(((uint64_t)KT_N4 << 56) ^ ((uint64_t)len << 32) ^ net);
}

/* key_n6 - key of an IPv6 net masked to len bits */
static uint64_t key_n6(const struct in6_addr *a, unsigned len)
{
	uint8_t b[16];

	memcpy(b, a->s6_addr, 16);
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = len > 8 * i ? len - 8 * i : 0;

		b[i] &= bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
	}
	return key_text(KT_N6, len, (const char *)b, 16, false);
}

/* lead_ones - how many leading one bits a host-order mask has */
static unsigned lead_ones(uint32_t m)
{
	unsigned n = 0;

	while (n < 32 && (m & (0x80000000u >> n)))
		n++;
	return n;
}

/* daemon_key - the key of an earlier rule's daemon item; false if it covers nothing (glob, KNOWN) */
static bool daemon_key(const struct pattern *a, uint64_t *key)
{
	size_t n = strlen(a->text);

	if (is_plain_all(a))
		*key = key_text(KT_DALL, 0, "", 0, false);
	else if (a->server)
		*key = key_text(KT_DSERVER, (uint64_t)a->kind, a->text, n, true);
	else if (a->kind == PAT_PORT)
		*key = key_text(KT_DPORT, a->port, "", 0, false);
	else if (a->kind == PAT_STRING && a->skind != STR_GLOB && a->skind != STR_KNOWN)
		*key = key_text(KT_DSTR, (uint64_t)a->skind, a->text, n, true);
	else
		return false;	/* a glob or KNOWN daemon covers nothing (daemon_covers) */
	return true;
}

/* daemon_lookups - keys of every early daemon item that may cover b */
static size_t daemon_lookups(const struct pattern *b, uint64_t *keys)
{
	size_t k = 0, n = strlen(b->text);

	keys[k++] = key_text(KT_DALL, 0, "", 0, false);
	if (b->server)
		keys[k++] = key_text(KT_DSERVER, (uint64_t)b->kind, b->text, n, true);
	else if (b->kind == PAT_PORT)
		keys[k++] = key_text(KT_DPORT, b->port, "", 0, false);
	else if (b->kind == PAT_STRING && b->skind != STR_GLOB && b->skind != STR_KNOWN &&
		 b->skind != STR_ALL)
		keys[k++] = key_text(KT_DSTR, (uint64_t)b->skind, b->text, n, true);
	return k;
}

/* client_keys - the keys of an early client item (up to 2); -1 if it cannot be keyed */
static int client_keys(struct shadow_index *ix, const struct pattern *a, uint64_t *keys)
{
	size_t n = strlen(a->text);
	struct netp na;
	int k = 0;

	if (a->host || a->kind == PAT_EXCEPT)
		return -1;	/* user@host: compared pairwise */
	if (a->kind == PAT_STRING && a->skind == STR_ALL) {
		keys[0] = key_text(KT_CALL, 0, "", 0, false);
		return 1;
	}
	if (a->kind == PAT_STRING && a->skind != STR_GLOB)
		keys[k++] = key_text(KT_CSTR, (uint64_t)a->skind, a->text, n, true);
	else
		keys[k++] = key_text(KT_CTEXT, (uint64_t)a->kind, a->text, n, false);
	if (a->kind == PAT_NETMASK && net_usable(a->text, &na)) {
		if (na.family == AF_INET) {
			unsigned len = lead_ones(na.mask4);

			if (len < 32 && (na.mask4 << len))
				return -1;	/* non-contiguous mask: pairwise */
			keys[k++] = key_n4(na.net4, len);
			ix->n4_lens |= 1ULL << len;
		} else {
			keys[k++] = key_n6(&na.net6, (unsigned)na.plen6);
			ix->any_v6 = true;
		}
	} else if (a->kind == PAT_STRING && a->skind == STR_PREFIX && !also_name(a->text)) {
		keys[k++] = key_text(KT_PREFIX, 0, a->text, n, true);
		ix->any_prefix = true;
	} else if (a->kind == PAT_STRING && a->skind == STR_SUFFIX) {
		keys[k++] = key_text(KT_SUFFIX, 0, a->text, n, true);
		ix->any_suffix = true;
	}
	return k;
}

/* n4_lookups - keys of the filed IPv4 nets that contain net/mask (host order) */
static size_t n4_lookups(const struct shadow_index *ix, uint32_t net, uint32_t mask, uint64_t *keys)
{
	unsigned top = lead_ones(mask);
	size_t k = 0;

	for (unsigned len = 0; len <= top; len++)
		if (ix->n4_lens & (1ULL << len))
			keys[k++] = key_n4(net & prefix_mask4(len), len);
	return k;
}

/* client_lookups - keys of every early client item that may cover b */
static size_t client_lookups(const struct shadow_index *ix, const struct pattern *b, uint64_t *keys)
{
	const struct pattern *h = b->host ? b->host : b;
	size_t k = 0, n = strlen(h->text);
	struct netp nb;
	struct in6_addr v6;
	struct in_addr v4;
	const char *after;

	keys[k++] = key_text(KT_CALL, 0, "", 0, false);
	keys[k++] = key_text(KT_CTEXT, (uint64_t)h->kind, h->text, n, false);
	if (h->kind == PAT_STRING && h->skind != STR_GLOB && h->skind != STR_ALL)
		keys[k++] = key_text(KT_CSTR, (uint64_t)h->skind, h->text, n, true);
	if (h->kind == PAT_NETMASK && net_usable(h->text, &nb)) {
		if (nb.family == AF_INET) {
			k += n4_lookups(ix, nb.net4, nb.mask4, keys + k);
			/* digits-only "a.b." prefixes (prefix4_covers) */
			unsigned top = lead_ones(nb.mask4);
			for (unsigned parts = 1; ix->any_prefix && parts <= 3 && 8 * parts <= top; parts++) {
				char pfx[16];
				int len = 0;

				for (unsigned i = 0; i < parts; i++)
					len += snprintf(pfx + len, sizeof(pfx) - (size_t)len, "%u.",
							(nb.net4 >> (24 - 8 * i)) & 0xff);
				keys[k++] = key_text(KT_PREFIX, 0, pfx, (size_t)len, true);
			}
		} else if (ix->any_v6) {
			for (int len = 0; len <= nb.plen6; len++)
				keys[k++] = key_n6(&nb.net6, (unsigned)len);
		}
	}
	if (h->kind == PAT_STRING && h->skind == STR_EXACT && inet_pton(AF_INET, h->text, &v4) == 1)
		k += n4_lookups(ix, ntohl(v4.s_addr), 0xffffffffu, keys + k);
	if (h->kind == PAT_STRING && h->skind == STR_V6 && ix->any_v6 &&
	    v6_in_brackets(h->text, &v6, &after) && !*after)
		for (unsigned len = 0; len <= 128; len++)
			keys[k++] = key_n6(&v6, len);
	if (h->kind == PAT_STRING && (h->skind == STR_EXACT || h->skind == STR_PREFIX) && ix->any_prefix)
		for (size_t i = 0; i < n && k < KEYS_MAX; i++)
			if (h->text[i] == '.')
				keys[k++] = key_text(KT_PREFIX, 0, h->text, i + 1, true);
	if (h->kind == PAT_STRING && (h->skind == STR_EXACT || h->skind == STR_SUFFIX) && ix->any_suffix)
		for (size_t i = 1; i < n && k < KEYS_MAX; i++)
			if (h->text[i] == '.')
				keys[k++] = key_text(KT_SUFFIX, 0, h->text + i, n - i, true);
	return k;
}

/* pair_key - the bucket key of a daemon key and a client key (never 0) */
static uint64_t pair_key(uint64_t dk, uint64_t ck)
{
	uint64_t k = key_mix(dk * 0x9e3779b97f4a7c15ULL ^ ck);

	return k ? k : 1;
}

/* ix_slot - the slot of key: its bucket, or the empty slot where it goes */
static struct sh_slot *ix_slot(const struct shadow_index *ix, uint64_t key)
{
	size_t i = key & (ix->cap - 1);

	while (ix->slots[i].key && ix->slots[i].key != key)
		i = (i + 1) & (ix->cap - 1);
	return &ix->slots[i];
}

/* ix_grow - double the slot table; 0 or -ENOMEM */
static int ix_grow(struct shadow_index *ix)
{
	struct shadow_index bigger = *ix;

	bigger.cap = ix->cap ? ix->cap * 2 : 1024;
	bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
	if (!bigger.slots)
		return -ENOMEM;
	for (size_t i = 0; ix->slots && i < ix->cap; i++)
		if (ix->slots[i].key)
			*ix_slot(&bigger, ix->slots[i].key) = ix->slots[i];
	free(ix->slots);
	*ix = bigger;
	return 0;
}

/* ix_add - file rule number `rule` under key; 0 or -ENOMEM */
static int ix_add(struct shadow_index *ix, uint64_t key, uint32_t rule)
{
	if ((ix->used + 1) * 2 > ix->cap && ix_grow(ix))
		return -ENOMEM;
	if (ix->n_ent == ix->cap_ent) {
		size_t cap = ix->cap_ent ? ix->cap_ent * 2 : 1024;
		struct sh_entry *e = realloc(ix->ent, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		ix->ent = e;
		ix->cap_ent = cap;
	}
	struct sh_slot *s = ix_slot(ix, key);
	uint32_t at = (uint32_t)ix->n_ent;

	if (!s->key) {
		s->key = key;
		s->head = at;
		ix->used++;
	} else if (ix->ent[s->tail].rule == rule) {
		return 0;	/* the same rule twice under one key */
	} else {
		ix->ent[s->tail].next = at;
	}
	s->tail = at;
	ix->ent[ix->n_ent++] = (struct sh_entry){ rule, UINT32_MAX };
	return 0;
}

/* ix_file - file a candidate rule under each of its key pairs; false when it
 * cannot be keyed (compare it pairwise); -ENOMEM in *err */
static bool ix_file(struct shadow_index *ix, const struct rule *r, uint32_t rule, int *err)
{
	uint64_t dkeys[SHADOW_PAIRS_MAX], ckeys[SHADOW_PAIRS_MAX];
	size_t nd = 0, nc = 0;

	for (size_t i = 0; i < r->daemons.count; i++) {
		if (nd == SHADOW_PAIRS_MAX)
			return false;
		if (daemon_key(&r->daemons.items[i], &dkeys[nd]))
			nd++;
	}
	for (size_t i = 0; i < r->clients.count; i++) {
		uint64_t k2[2];
		int k = client_keys(ix, &r->clients.items[i], k2);

		if (k < 0 || nc + (size_t)k > SHADOW_PAIRS_MAX)
			return false;
		for (int j = 0; j < k; j++)
			ckeys[nc++] = k2[j];
	}
	if (nd * nc > SHADOW_PAIRS_MAX)
		return false;
	for (size_t i = 0; i < nd; i++)
		for (size_t j = 0; j < nc; j++)
			if ((*err = ix_add(ix, pair_key(dkeys[i], ckeys[j]), rule)))
				return true;
	return true;
}

/* covers - does early rule e decide every request that late rule l matches? */
static bool covers(const struct rule *e, const struct rule *l)
{
	return list_covers(&e->daemons, &l->daemons, true) && list_covers(&e->clients, &l->clients, false);
}

/* lint_shadowing - rules that an earlier rule (same file, or hosts.allow
 * before hosts.deny) always decides first. Conservative: only earlier rules
 * without EXCEPT, and only cover relations that hold for every request. */
static void lint_shadowing(struct lint *l)
{
	const struct policy *p = l->policy;
	size_t n = p->allow.n_rules + p->deny.n_rules, n_pairwise = 0;
	struct ref *refs = calloc(n ? n : 1, sizeof(*refs));
	uint32_t *pairwise = calloc(n ? n : 1, sizeof(*pairwise));
	struct shadow_index ix = { 0 };
	unsigned long work = 0, skipped = 0;
	bool bucket_cut = false;
	uint64_t dk[4], *ck = malloc(KEYS_MAX * sizeof(*ck));

	/* presized for about two key pairs per rule (ix_grow doubles this):
	 * no rehash on the common policy */
	ix.cap = 512;
	while (ix.cap < 2 * n)
		ix.cap *= 2;
	if (!refs || !pairwise || !ck || ix_grow(&ix)) {
		l->err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && !l->err; i++) {
		const struct table *t = i < p->allow.n_rules ? &p->allow : &p->deny;
		const struct rule *late = &t->rules[t == &p->allow ? i : i - p->allow.n_rules];
		size_t best = SIZE_MAX;

		refs[i] = (struct ref){ t, late };
		if (late->daemons.count && late->clients.count &&
		    late->daemons.items[0].kind != PAT_EXCEPT && late->clients.items[0].kind != PAT_EXCEPT) {
			size_t nd = daemon_lookups(&late->daemons.items[0], dk);
			size_t nc = client_lookups(&ix, &late->clients.items[0], ck);

			for (size_t a = 0; a < nd; a++)
				for (size_t b = 0; b < nc; b++) {
					const struct sh_slot *s = ix_slot(&ix, pair_key(dk[a], ck[b]));
					unsigned scanned = 0;

					if (!s->key)
						continue;
					for (uint32_t e = s->head; e != UINT32_MAX && ix.ent[e].rule < best;
					     e = ix.ent[e].next) {
						if (++scanned > SHADOW_BUCKET_SCAN) {
							bucket_cut = true;
							break;
						}
						if (covers(refs[ix.ent[e].rule].r, late)) {
							best = ix.ent[e].rule;
							break;
						}
					}
				}
			for (size_t j = 0; j < n_pairwise && pairwise[j] < best; j++) {
				if (work >= SHADOW_WORK_MAX) {
					skipped++;
					break;
				}
				work++;
				if (covers(refs[pairwise[j]].r, late)) {
					best = pairwise[j];
					break;
				}
			}
		}
		if (best != SIZE_MAX)
			report_shadow(l, &refs[best], &refs[i]);
		if (shadow_candidate(late)) {
			int err = 0;

			if (!ix_file(&ix, late, (uint32_t)i, &err))
				pairwise[n_pairwise++] = (uint32_t)i;
			if (err)
				l->err = err;
		}
	}
	if (!l->err && (skipped || bucket_cut)) {
		struct srcpos pos = { .file = p->allow.path };

		emit(l, DIAG_NOTE, &pos,
		     xfmt(l, "shadowed-rule check incomplete: %lu rules were not compared with every "
			  "earlier rule that is too complex to index (user@host, odd masks, long lists)%s",
			  skipped, bucket_cut ? "; some lookups met more than 64 near-identical rules" : ""),
		     NULL);
	}
out:
	free(ix.slots);
	free(ix.ent);
	free(pairwise);
	free(refs);
	free(ck);
}

/* ---- tables ------------------------------------------------------------ */

/* starts_with_all - does the list begin with ALL (a deliberate default)? */
static bool starts_with_all(const struct pattern_list *list)
{
	return list->count > 0 && is_plain_all(&list->items[0]);
}

/* lint_catch_all - hosts.deny should end the policy with ALL : ALL */
static void lint_catch_all(struct lint *l)
{
	const struct table *tables[2] = { &l->policy->allow, &l->policy->deny };
	const struct table *deny = &l->policy->deny;
	struct srcpos pos = { .file = deny->path };	/* line 0: the whole file */

	if (deny->state == TABLE_UNREADABLE || deny->cut_off)
		return;		/* an error there already denies everything reaching it */
	for (size_t k = 0; k < 2; k++)
		for (size_t i = 0; i < tables[k]->n_rules; i++) {
			const struct rule *r = &tables[k]->rules[i];

			if (starts_with_all(&r->daemons) && starts_with_all(&r->clients))
				return;
		}
	if (!pos.file)
		return;
	emit(l, DIAG_WARNING, &pos,
	     xfmt(l, "hosts.deny has no catch-all `ALL : ALL`: everything not listed is allowed"),
	     xfmt(l, "end hosts.deny with `ALL : ALL` (or hosts.allow with `ALL : ALL : deny`)"));
}

/* lint_table - file-level problems: unreadable */
static void lint_table(struct lint *l, const struct table *t)
{
	struct srcpos pos = { .file = t->path };	/* line 0: the whole file */

	if (t->state != TABLE_UNREADABLE || !t->path)
		return;
	for (size_t i = 0; i < l->policy->diags.count; i++) {
		const struct diag *d = &l->policy->diags.items[i];

		if (d->severity == DIAG_ERROR && d->pos.file && !strcmp(d->pos.file, t->path))
			return;	/* the parser said it already */
	}
	emit(l, DIAG_ERROR, &pos,
	     xfmt(l, "cannot read %s: %s", t->path, strerror(t->open_errno)),
	     xfmt(l, t->is_deny ? "libwrap then denies every request that hosts.allow does not "
				  "allow"
				: "libwrap then allows nothing from hosts.allow"));
}

/* ---- sorting and the public functions ----------------------------------- */

struct sortable {
	struct diag d;
	size_t seq;
	int file_rank;
};

/* diag_cmp - order by file (allow, deny, others by name), line, column, then as found */
static int diag_cmp(const void *pa, const void *pb)
{
	const struct sortable *a = pa, *b = pb;
	int c;

	if (a->file_rank != b->file_rank)
		return a->file_rank - b->file_rank;
	if (a->file_rank == 2 && (c = strcmp(a->d.pos.file ? a->d.pos.file : "",
					     b->d.pos.file ? b->d.pos.file : "")))
		return c;
	if (a->d.pos.line != b->d.pos.line)
		return a->d.pos.line < b->d.pos.line ? -1 : 1;
	if (a->d.pos.col != b->d.pos.col)
		return a->d.pos.col < b->d.pos.col ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* file_rank - 0 hosts.allow, 1 hosts.deny, 2 any other file */
static int file_rank(const struct policy *p, const char *file)
{
	if (file && p->allow.path && !strcmp(file, p->allow.path))
		return 0;
	if (file && p->deny.path && !strcmp(file, p->deny.path))
		return 1;
	return 2;
}

/* sort_from - sort out->items[first..] in place */
static int sort_from(const struct policy *p, struct diag_list *out, size_t first)
{
	size_t n = out->count - first;
	struct sortable *s;

	if (n < 2)
		return 0;
	s = calloc(n, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		s[i].d = out->items[first + i];
		s[i].seq = i;
		s[i].file_rank = file_rank(p, s[i].d.pos.file);
	}
	qsort(s, n, sizeof(*s), diag_cmp);
	for (size_t i = 0; i < n; i++)
		out->items[first + i] = s[i].d;
	free(s);
	return 0;
}

/* copy_parse_diags - libwrap's own diagnostics, as the parser found them */
static void copy_parse_diags(struct lint *l)
{
	const struct diag_list *in = &l->policy->diags;

	l->parse_first = l->out->count;
	l->parse_n = in->count;
	l->dropped = calloc(in->count ? in->count : 1, sizeof(*l->dropped));
	if (!l->dropped)
		l->err = -ENOMEM;

	for (size_t i = 0; i < in->count && !l->err; i++) {
		const struct diag *d = &in->items[i];
		char *hint = d->hint ? strdup(d->hint) : NULL;

		if (d->hint && !hint)
			l->err = -ENOMEM;
		emit(l, d->severity, &d->pos, d->message ? strdup(d->message) : strdup(""), hint);
	}
}

/* drop_superseded - remove the parser diagnostics a lint diagnostic replaced */
static void drop_superseded(struct lint *l)
{
	struct diag_list *out = l->out;
	size_t w = l->parse_first;

	if (!l->dropped)
		return;
	for (size_t i = l->parse_first; i < out->count; i++) {
		size_t k = i - l->parse_first;

		if (k < l->parse_n && l->dropped[k]) {
			free(out->items[i].message);
			free(out->items[i].hint);
			continue;
		}
		out->items[w++] = out->items[i];
	}
	out->count = w;
	free(l->dropped);
	l->dropped = NULL;
}

int policy_lint(const struct policy *policy, struct diag_list *out)
{
	struct lint l = { .policy = policy, .out = out };
	const struct table *tables[2] = { &policy->allow, &policy->deny };

	copy_parse_diags(&l);
	for (size_t k = 0; k < 2; k++) {
		lint_table(&l, tables[k]);
		for (size_t i = 0; i < tables[k]->n_rules; i++)
			lint_rule(&l, tables[k], &tables[k]->rules[i]);
	}
	lint_shadowing(&l);
	lint_catch_all(&l);
	drop_superseded(&l);
	if (!l.err)
		l.err = sort_from(policy, out, 0);
	return l.err;
}

const char *check_format(const struct diag *d, char *buf, size_t size)
{
	struct diag bare = *d;
	const char *file = d->pos.file ? d->pos.file : "?", *msg = d->message ? d->message : "";

	bare.hint = NULL;	/* cmd_check prints it on a line of its own */
	if (d->severity != DIAG_NOTE)
		return diag_format(&bare, buf, size);
	if (!size)
		return buf;
	if (d->pos.line)
		snprintf(buf, size, "%s:%u:%u: note: %s", file, d->pos.line, d->pos.col, msg);
	else
		snprintf(buf, size, "%s: note: %s", file, msg);
	return buf;
}

void check_diags_free(struct diag_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->items[i].message);
		free(list->items[i].hint);
	}
	free(list->items);
	list->items = NULL;
	list->count = list->cap = 0;
}
