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
 *                       docs/semantics.md predicts is checked against it too
 *   random_corpus       seeds of tests/diff/tool_gen, >= 10,000 queries
 *   fuzz_corpus         the inputs the parser fuzzer kept
 *                       ($BPFWRAP_BUILD/tests/fuzz/corpus, else
 *                       build/tests/fuzz/corpus) as policies; no corpus
 *                       fails (test_fuzz, which tests/run.sh runs first,
 *                       makes it)
 *
 * Tools come from $BPFWRAP_BUILD (default "build"): bpfwrap,
 * tests/diff/tool_oracle, tests/diff/tool_gen. A missing tool is a failure,
 * never a skip. Each policy lives in its own directory (hosts.allow,
 * hosts.deny, queries); the generator and the oracle each run once for all
 * of them, bpfwrap once per policy (sanitizer builds start slowly).
 * Environment: BPFWRAP_DIFF_SEEDS (default 400, 150 in a sanitizer build),
 * BPFWRAP_DIFF_QUERIES (queries per seed, default 30, 70 in a sanitizer
 * build), BPFWRAP_DIFF_FIRST_SEED (default 1), BPFWRAP_DIFF_FUZZ_MAX (fuzz
 * inputs used, default 400, 50 in a sanitizer build).
 *
 * On a difference the seed, the query, both answers and the policy files
 * are printed (for the first few), then the test fails.
 */
#include <dirent.h>
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

#define CORPUS_LABEL "differential"	/* names this test in corpus.h's messages */
#define CORPUS_SCRATCH "/tmp/bpfwrap-diff.XXXXXX"
#include "diff/corpus.h"
#include "diff/proc.h"

#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_SEEDS 150
#define DEFAULT_QUERIES 70
#define MODES_SEEDS 8		/* fork-each under ASan is slow */
#define DEFAULT_FUZZ_MAX 50
#else
#define MODES_SEEDS 30
#define DEFAULT_FUZZ_MAX 400
#define DEFAULT_SEEDS 400
#define DEFAULT_QUERIES 30
#endif

struct tally {
	unsigned long queries, policies, diffs, errors, shown;
};

/*
 * compare_dir - run bpfwrap on one policy directory and compare with its
 * oracle.out; `label` names the policy in messages. Differences and tool
 * failures are counted in *t and the first few are printed.
 */
