/*
 * guard.c - bpfwrap's extensions beyond tcpd (see guard.h and
 * docs/extensions.md): the compiler of a parsed extensions file
 * (user/policy/extensions.c) into the guard maps, the loader of
 * bpf/guard.bpf.c, and the event/revoke thread. The `bans` and `unban`
 * commands are in user/cli/bans.c.
 *
 * The guard object shares the policy object's maps: before load, every map
 * of the guard skeleton whose name is pinned in the policy's pin directory
 * gets that pin path, so libbpf reuses the pinned map (decide() then reads
 * the policy in force, events reach the agent's ring buffer). The guard's
 * own maps are pinned there too (guard_*), so bans survive a restart; a
 * pinned guard map whose definition changed (an upgrade, another
 * --max-bans) is replaced, the bans copied into the new one. The counts and
 * the port owners are the exception (per_run_maps): each run makes its own,
 * never pinned, so they go with the programs that keep them, and rebuilds
 * them from the live sockets with iterators after attaching.
 *
 * Traps: the namespace hook steers every TCP packet of a trap to one of the
 * agent's listeners (loopback, port 0, in guard_trap_sk); the kernel
 * completes only real handshakes, and the thread accepts each, runs
 * guard_trap_proven for it (the ban) and closes it with a reset.
 *
 * Links: per cgroup `link-CGID-guard_ingress|guard_sockops|guard_bind4|
 * guard_bind6|guard_release`, and `link-netns-INO-guard_lookup` for the
 * namespace; a pin
 * from a previous run gets the new program in place (make-before-break).
 * `bpfwrap detach` (loader_unpin_all) removes them with everything else.
 *
 * Errors: functions return 0 or -errno; the file's diagnostics are kept in
 * struct guard_conf. The running guard reports on
 * guard_opts.log only (one line per trap hit, limit, revoked connection,
 * refused reload). A file with errors is never loaded: the rules in force
 * stay, and at start-up the guard does not start.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "guard.h"
#include "guard.skel.h"
#include "loader.h"
#include "readfile.h"

#define REVOKE_BUF 4096	/* scratch for the owners iterators' (empty) output */
#define THREAD_POLL_MS 200
#define TRAP_ACCEPT_BATCH 256	/* trap connections accepted per wake-up */
#define SWEEP_INTERVAL_S 60	/* expired bans are deleted this often */
#define RECORD_SETTLE_MS 10	/* see record_owners */
#define REVOKE_MIN_MS 50	/* revoke runs for new bans at most this often */
#define NSEC_PER_SEC 1000000000ull



/* ======================================================================
 * The guard object
 * ====================================================================== */

enum guard_link { GL_INGRESS, GL_SOCKOPS, GL_BIND4, GL_BIND6, GL_RELEASE, GL_MAX };
static const char *const gl_names[GL_MAX] = { "guard_ingress", "guard_sockops", "guard_bind4",
					      "guard_bind6", "guard_release" };

#define GUARD_MAX_LINKS 256

struct guard {
	struct guard_opts o;
	char pin_dir[PATH_MAX];
	char extensions[PATH_MAX];
	struct guard_bpf *skel;
	struct bpf_link *links[GUARD_MAX_LINKS];
	size_t n_links;
	struct bpf_link *revoke_link;
	bool lookup_attached;
	unsigned half;		/* id half of the rules in force */
	struct ring_buffer *rb;
	int trap_fd[GUARD_TRAP_SK_MAX];	/* the trap listeners, -1 none */
	int epfd;		/* the thread's: ring buffer and trap listeners */
	uint64_t next_sweep_ns;	/* CLOCK_BOOTTIME of the next expired-ban sweep */
	uint64_t next_revoke_ns;	/* CLOCK_BOOTTIME before which no revoke run starts */
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	bool revoke_pending;	/* the thread saw new bans: revoke after this poll */
	pthread_mutex_t lock;	/* revoke runs and log lines */
	char last_error[PATH_MAX + 256];	/* why the last load was refused, "" = it was not */
	FILE *log;
};

/* glog - one report line on the guard's log */
static __attribute__((format(printf, 2, 3))) void glog(struct guard *g, const char *fmt, ...)
{
	va_list ap;

	flockfile(g->log);
	fputs("bpfwrap: ", g->log);
	va_start(ap, fmt);
	vfprintf(g->log, fmt, ap);
	va_end(ap);
	fputc('\n', g->log);
	fflush(g->log);
	funlockfile(g->log);
}


/* guard_wanted - do these options need the guard at all */
bool guard_wanted(const struct guard_opts *o)
{
	return o->extensions || o->reject || o->revoke;
}

/* guard_pin_path - pin_dir/name into buf */
int guard_pin_path(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/*
 * same_netns_as_init - is this process in the root (initial) network namespace.
 * The reference is PID 1's namespace, or kthreadd's (PID 2: kernel threads
 * live in the initial namespace) where PID 1's is not readable (a sandbox
 * may deny it); the initial namespace's fixed inode number 0xEFFFFFF9
 * (PROC_NET_INIT_INO on kernels that give it one; dynamic numbers start at
 * 0xF0000000) also counts. No readable reference: -EPERM (fail closed).
 */
static int same_netns_as_init(bool *same, unsigned long *ino)
{
	static const char *const refs[] = { "/proc/1/ns/net", "/proc/2/ns/net" };
	struct stat self, ref;
	bool have_ref = false;

	*same = true;
	if (stat("/proc/self/ns/net", &self) < 0)
		return -errno;
	*ino = (unsigned long)self.st_ino;
	if (self.st_ino == 0xEFFFFFF9ul)
		return 0;
	for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
		if (i == 1) {
			char comm[32] = "";
			FILE *f = fopen("/proc/2/comm", "re");

			if (f) {
				if (!fgets(comm, sizeof(comm), f))
					comm[0] = '\0';
				fclose(f);
			}
			if (strncmp(comm, "kthreadd", 8))
				continue;
		}
		if (stat(refs[i], &ref) < 0)
			continue;
		have_ref = true;
		if (self.st_ino == ref.st_ino && self.st_dev == ref.st_dev)
			return 0;
	}
	if (!have_ref)
		return -EPERM;
	*same = false;
	return 0;
}

/* attach_pinned - attach prog with make(attach) or reuse a pinned link at pin */
static int attach_pinned(struct guard *g, struct bpf_program *prog, const char *pin,
			 struct bpf_link *(*attach)(const struct bpf_program *, int), int fd)
{
	struct bpf_link *link;

