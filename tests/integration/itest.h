/*
 * itest.h - integration test helpers, in the style of the kernel's BPF
 * selftests (cgroup_helpers.c, network_helpers.c): small, named, reused.
 *
 * Every test gets its own world: a uniquely named network namespace (lo up,
 * 127.0.0.0/8 and fd00::1..9 usable as client source addresses), a child
 * cgroup under the cgroup2 mount (wherever /proc/self/mountinfo says it is:
 * tests/cgmount.h), a bpffs pin directory and a scratch
 * directory for policy files. The test process itself joins the network
 * namespace (setns, never `ip netns exec`, which remounts /sys) but never the
 * child cgroup; only servers do, before they create their sockets, so
 * bpfwrap's programs see exactly the servers' traffic and nothing of the
 * machine's own (the rule for every test that touches the kernel).
 *
 * Errors: helpers return 0 or -errno and print one "itest: ..." line saying
 * what failed. A world that cannot be made fails the test (ITEST_ENV), except
 * for a missing kernel feature, probed and named, which skips it: not root,
 * no cgroup2 mounted, no bpffs. A missing bpfwrap binary is a failure too. Every wait is bounded in time, every loop in count. Teardown
 * (itest_env_teardown, also run from atexit for a test that aborts) kills
 * only the PIDs it started, detaches what bpfwrap pinned, removes the cgroup,
 * the pin directory and the namespace.
 *
 * Header-only (static functions) because the Makefile builds each
 * tests/integration/test_*.c into its own binary.
 */
#ifndef BPFWRAP_ITEST_H
#define BPFWRAP_ITEST_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#include "cgmount.h"
#include "fakedns.h"

#define ITEST_FN static __attribute__((unused))

#define ITEST_BPFFS "/sys/fs/bpf"
#define ITEST_MAX_SERVERS 8
#define ITEST_LOG_MAX (64 * 1024)
/* The kernel retransmits a dropped SYN after 1 s: a client that is not
 * connected after this long was dropped ("denied"). */
#define ITEST_DENY_TIMEOUT_MS 400
#define ITEST_ALLOW_TIMEOUT_MS 2000
#define ITEST_READY_TIMEOUT_MS 15000
#define ITEST_SERVER_LIFETIME_S 150	/* a forgotten server dies by alarm() */

/* A server process started by itest_server_start. */
struct itest_server {
	pid_t pid;
	int report_fd;		/* read end: "accept ADDR\n" / "recv ADDR PAYLOAD\n" lines */
	char buf[16384];	/* what has been read from report_fd */
	size_t len;
};

/* What a server should be. */
struct itest_server_opts {
	int type;		/* SOCK_STREAM or SOCK_DGRAM */
	int family;		/* AF_INET or AF_INET6 */
	const char *addr;	/* bind address text, e.g. "127.0.0.1", "::" */
	uint16_t port;
	int v6only;		/* AF_INET6: 1 = IPv6 only, 0 = dual-stack */
	const char *comm;	/* process name (PR_SET_NAME), e.g. "sshd" */
	bool outside_cgroup;	/* do not join the test cgroup (a control server) */
	bool in_cgroup2;	/* join the sibling cgroup (itest_cgroup2_create) instead */
	const char *cgroup;	/* join this cgroup (below env->cgroup) instead */
};

/* A running `bpfwrap run` (stdout and stderr merged into out_fd). */
struct itest_bpfwrap {
	pid_t pid;
	int out_fd;
	char log[ITEST_LOG_MAX];
	size_t len;		/* bytes in log */
	size_t seen;		/* itest_bpfwrap_wait_line matched up to here */
};

struct itest_env {
	int id;
	char netns[64];			/* bpfwrap-t-PID-N */
	char cgroup[PATH_MAX];		/* itest_cgroup_root/bpfwrap-test-PID-N */
	char cgroup2[PATH_MAX];		/* optional sibling: ...-N-b (itest_cgroup2_create) */
	char pin_dir[PATH_MAX];		/* ITEST_BPFFS/bpfwrap-itest-PID-N */
	char dir[256];			/* scratch directory for policy files */
	char allow[PATH_MAX], deny[PATH_MAX];
	char bpfwrap_bin[PATH_MAX];
	int orig_netns_fd;		/* the namespace to return to */
	bool netns_made, in_netns, cgroup_made, cgroup2_made, dir_made;
	char skip_reason[256];		/* set: a kernel feature is missing, the test skips */
	char fail_reason[256];		/* set: the world could not be made, the test fails */
	char no_bpfwrap[256];		/* set: no bpfwrap binary, tests that run it fail */
	struct itest_server servers[ITEST_MAX_SERVERS];
	int n_servers;
	struct itest_bpfwrap bw[2];	/* at most two bpfwrap processes per test */
};

static struct itest_env *itest_current;	/* for the atexit() safety net */
static char itest_cgroup_root[PATH_MAX];	/* the cgroup2 mount (tests/cgmount.h) */
static bool itest_stale_cleaned;		/* leftovers of dead runs removed once */

/* itest_now_ms - monotonic clock in milliseconds */
ITEST_FN long long itest_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* itest_sleep_ms - sleep a few milliseconds */
ITEST_FN void itest_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* itest_log - one diagnostic line, prefixed, to stderr */
ITEST_FN __attribute__((format(printf, 1, 2))) void itest_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("itest: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* itest_write_file - replace a file's content atomically (write + rename) */
ITEST_FN int itest_write_file(const char *path, const char *text)
{
	char tmp[PATH_MAX + 8];
	size_t len = strlen(text), off = 0;
	int fd, err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0) {
			err = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		itest_log("cannot write %s: %s", path, strerror(-err));
	}
	return err;
}

/* itest_policy - write the test's hosts.allow and hosts.deny */
ITEST_FN int itest_policy(struct itest_env *env, const char *allow, const char *deny)
{
	int err = itest_write_file(env->allow, allow);

	return err ? err : itest_write_file(env->deny, deny);
}

/*
 * itest_fork_pipe - a close-on-exec pipe into pipefd, then fork (stdio is
 * flushed first, so a child never repeats the test's buffered output): the
 * child's pid, 0 in the child, or -errno with both ends closed
 */
ITEST_FN pid_t itest_fork_pipe(int pipefd[2])
{
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(pipefd[0]);
		close(pipefd[1]);
		return err;
	}
	return pid;
}

