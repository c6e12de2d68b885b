/*
 * match.c - `bpfwrap match`, tcpdmatch for bpfwrap: say what hosts.allow and
 * hosts.deny decide for one client (with the rule that decides, its options,
 * and `access: granted|denied`), or for a batch of queries on stdin (one
 * "allow"/"deny" line each, the format the libwrap oracle speaks).
 *
 * The decision itself comes from a match_engine (match.h): by default the
 * reference evaluator; with --kernel the BPF program itself (kernel_match.h,
 * BPF_PROG_TEST_RUN of the never-attached twin on a crafted SYN) against
 * maps the real compiler and loader filled in a private, unpinned loader
 * instance. The kernel answers what it decides alone (ALLOW/DENY entries);
 * an ASK entry is answered as the agent would, by the evaluator with the
 * query's name, user and server; a client address the kernel could never
 * see in a packet (unknown, garbage, or not in the spelling tcpd would get
 * from the socket) is answered by the evaluator too (docs/match.md).
 *
 * Errors: reported once, to stderr. Exit 0 granted (batch: all answered),
 * 1 denied (or an engine/system error), 2 usage errors and malformed batch
 * lines.
 */
#include <getopt.h>

#include <errno.h>
#include <netdb.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "cli.h"
#include "compile.h"
#include "kernel_match.h"
#include "loader.h"
#include "match.h"
#include "policy.h"
#include "util.h"

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
	return (struct match_engine){ evaluator_decide, NULL, (void *)policy, "evaluator" };
}

/* ---- the kernel as the engine (--kernel) ---- */

/* Who answered a query in kernel mode. */
enum kernel_decider {
	KD_KERNEL,	/* an ALLOW/DENY entry: the kernel alone */
	KD_ASK,		/* an ASK entry: the evaluator with name, user, server, as the agent */
	KD_NO_PACKET,	/* no client address the kernel could see: the evaluator */
};

struct kernel_stats {
	unsigned long queries;
	unsigned long kernel, kernel_allow, kernel_deny;	/* decided by the kernel alone */
	unsigned long ask, ask_approx;		/* ASK entries (approx: BPFWRAP_F_APPROX) */
	unsigned long no_packet;		/* answered by the evaluator without the kernel */
	/* cross-checks against the evaluator */
	unsigned long verdict_diff;	/* kernel ALLOW/DENY != evaluator */
	unsigned long rule_diff;	/* kernel rule id != evaluator's (name, user, server
					 * unknown; the daemon has a table of its own) */
	unsigned long vif_diff;		/* exact verdict_if_unknown != evaluator (name, user, server unknown) */
};

struct kernel_engine {
	const struct policy *policy;
	struct compiled_policy *cp;
	struct loader *ld;
	struct kernel_match *km;
	struct kernel_stats st;
	enum kernel_decider last;	/* how the last query was answered */
	struct km_result last_r;	/* the kernel's result for it (KD_KERNEL, KD_ASK) */
};

/* packet_client - the packet whose source tcpd would print as text; false if none */
static bool packet_client(const char *text, struct km_query *q)
{
	struct in6_addr a;
	char back[INET6_ADDRSTRLEN];

	/* Only the spelling tcpd gets from the socket (inet_ntop's) can come
	 * from a packet; "010.0.0.1", "2001:DB8::1" or "::ffff:a01:203" are
	 * texts libwrap may decide differently, and no kernel ever sees them. */
	if (!text)
		return false;
	if (inet_pton(AF_INET, text, &a) == 1) {
		if (!inet_ntop(AF_INET, &a, back, sizeof(back)) || strcmp(back, text))
			return false;
		q->family = AF_INET;
		q->sock_family = AF_INET;
		memcpy(&q->client, &a, 4);
		return true;
	}
	if (inet_pton(AF_INET6, text, &a) != 1 || !inet_ntop(AF_INET6, &a, back, sizeof(back)) ||
	    strcmp(back, text))
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&a)) {
		/* An IPv4 client of a dual-stack socket: tcpd sees ::ffff:a.b.c.d. */
		q->family = AF_INET;
		q->sock_family = AF_INET6;
		memcpy(&q->client, &a.s6_addr[12], 4);
	} else {
		q->family = AF_INET6;
		q->sock_family = AF_INET6;
		q->client = a;
	}
	return true;
}

