/*
 * agent.c - the event loop half of `bpfwrap run`: consume the kernel's ring
 * buffer, log decisions like tcpd, run spawn commands, answer ASK with DNS,
 * ident and the reference evaluator, and keep the kernel's verdict cache and
 * heartbeat (agent.h says what each event does).
 *
 * Everything the agent waits for (ring buffer, logger timer, spawned
 * children, c-ares sockets, ident sockets, heartbeat timer) sits in one
 * internal epoll set; run.c adds agent_fd() to its own loop. Nothing here
 * blocks: lookups are asynchronous and their results arrive through
 * callbacks from resolve_process()/ident_process().
 *
 * Errors: functions return 0 or -errno; problems while serving events are
 * counted (agent_get_stats) and, when an admin must know, written once
 * through the logger. Input from the network (names, users) is bounded by
 * resolve.h/ident.h and filtered by expand.h before any shell sees it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <bpf/libbpf.h>

#include "agent.h"
#include "bpfwrap.h"
#include "compile.h"
#include "expand.h"
#include "loader.h"
#include "policy.h"

#define DEFAULT_CACHE_TTL_MS 60000
#define DEFAULT_MAX_PENDING 256
#define NAME_CACHE_SLOTS 1024	/* direct-mapped: a collision just forgets a name */
#define COMMAND_MAX 4096	/* an expanded spawn command */
#define AGENT_LATE_ASK_MS 10000	/* "agent down" denials younger than this are asked after all */
/* An answer that read the client's user holds for its own connection only
 * (include/bpfwrap.h, verdict_cache): kept long enough for the SYN
 * retransmits (1 s, 3 s), not so long that a reused client port meets it. */
#define CACHE_FLOW_TTL_MS 5000

enum tag {
	TAG_RINGBUF, TAG_LOGGER, TAG_SPAWN, TAG_RESOLVE, TAG_IDENT, TAG_HEARTBEAT, TAG_DRAIN,
	TAG_SWEEP,
};

#define DEFAULT_AGG_INTERVAL_MS 60000
#define SWEEPS_PER_INTERVAL 4	/* how often per aggregation window the slots are looked at */

/* The kernel wakes the agent for log-only events at most once per ms
 * (decide.bpf.h, submit_flags): after a read that found events, read again
 * this much later, until a read finds none, so none waits longer. */
#define DRAIN_AGAIN_NS (2 * 1000 * 1000)

enum job_kind { JOB_ASK, JOB_SPAWN };

/* Error messages an event can cause (so a flood could repeat them): at most
 * one of each kind per AGENT_SPAWN_REPORT_MS, the rest counted (noisy_ok). */
enum noisy_kind { NOISY_EXPAND, NOISY_CACHE, NOISY_KINDS };

/* One client lookup in flight (an ASK to answer, or a spawn that needs the name). */
struct job {
	bool used;
	enum job_kind kind;
	bool name_pending, user_pending;
	struct event ev;
	char addr[INET6_ADDRSTRLEN], server[INET6_ADDRSTRLEN];
	char name[POLICY_FIELD_MAX + 1];	/* "" = not looked up */
	char user[POLICY_FIELD_MAX + 1];	/* "" = not asked */
	struct agent *a;
};

/* What the agent learned about a client, reused in log lines for a while. */
struct name_entry {
	char addr[INET6_ADDRSTRLEN];
	char name[POLICY_FIELD_MAX + 1];
	char user[POLICY_FIELD_MAX + 1];
	uint64_t expires_ms;
};

/* What the agent logged for one src_recent slot (include/bpfwrap.h): the
 * key's last event, and how much of the slot's count the log holds. */
struct agg_rec {
	bool used;
	bool due;		/* an event since the slot was last looked at */
	uint64_t reported;	/* the slot's count up to which lines were written */
	uint64_t last_ms;	/* when the last line for the key was written */
	struct event ev;	/* the key's last event (agg_key, daemon, rule, pid) */
};

/* A policy the kernel may still report events for. */
struct pol_slot {
	struct policy *pol;
	uint32_t generation;
	struct compiled_daemon *daemons;	/* copy of the compiled daemon ids */
	size_t n_daemons;
	bool needs_user;	/* user@host patterns: ASK asks identd */
};

struct agent {
	struct agent_config cfg;
	struct loader *ld;
	struct logger *lg;
	struct spawner *sp;
	struct resolver *rs;
	struct identer *id;
	struct ring_buffer *rb;
	int ep, hb_fd, drain_fd, sweep_fd;
	bool started, closing;
	struct agg_rec *aggs;	/* BPFWRAP_SRC_SLOTS, allocated at the first aggregated event */
	struct pol_slot slots[2];	/* [0] in force, [1] the one before */
	struct job *jobs;
	struct name_entry *names;
	struct agent_stats st;
	uint64_t noisy_until[NOISY_KINDS];	/* ms: a message of this kind was written until then */
	uint64_t noisy_skipped[NOISY_KINDS];	/* messages of this kind not written since */
	uint64_t spawn_report_at;	/* ms: next look at the spawn refusals */
	uint64_t spawn_refused_reported;	/* refusals already reported */
};