/*
 * itest_exec_piped - in a child of itest_fork_pipe: stdin from /dev/null,
 * stdout and stderr into out_fd, then exec argv (PATH searched when argv[0]
 * has no '/'); exits 127 if it cannot. die_with_test: SIGKILL when the test
 * process dies.
 */
static __attribute__((noreturn, unused)) void itest_exec_piped(char *const argv[], int out_fd,
							       bool die_with_test)
{
	int devnull = open("/dev/null", O_RDONLY);

	if (die_with_test)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (devnull >= 0)
		dup2(devnull, 0);
	dup2(out_fd, 1);
	dup2(out_fd, 2);
	execvp(argv[0], argv);
	_exit(127);
}

/* itest_run - run argv (no shell), wait at most timeout_ms; output into out (may be NULL) */
ITEST_FN int itest_run(char *const argv[], char *out, size_t out_size, int timeout_ms)
{
	int pipefd[2], status = 0;
	size_t len = 0;
	long long deadline = itest_now_ms() + timeout_ms;
	pid_t pid;

	pid = itest_fork_pipe(pipefd);
	if (pid < 0)
		return pid;
	if (pid == 0)
		itest_exec_piped(argv, pipefd[1], true);
	close(pipefd[1]);
	if (out && out_size)
		out[0] = '\0';
	for (;;) {
		struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
		long long left = deadline - itest_now_ms();
		char tmp[4096];
		ssize_t n;

		if (left <= 0) {
			itest_log("%s did not finish in %d ms, killing pid %d", argv[0], timeout_ms, pid);
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = read(pipefd[0], tmp, sizeof(tmp));
		if (n <= 0)
			break;
		if (out && out_size) {
			size_t take = (size_t)n < out_size - 1 - len ? (size_t)n : out_size - 1 - len;

			memcpy(out + len, tmp, take);
			len += take;
			out[len] = '\0';
		}
	}
	close(pipefd[0]);
	/* The pipe is closed: the child has exited or is about to (or was killed). */
	for (int i = 0; i < 500; i++) {
		pid_t r = waitpid(pid, &status, i < 499 ? WNOHANG : 0);

		if (r == pid)
			break;
		if (i == 250)
			kill(pid, SIGKILL);
		itest_sleep_ms(10);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -EINTR;
}

/* itest_ip - run `ip ARGS...` (NULL-terminated), report a failure */
ITEST_FN int itest_ip(const char *first, ...)
{
	char *argv[24] = { "ip" };
	char out[2048];
	int argc = 1, rc;
	va_list ap;

	va_start(ap, first);
	for (const char *a = first; a && argc < 23; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	rc = itest_run(argv, out, sizeof(out), 5000);
	if (rc) {
		fprintf(stderr, "itest: ip");
		for (int i = 1; i < argc; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, ": exit %d: %s", rc, out);
	}
	return rc ? -EIO : 0;
}

/* itest_netns_create - a fresh namespace: lo up, fd00::1..9 on lo */
ITEST_FN int itest_netns_create(struct itest_env *env)
{
	char addr[32];

	if (itest_ip("netns", "add", env->netns, NULL))
		return -EIO;
	env->netns_made = true;
	if (itest_ip("-n", env->netns, "link", "set", "lo", "up", NULL))
		return -EIO;
	/* 127.0.0.0/8 is all local on lo already; IPv6 needs addresses. */
	for (int i = 1; i <= 9; i++) {
		snprintf(addr, sizeof(addr), "fd00::%d/128", i);
		if (itest_ip("-n", env->netns, "addr", "add", addr, "dev", "lo", "nodad", NULL))
			return -EIO;
	}
	return 0;
}

/* itest_netns_enter - move the test process into the test namespace */
ITEST_FN int itest_netns_enter(struct itest_env *env)
{
	char path[PATH_MAX];
	int fd, err = 0;

	snprintf(path, sizeof(path), "/run/netns/%s", env->netns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET))
		err = -errno;
	else
		env->in_netns = true;
	close(fd);
	return err;
}

/* itest_netns_leave - return the test process to the namespace it came from */
ITEST_FN void itest_netns_leave(struct itest_env *env)
{
	if (env->in_netns && env->orig_netns_fd >= 0) {
		if (setns(env->orig_netns_fd, CLONE_NEWNET))
			itest_log("cannot return to the original netns: %s", strerror(errno));
		else
			env->in_netns = false;
	}
}

/* itest_cgroup_join - write our pid into a cgroup's cgroup.procs */
ITEST_FN int itest_cgroup_join(const char *cgroup)
{
	char path[PATH_MAX + 16], pid[32];
	int fd, n, err = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (write(fd, pid, (size_t)n) != n)
		err = -errno;
	close(fd);
	return err;
}

/* itest_cgroup2_create - a second (sibling) test cgroup, removed at teardown */
ITEST_FN int itest_cgroup2_create(struct itest_env *env)
{
	if (snprintf(env->cgroup2, sizeof(env->cgroup2), "%s-b", env->cgroup) >= (int)sizeof(env->cgroup2))
		return -ENAMETOOLONG;
	if (mkdir(env->cgroup2, 0755))
		return -errno;
	env->cgroup2_made = true;
	return 0;
}

/* itest_sockaddr - text address + port into a sockaddr of its family */
ITEST_FN int itest_sockaddr(int family, const char *addr, uint16_t port,
			    struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		if (inet_pton(AF_INET, addr, &in->sin_addr) != 1)
			return -EINVAL;
		*len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*in6);
	}
	return 0;
}

/* itest_addr_text - the address of a sockaddr as text (no port) */
ITEST_FN const char *itest_addr_text(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	const void *a = ss->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
						 : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

	if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)size))
		snprintf(buf, size, "?");
	return buf;
}

