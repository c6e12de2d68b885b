/*
 * attach.c - where bpfwrap's programs run (see loader.h): attach them to
 * cgroup v2 directories with bpf_links (pinned under pin_dir, an earlier
 * run's link swapped in place), detach them, remove every pin
 * (loader_unpin_all), name the daemon of a cgroup, and adopt the sockets
 * that processes opened before bpfwrap was attached; and tell whether links
 * are still attached and whether a bpfwrap program that none of a pin
 * directory's links holds is attached to a cgroup (one instance per cgroup).
 *
 * Errors: every function returns -errno (or a count) and prints nothing. A
 * failed attach undoes the links it made; adoption skips processes and
 * sockets that vanish while it runs. Never the root cgroup (SAFETY).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfwrap.skel.h"
#include "loader.h"
#include "loader_int.h"
#include "v4table.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define CGROUP_ROOT_ID 1	/* cgroup v2 root: never attached (SAFETY) */
#define ADOPT_DEPTH_MAX 16	/* cgroup levels walked by adoption */
#define PIN_SCAN_MAX 1024	/* pins looked at in one pin directory */
#define QUERY_MAX 64		/* programs read per attach type of one cgroup */

_Static_assert(AP_MAX == LOADER_PROGS_PER_CGROUP, "loader.h counts the programs per cgroup");

/* Pin names of the programs, indexed by enum attach_prog. */
static const char *const attach_names[AP_MAX] = { "sock_create", "sockops", "ingress" };

