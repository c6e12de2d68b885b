/*
 * test_compile.c - unit tests of the compiler (user/policy/compile.c): the compiled
 * tables, looked up like the kernel's LPM tries, must decide as the reference
 * evaluator does.
 *
 * For a (daemon, address): the longest covering entry must exist; ALLOW/DENY
 * must equal policy_evaluate() for every client name and user tried; ASK's
 * verdict_if_unknown must equal policy_evaluate() with name, user and server
 * unknown (unless flagged BPFWRAP_F_APPROX, which is counted and printed).
 * Named cases cover each pattern kind and libwrap quirk; a property test runs
 * generated policies against addresses at every boundary; a scaling test
 * compiles 1,000,000 rules and prints the time.
 *
 * Errors: a failing check prints "got X, want Y" with the policy and query.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>	/* cmocka needs it; the tests themselves never jump */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "compile.h"
#include "policy.h"

/* ------------------------------------------------------------ helpers */

/* verdict_name - printable verdict */
static const char *verdict_name(int v)
{
	switch (v) {
	case BPFWRAP_ALLOW:
		return "ALLOW";
	case BPFWRAP_DENY:
		return "DENY";
	case BPFWRAP_ASK:
		return "ASK";
	default:
		return "NONE";
	}
}

/* parse - a policy from two texts (NULL = missing file); fails the test on error */
static struct policy *parse(const char *allow, const char *deny)
{
	struct policy *p = NULL;
	int err = policy_parse_buffers(&p, "hosts.allow", allow, allow ? strlen(allow) : 0,
				       "hosts.deny", deny, deny ? strlen(deny) : 0);

	if (err)
		fail_msg("policy_parse_buffers: got %d, want 0", err);
	return p;
}

/* compile - compile a policy; fails the test on error */
static struct compiled_policy *compile(const struct policy *p, const char *const *extra, size_t n)
{
	struct compiled_policy *cp = NULL;
	int err = compile_policy(p, extra, n, &cp);

	if (err)
		fail_msg("compile_policy: got %d, want 0", err);
	return cp;
}

/* lookup - the kernel's LPM lookup simulated over the compiled entries;
 * a v4-mapped address is looked up in the IPv4 table */
static const struct policy_entry *lookup(const struct compiled_policy *cp, const char *daemon,
					 const char *addr, unsigned *plen)
{
	uint32_t id = daemon ? compiled_daemon_id(cp, daemon) : BPFWRAP_DAEMON_OTHER;
	uint8_t a6[16];
	struct in_addr a4;
	const struct policy_entry *best = NULL;
	int best_len = -1;

	if (inet_pton(AF_INET6, addr, a6) == 1) {
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (memcmp(a6, mapped, 12)) {
			for (size_t i = 0; i < cp->n_v6; i++) {
				const struct compiled_v6 *e = &cp->v6[i];
				unsigned l = e->key.prefixlen - 32, full = l / 8, rest = l % 8;

				if (ntohl(e->key.daemon_id) != id || (int)l <= best_len)
					continue;
				if (memcmp(e->key.addr, a6, full))
					continue;
				if (rest && ((e->key.addr[full] ^ a6[full]) & (0xff00 >> rest) & 0xff))
					continue;
				best = &e->entry;
				best_len = (int)l;
			}
			*plen = (unsigned)best_len;
			return best;
		}
		memcpy(&a4.s_addr, a6 + 12, 4);
	} else if (inet_pton(AF_INET, addr, &a4) != 1) {
		fail_msg("bad test address %s", addr);
	}
	for (size_t i = 0; i < cp->n_v4; i++) {
		const struct compiled_v4 *e = &cp->v4[i];
		unsigned l = e->key.prefixlen - 32;
		uint32_t m = l ? 0xffffffffu << (32 - l) : 0;

		if (ntohl(e->key.daemon_id) != id || (int)l <= best_len)
			continue;
		if ((ntohl(e->key.addr) ^ ntohl(a4.s_addr)) & m)
			continue;
		best = &e->entry;
		best_len = (int)l;
	}
	*plen = (unsigned)best_len;
	return best;
}

/* evaluate - the reference verdict (BPFWRAP_ALLOW/DENY) for one request */
static int evaluate(const struct policy *p, const char *daemon, const char *addr,
		    const char *name, const char *user, uint32_t *rule_id)
{
	struct request rq = { .daemon = daemon, .client_addr = addr, .client_name = name,
			      .user = user, .server_port = -1 };
	struct decision d;

	policy_evaluate(p, &rq, &d);
	if (rule_id)
		*rule_id = d.rule ? d.rule->id : 0;
	return d.allow ? BPFWRAP_ALLOW : BPFWRAP_DENY;
}

/* Client names and users every non-ASK verdict must hold for. */
static const char *const names_tried[] = {
	NULL, "unknown", "paranoid", "localhost", "host.example.com", "a.b.example.com",
	"www.example.org", "10.0.0.1", "evil",
};
static const char *const users_tried[] = { NULL, "root", "alice" };

struct stats {
	unsigned checks, ask, approx, failures;
};

/*
 * check_query - compare one (daemon, address) lookup with the evaluator;
 * daemon_eval is the name given to the evaluator (for OTHER: an unnamed one).
 * Returns false (after printing why) on a mismatch.
 */
static bool check_query(const struct policy *p, const struct compiled_policy *cp,
			const char *daemon_eval, const char *addr, const char *what,
			struct stats *st)
{
	unsigned plen;
	const struct policy_entry *e = lookup(cp, daemon_eval, addr, &plen);
	int want;