/* packet_server - put the query's server address into the packet if its family fits */
static void packet_server(const char *text, struct km_query *q)
{
	struct in6_addr a;

	if (!text)
		return;
	if (q->family == AF_INET && inet_pton(AF_INET, text, &a) == 1) {
		memcpy(&q->server, &a, 4);
		q->has_server = true;
	} else if (inet_pton(AF_INET6, text, &a) == 1) {
		if (q->family == AF_INET && IN6_IS_ADDR_V4MAPPED(&a)) {
			memcpy(&q->server, &a.s6_addr[12], 4);
			q->has_server = true;
		} else if (q->family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&a)) {
			q->server = a;
			q->has_server = true;
		}
	}
}

/* decision_rule_id - the rule id of an evaluator decision (0: none) */
static uint32_t decision_rule_id(const struct decision *d)
{
	return d->rule ? d->rule->id : 0;
}

/* kernel_decide - match_engine callback: the kernel program, the evaluator where it asks */
static int kernel_decide(void *ctx, const struct request *req, struct decision *out)
{
	struct kernel_engine *ke = ctx;
	struct km_query q;
	struct km_result *r = &ke->last_r;
	struct decision unk;
	bool all_unknown = !req->client_name && !req->user && !req->server_addr && !req->server_name;
	int err;

	memset(&q, 0, sizeof(q));
	memset(r, 0, sizeof(*r));
	ke->st.queries++;
	/* The kernel always knows the socket's daemon and the client's address. */
	if (!req->daemon || !packet_client(req->client_addr, &q)) {
		ke->st.no_packet++;
		ke->last = KD_NO_PACKET;
		policy_evaluate(ke->policy, req, out);
		return 0;
	}
	/* Longer names have no table: they are decided in OTHER (compile.h). */
	q.daemon = strlen(req->daemon) < BPFWRAP_DAEMON_NAME_MAX ? req->daemon : NULL;
	packet_server(req->server_addr, &q);
	err = kernel_match_query(ke->km, &q, r);
	if (err)
		return err;
	policy_evaluate(ke->policy, req, out);
	if (r->reason == BPFWRAP_R_POLICY &&
	    (r->entry_verdict == BPFWRAP_ALLOW || r->entry_verdict == BPFWRAP_DENY)) {
		bool allow = r->final == BPFWRAP_ALLOW;

		ke->last = KD_KERNEL;
		ke->st.kernel++;
		if (allow)
			ke->st.kernel_allow++;
		else
			ke->st.kernel_deny++;
		if (allow != out->allow)
			ke->st.verdict_diff++;
		/* With name, user and server unknown a daemon's own table names
		 * the rule libwrap matches; OTHER stands for many daemons, and
		 * may name a rule of equal effect that matches only some. */
		if (all_unknown && r->daemon_id != BPFWRAP_DAEMON_OTHER &&
		    r->rule_id != decision_rule_id(out))
			ke->st.rule_diff++;
		/* The verdict is the kernel's. The rule shown is the evaluator's:
		 * rules of equal effect are interchangeable in the tables (the
		 * kernel keeps the one that decides with the name unknown). */
		out->allow = allow;
		return 0;
	}
	if (r->entry_verdict == BPFWRAP_ASK) {
		/* Held by the kernel; the agent decides with the evaluator. */
		ke->last = KD_ASK;
		ke->st.ask++;
		if (r->flags & BPFWRAP_F_APPROX) {
			ke->st.ask_approx++;
		} else {
			struct request u = { .daemon = req->daemon, .client_addr = req->client_addr,
					     .server_port = -1 };

			policy_evaluate(ke->policy, &u, &unk);
			if (unk.allow != (r->verdict_if_unknown == BPFWRAP_ALLOW))
				ke->st.vif_diff++;
		}
		return 0;
	}
	/* No entry, no maps, malformed: the compiled tables broke their contract. */
	return -ENODATA;
}

/* kernel_how - match_engine callback: how the last query was decided (--verbose) */
static void kernel_how(void *ctx, char *buf, size_t size)
{
	const struct kernel_engine *ke = ctx;
	const struct km_result *r = &ke->last_r;
	const struct rule *rule = NULL;

	if (ke->last == KD_NO_PACKET) {
		snprintf(buf, size, "evaluator (no client address the kernel could see in a packet)");
		return;
	}
	if (ke->last == KD_ASK) {
		snprintf(buf, size, "kernel ASK -> agent (evaluator); with no agent the kernel %s%s",
			 r->verdict_if_unknown == BPFWRAP_ALLOW ? "allows" : "denies",
			 r->flags & BPFWRAP_F_APPROX ? " (fail closed)" : "");
		return;
	}
	if (r->rule_id >= 1 && r->rule_id <= ke->cp->n_rules)
		rule = ke->cp->rules[r->rule_id - 1].rule;
	if (rule)
		snprintf(buf, size, "kernel (rule %s:%u, daemon table %u)", rule->pos.file, rule->pos.line,
			 r->daemon_id);
	else
		snprintf(buf, size, "kernel (%s, daemon table %u)",
			 r->flags & BPFWRAP_F_DEFAULT ? "no rule: default" : "table error", r->daemon_id);
}

