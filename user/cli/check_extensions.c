/*
 * check_extensions.c - `bpfwrap check --extensions FILE`: the extensions
 * file's diagnostics (user/policy/extensions.c) printed as
 * "FILE:LINE:COL: error|warning: message", and the refusal of a file that
 * is hosts.allow or hosts.deny.
 *
 * Errors: guard_check_file returns 0 (diagnostics counted) or -errno when the
 * file cannot be read; the caller reports that.
 */
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli.h"
#include "extensions.h"

/* same_file - do two paths name one file */
static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino == sb.st_ino &&
	       sa.st_dev == sb.st_dev;
}

/* guard_check_file - print an extensions file's diagnostics; count errors and warnings */
int guard_check_file(const char *path, const char *allow, const char *deny, FILE *out,
		     size_t *errors, size_t *warnings)
{
	struct guard_conf *c = NULL;
	int err;

	*errors = *warnings = 0;
	if (same_file(path, allow) || same_file(path, deny)) {
		fprintf(out, "%s: error: the extensions must not be in hosts.allow or hosts.deny: "
			     "programs linked with libwrap read those and deny on unknown options\n"
			     "  hint: put them in their own file, e.g. %s\n", path, GUARD_DEFAULT_CONF);
		*errors = 1;
		return 0;
	}
	err = guard_conf_load(path, &c);
	if (err)
		return err;
	for (size_t i = 0; i < c->n_diags; i++) {
		const struct guard_diag *d = &c->diags[i];

		fprintf(out, "%s:%u:%u: %s: %s\n", c->name, d->line, d->col,
			d->error ? "error" : "warning", d->msg);
		if (d->error)
			(*errors)++;
		else
			(*warnings)++;
	}
	guard_conf_free(c);
	return 0;
}