/* itest_server_main - the server child: cgroup, name, socket, then serve (never returns) */
static __attribute__((noreturn, unused)) void itest_server_main(const struct itest_env *env,
							     const struct itest_server_opts *o,
							     int report)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;
	char line[512];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(ITEST_SERVER_LIFETIME_S);
	/* 1. the cgroup, so the socket is born there; 2. the name bpfwrap sees */
	if (!o->outside_cgroup &&
	    itest_cgroup_join(o->cgroup ? o->cgroup : o->in_cgroup2 ? env->cgroup2 : env->cgroup)) {
		dprintf(report, "error cgroup %s\n", strerror(errno));
		_exit(1);
	}
	if (o->comm)
		prctl(PR_SET_NAME, o->comm);
	fd = socket(o->family, o->type | SOCK_CLOEXEC, 0);
	if (fd < 0 || itest_sockaddr(o->family, o->addr, o->port, &ss, &len)) {
		dprintf(report, "error socket %s\n", strerror(errno));
		_exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (o->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &o->v6only, sizeof(o->v6only));
	if (bind(fd, (struct sockaddr *)&ss, len) ||
	    (o->type == SOCK_STREAM && listen(fd, 4096))) {
		dprintf(report, "error bind %s\n", strerror(errno));
		_exit(1);
	}
	/* Reports are best effort: a full pipe must never stall the server. */
	fcntl(report, F_SETFL, O_NONBLOCK);
	dprintf(report, "ready\n");
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		char addr[INET6_ADDRSTRLEN];

		if (o->type == SOCK_STREAM) {
			int c = accept4(fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);

			if (c < 0)
				continue;
			snprintf(line, sizeof(line), "accept %s\n", itest_addr_text(&peer, addr, sizeof(addr)));
			close(c);
		} else {
			char data[256];
			ssize_t n = recvfrom(fd, data, sizeof(data) - 1, 0, (struct sockaddr *)&peer, &plen);

			if (n < 0)
				continue;
			data[n] = '\0';
			snprintf(line, sizeof(line), "recv %s %s\n", itest_addr_text(&peer, addr, sizeof(addr)), data);
		}
		/* a full pipe drops the report; the test reads what it needs long before */
		if (write(report, line, strlen(line)) < 0)
			continue;
	}
}

/* itest_server_read - collect what the server reported: wait up to timeout_ms for the first bytes */
ITEST_FN void itest_server_read(struct itest_server *srv, int timeout_ms)
{
	for (int i = 0; i < 64; i++) {
		struct pollfd p = { .fd = srv->report_fd, .events = POLLIN };
		ssize_t n;

		/* wait only for the first chunk; then take what is already there */
		if (poll(&p, 1, i == 0 ? timeout_ms : 0) <= 0)
			return;
		if (srv->len >= sizeof(srv->buf) - 1)
			return;
		n = read(srv->report_fd, srv->buf + srv->len, sizeof(srv->buf) - 1 - srv->len);
		if (n <= 0)
			return;
		srv->len += (size_t)n;
		srv->buf[srv->len] = '\0';
	}
}

/* itest_server_saw - wait up to timeout_ms for a report line containing needle */
ITEST_FN bool itest_server_saw(struct itest_server *srv, const char *needle, int timeout_ms)
{
	long long deadline = itest_now_ms() + timeout_ms;

	for (int i = 0; i < 1000; i++) {
		if (strstr(srv->buf, needle))
			return true;
		if (itest_now_ms() >= deadline)
			return false;
		itest_server_read(srv, (int)(deadline - itest_now_ms()));
	}
	return strstr(srv->buf, needle) != NULL;
}

/* itest_child_start - fork a helper child that reports "ready" on its pipe; it is a
 * server slot, so teardown kills it */
ITEST_FN int itest_child_start(struct itest_env *env, void (*body)(int report, const void *arg),
			       const void *arg, const char *what)
{
	struct itest_server *srv;
	int pipefd[2];
	pid_t pid;

	if (env->n_servers >= ITEST_MAX_SERVERS)
		return -ENOSPC;
	srv = &env->servers[env->n_servers];
	memset(srv, 0, sizeof(*srv));
	srv->report_fd = -1;
	pid = itest_fork_pipe(pipefd);
	if (pid < 0)
		return pid;
	if (pid == 0) {
		close(pipefd[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(ITEST_SERVER_LIFETIME_S);
		body(pipefd[1], arg);
		_exit(0);
	}
	close(pipefd[1]);
	srv->pid = pid;
	srv->report_fd = pipefd[0];
	env->n_servers++;
	if (!itest_server_saw(srv, "ready\n", 5000)) {
		itest_log("%s did not start: %s", what, srv->buf);
		return -EIO;
	}
	/* Forget the startup line so "saw" only looks at traffic. */
	srv->len = 0;
	srv->buf[0] = '\0';
	return 0;
}

/* What itest_server_start hands its child. */
struct itest_server_args {
	const struct itest_env *env;
	const struct itest_server_opts *o;
};

/* itest_server_body - itest_child_start body: the server child of itest_server_start */
ITEST_FN void itest_server_body(int report, const void *arg)
{
	const struct itest_server_args *a = arg;

	itest_server_main(a->env, a->o, report);
}

/* itest_server_start - fork a server per opts; 0 once it listens (its reports in srv) */
ITEST_FN int itest_server_start(struct itest_env *env, const struct itest_server_opts *o,
				struct itest_server **out)
{
	const struct itest_server_args a = { env, o };
	char what[160];
	int err;

	snprintf(what, sizeof(what), "server %s %s:%u", o->comm ? o->comm : "?", o->addr, o->port);
	err = itest_child_start(env, itest_server_body, &a, what);
	if (err)
		return err;
	*out = &env->servers[env->n_servers - 1];
	return 0;
}

/* itest_tcp_connect - connect from src to dst:port within timeout_ms: 0, -ETIMEDOUT or -errno */
ITEST_FN int itest_tcp_connect(int family, const char *src, const char *dst, uint16_t port,
			       int timeout_ms)
{
	struct sockaddr_storage s, d;
	socklen_t slen, dlen;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int fd, err = 0, soerr = 0;
	socklen_t elen = sizeof(soerr);
	struct pollfd p;

	if (itest_sockaddr(family, dst, port, &d, &dlen) || (src && itest_sockaddr(family, src, 0, &s, &slen)))
		return -EINVAL;
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (src && bind(fd, (struct sockaddr *)&s, slen)) {
		err = -errno;
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&d, dlen) == 0)
		goto out;
	if (errno != EINPROGRESS) {
		err = -errno;
		goto out;
	}
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&p, 1, timeout_ms) <= 0) {
		err = -ETIMEDOUT;
		goto out;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen))
		err = -errno;
	else
		err = -soerr;
