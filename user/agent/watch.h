/*
 * watch.h - notice edits of hosts.allow, hosts.deny and the files they
 * include, and say when a reload is due.
 *
 * The PARENT DIRECTORY of each file is watched (inotify), and events are
 * filtered by file name, so every way a file changes is seen: editors that
 * write a new file and rename it over the old one (IN_MOVED_TO), in-place
 * writes (IN_CLOSE_WRITE), appends by fail2ban/DenyHosts that may keep the
 * file open (IN_MODIFY), delete and re-create (IN_DELETE, IN_CREATE), chmod
 * (IN_ATTRIB: an unreadable file changes the policy). A path that is a
 * symlink is watched both where it is and where it points.
 *
 * Debounce: with watch_open(), a reload is due debounce_ms after the LAST
 * relevant event, so a burst of writes gives one reload. With
 * watch_open_prompt() (the agent), an event that completes a write
 * (IN_CLOSE_WRITE, IN_MOVED_TO of a rename over the file, IN_ATTRIB) makes
 * the reload due after settle_ms of quiet (a few ms), any other event
 * (IN_MODIFY of a file still open, IN_DELETE, IN_CREATE, an overflow) after
 * max_ms, and no reload waits more than max_ms after the first event of its
 * batch: a burst still gives one reload, a steady stream one per max_ms. A
 * file caught half-written usually lacks its final newline, which the parser
 * reports as an error; the agent keeps the old policy then (run.c). The inotify fd and the debounce timer sit
 * in one epoll set: add watch_fd() to the agent's loop and call
 * watch_process() when it is readable; it returns 1 exactly once per quiet
 * period after changes. An inotify queue overflow counts as a change.
 *
 * Errors: 0 or -errno, nothing printed. A file whose directory does not
 * exist cannot be watched: watch_add() returns -ENOENT.
 */
#ifndef BPFWRAP_WATCH_H
#define BPFWRAP_WATCH_H

struct watcher;

/* watch_open - a watcher with the given debounce (0 = 200 ms); 0 or -errno */
int watch_open(struct watcher **out, unsigned debounce_ms);

/* Defaults of watch_open_prompt(). */
#define WATCH_SETTLE_MS 5
#define WATCH_MAX_MS 200

/* watch_open_prompt - a watcher that reloads settle_ms after a completed write,
 * at most max_ms after the first change (0 = WATCH_SETTLE_MS, WATCH_MAX_MS); 0 or -errno */
int watch_open_prompt(struct watcher **out, unsigned settle_ms, unsigned max_ms);

/* watch_add - watch path (its directory, filtered by its name); adding twice is a no-op */
int watch_add(struct watcher *w, const char *path);

/* watch_clear - forget every path (then add the new set after a reload); directory watches stay */
void watch_clear(struct watcher *w);

/* watch_fd - epoll fd: readable on a file event or when the debounce ends */
int watch_fd(const struct watcher *w);

/* watch_process - consume events; 1 if a reload is due now, 0 if not (yet), -errno */
int watch_process(struct watcher *w);

/* watch_close - release everything */
void watch_close(struct watcher *w);

#endif /* BPFWRAP_WATCH_H */
