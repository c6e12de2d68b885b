/*
 * readfile.c - open and read policy files without blocking on a FIFO or
 * touching a device (readfile.h says what is opened and what is refused).
 *
 * Errors: -errno; nothing is printed. A read error after some bytes were
 * read is an error for readfile_all(); the parser, which must reproduce
 * libwrap's fgets() on a short read, reads readfile_open()'s fd with
 * readfile_fd() and keeps what was read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "readfile.h"

/* The null device (Linux's mem driver, minor 3): read as empty, never blocks. */
#define NULL_DEV_MAJOR 1
#define NULL_DEV_MINOR 3
/* First buffer size when fstat() gives no size. */
#define READ_CHUNK 4096

/* readable_type - may a file of this kind be opened: regular, or the null device */
static bool readable_type(const struct stat *st)
{
	if (S_ISREG(st->st_mode))
		return true;
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == NULL_DEV_MAJOR &&
	       minor(st->st_rdev) == NULL_DEV_MINOR;
}

/* refusal - the error for a file that is not opened: -EISDIR or -EINVAL */
static int refusal(const struct stat *st)
{
	return S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
}

/* readfile_open - an fd open for reading on a regular file (or the null device); -errno, *type = S_IFMT of path */
int readfile_open(const char *path, mode_t *type)
{
	struct stat st;
	int fd;

	*type = 0;
	if (!path)
		return -EINVAL;
	if (stat(path, &st) < 0)
		return -errno;
	*type = st.st_mode & S_IFMT;
	if (!readable_type(&st))
		return refusal(&st);
	/* O_NONBLOCK: if the path became a FIFO since stat(), open() still returns */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	*type = st.st_mode & S_IFMT;
	if (!readable_type(&st)) {
		close(fd);
		return refusal(&st);
	}
	return fd;
}

/* readfile_fd - fd read to its end (at most max bytes, else -EFBIG) into a new NUL-terminated buffer */
int readfile_fd(int fd, size_t max, char **out, size_t *len, int *read_err)
{
	struct stat st;
	size_t n = 0, cap;
	char *buf;
	int err = 0;

	*out = NULL;
	*len = 0;
	if (read_err)
		*read_err = 0;
	/* one read when fstat() knows the size; +1 to see the end in the same loop */
	cap = fstat(fd, &st) == 0 && st.st_size > 0 && (uint64_t)st.st_size <= max ? (size_t)st.st_size + 1
										  : READ_CHUNK;
	if (cap > max + 1)
		cap = max + 1;
	buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t r;

		if (n > max) {
			err = -EFBIG;
			break;
		}
		if (n == cap) {
			/* one byte past max tells a file that is too big */
			size_t ncap = cap * 2 < max + 1 ? cap * 2 : max + 1;
			char *nb = realloc(buf, ncap + 1);

			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && read_err) {
			*read_err = errno;	/* what was read so far is the content */
			break;
		}
		if (r < 0) {
			err = -errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (err) {
		free(buf);
		return err;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* readfile_all - the whole file (at most max bytes, else -EFBIG) into a new NUL-terminated buffer */
int readfile_all(const char *path, size_t max, char **out, size_t *len, mode_t *type)
{
	int fd, err;

	*out = NULL;
	*len = 0;
	fd = readfile_open(path, type);
	if (fd < 0)
		return fd;
	err = readfile_fd(fd, max, out, len, NULL);
	close(fd);
	return err;
}

/* readfile_type_name - "fifo", "socket", "character device", ... for S_IFMT bits */
const char *readfile_type_name(mode_t type)
{
	switch (type & S_IFMT) {
	case S_IFREG: return "regular file";
	case S_IFDIR: return "directory";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	case S_IFCHR: return "character device";
	case S_IFBLK: return "block device";
	case S_IFLNK: return "symbolic link";
	default: return "unknown type";
	}
}

/* readfile_strerror - "not a regular file (fifo)" for -EINVAL with a type, else strerror(-err) */
const char *readfile_strerror(int err, mode_t type, char *buf, size_t size)
{
	if (err == -EISDIR)
		snprintf(buf, size, "is a directory");
	else if (err == -EINVAL && type && (type & S_IFMT) != S_IFREG)
		snprintf(buf, size, "not a regular file (%s)", readfile_type_name(type));
	else
		snprintf(buf, size, "%s", strerror(err < 0 ? -err : err));
	return buf;
}

/* readfile_explain - readfile_strerror() for a caller that kept only err: looks at path (stat) for the type */
const char *readfile_explain(const char *path, int err, char *buf, size_t size)
{
	struct stat st;
	mode_t type = 0;

	if (err == -EINVAL && path && stat(path, &st) == 0)
		type = st.st_mode & S_IFMT;
	return readfile_strerror(err, type, buf, size);
}
