/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * units.c - the guarded cgroups of `bpfwrap run` (see units.h for the
 * rules): plan each --cgroup into an attach point and a unit name, ask
 * systemd (D-Bus, libsystemd's sd-bus) for the program a unit runs, and
 * keep the kernel's cgroup_owner/unit_names maps and the attachments in
 * step with the cgroup tree.
 *
 * systemd is asked with a short timeout over its private socket (root's
 * way, no dbus-daemon needed), else over the system bus; when neither
 * answers, names come from the processes that create the sockets. Errors
 * are returned as -errno; nothing here prints.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <netdb.h>
#include <netinet/in.h>
#include <systemd/sd-bus.h>

#include "loader.h"
#include "superserver.h"
#include "units.h"
#include "util.h"

#define SYSTEMD_DEST "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
#define SYSTEMD_PRIVATE "unix:path=/run/systemd/private"
#define BUS_TIMEOUT_USEC (2 * 1000 * 1000)	/* a slow systemd must not hold the agent */
#define SLICE_DEPTH_MAX 4			/* sub-slices walked below a guarded slice */
#define TRIGGERS_MAX 8				/* socket units of one service */
#define XINETD_INCLUDES_MAX 256			/* files read from xinetd's includedir */
#define PORT_NAMES_MAX 1024			/* = port_names' max_entries */

/* units_cgroup2_mount - the cgroup2 mount point from /proc/self/mountinfo */
int units_cgroup2_mount(char *buf, size_t size)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER */
	while (fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX];
		const char *sep = strstr(line, " - ");

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		err = snprintf(buf, size, "%s", mnt) >= (int)size ? -ENAMETOOLONG : 0;
		break;
	}
	fclose(f);
	return err;
}

/* units_is_systemd_unit - is a cgroup directory name a unit systemd re-creates */
bool units_is_systemd_unit(const char *name)
{
	static const char *const suffixes[] = { ".service", ".socket", ".scope" };
	size_t n = strlen(name);

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t s = strlen(suffixes[i]);

		if (n > s && !strcmp(name + n - s, suffixes[i]))
			return true;
	}
	return false;
}

/* normalize - drop repeated and trailing slashes; -EINVAL for . or .. components */
static int normalize(char *path)
{
	char *r = path, *w = path;

	while (*r) {
		if (*r == '/' && (r[1] == '/' || r[1] == '\0') && w != path) {
			r++;
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
	if (strstr(path, "/./") || strstr(path, "/../") ||
	    (w - path >= 2 && !strcmp(w - 2, "/.")) || (w - path >= 3 && !strcmp(w - 3, "/..")))
		return -EINVAL;
	return 0;
}

/* units_plan - parse PATH[=NAME] into t; *why says what is wrong */
int units_plan(const char *arg, struct guard_target *t, const char **why)
{
	const char *eq = strrchr(arg, '=');
	size_t plen = eq ? (size_t)(eq - arg) : strlen(arg);
	char mnt[PATH_MAX], path[PATH_MAX];
	const char *leaf;
	char *slash;
	int err;

	*why = NULL;
	memset(t, 0, sizeof(*t));
	snprintf(t->arg, sizeof(t->arg), "%s", arg);
	if (plen == 0 || plen >= sizeof(path)) {
		*why = "empty or too long path";
		return -EINVAL;
	}
	if (eq) {
		if (!eq[1] || strlen(eq + 1) >= sizeof(t->name)) {
			*why = "the daemon name after '=' is empty or too long";
			return -EINVAL;
		}
		snprintf(t->name, sizeof(t->name), "%s", eq + 1);
		t->explicit_name = true;
	}
	memcpy(path, arg, plen);
	path[plen] = '\0';
	err = units_cgroup2_mount(mnt, sizeof(mnt));
	if (err) {
		*why = "no cgroup2 file system is mounted";
		return err;
	}
	if (path[0] == '/') {
		size_t m = strlen(mnt);

		if (strncmp(path, mnt, m) || (path[m] != '/' && path[m] != '\0')) {
			*why = "not under the cgroup2 mount";
			return -EINVAL;
		}
		snprintf(t->path, sizeof(t->path), "%s", path);
	} else if (snprintf(t->path, sizeof(t->path), "%s/%s", mnt, path) >= (int)sizeof(t->path)) {
		*why = "path too long";
		return -ENAMETOOLONG;
	}
	if (normalize(t->path)) {
		*why = "'.' and '..' are not allowed in a cgroup path";
		return -EINVAL;
	}
	if (!strcmp(t->path, mnt)) {
		*why = "the root cgroup holds every process on the machine; name a slice or a service";
		return -EPERM;
	}
	leaf = strrchr(t->path, '/') + 1;
	snprintf(t->attach, sizeof(t->attach), "%s", t->path);
	if (units_is_systemd_unit(leaf)) {
		if (strlen(leaf) >= sizeof(t->unit)) {
			*why = "unit name too long";
			return -ENAMETOOLONG;
		}
		snprintf(t->unit, sizeof(t->unit), "%s", leaf);
		slash = strrchr(t->attach, '/');
		*slash = '\0';
		/* Never the root: a unit directly under it keeps its own attach point. */
		if (!strcmp(t->attach, mnt))
			snprintf(t->attach, sizeof(t->attach), "%s", t->path);
	}
	return 0;
}

/* ---- asking systemd -------------------------------------------------------- */

/* bus_open - a connection to systemd: its private socket, else the system bus */
static sd_bus *bus_open(void)
{
	sd_bus *bus = NULL;

	if (sd_bus_new(&bus) >= 0) {
		if (sd_bus_set_address(bus, SYSTEMD_PRIVATE) >= 0 && sd_bus_start(bus) >= 0) {
			sd_bus_set_method_call_timeout(bus, BUS_TIMEOUT_USEC);
			return bus;
		}
		bus = sd_bus_unref(bus);
	}
	if (sd_bus_open_system(&bus) >= 0) {
		sd_bus_set_method_call_timeout(bus, BUS_TIMEOUT_USEC);
		return bus;
	}
	return NULL;
}

/* unit_object - the D-Bus object path of a unit (loaded if it was not) */
static int unit_object(sd_bus *bus, const char *unit, char **path)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *p;
	int r;

	r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "LoadUnit", &e,
			       &reply, "s", unit);
	sd_bus_error_free(&e);
	if (r < 0)
		return r;
	r = sd_bus_message_read(reply, "o", &p);
	if (r >= 0)
		*path = strdup(p);
	sd_bus_message_unref(reply);
	if (r < 0)
		return r;
	return *path ? 0 : -ENOMEM;
}

