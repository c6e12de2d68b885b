/*
 * run.c - `bpfwrap run`: put a policy into the kernel for a set of cgroups
 * and keep it there (`bpfwrap status` and `bpfwrap detach` are in status.c).
 *
 *   run     parse hosts.allow/hosts.deny, compile, load into the idle
 *           generation, attach to every --cgroup with pinned bpf_links,
 *           adopt the sockets that were listening already, print
 *           "bpfwrap: ready: ..." and tell systemd (sd_notify READY=1), then
 *           wait in the foreground: SIGHUP reloads, and so does an edit of
 *           the files or of the /path files they name (inotify, debounced;
 *           --no-watch turns that off); SIGTERM/SIGINT exit and
 *           leave the enforcement pinned (fail-static) unless
 *           --detach-on-exit. A previous run's pins are adopted: the policy
 *           in force stays until the new one is flipped in, and the pinned
 *           links get the new programs in place (make-before-break).
 *
 * One run per pin directory and per cgroup (user/agent/instance.h): before
 * it touches anything, a run claims its pin dir and its attach points; a
 * second run on either is refused (exit 1, naming the pid and pin dir that
 * hold them) and changes nothing. Every second the run checks that its
 * links are still attached (check_links): a removed cgroup is waited for
 * again; links detached under it (`bpfwrap detach`, which also signals the
 * run) make it say so and exit. At start and every UNSEEN_SCAN_TICKS it
 * looks for sockets of the guarded cgroups it cannot decide (created
 * outside them: user/agent/unseen.h), warns once per socket and records the
 * counts for `status`. A start that fails before "ready" removes
 * what it pinned, unless it had adopted a previous run's pins: those stay.
 *
 * Rule texts for `status`: bpffs holds only BPF objects, so `run` keeps a
 * small state directory in /run/bpfwrap/ (one per pin directory,
 * user/agent/statedir.c): a key=value `state` file (files, load time,
 * generation, pid, cgroups and where they are attached) and a byte copy of
 * hosts.allow and hosts.deny as they were when loaded.
 *
 * Failure rules (docs/design.md): at start-up with nothing in force, a policy
 * with errors is loaded with libwrap's own error semantics (fail closed where
 * libwrap denies) and its diagnostics go to stderr. On SIGHUP a policy with
 * errors, or one that cannot be read, compiled or loaded, is refused: the
 * policy in force stays and the diagnostics name file:line. Each command
 * reports an error once, to stderr, and returns the exit status (0 ok,
 * 1 error, 2 usage).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/timerfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include <systemd/sd-daemon.h>

#include "compile.h"
#include "policy.h"
#include <getopt.h>

#include "agent.h"
#include "guard.h"
#include "cli.h"
#include "instance.h"
#include "util.h"
#include "loader.h"
#include "statedir.h"
#include "units.h"
#include "unseen.h"
#include "watch.h"

#define MAX_CGROUPS STATE_CGROUPS_MAX
#define UNITS_TICK_S 1		/* how often waiting cgroups are looked for */
#define UNITS_REFRESH_TICKS 10	/* ticks between refreshes of the units' names */
#define UNSEEN_SCAN_TICKS 10	/* ticks between looks for sockets bpfwrap cannot see */
#define DETACH_SETTLE_MS 1000	/* a detach under way is given this long to finish */
#define DETACH_POLL_MS 50	/* how often it is looked at meanwhile */
#define DEFAULT_ALLOW "/etc/hosts.allow"
#define DEFAULT_DENY "/etc/hosts.deny"
#define LOG_INTERVAL_DEFAULT_S 60	/* --log-interval */

struct run_opts {
	const char *allow, *deny;
	const char *pin_dir;
	bool detach_on_exit;
	bool watch;		/* reload when the files change (inotify) */
	struct run_cgroup cgroups[MAX_CGROUPS];	/* for the state file: path, daemon name */
	struct guard_target targets[MAX_CGROUPS];	/* the same, planned (units.h) */
	struct units_files files;		/* --inetd-conf, --xinetd-conf */
	size_t n_cgroups;
	struct agent_config agent;	/* --log, --spawn-*, --dns-server, --cache-ttl, ... */
	uint32_t event_cap;		/* --max-events: 0 = default */
	struct guard_opts guard;	/* --extensions, --reject, --revoke (guard.h) */
	const char *guard_cgroups[MAX_CGROUPS];
	char dns_servers[1024];		/* --dns-server values, comma-separated */
};

/* Why a run stops enforcing while it runs (check_links). */
enum lost {
	LOST_NONE,
	LOST_DETACHED,		/* `bpfwrap detach`: its pins and links are gone */
	LOST_OUTSIDE,		/* links detached by something else; the pins are there */
};

/* What is in force, for messages and the state file. */
struct run_state {
	struct instance *inst;	/* the claim on the pin dir and the cgroups (instance.h) */
	enum lost lost;		/* set: say so and exit; never claim enforcement again */
	struct loader *ld;
	struct agent *agent;
	struct guard *guard;	/* extensions; NULL when not asked for */
	uint32_t generation;
	size_t n_rules, n_entries;
	time_t loaded_at;
	char last_error[1024];	/* why the last reload was refused ("" = it was not) */
	time_t last_error_at;
	char ext_error[1024];	/* why the last extensions reload was refused ("" = it was not) */
	time_t ext_error_at;
	struct rule_tally tally;	/* counts of earlier generations, for status */
	struct watcher *watch;	/* the files to reload on; NULL with --no-watch */
	struct units_report units_said;	/* what was said about the cgroups, to say it once */
	char lost_at[PATH_MAX];	/* LOST_OUTSIDE: the cgroup whose programs were detached */
	bool was_attached[MAX_CGROUPS];	/* per target, at the last tick */
	unsigned long ticks;
	unsigned long unseen_ticks;	/* ticks since the last unseen_scan() */
	struct unseen_state unseen;	/* the unseen sockets already warned about */
	struct unseen_report unseen_rep;	/* what the last scan counted */
	time_t unseen_at;	/* when; 0: never */
};

/* ---- small helpers ------------------------------------------------------ */

/* print_diags - every parse diagnostic on stderr, "FILE:LINE:COL: error: ..." */
static size_t print_diags(const struct policy *p)
{
	size_t errors = 0;
	char buf[1024];

	for (size_t i = 0; i < p->diags.count; i++) {
		const struct diag *d = &p->diags.items[i];

		if (d->severity == DIAG_ERROR)
			errors++;
		fprintf(stderr, "%s\n", diag_format(d, buf, sizeof(buf)));
		if (d->hint)
			fprintf(stderr, "  hint: %s\n", d->hint);
	}
	return errors;
}

/* policy_has_errors - does the parsed policy carry an error libwrap would act on */
static bool policy_has_errors(const struct policy *p)
{
	for (size_t i = 0; i < p->diags.count; i++)
		if (p->diags.items[i].severity == DIAG_ERROR)
			return true;
	return p->allow.state == TABLE_UNREADABLE || p->deny.state == TABLE_UNREADABLE ||
	       p->allow.cut_off || p->deny.cut_off;
}

/* save_run_state - save_state() of what is in force, for `status` (statedir.h) */
static int save_run_state(const struct run_opts *o, const struct run_state *s, bool copy)
{
	const struct state_record r = {
		.allow = o->allow,
		.deny = o->deny,
		.cgroups = o->cgroups,
		.n_cgroups = o->n_cgroups,
		.loaded_at = s->loaded_at,
		.generation = s->generation,
		.n_rules = s->n_rules,
		.n_entries = s->n_entries,
		.last_error = s->last_error,
		.last_error_at = s->last_error_at,
		.ext_error = s->ext_error,
		.ext_error_at = s->ext_error_at,
		.tally = &s->tally,
	};

	return save_state(o->pin_dir, &r, copy);
}

/* ---- run ---------------------------------------------------------------- */

/* build_policy - parse and compile the files; *errors tells whether they had errors */
static int watch_policy(struct watcher *w, const struct run_opts *o, const struct policy *pol);