out:
	/* RST on close: no TIME_WAIT left behind by thousands of test connections */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	return err;
}

/* itest_udp_send - send one datagram with payload from src to dst:port */
ITEST_FN int itest_udp_send(int family, const char *src, const char *dst, uint16_t port,
			    const char *payload)
{
	struct sockaddr_storage s, d;
	socklen_t slen, dlen;
	int fd, err = 0;

	if (itest_sockaddr(family, dst, port, &d, &dlen) || (src && itest_sockaddr(family, src, 0, &s, &slen)))
		return -EINVAL;
	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (src && bind(fd, (struct sockaddr *)&s, slen))
		err = -errno;
	else if (sendto(fd, payload, strlen(payload), 0, (struct sockaddr *)&d, dlen) < 0)
		err = -errno;
	close(fd);
	return err;
}


/* One expected outcome of a connection attempt (table-driven checks). */
struct itest_probe {
	const char *name;	/* what the case shows, printed on failure */
	int family;
	const char *src, *dst;
	uint16_t port;
	bool allow;		/* true: connects; false: dropped (times out) */
};

/* itest_outcome - a connect result in words */
ITEST_FN const char *itest_outcome(int rc)
{
	if (rc == 0)
		return "connected";
	if (rc == -ETIMEDOUT)
		return "dropped (timed out)";
	return strerror(-rc);
}

/* itest_probe_tcp - run each probe; print "got X, want Y" for each miss; the number of misses */
ITEST_FN int itest_probe_tcp(const struct itest_probe *probes, size_t n)
{
	int misses = 0;

	for (size_t i = 0; i < n; i++) {
		const struct itest_probe *p = &probes[i];
		int rc = itest_tcp_connect(p->family, p->src, p->dst, p->port,
					   p->allow ? ITEST_ALLOW_TIMEOUT_MS : ITEST_DENY_TIMEOUT_MS);
		bool got = rc == 0;

		if (got != p->allow || (rc && rc != -ETIMEDOUT)) {
			fprintf(stderr, "itest: %s: tcp %s -> [%s]:%u: got %s, want %s\n", p->name, p->src,
				p->dst, p->port, itest_outcome(rc), p->allow ? "connected" : "dropped");
			misses++;
		}
	}
	return misses;
}

/* itest_tcpext - a TcpExt counter of this network namespace (e.g. "ListenDrops"), -1 if unknown */
ITEST_FN long long itest_tcpext(const char *name)
{
	char names[4096], values[4096];
	FILE *f = fopen("/proc/self/net/netstat", "re");
	long long result = -1;

	if (!f)
		return -1;
	/* pairs of lines: "TcpExt: Name1 Name2 ..." then "TcpExt: v1 v2 ..." */
	for (int i = 0; i < 16 && fgets(names, sizeof(names), f) && fgets(values, sizeof(values), f); i++) {
		const char *n = names + 7, *v = values + 7;

		if (strncmp(names, "TcpExt:", 7))
			continue;
		/* walk both lines word by word */
		for (int w = 0; w < 512; w++) {
			size_t nl, vl;

			n += strspn(n, " \n");
			v += strspn(v, " \n");
			nl = strcspn(n, " \n");
			vl = strcspn(v, " \n");
			if (!nl || !vl)
				break;
			if (nl == strlen(name) && !strncmp(n, name, nl)) {
				result = strtoll(v, NULL, 10);
				break;
			}
			n += nl;
			v += vl;
		}
		break;
	}
	fclose(f);
	return result;
}

/* itest_bpfwrap_read - append what bpfwrap printed, waiting up to timeout_ms; false at EOF */
ITEST_FN bool itest_bpfwrap_read(struct itest_bpfwrap *bw, int timeout_ms)
{
	struct pollfd p = { .fd = bw->out_fd, .events = POLLIN };
	ssize_t n;

	if (bw->out_fd < 0)
		return false;
	if (poll(&p, 1, timeout_ms) <= 0)
		return true;
	if (bw->len >= sizeof(bw->log) - 1) {
		/* keep the newest half; matches restart from the kept part */
		size_t half = sizeof(bw->log) / 2;

		memmove(bw->log, bw->log + bw->len - half, half);
		bw->len = half;
		bw->seen = bw->seen > half ? bw->seen - half : 0;
	}
	n = read(bw->out_fd, bw->log + bw->len, sizeof(bw->log) - 1 - bw->len);
	if (n <= 0)
		return false;
	bw->len += (size_t)n;
	bw->log[bw->len] = '\0';
	return true;
}

/* itest_bpfwrap_wait - wait for a new complete output line containing needle */
ITEST_FN int itest_bpfwrap_wait(struct itest_bpfwrap *bw, const char *needle, int timeout_ms)
{
	long long deadline = itest_now_ms() + timeout_ms;

	for (int i = 0; i < 100000; i++) {
		char *hit = strstr(bw->log + bw->seen, needle);
		char *eol = hit ? strchr(hit, '\n') : NULL;
		long long left;

		if (eol) {
			bw->seen = (size_t)(eol + 1 - bw->log);
			return 0;
		}
		left = deadline - itest_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		if (!itest_bpfwrap_read(bw, (int)left))
			return -EPIPE;	/* bpfwrap exited */
	}
	return -ETIMEDOUT;
}

/* itest_bpfwrap_start - fork `bpfwrap run` on this test's world plus extra args;
 * cgroup_name: NAME for --cgroup CGROUP=NAME, or a whole --cgroup argument
 * (a path below the test's cgroup) if it starts with '/' */
