/*
 * extensions.c - the parser of bpfwrap's extensions file (see extensions.h
 * and docs/extensions.md): its text into struct guard_conf with file:line:col
 * diagnostics, and the reference matcher (guard_conf_match) the kernel's
 * lookup is tested against. Pure: no libbpf, no maps; user/kernel/guard.c
 * compiles a parsed file into the guard's maps.
 *
 * Errors: functions return 0 or -errno; the file's diagnostics are kept in
 * struct guard_conf (a file with errors is never loaded).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "extensions.h"
#include "readfile.h"

#define GUARD_FILE_MAX (4 * 1024 * 1024)	/* larger extension files are refused */
#define LINE_MAX_LEN 8192
#define TRAP_LINE_FLAGS (GUARD_F_TRAP | GUARD_F_UNPROVEN)	/* all a trap line may have */

/* diag - add a diagnostic; false if out of memory */
static __attribute__((format(printf, 5, 6))) bool diag(struct guard_conf *c, unsigned line,
							unsigned col, bool error, const char *fmt,
							...)
{
	struct guard_diag *d;
	va_list ap;

	d = realloc(c->diags, (c->n_diags + 1) * sizeof(*d));
	if (!d)
		return false;
	c->diags = d;
	d = &c->diags[c->n_diags++];
	d->line = line;
	d->col = col;
	d->error = error;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	va_end(ap);
	if (error)
		c->n_errors++;
	return true;
}

/* guard_parse_duration - "90", "90s", "15m", "2h", "1d", "forever" (0) into seconds */
int guard_parse_duration(const char *text, uint32_t *seconds)
{
	unsigned long long v, mul = 1;
	char *end;

	if (!strcasecmp(text, "forever")) {
		*seconds = 0;
		return 0;
	}
	if (!isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end && end[1])
		return -EINVAL;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	default:
		return -EINVAL;
	}
	if (v == 0 || v > UINT32_MAX / mul)
		return -ERANGE;
	*seconds = (uint32_t)(v * mul);
	return 0;
}

/* prefix_mask - clear the bits of addr past len */
static void prefix_mask(uint8_t addr[16], unsigned len)
{
	for (unsigned i = 0; i < 16; i++) {
		if (len >= (i + 1) * 8)
			continue;
		addr[i] &= len > i * 8 ? (uint8_t)(0xff << (8 - (len - i * 8))) : 0;
	}
}

/* mask_len - the prefix length of a contiguous IPv4 netmask, -1 if not contiguous */
static int mask_len(uint32_t mask)
{
	int n = 0;

	while (n < 32 && (mask & (0x80000000u >> n)))
		n++;
	return (n == 32 || (mask << n) == 0) ? n : -1;
}