/* build_policy - parse (and, with w, watch every file the policy names) and compile */
static int build_policy(const struct run_opts *o, struct watcher *w, struct policy **pol,
			struct compiled_policy **cp, bool *errors)
{
	const char *names[MAX_CGROUPS];
	size_t n_names = 0;
	int err;

	*pol = NULL;
	*cp = NULL;
	err = policy_load(pol, o->allow, o->deny);
	if (err) {
		fprintf(stderr, "bpfwrap: cannot read the policy (%s, %s): %s\n", o->allow, o->deny,
			strerror(-err));
		return err;
	}
	if (w)
		watch_policy(w, o, *pol);	/* also a policy that will be refused: its fix must be seen */
	print_diags(*pol);
	*errors = policy_has_errors(*pol);
	for (size_t i = 0; i < o->n_cgroups; i++)
		if (o->cgroups[i].name[0])
			names[n_names++] = o->cgroups[i].name;
	err = compile_policy(*pol, names, n_names, cp);
	if (err) {
		fprintf(stderr, "bpfwrap: failed to compile the policy: %s\n", strerror(-err));
		policy_free(*pol);
		*pol = NULL;
	}
	return err;
}

/* log_diags - the parse diagnostics through the agent's logger too; the first error into s */
static void log_diags(struct run_state *s, const struct policy *p)
{
	char buf[1024];

	for (size_t i = 0; i < p->diags.count; i++) {
		const struct diag *d = &p->diags.items[i];

		diag_format(d, buf, sizeof(buf));
		if (s->agent)
			logger_message(agent_logger(s->agent),
				       d->severity == DIAG_ERROR ? LOG_ERR : LOG_WARNING, "%s", buf);
		if (d->severity == DIAG_ERROR && !s->last_error[0])
			snprintf(s->last_error, sizeof(s->last_error), "%s", buf);
	}
}

/* refuse - record and report why a new policy was not loaded; the old one stays */
static void refuse(const struct run_opts *o, struct run_state *s, const char *why)
{
	int err;

	if (!s->last_error[0])
		snprintf(s->last_error, sizeof(s->last_error), "%s", why);
	s->last_error_at = time(NULL);
	fprintf(stderr, "bpfwrap: %s; keeping generation %u in force\n", why, s->generation);
	if (s->agent)
		logger_message(agent_logger(s->agent), LOG_ERR,
			       "policy not reloaded (%s): %s; generation %u stays in force", why,
			       s->last_error, s->generation);
	err = save_run_state(o, s, false);
	if (err)
		fprintf(stderr, "bpfwrap: warning: cannot save the state for `status` under %s: %s\n",
			STATE_ROOT, strerror(-err));
}

/* load_policy - build and load into the kernel; refuse a policy with errors if refuse_errors */
static int load_policy(const struct run_opts *o, struct run_state *s, bool refuse_errors)
{
	struct rule_tally tally = { 0 };
	uint64_t *counted = NULL;	/* the old policy's final counts, from the flip */
	struct policy *pol;
	struct compiled_policy *cp;
	bool errors = false;
	uint32_t gen = 0;
	int err;

	s->last_error[0] = '\0';
	err = build_policy(o, s->watch, &pol, &cp, &errors);
	if (err) {
		if (refuse_errors) {
			snprintf(s->last_error, sizeof(s->last_error), "cannot read or compile %s, %s: %s",
				 o->allow, o->deny, strerror(-err));
			refuse(o, s, "the policy cannot be read or compiled");
		}
		return err;
	}
	log_diags(s, pol);
	if (errors && refuse_errors) {
		refuse(o, s, "the policy has errors (above)");
		err = -EINVAL;
		goto out;
	}
	s->last_error[0] = '\0';
	if (errors)
		fprintf(stderr, "bpfwrap: the policy has errors (above); loading it with libwrap's "
				"semantics: a broken hosts.deny or options deny\n");
	if (s->agent)
		agent_mark_policy(s->agent, pol, cp);
	if (s->tally.n) {
		counted = calloc(s->tally.n, sizeof(*counted));
		if (!counted)
			fprintf(stderr, "bpfwrap: warning: out of memory: rule counters restart from 0\n");
	}
	err = loader_load_policy_counted(s->ld, cp, counted, counted ? s->tally.n : 0);
	if (err) {
		fprintf(stderr, "bpfwrap: failed to load the policy into the kernel: %s\n", strerror(-err));
		if (refuse_errors) {
			snprintf(s->last_error, sizeof(s->last_error), "kernel load failed: %s",
				 strerror(-err));
			refuse(o, s, "the policy could not be loaded into the kernel");
		}
		goto out;
	}
	loader_generation(s->ld, &gen);
	s->generation = gen;
	if (tally_next(&s->tally, pol, counted, &tally))
		fprintf(stderr, "bpfwrap: warning: out of memory: rule counters restart from 0\n");
	tally_free(&s->tally);
	s->tally = tally;
	tally = (struct rule_tally){ 0 };
	s->n_rules = pol->n_rules;
	s->n_entries = cp->n_v4 + cp->n_v6;
	s->loaded_at = time(NULL);
	err = save_run_state(o, s, true);
	if (err) {
		fprintf(stderr, "bpfwrap: warning: cannot save the state for `status` under %s: %s\n",
			STATE_ROOT, strerror(-err));
		err = 0;	/* enforcement is fine; only status is poorer */
	}
	if (s->agent) {
		/* the agent decides ASK and names rules with the policy in force */
		err = agent_set_policy(s->agent, pol, cp, gen);
		pol = NULL;
		if (err) {
			fprintf(stderr, "bpfwrap: warning: the agent cannot keep the policy: %s\n",
				strerror(-err));
			err = 0;
		}
	}
out:
	free(counted);
	tally_free(&tally);
	compiled_policy_free(cp);
	policy_free(pol);
	return err;
}

/* run_usage - the options of `bpfwrap run` */
static void run_usage(FILE *out)
{
	fprintf(out,
		"usage: bpfwrap run [--allow FILE] [--deny FILE] [--cgroup PATH[=NAME]]...\n"
		"                   [--pin-dir DIR] [--detach-on-exit] [--no-watch]\n\n"
		"Enforce hosts.allow/hosts.deny in the kernel for the sockets of the given cgroups\n"
		"and stay in the foreground. SIGHUP, or an edit of the files, reloads them (a\n"
		"policy with errors is refused and the one in force stays); SIGTERM/SIGINT exit,\n"
		"leaving the policy enforcing (pinned) unless --detach-on-exit.\n\n"
		"  -a, --allow FILE       hosts.allow (default %s)\n"
		"  -d, --deny FILE        hosts.deny (default %s)\n"
		"  -c, --cgroup PATH[=NAME]  cgroup v2 directory (required, repeatable), absolute\n"
		"                         or relative to the cgroup2 mount; need not exist yet.\n"
		"                         A unit (X.service, .socket, .scope) is guarded from\n"
		"                         its parent slice, so restarts leave no gap. NAME is\n"
		"                         the daemon name for its sockets (default: the program\n"
		"                         systemd runs for the unit, else the name of the\n"
		"                         process that creates the socket); inetd and xinetd\n"
		"                         name each socket after its port's service\n"
		"      --inetd-conf FILE  inetd's services (default %s)\n"
		"      --xinetd-conf FILE xinetd's services (default %s)\n"
		"  -p, --pin-dir DIR      bpffs directory for pins (default %s)\n"
		"      --detach-on-exit   remove everything when exiting\n"
		"      --no-watch         reload on SIGHUP only (default: also when the files,\n"
		"                         or /path files they name, change)\n\n"
		"The agent (logs, spawn, host names and users):\n"
		"      --log syslog|stderr|FILE  where connection lines go (default syslog: the\n"
		"                         journal, else syslog(3)); FILE gets syslog-style lines\n"
		"      --log-format text|json    tcpd lines (default) or one JSON object per line\n"
		"      --log-accept       log every accepted connection (default: only denials,\n"
		"                         and accepts of rules with a `severity` option)\n"
		"      --log-burst N      lines per rule and client per minute (default 5; 0: no limit)\n"
		"      --log-rate RATE[/BURST]  connection lines per second in total, bursts of\n"
		"                         BURST (default 20/200; 0: no limit): a flood of any\n"
		"                         shape writes a bounded number of lines, counted in a\n"
		"                         summary line once a minute\n"
		"      --log-interval SEC  a client's refused connections to a service: the\n"
		"                         first is logged at once, the rest counted and logged\n"
		"                         as \"(N times in the last Ts)\" once per SEC (default 60)\n"
		"      --max-events N     log events the kernel sends per second, all clients\n"
		"                         together (default %u; 0: no cap); `status` counts the rest\n"
		"      --cache-ttl SEC    how long the kernel keeps an answer about a host name or\n"
		"                         user (default 60)\n"
		"      --dns-server IP[:PORT]  ask this DNS server (repeatable; default\n"
		"                         /etc/resolv.conf); [IPv6]:PORT for IPv6\n"
		"      --ident-timeout SEC  identd answer wait for user@host rules (default 5)\n"
		"      --spawn-max N      spawn/twist commands running at once (default 16)\n"
		"      --spawn-rate N     commands per rule per minute (default 10)\n"
		"      --spawn-total N    commands per minute for all rules together (default 60;\n"
		"                         0: no limit)\n"
		"      --spawn-timeout SEC  a command is killed after this (default 30)\n\n"
		"Beyond tcpd (docs/extensions.md):\n"
		"      --extensions FILE  traps, bans and limits (e.g. /etc/bpfwrap.conf; never\n"
		"                         hosts.allow/hosts.deny), reloaded like them\n"
		"      --reject           deny with RST / ICMP port unreachable, not a timeout\n"
		"      --revoke           close connections a reload or a ban newly denies\n"
		"      --max-bans N       size of each ban table (default %u): full, a new ban is\n"
		"                         refused and counted; bans in force are never evicted\n",
		DEFAULT_ALLOW, DEFAULT_DENY, UNITS_INETD_CONF, UNITS_XINETD_CONF, LOADER_PIN_DIR,
		BPFWRAP_EVENT_CAP_DEFAULT, GUARD_BANS_MAX);
}

