/*
 * status.c - `bpfwrap status` and `bpfwrap detach`.
 *
 *   status  generation, files and load time, per --cgroup its daemon and
 *           where its programs are: attached (a pinned link the kernel
 *           reports attached to that cgroup's id), gone (the cgroup was
 *           removed) or waiting (it does not exist yet); the sockets without
 *           a daemon name ("no owner"), the agent's log and spawn counters
 *           (what its limits held back), the sockets of the guarded
 *           cgroups bpfwrap cannot decide ("unseen", user/agent/unseen.h),
 *           table sizes, global statistics and
 *           the per-rule counters with file:line and the rule text, like
 *           `iptables -vL`; the rule texts come from the copies `bpfwrap
 *           run` keeps in its state directory (statedir.h).
 *   detach  detach every pinned link, unpin every map, remove the pin
 *           directory and the state directory; a `bpfwrap run` on that pin
 *           directory is signalled, sees its links gone, says so and exits
 *           (run.c, check_links), and detach waits for it.
 *
 * Errors: each command reports once, to stderr, and returns the exit status
 * (0 ok, 1 error, 2 usage, 3 `status` with nothing pinned).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "policy.h"
#include <getopt.h>

#include "cli.h"
#include "instance.h"
#include "loader.h"
#include "statedir.h"
#include "units.h"

/* parse_pin_dir_args - the --pin-dir option shared by detach and status */
static int parse_pin_dir_args(int argc, char **argv, const char **pin_dir, const char *cmd,
			      const char *what)
{
	static const struct option longopts[] = {
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*pin_dir = LOADER_PIN_DIR;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:h", longopts, NULL)) != -1) {
		if (c == 'p') {
			*pin_dir = optarg;
			continue;
		}
		fprintf(c == 'h' ? stdout : stderr,
			"usage: bpfwrap %s [--pin-dir DIR]\n\n%s\n\n"
			"  -p, --pin-dir DIR   bpffs directory of the pins (default %s)\n",
			cmd, what, LOADER_PIN_DIR);
		return c == 'h' ? 0 : 2;
	}
	if (optind < argc) {
		fprintf(stderr, "bpfwrap: %s: unexpected argument '%s'\n", cmd, argv[optind]);
		return 2;
	}
	return -1;
}

/* cmd_detach - remove every link, program, map and pin bpfwrap made */
int cmd_detach(int argc, char **argv)
{
	const char *pin_dir;
	char dir[PATH_MAX];
	bool held;
	int rc, err, pid = 0;

	rc = parse_pin_dir_args(argc, argv, &pin_dir, "detach",
				"Detach bpfwrap from every cgroup and remove its programs, maps and pins.");
	if (rc >= 0)
		return rc;
	held = instance_holder(pin_dir, &pid) == 1;
	if (access(pin_dir, F_OK) && errno == ENOENT) {
		printf("bpfwrap: nothing pinned in %s\n", pin_dir);
	} else {
		err = loader_unpin_all(pin_dir);
		if (err) {
			fprintf(stderr, "bpfwrap: failed to detach (pin dir %s): %s\n", pin_dir,
				strerror(-err));
			return 1;
		}
		printf("bpfwrap: detached; removed the pins in %s\n", pin_dir);
	}
	/* A run on this pin dir sees its links gone and exits saying so
	 * (user/cli/run.c, check_links); the signal makes it look now. */
	if (held && pid > 0 && kill(pid, SIGTERM) == 0) {
		if (instance_wait_released(pin_dir, INSTANCE_WAIT_MS))
			fprintf(stderr, "bpfwrap: warning: bpfwrap run pid %d on %s has not exited\n",
				pid, pin_dir);
		else
			printf("bpfwrap: bpfwrap run pid %d on %s has exited\n", pid, pin_dir);
	}
	if (!state_dir(pin_dir, dir, sizeof(dir)))
		remove_state(dir);
	instance_forget(pin_dir);	/* nothing of it is in force any more */
	return 0;
}

