/*
 * test_evaluate.c - the reference evaluator (user/policy/evaluate.c) on named
 * cases. Every expected verdict in `cases` was checked against Debian's real
 * libwrap (tests/diff/tool_oracle) when the case was written; the few cases
 * libwrap cannot be asked without a socket (port patterns) say so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy.h"

struct eval_case {
	const char *name;
	const char *allow;	/* NULL: missing file */
	const char *deny;
	struct {
		const char *daemon, *client_addr, *client_name, *user, *server_addr;
	} q;
	bool want_allow;
};

static const struct eval_case cases[] = {
	{ "net_inside", "sshd: 10.0.0.0/8\n", "ALL: ALL\n",
	  { "sshd", "10.1.1.1", NULL, NULL, NULL }, true },
	{ "net_outside", "sshd: 10.0.0.0/8\n", "ALL: ALL\n",
	  { "sshd", "11.0.0.1", NULL, NULL, NULL }, false },
	{ "net24_last", "sshd: 10.1.2.0/24\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.255", NULL, NULL, NULL }, true },
	{ "net24_above", "sshd: 10.1.2.0/24\n", "ALL: ALL\n",
	  { "sshd", "10.1.3.0", NULL, NULL, NULL }, false },
	{ "net24_below", "sshd: 10.1.2.0/24\n", "ALL: ALL\n",
	  { "sshd", "10.1.1.255", NULL, NULL, NULL }, false },
	{ "net_dotted_mask", "sshd: 10.1.2.0/255.255.255.0\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.9", NULL, NULL, NULL }, true },
	{ "net_unmasked_never", "sshd: 10.1.2.3/16\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.3", NULL, NULL, NULL }, false },
	{ "net_len0_never", "sshd: 0.0.0.0/0\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.3", NULL, NULL, NULL }, false },
	{ "net_len33_never", "sshd: 10.1.2.0/33\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.0", NULL, NULL, NULL }, false },
	{ "net_zero_dotted_mask_all", "sshd: 0.0.0.0/0.0.0.0\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.3", NULL, NULL, NULL }, true },
	{ "net_mask_all_ones_rejected", "sshd: 10.1.2.3/255.255.255.255\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.3", NULL, NULL, NULL }, false },
	{ "net_len32", "sshd: 10.1.2.3/32\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.3", NULL, NULL, NULL }, true },
	{ "net_octal", "sshd: 010.1.2.0/24\n", "ALL: ALL\n",
	  { "sshd", "8.1.2.5", NULL, NULL, NULL }, true },
	{ "net_hex", "sshd: 0x0a.1.2.0/24\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.5", NULL, NULL, NULL }, true },
	{ "net_three_parts_never", "sshd: 10.1.0/16\n", "ALL: ALL\n",
	  { "sshd", "10.1.0.0", NULL, NULL, NULL }, false },
	{ "net_len_atoi_junk", "sshd: 10.1.2.0/24abc\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.77", NULL, NULL, NULL }, true },
	{ "net_noncontiguous", "sshd: 10.0.0.1/255.0.0.255\n", "ALL: ALL\n",
	  { "sshd", "10.9.9.1", NULL, NULL, NULL }, true },
	{ "net_mapped_client", "sshd: 1.2.3.0/24\n", "ALL: ALL\n",
	  { "sshd", "::ffff:1.2.3.4", NULL, NULL, NULL }, true },
	{ "net_mapped_hex_client", "sshd: 1.2.3.0/24\n", "ALL: ALL\n",
	  { "sshd", "::ffff:102:304", NULL, NULL, NULL }, false },
	{ "v6net_inside", "sshd: [2001:db8::]/32\n", "ALL: ALL\n",
	  { "sshd", "2001:db8:1::1", NULL, NULL, NULL }, true },
	{ "v6net_outside", "sshd: [2001:db8::]/32\n", "ALL: ALL\n",
	  { "sshd", "2001:db9::1", NULL, NULL, NULL }, false },
	{ "v6net_unmasked_ok", "sshd: [2001:db8::1]/32\n", "ALL: ALL\n",
	  { "sshd", "2001:db8:ffff::2", NULL, NULL, NULL }, true },
	{ "v6net_badlen_is_all", "sshd: [2001:db8::]/abc\n", "ALL: ALL\n",
	  { "sshd", "fe80::9", NULL, NULL, NULL }, true },
	{ "v6net_v4_client", "sshd: [::]/0\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "v6net_mapped_dotted_client", "sshd: [::ffff:1.2.3.0]/120\n", "ALL: ALL\n",
	  { "sshd", "::ffff:1.2.3.4", NULL, NULL, NULL }, false },
	{ "v6net_mapped_hex_client", "sshd: [::ffff:1.2.3.0]/120\n", "ALL: ALL\n",
	  { "sshd", "::ffff:102:304", NULL, NULL, NULL }, true },
	{ "v6net_len129_never", "sshd: [::]/129\n", "ALL: ALL\n",
	  { "sshd", "::1", NULL, NULL, NULL }, false },
	{ "v6_exact_spelling", "sshd: [2001:DB8:0::1]\n", "ALL: ALL\n",
	  { "sshd", "2001:db8::1", NULL, NULL, NULL }, true },
	{ "v6_mapped_dotted_never", "sshd: [::ffff:1.2.3.4]\n", "ALL: ALL\n",
	  { "sshd", "::ffff:1.2.3.4", NULL, NULL, NULL }, false },
	{ "v6_mapped_hex", "sshd: [::ffff:1.2.3.4]\n", "ALL: ALL\n",
	  { "sshd", "::ffff:102:304", NULL, NULL, NULL }, true },
	{ "v6_unbracketed_spills", "sshd: ALL, 2001:db8::1\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "except_hole", "sshd: 10.0.0.0/8 EXCEPT 10.1.0.0/16\n", "ALL: ALL\n",
	  { "sshd", "10.1.0.1", NULL, NULL, NULL }, false },
	{ "except_outside_hole", "sshd: 10.0.0.0/8 EXCEPT 10.1.0.0/16\n", "ALL: ALL\n",
	  { "sshd", "10.2.0.1", NULL, NULL, NULL }, true },
	{ "except_nested", "sshd: 10.0.0.0/8 EXCEPT 10.1.0.0/16 EXCEPT 10.1.2.3\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.3", NULL, NULL, NULL }, true },
	{ "except_nested_hole", "sshd: 10.0.0.0/8 EXCEPT 10.1.0.0/16 EXCEPT 10.1.2.3\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.4", NULL, NULL, NULL }, false },
	{ "except_first_never", "sshd: EXCEPT 10.1.2.3\n", "ALL: ALL\n",
	  { "sshd", "10.9.9.9", NULL, NULL, NULL }, false },
	{ "except_lowercase", "sshd: ALL except 10.1.2.3\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.3", NULL, NULL, NULL }, false },
	{ "except_daemon_list", "ALL EXCEPT sshd: ALL\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.3", NULL, NULL, NULL }, false },
	{ "except_daemon_other", "ALL EXCEPT sshd: ALL\n", "ALL: ALL\n",
	  { "ftpd", "10.1.2.3", NULL, NULL, NULL }, true },
	{ "daemon_case", "SSHD: ALL\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "daemon_path_whole", "sshd: ALL\n", "ALL: ALL\n",
	  { "/usr/sbin/sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "daemon_known", "KNOWN: ALL\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "daemon_known_unknown", "KNOWN: ALL\n", "ALL: ALL\n",
	  { NULL, "1.2.3.4", NULL, NULL, NULL }, false },
	{ "daemon_glob", "s?hd: ALL\n", "ALL: ALL\n",
	  { "SSHD", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "daemon_port_unknown", "22: ALL\n", "ALL: ALL\n",
	  { "22", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "daemon_big_number_string", "65536: ALL\n", "ALL: ALL\n",
	  { "65536", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "daemon_at_server", "sshd@10.0.0.1: ALL\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, "10.0.0.1" }, true },
	{ "daemon_at_server_other", "sshd@10.0.0.1: ALL\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, "10.0.0.2" }, false },
	{ "suffix_case", "ALL: .EXAMPLE.com\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", "Host.example.COM", NULL, NULL }, true },
	{ "suffix_not_equal", "ALL: .example.com\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", "example.com", NULL, NULL }, false },
	{ "suffix_near_miss", "ALL: .example.com\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", "host.example.com.evil.net", NULL, NULL }, false },
	{ "suffix_on_address", "ALL: .3.4\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "suffix_digits_not_name", "ALL: .3.4\n", "ALL: ALL\n",
	  { "sshd", "9.9.9.9", "host.3.4", NULL, NULL }, false },
	{ "prefix_match", "ALL: 10.1.\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.3", NULL, NULL, NULL }, true },
	{ "prefix_near_miss", "ALL: 10.1.\n", "ALL: ALL\n",
	  { "sshd", "10.10.2.3", NULL, NULL, NULL }, false },
	{ "prefix_mapped", "ALL: 10.1.\n", "ALL: ALL\n",
	  { "sshd", "::ffff:10.1.2.3", NULL, NULL, NULL }, true },
	{ "exact_mapped", "ALL: 1.2.3.4\n", "ALL: ALL\n",
	  { "sshd", "::FFFF:1.2.3.4", NULL, NULL, NULL }, true },
	{ "exact_name_case", "ALL: Host.Example.Com\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", "host.example.com", NULL, NULL }, true },
	{ "name_glob", "ALL: *.example.com\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", "A.B.EXAMPLE.COM", NULL, NULL }, true },
	{ "glob_on_address", "ALL: 10.1.2.?\n", "ALL: ALL\n",
	  { "sshd", "10.1.2.7", NULL, NULL, NULL }, true },
	{ "known_host", "ALL: KNOWN\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", "host.example.com", NULL, NULL }, true },
	{ "known_host_no_name", "ALL: KNOWN\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "known_host_paranoid", "ALL: KNOWN\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", "paranoid", NULL, NULL }, false },
	{ "local_host", "ALL: LOCAL\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", "web", NULL, NULL }, true },
	{ "local_dotted", "ALL: LOCAL\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", "web.example.com", NULL, NULL }, false },
	{ "unknown_name", "ALL: UNKNOWN\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "unknown_known", "ALL: UNKNOWN\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", "web", NULL, NULL }, false },
	{ "paranoid", "ALL: PARANOID\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", "paranoid", NULL, NULL }, true },
	{ "paranoid_not", "ALL: PARANOID\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", "web", NULL, NULL }, false },
	{ "user_at", "ALL: root@ALL\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, "ROOT", NULL }, true },
	{ "user_at_other", "ALL: root@ALL\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, "bob", NULL }, false },
	{ "user_at_none", "ALL: root@ALL\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "user_unknown_at", "ALL: UNKNOWN@ALL\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "user_known_at", "ALL: KNOWN@10.0.0.0/8\n", "ALL: ALL\n",
	  { "sshd", "10.2.3.4", NULL, "bob", NULL }, true },
	{ "user_at_net_miss", "ALL: KNOWN@10.0.0.0/8\n", "ALL: ALL\n",
	  { "sshd", "11.2.3.4", NULL, "bob", NULL }, false },
	{ "continuation_joins_token", "sshd: 10.0.0.\\\n1\n", "ALL: ALL\n",
	  { "sshd", "10.0.0.1", NULL, NULL, NULL }, true },
	{ "crlf_lines", "sshd: 1.2.3.4\r\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "crlf_backslash_no_continuation", "sshd: 1.2.3.\\\r\n4\r\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "comment_col1", "#sshd: ALL\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "comment_indented_is_rule", " # ALL: ALL\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "comment_backslash_swallows", "# note \\\nsshd: ALL\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "no_colon_skipped", "sshd ALL\nsshd: 1.2.3.4\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "allow_cut_rule_before", "sshd: 1.2.3.4\nsshd: ALL", "",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "allow_cut_no_match_default", "sshd: 1.2.3.4\nsshd: ALL", "",
	  { "sshd", "5.5.5.5", NULL, NULL, NULL }, true },
	{ "deny_cut_denies", "", "ftpd: ALL\nsshd: 9.9.9.9",
	  { "sshd", "5.5.5.5", NULL, NULL, NULL }, false },
	{ "deny_cut_backslash_eof", "", "ftpd: ALL\nsshd: 9.9.9.9\\\n",
	  { "sshd", "5.5.5.5", NULL, NULL, NULL }, false },
	{ "opt_deny_in_allow", "sshd: ALL: deny\n", "",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "opt_allow_in_deny", "", "sshd: ALL: allow\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "opt_empty_field", "sshd: ALL:\n", "",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "opt_allow_not_last", "sshd: ALL: allow: spawn /bin/true\n", "",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "opt_allow_value", "sshd: ALL: allow yes\n", "",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "opt_unknown", "sshd: ALL: frobnicate\n", "",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "opt_spawn_ok", "sshd: ALL: spawn /bin/true\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "opt_spawn_no_command", "sshd: ALL: spawn\n", "",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "opt_escaped_colon", "sshd: ALL: spawn echo a\\: b: allow\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "opt_linger_bad", "sshd: ALL: linger 5x\n", "",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "opt_severity_ok", "sshd: ALL: severity AUTH.Info\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "opt_severity_bad_facility", "sshd: ALL: severity ftp.info\n", "",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "opt_user_unknown", "sshd: ALL: user nosuchuser\n", "",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "opt_umask_bad", "sshd: ALL: umask 01000\n", "",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "opt_setenv_eq", "sshd: ALL: setenv FOO=bar\n", "",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "opt_setenv_dynamic_bad", "sshd: ALL: setenv A%u\n", "",
	  { "sshd", "1.2.3.4", NULL, "a=b", NULL }, false },
	{ "opt_setenv_dynamic_ok", "sshd: ALL: setenv A%u\n", "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, "ab", NULL }, true },
	{ "opt_error_unmatched_rule", "ftpd: ALL: frobnicate\n", "",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
	{ "opt_error_in_deny", "", "sshd: ALL: linger x\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "missing_allow", NULL, "ALL: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, false },
	{ "nothing_matches_default", "ftpd: ALL\n", "ftpd: ALL\n",
	  { "sshd", "1.2.3.4", NULL, NULL, NULL }, true },
};

/* decide - parse both texts and evaluate one request */
static bool decide(const char *allow, const char *deny, const struct request *req, struct decision *d)
{
	struct policy *p = NULL;
	int err = policy_parse_buffers(&p, "hosts.allow", allow, allow ? strlen(allow) : 0, "hosts.deny",
				       deny, deny ? strlen(deny) : 0);

	if (err) {
		print_error("policy_parse_buffers: got %d, want 0\n", err);
		fail();
	}
	policy_evaluate(p, req, d);
	bool allow_it = d->allow;
	policy_free(p);
	return allow_it;
}

/* test_case - one named case of the table */
static void test_case(void **state)
{
	const struct eval_case *c = *state;
	struct request req = {
		.daemon = c->q.daemon, .client_addr = c->q.client_addr, .client_name = c->q.client_name,
		.user = c->q.user, .server_addr = c->q.server_addr, .server_port = -1,
	};
	struct decision d;
	bool got = decide(c->allow, c->deny, &req, &d);

	if (got != c->want_allow) {
		print_error("%s: got %s, want %s\n", c->name, got ? "allow" : "deny",
			    c->want_allow ? "allow" : "deny");
		fail();
	}
}

/* make_line - "x: y" padded with blanks to len characters, newline, in a new string */
static char *make_line(size_t len, const char *tail)
{
	char *s = malloc(len + strlen(tail) + 2);

	assert_non_null(s);
	memset(s, ' ', len);
	memcpy(s, "x: y", 4);
	s[len] = '\n';
	strcpy(s + len + 1, tail);
	return s;
}

/* test_line_length - libwrap's 2048-byte line buffer: 2046 characters + '\n' fit */
static void test_line_length(void **state)
{
	static const struct { size_t len; bool want_allow; } lens[] = {
		{ 2045, true }, { 2046, true }, { 2047, false }, { 2048, false }, { 4000, false },
	};
	struct request req = { .daemon = "sshd", .client_addr = "5.5.5.5", .server_port = -1 };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char *deny = make_line(lens[i].len, "");
		struct decision d;
		bool got = decide("", deny, &req, &d);

		free(deny);
		if (got != lens[i].want_allow) {
			print_error("line of %zu chars in hosts.deny: got %s, want %s\n", lens[i].len,
				    got ? "allow" : "deny", lens[i].want_allow ? "allow" : "deny");
			fail();
		}
		if (!got && d.reason != REASON_TABLE_ERROR) {
			print_error("line of %zu chars: got reason %d, want REASON_TABLE_ERROR\n", lens[i].len, d.reason);
			fail();
		}
	}
}

/* test_long_logical_line - continuations count toward the 2046 characters */
static void test_long_logical_line(void **state)
{
	char deny[3000];
	struct request req = { .daemon = "sshd", .client_addr = "5.5.5.5", .server_port = -1 };
	struct decision d;

	/* 4 + 1500 + 600 = 2104 characters once the backslash-newline is gone */
	snprintf(deny, sizeof(deny), "x: y%1500s\\\n%600s\n", "", "");
	if (decide("", deny, &req, &d)) {
		print_error("2104-char logical line: got allow, want deny (table cut off)\n");
		fail();
	}
	/* 4 + 1000 + 1000 = 2004: fits */
	snprintf(deny, sizeof(deny), "x: y%1000s\\\n%1000s\n", "", "");
	if (!decide("", deny, &req, &d)) {
		print_error("2004-char logical line: got deny, want allow\n");
		fail();
	}
}

/* test_field_cut - request fields are cut to 127 characters before matching */
static void test_field_cut(void **state)
{
	char name[201], rule[200];
	struct decision d;

	memset(name, 'a', 200);
	name[200] = '\0';
	snprintf(rule, sizeof(rule), "ALL: %.127s\n", name);
	struct request req = { .daemon = "sshd", .client_addr = "1.2.3.4", .client_name = name, .server_port = -1 };
	if (!decide(rule, "ALL: ALL\n", &req, &d)) {
		print_error("200-char name vs 127-char pattern: got deny, want allow\n");
		fail();
	}
	snprintf(rule, sizeof(rule), "ALL: %.128s\n", name);
	if (decide(rule, "ALL: ALL\n", &req, &d)) {
		print_error("200-char name vs 128-char pattern: got allow, want deny\n");
		fail();
	}
}

/* test_port_pattern - Debian: a number <= 65535 in a daemon list is the server port
 * (libwrap needs a server socket address for it: checked here without the oracle) */
static void test_port_pattern(void **state)
{
	static const struct { int port; const char *daemon; bool want_allow; } ports[] = {
		{ 22, "sshd", true }, { 2222, "sshd", false }, { -1, "22", false }, { 0, "22", false },
	};

	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		struct request req = { .daemon = ports[i].daemon, .client_addr = "1.2.3.4", .server_port = ports[i].port };
		struct decision d;
		bool got = decide("22: ALL\n", "ALL: ALL\n", &req, &d);

		if (got != ports[i].want_allow) {
			print_error("port %d daemon %s: got %s, want %s\n", ports[i].port, ports[i].daemon,
				    got ? "allow" : "deny", ports[i].want_allow ? "allow" : "deny");
			fail();
		}
	}
}

/* test_decision_fields - which rule, table and reason a decision names */
static void test_decision_fields(void **state)
{
	struct policy *p;
	struct decision d;
	const char *allow = "ftpd: ALL\nsshd: 10.0.0.0/8: deny\n";
	const char *deny = "ALL: 192.168.\nsshd: ALL: linger x\ntelnetd: ALL\nx";

	assert_int_equal(policy_parse_buffers(&p, "A", allow, strlen(allow), "D", deny, strlen(deny)), 0);
	static const struct {
		const char *daemon, *addr;
		bool allow;
		enum decision_reason reason;
		int table;	/* 0 allow, 1 deny, -1 none */
		unsigned line;	/* rule line, 0 none */
	} want[] = {
		{ "ftpd", "1.2.3.4", true, REASON_RULE, 0, 1 },
		{ "sshd", "10.1.1.1", false, REASON_RULE, 0, 2 },
		{ "in.x", "192.168.1.1", false, REASON_RULE, 1, 1 },
		{ "sshd", "1.2.3.4", false, REASON_OPTION_ERROR, 1, 2 },
		{ "pop3", "1.2.3.4", false, REASON_TABLE_ERROR, 1, 0 },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct request req = { .daemon = want[i].daemon, .client_addr = want[i].addr, .server_port = -1 };

		policy_evaluate(p, &req, &d);
		const struct table *t = want[i].table < 0 ? NULL : want[i].table ? &p->deny : &p->allow;
		unsigned line = d.rule ? d.rule->pos.line : 0;
		if (d.allow != want[i].allow || d.reason != want[i].reason || d.table != t || line != want[i].line) {
			print_error("%s %s: got allow=%d reason=%d table=%p line=%u, want allow=%d reason=%d table=%p line=%u\n",
				    want[i].daemon, want[i].addr, d.allow, d.reason, (void *)d.table, line,
				    want[i].allow, want[i].reason, (void *)t, want[i].line);
			policy_free(p);
			fail();
		}
	}
	/* no rule at all: default allow */
	policy_free(p);
	assert_int_equal(policy_parse_buffers(&p, "A", NULL, 0, "D", NULL, 0), 0);
	struct request req = { .daemon = "sshd", .client_addr = "1.2.3.4", .server_port = -1 };
	policy_evaluate(p, &req, &d);
	if (!d.allow || d.reason != REASON_DEFAULT || d.rule) {
		print_error("empty policy: got allow=%d reason=%d, want allow=1 reason=REASON_DEFAULT\n", d.allow, d.reason);
		policy_free(p);
		fail();
	}
	policy_free(p);
}

/* test_file_patterns - /path: every word of the file is a host pattern */
static void test_file_patterns(void **state)
{
	char dir[] = "/tmp/bpfwrap-test-eval.XXXXXX", path[128], allow[200];

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/clients", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("1.2.3.4\n  .example.com\t10.0.0.0/8\n", f);
	fclose(f);
	snprintf(allow, sizeof(allow), "sshd: %s\nftpd: %s/missing\n", path, dir);
	static const struct { const char *daemon, *addr, *name; bool want_allow; } q[] = {
		{ "sshd", "1.2.3.4", NULL, true },
		{ "sshd", "5.5.5.5", "a.example.com", true },
		{ "sshd", "10.9.9.9", NULL, true },
		{ "sshd", "11.0.0.1", NULL, false },
		{ "ftpd", "1.2.3.4", NULL, false },
	};
	bool ok = true;
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		struct request req = { .daemon = q[i].daemon, .client_addr = q[i].addr, .client_name = q[i].name,
				       .server_port = -1 };
		struct decision d;
		bool got = decide(allow, "ALL: ALL\n", &req, &d);

		if (got != q[i].want_allow) {
			print_error("/path file, %s %s: got %s, want %s\n", q[i].daemon, q[i].addr,
				    got ? "allow" : "deny", q[i].want_allow ? "allow" : "deny");
			ok = false;
		}
	}
	unlink(path);
	rmdir(dir);
	assert_true(ok);
}