/* kernel_engine_close - release what kernel_engine_open made (nothing is pinned) */
static void kernel_engine_close(struct kernel_engine *ke)
{
	kernel_match_free(ke->km);
	loader_close(ke->ld);
	compiled_policy_free(ke->cp);
	memset(ke, 0, sizeof(*ke));
}

/* kernel_engine_open - compile, load into a private unpinned loader; reports errors once */
static int kernel_engine_open(struct kernel_engine *ke, const struct policy *policy,
			      const char *const *daemons, size_t n_daemons)
{
	struct loader_opts lo = { .pin_dir = NULL };
	int err;

	memset(ke, 0, sizeof(*ke));
	ke->policy = policy;
	if (geteuid() != 0) {
		fprintf(stderr, "bpfwrap match: --kernel needs root: it loads the BPF program into the kernel\n");
		return -EPERM;
	}
	err = compile_policy(policy, daemons, n_daemons, &ke->cp);
	if (err) {
		fprintf(stderr, "bpfwrap match: cannot compile the policy: %s\n", strerror(-err));
		return err;
	}
	/* No pin directory: maps and programs live only as long as this
	 * process's file descriptors, so nothing outlives us, whatever the exit
	 * (error, signal, kill -9). Nothing is attached anywhere. */
	err = loader_open(&lo, &ke->ld);
	if (err) {
		fprintf(stderr, "bpfwrap match: cannot load the BPF program: %s\n", strerror(-err));
		goto fail;
	}
	err = loader_load_policy(ke->ld, ke->cp);
	if (err) {
		fprintf(stderr, "bpfwrap match: cannot load the policy into the kernel: %s\n", strerror(-err));
		goto fail;
	}
	err = kernel_match_new(ke->ld, &ke->km);
	if (err) {
		fprintf(stderr, "bpfwrap match: cannot prepare kernel queries: %s\n", strerror(-err));
		goto fail;
	}
	return 0;
fail:
	kernel_engine_close(ke);
	return err;
}

/* kernel_print_stats - the --stats line on stderr */
static void kernel_print_stats(const struct kernel_engine *ke, double seconds)
{
	const struct kernel_stats *s = &ke->st;

	fprintf(stderr,
		"bpfwrap match: kernel stats: queries=%lu kernel=%lu kernel_allow=%lu kernel_deny=%lu "
		"ask=%lu ask_approx=%lu no_packet=%lu verdict_diff=%lu rule_diff=%lu vif_diff=%lu "
		"v4_entries=%zu v6_entries=%zu ask_entries=%zu daemons=%zu seconds=%.3f\n",
		s->queries, s->kernel, s->kernel_allow, s->kernel_deny, s->ask, s->ask_approx,
		s->no_packet, s->verdict_diff, s->rule_diff, s->vif_diff, ke->cp->n_v4, ke->cp->n_v6,
		ke->cp->n_ask, ke->cp->n_daemons, seconds);
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
		[ROPT_ALLOW] = "allow", [ROPT_DENY] = "deny", [ROPT_SPAWN] = "spawn", [ROPT_TWIST] = "twist",
		[ROPT_BANNERS] = "banners", [ROPT_SEVERITY] = "severity", [ROPT_KEEPALIVE] = "keepalive",
		[ROPT_LINGER] = "linger", [ROPT_RFC931] = "rfc931", [ROPT_NICE] = "nice", [ROPT_UMASK] = "umask",
		[ROPT_USER] = "user", [ROPT_GROUP] = "group", [ROPT_SETENV] = "setenv", [ROPT_ACLEXEC] = "aclexec",
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
		"       bpfwrap match --batch [--kernel] [--allow FILE] [--deny FILE] < QUERIES\n"
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
		"  --kernel       let the BPF program decide (BPF_PROG_TEST_RUN on a crafted\n"
		"                 SYN, maps filled by the real compiler and loader, nothing\n"
		"                 attached or pinned; needs root). The kernel answers what it\n"
		"                 decides alone; what it would ask the agent about, and\n"
		"                 clients it could never see in a packet, the evaluator does.\n"
		"  --policy-daemons-only  with --kernel: tables only for the daemons the\n"
		"                 policy names (others use the OTHER table, as a daemon named\n"
		"                 by its process is); default: the queries' daemons get\n"
		"                 their own, as cgroup-named daemons do\n"
		"  --stats        with --kernel: counts on stderr (decided by the kernel\n"
		"                 alone, asked, not a packet; cross-checks with the evaluator)\n"
		"  -v, --verbose  with --kernel: say who decided (\"decided by:\" line)\n"
		"  -h, --help     this text\n"
		"\n"
		"Exit status: 0 access granted (batch: every query answered), 1 access\n"
		"denied for at least one address (or an error), 2 usage error or a\n"
		"malformed batch line.\n");
}

