/*
 * test_check.c - `bpfwrap check`: one named case per diagnostic (policy text
 * in, "FILE:LINE:COL: severity: message" out), cases that must stay silent
 * (no false positives), and the exit status of the real binary
 * ($BPFWRAP_BUILD/bpfwrap, default build/) on temporary files.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lint.h"
#include "policy.h"

#define ALL_ALL "ALL: ALL\n"

struct lint_case {
	const char *name;
	const char *allow;	/* hosts.allow text */
	const char *deny;	/* hosts.deny text; NULL = "ALL: ALL\n" */
	const char *where;	/* a line must start with this, e.g. "hosts.allow:1:7: warning: " */
	const char *message;	/* ... and contain this */
	const char *hint;	/* its hint must contain this, or NULL */
};

static const struct lint_case lint_cases[] = {
	/* net/mask */
	{ "net_not_masked", "sshd: 10.1.2.3/16\n", NULL, "hosts.allow:1:7: warning: ",
	  "is not masked", "perhaps you meant 10.1.0.0/16" },
	{ "net_len_zero", "sshd: 10.0.0.0/0\n", NULL, "hosts.allow:1:7: warning: ",
	  "a /0 never matches an IPv4 client", "use ALL" },
	{ "net_len_33", "sshd: 10.0.0.0/33\n", NULL, "hosts.allow:1:7: warning: ",
	  "prefix length /33 is outside 1..32", NULL },
	{ "net_len_trailing", "sshd: 10.0.0.0/24abc\n", NULL, "hosts.allow:1:7: warning: ",
	  "reads the prefix length /24abc as /24", "write 10.0.0.0/24" },
	{ "mask_all_ones", "sshd: 10.0.0.1/255.255.255.255\n", NULL, "hosts.allow:1:7: warning: ",
	  "rejects the mask 255.255.255.255", "write 10.0.0.1/32" },
	{ "net_short", "sshd: 10.0/8\n", NULL, "hosts.allow:1:7: warning: ",
	  "is not a dotted quad", "10.0.0.0/8" },
	{ "net_octal", "sshd: 010.0.0.0/8\n", NULL, "hosts.allow:1:7: warning: ",
	  "leading 0 is octal", "8.0.0.0/255.0.0.0" },
	{ "net6_len_missing", "sshd: [2001:db8::]/abc\n", NULL, "hosts.allow:1:7: warning: ",
	  "matches every IPv6 client", NULL },
	{ "net6_len_129", "sshd: [2001:db8::]/129\n", NULL, "hosts.allow:1:7: warning: ",
	  "outside 0..128", NULL },
	{ "net6_mapped", "sshd: [::ffff:10.0.0.0]/104\n", NULL, "hosts.allow:1:7: warning: ",
	  "never match an IPv6 net", "write 10.0.0.0/8" },
	/* addresses */
	{ "ipv6_unbracketed", "sshd: 10.0.0.1 2001:db8::1\n", NULL, "hosts.allow:1:16: error: ",
	  "IPv6 address 2001:db8::1 without brackets", "write [2001:db8::1]" },
	{ "ipv6_unbracketed_net", "sshd: 2001:db8::/32\n", NULL, "hosts.allow:1:7: error: ",
	  "without brackets", "write [2001:db8::]/32" },
	{ "ipv6_unbracketed_mapped", "sshd: ::ffff:10.1.2.3\n", NULL, "hosts.allow:1:7: error: ",
	  "without brackets", "write 10.1.2.3" },
	{ "v6_mapped_string", "sshd: [::ffff:10.1.2.3]\n", NULL, "hosts.allow:1:7: warning: ",
	  "sees a mapped client as 10.1.2.3", "write 10.1.2.3" },
	{ "address_not_canonical", "sshd: 192.168.001.1\n", NULL, "hosts.allow:1:7: warning: ",
	  "compared as text", "write 192.168.1.1" },
	{ "fail_keyword", "sshd: FAIL\n", NULL, "hosts.allow:1:7: warning: ",
	  "FAIL is no longer a keyword", "EXCEPT" },
	{ "name_ends_in_dot", "sshd: example.com.\n", NULL, "hosts.allow:1:7: warning: ",
	  "ends in a dot", "write .example.com" },
	{ "glob_on_address", "sshd: 192.168.*\n", NULL, "hosts.allow:1:7: warning: ",
	  "host name too", NULL },
	{ "unknown_granted", "sshd: UNKNOWN\n", NULL, "hosts.allow:1:7: warning: ",
	  "UNKNOWN grants access", NULL },
	{ "paranoid_granted", "sshd: PARANOID\n", NULL, "hosts.allow:1:7: warning: ",
	  "PARANOID grants access", NULL },
	{ "user_at_host_granted", "sshd: joe@10.0.0.1\n", NULL, "hosts.allow:1:7: warning: ",
	  "ident server", NULL },
	{ "pattern_too_long",
	  "sshd: h23456789012345678901234567890123456789012345678901234567890123456789"
	  "01234567890123456789012345678901234567890123456789012345678901.example.com\n",
	  NULL, "hosts.allow:1:7: warning: ", "cuts names to 127", NULL },
	{ "include_missing", "sshd: /nonexistent/bpfwrap-check-file\n", NULL,
	  "hosts.allow:1:7: warning: ", "pattern file '/nonexistent/bpfwrap-check-file'", NULL },
	{ "include_empty", "sshd: /dev/null\n", NULL, "hosts.allow:1:7: warning: ",
	  "/dev/null holds no patterns", NULL },
	/* daemon list */
	{ "daemon_is_address", "10.0.0.1: sshd\n", NULL, "hosts.allow:1:1: warning: ",
	  "looks like a client", NULL },
	{ "daemon_is_path", "/usr/sbin/sshd: ALL\n", NULL, "hosts.allow:1:1: warning: ",
	  "compared whole", "write sshd" },
	/* lists */
	{ "except_first", "sshd: EXCEPT 10.0.0.1\n", NULL, "hosts.allow:1:7: warning: ",
	  "client list starts with EXCEPT", "ALL EXCEPT" },
	{ "except_first_daemons", "EXCEPT sshd: ALL\n", NULL, "hosts.allow:1:1: warning: ",
	  "daemon list starts with EXCEPT", NULL },
	{ "except_last", "sshd: ALL EXCEPT\n", NULL, "hosts.allow:1:11: warning: ",
	  "nothing follows EXCEPT", NULL },
	{ "except_except", "sshd: ALL EXCEPT EXCEPT 10.0.0.1\n", NULL,
	  "hosts.allow:1:18: warning: ", "EXCEPT EXCEPT", NULL },
	{ "empty_clients", "sshd:\n", NULL, "hosts.allow:1:1: warning: ", "empty client list", NULL },
	{ "empty_daemons", ": ALL\n", NULL, "hosts.allow:1:1: warning: ", "empty daemon list", NULL },
	/* lines */
	{ "indented_hash", "  # sshd: ALL\n", NULL, "hosts.allow:1:3: warning: ",
	  "is a rule, not a comment", "only # in column 1 starts a comment" },
	/* shadowing */
	{ "shadow_all_clients", "sshd: ALL\nsshd: 10.0.0.1\n", NULL, "hosts.allow:2:1: warning: ",
	  "redundant: hosts.allow:1 already allows", "remove it" },
	{ "shadow_net_in_net", "sshd: 10.0.0.0/8\nsshd: 10.1.0.0/16\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant: hosts.allow:1", NULL },
	{ "shadow_address_in_net", "sshd: 10.0.0.0/255.0.0.0\nsshd: 10.9.9.9\n",
	  NULL, "hosts.allow:2:1: warning: ", "hosts.allow:1", NULL },
	{ "shadow_prefix_net", "sshd: 192.168.\nsshd: 192.168.1.0/24\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant: hosts.allow:1", NULL },
	{ "shadow_v6", "sshd: [2001:db8::]/32\nsshd: [2001:db8:1::]/48 [2001:db8::5]\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant: hosts.allow:1", NULL },
	{ "shadow_suffix", "sshd: .example.com\nsshd: www.example.com .a.example.com\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant: hosts.allow:1", NULL },
	{ "shadow_duplicate", NULL, "sshd: 10.0.0.1\nsshd: 10.0.0.1\n" ALL_ALL,
	  "hosts.deny:2:1: warning: ", "redundant: hosts.deny:1 already denies", NULL },
	{ "shadow_other_verdict", "sshd: ALL\nsshd: 10.0.0.1: deny\n", NULL,
	  "hosts.allow:2:1: warning: ", "never used: hosts.allow:1 already allows", "move it above line 1" },
	{ "after_all_all", NULL, "ALL: ALL\nsshd: 10.0.0.1\n", "hosts.deny:2:1: warning: ",
	  "redundant: hosts.deny:1 already denies", NULL },
	{ "shadow_across_files", ALL_ALL, "sshd: 10.0.0.1\n" ALL_ALL, "hosts.deny:1:1: warning: ",
	  "never used: hosts.allow:1 already allows every request this rule would deny", NULL },
	{ "shadow_user_at_host", "sshd: 10.0.0.0/8\nsshd: joe@10.1.1.1\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant", NULL },
	/* shadowing through the index (lint.c): the earliest covering rule is named */
	{ "shadow_earliest_named", "sshd: 10.1.0.0/16\nsshd: 10.0.0.0/8\nsshd: 10.1.2.3\n", NULL,
	  "hosts.allow:3:1: warning: ", "redundant: hosts.allow:1 already allows", NULL },
	{ "shadow_dotted_mask_all", "sshd: 0.0.0.0/0.0.0.0\nsshd: 10.1.2.0/24\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant: hosts.allow:1", NULL },
	{ "shadow_second_daemon", "sshd, ftpd: 10.0.0.0/8\nftpd: 10.1.1.1\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant: hosts.allow:1", NULL },
	{ "shadow_all_daemons_net", "ALL: 10.0.0.0/8\nsshd, ftpd: 10.1.1.1 10.2.0.0/16\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant: hosts.allow:1", NULL },
	{ "shadow_port_daemon", "22: ALL\n22: 10.1.1.1\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant: hosts.allow:1", NULL },
	{ "shadow_daemon_at_host", "sshd@10.0.0.1: ALL\nSSHD@10.0.0.1: 10.1.1.1\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant: hosts.allow:1", NULL },
	{ "shadow_prefix_address", "sshd: 192.168.\nsshd: 192.168.1.7 192.168.2.\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant: hosts.allow:1", NULL },
	{ "shadow_v6_address_in_net", "sshd: [2001:db8::]/32\nsshd: [2001:db8::7]\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant: hosts.allow:1", NULL },
	{ "shadow_across_files_net", "sshd: 10.0.0.0/8\n", "sshd: 10.3.0.0/16\n" ALL_ALL,
	  "hosts.deny:1:1: warning: ", "never used: hosts.allow:1 already allows", NULL },
	/* rules the index cannot key are compared pairwise */
	{ "shadow_noncontiguous_mask", "sshd: 10.0.0.0/255.0.255.0\nsshd: 10.5.0.7\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant: hosts.allow:1", NULL },
	{ "shadow_user_at_host_early", "sshd: joe@10.0.0.0/8\nsshd: JOE@10.1.2.3\n", NULL,
	  "hosts.allow:2:1: warning: ", "redundant: hosts.allow:1", NULL },
	/* tables */
	{ "deny_without_catch_all", "", "sshd: ALL\n", "hosts.deny: warning: ",
	  "no catch-all", "ALL : ALL" },
	{ "deny_empty", "", "", "hosts.deny: warning: ", "everything not listed is allowed", NULL },
	/* options */
	{ "unknown_expansion", NULL, "sshd: ALL: spawn echo %x\n" ALL_ALL, "hosts.deny:1:",
	  "unknown expansion %x", "%%" },
	{ "banners_missing", "sshd: ALL: banners /nonexistent/bpfwrap-banners\n", NULL,
	  "hosts.allow:1:", "no banner is sent", NULL },
	{ "deny_in_allow", "sshd: 10.0.0.1: deny\n", NULL, "hosts.allow:1:", "note: `deny` in hosts.allow",
	  NULL },
	{ "allow_in_deny", NULL, "sshd: 10.0.0.1: allow\n" ALL_ALL, "hosts.deny:1:",
	  "note: `allow` in hosts.deny", NULL },
	{ "twist_in_allow", "sshd: ALL: twist /bin/echo hi\n", NULL, "hosts.allow:1:",
	  "note: twist replaces the service", NULL },
	{ "needs_dns", "sshd: .example.com KNOWN\n", NULL, "hosts.allow:1:7: note: ",
	  "host name (reverse and forward DNS): .example.com, KNOWN", NULL },
	{ "needs_ident", NULL, "sshd: ALL: rfc931\n" ALL_ALL, "hosts.deny:1:", "note: rfc931 option",
	  NULL },
	/* libwrap's own diagnostics, from the parser */
	{ "parse_no_colon", "sshd ALL\n", NULL, "hosts.allow:1:", "warning: ", NULL },
	{ "parse_bad_option", "sshd: ALL: bogus\n", NULL, "hosts.allow:1:", "error: ", NULL },
	{ "parse_bad_severity", "sshd: ALL: severity nosuch.level\n", NULL, "hosts.allow:1:",
	  "error: ", NULL },
	{ "parse_bad_linger", "sshd: ALL: linger abc\n", NULL, "hosts.allow:1:12: error: ",
	  "bad linger value", NULL },
	{ "option_did_you_mean", "sshd: ALL: severty auth.info\n", NULL, "hosts.allow:1:12: error: ",
	  "bad option name", "did you mean `severity`?" },
	{ "parse_empty_option", NULL, "sshd: ALL:\n" ALL_ALL, "hosts.deny:1:", "error: ",
	  "remove the trailing ':'" },
	{ "parse_unreadable_include_nested", "sshd: /dev/null/x\n", NULL, "hosts.allow:1:7: warning: ",
	  "Not a directory", NULL },
	{ "parse_no_newline", NULL, "sshd: 10.0.0.1\nALL: ALL", "hosts.deny:2:", "error: ", NULL },
};

