/*
 * test_guard_conf.c - the extensions file parser (user/policy/extensions.c): named
 * cases of valid lines with the options they give, of broken lines with the
 * diagnostic they must produce (file:line:col and message), of addresses
 * and durations, and of the reference matcher (first matching line wins,
 * EXCEPT, v4-mapped clients). No root needed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "extensions.h"

/* parse - parse text or fail the test */
static struct guard_conf *parse(const char *text)
{
	struct guard_conf *c = NULL;
	int err = guard_conf_parse(text, strlen(text), "bpfwrap.conf", &c);

	if (err)
		fail_msg("parse: got %s, want 0", strerror(-err));
	return c;
}

/* A line that must parse, and what its first rule must say. */
struct ok_case {
	const char *name;
	const char *text;
	size_t rules;
	uint32_t flags;		/* rule 0 */
	uint32_t deny_s, per_source, instances, cps_rate, cps_burst;
	size_t daemons, ports, clients;
	bool all_daemons, all_clients;
};

static const struct ok_case ok_cases[] = {
	{ "trap_port_range", "2000-2019/tcp : ALL : trap 2s\n", 1, GUARD_F_TRAP, 2, 0, 0, 0, 0,
	  0, 1, 0, false, true },
	{ "trap_default_time", "telnetd : ALL : trap\n", 1, GUARD_F_TRAP, GUARD_DEFAULT_TRAP_S, 0,
	  0, 0, 0, 1, 0, 0, false, true },
	{ "trap_forever", "23/tcp, 69/udp : ALL EXCEPT 10.0.0.0/8 : trap forever\n", 1, GUARD_F_TRAP,
	  0, 0, 0, 0, 0, 0, 2, 1, false, true },
	{ "trap_minutes_equals", "telnetd: ALL: trap = 15m\n", 1, GUARD_F_TRAP, 900, 0, 0, 0, 0, 1,
	  0, 0, false, true },
	{ "limits", "sshd : ALL : per_source 4 : instances 100 : cps 10/20\n", 1,
	  GUARD_F_PER_SOURCE | GUARD_F_INSTANCES | GUARD_F_CPS, 0, 4, 100, 10, 20, 1, 0, 0, false,
	  true },
	{ "cps_burst_defaults_to_rate", "sshd : ALL : cps 5\n", 1, GUARD_F_CPS, 0, 0, 0, 5, 5, 1, 0,
	  0, false, true },
	{ "reject_prefixes", "ALL : 192.0.2.0/24, [2001:db8::]/32 198.51.100.7 : reject\n", 1,
	  GUARD_F_REJECT, 0, 0, 0, 0, 0, 0, 0, 3, true, false },
	{ "drop_names_case", "SSHD, Ftpd : 10. : drop\n", 1, GUARD_F_DROP, 0, 0, 0, 0, 0, 2, 0, 1,
	  false, false },
	{ "comments_continuation", "# comment\n\n  # indented comment\nsshd : \\\n ALL : per_source 2\n",
	  1, GUARD_F_PER_SOURCE, 0, 2, 0, 0, 0, 1, 0, 0, false, true },
	{ "trap_udp_unproven", "69/udp, 5069/udp : ALL : trap 1h : unproven\n", 1,
	  GUARD_F_TRAP | GUARD_F_UNPROVEN, 3600, 0, 0, 0, 0, 0, 2, 0, false, true },
	{ "crlf_and_no_final_newline", "sshd : ALL : instances 3\r\nftpd : ALL : reject", 2,
	  GUARD_F_INSTANCES, 0, 0, 3, 0, 0, 1, 0, 0, false, true },
};