/* guard_parse_prefix - an address or prefix into p (IPv4 as ::ffff:a.b.c.d/96+len) */
int guard_parse_prefix(const char *text, struct guard_prefix *p)
{
	char buf[128], *slash, *addr = buf;
	struct in_addr a4;
	struct in6_addr a6;
	size_t n = strlen(text);
	unsigned long len;
	char *end;

	memset(p, 0, sizeof(*p));
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, text, n + 1);
	if (buf[0] == '[') {
		/* [v6], [v6]/len, [v6/len] */
		char *close = strchr(buf, ']');

		if (!close)
			return -EINVAL;
		*close = '\0';
		addr = buf + 1;
		slash = strchr(addr, '/');
		if (slash) {
			if (close[1])
				return -EINVAL;
			*slash++ = '\0';
		} else if (close[1] == '/') {
			slash = close + 2;
		} else if (close[1]) {
			return -EINVAL;
		}
	} else {
		slash = strchr(buf, '/');
		if (slash)
			*slash++ = '\0';
	}
	if (inet_pton(AF_INET6, addr, &a6) == 1 && strchr(addr, ':')) {
		memcpy(p->addr, &a6, 16);
		len = 128;
		if (slash) {
			errno = 0;
			len = strtoul(slash, &end, 10);
			if (errno || *end || !*slash || len > 128)
				return -EINVAL;
		}
		p->len = (uint8_t)len;
		prefix_mask(p->addr, p->len);
		return 0;
	}
	if (buf[0] == '[')
		return -EINVAL;
	p->addr[10] = p->addr[11] = 0xff;
	n = strlen(addr);
	if (!slash && n > 0 && addr[n - 1] == '.') {
		/* tcpd's "a.b.c." form: the leading octets */
		unsigned oct[4], k = 0;
		const char *s = addr;

		while (*s && k < 4) {
			unsigned long v;

			if (!isdigit((unsigned char)*s))
				return -EINVAL;
			v = strtoul(s, &end, 10);
			if (v > 255 || *end != '.')
				return -EINVAL;
			oct[k++] = (unsigned)v;
			s = end + 1;
		}
		if (*s || k == 0 || k > 3)
			return -EINVAL;
		for (unsigned i = 0; i < k; i++)
			p->addr[12 + i] = (uint8_t)oct[i];
		p->len = (uint8_t)(96 + 8 * k);
		return 0;
	}
	if (inet_pton(AF_INET, addr, &a4) != 1)
		return -EINVAL;
	memcpy(&p->addr[12], &a4, 4);
	len = 32;
	if (slash) {
		struct in_addr m;

		if (strchr(slash, '.')) {
			int ml;

			if (inet_pton(AF_INET, slash, &m) != 1)
				return -EINVAL;
			ml = mask_len(ntohl(m.s_addr));
			if (ml < 0)
				return -EINVAL;
			len = (unsigned long)ml;
		} else {
			errno = 0;
			len = strtoul(slash, &end, 10);
			if (errno || *end || !*slash || len > 32)
				return -EINVAL;
		}
	}
	p->len = (uint8_t)(96 + len);
	prefix_mask(p->addr, p->len);
	return 0;
}

/* A token of a list with its column. */
struct tok {
	char text[256];
	unsigned col;
};

/* next_token - the next list item of s (separators: blanks and commas) */
static bool next_token(const char **s, const char *line, struct tok *t)
{
	const char *p = *s;
	size_t n;

	while (*p && (isspace((unsigned char)*p) || *p == ','))
		p++;
	if (!*p)
		return false;
	n = strcspn(p, " \t\r\n,");
	t->col = (unsigned)(p - line) + 1;
	if (n >= sizeof(t->text))
		n = sizeof(t->text) - 1;
	memcpy(t->text, p, n);
	t->text[n] = '\0';
	p += strcspn(p, " \t\r\n,");
	*s = p;
	return true;
}

/* parse_daemons - the daemon list of one line */
static bool parse_daemons(struct guard_conf *c, struct guard_conf_rule *r, const char *field,
			  const char *line)
{
	struct tok t;
	const char *s = field;

	while (next_token(&s, line, &t)) {
		char *slash = strchr(t.text, '/');

		if (!strcmp(t.text, "ALL")) {
			r->all_daemons = true;
		} else if (!strcmp(t.text, "EXCEPT")) {
			diag(c, r->line, t.col, true, "EXCEPT in a daemon list is not supported in "
						      "the extensions file; list the daemons");
			return true;
		} else if (slash && isdigit((unsigned char)t.text[0])) {
			struct guard_ports_item it = { 0 };
			unsigned long lo, hi;
			char *end;

			if (!strcasecmp(slash + 1, "tcp"))
				it.proto = IPPROTO_TCP;
			else if (!strcasecmp(slash + 1, "udp"))
				it.proto = IPPROTO_UDP;
			else {
				diag(c, r->line, t.col, true, "bad port '%s': want PORT/tcp or PORT/udp",
				     t.text);
				continue;
			}
			*slash = '\0';
			lo = strtoul(t.text, &end, 10);
			hi = lo;
			if (*end == '-')
				hi = strtoul(end + 1, &end, 10);
			if (*end || lo == 0 || hi > 65535 || hi < lo) {
				diag(c, r->line, t.col, true, "bad port or range '%s': want 1..65535",
				     t.text);
				continue;
			}
			if (hi - lo + 1 > GUARD_PORT_RANGE_MAX) {
				diag(c, r->line, t.col, true, "port range %lu-%lu names more than %d "
							      "ports", lo, hi, GUARD_PORT_RANGE_MAX);
				continue;
			}
			it.lo = (uint16_t)lo;
			it.hi = (uint16_t)hi;
			void *np = realloc(r->ports, (r->n_ports + 1) * sizeof(*r->ports));

			if (!np)
				return false;
			r->ports = np;
			r->ports[r->n_ports++] = it;
		} else {
			size_t n = strlen(t.text);
			void *nd;

			if (t.text[0] == '/' || strchr(t.text, '@') || n >= BPFWRAP_DAEMON_NAME_MAX) {
				diag(c, r->line, t.col, true, "bad daemon '%s': want a daemon name, ALL "
							      "or PORT/tcp|udp", t.text);
				continue;
			}
			nd = realloc(r->daemons, (r->n_daemons + 1) * sizeof(*r->daemons));
			if (!nd)
				return false;
			r->daemons = nd;
			memset(r->daemons[r->n_daemons], 0, BPFWRAP_DAEMON_NAME_MAX);
			for (size_t i = 0; i < n; i++)
				r->daemons[r->n_daemons][i] = (char)tolower((unsigned char)t.text[i]);
			r->n_daemons++;
		}
	}
	if (!r->all_daemons && !r->n_daemons && !r->ports)
		diag(c, r->line, 1, true, "empty daemon list");
	return true;
}