/* Inputs that must produce no diagnostic containing `absent`. */
struct quiet_case {
	const char *name;
	const char *allow, *deny;
	const char *absent;	/* NULL: no diagnostic at all (notes included) */
};

static const struct quiet_case quiet_cases[] = {
	{ "clean_nets", "sshd: 10.0.0.0/8 [2001:db8::]/32 127.0.0.1 [::1]\n", ALL_ALL, NULL },
	{ "clean_except", "ALL: 192.0.2.0/24\nhttpd: ALL EXCEPT 198.51.100.0/255.255.255.128\n",
	  "sshd: ALL\n" ALL_ALL, NULL },
	{ "clean_comments", "# a comment\n\nsshd: 10.0.0.1\n", "# deny the rest\n" ALL_ALL, NULL },
	{ "clean_catch_all_in_allow", "sshd: 10.0.0.1\nALL: ALL: deny\n", "", "catch-all" },
	{ "no_shadow_narrow_first", "sshd: 10.1.0.0/16\nsshd: 10.0.0.0/8\n", ALL_ALL, "hosts.allow:2" },
	{ "no_shadow_except", "sshd: 10.0.0.0/8 EXCEPT 10.1.0.0/16\nsshd: 10.1.2.3\n", ALL_ALL,
	  "hosts.allow:2" },
	{ "no_shadow_daemon_except", "ALL EXCEPT sshd: ALL\nsshd: 10.0.0.1\n", ALL_ALL,
	  "hosts.allow:2" },
	{ "no_shadow_other_daemon", "sshd: ALL\nhttpd: ALL\n", ALL_ALL, "hosts.allow:2" },
	{ "no_shadow_partly_other_daemon", "sshd: 10.0.0.0/8\nsshd,ftpd: 10.9.9.9\n", ALL_ALL,
	  "hosts.allow:2" },
	{ "no_shadow_suffix_vs_domain", "sshd: .example.com\nsshd: example.com\n", ALL_ALL,
	  "hosts.allow:2:1" },
	{ "no_shadow_address_prefix_vs_name", "sshd: 192.168.\nsshd: 192.168.example\n", ALL_ALL,
	  "hosts.allow:2:1" },
	{ "no_shadow_user_vs_all_users", "sshd: joe@ALL\nsshd: ALL\n", ALL_ALL, "hosts.allow:2:1" },
	{ "no_shadow_known_daemon", "KNOWN: ALL\nsshd: ALL\n", ALL_ALL, "hosts.allow:2:1" },
	{ "no_shadow_second_client_outside", "sshd: 10.0.0.0/8\nsshd: 10.1.1.1 192.168.1.1\n", ALL_ALL,
	  "hosts.allow:2:1" },
	{ "no_shadow_suffix_needs_name", "sshd: .3.4\nsshd: x.3.4\n", ALL_ALL, "hosts.allow:2:1" },
	{ "no_shadow_v4_in_v6_net", "sshd: [::]/0\nsshd: 10.1.1.1\n", ALL_ALL, "hosts.allow:2:1" },
	{ "no_shadow_bad_net", "sshd: 10.1.2.3/16\nsshd: 10.1.2.3\n", ALL_ALL, "hosts.allow:2:1" },
	{ "unknown_excepted", "sshd: ALL EXCEPT UNKNOWN\n", ALL_ALL, "grants access" },
	{ "unknown_in_deny", "", "ALL: UNKNOWN\n" ALL_ALL, "grants access" },
	{ "daemon_dotted_name", "in.telnetd: 10.0.0.1\n", ALL_ALL, NULL },
	{ "ipv6_bracketed_options", "sshd: [2001:db8::1] : severity auth.info\n", ALL_ALL, NULL },
	{ "crlf_lines", "sshd: 10.0.0.1\r\nftpd: 10.0.0.2\r\n", ALL_ALL "\r\n", NULL },
	{ "continuation", "sshd: 10.0.0.\\\n1, \\\n 10.0.0.2\n", ALL_ALL, NULL },
	{ "no_spill_port_like", "sshd: ALL: spawn /bin/echo 1:2:3 beef:cafe\n", ALL_ALL, "brackets" },
	{ "comment_col1_then_rule", "#sshd: ALL\nsshd: 10.0.0.1\n", ALL_ALL, NULL },
};