/* unit_strv - a string-array property of org.freedesktop.systemd1.Unit */
static int unit_strv(sd_bus *bus, const char *obj, const char *prop, char ***out)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r;

	r = sd_bus_get_property_strv(bus, SYSTEMD_DEST, obj, "org.freedesktop.systemd1.Unit", prop,
				     &e, out);
	sd_bus_error_free(&e);
	return r < 0 ? r : 0;
}

/* strv_free - free a NULL-terminated string array */
static void strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* exec_start_argv0 - argv[0] of a service's first ExecStart command */
static int exec_start_argv0(sd_bus *bus, const char *obj, char *out, size_t size)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	char **argv = NULL;
	const char *binary;
	int r;

	r = sd_bus_get_property(bus, SYSTEMD_DEST, obj, "org.freedesktop.systemd1.Service",
				"ExecStart", &e, &reply, "a(sasbttttuii)");
	sd_bus_error_free(&e);
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(reply, 'a', "(sasbttttuii)");
	if (r > 0)
		r = sd_bus_message_enter_container(reply, 'r', "sasbttttuii");
	if (r > 0)
		r = sd_bus_message_read(reply, "s", &binary);
	if (r > 0)
		r = sd_bus_message_read_strv(reply, &argv);
	if (r > 0) {
		const char *a0 = argv && argv[0] ? argv[0] : binary;
		const char *base = strrchr(a0, '/');

		base = base ? base + 1 : a0;
		r = snprintf(out, size, "%s", base) >= (int)size || !base[0] ? -ENAMETOOLONG : 0;
	} else if (r == 0) {
		r = -ENOENT;	/* no ExecStart (a scope, a oneshot without one) */
	}
	strv_free(argv);
	sd_bus_message_unref(reply);
	return r;
}

/* lower - lower-case an ASCII name in place (libwrap compares daemons so) */
static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* program_of - the program name systemd runs for a unit (a socket unit: for
 * the service it triggers), lower-case basename of argv[0]; -errno if none */