/* parse_clients - the client list of one line: ALL, addresses, prefixes, one EXCEPT */
static bool parse_clients(struct guard_conf *c, struct guard_conf_rule *r, const char *field,
			  const char *line)
{
	bool except = false, any = false;
	struct tok t;
	const char *s = field;

	while (next_token(&s, line, &t)) {
		struct guard_prefix p;
		void *np;

		if (!strcmp(t.text, "EXCEPT")) {
			if (except) {
				diag(c, r->line, t.col, true, "a second EXCEPT is not supported in the "
							      "extensions file");
				return true;
			}
			if (!any)
				diag(c, r->line, t.col, true, "EXCEPT needs a list before it");
			except = true;
			continue;
		}
		if (!strcmp(t.text, "ALL") && !except) {
			r->all_clients = true;
			any = true;
			continue;
		}
		if (guard_parse_prefix(t.text, &p)) {
			const char *why = "want an address or prefix (a.b.c.d, a.b.c.d/len, "
					  "a.b.c.d/m.m.m.m, a.b.c., [v6], [v6]/len)";

			if (!strcmp(t.text, "ALL") || !strcmp(t.text, "LOCAL") ||
			    !strcmp(t.text, "KNOWN") || !strcmp(t.text, "UNKNOWN") ||
			    !strcmp(t.text, "PARANOID") || t.text[0] == '.' || t.text[0] == '@' ||
			    t.text[0] == '/' || strchr(t.text, '@') || isalpha((unsigned char)t.text[0]))
				why = "the extensions are decided in the kernel from the address only: "
				      "names, users, files and wildcards other than ALL are not supported";
			diag(c, r->line, t.col, true, "bad client '%s': %s", t.text, why);
			continue;
		}
		p.except = except;
		np = realloc(r->clients, (r->n_clients + 1) * sizeof(*r->clients));
		if (!np)
			return false;
		r->clients = np;
		r->clients[r->n_clients++] = p;
		any = any || !except;
	}
	if (!any)
		diag(c, r->line, 1, true, "empty client list (ALL for every client)");
	return true;
}

/* parse_count_opt - a positive number up to GUARD_LIMIT_MAX */
static int parse_count_opt(const char *text, uint32_t *out)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || *end || v == 0 || v > GUARD_LIMIT_MAX)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}

/* parse_source_prefix - "v4/LEN v6/LEN" (either or both, once each) into
 * o->src_plen4 / src_plen6; -EINVAL if malformed */
