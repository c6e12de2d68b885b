/*
 * policy.h - hosts.allow/hosts.deny as bpfwrap reads them, and the reference
 * evaluator that decides exactly as Debian's libwrap (tcp_wrappers 7.6.q).
 *
 * Stages: policy_load() parses both files into tables of rules (parse.c);
 * policy_evaluate() decides one request (evaluate.c). Parsing never fails on
 * content: libwrap's own reaction to bad input is recorded in the tables
 * (a cut-off table, a rule whose options are broken) so that evaluation
 * reproduces it; every problem is also reported as a diagnostic with
 * file:line:col. Only resource errors (ENOMEM, EMFILE, ...) are returned as
 * -errno; a table that cannot be opened for another reason (EACCES, ENOTDIR)
 * is TABLE_UNREADABLE, as libwrap treats it, and so is one that is not a
 * regular file (a FIFO, a socket, a device: never opened, never blocks).
 */
#ifndef BPFWRAP_POLICY_H
#define BPFWRAP_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

/* libwrap keeps request fields in char[128]: longer values are cut to 127. */
#define POLICY_FIELD_MAX 127

struct srcpos {
	const char *file;	/* owned by the table */
	unsigned line;		/* 1-based physical line */
	unsigned col;		/* 1-based column */
};

enum diag_severity { DIAG_WARNING, DIAG_ERROR };

struct diag {
	enum diag_severity severity;
	struct srcpos pos;
	char *message;		/* what is wrong */
	char *hint;		/* suggested fix, or NULL */
};

struct diag_list {
	struct diag *items;
	size_t count, cap;
};

/*
 * Pattern kinds, classified once at parse time in libwrap's order of tests.
 * The same token can mean different things as a daemon, a host or a user
 * pattern; each list keeps the classification for its own context.
 */
enum pattern_kind {
	PAT_EXCEPT,		/* the EXCEPT operator (any case), kept in place */
	PAT_NETGROUP,		/* @group (host context) */
	PAT_FILE,		/* /path: each word in the file is a pattern */
	PAT_KNOWN,		/* KNOWN */
	PAT_LOCAL,		/* LOCAL */
	PAT_NETMASK,		/* net/mask or [v6]/len (host context) */
	PAT_PORT,		/* number <= 65535 in a daemon list (Debian) */
	PAT_STRING,		/* string_match(): glob, .suffix, ALL, prefix., [v6], exact */
};

/* Sub-kind of a string match, in libwrap's order of tests. */
enum string_kind {
	STR_GLOB,		/* contains * or ? */
	STR_SUFFIX,		/* .suffix */
	STR_ALL,		/* ALL */
	STR_KNOWN,		/* KNOWN (string context: subject != "unknown") */
	STR_PREFIX,		/* ends with . */
	STR_V6,			/* [v6] */
	STR_EXACT,		/* anything else, case-insensitive */
};

/*
 * Field order: pointers and 64-bit values first, then the addresses, then
 * the small fields, so that the struct has no padding holes (a million-rule
 * policy holds a million or more of these).
 */
struct pattern {
	enum pattern_kind kind;
	enum string_kind skind;	/* with PAT_STRING (and the host part of user@host) */
	struct srcpos pos;
	char *text;		/* the token exactly as written */

	/* user@host in a client list: both parts, classified */
	struct pattern *user;	/* user part (string context), or NULL */
	struct pattern *host;	/* host part (host context), or NULL */

	/* daemon@host in a daemon list */
	struct pattern *server;	/* host part (host context), or NULL */

	/* PAT_FILE: the file's words, loaded at parse time; missing = NULL/0 */
	struct pattern_list *file_patterns;

	/*
	 * Added by the parser for fast matching:
	 * low/len: the text a string match compares, lower-cased (ASCII, like
	 * strcasecmp in the C locale): the whole token, or for user@host and
	 * daemon@host the part before the '@'. It may be the same string as
	 * `text` (a token without capitals): never write through either.
	 * prefix_len: PAT_NETMASK with AF_INET6, the prefix length (0..128).
	 *
	 * user@host: the pattern's own fields (kind, skind, net, ...) are those
	 * of the host part (a copy of *host); `user` holds the user part.
	 * daemon@host: the pattern's own fields are those of the daemon part
	 * (PAT_STRING or PAT_PORT); `server` holds the host part.
	 */
	const char *low;
	size_t len;
	uint64_t hash;		/* pol_hash(low, len): fast reject of exact matches */

	/* PAT_NETMASK: parsed net and mask. valid=false: can never match. */
	struct in6_addr net, mask;	/* IPv4 in the first 4 bytes, network order */

	/* STR_V6: the address between the brackets. */
	struct in6_addr v6;

	int family;		/* AF_INET or AF_INET6 */
	unsigned prefix_len;
	uint16_t port;		/* PAT_PORT */
	bool valid;

	/* host patterns: also try the host name (NOT_INADDR) */
	bool also_name;
};

/*
 * A list of one plain token (no '@', not a /path) written on its rule's first
 * line exactly as, and at the same column as, in an earlier rule of the same
 * table, may share that rule's items (the parser saves memory on fail2ban
 * files of a million `ALL: ADDRESS` lines). Everything in a shared pattern
 * is right for both rules except pos.line, which is the earlier rule's: the
 * token's real line is the rule's pos.line (a shared pattern is the only
 * kind whose pos.line is smaller than its rule's). Never write to patterns.
 */
struct pattern_list {
	struct pattern *items;
	size_t count;
};