static int program_of(sd_bus *bus, const char *unit, char *out, size_t size)
{
	char *obj = NULL, **triggers = NULL;
	size_t n = strlen(unit);
	int r;

	r = unit_object(bus, unit, &obj);
	if (r)
		return r;
	if (n > 7 && !strcmp(unit + n - 7, ".socket")) {
		/* A socket unit: the program of the service it starts. */
		r = unit_strv(bus, obj, "Triggers", &triggers);
		free(obj);
		if (r)
			return r;
		r = triggers && triggers[0] ? program_of(bus, triggers[0], out, size) : -ENOENT;
		strv_free(triggers);
		return r;
	}
	r = exec_start_argv0(bus, obj, out, size);
	free(obj);
	if (!r)
		lower(out);
	return r;
}

/* triggered_by - the socket units that start a service (TriggeredBy) */
static int triggered_by(sd_bus *bus, const char *unit, char ***out)
{
	char *obj = NULL;
	int r;

	*out = NULL;
	r = unit_object(bus, unit, &obj);
	if (r)
		return r;
	r = unit_strv(bus, obj, "TriggeredBy", out);
	free(obj);
	return r;
}

/* ---- the maps ----------------------------------------------------------------- */

/* is_dir - does a directory exist at path */
static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* main_pid - a service's MainPID (a socket unit: its service's); 0 if none */
static uint32_t main_pid(sd_bus *bus, const char *unit)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char *obj = NULL, **triggers = NULL;
	size_t n = strlen(unit);
	uint32_t pid = 0;

	if (!bus || unit_object(bus, unit, &obj))
		return 0;
	if (n > 7 && !strcmp(unit + n - 7, ".socket")) {
		if (!unit_strv(bus, obj, "Triggers", &triggers) && triggers && triggers[0])
			pid = main_pid(bus, triggers[0]);
		strv_free(triggers);
	} else if (sd_bus_get_property_trivial(bus, SYSTEMD_DEST, obj,
					       "org.freedesktop.systemd1.Service", "MainPID", &e,
					       'u', &pid) < 0) {
		pid = 0;
	}
	sd_bus_error_free(&e);
	free(obj);
	return pid;
}