/* lint_text - parse and lint two buffers; returns every diagnostic formatted, one per line
 * ("  hint: ..." after its diagnostic), or NULL */
static char *lint_text(const char *allow, const char *deny, size_t *n_diags)
{
	struct policy *p = NULL;
	struct diag_list diags = { 0 };
	char *buf = NULL, line[4096];
	size_t size = 0;
	FILE *out;
	int r;

	r = policy_parse_buffers(&p, "hosts.allow", allow, strlen(allow), "hosts.deny", deny,
				 strlen(deny));
	if (r < 0) {
		print_error("policy_parse_buffers: got %d, want 0\n", r);
		return NULL;
	}
	r = policy_lint(p, &diags);
	if (r < 0) {
		print_error("policy_lint: got %d, want 0\n", r);
		policy_free(p);
		return NULL;
	}
	out = open_memstream(&buf, &size);
	assert_non_null(out);
	for (size_t i = 0; i < diags.count; i++) {
		fprintf(out, "%s\n", check_format(&diags.items[i], line, sizeof(line)));
		if (diags.items[i].hint)
			fprintf(out, "  hint: %s\n", diags.items[i].hint);
	}
	fclose(out);
	*n_diags = diags.count;
	check_diags_free(&diags);
	policy_free(p);
	return buf;
}