/* decide_one - decide and print one request; returns 0 granted, 1 denied */
static int decide_one(const struct match_engine *engine, const struct request *req, bool *first,
		      bool verbose)
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
	if (verbose && engine->how) {
		char how[256];

		engine->how(engine->ctx, how, sizeof(how));
		printf("decided by: %s\n", how);
	}
	return d.allow ? 0 : 1;
}

/* match_client - resolve CLIENT as tcpdmatch does and decide each address */
static int match_client(const struct match_engine *engine, struct request *req, const char *client,
			bool no_dns, const char *name, bool verbose)
{
	bool first = true;
	char rname[NI_MAXHOST];

	if (!strcasecmp(client, "unknown") || !strcasecmp(client, "paranoid")) {
		req->client_addr = NULL;
		req->client_name = name ? name : client;
		return decide_one(engine, req, &first, verbose);
	}
	if (is_address(client)) {
		req->client_addr = client;
		if (name) {
			req->client_name = name;
		} else if (!no_dns) {
			reverse_name(client, rname, sizeof(rname));
			req->client_name = rname;
		}
		return decide_one(engine, req, &first, verbose);
	}
	/* a host name: every address it has, each decided with that name */
	req->client_name = name ? name : client;
	if (no_dns) {
		req->client_addr = NULL;
		return decide_one(engine, req, &first, verbose);
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
		rc |= decide_one(engine, req, &first, verbose);
	}
	freeaddrinfo(res);
	return rc;
}

/* read_stream - all of in into a new buffer; 0 or -errno */
static int read_stream(FILE *in, char **buf, size_t *len)
{
	FILE *m = open_memstream(buf, len);
	char chunk[65536];
	size_t n;

	if (!m)
		return -errno;
	while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0) {
		if (fwrite(chunk, 1, n, m) != n) {
			fclose(m);
			free(*buf);
			return -ENOMEM;
		}
	}
	int err = ferror(in) ? -EIO : 0;
	if (fclose(m) && !err)
		err = -ENOMEM;
	if (err)
		free(*buf);
	return err;
}

/* cmp_name - qsort: daemon names, case-insensitively (libwrap's comparison) */
static int cmp_name(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

/* free_names - release batch_daemons()'s list */
static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* batch_daemons - the distinct daemon names of a batch (first fields), for
 * compile_policy's extra daemons; 0 or -ENOMEM */
static int batch_daemons(const char *text, size_t len, char ***out, size_t *n_out)
{
	char **names = NULL;
	size_t n = 0, cap = 0, k = 0;
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		size_t w;

		p += strspn(p, " \t\r");
		w = strcspn(p, " \t\r\n");
		if (p + w > eol)
			w = (size_t)(eol - p);
		/* "-" is no daemon; names the kernel cannot key go to OTHER anyway */
		if (w && w < BPFWRAP_DAEMON_NAME_MAX && !(w == 1 && *p == '-')) {
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				char **nn = realloc(names, nc * sizeof(*nn));

				if (!nn)
					goto nomem;
				names = nn;
				cap = nc;
			}
			if (!(names[n] = strndup(p, w)))
				goto nomem;
			n++;
		}
		p = eol + 1;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_name);
	for (size_t i = 0; i < n; i++) {
		if (k && !strcasecmp(names[k - 1], names[i]))
			free(names[i]);
		else
			names[k++] = names[i];
	}
	*out = names;
	*n_out = k;
	return 0;
nomem:
	free_names(names, n);
	return -ENOMEM;
}

/* now_seconds - CLOCK_MONOTONIC in seconds */
static double now_seconds(void)
{
	return (double)monotonic_ns() / NSEC_PER_SEC;
}