/* Long options without a short form (values above any character). */
enum {
	OPT_LOG = 256, OPT_LOG_FORMAT, OPT_LOG_ACCEPT, OPT_LOG_BURST, OPT_CACHE_TTL,
	OPT_DNS_SERVER, OPT_IDENT_TIMEOUT, OPT_SPAWN_MAX, OPT_SPAWN_RATE, OPT_SPAWN_TIMEOUT,
	OPT_EXTENSIONS, OPT_REJECT, OPT_REVOKE, OPT_INETD_CONF, OPT_XINETD_CONF, OPT_LOG_RATE,
	OPT_SPAWN_TOTAL, OPT_MAX_BANS, OPT_LOG_INTERVAL, OPT_MAX_EVENTS,
};

/* Largest --log-rate RATE or BURST (lines). */
#define LOG_RATE_MAX 1000000ul

/* parse_count - a decimal number without sign or garbage */
static int parse_count(const char *text, unsigned long *out)
{
	char *end;

	if (!text[0] || text[0] == '-' || text[0] == '+')
		return -EINVAL;
	errno = 0;
	*out = strtoul(text, &end, 10);
	return errno || *end ? -EINVAL : 0;
}

/* parse_rate - --log-rate RATE[/BURST] into the logger's global budget (RATE 0: none) */
static int parse_rate(const char *text, struct logger_config *lc)
{
	char rate[32];
	const char *slash = strchr(text, '/');
	unsigned long r, b = 0;
	size_t n = slash ? (size_t)(slash - text) : strlen(text);

	if (n >= sizeof(rate))
		return -EINVAL;
	memcpy(rate, text, n);
	rate[n] = '\0';
	if (parse_count(rate, &r) || r > LOG_RATE_MAX ||
	    (slash && (parse_count(slash + 1, &b) || b < r || b > LOG_RATE_MAX || !r)))
		return -EINVAL;
	lc->no_global_rate = r == 0;
	lc->rate = (unsigned)r;
	lc->rate_burst = (unsigned)b;	/* 0: the default, at least RATE */
	return 0;
}

/* append_server - add one --dns-server to the comma list c-ares takes */
static bool append_server(struct run_opts *o, const char *server)
{
	size_t len = strlen(o->dns_servers);

	if (!server[0] || strchr(server, ',') ||
	    snprintf(o->dns_servers + len, sizeof(o->dns_servers) - len, "%s%s", len ? "," : "",
		     server) >= (int)(sizeof(o->dns_servers) - len)) {
		fprintf(stderr, "bpfwrap: bad --dns-server '%s'\n", server);
		return false;
	}
	o->agent.resolve.servers = o->dns_servers;
	return true;
}

/* cgroup_record - copy target i's path and name into the state record */
static void cgroup_record(struct run_opts *o, size_t i)
{
	struct run_cgroup *cg = &o->cgroups[i];
	const struct guard_target *t = &o->targets[i];

	_Static_assert(sizeof(cg->path) == sizeof(t->path), "same path size");
	_Static_assert(sizeof(cg->name) == sizeof(t->name), "same name size");
	_Static_assert(sizeof(cg->attach) == sizeof(t->attach), "same attach size");
	memcpy(cg->path, t->path, sizeof(cg->path));
	memcpy(cg->name, t->name, sizeof(cg->name));
	memcpy(cg->attach, t->attach, sizeof(cg->attach));
	cg->attach_id = t->attached ? t->attach_id : 0;
}

/* Largest value of a numeric option: a day in seconds, and running spawn commands. */
#define NUM_OPT_MAX 86400ul
#define SPAWN_MAX_LIMIT 4096ul
#define NO_FLAG SIZE_MAX	/* struct num_opt: no "0 = no limit" flag */

/* A numeric option of `run`: a count up to max, times scale, into an agent_config field. */
struct num_opt {
	int val;		/* getopt_long's value */
	const char *name;	/* the long option, for the message */
	unsigned long max;
	unsigned scale;		/* 1, or MSEC_PER_SEC: given in seconds, kept in ms */
	size_t field;		/* offsetof(struct agent_config, an unsigned) */
	size_t zero_flag;	/* offsetof a bool set when 0 is given (0 = no limit), or
				 * NO_FLAG when 0 is refused */
};

/* AC_UNSIGNED, AC_BOOL - offsetof an agent_config field; another type fails the build */
#define AC_UNSIGNED(f) \
	(offsetof(struct agent_config, f) + 0 * _Generic(((struct agent_config *)0)->f, unsigned: 0))
#define AC_BOOL(f) \
	(offsetof(struct agent_config, f) + 0 * _Generic(((struct agent_config *)0)->f, bool: 0))

static const struct num_opt num_opts[] = {
	{ OPT_LOG_BURST, "log-burst", NUM_OPT_MAX, 1, AC_UNSIGNED(log.burst), AC_BOOL(log.no_ratelimit) },
	{ OPT_CACHE_TTL, "cache-ttl", NUM_OPT_MAX, MSEC_PER_SEC, AC_UNSIGNED(cache_ttl_ms), NO_FLAG },
	{ OPT_LOG_INTERVAL, "log-interval", NUM_OPT_MAX, MSEC_PER_SEC, AC_UNSIGNED(agg_interval_ms),
	  NO_FLAG },
	{ OPT_IDENT_TIMEOUT, "ident-timeout", NUM_OPT_MAX, MSEC_PER_SEC, AC_UNSIGNED(ident.timeout_ms),
	  NO_FLAG },
	{ OPT_SPAWN_MAX, "spawn-max", SPAWN_MAX_LIMIT, 1, AC_UNSIGNED(spawn.max_children), NO_FLAG },
	{ OPT_SPAWN_RATE, "spawn-rate", NUM_OPT_MAX, 1, AC_UNSIGNED(spawn.rate_burst), NO_FLAG },
	{ OPT_SPAWN_TOTAL, "spawn-total", NUM_OPT_MAX, 1, AC_UNSIGNED(spawn.total_burst),
	  AC_BOOL(spawn.no_total_limit) },
	{ OPT_SPAWN_TIMEOUT, "spawn-timeout", NUM_OPT_MAX, MSEC_PER_SEC, AC_UNSIGNED(spawn.timeout_ms),
	  NO_FLAG },
};