/* find_diag - the line that starts with where and contains message; its hint line or "" */
static const char *find_diag(const char *all, const char *where, const char *message,
			     char *hint, size_t hint_size)
{
	for (const char *s = all; *s;) {
		const char *eol = strchr(s, '\n');
		size_t n = eol ? (size_t)(eol - s) : strlen(s);
		char line[4096];

		snprintf(line, sizeof(line), "%.*s", (int)n, s);
		s += n + (eol ? 1 : 0);
		if (strncmp(line, where, strlen(where)) || !strstr(line, message))
			continue;
		hint[0] = '\0';
		if (!strncmp(s, "  hint: ", 8))
			snprintf(hint, hint_size, "%.*s", (int)strcspn(s, "\n"), s);
		return all;
	}
	return NULL;
}

/* test_lint_case - one diagnostic, in the right place, with its hint */
static void test_lint_case(void **state)
{
	const struct lint_case *c = *state;
	size_t n = 0;
	char hint[4096];
	char *got = lint_text(c->allow ? c->allow : "", c->deny ? c->deny : ALL_ALL, &n);

	assert_non_null(got);
	if (!find_diag(got, c->where, c->message, hint, sizeof(hint))) {
		print_error("%s: got:\n%swant a line starting \"%s\" containing \"%s\"\n", c->name,
			    got, c->where, c->message);
		free(got);
		fail();
	}
	if (c->hint && !strstr(hint, c->hint)) {
		print_error("%s: hint: got \"%s\", want it to contain \"%s\"\n", c->name, hint, c->hint);
		free(got);
		fail();
	}
	free(got);
}

