/*
 * statedir.c - the state directory of `bpfwrap run` (see statedir.h):
 * /run/bpfwrap/NAME per pin directory, holding a key=value `state` file
 * (files, load time, generation, pid, cgroups and where their programs are
 * attached, the last refused reload of the policy and of the extensions
 * file), a byte copy of hosts.allow and hosts.deny as they were when loaded,
 * and the `carried` per-rule counts of earlier generations; and the rule tallies
 * that pair a reloaded policy's rules with the old one's to carry counts.
 *
 * Errors: functions return 0 or -errno and print nothing; the commands
 * (user/cli/run.c, user/cli/status.c) report. save_state() writes only into
 * directories of ours that no one else may write (state_dir_safe), each file
 * through util.h's write_file (a fresh temporary file, O_EXCL|O_NOFOLLOW,
 * then rename), so a link planted there is never followed.
 */
#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"
#include "policy.h"
#include "statedir.h"
#include "util.h"

/* state_dir - /run/bpfwrap/default for the default pin dir, else a name made from the pin dir */
int state_dir(const char *pin_dir, char *buf, size_t size)
{
	char key[PATH_MAX];
	size_t j = 0;

	if (!strcmp(pin_dir, LOADER_PIN_DIR)) {
		snprintf(key, sizeof(key), "default");
	} else {
		for (size_t i = 0; pin_dir[i] && j < sizeof(key) - 1; i++)
			key[j++] = pin_dir[i] == '/' ? '_' : pin_dir[i];
		key[j] = '\0';
	}
	return snprintf(buf, size, "%s/%s", STATE_ROOT, key) >= (int)size ? -ENAMETOOLONG : 0;
}

/* state_dir_safe - a directory (not a link to one) of ours that no one else may write in */
int state_dir_safe(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return -EPERM;
	return 0;
}

/* copy_policy_file - snapshot one policy file into the state dir (missing: no copy) */
static int copy_policy_file(const char *dir, const char *name, const char *src)
{
	char dst[PATH_MAX];
	char *data;
	size_t len;
	int err;

	if (snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst))
		return -ENAMETOOLONG;
	err = read_file(src, &data, &len);
	if (err) {
		/* nothing to copy: missing, a directory (both empty), or not a regular
		 * file (unreadable: never opened, so never waited for) */
		unlink(dst);
		return err == -ENOENT || err == -EISDIR || err == -EINVAL ? 0 : err;
	}
	err = write_file(dst, data, len);
	free(data);
	return err;
}

/* remove_state - delete a state directory and the files run puts there */
void remove_state(const char *dir)
{
	static const char *const names[] = { "state", "hosts.allow", "hosts.deny", "carried", "agent" };
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) < (int)sizeof(path))
			unlink(path);
	rmdir(dir);
}

/* rule_key - FNV-1a hash of a rule's file and text: the same rule after a reload */
static uint64_t rule_key(const struct rule *r)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (const char *c = r->pos.file; c && *c; c++)
		h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
	h = (h ^ 0xff) * 0x100000001b3ull;	/* separator */
	for (const char *c = r->text; c && *c; c++)
		h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
	return h | 1;	/* never 0: that is "no rule" */
}

struct keyed_id {
	uint64_t key;
	uint32_t id;
};

/* keyed_cmp - order by key, then rule id (so equal texts pair in file order) */
static int keyed_cmp(const void *a, const void *b)
{
	const struct keyed_id *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* sorted_ids - (key, id) of every rule id but 0, sorted; NULL on -ENOMEM */
static struct keyed_id *sorted_ids(const uint64_t *keys, size_t n)
{
	struct keyed_id *v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 1; i < n; i++)
		v[i - 1] = (struct keyed_id){ keys[i], (uint32_t)i };
	if (n > 1)
		qsort(v, n - 1, sizeof(*v), keyed_cmp);
	return v;
}

/* tally_free - release a rule_tally */
void tally_free(struct rule_tally *t)
{
	free(t->keys);
	free(t->carried);
	*t = (struct rule_tally){ 0 };
}

/*
 * tally_next - the tally for policy pol that replaced the one in force: its
 * rule keys, and for each rule also in the old one (paired by key, in order)
 * the old one's counts: total[] (its final kernel counters, old->n of
 * them; NULL: none) plus what it carried itself. Runs after the flip, off
 * the reload's critical path. 0 or -ENOMEM (next is then empty).
 */
int tally_next(const struct rule_tally *old, const struct policy *pol, uint64_t *total,
	       struct rule_tally *next)
{
	struct keyed_id *old_ids = NULL, *new_ids = NULL;
	size_t i = 0, j = 0;
	int err = -ENOMEM;

