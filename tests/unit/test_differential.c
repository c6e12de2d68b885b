/*
 * test_differential.c - bpfwrap's reference evaluator against the real
 * libwrap: the same policies and queries through tests/diff/tool_oracle
 * (Debian's libwrap) and `bpfwrap match --batch`, answers compared line by
 * line.
 *
 *   oracle_modes_agree  the oracle's batched workers answer like one fork
 *                       per query (its isolation is sound)
 *   tricky_cases        named hand-written policies at libwrap's odd corners;
 *                       the oracle's answer is the truth, and the answer
 *                       SEMANTICS.md predicts is checked against it too
 *   random_corpus       seeds 1..N of tests/diff/tool_gen, >= 10,000 queries
 *
 * Tools come from $BPFWRAP_BUILD (default "build"): bpfwrap,
 * tests/diff/tool_oracle, tests/diff/tool_gen. A missing tool is a failure,
 * never a skip. Environment: BPFWRAP_DIFF_SEEDS (number of seeds, default
 * 400), BPFWRAP_DIFF_QUERIES (queries per seed, default 30),
 * BPFWRAP_DIFF_FIRST_SEED (default 1).
 *
 * On a difference the seed, the query, both answers and the policy files
 * are printed (for the first few), then the test fails.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diff/proc.h"

#define TOOL_SECONDS 120	/* time limit for one tool run */
#define SHOW_DIFFS 6		/* differences printed in full */

struct tools {
	char bpfwrap[PATH_MAX], oracle[PATH_MAX], gen[PATH_MAX];
	char dir[64];		/* scratch directory */
	char allow[PATH_MAX], deny[PATH_MAX], queries[PATH_MAX];
	char out_oracle[PATH_MAX], out_bpfwrap[PATH_MAX], err_oracle[PATH_MAX],
		err_bpfwrap[PATH_MAX];
};

static struct tools T;

/* path_in - DIR/NAME into buf (fails the test if it does not fit) */
static void path_in(char *buf, const char *dir, const char *name)
{
	int n = snprintf(buf, PATH_MAX, "%s/%s", dir, name);

	assert_true(n > 0 && n < PATH_MAX);
}

/* require_tools - fail (not skip) unless the oracle, generator and bpfwrap exist */
static void require_tools(void)
{
	const char *b = build_dir();
	const char *missing[3];
	int n = 0;

	path_in(T.bpfwrap, b, "bpfwrap");
	path_in(T.oracle, b, "tests/diff/tool_oracle");
	path_in(T.gen, b, "tests/diff/tool_gen");
	if (!is_executable(T.oracle))
		missing[n++] = T.oracle;
	if (!is_executable(T.gen))
		missing[n++] = T.gen;
	if (!is_executable(T.bpfwrap))
		missing[n++] = T.bpfwrap;
	for (int i = 0; i < n; i++)
		print_error("missing tool: %s (build with `make test-build`)\n", missing[i]);
	if (n)
		fail_msg("got %d missing tools, want 0", n);
}

/* setup - scratch directory and file names */
static int setup(void **state)
{
	snprintf(T.dir, sizeof(T.dir), "/tmp/bpfwrap-diff.XXXXXX");
	if (!mkdtemp(T.dir)) {
		print_error("mkdtemp: %s\n", strerror(errno));
		return -1;
	}
	path_in(T.allow, T.dir, "hosts.allow");
	path_in(T.deny, T.dir, "hosts.deny");
	path_in(T.queries, T.dir, "queries");
	path_in(T.out_oracle, T.dir, "oracle.out");
	path_in(T.out_bpfwrap, T.dir, "bpfwrap.out");
	path_in(T.err_oracle, T.dir, "oracle.err");
	path_in(T.err_bpfwrap, T.dir, "bpfwrap.err");
	return 0;
}

/* teardown - remove the scratch directory and what is in it */
static int teardown(void **state)
{
	static const char *const names[] = { "hosts.allow", "hosts.deny", "queries", "clients",
					     "oracle.out", "bpfwrap.out", "oracle.err",
					     "bpfwrap.err", "oracle2.out", "list" };
	char p[PATH_MAX];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", T.dir, names[i]);
		unlink(p);
	}
	rmdir(T.dir);
	return 0;
}

