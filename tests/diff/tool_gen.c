/*
 * tool_gen.c - random hosts.allow/hosts.deny policies and queries aimed at
 * libwrap's rule boundaries, for differential testing against the oracle.
 *
 * Usage: tool_gen SEED DIR NQUERIES [COUNT]
 *
 * Writes DIR/hosts.allow, DIR/hosts.deny, DIR/queries (NQUERIES lines in the
 * `bpfwrap match --batch` format) and, for some seeds, DIR/clients (a
 * `/path` pattern file the policy names by its absolute path). The output
 * depends only on SEED and the absolute path of DIR. With COUNT, seeds
 * SEED..SEED+COUNT-1 go to DIR/<seed>/ each (created), in one run.
 *
 * Every pattern the generator writes also records the values that sit on
 * its boundaries (first/last address of a net and the addresses just
 * outside, names that nearly match, case variants, truncated long names);
 * most queries are built from those, the rest are random.
 *
 * Options are limited to ones whose outcome does not depend on who runs the
 * oracle: no `group`, no `user X.G` (Debian's user/group options call
 * setuid()/setgid() even in a dry run, so root and non-root differ). `user
 * nobody` is in: it is denied either way (as root, setuid() comes first and
 * the setgid() after it fails; as non-root, setuid() fails). Commands are
 * only /bin/true and echo, and the oracle's dry run does not run them.
 *
 * Errors: bad arguments exit 2; an I/O or allocation failure prints a
 * message and exits 1.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/stat.h>

/* ---- deterministic randomness ---- */

static uint64_t rng_state;

/* rnd - next 64 random bits (splitmix64) */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* below - uniform number in [0, n) */
static unsigned below(unsigned n)
{
	return n ? (unsigned)(rnd() % n) : 0;
}

/* chance - true with probability pct percent */
static bool chance(unsigned pct)
{
	return below(100) < pct;
}

#define PICK(arr) ((arr)[below(sizeof(arr) / sizeof((arr)[0]))])

/* ---- growing strings and string pools ---- */

/* die - report a fatal error and exit 1 */
static void die(const char *what)
{
	fprintf(stderr, "tool_gen: %s: %s\n", what, strerror(errno ? errno : ENOMEM));
	exit(1);
}

struct buf {
	char *p;
	size_t len, cap;
};

/* buf_vadd - append printf-formatted text */
static void buf_vadd(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		die("vsnprintf");
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 256) + (size_t)n;
		char *p = realloc(b->p, cap);

		if (!p)
			die("realloc");
		b->p = p;
		b->cap = cap;
	}
	if (vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap) != n)
		die("vsnprintf");
	b->len += (size_t)n;
}

/* buf_add - append printf-formatted text */
__attribute__((format(printf, 2, 3))) static void buf_add(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vadd(b, fmt, ap);
	va_end(ap);
}

/* buf_addn - append n raw bytes (may hold NUL) */
static void buf_addn(struct buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 256) + n;
		char *q = realloc(b->p, cap);

		if (!q)
			die("realloc");
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* buf_str - the text so far ("" when empty) */
static const char *buf_str(const struct buf *b)
{
	return b->p ? b->p : "";
}

/* buf_reset - empty the buffer, keep the memory */
static void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

struct pool {
	char **items;
	size_t n, cap;
};

/* pool_add - remember a copy of a value for queries */
static void pool_add(struct pool *p, const char *s)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 32;
		char **items = realloc(p->items, cap * sizeof(*items));

		if (!items)
			die("realloc");
		p->items = items;
		p->cap = cap;
	}
	p->items[p->n] = strdup(s);
	if (!p->items[p->n])
		die("strdup");
	p->n++;
}

/* pool_addf - remember a formatted value */
__attribute__((format(printf, 2, 3))) static void pool_addf(struct pool *p, const char *fmt, ...)
{
	struct buf b = { 0 };
	va_list ap;

	va_start(ap, fmt);
	buf_vadd(&b, fmt, ap);
	va_end(ap);
	pool_add(p, buf_str(&b));
	free(b.p);
}

/* pool_pick - a remembered value, or NULL when the pool is empty */
static const char *pool_pick(const struct pool *p)
{
	return p->n ? p->items[below((unsigned)p->n)] : NULL;
}

/* Values related to the patterns written so far: what queries are made of. */
static struct pool q_daemons, q_addrs, q_names, q_users, q_servers;

static const char *dir_abs;	/* absolute output directory */
static bool clients_file_used;	/* the policy names DIR/clients */

/* ---- text variants ---- */

/* random_case - copy s with each letter's case flipped at random */
static void random_case(struct buf *out, const char *s)
{
	int mode = (int)below(4); /* as is, upper, lower, mixed */

	for (; *s; s++) {
		char c = *s;

		if (mode == 1 || (mode == 3 && chance(50)))
			c = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
		else if (mode == 2)
			c = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		buf_add(out, "%c", c);
	}
}

/* add_keyword - append a keyword in one of the spellings people write */
static void add_keyword(struct buf *out, const char *upper)
{
	if (chance(70))
		buf_add(out, "%s", upper);
	else
		random_case(out, upper);
}