	if (g->n_links == GUARD_MAX_LINKS)
		return -ENOSPC;
	if (access(pin, F_OK) == 0) {
		link = bpf_link__open(pin);
		if (!link)
			return -errno;
		if (bpf_link__update_program(link, prog) < 0) {
			int err = -errno;

			bpf_link__destroy(link);
			return err;
		}
	} else {
		link = attach(prog, fd);
		if (!link)
			return -errno;
		if (bpf_link__pin(link, pin) < 0) {
			int err = -errno;

			bpf_link__detach(link);
			bpf_link__destroy(link);
			return err;
		}
	}
	g->links[g->n_links++] = link;
	return 0;
}

/* attach_cgroup - the cgroup programs to one cgroup */
static int attach_cgroup(struct guard *g, const char *path)
{
	struct bpf_program *progs[GL_MAX] = {
		g->skel->progs.guard_ingress, g->skel->progs.guard_sockops,
		g->skel->progs.guard_post_bind4, g->skel->progs.guard_post_bind6,
		g->skel->progs.guard_sock_release,
	};
	char pin[PATH_MAX];
	uint64_t cgid;
	int fd, err;

	err = loader_cgroup_id(path, &cgid);
	if (err)
		return err;
	if (cgid == 1)
		return -EPERM;	/* never the root cgroup (SAFETY) */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (int i = 0; i < GL_MAX && !err; i++) {
		if (snprintf(pin, sizeof(pin), "%s/link-%llu-%s", g->pin_dir,
			     (unsigned long long)cgid, gl_names[i]) >= (int)sizeof(pin)) {
			err = -ENAMETOOLONG;
			break;
		}
		err = attach_pinned(g, progs[i], pin, bpf_program__attach_cgroup, fd);
	}
	close(fd);
	return err;
}

/* attach_netns - guard_lookup to this process's network namespace, never the root one */
static int attach_netns(struct guard *g)
{
	char pin[PATH_MAX];
	unsigned long ino = 0;
	bool root = true;
	int fd, err;

	err = same_netns_as_init(&root, &ino);
	if (err)
		return err;
	if (root)
		return -EPERM;	/* SAFETY: the machine's own traffic */
	if (snprintf(pin, sizeof(pin), "%s/link-netns-%lu-guard_lookup", g->pin_dir, ino) >=
	    (int)sizeof(pin))
		return -ENAMETOOLONG;
	fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = attach_pinned(g, g->skel->progs.guard_lookup, pin, bpf_program__attach_netns, fd);
	close(fd);
	if (!err)
		g->lookup_attached = true;
	return err;
}

/* drain_iter - run an iterator link once for its side effects, discarding its output */
static int drain_iter(struct bpf_link *link)
{
	char scratch[REVOKE_BUF];
	int fd = bpf_iter_create(bpf_link__fd(link)), err = 0;

	if (fd < 0)
		return -errno;
	for (int i = 0; i < 1 << 20; i++) {
		ssize_t n = read(fd, scratch, sizeof(scratch));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : 0;
			break;
		}
	}
	close(fd);
	return err;
}

/* run_iter_once - attach an iterator program, run it once, detach it */
static int run_iter_once(struct bpf_program *prog)
{
	struct bpf_link *link = bpf_program__attach_iter(prog, NULL);
	int err;

	if (!link)
		return -errno;
	err = drain_iter(link);
	bpf_link__destroy(link);
	return err;
}

/* ---- compile the extensions into the maps ------------------------------ */

/* A (key, list) pair being built. */
struct list_ent {
	union {
		struct daemon_key dk;
		struct guard_port_key pk;
	} key;
	struct guard_list list;
};

/* list_add - append rule id to the list of key (found or new) in ents; -E2BIG when full */
static int list_add(struct list_ent **ents, size_t *n, const void *key, size_t ksz, uint16_t id,
		    size_t max)
{
	struct list_ent *e = NULL;

	for (size_t i = 0; i < *n; i++)
		if (!memcmp(&(*ents)[i].key, key, ksz)) {
			e = &(*ents)[i];
			break;
		}
	if (!e) {
		void *p;

		if (*n >= max)
			return -E2BIG;
		p = realloc(*ents, (*n + 1) * sizeof(**ents));
		if (!p)
			return -ENOMEM;
		*ents = p;
		e = &(*ents)[(*n)++];
		memset(e, 0, sizeof(*e));
		memcpy(&e->key, key, ksz);
	}
	if (e->list.n && e->list.rule[e->list.n - 1] == id)
		return 0;	/* named twice on one line */
	if (e->list.n >= GUARD_LIST_MAX)
		return -E2BIG;
	e->list.rule[e->list.n++] = id;
	return 0;
}

/* set_flag - one guard_flags value; 0 or -errno */
static int set_flag(int fd, uint32_t idx, uint32_t v)
{
	return bpf_map_update_elem(fd, &idx, &v, BPF_ANY) < 0 ? -errno : 0;
}

/* record_owners - the owners iterators, once: the ports that sockets bound
 * before the post_bind programs hold. A socket released meanwhile must not
 * leave its port recorded: the release program marks such sockets while
 * GUARD_FLAG_RECORDING is up; RECORD_SETTLE_MS lets one that started before
 * the flag was up finish first. 0 or -errno */
static int record_owners(struct guard *g)
{
	int flags_fd = bpf_map__fd(g->skel->maps.guard_flags), err, down;
	struct timespec settle = { 0, RECORD_SETTLE_MS * 1000000L };

	err = set_flag(flags_fd, GUARD_FLAG_RECORDING, 1);
	if (err)
		return err;
	nanosleep(&settle, NULL);
	err = run_iter_once(g->skel->progs.guard_owners_tcp);
	if (!err)
		err = run_iter_once(g->skel->progs.guard_owners_udp);
	down = set_flag(flags_fd, GUARD_FLAG_RECORDING, 0);
	return err ? err : down;
}

/* write_trap_bits - make guard_trap_ports hold want (or, if add_only, its
 * current bits plus want), writing only the words that change; 0 or -errno */