	next->n = pol->n_rules + 1;
	next->keys = calloc(next->n, sizeof(*next->keys));
	next->carried = calloc(next->n, sizeof(*next->carried));
	if (!next->keys || !next->carried)
		goto out;
	for (size_t t = 0; t < 2; t++) {
		const struct table *tab = t ? &pol->deny : &pol->allow;

		for (size_t k = 0; k < tab->n_rules; k++)
			if (tab->rules[k].id < next->n)
				next->keys[tab->rules[k].id] = rule_key(&tab->rules[k]);
	}
	err = 0;
	if (!total || !old->n)
		goto out;
	for (size_t k = 0; k < old->n; k++)
		total[k] += old->carried[k];
	old_ids = sorted_ids(old->keys, old->n);
	new_ids = sorted_ids(next->keys, next->n);
	if (!old_ids || !new_ids) {
		err = -ENOMEM;
		goto out;
	}
	next->carried[0] = total[0];
	while (i + 1 < old->n && j + 1 < next->n) {
		int c = old_ids[i].key < new_ids[j].key ? -1 : old_ids[i].key > new_ids[j].key;

		if (c == 0)
			next->carried[new_ids[j++].id] = total[old_ids[i++].id];
		else if (c < 0)
			i++;
		else
			j++;
	}
out:
	free(old_ids);
	free(new_ids);
	if (err)
		tally_free(next);
	return err;
}

/* save_carried - the counts of earlier generations for status ("carried":
 * a line "generation N", then "ID COUNT" for every rule with a count) */