/* ---- small helpers ------------------------------------------------------ */

/* mono_ms - CLOCK_MONOTONIC in milliseconds */
static uint64_t mono_ms(void)
{
	return monotonic_ms();
}

/* event_addrs - client and server address texts of an event */
static void event_addrs(const struct event *ev, char *addr, char *server)
{
	int af = ev->family == BPFWRAP_AF_INET ? AF_INET : AF_INET6;

	if (!inet_ntop(af, ev->saddr, addr, INET6_ADDRSTRLEN))
		snprintf(addr, INET6_ADDRSTRLEN, "unknown");
	if (!inet_ntop(af, ev->daddr, server, INET6_ADDRSTRLEN))
		snprintf(server, INET6_ADDRSTRLEN, "unknown");
}

/* event_daemon - the daemon name of an event's socket, NULL if it has none */
static const char *event_daemon(const struct event *ev, char *buf)
{
	memcpy(buf, ev->daemon, BPFWRAP_DAEMON_NAME_MAX);
	buf[BPFWRAP_DAEMON_NAME_MAX] = '\0';
	return buf[0] ? buf : NULL;
}

/* slot_for - the policy that generation gen was compiled from, or NULL */
static const struct pol_slot *slot_for(const struct agent *a, uint32_t gen)
{
	for (int i = 0; i < 2; i++)
		if (a->slots[i].pol && a->slots[i].generation == gen)
			return &a->slots[i];
	return NULL;
}

/* rule_by_id - rule id of a policy (ids run through hosts.allow, then hosts.deny) */
static const struct rule *rule_by_id(const struct policy *p, uint32_t id)
{
	const struct rule *r = NULL;

	if (!p || id == 0)
		return NULL;
	if (id <= p->allow.n_rules)
		r = &p->allow.rules[id - 1];
	else if (id - p->allow.n_rules <= p->deny.n_rules)
		r = &p->deny.rules[id - 1 - p->allow.n_rules];
	return r && r->id == id ? r : NULL;
}

/* rule_has - does a rule carry an option of this kind */
static bool rule_has(const struct rule *r, enum rule_option_kind kind)
{
	for (size_t i = 0; r && i < r->n_options; i++)
		if (r->options[i].kind == kind)
			return true;
	return false;
}

/* is_command - an option whose value the agent runs (spawn, twist, aclexec) */
static bool is_command(enum rule_option_kind kind)
{
	return kind == ROPT_SPAWN || kind == ROPT_TWIST || kind == ROPT_ACLEXEC;
}

/* rule_commands - does a rule run commands; do they use the client name (%h %n %c) or user (%u %c) */
static bool rule_commands(const struct rule *r, bool *need_name, bool *need_user)
{
	bool any = false;

	*need_name = *need_user = false;
	for (size_t i = 0; r && !r->options_error && i < r->n_options; i++) {
		const char *v = r->options[i].value;

		if (!is_command(r->options[i].kind) || !v)
			continue;
		any = true;
		for (const char *p = strchr(v, '%'); p && p[1]; p = strchr(p + 2, '%')) {
			if (strchr("hnc", p[1]))
				*need_name = true;
			if (strchr("uc", p[1]))
				*need_user = true;
		}
	}
	return any;
}

/* rule_priority - the `severity` option as facility|level, else the given level */
static int rule_priority(const struct rule *r, int level)
{
	int prio;

	for (size_t i = 0; r && i < r->n_options; i++)
		if (r->options[i].kind == ROPT_SEVERITY &&
		    logger_parse_severity(r->options[i].value, 0, &prio) == 0)
			return prio;
	return level;
}

/* list_has_user - a pattern list (or a /path file it names) has a user@host pattern */
static bool list_has_user(const struct pattern_list *l, int depth)
{
	if (!l || depth > 8)
		return false;
	for (size_t i = 0; i < l->count; i++)
		if (l->items[i].user || list_has_user(l->items[i].file_patterns, depth + 1))
			return true;
	return false;
}

/* policy_needs_user - does deciding need the client's user (user@host patterns) */
static bool policy_needs_user(const struct policy *p)
{
	const struct table *t[2] = { &p->allow, &p->deny };

	for (int i = 0; i < 2; i++)
		for (size_t j = 0; j < t[i]->n_rules; j++)
			if (list_has_user(&t[i]->rules[j].clients, 0))
				return true;
	return false;
}

/* name_hash - FNV-1a of an address text, for the name cache */
static size_t name_hash(const char *addr)
{
	uint64_t h = 1469598103934665603ull;

	for (; *addr; addr++)
		h = (h ^ (unsigned char)*addr) * 1099511628211ull;
	return (size_t)(h % NAME_CACHE_SLOTS);
}

/* name_find - what is known about a client address, or NULL */
static const struct name_entry *name_find(const struct agent *a, const char *addr)
{
	const struct name_entry *e = &a->names[name_hash(addr)];

	if (e->expires_ms > mono_ms() && !strcmp(e->addr, addr))
		return e;
	return NULL;
}