	st->checks++;
	if (!e) {
		print_error("%s: daemon %s addr %s: got no entry, want one\n", what, daemon_eval, addr);
		st->failures++;
		return false;
	}
	if (e->verdict == BPFWRAP_ASK) {
		st->ask++;
		if (e->flags & BPFWRAP_F_APPROX) {
			st->approx++;
			if (e->verdict_if_unknown != BPFWRAP_DENY) {
				print_error("%s: daemon %s addr %s: approx vif got %s, want DENY\n", what,
					    daemon_eval, addr, verdict_name(e->verdict_if_unknown));
				st->failures++;
				return false;
			}
			return true;
		}
		want = evaluate(p, daemon_eval, addr, NULL, NULL, NULL);
		if (e->verdict_if_unknown != want) {
			print_error("%s: daemon %s addr %s (/%u): ASK verdict_if_unknown got %s, want %s\n",
				    what, daemon_eval, addr, plen, verdict_name(e->verdict_if_unknown),
				    verdict_name(want));
			st->failures++;
			return false;
		}
		return true;
	}
	for (size_t i = 0; i < sizeof(names_tried) / sizeof(names_tried[0]); i++) {
		for (size_t j = 0; j < sizeof(users_tried) / sizeof(users_tried[0]); j++) {
			want = evaluate(p, daemon_eval, addr, names_tried[i], users_tried[j], NULL);
			if (e->verdict != want) {
				print_error("%s: daemon %s addr %s (/%u) name %s user %s: got %s, want %s\n",
					    what, daemon_eval, addr, plen,
					    names_tried[i] ? names_tried[i] : "(unknown)",
					    users_tried[j] ? users_tried[j] : "(unknown)",
					    verdict_name(e->verdict), verdict_name(want));
				st->failures++;
				return false;
			}
		}
	}
	return true;
}

/* ------------------------------------------------------- named cases */

struct named_case {
	const char *name;
	const char *allow, *deny;	/* NULL = missing file */
	const char *daemon;		/* as the kernel would see it */
	const char *addr;
	int want;			/* BPFWRAP_ALLOW, DENY or ASK */
	int want_vif;			/* for ASK: verdict_if_unknown; 0 = don't care */
	uint32_t want_rule;		/* rule id in the entry, or (uint32_t)-1 = don't care */
	uint16_t want_flags;		/* flags that must be set */
};

#define ANY_RULE ((uint32_t)-1)