/* One option of field 3 (hosts_options(5)). */
enum rule_option_kind {
	ROPT_ALLOW, ROPT_DENY, ROPT_SPAWN, ROPT_TWIST, ROPT_BANNERS, ROPT_SEVERITY,
	ROPT_KEEPALIVE, ROPT_LINGER, ROPT_RFC931, ROPT_NICE, ROPT_UMASK, ROPT_USER,
	ROPT_GROUP, ROPT_SETENV, ROPT_ACLEXEC,
};

struct rule_option {
	enum rule_option_kind kind;
	struct srcpos pos;
	char *value;		/* after name [=], NULL if none */
	long number;		/* linger seconds, rfc931 timeout, nice, umask */
};

struct rule_fast;	/* private to parse.c/evaluate.c */

struct rule {
	struct srcpos pos;	/* first physical line of the logical line */
	char *text;		/* the logical line, continuations joined, no newline */
	struct pattern_list daemons;
	struct pattern_list clients;
	struct rule_option *options;
	size_t n_options;
	char *options_error_msg;
	/* the evaluator's compact copy of both lists (parse.c builds it) */
	const struct rule_fast *fast;
	uint32_t id;		/* 1-based across allow then deny; 0 is "no rule" */
	bool has_options;	/* a third field exists (even if empty) */
	bool options_error;	/* libwrap would deny when this rule matches */
	/* A `setenv` whose variable name has a % expansion: libwrap's setenv()
	 * fails (deny) when the expanded name is empty or holds '=', which
	 * depends on the request; the evaluator checks it per request. */
	bool options_dynamic;
};

enum table_state {
	TABLE_OK,
	TABLE_MISSING,		/* ENOENT or a directory: empty */
	TABLE_UNREADABLE,	/* EACCES, ENOTDIR, a FIFO, ...: an error (match = ERR) */
};

struct table {
	char *path;
	bool is_deny;
	enum table_state state;
	int open_errno;		/* why it was not read: ENOENT, EISDIR, EACCES, ...; EINVAL with
				 * file_type: not a regular file (readfile.h) */
	uint32_t file_type;	/* S_IFMT bits of what the path names, 0 if unknown */
	struct rule *rules;	/* rules before any cut-off, in file order */
	size_t n_rules;
	/* libwrap stops reading at an error (no final newline, line too long,
	 * `\` at EOF): queries that reach it get ERR from this table. */
	bool cut_off;
	struct srcpos cut_pos;
};

struct policy {
	struct table allow, deny;
	size_t n_rules;		/* allow.n_rules + deny.n_rules */
	struct diag_list diags;	/* parse diagnostics (libwrap's warnings and errors) */
	void *priv;		/* parser-owned storage (arena); NULL for none */
};

/* A request as libwrap sees it. NULL fields are "unknown", like an unset
 * request_info field. Values longer than POLICY_FIELD_MAX are cut. */
struct request {
	const char *daemon;
	const char *client_addr;	/* text, e.g. "192.0.2.1", "2001:db8::1", "::ffff:1.2.3.4" */
	const char *client_name;	/* host name, "unknown" or "paranoid" */
	const char *user;
	const char *server_addr;
	const char *server_name;
	int server_port;		/* -1 unknown */
};

enum decision_reason {
	REASON_RULE,		/* a rule matched (rule != NULL) */
	REASON_DEFAULT,		/* nothing matched: allow */
	REASON_TABLE_ERROR,	/* hosts.deny could not be read or was cut off: deny */
	REASON_OPTION_ERROR,	/* matched rule's options are broken: deny */
};

/* The fields of a request a decision read (struct decision.inputs): the same
 * decision holds for every request that agrees with this one on them, so an
 * answer may be reused exactly for requests equal in these fields (the
 * agent's kernel verdict cache keys on them). A field a pattern was matched
 * against counts as read, matched or not; a `setenv` with % reads them all. */
enum request_input {
	INPUT_DAEMON = 1 << 0,
	INPUT_CLIENT_ADDR = 1 << 1,
	INPUT_CLIENT_NAME = 1 << 2,
	INPUT_USER = 1 << 3,
	INPUT_SERVER_ADDR = 1 << 4,
	INPUT_SERVER_NAME = 1 << 5,
	INPUT_SERVER_PORT = 1 << 6,
	INPUT_ALL = (1 << 7) - 1,
};

struct decision {
	bool allow;
	enum decision_reason reason;
	const struct rule *rule;	/* matched rule, or NULL */
	const struct table *table;	/* table of the rule / of the error */
	unsigned inputs;		/* enum request_input: what deciding read */
};

/* policy_load - parse hosts.allow and hosts.deny (either may be NULL = missing) */
int policy_load(struct policy **out, const char *allow_path, const char *deny_path);

/* policy_parse_buffers - parse from memory (tests, fuzzing); names are for diagnostics */
int policy_parse_buffers(struct policy **out, const char *allow_name, const char *allow_text,
			 size_t allow_len, const char *deny_name, const char *deny_text,
			 size_t deny_len);

/* policy_free - release a policy and everything it owns */
void policy_free(struct policy *policy);

/* policy_evaluate - decide one request exactly as libwrap's hosts_access() */
void policy_evaluate(const struct policy *policy, const struct request *req, struct decision *out);

/* diag_format - "FILE:LINE:COL: error|warning: message" into buf; returns buf */
const char *diag_format(const struct diag *d, char *buf, size_t size);

#endif /* BPFWRAP_POLICY_H */
