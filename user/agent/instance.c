/*
 * instance.c - one `bpfwrap run` per pin directory and per cgroup (see
 * instance.h): the per-pin-directory records in /run/bpfwrap, their
 * flock()s, the overlap of attach points, and the kernel's view of what is
 * attached there.
 *
 * Every record is created, read for a claim and removed only under the
 * registry lock, so a record's file is never replaced under a lock held on
 * it. Errors: functions return 0 or -errno and print nothing; the commands
 * (user/cli/run.c, user/cli/status.c) report.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "instance.h"
#include "loader.h"
#include "statedir.h"

#define REGISTRY STATE_ROOT "/.registry"
#define RECORD_SUFFIX ".lock"
#define RECORD_MAX ((STATE_CGROUPS_MAX + 2) * (PATH_MAX + 16))	/* bytes of one record */
#define RECORDS_MAX 1024	/* records looked at by one claim */
#define POLL_MS 10		/* between two tries of a lock */

struct instance {
	int fd;			/* the record, flock(LOCK_EX) held */
	char path[PATH_MAX];
};

/* One record, read back. */
struct record {
	int pid;
	char pin_dir[PATH_MAX];
	char (*attach)[PATH_MAX];	/* STATE_CGROUPS_MAX of them */
	size_t n_attach;
};

/* sleep_ms - a short pause between two tries */
static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* record_path - /run/bpfwrap/KEY.lock for a pin directory */
static int record_path(const char *pin_dir, char *buf, size_t size)
{
	char dir[PATH_MAX];
	int err = state_dir(pin_dir, dir, sizeof(dir));

	if (err)
		return err;
	return snprintf(buf, size, "%s%s", dir, RECORD_SUFFIX) >= (int)size ? -ENAMETOOLONG : 0;
}

/* registry_lock - the registry's lock, waited for up to INSTANCE_WAIT_MS: its fd, or -errno */
static int registry_lock(void)
{
	int fd;

	if (mkdir(STATE_ROOT, 0755) && errno != EEXIST)
		return -errno;
	fd = open(REGISTRY, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB); waited += POLL_MS) {
		if (errno != EWOULDBLOCK || waited >= INSTANCE_WAIT_MS) {
			int err = errno == EWOULDBLOCK ? -EBUSY : -errno;

			close(fd);
			return err;
		}
		sleep_ms(POLL_MS);
	}
	return fd;
}

/* record_read - parse a record's key=value lines from fd */
static int record_read(int fd, struct record *r)
{
	char *text = malloc(RECORD_MAX + 1), *line, *next;
	ssize_t n;

	r->pid = 0;
	r->pin_dir[0] = '\0';
	r->n_attach = 0;
	if (!text)
		return -ENOMEM;
	n = pread(fd, text, RECORD_MAX, 0);
	if (n < 0) {
		free(text);
		return -errno;
	}
	text[n] = '\0';
	for (line = text; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!strncmp(line, "pid=", 4))
			r->pid = (int)strtol(line + 4, NULL, 10);
		else if (!strncmp(line, "pin_dir=", 8))
			snprintf(r->pin_dir, sizeof(r->pin_dir), "%s", line + 8);
		else if (!strncmp(line, "attach=", 7) && r->n_attach < STATE_CGROUPS_MAX)
			snprintf(r->attach[r->n_attach++], PATH_MAX, "%s", line + 7);
	}
	free(text);
	return 0;
}

/* record_write - this process's record into fd */
static int record_write(int fd, const char *pin_dir, const char *const *attach, size_t n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int err = 0;

	if (!f)
		return -ENOMEM;
	fprintf(f, "pid=%d\npin_dir=%s\n", (int)getpid(), pin_dir);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "attach=%s\n", attach[i]);
	if (fclose(f)) {
		free(text);
		return -ENOMEM;
	}
	if (ftruncate(fd, 0) || pwrite(fd, text, len, 0) != (ssize_t)len)
		err = -errno;
	free(text);
	return err;
}

/* inside - is path dir itself or below it */
static bool inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

/* overlap - does one of attach[0..n) share sockets with one of r's attach
 * points (the same cgroup first, then one inside the other) */
static bool overlap(const struct record *r, const char *const *attach, size_t n,
		    struct instance_conflict *c)
{
	for (int nested = 0; nested < 2; nested++)
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < r->n_attach; j++) {
				if (nested ? !inside(attach[i], r->attach[j]) &&
						     !inside(r->attach[j], attach[i])
					   : strcmp(attach[i], r->attach[j]))
					continue;
				snprintf(c->mine, sizeof(c->mine), "%s", attach[i]);
				snprintf(c->theirs, sizeof(c->theirs), "%s", r->attach[j]);
				return true;
			}
	return false;
}

/* check_other - one other record: -EBUSY if its run (alive, or stopped with its
 * pins in force) overlaps; a record with nothing left pinned is removed */
static int check_other(const char *path, const char *const *attach, size_t n, struct record *r,
		       struct instance_conflict *c)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK), err = 0;
	bool running;
	struct stat st;

	if (fd < 0)
		return 0;	/* gone, or not a record (a state directory) */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		goto out;
	running = flock(fd, LOCK_SH | LOCK_NB) != 0;
	if (record_read(fd, r))
		goto out;
	if (!running && (!r->pin_dir[0] || access(r->pin_dir, F_OK))) {
		unlink(path);	/* stopped, and its pins were removed: nothing to guard */
		goto out;
	}
	if (overlap(r, attach, n, c)) {
		c->pid = r->pid;
		c->running = running;
		snprintf(c->pin_dir, sizeof(c->pin_dir), "%s", r->pin_dir);
		err = -EBUSY;
	}