/* long_label - a name of n characters ending in a domain (for 127-char cuts) */
static void long_label(struct buf *out, size_t n)
{
	static const char tail[] = ".example.com";
	size_t body = n > sizeof(tail) - 1 ? n - (sizeof(tail) - 1) : 1;

	for (size_t i = 0; i < body; i++)
		buf_add(out, "%c", i % 10 == 9 ? '.' : (char)('a' + i % 7));
	buf_add(out, "%s", tail);
}

/* ---- IPv4 ---- */

/* v4_text - dotted quad of a host-order address */
static void v4_text(struct buf *out, uint32_t a)
{
	buf_add(out, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

/* v4_odd_text - dotted quad with some parts in octal or hex (inet_addr reads them) */
static void v4_odd_text(struct buf *out, uint32_t a)
{
	for (int i = 3; i >= 0; i--) {
		unsigned part = (a >> (8 * i)) & 255;

		switch (below(4)) {
		case 0:
			buf_add(out, "0%o", part);
			break;
		case 1:
			buf_add(out, "0x%x", part);
			break;
		case 2:
			buf_add(out, "0X%02X", part);
			break;
		default:
			buf_add(out, "%u", part);
		}
		if (i)
			buf_add(out, ".");
	}
}

/* random_v4 - an address from one of a few neighbourhoods */
static uint32_t random_v4(void)
{
	switch (below(7)) {
	case 0:
		return 0x0a000000u | (uint32_t)(rnd() & 0x00ffffffu);	/* 10/8 */
	case 1:
		return 0xc0a80000u | (uint32_t)(rnd() & 0xffffu);	/* 192.168/16 */
	case 2:
		return 0xac100000u | (uint32_t)(rnd() & 0x000fffffu);	/* 172.16/12 */
	case 3:
		return 0x7f000000u | (uint32_t)below(4);		/* 127.0.0.x */
	case 4:
		return 0x0a010200u | (uint32_t)below(256);		/* 10.1.2.x */
	case 5:
		return 0xc0000200u | (uint32_t)below(256);		/* 192.0.2.x */
	default:
		return (uint32_t)rnd();
	}
}

/* add_v4 - remember an address (and sometimes its ±1 neighbours) for queries */
static void add_v4(uint32_t a)
{
	struct buf b = { 0 };

	v4_text(&b, a);
	pool_add(&q_addrs, buf_str(&b));
	if (chance(15))
		pool_add(&q_servers, buf_str(&b));
	free(b.p);
}

/* prefix_mask - host-order mask of a prefix length 0..32 */
static uint32_t prefix_mask(unsigned len)
{
	return len == 0 ? 0 : len >= 32 ? 0xffffffffu : ~(0xffffffffu >> len);
}

/* gen_v4_net - an IPv4 net/mask pattern in one of libwrap's spellings */
static void gen_v4_net(struct buf *out)
{
	static const unsigned lens[] = { 0, 1, 7, 8, 9, 15, 16, 17, 23, 24, 25, 30, 31, 32, 33 };
	uint32_t base = random_v4();
	unsigned len = chance(70) ? PICK(lens) : below(34);
	uint32_t mask = prefix_mask(len);
	uint32_t net = base & mask;
	int form = (int)below(12);

	if (form == 9) { /* non-contiguous mask */
		mask = (uint32_t)rnd() | (uint32_t)rnd();
		net = base & mask;
	}
	if (form == 10 || (form == 11 && chance(50)))
		net = base; /* host bits left set: never matches unless /32 */

	if (form == 7 || (form == 11 && chance(50)))
		v4_odd_text(out, net);
	else if (form == 8)
		buf_add(out, "%u.%u/%u", net >> 24, (net >> 16) & 255, len); /* 2 parts */
	else
		v4_text(out, net);

	buf_add(out, "/");
	if (form == 3 || form == 9) {
		v4_text(out, mask); /* dotted mask (/255.255.255.255 is rejected) */
	} else if (form == 4) {
		v4_odd_text(out, mask);
	} else if (form == 5) {
		static const char *junk[] = { "abc", "x", " ", ".0", "/8" };

		buf_add(out, "%u%s", len, PICK(junk)); /* atoi stops early */
	} else if (form == 6) {
		static const char *odd[] = { "0%u", "+%u", "00%u", "-%u" };

		buf_add(out, PICK(odd), len);
	} else if (form == 8) {
		out->len -= 1; /* "/len" already written above */
		out->p[out->len] = '\0';
	} else {
		buf_add(out, "%u", len);
	}

	/* the boundaries: first, last, just outside, the written net itself */
	add_v4(net & mask);
	add_v4((net & mask) | ~mask);
	add_v4((net & mask) - 1);
	add_v4(((net & mask) | ~mask) + 1);
	add_v4(base);
	add_v4((net & mask) | ((uint32_t)rnd() & ~mask));
	if (form == 9) /* a bit outside the mask, a bit inside flipped */
		add_v4(net ^ (~mask & (uint32_t)rnd()) ^ (mask & (1u << below(32))));
}

/* gen_v4_string - an address written as text: exact, prefix., .suffix, glob */
static void gen_v4_string(struct buf *out)
{
	uint32_t a = random_v4();
	struct buf t = { 0 };
	const char *s;
	size_t n;

	v4_text(&t, a);
	s = buf_str(&t);
	n = strlen(s);
	switch (below(7)) {
	case 0: /* prefix: cut after the 1st..3rd dot */
	case 1: {
		const char *dot = s;

		for (unsigned k = 1 + below(3); k && dot; k--)
			dot = strchr(dot + 1, '.');
		if (dot)
			buf_add(out, "%.*s", (int)(dot - s + 1), s);
		else
			buf_add(out, "%s", s);
		break;
	}
	case 2: { /* .suffix */
		const char *dot = strchr(s + 1 + below((unsigned)n - 1), '.');

		buf_add(out, "%s", dot ? dot : strrchr(s, '.'));
		break;
	}
	case 3: /* glob */
		if (chance(50))
			buf_add(out, "%.*s*", (int)(n - 1 - below(3)), s);
		else
			buf_add(out, "%.*s?", (int)(n - 1), s);
		break;
	case 4:
		v4_odd_text(out, a); /* never equal as a string */
		break;
	default:
		buf_add(out, "%s", s);
	}
	add_v4(a);
	add_v4(a + 1);
	add_v4(a ^ 0x01000000u);
	add_v4(a + 10);
	pool_addf(&q_addrs, "1%s", s);	/* near misses of prefix/suffix */
	pool_addf(&q_addrs, "%s0", s);
	free(t.p);
}

/* ---- IPv6 ---- */

/* random_v6 - fill an address from random bits inside a few neighbourhoods */
static void random_v6(struct in6_addr *a)
{
	for (int i = 0; i < 16; i++)
		a->s6_addr[i] = (uint8_t)rnd();
	switch (below(5)) {
	case 0: /* 2001:db8::/32 */
	case 1:
		a->s6_addr[0] = 0x20, a->s6_addr[1] = 0x01, a->s6_addr[2] = 0x0d, a->s6_addr[3] = 0xb8;
		if (chance(50))
			memset(a->s6_addr + 8, 0, 7);
		break;
	case 2: /* fe80::/64 */
		memset(a->s6_addr, 0, 8);
		a->s6_addr[0] = 0xfe, a->s6_addr[1] = 0x80;
		break;
	case 3: /* ::1, :: or ::ffff:a.b.c.d */
		memset(a->s6_addr, 0, 16);
		if (chance(50)) {
			uint32_t v4 = htonl(random_v4());

			a->s6_addr[10] = a->s6_addr[11] = 0xff;
			memcpy(a->s6_addr + 12, &v4, 4);
		} else {
			a->s6_addr[15] = (uint8_t)below(2);
		}
		break;
	default:
		break;
	}
}

/* v6_text - an IPv6 address, canonical or in a weird but valid spelling */
static void v6_text(struct buf *out, const struct in6_addr *a, bool weird)
{
	char s[INET6_ADDRSTRLEN];

	if (!inet_ntop(AF_INET6, a, s, sizeof(s)))
		die("inet_ntop");
	if (!weird) {
		buf_add(out, "%s", s);
		return;
	}
	switch (below(3)) {
	case 0: /* fully expanded, leading zeros */
		for (int i = 0; i < 16; i += 2)
			buf_add(out, "%s%02x%02x", i ? ":" : "", a->s6_addr[i], a->s6_addr[i + 1]);
		break;
	case 1: /* upper case */
		random_case(out, s);
		break;
	default: /* eight groups without leading zeros */
		for (int i = 0; i < 16; i += 2)
			buf_add(out, "%s%X", i ? ":" : "", (unsigned)(a->s6_addr[i] << 8 | a->s6_addr[i + 1]));
	}
}

/* add_v6 - remember an IPv6 address (canonical text) for queries */
static void add_v6(const struct in6_addr *a)
{
	struct buf b = { 0 };

	v6_text(&b, a, chance(5));
	pool_add(&q_addrs, buf_str(&b));
	if (chance(15))
		pool_add(&q_servers, buf_str(&b));
	free(b.p);
}

/* v6_mask - apply a prefix length to an address; set_host sets host bits */
static void v6_mask(struct in6_addr *a, unsigned len, bool set_host)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * i : 0;
		uint8_t m = (uint8_t)(keep ? 0xff << (8 - keep) : 0);

		a->s6_addr[i] = set_host ? (uint8_t)(a->s6_addr[i] | ~m) : (uint8_t)(a->s6_addr[i] & m);
	}
}