ITEST_FN int itest_bpfwrap_start(struct itest_env *env, struct itest_bpfwrap *bw,
				 const char *cgroup_name, const char *const *extra)
{
	char cg[PATH_MAX + 80], ours[PATH_MAX + 32];
	char *argv[32];
	int argc = 0, pipefd[2];
	pid_t pid;

	/* SAFETY: only ever our own child cgroup, never the root */
	snprintf(ours, sizeof(ours), "%s/bpfwrap-test-", itest_cgroup_root);
	if (!itest_cgroup_root[0] || strncmp(env->cgroup, ours, strlen(ours)))
		return -EPERM;
	if (cgroup_name && cgroup_name[0] == '/') {
		/* a whole --cgroup argument, below the test's cgroup */
		if (strncmp(cgroup_name, env->cgroup, strlen(env->cgroup)) ||
		    cgroup_name[strlen(env->cgroup)] != '/')
			return -EPERM;
		snprintf(cg, sizeof(cg), "%s", cgroup_name);
	} else if (cgroup_name) {
		snprintf(cg, sizeof(cg), "%s=%s", env->cgroup, cgroup_name);
	}
	else
		snprintf(cg, sizeof(cg), "%s", env->cgroup);
	argv[argc++] = env->bpfwrap_bin;
	argv[argc++] = "run";
	argv[argc++] = "--pin-dir";
	argv[argc++] = env->pin_dir;
	argv[argc++] = "--cgroup";
	argv[argc++] = cg;
	argv[argc++] = "--allow";
	argv[argc++] = env->allow;
	argv[argc++] = "--deny";
	argv[argc++] = env->deny;
	/* reloads only on SIGHUP, so a test knows which "reloaded" line is whose;
	 * extra "--watch" (not a bpfwrap option) keeps bpfwrap's inotify reload */
	if (!extra || !extra[0] || strcmp(extra[0], "--watch"))
		argv[argc++] = "--no-watch";
	for (int i = extra && extra[0] && !strcmp(extra[0], "--watch") ? 1 : 0;
	     extra && extra[i] && argc < 31; i++)
		argv[argc++] = (char *)extra[i];
	argv[argc] = NULL;

	memset(bw, 0, sizeof(*bw));
	bw->out_fd = -1;
	pid = itest_fork_pipe(pipefd);
	if (pid < 0)
		return pid;
	if (pid == 0) /* no PDEATHSIG: the kill -9 test wants bpfwrap's own fate only */
		itest_exec_piped(argv, pipefd[1], false);
	close(pipefd[1]);
	bw->pid = pid;
	bw->out_fd = pipefd[0];
	return 0;
}

/* itest_bpfwrap_stop - signal bpfwrap and reap it (SIGKILL after 5 s); its exit status */
ITEST_FN int itest_bpfwrap_stop(struct itest_bpfwrap *bw, int sig)
{
	int status = 0;

	if (bw->pid <= 0)
		return -ESRCH;
	kill(bw->pid, sig);
	for (int i = 0; i < 600; i++) {
		pid_t r = waitpid(bw->pid, &status, WNOHANG);

		if (r == bw->pid)
			break;
		if (i == 500) {
			itest_log("bpfwrap pid %d ignored signal %d, killing", bw->pid, sig);
			kill(bw->pid, SIGKILL);
		}
		/* keep draining so bpfwrap never blocks on a full pipe; at EOF
		 * (exiting, not yet reaped) just wait */
		if (!itest_bpfwrap_read(bw, 10))
			itest_sleep_ms(10);
	}
	while (itest_bpfwrap_read(bw, 0) && bw->len < sizeof(bw->log) - 1)
		;
	bw->pid = 0;
	close(bw->out_fd);
	bw->out_fd = -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* itest_bpfwrap_start_ready - start bpfwrap and wait for its "ready" line */
ITEST_FN int itest_bpfwrap_start_ready(struct itest_env *env, struct itest_bpfwrap *bw,
				       const char *cgroup_name, const char *const *extra)
{
	int err = itest_bpfwrap_start(env, bw, cgroup_name, extra);

	if (err)
		return err;
	err = itest_bpfwrap_wait(bw, "ready", ITEST_READY_TIMEOUT_MS);
	if (err == -EPIPE) {
		/* it exited: say how */
		int st = itest_bpfwrap_stop(bw, SIGKILL);

		itest_log("bpfwrap exited before \"ready\" (%s %d); it said:\n%s",
			  st > 128 ? "killed by signal" : "exit status", st > 128 ? st - 128 : st, bw->log);
	} else if (err) {
		itest_log("bpfwrap not ready (%s); it said:\n%s", strerror(-err), bw->log);
	}
	return err;
}

/* itest_bpfwrap_cmd - run `bpfwrap SUBCOMMAND --pin-dir DIR` and capture its output */
ITEST_FN int itest_bpfwrap_cmd(struct itest_env *env, const char *sub, char *out, size_t size)
{
	char *argv[] = { env->bpfwrap_bin, (char *)sub, "--pin-dir", env->pin_dir, NULL };

	return itest_run(argv, out, size, 10000);
}

/* itest_rm_tree - remove a directory tree we made (bounded depth) */
ITEST_FN void itest_rm_tree(const char *path, int depth)
{
	DIR *d;
	struct dirent *de;

	if (depth > 8)
		return;
	d = opendir(path);
	if (!d) {
		unlink(path);
		return;
	}
	while ((de = readdir(d))) {
		char sub[PATH_MAX];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= (int)sizeof(sub))
			continue;
		if (de->d_type == DT_DIR)
			itest_rm_tree(sub, depth + 1);
		else
			unlink(sub);
	}
	closedir(d);
	rmdir(path);
}

/* itest_state_dir - where `bpfwrap run` keeps its state for a pin dir (see user/agent/statedir.c) */
ITEST_FN void itest_state_dir(const char *pin_dir, char *buf, size_t size)
{
	size_t j = snprintf(buf, size, "/run/bpfwrap/");

	for (size_t i = 0; pin_dir[i] && j + 1 < size; i++)
		buf[j++] = pin_dir[i] == '/' ? '_' : pin_dir[i];
	buf[j < size ? j : size - 1] = '\0';
}

/* itest_sanitizer_said - did a sanitizer build report an error in this output */
ITEST_FN bool itest_sanitizer_said(const char *out)
{
	return strstr(out, "ERROR: AddressSanitizer") || strstr(out, "ERROR: LeakSanitizer") ||
	       strstr(out, "runtime error:");
}

/* itest_server_kill - kill a server (or helper child), reap it, close its pipe */
ITEST_FN void itest_server_kill(struct itest_server *srv)
{
	if (srv->pid > 0) {
		kill(srv->pid, SIGKILL);
		waitpid(srv->pid, NULL, 0);
		srv->pid = 0;
	}
	if (srv->report_fd >= 0)
		close(srv->report_fd);
	srv->report_fd = -1;
}

/* itest_cgroup_rm_children - remove the (empty) child cgroups a test made below cgroup */
ITEST_FN void itest_cgroup_rm_children(const char *cgroup)
{
	char sub[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(cgroup);

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", cgroup, de->d_name) >= (int)sizeof(sub))
			continue;
		for (int i = 0; i < 100 && rmdir(sub) && errno == EBUSY; i++)
			itest_sleep_ms(20);
	}
	closedir(d);
}

