/*
 * test_kernel_diff.c - the kernel program against the reference evaluator,
 * and both against the real libwrap, on tests/diff/tool_gen's generated
 * policies and queries (the corpus of the differential test):
 * `bpfwrap match --batch --kernel` (BPF_PROG_TEST_RUN of the real program on
 * maps the real compiler and loader filled; ASK answered by the evaluator as
 * the agent would) and `bpfwrap match --batch` (evaluator), compared line by
 * line. Each generated query is also asked a second time with name, user
 * and server unknown ("-"), the world the kernel's own verdicts are for.
 *
 *   kernel_vs_evaluator       seeds of tool_gen, >= 10,000 generated queries;
 *                             the queries' daemons get tables of their own
 *                             (as cgroup-named daemons do)
 *   kernel_other_table        part of the same seeds with --policy-daemons-only:
 *                             daemons the policy does not name are decided in
 *                             the OTHER table (as process-named daemons are)
 *   libwrap_evaluator_kernel  other seeds through tool_oracle (libwrap) too:
 *                             libwrap == evaluator == kernel in one place
 *   single_query_identical    tcpdmatch mode: `match --kernel -v` prints what
 *                             `match` prints, plus who decided
 *   kernel_needs_root         without root: exit 1 and a clear message
 *
 * Besides the answers, `--stats` gives per policy how many queries the
 * kernel decided alone, how many were ASK, how many had no address a packet
 * could carry, and the kernel engine's cross-checks against the evaluator:
 * the kernel's own verdicts and the exact verdict_if_unknown of ASK entries
 * must agree (0), rule ids are only reported (see report()).
 *
 * Needs root (loads BPF programs; nothing is attached or pinned). Tools
 * come from $BPFWRAP_BUILD (default "build"); a missing tool is a failure.
 * Environment: BPFWRAP_KDIFF_SEEDS, BPFWRAP_KDIFF_QUERIES (generated
 * queries per seed), BPFWRAP_KDIFF_FIRST_SEED, BPFWRAP_KDIFF_ORACLE_SEEDS.
 * Every policy is one BPF load (~0.2 s): the defaults keep the file under
 * ~90 s on two shared cores.
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

#define CORPUS_LABEL "kernel diff"	/* names this test in corpus.h's messages */
#define CORPUS_SCRATCH "/tmp/bpfwrap-kdiff.XXXXXX"
#include "diff/corpus.h"
#include "diff/proc.h"

#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_SEEDS 90
#define DEFAULT_QUERIES 120
#define OTHER_EVERY 4		/* kernel_other_table: a quarter of the seeds */
#define DEFAULT_ORACLE_SEEDS 15
#else
#define DEFAULT_SEEDS 150
#define DEFAULT_QUERIES 70
#define OTHER_EVERY 3
#define DEFAULT_ORACLE_SEEDS 30
#endif
#define ORACLE_FIRST_SEED 50001	/* the chain test's seeds, apart from the others */
#define ORACLE_QUERIES 60

/* What `match --kernel --stats` reports, summed over policies. */
struct kstats {
	unsigned long queries, kernel, kernel_allow, kernel_deny, ask, ask_approx, no_packet;
	unsigned long verdict_diff, rule_diff, vif_diff;
};

struct tally {
	unsigned long queries, generated, policies, diffs, errors, shown;
	struct kstats ks;
	unsigned long bad_seeds[16], n_bad;
};

/* need_root - skip the test (with the reason printed) unless root */
static bool need_root(void)
{
	if (geteuid() == 0)
		return true;
	print_message("# skip: needs root (loads the BPF program)\n");
	skip();
	return false;
}

/*
 * add_unknown_world - rewrite DIR/queries as the generated queries followed
 * by each of them with CLIENT_NAME, USER and SERVER_ADDR unknown (those that
 * differ from the original); returns the number of generated queries
 */