/* name_store - remember a client's name and user (either may be "") for cache_ttl */
static void name_store(struct agent *a, const char *addr, const char *name, const char *user)
{
	struct name_entry *e = &a->names[name_hash(addr)];

	if (strcmp(e->addr, addr) || e->expires_ms <= mono_ms())
		memset(e, 0, sizeof(*e));
	snprintf(e->addr, sizeof(e->addr), "%s", addr);
	if (name && *name)
		snprintf(e->name, sizeof(e->name), "%s", name);
	if (user && *user)
		snprintf(e->user, sizeof(e->user), "%s", user);
	e->expires_ms = mono_ms() + a->cfg.cache_ttl_ms;
}

/* make_request - the request libwrap would build for an event */
static void make_request(const struct event *ev, const char *daemon, const char *addr,
			 const char *server, const char *name, const char *user, struct request *req)
{
	memset(req, 0, sizeof(*req));
	req->daemon = daemon;
	req->client_addr = addr;
	req->client_name = name && *name ? name : NULL;
	req->user = user && *user ? user : NULL;
	req->server_addr = server;
	req->server_name = NULL;
	req->server_port = ntohs(ev->dport);
}

/* noisy_ok - may a per-event error message of this kind be written now;
 * *skipped: how many of its kind were not written since the last one */
static bool noisy_ok(struct agent *a, enum noisy_kind kind, uint64_t *skipped)
{
	uint64_t now = mono_ms();

	if (now < a->noisy_until[kind]) {
		a->noisy_skipped[kind]++;
		return false;
	}
	*skipped = a->noisy_skipped[kind];
	a->noisy_skipped[kind] = 0;
	a->noisy_until[kind] = now + AGENT_SPAWN_REPORT_MS;
	return true;
}

/* ---- acting on a decision ---------------------------------------------- */

/* log_counted - one tcpd line standing for `count` refused or accepted
 * connections over span_ms (count 0 or 1: this one) */
static void log_counted(struct agent *a, const struct event *ev, const struct request *req,
			bool refused, const struct rule *r, uint64_t count, uint64_t span_ms)
{
	struct logger_event le = {
		.req = req,
		.pid = (pid_t)ev->pid,
		.refused = refused,
		.rule_id = r ? r->id : ev->rule_id,
		.rule_file = r ? r->pos.file : NULL,
		.rule_line = r ? r->pos.line : 0,
		/* libwrap's defaults: deny_severity LOG_WARNING, allow_severity LOG_INFO */
		.priority = rule_priority(r, refused ? LOG_WARNING : LOG_INFO),
		.count = count,
		.span_ms = span_ms,
	};

	a->st.logged++;
	logger_log(a->lg, &le, mono_ms());
}

/* log_decision - one tcpd line for a refused or accepted connection */
static void log_decision(struct agent *a, const struct event *ev, const struct request *req,
			 bool refused, const struct rule *r)
{
	log_counted(a, ev, req, refused, r, 1, 0);
}

/* run_commands - expand and start a rule's spawn/twist/aclexec commands */
static void run_commands(struct agent *a, const struct event *ev, const struct request *req,
			 const struct rule *r)
{
	char cmd[COMMAND_MAX];
	uint64_t skipped;
	int err;

	for (size_t i = 0; r && !r->options_error && i < r->n_options; i++) {
		const struct rule_option *o = &r->options[i];

		if (!is_command(o->kind) || !o->value)
			continue;
		err = expand_percent(o->value, req, (pid_t)ev->pid, cmd, sizeof(cmd));
		if (err) {
			a->st.spawn_errors++;
			if (noisy_ok(a, NOISY_EXPAND, &skipped))
				logger_message(a->lg, LOG_ERR, "%s:%u: cannot expand the command: %s "
					       "(%llu more such errors not logged before this one)",
					       r->pos.file, o->pos.line, strerror(-err),
					       (unsigned long long)skipped);
			continue;
		}
		err = spawn_run(a->sp, cmd, r->id, NULL);
		if (err && err != -EAGAIN && err != -EBUSY)
			a->st.spawn_errors++;	/* refusals by the limits: spawn_get_stats */
		else
			a->st.spawned++;
	}
}

/* ---- lookups ------------------------------------------------------------- */

static void job_finish(struct job *j);

/* job_maybe_done - finish a job once its last lookup answered */
static void job_maybe_done(struct job *j)
{
	if (j->name_pending || j->user_pending)
		return;
	if (j->a->closing) {
		j->used = false;
		return;
	}
	job_finish(j);
}

/* on_resolved - resolve.h callback: the client's name (or unknown/paranoid) */
static void on_resolved(void *arg, const struct resolve_result *res)
{
	struct job *j = arg;

	snprintf(j->name, sizeof(j->name), "%s", res->name ? res->name : "unknown");
	j->name_pending = false;
	job_maybe_done(j);
}

/* on_ident - ident.h callback: the client's user (or unknown) */
static void on_ident(void *arg, const struct ident_result *res)
{
	struct job *j = arg;

	snprintf(j->user, sizeof(j->user), "%s", res->user ? res->user : "unknown");
	j->user_pending = false;
	job_maybe_done(j);
}