/* first_pid - the first process listed in a cgroup's cgroup.procs; 0 if none */
static uint32_t first_pid(const char *path)
{
	char procs[PATH_MAX];
	unsigned pid = 0;
	FILE *f;

	if (snprintf(procs, sizeof(procs), "%s/cgroup.procs", path) >= (int)sizeof(procs))
		return 0;
	f = fopen(procs, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%u", &pid) != 1)
		pid = 0;
	fclose(f);
	return pid;
}

/* name_unit - give one unit (cgroup dir at path, may not exist) a name and flags;
 * its sockets older than the programs are logged with its main PID */
static int name_unit(struct loader *ld, sd_bus *bus, const char *path, const char *unit,
		     const char *name, uint32_t flags)
{
	int err;

	err = loader_set_unit_name(ld, unit, name, flags);
	if (err)
		return err;
	if (is_dir(path)) {
		uint32_t pid = main_pid(bus, unit);

		err = loader_set_cgroup_owner(ld, path, name, flags, pid ? pid : first_pid(path));
		if (err && err != -ENOENT)	/* removed between the two calls: fine */
			return err;
	}
	return 0;
}

/* name_slice_children - below a guarded slice without NAME, each unit gets its program's name */
static int name_slice_children(struct loader *ld, sd_bus *bus, const char *dir, int depth,
			       struct units_report *rep)
{
	char child[PATH_MAX], name[BPFWRAP_DAEMON_NAME_MAX];
	struct dirent *de;
	uint32_t known;
	int err = 0;
	DIR *d;

	if (depth > SLICE_DEPTH_MAX)
		return 0;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while (!err && (de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (snprintf(child, sizeof(child), "%s/%s", dir, de->d_name) >= (int)sizeof(child))
			continue;
		if (n > 6 && !strcmp(de->d_name + n - 6, ".slice")) {
			err = name_slice_children(ld, bus, child, depth + 1, rep);
			continue;
		}
		if (!units_is_systemd_unit(de->d_name) || n >= BPFWRAP_UNIT_NAME_MAX)
			continue;
		/* Named at an earlier look: systemd is asked once per unit, not
		 * at every refresh (each question can take its timeout). */
		if (!loader_unit_name(ld, de->d_name, name, sizeof(name), &known) && name[0]) {
			if (known & BPFWRAP_CG_BY_PORT)
				rep->port_names = 1;
			continue;
		}
		if (!bus || program_of(bus, de->d_name, name, sizeof(name))) {
			/* named by the creating process; older sockets cannot be */
			continue;
		}
		/* Guarded through the slice; the name alone is not a guard. */
		err = name_unit(ld, bus, child, de->d_name, name,
				units_is_superserver(name) ? BPFWRAP_CG_BY_PORT : 0);
		if (units_is_superserver(name))
			rep->port_names = 1;	/* units_sync loads the files */
	}
	closedir(d);
	return err;
}

/* sync_target - one target's names into the kernel */
static int sync_target(struct loader *ld, sd_bus *bus, struct guard_target *t,
		       struct units_report *rep)
{
	uint32_t flags = BPFWRAP_CG_GUARDED | (t->explicit_name ? BPFWRAP_CG_EXPLICIT : 0);
	char **sockets = NULL;
	int err;

	if (t->unit[0] && !t->explicit_name && !t->name[0] && bus)
		program_of(bus, t->unit, t->name, sizeof(t->name));
	if (units_is_superserver(t->name)) {
		flags |= BPFWRAP_CG_BY_PORT;
		rep->port_names = 1;	/* units_sync loads the files */
	}
	if (!t->unit[0]) {
		if (is_dir(t->path)) {
			err = loader_set_cgroup_owner(ld, t->path, t->name, flags, first_pid(t->path));
			if (err && err != -ENOENT)
				return err;
		}
		return t->explicit_name ? 0 : name_slice_children(ld, bus, t->path, 0, rep);
	}
	if (!t->name[0]) {
		rep->unnamed++;
		if (!rep->first_unnamed[0])
			snprintf(rep->first_unnamed, sizeof(rep->first_unnamed), "%s", t->path);
	}
	err = name_unit(ld, bus, t->path, t->unit, t->name, flags);
	if (err)
		return err;
	/* A socket-activated service: systemd opens the listener in the
	 * socket unit's cgroup; it is the same daemon. */
	if (bus && !triggered_by(bus, t->unit, &sockets)) {
		for (size_t i = 0; sockets && sockets[i] && i < TRIGGERS_MAX && !err; i++) {
			char spath[PATH_MAX];
			const char *slash = strrchr(t->path, '/');

			if (strlen(sockets[i]) >= BPFWRAP_UNIT_NAME_MAX ||
			    snprintf(spath, sizeof(spath), "%.*s/%s", (int)(slash - t->path), t->path,
				     sockets[i]) >= (int)sizeof(spath))
				continue;
			err = name_unit(ld, bus, spath, sockets[i], t->name, flags);
		}
		strv_free(sockets);
	}
	return err;
}

/* units_is_superserver - is a daemon name inetd's or xinetd's */
bool units_is_superserver(const char *name)
{
	static const char *const names[] = { "inetd", "xinetd", "inetutils-inetd", "openbsd-inetd" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(name, names[i]))
			return true;
	return false;
}

/* What the xinetd includedir callback collects into. */
struct xinetd_ctx {
	struct superserver_list *list;
	int err;
};

/* xinetd_include - read every file of an includedir (xinetd skips names with '.' or '~') */
static void xinetd_include(const char *dir, void *arg)
{
	struct xinetd_ctx *c = arg;
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		const char *f = names[i]->d_name;
		char path[PATH_MAX], *text = NULL;
		size_t len;

		if (i < XINETD_INCLUDES_MAX && !strchr(f, '.') && f[strlen(f) - 1] != '~' &&
		    snprintf(path, sizeof(path), "%s/%s", dir, f) < (int)sizeof(path) &&
		    read_file(path, &text, &len) == 0) {
			/* no nested includedir: xinetd reads one level */
			int err = superserver_parse_xinetd(text, c->list, NULL, NULL);

			if (err && !c->err)
				c->err = err;
		}
		free(text);
		free(names[i]);
	}
	free(names);
}

/* port_of - a service's port: the file's, a number, or /etc/services'; 0 if none */
static uint16_t port_of(const struct superserver_service *s)
{
	const char *proto = s->proto == IPPROTO_UDP ? "udp" : "tcp";
	struct servent *se;
	char *end;
	unsigned long n;

	if (s->port)
		return s->port;
	n = strtoul(s->service, &end, 10);
	if (!*end && n > 0 && n <= 65535)
		return (uint16_t)n;
	se = getservbyname(s->service, proto);
	return se ? ntohs((uint16_t)se->s_port) : 0;
}

/* sync_port_names - the super-servers' services into port_names; how many, or -errno */
static int sync_port_names(struct loader *ld, const struct units_files *files)
{
	char (*names)[BPFWRAP_DAEMON_NAME_MAX] = calloc(PORT_NAMES_MAX, sizeof(*names));
	struct port_key *keys = calloc(PORT_NAMES_MAX, sizeof(*keys));
	struct superserver_list list = {};
	struct xinetd_ctx xc = { &list, 0 };
	const char *inetd = files && files->inetd_conf ? files->inetd_conf : UNITS_INETD_CONF;
	const char *xinetd = files && files->xinetd_conf ? files->xinetd_conf : UNITS_XINETD_CONF;
	char *text = NULL;
	size_t len, n = 0;
	int err = names && keys ? 0 : -ENOMEM;

	if (!err && read_file(inetd, &text, &len) == 0)
		err = superserver_parse_inetd(text, &list);
	free(text);
	text = NULL;
	if (!err && read_file(xinetd, &text, &len) == 0)
		err = superserver_parse_xinetd(text, &list, xinetd_include, &xc);
	free(text);
	if (!err)
		err = xc.err;
	for (size_t i = 0; !err && i < list.n && n < PORT_NAMES_MAX; i++) {
		uint16_t port = port_of(&list.v[i]);
		bool dup = false;

		if (!port)
			continue;
		/* the first line for a port is the one the super-server binds */
		for (size_t j = 0; j < n && !dup; j++)
			dup = keys[j].port == port && keys[j].proto == list.v[i].proto;
		if (dup)
			continue;
		keys[n] = (struct port_key){ .port = port, .proto = list.v[i].proto };
		snprintf(names[n], sizeof(names[n]), "%s", list.v[i].daemon);
		n++;
	}
	superserver_list_free(&list);
	if (!err)
		err = loader_set_port_names(ld, keys, (const char (*)[BPFWRAP_DAEMON_NAME_MAX])names, n);
	free(names);
	free(keys);
	return err ? err : (int)n;
}

/* own_cgroup - this process's cgroup v2 directory, from /proc/self/cgroup */
static int own_cgroup(char *buf, size_t size)
{
	char mnt[PATH_MAX], line[PATH_MAX + 8];
	FILE *f;
	int err = units_cgroup2_mount(mnt, sizeof(mnt));

	if (err)
		return err;
	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -errno;
	err = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::/", 4))
			continue;
		line[strcspn(line, "\n")] = '\0';
		if (!line[4])
			break;	/* the root: never marked */
		err = snprintf(buf, size, "%s%s", mnt, line + 3) >= (int)size ? -ENAMETOOLONG : 0;
		break;
	}
	fclose(f);
	return err;
}

