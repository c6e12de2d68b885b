/*
 * expand.h - % expansion for the spawn, twist and banners options, as
 * libwrap's percent_x() does it (hosts_options(5), "% EXPANSIONS").
 *
 * Every expanded VALUE has each character outside letters, digits and
 * "!@%-_=+:,./" replaced by '_' before it reaches the output: host names come
 * from DNS and user names from ident, both attacker-controlled. The literal
 * text of the command around the %x sequences is copied as written (it comes
 * from the administrator's file), exactly like libwrap.
 *
 * Differences from libwrap, all on the safe side: each source field is cut to
 * POLICY_FIELD_MAX (127) characters like libwrap's request fields; an output
 * that does not fit returns -ENAMETOOLONG and leaves an empty string (libwrap
 * logs, sleeps and exits) -- never a truncated command line.
 */
#ifndef BPFWRAP_EXPAND_H
#define BPFWRAP_EXPAND_H

#include <stddef.h>
#include <sys/types.h>

#include "policy.h"

/* The characters an expanded value may keep (libwrap's ok_chars). */
#define EXPAND_OK_CHARS \
	"1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* Longest %c / %s value: user@host, each part cut to POLICY_FIELD_MAX. */
#define EXPAND_INFO_MAX (2 * POLICY_FIELD_MAX + 1)

/*
 * expand_percent - expand fmt for request req (pid = daemon's pid, <=0 unknown)
 * into out[size]. Unknown %x expands to nothing (libwrap warns; `check` can
 * use expand_check). Returns 0, -EINVAL (NULL argument, size 0) or
 * -ENAMETOOLONG (result does not fit; out is then "").
 */
int expand_percent(const char *fmt, const struct request *req, pid_t pid, char *out, size_t size);

/* expand_check - 0 if fmt has only known %x sequences, else -EINVAL and *bad_at = offset of the '%' */
int expand_check(const char *fmt, size_t *bad_at);

/* expand_sanitize - replace, in place, each character outside EXPAND_OK_CHARS by '_' */
void expand_sanitize(char *s);

/* expand_client - %c unsanitized: user@host if the user is known, else host name if known, else address */
int expand_client(const struct request *req, char *out, size_t size);

/* expand_hostinfo - %h unsanitized: client name unless unknown/paranoid, else the address */
const char *expand_hostinfo(const struct request *req);

#endif /* BPFWRAP_EXPAND_H */