static void compare_dir(const char *dir, const char *label, struct tally *t)
{
	char allow[PATH_MAX], deny[PATH_MAX], queries[PATH_MAX], oout[PATH_MAX], bout[PATH_MAX],
		berr[PATH_MAX];
	char *argv[] = { T.bpfwrap, "match", "--batch", "--allow", allow, "--deny", deny, NULL };
	char *qtext, *otext, *btext, *qp, *op, *bp, *q;
	bool printed_policy = false;
	int sb;

	path_in(allow, dir, "hosts.allow");
	path_in(deny, dir, "hosts.deny");
	path_in(queries, dir, "queries");
	path_in(oout, dir, "oracle.out");
	path_in(bout, dir, "bpfwrap.out");
	path_in(berr, dir, "bpfwrap.err");
	sb = run_tool(argv, queries, bout, berr, TOOL_SECONDS);
	qtext = read_whole(queries, NULL);
	otext = read_whole(oout, NULL);
	btext = read_whole(bout, NULL);
	assert_non_null(qtext);
	t->policies++;
	if (!otext) {
		t->errors++;
		print_error("%s: no oracle answers\n", label);
	}
	if (sb != 0) {
		t->errors++;
		report_exit(label, "bpfwrap match --batch", sb, "bpfwrap stderr", berr);
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
			print_file("hosts.allow", allow);
			print_file("hosts.deny", deny);
			for (int k = 0; k < 2; k++) { /* /path pattern files, if any */
				char extra[PATH_MAX];

				path_in(extra, dir, k ? "list" : "clients");
				if (access(extra, F_OK) == 0)
					print_file(extra, extra);
			}
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

/* test_random_corpus - generated seeds: oracle vs bpfwrap, every query */
static void test_random_corpus(void **state)
{
	unsigned long first = env_number("BPFWRAP_DIFF_FIRST_SEED", 1);
	unsigned long seeds = env_number("BPFWRAP_DIFF_SEEDS", DEFAULT_SEEDS);
	unsigned long nq = env_number("BPFWRAP_DIFF_QUERIES", DEFAULT_QUERIES);
	struct tally t = { 0 };
	unsigned long bad_seeds[16], n_bad = 0;
	char root[PATH_MAX], **dirs;

	require_tools();
	fresh_subdir(root, "corpus");
	dirs = generate(root, first, seeds, nq);
	oracle_dirs(dirs, seeds, NULL, T.dir);
	for (unsigned long i = 0; i < seeds; i++) {
		char label[48];
		unsigned long before = t.diffs + t.errors;

		snprintf(label, sizeof(label), "seed %lu", first + i);
		compare_dir(dirs[i], label, &t);
		if (t.diffs + t.errors != before && n_bad < sizeof(bad_seeds) / sizeof(bad_seeds[0]))
			bad_seeds[n_bad++] = first + i;
	}
	print_message("differential: %lu queries, %lu policies, %lu differences, %lu tool errors\n",
		      t.queries, t.policies, t.diffs, t.errors);
	if (n_bad) {
		print_message("differential: first seeds with differences:");
		for (unsigned long i = 0; i < n_bad; i++)
			print_message(" %lu", bad_seeds[i]);
		print_message("\n(reproduce in %s/SEED: %s --allow hosts.allow --deny hosts.deny "
			      "< queries; the same with %s match --batch; or regenerate with "
			      "%s SEED DIR %lu, DIR of the same path length)\n",
			      root, T.oracle, T.bpfwrap, T.gen, nq);
	}
	finish(root, dirs, seeds, n_bad != 0);
	assert_true(t.queries >= 10000 || seeds * nq < 10000);
	if (t.diffs || t.errors)
		fail_msg("got %lu differences and %lu tool errors in %lu queries, want 0", t.diffs,
			 t.errors, t.queries);
}

/* test_oracle_modes_agree - batched oracle workers == one fork per query */
static void test_oracle_modes_agree(void **state)
{
	const unsigned long first = 1000, count = MODES_SEEDS;
	unsigned long n = 0, diffs = 0;
	char root[PATH_MAX], **dirs;
	char **batched = calloc(count, sizeof(*batched));

	require_tools();
	assert_non_null(batched);
	fresh_subdir(root, "modes");
	dirs = generate(root, first, count, 40);
	oracle_dirs(dirs, count, NULL, T.dir);
	for (unsigned long i = 0; i < count; i++) {
		char out[PATH_MAX];

		path_in(out, dirs[i], "oracle.out");
		batched[i] = read_whole(out, NULL);
		assert_non_null(batched[i]);
	}
	oracle_dirs(dirs, count, "--fork-each", T.dir);
	for (unsigned long i = 0; i < count; i++) {
		char out[PATH_MAX], *each, *ap, *ep, *x;

		path_in(out, dirs[i], "oracle.out");
		each = read_whole(out, NULL);
		assert_non_null(each);
		ap = batched[i], ep = each;
		while ((x = next_line(&ap)) != NULL) {
			const char *y = next_line(&ep);

			n++;
			if (!y || strcmp(x, y)) {
				diffs++;
				print_error("seed %lu line %lu: got batched %s, want fork-each %s\n",
					    first + i, n, x, y ? y : "(none)");
			}
		}
		free(each);
		free(batched[i]);
	}
	free(batched);
	free_dirs(dirs, count);
	remove_tree(root);
	print_message("oracle modes: %lu queries, %lu differences\n", n, diffs);
	assert_true(n > 0);
	if (diffs)
		fail_msg("got %lu differences between oracle modes, want 0", diffs);
}

/*
 * A hand-written case: policy text, queries (one per line) and the answers
 * docs/semantics.md predicts (blank-separated; "?" = no prediction). "@DIR@" in a
 * policy is replaced by the case's directory; `list`, when not NULL, is
 * written there as the file `list`. A table text TABLE_DIR makes the table a
 * directory (= missing), TABLE_LOOP a symlink to itself (open fails: ELOOP).
 */
#define TABLE_DIR "<directory>"
#define TABLE_LOOP "<symlink loop>"
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
	CASE("user_option_without_group", "sshd: ALL: user nobody\n", "ALL: ALL\n",
	     "sshd 10.0.0.1 - - -\n", "deny"),
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
	CASE("tables_are_directories", TABLE_DIR, TABLE_DIR, "sshd 10.0.0.1 - - -\n", "allow"),
	CASE("unreadable_allow_is_no_match", TABLE_LOOP, "sshd: 10.0.0.2\n",
	     "sshd 10.0.0.1 - - -\nsshd 10.0.0.2 - - -\n", "allow deny"),
	CASE("unreadable_deny_denies", "sshd: 10.0.0.2\n", TABLE_LOOP,
	     "sshd 10.0.0.1 - - -\nsshd 10.0.0.2 - - -\n", "deny allow"),
};

/* expand_dir - replace @DIR@ in a policy with dir */
static char *expand_dir(const char *text, const char *dir)
{
	const char *at = strstr(text, "@DIR@");
	size_t n = strlen(text) + strlen(dir) + 1;
	char *out = malloc(n);

	assert_non_null(out);
	if (!at)
		snprintf(out, n, "%s", text);
	else
		snprintf(out, n, "%.*s%s%s", (int)(at - text), text, dir, at + 5);
	return out;
}

/* write_table - a table file; TABLE_DIR makes a directory, TABLE_LOOP a symlink loop */
static void write_table(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];

	path_in(path, dir, name);
	if (!strcmp(text, TABLE_DIR)) {
		assert_int_equal(mkdir(path, 0755), 0);
	} else if (!strcmp(text, TABLE_LOOP)) {
		assert_int_equal(symlink(name, path), 0);
	} else {
		char *t = expand_dir(text, dir);

		assert_int_equal(write_whole(path, t, strlen(t)), 0);
		free(t);
	}
}

