/*
 * test_fuzz.c - run the policy parser fuzzer (tests/fuzz/run.sh) for a
 * bounded time and fail on any finding.
 *
 *   fuzz_parse_bounded   BPFWRAP_FUZZ_SECONDS (default 30) of libFuzzer with
 *                        ASan/UBSan on policy_parse_buffers + evaluation +
 *                        diagnostics; a crash, sanitizer report, leak,
 *                        timeout or OOM fails, and each offending input is
 *                        printed as a C string literal.
 *
 * The fuzzer is built by run.sh into $BPFWRAP_BUILD (default "build"); a
 * build failure is a test failure, never a skip.
 */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diff/proc.h"

#define MAX_PRINTED_BYTES 4096

/* print_c_string - an input as a C string literal, split into lines at \n */
static void print_c_string(const char *name, const unsigned char *p, size_t n)
{
	print_message("finding %s (%zu bytes):\n  \"", name, n);
	for (size_t i = 0; i < n && i < MAX_PRINTED_BYTES; i++) {
		unsigned char c = p[i];

		if (c == '\n')
			print_message("\\n\"\n  \"");
		else if (c == '"' || c == '\\')
			print_message("\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			print_message("%c", c);
		else /* octal, 3 digits, so a following digit cannot join it */
			print_message("\\%03o", c);
	}
	print_message("\"%s\n", n > MAX_PRINTED_BYTES ? " /* ...cut */" : "");
}

/* print_log_tail - the last lines of the fuzzer's output */
static void print_log_tail(const char *path, int lines)
{
	size_t n;
	char *text = read_whole(path, &n);
	const char *start;
	int seen = 0;

	if (!text)
		return;
	start = text + n;
	while (start > text && seen <= lines)
		if (*--start == '\n')
			seen++;
	print_message("--- fuzzer output (tail)\n%s\n---\n", start);
	free(text);
}

/* test_fuzz_parse_bounded - run.sh BUILD SECONDS; fail and print on findings */
static void test_fuzz_parse_bounded(void **state)
{
	const char *b = build_dir();
	const char *secs_env = getenv("BPFWRAP_FUZZ_SECONDS");
	char seconds[32], log[64], artifacts[PATH_MAX], st[64], build[PATH_MAX];
	char *argv[] = { "/bin/bash", "tests/fuzz/run.sh", build, seconds, NULL };
	unsigned long secs = 30;
	int rc, findings = 0, fd;
	DIR *dir;
	struct dirent *de;

	if (secs_env && *secs_env)
		secs = strtoul(secs_env, NULL, 10);
	if (secs == 0)
		secs = 1;
	snprintf(seconds, sizeof(seconds), "%lu", secs);
	snprintf(build, sizeof(build), "%s", b);
	snprintf(log, sizeof(log), "/tmp/bpfwrap-fuzz-log.XXXXXX");
	fd = mkstemp(log);
	assert_true(fd >= 0);
	close(fd);
	if (!is_executable("tests/fuzz/run.sh"))
		fail_msg("got no tests/fuzz/run.sh in %s, want the repository root as cwd",
			 getcwd(artifacts, sizeof(artifacts)) ? artifacts : "?");

	/* build time (first run) + fuzzing time + libFuzzer's shutdown */
	rc = run_tool(argv, "/dev/null", log, log, (unsigned)secs + 900);
	if (rc != 0)
		print_log_tail(log, 40);
	else
		print_log_tail(log, 6);

	snprintf(artifacts, sizeof(artifacts), "%s/tests/fuzz/artifacts", b);
	dir = opendir(artifacts);
	while (dir && (de = readdir(dir)) != NULL) {
		char path[PATH_MAX * 2];
		unsigned char *data;
		size_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", artifacts, de->d_name);
		data = (unsigned char *)read_whole(path, &n);
		if (!data)
			continue;
		findings++;
		print_c_string(de->d_name, data, n);
		free(data);
	}
	if (dir)
		closedir(dir);
	unlink(log);
	if (rc != 0 || findings)
		fail_msg("fuzz for %lus: got %s and %d findings, want exit 0 and none", secs,
			 status_text(rc, st, sizeof(st)), findings);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_parse_bounded),
	};

	return cmocka_run_group_tests_name("fuzz", tests, NULL, NULL);
}