/* next_line - the next line of *p (NUL-terminated, newline removed), or NULL */
static char *next_line(char **p)
{
	char *s = *p, *nl;

	if (!s || !*s)
		return NULL;
	nl = strchr(s, '\n');
	if (nl) {
		*nl = '\0';
		*p = nl + 1;
	} else {
		*p = s + strlen(s);
	}
	return s;
}

/* print_file - a file's content, indented, with control characters visible */
static void print_file(const char *label, const char *path)
{
	char *text = read_whole(path, NULL);

	print_message("    --- %s%s\n", label, text ? "" : " (missing)");
	if (!text)
		return;
	print_message("    | ");
	for (const char *c = text; *c; c++) {
		if (*c == '\n')
			print_message("$\n%s", c[1] ? "    | " : "");
		else if (*c == '\r')
			print_message("\\r");
		else if (*c == '\t')
			print_message("\\t");
		else
			print_message("%c", *c);
	}
	if (*text && text[strlen(text) - 1] != '\n')
		print_message("  <no final newline>\n");
	free(text);
}

struct tally {
	unsigned long queries, policies, diffs, errors, shown;
};

/*
 * run_pair - run the oracle and bpfwrap on T.allow/T.deny/T.queries and
 * compare; `label` names the policy in messages. Differences and tool
 * failures are counted in *t and the first few are printed.
 */
static void run_pair(const char *label, struct tally *t)
{
	char *argv_o[] = { T.oracle, "--allow", T.allow, "--deny", T.deny, NULL };
	char *argv_b[] = { T.bpfwrap, "match", "--batch", "--allow", T.allow, "--deny", T.deny, NULL };
	char st_o[64], st_b[64];
	char *qtext, *otext, *btext, *qp, *op, *bp, *q;
	int so, sb;
	bool printed_policy = false;

	so = run_tool(argv_o, T.queries, T.out_oracle, T.err_oracle, TOOL_SECONDS);
	sb = run_tool(argv_b, T.queries, T.out_bpfwrap, T.err_bpfwrap, TOOL_SECONDS);
	qtext = read_whole(T.queries, NULL);
	otext = read_whole(T.out_oracle, NULL);
	btext = read_whole(T.out_bpfwrap, NULL);
	assert_non_null(qtext);
	t->policies++;
	if (so != 0) {
		t->errors++;
		print_error("%s: oracle failed (%s), stderr:\n", label, status_text(so, st_o, sizeof(st_o)));
		print_file("oracle stderr", T.err_oracle);
	}
	if (!WIFEXITED(sb) || (!btext && sb != 0)) {
		t->errors++;
		print_error("%s: bpfwrap match --batch failed (%s), stderr:\n", label,
			    status_text(sb, st_b, sizeof(st_b)));
		print_file("bpfwrap stderr", T.err_bpfwrap);
	}
	qp = qtext, op = otext, bp = btext;
	while ((q = next_line(&qp)) != NULL) {
		const char *o = next_line(&op), *b = next_line(&bp);

		t->queries++;
		if (o && b && !strcmp(o, b) && (!strcmp(o, "allow") || !strcmp(o, "deny")))
			continue;
		t->diffs++;
		if (t->shown >= SHOW_DIFFS)
			continue;
		t->shown++;
		print_error("DIFFERENCE %s: query `%s`: got bpfwrap %s, want libwrap %s\n", label, q,
			    b ? b : "(no line)", o ? o : "(no line)");
		if (!printed_policy) {
			printed_policy = true;
			print_file("hosts.allow", T.allow);
			print_file("hosts.deny", T.deny);
			if (sb != 0 || (btext && strstr(btext, "error"))) /* unexpected: show why */
				print_file("bpfwrap stderr", T.err_bpfwrap);
		}
	}
	if (bp && next_line(&bp)) {
		t->diffs++;
		print_error("%s: bpfwrap printed more lines than there are queries\n", label);
	}
	free(qtext);
	free(otext);
	free(btext);
}

/* env_number - a positive number from the environment, or dflt */
static unsigned long env_number(const char *name, unsigned long dflt)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v;

	if (!s || !*s)
		return dflt;
	v = strtoul(s, &end, 10);
	return *end || v == 0 ? dflt : v;
}

