/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * unseen.c - count the sockets of the guarded cgroups that bpfwrap cannot
 * decide: sock_diag for the sockets and their cgroup ids, cgroup.procs and
 * /proc/PID/fd for what the guarded processes hold (unseen.h).
 *
 * Errors: 0 or -ENOMEM; what cannot be read is counted in
 * rep->errors and skipped. Nothing is printed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>

#include "unseen.h"

#define CGROUP_DEPTH_MAX 16		/* directory levels walked below a target */
#define CGROUPS_MAX 4096		/* cgroup directories looked at per scan */
#define PIDS_MAX 8192			/* guarded processes looked at per scan */
#define HELD_MAX 65536			/* socket fds of guarded processes */
#define DIAG_MAX 65536			/* sockets listed by sock_diag */
#define DIAG_RECV_TIMEOUT_MS 500	/* one netlink receive */
#define DIAG_BUF 32768			/* netlink receive buffer */
#define DIAG_MSGS_MAX 100000		/* netlink messages read per query */
#define TCP_STATE_LISTEN 10		/* TCP_LISTEN of the kernel's tcp_states.h */
#define ALL_STATES 0xffffffffu
#define SERVICE_SUFFIX ".service"
#define SOCKET_SUFFIX ".socket"

/* A growable array of fixed-size items, capped. */
struct vec {
	void *items;
	size_t n, cap, size, max;
};

/* One socket fd of a guarded process. */
struct held {
	uint64_t inode;
	pid_t pid;
};

/* One socket from sock_diag. */
struct diag_sock {
	uint64_t inode, cgroup_id;
	uint8_t proto, family;
	uint8_t addr[16];
	uint16_t port;		/* host order */
	bool guarded;		/* its cgroup is in a guarded subtree */
};

/* vec_push - room for one more item at the end; NULL when full or out of memory */
static void *vec_push(struct vec *v)
{
	if (v->n >= v->max)
		return NULL;
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		void *p = realloc(v->items, cap * v->size);

		if (!p)
			return NULL;
		v->items = p;
		v->cap = cap;
	}
	return (char *)v->items + v->n++ * v->size;
}

/* cmp_u64 - qsort/bsearch order of uint64_t */
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* cmp_diag - order of sockets by protocol, family, address, port */
static int cmp_diag(const void *a, const void *b)
{
	const struct diag_sock *x = a, *y = b;
	int c;

	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	c = memcmp(x->addr, y->addr, sizeof(x->addr));
	if (c)
		return c;
	return x->port < y->port ? -1 : x->port > y->port;
}

/* read_procs - append the pids in dir/cgroup.procs */
static void read_procs(const char *dir, struct vec *pids, struct unseen_report *rep)
{
	char path[PATH_MAX];
	FILE *f;
	int pid;

	if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path)) {
		rep->errors++;
		return;
	}
	f = fopen(path, "re");
	if (!f) {
		rep->errors += errno != ENOENT;
		return;
	}
	while (fscanf(f, "%d", &pid) == 1) {
		pid_t *p = vec_push(pids);

		if (!p)
			break;
		*p = pid;
	}
	fclose(f);
}

/* walk_cgroup - record dir's cgroup id and pids and those of its descendants */
static void walk_cgroup(const char *dir, int depth, struct vec *ids, struct vec *pids,
			struct unseen_report *rep)
{
	struct stat sb;
	struct dirent *de;
	uint64_t *id;
	DIR *d;

	if (depth > CGROUP_DEPTH_MAX || stat(dir, &sb) || !S_ISDIR(sb.st_mode))
		return;
	id = vec_push(ids);
	if (!id)
		return;
	*id = (uint64_t)sb.st_ino;	/* the cgroup v2 id is the directory's inode number */
	read_procs(dir, pids, rep);
	d = opendir(dir);
	if (!d) {
		rep->errors++;
		return;
	}
	while ((de = readdir(d))) {
		char sub[PATH_MAX];

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >= (int)sizeof(sub))
			continue;
		walk_cgroup(sub, depth + 1, ids, pids, rep);
	}
	closedir(d);
}