static int write_trap_bits(int fd, const uint64_t *want, bool add_only)
{
	for (uint32_t i = 0; i < GUARD_PORT_WORDS; i++) {
		uint64_t old = 0, v;

		if (bpf_map_lookup_elem(fd, &i, &old) < 0)
			return -errno;
		v = add_only ? old | want[i] : want[i];
		if (v != old && bpf_map_update_elem(fd, &i, &v, BPF_ANY) < 0)
			return -errno;
	}
	return 0;
}

/* guard_delete_keys_where - delete every key of map fd for which stale() holds; how many.
 * The keys are collected first (deleting while walking a hash restarts the walk). */
int guard_delete_keys_where(int fd, size_t ksz, bool (*stale)(const void *key, const void *arg),
			    const void *arg)
{
	uint8_t key[128], next[128], *keys = NULL;
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	size_t n = 0, cap = 0;
	uint64_t bound = 4 * GUARD_CLIENTS_MAX;
	void *prev = NULL;
	int err = 0, deleted = 0;

	if (ksz > sizeof(key))
		return -EINVAL;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && 2ull * info.max_entries > bound)
		bound = 2ull * info.max_entries;	/* a walk may restart: twice the size */
	for (uint64_t i = 0; i < bound && bpf_map_get_next_key(fd, prev, next) == 0; i++) {
		memcpy(key, next, ksz);
		prev = key;
		if (!stale(key, arg))
			continue;
		if (n == cap) {
			uint8_t *p = realloc(keys, (cap ? cap * 2 : 64) * ksz);

			if (!p) {
				err = -ENOMEM;
				break;
			}
			keys = p;
			cap = cap ? cap * 2 : 64;
		}
		memcpy(keys + n++ * ksz, key, ksz);
	}
	for (size_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, keys + i * ksz) == 0)	/* ENOENT: gone meanwhile */
			deleted++;
	free(keys);
	return err ? err : deleted;
}

/* Args of the stale predicates. */
struct stale_arg {
	const struct list_ent *ents;
	size_t n;
	size_t ksz;
	unsigned half;
};

/* key_not_in - a list key the new configuration does not have */
static bool key_not_in(const void *key, const void *arg)
{
	const struct stale_arg *a = arg;

	for (size_t i = 0; i < a->n; i++)
		if (!memcmp(&a->ents[i].key, key, a->ksz))
			return false;
	return true;
}

/* client_in_half - a guard_clients key whose rule id is in the given half */
static bool client_in_half(const void *key, const void *arg)
{
	const struct stale_arg *a = arg;
	const struct guard_client_key *k = key;
	uint32_t id = ntohl(k->rule_id);

	return a->half ? id >= GUARD_HALF : id < GUARD_HALF;
}

/* write_clients - the LPM entries of one rule (includes covered by an EXCEPT are dropped) */
static int write_clients(int fd, const struct guard_conf_rule *r, uint32_t id)
{
	struct guard_client_key k;
	uint8_t one = 1, zero = 0;

	memset(&k, 0, sizeof(k));
	k.rule_id = htonl(id);
	if (r->all_clients) {
		k.prefixlen = 32;
		if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) < 0)
			return -errno;
	}
	for (size_t i = 0; i < r->n_clients; i++) {
		const struct guard_prefix *p = &r->clients[i];
		bool covered = false;

		if (p->except)
			continue;
		for (size_t j = 0; j < r->n_clients && !covered; j++)
			covered = r->clients[j].except && r->clients[j].len <= p->len &&
				  guard_prefix_has(&r->clients[j], p->addr);
		if (covered)
			continue;
		k.prefixlen = 32 + p->len;
		memcpy(k.addr, p->addr, 16);
		if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) < 0)
			return -errno;
	}
	for (size_t i = 0; i < r->n_clients; i++) {
		const struct guard_prefix *p = &r->clients[i];

		if (!p->except)
			continue;
		k.prefixlen = 32 + p->len;
		memcpy(k.addr, p->addr, 16);
		if (bpf_map_update_elem(fd, &k, &zero, BPF_ANY) < 0)
			return -errno;
	}
	return 0;
}

/*
 * apply_conf - put a parsed file into the kernel: rules and client entries
 * into the idle id half, then each daemon's and port's list (one atomic
 * update each), then remove what is stale. A failure before the lists are
 * written leaves the rules in force untouched.
 */