/* test_ok_cases - valid lines give exactly the options they name */
static void test_ok_cases(void **state)
{
	int misses = 0;

	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct ok_case *k = &ok_cases[i];
		struct guard_conf *c = parse(k->text);
		const struct guard_conf_rule *r = c->n_rules ? &c->rules[0] : NULL;

		if (c->n_errors || c->n_rules != k->rules || !r) {
			printf("%s: got %zu rules, %zu errors (%s), want %zu rules, 0 errors\n", k->name,
			       c->n_rules, c->n_errors, c->n_diags ? c->diags[0].msg : "", k->rules);
			misses++;
		} else if (r->opt.flags != k->flags || r->opt.deny_s != k->deny_s ||
			   r->opt.per_source != k->per_source || r->opt.instances != k->instances ||
			   r->opt.cps_rate != k->cps_rate || r->opt.cps_burst != k->cps_burst) {
			printf("%s: got flags %#x deny %u ps %u inst %u cps %u/%u, want flags %#x deny "
			       "%u ps %u inst %u cps %u/%u\n", k->name, r->opt.flags, r->opt.deny_s,
			       r->opt.per_source, r->opt.instances, r->opt.cps_rate, r->opt.cps_burst,
			       k->flags, k->deny_s, k->per_source, k->instances, k->cps_rate,
			       k->cps_burst);
			misses++;
		} else if (r->n_daemons != k->daemons || r->n_ports != k->ports ||
			   r->n_clients != k->clients || r->all_daemons != k->all_daemons ||
			   r->all_clients != k->all_clients) {
			printf("%s: got %zu daemons %zu ports %zu clients all %d/%d, want %zu %zu %zu "
			       "all %d/%d\n", k->name, r->n_daemons, r->n_ports, r->n_clients,
			       r->all_daemons, r->all_clients, k->daemons, k->ports, k->clients,
			       k->all_daemons, k->all_clients);
			misses++;
		}
		guard_conf_free(c);
	}
	assert_int_equal(misses, 0);
}

/* A broken line and the diagnostic it must give. */
struct err_case {
	const char *name;
	const char *text;
	unsigned line, col;
	const char *message;	/* substring */
};

static const struct err_case err_cases[] = {
	{ "two_fields", "sshd : ALL\n", 1, 1, "want 'daemon_list : client_list : option" },
	{ "unknown_option", "sshd : ALL : banner /x\n", 1, 14, "unknown option 'banner'" },
	{ "host_name_client", "sshd : .example.com : reject\n", 1, 8,
	  "decided in the kernel from the address only" },
	{ "known_client", "sshd : KNOWN : reject\n", 1, 8, "address only" },
	{ "bad_prefix_len", "sshd : 10.0.0.0/33 : reject\n", 1, 8, "bad client '10.0.0.0/33'" },
	{ "bad_mask", "sshd : 10.0.0.0/255.0.255.0 : reject\n", 1, 8, "bad client" },
	{ "second_except", "sshd : ALL EXCEPT 10. EXCEPT 10.1. : reject\n", 1, 23, "second EXCEPT" },
	{ "daemon_except", "ALL EXCEPT sshd : ALL : reject\n", 1, 5, "EXCEPT in a daemon list" },
	{ "bad_port", "70000/tcp : ALL : trap\n", 1, 1, "bad port or range" },
	{ "bad_proto", "23/sctp : ALL : trap\n", 1, 1, "want PORT/tcp or PORT/udp" },
	{ "port_range_too_big", "1-2000/tcp : ALL : trap\n", 1, 1, "names more than 1024 ports" },
	{ "port_without_trap", "23/tcp : ALL : reject\n", 1, 1, "takes only the trap option" },
	{ "trap_with_limits", "telnetd : ALL : trap 1h : per_source 2\n", 1, 1,
	  "other options on its line" },
	{ "bad_trap_time", "telnetd : ALL : trap 5y\n", 1, 17, "bad trap time '5y'" },
	{ "unproven_without_trap", "sshd : ALL : unproven\n", 1, 1, "unproven goes with trap" },
	{ "unproven_value", "69/udp : ALL : trap : unproven yes\n", 1, 23,
	  "unproven takes no value" },
	{ "unproven_with_limits", "telnetd : ALL : trap : unproven : instances 2\n", 1, 1,
	  "other options on its line" },
	{ "zero_limit", "sshd : ALL : per_source 0\n", 1, 14, "bad per_source '0'" },
	{ "huge_limit", "sshd : ALL : instances 99999999\n", 1, 14, "bad instances" },
	{ "bad_cps", "sshd : ALL : cps 10/x\n", 1, 14, "bad cps '10/x'" },
	{ "reject_and_drop", "sshd : ALL : reject : drop\n", 1, 1, "reject and drop on one line" },
	{ "reject_value", "sshd : ALL : reject yes\n", 1, 14, "reject takes no value" },
	{ "empty_clients", "sshd : : reject\n", 1, 1, "empty client list" },
	{ "except_first", "sshd : EXCEPT 10. : reject\n", 1, 8, "EXCEPT needs a list before it" },
	{ "error_on_line_3", "# c\nsshd : ALL : reject\nftpd : foo : reject\n", 3, 8,
	  "bad client 'foo'" },
	/* a continued line is reported at its first line; columns count in the joined text */
	{ "continued_line_number", "sshd : \\\nALL : \\\nbogus\n", 1, 16, "unknown option 'bogus'" },
};