/* read_fds - append the socket inodes process pid holds */
static void read_fds(pid_t pid, struct vec *held)
{
	char dir[64], link[PATH_MAX], target[64];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return;		/* exited meanwhile: nothing to count */
	while ((de = readdir(d))) {
		unsigned long long ino;
		struct held *h;
		ssize_t len;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (sscanf(target, "socket:[%llu]", &ino) != 1)
			continue;
		h = vec_push(held);
		if (!h)
			break;
		h->inode = ino;
		h->pid = pid;
	}
	closedir(d);
}

/* diag_query - append the sockets of one family and protocol in the given states */
static int diag_query(int fd, uint8_t family, uint8_t proto, uint32_t states, struct vec *socks)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.req = { .sdiag_family = family, .sdiag_protocol = proto, .idiag_states = states },
	};
	static char buf[DIAG_BUF] __attribute__((aligned(NLMSG_ALIGNTO)));
	size_t msgs = 0;

	if (send(fd, &msg, sizeof(msg), 0) != (ssize_t)sizeof(msg))
		return -errno;
	for (;;) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (len < 0)
			return -errno;	/* EAGAIN: the receive timeout */
		if (len == 0)
			return -EIO;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			struct inet_diag_msg *m = NLMSG_DATA(h);
			struct diag_sock *s;
			struct rtattr *a;
			int alen;

			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR)
				return -EIO;
			if (++msgs > DIAG_MSGS_MAX)
				return -E2BIG;
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) || !m->id.idiag_sport)
				continue;	/* an unbound UDP socket has no port */
			s = vec_push(socks);
			if (!s)
				return -E2BIG;
			memset(s, 0, sizeof(*s));
			s->inode = m->idiag_inode;
			s->proto = proto;
			s->family = family;
			s->port = ntohs(m->id.idiag_sport);
			memcpy(s->addr, m->id.idiag_src, sizeof(s->addr));
			alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
			for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
				if (a->rta_type == INET_DIAG_CGROUP_ID &&
				    (size_t)RTA_PAYLOAD(a) >= sizeof(uint64_t))
					memcpy(&s->cgroup_id, RTA_DATA(a), sizeof(uint64_t));
		}
	}
}

/* list_sockets - TCP listeners and bound UDP sockets of this network namespace */
static void list_sockets(struct vec *socks, struct unseen_report *rep)
{
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	struct timeval tv = { .tv_sec = DIAG_RECV_TIMEOUT_MS / 1000,
			      .tv_usec = (DIAG_RECV_TIMEOUT_MS % 1000) * 1000 };
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))) {
		rep->errors++;
		if (fd >= 0)
			close(fd);
		return;
	}
	for (size_t i = 0; i < sizeof(families); i++) {
		rep->errors += diag_query(fd, families[i], IPPROTO_TCP, 1u << TCP_STATE_LISTEN,
					  socks) != 0;
		rep->errors += diag_query(fd, families[i], IPPROTO_UDP, ALL_STATES, socks) != 0;
	}
	close(fd);
}

/* holder - a guarded process holding socket inode, or 0 (held sorted by inode) */
static pid_t holder(const struct vec *held, uint64_t inode)
{
	const struct held *h = bsearch(&inode, held->items, held->n, held->size, cmp_u64);

	return h ? h->pid : 0;
}

/* note_unseen - add one unseen socket to the report, as new unless st said it */
static void note_unseen(const struct unseen_state *st, const struct diag_sock *s, pid_t pid,
			uint64_t *now, size_t *n_now, struct unseen_report *rep)
{
	struct unseen_sock *u;
	char path[64];
	FILE *f;

	rep->unseen++;
	if (*n_now < UNSEEN_SAID_MAX)
		now[(*n_now)++] = s->inode;
	if (bsearch(&s->inode, st->said, st->n_said, sizeof(st->said[0]), cmp_u64) ||
	    rep->n_new >= UNSEEN_NEW_MAX)
		return;
	u = &rep->new_socks[rep->n_new++];
	memset(u, 0, sizeof(*u));
	u->inode = s->inode;
	u->pid = pid;
	u->proto = s->proto == IPPROTO_TCP ? "tcp" : "udp";
	u->port = s->port;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(u->comm, sizeof(u->comm), f))
			u->comm[strcspn(u->comm, "\n")] = '\0';
		fclose(f);
	}
	if (!u->comm[0])
		snprintf(u->comm, sizeof(u->comm), "?");
}