/* gen_v6 - [v6], [v6]/len (many spellings), or an unbracketed address */
static void gen_v6(struct buf *out)
{
	static const unsigned lens[] = { 0, 1, 16, 32, 48, 63, 64, 65, 96, 127, 128 };
	struct in6_addr a, first, last;
	unsigned len = chance(80) ? PICK(lens) : below(130);
	int form = (int)below(10);

	random_v6(&a);
	first = a;
	v6_mask(&first, len > 128 ? 128 : len, false);
	last = first;
	v6_mask(&last, len > 128 ? 128 : len, true);

	if (form == 0) { /* unbracketed: spills into the options field */
		v6_text(out, &a, false);
	} else if (form <= 2) { /* [v6] */
		buf_add(out, "[");
		v6_text(out, &a, chance(40));
		if (chance(10))
			buf_add(out, "%%eth0");
		buf_add(out, "]");
	} else { /* [net]/len */
		static const char *junk[] = { "", "abc", "64x", " " };

		buf_add(out, "[");
		v6_text(out, chance(70) ? &first : &a, chance(30));
		buf_add(out, "]/");
		if (form == 9)
			buf_add(out, "%s", PICK(junk));
		else
			buf_add(out, "%u", len);
	}
	add_v6(&a);
	add_v6(&first);
	add_v6(&last);
	/* just outside: first - 1 and last + 1 */
	for (int i = 15; i >= 0; i--)
		if (first.s6_addr[i]-- != 0)
			break;
	for (int i = 15; i >= 0; i--)
		if (++last.s6_addr[i] != 0)
			break;
	add_v6(&first);
	add_v6(&last);
	if (a.s6_addr[10] == 0xff && a.s6_addr[11] == 0xff && !a.s6_addr[0]) {
		struct buf b = { 0 }; /* mapped: the dotted client form */
		char s[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, a.s6_addr + 12, s, sizeof(s));
		buf_add(&b, "::ffff:%s", s);
		pool_add(&q_addrs, buf_str(&b));
		pool_add(&q_addrs, s);
		free(b.p);
	}
}