/* find_num_opt - the num_opts entry for a getopt_long value, or NULL */
static const struct num_opt *find_num_opt(int val)
{
	for (size_t i = 0; i < sizeof(num_opts) / sizeof(num_opts[0]); i++)
		if (num_opts[i].val == val)
			return &num_opts[i];
	return NULL;
}

/* set_num_opt - text as the value of a numeric option into ac; false (reported) if bad */
static bool set_num_opt(const struct num_opt *no, const char *text, struct agent_config *ac)
{
	unsigned long n;

	if (parse_count(text, &n) || (no->zero_flag == NO_FLAG && n == 0) || n > no->max) {
		fprintf(stderr, "bpfwrap: bad value '%s' for --%s\n", text, no->name);
		return false;
	}
	*(unsigned *)((char *)ac + no->field) = (unsigned)n * no->scale;
	if (no->zero_flag != NO_FLAG)
		*(bool *)((char *)ac + no->zero_flag) = n == 0;
	return true;
}

/* parse_run_args - the options of `bpfwrap run` into o; true to go on, false to stop
 * with exit status *status (0 after --help, 2 for a usage error, reported) */
static bool parse_run_args(int argc, char **argv, struct run_opts *o, int *status)
{
	static const struct option longopts[] = {
		{ "allow", required_argument, NULL, 'a' },
		{ "deny", required_argument, NULL, 'd' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "detach-on-exit", no_argument, NULL, 'X' },
		{ "no-watch", no_argument, NULL, 'W' },
		{ "log", required_argument, NULL, OPT_LOG },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "log-accept", no_argument, NULL, OPT_LOG_ACCEPT },
		{ "log-burst", required_argument, NULL, OPT_LOG_BURST },
		{ "log-rate", required_argument, NULL, OPT_LOG_RATE },
		{ "cache-ttl", required_argument, NULL, OPT_CACHE_TTL },
		{ "log-interval", required_argument, NULL, OPT_LOG_INTERVAL },
		{ "max-events", required_argument, NULL, OPT_MAX_EVENTS },
		{ "dns-server", required_argument, NULL, OPT_DNS_SERVER },
		{ "ident-timeout", required_argument, NULL, OPT_IDENT_TIMEOUT },
		{ "spawn-max", required_argument, NULL, OPT_SPAWN_MAX },
		{ "spawn-rate", required_argument, NULL, OPT_SPAWN_RATE },
		{ "spawn-total", required_argument, NULL, OPT_SPAWN_TOTAL },
		{ "spawn-timeout", required_argument, NULL, OPT_SPAWN_TIMEOUT },
		{ "extensions", required_argument, NULL, OPT_EXTENSIONS },
		{ "inetd-conf", required_argument, NULL, OPT_INETD_CONF },
		{ "xinetd-conf", required_argument, NULL, OPT_XINETD_CONF },
		{ "reject", no_argument, NULL, OPT_REJECT },
		{ "revoke", no_argument, NULL, OPT_REVOKE },
		{ "max-bans", required_argument, NULL, OPT_MAX_BANS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent_config *ac = &o->agent;
	const struct num_opt *no;
	int c, err;

	memset(o, 0, sizeof(*o));
	o->allow = DEFAULT_ALLOW;
	o->deny = DEFAULT_DENY;
	o->pin_dir = LOADER_PIN_DIR;
	o->watch = true;
	ac->log.target = "syslog";
	ac->ident.timeout_ms = 5000;
	optind = 1;
	*status = 2;
	while ((c = getopt_long(argc, argv, "a:d:c:p:h", longopts, NULL)) != -1) {
		no = find_num_opt(c);
		if (no) {
			if (!set_num_opt(no, optarg, ac))
				return false;
			continue;
		}
		switch (c) {
		case OPT_LOG:
			ac->log.target = optarg;
			break;
		case OPT_LOG_FORMAT:
			if (!strcmp(optarg, "text")) {
				ac->log.format = LOGGER_TEXT;
			} else if (!strcmp(optarg, "json")) {
				ac->log.format = LOGGER_JSON;
			} else {
				fprintf(stderr, "bpfwrap: bad --log-format '%s': text or json\n", optarg);
				return false;
			}
			break;
		case OPT_LOG_ACCEPT:
			ac->log_accept = true;
			break;
		case OPT_LOG_RATE:
			if (parse_rate(optarg, &ac->log)) {
				fprintf(stderr, "bpfwrap: bad --log-rate '%s': RATE[/BURST] lines per "
						"second, 0 for no limit\n", optarg);
				return false;
			}
			break;
		case OPT_DNS_SERVER:
			if (!append_server(o, optarg))
				return false;
			break;
		case OPT_MAX_EVENTS: {
			unsigned long n;

			if (parse_count(optarg, &n) || n >= BPFWRAP_EVENT_CAP_NONE) {
				fprintf(stderr, "bpfwrap: bad value '%s' for --max-events\n", optarg);
				return false;
			}
			o->event_cap = n ? (uint32_t)n : BPFWRAP_EVENT_CAP_NONE;
			break;
		}
		case 'a':
			o->allow = optarg;
			break;
		case 'd':
			o->deny = optarg;
			break;
		case 'p':
			o->pin_dir = optarg;
			break;
		case 'X':
			o->detach_on_exit = true;
			break;
		case 'W':
			o->watch = false;
			break;
		case 'c': {
			const char *why;

			if (o->n_cgroups == MAX_CGROUPS) {
				fprintf(stderr, "bpfwrap: at most %d --cgroup options\n", MAX_CGROUPS);
				return false;
			}
			err = units_plan(optarg, &o->targets[o->n_cgroups], &why);
			if (err) {
				fprintf(stderr, "bpfwrap: bad --cgroup '%s': %s\n", optarg,
					why ? why : strerror(-err));
				return false;
			}
			cgroup_record(o, o->n_cgroups);
			o->n_cgroups++;
			break;
		}
		case OPT_INETD_CONF:
			o->files.inetd_conf = optarg;
			break;
		case OPT_XINETD_CONF:
			o->files.xinetd_conf = optarg;
			break;
		case OPT_EXTENSIONS:
			o->guard.extensions = optarg;
			break;
		case OPT_REJECT:
			o->guard.reject = true;
			break;
		case OPT_REVOKE:
			o->guard.revoke = true;
			break;
		case OPT_MAX_BANS: {
			unsigned long n;

			if (parse_count(optarg, &n) || n == 0 || n > GUARD_MAX_BANS_LIMIT) {
				fprintf(stderr, "bpfwrap: bad value '%s' for --max-bans: want 1..%u\n",
					optarg, GUARD_MAX_BANS_LIMIT);
				return false;
			}
			o->guard.max_bans = (uint32_t)n;
			break;
		}
		case 'h':
			run_usage(stdout);
			*status = 0;
			return false;
		default:
			run_usage(stderr);
			return false;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bpfwrap: run: unexpected argument '%s'\n", argv[optind]);
		return false;
	}
	if (o->n_cgroups == 0) {
		/* No default: the root cgroup would be every process on the machine,
		 * and the loader refuses it. A deployment names its services. */
		fprintf(stderr, "bpfwrap: run: give at least one --cgroup (e.g. system.slice or "
				"system.slice/sshd.service=sshd)\n");
		return false;
	}
	return true;
}

/* report_units - what units_sync() could not do yet, said once per change */
static void report_units(const struct units_report *rep, struct units_report *said)
{
	if (rep->waiting && rep->waiting != said->waiting)
		printf("bpfwrap: waiting for %zu cgroup(s) to appear; each is enforced the moment it "
		       "does (status shows which)\n", rep->waiting);
	if (rep->unnamed && strcmp(rep->first_unnamed, said->first_unnamed))
		fprintf(stderr,
			"bpfwrap: warning: no daemon name for %s (systemd did not say which program it "
			"runs): its sockets are named by the process that opens them, and a socket "
			"opened before bpfwrap is decided as an unnamed daemon (status: \"no owner\")\n"
			"  hint: give the name tcpd would use: --cgroup PATH=NAME\n",
			rep->first_unnamed);
	if (rep->superserver_err && rep->superserver_err != said->superserver_err)
		fprintf(stderr, "bpfwrap: warning: cannot read the super-server's services: %s; its "
				"sockets keep its own name\n", strerror(-rep->superserver_err));
	*said = *rep;
}

/* attach_all - name, attach and adopt every cgroup; *adopted counts older sockets */
static int attach_all(struct run_opts *o, struct run_state *s, int *adopted)
{
	struct units_report rep;
	int err;

	*adopted = 0;
	/* names into the kernel first, then the programs (units_sync) */
	err = units_sync(s->ld, o->targets, o->n_cgroups, &o->files, &rep);
	if (err) {
		fprintf(stderr, "bpfwrap: failed to attach to the cgroups (%s): %s\n",
			o->targets[0].arg, strerror(-err));
		return err;
	}
	report_units(&rep, &s->units_said);
	for (size_t i = 0; i < o->n_cgroups; i++) {
		struct guard_target *t = &o->targets[i];

		cgroup_record(o, i);
		/* An earlier bpfwrap attached to the unit itself: the programs
		 * on its parent decide its sockets now (after they were attached:
		 * make-before-break). */
		if (t->attached && strcmp(t->attach, t->path))
			loader_detach_cgroup(s->ld, t->path);
		if (access(t->path, F_OK))
			continue;
		/* After attaching: a socket created meanwhile was seen by
		 * sock_create. Adoption gives older sockets their process's
		 * name; where the sandbox forbids it, the cgroup's name does. */
		err = loader_adopt_sockets(s->ld, t->path);
		if (err >= 0)
			*adopted += err;
	}
	return 0;
}

/* forget_attach - the cgroup with id cgid was removed: every target on it waits again */
static void forget_attach(struct run_opts *o, struct run_state *s, uint64_t cgid)
{
	loader_forget_cgroup_id(s->ld, cgid);	/* its pins; the kernel dropped the links */
	for (size_t j = 0; j < o->n_cgroups; j++) {
		struct guard_target *t = &o->targets[j];

		if (!t->attached || t->attach_id != cgid)
			continue;
		t->attached = false;
		t->attach_id = 0;
		s->was_attached[j] = false;
		cgroup_record(o, j);
	}
}

/*
 * check_links - are this run's programs still where it put them (the
 * kernel's link info: attached to that cgroup id)? Run on every tick, and
 * before saying anything about enforcement. An attach point that was
 * removed took its programs with it: it is waited for again, like one that
 * never existed. Links detached while their cgroup exists end the run
 * (s->lost): `bpfwrap detach` removed them (the pin dir is gone), or
 * something else did. Either way the run says so and exits rather than
 * attach again: detach is the administrator's word that nothing should be
 * enforced, and a run that re-attached would undo it (and a `bpfwrap run`
 * that refused detach would leave no way to stop enforcement while it
 * runs); a run that went on would keep claiming what is not true.
 */
static void check_links(struct run_opts *o, struct run_state *s)
{
	bool removed = false;

	if (access(o->pin_dir, F_OK)) {
		/* nothing is left to adopt: what this run holds ends with it */
		s->lost = LOST_DETACHED;
		return;
	}
	for (size_t i = 0; i < o->n_cgroups && !s->lost; i++) {
		struct guard_target *t = &o->targets[i];
		uint64_t now = 0;
		size_t held = 0;
		int n;

		if (!t->attached)
			continue;
		if (loader_cgroup_id(t->attach, &now) || now != t->attach_id) {
			printf("bpfwrap: cgroup %s was removed, and the programs on it with it; "
			       "waiting for it to appear again\n", t->attach);
			forget_attach(o, s, t->attach_id);
			removed = true;
			continue;
		}
		n = loader_links_attached(s->ld, t->attach_id, &held);
		if (n >= (int)held)
			continue;
		/* `bpfwrap detach` detaches link by link, then removes the dir */
		for (int waited = 0; waited < DETACH_SETTLE_MS && !access(o->pin_dir, F_OK);
		     waited += DETACH_POLL_MS)
			usleep(DETACH_POLL_MS * 1000);
		s->lost = access(o->pin_dir, F_OK) ? LOST_DETACHED : LOST_OUTSIDE;
		snprintf(s->lost_at, sizeof(s->lost_at), "%s", t->attach);
	}
	if (removed && !s->lost && save_run_state(o, s, false))
		fprintf(stderr, "bpfwrap: warning: cannot save the state for `status` under %s\n",
			STATE_ROOT);
}

/* units_tick - attach cgroups that appeared, refresh the units' names now and then */
static void units_tick(struct run_opts *o, struct run_state *s)
{
	struct units_report rep;
	bool waiting = false, attached = false;
	int err;

	for (size_t i = 0; i < o->n_cgroups; i++)
		waiting |= !o->targets[i].attached;
	if (!waiting && ++s->ticks % UNITS_REFRESH_TICKS)
		return;
	err = units_sync(s->ld, o->targets, o->n_cgroups, &o->files, &rep);
	if (err) {
		fprintf(stderr, "bpfwrap: failed to refresh the guarded cgroups: %s\n", strerror(-err));
		return;
	}
	for (size_t i = 0; i < o->n_cgroups; i++) {
		if (o->targets[i].attached && !s->was_attached[i]) {
			printf("bpfwrap: attached to %s (for %s)\n", o->targets[i].attach,
			       o->targets[i].arg);
			attached = true;
		}
		s->was_attached[i] = o->targets[i].attached;
		cgroup_record(o, i);
	}
	report_units(&rep, &s->units_said);
	/* status shows where the programs are (with the cgroup's id) */
	if (attached && save_run_state(o, s, false))
		fprintf(stderr, "bpfwrap: warning: cannot save the state for `status` under %s\n",
			STATE_ROOT);
}

/* same_cgroup - does a saved "PATH[=NAME]" name the cgroup at path */
static bool same_cgroup(const char *saved, const char *path)
{
	size_t n = strlen(path);

	return !strncmp(saved, path, n) && (saved[n] == '\0' || saved[n] == '=');
}

/* attach_used - is dir the attach point of one of this run's targets */
static bool attach_used(const struct run_opts *o, const char *dir)
{
	for (size_t j = 0; j < o->n_cgroups; j++)
		if (!strcmp(o->targets[j].attach, dir))
			return true;
	return false;
}

/* drop_old_cgroups - after a restart, detach the cgroups the previous run had and this one lacks */
static void drop_old_cgroups(const struct run_opts *o, struct run_state *s,
			     const struct saved_state *prev)
{
	for (size_t i = 0; i < prev->n_cgroups; i++) {
		struct guard_target old;
		const char *why;
		bool kept = false;

		for (size_t j = 0; j < o->n_cgroups && !kept; j++)
			kept = same_cgroup(prev->cgroups[i], o->targets[j].path);
		if (kept || units_plan(prev->cgroups[i], &old, &why))
			continue;
		loader_set_cgroup_owner(s->ld, old.path, "", 0, 0);
		if (old.unit[0])
			loader_set_unit_name(s->ld, old.unit, "", 0);
		/* its programs: where this version put them, and where older ones did */
		if (!attach_used(o, old.attach) && loader_detach_cgroup(s->ld, old.attach) == 0)
			printf("bpfwrap: detached from cgroup '%s' (not given any more)\n", old.attach);
		if (strcmp(old.path, old.attach) && !attach_used(o, old.path))
			loader_detach_cgroup(s->ld, old.path);
	}
}

/* guard_has - is dir among the first n cgroups given to the extensions */
static bool guard_has(const struct run_opts *o, size_t n, const char *dir)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(o->guard_cgroups[i], dir))
			return true;
	return false;
}