/* write_case - a case's files into dir */
static void write_case(const struct tricky *c, const char *dir)
{
	char path[PATH_MAX];

	write_table(dir, "hosts.allow", c->allow);
	write_table(dir, "hosts.deny", c->deny);
	path_in(path, dir, "queries");
	assert_int_equal(write_whole(path, c->queries, strlen(c->queries)), 0);
	if (c->list) {
		path_in(path, dir, "list");
		assert_int_equal(write_whole(path, c->list, strlen(c->list)), 0);
	}
}

/* check_prediction - the oracle's answers against docs/semantics.md's; returns surprises */
static unsigned long check_prediction(const struct tricky *c, const char *dir, unsigned long *checked)
{
	char path[PATH_MAX], *otext, *op, *w, *want = strdup(c->want), *wp;
	unsigned long surprises = 0;

	assert_non_null(want);
	path_in(path, dir, "oracle.out");
	otext = read_whole(path, NULL);
	assert_non_null(otext);
	op = otext;
	wp = want;
	while ((w = strsep(&wp, " ")) != NULL) {
		const char *o = next_line(&op);

		if (!strcmp(w, "?"))
			continue;
		(*checked)++;
		if (!o || strcmp(o, w)) {
			surprises++;
			print_error("case %s: libwrap says %s, docs/semantics.md predicts %s\n", c->name,
				    o ? o : "(nothing)", w);
		}
	}
	free(otext);
	free(want);
	return surprises;
}