/* stat_names - labels of the global counters, in enum bpfwrap_stat order */
static const char *const stat_names[BPFWRAP_STAT_MAX] = {
	[BPFWRAP_STAT_PACKETS] = "decided",
	[BPFWRAP_STAT_FAST_PATH] = "fast path",
	[BPFWRAP_STAT_ALLOW] = "allowed",
	[BPFWRAP_STAT_DENY] = "denied",
	[BPFWRAP_STAT_ASK] = "asked",
	[BPFWRAP_STAT_CACHE_HIT] = "cache hits",
	[BPFWRAP_STAT_AGENT_DOWN] = "agent down",
	[BPFWRAP_STAT_MALFORMED] = "malformed",
	[BPFWRAP_STAT_NO_POLICY] = "no policy",
	[BPFWRAP_STAT_NO_MAPS] = "no maps",
	[BPFWRAP_STAT_NO_ENTRY] = "no entry",
	[BPFWRAP_STAT_EVENTS_LOST] = "events lost",
	[BPFWRAP_STAT_NO_OWNER] = "no owner",
	[BPFWRAP_STAT_SOCKOPT_FAILED] = "sockopt failed",
	[BPFWRAP_STAT_DENY_FOLDED] = "denials folded",
	[BPFWRAP_STAT_EVENTS_CAPPED] = "events capped",
};

/* rule_by_id - the parsed rule with this id, or NULL */
static const struct rule *rule_by_id(const struct policy *p, uint32_t id)
{
	const struct table *t[2] = { &p->allow, &p->deny };

	for (int i = 0; i < 2; i++)
		for (size_t j = 0; j < t[i]->n_rules; j++)
			if (t[i]->rules[j].id == id)
				return &t[i]->rules[j];
	return NULL;
}