/* describe - the cgroups as "PATH (name NAME), ..." for the ready line */
static void describe(const struct run_opts *o, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < o->n_cgroups && off < size; i++) {
		int n = snprintf(buf + off, size - off, "%s%s%s%s%s", i ? ", " : "", o->cgroups[i].path,
				 o->cgroups[i].name[0] ? " (daemon " : "", o->cgroups[i].name,
				 o->cgroups[i].name[0] ? ")" : "");

		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* reload_extensions - the extensions file (then --revoke); a refusal (the lines in
 * force stay) or its end is recorded for `status` */
static void reload_extensions(const struct run_opts *o, struct run_state *s)
{
	bool was = s->ext_error[0] != '\0';
	int err;

	if (!s->guard)
		return;
	err = guard_reload(s->guard);
	if (err) {
		snprintf(s->ext_error, sizeof(s->ext_error), "%s", guard_last_error(s->guard));
		if (!s->ext_error[0])
			snprintf(s->ext_error, sizeof(s->ext_error), "%s", strerror(-err));
		s->ext_error_at = time(NULL);
	} else {
		s->ext_error[0] = '\0';
	}
	if (err || was) {
		err = save_run_state(o, s, false);
		if (err)
			fprintf(stderr, "bpfwrap: warning: cannot save the state for `status` under %s: "
					"%s\n", STATE_ROOT, strerror(-err));
	}
}

/* reload - SIGHUP: a new policy into the idle slot, or keep the one in force */
static void reload(struct run_opts *o, struct run_state *s)
{
	int err;

	sd_notify(0, "RELOADING=1");
	err = load_policy(o, s, true);
	check_links(o, s);	/* detached meanwhile: nothing is enforced, say nothing of it */
	if (s->lost)
		return;
	if (!err) {
		printf("bpfwrap: reloaded: enforcing %zu rules (%zu entries), generation %u\n", s->n_rules,
		       s->n_entries, s->generation);
		sd_notifyf(0, "READY=1\nSTATUS=enforcing %zu rules, generation %u", s->n_rules,
			   s->generation);
	} else {
		fprintf(stderr, "bpfwrap: reload failed; generation %u stays in force\n", s->generation);
		sd_notify(0, "READY=1");
	}
	reload_extensions(o, s);
}

/* watch_patterns - watch the /path files a pattern list names (bounded depth) */
static void watch_patterns(struct watcher *w, const struct pattern_list *l, int depth)
{
	if (!l || depth > 8)
		return;
	for (size_t i = 0; i < l->count; i++) {
		const struct pattern *p = &l->items[i];

		if (p->kind == PAT_FILE && p->text)
			watch_add(w, p->text);	/* best effort: a missing directory is not fatal */
		if (p->host && p->host->kind == PAT_FILE && p->host->text)
			watch_add(w, p->host->text);
		watch_patterns(w, p->file_patterns, depth + 1);
	}
}

/* watch_policy - (re)build the watch set: both files, the extensions file and
 * every /path that pol (NULL: none yet) names */
static int watch_policy(struct watcher *w, const struct run_opts *o, const struct policy *pol)
{
	const struct table *t[2];
	int err;

	watch_clear(w);
	err = watch_add(w, o->allow);
	if (!err)
		err = watch_add(w, o->deny);
	if (!err && o->guard.extensions)
		err = watch_add(w, o->guard.extensions);
	if (err)
		return err;
	if (pol) {
		t[0] = &pol->allow;
		t[1] = &pol->deny;
		for (int i = 0; i < 2; i++)
			for (size_t j = 0; j < t[i]->n_rules; j++) {
				watch_patterns(w, &t[i]->rules[j].daemons, 0);
				watch_patterns(w, &t[i]->rules[j].clients, 0);
			}
	}
	return 0;
}

/* unseen_tick - look for guarded sockets bpfwrap cannot decide (unseen.h), warn about
 * new ones; true when the counts changed (status should see them now) */
static bool unseen_tick(const struct run_opts *o, struct run_state *s)
{
	struct unseen_report *rep = &s->unseen_rep;
	struct unseen_report was = *rep;
	int err = unseen_scan(&s->unseen, o->targets, o->n_cgroups, rep);

	s->unseen_ticks = 0;
	if (err) {
		fprintf(stderr, "bpfwrap: cannot look for sockets created outside the guarded cgroups: "
			"%s\n", strerror(-err));
		*rep = was;
		return false;
	}
	s->unseen_at = time(NULL);
	for (size_t i = 0; i < rep->n_new; i++) {
		const struct unseen_sock *u = &rep->new_socks[i];

		fprintf(stderr, "bpfwrap: warning: pid %d (%s) %s port %u: socket created outside the "
			"guarded cgroup (passed in or inherited): bpfwrap never decides its "
			"connections\n", (int)u->pid, u->comm, u->proto, u->port);
		if (s->agent)
			logger_message(agent_logger(s->agent), LOG_WARNING,
				       "pid %d (%s) %s port %u: socket created outside the guarded "
				       "cgroup (passed in or inherited): bpfwrap never decides its "
				       "connections", (int)u->pid, u->comm, u->proto, u->port);
	}
	return rep->unseen != was.unseen || rep->partly != was.partly ||
	       rep->outside != was.outside || rep->errors != was.errors;
}

/* record_agent - the agent's counters into the state dir, for `status` */
static void record_agent(const struct run_opts *o, const struct run_state *s)
{
	const struct agent *a = s->agent;
	struct agent_stats st;
	struct agent_record r;

	if (!a)
		return;
	agent_get_stats(a, &st);
	r = (struct agent_record){
		.at = (long long)time(NULL),
		.pid = (int)getpid(),
		.lines = st.log.logged,
		.suppressed_client = st.log.suppressed,
		.suppressed_global = st.log.suppressed_global,
		.lost = st.log.lost + st.log.write_errors,
		.log_rate = st.log.rate,
		.log_burst = st.log.rate_burst,
		.spawned = st.spawn.started,
		.refused_busy = st.spawn.refused_busy,
		.refused_rate = st.spawn.refused_rate,
		.refused_total = st.spawn.refused_total,
		.spawn_total = st.spawn.total_burst,
		.unseen = s->unseen_rep.unseen,
		.unseen_partly = s->unseen_rep.partly,
		.unseen_outside = s->unseen_rep.outside,
		.unseen_errors = s->unseen_rep.errors,
		.unseen_at = (long long)s->unseen_at,
	};
	save_agent_record(o->pin_dir, &r);	/* best effort: status says when it was recorded */
}

/* serve - the foreground loop: SIGHUP or a file edit reloads, SIGTERM/SIGINT return */
static int serve(struct run_opts *o, struct run_state *s, int sfd, struct watcher *w)
{
	struct itimerspec tick = { .it_interval = { UNITS_TICK_S, 0 }, .it_value = { UNITS_TICK_S, 0 } };
	struct itimerspec every = {
		.it_interval = { .tv_sec = AGENT_RECORD_MS / 1000,
				 .tv_nsec = (AGENT_RECORD_MS % 1000) * 1000000L },
	};
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC), rc = 1;
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	int rfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

	if (ep < 0) {
		fprintf(stderr, "bpfwrap: epoll: %s\n", strerror(errno));
		goto out;
	}
	ev.data.fd = sfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev)) {
		fprintf(stderr, "bpfwrap: epoll: %s\n", strerror(errno));
		goto out;
	}
	if (w) {
		ev.data.fd = watch_fd(w);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev)) {
			fprintf(stderr, "bpfwrap: epoll: %s\n", strerror(errno));
			goto out;
		}
	}
	if (s->agent) {
		ev.data.fd = agent_fd(s->agent);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev)) {
			fprintf(stderr, "bpfwrap: epoll: %s\n", strerror(errno));
			goto out;
		}
	}
	/* the cgroups' tick: units_tick() */
	ev.data.fd = tfd;
	if (tfd < 0 || timerfd_settime(tfd, 0, &tick, NULL) || epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev)) {
		fprintf(stderr, "bpfwrap: timer: %s\n", strerror(errno));
		goto out;
	}
	/* the agent's counters for status: record_agent() */
	every.it_value = every.it_interval;
	ev.data.fd = rfd;
	if (rfd < 0 || timerfd_settime(rfd, 0, &every, NULL) || epoll_ctl(ep, EPOLL_CTL_ADD, rfd, &ev)) {
		fprintf(stderr, "bpfwrap: timer: %s\n", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < o->n_cgroups; i++)
		s->was_attached[i] = o->targets[i].attached;
	unseen_tick(o, s);
	record_agent(o, s);
	for (;;) {
		struct epoll_event got[4];
		int n = epoll_wait(ep, got, 4, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "bpfwrap: epoll: %s\n", strerror(errno));
			goto out;
		}
		for (int i = 0; i < n; i++) {
			uint64_t expirations;

			if (got[i].data.fd == sfd) {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
					continue;
				check_links(o, s);	/* what the exit says must be true */
				if (si.ssi_signo != SIGHUP || s->lost) {
					rc = 0;
					goto out;
				}
				printf("bpfwrap: SIGHUP: reloading %s and %s\n", o->allow, o->deny);
				reload(o, s);
			} else if (got[i].data.fd == tfd) {
				if (read(tfd, &expirations, sizeof(expirations)) <= 0)
					continue;
				check_links(o, s);
				if (s->lost) {
					rc = 0;
					goto out;
				}
				units_tick(o, s);
				if (++s->unseen_ticks >= UNSEEN_SCAN_TICKS && unseen_tick(o, s))
					record_agent(o, s);
			} else if (got[i].data.fd == rfd) {
				if (read(rfd, &expirations, sizeof(expirations)) > 0)
					record_agent(o, s);
			} else if (s->agent && got[i].data.fd == agent_fd(s->agent)) {
				agent_process(s->agent);
			} else if (w && got[i].data.fd == watch_fd(w) && watch_process(w) == 1) {
				printf("bpfwrap: policy files changed: reloading %s and %s\n", o->allow, o->deny);
				reload(o, s);
			}
			if (s->lost) {
				rc = 0;
				goto out;
			}
		}
	}