/* units_sync - write every target's names into the kernel and attach what exists */
int units_sync(struct loader *ld, struct guard_target *t, size_t n, const struct units_files *files,
	       struct units_report *rep)
{
	char self[PATH_MAX];
	sd_bus *bus = bus_open();
	int err = 0;

	memset(rep, 0, sizeof(*rep));
	/* bpfwrap's own sockets (DNS, ident) and spawned commands are never
	 * decided, even inside a guarded slice. */
	if (!own_cgroup(self, sizeof(self))) {
		err = loader_set_cgroup_owner(ld, self, "", BPFWRAP_CG_EXEMPT, 0);
		if (err && err != -ENOENT)
			goto out;
		err = 0;
	}
	/* slices first: a unit named on its own wins over its slice's naming */
	for (size_t i = 0; i < n && !err; i++)
		if (!t[i].unit[0])
			err = sync_target(ld, bus, &t[i], rep);
	for (size_t i = 0; i < n && !err; i++)
		if (t[i].unit[0])
			err = sync_target(ld, bus, &t[i], rep);
	/* a super-server's services, before its programs can see a packet */
	if (!err && rep->port_names) {
		int r = sync_port_names(ld, files);

		rep->port_names = r > 0 ? (size_t)r : 0;
		rep->superserver_err = r < 0 ? r : 0;
	}
out:
	if (bus)
		sd_bus_flush_close_unref(bus);
	if (err)
		return err;
	/* Names first, then the programs: a socket made in between is
	 * never decided under a name it should not have. */
	for (size_t i = 0; i < n; i++) {
		if (t[i].attached)
			continue;
		if (!is_dir(t[i].attach) || loader_cgroup_id(t[i].attach, &t[i].attach_id)) {
			rep->waiting++;
			continue;
		}
		err = loader_attach_cgroup(ld, t[i].attach);
		if (err == -ENOENT) {	/* removed since the check */
			rep->waiting++;
			continue;
		}
		if (err)
			return err;
		t[i].attached = true;
	}
	return 0;
}