static int apply_conf(struct guard *g, const struct guard_conf *c)
{
	int rules_fd = bpf_map__fd(g->skel->maps.guard_rules);
	int clients_fd = bpf_map__fd(g->skel->maps.guard_clients);
	int daemons_fd = bpf_map__fd(g->skel->maps.guard_daemons);
	int ports_fd = bpf_map__fd(g->skel->maps.guard_ports);
	int bits_fd = bpf_map__fd(g->skel->maps.guard_trap_ports);
	int flags_fd = bpf_map__fd(g->skel->maps.guard_flags);
	uint64_t *bits = NULL;
	bool has_all = false, acts = false;
	unsigned half = g->half ^ 1;
	uint32_t base = half ? GUARD_HALF + 1 : 1, zero_id = 0;
	struct list_ent *dents = NULL, *pents = NULL;
	size_t nd = 0, np = 0;
	struct guard_rule hdr;
	struct stale_arg sa;
	int err = 0;

	if (c && c->n_rules > GUARD_HALF - 1)
		return -E2BIG;
	/* lists: every named daemon gets the ALL lines too, in file order */
	for (size_t i = 0; c && i < c->n_rules && !err; i++) {
		const struct guard_conf_rule *r = &c->rules[i];
		uint16_t id = (uint16_t)(base + i);

		for (size_t j = 0; j < r->n_daemons && !err; j++) {
			struct daemon_key dk;

			memset(&dk, 0, sizeof(dk));
			memcpy(dk.name, r->daemons[j], sizeof(dk.name));
			err = list_add(&dents, &nd, &dk, sizeof(dk), id, GUARD_DAEMONS_MAX);
		}
		for (size_t j = 0; j < r->n_ports && !err; j++)
			for (uint32_t port = r->ports[j].lo; port <= r->ports[j].hi && !err; port++) {
				struct guard_port_key pk = { .port = htons((uint16_t)port),
							     .proto = r->ports[j].proto };

				err = list_add(&pents, &np, &pk, sizeof(pk), id, GUARD_PORTS_MAX);
			}
	}
	for (size_t i = 0; c && i < c->n_rules && !err; i++) {
		/* ALL lines join every list (and the zero key's) at their place */
		const struct guard_conf_rule *r = &c->rules[i];
		struct daemon_key zero;

		if (!r->all_daemons)
			continue;
		memset(&zero, 0, sizeof(zero));
		err = list_add(&dents, &nd, &zero, sizeof(zero), (uint16_t)(base + i),
			       GUARD_DAEMONS_MAX);
	}
	/* re-sort each list by id (= file order) after the ALL merge */
	for (size_t i = 0; i < nd && !err; i++) {
		struct guard_list *l = &dents[i].list;

		for (size_t a = 0; a < c->n_rules; a++)
			if (c->rules[a].all_daemons) {
				bool has = false;

				for (uint32_t k = 0; k < l->n; k++)
					has = has || l->rule[k] == base + a;
				if (!has) {
					if (l->n >= GUARD_LIST_MAX) {
						err = -E2BIG;
						break;
					}
					l->rule[l->n++] = (uint16_t)(base + a);
				}
			}
		for (uint32_t a = 1; a < l->n; a++)
			for (uint32_t b = a; b > 0 && l->rule[b - 1] > l->rule[b]; b--) {
				uint16_t t = l->rule[b];

				l->rule[b] = l->rule[b - 1];
				l->rule[b - 1] = t;
			}
	}
	if (err)
		goto out;
	/* the programs skip every port without a bit and all daemon lookups
	 * while no daemon has a list: bits and flags are raised before the
	 * lists switch, lowered after the stale lists are gone */
	bits = calloc(GUARD_PORT_WORDS, sizeof(*bits));
	if (!bits) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < np; i++) {
		uint16_t port = ntohs(pents[i].key.pk.port);

		bits[GUARD_PORT_WORD(port, pents[i].key.pk.proto)] |= GUARD_PORT_BIT(port);
	}
	for (size_t i = 0; i < nd; i++) {
		static const struct daemon_key zero_dk;

		has_all = has_all || !memcmp(&dents[i].key.dk, &zero_dk, sizeof(zero_dk));
	}
	for (size_t i = 0; c && i < c->n_rules; i++) {
		const struct guard_conf_rule *r = &c->rules[i];

		acts = acts || ((r->n_daemons || r->all_daemons) &&
				(r->opt.flags & (GUARD_F_TRAP | GUARD_F_REJECT)));
	}
	err = write_trap_bits(bits_fd, bits, true);
	if (!err && acts)
		err = set_flag(flags_fd, GUARD_FLAG_LOOKUP, 1);
	if (!err && nd)
		err = set_flag(flags_fd, GUARD_FLAG_DAEMONS, 1);
	if (!err && has_all)
		err = set_flag(flags_fd, GUARD_FLAG_ALL, 1);
	if (err)
		goto out;

	/* 1. the idle half: clear leftovers, write rules and clients */
	sa = (struct stale_arg){ .half = half };
	guard_delete_keys_where(clients_fd, sizeof(struct guard_client_key), client_in_half, &sa);
	for (size_t i = 0; c && i < c->n_rules; i++) {
		uint32_t id = base + (uint32_t)i;

		if (bpf_map_update_elem(rules_fd, &id, &c->rules[i].opt, BPF_ANY) < 0) {
			err = -errno;
			goto out;
		}
		err = write_clients(clients_fd, &c->rules[i], id);
		if (err)
			goto out;
	}
	/* 2. the lists: each update switches one daemon or port at once */
	for (size_t i = 0; i < nd; i++)
		if (bpf_map_update_elem(daemons_fd, &dents[i].key.dk, &dents[i].list, BPF_ANY) < 0) {
			err = -errno;
			goto out;
		}
	for (size_t i = 0; i < np; i++)
		if (bpf_map_update_elem(ports_fd, &pents[i].key.pk, &pents[i].list, BPF_ANY) < 0) {
			err = -errno;
			goto out;
		}
	/* 3. what the new configuration does not have */
	sa = (struct stale_arg){ .ents = dents, .n = nd, .ksz = sizeof(struct daemon_key) };
	guard_delete_keys_where(daemons_fd, sizeof(struct daemon_key), key_not_in, &sa);
	sa = (struct stale_arg){ .ents = pents, .n = np, .ksz = sizeof(struct guard_port_key) };
	guard_delete_keys_where(ports_fd, sizeof(struct guard_port_key), key_not_in, &sa);
	sa = (struct stale_arg){ .half = half ^ 1 };
	guard_delete_keys_where(clients_fd, sizeof(struct guard_client_key), client_in_half, &sa);
	/* 4. lower what the new configuration does not need */
	err = write_trap_bits(bits_fd, bits, false);
	if (!err)
		err = set_flag(flags_fd, GUARD_FLAG_DAEMONS, nd != 0);
	if (!err)
		err = set_flag(flags_fd, GUARD_FLAG_ALL, has_all);
	if (!err)
		err = set_flag(flags_fd, GUARD_FLAG_LOOKUP, acts);
	if (err)
		goto out;
	memset(&hdr, 0, sizeof(hdr));
	hdr.line = half;	/* rule 0 never matches: it records the half in force */
	bpf_map_update_elem(rules_fd, &zero_id, &hdr, BPF_ANY);
	g->half = half;
out:
	free(bits);
	free(dents);
	free(pents);
	return err;
}

/* report_diags - a file's diagnostics on the guard's log */
static void report_diags(struct guard *g, const struct guard_conf *c)
{
	for (size_t i = 0; i < c->n_diags; i++)
		glog(g, "%s:%u:%u: %s: %s", c->name, c->diags[i].line, c->diags[i].col,
		     c->diags[i].error ? "error" : "warning", c->diags[i].msg);
}

/* load_extensions - parse and apply the extensions file (none: empty rules);
 * on failure g->last_error says why (the first error, as FILE:LINE:COL) */
