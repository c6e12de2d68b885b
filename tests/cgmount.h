/*
 * cgmount.h - where cgroup2 is mounted, for the tests that make child
 * cgroups (tests/bpf/test_loader.c, tests/integration/itest.h): the first
 * cgroup2 entry of /proc/self/mountinfo, the mount `bpfwrap run` takes a
 * relative --cgroup under (user/cli/run.c, cgroup2_mount). Stock Debian 12
 * has it at /sys/fs/cgroup; a hybrid host (cgroup v1 controllers beside
 * it) at /sys/fs/cgroup/unified. Nothing here assumes either.
 *
 * Errors: nothing prints. The functions return 0 or -errno: -ENOENT when
 * no cgroup2 is mounted, -ENAMETOOLONG when the path does not fit, -ENOTDIR
 * when the path found is not a cgroup2 directory, or the errno of reading
 * /proc/self/mountinfo. Lines that are not mountinfo lines are passed over.
 */
#ifndef BPFWRAP_TESTS_CGMOUNT_H
#define BPFWRAP_TESTS_CGMOUNT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <linux/magic.h>

/* Helpers are static: one copy per test binary; not every includer uses each. */
#define CGMOUNT_FN static __attribute__((unused))

#define CGMOUNT_MOUNTINFO "/proc/self/mountinfo"
/* mountinfo fields before the optional ones: id, parent, dev, root, mount point, options */
#define CGMOUNT_FIXED_FIELDS 6
#define CGMOUNT_MOUNT_POINT 4	/* 0-based index of the mount point */
#define CGMOUNT_MAX_FIELDS 64	/* a line with more optional fields is passed over */

/* cgmount_unescape - a mountinfo path (space, tab, newline, backslash as \ooo) into buf */
CGMOUNT_FN int cgmount_unescape(const char *in, char *buf, size_t size)
{
	size_t n = 0;

	for (const char *p = in; *p; n++) {
		char c = *p++;

		if (c == '\\' && p[0] >= '0' && p[0] <= '3' && p[1] >= '0' && p[1] <= '7' &&
		    p[2] >= '0' && p[2] <= '7') {
			c = (char)((p[0] - '0') << 6 | (p[1] - '0') << 3 | (p[2] - '0'));
			p += 3;
		}
		if (n + 1 >= size)
			return -ENAMETOOLONG;
		buf[n] = c;
	}
	if (n >= size)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

/* cgmount_parse - the mount point of the first cgroup2 line of mountinfo text read from f */
CGMOUNT_FN int cgmount_parse(FILE *f, char *buf, size_t size)
{
	char *line = NULL, *field[CGMOUNT_MAX_FIELDS];
	size_t cap = 0;
	int err = -ENOENT;

	while (err == -ENOENT && getline(&line, &cap, f) > 0) {
		char *save = NULL, *tok;
		int n = 0, sep = -1;

		for (tok = strtok_r(line, " \n", &save); tok && n < CGMOUNT_MAX_FIELDS;
		     tok = strtok_r(NULL, " \n", &save))
			field[n++] = tok;
		/* optional fields end at "-"; the file system type follows it */
		for (int i = CGMOUNT_FIXED_FIELDS; i < n && sep < 0; i++)
			if (!strcmp(field[i], "-"))
				sep = i;
		if (sep < 0 || sep + 1 >= n || strcmp(field[sep + 1], "cgroup2"))
			continue;
		err = cgmount_unescape(field[CGMOUNT_MOUNT_POINT], buf, size);
	}
	free(line);
	if (err == -ENOENT && ferror(f))
		err = -EIO;
	return err;
}

/* cgmount_find - this process's cgroup2 mount point into buf, checked to be cgroup2 */
CGMOUNT_FN int cgmount_find(char *buf, size_t size)
{
	FILE *f = fopen(CGMOUNT_MOUNTINFO, "re");
	struct statfs sfs;
	int err;

	if (!f)
		return -errno;
	err = cgmount_parse(f, buf, size);
	fclose(f);
	if (err)
		return err;
	if (statfs(buf, &sfs))
		return -errno;
	return sfs.f_type == CGROUP2_SUPER_MAGIC ? 0 : -ENOTDIR;
}

#endif /* BPFWRAP_TESTS_CGMOUNT_H */