static int save_carried(const char *dir, const struct state_record *r)
{
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	FILE *f;
	int err;

	if (snprintf(path, sizeof(path), "%s/carried", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	f = open_memstream(&text, &len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "generation %u\n", r->generation);
	for (size_t i = 0; i < r->tally->n; i++)
		if (r->tally->carried[i])
			fprintf(f, "%zu %llu\n", i, (unsigned long long)r->tally->carried[i]);
	if (fclose(f)) {
		free(text);
		return -ENOMEM;
	}
	err = write_file(path, text, len);
	free(text);
	return err;
}

/* load_carried - the counts save_carried wrote for generation gen into
 * counts[0..n); nothing is added when the file is missing or older */
void load_carried(const char *dir, uint32_t gen, uint64_t *counts, size_t n)
{
	char path[PATH_MAX], *text, *line, *next;
	unsigned long long id, count;
	unsigned file_gen;
	size_t len;

	if (snprintf(path, sizeof(path), "%s/carried", dir) >= (int)sizeof(path) ||
	    read_file(path, &text, &len))
		return;
	if (sscanf(text, "generation %u", &file_gen) == 1 && file_gen == gen) {
		line = strchr(text, '\n');
		for (line = line ? line + 1 : NULL; line && *line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			if (sscanf(line, "%llu %llu", &id, &count) == 2 && id < n)
				counts[id] += count;
		}
	}
	free(text);
}

/* put_line - key=text as one line: a newline in a diagnostic would start a new key */
static void put_line(FILE *f, const char *key, const char *text)
{
	fprintf(f, "%s=", key);
	for (const char *c = text; *c; c++)
		fputc(*c == '\n' || *c == '\r' ? ' ' : *c, f);
	fputc('\n', f);
}

/* save_state - record what is in force for `status` (files, copies if copy, cgroups,
 * the last refused reload) */
int save_state(const char *pin_dir, const struct state_record *r, bool copy)
{
	char dir[PATH_MAX], path[PATH_MAX], abs_allow[PATH_MAX], abs_deny[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int err;

	err = state_dir(pin_dir, dir, sizeof(dir));
	if (err)
		return err;
	if (mkdir(STATE_ROOT, 0755) && errno != EEXIST)
		return -errno;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	err = state_dir_safe(STATE_ROOT);
	if (!err)
		err = state_dir_safe(dir);
	if (err)
		return err;
	if (copy) {
		err = copy_policy_file(dir, "hosts.allow", r->allow);
		if (!err)
			err = copy_policy_file(dir, "hosts.deny", r->deny);
		if (err)
			return err;
	}
	/* absolute names, so status reads like the run that loaded them */
	if (!realpath(r->allow, abs_allow))
		snprintf(abs_allow, sizeof(abs_allow), "%s", r->allow);
	if (!realpath(r->deny, abs_deny))
		snprintf(abs_deny, sizeof(abs_deny), "%s", r->deny);
	f = open_memstream(&text, &len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "allow=%s\ndeny=%s\nloaded=%lld\ngeneration=%u\nrules=%zu\nentries=%zu\npid=%d\n",
		abs_allow, abs_deny, (long long)r->loaded_at, r->generation, r->n_rules,
		r->n_entries, (int)getpid());
	for (size_t i = 0; i < r->n_cgroups; i++) {
		fprintf(f, "cgroup=%s%s%s\n", r->cgroups[i].path, r->cgroups[i].name[0] ? "=" : "",
			r->cgroups[i].name);
		/* the cgroup= line before it is the one it belongs to */
		if (r->cgroups[i].attach[0])
			fprintf(f, "attach=%llu %s\n", (unsigned long long)r->cgroups[i].attach_id,
				r->cgroups[i].attach);
	}
	if (r->last_error && r->last_error[0]) {
		fprintf(f, "reload_error_at=%lld\n", (long long)r->last_error_at);
		put_line(f, "reload_error", r->last_error);
	}
	if (r->ext_error && r->ext_error[0]) {
		fprintf(f, "ext_error_at=%lld\n", (long long)r->ext_error_at);
		put_line(f, "ext_error", r->ext_error);
	}
	if (fclose(f)) {
		free(text);
		return -ENOMEM;
	}
	if (snprintf(path, sizeof(path), "%s/state", dir) >= (int)sizeof(path))
		err = -ENAMETOOLONG;
	else
		err = write_file(path, text, len);
	free(text);
	if (!err && r->tally && r->tally->n)
		err = save_carried(dir, r);
	return err;
}

/* parse_attach - "ID PATH": where the programs of the last cgroup read are attached */
static void parse_attach(struct saved_state *st, const char *value)
{
	char *path = NULL;
	unsigned long long id = strtoull(value, &path, 10);
	size_t i = st->n_cgroups - 1;

	if (path && *path == ' ') {
		st->attach_id[i] = id;
		snprintf(st->attach[i], sizeof(st->attach[i]), "%s", path + 1);
	}
}

/* read_kv - call field(key, value, ctx) for each key=value line of dir/name;
 * -errno if the file cannot be read (-ENOENT: there is none) */
static int read_kv(const char *dir, const char *name,
		   void (*field)(const char *key, const char *value, void *ctx), void *ctx)
{
	char path[PATH_MAX], *text, *line, *next;
	size_t len;
	int err;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	err = read_file(path, &text, &len);
	if (err)
		return err;
	for (line = text; line && *line; line = next) {
		char *eq;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq++ = '\0';
		field(line, eq, ctx);
	}
	free(text);
	return 0;
}

/* state_field - one key=value of the state file into a struct saved_state */
static void state_field(const char *line, const char *eq, void *ctx)
{
	struct saved_state *st = ctx;

	if (!strcmp(line, "allow"))
		snprintf(st->allow, sizeof(st->allow), "%s", eq);
	else if (!strcmp(line, "deny"))
		snprintf(st->deny, sizeof(st->deny), "%s", eq);
	else if (!strcmp(line, "loaded"))
		st->loaded = strtoll(eq, NULL, 10);
	else if (!strcmp(line, "generation"))
		st->generation = (unsigned)strtoul(eq, NULL, 10);
	else if (!strcmp(line, "pid"))
		st->pid = (int)strtol(eq, NULL, 10);
	else if (!strcmp(line, "reload_error"))
		snprintf(st->reload_error, sizeof(st->reload_error), "%s", eq);
	else if (!strcmp(line, "reload_error_at"))
		st->reload_error_at = strtoll(eq, NULL, 10);
	else if (!strcmp(line, "ext_error"))
		snprintf(st->ext_error, sizeof(st->ext_error), "%s", eq);
	else if (!strcmp(line, "ext_error_at"))
		st->ext_error_at = strtoll(eq, NULL, 10);
	else if (!strcmp(line, "cgroup") && st->n_cgroups < STATE_CGROUPS_MAX)
		snprintf(st->cgroups[st->n_cgroups++], sizeof(st->cgroups[0]), "%s", eq);
	else if (!strcmp(line, "attach") && st->n_cgroups > 0)
		parse_attach(st, eq);
}

/* load_saved_state - parse the key=value state file of a pin dir */
int load_saved_state(const char *dir, struct saved_state *st)
{
	memset(st, 0, sizeof(*st));
	return read_kv(dir, "state", state_field, st);
}

/* load_saved_policy - parse the copies of the files in force under their own names */
int load_saved_policy(const char *dir, const struct saved_state *st, struct policy **out)
{
	char pa[PATH_MAX], pd[PATH_MAX];
	char *allow = NULL, *deny = NULL;
	size_t alen = 0, dlen = 0;
	int err;

	if (snprintf(pa, sizeof(pa), "%s/hosts.allow", dir) >= (int)sizeof(pa) ||
	    snprintf(pd, sizeof(pd), "%s/hosts.deny", dir) >= (int)sizeof(pd))
		return -ENAMETOOLONG;
	err = read_file(pa, &allow, &alen);
	if (err && err != -ENOENT)
		return err;
	err = read_file(pd, &deny, &dlen);
	if (err && err != -ENOENT) {
		free(allow);
		return err;
	}
	err = policy_parse_buffers(out, st->allow, allow, alen, st->deny, deny, dlen);
	free(allow);
	free(deny);
	return err;
}

/* Keys of the `agent` file, each the offset of a uint64_t or unsigned field. */
struct record_key {
	const char *name;
	size_t off;
	bool wide;		/* uint64_t, else unsigned */
};

static const struct record_key agent_keys[] = {
	{ "lines", offsetof(struct agent_record, lines), true },
	{ "suppressed_client", offsetof(struct agent_record, suppressed_client), true },
	{ "suppressed_global", offsetof(struct agent_record, suppressed_global), true },
	{ "lost", offsetof(struct agent_record, lost), true },
	{ "log_rate", offsetof(struct agent_record, log_rate), false },
	{ "log_burst", offsetof(struct agent_record, log_burst), false },
	{ "spawned", offsetof(struct agent_record, spawned), true },
	{ "refused_busy", offsetof(struct agent_record, refused_busy), true },
	{ "refused_rate", offsetof(struct agent_record, refused_rate), true },
	{ "refused_total", offsetof(struct agent_record, refused_total), true },
	{ "spawn_total", offsetof(struct agent_record, spawn_total), false },
	{ "unseen", offsetof(struct agent_record, unseen), true },
	{ "unseen_partly", offsetof(struct agent_record, unseen_partly), true },
	{ "unseen_outside", offsetof(struct agent_record, unseen_outside), true },
	{ "unseen_errors", offsetof(struct agent_record, unseen_errors), true },
};

/* save_agent_record - write the agent's counters (file `agent`) into the state dir of pin_dir */
int save_agent_record(const char *pin_dir, const struct agent_record *r)
{
	char dir[PATH_MAX], path[PATH_MAX], *text = NULL;
	size_t len = 0;
	FILE *f;
	int err;

	err = state_dir(pin_dir, dir, sizeof(dir));
	if (err)
		return err;
	err = state_dir_safe(dir);	/* save_state made it; never write through anything else */
	if (err)
		return err;
	if (snprintf(path, sizeof(path), "%s/agent", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	f = open_memstream(&text, &len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "at=%lld\npid=%d\nunseen_at=%lld\n", r->at, r->pid, r->unseen_at);
	for (size_t i = 0; i < sizeof(agent_keys) / sizeof(agent_keys[0]); i++) {
		const char *field = (const char *)r + agent_keys[i].off;

		if (agent_keys[i].wide)
			fprintf(f, "%s=%llu\n", agent_keys[i].name,
				(unsigned long long)*(const uint64_t *)field);
		else
			fprintf(f, "%s=%u\n", agent_keys[i].name, *(const unsigned *)field);
	}
	if (fclose(f)) {
		free(text);
		return -ENOMEM;
	}
	err = write_file(path, text, len);
	free(text);
	return err;
}

/* agent_field - one key=value of the agent file into a struct agent_record */
static void agent_field(const char *line, const char *eq, void *ctx)
{
	struct agent_record *r = ctx;

	if (!strcmp(line, "at"))
		r->at = strtoll(eq, NULL, 10);
	else if (!strcmp(line, "pid"))
		r->pid = (int)strtol(eq, NULL, 10);
	else if (!strcmp(line, "unseen_at"))
		r->unseen_at = strtoll(eq, NULL, 10);
	for (size_t i = 0; i < sizeof(agent_keys) / sizeof(agent_keys[0]); i++) {
		char *field = (char *)r + agent_keys[i].off;

		if (strcmp(line, agent_keys[i].name))
			continue;
		if (agent_keys[i].wide)
			*(uint64_t *)field = strtoull(eq, NULL, 10);
		else
			*(unsigned *)field = (unsigned)strtoul(eq, NULL, 10);
	}
}

/* load_agent_record - read them back from a state dir; -ENOENT when there are none */
int load_agent_record(const char *dir, struct agent_record *r)
{
	memset(r, 0, sizeof(*r));
	return read_kv(dir, "agent", agent_field, r);
}
