/*
 * test_parse.c - the parser (user/policy/parse.c): how each token is classified,
 * where every token and rule is (file:line:col), libwrap's line reading
 * quirks (continuations, CRLF, comments, cut-off tables), options and their
 * errors, diagnostics, and loading files from disk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "policy.h"

/* parse - both tables from text (NULL = missing) */
static struct policy *parse(const char *allow, const char *deny)
{
	struct policy *p = NULL;
	int err = policy_parse_buffers(&p, "hosts.allow", allow, allow ? strlen(allow) : 0, "hosts.deny", deny,
				       deny ? strlen(deny) : 0);

	if (err || !p) {
		print_error("policy_parse_buffers: got %d, want 0\n", err);
		fail();
	}
	return p;
}

struct token_case {
	const char *text;
	enum pattern_kind kind;
	int skind;		/* -1: not a string pattern */
	unsigned col;
	bool user, server;	/* user@host / daemon@host */
};

/* check_tokens - one list against its expected tokens */
static bool check_tokens(const char *what, const struct pattern_list *l, const struct token_case *want, size_t n)
{
	bool ok = true;

	if (l->count != n) {
		print_error("%s: got %zu tokens, want %zu\n", what, l->count, n);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const struct pattern *p = &l->items[i];

		if (strcmp(p->text, want[i].text) || p->kind != want[i].kind ||
		    (want[i].skind >= 0 && (int)p->skind != want[i].skind) || p->pos.col != want[i].col ||
		    (p->user != NULL) != want[i].user || (p->server != NULL) != want[i].server) {
			print_error("%s token %zu: got '%s' kind %d skind %d col %u user %d server %d, "
				    "want '%s' kind %d skind %d col %u user %d server %d\n",
				    what, i, p->text, p->kind, p->skind, p->pos.col, p->user != NULL, p->server != NULL,
				    want[i].text, want[i].kind, want[i].skind, want[i].col, want[i].user, want[i].server);
			ok = false;
		}
	}
	return ok;
}

/* test_classify - every kind of token, in daemon and client lists */
static void test_classify(void **state)
{
	const char *allow =
		"sshd, in.ftpd@10.0.0.1 EXCEPT 22 65536 s?hd KNOWN: root@.example.com 10.1.2.0/24 "
		"[2001:db8::]/32 @ng /nonexistent KNOWN LOCAL ALL .x 10. [::1] *.y except Host\n";
	struct policy *p = parse(allow, NULL);
	static const struct token_case daemons[] = {
		{ "sshd", PAT_STRING, STR_EXACT, 1, false, false },
		{ "in.ftpd@10.0.0.1", PAT_STRING, STR_EXACT, 7, false, true },
		{ "EXCEPT", PAT_EXCEPT, -1, 24, false, false },
		{ "22", PAT_PORT, -1, 31, false, false },
		{ "65536", PAT_STRING, STR_EXACT, 34, false, false },
		{ "s?hd", PAT_STRING, STR_GLOB, 40, false, false },
		{ "KNOWN", PAT_STRING, STR_KNOWN, 45, false, false },
	};
	static const struct token_case clients[] = {
		{ "root@.example.com", PAT_STRING, STR_SUFFIX, 52, true, false },
		{ "10.1.2.0/24", PAT_NETMASK, -1, 70, false, false },
		{ "[2001:db8::]/32", PAT_NETMASK, -1, 82, false, false },
		{ "@ng", PAT_NETGROUP, -1, 98, false, false },
		{ "/nonexistent", PAT_FILE, -1, 102, false, false },
		{ "KNOWN", PAT_KNOWN, -1, 115, false, false },
		{ "LOCAL", PAT_LOCAL, -1, 121, false, false },
		{ "ALL", PAT_STRING, STR_ALL, 127, false, false },
		{ ".x", PAT_STRING, STR_SUFFIX, 131, false, false },
		{ "10.", PAT_STRING, STR_PREFIX, 134, false, false },
		{ "[::1]", PAT_STRING, STR_V6, 138, false, false },
		{ "*.y", PAT_STRING, STR_GLOB, 144, false, false },
		{ "except", PAT_EXCEPT, -1, 148, false, false },
		{ "Host", PAT_STRING, STR_EXACT, 155, false, false },
	};

	assert_int_equal(p->allow.n_rules, 1);
	const struct rule *r = &p->allow.rules[0];
	bool ok = check_tokens("daemons", &r->daemons, daemons, sizeof(daemons) / sizeof(daemons[0]));
	ok &= check_tokens("clients", &r->clients, clients, sizeof(clients) / sizeof(clients[0]));

	/* the parts of user@host and daemon@host */
	const struct pattern *uh = &r->clients.items[0], *dh = &r->daemons.items[1];
	if (strcmp(uh->user->low, "root") || uh->host->skind != STR_SUFFIX || strcmp(uh->host->low, ".example.com") ||
	    dh->server->kind != PAT_STRING || strcmp(dh->server->text, "10.0.0.1") || strcmp(dh->low, "in.ftpd")) {
		print_error("parts: got user '%s' host '%s' daemon '%s' server '%s', want root, .example.com, in.ftpd, 10.0.0.1\n",
			    uh->user->low, uh->host->low, dh->low, dh->server->text);
		ok = false;
	}
	if (r->daemons.items[3].port != 22) {
		print_error("port: got %u, want 22\n", r->daemons.items[3].port);
		ok = false;
	}
	/* NOT_INADDR: only tokens with characters beyond digits, '.' and '/' try the name */
	if (r->clients.items[9].also_name || !r->clients.items[8].also_name || !r->clients.items[13].also_name) {
		print_error("also_name: got 10.=%d .x=%d Host=%d, want 0 1 1\n", r->clients.items[9].also_name,
			    r->clients.items[8].also_name, r->clients.items[13].also_name);
		ok = false;
	}
	/* lower-cased copy for matching, text as written */
	if (strcmp(r->clients.items[13].low, "host") || strcmp(r->clients.items[13].text, "Host")) {
		print_error("case: got low '%s' text '%s', want host Host\n", r->clients.items[13].low,
			    r->clients.items[13].text);
		ok = false;
	}
	policy_free(p);
	assert_true(ok);
}