static int parse_source_prefix(const char *val, struct guard_rule *o)
{
	bool v4 = false, v6 = false;
	const char *p = val;

	for (;;) {
		unsigned long len;
		bool is6;
		char *end;

		p += strspn(p, " \t,");
		if (!*p)
			break;
		if (strncasecmp(p, "v4/", 3) && strncasecmp(p, "v6/", 3))
			return -EINVAL;
		is6 = p[1] == '6';
		if (!isdigit((unsigned char)p[3]) || (is6 ? v6 : v4))
			return -EINVAL;
		errno = 0;
		len = strtoul(p + 3, &end, 10);
		if (errno || (*end && !strchr(" \t,", *end)) || len == 0 || len > (is6 ? 128u : 32u))
			return -EINVAL;
		if (is6) {
			o->src_plen6 = (uint8_t)len;
			v6 = true;
		} else {
			o->src_plen4 = (uint8_t)len;
			v4 = true;
		}
		p = end;
	}
	return v4 || v6 ? 0 : -EINVAL;
}

/* parse_option - one `keyword [=] value` field */
static void parse_option(struct guard_conf *c, struct guard_conf_rule *r, char *field,
			 unsigned col)
{
	char *kw = field, *val;
	struct guard_rule *o = &r->opt;
	size_t n;

	while (isspace((unsigned char)*kw))
		kw++, col++;
	n = strlen(kw);
	while (n && isspace((unsigned char)kw[n - 1]))
		kw[--n] = '\0';
	val = kw + strcspn(kw, " \t=");
	if (*val) {
		*val++ = '\0';
		while (*val && (isspace((unsigned char)*val) || *val == '='))
			val++;
	}
	if (!strcmp(kw, "trap")) {
		o->flags |= GUARD_F_TRAP;
		o->deny_s = GUARD_DEFAULT_TRAP_S;
		if (*val && guard_parse_duration(val, &o->deny_s))
			diag(c, r->line, col, true, "bad trap time '%s': want N[s|m|h|d] or forever",
			     val);
	} else if (!strcmp(kw, "per_source") || !strcmp(kw, "instances")) {
		bool ps = kw[0] == 'p';

		if (parse_count_opt(val, ps ? &o->per_source : &o->instances))
			diag(c, r->line, col, true, "bad %s '%s': want 1..%d", kw, val,
			     GUARD_LIMIT_MAX);
		o->flags |= ps ? GUARD_F_PER_SOURCE : GUARD_F_INSTANCES;
	} else if (!strcmp(kw, "cps")) {
		char *sl = strchr(val, '/');

		if (sl)
			*sl++ = '\0';
		if (parse_count_opt(val, &o->cps_rate) ||
		    (sl && parse_count_opt(sl, &o->cps_burst)))
			diag(c, r->line, col, true, "bad cps '%s%s%s': want RATE[/BURST], 1..%d", val,
			     sl ? "/" : "", sl ? sl : "", GUARD_LIMIT_MAX);
		if (!sl)
			o->cps_burst = o->cps_rate;
		o->flags |= GUARD_F_CPS;
	} else if (!strcmp(kw, "source_prefix")) {
		if (parse_source_prefix(val, o))
			diag(c, r->line, col, true, "bad source_prefix '%s': want v4/LEN (1..32) and/or "
						    "v6/LEN (1..128), e.g. source_prefix v4/32 v6/64", val);
	} else if (!strcmp(kw, "unproven")) {
		if (*val)
			diag(c, r->line, col, true, "unproven takes no value");
		o->flags |= GUARD_F_UNPROVEN;
	} else if (!strcmp(kw, "reject") || !strcmp(kw, "drop")) {
		if (*val)
			diag(c, r->line, col, true, "%s takes no value", kw);
		o->flags |= kw[0] == 'r' ? GUARD_F_REJECT : GUARD_F_DROP;
	} else {
		diag(c, r->line, col, true, "unknown option '%s' (trap, unproven, per_source, "
					    "source_prefix, instances, cps, reject, drop)", kw);
	}
}