/* print_agent_record - the agent's log and spawn counters, as run recorded them */
static void print_agent_record(const char *state_dir)
{
	struct agent_record r;
	char when[64] = "?";
	time_t t;
	struct tm tm;

	if (load_agent_record(state_dir, &r))
		return;
	t = (time_t)r.at;
	if (localtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("log:        %llu lines written, %llu held back per client, %llu by the global rate",
	       (unsigned long long)r.lines, (unsigned long long)r.suppressed_client,
	       (unsigned long long)r.suppressed_global);
	if (r.log_rate)
		printf(" (%u/s, bursts of %u)", r.log_rate, r.log_burst);
	else
		printf(" (none)");
	printf(", %llu lost (counted by pid %d at %s)\n", (unsigned long long)r.lost, r.pid, when);
	printf("spawn:      %llu commands run; refused: %llu running at once, %llu over a rule's rate, "
	       "%llu over the total rate", (unsigned long long)r.spawned,
	       (unsigned long long)r.refused_busy, (unsigned long long)r.refused_rate,
	       (unsigned long long)r.refused_total);
	if (r.spawn_total)
		printf(" (%u per minute)", r.spawn_total);
	printf("\n");
	if (!r.unseen_at)
		return;		/* an older run, or no scan yet */
	printf("unseen:     %llu listeners created outside the guarded cgroups (never decided), "
	       "%llu ports shared with unguarded sockets (SO_REUSEPORT: partly decided), "
	       "%llu guarded sockets held only outside", (unsigned long long)r.unseen,
	       (unsigned long long)r.unseen_partly, (unsigned long long)r.unseen_outside);
	if (r.unseen_errors)
		printf(" (%llu parts could not be read)", (unsigned long long)r.unseen_errors);
	printf("\n");
}

/* print_cgroup - one --cgroup of the run, as given (PATH=NAME), on one line: where its
 * programs are and whether the kernel has them there (pinned links attached to
 * that cgroup's id: "attached"), or that it is removed ("gone") or waited for */
static void print_cgroup(const char *pin_dir, const struct saved_state *st, size_t i, bool alive)
{
	const char *arg = st->cgroups[i], *why = NULL, *attach;
	const char *unnamed = strchr(arg, '=') ? "" : " (daemon: the name of the process that "
						       "opens the socket)";
	struct guard_target t;
	uint64_t now = 0;
	int n;

	if (units_plan(arg, &t, &why)) {
		printf("unknown:    %s (%s)\n", arg, why ? why : "cannot be read");
		return;
	}
	attach = st->attach[i][0] ? st->attach[i] : t.attach;
	if (loader_cgroup_id(attach, &now)) {
		if (st->attach_id[i])
			printf("gone:       %s%s: %s (cgroup id %llu) was removed, and the programs "
			       "on it with it; %s\n", arg, unnamed, attach, st->attach_id[i],
			       alive ? "waiting for it to appear again"
				     : "bpfwrap run is not running: nothing attaches it again");
		else
			printf("waiting:    %s%s: %s does not exist yet; %s\n", arg, unnamed, attach,
			       alive ? "it is enforced the moment it appears"
				     : "bpfwrap run is not running: nothing attaches it");
		return;
	}
	n = loader_pinned_links(pin_dir, now);
	if (n == LOADER_PROGS_PER_CGROUP) {
		printf("attached:   %s%s, on %s (cgroup id %llu)", arg, unnamed, attach,
		       (unsigned long long)now);
		if (strcmp(attach, t.path) && access(t.path, F_OK))
			printf("; %s does not exist now: its sockets are guarded from the moment it "
			       "does", t.unit);
		printf("\n");
		return;
	}
	printf("NOT attached: %s%s: %s (cgroup id %llu) has %d of the %d programs%s; %s\n", arg,
	       unnamed, attach, (unsigned long long)now, n < 0 ? 0 : n, LOADER_PROGS_PER_CGROUP,
	       st->attach_id[i] && st->attach_id[i] != now ? " (removed and made again)" : "",
	       alive ? "bpfwrap run looks again every second"
		     : "bpfwrap run is not running: start it to attach");
}

/* print_status - everything status shows, from an open loader and the saved state
 * (in state_dir, NULL when there is none) */
static void print_status(struct loader *ld, const char *pin_dir, const struct saved_state *st,
			 const char *state_dir, const struct policy *pol)
{
	struct loader_status ls;
	uint64_t *counts = NULL;
	int n = 0, err;

	err = loader_status(ld, &ls);
	if (err) {
		fprintf(stderr, "bpfwrap: cannot read the status: %s\n", strerror(-err));
		return;
	}
	printf("pin dir:    %s\n", pin_dir);
	printf("generation: %u%s\n", ls.generation, ls.generation ? "" : " (no policy loaded: everything passes)");
	if (state_dir) {
		char when[64] = "?";
		time_t t = (time_t)st->loaded;
		struct tm tm;
		int holder = 0, held = instance_holder(pin_dir, &holder);
		/* the run's lock (instance.h) says whether it is alive */
		bool alive = held == 1 || (held < 0 && st->pid > 0 && kill(st->pid, 0) == 0);

		if (localtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm);
		printf("policy:     %s, %s\n", st->allow, st->deny);
		printf("loaded:     %s by bpfwrap run pid %d (%s)\n", when, st->pid,
		       alive ? "running" : "not running: the pins enforce on their own");
		if (st->generation != ls.generation)
			printf("warning:    the kernel is at generation %u, the saved state at %u: "
			       "rule texts may not match\n", ls.generation, st->generation);
		for (size_t i = 0; i < st->n_cgroups; i++)
			print_cgroup(pin_dir, st, i, alive);
		if (st->reload_error[0]) {
			t = (time_t)st->reload_error_at;
			if (localtime_r(&t, &tm))
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm);
			printf("last reload: refused at %s, generation %u stays in force: %s\n", when,
			       st->generation, st->reload_error);
		}
		if (st->ext_error[0]) {
			t = (time_t)st->ext_error_at;
			if (localtime_r(&t, &tm))
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm);
			printf("last reload: extensions refused at %s, the lines in force stay: %s\n",
			       when, st->ext_error);
		}
		if (!st->reload_error[0] && !st->ext_error[0])
			printf("last reload: ok (generation %u)\n", st->generation);
	} else {
		printf("policy:     unknown (no state in %s)\n", STATE_ROOT);
	}
	printf("no owner:   %llu decisions on guarded sockets without a daemon name (only rules "
	       "for ALL apply to them)\n", (unsigned long long)ls.stats[BPFWRAP_STAT_NO_OWNER]);
	if (ls.stats[BPFWRAP_STAT_NO_OWNER])
		printf("  hint: name the daemon of each guarded cgroup: --cgroup PATH=NAME "
		       "(NAME as in hosts.allow, e.g. system.slice/ssh.service=sshd)\n");
	printf("tables:     %u rules, %u daemons, %u IPv4 + %u IPv6 entries\n", ls.rules, ls.daemons,
	       ls.v4_entries, ls.v6_entries);
	printf("agent:      %s", ls.agent_alive ? "alive" : "not running (ASK entries use their if-unknown verdict)");
	if (ls.agent_alive)
		printf(" (pid %u)", ls.agent_pid);
	printf("\n");
	if (state_dir)
		print_agent_record(state_dir);
	printf("statistics:");
	for (int i = 0; i < BPFWRAP_STAT_MAX; i++)
		if (stat_names[i])
			printf("%s %s %llu", i ? "," : "", stat_names[i], (unsigned long long)ls.stats[i]);
	printf("\n");
	print_guard_stats(pin_dir, "extensions:");	/* bans, traps (proven or not), limits */
	printf("\n");

	counts = calloc((size_t)ls.rules + 1, sizeof(*counts));
	if (counts)
		n = loader_rule_counters(ld, counts, (size_t)ls.rules + 1);
	if (!counts || n < 0) {
		fprintf(stderr, "bpfwrap: cannot read the rule counters: %s\n",
			strerror(counts ? -n : ENOMEM));
		free(counts);
		return;
	}
	if (state_dir)	/* what earlier generations of this run counted */
		load_carried(state_dir, ls.generation, counts, (size_t)n);
	printf("%10s  %-32s %s\n", "decisions", "rule", "text");
	for (int id = 1; id < n; id++) {
		const struct rule *r = pol ? rule_by_id(pol, (uint32_t)id) : NULL;
		char where[PATH_MAX + 16];

		if (r)
			snprintf(where, sizeof(where), "%s:%u", r->pos.file, r->pos.line);
		else
			snprintf(where, sizeof(where), "rule #%d", id);
		printf("%10llu  %-32s %s\n", (unsigned long long)counts[id], where, r ? r->text : "?");
	}
	if (n > 0)
		printf("%10llu  %-32s %s\n", (unsigned long long)counts[0], "(none)",
		       "no rule matched: default allow, or a table error");
	free(counts);
}