struct net_case {
	const char *token;
	bool valid;
	int family;
	const char *net, *mask;	/* text of the parsed values when valid */
	unsigned prefix_len;
};

/* test_netmask - net/mask read as libwrap's masked_match4 / IPv6 branch reads it */
static void test_netmask(void **state)
{
	static const struct net_case nets[] = {
		{ "10.1.2.0/24", true, AF_INET, "10.1.2.0", "255.255.255.0", 0 },
		{ "10.1.2.0/255.255.255.0", true, AF_INET, "10.1.2.0", "255.255.255.0", 0 },
		{ "010.1.2.0/24", true, AF_INET, "8.1.2.0", "255.255.255.0", 0 },
		{ "0x0a.1.2.0/24abc", true, AF_INET, "10.1.2.0", "255.255.255.0", 0 },
		{ "10.0.0.1/255.0.0.255", true, AF_INET, "10.0.0.1", "255.0.0.255", 0 },
		{ "0.0.0.0/0.0.0.0", true, AF_INET, "0.0.0.0", "0.0.0.0", 0 },
		{ "10.1.2.3/32", true, AF_INET, "10.1.2.3", "255.255.255.255", 0 },
		{ "10.1.2.3/16", false, AF_INET, NULL, NULL, 0 },
		{ "10.1.2.3/255.255.255.255", false, AF_INET, NULL, NULL, 0 },
		{ "0.0.0.0/0", false, AF_INET, NULL, NULL, 0 },
		{ "10.1.2.0/33", false, AF_INET, NULL, NULL, 0 },
		{ "10.1.0/16", false, AF_INET, NULL, NULL, 0 },
		{ "[2001:db8::1]/32", true, AF_INET6, "2001:db8::", "ffff:ffff::", 32 },
		{ "[::]/0", true, AF_INET6, "::", "::", 0 },
		{ "[2001:db8::]/abc", true, AF_INET6, "::", "::", 0 },	/* strtol: /0 */
		{ "[2001:db8::]/129", false, AF_INET6, NULL, NULL, 0 },
		{ "[bogus]/64", false, AF_INET6, NULL, NULL, 0 },
	};
	bool ok = true;

	for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
		char text[128], net[INET6_ADDRSTRLEN], mask[INET6_ADDRSTRLEN];

		snprintf(text, sizeof(text), "sshd: %s\n", nets[i].token);
		struct policy *p = parse(text, NULL);
		const struct pattern *pt = &p->allow.rules[0].clients.items[0];
		bool good = pt->kind == PAT_NETMASK && pt->valid == nets[i].valid && pt->family == nets[i].family;

		net[0] = mask[0] = '\0';
		if (good && nets[i].valid) {
			inet_ntop(pt->family, &pt->net, net, sizeof(net));
			inet_ntop(pt->family, &pt->mask, mask, sizeof(mask));
			good = !strcmp(net, nets[i].net) && !strcmp(mask, nets[i].mask) &&
			       (pt->family != AF_INET6 || pt->prefix_len == nets[i].prefix_len);
		}
		if (!good) {
			print_error("%s: got kind %d valid %d family %d net %s mask %s, want valid %d family %d net %s mask %s\n",
				    nets[i].token, pt->kind, pt->valid, pt->family, net, mask, nets[i].valid,
				    nets[i].family, nets[i].net ? nets[i].net : "-", nets[i].mask ? nets[i].mask : "-");
			ok = false;
		}
		policy_free(p);
	}
	assert_true(ok);
}