/* link_pin_path - where the link of (cgroup, program) is pinned */
static int link_pin_path(const struct loader *ld, char *buf, size_t size, uint64_t cgid,
			 enum attach_prog p)
{
	int n = snprintf(buf, size, "%s/link-%llu-%s", ld->pin_dir, (unsigned long long)cgid,
			 attach_names[p]);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* loader_cgroup_id - the cgroup v2 id of a directory (its inode number) */
int loader_cgroup_id(const char *cgroup_path, uint64_t *id)
{
	struct statfs sfs;
	struct stat st;

	if (statfs(cgroup_path, &sfs) < 0 || stat(cgroup_path, &st) < 0)
		return -errno;
	if ((unsigned long)sfs.f_type != CGROUP2_SUPER_MAGIC || !S_ISDIR(st.st_mode))
		return -ENOTDIR;
	*id = st.st_ino;
	return 0;
}

/* prog_of - the program attached as p */
static struct bpf_program *prog_of(struct loader *ld, enum attach_prog p)
{
	switch (p) {
	case AP_SOCK_CREATE:
		return ld->skel->progs.bpfwrap_sock_create;
	case AP_SOCKOPS:
		return ld->skel->progs.bpfwrap_sockops;
	default:
		return ld->skel->progs.bpfwrap_ingress;
	}
}

/* find_link - this instance's link for (cgroup, program), or -1 */
static int find_link(const struct loader *ld, uint64_t cgid, enum attach_prog p)
{
	for (size_t i = 0; i < ld->n_links; i++)
		if (ld->links[i].cgroup_id == cgid && ld->links[i].prog == p)
			return (int)i;
	return -1;
}

/* drop_link - detach, unpin and forget link i */
static void drop_link(struct loader *ld, size_t i)
{
	struct bpf_link *l = ld->links[i].link;

	bpf_link__detach(l);
	if (ld->pin_dir[0])
		bpf_link__unpin(l);
	bpf_link__destroy(l);
	ld->links[i] = ld->links[--ld->n_links];
}

/* loader_attach_cgroup - attach ingress, sock_create and sockops to a cgroup */
int loader_attach_cgroup(struct loader *ld, const char *cgroup_path)
{
	char pin[PATH_MAX];
	size_t made[AP_MAX], n_made = 0;
	uint64_t cgid;
	int cgfd, err = 0;

	err = loader_cgroup_id(cgroup_path, &cgid);
	if (err)
		return err;
	if (cgid == CGROUP_ROOT_ID)
		return -EPERM;	/* never the root cgroup: that is the whole machine */
	cgfd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		return -errno;

	for (enum attach_prog p = 0; p < AP_MAX; p++) {
		struct bpf_program *prog = prog_of(ld, p);
		struct bpf_link *link = NULL;
		int idx = find_link(ld, cgid, p);

		if (ld->pin_dir[0]) {
			err = link_pin_path(ld, pin, sizeof(pin), cgid, p);
			if (err)
				goto undo;
		}
		if (idx >= 0)
			continue;	/* attached by this instance already */
		if (ld->pin_dir[0] && access(pin, F_OK) == 0) {
			/* A link from an earlier run (or an older bpfwrap):
			 * make-before-break, swap our program into it; there
			 * is no instant without a program attached. */
			if (ld->n_links == MAX_LINKS) {
				err = -ENOSPC;
				goto undo;
			}
			link = bpf_link__open(pin);
			if (!link) {
				err = -errno;
				goto undo;
			}
			if (bpf_link__update_program(link, prog) < 0) {
				err = -errno;
				bpf_link__destroy(link);
				goto undo;
			}
			ld->links[ld->n_links++] = (struct link_slot){ cgid, p, link };
			continue;
		}
		if (ld->n_links == MAX_LINKS) {
			err = -ENOSPC;
			goto undo;
		}
		link = bpf_program__attach_cgroup(prog, cgfd);
		if (!link) {
			err = -errno;
			goto undo;
		}
		if (ld->pin_dir[0] && bpf_link__pin(link, pin) < 0) {
			err = -errno;
			bpf_link__detach(link);
			bpf_link__destroy(link);
			goto undo;
		}
		ld->links[ld->n_links++] = (struct link_slot){ cgid, p, link };
		made[n_made++] = p;
	}
	close(cgfd);
	return 0;
undo:
	/* Remove only what this call created; adopted links stay. */
	while (n_made > 0) {
		int idx = find_link(ld, cgid, made[--n_made]);

		if (idx >= 0)
			drop_link(ld, (size_t)idx);
	}
	close(cgfd);
	return err;
}

/* loader_detach_cgroup - remove this instance's links (and pins) from a cgroup */
int loader_detach_cgroup(struct loader *ld, const char *cgroup_path)
{
	char pin[PATH_MAX];
	uint64_t cgid;
	int err, found = 0;

	err = loader_cgroup_id(cgroup_path, &cgid);
	if (err)
		return err;
	for (enum attach_prog p = 0; p < AP_MAX; p++) {
		int idx = find_link(ld, cgid, p);

		if (idx < 0 && ld->pin_dir[0] &&
		    link_pin_path(ld, pin, sizeof(pin), cgid, p) == 0 && access(pin, F_OK) == 0) {
			struct bpf_link *l = bpf_link__open(pin);

			if (l && ld->n_links < MAX_LINKS) {
				ld->links[ld->n_links++] = (struct link_slot){ cgid, p, l };
				idx = (int)ld->n_links - 1;
			} else {
				bpf_link__destroy(l);
			}
		}
		if (idx >= 0) {
			drop_link(ld, (size_t)idx);
			found++;
		}
	}
	return found ? 0 : -ENOENT;
}

/* loader_forget_cgroup_id - detach, unpin and forget this instance's links for a
 * cgroup id, also when the cgroup's directory is gone */
int loader_forget_cgroup_id(struct loader *ld, uint64_t cgid)
{
	char pin[PATH_MAX];
	int found = 0;

	for (enum attach_prog p = 0; p < AP_MAX; p++) {
		int idx = find_link(ld, cgid, p);

		if (idx >= 0) {
			drop_link(ld, (size_t)idx);
			found++;
		} else if (ld->pin_dir[0] && link_pin_path(ld, pin, sizeof(pin), cgid, p) == 0 &&
			   unlink(pin) == 0) {
			found++;
		}
	}
	return found ? 0 : -ENOENT;
}

/* link_on_cgroup - is the link behind fd a cgroup link attached to cgroup id cgid
 * (a detached link, or one whose cgroup was released, reports id 0) */
static bool link_on_cgroup(int fd, uint64_t cgid, uint32_t *prog_id)
{
	struct bpf_link_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return false;
	if (prog_id)
		*prog_id = info.prog_id;
	return info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == cgid;
}

/* loader_links_attached - of this instance's links for cgroup id cgid (*held of
 * them), how many the kernel reports attached to that cgroup */
int loader_links_attached(struct loader *ld, uint64_t cgid, size_t *held)
{
	int n = 0;

	*held = 0;
	for (size_t i = 0; i < ld->n_links; i++) {
		if (ld->links[i].cgroup_id != cgid)
			continue;
		(*held)++;
		if (link_on_cgroup(bpf_link__fd(ld->links[i].link), cgid, NULL))
			n++;
	}
	return n;
}

/* loader_pinned_links - of the links pinned in pin_dir for cgroup id cgid, how
 * many the kernel reports attached to that cgroup (0..LOADER_PROGS_PER_CGROUP) */
int loader_pinned_links(const char *pin_dir, uint64_t cgid)
{
	char pin[PATH_MAX];
	int n = 0;

	for (enum attach_prog p = 0; p < AP_MAX; p++) {
		int fd;

		if (snprintf(pin, sizeof(pin), "%s/link-%llu-%s", pin_dir, (unsigned long long)cgid,
			     attach_names[p]) >= (int)sizeof(pin))
			return -ENAMETOOLONG;
		fd = bpf_obj_get(pin);
		if (fd < 0) {
			if (errno != ENOENT)
				return -errno;
			continue;
		}
		if (link_on_cgroup(fd, cgid, NULL))
			n++;
		close(fd);
	}
	return n;
}

/* pinned_prog_ids - the program ids of every link pinned in pin_dir */
static size_t pinned_prog_ids(const char *pin_dir, uint32_t *ids, size_t max)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir(pin_dir);