/* cmd_status - what is attached and loaded, with per-rule counters */
int cmd_status(int argc, char **argv)
{
	struct loader_opts lopts = { 0 };
	struct saved_state *st = NULL;
	struct policy *pol = NULL;
	struct loader *ld = NULL;
	const char *pin_dir;
	char dir[PATH_MAX];
	bool have_state = false;
	int rc, err;

	rc = parse_pin_dir_args(argc, argv, &pin_dir, "status",
				"Show what bpfwrap enforces: cgroups, policy, tables and per-rule counters.");
	if (rc >= 0)
		return rc;
	if (access(pin_dir, F_OK)) {
		printf("bpfwrap: not active: nothing pinned in %s\n", pin_dir);
		return 3;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		fprintf(stderr, "bpfwrap: out of memory\n");
		return 1;
	}
	if (!state_dir(pin_dir, dir, sizeof(dir)) && !load_saved_state(dir, st)) {
		have_state = true;
		err = load_saved_policy(dir, st, &pol);
		if (err) {
			fprintf(stderr, "bpfwrap: warning: cannot parse the saved policy copies in %s: %s\n",
				dir, strerror(-err));
			pol = NULL;
		}
	}
	lopts.pin_dir = pin_dir;
	err = loader_open(&lopts, &ld);
	if (err) {
		fprintf(stderr, "bpfwrap: cannot open the pinned maps in %s: %s\n", pin_dir, strerror(-err));
		rc = 1;
		goto out;
	}
	print_status(ld, pin_dir, st, have_state ? dir : NULL, pol);
	rc = 0;
out:
	if (ld)
		loader_close(ld);
	if (pol)
		policy_free(pol);
	free(st);
	return rc;
}