struct lines_case {
	const char *name;
	const char *text;
	size_t n_rules;
	unsigned first_line;	/* line of rule 0 */
	const char *first_token;	/* first client token of rule 0 */
	unsigned token_line, token_col;
	bool cut_off;
	unsigned cut_line;
	size_t n_warnings, n_errors;
};

/* test_lines - libwrap's line reading: continuations, CRLF, comments, cut-off tables */
static void test_lines(void **state)
{
	static const struct lines_case cases[] = {
		{ "plain", "sshd: 1.2.3.4\n", 1, 1, "1.2.3.4", 1, 7, false, 0, 0, 0 },
		{ "continuation_joins", "sshd: 10.0.0.\\\n1\n", 1, 1, "10.0.0.1", 1, 7, false, 0, 0, 0 },
		{ "continuation_position", "sshd: \\\n   1.2.3.4\n", 1, 1, "1.2.3.4", 2, 4, false, 0, 0, 0 },
		{ "crlf", "sshd: 1.2.3.4\r\n", 1, 1, "1.2.3.4", 1, 7, false, 0, 0, 0 },
		{ "crlf_backslash_is_token", "sshd: 1.2.\\\r\n4\r\n", 1, 1, "1.2.\\", 1, 7, false, 0, 1, 0 },
		{ "comment_col1", "# x: y\n\n  \t\nsshd: a\n", 1, 4, "a", 4, 7, false, 0, 0, 0 },
		{ "comment_indented_rule", "  # x: y\n", 1, 1, "y", 1, 8, false, 0, 0, 0 },
		{ "comment_swallows", "# c \\\nsshd: a\nftpd: b\n", 1, 3, "b", 3, 7, false, 0, 0, 0 },
		{ "no_colon", "sshd a\nftpd: b\n", 1, 2, "b", 2, 7, false, 0, 1, 0 },
		{ "no_final_newline", "sshd: a\nftpd: b", 1, 1, "a", 1, 7, true, 2, 0, 1 },
		{ "backslash_at_eof", "sshd: a\nftpd: b\\\n", 1, 1, "a", 1, 7, true, 2, 0, 1 },
		{ "three_fields", "sshd: [::1]:x: allow\n", 1, 1, "[::1]", 1, 7, false, 0, 0, 1 },
		{ "empty", "", 0, 0, NULL, 0, 0, false, 0, 0, 0 },
	};
	bool ok = true;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct lines_case *c = &cases[i];
		struct policy *p = parse(c->text, NULL);
		const struct table *t = &p->allow;
		size_t nw = 0, ne = 0;

		for (size_t k = 0; k < p->diags.count; k++)
			p->diags.items[k].severity == DIAG_ERROR ? ne++ : nw++;
		bool good = t->n_rules == c->n_rules && t->cut_off == c->cut_off && (!c->cut_off || t->cut_pos.line == c->cut_line) &&
			    nw == c->n_warnings && ne == c->n_errors;
		const struct pattern *tok = NULL;
		if (good && c->n_rules) {
			const struct rule *r = &t->rules[0];

			tok = r->clients.count ? &r->clients.items[0] : NULL;
			good = r->pos.line == c->first_line && tok && !strcmp(tok->text, c->first_token) &&
			       tok->pos.line == c->token_line && tok->pos.col == c->token_col;
		}
		if (!good) {
			print_error("%s: got rules %zu line %u token '%s' at %u:%u cut %d@%u warnings %zu errors %zu, "
				    "want rules %zu line %u token '%s' at %u:%u cut %d@%u warnings %zu errors %zu\n",
				    c->name, t->n_rules, t->n_rules ? t->rules[0].pos.line : 0, tok ? tok->text : "-",
				    tok ? tok->pos.line : 0, tok ? tok->pos.col : 0, t->cut_off, t->cut_pos.line, nw, ne,
				    c->n_rules, c->first_line, c->first_token ? c->first_token : "-", c->token_line,
				    c->token_col, c->cut_off, c->cut_line, c->n_warnings, c->n_errors);
			ok = false;
		}
		policy_free(p);
	}
	assert_true(ok);
}