static unsigned long add_unknown_world(const char *dir)
{
	char path[PATH_MAX];
	char *text, *p, *q, *out = NULL;
	size_t n = 0, outlen = 0;
	unsigned long gen = 0;
	FILE *m;

	path_in(path, dir, "queries");
	text = read_whole(path, &n);
	assert_non_null(text);
	m = open_memstream(&out, &outlen);
	assert_non_null(m);
	fwrite(text, 1, n, m);
	if (n && text[n - 1] != '\n')
		fputc('\n', m);
	p = text;
	while ((q = next_line(&p)) != NULL) {
		char *f[6];
		int k = 0;

		gen++;
		for (char *s = q; k < 6;) {
			s += strspn(s, " \t\r");
			if (!*s)
				break;
			f[k++] = s;
			s += strcspn(s, " \t\r");
			if (*s)
				*s++ = '\0';
		}
		if (k != 5 || (!strcmp(f[2], "-") && !strcmp(f[3], "-") && !strcmp(f[4], "-")))
			continue;
		fprintf(m, "%s %s - - -\n", f[0], f[1]);
	}
	assert_int_equal(fclose(m), 0);
	assert_int_equal(write_whole(path, out, outlen), 0);
	free(out);
	free(text);
	return gen;
}

/* stat_field - the number after " key=" in a stats line (0 if absent) */
static unsigned long stat_field(const char *line, const char *key)
{
	char pat[64];
	const char *at;

	snprintf(pat, sizeof(pat), " %s=", key);
	at = strstr(line, pat);
	return at ? strtoul(at + strlen(pat), NULL, 10) : 0;
}

/* parse_stats - the `kernel stats:` line of a stderr file; false if none */
static bool parse_stats(const char *path, struct kstats *k, char *line, size_t size)
{
	char *text = read_whole(path, NULL), *at, *end;

	if (!text)
		return false;
	at = strstr(text, "kernel stats:");
	if (!at) {
		free(text);
		return false;
	}
	end = strchr(at, '\n');
	if (end)
		*end = '\0';
	snprintf(line, size, "%s", at);
	k->queries = stat_field(at, "queries");
	k->kernel = stat_field(at, "kernel");
	k->kernel_allow = stat_field(at, "kernel_allow");
	k->kernel_deny = stat_field(at, "kernel_deny");
	k->ask = stat_field(at, "ask");
	k->ask_approx = stat_field(at, "ask_approx");
	k->no_packet = stat_field(at, "no_packet");
	k->verdict_diff = stat_field(at, "verdict_diff");
	k->rule_diff = stat_field(at, "rule_diff");
	k->vif_diff = stat_field(at, "vif_diff");
	free(text);
	return true;
}

/* add_stats - sum b into a */
static void add_stats(struct kstats *a, const struct kstats *b)
{
	a->queries += b->queries;
	a->kernel += b->kernel;
	a->kernel_allow += b->kernel_allow;
	a->kernel_deny += b->kernel_deny;
	a->ask += b->ask;
	a->ask_approx += b->ask_approx;
	a->no_packet += b->no_packet;
	a->verdict_diff += b->verdict_diff;
	a->rule_diff += b->rule_diff;
	a->vif_diff += b->vif_diff;
}