/* test_err_cases - each broken line names its place and its fault */
static void test_err_cases(void **state)
{
	int misses = 0;

	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *k = &err_cases[i];
		struct guard_conf *c = parse(k->text);
		bool found = false;

		for (size_t j = 0; j < c->n_diags && !found; j++)
			found = c->diags[j].error && c->diags[j].line == k->line &&
				c->diags[j].col == k->col && strstr(c->diags[j].msg, k->message);
		if (!found) {
			printf("%s: got", k->name);
			for (size_t j = 0; j < c->n_diags; j++)
				printf(" [%u:%u %s: %s]", c->diags[j].line, c->diags[j].col,
				       c->diags[j].error ? "error" : "warning", c->diags[j].msg);
			printf("%s, want error %u:%u containing \"%s\"\n", c->n_diags ? "" : " nothing",
			       k->line, k->col, k->message);
			misses++;
		}
		guard_conf_free(c);
	}
	assert_int_equal(misses, 0);
}

/* test_warning_all_all_trap - a trap on everything parses but warns */
static void test_warning_all_all_trap(void **state)
{
	struct guard_conf *c = parse("ALL : ALL : trap\n");

	assert_int_equal(c->n_errors, 0);
	if (c->n_diags != 1 || c->diags[0].error || !strstr(c->diags[0].msg, "bans every client"))
		fail_msg("got %zu diagnostics (%s), want one warning \"bans every client\"", c->n_diags,
			 c->n_diags ? c->diags[0].msg : "");
	guard_conf_free(c);
}

/* test_warning_unproven_tcp_only - unproven on TCP ports alone does nothing: a warning */
static void test_warning_unproven_tcp_only(void **state)
{
	struct guard_conf *c = parse("23/tcp : ALL : trap : unproven\n");

	assert_int_equal(c->n_errors, 0);
	if (c->n_diags != 1 || c->diags[0].error || !strstr(c->diags[0].msg, "without a UDP port"))
		fail_msg("got %zu diagnostics (%s), want one warning \"without a UDP port\"",
			 c->n_diags, c->n_diags ? c->diags[0].msg : "");
	guard_conf_free(c);
}

/* test_source_prefix - per_source's client prefixes per family: defaults (0: the
 * kernel's GUARD_SRC_PLEN*_DEFAULT), either, both, and the broken forms */