/* itest_env_teardown - undo everything itest_env_setup and the test made; -1 if bpfwrap
 * reported a sanitizer error on the way */
ITEST_FN int itest_env_teardown(struct itest_env *env)
{
	char out[4096];
	int rc = 0;

	if (!env)
		return 0;
	for (size_t i = 0; i < sizeof(env->bw) / sizeof(env->bw[0]); i++) {
		if (env->bw[i].pid > 0)
			itest_bpfwrap_stop(&env->bw[i], SIGTERM);
		if (itest_sanitizer_said(env->bw[i].log)) {
			itest_log("bpfwrap run reported a sanitizer error:\n%s", env->bw[i].log);
			rc = -1;
		}
		env->bw[i].log[0] = '\0';
		env->bw[i].len = env->bw[i].seen = 0;
	}
	/* what bpfwrap pinned: its own detach, then whatever is left */
	if (access(env->pin_dir, F_OK) == 0) {
		if (access(env->bpfwrap_bin, X_OK) == 0) {
			itest_bpfwrap_cmd(env, "detach", out, sizeof(out));
			if (itest_sanitizer_said(out)) {
				itest_log("bpfwrap detach reported a sanitizer error:\n%s", out);
				rc = -1;
			}
		}
		itest_rm_tree(env->pin_dir, 0);
	}
	/* bpfwrap detach removes it and run's record (STATE.lock); without a
	 * binary they are left to us */
	itest_state_dir(env->pin_dir, out, sizeof(out));
	itest_rm_tree(out, 0);
	if (strlen(out) + 5 < sizeof(out)) {
		strcat(out, ".lock");
		unlink(out);
	}
	for (int i = 0; i < env->n_servers; i++)
		itest_server_kill(&env->servers[i]);
	env->n_servers = 0;
	if (env->cgroup2_made) {
		for (int i = 0; i < 100 && rmdir(env->cgroup2) && errno == EBUSY; i++)
			itest_sleep_ms(20);
		env->cgroup2_made = false;
	}
	if (env->cgroup_made) {
		/* the servers are reaped; the cgroup may need a moment to empty */
		itest_cgroup_rm_children(env->cgroup);
		for (int i = 0; i < 100 && rmdir(env->cgroup) && errno == EBUSY; i++)
			itest_sleep_ms(20);
		if (access(env->cgroup, F_OK) == 0)
			itest_log("could not remove %s: %s", env->cgroup, strerror(errno));
		env->cgroup_made = false;
	}
	itest_netns_leave(env);
	if (env->netns_made) {
		itest_ip("netns", "del", env->netns, NULL);
		env->netns_made = false;
	}
	if (env->dir_made) {
		itest_rm_tree(env->dir, 0);
		env->dir_made = false;
	}
	if (env->orig_netns_fd >= 0)
		close(env->orig_netns_fd);
	env->orig_netns_fd = -1;
	if (itest_current == env)
		itest_current = NULL;
	return rc;
}

/* itest_atexit - safety net: a test that aborts still cleans up its world */
ITEST_FN void itest_atexit(void)
{
	if (itest_current)
		(void)itest_env_teardown(itest_current);
}

/* itest_find_bpfwrap - build/bpfwrap next to this test binary (build/tests/integration/..) */
ITEST_FN int itest_find_bpfwrap(char *out, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return -errno;
	self[n] = '\0';
	for (int up = 0; up < 3; up++) {
		slash = strrchr(self, '/');
		if (!slash)
			return -ENOENT;
		*slash = '\0';
	}
	if (snprintf(out, size, "%s/bpfwrap", self) >= (int)size)
		return -ENAMETOOLONG;
	return access(out, X_OK) ? -errno : 0;
}

/* itest_stale_pid - the PID in NAME (after prefix, "PID-N") if that process is gone, else 0 */
ITEST_FN int itest_stale_pid(const char *name, const char *prefix)
{
	size_t plen = strlen(prefix);
	char *end;
	long pid;

	if (strncmp(name, prefix, plen))
		return 0;
	pid = strtol(name + plen, &end, 10);
	if (pid <= 0 || *end != '-' || pid == getpid())
		return 0;
	return kill((pid_t)pid, 0) && errno == ESRCH ? (int)pid : 0;
}

/* itest_clean_stale - remove worlds left by test processes that died (by a signal) */
ITEST_FN void itest_clean_stale(const char *bpfwrap_bin)
{
	static const struct {
		const char *dir, *prefix;
	} places[] = {
		{ ITEST_BPFFS, "bpfwrap-itest-" },	/* pins first: they hold cgroup links */
		{ itest_cgroup_root, "bpfwrap-test-" },
		{ "/run/netns", "bpfwrap-t-" },
		{ "/tmp", "bpfwrap-itest-" },
		{ "/run/bpfwrap", "_sys_fs_bpf_bpfwrap-itest-" },	/* run's state dirs */
	};

	for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		DIR *d = places[i].dir[0] ? opendir(places[i].dir) : NULL;
		struct dirent *de;
		int budget = 256;

		if (!d)
			continue;
		while ((de = readdir(d)) && budget-- > 0) {
			char path[PATH_MAX];

			if (!itest_stale_pid(de->d_name, places[i].prefix))
				continue;
			snprintf(path, sizeof(path), "%s/%s", places[i].dir, de->d_name);
			itest_log("removing %s left by a dead test", path);
			if (i == 0) {
				char *argv[] = { (char *)bpfwrap_bin, "detach", "--pin-dir", path, NULL };
				char out[2048];

				if (bpfwrap_bin[0] && access(bpfwrap_bin, X_OK) == 0)
					itest_run(argv, out, sizeof(out), 10000);
				itest_rm_tree(path, 0);
			} else if (i == 1) {
				rmdir(path);
			} else if (i == 2) {
				itest_ip("netns", "del", de->d_name, NULL);
			} else {
				itest_rm_tree(path, 0);
			}
		}
		closedir(d);
	}
}

/* itest_skip_reason - record why this environment cannot run tests */
ITEST_FN int itest_skip_reason(struct itest_env *env, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(env->skip_reason, sizeof(env->skip_reason), fmt, ap);
	va_end(ap);
	return 0;
}