struct option_case {
	const char *name;
	const char *field;	/* after "sshd: ALL" */
	size_t n_options;
	enum rule_option_kind kinds[3];
	const char *value0;	/* value of option 0, or NULL */
	long number0;
	bool error;
	const char *error_msg;	/* start of options_error_msg */
	bool dynamic;
};

/* test_options - hosts_options(5) as process_options() checks them */
static void test_options(void **state)
{
	static const struct option_case cases[] = {
		{ "none", "", 0, { 0 }, NULL, 0, false, NULL, false },
		{ "allow", ": allow", 1, { ROPT_ALLOW }, NULL, 0, false, NULL, false },
		{ "escaped_colon", ": spawn echo a\\: b : linger 5 : DENY", 3, { ROPT_SPAWN, ROPT_LINGER, ROPT_DENY },
		  "echo a: b", 0, false, NULL, false },
		{ "equals", ": linger = 7", 1, { ROPT_LINGER }, "7", 7, false, NULL, false },
		{ "umask", ": umask 022", 1, { ROPT_UMASK }, "022", 18, false, NULL, false },
		{ "severity", ": severity local3.notice", 1, { ROPT_SEVERITY }, "local3.notice", 0, false, NULL, false },
		{ "empty_field", ":", 0, { 0 }, NULL, 0, true, "missing option name", false },
		{ "blank_field", ":  ", 0, { 0 }, NULL, 0, true, "missing option name", false },
		{ "trailing_colon", ": allow:", 0, { 0 }, NULL, 0, true, "option \"allow\" must be at end", false },
		{ "allow_value", ": allow yes", 0, { 0 }, NULL, 0, true, "option \"allow\" requires no value", false },
		{ "keepalive_value", ": keepalive 1", 0, { 0 }, NULL, 0, true, "option \"keepalive\" requires no value", false },
		{ "spawn_no_cmd", ": spawn", 0, { 0 }, NULL, 0, true, "option \"spawn\" requires value", false },
		{ "unknown", ": spawn x : frob", 1, { ROPT_SPAWN }, "x", 0, true, "bad option name: \"frob\"", false },
		{ "twist_not_last", ": twist x : allow", 0, { 0 }, NULL, 0, true, "option \"twist\" must be at end", false },
		{ "linger_bad", ": linger 5x", 0, { 0 }, NULL, 0, true, "bad linger value", false },
		{ "severity_bad", ": severity ftp.info", 0, { 0 }, NULL, 0, true, "bad syslog facility or severity: \"ftp\"", false },
		{ "rfc931_zero", ": rfc931 0", 0, { 0 }, NULL, 0, true, "bad rfc931 timeout", false },
		{ "nice_bad", ": nice x", 0, { 0 }, NULL, 0, true, "bad nice value", false },
		{ "user_unknown", ": user nosuchuser-bpfwrap", 0, { 0 }, NULL, 0, true, "unknown user", false },
		{ "group_unknown", ": group nosuchgroup-bpfwrap", 0, { 0 }, NULL, 0, true, "unknown group", false },
		{ "setenv_eq", ": setenv A=b", 0, { 0 }, NULL, 0, true, "setenv: variable name", false },
		{ "setenv_dynamic", ": setenv X%u y", 1, { ROPT_SETENV }, "X%u y", 0, false, NULL, true },
	};
	bool ok = true;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct option_case *c = &cases[i];
		char text[256];

		snprintf(text, sizeof(text), "sshd: ALL%s\n", c->field);
		struct policy *p = parse(text, NULL);
		const struct rule *r = &p->allow.rules[0];
		bool good = r->n_options == c->n_options && r->options_error == c->error &&
			    r->has_options == (c->field[0] != '\0') && r->options_dynamic == c->dynamic;

		for (size_t k = 0; good && k < c->n_options; k++)
			good = r->options[k].kind == c->kinds[k];
		if (good && c->value0)
			good = r->options[0].value && !strcmp(r->options[0].value, c->value0) &&
			       (!c->number0 || r->options[0].number == c->number0);
		if (good && c->error_msg)
			good = r->options_error_msg && !strncmp(r->options_error_msg, c->error_msg, strlen(c->error_msg));
		if (!good) {
			print_error("%s: got %zu options (first value '%s', number %ld) error %d '%s' dynamic %d, "
				    "want %zu ('%s', %ld) error %d '%s' dynamic %d\n",
				    c->name, r->n_options, r->n_options && r->options[0].value ? r->options[0].value : "-",
				    r->n_options ? r->options[0].number : 0, r->options_error,
				    r->options_error_msg ? r->options_error_msg : "-", r->options_dynamic, c->n_options,
				    c->value0 ? c->value0 : "-", c->number0, c->error, c->error_msg ? c->error_msg : "-",
				    c->dynamic);
			ok = false;
		}
		policy_free(p);
	}
	assert_true(ok);
}