static int load_extensions(struct guard *g)
{
	struct guard_conf *c = NULL;
	int err;

	g->last_error[0] = '\0';
	if (!g->extensions[0])
		return apply_conf(g, NULL);
	err = guard_conf_load(g->extensions, &c);
	if (err) {
		char why[READFILE_ERR_MAX];

		snprintf(g->last_error, sizeof(g->last_error), "cannot read the extensions file %s: %s",
			 g->extensions, readfile_explain(g->extensions, err, why, sizeof(why)));
		glog(g, "%s", g->last_error);
		return err;
	}
	report_diags(g, c);
	if (c->n_errors) {
		for (size_t i = 0; i < c->n_diags; i++)
			if (c->diags[i].error) {
				snprintf(g->last_error, sizeof(g->last_error),
					 "%s:%u:%u: error: %s (%zu error(s): not loaded)", c->name,
					 c->diags[i].line, c->diags[i].col, c->diags[i].msg, c->n_errors);
				break;
			}
		glog(g, "%s has %zu error(s): not loaded", g->extensions, c->n_errors);
		guard_conf_free(c);
		return -EINVAL;
	}
	for (size_t i = 0; i < c->n_rules && !g->lookup_attached; i++)
		if (c->rules[i].n_ports) {
			glog(g, "%s:%u: warning: trap ports need the namespace hook, which is not "
				"attached here (root network namespace)", c->name, c->rules[i].line);
			break;
		}
	err = apply_conf(g, c);
	if (err) {
		snprintf(g->last_error, sizeof(g->last_error), "cannot load %s into the kernel: %s",
			 g->extensions, strerror(-err));
		glog(g, "%s", g->last_error);
	} else {
		glog(g, "extensions: %zu line(s) in force from %s", c->n_rules, g->extensions);
	}
	guard_conf_free(c);
	return err;
}

/* guard_last_error - why the last load of the extensions file was refused, "" if it was not */
const char *guard_last_error(const struct guard *g)
{
	return g ? g->last_error : "";
}

/* ---- revoke and the event thread --------------------------------------- */

/* log_revoked - one line per connection the revoke iterator closed (or failed to) */
static int log_revoked(struct guard *g, const struct guard_revoked *r)
{
	char la[INET6_ADDRSTRLEN], ra[INET6_ADDRSTRLEN], dn[BPFWRAP_DAEMON_NAME_MAX + 1];

	snprintf(dn, sizeof(dn), "%.*s", BPFWRAP_DAEMON_NAME_MAX, r->daemon);
	for (char *p = dn; *p; p++)
		if (!isgraph((unsigned char)*p))
			*p = '_';
	guard_addr_text(r->laddr, la, sizeof(la));
	guard_addr_text(r->raddr, ra, sizeof(ra));
	if (r->err) {
		glog(g, "revoke: %s: cannot close %s:%u <- %s:%u: %s", dn, la, r->lport, ra, r->rport,
		     strerror(-r->err));
		return 0;
	}
	if (r->reason == GUARD_R_BANNED)
		glog(g, "revoked: %s: closed %s:%u <- %s:%u (client banned)", dn, la, r->lport, ra,
		     r->rport);
	else
		glog(g, "revoked: %s: closed %s:%u <- %s:%u (denied by the policy, rule %u)", dn, la,
		     r->lport, ra, r->rport, r->rule_id);
	return 1;
}

/* guard_revoke - close established connections of banned or denied clients; the
 * iterator's records are read in chunks (a read may end inside a record) */
int guard_revoke(struct guard *g)
{
	struct guard_revoked r;
	char buf[sizeof(struct guard_revoked) * 32];
	size_t have = 0;
	int fd, closed = 0, err = 0;

	if (!g->revoke_link)
		return -ENOTSUP;
	pthread_mutex_lock(&g->lock);
	fd = bpf_iter_create(bpf_link__fd(g->revoke_link));
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	for (int i = 0; i < 1 << 20; i++) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);
		size_t used = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : 0;
			break;
		}
		have += (size_t)n;
		for (; have - used >= sizeof(r); used += sizeof(r)) {
			memcpy(&r, buf + used, sizeof(r));
			closed += log_revoked(g, &r);
		}
		memmove(buf, buf + used, have - used);
		have -= used;
	}
	close(fd);
out:
	pthread_mutex_unlock(&g->lock);
	return err ? err : closed;
}

/* on_guard_event - one guard record: log it; a new ban asks for a revoke run */
static int on_guard_event(void *ctx, void *data, size_t size)
{
	struct guard *g = ctx;
	struct guard_event ev;
	char addr[INET6_ADDRSTRLEN], dn[BPFWRAP_DAEMON_NAME_MAX + 1], time_s[32];
	const char *proto;

	if (size < sizeof(ev))
		return 0;
	memcpy(&ev, data, sizeof(ev));
	snprintf(dn, sizeof(dn), "%.*s", BPFWRAP_DAEMON_NAME_MAX, ev.daemon);
	for (char *p = dn; *p; p++)
		if (!isgraph((unsigned char)*p))
			*p = '_';
	guard_addr_text(ev.addr, addr, sizeof(addr));
	proto = ev.proto == IPPROTO_UDP ? "udp" : "tcp";
	if (ev.limit)
		snprintf(time_s, sizeof(time_s), "for %u s", ev.limit);
	else
		snprintf(time_s, sizeof(time_s), "until unbanned");
	switch (ev.reason) {
	case GUARD_R_TRAP:
		glog(g, "trap: %s banned %s (port %u/%s%s%s, extensions line %u)", addr, time_s,
		     ntohs(ev.port), proto, dn[0] ? ", daemon " : "", dn, ev.line);
		/* one revoke run for many bans: the new bans' connections (--revoke),
		 * a trap daemon's connection (always) */
		g->revoke_pending |= g->o.revoke || (ev.flags & GUARD_EV_CLOSE);
		break;
	case GUARD_R_TRAP_UNPROVEN:
		glog(g, "trap: %s banned %s (port %u/%s%s%s, extensions line %u; unproven source: "
			"a datagram's address may be forged)", addr, time_s, ntohs(ev.port), proto,
		     dn[0] ? ", daemon " : "", dn, ev.line);
		g->revoke_pending |= g->o.revoke;
		break;
	case GUARD_R_PER_SOURCE:
	case GUARD_R_INSTANCES:
	case GUARD_R_CPS:
		glog(g, "limit: %s: %s %u refused connect from %s (extensions line %u)",
		     dn[0] ? dn : "?",
		     ev.reason == GUARD_R_PER_SOURCE ? "per_source"
		     : ev.reason == GUARD_R_INSTANCES ? "instances" : "cps",
		     ev.limit, addr, ev.line);
		break;
	default:
		break;
	}
	return 0;
}

/* boottime_ns - CLOCK_BOOTTIME, the clock of the ban times */
static uint64_t boottime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* sweep_bans - delete the expired bans of one ban map (the programs delete
 * one only on its next hit); how many, or -errno */