/* ---- names ---- */

static const char *const domains[] = {
	"example.com", "example.org", "corp.example.com", "EXAMPLE.com", "example.co",
};
static const char *const hosts[] = { "www", "mail", "host1", "ftp", "a", "web" };

/* add_name_variants - remember names around one host name */
static void add_name_variants(const char *name)
{
	struct buf b = { 0 };

	pool_add(&q_names, name);
	random_case(&b, name);
	pool_add(&q_names, buf_str(&b));
	pool_addf(&q_names, "x%s", name);
	pool_addf(&q_names, "a.%s", name);
	pool_addf(&q_names, "%s.evil", name);
	free(b.p);
}

/* gen_name - a host name pattern: exact, .suffix, prefix., glob, near miss, long */
static void gen_name(struct buf *out)
{
	const char *dom = PICK(domains);
	const char *host = PICK(hosts);
	struct buf name = { 0 };

	buf_add(&name, "%s.%s", host, dom);
	switch (below(10)) {
	case 0:
	case 1:
		random_case(out, buf_str(&name));
		break;
	case 2:
	case 3:
		buf_add(out, ".");
		random_case(out, dom);
		pool_add(&q_names, dom); /* does not match .dom */
		break;
	case 4:
		buf_add(out, "%s.", host); /* prefix */
		pool_add(&q_names, host);
		break;
	case 5: {
		static const char *globs[] = { "*.%s", "%.2s*", "?%s", "*", "?", "*%s" };
		const char *g = PICK(globs);

		buf_add(out, g, strstr(g, "%.2s") ? host : dom);
		break;
	}
	case 6: /* dotless */
		random_case(out, host);
		pool_add(&q_names, host);
		break;
	case 7: { /* long names around the 127-character cut */
		struct buf l = { 0 };
		size_t n = 120 + below(30);

		long_label(&l, n);
		if (chance(50) && l.len > 127)
			buf_add(out, "%.127s", buf_str(&l));
		else
			buf_add(out, "%s", buf_str(&l));
		pool_add(&q_names, buf_str(&l));
		pool_addf(&q_names, "%.127s", buf_str(&l));
		pool_addf(&q_names, "%.126s", buf_str(&l));
		free(l.p);
		break;
	}
	case 8: /* xexample.com vs .example.com vs example.com */
		buf_add(out, "%s", dom);
		pool_addf(&q_names, "x%s", dom);
		pool_addf(&q_names, "www.%s", dom);
		break;
	default:
		buf_add(out, "%s", buf_str(&name));
	}
	add_name_variants(buf_str(&name));
	free(name.p);
}

/* ---- client, user and daemon patterns ---- */

static void gen_host_pattern(struct buf *out, int depth);

/* gen_keyword_pattern - ALL, KNOWN, UNKNOWN, LOCAL, PARANOID in some case */
static void gen_keyword_pattern(struct buf *out)
{
	static const char *const kw[] = { "ALL", "KNOWN", "UNKNOWN", "LOCAL", "PARANOID" };

	add_keyword(out, PICK(kw));
}

/* gen_user_pattern - the user part of user@host */
static void gen_user_pattern(struct buf *out)
{
	static const char *const users[] = { "root", "alice", "bob", "r*t", "al?ce", "ali.",
					     ".ice", "nobody", "Root" };

	if (chance(30)) {
		static const char *const kw[] = { "ALL", "KNOWN", "UNKNOWN" };

		add_keyword(out, PICK(kw));
	} else if (chance(8)) { /* long user names around the 127-character cut */
		struct buf l = { 0 };

		long_label(&l, 120 + below(30));
		buf_add(out, "%.*s", (int)(chance(50) ? 127 : l.len), buf_str(&l));
		pool_add(&q_users, buf_str(&l));
		pool_addf(&q_users, "%.127s", buf_str(&l));
		free(l.p);
	} else {
		const char *u = PICK(users);

		buf_add(out, "%s", u);
		pool_add(&q_users, u);
	}
}