/* split_fields - cut a line at ':' outside [...]; field starts into f[], count */
static size_t split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	int depth = 0;

	f[n++] = line;
	for (char *p = line; *p; p++) {
		if (*p == '[')
			depth++;
		else if (*p == ']' && depth > 0)
			depth--;
		else if (*p == ':' && depth == 0 && n < max) {
			*p = '\0';
			f[n++] = p + 1;
		}
	}
	return n;
}

/* parse_line - one logical line into a rule (diagnostics on the way) */
static int parse_line(struct guard_conf *c, char *text, unsigned lineno)
{
	struct guard_conf_rule *r;
	char *f[32];
	size_t nf;
	void *nr;

	nf = split_fields(text, f, sizeof(f) / sizeof(f[0]));
	if (nf < 3) {
		diag(c, lineno, 1, true, "want 'daemon_list : client_list : option [: option]...'");
		return 0;
	}
	nr = realloc(c->rules, (c->n_rules + 1) * sizeof(*c->rules));
	if (!nr)
		return -ENOMEM;
	c->rules = nr;
	r = &c->rules[c->n_rules++];
	memset(r, 0, sizeof(*r));
	r->line = lineno;
	r->opt.line = lineno;
	if (!parse_daemons(c, r, f[0], text) || !parse_clients(c, r, f[1], text))
		return -ENOMEM;
	for (size_t i = 2; i < nf; i++)
		parse_option(c, r, f[i], (unsigned)(f[i] - text) + 1);

	if ((r->opt.flags & GUARD_F_REJECT) && (r->opt.flags & GUARD_F_DROP))
		diag(c, lineno, 1, true, "reject and drop on one line");
	if ((r->opt.src_plen4 || r->opt.src_plen6) && !(r->opt.flags & GUARD_F_PER_SOURCE))
		diag(c, lineno, 1, false, "source_prefix has no effect without per_source");
	if ((r->opt.flags & GUARD_F_UNPROVEN) && !(r->opt.flags & GUARD_F_TRAP))
		diag(c, lineno, 1, true, "unproven goes with trap (it lets a UDP trap ban the "
					 "unproven source of a datagram)");
	if ((r->opt.flags & GUARD_F_TRAP) && (r->opt.flags & ~(uint32_t)TRAP_LINE_FLAGS))
		diag(c, lineno, 1, true, "trap refuses every attempt: other options on its line "
					 "would never apply");
	if (r->n_ports && (r->opt.flags & ~(uint32_t)TRAP_LINE_FLAGS))
		diag(c, lineno, 1, true, "a PORT/proto entry takes only the trap option (use daemon "
					 "names for limits and reject)");
	if (r->n_ports && !(r->opt.flags & GUARD_F_TRAP))
		diag(c, lineno, 1, true, "a PORT/proto entry needs the trap option");
	if ((r->opt.flags & GUARD_F_TRAP) && r->all_daemons && r->all_clients && !r->n_clients)
		diag(c, lineno, 1, false, "ALL : ALL : trap bans every client of every service");
	if ((r->opt.flags & GUARD_F_UNPROVEN) && r->n_ports && !r->n_daemons && !r->all_daemons) {
		bool udp = false;

		for (size_t i = 0; i < r->n_ports; i++)
			udp = udp || r->ports[i].proto == IPPROTO_UDP;
		if (!udp)
			diag(c, lineno, 1, false, "unproven has no effect without a UDP port: a TCP "
						  "trap always waits for the handshake");
	}
	return 0;
}