static const struct named_case named_cases[] = {
	/* Addresses, prefixes, net/mask. */
	{ "exact address", "sshd: 192.0.2.1\n", "ALL: ALL\n", "sshd", "192.0.2.1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "exact address, neighbour", "sshd: 192.0.2.1\n", "ALL: ALL\n", "sshd", "192.0.2.2", BPFWRAP_DENY, 0, 2, 0 },
	{ "non-canonical exact 01.2.3.4 never", "sshd: 01.2.3.4\n", "ALL: ALL\n", "sshd", "1.2.3.4", BPFWRAP_DENY, 0, 2, 0 },
	{ "prefix 192.168.", "sshd: 192.168.\n", "ALL: ALL\n", "sshd", "192.168.44.1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "prefix 192.168. outside", "sshd: 192.168.\n", "ALL: ALL\n", "sshd", "192.169.0.1", BPFWRAP_DENY, 0, 2, 0 },
	{ "prefix 1. is /8 not 12.", "sshd: 1.\n", "ALL: ALL\n", "sshd", "12.0.0.1", BPFWRAP_DENY, 0, 2, 0 },
	{ "prefix 1. inside", "sshd: 1.\n", "ALL: ALL\n", "sshd", "1.200.0.1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "1.2 without dot is exact", "sshd: 1.2\n", "ALL: ALL\n", "sshd", "1.2.3.4", BPFWRAP_DENY, 0, 2, 0 },
	{ "prefix 1.2.3.", "sshd: 1.2.3.\n", "ALL: ALL\n", "sshd", "1.2.3.255", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "net/len", "sshd: 10.0.0.0/8\n", "ALL: ALL\n", "sshd", "10.255.255.255", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "net/len outside", "sshd: 10.0.0.0/8\n", "ALL: ALL\n", "sshd", "11.0.0.0", BPFWRAP_DENY, 0, 2, 0 },
	{ "net/mask", "sshd: 10.1.0.0/255.255.0.0\n", "ALL: ALL\n", "sshd", "10.1.9.9", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "unmasked net never matches", "sshd: 10.1.2.3/16\n", "ALL: ALL\n", "sshd", "10.1.2.3", BPFWRAP_DENY, 0, 2, 0 },
	{ "non-contiguous mask in", "sshd: 10.0.0.1/255.255.0.255\n", "ALL: ALL\n", "sshd", "10.0.3.1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "non-contiguous mask out", "sshd: 10.0.0.1/255.255.0.255\n", "ALL: ALL\n", "sshd", "10.0.3.2", BPFWRAP_DENY, 0, 2, 0 },
	{ "non-contiguous mask too wide: asks", "sshd: 10.0.0.1/255.0.0.255\n", "ALL: ALL\n", "sshd", "10.77.3.1", BPFWRAP_ASK, BPFWRAP_DENY, ANY_RULE, BPFWRAP_F_APPROX },
	{ "non-contiguous mask too wide: outside decides", "sshd: 10.0.0.1/255.0.0.255\n", "ALL: ALL\n", "sshd", "11.77.3.1", BPFWRAP_DENY, 0, 2, 0 },
	{ "255.255.255.255 asks (INADDR_NONE quirk)", "sshd: 0.0.0.0/0.0.0.0\n", "ALL: ALL\n", "sshd", "255.255.255.255", BPFWRAP_ASK, BPFWRAP_DENY, ANY_RULE, BPFWRAP_F_APPROX },
	{ "/0 never matches", "sshd: 0.0.0.0/0\n", "ALL: ALL\n", "sshd", "1.2.3.4", BPFWRAP_DENY, 0, 2, 0 },
	{ "/33 never matches", "sshd: 10.0.0.0/33\n", "ALL: ALL\n", "sshd", "10.0.0.0", BPFWRAP_DENY, 0, 2, 0 },
	{ "/24abc is /24", "sshd: 10.0.0.0/24abc\n", "ALL: ALL\n", "sshd", "10.0.0.77", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "octal net 012.0.0.0/8", "sshd: 012.0.0.0/8\n", "ALL: ALL\n", "sshd", "10.3.3.3", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "suffix .2.3.4 on address", "sshd: .2.3.4\n", "ALL: ALL\n", "sshd", "9.2.3.4", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "suffix .2.3.4 other address", "sshd: .2.3.4\n", "ALL: ALL\n", "sshd", "1.2.3.5", BPFWRAP_DENY, 0, 2, 0 },
	{ "suffix .1.2.3.4 never", "sshd: .1.2.3.4\n", "ALL: ALL\n", "sshd", "1.2.3.4", BPFWRAP_DENY, 0, 2, 0 },
	{ "suffix .3.4 too wide: asks", "sshd: .3.4\n", "ALL: ALL\n", "sshd", "1.2.3.4", BPFWRAP_ASK, BPFWRAP_DENY, ANY_RULE, BPFWRAP_F_APPROX },
	{ "glob 192.168.1.* address matches", "sshd: 192.168.1.*\n", "ALL: ALL\n", "sshd", "192.168.1.200", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "glob 192.168.1.* other", "sshd: 192.168.1.*\n", "ALL: ALL\n", "sshd", "192.168.2.1", BPFWRAP_ASK, BPFWRAP_DENY, ANY_RULE, 0 },
	{ "glob 10.1.2.?1 address matches", "sshd: 10.1.2.?1\n", "ALL: ALL\n", "sshd", "10.1.2.21", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "glob 10.1.2.?1 miss: name may match", "sshd: 10.1.2.?1\n", "ALL: ALL\n", "sshd", "10.1.2.1", BPFWRAP_ASK, BPFWRAP_DENY, 2, 0 },
	{ "glob 10.?.*1 too many: approx", "sshd: 10.?.*1\n", "ALL: ALL\n", "sshd", "10.3.77.21", BPFWRAP_ASK, BPFWRAP_DENY, ANY_RULE, BPFWRAP_F_APPROX },
	{ "glob in deny after allow net", "sshd: 10.0.0.0/8\n", "sshd: 10.*\n", "sshd", "10.3.77.21", BPFWRAP_ALLOW, 0, 1, 0 },
	/* IPv6 */
	{ "[v6]/len", "sshd: [2001:db8::]/32\n", "ALL: ALL\n", "sshd", "2001:db8:1::5", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "[v6]/len outside", "sshd: [2001:db8::]/32\n", "ALL: ALL\n", "sshd", "2001:db9::5", BPFWRAP_DENY, 0, 2, 0 },
	{ "[v6] exact", "sshd: [2001:DB8::1]\n", "ALL: ALL\n", "sshd", "2001:db8::1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "[v6] exact neighbour: no name matches [v6]", "sshd: [2001:DB8::1]\n", "ALL: ALL\n", "sshd", "2001:db8::2", BPFWRAP_DENY, 0, 2, 0 },
	{ "[::1] leaves v4 clients to the kernel", "ALL: 127.0.0.1 [::1]\n", "ALL: ALL\n", "sshd", "10.1.1.1", BPFWRAP_DENY, 0, 2, 0 },
	{ "colon string matches no name", "sshd: fe80::1\n", "ALL: ALL\n", "sshd", "10.1.1.1", BPFWRAP_DENY, 0, 2, 0 },
	{ "hostname-like string may match a name", "sshd: gw1\n", "ALL: ALL\n", "sshd", "10.1.1.1", BPFWRAP_ASK, BPFWRAP_DENY, 2, 0 },
	{ "[v6]/abc is /0", "sshd: [2001:db8::]/abc\n", "ALL: ALL\n", "sshd", "fe80::1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "v4 net vs v6 client", "sshd: 10.0.0.0/8\n", "ALL: ALL\n", "sshd", "2001:db8::1", BPFWRAP_DENY, 0, 2, 0 },
	{ "mapped client uses v4 table", "sshd: 10.0.0.0/8\n", "ALL: ALL\n", "sshd", "::ffff:10.1.1.1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "mapped client vs [::ffff:0:0]/96", "sshd: [::ffff:0.0.0.0]/96\n", "ALL: ALL\n", "sshd", "::ffff:10.1.1.1", BPFWRAP_DENY, 0, 2, 0 },
	/* Name and user dependent patterns. */
	{ ".domain asks, unknown name denies", "sshd: .example.com\n", "ALL: ALL\n", "sshd", "1.2.3.4", BPFWRAP_ASK, BPFWRAP_DENY, 2, 0 },
	{ "KNOWN asks", "sshd: KNOWN\n", "ALL: ALL\n", "sshd", "1.2.3.4", BPFWRAP_ASK, BPFWRAP_DENY, ANY_RULE, 0 },
	{ "UNKNOWN asks, unknown name allows", "sshd: UNKNOWN\n", "ALL: ALL\n", "sshd", "1.2.3.4", BPFWRAP_ASK, BPFWRAP_ALLOW, 1, 0 },
	{ "PARANOID in deny", NULL, "ALL: PARANOID\n", "sshd", "1.2.3.4", BPFWRAP_ASK, BPFWRAP_ALLOW, 0, BPFWRAP_F_DEFAULT },
	{ "LOCAL asks", "sshd: LOCAL\n", "ALL: ALL\n", "sshd", "1.2.3.4", BPFWRAP_ASK, BPFWRAP_DENY, ANY_RULE, 0 },
	{ "user@host asks", "sshd: root@10.0.0.0/8\n", "ALL: ALL\n", "sshd", "10.0.0.1", BPFWRAP_ASK, BPFWRAP_DENY, ANY_RULE, 0 },
	{ "user@host outside net decides", "sshd: root@10.0.0.0/8\n", "ALL: ALL\n", "sshd", "11.0.0.1", BPFWRAP_DENY, 0, 2, 0 },
	{ "ALL@host is the host", "sshd: ALL@10.0.0.0/8\n", "ALL: ALL\n", "sshd", "10.0.0.1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "name rule then same verdict: decided", "sshd: .example.com\nsshd: ALL\n", NULL, "sshd", "1.2.3.4", BPFWRAP_ALLOW, 0, 2, 0 },
	{ "name after address: address wins", "sshd: 10.0.0.0/8\nsshd: .example.com\n", "ALL: ALL\n", "sshd", "10.1.1.1", BPFWRAP_ALLOW, 0, 1, 0 },
	/* EXCEPT */
	{ "EXCEPT hole", "sshd: 10.0.0.0/8 EXCEPT 10.1.0.0/16\n", "ALL: ALL\n", "sshd", "10.1.2.3", BPFWRAP_DENY, 0, 2, 0 },
	{ "EXCEPT outside hole", "sshd: 10.0.0.0/8 EXCEPT 10.1.0.0/16\n", "ALL: ALL\n", "sshd", "10.2.2.3", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "EXCEPT nested", "sshd: 10.0.0.0/8 EXCEPT 10.1.0.0/16 EXCEPT 10.1.2.0/24\n", "ALL: ALL\n", "sshd", "10.1.2.3", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "list starting with EXCEPT never matches", "sshd: EXCEPT 10.0.0.0/8\n", "ALL: ALL\n", "sshd", "11.1.1.1", BPFWRAP_DENY, 0, 2, 0 },
	{ "EXCEPT name pattern", "sshd: ALL EXCEPT .evil.com\n", "ALL: ALL\n", "sshd", "1.1.1.1", BPFWRAP_ASK, BPFWRAP_ALLOW, 1, 0 },
	{ "daemon EXCEPT", "ALL EXCEPT ftpd: ALL\n", "ALL: ALL\n", "ftpd", "1.1.1.1", BPFWRAP_DENY, 0, 2, 0 },
	{ "daemon EXCEPT other", "ALL EXCEPT ftpd: ALL\n", "ALL: ALL\n", "sshd", "1.1.1.1", BPFWRAP_ALLOW, 0, 1, 0 },
	/* Daemons */
	{ "daemon case-insensitive", "SSHD: 10.0.0.0/8\n", "ALL: ALL\n", "sshd", "10.0.0.1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "daemon case-insensitive comm", "sshd: 10.0.0.0/8\n", "ALL: ALL\n", "SshD", "10.0.0.1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "other daemon", "sshd: ALL\n", "ALL: ALL\n", "httpd", "10.0.0.1", BPFWRAP_DENY, 0, 2, 0 },
	{ "daemon glob for other asks fail-closed", "ssh*: ALL\n", "ALL: ALL\n", "httpd", "10.0.0.1", BPFWRAP_ASK, BPFWRAP_DENY, ANY_RULE, BPFWRAP_F_APPROX },
	{ "daemon glob all agree", "ssh*: ALL\n", NULL, "httpd", "10.0.0.1", BPFWRAP_ALLOW, 0, ANY_RULE, 0 },
	{ "port pattern asks", "22: ALL\n", "ALL: ALL\n", "sshd", "10.0.0.1", BPFWRAP_ASK, BPFWRAP_DENY, ANY_RULE, 0 },
	{ "daemon@host asks", "sshd@10.0.0.1: ALL\n", "ALL: ALL\n", "sshd", "10.0.0.1", BPFWRAP_ASK, BPFWRAP_DENY, ANY_RULE, 0 },
	{ "daemon@ALL is the daemon", "sshd@ALL: ALL\n", "ALL: ALL\n", "sshd", "10.0.0.1", BPFWRAP_ALLOW, 0, 1, 0 },
	/* Options and errors */
	{ "deny option in allow", "sshd: ALL: deny\n", NULL, "sshd", "10.0.0.1", BPFWRAP_DENY, 0, 1, 0 },
	{ "allow option in deny", NULL, "sshd: ALL: allow\n", "sshd", "10.0.0.1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "bad option denies", "sshd: ALL: frobnicate\n", NULL, "sshd", "10.0.0.1", BPFWRAP_DENY, 0, 1, 0 },
	{ "empty option field denies", "sshd: ALL:\n", NULL, "sshd", "10.0.0.1", BPFWRAP_DENY, 0, 1, 0 },
	{ "spawn flag", "sshd: ALL: spawn echo %a\n", NULL, "sshd", "10.0.0.1", BPFWRAP_ALLOW, 0, 1, BPFWRAP_F_SPAWN },
	{ "keepalive flag", "sshd: ALL: keepalive\n", NULL, "sshd", "10.0.0.1", BPFWRAP_ALLOW, 0, 1, BPFWRAP_F_KEEPALIVE },
	{ "linger flag", "sshd: ALL: linger 5\n", NULL, "sshd", "10.0.0.1", BPFWRAP_ALLOW, 0, 1, BPFWRAP_F_LINGER },
	{ "default allow flag", "sshd: 10.0.0.0/8\n", NULL, "sshd", "11.0.0.1", BPFWRAP_ALLOW, 0, 0, BPFWRAP_F_DEFAULT },
	{ "deny cut off denies after", "sshd: 10.0.0.0/8\n", "ftpd: ALL", "sshd", "11.0.0.1", BPFWRAP_DENY, 0, 0, 0 },
	{ "deny cut off: earlier allow still decides", "sshd: 10.0.0.0/8\n", "ftpd: ALL", "sshd", "10.0.0.1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "allow cut off: no match there", "sshd: 10.0.0.0/8", NULL, "sshd", "10.0.0.1", BPFWRAP_ALLOW, 0, 0, BPFWRAP_F_DEFAULT },
	{ "allow cut off: earlier rules decide", "sshd: 10.0.0.0/8\nsshd: 11.0.0.0/8", "ALL: ALL\n", "sshd", "10.0.0.1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "indented # is a rule", "  # ALL: ALL\n", "ALL: ALL\n", "sshd", "10.0.0.1", BPFWRAP_ALLOW, 0, 1, 0 },
	{ "continuation joins a token", "sshd: 10.0.0.\\\n1\n", "ALL: ALL\n", "sshd", "10.0.0.1", BPFWRAP_ALLOW, 0, 1, 0 },
};

/* test_named - each named case: the expected entry, and agreement with the evaluator */
static void test_named(void **state)
{
	unsigned failures = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(named_cases) / sizeof(named_cases[0]); i++) {
		const struct named_case *c = &named_cases[i];
		struct policy *p = parse(c->allow, c->deny);
		struct compiled_policy *cp = compile(p, NULL, 0);
		struct stats st = { 0 };
		unsigned plen;
		const struct policy_entry *e = lookup(cp, c->daemon, c->addr, &plen);
		bool ok = e && e->verdict == c->want &&
			  (!c->want_vif || e->verdict_if_unknown == c->want_vif) &&
			  (c->want_rule == ANY_RULE || e->rule_id == c->want_rule) &&
			  (e->flags & c->want_flags) == c->want_flags;

		if (!ok) {
			print_error("case \"%s\" (allow \"%s\" deny \"%s\", %s %s): got %s/%s rule %u flags %#x, "
				    "want %s/%s rule %d flags %#x\n", c->name, c->allow ? c->allow : "(none)",
				    c->deny ? c->deny : "(none)", c->daemon, c->addr,
				    e ? verdict_name(e->verdict) : "no entry",
				    e ? verdict_name(e->verdict_if_unknown) : "-", e ? e->rule_id : 0,
				    e ? e->flags : 0, verdict_name(c->want), verdict_name(c->want_vif),
				    (int)c->want_rule, c->want_flags);
			failures++;
		}
		/* the same query against the evaluator, as the property test does */
		const char *dname = compiled_daemon_id(cp, c->daemon) ? c->daemon : "zzunnamedd";
		if (!check_query(p, cp, dname, c->addr, c->name, &st))
			failures++;
		compiled_policy_free(cp);
		policy_free(p);
	}
	if (failures)
		fail_msg("%u named case checks failed", failures);
}

/* test_daemon_ids - daemon ids: case-insensitive, extra daemons, dedup with OTHER */
static void test_daemon_ids(void **state)
{
	static const char *const extra[] = { "NGINX", "sshd" };
	struct policy *p = parse("sshd: 10.0.0.0/8\nhttpd: ALL\nsmtpd: ALL EXCEPT 1.2.3.4\n", "ALL: ALL\n");
	struct compiled_policy *cp = compile(p, extra, 2);

	(void)state;
	if (compiled_daemon_id(cp, "sshd") == BPFWRAP_DAEMON_OTHER)
		fail_msg("sshd: got OTHER, want its own id");
	if (compiled_daemon_id(cp, "SSHD") != compiled_daemon_id(cp, "sshd"))
		fail_msg("SSHD: got %u, want %u", compiled_daemon_id(cp, "SSHD"), compiled_daemon_id(cp, "sshd"));
	if (compiled_daemon_id(cp, "nginx") != BPFWRAP_DAEMON_OTHER)
		fail_msg("nginx (decides like OTHER): got %u, want 0", compiled_daemon_id(cp, "nginx"));
	if (compiled_daemon_id(cp, "nosuchd") != BPFWRAP_DAEMON_OTHER)
		fail_msg("nosuchd: got %u, want 0", compiled_daemon_id(cp, "nosuchd"));
	for (size_t i = 0; i < cp->n_daemons; i++) {
		for (const char *c = cp->daemons[i].name; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				fail_msg("daemon name %s: got upper case, want lower", cp->daemons[i].name);
		if (cp->daemons[i].id != i + 1)
			fail_msg("daemon %zu id: got %u, want %zu", i, cp->daemons[i].id, i + 1);
	}
	if (cp->n_daemons != 3)
		fail_msg("daemons: got %zu, want 3 (sshd, httpd, smtpd)", cp->n_daemons);
	if (cp->n_rules != 4 || !cp->rules || cp->rules[3].id != 4 || cp->rules[3].rule != &p->deny.rules[0])
		fail_msg("rules: got %u, want 4 with metadata", cp->n_rules);
	compiled_policy_free(cp);
	policy_free(p);
}

/* test_extra_daemon_precision - a daemon glob asks for unnamed daemons, but a
 * name given by the caller (cgroup, listening service) gets an exact table */
static void test_extra_daemon_precision(void **state)
{
	static const char *const extra[] = { "sshd", "httpd" };
	struct policy *p = parse("ssh*: 10.0.0.0/8\n", "ALL: ALL\n");
	struct compiled_policy *plain = compile(p, NULL, 0), *named = compile(p, extra, 2);
	unsigned plen;
	const struct policy_entry *e0 = lookup(plain, "sshd", "10.1.1.1", &plen);
	const struct policy_entry *e1 = lookup(named, "sshd", "10.1.1.1", &plen);
	const struct policy_entry *e2 = lookup(named, "httpd", "10.1.1.1", &plen);
	int g0 = e0 ? e0->verdict : 0, g1 = e1 ? e1->verdict : 0, g2 = e2 ? e2->verdict : 0;
	uint16_t f0 = e0 ? e0->flags : 0;

	(void)state;
	compiled_policy_free(plain);
	compiled_policy_free(named);
	policy_free(p);
	if (g0 != BPFWRAP_ASK || !(f0 & BPFWRAP_F_APPROX))
		fail_msg("sshd unnamed: got %s flags %#x, want ASK with F_APPROX", verdict_name(g0), f0);
	if (g1 != BPFWRAP_ALLOW)
		fail_msg("sshd named by the caller: got %s, want ALLOW", verdict_name(g1));
	if (g2 != BPFWRAP_DENY)
		fail_msg("httpd named by the caller: got %s, want DENY", verdict_name(g2));
}

/* test_small_output - merging: a /0-only policy gives one entry per family */
static void test_small_output(void **state)
{
	struct policy *p = parse("ALL: 10.0.0.0/9 10.128.0.0/9\n", "ALL: ALL\n");
	struct compiled_policy *cp = compile(p, NULL, 0);

	(void)state;
	/* rule 1 covers 10/8 (two /9 halves merged), rule 2 the rest, and
	 * 255.255.255.255/32 always asks */
	if (cp->n_v4 != 3 || cp->n_v6 != 1)
		fail_msg("entries: got %zu v4 + %zu v6, want 3 + 1", cp->n_v4, cp->n_v6);
	compiled_policy_free(cp);
	policy_free(p);
}

/* test_unreadable_deny - an unreadable hosts.deny denies all that reaches it */
static void test_unreadable_deny(void **state)
{
	struct policy *p = parse("sshd: 10.0.0.0/8\n", "");
	struct compiled_policy *cp;
	const struct policy_entry *e;
	struct stats st = { 0 };
	unsigned plen;

	(void)state;
	p->deny.state = TABLE_UNREADABLE;	/* as policy_load() records EACCES */
	cp = compile(p, NULL, 0);
	e = lookup(cp, "sshd", "11.0.0.1", &plen);
	if (!e || e->verdict != BPFWRAP_DENY || e->rule_id != 0)
		fail_msg("sshd 11.0.0.1: got %s rule %u, want DENY rule 0", e ? verdict_name(e->verdict) : "none",
			 e ? e->rule_id : 0);
	e = lookup(cp, "sshd", "10.0.0.1", &plen);
	if (!e || e->verdict != BPFWRAP_ALLOW)
		fail_msg("sshd 10.0.0.1: got %s, want ALLOW", e ? verdict_name(e->verdict) : "none");
	check_query(p, cp, "sshd", "11.0.0.1", "unreadable deny", &st);
	check_query(p, cp, "zzunnamedd", "2001:db8::1", "unreadable deny", &st);
	if (st.failures)
		fail_msg("unreadable deny: got %u disagreements with the evaluator, want 0", st.failures);
	compiled_policy_free(cp);
	policy_free(p);
}

/* test_setenv_dynamic - a setenv with % may fail per request: ask */
static void test_setenv_dynamic(void **state)
{
	struct policy *p = parse("sshd: 10.0.0.0/8: setenv X%n 1\n", NULL);
	struct compiled_policy *cp = compile(p, NULL, 0);
	unsigned plen;
	const struct policy_entry *e = lookup(cp, "sshd", "10.0.0.1", &plen);

	bool dynamic = p->allow.n_rules && p->allow.rules[0].options_dynamic;
	int got = e ? e->verdict : 0;

	(void)state;
	compiled_policy_free(cp);
	policy_free(p);
	if (!dynamic)
		fail_msg("setenv X%%n 1: got options_dynamic false, want true (the parser must mark it)");
	if (got != BPFWRAP_ASK)
		fail_msg("sshd 10.0.0.1: got %s, want ASK", verdict_name(got));
}

/* ------------------------------------------- rule named in U */

/* test_rule_unknown_world - a kernel-decided entry names the rule libwrap
 * (and the evaluator) match with name, user and server unknown, even when
 * an earlier rule of the same effect only may match there (a netgroup never
 * does without NIS): per-rule counters and logs name that rule */
static void test_rule_unknown_world(void **state)
{
	static const struct {
		const char *name, *allow, *deny, *daemon, *addr;
	} cases[] = {
		{ "netgroup deny, then deny file", "sshd: @netgroup: deny\n", "ALL: ALL\n", "sshd",
		  "10.0.0.1" },
		{ "netgroup allow, then allow by address", "sshd: @ng\nsshd: 10.0.0.0/8\n",
		  "ALL: ALL\n", "sshd", "10.0.0.1" },
		{ "certain first rule", "sshd: 10.0.0.0/8\nsshd: @ng\n", "ALL: ALL\n", "sshd",
		  "10.0.0.1" },
		{ "netgroup, other daemon", "ALL: @ng: deny\nALL: 10.0.0.0/8: deny\n", NULL, "ftpd",
		  "10.2.3.4" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy *p = parse(cases[i].allow, cases[i].deny);
		struct compiled_policy *cp = compile(p, NULL, 0);
		unsigned plen;
		const struct policy_entry *e = lookup(cp, cases[i].daemon, cases[i].addr, &plen);
		uint32_t want_rule = 0;
		int want = evaluate(p, cases[i].daemon, cases[i].addr, NULL, NULL, &want_rule);
		int got = e ? e->verdict : 0;
		uint32_t got_rule = e ? e->rule_id : 0;

		compiled_policy_free(cp);
		policy_free(p);
		if (got != want)
			fail_msg("%s: verdict got %s, want %s", cases[i].name, verdict_name(got),
				 verdict_name(want));
		if (got_rule != want_rule)
			fail_msg("%s: rule got %u, want %u", cases[i].name, got_rule, want_rule);
	}
}

/* --------------------------------------------------- property test */

/* A tiny deterministic generator (xorshift). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* rnd - next random number below n */
static unsigned rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % n);
}

struct sbuf {
	char s[8192];
	size_t n;
};

/* sb_add - append formatted text (silently cut at the buffer's end) */
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->n >= sizeof(b->s) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->s + b->n, sizeof(b->s) - b->n, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->n = b->n + (size_t)n < sizeof(b->s) ? b->n + (size_t)n : sizeof(b->s) - 1;
}

/* A /path pattern file the generator refers to (made by test_property). */
static char pattern_file[64];

/* Addresses patterns are built from, so that rules overlap. */
static const uint32_t bases[] = { 0x0a000000, 0x0a010000, 0x0a010200, 0xc0a80100, 0x01020304, 0xc0a80000 };
static const char *const v6_bases[] = { "2001:db8::", "2001:db8:1::", "fe80::", "::1" };
static const char *const daemons[] = { "sshd", "ftpd", "httpd" };

/* gen_client - one client pattern; addresses worth testing go to probes */
static void gen_client(struct sbuf *b, uint32_t *probes, size_t *np)
{
	uint32_t base = bases[rnd(6)];
	unsigned len = 8 + rnd(25);
	uint32_t mask = len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
	uint32_t net = base & mask;
	unsigned k = rnd(25);

	if (*np < 60) {
		probes[(*np)++] = net;
		probes[(*np)++] = (net | ~mask) + 1;
		probes[(*np)++] = net - 1;
		probes[(*np)++] = net | ~mask;
	}
	switch (k) {
	case 0: case 1: case 2: case 3:
		sb_add(b, "%u.%u.%u.%u/%u", net >> 24, net >> 16 & 255, net >> 8 & 255, net & 255, len);
		break;
	case 4:
		sb_add(b, "%u.%u.%u.%u/%u.%u.%u.%u", net >> 24, net >> 16 & 255, net >> 8 & 255, net & 255,
		       mask >> 24, mask >> 16 & 255, mask >> 8 & 255, mask & 255);
		break;
	case 5:	/* non-contiguous mask */
		sb_add(b, "%u.0.%u.0/255.0.255.0", base >> 24, base >> 8 & 255);
		break;
	case 6:	/* the unmasked-net quirk */
		sb_add(b, "%u.%u.%u.%u/16", base >> 24, base >> 16 & 255, base >> 8 & 255, (base & 255) | 1);
		break;
	case 7:
		sb_add(b, "%u.%u.%u.%u", base >> 24, base >> 16 & 255, base >> 8 & 255, base & 255);
		break;
	case 8:
		sb_add(b, "%u.%u.", base >> 24, base >> 16 & 255);
		break;
	case 9:
		sb_add(b, "%u.", base >> 24);
		break;
	case 10:
		if (rnd(2))
			sb_add(b, ".%u.%u", base >> 8 & 255, base & 255);
		else
			sb_add(b, ".%u.%u.%u", base >> 16 & 255, base >> 8 & 255, base & 255);
		break;
	case 11:
		sb_add(b, "%u.%u.%u.*", base >> 24, base >> 16 & 255, base >> 8 & 255);
		break;
	case 12:
		sb_add(b, "%s", rnd(2) ? ".example.com" : "host.example.com");
		break;
	case 13:
		sb_add(b, "%s", (const char *[]){ "KNOWN", "UNKNOWN", "LOCAL", "PARANOID" }[rnd(4)]);
		break;
	case 14:
		sb_add(b, "ALL");
		break;
	case 15:
		sb_add(b, "[%s]/%u", v6_bases[rnd(4)], 16 + rnd(113));
		break;
	case 16:
		sb_add(b, "[%s1]", v6_bases[rnd(3)]);
		break;
	case 17:
		sb_add(b, "%s@%u.%u.0.0/16", rnd(2) ? "root" : "ALL", base >> 24, base >> 16 & 255);
		break;
	case 18:
		sb_add(b, "%u.?.*", base >> 24);
		break;
	case 19:
		sb_add(b, "%u.%u.%u.%u", base >> 24, base >> 16 & 255, base >> 8 & 255, (base & 255) + 1);
		break;
	case 20:
		sb_add(b, "*.%u", base & 255);
		break;
	case 21:
		sb_add(b, "%u.%u.%u.1?", base >> 24, base >> 16 & 255, base >> 8 & 255);
		break;
	case 22:
		sb_add(b, "%s", pattern_file[0] ? pattern_file : "ALL");
		break;
	default:
		sb_add(b, "%u.%u.%u.0/24", base >> 24, base >> 16 & 255, base >> 8 & 255);
		break;
	}
}

/* gen_rule - one rule line */
static void gen_rule(struct sbuf *b, uint32_t *probes, size_t *np)
{
	unsigned d = rnd(10), n = 1 + rnd(3);

	if (d < 4)
		sb_add(b, "%s", daemons[rnd(3)]);
	else if (d < 7)
		sb_add(b, "ALL");
	else if (d == 7)
		sb_add(b, "ALL EXCEPT %s", daemons[rnd(3)]);
	else if (d == 8)
		sb_add(b, "%s", (const char *[]){ "ssh*", "22", "KNOWN", "sshd@10.1.0.0/16", "ftpd@ALL" }[rnd(5)]);
	else
		sb_add(b, "%s, %s", daemons[rnd(3)], daemons[rnd(3)]);
	sb_add(b, ": ");
	for (unsigned i = 0; i < n; i++) {
		if (i)
			sb_add(b, rnd(4) ? " " : " EXCEPT ");
		gen_client(b, probes, np);
	}
	switch (rnd(13)) {
	case 5:
		sb_add(b, ": setenv X%%n 1");
		break;
	case 0:
		sb_add(b, ": deny");
		break;
	case 1:
		sb_add(b, ": allow");
		break;
	case 2:
		sb_add(b, ": spawn echo %%a");
		break;
	case 3:
		sb_add(b, ": keepalive");
		break;
	case 4:
		sb_add(b, ": bogus");
		break;
	default:
		break;
	}
	sb_add(b, "\n");
}

/* probe_text - an address as text, in one of its spellings */
static void probe_text(uint32_t a, unsigned how, char *buf, size_t size)
{
	if (how == 1)
		snprintf(buf, size, "::ffff:%u.%u.%u.%u", a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255);
	else
		snprintf(buf, size, "%u.%u.%u.%u", a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255);
}

/* test_property - generated policies agree with the evaluator at every boundary */
static void test_property(void **state)
{
	static const char *const v6_probes[] = {
		"2001:db8::", "2001:db8::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db7:ffff::",
		"2001:db9::", "2001:db8:1::", "2001:db8:1::1", "fe80::", "fe80::1", "::1", "::2", "::",
		"fe7f:ffff::", "::1.2.3.4",
	};
	struct stats st = { 0 };
	unsigned policies = 300;
	char *e = getenv("BPFWRAP_TEST_POLICIES");

	(void)state;
	if (e && atoi(e) > 0)
		policies = (unsigned)atoi(e);
	{
		static const char words[] = "10.1.0.0/16 .example.com\n192.168.1.\n[2001:db8::]/48\n";
		int fd;

		snprintf(pattern_file, sizeof(pattern_file), "/tmp/bpfwrap-test-compile.XXXXXX");
		fd = mkstemp(pattern_file);
		if (fd < 0 || write(fd, words, sizeof(words) - 1) != (ssize_t)(sizeof(words) - 1))
			fail_msg("pattern file: got an error, want a file");
		close(fd);
	}
	for (unsigned iter = 0; iter < policies && st.failures < 5; iter++) {
		struct sbuf allow = { .n = 0 }, deny = { .n = 0 };
		uint32_t probes[80];
		size_t np = 0;
		unsigned na = rnd(6), nd = rnd(5);

		for (unsigned i = 0; i < na; i++)
			gen_rule(&allow, probes, &np);
		for (unsigned i = 0; i < nd; i++)
			gen_rule(&deny, probes, &np);
		if (rnd(8) == 0 && deny.n)
			deny.s[--deny.n] = 0;	/* no final newline: cut off */
		if (rnd(10) == 0 && allow.n)
			allow.s[--allow.n] = 0;
		if (rnd(10) == 0)
			sb_add(&deny, "ALL: ALL\n");
		allow.s[allow.n] = deny.s[deny.n] = 0;

		struct policy *p = parse(allow.s, deny.s);
		struct compiled_policy *cp = compile(p, NULL, 0);
		char what[16600];

		snprintf(what, sizeof(what), "policy %u\n--- hosts.allow\n%s--- hosts.deny\n%s\n---", iter,
			 allow.s, deny.s);
		probes[np++] = 0;
		probes[np++] = 0xffffffffu;
		probes[np++] = 0x0a000001u;
		for (unsigned d = 0; d < 4; d++) {
			const char *dn = d < 3 ? daemons[d] : "otherd";

			for (size_t i = 0; i < np; i++) {
				char text[64];

				for (unsigned how = 0; how < 2; how++) {
					probe_text(probes[i], how, text, sizeof(text));
					check_query(p, cp, dn, text, what, &st);
				}
			}
			for (size_t i = 0; i < sizeof(v6_probes) / sizeof(v6_probes[0]); i++)
				check_query(p, cp, dn, v6_probes[i], what, &st);
		}
		compiled_policy_free(cp);
		policy_free(p);
	}
	unlink(pattern_file);
	printf("# property: %u policies, %u queries, %u ASK (%u approx), %u failures\n", policies,
	       st.checks, st.ask, st.approx, st.failures);
	if (st.failures)
		fail_msg("property: got %u failures, want 0", st.failures);
}

/* ------------------------------------------------------------ scaling */

/* elapsed - seconds since t0 */
static double elapsed(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* scale_once - compile n random `ALL : a.b.c.d/len` rules; returns seconds */
static double scale_once(size_t n, size_t *entries)
{
	size_t cap = n * 32 + 64, off = 0;
	char *text = malloc(cap);
	struct policy *p;
	struct compiled_policy *cp;
	struct timespec t0;
	double secs;

	assert_non_null(text);
	for (size_t i = 0; i < n; i++) {
		unsigned len = 16 + rnd(17);
		uint32_t a = ((uint32_t)rnd(1u << 16) << 16 | rnd(1u << 16));

		a &= len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
		off += (size_t)snprintf(text + off, cap - off, "ALL : %u.%u.%u.%u/%u\n", a >> 24,
					a >> 16 & 255, a >> 8 & 255, a & 255, len);
	}
	p = parse(text, "ALL: ALL\n");
	free(text);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cp = compile(p, NULL, 0);
	secs = elapsed(&t0);
	*entries = cp->n_v4 + cp->n_v6;
	/* spot checks against the evaluator (which is linear in the rules: few) */
	{
		unsigned wrong = 0;

		for (unsigned i = 0; i < 40; i++) {
			char addr[32];
			uint32_t a = (uint32_t)rnd(1u << 16) << 16 | rnd(1u << 16);

			if (i < 100 && i < p->allow.n_rules) {
				const struct pattern *pt = &p->allow.rules[rnd((unsigned)p->allow.n_rules)].clients.items[0];
				uint32_t net;

				memcpy(&net, pt->net.s6_addr, 4);
				a = ntohl(net) + (i & 1);
			}
			unsigned plen;
			const struct policy_entry *e;
			int want;

			probe_text(a, 0, addr, sizeof(addr));
			e = lookup(cp, "sshd", addr, &plen);
			want = evaluate(p, "sshd", addr, NULL, NULL, NULL);
			if (!e || e->verdict != want) {
				print_error("scale %zu: %s: got %s, want %s\n", n, addr,
					    e ? verdict_name(e->verdict) : "no entry", verdict_name(want));
				wrong++;
			}
		}
		if (wrong)
			fail_msg("scale %zu: got %u wrong lookups, want 0", n, wrong);
	}
	compiled_policy_free(cp);
	policy_free(p);
	return secs;
}

/* test_scale - 10k, 100k and 1M rules compile; times printed, bound generous */
static void test_scale(void **state)
{
	static const size_t sizes[] = { 10000, 100000, 1000000 };

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		size_t entries;
		double s = scale_once(sizes[i], &entries);

		printf("# scale: %zu rules compiled in %.3f s, %zu entries\n", sizes[i], s, entries);
		if (s > 20.0)
			fail_msg("scale %zu: got %.1f s, want < 20 s", sizes[i], s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_named),
		cmocka_unit_test(test_daemon_ids),
		cmocka_unit_test(test_extra_daemon_precision),
		cmocka_unit_test(test_small_output),
		cmocka_unit_test(test_unreadable_deny),
		cmocka_unit_test(test_setenv_dynamic),
		cmocka_unit_test(test_rule_unknown_world),
		cmocka_unit_test(test_property),
		cmocka_unit_test(test_scale),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