static int sweep_bans(int fd, uint32_t max)
{
	uint8_t key[16], next[16], *dead = NULL;
	size_t n = 0, cap = 0;
	uint64_t now = boottime_ns();
	void *prev = NULL;
	int deleted = 0;

	for (uint64_t i = 0; i < 2ull * max && bpf_map_get_next_key(fd, prev, next) == 0; i++) {
		struct guard_ban b;

		memcpy(key, next, sizeof(key));
		prev = key;
		if (bpf_map_lookup_elem(fd, key, &b) < 0 || !b.expires_ns || b.expires_ns > now)
			continue;
		if (n == cap) {
			uint8_t *p = realloc(dead, (cap ? cap * 2 : 64) * sizeof(key));

			if (!p)
				break;
			dead = p;
			cap = cap ? cap * 2 : 64;
		}
		memcpy(dead + n++ * sizeof(key), key, sizeof(key));
	}
	for (size_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, dead + i * sizeof(key)) == 0)
			deleted++;
	free(dead);
	return deleted;
}

/* trap_prove - a trap connection completed its handshake: run guard_trap_proven
 * with its addresses (it bans under the rule in force); 0 or -errno */
static int trap_prove(struct guard *g, const struct sockaddr_storage *peer,
		      const struct sockaddr_storage *local)
{
	struct bpf_sk_lookup ctx;
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));

	memset(&ctx, 0, sizeof(ctx));
	ctx.protocol = IPPROTO_TCP;
	if (peer->ss_family == AF_INET && local->ss_family == AF_INET) {
		const struct sockaddr_in *p = (const void *)peer, *l = (const void *)local;

		ctx.family = AF_INET;
		ctx.remote_ip4 = p->sin_addr.s_addr;
		ctx.remote_port = p->sin_port;
		ctx.local_ip4 = l->sin_addr.s_addr;
		ctx.local_port = ntohs(l->sin_port);
	} else if (peer->ss_family == AF_INET6 && local->ss_family == AF_INET6) {
		const struct sockaddr_in6 *p = (const void *)peer, *l = (const void *)local;

		ctx.family = AF_INET6;
		memcpy(ctx.remote_ip6, &p->sin6_addr, 16);
		memcpy(ctx.local_ip6, &l->sin6_addr, 16);
		ctx.remote_port = p->sin6_port;
		ctx.local_port = ntohs(l->sin6_port);
	} else {
		return -EAFNOSUPPORT;
	}
	if (bpf_prog_test_run_opts(bpf_program__fd(g->skel->progs.guard_trap_proven), &o) < 0)
		return -errno;
	return 0;
}

/* trap_accept - accept what a trap listener has: each is a proven client;
 * ban it (guard_trap_proven) and close with a reset */
static void trap_accept(struct guard *g, int lfd)
{
	static const struct linger rst = { 1, 0 };

	for (int i = 0; i < TRAP_ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer, local;
		socklen_t plen = sizeof(peer), llen = sizeof(local);
		int c = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC | SOCK_NONBLOCK);
		int err;

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;	/* EAGAIN: all taken */
		}
		err = getsockname(c, (struct sockaddr *)&local, &llen) < 0 ? -errno
									  : trap_prove(g, &peer, &local);
		if (err)
			glog(g, "trap: cannot ban a proven client: %s", strerror(-err));
		setsockopt(c, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
		close(c);
	}
}

/* guard_thread - consume guard events and trap connections until stopped;
 * sweep expired bans now and then */
static void *guard_thread(void *arg)
{
	struct guard *g = arg;

	while (!atomic_load(&g->stop)) {
		struct epoll_event ev[GUARD_TRAP_SK_MAX + 1];
		int n = epoll_wait(g->epfd, ev, GUARD_TRAP_SK_MAX + 1, THREAD_POLL_MS);

		if (n < 0 && errno != EINTR) {
			glog(g, "guard events: %s; the event thread stops", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd < 0) {
				int err = ring_buffer__consume(g->rb);

				if (err < 0 && err != -EINTR)
					glog(g, "guard events: %s", strerror(-err));
			} else {
				trap_accept(g, ev[i].data.fd);
			}
		}
		if (g->revoke_pending && boottime_ns() >= g->next_revoke_ns) {
			/* a stream of bans makes one run per REVOKE_MIN_MS, not one per event */
			g->revoke_pending = false;
			g->next_revoke_ns = boottime_ns() + REVOKE_MIN_MS * 1000000ull;
			guard_revoke(g);
		}
		if (boottime_ns() >= g->next_sweep_ns) {
			g->next_sweep_ns = boottime_ns() + SWEEP_INTERVAL_S * NSEC_PER_SEC;
			sweep_bans(bpf_map__fd(g->skel->maps.guard_bans), g->o.max_bans);
			sweep_bans(bpf_map__fd(g->skel->maps.guard_bans_unproven), g->o.max_bans);
		}
	}
	return NULL;
}

/* trap_listen - one trap listener: loopback, port 0 (the programs steer to it
 * whatever port was asked); the socket, or -errno */