static void test_source_prefix(void **state)
{
	static const struct {
		const char *text;
		bool ok;
		uint8_t v4, v6;
	} cases[] = {
		{ "sshd : ALL : per_source 2\n", true, 0, 0 },
		{ "sshd : ALL : per_source 2 : source_prefix v6/56\n", true, 0, 56 },
		{ "sshd : ALL : per_source 2 : source_prefix v4/24 v6/48\n", true, 24, 48 },
		{ "sshd : ALL : per_source 2 : source_prefix = V6/128, v4/32\n", true, 32, 128 },
		{ "sshd : ALL : per_source 2 : source_prefix v6/129\n", false, 0, 0 },
		{ "sshd : ALL : per_source 2 : source_prefix v4/0\n", false, 0, 0 },
		{ "sshd : ALL : per_source 2 : source_prefix v4/24 v4/16\n", false, 0, 0 },
		{ "sshd : ALL : per_source 2 : source_prefix /64\n", false, 0, 0 },
		{ "sshd : ALL : per_source 2 : source_prefix\n", false, 0, 0 },
		{ "sshd : ALL : per_source 2 : source_prefix v6/64x\n", false, 0, 0 },
	};
	int misses = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct guard_conf *c = parse(cases[i].text);
		bool ok = c->n_errors == 0 && c->n_rules == 1;

		if (ok != cases[i].ok ||
		    (ok && (c->rules[0].opt.src_plen4 != cases[i].v4 ||
			    c->rules[0].opt.src_plen6 != cases[i].v6))) {
			printf("'%s': got %s v4/%u v6/%u (%s), want %s v4/%u v6/%u\n", cases[i].text,
			       ok ? "ok" : "error", ok ? c->rules[0].opt.src_plen4 : 0,
			       ok ? c->rules[0].opt.src_plen6 : 0, c->n_diags ? c->diags[0].msg : "",
			       cases[i].ok ? "ok" : "error", cases[i].v4, cases[i].v6);
			misses++;
		}
		guard_conf_free(c);
	}
	assert_int_equal(misses, 0);
}

/* test_warning_source_prefix_alone - source_prefix without per_source warns */
static void test_warning_source_prefix_alone(void **state)
{
	struct guard_conf *c = parse("sshd : ALL : instances 3 : source_prefix v6/48\n");

	assert_int_equal(c->n_errors, 0);
	if (c->n_diags != 1 || c->diags[0].error || !strstr(c->diags[0].msg, "without per_source"))
		fail_msg("got %zu diagnostics (%s), want one warning \"without per_source\"",
			 c->n_diags, c->n_diags ? c->diags[0].msg : "");
	guard_conf_free(c);
}

/* A prefix text and the 16-byte prefix it must give. */
struct prefix_case {
	const char *text;
	int err;
	const char *addr;	/* canonical IPv6 text of the 16 bytes */
	unsigned len;
};

static const struct prefix_case prefix_cases[] = {
	{ "192.0.2.7", 0, "::ffff:192.0.2.7", 128 },
	{ "192.0.2.7/24", 0, "::ffff:192.0.2.0", 120 },
	{ "10.0.0.0/255.255.0.0", 0, "::ffff:10.0.0.0", 112 },
	{ "10.1.", 0, "::ffff:10.1.0.0", 112 },
	{ "10.", 0, "::ffff:10.0.0.0", 104 },
	{ "[2001:db8::1]", 0, "2001:db8::1", 128 },
	{ "[2001:db8::]/32", 0, "2001:db8::", 32 },
	{ "[2001:db8:ffff::/48]", 0, "2001:db8:ffff::", 48 },
	{ "2001:db8::7", 0, "2001:db8::7", 128 },
	{ "[::]/0", 0, "::", 0 },
	{ "10.0.0.0/33", -EINVAL, NULL, 0 },
	{ "10.0.0.0/255.0.255.0", -EINVAL, NULL, 0 },
	{ "[10.0.0.1]", -EINVAL, NULL, 0 },
	{ "1.2.3.4.", -EINVAL, NULL, 0 },
	{ "host.example", -EINVAL, NULL, 0 },
	{ "[2001:db8::]/129", -EINVAL, NULL, 0 },
	{ "", -EINVAL, NULL, 0 },
};

/* test_prefixes - addresses and prefixes into 16 bytes (IPv4 v4-mapped) */
static void test_prefixes(void **state)
{
	int misses = 0;

	for (size_t i = 0; i < sizeof(prefix_cases) / sizeof(prefix_cases[0]); i++) {
		const struct prefix_case *k = &prefix_cases[i];
		struct guard_prefix p;
		char got[INET6_ADDRSTRLEN] = "";
		int err = guard_parse_prefix(k->text, &p);

		if (!err)
			inet_ntop(AF_INET6, p.addr, got, sizeof(got));
		if (err != k->err || (!err && (strcmp(got, k->addr) || p.len != k->len))) {
			printf("prefix '%s': got %d %s/%u, want %d %s/%u\n", k->text, err, got,
			       err ? 0 : p.len, k->err, k->addr ? k->addr : "", k->len);
			misses++;
		}
	}
	assert_int_equal(misses, 0);
}