/* job_new - a free job slot for an event, or NULL when max_pending are in flight */
static struct job *job_new(struct agent *a, enum job_kind kind, const struct event *ev)
{
	for (unsigned i = 0; i < a->cfg.max_pending; i++) {
		struct job *j = &a->jobs[i];

		if (j->used)
			continue;
		memset(j, 0, sizeof(*j));
		j->used = true;
		j->kind = kind;
		j->ev = *ev;
		j->a = a;
		event_addrs(ev, j->addr, j->server);
		return j;
	}
	return NULL;
}

/* job_start - start the lookups a job needs; finishes it at once if none could start */
static void job_start(struct job *j, bool want_name, bool want_user)
{
	if (want_name && resolve_start(j->a->rs, j->addr, on_resolved, j) == 0)
		j->name_pending = true;
	if (want_user && ident_start(j->a->id, j->addr, ntohs(j->ev.sport), j->server,
				     ntohs(j->ev.dport), on_ident, j) == 0)
		j->user_pending = true;
	job_maybe_done(j);
}

static bool twists(const struct rule *r);

/* ---- ASK ------------------------------------------------------------------ */

/* cache_refine - the verdict cache fields beyond (daemon, client) an answer
 * must be keyed on: those deciding read (enum request_input). The client's
 * name comes from its address; a user answer is keyed on the whole flow. */
static unsigned cache_refine(unsigned inputs)
{
	unsigned refine = 0;

	if (inputs & (INPUT_SERVER_ADDR | INPUT_SERVER_NAME))
		refine |= BPFWRAP_CACHE_SERVER;
	if (inputs & INPUT_SERVER_PORT)
		refine |= BPFWRAP_CACHE_SERVER_PORT;
	if (inputs & INPUT_USER)
		refine |= BPFWRAP_CACHE_REFINE_ALL;
	return refine;
}

/* ask_answer - decide with the reference evaluator, cache the verdict in the kernel, log */
static void ask_answer(struct agent *a, const struct event *ev, const char *addr,
		       const char *server, const char *name, const char *user)
{
	const struct pol_slot *cur = &a->slots[0];
	char dname[BPFWRAP_DAEMON_NAME_MAX + 1];
	const char *daemon = event_daemon(ev, dname);
	struct daemon_key dkey;
	struct cache_answer ans;
	struct request req;
	struct decision dec;
	uint64_t ttl_ms = a->cfg.cache_ttl_ms, skipped;
	int err;

	if (!cur->pol)
		return;	/* nothing in force to decide with: the kernel's fallback holds */
	make_request(ev, daemon, addr, server, name, user, &req);
	policy_evaluate(cur->pol, &req, &dec);
	if (dec.allow && twists(dec.rule))
		dec.allow = false;	/* as agent_mark_policy() does for the kernel's entries */
	memcpy(dkey.name, ev->daemon, sizeof(dkey.name));
	memset(&ans, 0, sizeof(ans));
	ans.generation = cur->generation;
	ans.daemon_id = ev->daemon_id;
	ans.daemon = &dkey;
	ans.family = ev->family == BPFWRAP_AF_INET ? AF_INET : AF_INET6;
	ans.client = ev->saddr;
	ans.server = ev->daddr;
	ans.client_port = ev->sport;
	ans.server_port = ev->dport;
	ans.refine = cache_refine(dec.inputs);
	ans.verdict = dec.allow ? BPFWRAP_ALLOW : BPFWRAP_DENY;
	ans.rule_id = dec.rule ? dec.rule->id : 0;
	if ((dec.inputs & INPUT_USER) && ttl_ms > CACHE_FLOW_TTL_MS)
		ttl_ms = CACHE_FLOW_TTL_MS;
	ans.ttl_ns = ttl_ms * 1000000ull;
	if (ev->generation != cur->generation) {
		/* asked under the previous policy: key the answer by today's daemon id */
		struct compiled_policy ids = { .daemons = cur->daemons, .n_daemons = cur->n_daemons };

		ans.daemon_id = compiled_daemon_id(&ids, daemon);
	}
	err = loader_cache_verdict(a->ld, &ans);
	if (err) {
		a->st.cache_errors++;
		if (noisy_ok(a, NOISY_CACHE, &skipped))
			logger_message(a->lg, LOG_ERR, "cannot cache the verdict for %s: %s (%llu more such "
				       "errors not logged before this one)", addr, strerror(-err),
				       (unsigned long long)skipped);
	}
	a->st.asked++;
	if (dec.allow) {
		/* logged and spawned by the ACCEPT event of the connection that follows */
		a->st.ask_allowed++;
		return;
	}
	a->st.ask_denied++;
	log_decision(a, ev, &req, true, dec.rule);
	if (dec.reason == REASON_RULE)
		run_commands(a, ev, &req, dec.rule);
}

/* ask_in_flight - is the same (daemon, client, server) already being looked
 * up (a question about another server address or port may have another
 * answer: see cache_refine) */
