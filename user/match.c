/*
 * match.c - `bpfwrap match`, tcpdmatch for bpfwrap: say what hosts.allow and
 * hosts.deny decide for one client (with the rule that decides, its options,
 * and `access: granted|denied`), or for a batch of queries on stdin (one
 * "allow"/"deny" line each, the format the libwrap oracle speaks).
 *
 * The decision itself comes from a match_engine (match.h): by default the
 * reference evaluator.
 *
 * Errors: reported once, to stderr. Exit 0 granted (batch: all answered),
 * 1 denied (or an engine/system error), 2 usage errors and malformed batch
 * lines.
 */
/* policy.h has its own `struct option` (hosts_options): getopt's is renamed
 * here, before anything else can include <getopt.h>. */
#define option getopt_option
#include <getopt.h>
#undef option

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "cli.h"
#include "match.h"
#include "policy.h"

#define BATCH_OUT_BUF 65536

/* evaluator_decide - match_engine callback for the reference evaluator */
static int evaluator_decide(void *ctx, const struct request *req, struct decision *out)
{
	policy_evaluate(ctx, req, out);
	return 0;
}

/* match_engine_evaluator - the reference evaluator on policy */
struct match_engine match_engine_evaluator(const struct policy *policy)
{
	return (struct match_engine){ evaluator_decide, (void *)policy, "evaluator" };
}