/* itest_fail_reason - record why this test's world could not be made (the test fails) */
ITEST_FN int itest_fail_reason(struct itest_env *env, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(env->fail_reason, sizeof(env->fail_reason), fmt, ap);
	va_end(ap);
	return 0;
}

/* itest_env_setup - a fresh world for one test; a missing kernel feature sets
 * skip_reason, anything else that goes wrong fail_reason */
ITEST_FN int itest_env_setup(struct itest_env *env)
{
	static int counter;
	struct statfs sfs;
	int err;

	memset(env, 0, sizeof(*env));
	env->orig_netns_fd = -1;
	for (size_t i = 0; i < sizeof(env->bw) / sizeof(env->bw[0]); i++)
		env->bw[i].out_fd = -1;
	for (int i = 0; i < ITEST_MAX_SERVERS; i++)
		env->servers[i].report_fd = -1;
	env->id = ++counter;
	if (!itest_current) {
		static bool registered;

		if (!registered)
			atexit(itest_atexit);
		registered = true;
	}
	itest_current = env;

	if (geteuid() != 0)
		return itest_skip_reason(env, "integration tests need root");
	err = itest_cgroup_root[0] ? 0 : cgmount_find(itest_cgroup_root, sizeof(itest_cgroup_root));
	if (err) {
		itest_cgroup_root[0] = '\0';
		if (err == -ENOENT)
			return itest_skip_reason(env, "no cgroup2 file system is mounted (none in %s)",
						 CGMOUNT_MOUNTINFO);
		return itest_fail_reason(env, "cannot find the cgroup2 mount in %s: %s",
					 CGMOUNT_MOUNTINFO, strerror(-err));
	}
	if (statfs(ITEST_BPFFS, &sfs) || sfs.f_type != BPF_FS_MAGIC) {
		if (mount("bpf", ITEST_BPFFS, "bpf", 0, NULL) && errno == ENODEV)
			return itest_skip_reason(env, "this kernel has no bpf file system (mount: %s)",
						 strerror(errno));
		if (statfs(ITEST_BPFFS, &sfs) || sfs.f_type != BPF_FS_MAGIC)
			return itest_fail_reason(env, "no bpffs at " ITEST_BPFFS " and cannot mount it: %s",
						 strerror(errno));
	}
	err = itest_find_bpfwrap(env->bpfwrap_bin, sizeof(env->bpfwrap_bin));
	if (err)
		snprintf(env->no_bpfwrap, sizeof(env->no_bpfwrap), "no bpfwrap binary at %.200s (%s)",
			 env->bpfwrap_bin, strerror(-err));
	if (!itest_stale_cleaned)
		itest_clean_stale(env->bpfwrap_bin);
	itest_stale_cleaned = true;
	snprintf(env->netns, sizeof(env->netns), "bpfwrap-t-%d-%d", (int)getpid(), env->id);
	snprintf(env->cgroup, sizeof(env->cgroup), "%s/bpfwrap-test-%d-%d", itest_cgroup_root,
		 (int)getpid(), env->id);
	snprintf(env->pin_dir, sizeof(env->pin_dir), "%s/bpfwrap-itest-%d-%d", ITEST_BPFFS,
		 (int)getpid(), env->id);
	snprintf(env->dir, sizeof(env->dir), "/tmp/bpfwrap-itest-%d-%d", (int)getpid(), env->id);
	snprintf(env->allow, sizeof(env->allow), "%s/hosts.allow", env->dir);
	snprintf(env->deny, sizeof(env->deny), "%s/hosts.deny", env->dir);

	itest_rm_tree(env->dir, 0);
	if (mkdir(env->dir, 0700))
		return itest_fail_reason(env, "cannot create %s: %s", env->dir, strerror(errno));
	env->dir_made = true;
	if (mkdir(env->cgroup, 0755))
		return itest_fail_reason(env, "cannot create cgroup %s: %s", env->cgroup, strerror(errno));
	env->cgroup_made = true;
	env->orig_netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (env->orig_netns_fd < 0)
		return itest_fail_reason(env, "cannot open /proc/self/ns/net: %s", strerror(errno));
	if (itest_netns_create(env))
		return itest_fail_reason(env, "cannot create network namespace %s", env->netns);
	err = itest_netns_enter(env);
	if (err)
		return itest_fail_reason(env, "cannot enter network namespace %s: %s", env->netns,
					 strerror(-err));
	return 0;
}


/* ---- fake network services for the agent's lookups (children, outside the cgroup) ---- */

/* DNS record types the fake server answers. */
#define ITEST_RR_A FAKEDNS_A
#define ITEST_RR_PTR FAKEDNS_PTR
#define ITEST_RR_AAAA FAKEDNS_AAAA

/* One record: owner is a name, or for PTR the address text; data an address or a name. */
struct itest_rr {
	const char *owner;
	int type;
	const char *data;
};

/* itest_dns_answer - the reply to one query from the given records into out[4096]; 0 = none */
ITEST_FN size_t itest_dns_answer(const struct itest_rr *rrs, size_t n_rrs, const unsigned char *q,
				 size_t qlen, unsigned char *out)
{
	char qname[300], rev[128];
	size_t n, qend;
	int qtype, ancount = 0;
	bool known = false;

	qend = fakedns_question(q, qlen, qname, sizeof(qname), &qtype);
	if (!qend)
		return 0;
	n = fakedns_reply(out, q, qend);
	for (size_t i = 0; i < n_rrs && n < 3500; i++) {
		const struct itest_rr *r = &rrs[i];
		unsigned char rdata[300];
		size_t rdlen;

		if (r->type == ITEST_RR_PTR) {
			fakedns_reverse_name(r->owner, rev, sizeof(rev));
			if (strcasecmp(rev, qname))
				continue;
		} else if (strcasecmp(r->owner, qname)) {
			continue;
		}
		known = true;
		if (r->type != qtype)
			continue;
		if (r->type == ITEST_RR_A)
			rdlen = inet_pton(AF_INET, r->data, rdata) == 1 ? 4 : 0;
		else if (r->type == ITEST_RR_AAAA)
			rdlen = inet_pton(AF_INET6, r->data, rdata) == 1 ? 16 : 0;
		else
			rdlen = fakedns_put_name(rdata, r->data);
		n = fakedns_put_answer(out, n, r->type, rdata, rdlen);
		ancount++;
	}
	if (!known)
		out[3] = 0x83;	/* NXDOMAIN */
	out[7] = (unsigned char)ancount;
	return n;
}