/* guard_conf_parse - parse an extensions file's text; diagnostics go into *out */
int guard_conf_parse(const char *text, size_t len, const char *name, struct guard_conf **out)
{
	struct guard_conf *c;
	char *buf;
	size_t pos = 0, blen = 0;
	unsigned lineno = 0, start = 0;
	int err = 0;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	buf = malloc(LINE_MAX_LEN);
	if (!c || !buf) {
		free(c);
		free(buf);
		return -ENOMEM;
	}
	snprintf(c->name, sizeof(c->name), "%s", name ? name : "extensions");
	while (pos < len && !err) {
		size_t n = 0;
		const char *p = text + pos;
		bool cont;

		while (pos + n < len && p[n] != '\n')
			n++;
		pos += n + (pos + n < len);
		lineno++;
		if (n && p[n - 1] == '\r')
			n--;
		if (memchr(p, '\0', n)) {
			diag(c, lineno, 1, true, "NUL byte in the line");
			continue;
		}
		cont = n && p[n - 1] == '\\';
		if (cont)
			n--;
		if (!blen)
			start = lineno;
		if (blen + n + 2 > LINE_MAX_LEN) {
			diag(c, start, 1, true, "line longer than %d bytes", LINE_MAX_LEN);
			blen = 0;
			continue;
		}
		memcpy(buf + blen, p, n);
		blen += n;
		if (cont) {
			buf[blen++] = ' ';
			continue;
		}
		buf[blen] = '\0';
		blen = 0;
		{
			char *s = buf;

			while (isspace((unsigned char)*s))
				s++;
			if (!*s || *s == '#')
				continue;
			err = parse_line(c, s, start);
		}
	}
	if (!err && blen) {
		buf[blen] = '\0';
		err = parse_line(c, buf, start);
	}
	free(buf);
	if (!err && c->n_rules > GUARD_HALF - 1)
		diag(c, c->rules[GUARD_HALF - 1].line, 1, true, "more than %d lines with options",
		     GUARD_HALF - 1);
	if (err) {
		guard_conf_free(c);
		return err;
	}
	*out = c;
	return 0;
}

/* guard_conf_load - read and parse a file (-ENOENT if missing; never blocks: readfile.h) */
int guard_conf_load(const char *path, struct guard_conf **out)
{
	mode_t type;
	char *text;
	size_t n;
	int err;

	*out = NULL;
	err = readfile_all(path, GUARD_FILE_MAX, &text, &n, &type);
	if (err)
		return err;
	err = guard_conf_parse(text, n, path, out);
	free(text);
	return err;
}

/* guard_conf_free - free a parsed file */
void guard_conf_free(struct guard_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_rules; i++) {
		free(c->rules[i].daemons);
		free(c->rules[i].ports);
		free(c->rules[i].clients);
	}
	free(c->rules);
	free(c->diags);
	free(c);
}

/* guard_addr_text - a 16-byte client address as text (IPv4 for v4-mapped) */
const char *guard_addr_text(const uint8_t a[16], char *buf, size_t size)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (!memcmp(a, mapped, 12))
		inet_ntop(AF_INET, a + 12, buf, (socklen_t)size);
	else
		inet_ntop(AF_INET6, a, buf, (socklen_t)size);
	return buf;
}

/* guard_prefix_has - does prefix p contain the 16-byte address a (or prefix of length >= p->len) */
bool guard_prefix_has(const struct guard_prefix *p, const uint8_t a[16])
{
	uint8_t m[16];

	memcpy(m, a, 16);
	prefix_mask(m, p->len);
	return !memcmp(m, p->addr, 16);
}

/* rule_applies_to - does a rule's client list take this address */
static bool rule_applies_to(const struct guard_conf_rule *r, const uint8_t addr[16])
{
	bool in = r->all_clients;

	for (size_t i = 0; i < r->n_clients; i++)
		if (!r->clients[i].except && guard_prefix_has(&r->clients[i], addr))
			in = true;
	for (size_t i = 0; i < r->n_clients && in; i++)
		if (r->clients[i].except && guard_prefix_has(&r->clients[i], addr))
			in = false;
	return in;
}

/* rule_names - does a rule's daemon list name this daemon */
static bool rule_names(const struct guard_conf_rule *r, const char *daemon)
{
	if (r->all_daemons)
		return true;
	for (size_t i = 0; i < r->n_daemons; i++)
		if (!strcasecmp(r->daemons[i], daemon))
			return true;
	return false;
}

/* guard_conf_match - the 1-based index of the first rule for (daemon, client), 0 none */
size_t guard_conf_match(const struct guard_conf *c, const char *daemon, const uint8_t addr[16])
{
	for (size_t i = 0; i < c->n_rules; i++)
		if (rule_names(&c->rules[i], daemon) && rule_applies_to(&c->rules[i], addr))
			return i + 1;
	return 0;
}