	if (!d)
		return 0;
	for (int budget = PIN_SCAN_MAX; budget > 0 && n < max && (de = readdir(d)); budget--) {
		uint32_t id = 0;
		int fd;

		if (strncmp(de->d_name, "link-", 5) ||
		    path_join(path, sizeof(path), pin_dir, de->d_name))
			continue;
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		link_on_cgroup(fd, 0, &id);
		close(fd);
		if (id)
			ids[n++] = id;
	}
	closedir(d);
	return n;
}

/* bpfwrap_prog - is program id one of bpfwrap's (by its name) */
static bool bpfwrap_prog(uint32_t id)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);
	bool ours;
	int fd = bpf_prog_get_fd_by_id(id);

	if (fd < 0)
		return false;	/* gone meanwhile */
	memset(&info, 0, sizeof(info));
	ours = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
	       !strncmp(info.name, LOADER_PROG_PREFIX, strlen(LOADER_PROG_PREFIX));
	close(fd);
	return ours;
}

/* loader_foreign_program - a bpfwrap program attached to the cgroup at
 * cgroup_path through no link pinned in pin_dir (another instance's, or a
 * leftover of one): 1 and its id, 0 if there is none, -errno */
int loader_foreign_program(const char *pin_dir, const char *cgroup_path, uint32_t *prog_id)
{
	static const enum bpf_attach_type types[AP_MAX] = {
		[AP_SOCK_CREATE] = BPF_CGROUP_INET_SOCK_CREATE,
		[AP_SOCKOPS] = BPF_CGROUP_SOCK_OPS,
		[AP_INGRESS] = BPF_CGROUP_INET_INGRESS,
	};
	uint32_t mine[PIN_SCAN_MAX];
	size_t n_mine = pinned_prog_ids(pin_dir, mine, PIN_SCAN_MAX);
	int fd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), found = 0;

	if (fd < 0)
		return -errno;
	for (enum attach_prog p = 0; p < AP_MAX && !found; p++) {
		uint32_t ids[QUERY_MAX], cnt = QUERY_MAX, flags = 0;

		/* attached to this cgroup itself (not inherited); a full list is
		 * still filled in (-ENOSPC) */
		if (bpf_prog_query(fd, types[p], 0, &flags, ids, &cnt) < 0 && errno != ENOSPC)
			continue;
		for (uint32_t i = 0; i < cnt && i < QUERY_MAX && !found; i++) {
			bool linked = false;

			for (size_t j = 0; j < n_mine && !linked; j++)
				linked = mine[j] == ids[i];
			if (!linked && bpfwrap_prog(ids[i])) {
				*prog_id = ids[i];
				found = 1;
			}
		}
	}
	close(fd);
	return found;
}

/* loader_n_links - how many links this instance holds or adopted */
size_t loader_n_links(const struct loader *ld)
{
	return ld->n_links;
}

/* loader_unpin_all - detach pinned links, unpin maps, remove pin_dir */
int loader_unpin_all(const char *pin_dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int err = 0;

	d = opendir(pin_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (path_join(path, sizeof(path), pin_dir, de->d_name)) {
			err = -ENAMETOOLONG;
			continue;
		}
		if (!strncmp(de->d_name, "link-", 5)) {
			struct bpf_link *l = bpf_link__open(path);

			if (l) {
				bpf_link__detach(l);	/* also detaches if another fd holds it */
				bpf_link__destroy(l);
			}
		}
		if (unlink(path) < 0 && !err)
			err = -errno;
	}
	closedir(d);
	if (rmdir(pin_dir) < 0 && !err)
		err = -errno;
	return err;
}

/* owner_value - a struct cgroup_owner from a name and flags; -EINVAL if too long */
static int owner_value(struct cgroup_owner *v, const char *name, uint32_t flags)
{
	size_t n = name ? strlen(name) : 0;

	memset(v, 0, sizeof(*v));
	if (n >= sizeof(v->daemon.name))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		v->daemon.name[i] = (char)tolower((unsigned char)name[i]);
	v->flags = flags;
	return 0;
}