/* run_match - bpfwrap match --batch [extra...] on dir's policy and queries into out/err */
static int run_match(const char *dir, const char *const *extra, const char *out_name,
		     const char *err_name)
{
	char allow[PATH_MAX], deny[PATH_MAX], queries[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
	char *argv[12];
	int k = 0;

	path_in(allow, dir, "hosts.allow");
	path_in(deny, dir, "hosts.deny");
	path_in(queries, dir, "queries");
	path_in(out, dir, out_name);
	path_in(err, dir, err_name);
	argv[k++] = T.bpfwrap;
	argv[k++] = "match";
	argv[k++] = "--batch";
	for (; extra && *extra; extra++)
		argv[k++] = (char *)*extra;
	argv[k++] = "--allow";
	argv[k++] = allow;
	argv[k++] = "--deny";
	argv[k++] = deny;
	argv[k] = NULL;
	return run_tool(argv, queries, out, err, TOOL_SECONDS);
}

/* explain - how the kernel decides one batch query (`match --kernel -v`), printed */
static void explain(const char *dir, const char *query, bool policy_daemons_only)
{
	char allow[PATH_MAX], deny[PATH_MAX], out[PATH_MAX], err[PATH_MAX], copy[512], dsrv[300],
		uclient[300];
	char *f[5], *s = copy, *argv[16];
	int k = 0, n = 0;

	snprintf(copy, sizeof(copy), "%s", query);
	while (n < 5 && *(s += strspn(s, " \t\r"))) {
		f[n++] = s;
		s += strcspn(s, " \t\r");
		if (*s)
			*s++ = '\0';
	}
	/* Only queries the single mode can state exactly: a daemon and an address. */
	if (n != 5 || !strcmp(f[0], "-") || !strcmp(f[1], "-"))
		return;
	path_in(allow, dir, "hosts.allow");
	path_in(deny, dir, "hosts.deny");
	path_in(out, dir, "explain.out");
	path_in(err, dir, "explain.err");
	snprintf(dsrv, sizeof(dsrv), "%s%s%s", f[0], strcmp(f[4], "-") ? "@" : "",
		 strcmp(f[4], "-") ? f[4] : "");
	snprintf(uclient, sizeof(uclient), "%s%s%s", strcmp(f[3], "-") ? f[3] : "",
		 strcmp(f[3], "-") ? "@" : "", f[1]);
	argv[k++] = T.bpfwrap;
	argv[k++] = "match";
	argv[k++] = "--kernel";
	argv[k++] = "-v";
	if (policy_daemons_only)
		argv[k++] = "--policy-daemons-only";
	argv[k++] = "--allow";
	argv[k++] = allow;
	argv[k++] = "--deny";
	argv[k++] = deny;
	argv[k++] = "--no-dns";
	if (strcmp(f[2], "-")) {
		argv[k++] = "--name";
		argv[k++] = f[2];
	}
	argv[k++] = dsrv;
	argv[k++] = uclient;
	argv[k] = NULL;
	run_tool(argv, "/dev/null", out, err, TOOL_SECONDS);
	print_file("bpfwrap match --kernel -v (single query)", out);
}

/* print_policy - the policy files of a directory (and a /path pattern file, if any) */
static void print_policy(const char *dir)
{
	static const char *const names[] = { "hosts.allow", "hosts.deny", "clients" };
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_in(path, dir, names[i]);
		if (i < 2 || access(path, F_OK) == 0)
			print_file(path, path);
	}
}

/*
 * compare_dir - evaluator and kernel (and, with_oracle, libwrap's
 * oracle.out) on one policy directory; differences and tool failures are
 * counted in *t and the first few are printed with the policy.
 */
