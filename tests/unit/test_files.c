/*
 * test_files.c - the file helpers every layer uses: readfile.h never blocks
 * on a FIFO and never opens a device (a FIFO with no writer would hang
 * open(); alarm() turns such a hang into a failure), util.h's write_file
 * never follows a link planted where it writes, and statedir.h's
 * state_dir_safe refuses a state directory others could change.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <cmocka.h>

#include "readfile.h"
#include "statedir.h"
#include "util.h"

#define UTEST_NAME "test_files"
#include "unit/utest.h"

/* path_of - tmpdir/name */
static const char *path_of(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tmpdir, name);
	return buf;
}

/* put - write text to tmpdir/name */
static void put(const char *name, const char *text)
{
	char p[256];
	FILE *f = fopen(path_of(p, sizeof(p), name), "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* test_readfile - what is opened, what is refused and how it is named */
static void test_readfile(void **state)
{
	char fifo[256], dir[256], reg[256], sock[256], why[READFILE_ERR_MAX], *text;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;
	mode_t type;
	int fd, s;

	put("reg", "hello\n");
	path_of(reg, sizeof(reg), "reg");
	path_of(fifo, sizeof(fifo), "fifo");
	path_of(dir, sizeof(dir), "dir");
	path_of(sock, sizeof(sock), "sock");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s >= 0);
	assert_true(strlen(sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	alarm(20);

	fd = readfile_open(reg, &type);
	assert_true(fd >= 0);
	assert_true(S_ISREG(type));
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
	assert_int_equal(readfile_all(reg, 64, &text, &len, &type), 0);
	assert_string_equal(text, "hello\n");
	free(text);
	assert_int_equal(readfile_all(reg, 5, &text, &len, &type), -EFBIG);
	assert_null(text);

	assert_int_equal(readfile_open(fifo, &type), -EINVAL);
	assert_true(S_ISFIFO(type));
	assert_string_equal(readfile_strerror(-EINVAL, type, why, sizeof(why)), "not a regular file (fifo)");
	assert_string_equal(readfile_explain(fifo, -EINVAL, why, sizeof(why)), "not a regular file (fifo)");
	assert_int_equal(readfile_all(fifo, 64, &text, &len, &type), -EINVAL);
	assert_int_equal(read_file(fifo, &text, &len), -EINVAL);

	assert_int_equal(readfile_open(sock, &type), -EINVAL);
	assert_string_equal(readfile_strerror(-EINVAL, type, why, sizeof(why)), "not a regular file (socket)");
	assert_int_equal(readfile_open(dir, &type), -EISDIR);
	assert_string_equal(readfile_strerror(-EISDIR, type, why, sizeof(why)), "is a directory");
	assert_int_equal(readfile_open("/nonexistent/bpfwrap-x", &type), -ENOENT);

	/* a device other than the null device is not opened (a tty would hand over a terminal) */
	if (access("/dev/tty", F_OK) == 0)
		assert_int_equal(readfile_open("/dev/tty", &type), -EINVAL);
	assert_int_equal(readfile_all("/dev/null", 64, &text, &len, &type), 0);
	assert_int_equal(len, 0);
	free(text);
	alarm(0);
	close(s);
}

/* test_write_file_links - links planted at the temporary name or the name
 * itself are replaced, never followed: the file they name is untouched */
static void test_write_file_links(void **state)
{
	char precious[256], path[256], tmp[300], *text;
	size_t len;
	struct stat st;

	put("precious", "keep me\n");
	path_of(precious, sizeof(precious), "precious");
	path_of(path, sizeof(path), "state");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);

	assert_int_equal(symlink(precious, tmp), 0);	/* the temporary name */
	assert_int_equal(write_file(path, "one\n", 4), 0);
	assert_int_equal(read_file(path, &text, &len), 0);
	assert_string_equal(text, "one\n");
	free(text);
	assert_int_equal(access(tmp, F_OK), -1);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(precious, path), 0);	/* the name itself */
	assert_int_equal(write_file(path, "two\n", 4), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(read_file(precious, &text, &len), 0);
	assert_string_equal(text, "keep me\n");
	free(text);
}

/* test_state_dir_safe - only a real directory of ours, writable by us alone */
static void test_state_dir_safe(void **state)
{
	char dir[256], link_path[256], open_dir[256], file[256];

	path_of(dir, sizeof(dir), "st");
	path_of(link_path, sizeof(link_path), "st-link");
	path_of(open_dir, sizeof(open_dir), "st-open");
	path_of(file, sizeof(file), "st-file");
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(symlink(dir, link_path), 0);
	assert_int_equal(mkdir(open_dir, 0700), 0);
	assert_int_equal(chmod(open_dir, 0777), 0);
	put("st-file", "");

	assert_int_equal(state_dir_safe(dir), 0);
	assert_int_equal(state_dir_safe(link_path), -ELOOP);
	assert_int_equal(state_dir_safe(open_dir), -EPERM);
	assert_int_equal(state_dir_safe(file), -ENOTDIR);
	if (geteuid() == 0) {
		assert_int_equal(chown(dir, 65534, 65534), 0);
		assert_int_equal(state_dir_safe(dir), -EPERM);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readfile),
		cmocka_unit_test(test_write_file_links),
		cmocka_unit_test(test_state_dir_safe),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