static bool ask_in_flight(const struct agent *a, const struct event *ev)
{
	for (unsigned i = 0; i < a->cfg.max_pending; i++) {
		const struct job *j = &a->jobs[i];

		if (j->used && j->kind == JOB_ASK && j->ev.family == ev->family &&
		    !memcmp(j->ev.saddr, ev->saddr, sizeof(ev->saddr)) &&
		    !memcmp(j->ev.daddr, ev->daddr, sizeof(ev->daddr)) && j->ev.dport == ev->dport &&
		    !strncmp(j->ev.daemon, ev->daemon, sizeof(ev->daemon)))
			return true;
	}
	return false;
}

/* on_ask - the kernel holds a flow until the agent decides it */
static void on_ask(struct agent *a, const struct event *ev)
{
	const struct pol_slot *cur = &a->slots[0];
	struct job *j;

	if (ask_in_flight(a, ev)) {
		a->st.ask_deduped++;
		return;
	}
	j = job_new(a, JOB_ASK, ev);
	if (!j) {
		char addr[INET6_ADDRSTRLEN], server[INET6_ADDRSTRLEN];

		/* too many lookups in flight: decide as if the name were unknown */
		a->st.ask_overflow++;
		event_addrs(ev, addr, server);
		ask_answer(a, ev, addr, server, "unknown", NULL);
		return;
	}
	job_start(j, true, cur->needs_user);
}

/* ---- other events --------------------------------------------------------- */

/* act - log and spawn for a decided connection (DENY, ACCEPT, SPAWN events);
 * the line stands for `count` connections over span_ms (see log_counted) */
static void act(struct agent *a, const struct event *ev, bool refused, uint64_t count,
		uint64_t span_ms)
{
	const struct pol_slot *s = slot_for(a, ev->generation);
	const struct rule *r = s ? rule_by_id(s->pol, ev->rule_id) : NULL;
	char dname[BPFWRAP_DAEMON_NAME_MAX + 1], addr[INET6_ADDRSTRLEN], server[INET6_ADDRSTRLEN];
	const char *daemon = event_daemon(ev, dname);
	const struct name_entry *known;
	bool need_name, need_user, log_it, commands;
	struct request req;
	struct job *j;

	event_addrs(ev, addr, server);
	known = name_find(a, addr);
	log_it = refused || a->cfg.log_accept || rule_has(r, ROPT_SEVERITY);
	commands = rule_commands(r, &need_name, &need_user);
	need_name = need_name && !(known && known->name[0]);
	need_user = need_user && rule_has(r, ROPT_RFC931) && !(known && known->user[0]);
	make_request(ev, daemon, addr, server, known ? known->name : NULL, known ? known->user : NULL,
		     &req);
	if (log_it)
		log_counted(a, ev, &req, refused, r, count, span_ms);
	if (!commands)
		return;
	if (!need_name && !need_user) {
		run_commands(a, ev, &req, r);
		return;
	}
	j = job_new(a, JOB_SPAWN, ev);
	if (!j) {
		run_commands(a, ev, &req, r);	/* no slot: the name stays unknown */
		return;
	}
	if (known) {
		snprintf(j->name, sizeof(j->name), "%s", known->name);
		snprintf(j->user, sizeof(j->user), "%s", known->user);
	}
	job_start(j, need_name, need_user);
}

/* job_finish - a job's lookups are done: answer the ASK or run the commands */
static void job_finish(struct job *j)
{
	struct agent *a = j->a;

	name_store(a, j->addr, j->name, j->user);
	if (j->kind == JOB_ASK) {
		ask_answer(a, &j->ev, j->addr, j->server, j->name, j->user);
	} else {
		const struct pol_slot *s = slot_for(a, j->ev.generation);
		const struct rule *r = s ? rule_by_id(s->pol, j->ev.rule_id) : NULL;
		char dname[BPFWRAP_DAEMON_NAME_MAX + 1];
		struct request req;

		make_request(&j->ev, event_daemon(&j->ev, dname), j->addr, j->server, j->name,
			     j->user, &req);
		run_commands(a, &j->ev, &req, r);
	}
	j->used = false;
}

/* ---- aggregated denials ------------------------------------------------- */

/* agg_summary - the line for a slot's denials after r's last line, up to the
 * slot's count `count` (no new attempt: what the kernel only counted) */
static void agg_summary(struct agent *a, struct agg_rec *r, uint64_t count, uint64_t now)
{
	if (count <= r->reported)
		return;
	a->st.denials += count - r->reported;
	a->st.deny_summaries++;
	act(a, &r->ev, true, count - r->reported, now - r->last_ms);
	r->reported = count;
	r->last_ms = now;
}

/* agg_look - read a slot the agent logged for: write the summary of what it
 * counted since, or forget it if another key holds it now */
static void agg_look(struct agent *a, uint32_t idx, uint64_t now)
{
	struct agg_rec *r = &a->aggs[idx];
	struct src_slot slot;

	r->due = false;
	if (loader_src_slot(a->ld, idx, &slot))
		return;
	if (!slot.count || memcmp(&slot.key, &r->ev.agg_key, sizeof(slot.key))) {
		r->used = false;	/* evicted: the evicting event reported it */
		return;
	}
	agg_summary(a, r, slot.count, now);
}

