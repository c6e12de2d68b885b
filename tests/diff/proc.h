/*
 * proc.h - small helpers for tests that run the bpfwrap tools: run a program
 * with files for stdin/stdout/stderr under a time limit, read and write
 * whole files, find the build directory.
 *
 * Errors: run_tool() returns -errno if the program could not be started and
 * otherwise its wait status; the file helpers return NULL / -errno.
 */
#ifndef BPFWRAP_TESTS_PROC_H
#define BPFWRAP_TESTS_PROC_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* build_dir - $BPFWRAP_BUILD or "build" */
static inline const char *build_dir(void)
{
	const char *b = getenv("BPFWRAP_BUILD");

	return b && *b ? b : "build";
}

/* redirect_fd - open path onto fd in a child; exits 127 on failure */
static inline void redirect_fd(const char *path, int fd, int flags)
{
	int f;

	if (!path)
		return;
	f = open(path, flags, 0644);
	if (f < 0 || dup2(f, fd) < 0)
		_exit(127);
	if (f != fd)
		close(f);
}

/*
 * run_tool - run argv[0] with stdin/stdout/stderr from/to files (NULL =
 * inherit), killed by SIGALRM after `seconds`; returns the wait status or
 * -errno if it could not be started.
 */
static inline int run_tool(char *const argv[], const char *in, const char *out, const char *err,
			   unsigned seconds)
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		redirect_fd(in, STDIN_FILENO, O_RDONLY);
		redirect_fd(out, STDOUT_FILENO, O_WRONLY | O_CREAT | O_TRUNC);
		redirect_fd(err, STDERR_FILENO, O_WRONLY | O_CREAT | O_TRUNC);
		alarm(seconds); /* survives exec: bounds the program's run time */
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return status;
}

/* status_text - "exit N" / "signal N" of a wait status, into buf */
static inline const char *status_text(int status, char *buf, size_t size)
{
	if (status < 0)
		snprintf(buf, size, "not started: %s", strerror(-status));
	else if (WIFEXITED(status))
		snprintf(buf, size, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, size, "signal %d%s", WTERMSIG(status),
			 WTERMSIG(status) == SIGALRM ? " (time limit)" : "");
	else
		snprintf(buf, size, "status %#x", (unsigned)status);
	return buf;
}

/* read_whole - a file's content, NUL-terminated (*len without the NUL), or NULL */
static inline char *read_whole(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *p = NULL;
	size_t n = 0, cap = 0;

	if (!fp)
		return NULL;
	for (;;) {
		size_t r;

		if (cap - n < 4096) {
			char *q = realloc(p, cap = cap * 2 + 8192);

			if (!q) {
				free(p);
				fclose(fp);
				return NULL;
			}
			p = q;
		}
		r = fread(p + n, 1, cap - n - 1, fp);
		n += r;
		if (r == 0)
			break;
	}
	fclose(fp);
	p[n] = '\0';
	if (len)
		*len = n;
	return p;
}

/* write_whole - create/replace a file with len bytes; 0 or -errno */
static inline int write_whole(const char *path, const char *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	int rc = 0;

	if (!fp)
		return -errno;
	if (len && fwrite(data, 1, len, fp) != len)
		rc = -EIO;
	if (fclose(fp) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* is_executable - true if path is an executable regular file */
static inline int is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

#endif /* BPFWRAP_TESTS_PROC_H */