/* test_diagnostics - FILE:LINE:COL: severity: message, for each kind of problem */
static void test_diagnostics(void **state)
{
	struct policy *p = parse("sshd: ALL\nbad line\nsshd: 10.1.2.3/16\n", "ALL: ALL: linger x\nALL: ALL");
	static const char *const want[] = {
		"hosts.allow:2:1: warning: missing \":\" separator",
		"hosts.allow:3:7: warning: net '10.1.2.3' has bits outside mask '16'",
		"hosts.deny:1:11: error: bad linger value: \"x\"",
		"hosts.deny:2:1: error: missing newline at the end of the file",
	};
	bool ok = p->diags.count == sizeof(want) / sizeof(want[0]);
	char buf[512];

	if (!ok)
		print_error("got %zu diagnostics, want %zu\n", p->diags.count, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; ok && i < p->diags.count; i++) {
		diag_format(&p->diags.items[i], buf, sizeof(buf));
		if (strncmp(buf, want[i], strlen(want[i]))) {
			print_error("diag %zu: got '%s', want '%s...'\n", i, buf, want[i]);
			ok = false;
		}
	}
	/* rule ids: allow first, then deny, 1-based */
	if (p->allow.rules[0].id != 1 || p->allow.rules[1].id != 2 || p->deny.rules[0].id != 3 || p->n_rules != 3) {
		print_error("ids: got %u %u %u (n %zu), want 1 2 3 (n 3)\n", p->allow.rules[0].id,
			    p->allow.rules[1].id, p->deny.rules[0].id, p->n_rules);
		ok = false;
	}
	/* a buffer too small still gets a terminated string */
	diag_format(&p->diags.items[0], buf, 8);
	if (strlen(buf) != 7) {
		print_error("small buffer: got length %zu, want 7\n", strlen(buf));
		ok = false;
	}
	policy_free(p);
	assert_true(ok);
}

/* test_load - files on disk: OK, missing, a directory, unreadable (ENOTDIR) */
static void test_load(void **state)
{
	char dir[] = "/tmp/bpfwrap-test-parse.XXXXXX", allow[128], notdir[160];
	struct policy *p;

	assert_non_null(mkdtemp(dir));
	snprintf(allow, sizeof(allow), "%s/hosts.allow", dir);
	FILE *f = fopen(allow, "w");
	assert_non_null(f);
	fputs("sshd: ALL\n", f);
	fclose(f);
	snprintf(notdir, sizeof(notdir), "%s/x", allow);

	static const struct { int which; enum table_state allow_state, deny_state; size_t allow_rules; } want[] = {
		{ 0, TABLE_OK, TABLE_MISSING, 1 },		/* allow file, deny missing */
		{ 1, TABLE_MISSING, TABLE_MISSING, 0 },	/* a directory is empty */
		{ 2, TABLE_OK, TABLE_UNREADABLE, 1 },	/* ENOTDIR is an error */
	};
	bool ok = true;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char missing[160];
		const char *a = allow, *d;

		snprintf(missing, sizeof(missing), "%s/hosts.deny", dir);
		d = missing;
		if (want[i].which == 1)
			a = d = dir;
		else if (want[i].which == 2)
			d = notdir;
		int err = policy_load(&p, a, d);
		if (err) {
			print_error("case %zu: policy_load got %d, want 0\n", i, err);
			ok = false;
			continue;
		}
		if (p->allow.state != want[i].allow_state || p->deny.state != want[i].deny_state ||
		    p->allow.n_rules != want[i].allow_rules) {
			print_error("case %zu: got states %d/%d rules %zu, want %d/%d rules %zu\n", i, p->allow.state,
				    p->deny.state, p->allow.n_rules, want[i].allow_state, want[i].deny_state,
				    want[i].allow_rules);
			ok = false;
		}
		if (want[i].which == 2) {
			struct request req = { .daemon = "ftpd", .client_addr = "1.2.3.4", .server_port = -1 };
			struct decision dec;

			policy_evaluate(p, &req, &dec);
			if (dec.allow || dec.reason != REASON_TABLE_ERROR) {
				print_error("unreadable hosts.deny: got allow=%d reason=%d, want deny REASON_TABLE_ERROR\n",
					    dec.allow, dec.reason);
				ok = false;
			}
		}
		policy_free(p);
	}
	/* NULL paths: both missing */
	assert_int_equal(policy_load(&p, NULL, NULL), 0);
	ok &= p->allow.state == TABLE_MISSING && p->deny.state == TABLE_MISSING;
	policy_free(p);
	unlink(allow);
	rmdir(dir);
	assert_true(ok);
}