out:
	if (tfd >= 0)
		close(tfd);
	if (rfd >= 0)
		close(rfd);
	if (ep >= 0)
		close(ep);
	return rc;
}

/* report_agent - what the agent did, one line at exit */
static void report_agent(const struct agent *a)
{
	struct agent_stats st;

	agent_get_stats(a, &st);
	printf("bpfwrap: agent: %llu denials (%llu events), %llu accepts, %llu questions answered "
	       "(%llu allowed, %llu denied), %llu commands run, %llu refused by limits; "
	       "%llu log lines, %llu suppressed per client, %llu by the global rate, %llu lost\n",
	       (unsigned long long)st.denials, (unsigned long long)st.events[BPFWRAP_EV_DENY],
	       (unsigned long long)st.events[BPFWRAP_EV_ACCEPT], (unsigned long long)st.asked,
	       (unsigned long long)st.ask_allowed, (unsigned long long)st.ask_denied,
	       (unsigned long long)st.spawned, (unsigned long long)st.spawn_refused,
	       (unsigned long long)st.log.logged, (unsigned long long)st.log.suppressed,
	       (unsigned long long)st.log.suppressed_global,
	       (unsigned long long)(st.log.lost + st.log.write_errors));
}

/* check_log_file - a --log FILE must be safe to append to (logger_file_open says why not)
 * before anything is loaded; false after saying why */