out:
	close(fd);	/* also drops the LOCK_SH taken to look */
	return err;
}

/* check_others - every other record, then the kernel, for an overlap */
static int check_others(const char *mine, const char *pin_dir, const char *const *attach,
			size_t n, struct record *r, struct instance_conflict *c)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(STATE_ROOT);
	int err = 0, budget = RECORDS_MAX;
	size_t sl = strlen(RECORD_SUFFIX);

	if (!d)
		return -errno;
	while (!err && budget-- > 0 && (de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len <= sl || strcmp(de->d_name + len - sl, RECORD_SUFFIX) ||
		    snprintf(path, sizeof(path), "%s/%s", STATE_ROOT, de->d_name) >= (int)sizeof(path) ||
		    !strcmp(path, mine))
			continue;
		err = check_other(path, attach, n, r, c);
	}
	closedir(d);
	/* What the kernel has attached there that no record told of. */
	for (size_t i = 0; i < n && !err; i++) {
		uint32_t id = 0;

		if (access(attach[i], F_OK))
			continue;	/* waited for: nothing is attached to it yet */
		if (loader_foreign_program(pin_dir, attach[i], &id) == 1) {
			snprintf(c->mine, sizeof(c->mine), "%s", attach[i]);
			snprintf(c->theirs, sizeof(c->theirs), "%s", attach[i]);
			c->prog_id = id;
			err = -EBUSY;
		}
	}
	return err;
}

/* instance_claim - claim pin_dir and the attach points attach[0..n) for this process */
int instance_claim(const char *pin_dir, const char *const *attach, size_t n,
		   struct instance **out, struct instance_conflict *c)
{
	struct instance *in = calloc(1, sizeof(*in));
	struct record r = { .attach = calloc(STATE_CGROUPS_MAX, PATH_MAX) };
	int reg = -1, err;

	*out = NULL;
	memset(c, 0, sizeof(*c));
	if (!in || !r.attach) {
		err = -ENOMEM;
		goto fail;
	}
	in->fd = -1;
	err = record_path(pin_dir, in->path, sizeof(in->path));
	if (err)
		goto fail;
	reg = registry_lock();
	if (reg < 0) {
		err = reg;
		goto fail;
	}
	in->fd = open(in->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (in->fd < 0) {
		err = -errno;
		goto fail;
	}
	if (flock(in->fd, LOCK_EX | LOCK_NB)) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (err == -EBUSY && record_read(in->fd, &r) == 0) {
			c->pid = r.pid;
			c->running = true;
		}
		snprintf(c->pin_dir, sizeof(c->pin_dir), "%s", pin_dir);
		goto fail;
	}
	err = check_others(in->path, pin_dir, attach, n, &r, c);
	if (!err)
		err = record_write(in->fd, pin_dir, attach, n);
	if (err) {
		/* ours was new (no pins yet) or is kept as the last run left it */
		if (access(pin_dir, F_OK))
			unlink(in->path);
		goto fail;
	}
	close(reg);
	free(r.attach);
	*out = in;
	return 0;
fail:
	if (reg >= 0)
		close(reg);
	if (in && in->fd >= 0)
		close(in->fd);
	free(in);
	free(r.attach);
	return err;
}

/* instance_release - give the claim up; forget: also remove the record */
void instance_release(struct instance *in, bool forget)
{
	int reg;

	if (!in)
		return;
	if (forget) {
		/* under the registry lock; without it the next claim finds
		 * a record whose pin directory is gone and removes it */
		reg = registry_lock();
		if (reg >= 0) {
			unlink(in->path);
			close(reg);
		}
	}
	close(in->fd);
	free(in);
}

/* instance_holder - the pid of the run holding pin_dir: 1, 0 if none, -errno */
int instance_holder(const char *pin_dir, int *pid)
{
	struct record r = { 0 };
	char path[PATH_MAX];
	int fd, reg, err;

	*pid = 0;
	err = record_path(pin_dir, path, sizeof(path));
	if (err)
		return err;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd);
		return 0;
	}
	err = errno == EWOULDBLOCK ? 1 : -errno;
	r.attach = calloc(STATE_CGROUPS_MAX, PATH_MAX);
	/* the holder writes its record under the registry lock: read it so too */
	reg = err == 1 && r.attach ? registry_lock() : -1;
	if (reg >= 0) {
		if (record_read(fd, &r) == 0)
			*pid = r.pid;
		close(reg);
	}
	free(r.attach);
	close(fd);
	return err;
}

/* instance_wait_released - wait up to timeout_ms for the run holding pin_dir to exit */
int instance_wait_released(const char *pin_dir, int timeout_ms)
{
	int pid;

	for (int waited = 0; waited <= timeout_ms; waited += POLL_MS) {
		if (instance_holder(pin_dir, &pid) <= 0)
			return 0;
		sleep_ms(POLL_MS);
	}
	return -ETIMEDOUT;
}

/* instance_forget - remove the record of pin_dir if no run holds it */
int instance_forget(const char *pin_dir)
{
	char path[PATH_MAX];
	int fd, reg, err;

	err = record_path(pin_dir, path, sizeof(path));
	if (err)
		return err;
	reg = registry_lock();
	if (reg < 0)
		return reg;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		err = errno == ENOENT ? 0 : -errno;
	} else {
		if (flock(fd, LOCK_EX | LOCK_NB))
			err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		else if (unlink(path))
			err = -errno;
		close(fd);
	}
	close(reg);
	return err;
}