/* What the fake DNS child serves. */
struct itest_fakedns {
	const char *addr;	/* e.g. "127.0.0.1" */
	uint16_t port;
	const struct itest_rr *rrs;
	size_t n_rrs;
};

/* itest_fakedns_body - the fake DNS server child: answer UDP queries until killed */
ITEST_FN void itest_fakedns_body(int report, const void *arg)
{
	const struct itest_fakedns *d = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || itest_sockaddr(AF_INET, d->addr, d->port, &ss, &len) ||
	    bind(fd, (struct sockaddr *)&ss, len)) {
		dprintf(report, "error bind %s\n", strerror(errno));
		_exit(1);
	}
	dprintf(report, "ready\n");
	for (;;) {
		unsigned char q[512], out[4096];
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &flen);
		size_t alen;

		if (n <= 0)
			continue;
		alen = itest_dns_answer(d->rrs, d->n_rrs, q, (size_t)n, out);
		if (alen)
			sendto(fd, out, alen, 0, (struct sockaddr *)&from, flen);
	}
}

/* itest_fakedns_start - a DNS server for the records on addr:port (UDP) in the test namespace */
ITEST_FN int itest_fakedns_start(struct itest_env *env, const struct itest_fakedns *d)
{
	return itest_child_start(env, itest_fakedns_body, d, "fake DNS server");
}

/* What the fake identd child answers. */
struct itest_fakeident {
	const char *addr;	/* listen address (the client's), port 113 */
	const char *user;	/* the USERID it claims, sent as is */
	const char *const *users;	/* if set (NULL-terminated): the k-th query's
					 * USERID is users[k], the last one repeats */
};

/* itest_fakeident_body - an RFC 1413 server that claims every connection for one user
 * (or, with users, for a user that changes from query to query) */
ITEST_FN void itest_fakeident_body(int report, const void *arg)
{
	const struct itest_fakeident *d = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || itest_sockaddr(AF_INET, d->addr, 113, &ss, &len))
		_exit(1);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 64)) {
		dprintf(report, "error bind %s\n", strerror(errno));
		_exit(1);
	}
	dprintf(report, "ready\n");
	for (size_t k = 0;;) {
		char line[256];
		unsigned cport = 0, sport = 0;
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		const char *user = d->user;
		struct pollfd p = { .fd = c, .events = POLLIN };
		ssize_t n;

		if (c < 0)
			continue;
		n = poll(&p, 1, 2000) == 1 ? read(c, line, sizeof(line) - 1) : -1;
		if (n > 0) {
			line[n] = '\0';
			if (d->users) {
				user = d->users[k];
				if (d->users[k + 1])
					k++;
			}
			if (sscanf(line, "%u , %u", &cport, &sport) == 2)
				dprintf(c, "%u , %u : USERID : UNIX :%s\r\n", cport, sport, user);
		}
		close(c);
	}
}

/* itest_fakeident_start - an identd on addr:113 in the test namespace */
ITEST_FN int itest_fakeident_start(struct itest_env *env, const struct itest_fakeident *d)
{
	return itest_child_start(env, itest_fakeident_body, d, "fake identd");
}

/* itest_file_lines - how many lines of a file contain needle (0 if it does not exist) */
ITEST_FN int itest_file_lines(const char *path, const char *needle)
{
	char line[4096];
	FILE *f = fopen(path, "re");
	int count = 0;

	if (!f)
		return 0;
	for (int i = 0; i < 100000 && fgets(line, sizeof(line), f); i++)
		if (strstr(line, needle))
			count++;
	fclose(f);
	return count;
}

/* itest_file_wait - wait up to timeout_ms until at least `want` lines of path contain needle */
ITEST_FN int itest_file_wait(const char *path, const char *needle, int want, int timeout_ms)
{
	long long deadline = itest_now_ms() + timeout_ms;
	int got = 0;

	for (int i = 0; i < 10000; i++) {
		got = itest_file_lines(path, needle);
		if (got >= want || itest_now_ms() >= deadline)
			break;
		itest_sleep_ms(20);
	}
	return got;
}

/* cmocka glue: one fresh world per test (the state), torn down after it. */
static struct itest_env itest_the_env;

/* itest_setup - cmocka setup: a fresh world; a missing feature becomes a skip in the
 * test, any other setup error a failure */
ITEST_FN int itest_setup(void **state)
{
	itest_env_setup(&itest_the_env);
	*state = &itest_the_env;
	return 0;
}

/* itest_teardown - cmocka teardown: remove the world, whatever the test did */
ITEST_FN int itest_teardown(void **state)
{
	return itest_env_teardown(*state);
}

/* ITEST_CASE - a cmocka test in a world of its own (itest_setup / itest_teardown) */
#define ITEST_CASE(f) cmocka_unit_test_setup_teardown(f, itest_setup, itest_teardown)

/* ITEST_ENV - the test's world; or fail the test, or (a missing kernel feature) skip it,
 * with the printed reason */
#define ITEST_ENV(state)                                                        \
	({                                                                      \
		struct itest_env *e_ = *(state);                                \
		if (e_->fail_reason[0])                                         \
			fail_msg("test world: %s", e_->fail_reason);           \
		if (e_->skip_reason[0]) {                                       \
			printf("# skip: %s\n", e_->skip_reason);               \
			skip();                                                 \
		}                                                               \
		e_;                                                             \
	})

/* ITEST_NEED_BPFWRAP - fail the test unless the bpfwrap binary was found */
#define ITEST_NEED_BPFWRAP(env)                                                 \
	do {                                                                    \
		if ((env)->no_bpfwrap[0])                                       \
			fail_msg("%s: build it first (make test-build)",        \
				 (env)->no_bpfwrap);                            \
	} while (0)

/* ITEST_SKIP - skip the rest of a test with a printed reason */
#define ITEST_SKIP(...)                                                         \
	do {                                                                    \
		printf("# skip: " __VA_ARGS__);                                 \
		printf("\n");                                                  \
		skip();                                                         \
	} while (0)

#endif /* BPFWRAP_ITEST_H */