/* test_tricky_cases - each named case: oracle vs bpfwrap, and vs the prediction */
static void test_tricky_cases(void **state)
{
	const size_t n = sizeof(tricky) / sizeof(tricky[0]);
	struct tally t = { 0 };
	unsigned long surprises = 0, n_checked = 0;
	char root[PATH_MAX];
	char **dirs = calloc(n, sizeof(*dirs));

	require_tools();
	assert_non_null(dirs);
	fresh_subdir(root, "tricky");
	for (size_t i = 0; i < n; i++) {
		dirs[i] = malloc(PATH_MAX);
		assert_non_null(dirs[i]);
		path_in(dirs[i], root, tricky[i].name);
		assert_int_equal(mkdir(dirs[i], 0755), 0);
		write_case(&tricky[i], dirs[i]);
	}
	oracle_dirs(dirs, n, NULL, T.dir);
	for (size_t i = 0; i < n; i++) {
		unsigned long before = t.diffs + t.errors;

		compare_dir(dirs[i], tricky[i].name, &t);
		if (t.diffs + t.errors != before)
			print_error("  case %s differs\n", tricky[i].name);
		surprises += check_prediction(&tricky[i], dirs[i], &n_checked);
	}
	finish(root, dirs, n, t.diffs || t.errors);
	print_message("tricky cases: %zu cases, %lu queries, %lu differences, %lu predictions checked, "
		      "%lu surprises\n",
		      n, t.queries, t.diffs, n_checked, surprises);
	if (t.diffs || t.errors)
		fail_msg("got %lu differences and %lu tool errors, want 0", t.diffs, t.errors);
	if (surprises)
		fail_msg("got %lu libwrap answers that contradict docs/semantics.md, want 0", surprises);
}

/* Queries for the fuzz-corpus policies: every branch, nothing tied to a policy. */
static const char fuzz_queries[] =
	"sshd 10.0.0.1 - - -\n"
	"sshd 192.168.1.20 host.example.com root 10.0.0.5\n"
	"in.telnetd ::ffff:10.1.2.3 paranoid - ::1\n"
	"vsftpd 2001:db8::1 unknown alice 2001:db8::2\n"
	"/usr/sbin/sshd fe80::1 web unknown -\n"
	"22 - - - -\n"
	"portmap 127.0.0.1 localhost ROOT 127.0.0.1\n"
	"ALL ::FFFF:1.2.3.4 KNOWN UNKNOWN 0.0.0.0\n"
	"ftpd 10.1.2.3 www.example.com - -\n"
	"sshd 192.0.2.7 a.example.org bob 192.0.2.1\n";

