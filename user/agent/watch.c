/*
 * watch.c - inotify on the parent directories of the policy files, filtered
 * by name, with a debounce timer; one epoll fd for the agent (watch.h).
 *
 * Two debounce modes (watch.h): watch_open() waits debounce_ms of quiet after
 * every event; watch_open_prompt() waits only settle_ms after an event that
 * ends a write (close after writing, rename over the file, chmod), waits
 * max_ms after one that does not (a write to a file still open, a delete, a
 * create), and never lets a batch of events wait longer than max_ms after its
 * first event, so a steady stream of writes still reloads now and then.
 *
 * Errors: 0 or -errno; nothing is printed.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>

#include "watch.h"
#include "util.h"

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | \
		    IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

enum { TAG_INOTIFY = 1, TAG_TIMER = 2 };

struct watched {
	int wd;			/* inotify watch of the directory */
	char *name;		/* file name inside it */
};

struct watcher {
	int epfd, ino_fd, timer_fd;
	unsigned debounce_ms;	/* quiet after an event; with settle_ms, also the cap */
	unsigned settle_ms;	/* 0: plain debounce; else quiet after a completed write */
	struct watched *files;
	size_t n_files;
	bool pending;		/* a change was seen, reload not yet reported */
	uint64_t first;		/* ms of the first event since the last reload */
	uint64_t due;		/* ms when the reload is due */
};

/* Events that end a write: the file is whole now (watch_open_prompt). A
 * delete, create or bare IN_MODIFY is not: a new file usually follows, or
 * the writer is still at work, and a missing or half-written file must not
 * be swapped in a few ms later. */
#define WATCH_DONE (IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB)

/* watch_open - a watcher with the given debounce (0 = 200 ms); 0 or -errno */
int watch_open(struct watcher **out, unsigned debounce_ms)
{
	struct epoll_event ino = { .events = EPOLLIN, .data.u32 = TAG_INOTIFY };
	struct epoll_event tim = { .events = EPOLLIN, .data.u32 = TAG_TIMER };
	struct watcher *w;
	int err;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->debounce_ms = debounce_ms ? debounce_ms : 200;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	w->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (w->epfd < 0 || w->ino_fd < 0 || w->timer_fd < 0 ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->ino_fd, &ino) < 0 ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->timer_fd, &tim) < 0) {
		err = -errno;
		watch_close(w);
		return err;
	}
	*out = w;
	return 0;
}

/* watch_open_prompt - a watcher that reloads settle_ms after a completed write,
 * at most max_ms after the first change (0 = 5 ms and 200 ms); 0 or -errno */
int watch_open_prompt(struct watcher **out, unsigned settle_ms, unsigned max_ms)
{
	int err = watch_open(out, max_ms);

	if (err)
		return err;
	(*out)->settle_ms = settle_ms ? settle_ms : WATCH_SETTLE_MS;
	if ((*out)->settle_ms > (*out)->debounce_ms)
		(*out)->settle_ms = (*out)->debounce_ms;
	return 0;
}

/* add_one - watch dir of path for its base name */
static int add_one(struct watcher *w, const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
	struct watched *nf;
	int wd;

	if (!*name)
		return -EINVAL;
	if (!slash)
		strcpy(dir, ".");
	else if (slash == path)
		strcpy(dir, "/");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	else
		memcpy(dir, path, (size_t)(slash - path)), dir[slash - path] = 0;
	wd = inotify_add_watch(w->ino_fd, dir, WATCH_MASK);	/* same dir: same wd */
	if (wd < 0)
		return -errno;
	for (size_t i = 0; i < w->n_files; i++)
		if (w->files[i].wd == wd && !strcmp(w->files[i].name, name))
			return 0;
	nf = realloc(w->files, (w->n_files + 1) * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	w->files = nf;
	nf[w->n_files].wd = wd;
	nf[w->n_files].name = strdup(name);
	if (!nf[w->n_files].name)
		return -ENOMEM;
	w->n_files++;
	return 0;
}

/* watch_add - watch path (its directory, filtered by its name); adding twice is a no-op */
int watch_add(struct watcher *w, const char *path)
{
	char real[PATH_MAX];
	int err;

	if (!w || !path)
		return -EINVAL;
	err = add_one(w, path);
	/* a symlink: also where it points (its target's edits do not touch the link's dir) */
	if (!err && realpath(path, real) && strcmp(real, path))
		err = add_one(w, real);
	return err;
}

/* watch_clear - forget every path (then add the new set after a reload) */
void watch_clear(struct watcher *w)
{
	/*
	 * The directory watches stay: re-adding a file in the same directory gets
	 * the same watch back, so an edit made while the agent reloads is still in
	 * the queue and matched afterwards. A directory no file names any more only
	 * costs a filtered-out event now and then.
	 */
	for (size_t i = 0; i < w->n_files; i++)
		free(w->files[i].name);
	free(w->files);
	w->files = NULL;
	w->n_files = 0;
}

/* relevant - does this event touch a watched file? */
static bool relevant(const struct watcher *w, const struct inotify_event *ev)
{
	if (ev->mask & IN_Q_OVERFLOW)
		return true;	/* events were lost: assume a change */
	for (size_t i = 0; i < w->n_files; i++) {
		if (w->files[i].wd != ev->wd)
			continue;
		/* the directory itself went away or moved: the files did too */
		if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
			return true;
		if (ev->len && !strcmp(ev->name, w->files[i].name))
			return true;
	}
	return false;
}

/* arm - the timer fires at w->due */
static void arm(struct watcher *w)
{
	struct itimerspec its = { 0 };

	its.it_value.tv_sec = (time_t)(w->due / 1000);
	its.it_value.tv_nsec = (long)(w->due % 1000) * 1000000;
	timerfd_settime(w->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* note_change - one relevant event: when is the reload due now? */
static void note_change(struct watcher *w, uint32_t mask)
{
	uint64_t t = monotonic_ms();
	bool done = w->settle_ms && (mask & WATCH_DONE) && !(mask & IN_Q_OVERFLOW);

	if (!w->pending) {
		w->pending = true;
		w->first = t;
	}
	w->due = t + (done ? w->settle_ms : w->debounce_ms);
	if (w->settle_ms && w->due > w->first + w->debounce_ms)
		w->due = w->first + w->debounce_ms;	/* a stream of writes: cap the wait */
	arm(w);
}

/* watch_process - consume events; 1 if a reload is due now, 0 if not (yet), -errno */
int watch_process(struct watcher *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	uint64_t expirations;
	ssize_t n;

	if (!w)
		return -EINVAL;
	while ((n = read(w->ino_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (relevant(w, ev))
				note_change(w, ev->mask);
			p += sizeof(*ev) + ev->len;
		}
	}
	if (n < 0 && errno != EAGAIN)
		return -errno;
	if (read(w->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return -errno;
	if (w->pending && monotonic_ms() >= w->due) {
		w->pending = false;
		return 1;
	}
	return 0;
}

/* watch_fd - epoll fd: readable on a file event or when the debounce ends */
int watch_fd(const struct watcher *w)
{
	return w ? w->epfd : -EINVAL;
}

/* watch_close - release everything */
void watch_close(struct watcher *w)
{
	if (!w)
		return;
	if (w->ino_fd >= 0)
		watch_clear(w);
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->ino_fd >= 0)
		close(w->ino_fd);
	if (w->timer_fd >= 0)
		close(w->timer_fd);
	free(w);
}