/* generate - tool_gen SEED DIR N into the scratch directory */
static void generate(unsigned long seed, unsigned long nq)
{
	char s_seed[32], s_nq[32], st[64];
	char *argv[] = { T.gen, s_seed, T.dir, s_nq, NULL };
	int rc;

	snprintf(s_seed, sizeof(s_seed), "%lu", seed);
	snprintf(s_nq, sizeof(s_nq), "%lu", nq);
	rc = run_tool(argv, NULL, NULL, NULL, TOOL_SECONDS);
	if (rc != 0)
		fail_msg("tool_gen %lu: got %s, want exit 0", seed, status_text(rc, st, sizeof(st)));
}

/* test_random_corpus - seeds 1..N: oracle vs bpfwrap, every query */
static void test_random_corpus(void **state)
{
	unsigned long first = env_number("BPFWRAP_DIFF_FIRST_SEED", 1);
	unsigned long seeds = env_number("BPFWRAP_DIFF_SEEDS", 400);
	unsigned long nq = env_number("BPFWRAP_DIFF_QUERIES", 30);
	struct tally t = { 0 };
	unsigned long bad_seeds[16], n_bad = 0;

	require_tools();
	for (unsigned long seed = first; seed < first + seeds; seed++) {
		char label[48];
		unsigned long before = t.diffs + t.errors;

		generate(seed, nq);
		snprintf(label, sizeof(label), "seed %lu", seed);
		run_pair(label, &t);
		if (t.diffs + t.errors != before && n_bad < sizeof(bad_seeds) / sizeof(bad_seeds[0]))
			bad_seeds[n_bad++] = seed;
	}
	print_message("differential: %lu queries, %lu policies, %lu differences, %lu tool errors\n",
		      t.queries, t.policies, t.diffs, t.errors);
	if (n_bad) {
		print_message("differential: first seeds with differences:");
		for (unsigned long i = 0; i < n_bad; i++)
			print_message(" %lu", bad_seeds[i]);
		print_message("\n(reproduce: %s SEED DIR %lu, then compare %s and %s match --batch)\n",
			      T.gen, nq, T.oracle, T.bpfwrap);
	}
	assert_true(t.queries >= 10000 || seeds * nq < 10000);
	if (t.diffs || t.errors)
		fail_msg("got %lu differences and %lu tool errors in %lu queries, want 0", t.diffs,
			 t.errors, t.queries);
}

/* test_oracle_modes_agree - batched oracle workers == one fork per query */
static void test_oracle_modes_agree(void **state)
{
	char out2[PATH_MAX];
	char *argv_b[] = { T.oracle, "--allow", T.allow, "--deny", T.deny, NULL };
	char *argv_f[] = { T.oracle, "--fork-each", "--allow", T.allow, "--deny", T.deny, NULL };
	unsigned long n = 0, diffs = 0;

	require_tools();
	path_in(out2, T.dir, "oracle2.out");
	for (unsigned long seed = 1000; seed < 1030; seed++) {
		char st[64], *a, *b, *ap, *bp, *x;
		int rc;

		generate(seed, 40);
		rc = run_tool(argv_b, T.queries, T.out_oracle, T.err_oracle, TOOL_SECONDS);
		if (rc != 0)
			fail_msg("oracle seed %lu: got %s, want exit 0", seed, status_text(rc, st, sizeof(st)));
		rc = run_tool(argv_f, T.queries, out2, T.err_oracle, TOOL_SECONDS);
		if (rc != 0)
			fail_msg("oracle --fork-each seed %lu: got %s, want exit 0", seed,
				 status_text(rc, st, sizeof(st)));
		a = read_whole(T.out_oracle, NULL);
		b = read_whole(out2, NULL);
		assert_non_null(a);
		assert_non_null(b);
		ap = a, bp = b;
		while ((x = next_line(&ap)) != NULL) {
			const char *y = next_line(&bp);

			n++;
			if (!y || strcmp(x, y)) {
				diffs++;
				print_error("seed %lu query %lu: got batched %s, want fork-each %s\n", seed,
					    n, x, y ? y : "(none)");
			}
		}
		free(a);
		free(b);
	}
	print_message("oracle modes: %lu queries, %lu differences\n", n, diffs);
	assert_true(n > 0);
	if (diffs)
		fail_msg("got %lu differences between oracle modes, want 0", diffs);
}

/*
 * A hand-written case: policy text, queries (one per line) and the answers
 * SEMANTICS.md predicts (blank-separated; "?" = no prediction). "@DIR@" in a
 * policy is replaced by the scratch directory, "@LIST@" is written there as
 * the file `list` when non-NULL.
 */