/* agg_sweep - look at every slot whose window ended since its last event */
static void agg_sweep(struct agent *a, bool all)
{
	uint64_t now = mono_ms();

	if (!a->aggs)
		return;
	for (uint32_t i = 0; i < BPFWRAP_SRC_SLOTS; i++) {
		struct agg_rec *r = &a->aggs[i];

		if (r->used && r->due && (all || now >= r->last_ms + a->cfg.agg_interval_ms))
			agg_look(a, i, now);
	}
}

/*
 * on_aggregated_deny - a DENY the kernel aggregates per client (its first in
 * a window): a summary for the key it evicted from the slot, then its own
 * line, counting what the slot folded since this key's last line
 */
static void on_aggregated_deny(struct agent *a, const struct event *ev)
{
	uint32_t idx = ev->agg_slot - 1;
	uint64_t now = mono_ms(), count = 1, span = 0;
	struct agg_rec *r;

	if (idx >= BPFWRAP_SRC_SLOTS ||
	    (!a->aggs && !(a->aggs = calloc(BPFWRAP_SRC_SLOTS, sizeof(*a->aggs))))) {
		a->st.denials++;
		act(a, ev, true, 1, 0);
		return;
	}
	r = &a->aggs[idx];
	if (r->used && ev->evicted_count &&
	    !memcmp(&ev->evicted, &r->ev.agg_key, sizeof(ev->evicted)))
		agg_summary(a, r, ev->evicted_count, now);
	if (r->used && !memcmp(&ev->agg_key, &r->ev.agg_key, sizeof(ev->agg_key)) &&
	    ev->agg_count > r->reported) {
		count = ev->agg_count - r->reported;
		span = now - r->last_ms;
	}
	/* else a key new to this agent: what the slot counted before was an
	 * earlier agent's to report (it writes its summaries when it exits) */
	r->used = true;
	r->due = true;
	r->reported = ev->agg_count;
	r->last_ms = now;
	r->ev = *ev;
	a->st.denials += count;
	act(a, ev, true, count, span);
}

/* on_event - ring buffer callback: one record from the kernel */
static int on_event(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;
	struct event ev;

	if (size < sizeof(ev)) {
		a->st.events[0]++;
		return 0;
	}
	memcpy(&ev, data, sizeof(ev));
	if (ev.type >= 1 && ev.type <= 4)
		a->st.events[ev.type]++;
	else
		a->st.events[0]++;
	switch (ev.type) {
	case BPFWRAP_EV_DENY:
		/* The kernel wanted to ask but found no agent: if that was moments
		 * ago, ask now. The flow's retransmitted SYN then meets the cached
		 * answer (the kernel sends no second event for the flow). */
		if (ev.reason == BPFWRAP_R_AGENT_DOWN && mono_ms() * 1000000ull < ev.time_ns +
		    (uint64_t)AGENT_LATE_ASK_MS * 1000000ull) {
			on_ask(a, &ev);
		} else if (ev.agg_slot) {
			on_aggregated_deny(a, &ev);
		} else {
			a->st.denials++;
			act(a, &ev, true, 1, 0);
		}
		break;
	case BPFWRAP_EV_ACCEPT:
	case BPFWRAP_EV_SPAWN:
		act(a, &ev, false, 1, 0);
		break;
	case BPFWRAP_EV_ASK:
		on_ask(a, &ev);
		break;
	default:
		break;
	}
	return 0;
}

/* ---- life cycle ------------------------------------------------------------ */

/* heartbeat - tell the kernel the agent answers ASK for the next TTL */
static int heartbeat(struct agent *a)
{
	return loader_agent_heartbeat(a->ld, (uint32_t)getpid(),
				      (uint64_t)AGENT_HEARTBEAT_TTL_MS * 1000000ull);
}