/* has_diag - does the policy hold a diagnostic of severity sev on file whose message contains text */
static bool has_diag(const struct policy *p, enum diag_severity sev, const char *file, const char *text)
{
	for (size_t i = 0; i < p->diags.count; i++) {
		const struct diag *d = &p->diags.items[i];

		if (d->severity == sev && d->pos.file && !strcmp(d->pos.file, file) && d->message &&
		    strstr(d->message, text))
			return true;
	}
	return false;
}

/* test_special_files - a FIFO, a directory, the null device as a table or a
 * /path file: nothing blocks (a FIFO with no writer would hang open(); alarm()
 * turns such a hang into a failure), a FIFO is an error naming its type, a
 * directory reads as empty with a warning, /dev/null reads as empty */
static void test_special_files(void **state)
{
	char dir[] = "/tmp/bpfwrap-test-special.XXXXXX", fifo[128], file[128], text[300];
	struct request req = { .daemon = "sshd", .client_addr = "10.0.0.1", .server_port = -1 };
	struct decision dec;
	struct policy *p;
	bool ok = true;

	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	snprintf(file, sizeof(file), "%s/allow", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	alarm(20);

	/* hosts.deny a FIFO: unreadable, every request reaching it denied */
	assert_int_equal(policy_load(&p, NULL, fifo), 0);
	policy_evaluate(p, &req, &dec);
	if (p->deny.state != TABLE_UNREADABLE || dec.allow || dec.reason != REASON_TABLE_ERROR ||
	    !has_diag(p, DIAG_ERROR, fifo, "not a regular file (fifo)")) {
		print_error("FIFO hosts.deny: got state %d allow %d reason %d, want UNREADABLE, a "
			    "REASON_TABLE_ERROR denial and the error \"not a regular file (fifo)\"\n",
			    p->deny.state, dec.allow, dec.reason);
		ok = false;
	}
	policy_free(p);

	/* hosts.allow a FIFO: unreadable, no match there (libwrap's ERR) */
	assert_int_equal(policy_load(&p, fifo, NULL), 0);
	policy_evaluate(p, &req, &dec);
	if (p->allow.state != TABLE_UNREADABLE || !dec.allow ||
	    !has_diag(p, DIAG_ERROR, fifo, "not a regular file (fifo)")) {
		print_error("FIFO hosts.allow: got state %d allow %d, want UNREADABLE, allowed by the "
			    "(missing) hosts.deny, and the error\n", p->allow.state, dec.allow);
		ok = false;
	}
	policy_free(p);

	/* a directory: empty, as libwrap reads it, with a warning */
	assert_int_equal(policy_load(&p, NULL, dir), 0);
	if (p->deny.state != TABLE_MISSING || !has_diag(p, DIAG_WARNING, dir, "is a directory")) {
		print_error("directory hosts.deny: got state %d, want MISSING with the warning "
			    "\"is a directory\"\n", p->deny.state);
		ok = false;
	}
	policy_free(p);

	/* the null device: an empty table, nothing to say */
	assert_int_equal(policy_load(&p, "/dev/null", "/dev/null"), 0);
	if (p->allow.state != TABLE_OK || p->deny.state != TABLE_OK || p->diags.count) {
		print_error("/dev/null tables: got states %d/%d and %zu diagnostics, want OK/OK and none\n",
			    p->allow.state, p->deny.state, p->diags.count);
		ok = false;
	}
	policy_free(p);

	/* a /path file that is a FIFO: never matches, a warning naming it */
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	snprintf(text, sizeof(text), "sshd: %s 10.0.0.9\n", fifo);
	fputs(text, f);
	fclose(f);
	assert_int_equal(policy_load(&p, file, NULL), 0);
	if (p->allow.n_rules != 1 || !has_diag(p, DIAG_WARNING, file, "not a regular file (fifo)")) {
		print_error("/path FIFO: got %zu rules, want 1 and the warning \"not a regular file (fifo)\"\n",
			    p->allow.n_rules);
		ok = false;
	}
	policy_free(p);

	alarm(0);
	unlink(file);
	unlink(fifo);
	rmdir(dir);
	assert_true(ok);
}

/* test_shared_lists - a one-token list written like the rule before's shares
 * its items (memory on fail2ban-size files); anything else gets its own */
static void test_shared_lists(void **state)
{
	static const struct {
		const char *name, *allow, *deny;
		bool deny_second;	/* the second rule is hosts.deny's first */
		bool clients;		/* compare the client lists (else daemons) */
		bool want_shared;
	} cases[] = {
		{ "same daemon ALL", "ALL: 10.0.0.1\nALL: 10.0.0.2\n", NULL, false, false, true },
		{ "same client ALL", "sshd: ALL\nftpd: ALL\n", NULL, false, true, true },
		{ "same daemon name", "sshd: 10.0.0.1\nsshd: 10.0.0.2\n", NULL, false, false, true },
		{ "other column", "ALL: 10.0.0.1\n ALL: 10.0.0.2\n", NULL, false, false, false },
		{ "other case", "ALL: 10.0.0.1\nall: 10.0.0.2\n", NULL, false, false, false },
		{ "two tokens", "sshd ftpd: a\nsshd ftpd: b\n", NULL, false, false, false },
		{ "daemon@host", "sshd@10.0.0.1: a\nsshd@10.0.0.1: b\n", NULL, false, false, false },
		{ "user@host", "sshd: joe@h\nftpd: joe@h\n", NULL, false, true, false },
		{ "/path", "sshd: /nonexistent\nftpd: /nonexistent\n", NULL, false, true, false },
		{ "token with a diagnostic", "sshd: 10.1.2.3/16\nftpd: 10.1.2.3/16\n", NULL, false, true, false },
		{ "token on a continuation line", "sshd: a\nftpd: \\\na\n", NULL, false, true, false },
		{ "across tables", "ALL: a\n", "ALL: b\n", true, false, false },
	};
	int failures = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy *p = parse(cases[i].allow, cases[i].deny);
		const struct rule *r1 = &p->allow.rules[0];
		const struct rule *r2 = cases[i].deny_second ? &p->deny.rules[0] : &p->allow.rules[1];
		const struct pattern_list *l1 = cases[i].clients ? &r1->clients : &r1->daemons;
		const struct pattern_list *l2 = cases[i].clients ? &r2->clients : &r2->daemons;
		bool shared = l1->items == l2->items;

		if (shared != cases[i].want_shared) {
			print_error("%s: shared: got %d, want %d\n", cases[i].name, shared, cases[i].want_shared);
			failures++;
		} else if (!shared && l2->count && l2->items[0].pos.line < r2->pos.line) {
			print_error("%s: own pattern at line %u, before its rule (line %u)\n", cases[i].name,
				    l2->items[0].pos.line, r2->pos.line);
			failures++;
		} else if (shared && (l2->items[0].pos.line >= r2->pos.line || l2->count != 1 ||
				      strcmp(l2->items[0].text, l1->items[0].text))) {
			print_error("%s: shared pattern: got line %u count %zu, want line < %u, count 1\n",
				    cases[i].name, l2->items[0].pos.line, l2->count, r2->pos.line);
			failures++;
		}
		/* the diagnostics of repeated tokens are not lost to sharing */
		if (!strcmp(cases[i].name, "token with a diagnostic") && p->diags.count != 2) {
			print_error("%s: got %zu diagnostics, want 2 (one per line)\n", cases[i].name,
				    p->diags.count);
			failures++;
		}
		policy_free(p);
	}
	assert_int_equal(failures, 0);
}