/* test_quiet_case - no false positive */
static void test_quiet_case(void **state)
{
	const struct quiet_case *c = *state;
	size_t n = 0;
	char *got = lint_text(c->allow, c->deny, &n);

	assert_non_null(got);
	if (c->absent ? strstr(got, c->absent) != NULL : n != 0) {
		print_error("%s: got:\n%swant %s%s%s\n", c->name, got,
			    c->absent ? "no line containing \"" : "no diagnostic",
			    c->absent ? c->absent : "", c->absent ? "\"" : "");
		free(got);
		fail();
	}
	free(got);
}

/* test_sorted - parse and lint diagnostics come out in file, line, column order */
static void test_sorted(void **state)
{
	struct policy *p = NULL;
	struct diag_list diags = { 0 };

	const char *allow = "sshd: 10.1.2.3/16\nfoo bar\nsshd: ALL: bogus\n";
	const char *deny = "  # x: y\nsshd: ALL";

	assert_int_equal(policy_parse_buffers(&p, "hosts.allow", allow, strlen(allow), "hosts.deny",
					      deny, strlen(deny)),
			 0);
	assert_int_equal(policy_lint(p, &diags), 0);
	for (size_t i = 1; i < diags.count; i++) {
		const struct srcpos *a = &diags.items[i - 1].pos, *b = &diags.items[i].pos;
		int fa = !strcmp(a->file, "hosts.deny"), fb = !strcmp(b->file, "hosts.deny");

		if (fa > fb || (fa == fb && (a->line > b->line ||
					     (a->line == b->line && a->col > b->col)))) {
			print_error("order: got %s:%u:%u before %s:%u:%u\n", a->file, a->line, a->col,
				    b->file, b->line, b->col);
			fail();
		}
	}
	assert_true(diags.count >= 4);
	check_diags_free(&diags);
	policy_free(p);
}