/* socket_unit_of - the cgroup of the socket unit systemd pairs with a guarded
 * NAME.service by default (NAME.socket, its sibling): its listeners are
 * guarded under the service's name too (units.h); false if t is no service */
static bool socket_unit_of(const struct guard_target *t, char *buf, size_t size)
{
	size_t n = strlen(t->unit), base = strlen(t->path) - n;

	if (n <= sizeof(SERVICE_SUFFIX) - 1 ||
	    strcmp(t->unit + n - (sizeof(SERVICE_SUFFIX) - 1), SERVICE_SUFFIX))
		return false;
	return snprintf(buf, size, "%.*s%.*s%s", (int)base, t->path,
			(int)(n - (sizeof(SERVICE_SUFFIX) - 1)), t->unit, SOCKET_SUFFIX) < (int)size;
}

/* unseen_scan - count the sockets of targets t[0..n) bpfwrap cannot decide (see above) */
int unseen_scan(struct unseen_state *st, const struct guard_target *t, size_t n,
		struct unseen_report *rep)
{
	struct vec ids = { .size = sizeof(uint64_t), .max = CGROUPS_MAX };
	struct vec pids = { .size = sizeof(pid_t), .max = PIDS_MAX };
	struct vec held = { .size = sizeof(struct held), .max = HELD_MAX };
	struct vec socks = { .size = sizeof(struct diag_sock), .max = DIAG_MAX };
	uint64_t *now = calloc(UNSEEN_SAID_MAX, sizeof(*now));
	size_t n_now = 0;

	memset(rep, 0, sizeof(*rep));
	if (!now)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char sock[PATH_MAX];

		walk_cgroup(t[i].path, 0, &ids, &pids, rep);
		if (socket_unit_of(&t[i], sock, sizeof(sock)))
			walk_cgroup(sock, 0, &ids, &pids, rep);
	}
	if (!ids.n)
		goto out;	/* nothing guarded exists yet */
	for (size_t i = 0; i < pids.n; i++)
		read_fds(((pid_t *)pids.items)[i], &held);
	list_sockets(&socks, rep);
	qsort(ids.items, ids.n, ids.size, cmp_u64);
	if (held.n)
		qsort(held.items, held.n, held.size, cmp_u64);	/* inode is the first member */
	for (size_t i = 0; i < socks.n; i++) {
		struct diag_sock *s = (struct diag_sock *)socks.items + i;
		pid_t pid = held.n ? holder(&held, s->inode) : 0;

		s->guarded = bsearch(&s->cgroup_id, ids.items, ids.n, ids.size, cmp_u64) != NULL;
		if (pid && !s->guarded)
			note_unseen(st, s, pid, now, &n_now, rep);
		else if (!pid && s->guarded)
			rep->outside++;
	}
	/* partly seen: an address, port and protocol with sockets on both sides */
	if (socks.n)
		qsort(socks.items, socks.n, socks.size, cmp_diag);
	for (size_t i = 0, j; i < socks.n; i = j) {
		const struct diag_sock *s = socks.items;
		bool in = false, out = false;

		for (j = i; j < socks.n && !cmp_diag(&s[i], &s[j]); j++) {
			in |= s[j].guarded;
			out |= !s[j].guarded;
		}
		rep->partly += in && out;
	}
out:
	qsort(now, n_now, sizeof(*now), cmp_u64);
	memcpy(st->said, now, n_now * sizeof(*now));
	st->n_said = n_now;
	free(now);
	free(ids.items);
	free(pids.items);
	free(held.items);
	free(socks.items);
	return 0;
}