/* compare_names - qsort: strcmp on char * */
static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* unsafe_input - true if a policy names device or kernel files (reading them could hang) */
static bool unsafe_input(const char *p, size_t n)
{
	static const char *const bad[] = { "/dev/", "/proc/", "/sys/" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (memmem(p, n, bad[i], strlen(bad[i])))
			return true;
	return false;
}

#define GLOB_STARS_MAX 10	/* '*'s in one pattern that libwrap still matches quickly */

/*
 * glob_bomb - true if one pattern of the input (a run between blanks,
 * commas, colons and newlines) has more than GLOB_STARS_MAX '*'s. libwrap's
 * glob matching backtracks, exponentially in a pattern's '*'s (a fuzzer
 * input `x ***...*A:` with 52 of them kept it busy for minutes per query):
 * such an input measures libwrap's CPU, not its decisions. bpfwrap's glob
 * (pol_glob) returns only to the last '*': length x pattern steps at most.
 */
static bool glob_bomb(const char *p, size_t n)
{
	size_t stars = 0;

	for (size_t i = 0; i < n; i++) {
		if (strchr(" \t,:\n", p[i]) && p[i])
			stars = 0;
		else if (p[i] == '*' && ++stars > GLOB_STARS_MAX)
			return true;
	}
	return false;
}

/*
 * test_fuzz_corpus - the parser fuzzer's corpus (odd bytes that reach new
 * parser code) as policies: oracle vs bpfwrap on fixed queries
 */
static void test_fuzz_corpus(void **state)
{
	unsigned long max = env_number("BPFWRAP_DIFF_FUZZ_MAX", DEFAULT_FUZZ_MAX);
	char corpus[PATH_MAX], root[PATH_MAX];
	char **names = NULL, **dirs;
	size_t n = 0, cap = 0, used = 0, bombs = 0;
	struct tally t = { 0 };
	struct dirent *de;
	DIR *d;

	require_tools();
	path_in(corpus, build_dir(), "tests/fuzz/corpus");
	d = opendir(corpus);
	if (!d) { /* the corpus is only data: the plain build's will do */
		path_in(corpus, "build", "tests/fuzz/corpus");
		d = opendir(corpus);
	}
	if (!d)
		fail_msg("no fuzz corpus in %s: test_fuzz (run before this by tests/run.sh) makes it; "
			 "alone, run tests/fuzz/run.sh or make fuzz first", corpus);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			names = realloc(names, cap * sizeof(*names));
			assert_non_null(names);
		}
		names[n] = strdup(de->d_name);
		assert_non_null(names[n]);
		n++;
	}
	closedir(d);
	if (n == 0)	/* names is still NULL */
		fail_msg("fuzz corpus %s: got no inputs, want the ones the fuzzer kept", corpus);
	qsort(names, n, sizeof(*names), compare_names);
	fresh_subdir(root, "fuzzcorpus");
	dirs = calloc(n, sizeof(*dirs));
	assert_non_null(dirs);
	for (size_t i = 0; i < n && used < max; i++) {
		char path[PATH_MAX], *data, *nul;
		size_t len;

		path_in(path, corpus, names[i]);
		data = read_whole(path, &len);
		if (!data || unsafe_input(data, len)) {
			free(data);
			continue;
		}
		if (glob_bomb(data, len)) {
			bombs++;
			free(data);
			continue;
		}
		nul = memchr(data, 0, len);
		dirs[used] = malloc(PATH_MAX);
		assert_non_null(dirs[used]);
		path_in(dirs[used], root, names[i]);
		assert_int_equal(mkdir(dirs[used], 0755), 0);
		path_in(path, dirs[used], "hosts.allow");
		assert_int_equal(write_whole(path, data, nul ? (size_t)(nul - data) : len), 0);
		path_in(path, dirs[used], "hosts.deny");
		assert_int_equal(write_whole(path, nul ? nul + 1 : "", nul ? len - (size_t)(nul - data) - 1 : 0), 0);
		path_in(path, dirs[used], "queries");
		assert_int_equal(write_whole(path, fuzz_queries, strlen(fuzz_queries)), 0);
		free(data);
		used++;
	}
	if (used)
		oracle_dirs(dirs, used, NULL, T.dir);
	for (size_t i = 0; i < used; i++) {
		char label[PATH_MAX + 16];

		snprintf(label, sizeof(label), "fuzz input %s", dirs[i] + strlen(root) + 1);
		compare_dir(dirs[i], label, &t);
	}
	print_message("fuzz corpus: %zu inputs of %zu, %lu queries, %lu differences, %lu tool errors\n",
		      used, n, t.queries, t.diffs, t.errors);
	if (bombs)
		print_message("# fuzz corpus: %zu inputs left out: a pattern with more than %d '*' "
			      "(libwrap's glob backtracking is exponential in them)\n", bombs,
			      GLOB_STARS_MAX);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	finish(root, dirs, used, t.diffs || t.errors);
	if (t.diffs || t.errors)
		fail_msg("got %lu differences and %lu tool errors, want 0", t.diffs, t.errors);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oracle_modes_agree),
		cmocka_unit_test(test_tricky_cases),
		cmocka_unit_test(test_random_corpus),
		cmocka_unit_test(test_fuzz_corpus),
	};

	return cmocka_run_group_tests_name("differential", tests, setup, teardown);
}