/* big_policy - n rules "sshd: 11.A.B.C" (distinct), then extra; malloc'd */
static char *big_policy(unsigned n, const char *extra)
{
	size_t size = (size_t)n * 24 + strlen(extra) + 1, len = 0;
	char *s = malloc(size);

	assert_non_null(s);
	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, size - len, "sshd: 11.%u.%u.%u\n", i >> 16 & 255,
					i >> 8 & 255, i & 255);
	snprintf(s + len, size - len, "%s", extra);
	return s;
}

/* count_lines - lines of all that contain needle */
static size_t count_lines(const char *all, const char *needle)
{
	size_t n = 0;

	for (const char *s = all; (s = strstr(s, needle)); s++)
		n++;
	return n;
}

/* test_shadow_large - 200,000 distinct host rules: the shadow check stays
 * fast and still finds a late duplicate of a NARROW rule (pairwise work on
 * every pair would take hours; it was once limited to ALL rules) */
static void test_shadow_large(void **state)
{
	char *allow = big_policy(200000, "sshd: 11.0.1.44\nsshd: 11.0.0.0/16\nsshd: 11.0.2.0/24\n");
	struct timespec t0, t1;
	size_t n = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	char *got = lint_text(allow, ALL_ALL, &n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(allow);
	assert_non_null(got);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	size_t shadows = count_lines(got, "redundant");
	if (!strstr(got, "hosts.allow:200001:1: warning: redundant: hosts.allow:301 already allows") ||
	    !strstr(got, "hosts.allow:200003:1: warning: redundant: hosts.allow:200002 already allows") ||
	    shadows != 2 || strstr(got, "incomplete")) {
		print_error("got %zu redundant lines:\n%.2000s\nwant exactly lines 200001 (by 301) and "
			    "200003 (by 200002), no note\n", shadows, got);
		free(got);
		fail();
	}
	free(got);
	if (secs > 20) {
		print_error("policy_lint of 200,000 rules: got %.1f s, want < 20 s\n", secs);
		fail();
	}
}

/* test_shadow_incomplete - a lookup that meets more near-identical rules than
 * it confirms says so in a note instead of going quadratic */
static void test_shadow_incomplete(void **state)
{
	static const char rule[] = "sshd: 10.0.0.0/8\n", last[] = "sshd: 10.1.1.1 192.168.1.1\n";
	char *allow = malloc(100 * (sizeof(rule) - 1) + sizeof(last)), *got;
	size_t len = 0, n = 0;

	assert_non_null(allow);
	for (int i = 0; i < 100; i++, len += sizeof(rule) - 1)
		memcpy(allow + len, rule, sizeof(rule) - 1);
	memcpy(allow + len, last, sizeof(last));
	got = lint_text(allow, ALL_ALL, &n);
	free(allow);
	assert_non_null(got);
	if (!strstr(got, "hosts.allow: note: shadowed-rule check incomplete") ||
	    strstr(got, "hosts.allow:101:")) {
		print_error("got:\n%.3000s\nwant the note \"hosts.allow: note: shadowed-rule check "
			    "incomplete\" and nothing about line 101\n", got);
		free(got);
		fail();
	}
	free(got);
}

/* test_file_cycle - a /path file that includes itself is an error at the item */
static void test_file_cycle(void **state)
{
	char dir[] = "/tmp/test_check_cycle.XXXXXX", self[128], text[300], where[160];
	size_t n = 0;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(self, sizeof(self), "%s/self", dir);
	assert_non_null(f = fopen(self, "w"));
	fprintf(f, "10.0.0.1\n  %s\n", self);
	fclose(f);
	snprintf(text, sizeof(text), "sshd: %s\n", self);
	char *got = lint_text(text, ALL_ALL, &n);
	unlink(self);
	rmdir(dir);
	assert_non_null(got);
	snprintf(where, sizeof(where), "%s:2:3: error: ", self);
	char hint[4096];
	if (!find_diag(got, where, "includes itself", hint, sizeof(hint)) || !strstr(hint, "remove")) {
		print_error("got:\n%swant a line starting \"%s\" containing \"includes itself\" with a hint\n",
			    got, where);
		free(got);
		fail();
	}
	free(got);
}

/* ---- the binary: exit status ---- */

struct exit_case {
	const char *name;
	const char *allow, *deny;
	const char *flags;	/* extra arguments */
	int want;
	const char *want_out;	/* a substring of stdout */
};

static const struct exit_case exit_cases[] = {
	{ "exit_clean", "sshd: 10.0.0.1\n", ALL_ALL, "", 0, "check: 0 errors, 0 warnings" },
	{ "exit_warning", "sshd: 10.1.2.3/16\n", ALL_ALL, "", 0, "check: 0 errors, 1 warning" },
	{ "exit_warning_strict", "sshd: 10.1.2.3/16\n", ALL_ALL, "--strict", 1, "1 warning" },
	{ "exit_error", "sshd: ALL: bogus\n", ALL_ALL, "", 2, "error" },
	{ "exit_error_strict", "sshd: ALL\n", "ALL: ALL", "--strict", 2, "error" },
	{ "exit_quiet_clean", "sshd: 10.0.0.1\n", ALL_ALL, "--quiet", 0, "" },
	{ "exit_unreadable", NULL, ALL_ALL, "", 2, "error" },
	{ "exit_bad_usage", "", "", "--bogus", 2, "" },
};

/* write_file - create path with text; false on failure */
static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return false;
	fputs(text, f);
	return fclose(f) == 0;
}