/* gen_weird_host - odd tokens at the edges of libwrap's pattern readers */
static void gen_weird_host(struct buf *out)
{
	static const char *const weird[] = {
		"[", "]", "[]", "[::1", "::1]", "[::1]x", "[::1]/64x", "[10.0.0.1]", "[::1]/0128",
		"[::1]/-1", "[1.2.3.4]/24", "10.0.0.0/8/8", "/24", "10.0.0.0/", "10.0.0.0//24",
		"10.0.0.256/24", "1.2.3.4.5/32", "10.0.0.0/255.255.255.0.0", "10.0.0.0/0.0.0.0",
		"0.0.0.0/0.0.0.0", "10.0.0.0/255.255.255.254", "255.255.255.255/32",
		"255.255.255.255/255.255.255.254", "@", "@@", "a@", "@a@b", "*.3.4", "1.2.*",
		"[2001:db8::*]", "KNOWN@KNOWN", "ALL@ALL", "ALL@", "@ALL", ".", "..", "*", "?", "*@*",
		"0XA.0.0.1", "::ffff:10.0.0.1", "[::ffff:10.0.0.1]/120", "[::]/0", "[::]", "1.2.3.",
		"10.0.0.1.", ".10.0.0.1", "ALL.", ".ALL", "known.", "LOCAL@LOCAL", "PARANOID@ALL",
		"[fe80::1%25eth0]", "[FE80::1%lo]/64", "[::1]/128/", "10.0.0.0/24/", "10.0.0.0/8x/8",
		"0/0", "0.0.0.0/1", "128.0.0.0/1", "127.0.0.1/8", "127.0.0.0/8", "10.0.0.1/32x",
		"\\x41", "10.0.0.1\\", "ex\xe9mple.com", "EX\xc9MPLE.COM", "*.ex\xe9mple.com",
	};
	static const char *const addrs[] = {
		"127.0.0.1", "127.0.0.2", "10.0.0.1", "10.0.0.0", "0.0.0.0", "255.255.255.255",
		"255.255.255.254", "128.0.0.0", "127.255.255.255", "::1", "::", "fe80::1",
		"::ffff:10.0.0.1", "1.2.3.4", "10.0.0.255",
	};
	const char *w = PICK(weird);

	buf_add(out, "%s", w);
	pool_add(&q_addrs, PICK(addrs));
	if (chance(30))
		pool_add(&q_names, w);
	if (strchr(w, '\xe9') || strchr(w, '\xc9')) {
		pool_add(&q_names, "ex\xe9mple.com");
		pool_add(&q_names, "EX\xc9MPLE.COM");
		pool_add(&q_names, "www.ex\xc9mple.com");
	}
}

/* gen_clients_file - write DIR/clients: one word per pattern, blanks and newlines */
static void gen_clients_file(void)
{
	struct buf text = { 0 };
	struct buf path = { 0 };
	unsigned n = 1 + below(5);
	FILE *fp;

	for (unsigned i = 0; i < n; i++) {
		if (chance(10))
			add_keyword(&text, "EXCEPT");
		else if (chance(5))
			buf_add(&text, "# a comment");
		else if (chance(5))
			buf_add(&text, "root@10.0.0.1");
		else if (chance(5))
			buf_add(&text, "/nonexistent/nested");
		else
			gen_host_pattern(&text, 2);
		buf_add(&text, "%s", chance(50) ? "\n" : chance(50) ? " " : ",");
	}
	buf_add(&path, "%s/clients", dir_abs);
	fp = fopen(buf_str(&path), "w");
	if (!fp || fwrite(text.p, 1, text.len, fp) != text.len || fclose(fp) != 0)
		die(buf_str(&path));
	free(text.p);
	free(path.p);
}

/* gen_host_pattern - one client pattern (depth limits user@host nesting) */
static void gen_host_pattern(struct buf *out, int depth)
{
	unsigned k = below(100);

	if (k < 8)
		gen_weird_host(out);
	else if (k < 24)
		gen_v4_net(out);
	else if (k < 34)
		gen_v4_string(out);
	else if (k < 46)
		gen_v6(out);
	else if (k < 64)
		gen_name(out);
	else if (k < 76)
		gen_keyword_pattern(out);
	else if (k < 86 && depth == 0) {
		gen_user_pattern(out);
		buf_add(out, "@");
		gen_host_pattern(out, depth + 1);
	} else if (k < 89 && depth == 0 && dir_abs) {
		if (chance(80)) {
			if (!clients_file_used)
				gen_clients_file();
			clients_file_used = true;
			buf_add(out, "%s/clients", dir_abs);
		} else {
			buf_add(out, "/nonexistent/clients");
		}
	} else if (k < 90) {
		buf_add(out, "@netgroup");
	} else {
		gen_keyword_pattern(out);
	}
}