static void compare_dir(const char *dir, unsigned long seed, bool policy_daemons_only,
			bool with_oracle, struct tally *t)
{
	static const char *const kflags[] = { "--kernel", "--stats", NULL };
	static const char *const kflags_pdo[] = { "--kernel", "--stats", "--policy-daemons-only", NULL };
	char queries[PATH_MAX], eout[PATH_MAX], kout[PATH_MAX], kerr[PATH_MAX], eerr[PATH_MAX],
		oout[PATH_MAX], who[32], line[1024];
	unsigned long nq = 0;
	char *qtext, *etext, *ktext, *otext = NULL, *qp, *ep, *kp, *op = NULL, *q;
	bool printed_policy = false;
	unsigned long before = t->diffs + t->errors;
	struct kstats ks = { 0 };
	int se, sk;

	path_in(queries, dir, "queries");
	path_in(eout, dir, "evaluator.out");
	path_in(eerr, dir, "evaluator.err");
	path_in(kout, dir, "kernel.out");
	path_in(kerr, dir, "kernel.err");
	path_in(oout, dir, "oracle.out");
	se = run_match(dir, NULL, "evaluator.out", "evaluator.err");
	sk = run_match(dir, policy_daemons_only ? kflags_pdo : kflags, "kernel.out", "kernel.err");
	t->policies++;
	snprintf(who, sizeof(who), "seed %lu", seed);
	if (se != 0) {
		t->errors++;
		report_exit(who, "bpfwrap match --batch", se, "evaluator stderr", eerr);
	}
	if (sk != 0) {
		t->errors++;
		report_exit(who, "bpfwrap match --batch --kernel", sk, "kernel stderr", kerr);
	}
	if (!parse_stats(kerr, &ks, line, sizeof(line))) {
		t->errors++;
		print_error("seed %lu: no `kernel stats:` line from match --kernel --stats\n", seed);
	} else if (ks.verdict_diff || ks.vif_diff) {
		t->errors++;
		print_error("seed %lu: kernel engine cross-checks: got %s, want verdict_diff=0 "
			    "vif_diff=0\n", seed, line);
	}
	add_stats(&t->ks, &ks);

	qtext = read_whole(queries, NULL);
	etext = read_whole(eout, NULL);
	ktext = read_whole(kout, NULL);
	assert_non_null(qtext);
	if (with_oracle) {
		otext = read_whole(oout, NULL);
		if (!otext) {
			t->errors++;
			print_error("seed %lu: no oracle answers\n", seed);
		}
	}
	qp = qtext, ep = etext, kp = ktext, op = otext;
	while ((q = next_line(&qp)) != NULL) {
		const char *e = next_line(&ep), *k = next_line(&kp);
		const char *o = with_oracle ? next_line(&op) : e;

		nq++;
		if (e && k && o && !strcmp(e, k) && !strcmp(o, e) &&
		    (!strcmp(e, "allow") || !strcmp(e, "deny")))
			continue;
		t->diffs++;
		if (t->shown >= SHOW_DIFFS)
			continue;
		t->shown++;
		if (with_oracle)
			print_error("DIFFERENCE seed %lu%s: query `%s`: got kernel %s, evaluator %s, "
				    "want libwrap %s\n", seed,
				    policy_daemons_only ? " (--policy-daemons-only)" : "", q,
				    k ? k : "(no line)", e ? e : "(no line)", o ? o : "(no line)");
		else
			print_error("DIFFERENCE seed %lu%s: query `%s`: got kernel %s, want evaluator %s\n",
				    seed, policy_daemons_only ? " (--policy-daemons-only)" : "", q,
				    k ? k : "(no line)", e ? e : "(no line)");
		explain(dir, q, policy_daemons_only);
		if (!printed_policy) {
			printed_policy = true;
			print_policy(dir);
		}
	}
	t->queries += nq;
	if (ks.queries != nq && !sk) {
		t->errors++;
		print_error("seed %lu: kernel stats count %lu queries, want %lu\n", seed, ks.queries, nq);
	}
	if ((kp && next_line(&kp)) || (ep && next_line(&ep))) {
		t->diffs++;
		print_error("seed %lu: bpfwrap printed more lines than there are queries\n", seed);
	}
	if (t->diffs + t->errors != before && t->n_bad < sizeof(t->bad_seeds) / sizeof(t->bad_seeds[0]))
		t->bad_seeds[t->n_bad++] = seed;
	free(qtext);
	free(etext);
	free(ktext);
	free(otext);
}

