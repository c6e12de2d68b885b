/*
 * diag.c - format parse diagnostics the way compilers and tcpdchk users
 * expect them: "FILE:LINE:COL: error|warning: message", plus the suggested
 * fix when there is one.
 *
 * Errors: none; output is always NUL-terminated (cut if buf is too small).
 */
#include <stdio.h>

#include "policy.h"

/* diag_format - "FILE:LINE:COL: error|warning: message" into buf; returns buf */
const char *diag_format(const struct diag *d, char *buf, size_t size)
{
	const char *sev = d->severity == DIAG_ERROR ? "error" : "warning";
	int n;

	if (!size)
		return buf;
	if (d->pos.line)
		n = snprintf(buf, size, "%s:%u:%u: %s: %s", d->pos.file ? d->pos.file : "?", d->pos.line,
			     d->pos.col, sev, d->message ? d->message : "");
	else	/* about the whole file (cannot open it) */
		n = snprintf(buf, size, "%s: %s: %s", d->pos.file ? d->pos.file : "?", sev,
			     d->message ? d->message : "");
	if (n >= 0 && (size_t)n < size && d->hint)
		snprintf(buf + n, size - (size_t)n, " (%s)", d->hint);
	return buf;
}