/* gen_daemon_pattern - one daemon pattern, sometimes daemon@host */
static void gen_daemon_pattern(struct buf *out)
{
	static const char *const daemons[] = {
		"sshd", "in.telnetd", "vsftpd", "/usr/sbin/sshd", "ssh*", "s?hd", ".telnetd",
		"in.", "22", "80", "0", "65535", "65536", "022", "ftpd", "portmap",
	};
	static const char *const kw[] = { "ALL", "KNOWN", "UNKNOWN", "LOCAL" };
	unsigned k = below(100);

	if (k < 15) {
		add_keyword(out, PICK(kw));
	} else if (k < 22) {
		struct buf l = { 0 };

		long_label(&l, 120 + below(20));
		buf_add(out, "%.127s", buf_str(&l));
		pool_add(&q_daemons, buf_str(&l));
		free(l.p);
	} else {
		const char *d = PICK(daemons);

		random_case(out, d);
		pool_add(&q_daemons, d);
	}
	if (chance(12)) { /* daemon@host: the server endpoint */
		struct buf h = { 0 };

		buf_add(out, "@");
		if (chance(70)) {
			gen_host_pattern(&h, 1);
		} else {
			static const char *const local[] = { "127.0.0.1", "[::1]", "localhost", "LOCAL" };

			buf_add(&h, "%s", PICK(local));
			pool_add(&q_servers, "127.0.0.1");
			pool_add(&q_servers, "::1");
		}
		buf_add(out, "%s", buf_str(&h));
		/* server addresses come from the same pools as clients */
		for (int i = 0; i < 3 && q_addrs.n; i++)
			pool_add(&q_servers, pool_pick(&q_addrs));
		free(h.p);
	}
}

/* gen_separator - what separates list items */
static const char *gen_separator(void)
{
	static const char *const seps[] = { " ", ", ", ",", "\t", "  ", " ,", ",,", "\r",
					    " \f", "\v ", ",\r," };

	return chance(70) ? (chance(50) ? " " : ", ") : PICK(seps);
}

/* gen_list - a list of patterns with EXCEPT clauses */
static void gen_list(struct buf *out, bool daemons)
{
	unsigned n = 1 + below(chance(80) ? 3 : 6);

	if (chance(3)) { /* a list starting with EXCEPT */
		add_keyword(out, "EXCEPT");
		buf_add(out, " ");
	}
	for (unsigned i = 0; i < n; i++) {
		if (i)
			buf_add(out, "%s", gen_separator());
		if (i && chance(25)) {
			add_keyword(out, "EXCEPT");
			buf_add(out, "%s", gen_separator());
		}
		if (daemons)
			gen_daemon_pattern(out);
		else
			gen_host_pattern(out, 0);
	}
	if (chance(2)) {
		buf_add(out, " ");
		add_keyword(out, "EXCEPT");
	}
}

/* gen_option - one option, valid or broken */
static void gen_option(struct buf *out, bool last)
{
	static const char *const good[] = {
		"severity auth.info", "severity=local0.notice", "severity info", "linger 5",
		"linger = 10", "keepalive", "spawn /bin/true", "spawn /bin/true %a %h %d",
		"spawn echo a\\:b", "nice", "nice 5", "umask 022", "setenv FOO bar", "rfc931",
		"rfc931 5", "banners /nonexistent/banners", "SEVERITY auth.info", "Keepalive",
		"severity local7.debug", "severity LOCAL0.NOTICE", "LINGER 5", "linger=5",
		"linger =5", "Spawn /bin/true", "setenv A", "setenv %u x", "setenv %n x",
		"setenv X%d y", "setenv %a=", "setenv %c v", "umask 0777", "nice -5", "linger 0",
		"linger 0x10", "rfc931 0", "spawn /bin/true %", "spawn /bin/true %z",
		"spawn \\:", "setenv A=B c", "allow\t", "severity 3", "severity auth.",
		"severity .info", "umask 08", "linger -1", "nice 5x", "banners",
	};
	static const char *const bad[] = {
		"bogus", "allow foo", "deny foo", "severity bogus", "severity auth.bogus", "linger",
		"linger x", "keepalive 1", "spawn", "nice x", "umask 999", "user nosuchuser",
		"rfc931 x", "group nosuchgroup", "", " ", "linger 5x", "twist", "setenv",
		"allow=", "deny =", "keepalive=", "spawn  ", "user nosuchuser.nogroup", "\t",
		"twist /bin/true : allow", "aclexec", "user nobody", "user daemon",
	};

	if (last && chance(45)) {
		static const char *const ad[] = { "allow", "deny", "ALLOW", "Deny", "allow ", " deny" };

		buf_add(out, "%s", PICK(ad));
	} else if (chance(75)) {
		buf_add(out, "%s", PICK(good));
	} else if (chance(20)) {
		buf_add(out, "%s", chance(50) ? "allow" : "deny"); /* not last: an error */
	} else {
		buf_add(out, "%s", PICK(bad));
	}
}