/* run_capture - run cmd with sh, stdout into out; the exit status or -1 */
static int run_capture(const char *cmd, char *out, size_t size)
{
	FILE *p = popen(cmd, "r");
	size_t n;
	int st;

	if (!p)
		return -1;
	n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* test_exit_case - the real binary's exit status and summary */
static void test_exit_case(void **state)
{
	const struct exit_case *c = *state;
	const char *build = getenv("BPFWRAP_BUILD");
	char dir[] = "/tmp/bpfwrap-check-XXXXXX", allow[128], deny[128], bin[512], cmd[2048];
	char out[8192];
	int got;

	if (!build || !*build)
		build = "build";
	snprintf(bin, sizeof(bin), "%s/bpfwrap", build);
	if (access(bin, X_OK) < 0)
		fail_msg("%s: %s: %s (build it first: make test-build)", c->name, bin, strerror(errno));
	assert_non_null(mkdtemp(dir));
	snprintf(allow, sizeof(allow), "%s/hosts.allow", dir);
	snprintf(deny, sizeof(deny), "%s/hosts.deny", dir);
	if (c->allow) {
		assert_true(write_file(allow, c->allow));
	} else {	/* a path through a regular file: ENOTDIR, unreadable even as root */
		assert_true(write_file(allow, ""));
		strncat(allow, "/x", sizeof(allow) - strlen(allow) - 1);
	}
	assert_true(write_file(deny, c->deny));
	snprintf(cmd, sizeof(cmd), "%s check --allow %s --deny %s %s 2>/dev/null", bin, allow, deny,
		 c->flags);
	got = run_capture(cmd, out, sizeof(out));
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		print_error("cleanup of %s failed\n", dir);
	if (got != c->want) {
		print_error("%s: exit status: got %d, want %d; output:\n%s", c->name, got, c->want, out);
		fail();
	}
	if (!strstr(out, c->want_out)) {
		print_error("%s: output: got:\n%swant it to contain \"%s\"\n", c->name, out, c->want_out);
		fail();
	}
	if (!strcmp(c->flags, "--quiet") && out[0]) {
		print_error("%s: --quiet: got output \"%s\", want none\n", c->name, out);
		fail();
	}
}

/* test_special_files - check on a FIFO (as hosts.allow, hosts.deny, a /path
 * file) never blocks and names the file and its type; a directory is a
 * warning ("is a directory"), as libwrap reads it as empty */
static void test_special_files(void **state)
{
	static const struct {
		const char *name, *allow, *deny;	/* "FIFO", "DIR", "PATHFIFO" or a text */
		int want;
		const char *want_out;
		bool ext_fifo;		/* --extensions FIFO too */
	} cases[] = {
		{ "fifo_deny", ALL_ALL, "FIFO", 2, "hosts.deny: error: not a regular file (fifo)", false },
		{ "fifo_allow", "FIFO", ALL_ALL, 2, "hosts.allow: error: not a regular file (fifo)", false },
		{ "fifo_path_file", "PATHFIFO", ALL_ALL, 0, "not a regular file (fifo)", false },
		{ "directory_deny", "sshd: ALL\n", "DIR", 0, "hosts.deny: warning: is a directory", false },
		{ "fifo_extensions", "sshd: ALL\n", ALL_ALL, 2, "fifo: error: not a regular file (fifo)", true },
	};
	const char *build = getenv("BPFWRAP_BUILD");
	char dir[] = "/tmp/bpfwrap-check-special-XXXXXX", bin[512], fifo[128], sub[128], cmd[2048];
	char out[8192];
	bool ok = true;

	if (!build || !*build)
		build = "build";
	snprintf(bin, sizeof(bin), "%s/bpfwrap", build);
	if (access(bin, X_OK) < 0)
		fail_msg("special files: %s: %s (build it first: make test-build)", bin, strerror(errno));
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *texts[2] = { cases[i].allow, cases[i].deny }, *names[2] = { "hosts.allow", "hosts.deny" };
		char paths[2][160], pathfile[300];
		int got;

		snprintf(cmd, sizeof(cmd), "rm -rf %s/hosts.allow %s/hosts.deny %s", dir, dir, sub);
		assert_int_equal(system(cmd), 0);
		for (int k = 0; k < 2; k++) {
			snprintf(paths[k], sizeof(paths[k]), "%s/%s", dir, names[k]);
			if (!strcmp(texts[k], "FIFO")) {
				assert_int_equal(mkfifo(paths[k], 0600), 0);
			} else if (!strcmp(texts[k], "DIR")) {
				assert_int_equal(mkdir(paths[k], 0700), 0);
			} else if (!strcmp(texts[k], "PATHFIFO")) {
				snprintf(pathfile, sizeof(pathfile), "sshd: %s\n", fifo);
				assert_true(write_file(paths[k], pathfile));
			} else {
				assert_true(write_file(paths[k], texts[k]));
			}
		}
		/* the names in the output are the ones given: run from the directory */
		snprintf(cmd, sizeof(cmd), "cd %s && timeout 10 %s%s check --allow hosts.allow "
			 "--deny hosts.deny %s 2>&1", dir, build[0] == '/' ? "" : "$OLDPWD/", bin,
			 cases[i].ext_fifo ? "--extensions fifo" : "");
		got = run_capture(cmd, out, sizeof(out));
		if (got != cases[i].want || !strstr(out, cases[i].want_out)) {
			print_error("%s: got exit %d (124: it blocked) and:\n%swant exit %d and a line "
				    "containing \"%s\"\n", cases[i].name, got, out, cases[i].want,
				    cases[i].want_out);
			ok = false;
		}
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		print_error("cleanup of %s failed\n", dir);
	assert_true(ok);
}

/* test_examples - the shipped examples check clean (notes allowed) */
static void test_examples(void **state)
{
	const char *build = getenv("BPFWRAP_BUILD");
	char bin[512], cmd[1024], out[8192];
	int got;

	if (!build || !*build)
		build = "build";
	snprintf(bin, sizeof(bin), "%s/bpfwrap", build);
	if (access(bin, X_OK) < 0)
		fail_msg("examples: %s: %s (build it first: make test-build)", bin, strerror(errno));
	if (access("examples/hosts.allow", R_OK) < 0)
		fail_msg("examples: examples/hosts.allow: %s (run from the repository root)",
			 strerror(errno));
	snprintf(cmd, sizeof(cmd),
		 "%s check --strict --allow examples/hosts.allow --deny examples/hosts.deny", bin);
	got = run_capture(cmd, out, sizeof(out));
	if (got != 0) {
		print_error("examples: exit status: got %d, want 0; output:\n%s", got, out);
		fail();
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

int main(void)
{
	/* the cases of the three tables, then the six tests below */
	static struct CMUnitTest tests[N(lint_cases) + N(quiet_cases) + N(exit_cases) + 6];
	size_t k = 0;

	for (size_t i = 0; i < N(lint_cases); i++)
		tests[k++] = (struct CMUnitTest){ .name = lint_cases[i].name,
						  .test_func = test_lint_case,
						  .initial_state = (void *)&lint_cases[i] };
	for (size_t i = 0; i < N(quiet_cases); i++)
		tests[k++] = (struct CMUnitTest){ .name = quiet_cases[i].name,
						  .test_func = test_quiet_case,
						  .initial_state = (void *)&quiet_cases[i] };
	for (size_t i = 0; i < N(exit_cases); i++)
		tests[k++] = (struct CMUnitTest){ .name = exit_cases[i].name,
						  .test_func = test_exit_case,
						  .initial_state = (void *)&exit_cases[i] };
	tests[k++] = (struct CMUnitTest){ .name = "sorted", .test_func = test_sorted };
	tests[k++] = (struct CMUnitTest){ .name = "examples", .test_func = test_examples };
	tests[k++] = (struct CMUnitTest){ .name = "shadow_large", .test_func = test_shadow_large };
	tests[k++] = (struct CMUnitTest){ .name = "shadow_incomplete", .test_func = test_shadow_incomplete };
	tests[k++] = (struct CMUnitTest){ .name = "file_cycle", .test_func = test_file_cycle };
	tests[k++] = (struct CMUnitTest){ .name = "special_files", .test_func = test_special_files };

	if (k != N(tests))
		return 1;	/* a test added without growing the array */
	return cmocka_run_group_tests_name("check", tests, NULL, NULL);
}
