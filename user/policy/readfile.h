/*
 * readfile.h - open and read the files bpfwrap is told to read (hosts.allow,
 * hosts.deny, /path pattern files, the extensions file, the policy copies of
 * `run`) without ever blocking the caller.
 *
 * open(2) of a FIFO for reading waits until some process opens it for
 * writing; opening a device may have side effects (a tape rewinds, a
 * watchdog arms) or hand over a terminal. So readfile_open() looks at what
 * the path names first with stat(2), which has neither effect, and opens
 * only a regular file or the null device (read as empty, as libwrap's
 * fopen()+fgets() read it), always with O_NONBLOCK|O_NOCTTY|O_CLOEXEC, then
 * checks with fstat(2) that what it opened is still such a file (the path
 * may have been replaced in between). Anything else is refused without
 * being read: a directory with -EISDIR (libwrap reads a directory table as
 * empty, and the parser does the same), every other type (FIFO, socket,
 * device) with -EINVAL and *type saying which, so the caller can report
 * "FILE: not a regular file (fifo)" (readfile_strerror()).
 *
 * Errors: -errno, nothing is printed. Symbolic links are followed (hosts
 * files are often links); the checks apply to the file they lead to.
 */
#ifndef BPFWRAP_READFILE_H
#define BPFWRAP_READFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Room for any readfile_strerror() text. */
#define READFILE_ERR_MAX 96

/* readfile_open - an fd open for reading on a regular file (or the null device); -errno, *type = S_IFMT of path */
int readfile_open(const char *path, mode_t *type);

/* readfile_fd - fd read to its end (at most max bytes, else -EFBIG) into a new NUL-terminated
 * buffer; a read error stops the read: with read_err, what was read so far is the content and
 * *read_err the errno (0 if none), without it the error is returned */
int readfile_fd(int fd, size_t max, char **out, size_t *len, int *read_err);

/* readfile_all - the whole file (at most max bytes, else -EFBIG) into a new NUL-terminated buffer */
int readfile_all(const char *path, size_t max, char **out, size_t *len, mode_t *type);

/* readfile_type_name - "fifo", "socket", "character device", ... for S_IFMT bits */
const char *readfile_type_name(mode_t type);

/* readfile_strerror - "not a regular file (fifo)" for -EINVAL with a type, else strerror(-err) */
const char *readfile_strerror(int err, mode_t type, char *buf, size_t size);

/* readfile_explain - readfile_strerror() for a caller that kept only err: looks at path (stat) for the type */
const char *readfile_explain(const char *path, int err, char *buf, size_t size);

#endif /* BPFWRAP_READFILE_H */