/* gen_rule - one logical rule line, without newline */
static void gen_rule(struct buf *out)
{
	static const char *const colons[] = { ":", ": ", " : ", " :", "\t:\t" };

	gen_list(out, true);
	buf_add(out, "%s", chance(80) ? ": " : PICK(colons));
	gen_list(out, false);
	if (chance(35)) {
		unsigned n = 1 + below(3);

		buf_add(out, "%s", chance(80) ? ": " : PICK(colons));
		for (unsigned i = 0; i < n; i++) {
			if (i)
				buf_add(out, "%s", chance(80) ? " : " : ":");
			gen_option(out, i + 1 == n);
		}
	}
}

/* gen_noise_line - a comment, a blank line, a line without colon, an indented # */
static void gen_noise_line(struct buf *out)
{
	switch (below(6)) {
	case 0:
		buf_add(out, "# a comment");
		break;
	case 1:
		buf_add(out, "# a comment that continues \\"); /* swallows the next line */
		break;
	case 2:
		buf_add(out, "%s", chance(50) ? "" : "   ");
		break;
	case 3:
		buf_add(out, "no colon here ");
		add_keyword(out, "ALL");
		break;
	case 4:
		buf_add(out, "%s# ", chance(50) ? " " : "\t");
		gen_rule(out);
		break;
	default:
		buf_add(out, "#");
		gen_rule(out);
	}
}

/* split_with_continuations - copy a line, inserting `\`-newline at random places */
static void split_with_continuations(struct buf *out, const struct buf *line, const char *eol)
{
	for (size_t i = 0; i < line->len; i++) {
		buf_addn(out, line->p + i, 1);
		if (i + 1 < line->len && chance(4))
			buf_add(out, "\\%s", eol);
	}
}

/* gen_sized_line - a rule padded to a logical length near libwrap's 2046 limit */
static void gen_sized_line(struct buf *line)
{
	size_t want = 2040 + below(12);

	buf_add(line, "sshd: 10.0.0.1");
	while (line->len + 12 < want)
		buf_add(line, " 10.9.9.%u", below(10));
	while (line->len < want)
		buf_add(line, "%s", line->len + 1 == want ? "," : " ");
}

/* gen_table - the text of one file */
static void gen_table(struct buf *out, bool is_deny)
{
	bool crlf = chance(10);
	unsigned n = below(7);
	struct buf line = { 0 };

	for (unsigned i = 0; i < n + 1; i++) {
		const char *eol = crlf || chance(3) ? "\r\n" : "\n";

		buf_reset(&line);
		if (i == n) {
			if (!is_deny || chance(60))
				break;
			add_keyword(&line, "ALL");
			buf_add(&line, "%s", chance(80) ? ": " : ":");
			add_keyword(&line, "ALL");
		} else if (chance(15)) {
			gen_noise_line(&line);
		} else if (chance(4)) {
			gen_sized_line(&line);
		} else {
			gen_rule(&line);
		}
		if (chance(1) && line.len) { /* a NUL or a control byte inside the line */
			static const char bytes[] = { '\0', '\x01', '\x7f', '\xff', '\x0b', '\x0c' };

			line.p[below((unsigned)line.len)] = PICK(bytes);
		}
		if (chance(line.len > 2000 ? 40 : 8)) {
			split_with_continuations(out, &line, eol);
		} else if (chance(2) && line.len > 4) { /* `\`CRLF: not a continuation */
			size_t cut = 1 + below((unsigned)line.len - 2);

			buf_addn(out, line.p, cut);
			buf_add(out, "\\\r\n");
			buf_addn(out, line.p + cut, line.len - cut);
		} else {
			buf_addn(out, line.p, line.len);
		}
		buf_add(out, "%s", eol);
	}
	if (chance(1)) { /* a logical line over libwrap's limit */
		buf_add(out, "sshd:");
		for (int i = 0; i < 300; i++)
			buf_add(out, " 10.9.%d.%d", i / 250, i % 250);
		buf_add(out, "\n");
	}
	if (out->len && chance(7)) { /* missing final newline */
		while (out->len && (out->p[out->len - 1] == '\n' || out->p[out->len - 1] == '\r'))
			out->len--;
		out->p[out->len] = '\0';
	} else if (chance(2)) {
		buf_add(out, "ALL: 10.0.0.1 \\"); /* `\` at EOF */
	}
	free(line.p);
}

/* ---- queries ---- */

/* pick_or - a remembered value with probability pct, else a fallback */
static const char *pick_or(const struct pool *p, unsigned pct, const char *fallback)
{
	const char *s = chance(pct) ? pool_pick(p) : NULL;

	return s ? s : fallback;
}

/* gen_client_addr - a client address: remembered, mapped, or random */
static void gen_client_addr(struct buf *out)
{
	const char *a = pick_or(&q_addrs, 85, NULL);

	if (chance(3)) {
		static const char *const odd[] = {
			"1.2.3", "010.1.2.3", "::ffff:010.1.2.3", "::ffff:1.2.3.4.5", "[::1]",
			"fe80::1%eth0", "FE80::1", "::FFFF:7F00:1", "::ffff:", "0x7f.0.0.1",
			"127.1", "1.2.3.4.", "::ffff:1.2.3.4:80", "unknown", "paranoid",
		};

		buf_add(out, "%s", PICK(odd));
		return;
	}
	if (!a) {
		struct in6_addr v6;

		if (chance(70)) {
			v4_text(out, random_v4());
		} else {
			random_v6(&v6);
			v6_text(out, &v6, false);
		}
		return;
	}
	if (strchr(a, ':') == NULL && chance(15)) {
		static const char *const pfx[] = { "::ffff:", "::FFFF:", "::Ffff:", "0:0:0:0:0:ffff:" };

		buf_add(out, "%s", PICK(pfx));
	}
	buf_add(out, "%s", a);
}