/* test_file_cycle - /path files that include themselves: an error at the
 * item that closes the cycle, which never matches; everything else does */
static void test_file_cycle(void **state)
{
	char dir[] = "/tmp/test_parse_cycle.XXXXXX", self[128], a[128], b[128], allow[512], text[300];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(self, sizeof(self), "%s/self", dir);
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	const char *files[3][2] = { { self, "%s 10.0.0.1\n" }, { a, "%s\n10.0.0.2\n" }, { b, "10.0.0.3 %s\n" } };
	const char *refs[3] = { self, b, a };
	for (int i = 0; i < 3; i++) {
		snprintf(text, sizeof(text), files[i][1], refs[i]);
		assert_non_null(f = fopen(files[i][0], "w"));
		fputs(text, f);
		fclose(f);
	}
	snprintf(allow, sizeof(allow), "sshd: %s\nftpd: %s\n", self, a);
	struct policy *p = parse(allow, "ALL: ALL\n");
	static const struct {
		const char *daemon, *addr;
		bool allow;
	} queries[] = {
		{ "sshd", "10.0.0.1", true }, { "sshd", "10.0.0.2", false }, { "ftpd", "10.0.0.2", true },
		{ "ftpd", "10.0.0.3", true }, { "ftpd", "10.0.0.1", false },
	};
	int failures = 0;
	size_t errors = 0;

	for (size_t i = 0; i < p->diags.count; i++) {
		const struct diag *d = &p->diags.items[i];
		bool self_cycle = !strcmp(d->pos.file, self) && d->pos.line == 1 && d->pos.col == 1;
		bool ab_cycle = !strcmp(d->pos.file, b) && d->pos.line == 1 && d->pos.col == 10;

		if (d->severity == DIAG_ERROR && strstr(d->message, "includes itself") && (self_cycle || ab_cycle))
			errors++;
	}
	if (errors != 2 || p->diags.count != 2) {
		print_error("got %zu diagnostics, %zu cycle errors; want 2 errors: %s:1:1 and %s:1:10\n",
			    p->diags.count, errors, self, b);
		failures++;
	}
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		struct request req = { .daemon = queries[i].daemon, .client_addr = queries[i].addr,
				       .server_port = -1 };
		struct decision d;

		policy_evaluate(p, &req, &d);
		if (d.allow != queries[i].allow) {
			print_error("%s from %s: got %s, want %s\n", queries[i].daemon, queries[i].addr,
				    d.allow ? "allow" : "deny", queries[i].allow ? "allow" : "deny");
			failures++;
		}
	}
	policy_free(p);
	unlink(self);
	unlink(a);
	unlink(b);
	rmdir(dir);
	assert_int_equal(failures, 0);
}