/* put_or_delete - update key with v, or delete it when v says nothing */
static int put_or_delete(int fd, const void *key, const struct cgroup_owner *v)
{
	if (!v->flags && !v->daemon.name[0])
		return bpf_map_delete_elem(fd, key) < 0 && errno != ENOENT ? -errno : 0;
	return bpf_map_update_elem(fd, key, v, BPF_ANY) < 0 ? -errno : 0;
}

/* loader_set_cgroup_owner - the cgroup at path: name and flags */
int loader_set_cgroup_owner(struct loader *ld, const char *cgroup_path, const char *name,
			    uint32_t flags, uint32_t pid)
{
	struct cgroup_owner v;
	uint64_t cgid;
	int err;

	err = owner_value(&v, name, flags);
	if (err)
		return err;
	v.pid = pid;
	err = loader_cgroup_id(cgroup_path, &cgid);
	if (err)
		return err;
	return put_or_delete(bpf_map__fd(loader_skel(ld)->maps.cgroup_owner), &cgid, &v);
}

/* loader_unit_name - the name and flags unit_names holds for `unit`; -ENOENT if none */
int loader_unit_name(struct loader *ld, const char *unit, char *name, size_t size, uint32_t *flags)
{
	struct unit_key k = {};
	struct cgroup_owner v;

	if (!unit[0] || strlen(unit) >= sizeof(k.name))
		return -EINVAL;
	memcpy(k.name, unit, strlen(unit));
	if (bpf_map_lookup_elem(bpf_map__fd(loader_skel(ld)->maps.unit_names), &k, &v) < 0)
		return -errno;
	if (snprintf(name, size, "%s", v.daemon.name) >= (int)size)
		return -ENAMETOOLONG;
	*flags = v.flags;
	return 0;
}

/* loader_set_unit_name - every cgroup directory called `unit`: name and flags */
int loader_set_unit_name(struct loader *ld, const char *unit, const char *name, uint32_t flags)
{
	struct cgroup_owner v;
	struct unit_key k = {};
	int err;

	if (!unit[0] || strlen(unit) >= sizeof(k.name))
		return -EINVAL;
	err = owner_value(&v, name, flags);
	if (err)
		return err;
	memcpy(k.name, unit, strlen(unit));
	return put_or_delete(bpf_map__fd(loader_skel(ld)->maps.unit_names), &k, &v);
}

/* loader_set_port_names - port_names holds exactly these n entries */
int loader_set_port_names(struct loader *ld, const struct port_key *keys,
			  const char (*names)[BPFWRAP_DAEMON_NAME_MAX], size_t n)
{
	int fd = bpf_map__fd(ld->skel->maps.port_names);
	struct port_key k, next;
	void *prev = NULL;

	for (size_t i = 0; i < n; i++) {
		struct cgroup_owner v;
		int err = owner_value(&v, names[i], 0);

		if (err)
			return err;
		if (bpf_map_update_elem(fd, &keys[i], &v.daemon, BPF_ANY) < 0)
			return -errno;
	}
	/* then remove what is not among them any more */
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		bool keep = false;

		for (size_t i = 0; i < n && !keep; i++)
			keep = keys[i].port == next.port && keys[i].proto == next.proto;
		k = next;
		prev = &k;
		if (!keep && bpf_map_delete_elem(fd, &k) < 0 && errno != ENOENT)
			return -errno;
	}
	return 0;
}

/* read_comm - /proc/PID/comm without the newline */
static int read_comm(int pid, char comm[BPFWRAP_COMM_LEN])
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(comm, 0, BPFWRAP_COMM_LEN);
	n = read(fd, comm, BPFWRAP_COMM_LEN - 1);
	close(fd);
	if (n < 0)
		return -errno;
	comm[strcspn(comm, "\n")] = 0;
	return 0;
}

