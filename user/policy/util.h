/*
 * util.h - small helpers every layer may use (this is the lowest layer):
 * read a whole file, write one atomically.
 *
 * Errors: -errno, nothing printed.
 */
#ifndef BPFWRAP_USER_UTIL_H
#define BPFWRAP_USER_UTIL_H

#include <stddef.h>

#define READ_FILE_MAX (16 * 1024 * 1024)	/* read_file refuses larger files (-EFBIG) */

/* read_file - a whole (small) file into a new buffer, NUL-terminated; -ENOENT if missing */
int read_file(const char *path, char **out, size_t *len);

/* write_file - write len bytes to path atomically (temporary file + rename) */
int write_file(const char *path, const char *data, size_t len);

#endif /* BPFWRAP_USER_UTIL_H */