/* add_fd - put one module's fd into the agent's epoll set */
static int add_fd(struct agent *a, int fd, enum tag tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	if (fd < 0)
		return -EBADF;
	return epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* start_sweep - look at the aggregation slots SWEEPS_PER_INTERVAL times a window */
static int start_sweep(struct agent *a)
{
	uint64_t ms = a->cfg.agg_interval_ms / SWEEPS_PER_INTERVAL;
	struct itimerspec its;

	if (!ms)
		ms = 1;
	its.it_interval.tv_sec = (time_t)(ms / 1000);
	its.it_interval.tv_nsec = (long)(ms % 1000) * 1000000L;
	its.it_value = its.it_interval;
	return timerfd_settime(a->sweep_fd, 0, &its, NULL) ? -errno : 0;
}

/* agent_open - logger, spawner, resolver, ident client and ring buffer consumer for ld */
int agent_open(struct agent **out, struct loader *ld, const struct agent_config *cfg)
{
	struct agent *a;
	int err;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->ep = a->hb_fd = a->drain_fd = a->sweep_fd = -1;
	if (cfg)
		a->cfg = *cfg;
	if (!a->cfg.cache_ttl_ms)
		a->cfg.cache_ttl_ms = DEFAULT_CACHE_TTL_MS;
	if (!a->cfg.max_pending)
		a->cfg.max_pending = DEFAULT_MAX_PENDING;
	if (!a->cfg.agg_interval_ms)
		a->cfg.agg_interval_ms = DEFAULT_AGG_INTERVAL_MS;
	a->ld = ld;
	a->jobs = calloc(a->cfg.max_pending, sizeof(*a->jobs));
	a->names = calloc(NAME_CACHE_SLOTS, sizeof(*a->names));
	if (!a->jobs || !a->names) {
		err = -ENOMEM;
		goto fail;
	}
	a->ep = epoll_create1(EPOLL_CLOEXEC);
	a->hb_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	a->drain_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	a->sweep_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (a->ep < 0 || a->hb_fd < 0 || a->drain_fd < 0 || a->sweep_fd < 0) {
		err = -errno;
		goto fail;
	}
	err = logger_open(&a->lg, &a->cfg.log);
	if (!err)
		err = spawn_open(&a->sp, &a->cfg.spawn);
	if (!err)
		err = resolve_open(&a->rs, &a->cfg.resolve);
	if (!err)
		err = ident_open(&a->id, &a->cfg.ident);
	if (err)
		goto fail;
	a->rb = ring_buffer__new(loader_events_fd(ld), on_event, a, NULL);
	if (!a->rb) {
		err = -errno ? -errno : -EINVAL;
		goto fail;
	}
	err = add_fd(a, ring_buffer__epoll_fd(a->rb), TAG_RINGBUF);
	if (!err)
		err = add_fd(a, logger_fd(a->lg), TAG_LOGGER);
	if (!err)
		err = add_fd(a, spawn_fd(a->sp), TAG_SPAWN);
	if (!err)
		err = add_fd(a, resolve_fd(a->rs), TAG_RESOLVE);
	if (!err)
		err = add_fd(a, ident_fd(a->id), TAG_IDENT);
	if (!err)
		err = add_fd(a, a->hb_fd, TAG_HEARTBEAT);
	if (!err)
		err = add_fd(a, a->drain_fd, TAG_DRAIN);
	if (!err)
		err = add_fd(a, a->sweep_fd, TAG_SWEEP);
	if (!err)
		err = start_sweep(a);
	if (err)
		goto fail;
	*out = a;
	return 0;
fail:
	agent_close(a);
	return err;
}

/* agent_flush - handle the queued events, then write the lines for denials
 * the kernel only counted so far */
void agent_flush(struct agent *a)
{
	ring_buffer__consume(a->rb);
	agg_sweep(a, true);
}

/* agent_close - mark the agent dead in the kernel, stop children, flush the log, free */
void agent_close(struct agent *a)
{
	if (!a)
		return;
	a->closing = true;
	if (a->started)
		loader_agent_heartbeat(a->ld, (uint32_t)getpid(), 0);
	if (a->rb && a->lg)
		agent_flush(a);
	if (a->rb)
		ring_buffer__free(a->rb);
	if (a->rs)
		resolve_close(a->rs);	/* callbacks see closing and just free their jobs */
	if (a->id)
		ident_close(a->id);
	if (a->sp)
		spawn_close(a->sp);
	if (a->lg)
		logger_close(a->lg);
	for (int i = 0; i < 2; i++) {
		policy_free(a->slots[i].pol);
		free(a->slots[i].daemons);
	}
	if (a->hb_fd >= 0)
		close(a->hb_fd);
	if (a->drain_fd >= 0)
		close(a->drain_fd);
	if (a->sweep_fd >= 0)
		close(a->sweep_fd);
	if (a->ep >= 0)
		close(a->ep);
	free(a->jobs);
	free(a->names);
	free(a->aggs);
	free(a);
}

/* agent_set_policy - the policy now in force as generation gen */
int agent_set_policy(struct agent *a, struct policy *pol, const struct compiled_policy *cp,
		     uint32_t generation)
{
	struct compiled_daemon *d = NULL;

	if (cp && cp->n_daemons) {
		d = malloc(cp->n_daemons * sizeof(*d));
		if (!d) {
			policy_free(pol);
			return -ENOMEM;
		}
		memcpy(d, cp->daemons, cp->n_daemons * sizeof(*d));
	}
	policy_free(a->slots[1].pol);
	free(a->slots[1].daemons);
	a->slots[1] = a->slots[0];
	a->slots[0] = (struct pol_slot){
		.pol = pol,
		.generation = generation,
		.daemons = d,
		.n_daemons = d ? cp->n_daemons : 0,
		.needs_user = pol && policy_needs_user(pol),
	};
	return 0;
}

/* twists - a rule with twist: tcpd replaced the daemon by the command, so the
 * daemon never served the client; bpfwrap cannot hand the connection to the
 * command, so it refuses it (and runs the command like spawn) rather than let
 * the daemon serve a client the admin meant to turn away */
static bool twists(const struct rule *r)
{
	return r && !r->options_error && rule_has(r, ROPT_TWIST);
}

/* mark_entry - flag one compiled entry whose accepts the agent must see; twist allows deny */
static void mark_entry(const struct agent *a, const struct policy *pol, struct policy_entry *e)
{
	const struct rule *r = rule_by_id(pol, e->rule_id);
	bool dummy_name, dummy_user;

	if (e->verdict == BPFWRAP_ASK) {
		/* a cached allow's connection: the agent logs/spawns by the rule it found */
		e->flags |= BPFWRAP_F_LOG_ACCEPT;
		if (e->verdict_if_unknown == BPFWRAP_ALLOW && twists(r))
			e->verdict_if_unknown = BPFWRAP_DENY;
		return;
	}
	if (e->verdict != BPFWRAP_ALLOW)
		return;
	if (twists(r)) {
		/* the DENY event (SPAWN flag) runs the twist command */
		e->verdict = e->verdict_if_unknown = BPFWRAP_DENY;
		return;
	}
	if (a->cfg.log_accept || rule_has(r, ROPT_SEVERITY) || rule_commands(r, &dummy_name, &dummy_user))
		e->flags |= BPFWRAP_F_LOG_ACCEPT;
}

/* agent_mark_policy - set BPFWRAP_F_LOG_ACCEPT where the agent must hear of accepts */
void agent_mark_policy(const struct agent *a, const struct policy *pol, struct compiled_policy *cp)
{
	for (size_t i = 0; i < cp->n_v4; i++)
		mark_entry(a, pol, &cp->v4[i].entry);
	for (size_t i = 0; i < cp->n_v6; i++)
		mark_entry(a, pol, &cp->v6[i].entry);
}

/* agent_start - begin the heartbeat: from now on ASK entries wait for the agent */
int agent_start(struct agent *a)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = AGENT_HEARTBEAT_MS / 1000,
				 .tv_nsec = (AGENT_HEARTBEAT_MS % 1000) * 1000000L },
	};
	int err;

	its.it_value = its.it_interval;
	if (timerfd_settime(a->hb_fd, 0, &its, NULL))
		return -errno;
	err = heartbeat(a);
	if (err)
		return err;
	a->started = true;
	return 0;
}