static bool check_log_file(const char *target)
{
	char why[PATH_MAX + 128];
	int fd;

	if (!target || !strcmp(target, "syslog") || !strcmp(target, "stderr"))
		return true;
	fd = logger_file_open(target, why, sizeof(why));
	if (fd < 0) {
		fprintf(stderr, "bpfwrap: --log %s: %s\n"
				"  hint: a log file belongs in a directory only root can write "
				"(e.g. /var/log), and must not be a link\n", target, why);
		return false;
	}
	close(fd);
	return true;
}

/* claim - this run's pin dir and attach points for it alone (instance.h); false
 * after saying who holds them */
static bool claim(const struct run_opts *o, struct run_state *s)
{
	const char *attach[MAX_CGROUPS], *arg = "?";
	struct instance_conflict c;
	bool same;
	int err;

	for (size_t i = 0; i < o->n_cgroups; i++)
		attach[i] = o->targets[i].attach;
	err = instance_claim(o->pin_dir, attach, o->n_cgroups, &s->inst, &c);
	if (!err)
		return true;
	if (err != -EBUSY) {
		fprintf(stderr, "bpfwrap: cannot claim pin dir %s (under %s): %s\n", o->pin_dir,
			STATE_ROOT, strerror(-err));
		return false;
	}
	for (size_t i = 0; i < o->n_cgroups; i++)
		if (!strcmp(o->targets[i].attach, c.mine)) {
			arg = o->targets[i].arg;
			break;
		}
	same = !strcmp(c.mine, c.theirs);
	if (!c.mine[0])
		fprintf(stderr, "bpfwrap: refused: pin dir %s is in use by bpfwrap run pid %d; one run "
				"per pin dir: stop that one first (or give this run another --pin-dir "
				"and other cgroups)\n", c.pin_dir, c.pid);
	else if (c.prog_id)
		fprintf(stderr, "bpfwrap: refused: --cgroup %s is enforced on %s, where a bpfwrap "
				"program (id %u) is attached that no pin in %s holds: another bpfwrap "
				"enforces there (bpftool cgroup show %s); one cgroup takes one bpfwrap\n",
			arg, c.mine, c.prog_id, o->pin_dir, c.mine);
	else if (c.running)
		fprintf(stderr, "bpfwrap: refused: --cgroup %s is enforced on %s%s%s, guarded by "
				"bpfwrap run pid %d (pin dir %s); one cgroup takes one bpfwrap: give "
				"that run this --cgroup, or stop it first\n",
			arg, c.mine, same ? "" : ", which overlaps ", same ? "" : c.theirs, c.pid,
			c.pin_dir);
	else
		fprintf(stderr, "bpfwrap: refused: --cgroup %s is enforced on %s%s%s, where the pins "
				"of a stopped bpfwrap run (pin dir %s, last pid %d) still enforce; "
				"remove them with `bpfwrap detach --pin-dir %s`, or take them over with "
				"--pin-dir %s\n",
			arg, c.mine, same ? "" : ", which overlaps ", same ? "" : c.theirs, c.pin_dir,
			c.pid, c.pin_dir, c.pin_dir);
	return false;
}