/* out_flush - write the whole buffer to fd; 0 or -errno */
static int out_flush(int fd, char *buf, size_t *len)
{
	size_t off = 0;

	while (off < *len) {
		ssize_t n = write(fd, buf + off, *len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	*len = 0;
	return 0;
}

/* split_fields - cut a query line at blanks into up to max fields; returns the count (max + 1 if more) */
static size_t split_fields(char *line, char **field, size_t max)
{
	size_t n = 0;
	char *p = line;

	for (;;) {
		p += strspn(p, " \t\r\n");
		if (!*p)
			return n;
		if (n == max)
			return max + 1;
		field[n++] = p;
		p += strcspn(p, " \t\r\n");
		if (*p)
			*p++ = '\0';
	}
}

/* dash_null - "-" means not supplied */
static const char *dash_null(const char *s)
{
	return strcmp(s, "-") ? s : NULL;
}

/* match_batch - decide a batch of queries from in; see match.h */
int match_batch(FILE *in, const char *in_name, int out_fd, const struct match_engine *engine)
{
	char *line = NULL, *out = malloc(BATCH_OUT_BUF);
	size_t cap = 0, len = 0;
	unsigned long lineno = 0;
	int rc = 0, err;

	if (!out) {
		fprintf(stderr, "bpfwrap match: out of memory\n");
		return 1;
	}
	while (getline(&line, &cap, in) >= 0) {
		char *f[5];
		struct decision d;

		lineno++;
		if (split_fields(line, f, 5) != 5) {
			fprintf(stderr, "bpfwrap match: %s:%lu: want 5 fields (DAEMON CLIENT_ADDR CLIENT_NAME USER SERVER_ADDR, - for none)\n",
				in_name, lineno);
			rc = 2;
			break;
		}
		struct request req = {
			.daemon = dash_null(f[0]),
			.client_addr = dash_null(f[1]),
			.client_name = dash_null(f[2]),
			.user = dash_null(f[3]),
			.server_addr = dash_null(f[4]),
			.server_port = -1,
		};
		err = engine->decide(engine->ctx, &req, &d);
		if (err) {
			fprintf(stderr, "bpfwrap match: %s:%lu: %s cannot decide: %s\n", in_name, lineno,
				engine->name, strerror(-err));
			rc = 1;
			break;
		}
		if (len + 8 > BATCH_OUT_BUF && (err = out_flush(out_fd, out, &len))) {
			fprintf(stderr, "bpfwrap match: write: %s\n", strerror(-err));
			rc = 1;
			break;
		}
		memcpy(out + len, d.allow ? "allow\n" : "deny\n", d.allow ? 6 : 5);
		len += d.allow ? 6 : 5;
	}
	if (!rc && ferror(in)) {
		fprintf(stderr, "bpfwrap match: reading %s: %s\n", in_name, strerror(errno));
		rc = 1;
	}
	if ((err = out_flush(out_fd, out, &len)) && !rc) {
		fprintf(stderr, "bpfwrap match: write: %s\n", strerror(-err));
		rc = 1;
	}
	free(out);
	free(line);
	return rc;
}

/* ---- one query, like tcpdmatch ---- */

/* is_address - CLIENT/SERVER written as a numeric IPv4 or IPv6 address */
static bool is_address(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

/* reverse_name - tcpd's view of a client address: verified name, "paranoid" or "unknown" */
static void reverse_name(const char *addr, char *name, size_t size)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL, *fwd = NULL;
	char host[NI_MAXHOST];

	snprintf(name, size, "unknown");
	if (getaddrinfo(addr, NULL, &hints, &res) || !res)
		return;
	if (getnameinfo(res->ai_addr, res->ai_addrlen, host, sizeof(host), NULL, 0, NI_NAMEREQD)) {
		freeaddrinfo(res);
		return;
	}
	/* double-reverse check: the name must map back to this address */
	struct addrinfo fh = { .ai_family = res->ai_family, .ai_socktype = SOCK_STREAM };
	bool ok = false;
	if (!getaddrinfo(host, NULL, &fh, &fwd)) {
		for (struct addrinfo *a = fwd; a && !ok; a = a->ai_next) {
			char txt[NI_MAXHOST];

			if (!getnameinfo(a->ai_addr, a->ai_addrlen, txt, sizeof(txt), NULL, 0, NI_NUMERICHOST)) {
				char want[NI_MAXHOST];

				if (!getnameinfo(res->ai_addr, res->ai_addrlen, want, sizeof(want), NULL, 0,
						 NI_NUMERICHOST))
					ok = !strcmp(txt, want);
			}
		}
		freeaddrinfo(fwd);
	}
	freeaddrinfo(res);
	snprintf(name, size, "%s", ok ? host : "paranoid");
}

/* print_rule_options - the matched rule's options, one line each */
static void print_rule_options(const struct rule *r)
{
	static const char *const names[] = {
		[OPT_ALLOW] = "allow", [OPT_DENY] = "deny", [OPT_SPAWN] = "spawn", [OPT_TWIST] = "twist",
		[OPT_BANNERS] = "banners", [OPT_SEVERITY] = "severity", [OPT_KEEPALIVE] = "keepalive",
		[OPT_LINGER] = "linger", [OPT_RFC931] = "rfc931", [OPT_NICE] = "nice", [OPT_UMASK] = "umask",
		[OPT_USER] = "user", [OPT_GROUP] = "group", [OPT_SETENV] = "setenv", [OPT_ACLEXEC] = "aclexec",
	};

	for (size_t i = 0; i < r->n_options; i++)
		printf("option:   %s%s%s\n", names[r->options[i].kind], r->options[i].value ? " " : "",
		       r->options[i].value ? r->options[i].value : "");
	if (r->options_error)
		printf("option:   error: %s (libwrap denies)\n", r->options_error_msg);
}

/* print_decision - tcpdmatch's report for one request */
static void print_decision(const struct request *req, const struct decision *d)
{
	if (req->client_name)
		printf("client:   hostname %s\n", req->client_name);
	printf("client:   address  %s\n", req->client_addr ? req->client_addr : "unknown");
	if (req->user)
		printf("client:   username %s\n", req->user);
	if (req->server_name)
		printf("server:   hostname %s\n", req->server_name);
	if (req->server_addr)
		printf("server:   address  %s\n", req->server_addr);
	printf("server:   process  %s\n", req->daemon);
	if (d->rule) {
		int n = (int)strcspn(d->rule->text, "\r");

		printf("matched:  %s line %u\n", d->rule->pos.file, d->rule->pos.line);
		printf("rule:     %.*s\n", n, d->rule->text);
		print_rule_options(d->rule);
	} else if (d->reason == REASON_TABLE_ERROR) {
		if (d->table->cut_off)
			printf("matched:  %s line %u: error, libwrap ignores it and the rest of the file\n",
			       d->table->path, d->table->cut_pos.line);
		else
			printf("matched:  %s: cannot be read\n", d->table->path);
	} else {
		printf("matched:  no rule (default)\n");
	}
	printf("access:   %s\n", d->allow ? "granted" : "denied");
}

/* usage - the help text */
static void usage(FILE *out)
{
	fprintf(out,
		"usage: bpfwrap match [OPTIONS] DAEMON[@SERVER] [USER@]CLIENT\n"
		"       bpfwrap match --batch [--allow FILE] [--deny FILE] < QUERIES\n"
		"\n"
		"Decide like tcpdmatch(8): which rule of hosts.allow/hosts.deny matches, its\n"
		"options, and whether access is granted. CLIENT is an address or a host name\n"
		"(a name is resolved, and each address decided; an address gets a reverse\n"
		"lookup verified by a forward one, a mismatch is \"paranoid\").\n"
		"\n"
		"  --allow FILE   hosts.allow to read (default /etc/hosts.allow)\n"
		"  --deny FILE    hosts.deny to read (default /etc/hosts.deny)\n"
		"  -d             use hosts.allow and hosts.deny in the current directory\n"
		"  --no-dns       no DNS: the client name is unknown (or --name)\n"
		"  --name NAME    the client's host name, without DNS\n"
		"  --batch        read queries from stdin, one per line:\n"
		"                   DAEMON CLIENT_ADDR CLIENT_NAME USER SERVER_ADDR\n"
		"                 (blank-separated, - = not supplied); print one line\n"
		"                 `allow` or `deny` per query. No DNS.\n"
		"  -h, --help     this text\n"
		"\n"
		"Exit status: 0 access granted (batch: every query answered), 1 access\n"
		"denied for at least one address (or an error), 2 usage error or a\n"
		"malformed batch line.\n");
}

/* decide_one - decide and print one request; returns 0 granted, 1 denied */
static int decide_one(const struct match_engine *engine, const struct request *req, bool *first)
{
	struct decision d;
	int err = engine->decide(engine->ctx, req, &d);

	if (!*first)
		printf("\n");
	*first = false;
	if (err) {
		fprintf(stderr, "bpfwrap match: %s cannot decide: %s\n", engine->name, strerror(-err));
		return 1;
	}
	print_decision(req, &d);
	return d.allow ? 0 : 1;
}

/* match_client - resolve CLIENT as tcpdmatch does and decide each address */
static int match_client(const struct match_engine *engine, struct request *req, const char *client,
			bool no_dns, const char *name)
{
	bool first = true;
	char rname[NI_MAXHOST];

	if (!strcasecmp(client, "unknown") || !strcasecmp(client, "paranoid")) {
		req->client_addr = NULL;
		req->client_name = name ? name : client;
		return decide_one(engine, req, &first);
	}
	if (is_address(client)) {
		req->client_addr = client;
		if (name) {
			req->client_name = name;
		} else if (!no_dns) {
			reverse_name(client, rname, sizeof(rname));
			req->client_name = rname;
		}
		return decide_one(engine, req, &first);
	}
	/* a host name: every address it has, each decided with that name */
	req->client_name = name ? name : client;
	if (no_dns) {
		req->client_addr = NULL;
		return decide_one(engine, req, &first);
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res = NULL;
	int gerr = getaddrinfo(client, NULL, &hints, &res);
	if (gerr) {
		fprintf(stderr, "bpfwrap match: %s: %s\n", client, gai_strerror(gerr));
		return 1;
	}
	int rc = 0;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		char txt[NI_MAXHOST];
		bool dup = false;

		if (getnameinfo(a->ai_addr, a->ai_addrlen, txt, sizeof(txt), NULL, 0, NI_NUMERICHOST))
			continue;
		for (struct addrinfo *b = res; b != a && !dup; b = b->ai_next)
			dup = b->ai_addrlen == a->ai_addrlen && !memcmp(b->ai_addr, a->ai_addr, a->ai_addrlen);
		if (dup)
			continue;
		req->client_addr = txt;
		rc |= decide_one(engine, req, &first);
	}
	freeaddrinfo(res);
	return rc;
}

/* cmd_match - tcpdmatch: decide one query or a batch (match.c) */
int cmd_match(int argc, char **argv)
{
	static const struct getopt_option longopts[] = {
		{ "allow", required_argument, NULL, 'a' },
		{ "deny", required_argument, NULL, 'D' },
		{ "no-dns", no_argument, NULL, 'n' },
		{ "name", required_argument, NULL, 'N' },
		{ "batch", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *allow = "/etc/hosts.allow", *deny = "/etc/hosts.deny", *name = NULL;
	bool batch = false, no_dns = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "dh", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': allow = optarg; break;
		case 'D': deny = optarg; break;
		case 'd': allow = "hosts.allow"; deny = "hosts.deny"; break;
		case 'n': no_dns = true; break;
		case 'N': name = optarg; break;
		case 'b': batch = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (batch ? optind != argc : argc - optind != 2) {
		usage(stderr);
		return 2;
	}

	struct policy *policy;
	int err = policy_load(&policy, allow, deny);
	if (err) {
		fprintf(stderr, "bpfwrap match: cannot load %s / %s: %s\n", allow, deny, strerror(-err));
		return 1;
	}
	struct match_engine engine = match_engine_evaluator(policy);
	int rc;

	if (batch) {
		rc = match_batch(stdin, "stdin", STDOUT_FILENO, &engine);
		policy_free(policy);
		return rc;
	}
	if (!batch) {
		char buf[512];

		for (size_t i = 0; i < policy->diags.count; i++)
			fprintf(stderr, "%s\n", diag_format(&policy->diags.items[i], buf, sizeof(buf)));
	}

	char *daemon = strdup(argv[optind]), *client = strdup(argv[optind + 1]);
	if (!daemon || !client) {
		fprintf(stderr, "bpfwrap match: out of memory\n");
		free(daemon);
		free(client);
		policy_free(policy);
		return 1;
	}
	struct request req = { .daemon = daemon, .server_port = -1 };
	char *at = strchr(daemon, '@');
	if (at) {
		*at++ = '\0';
		if (is_address(at))
			req.server_addr = at;
		else
			req.server_name = at;
	}
	char *host = client;
	at = strchr(client, '@');
	if (at) {
		*at++ = '\0';
		req.user = client;
		host = at;
	}
	rc = match_client(&engine, &req, host, no_dns, name);
	fflush(stdout);
	free(daemon);
	free(client);
	policy_free(policy);
	return rc;
}