/* pct - part of whole in percent */
static double pct(unsigned long part, unsigned long whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* report - the summary lines; fails the test on any difference or error */
static void report(const char *what, const char *root, const struct tally *t, bool with_oracle)
{
	const struct kstats *k = &t->ks;

	print_message("%s: %lu queries (%lu generated, the rest asked again with name, user "
		      "and server unknown), %lu policies, %lu differences, %lu tool errors\n",
		      what, t->queries, t->generated, t->policies, t->diffs, t->errors);
	print_message("%s: kernel alone %lu (%.1f%%: %lu allow, %lu deny), ASK -> evaluator %lu "
		      "(%.1f%%, %lu fail-closed approx), no packet -> evaluator %lu (%.1f%%); "
		      "of the queries a packet can carry the kernel decided %.1f%% alone\n",
		      what, k->kernel, pct(k->kernel, k->queries), k->kernel_allow, k->kernel_deny,
		      k->ask, pct(k->ask, k->queries), k->ask_approx, k->no_packet,
		      pct(k->no_packet, k->queries), pct(k->kernel, k->kernel + k->ask));
	print_message("%s: cross-checks: %lu kernel verdicts != evaluator, %lu exact "
		      "verdict_if_unknown != evaluator (want 0 and 0); rule id != evaluator's in %lu "
		      "unknown-world kernel decisions (not an error: when an earlier rule of equal "
		      "effect may match, e.g. a netgroup, the entry names that one)\n",
		      what, k->verdict_diff, k->vif_diff, k->rule_diff);
	if (t->n_bad) {
		print_message("%s: seeds with differences or errors:", what);
		for (unsigned long i = 0; i < t->n_bad; i++)
			print_message(" %lu", t->bad_seeds[i]);
		print_message("\n(reproduce in %s/SEED: %s match --batch [--kernel --stats] "
			      "--allow hosts.allow --deny hosts.deny < queries%s)\n", root, T.bpfwrap,
			      with_oracle ? "; tool_oracle --allow hosts.allow --deny hosts.deny < queries" : "");
	}
	assert_true(t->queries > 0);
	assert_true(k->kernel > 0);	/* the kernel really decided something itself */
	if (t->diffs || t->errors)
		fail_msg("got %lu differences and %lu tool errors in %lu queries, want 0", t->diffs,
			 t->errors, t->queries);
}

/* corpus - generate seeds into T.dir/name, each with the unknown-world copies; their dirs */
static char **corpus(const char *name, unsigned long first, unsigned long seeds, unsigned long nq,
		     char *root, struct tally *t)
{
	char **dirs;

	fresh_subdir(root, name);
	dirs = generate(root, first, seeds, nq);
	for (unsigned long i = 0; i < seeds; i++)
		t->generated += add_unknown_world(dirs[i]);
	return dirs;
}

/*
 * check_corpus - as root, seeds first.. (nq queries each) generated into
 * T.dir/name and compared (policy_daemons_only: daemons the policy does not
 * name go to OTHER; with_oracle: libwrap too); the summary lines say
 * `what`. Fails the test on any difference or error, or if fewer than
 * min_generated queries came out of the asked-for seeds * nq >= min_generated.
 */
static void check_corpus(const char *what, const char *name, unsigned long first,
			 unsigned long seeds, unsigned long nq, bool policy_daemons_only,
			 bool with_oracle, unsigned long min_generated)
{
	struct tally t = { 0 };
	char root[PATH_MAX], **dirs;

	if (!need_root())
		return;
	require_tools();
	dirs = corpus(name, first, seeds, nq, root, &t);
	if (with_oracle)
		oracle_dirs(dirs, seeds, NULL, root);
	for (unsigned long i = 0; i < seeds; i++)
		compare_dir(dirs[i], first + i, policy_daemons_only, with_oracle, &t);
	finish(root, dirs, seeds, t.n_bad != 0);
	print_message("%s: %lu queries, %lu policies, %lu differences\n", what, t.queries,
		      t.policies, t.diffs);
	assert_true(t.generated >= min_generated || seeds * nq < min_generated);
	report(what, root, &t, with_oracle);
}

/* test_kernel_vs_evaluator - generated seeds, the queries' daemons with tables */
static void test_kernel_vs_evaluator(void **state)
{
	unsigned long first = env_number("BPFWRAP_KDIFF_FIRST_SEED", 1);
	unsigned long seeds = env_number("BPFWRAP_KDIFF_SEEDS", DEFAULT_SEEDS);
	unsigned long nq = env_number("BPFWRAP_KDIFF_QUERIES", DEFAULT_QUERIES);

	(void)state;
	check_corpus("kernel vs evaluator", "corpus", first, seeds, nq, false, false, 10000);
}

/* test_kernel_other_table - the same seeds' part, daemons not named go to OTHER */
static void test_kernel_other_table(void **state)
{
	unsigned long first = env_number("BPFWRAP_KDIFF_FIRST_SEED", 1);
	unsigned long seeds = env_number("BPFWRAP_KDIFF_SEEDS", DEFAULT_SEEDS) / OTHER_EVERY;
	unsigned long nq = env_number("BPFWRAP_KDIFF_QUERIES", DEFAULT_QUERIES);

	(void)state;
	check_corpus("kernel (OTHER table) vs evaluator", "other", first, seeds ? seeds : 1, nq, true,
		     false, 0);
}

/* test_libwrap_evaluator_kernel - other seeds: libwrap == evaluator == kernel */
static void test_libwrap_evaluator_kernel(void **state)
{
	unsigned long seeds = env_number("BPFWRAP_KDIFF_ORACLE_SEEDS", DEFAULT_ORACLE_SEEDS);

	(void)state;
	check_corpus("libwrap == evaluator == kernel", "chain", ORACLE_FIRST_SEED, seeds,
		     ORACLE_QUERIES, false, true, 0);
}

/* A single query (tcpdmatch mode) whose output must not change with --kernel. */
struct single_case {
	const char *name;
	const char *args[6];	/* after `match --no-dns --allow A --deny D`, NULL-terminated */
	const char *decided;	/* start of the `decided by:` text with --kernel -v */
};

static const char single_allow[] =
	"sshd: 10.0.0.0/8 EXCEPT 10.9.0.0/16\n"
	"sshd: [2001:db8::]/32\n"
	"ftpd: .example.com\n"
	"ftpd: alice@192.0.2.1\n";
static const char single_deny[] = "ALL: ALL\n";

static const struct single_case single_cases[] = {
	{ "v4_allow", { "sshd", "10.1.2.3", NULL }, "kernel (rule " },
	{ "v4_except_deny", { "sshd", "10.9.1.1", NULL }, "kernel (rule " },
	{ "v6_allow", { "sshd", "2001:db8::5", NULL }, "kernel (rule " },
	{ "v4_mapped", { "sshd", "::ffff:10.1.2.3", NULL }, "kernel (rule " },
	{ "daemon_case", { "SSHD", "10.1.2.3", NULL }, "kernel (rule " },
	{ "unnamed_daemon", { "telnetd", "10.1.2.3", NULL }, "kernel (rule " },
	{ "name_asks", { "--name", "www.example.com", "ftpd", "192.0.2.9", NULL }, "kernel ASK" },
	{ "user_asks", { "ftpd", "alice@192.0.2.1", NULL }, "kernel ASK" },
	{ "not_canonical", { "sshd", "2001:DB8::5", NULL }, "evaluator (" },
	{ "unknown_client", { "sshd", "unknown", NULL }, "evaluator (" },
	{ "server_given", { "sshd@10.0.0.1", "10.1.2.3", NULL }, "kernel (rule " },
};

/* run_single - bpfwrap match [--kernel -v] --no-dns ... into out; the wait status */
static int run_single(const char *dir, const struct single_case *c, bool kernel, const char *out)
{
	char allow[PATH_MAX], deny[PATH_MAX], err[PATH_MAX];
	char *argv[16];
	int k = 0;

	path_in(allow, dir, "hosts.allow");
	path_in(deny, dir, "hosts.deny");
	path_in(err, dir, "single.err");
	argv[k++] = T.bpfwrap;
	argv[k++] = "match";
	if (kernel) {
		argv[k++] = "--kernel";
		argv[k++] = "-v";
	}
	argv[k++] = "--no-dns";
	argv[k++] = "--allow";
	argv[k++] = allow;
	argv[k++] = "--deny";
	argv[k++] = deny;
	for (int i = 0; c->args[i]; i++)
		argv[k++] = (char *)c->args[i];
	argv[k] = NULL;
	return run_tool(argv, "/dev/null", out, err, TOOL_SECONDS);
}

/* test_single_query_identical - tcpdmatch mode: --kernel prints what the evaluator does */
static void test_single_query_identical(void **state)
{
	char root[PATH_MAX], path[PATH_MAX], eout[PATH_MAX], kout[PATH_MAX];
	unsigned failures = 0;

	(void)state;
	if (!need_root())
		return;
	require_tools();
	fresh_subdir(root, "single");
	path_in(path, root, "hosts.allow");
	assert_int_equal(write_whole(path, single_allow, strlen(single_allow)), 0);
	path_in(path, root, "hosts.deny");
	assert_int_equal(write_whole(path, single_deny, strlen(single_deny)), 0);
	path_in(eout, root, "evaluator.out");
	path_in(kout, root, "kernel.out");
	for (size_t i = 0; i < sizeof(single_cases) / sizeof(single_cases[0]); i++) {
		const struct single_case *c = &single_cases[i];
		int se = run_single(root, c, false, eout), sk = run_single(root, c, true, kout);
		char *e = read_whole(eout, NULL), *k = read_whole(kout, NULL);
		char *how = k ? strstr(k, "decided by: ") : NULL;
		char st1[64], st2[64];

		assert_non_null(e);
		assert_non_null(k);
		if (how) {
			*how = '\0';	/* the rest must equal the evaluator's output */
			how += strlen("decided by: ");
		}
		if (se != sk || strcmp(e, k)) {
			failures++;
			print_error("%s: got --kernel (%s):\n%s\nwant as without (%s):\n%s\n", c->name,
				    status_text(sk, st1, sizeof(st1)), k, status_text(se, st2, sizeof(st2)), e);
		} else if (!how || strncmp(how, c->decided, strlen(c->decided))) {
			failures++;
			print_error("%s: got decided by: %s, want it to start with \"%s\"\n", c->name,
				    how ? how : "(no line)", c->decided);
		}
		free(e);
		free(k);
	}
	print_message("single queries: %zu cases, %u failures\n",
		      sizeof(single_cases) / sizeof(single_cases[0]), failures);
	remove_tree(root);
	if (failures)
		fail_msg("got %u single-query cases whose --kernel output differs, want 0", failures);
}

/* test_kernel_needs_root - without root, --kernel fails with a clear message */
static void test_kernel_needs_root(void **state)
{
	char root[PATH_MAX], err[PATH_MAX];
	int status;
	pid_t pid;

	(void)state;
	if (!need_root())
		return;
	require_tools();
	fresh_subdir(root, "noroot");
	path_in(err, root, "err");
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = { T.bpfwrap, "match", "--kernel", "--no-dns", "--allow", "/dev/null",
				 "--deny", "/dev/null", "sshd", "10.0.0.1", NULL };

		redirect_fd(err, STDERR_FILENO, O_WRONLY | O_CREAT | O_TRUNC);
		redirect_fd("/dev/null", STDOUT_FILENO, O_WRONLY);
		if (setgid(65534) || setuid(65534))
			_exit(126);
		alarm(TOOL_SECONDS);
		execv(argv[0], argv);
		_exit(127);
	}
	assert_true(waitpid(pid, &status, 0) == pid);
	char *text = read_whole(err, NULL), st[64];

	assert_non_null(text);
	remove_tree(root);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 1 || !strstr(text, "needs root")) {
		print_error("stderr: %s\n", text);
		free(text);
		fail_msg("as uid 65534: got %s, want exit 1 with \"needs root\"",
			 status_text(status, st, sizeof(st)));
	}
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_query_identical),
		cmocka_unit_test(test_kernel_needs_root),
		cmocka_unit_test(test_kernel_vs_evaluator),
		cmocka_unit_test(test_kernel_other_table),
		cmocka_unit_test(test_libwrap_evaluator_kernel),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
