/*
 * util.h - small helpers every layer may use (this is the lowest layer):
 * read a whole file, write one atomically, read the monotonic clock.
 *
 * Errors: -errno, nothing printed.
 */
#ifndef BPFWRAP_USER_UTIL_H
#define BPFWRAP_USER_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define NSEC_PER_SEC 1000000000ull
#define NSEC_PER_MSEC 1000000ull
#define MSEC_PER_SEC 1000ull

#define READ_FILE_MAX (16 * 1024 * 1024)	/* read_file refuses larger files (-EFBIG) */

/* read_file - a whole (small) file into a new buffer, NUL-terminated; -ENOENT if missing,
 * -EINVAL a FIFO/socket/device (never opened: readfile.h), -EISDIR a directory */
int read_file(const char *path, char **out, size_t *len);

/* write_file - write len bytes to path atomically (PATH.tmp, O_EXCL|O_NOFOLLOW, + rename) */
int write_file(const char *path, const char *data, size_t len);

/* monotonic_ns - CLOCK_MONOTONIC now in nanoseconds, the clock of bpf_ktime_get_ns() */
uint64_t monotonic_ns(void);

/* monotonic_ms - CLOCK_MONOTONIC now in milliseconds */
uint64_t monotonic_ms(void);

#endif /* BPFWRAP_USER_UTIL_H */