/* pin_dir_empty - does the pin dir hold nothing (or not exist): a start from scratch */
static bool pin_dir_empty(const char *dir)
{
	struct dirent *de;
	bool empty = true;
	DIR *d = opendir(dir);

	if (!d)
		return errno == ENOENT;
	while (empty && (de = readdir(d)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	closedir(d);
	return empty;
}

/* undo_start - a start that failed: remove what it made if nothing was pinned
 * before it (fresh; made_dir: the pin dir did not exist), else leave the
 * adopted enforcement in force; true when nothing of this pin dir is left */
static bool undo_start(const struct run_opts *o, const struct run_state *s, bool fresh,
		       bool made_dir)
{
	char dir[PATH_MAX];
	int err = 0;

	if (!fresh) {
		fprintf(stderr, "bpfwrap: start failed; the enforcement pinned in %s stays in force "
				"(generation %u)\n", o->pin_dir, s->generation);
		return false;
	}
	/* an empty directory that was there before is not ours to remove */
	if (!pin_dir_empty(o->pin_dir))
		err = loader_unpin_all(o->pin_dir);
	else if (made_dir)
		rmdir(o->pin_dir);
	if (!state_dir(o->pin_dir, dir, sizeof(dir)))
		remove_state(dir);
	if (err) {
		fprintf(stderr, "bpfwrap: start failed, and what it pinned in %s cannot be removed: "
				"%s (bpfwrap detach --pin-dir %s)\n", o->pin_dir, strerror(-err),
			o->pin_dir);
		return false;
	}
	fprintf(stderr, "bpfwrap: start failed; removed what it had pinned in %s: nothing is "
			"enforced\n", o->pin_dir);
	return true;
}

/* say_exit - the last line of a run: what stays in force; the exit status */
static int say_exit(const struct run_opts *o, const struct run_state *s)
{
	switch (s->lost) {
	case LOST_DETACHED:
		printf("bpfwrap: detached by `bpfwrap detach` (the pins in %s are gone): nothing is "
		       "enforced any more; exiting\n", o->pin_dir);
		return 0;
	case LOST_OUTSIDE:
		fprintf(stderr, "bpfwrap: the programs on %s were detached, not by bpfwrap: nothing "
				"is enforced there; exiting (restart bpfwrap run to attach again; "
				"`bpfwrap status` shows what is still attached)\n", s->lost_at);
		return 1;
	default:
		printf("bpfwrap: exiting; generation %u stays enforced (pinned in %s)\n", s->generation,
		       o->pin_dir);
		return 0;
	}
}

/* cmd_run - load, attach and enforce in the kernel; stay in the foreground */
int cmd_run(int argc, char **argv)
{
	struct loader_opts lopts = { 0 };
	struct run_state s = { 0 };
	struct run_opts *o;
	char where[4096];
	uint32_t old_gen = 0;
	sigset_t mask;
	struct watcher *w = NULL;
	struct saved_state *prev;
	bool have_prev = false, fresh = false, made_dir = false, started = false, forget = false;
	int rc, err, sfd = -1, adopted = 0;

	o = calloc(1, sizeof(*o));
	prev = calloc(1, sizeof(*prev));
	if (!o || !prev) {
		fprintf(stderr, "bpfwrap: out of memory\n");
		free(o);
		free(prev);
		return 1;
	}
	if (!parse_run_args(argc, argv, o, &rc))
		goto out;
	rc = 1;
	setvbuf(stdout, NULL, _IOLBF, 0);	/* "ready" must reach a pipe at once */
	if (!check_log_file(o->agent.log.target))
		goto out;
	/* before anything is touched: a refused run changes nothing */
	if (!claim(o, &s))
		goto out;
	made_dir = access(o->pin_dir, F_OK) != 0;
	fresh = pin_dir_empty(o->pin_dir);

	/* signals first: a SIGHUP during start-up is served after ready */
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		fprintf(stderr, "bpfwrap: cannot watch signals: %s\n", strerror(errno));
		goto out;
	}

	lopts.pin_dir = o->pin_dir;
	/* always set: a run's window and cap replace an earlier run's */
	if (!o->agent.agg_interval_ms)
		o->agent.agg_interval_ms = LOG_INTERVAL_DEFAULT_S * 1000;
	lopts.agg_ns = (uint64_t)o->agent.agg_interval_ms * 1000000ull;
	lopts.event_cap = o->event_cap ? o->event_cap : BPFWRAP_EVENT_CAP_DEFAULT;
	err = loader_open(&lopts, &s.ld);
	if (err) {
		fprintf(stderr, "bpfwrap: failed to load the BPF programs (pin dir %s): %s\n", o->pin_dir,
			strerror(-err));
		goto out;
	}
	err = agent_open(&s.agent, s.ld, &o->agent);
	if (err) {
		fprintf(stderr, "bpfwrap: cannot start the agent (log %s): %s\n",
			o->agent.log.target ? o->agent.log.target : "syslog", strerror(-err));
		goto out;
	}
	loader_generation(s.ld, &old_gen);
	s.generation = old_gen;
	if (!state_dir(o->pin_dir, where, sizeof(where)) && load_saved_state(where, prev) == 0)
		have_prev = true;
	if (old_gen)
		printf("bpfwrap: adopting the enforcement pinned in %s (generation %u in force)\n",
		       o->pin_dir, old_gen);

	/* watch before the first load: no edit after it can be missed */
	if (o->watch) {
		err = watch_open_prompt(&w, 0, 0);
		if (!err)
			err = watch_policy(w, o, NULL);	/* the /path files: at the first load */
		if (err) {
			fprintf(stderr, "bpfwrap: warning: cannot watch the policy files (%s); "
					"reload with SIGHUP\n", strerror(-err));
			if (w)
				watch_close(w);
			w = NULL;
		}
	}
	s.watch = w;
	/* With a policy in force (a restart), a broken file must not replace it. */
	err = load_policy(o, &s, old_gen != 0);
	if (err)
		goto out;
	/* Alive before the first packet can reach an ASK entry of ours: questions
	 * wait in the ring buffer until serve() runs, instead of being denied
	 * as "agent down" (that SYN's flow would then not be asked again). */
	err = agent_start(s.agent);
	if (err)
		fprintf(stderr, "bpfwrap: warning: cannot mark the agent alive (%s); host name and "
				"user rules use their if-unknown verdict\n", strerror(-err));
	err = attach_all(o, &s, &adopted);
	if (err)
		goto out;
	if (have_prev && old_gen)
		drop_old_cgroups(o, &s, prev);
	if (guard_wanted(&o->guard)) {
		size_t n = 0;

		for (size_t i = 0; i < o->n_cgroups; i++)
			if (o->targets[i].attached && !guard_has(o, n, o->targets[i].attach))
				o->guard_cgroups[n++] = o->targets[i].attach;
		o->guard.cgroups = o->guard_cgroups;
		o->guard.n_cgroups = n;
		o->guard.pin_dir = o->pin_dir;
		err = guard_open(&o->guard, &s.guard);
		if (err) {
			fprintf(stderr, "bpfwrap: cannot start the extensions (%s): %s\n",
				o->guard.extensions ? o->guard.extensions : "--reject/--revoke",
				strerror(-err));
			goto out;
		}
	} else {
		guard_forget(o->pin_dir);	/* a previous run's extensions end with it */
	}

	describe(o, where, sizeof(where));
	printf("bpfwrap: ready: enforcing %zu rules (%zu entries), generation %u, on %s; "
	       "%d existing sockets adopted\n",
	       s.n_rules, s.n_entries, s.generation, where, adopted);
	agent_process(s.agent);	/* renew the heartbeat if attaching took long */
	logger_message(agent_logger(s.agent), LOG_INFO,
		       "enforcing %zu rules, generation %u; logging to %s", s.n_rules, s.generation,
		       logger_target_name(agent_logger(s.agent)));
	sd_notifyf(0, "READY=1\nSTATUS=enforcing %zu rules, generation %u\nMAINPID=%d", s.n_rules,
		   s.generation, (int)getpid());

	started = true;
	rc = serve(o, &s, sfd, w);
	sd_notify(0, "STOPPING=1");
	agent_flush(s.agent);
	report_agent(s.agent);
	record_agent(o, &s);
	guard_close(s.guard);
	s.guard = NULL;
	agent_close(s.agent);	/* marks the agent dead: ASK falls back at once */
	s.agent = NULL;
	if (o->detach_on_exit) {
		char dir[PATH_MAX];

		loader_close(s.ld);
		s.ld = NULL;
		err = loader_unpin_all(o->pin_dir);
		if (err) {
			fprintf(stderr, "bpfwrap: failed to remove the pins in %s: %s\n", o->pin_dir,
				strerror(-err));
			rc = 1;
		} else {
			printf("bpfwrap: detached; nothing is enforced any more\n");
			forget = true;
		}
		if (!state_dir(o->pin_dir, dir, sizeof(dir)))
			remove_state(dir);
	} else {
		err = say_exit(o, &s);
		rc = rc ? rc : err;
		forget = s.lost == LOST_DETACHED;
	}
out:
	guard_close(s.guard);
	agent_close(s.agent);
	if (s.ld)
		loader_close(s.ld);
	if (rc && !started && s.inst)
		forget = undo_start(o, &s, fresh, made_dir);
	instance_release(s.inst, forget);
	if (w)
		watch_close(w);
	if (sfd >= 0)
		close(sfd);
	tally_free(&s.tally);
	free(prev);
	free(o);
	return rc;
}