static int trap_listen(int family)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if ((family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, SOMAXCONN)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* trap_listeners - the trap listeners into guard_trap_sk and the thread's epoll
 * set; one that cannot be made is reported (its family's trap attempts are
 * then refused and ban nobody) */
static void trap_listeners(struct guard *g)
{
	static const int fam[GUARD_TRAP_SK_MAX] = { AF_INET, AF_INET6 };
	int map = bpf_map__fd(g->skel->maps.guard_trap_sk);

	for (uint32_t k = 0; k < GUARD_TRAP_SK_MAX; k++) {
		struct epoll_event ev = { .events = EPOLLIN };
		int fd = trap_listen(fam[k]), err = 0;
		uint64_t v;

		if (fd < 0) {
			err = fd;
		} else {
			v = (uint64_t)fd;
			if (bpf_map_update_elem(map, &k, &v, BPF_ANY) < 0)
				err = -errno;
			ev.data.fd = fd;
			if (!err && epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
				err = -errno;
		}
		if (err) {
			if (fd >= 0)
				close(fd);
			if (err != -EAFNOSUPPORT || k == GUARD_TRAP_SK_V4)
				glog(g, "warning: no %s trap listener (%s): %s trap attempts are refused "
					"and ban nobody", k ? "IPv6" : "IPv4", strerror(-err),
				     k ? "IPv6" : "IPv4");
			continue;
		}
		g->trap_fd[k] = fd;
	}
}

/* Pinned guard maps whose bans are copied into a replacement. */
struct kept_bans {
	const char *name;
	uint8_t (*keys)[16];
	struct guard_ban *vals;
	size_t n;
};

/* save_bans - read every ban of a pinned map that is about to be replaced */
static int save_bans(int fd, const struct bpf_map_info *info, struct kept_bans *kb)
{
	uint8_t key[16], next[16];
	void *prev = NULL;

	if (info->key_size != sizeof(key) || info->value_size != sizeof(struct guard_ban))
		return 0;	/* not a layout we know: nothing to keep */
	kb->keys = calloc(info->max_entries, sizeof(*kb->keys));
	kb->vals = calloc(info->max_entries, sizeof(*kb->vals));
	if (!kb->keys || !kb->vals)
		return -ENOMEM;
	for (uint64_t i = 0; i < 2ull * info->max_entries && kb->n < info->max_entries &&
			     bpf_map_get_next_key(fd, prev, next) == 0; i++) {
		memcpy(key, next, sizeof(key));
		prev = key;
		if (bpf_map_lookup_elem(fd, key, &kb->vals[kb->n]) == 0)
			memcpy(kb->keys[kb->n++], key, sizeof(key));
	}
	return 0;
}

/* restore_bans - copy saved bans into the new map; how many did not fit */
static size_t restore_bans(int fd, const struct kept_bans *kb)
{
	size_t lost = 0;

	for (size_t i = 0; i < kb->n; i++)
		if (bpf_map_update_elem(fd, kb->keys[i], &kb->vals[i], BPF_NOEXIST) < 0 &&
		    errno != EEXIST)
			lost++;
	return lost;
}

/* pin_compatible - does the map pinned at path have m's definition (libbpf
 * would reuse it); -errno if it cannot be read; *fd_out gets it open (or -1) */
static int pin_compatible(const struct bpf_map *m, const char *path, struct bpf_map_info *info,
			  int *fd_out)
{
	__u32 len = sizeof(*info);
	int fd = bpf_obj_get(path);

	*fd_out = -1;
	if (fd < 0)
		return errno == ENOENT ? 1 : -errno;
	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	*fd_out = fd;
	return info->type == bpf_map__type(m) && info->key_size == bpf_map__key_size(m) &&
	       info->value_size == bpf_map__value_size(m) &&
	       info->max_entries == bpf_map__max_entries(m) &&
	       info->map_flags == bpf_map__map_flags(m);
}

/* Guard maps made anew by each run and never pinned, so that they go with the
 * programs that keep them: the counts (include/bpfwrap_guard.h, "Counts") and
 * the trap listeners. A pin of one of them (an older bpfwrap's) is removed. */
static const char *const per_run_maps[] = { "guard_dstate", "guard_conns", "guard_sk",
					    "guard_port_owner", "guard_trap_sk" };

/* Guard maps that outlive the guard (guard_forget leaves them): the bans, and
 * which open connections services accepted (a later run recounts them). */
static const char *const lasting_maps[] = { "guard_bans", "guard_bans_unproven",
					    "guard_accepted" };

/* name_in - is name one of list[0..n) */
static bool name_in(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(name, list[i]))
			return true;
	return false;
}

/* guard_map_unpinned - a guard map that is never pinned: made anew by each run */
static bool guard_map_unpinned(const char *name)
{
	return name_in(name, per_run_maps, sizeof(per_run_maps) / sizeof(per_run_maps[0]));
}

/* reuse_pins - give every map of the guard object a pin path under pin_dir:
 * the policy's pinned maps are reused; the guard's own are pinned there, a
 * pinned one whose definition changed is replaced (its bans saved in kb) */
static int reuse_pins(struct guard *g, struct kept_bans *kb, size_t n_kb)
{
	char path[PATH_MAX];
	struct bpf_map *m;
	int err;

	bpf_object__for_each_map(m, g->skel->obj) {
		const char *name = bpf_map__name(m);
		struct bpf_map_info info;
		int fd, same;

		if (bpf_map__is_internal(m) || !strcmp(name, "test_names"))
			continue;
		err = guard_pin_path(path, sizeof(path), g->pin_dir, name);
		if (err)
			return err;
		if (guard_map_unpinned(name)) {
			if (unlink(path) < 0 && errno != ENOENT)
				return -errno;
			continue;
		}
		if (strncmp(name, "guard_", 6)) {
			if (access(path, F_OK) != 0)
				return -ENOENT;	/* the policy object must be loaded and pinned first */
		} else {
			same = pin_compatible(m, path, &info, &fd);
			if (same < 0)
				return same;
			for (size_t i = 0; !same && i < n_kb; i++)
				if (!strcmp(kb[i].name, name)) {
					err = save_bans(fd, &info, &kb[i]);
					if (err) {
						close(fd);
						return err;
					}
				}
			if (fd >= 0)
				close(fd);
			if (!same && unlink(path) < 0 && errno != ENOENT)
				return -errno;
		}
		err = bpf_map__set_pin_path(m, path);
		if (err)
			return err;
	}
	return 0;
}

/* flag_old_bans - raise the ban flags if the (pinned) ban maps already hold
 * bans of an earlier run: the programs look bans up only with them up */
static int flag_old_bans(struct guard *g)
{
	uint8_t k[16];
	int err = 0;

	if (bpf_map_get_next_key(bpf_map__fd(g->skel->maps.guard_bans), NULL, k) == 0)
		err = set_flag(bpf_map__fd(g->skel->maps.guard_flags), GUARD_FLAG_BANS, 1);
	if (!err && bpf_map_get_next_key(bpf_map__fd(g->skel->maps.guard_bans_unproven), NULL, k) == 0)
		err = set_flag(bpf_map__fd(g->skel->maps.guard_flags), GUARD_FLAG_UNPROVEN_BANS, 1);
	return err;
}

/* guard_open - load, attach, configure, start the event thread */
int guard_open(const struct guard_opts *o, struct guard **out)
{
	struct kept_bans kb[] = { { .name = "guard_bans" }, { .name = "guard_bans_unproven" } };
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = -1 };
	struct guard *g;
	uint32_t zero = 0;
	struct guard_rule hdr;
	size_t lost = 0;
	int err;

	*out = NULL;
	if (!o->pin_dir)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->o = *o;
	if (!g->o.max_bans)
		g->o.max_bans = GUARD_BANS_MAX;
	g->log = o->log ? o->log : stdout;
	g->epfd = -1;
	for (int i = 0; i < GUARD_TRAP_SK_MAX; i++)
		g->trap_fd[i] = -1;
	pthread_mutex_init(&g->lock, NULL);
	if (snprintf(g->pin_dir, sizeof(g->pin_dir), "%s", o->pin_dir) >= (int)sizeof(g->pin_dir) ||
	    (o->extensions &&
	     snprintf(g->extensions, sizeof(g->extensions), "%s", o->extensions) >=
		     (int)sizeof(g->extensions))) {
		err = -ENAMETOOLONG;
		goto fail;
	}
	g->o.pin_dir = g->pin_dir;
	g->o.extensions = g->extensions[0] ? g->extensions : NULL;
	g->skel = guard_bpf__open();
	if (!g->skel) {
		err = -errno;
		goto fail;
	}
	g->skel->rodata->reject_all = o->reject;
	g->skel->rodata->revoke_all = o->revoke;
	for (struct bpf_program *p = NULL; (p = bpf_object__next_program(g->skel->obj, p));)
		bpf_program__set_autoattach(p, false);
	err = bpf_map__set_max_entries(g->skel->maps.guard_bans, g->o.max_bans);
	if (!err)
		err = bpf_map__set_max_entries(g->skel->maps.guard_bans_unproven, g->o.max_bans);
	if (!err)
		err = reuse_pins(g, kb, sizeof(kb) / sizeof(kb[0]));
	if (!err)
		err = guard_bpf__load(g->skel);
	if (err)
		goto fail;
	lost = restore_bans(bpf_map__fd(g->skel->maps.guard_bans), &kb[0]) +
	       restore_bans(bpf_map__fd(g->skel->maps.guard_bans_unproven), &kb[1]);
	if (kb[0].n + kb[1].n)
		glog(g, "bans: %zu kept in the new ban tables (%u entries each)%s", kb[0].n + kb[1].n - lost,
		     g->o.max_bans, lost ? "; the rest did not fit (--max-bans)" : "");
	/* the rules in force (a restart) tell which id half is live */
	if (bpf_map_lookup_elem(bpf_map__fd(g->skel->maps.guard_rules), &zero, &hdr) == 0)
		g->half = hdr.line & 1;
	err = flag_old_bans(g);
	if (err)
		goto fail;
	g->rb = ring_buffer__new(bpf_map__fd(g->skel->maps.guard_events), on_guard_event, g, NULL);
	g->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!g->rb || g->epfd < 0 ||
	    epoll_ctl(g->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(g->rb), &ev) < 0) {
		err = -errno;
		goto fail;
	}
	err = attach_netns(g);
	if (err == -EPERM && !o->reject) {
		glog(g, "warning: in the root network namespace the namespace hook is not "
			"attached: trap ports and reject mode are off");
		err = 0;
	} else if (err) {
		if (err == -EPERM)
			glog(g, "--reject needs `bpfwrap run` in a network namespace other than the "
				"root one (the machine's own traffic is never touched)");
		goto fail;
	}
	if (g->lookup_attached)
		trap_listeners(g);
	err = load_extensions(g);
	if (err)
		goto fail;
	for (size_t i = 0; i < o->n_cgroups && !err; i++)
		err = attach_cgroup(g, o->cgroups[i]);
	if (err)
		goto fail;
	/* owners of ports bound before the post_bind programs were attached */
	err = record_owners(g);
	/* this run's counts start from the connections open now (after the
	 * attach: one accepted meanwhile is counted by sockops, not twice) */
	if (!err)
		err = run_iter_once(g->skel->progs.guard_recount_tcp);
	if (err)
		goto fail;
	/* trap daemons' connections are closed with or without --revoke */
	g->revoke_link = bpf_program__attach_iter(g->skel->progs.guard_revoke_tcp, NULL);
	if (!g->revoke_link) {
		err = -errno;
		goto fail;
	}
	if (pthread_create(&g->thread, NULL, guard_thread, g)) {
		err = -EAGAIN;
		goto fail;
	}
	g->thread_started = true;
	if (o->revoke)
		guard_revoke(g);
	*out = g;
	err = 0;
	goto done;
