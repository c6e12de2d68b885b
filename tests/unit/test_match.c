/*
 * test_match.c - `bpfwrap match` end to end: the built binary (BPFWRAP_BUILD,
 * default "build") run on temporary files, batch and single-query modes,
 * exit statuses, and a large batch compared with the evaluator in process.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "policy.h"

static char dir[] = "/tmp/bpfwrap-test-match.XXXXXX";
static char bin[512];

/* path_in - DIR/name into buf */
static const char *path_in(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
	return buf;
}

/* write_file - DIR/name := text */
static void write_file(const char *name, const char *text)
{
	char p[256];
	FILE *f = fopen(path_in(p, sizeof(p), name), "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* read_file - DIR/name into a new string (empty if missing) */
static char *read_file(const char *name)
{
	char p[256];
	FILE *f = fopen(path_in(p, sizeof(p), name), "r");
	char *buf = NULL;
	size_t len = 0;

	if (f) {
		FILE *m = open_memstream(&buf, &len);

		assert_non_null(m);
		int c;
		while ((c = fgetc(f)) != EOF)
			fputc(c, m);
		fclose(m);
		fclose(f);
	}
	return buf ? buf : strdup("");
}

/* run - bpfwrap match ARGS < DIR/stdin > DIR/out 2> DIR/err; returns the exit status */
static int run(const char *args)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "cd %s && %s match %s < stdin > out 2> err", dir, bin, args);
	int st = system(cmd);
	if (st < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* setup - temporary directory and the binary's path */
static int setup(void **state)
{
	const char *build = getenv("BPFWRAP_BUILD");
	char cwd[256];

	if (!mkdtemp(dir))
		return -1;
	if (!getcwd(cwd, sizeof(cwd)))
		return -1;
	snprintf(bin, sizeof(bin), "%s/%s/bpfwrap", cwd, build ? build : "build");
	if (build && build[0] == '/')
		snprintf(bin, sizeof(bin), "%s/bpfwrap", build);
	return 0;
}

/* teardown - remove the temporary files */
static int teardown(void **state)
{
	static const char *const names[] = { "hosts.allow", "hosts.deny", "stdin", "out", "err", "big.allow" };
	char p[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(path_in(p, sizeof(p), names[i]));
	rmdir(dir);
	return 0;
}

/* need_binary - fail the test when the binary is missing (it is built with the tests) */
static void need_binary(void)
{
	if (access(bin, X_OK))
		fail_msg("%s: %s (build it first: make test-build)", bin, strerror(errno));
}

/* expect - compare captured output with the wanted text */
static bool expect(const char *what, const char *file, const char *want, bool prefix)
{
	char *got = read_file(file);
	bool ok = prefix ? strstr(got, want) != NULL : !strcmp(got, want);

	if (!ok)
		print_error("%s: got %s '%s', want %s '%s'\n", what, file, got, prefix ? "it to contain" : "", want);
	free(got);
	return ok;
}

/* test_batch - one answer per query, in order */
static void test_batch(void **state)
{
	need_binary();
	write_file("hosts.allow", "sshd: 10.0.0.0/8 EXCEPT 10.1.0.0/16\nALL: .example.com\nftpd: ALL: deny\n");
	write_file("hosts.deny", "ALL: ALL\n");
	write_file("stdin",
		   "sshd 10.2.3.4 - - -\n"
		   "sshd 10.1.2.3 - - -\n"
		   "telnetd 1.2.3.4 a.example.com - -\n"
		   "telnetd\t1.2.3.4\texample.com\t-\t-\r\n"
		   "ftpd 1.2.3.4 - root 10.0.0.1\n"
		   "- - - - -\n");
	int rc = run("--batch --allow hosts.allow --deny hosts.deny");
	bool ok = expect("batch", "out", "allow\ndeny\nallow\ndeny\ndeny\ndeny\n", false);
	ok &= expect("batch stderr", "err", "", false);
	if (rc != 0) {
		print_error("batch: got exit %d, want 0\n", rc);
		ok = false;
	}
	assert_true(ok);
}

/* test_batch_malformed - a line with the wrong field count: exit 2, line number, earlier answers kept */
static void test_batch_malformed(void **state)
{
	need_binary();
	write_file("hosts.allow", "sshd: ALL\n");
	write_file("hosts.deny", "ALL: ALL\n");
	write_file("stdin", "sshd 1.2.3.4 - - -\nftpd 1.2.3.4 - - -\nsshd 1.2.3.4 - -\nsshd 1.2.3.4 - - -\n");
	int rc = run("--batch --allow hosts.allow --deny hosts.deny");
	bool ok = expect("malformed", "out", "allow\ndeny\n", false);
	ok &= expect("malformed stderr", "err", "stdin:3:", true);
	if (rc != 2) {
		print_error("malformed: got exit %d, want 2\n", rc);
		ok = false;
	}
	write_file("stdin", "sshd 1.2.3.4 - - - extra\n");
	rc = run("--batch --allow hosts.allow --deny hosts.deny");
	if (rc != 2) {
		print_error("6 fields: got exit %d, want 2\n", rc);
		ok = false;
	}
	assert_true(ok);
}

/* test_single - tcpdmatch mode: report and exit status */
static void test_single(void **state)
{
	static const struct {
		const char *args;
		int want_rc;
		const char *want_out;
	} cases[] = {
		{ "--no-dns --allow hosts.allow --deny hosts.deny sshd 10.1.1.1", 0, "access:   granted" },
		{ "--no-dns --allow hosts.allow --deny hosts.deny sshd 10.1.1.1", 0, "matched:  hosts.allow line 1" },
		{ "--no-dns --allow hosts.allow --deny hosts.deny sshd 11.1.1.1", 1, "access:   denied" },
		{ "--no-dns --allow hosts.allow --deny hosts.deny sshd 11.1.1.1", 1, "matched:  hosts.deny line 1" },
		{ "--name web --allow hosts.allow --deny hosts.deny in.ftpd 11.1.1.1", 0, "client:   hostname web" },
		{ "--no-dns --allow hosts.allow --deny hosts.deny telnetd root@11.1.1.1", 0, "option:   spawn /bin/true" },
		{ "--no-dns --allow hosts.allow --deny hosts.deny telnetd bob@11.1.1.1", 1, "access:   denied" },
		{ "-d --no-dns sshd 10.1.1.1", 0, "access:   granted" },
		{ "--help", 0, "Exit status" },
		{ "", 2, "" },
		{ "--bogus sshd 1.2.3.4", 2, "" },
		{ "--batch extra", 2, "" },
	};
	bool ok = true;

	need_binary();
	write_file("hosts.allow", "sshd: 10.0.0.0/8\nin.ftpd: LOCAL\ntelnetd: root@ALL: spawn /bin/true\n");
	write_file("hosts.deny", "ALL: ALL\n");
	write_file("stdin", "");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run(cases[i].args);

		if (rc != cases[i].want_rc) {
			print_error("match %s: got exit %d, want %d\n", cases[i].args, rc, cases[i].want_rc);
			ok = false;
		}
		if (cases[i].want_out[0])
			ok &= expect(cases[i].args, "out", cases[i].want_out, true);
	}
	assert_true(ok);
}

/* test_batch_vs_evaluator - 5000 queries: the binary answers as policy_evaluate() does */
static void test_batch_vs_evaluator(void **state)
{
	need_binary();
	char *allow = NULL, *queries = NULL;
	size_t alen = 0, qlen = 0;
	FILE *a = open_memstream(&allow, &alen), *q = open_memstream(&queries, &qlen);

	assert_non_null(a);
	assert_non_null(q);
	for (int i = 0; i < 300; i++) {
		if (i % 3 == 0)
			fprintf(a, "sshd%d : 10.%d.%d.0/24 EXCEPT 10.%d.%d.7\n", i % 5, i % 7, i, i % 7, i);
		else if (i % 3 == 1)
			fprintf(a, "ALL EXCEPT ftpd : .ex%d.com%s\n", i, i % 2 ? " : deny" : "");
		else
			fprintf(a, "s* : u%d@[2001:db8:%x::]/48\n", i, i);
	}
	fclose(a);
	unsigned seed = 12345;
	struct request *reqs = calloc(5000, sizeof(*reqs));
	char (*text)[5][64] = calloc(5000, sizeof(*text));
	assert_non_null(reqs);
	assert_non_null(text);
	for (int i = 0; i < 5000; i++) {
		seed = seed * 1103515245u + 12345u;
		unsigned r = seed >> 8;
		snprintf(text[i][0], 64, r % 11 ? "sshd%u" : "ftpd", r % 6);
		if (r % 4)
			snprintf(text[i][1], 64, "10.%u.%u.%u", (r >> 3) % 8, (r >> 6) % 300 % 256, r % 2 ? 7 : (r >> 9) % 256);
		else
			snprintf(text[i][1], 64, "2001:db8:%x::%x", (r >> 4) % 300, r % 9);
		snprintf(text[i][2], 64, r % 3 ? "h.ex%u.com" : "-", (r >> 5) % 300);
		snprintf(text[i][3], 64, r % 5 ? "u%u" : "-", (r >> 7) % 300);
		snprintf(text[i][4], 64, "-");
		fprintf(q, "%s %s %s %s %s\n", text[i][0], text[i][1], text[i][2], text[i][3], text[i][4]);
		for (int k = 0; k < 5; k++)
			if (!strcmp(text[i][k], "-"))
				text[i][k][0] = '\0';
		reqs[i] = (struct request){ text[i][0], text[i][1], text[i][2], text[i][3], text[i][4], NULL, -1 };
	}
	fclose(q);
	write_file("big.allow", allow);
	write_file("hosts.deny", "ALL: ALL\n");
	write_file("stdin", queries);

	struct policy *p;
	assert_int_equal(policy_parse_buffers(&p, "big.allow", allow, alen, "hosts.deny", "ALL: ALL\n", 9), 0);
	char *want = NULL;
	size_t wlen = 0;
	FILE *w = open_memstream(&want, &wlen);
	size_t n_allow = 0;
	for (int i = 0; i < 5000; i++) {
		struct decision d;

		policy_evaluate(p, &reqs[i], &d);
		n_allow += d.allow;
		fputs(d.allow ? "allow\n" : "deny\n", w);
	}
	fclose(w);
	policy_free(p);
	int rc = run("--batch --allow big.allow --deny hosts.deny");
	bool ok = rc == 0 && expect("5000 queries", "out", want, false);
	if (rc)
		print_error("5000 queries: got exit %d, want 0\n", rc);
	/* the mix must exercise both answers */
	if (n_allow < 100 || n_allow > 4900) {
		print_error("5000 queries: got %zu allowed, want a mix\n", n_allow);
		ok = false;
	}
	free(allow);
	free(queries);
	free(want);
	free(reqs);
	free(text);
	assert_true(ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_batch_malformed),
		cmocka_unit_test(test_single),
		cmocka_unit_test(test_batch_vs_evaluator),
	};

	return cmocka_run_group_tests_name("match", tests, setup, teardown);
}
