/*
 * cli.h - the bpfwrap subcommands. Each lives in the module of its stage and
 * is reached from main.c's command table. A command reports its own errors
 * (once, to stderr) and returns the process exit status.
 */
#ifndef BPFWRAP_CLI_H
#define BPFWRAP_CLI_H

#include <stddef.h>
#include <stdio.h>

/* cmd_check - tcpdchk: diagnose hosts.allow/hosts.deny (check.c) */
int cmd_check(int argc, char **argv);
/* guard_check_file - `bpfwrap check --extensions` (check_extensions.c): print the file's
 * diagnostics on out as "FILE:LINE:COL: error|warning: message"; refuses a file that is
 * hosts.allow or hosts.deny (same inode as allow/deny, either may be NULL); counts into
 * *errors, *warnings */
int guard_check_file(const char *path, const char *allow, const char *deny, FILE *out,
		     size_t *errors, size_t *warnings);
/* cmd_match - tcpdmatch: decide one query or a batch (match.c) */
int cmd_match(int argc, char **argv);
/* cmd_run - load, attach and enforce in the kernel; stay in the foreground (run.c) */
int cmd_run(int argc, char **argv);
/* cmd_detach - remove every link, program, map and pin bpfwrap made (status.c) */
int cmd_detach(int argc, char **argv);
/* cmd_status - what is attached and loaded, with per-rule counters (status.c) */
int cmd_status(int argc, char **argv);
/* cmd_bans - list the bans made by trap rules (bans.c) */
int cmd_bans(int argc, char **argv);
/* cmd_unban - remove bans of an address or prefix (bans.c) */
int cmd_unban(int argc, char **argv);
/* print_guard_stats - the extensions' counters as one line "PREFIX k=v ...";
 * nothing without a guard in pin_dir (bans.c, also for status) */
void print_guard_stats(const char *pin_dir, const char *prefix);

#endif /* BPFWRAP_CLI_H */