/* agent_fd - epoll fd: readable when an event, a lookup, a child or a timer needs work */
int agent_fd(const struct agent *a)
{
	return a->ep;
}

/* drain_events - read every queued event; if there were some, look again soon */
static void drain_events(struct agent *a)
{
	struct itimerspec again = { .it_value.tv_nsec = DRAIN_AGAIN_NS };

	if (ring_buffer__consume(a->rb) > 0)
		timerfd_settime(a->drain_fd, 0, &again, NULL);
}

/* report_spawn_refusals - once per AGENT_SPAWN_REPORT_MS: how many commands the limits refused */
static void report_spawn_refusals(struct agent *a, uint64_t now)
{
	struct spawn_stats ss;
	uint64_t refused;

	if (now < a->spawn_report_at)
		return;
	spawn_get_stats(a->sp, &ss);
	refused = ss.refused_busy + ss.refused_rate + ss.refused_total;
	if (refused > a->spawn_refused_reported && a->spawn_report_at)
		logger_message(a->lg, LOG_NOTICE,
			       "%llu spawn commands not run in the last %u s (limits: %llu running at "
			       "once, %llu over a rule's rate, %llu over the total rate)",
			       (unsigned long long)(refused - a->spawn_refused_reported),
			       AGENT_SPAWN_REPORT_MS / 1000, (unsigned long long)ss.refused_busy,
			       (unsigned long long)ss.refused_rate, (unsigned long long)ss.refused_total);
	a->spawn_refused_reported = refused;
	a->spawn_report_at = now + AGENT_SPAWN_REPORT_MS;
}

/* agent_process - do all work that is ready, without blocking */
int agent_process(struct agent *a)
{
	struct epoll_event got[8];
	uint64_t ticks;
	int n = epoll_wait(a->ep, got, 8, 0);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		switch (got[i].data.u32) {
		case TAG_RINGBUF:
			drain_events(a);
			break;
		case TAG_DRAIN:
			if (read(a->drain_fd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
				drain_events(a);
			break;
		case TAG_SWEEP:
			if (read(a->sweep_fd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
				agg_sweep(a, false);
			break;
		case TAG_LOGGER:
			logger_process(a->lg, mono_ms());
			break;
		case TAG_SPAWN:
			spawn_process(a->sp);
			break;
		case TAG_RESOLVE:
			resolve_process(a->rs);
			break;
		case TAG_IDENT:
			ident_process(a->id);
			break;
		case TAG_HEARTBEAT:
			if (read(a->hb_fd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks) &&
			    heartbeat(a))
				logger_message(a->lg, LOG_ERR, "cannot renew the agent heartbeat");
			report_spawn_refusals(a, mono_ms());
			break;
		}
	}
	return 0;
}

/* agent_logger - the agent's logger, for run's own messages */
struct logger *agent_logger(struct agent *a)
{
	return a->lg;
}

/* agent_get_stats - counters since agent_open */
void agent_get_stats(const struct agent *a, struct agent_stats *out)
{
	struct spawn_stats ss;

	*out = a->st;
	spawn_get_stats(a->sp, &ss);
	out->spawn_refused = ss.refused_busy + ss.refused_rate + ss.refused_total;
	out->spawn = ss;
	logger_get_stats(a->lg, &out->log);
}
