/*
 * compile.h - the policy compiled for the kernel: per-daemon decision tables
 * over client addresses, ready to be written into the LPM tries of
 * include/bpfwrap.h. Produced by compile.c, consumed by the loader
 * (user/kernel/loader.c, the map images in user/kernel/v4table.c).
 *
 * Contract: for every daemon id d (0 = any daemon the policy does not name)
 * and every client address a, the longest-prefix entry covering (d, a)
 * exists (each daemon has a /0 entry) and:
 *   - verdict ALLOW/DENY equals policy_evaluate() for (daemon, a) whatever
 *     the client name and user are;
 *   - verdict ASK means the decision needs the name, the user, the server
 *     endpoint or a pattern the tables cannot express; verdict_if_unknown
 *     is policy_evaluate() with name, user and server unknown.
 * A v4-mapped client (::ffff:a.b.c.d) is decided in the IPv4 table, as
 * libwrap decides the text "::ffff:a.b.c.d" like "a.b.c.d"; the IPv6 table's
 * entries for ::ffff:0:0/96 mean nothing.
 *
 * ASK with BPFWRAP_F_APPROX: the verdict for an unknown name could not be
 * computed exactly (it depends on which unnamed daemon, a netgroup, or an
 * address-text pattern too costly to enumerate); verdict_if_unknown is then
 * DENY (fail closed). Every other verdict_if_unknown is exact.
 *
 * Daemon names: libwrap compares them case-insensitively, so names are keyed
 * in ASCII lower case (compiled_daemon.name and the kernel's daemon_key):
 * whoever fills a daemon_key from a process comm or a cgroup-given name
 * lower-cases it (A-Z only) first. Names of BPFWRAP_DAEMON_NAME_MAX or more
 * characters get no table; they are decided in the OTHER table, which treats
 * patterns naming them as "ask". A named daemon whose table would equal
 * OTHER's gets no id (compiled_daemon_id() returns OTHER for it).
 */
#ifndef BPFWRAP_COMPILE_H
#define BPFWRAP_COMPILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpfwrap.h"
#include "policy.h"

struct compiled_daemon {
	uint32_t id;			/* host order, >= 1 */
	char name[BPFWRAP_DAEMON_NAME_MAX];	/* zero-padded, as in struct daemon_key */
};

struct compiled_v4 {
	struct policy_key_v4 key;	/* byte order as in bpfwrap.h */
	struct policy_entry entry;
};

struct compiled_v6 {
	struct policy_key_v6 key;
	struct policy_entry entry;
};

/* Rule metadata for counters, logs and `status`, indexed by rule id. */
struct compiled_rule {
	uint32_t id;
	const struct rule *rule;	/* points into the policy it was compiled from */
};

struct compiled_policy {
	struct compiled_daemon *daemons;	/* the daemons the policy names */
	size_t n_daemons;
	struct compiled_v4 *v4;
	size_t n_v4;
	struct compiled_v6 *v6;
	size_t n_v6;
	uint32_t n_rules;		/* rule ids run 1..n_rules */
	struct compiled_rule *rules;	/* n_rules entries: rules[i].id == i + 1 */
	size_t n_ask;			/* entries with verdict ASK (v4 + v6) */
};

/* compile_policy - build the kernel tables for a parsed policy */
int compile_policy(const struct policy *policy, const char *const *extra_daemons,
		   size_t n_extra_daemons, struct compiled_policy **out);

/* compiled_policy_free - release what compile_policy built */
void compiled_policy_free(struct compiled_policy *cp);

/* compile_big_alloc - memory for a large table (free() releases it): from
 * 2 MiB up aligned and marked for transparent huge pages, one page fault per
 * 2 MiB instead of per 4 KiB (page faults dominated building a million-rule
 * table on a VM); zeroed if zero; NULL on failure */
void *compile_big_alloc(size_t size, bool zero);

/* compiled_daemon_id - the table id for a daemon name (BPFWRAP_DAEMON_OTHER if unnamed) */
uint32_t compiled_daemon_id(const struct compiled_policy *cp, const char *name);

#endif /* BPFWRAP_COMPILE_H */
