/*
 * util.c - small helpers every layer may use (see util.h): read a whole
 * file into memory (through readfile.h: never blocks on a FIFO), write a file
 * atomically without following a link planted in its place, read the
 * monotonic clock.
 *
 * Errors: functions return 0 or -errno and print nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "readfile.h"
#include "util.h"

/* read_file - a whole (small) file into a new buffer; -ENOENT if missing; never blocks:
 * a FIFO, a socket or a device is -EINVAL without being opened, a directory -EISDIR */
int read_file(const char *path, char **out, size_t *len)
{
	mode_t type;

	return readfile_all(path, READ_FILE_MAX, out, len, &type);
}

/* write_file - write len bytes to path atomically (temporary file + rename); the
 * temporary file is created anew (O_EXCL|O_NOFOLLOW): a link planted under its name
 * is never followed, a stale one left by a crash is removed first */
int write_file(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	size_t off = 0;
	int fd, err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		/* unlink() removes a link itself, never what it points to */
		if (unlink(tmp) && errno != ENOENT)
			return -errno;
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		off += (size_t)w;
	}
	if (close(fd) && !err)
		err = -errno;
	/* rename() replaces the name path, even a link there, never the file a link names */
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* monotonic_ns - CLOCK_MONOTONIC now in nanoseconds, the clock of bpf_ktime_get_ns() */
uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* monotonic_ms - CLOCK_MONOTONIC now in milliseconds */
uint64_t monotonic_ms(void)
{
	return monotonic_ns() / NSEC_PER_MSEC;
}
