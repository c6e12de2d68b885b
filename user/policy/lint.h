/*
 * lint.h - the lint layer of `bpfwrap check` (lint.c; the command is
 * user/cli/check.c): every place in hosts.allow/hosts.deny where libwrap
 * would deny, ignore, or surprise.
 *
 * policy_lint() returns libwrap's own parse diagnostics (policy->diags,
 * copied) together with the lint's, sorted by file, line and column. It
 * never prints. The diagnostics point into the policy (srcpos.file): free
 * them with check_diags_free() before policy_free().
 */
#ifndef BPFWRAP_LINT_H
#define BPFWRAP_LINT_H

#include <stddef.h>

#include "policy.h"

/*
 * A note: information (needs DNS, `deny` in hosts.allow, ...), not a
 * problem; it never changes the exit status. Kept outside enum
 * diag_severity so that switches over that enum elsewhere stay complete;
 * format it with check_format(), not diag_format().
 */
#define DIAG_NOTE ((enum diag_severity)2)

/* policy_lint - append parse and lint diagnostics of policy to out, then sort
 * all of out (what was there too); 0 or -ENOMEM */
int policy_lint(const struct policy *policy, struct diag_list *out);

/* check_format - diag_format() that also knows DIAG_NOTE; returns buf */
const char *check_format(const struct diag *d, char *buf, size_t size);

/* check_diag_push - append d (taking its strings) to list; 0 or -ENOMEM */
int check_diag_push(struct diag_list *list, const struct diag *d);

/* check_diags_free - free every diagnostic in list and the array itself */
void check_diags_free(struct diag_list *list);

#endif /* BPFWRAP_LINT_H */