/* adopt_pid - write sk_info for each inet TCP/UDP socket of pid; count them */
static int adopt_pid(struct loader *ld, int pid, const struct cgroup_owner *cgname)
{
	int skfd = bpf_map__fd(ld->skel->maps.sk_info);
	struct sock_info si;
	char dirpath[64], linkpath[PATH_MAX], target[64];
	struct dirent *de;
	int pidfd, n = 0;
	DIR *d;

	memset(&si, 0, sizeof(si));
	if (read_comm(pid, si.comm) < 0)
		return 0;	/* gone meanwhile */
	si.tgid = (uint32_t)pid;
	si.flags = BPFWRAP_SOCK_ADOPTED;
	if (cgname && (cgname->flags & BPFWRAP_CG_BY_PORT))
		si.flags |= BPFWRAP_SOCK_BY_PORT;	/* named at its first packet */
	if (cgname) {
		si.daemon = cgname->daemon;
		si.flags |= BPFWRAP_SOCK_CGROUP_NAME;
	} else {
		daemon_key_set(&si.daemon, si.comm, BPFWRAP_COMM_LEN - 1);
	}

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return errno == ESRCH ? 0 : -errno;
	snprintf(dirpath, sizeof(dirpath), "/proc/%d/fd", pid);
	d = opendir(dirpath);
	if (!d) {
		close(pidfd);
		return 0;
	}
	while ((de = readdir(d))) {
		int tfd, sfd, domain, proto;
		socklen_t len = sizeof(int);
		ssize_t tl;

		if (de->d_name[0] == '.')
			continue;
		if (path_join(linkpath, sizeof(linkpath), dirpath, de->d_name))
			continue;
		tl = readlink(linkpath, target, sizeof(target) - 1);
		if (tl <= 0)
			continue;
		target[tl] = 0;
		if (strncmp(target, "socket:", 7))
			continue;
		tfd = atoi(de->d_name);
		sfd = (int)syscall(SYS_pidfd_getfd, pidfd, tfd, 0);
		if (sfd < 0)
			continue;
		if (getsockopt(sfd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
		    (domain == AF_INET || domain == AF_INET6) &&
		    getsockopt(sfd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 &&
		    (proto == IPPROTO_TCP || proto == IPPROTO_UDP)) {
			/* NOEXIST: an owner recorded at creation is the truth. */
			if (bpf_map_update_elem(skfd, &sfd, &si, BPF_NOEXIST) == 0)
				n++;
		}
		close(sfd);
	}
	closedir(d);
	close(pidfd);
	return n;
}

/* adopt_cgroup - adopt the processes of one cgroup directory, then its children */
static int adopt_cgroup(struct loader *ld, const char *path, const struct cgroup_owner *inherited,
			int depth)
{
	int names_fd = bpf_map__fd(ld->skel->maps.cgroup_owner);
	struct cgroup_owner own;
	const struct cgroup_owner *name = inherited;
	char sub[PATH_MAX];
	uint64_t cgid;
	struct dirent *de;
	FILE *f;
	DIR *d;
	int total = 0, pid, r;

	if (depth > ADOPT_DEPTH_MAX)
		return 0;
	if (loader_cgroup_id(path, &cgid) == 0 && bpf_map_lookup_elem(names_fd, &cgid, &own) == 0 &&
	    own.daemon.name[0])
		name = &own;
	if (path_join(sub, sizeof(sub), path, "cgroup.procs"))
		return -ENAMETOOLONG;
	f = fopen(sub, "re");
	if (!f)
		return -errno;
	while (fscanf(f, "%d", &pid) == 1) {
		r = adopt_pid(ld, pid, name);
		if (r > 0)
			total += r;
	}
	fclose(f);

	d = opendir(path);
	if (!d)
		return total;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (path_join(sub, sizeof(sub), path, de->d_name))
			continue;
		r = adopt_cgroup(ld, sub, name, depth + 1);
		if (r > 0)
			total += r;
	}
	closedir(d);
	return total;
}

/* loader_adopt_sockets - record owners of sockets opened before bpfwrap */
int loader_adopt_sockets(struct loader *ld, const char *cgroup_path)
{
	int names_fd = bpf_map__fd(ld->skel->maps.cgroup_owner);
	struct cgroup_owner k;
	const struct cgroup_owner *inherited = NULL;
	char parent[PATH_MAX];
	uint64_t cgid;
	char *slash;
	int err;

	err = loader_cgroup_id(cgroup_path, &cgid);
	if (err)
		return err;
	/* A name given to an ancestor applies here too. */
	if (strlen(cgroup_path) >= sizeof(parent))
		return -ENAMETOOLONG;
	strcpy(parent, cgroup_path);
	for (int level = 0; level < ADOPT_DEPTH_MAX; level++) {
		slash = strrchr(parent, '/');
		if (!slash || slash == parent)
			break;
		*slash = 0;
		if (loader_cgroup_id(parent, &cgid) < 0)
			break;
		if (bpf_map_lookup_elem(names_fd, &cgid, &k) == 0 && k.daemon.name[0]) {
			inherited = &k;
			break;
		}
	}
	return adopt_cgroup(ld, cgroup_path, inherited, 0);
}
