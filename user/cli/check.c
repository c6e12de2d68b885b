/*
 * check.c - `bpfwrap check`, the tcpdchk equivalent with better diagnostics:
 * the command around the analysis of user/policy/lint.c (policy_lint).
 *
 * cmd_check() prints every diagnostic once, a summary line, and returns the
 * exit status: 0 clean (or warnings only), 1 warnings with --strict, 2 errors.
 */
#include <getopt.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "lint.h"
#include "policy.h"

/* ---- the command ---------------------------------------------------------- */

/* check_usage - the command's help */
static void check_usage(FILE *out)
{
	fprintf(out,
		"usage: bpfwrap check [--allow FILE] [--deny FILE] [--extensions FILE] [--strict]\n"
		"                     [--quiet]\n\n"
		"Diagnose hosts.allow and hosts.deny like tcpdchk: every error, and every line\n"
		"where libwrap would surprise (see docs/check.md).\n\n"
		"  --allow FILE  hosts.allow to check (default /etc/hosts.allow)\n"
		"  --deny FILE   hosts.deny to check (default /etc/hosts.deny)\n"
		"  --extensions FILE  also check bpfwrap's extensions file (docs/extensions.md)\n"
		"  --strict      exit 1 when there are warnings\n"
		"  --quiet       print only errors and warnings: no notes, no summary\n\n"
		"exit status: 0 clean (or only warnings), 1 warnings with --strict, 2 errors\n");
}

/* plural - "s" unless n is 1 */
static const char *plural(size_t n)
{
	return n == 1 ? "" : "s";
}

/* missing_note - a named file that does not exist: libwrap reads it as empty */
static int missing_note(struct diag_list *out, const char *path, bool explicit_path)
{
	struct stat st;
	struct diag d = { .severity = explicit_path ? DIAG_WARNING : DIAG_NOTE,
			  .pos = { .file = path } };	/* line 0: the whole file */

	if (stat(path, &st) == 0 || errno != ENOENT)
		return 0;
	if (asprintf(&d.message, "no such file: libwrap reads a missing file as empty") < 0)
		return -ENOMEM;
	if (check_diag_push(out, &d) < 0) {
		free(d.message);
		return -ENOMEM;
	}
	return 0;
}

int cmd_check(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "allow", required_argument, NULL, 'a' },
		{ "deny", required_argument, NULL, 'd' },
		{ "strict", no_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "extensions", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *allow = "/etc/hosts.allow", *deny = "/etc/hosts.deny", *ext = NULL;
	bool strict = false, quiet = false, allow_given = false, deny_given = false;
	struct diag_list diags = { 0 };
	struct policy *policy = NULL;
	size_t n_err = 0, n_warn = 0, n_note = 0;
	char line[4096];
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "a:d:sqh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			ext = optarg;
			break;
		case 'a':
			allow = optarg;
			allow_given = true;
			break;
		case 'd':
			deny = optarg;
			deny_given = true;
			break;
		case 's':
			strict = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			check_usage(stdout);
			return 0;
		default:
			check_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "bpfwrap check: unexpected argument '%s'\n", argv[optind]);
		check_usage(stderr);
		return 2;
	}

	r = policy_load(&policy, allow, deny);
	if (r < 0) {
		fprintf(stderr, "bpfwrap check: cannot load %s and %s: %s\n", allow, deny, strerror(-r));
		return 2;
	}
	r = missing_note(&diags, allow, allow_given);
	if (!r)
		r = missing_note(&diags, deny, deny_given);
	if (!r)
		r = policy_lint(policy, &diags);
	if (r < 0) {
		fprintf(stderr, "bpfwrap check: %s\n", strerror(-r));
		check_diags_free(&diags);
		policy_free(policy);
		return 2;
	}

	for (size_t i = 0; i < diags.count; i++) {
		const struct diag *d = &diags.items[i];

		if (d->severity == DIAG_ERROR)
			n_err++;
		else if (d->severity == DIAG_NOTE)
			n_note++;
		else
			n_warn++;
		if (quiet && d->severity == DIAG_NOTE)
			continue;
		printf("%s\n", check_format(d, line, sizeof(line)));
		if (d->hint)
			printf("  hint: %s\n", d->hint);
	}
	if (ext) {
		size_t e = 0, w = 0;

		r = guard_check_file(ext, allow, deny, stdout, &e, &w);
		if (r < 0) {
			fprintf(stderr, "bpfwrap check: cannot read %s: %s\n", ext, strerror(-r));
			n_err++;
		}
		n_err += e;
		n_warn += w;
	}
	if (!quiet) {
		printf("check: %zu error%s, %zu warning%s", n_err, plural(n_err), n_warn, plural(n_warn));
		if (n_note)
			printf(", %zu note%s", n_note, plural(n_note));
		printf(" in %s and %s%s%s\n", allow, deny, ext ? " and " : "", ext ? ext : "");
	}
	check_diags_free(&diags);
	policy_free(policy);
	if (n_err)
		return 2;
	return strict && n_warn ? 1 : 0;
}