fail:
	guard_close(g);
	err = err < 0 ? err : -EINVAL;
done:
	for (size_t i = 0; i < sizeof(kb) / sizeof(kb[0]); i++) {
		free(kb[i].keys);
		free(kb[i].vals);
	}
	return err;
}

/* guard_reload - re-read the extensions file, then revoke if asked */
int guard_reload(struct guard *g)
{
	int err;

	if (!g)
		return 0;
	err = load_extensions(g);
	if (g->o.revoke)
		guard_revoke(g);
	return err;
}

/* guard_close - stop the thread and release handles; pinned links and maps stay */
void guard_close(struct guard *g)
{
	if (!g)
		return;
	if (g->thread_started) {
		atomic_store(&g->stop, true);
		pthread_join(g->thread, NULL);
	}
	for (int i = 0; i < GUARD_TRAP_SK_MAX; i++)
		if (g->trap_fd[i] >= 0)
			close(g->trap_fd[i]);	/* leaves guard_trap_sk with the socket */
	if (g->epfd >= 0)
		close(g->epfd);
	ring_buffer__free(g->rb);
	bpf_link__destroy(g->revoke_link);
	for (size_t i = 0; i < g->n_links; i++)
		bpf_link__destroy(g->links[i]);	/* pinned: stays attached */
	guard_bpf__destroy(g->skel);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* guard_forget - detach and unpin a previous run's guard links and the maps
 * that serve only them; the bans and guard_accepted stay */
int guard_forget(const char *pin_dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(pin_dir);

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		bool link = !strncmp(de->d_name, "link-", 5) && strstr(de->d_name, "-guard_");

		if (!link && (strncmp(de->d_name, "guard_", 6) ||
			      name_in(de->d_name, lasting_maps,
				      sizeof(lasting_maps) / sizeof(lasting_maps[0]))))
			continue;
		if (guard_pin_path(path, sizeof(path), pin_dir, de->d_name))
			continue;
		if (link) {
			struct bpf_link *l = bpf_link__open(path);

			if (l) {
				bpf_link__detach(l);
				bpf_link__destroy(l);
			}
		}
		if (unlink(path) == 0)
			n++;
	}
	closedir(d);
	return n;
}