struct tricky {
	const char *name;
	const char *allow, *deny;
	const char *queries;
	const char *want;
	const char *list;
};

#define LONG120 "abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi." \
		"abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi."
#define NAME140 LONG120 "abcdefghi.example.com"	/* 141 characters */
#define NAME127 LONG120 "abcdefg"			/* its first 127 */

/* CASE - a case without a list file; CASE_LIST - with one */
#define CASE(name, allow, deny, queries, want) { name, allow, deny, queries, want, NULL }
#define CASE_LIST(name, allow, deny, queries, want, list) { name, allow, deny, queries, want, list }

static const struct tricky tricky[] = {
	CASE("net_not_masked", "sshd: 10.1.2.3/16\n", "ALL: ALL\n", "sshd 10.1.2.3 - - -\n", "deny"),
	CASE("net_first_last_outside", "sshd: 10.1.0.0/16\n", "ALL: ALL\n",
	  "sshd 10.1.0.0 - - -\nsshd 10.1.255.255 - - -\nsshd 10.0.255.255 - - -\nsshd 10.2.0.0 - - -\n",
	  "allow allow deny deny"),
	CASE("len_0_and_33_never", "sshd: 0.0.0.0/0, 10.0.0.1/33\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("len_32_vs_all_ones_mask", "sshd: 10.0.0.1/32\nftpd: 10.0.0.1/255.255.255.255\n",
	  "ALL: ALL\n", "sshd 10.0.0.1 - - -\nftpd 10.0.0.1 - - -\n", "allow deny"),
	CASE("len_read_by_atoi", "sshd: 10.1.0.0/24abc\n", "ALL: ALL\n",
	  "sshd 10.1.0.3 - - -\nsshd 10.1.1.3 - - -\n", "allow deny"),
	CASE("octal_and_hex_quads", "sshd: 012.1.0.0/16\nftpd: 0xa.1.0.0/255.255.0.0\n", "ALL: ALL\n",
	  "sshd 10.1.2.3 - - -\nftpd 10.1.2.3 - - -\nsshd 12.1.2.3 - - -\n", "allow allow deny"),
	CASE("noncontiguous_mask", "sshd: 10.1.0.0/255.255.0.255\n", "ALL: ALL\n",
	  "sshd 10.1.2.0 - - -\nsshd 10.1.2.3 - - -\n", "allow deny"),
	CASE("two_part_net_never", "sshd: 10.1/16\n", "ALL: ALL\n", "sshd 10.1.0.1 - - -\n", "deny"),
	CASE("mapped_client_matches_v4_net", "sshd: 10.1.0.0/16\n", "ALL: ALL\n",
	  "sshd ::ffff:10.1.2.3 - - -\nsshd ::FFFF:10.1.2.3 - - -\n", "allow allow"),
	CASE("mapped_client_not_v6_pattern", "sshd: [::ffff:10.1.2.3], [::ffff:0.0.0.0]/96\n",
	  "ALL: ALL\n", "sshd ::ffff:10.1.2.3 - - -\n", "deny"),
	CASE("v6_net_boundaries", "sshd: [2001:db8::]/32\n", "ALL: ALL\n",
	  "sshd 2001:db8:1::5 - - -\nsshd 2001:db9:: - - -\n"
	  "sshd 2001:db7:ffff:ffff:ffff:ffff:ffff:ffff - - -\nsshd 2001:db8:ffff:ffff:ffff:ffff:ffff:ffff - - -\n",
	  "allow deny deny allow"),
	CASE("v6_len_missing_is_0", "sshd: [2001:db8::]/\nftpd: [2001:db8::]/abc\n", "ALL: ALL\n",
	  "sshd 2001:db9::1 - - -\nsshd 10.0.0.1 - - -\nftpd ::1 - - -\n", "allow deny allow"),
	CASE("v6_any_spelling", "sshd: [2001:0DB8:0000::0001]\n", "ALL: ALL\n",
	  "sshd 2001:db8::1 - - -\nsshd 2001:db8::2 - - -\n", "allow deny"),
	CASE("v6_scope_ignored", "sshd: [fe80::1%eth0]\n", "ALL: ALL\n", "sshd fe80::1 - - -\n", "allow"),
	CASE("v6_unbracketed_spills", "sshd: 2001:db8::1\n", "",
	  "sshd 2001 - - -\nsshd 2001:db8::1 - - -\n", "deny allow"),
	CASE("v6_brackets_in_field_split", "sshd@[::1]: [2001:db8::1]: allow\n", "ALL: ALL\n",
	  "sshd 2001:db8::1 - - ::1\nsshd 2001:db8::1 - - ::2\n", "allow deny"),
	CASE("suffix_vs_exact_vs_near_miss", "sshd: .example.com\n", "ALL: ALL\n",
	  "sshd 1.2.3.4 example.com - -\nsshd 1.2.3.4 www.example.com - -\n"
	  "sshd 1.2.3.4 xexample.com - -\nsshd 1.2.3.4 WWW.EXAMPLE.COM - -\n",
	  "deny allow deny allow"),
	CASE("numeric_suffix_address_only", "sshd: .3.4\n", "ALL: ALL\n",
	  "sshd 1.2.3.4 - - -\nsshd 9.9.9.9 a.3.4 - -\n", "allow deny"),
	CASE("numeric_prefix_address_only", "sshd: 192.168.\n", "ALL: ALL\n",
	  "sshd 1.2.3.4 192.168.1.1 - -\nsshd 192.168.1.1 - - -\n", "deny allow"),
	CASE("name_prefix", "sshd: www.\n", "ALL: ALL\n",
	  "sshd 1.2.3.4 www.example.com - -\nsshd 1.2.3.4 WWW.x - -\nsshd 1.2.3.4 wwwx - -\n",
	  "allow allow deny"),
	CASE("globs", "sshd: *.example.com\nftpd: 10.0.0.?\n", "ALL: ALL\n",
	  "sshd 1.2.3.4 a.EXAMPLE.com - -\nftpd 10.0.0.1 - - -\nftpd 10.0.0.10 - - -\n",
	  "allow allow deny"),
	CASE("local", "sshd: LOCAL\n", "ALL: ALL\n",
	  "sshd 1.2.3.4 web - -\nsshd 1.2.3.4 web.example - -\nsshd 1.2.3.4 - - -\n",
	  "allow deny deny"),
	CASE("known", "sshd: KNOWN\n", "ALL: ALL\n",
	  "sshd 1.2.3.4 x - -\nsshd 1.2.3.4 paranoid - -\nsshd 1.2.3.4 - - -\nsshd - x - -\n",
	  "allow deny deny deny"),
	CASE("unknown", "sshd: UNKNOWN\n", "ALL: ALL\n",
	  "sshd 1.2.3.4 x - -\nsshd 1.2.3.4 - - -\nsshd - x - -\nsshd 1.2.3.4 unknown - -\n",
	  "deny allow allow allow"),
	CASE("paranoid", "sshd: PARANOID\n", "ALL: ALL\n",
	  "sshd 1.2.3.4 paranoid - -\nsshd 1.2.3.4 - - -\nsshd 1.2.3.4 x - -\n",
	  "allow deny deny"),
	CASE("except_nesting", "sshd: ALL EXCEPT 10.0.0.0/8 EXCEPT 10.0.0.1\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - - -\nsshd 10.0.0.2 - - -\nsshd 11.0.0.1 - - -\n", "allow deny allow"),
	CASE("list_starting_with_except", "sshd: EXCEPT 10.0.0.1\nEXCEPT sshd: ALL\n", "ALL: ALL\n",
	  "sshd 10.0.0.2 - - -\n", "deny"),
	CASE("except_any_case", "sshd: ALL except 10.0.0.1\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - - -\nsshd 10.0.0.2 - - -\n", "deny allow"),
	CASE("daemon_except", "ALL EXCEPT sshd: ALL\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - - -\nftpd 10.0.0.1 - - -\n", "deny allow"),
	CASE("daemon_whole_string", "sshd: ALL\n", "ALL: ALL\n",
	  "/usr/sbin/sshd 10.0.0.1 - - -\nSSHD 10.0.0.1 - - -\n", "deny allow"),
	CASE("daemon_port_pattern", "22: ALL\n", "ALL: ALL\n", "22 10.0.0.1 - - -\n", "deny"),
	CASE("daemon_known", "known: ALL\n", "ALL: ALL\n",
	  "unknown 10.0.0.1 - - -\nx 10.0.0.1 - - -\n", "deny allow"),
	CASE("daemon_glob", "SSH*: ALL\n", "ALL: ALL\n", "sshd 10.0.0.1 - - -\n", "allow"),
	CASE("daemon_at_server", "sshd@10.0.0.5: ALL\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - - 10.0.0.5\nsshd 10.0.0.1 - - 10.0.0.6\nsshd 10.0.0.1 - - -\n",
	  "allow deny deny"),
	CASE("user_at_host", "sshd: root@ALL\nftpd: UNKNOWN@10.0.0.1\nvsftpd: KNOWN@ALL\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - root -\nsshd 10.0.0.1 - ROOT -\nsshd 10.0.0.1 - alice -\n"
	  "ftpd 10.0.0.1 - - -\nvsftpd 10.0.0.1 - - -\nvsftpd 10.0.0.1 - bob -\n",
	  "allow allow deny allow deny allow"),
	CASE("fields_cut_to_127", "sshd: " NAME127 "\nftpd: " NAME140 "\n", "ALL: ALL\n",
	  "sshd 1.2.3.4 " NAME140 " - -\nftpd 1.2.3.4 " NAME140 " - -\n", "allow deny"),
	CASE("allow_without_final_newline", "sshd: ALL", "ALL: ALL\n", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("deny_without_final_newline", "", "sshd: 10.0.0.2", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("backslash_at_eof", "", "sshd: 10.0.0.2\n\\", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("rules_before_cut_still_count", "sshd: 10.0.0.1\nftpd: ALL", "",
	  "sshd 10.0.0.1 - - -\nftpd 10.0.0.1 - - -\n", "allow allow"),
	CASE("continuation_joins_token", "sshd: 10.0.0.\\\n1\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - - -\n", "allow"),
	CASE("crlf_lines", "sshd: 10.0.0.1\r\n", "ALL: ALL\r\n", "sshd 10.0.0.1 - - -\n", "allow"),
	CASE("backslash_crlf_no_continuation", "sshd: 10.0.0.2 \\\r\n10.0.0.1\r\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("comment_continues", "# x \\\nsshd: ALL\n", "ALL: ALL\n", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("indented_hash_is_a_rule", " # sshd: ALL\n", "ALL: ALL\n", "sshd 10.0.0.1 - - -\n", "allow"),
	CASE("line_without_colon_skipped", "bogus line\nsshd: 10.0.0.1\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - - -\n", "allow"),
	CASE("long_line_cuts_deny", "", "sshd: 10.0.0.9 " LONG120 LONG120 LONG120 LONG120 LONG120
	  LONG120 LONG120 LONG120 LONG120 LONG120 LONG120 LONG120 LONG120 LONG120 LONG120 LONG120
	  LONG120 "\n", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("empty_options_field", "sshd: ALL:\n", "", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("blank_options_field", "sshd: ALL:  \n", "", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("allow_not_last", "sshd: ALL: allow: deny\n", "", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("deny_option_in_allow", "sshd: ALL: deny\n", "", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("allow_option_in_deny", "", "sshd: ALL: ALLOW\n", "sshd 10.0.0.1 - - -\n", "allow"),
	CASE("allow_with_value", "sshd: ALL: allow foo\n", "", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("severity", "sshd: ALL: severity bogus\nftpd: ALL: severity auth.info\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - - -\nftpd 10.0.0.1 - - -\n", "deny allow"),
	CASE("linger_needs_number", "sshd: ALL: linger\nftpd: ALL: linger x\n", "",
	  "sshd 10.0.0.1 - - -\nftpd 10.0.0.1 - - -\n", "deny deny"),
	CASE("valid_options", "sshd: ALL: linger 5: keepalive: nice: spawn /bin/true : severity auth.info\n",
	  "ALL: ALL\n", "sshd 10.0.0.1 - - -\n", "allow"),
	CASE("unknown_option", "sshd: ALL: bogus\n", "", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("keepalive_takes_no_value", "sshd: ALL: keepalive 1\n", "", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("spawn_needs_command", "sshd: ALL: spawn\n", "", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("unknown_user_option", "sshd: ALL: user nosuchuser\n", "", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("unmatched_line_options_ignored", "sshd: 10.0.0.2: bogus\nsshd: ALL\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - - -\n", "allow"),
	CASE("bad_option_in_deny", "", "sshd: ALL: bogus\n", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("escaped_colon_in_option", "sshd: ALL: spawn echo a\\:b: allow\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - - -\n", "allow"),
	CASE("list_separators", "sshd,ftpd\tvsftpd: 10.0.0.1,,10.0.0.2\r\n", "ALL: ALL\n",
	  "vsftpd 10.0.0.2 - - -\nsshd 10.0.0.3 - - -\n", "allow deny"),
	CASE("empty_client_list", "sshd: ,\n", "ALL: ALL\n", "sshd 10.0.0.1 - - -\n", "deny"),
	CASE("missing_file_pattern", "sshd: /nonexistent/bpfwrap/list\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - - -\n", "deny"),
	CASE_LIST("file_pattern", "sshd: @DIR@/list\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - - -\nsshd 10.1.2.3 - - -\nsshd 1.2.3.4 www.example.com - -\nsshd 10.0.0.2 - - -\n",
	  "allow allow allow deny", "10.0.0.1\n10.1.0.0/16 .example.com\n"),
	CASE("netgroup_never_without_nis", "sshd: @nosuchgroup\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 x - -\n", "deny"),
	CASE("user_keyword_strings", "sshd: UNKNOWN@ALL\n", "ALL: ALL\n",
	  "sshd 10.0.0.1 - unknown -\nsshd 10.0.0.1 - root -\n", "allow deny"),
	CASE("missing_files_allow", "", "", "sshd 10.0.0.1 - - -\n", "allow"),
};

/* expand_dir - replace @DIR@ in a policy with the scratch directory */
static char *expand_dir(const char *text)
{
	const char *at = strstr(text, "@DIR@");
	size_t n = strlen(text) + strlen(T.dir) + 1;
	char *out = malloc(n);

	assert_non_null(out);
	if (!at)
		snprintf(out, n, "%s", text);
	else
		snprintf(out, n, "%.*s%s%s", (int)(at - text), text, T.dir, at + 5);
	return out;
}

/* test_tricky_cases - each named case: oracle vs bpfwrap, and vs the prediction */
static void test_tricky_cases(void **state)
{
	struct tally t = { 0 };
	unsigned long surprises = 0, n_checked = 0;

	require_tools();
	for (size_t i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++) {
		const struct tricky *c = &tricky[i];
		char *allow = expand_dir(c->allow), *deny = expand_dir(c->deny);
		char list[PATH_MAX], *otext, *op, *w, *want = strdup(c->want), *wp;
		unsigned long before = t.diffs;

		assert_non_null(want);
		path_in(list, T.dir, "list");
		unlink(list);
		if (c->list)
			assert_int_equal(write_whole(list, c->list, strlen(c->list)), 0);
		assert_int_equal(write_whole(T.allow, allow, strlen(allow)), 0);
		assert_int_equal(write_whole(T.deny, deny, strlen(deny)), 0);
		assert_int_equal(write_whole(T.queries, c->queries, strlen(c->queries)), 0);
		run_pair(c->name, &t);
		if (t.diffs != before)
			print_error("  case %s differs\n", c->name);

		/* the oracle against what SEMANTICS.md predicts */
		otext = read_whole(T.out_oracle, NULL);
		assert_non_null(otext);
		op = otext;
		wp = want;
		while ((w = strsep(&wp, " ")) != NULL) {
			const char *o = next_line(&op);

			if (!strcmp(w, "?"))
				continue;
			n_checked++;
			if (!o || strcmp(o, w)) {
				surprises++;
				print_error("case %s: libwrap says %s, SEMANTICS.md predicts %s\n", c->name,
					    o ? o : "(nothing)", w);
			}
		}
		free(otext);
		free(want);
		free(allow);
		free(deny);
	}
	print_message("tricky cases: %zu cases, %lu queries, %lu differences, %lu predictions checked, "
		      "%lu surprises\n",
		      sizeof(tricky) / sizeof(tricky[0]), t.queries, t.diffs, n_checked, surprises);
	if (t.diffs || t.errors)
		fail_msg("got %lu differences and %lu tool errors, want 0", t.diffs, t.errors);
	if (surprises)
		fail_msg("got %lu libwrap answers that contradict SEMANTICS.md, want 0", surprises);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oracle_modes_agree),
		cmocka_unit_test(test_tricky_cases),
		cmocka_unit_test(test_random_corpus),
	};

	return cmocka_run_group_tests_name("differential", tests, setup, teardown);
}