/* gen_query - one query line */
static void gen_query(struct buf *out)
{
	static const char *const daemons[] = { "sshd", "SSHD", "in.telnetd", "telnetd", "vsftpd",
					       "/usr/sbin/sshd", "22", "unknown", "ftpd", "x" };
	static const char *const names[] = { "-", "-", "-", "unknown", "paranoid", "Unknown",
					     "localhost", "web", "host.example.com", "PARANOID",
					     "known", "ALL", "10.0.0.1", "www.example.com.", "1.2.3.4",
					     "localhost.", "*", "LOCAL", "x=y", "=" };
	static const char *const users[] = { "-", "-", "-", "root", "unknown", "alice", "ROOT",
					     "known", "ALL", "*", "r?t", "root@10.0.0.1", "a=b", "%" };

	struct buf addr = { 0 };

	buf_add(out, "%s ", chance(2) ? "-" : pick_or(&q_daemons, 75, PICK(daemons)));
	if (chance(3))
		buf_add(&addr, "-"); /* address unknown */
	else
		gen_client_addr(&addr);
	buf_add(out, "%s", buf_str(&addr));
	if (chance(3) && strcmp(buf_str(&addr), "-")) /* a numeric host name */
		buf_add(out, " %s", buf_str(&addr));
	else
		buf_add(out, " %s", pick_or(&q_names, 50, PICK(names)));
	free(addr.p);
	buf_add(out, " %s", pick_or(&q_users, 35, PICK(users)));
	buf_add(out, " %s\n", pick_or(&q_servers, 40, "-"));
}

/* write_file - DIR/NAME := text */
static void write_file(const char *dir, const char *name, const struct buf *text)
{
	struct buf path = { 0 };
	FILE *fp;

	buf_add(&path, "%s/%s", dir, name);
	fp = fopen(buf_str(&path), "w");
	if (!fp || (text->len && fwrite(text->p, 1, text->len, fp) != text->len) || fclose(fp) != 0)
		die(buf_str(&path));
	free(path.p);
}

/* pool_clear - forget every remembered value */
static void pool_clear(struct pool *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->items[i]);
	free(p->items);
	memset(p, 0, sizeof(*p));
}

/* gen_one - one seed's policy and queries into dir (which must exist) */
static void gen_one(unsigned long long seed, const char *dir, unsigned long nq)
{
	struct buf allow = { 0 }, deny = { 0 }, queries = { 0 };
	char *abs = realpath(dir, NULL);

	if (!abs)
		die(dir);
	dir_abs = abs;
	clients_file_used = false;
	rng_state = seed * 0x2545f4914f6cdd1dULL + 1;

	gen_table(&allow, false);
	gen_table(&deny, true);
	for (unsigned long i = 0; i < nq; i++)
		gen_query(&queries);

	write_file(dir, "hosts.allow", &allow);
	write_file(dir, "hosts.deny", &deny);
	write_file(dir, "queries", &queries);
	if (!clients_file_used) { /* a stale file from an earlier seed must not matter */
		struct buf path = { 0 };

		buf_add(&path, "%s/clients", dir);
		if (remove(buf_str(&path)) != 0 && errno != ENOENT)
			die(buf_str(&path));
		free(path.p);
	}
	free(allow.p);
	free(deny.p);
	free(queries.p);
	free(abs);
	dir_abs = NULL;
	pool_clear(&q_daemons);
	pool_clear(&q_addrs);
	pool_clear(&q_names);
	pool_clear(&q_users);
	pool_clear(&q_servers);
}

/* parse_number - a whole decimal/hex number argument, or exit 2 */
static unsigned long long parse_number(const char *s, const char *what, unsigned long long max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || end == s || v > max) {
		fprintf(stderr, "tool_gen: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned long long seed, count = 0;
	unsigned long nq;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: tool_gen SEED DIR NQUERIES [COUNT]\n"
				"  COUNT: seeds SEED..SEED+COUNT-1 into DIR/<seed>/\n");
		return 2;
	}
	seed = parse_number(argv[1], "seed", ~0ULL);
	nq = (unsigned long)parse_number(argv[3], "query count", 10000000);
	if (argc == 5)
		count = parse_number(argv[4], "seed count", 1000000);
	if (argc == 4) {
		gen_one(seed, argv[2], nq);
		return 0;
	}
	for (unsigned long long i = 0; i < count; i++) {
		struct buf sub = { 0 };

		buf_add(&sub, "%s/%llu", argv[2], seed + i);
		if (mkdir(buf_str(&sub), 0755) != 0 && errno != EEXIST)
			die(buf_str(&sub));
		gen_one(seed + i, buf_str(&sub), nq);
		free(sub.p);
	}
	return 0;
}