/* run_batch - --batch: evaluator or kernel over stdin; the exit status */
static int run_batch(const struct policy *policy, bool kernel, bool all_daemons, bool stats)
{
	struct match_engine engine = match_engine_evaluator(policy);
	struct kernel_engine ke;
	char *text = NULL, **names = NULL;
	size_t len = 0, n_names = 0;
	FILE *in;
	int rc, err;

	if (!kernel)
		return match_batch(stdin, "stdin", STDOUT_FILENO, &engine);

	/* The queries' daemons get tables of their own, as cgroup-named
	 * daemons do under `run`: so the whole batch is read first. */
	err = read_stream(stdin, &text, &len);
	if (err) {
		fprintf(stderr, "bpfwrap match: reading stdin: %s\n", strerror(-err));
		return 1;
	}
	if (all_daemons && (err = batch_daemons(text, len, &names, &n_names))) {
		fprintf(stderr, "bpfwrap match: %s\n", strerror(-err));
		free(text);
		return 1;
	}
	err = kernel_engine_open(&ke, policy, (const char *const *)names, n_names);
	free_names(names, n_names);
	if (err) {
		free(text);
		return 1;
	}
	engine = (struct match_engine){ kernel_decide, kernel_how, &ke, "kernel" };
	in = fmemopen(text, len ? len : 1, "r");
	if (!in) {
		fprintf(stderr, "bpfwrap match: %s\n", strerror(errno));
		kernel_engine_close(&ke);
		free(text);
		return 1;
	}
	double t0 = now_seconds();
	rc = match_batch(len ? in : stdin, "stdin", STDOUT_FILENO, &engine);
	if (stats)
		kernel_print_stats(&ke, now_seconds() - t0);
	fclose(in);
	kernel_engine_close(&ke);
	free(text);
	return rc;
}

/* cmd_match - tcpdmatch: decide one query or a batch (match.c) */
int cmd_match(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "allow", required_argument, NULL, 'a' },
		{ "deny", required_argument, NULL, 'D' },
		{ "no-dns", no_argument, NULL, 'n' },
		{ "name", required_argument, NULL, 'N' },
		{ "batch", no_argument, NULL, 'b' },
		{ "kernel", no_argument, NULL, 'k' },
		{ "policy-daemons-only", no_argument, NULL, 'P' },
		{ "stats", no_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *allow = "/etc/hosts.allow", *deny = "/etc/hosts.deny", *name = NULL;
	bool batch = false, no_dns = false, kernel = false, all_daemons = true, stats = false,
	     verbose = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "dhv", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': allow = optarg; break;
		case 'D': deny = optarg; break;
		case 'd': allow = "hosts.allow"; deny = "hosts.deny"; break;
		case 'n': no_dns = true; break;
		case 'N': name = optarg; break;
		case 'b': batch = true; break;
		case 'k': kernel = true; break;
		case 'P': all_daemons = false; break;
		case 's': stats = true; break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (batch ? optind != argc : argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if ((stats || !all_daemons) && !kernel) {
		fprintf(stderr, "bpfwrap match: --stats and --policy-daemons-only need --kernel\n");
		return 2;
	}

	struct policy *policy;
	int err = policy_load(&policy, allow, deny);
	if (err) {
		fprintf(stderr, "bpfwrap match: cannot load %s / %s: %s\n", allow, deny, strerror(-err));
		return 1;
	}
	int rc;

	if (batch) {
		rc = run_batch(policy, kernel, all_daemons, stats);
		policy_free(policy);
		return rc;
	}
	char buf[512];

	for (size_t i = 0; i < policy->diags.count; i++)
		fprintf(stderr, "%s\n", diag_format(&policy->diags.items[i], buf, sizeof(buf)));

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

	struct match_engine engine = match_engine_evaluator(policy);
	struct kernel_engine ke;

	if (kernel) {
		const char *extra[1] = { daemon };
		bool keyed = all_daemons && *daemon && strlen(daemon) < BPFWRAP_DAEMON_NAME_MAX;

		if (kernel_engine_open(&ke, policy, extra, keyed ? 1 : 0)) {
			free(daemon);
			free(client);
			policy_free(policy);
			return 1;
		}
		engine = (struct match_engine){ kernel_decide, kernel_how, &ke, "kernel" };
	}
	double t0 = now_seconds();
	rc = match_client(&engine, &req, host, no_dns, name, verbose);
	fflush(stdout);
	if (kernel) {
		if (stats)
			kernel_print_stats(&ke, now_seconds() - t0);
		kernel_engine_close(&ke);
	}
	free(daemon);
	free(client);
	policy_free(policy);
	return rc;
}