/* test_durations - trap times */
static void test_durations(void **state)
{
	static const struct {
		const char *text;
		int err;
		uint32_t s;
	} cases[] = {
		{ "90", 0, 90 },	{ "90s", 0, 90 },	  { "15m", 0, 900 },
		{ "2h", 0, 7200 },	{ "1d", 0, 86400 },	  { "forever", 0, 0 },
		{ "FOREVER", 0, 0 },	{ "0", -ERANGE, 0 },	  { "5y", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },	{ "10ms", -EINVAL, 0 },	  { "99999999d", -ERANGE, 0 },
	};
	int misses = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t s = 12345;
		int err = guard_parse_duration(cases[i].text, &s);

		if (err != cases[i].err || (!err && s != cases[i].s)) {
			printf("duration '%s': got %d %u, want %d %u\n", cases[i].text, err, s,
			       cases[i].err, cases[i].s);
			misses++;
		}
	}
	assert_int_equal(misses, 0);
}

/* test_match - first matching line wins; EXCEPT; ALL lines apply to every daemon */
static void test_match(void **state)
{
	static const char text[] =
		"sshd : 10.0.0.0/8 EXCEPT 10.1.0.0/16 : per_source 2\n"	/* 1 */
		"sshd : 10.1.2.0/24 : per_source 5\n"			/* 2 */
		"ALL : [2001:db8::]/32 : reject\n"			/* 3 */
		"ftpd : 10.1. EXCEPT 10.0.0.0/8 : drop\n"		/* 4: all excepted */
		"ALL : ALL : instances 50\n";				/* 5 */
	static const struct {
		const char *daemon, *addr;
		size_t want;
	} cases[] = {
		{ "sshd", "::ffff:10.2.3.4", 1 },  { "sshd", "::ffff:10.1.2.3", 2 },
		{ "sshd", "::ffff:10.1.9.9", 5 },  { "SSHD", "::ffff:10.9.9.9", 1 },
		{ "sshd", "2001:db8::5", 3 },	   { "ftpd", "::ffff:10.1.2.3", 5 },
		{ "httpd", "::ffff:192.0.2.1", 5 }, { "httpd", "2001:db8:1::1", 3 },
	};
	struct guard_conf *c = parse(text);
	int misses = 0;

	assert_int_equal(c->n_errors, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t a[16];
		size_t got;

		assert_int_equal(inet_pton(AF_INET6, cases[i].addr, a), 1);
		got = guard_conf_match(c, cases[i].daemon, a);
		if (got != cases[i].want) {
			printf("match %s from %s: got line %zu, want %zu\n", cases[i].daemon,
			       cases[i].addr, got, cases[i].want);
			misses++;
		}
	}
	guard_conf_free(c);
	assert_int_equal(misses, 0);
}

/* test_too_many_lines - more rules than one id half holds is an error */
static void test_too_many_lines(void **state)
{
	size_t n = GUARD_HALF + 2, len = 0;
	char *text = malloc(n * 40);
	struct guard_conf *c;

	assert_non_null(text);
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, 40, "d%zu : ALL : reject\n", i);
	c = parse(text);
	free(text);
	if (!c->n_errors)
		fail_msg("%zu lines: got no error, want \"more than %d lines\"", n, GUARD_HALF - 1);
	guard_conf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_cases),
		cmocka_unit_test(test_err_cases),
		cmocka_unit_test(test_warning_all_all_trap),
		cmocka_unit_test(test_warning_unproven_tcp_only),
		cmocka_unit_test(test_source_prefix),
		cmocka_unit_test(test_warning_source_prefix_alone),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_too_many_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