/* test_large - 300,000 rules: parsed, numbered and matched in order, quickly */
static void test_large(void **state)
{
	const unsigned n = 300000;
	size_t size = (size_t)n * 32, len = 0;
	char *allow = malloc(size);
	struct timespec t0, t1;

	assert_non_null(allow);
	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(allow + len, size - len, "%s: 10.%u.%u.%u/32\n", i % 2 ? "ALL" : "sshd",
					i >> 16 & 255, i >> 8 & 255, i & 255);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct policy *p = parse(allow, "ALL: ALL\n");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(allow);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (p->allow.n_rules != n || p->n_rules != n + 1 || p->deny.rules[0].id != n + 1) {
		print_error("got %zu + %zu rules (deny id %u), want %u + 1\n", p->allow.n_rules,
			    p->deny.n_rules, p->deny.n_rules ? p->deny.rules[0].id : 0, n);
		fail();
	}
	const struct rule *last = &p->allow.rules[n - 1];
	if (last->pos.line != n || strcmp(last->text, "ALL: 10.4.147.223/32") ||
	    strcmp(last->clients.items[0].text, "10.4.147.223/32") || !last->clients.items[0].valid) {
		print_error("last rule: got line %u '%s', want line %u 'ALL: 10.4.147.223/32'\n",
			    last->pos.line, last->text, n);
		fail();
	}
	struct request req = { .daemon = "sshd", .client_addr = "10.4.147.222", .server_port = -1 };
	struct decision d;
	policy_evaluate(p, &req, &d);
	if (!d.allow || !d.rule || d.rule->pos.line != n - 1) {
		print_error("sshd from 10.4.147.222: got allow %d line %u, want allow by line %u\n", d.allow,
			    d.rule ? d.rule->pos.line : 0, n - 1);
		fail();
	}
	policy_free(p);
	if (secs > 10) {
		print_error("parse of %u rules: got %.1f s, want < 10 s\n", n, secs);
		fail();
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_netmask),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_diagnostics),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_special_files),
		cmocka_unit_test(test_shared_lists),
		cmocka_unit_test(test_file_cycle),
		cmocka_unit_test(test_large),
	};

	return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