/* test_decision_inputs - a decision names every request field it read, and only those */
static void test_decision_inputs(void **state)
{
	static const struct {
		const char *name, *allow, *deny, *client, *user;
		unsigned want;
	} c[] = {
		{ "address rule", "rtd: 10.9.0.5\n", "ALL: ALL\n", "10.9.0.5", NULL,
		  INPUT_DAEMON | INPUT_CLIENT_ADDR },
		{ "daemon@host reads the server address", "rtd@10.9.0.11: ALL\n", "ALL: ALL\n",
		  "10.9.0.5", NULL, INPUT_DAEMON | INPUT_SERVER_ADDR },
		{ "user@host, host matches: the user is read", "rtd: alice@10.9.0.3\n", "ALL: ALL\n",
		  "10.9.0.3", "alice", INPUT_DAEMON | INPUT_CLIENT_ADDR | INPUT_USER },
		{ "user@host, host does not match: the user is not read", "rtd: alice@10.9.0.3\n",
		  "ALL: ALL\n", "10.9.0.4", "alice", INPUT_DAEMON | INPUT_CLIENT_ADDR },
		{ "name pattern reads the name", "rtd: .example.com\n", "", "10.9.0.4", NULL,
		  INPUT_DAEMON | INPUT_CLIENT_ADDR | INPUT_CLIENT_NAME },
		{ "port pattern", "22: ALL\n", "ALL: ALL\n", "10.9.0.4", NULL, INPUT_SERVER_PORT },
		{ "port pattern, another port", "23: ALL\n", "sshd: ALL\n", "10.9.0.4", NULL,
		  INPUT_SERVER_PORT | INPUT_DAEMON },
		{ "setenv with % reads everything", "rtd: ALL: setenv X=%u\n", "", "10.9.0.4", NULL,
		  INPUT_ALL },
		{ "ALL: ALL reads nothing", "ALL: ALL\n", "", "10.9.0.4", NULL, 0 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct request req = {
			.daemon = "rtd", .client_addr = c[i].client, .user = c[i].user,
			.server_addr = "10.9.0.1", .server_port = 22,
		};
		struct decision d;

		decide(c[i].allow, c[i].deny, &req, &d);
		if (d.inputs != c[i].want) {
			print_error("%s: inputs got %#x, want %#x\n", c[i].name, d.inputs, c[i].want);
			fail();
		}
	}
}

int main(void)
{
	static const struct CMUnitTest extra[] = {
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_long_logical_line),
		cmocka_unit_test(test_field_cut),
		cmocka_unit_test(test_port_pattern),
		cmocka_unit_test(test_decision_fields),
		cmocka_unit_test(test_decision_inputs),
		cmocka_unit_test(test_file_patterns),
	};
	/* the table's cases, then the extra tests */
	static struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) +
				       sizeof(extra) / sizeof(extra[0])];
	size_t n = sizeof(cases) / sizeof(cases[0]);

	for (size_t i = 0; i < n; i++) {
		tests[i].name = cases[i].name;
		tests[i].test_func = test_case;
		tests[i].initial_state = (void *)&cases[i];
	}
	memcpy(tests + n, extra, sizeof(extra));
	return cmocka_run_group_tests_name("evaluate", tests, NULL, NULL);
}
