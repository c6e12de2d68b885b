/*
 * test_cgmount.c - the tests' cgroup2 mount finder (tests/cgmount.h) on
 * sample /proc/self/mountinfo texts: stock Debian 12 (cgroup2 at
 * /sys/fs/cgroup), a hybrid host (v1 controllers, cgroup2 at
 * /sys/fs/cgroup/unified, as on the development machine), legacy v1 only
 * (none), escaped and long paths, "cgroup2" where it is not the type; and
 * on this machine, where it must name the mount `bpfwrap run` uses (the
 * first cgroup2 of /proc/self/mounts, as user/cli/run.c reads it). No root
 * needed.
 */
#include <errno.h>
#include <limits.h>
#include <mntent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cgmount.h"

/* Debian 12 booted with systemd 252: the unified hierarchy only. */
static const char stock_debian12[] =
	"22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
	"23 28 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
	"25 22 0:7 / /sys/kernel/security rw,nosuid,nodev,noexec,relatime shared:8 - securityfs securityfs rw\n"
	"26 22 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
	"rw,nsdelegate,memory_recursiveprot\n"
	"27 22 0:25 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:10 - pstore pstore rw\n"
	"28 22 0:26 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:11 - bpf bpf rw,mode=700\n";

/* A hybrid host: a tmpfs at /sys/fs/cgroup, v1 controllers, cgroup2 in unified/. */
static const char hybrid[] =
	"30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	"40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

/* Legacy: cgroup v1 only, no cgroup2 anywhere. */
static const char legacy[] =
	"30 22 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
	"31 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,name=systemd\n"
	"32 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct\n";

/*
 * The word cgroup2 where it is not the type (a source, a mount point, an
 * optional field), a line cut short, then the real one: several optional
 * fields, a mount point with a space and a backslash escaped.
 */
static const char tricky[] =
	"50 22 0:40 / /mnt/a rw,relatime shared:20 - tmpfs cgroup2 rw\n"
	"51 22 0:41 / /mnt/cgroup2 rw,relatime - tmpfs tmpfs rw\n"
	"52 22 0:42 / /mnt/b rw cgroup2 - ext4 /dev/vdb rw\n"
	"53 22 0:43 / /mnt/c rw,relatime shared:21\n"
	"garbage\n"
	"\n"
	"54 22 0:44 / /run/my\\040cg\\134x rw,relatime shared:22 master:3 propagate_from:2 - cgroup2 "
	"cgroup2 rw\n"
	"55 22 0:45 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";

/* One sample text and what the finder must give for it. */
struct parse_case {
	const char *name;
	const char *text;
	size_t size;		/* of the result buffer; 0 = PATH_MAX */
	int want_err;
	const char *want;
};

/* test_parse_cases - each sample text: the mount point, or the error */
static void test_parse_cases(void **state)
{
	static const struct parse_case cases[] = {
		{ "stock Debian 12", stock_debian12, 0, 0, "/sys/fs/cgroup" },
		{ "hybrid", hybrid, 0, 0, "/sys/fs/cgroup/unified" },
		{ "legacy v1 only", legacy, 0, -ENOENT, NULL },
		{ "empty", "", 0, -ENOENT, NULL },
		{ "cgroup2 not as the type, escapes", tricky, 0, 0, "/run/my cg\\x" },
		{ "exactly fits", hybrid, sizeof("/sys/fs/cgroup/unified"), 0, "/sys/fs/cgroup/unified" },
		{ "one byte short", hybrid, sizeof("/sys/fs/cgroup/unified") - 1, -ENAMETOOLONG, NULL },
	};
	int misses = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct parse_case *c = &cases[i];
		char buf[PATH_MAX] = "";
		/* fmemopen of an empty buffer fails: give it the terminating NUL too */
		FILE *f = fmemopen((void *)c->text, strlen(c->text) + 1, "r");
		int err;

		assert_non_null(f);
		err = cgmount_parse(f, buf, c->size ? c->size : sizeof(buf));
		fclose(f);
		if (err != c->want_err || (c->want && strcmp(buf, c->want))) {
			print_error("%s: got %d \"%s\", want %d \"%s\"\n", c->name, err,
				    err ? "" : buf, c->want_err, c->want ? c->want : "");
			misses++;
		}
	}
	if (misses)
		fail_msg("%d of %zu sample texts answered wrong", misses,
			 sizeof(cases) / sizeof(cases[0]));
}

/* test_this_machine - the live answer is a cgroup2 directory and the mount `bpfwrap run` uses */
static void test_this_machine(void **state)
{
	char found[PATH_MAX], run_uses[PATH_MAX] = "";
	FILE *m = setmntent("/proc/self/mounts", "re");
	struct mntent *e;
	int err;

	(void)state;
	assert_non_null(m);
	while ((e = getmntent(m)))
		if (!strcmp(e->mnt_type, "cgroup2")) {
			snprintf(run_uses, sizeof(run_uses), "%s", e->mnt_dir);
			break;
		}
	endmntent(m);
	err = cgmount_find(found, sizeof(found));
	if (!run_uses[0]) {
		/* no cgroup2 here: the finder must say so, not invent a path */
		if (err != -ENOENT)
			fail_msg("no cgroup2 in /proc/self/mounts: got %d, want -ENOENT", err);
		print_message("# info: no cgroup2 mounted on this machine\n");
		return;
	}
	if (err)
		fail_msg("cgmount_find: got %s, want %s", strerror(-err), run_uses);
	if (strcmp(found, run_uses))
		fail_msg("cgmount_find: got %s, want %s (the first cgroup2 of /proc/self/mounts)",
			 found, run_uses);
	print_message("# info: cgroup2 is mounted at %s here\n", found);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_cases),
		cmocka_unit_test(test_this_machine),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
