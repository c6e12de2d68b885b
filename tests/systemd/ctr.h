/*
 * ctr.h - a Debian 12 container booted with systemd in systemd-nspawn for the
 * real-systemd test level (tests/systemd/test_systemd.c): start, run
 * commands inside, reboot, probe sshd from a chosen source address, clean up.
 *
 * SAFETY (this machine's control connection runs through its network stack):
 * - systemd-nspawn is started from a child cgroup of our own under the
 *   cgroup2 mount found in /proc/self/mountinfo (never hard-coded); with
 *   --keep-unit it splits that cgroup into payload/ and supervisor/, so the
 *   container's cgroups are a subtree of ours and never the root. Only the
 *   nspawn child joins it, the test process stays where it was.
 * - --private-network: the container has its own network namespace with only
 *   lo; every probe joins that namespace (setns in a forked child) and
 *   connects to 127.0.0.1 from a 127.0.0.0/8 address. Nothing is attached to
 *   the root cgroup or the root network namespace by this harness, and
 *   bpfwrap inside the container can only name the container's cgroups.
 * - /sys/fs/bpf inside is a fresh bpffs of our own, never the host's.
 * - Cleanup (ctr_destroy, also from atexit and on SIGTERM/SIGINT/SIGALRM)
 *   kills only the nspawn PID we started and its container's PID 1, unmounts
 *   our bpffs, removes our cgroups and the copy of the root file system.
 * - Every wait is bounded in time and every loop in count.
 *
 * Errors: functions return 0 (or a count) or -errno, and print one
 * "# ctr: ..." line saying what failed.
 */
#ifndef BPFWRAP_TESTS_CTR_H
#define BPFWRAP_TESTS_CTR_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CTR_BOOT_TIMEOUT_MS 90000
#define CTR_STOP_TIMEOUT_MS 30000
#define CTR_OUT_MAX (64 * 1024)

/* The container and what was made for it. Paths are fixed at ctr_prepare so
 * the signal-time cleanup needs no allocation. */
struct ctr {
	char work[64];		/* /var/tmp/bpfwrap-systemd.PID.XXXXXX */
	char root[PATH_MAX];	/* WORK/root: the copy of the cached tree */
	char bpffs[PATH_MAX];	/* WORK/bpffs: our own bpffs, /sys/fs/bpf inside */
	char console[PATH_MAX];	/* WORK/console.log: nspawn's output */
	char cg2[PATH_MAX];	/* CGROUP2/bpfwrap-systemd-PID: nspawn runs here */
	char cg1[PATH_MAX];	/* the same path in a name=systemd v1 hierarchy, if any */
	char machine[64];	/* --machine */
	bool bpffs_mounted;
	pid_t nspawn;		/* the systemd-nspawn we started */
	pid_t init;		/* the container's PID 1, as the host sees it */
	int netns_fd;		/* its network namespace */
	int boots;
};

static struct ctr ctr = { .netns_fd = -1 };

/* now_ms - monotonic milliseconds */
static __attribute__((unused)) long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* sleep_ms - sleep this long */
static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* find_mounts - the cgroup2 mount and a name=systemd v1 mount from /proc/self/mountinfo */
static int find_mounts(char *cg2, size_t n2, char *cg1, size_t n1)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	cg2[0] = cg1[0] = '\0';
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], fstype[64], super[1024];
		char *dash = strstr(line, " - ");

		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(dash + 3, "%63s %*s %1023s", fstype, super) != 2)
			continue;
		if (!strcmp(fstype, "cgroup2") && !cg2[0])
			snprintf(cg2, n2, "%s", mnt);
		else if (!strcmp(fstype, "cgroup") && strstr(super, "name=systemd") && !cg1[0])
			snprintf(cg1, n1, "%s", mnt);
	}
	fclose(f);
	return cg2[0] ? 0 : -ENOENT;
}

/* run_argv - run argv with stdin /dev/null, output into out; exit status, 128+signal, or -errno (-ETIMEDOUT) */
static int run_argv(char *const argv[], char *out, size_t size, int timeout_ms)
{
	int pfd[2], status = 0;
	size_t len = 0;
	long long deadline = now_ms() + timeout_ms;
	bool timed_out = false;
	pid_t pid;

	if (out && size)
		out[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		dup2(null, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execvp(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		long long left = deadline - now_ms();
		char buf[4096];
		ssize_t r;

		if (left <= 0) {
			timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
			continue;
		r = read(pfd[0], buf, sizeof(buf));
		if (r <= 0)
			break;
		if (out && len + 1 < size) {
			size_t take = (size_t)r < size - 1 - len ? (size_t)r : size - 1 - len;

			memcpy(out + len, buf, take);
			len += take;
			out[len] = '\0';
		}
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	kill(-pid, SIGKILL);	/* what it left behind in its group */
	if (timed_out)
		return -ETIMEDOUT;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ctr_sh - run a shell command inside the container (nsenter -a); like run_argv */
static __attribute__((format(printf, 4, 5))) int ctr_sh(char *out, size_t size, int timeout_ms,
							  const char *fmt, ...)
{
	char cmd[8192], pidarg[16];
	va_list ap;

	if (ctr.init <= 0)
		return -ESRCH;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(pidarg, sizeof(pidarg), "%d", (int)ctr.init);
	{
		char *argv[] = { "nsenter", "-t", pidarg, "-a", "--", "/bin/sh", "-c", cmd, NULL };

		return run_argv(argv, out, size, timeout_ms);
	}
}

/* ctr_write - write text to a file of the container's tree (from the host side) */
static int ctr_write(const char *rel, const char *text)
{
	char path[PATH_MAX * 2], tmp[PATH_MAX * 2 + 8];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s", ctr.root, rel);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fputs(text, f);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		int e = -errno;

		unlink(tmp);
		return e;
	}
	return 0;
}

/* rmdir_tree - remove an (empty of processes) cgroup directory and its children; signal-safe */
static void rmdir_tree(const char *path, int depth)
{
	char buf[4096], sub[PATH_MAX];
	int fd;
	long n;

	if (depth > 16)
		return;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *d = (void *)(buf + off);
			off += d->reclen;
			if (d->type != DT_DIR || d->name[0] == '.')
				continue;
			size_t pl = strlen(path), nl = strlen(d->name);

			if (pl + 1 + nl + 1 > sizeof(sub))
				continue;
			memcpy(sub, path, pl);
			sub[pl] = '/';
			memcpy(sub + pl + 1, d->name, nl + 1);
			rmdir_tree(sub, depth + 1);
		}
	}
	close(fd);
	rmdir(path);
}

/* ctr_kill - end the container: SIGTERM to nspawn (clean halt) up to grace_ms, then SIGKILL; signal-safe */
static void ctr_kill(int grace_ms)
{
	int status;

	if (ctr.nspawn > 0) {
		if (grace_ms > 0) {
			kill(ctr.nspawn, SIGTERM);
			for (int i = 0; i < grace_ms / 100; i++) {
				if (waitpid(ctr.nspawn, &status, WNOHANG) == ctr.nspawn) {
					ctr.nspawn = 0;
					break;
				}
				struct timespec ts = { 0, 100000000L };
				nanosleep(&ts, NULL);
			}
		}
		if (ctr.nspawn > 0) {
			kill(ctr.nspawn, SIGKILL);
			if (ctr.init > 0)
				kill(ctr.init, SIGKILL);	/* PID 1 of its namespace: all of it */
			waitpid(ctr.nspawn, &status, 0);
			ctr.nspawn = 0;
		}
	}
	if (ctr.init > 0)
		kill(ctr.init, SIGKILL);
	ctr.init = 0;
	if (ctr.netns_fd >= 0)
		close(ctr.netns_fd);
	ctr.netns_fd = -1;
}

/* ctr_release - kill the container, unmount our bpffs, remove our cgroups; signal-safe */
static void ctr_release(int grace_ms)
{
	ctr_kill(grace_ms);
	if (ctr.bpffs_mounted && umount2(ctr.bpffs, MNT_DETACH) == 0)
		ctr.bpffs_mounted = false;
	/* the container's processes are gone: the cgroups empty out within moments */
	for (int i = 0; i < 50 && ctr.cg2[0]; i++) {
		rmdir_tree(ctr.cg2, 0);
		if (access(ctr.cg2, F_OK) != 0)
			break;
		struct timespec ts = { 0, 100000000L };
		nanosleep(&ts, NULL);
	}
	if (ctr.cg1[0])
		rmdir_tree(ctr.cg1, 0);
}

/* ctr_destroy - ctr_release, then remove the work directory and nspawn's propagation directory */
static void ctr_destroy(void)
{
	char prop[128];

	ctr_release(10000);
	if (ctr.work[0] && !ctr.bpffs_mounted) {
		char *argv[] = { "rm", "-rf", "--one-file-system", ctr.work, NULL };

		run_argv(argv, NULL, 0, 120000);
		ctr.work[0] = '\0';
	}
	if (ctr.machine[0]) {
		snprintf(prop, sizeof(prop), "/run/systemd/nspawn/propagate/%s", ctr.machine);
		char *argv[] = { "rm", "-rf", prop, NULL };

		run_argv(argv, NULL, 0, 10000);
	}
}

/* ctr_on_signal - a killed test run still leaves nothing behind */
static void ctr_on_signal(int sig)
{
	ctr_release(0);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* remove_stale_work - remove the work directories of runs that were killed (their PID is gone) */
static void remove_stale_work(void)
{
	DIR *d = opendir("/var/tmp");
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[300], mnt[320];
		int pid;

		if (sscanf(de->d_name, "bpfwrap-systemd.%d.", &pid) != 1 || pid <= 0 ||
		    (kill(pid, 0) == 0 || errno != ESRCH))
			continue;
		snprintf(path, sizeof(path), "/var/tmp/%s", de->d_name);
		snprintf(mnt, sizeof(mnt), "%s/bpffs", path);
		umount2(mnt, MNT_DETACH);
		printf("# ctr: removing %s, left by a run that was killed\n", path);
		char *argv[] = { "rm", "-rf", "--one-file-system", path, NULL };

		run_argv(argv, NULL, 0, 120000);
	}
	if (d)
		closedir(d);
}

/* ctr_prepare - copy the cached tree, mount a bpffs, make our cgroup; 0 or -errno */
static int ctr_prepare(const char *base)
{
	char cg2mnt[PATH_MAX], cg1mnt[PATH_MAX], src[PATH_MAX + 8], out[4096];
	int r;

	if ((r = find_mounts(cg2mnt, sizeof(cg2mnt), cg1mnt, sizeof(cg1mnt))) < 0) {
		printf("# ctr: no cgroup2 mount in /proc/self/mountinfo\n");
		return r;
	}
	remove_stale_work();
	snprintf(ctr.work, sizeof(ctr.work), "/var/tmp/bpfwrap-systemd.%d.XXXXXX", (int)getpid());
	if (!mkdtemp(ctr.work)) {
		r = -errno;
		ctr.work[0] = '\0';
		return r;
	}
	snprintf(ctr.root, sizeof(ctr.root), "%s/root", ctr.work);
	snprintf(ctr.bpffs, sizeof(ctr.bpffs), "%s/bpffs", ctr.work);
	snprintf(ctr.console, sizeof(ctr.console), "%s/console.log", ctr.work);
	snprintf(ctr.machine, sizeof(ctr.machine), "bpfwrap-test-%d", (int)getpid());
	atexit(ctr_destroy);
	signal(SIGTERM, ctr_on_signal);
	signal(SIGINT, ctr_on_signal);
	signal(SIGALRM, ctr_on_signal);
	signal(SIGPIPE, SIG_IGN);

	snprintf(src, sizeof(src), "%s/.", base);
	{
		char *argv[] = { "cp", "-a", src, ctr.root, NULL };

		if (mkdir(ctr.root, 0755) < 0 || (r = run_argv(argv, out, sizeof(out), 300000)) != 0) {
			printf("# ctr: copy %s to %s: %s\n", base, ctr.root, out);
			return -EIO;
		}
	}
	if (mkdir(ctr.bpffs, 0700) < 0 || mount("bpf", ctr.bpffs, "bpf", 0, "mode=0700") < 0) {
		r = -errno;
		printf("# ctr: mount bpffs on %s: %s\n", ctr.bpffs, strerror(-r));
		return r;
	}
	ctr.bpffs_mounted = true;
	/* a child of the cgroup2 root, never the root itself */
	if (snprintf(ctr.cg2, sizeof(ctr.cg2), "%s/bpfwrap-systemd-%d", cg2mnt, (int)getpid()) >=
		    (int)sizeof(ctr.cg2) ||
	    mkdir(ctr.cg2, 0755) < 0) {
		r = -errno;
		printf("# ctr: mkdir %s: %s\n", ctr.cg2, strerror(-r));
		ctr.cg2[0] = '\0';
		return r ? r : -ENAMETOOLONG;
	}
	if (cg1mnt[0])	/* nspawn mirrors its cgroup path there on a hybrid host */
		snprintf(ctr.cg1, sizeof(ctr.cg1), "%s/bpfwrap-systemd-%d", cg1mnt, (int)getpid());
	return 0;
}

/* ctr_fresh_bpffs - replace our bpffs by an empty one, as a reboot of a real machine does; 0 or -errno */
static int ctr_fresh_bpffs(void)
{
	if (ctr.nspawn > 0)
		return -EBUSY;
	if (ctr.bpffs_mounted && umount2(ctr.bpffs, MNT_DETACH) < 0)
		return -errno;
	ctr.bpffs_mounted = false;
	if (mount("bpf", ctr.bpffs, "bpf", 0, "mode=0700") < 0)
		return -errno;
	ctr.bpffs_mounted = true;
	return 0;
}

/* find_init - the host PID of a process in our cgroup that is PID 1 of its namespace */
static pid_t find_init(void)
{
	char want[PATH_MAX + 8], path[64], line[PATH_MAX + 32];
	const char *rel = ctr.cg2 + strlen(ctr.cg2);
	DIR *d;
	struct dirent *de;
	pid_t found = 0;

	/* our cgroup's path as /proc/PID/cgroup shows it: from the mount point on */
	while (rel > ctr.cg2 && *(rel - 1) != '/')
		rel--;
	snprintf(want, sizeof(want), "0::/%s/", rel);
	d = opendir("/proc");
	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		int pid = atoi(de->d_name);
		bool ns_init = false, ours = false;
		FILE *f;

		if (pid <= 0 || pid == ctr.nspawn)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
		if ((f = fopen(path, "re"))) {
			while (fgets(line, sizeof(line), f))
				if (!strncmp(line, "NSpid:", 6)) {
					char *last = strrchr(line, '\t');

					ns_init = last && strchr(line + 6, '\t') != last && atoi(last + 1) == 1;
				}
			fclose(f);
		}
		if (!ns_init)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
		if ((f = fopen(path, "re"))) {
			while (fgets(line, sizeof(line), f))
				if (!strncmp(line, want, strlen(want)))
					ours = true;
			fclose(f);
		}
		if (ours)
			found = pid;
	}
	closedir(d);
	return found;
}

/* ctr_spawn - start systemd-nspawn in our cgroup; return once the container's PID 1 and netns exist */
static int ctr_spawn(void)
{
	char procs[PATH_MAX + 16], nspath[64], bind[PATH_MAX * 2 + 16], mach[80];
	long long deadline;
	pid_t pid;

	/* what a previous boot left: empty payload/ and supervisor/ */
	{
		DIR *d = opendir(ctr.cg2);
		struct dirent *de;

		while (d && (de = readdir(d))) {
			char sub[PATH_MAX * 2];

			if (de->d_type != DT_DIR || de->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", ctr.cg2, de->d_name);
			rmdir_tree(sub, 0);
		}
		if (d)
			closedir(d);
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", ctr.cg2);
	snprintf(bind, sizeof(bind), "--bind=%s:/sys/fs/bpf", ctr.bpffs);
	snprintf(mach, sizeof(mach), "--machine=%s", ctr.machine);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char *argv[] = { "systemd-nspawn", "-D", ctr.root, "--boot", "--private-network",
				 "--capability=all", "--system-call-filter=bpf perf_event_open",
				 "--register=no", "--keep-unit", bind, mach, NULL };
		int fd = open(procs, O_WRONLY | O_CLOEXEC), log;

		/* into our child cgroup first: --keep-unit splits the caller's cgroup */
		if (fd < 0 || write(fd, "0", 1) != 1)
			_exit(120);
		close(fd);
		log = open(ctr.console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (log < 0)
			_exit(121);
		dup2(log, 1);
		dup2(log, 2);
		fd = open("/dev/null", O_RDONLY);
		dup2(fd, 0);
		/* the container sees the unified layout of a stock Debian 12 host */
		setenv("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1", 1);
		execvp(argv[0], argv);
		dprintf(2, "exec systemd-nspawn: %s\n", strerror(errno));
		_exit(127);
	}
	ctr.nspawn = pid;
	ctr.boots++;
	deadline = now_ms() + 30000;
	while (now_ms() < deadline) {
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			ctr.nspawn = 0;
			printf("# ctr: systemd-nspawn exited (status 0x%x) before the container ran; see %s\n",
			       status, ctr.console);
			return -ECHILD;
		}
		if ((ctr.init = find_init()) > 0)
			break;
		sleep_ms(20);
	}
	if (ctr.init <= 0) {
		printf("# ctr: no container PID 1 in %s after 30 s\n", ctr.cg2);
		return -ETIMEDOUT;
	}
	snprintf(nspath, sizeof(nspath), "/proc/%d/ns/net", (int)ctr.init);
	ctr.netns_fd = open(nspath, O_RDONLY | O_CLOEXEC);
	return ctr.netns_fd < 0 ? -errno : 0;
}

/* ctr_wait_booted - wait until systemd inside says running (or degraded); 0 or -errno */
static int ctr_wait_booted(char *state, size_t size)
{
	long long deadline = now_ms() + CTR_BOOT_TIMEOUT_MS;
	int r = -ETIMEDOUT;

	while (now_ms() < deadline) {
		/* nsenter fails until PID 1 has set up its mounts; is-system-running --wait
		 * fails until the bus is up: retry both */
		r = ctr_sh(state, size, 60000, "systemctl is-system-running --wait 2>/dev/null");
		state[strcspn(state, "\n")] = '\0';
		if (!strcmp(state, "running") || !strcmp(state, "degraded"))
			return 0;
		if (ctr.nspawn > 0 && waitpid(ctr.nspawn, NULL, WNOHANG) == ctr.nspawn) {
			ctr.nspawn = 0;
			printf("# ctr: systemd-nspawn exited while booting; see %s\n", ctr.console);
			return -ECHILD;
		}
		sleep_ms(200);
	}
	printf("# ctr: not booted after %d s (state '%s', last exit %d)\n", CTR_BOOT_TIMEOUT_MS / 1000,
	       state, r);
	return -ETIMEDOUT;
}

/* ctr_wait_exit - wait for nspawn to exit by itself (poweroff/reboot inside); its exit status or -ETIMEDOUT */
static int ctr_wait_exit(int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int status;

	while (now_ms() < deadline) {
		if (waitpid(ctr.nspawn, &status, WNOHANG) == ctr.nspawn) {
			ctr.nspawn = 0;
			ctr.init = 0;
			if (ctr.netns_fd >= 0)
				close(ctr.netns_fd);
			ctr.netns_fd = -1;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		sleep_ms(50);
	}
	return -ETIMEDOUT;
}

/* Outcome of one TCP connect to 127.0.0.1:22 inside the container. */
enum probe_result {
	PROBE_BANNER,		/* established, sshd's "SSH-2.0-" banner read */
	PROBE_NO_BANNER,	/* established (the kernel let it in), no banner */
	PROBE_TIMEOUT,		/* SYN unanswered: dropped */
	PROBE_REFUSED,		/* RST: no listener, or a reject */
	PROBE_ERROR,		/* could not even try (bind, no lo yet, ...) */
	PROBE_NR
};

static const char *const probe_names[PROBE_NR] = { "banner", "established without banner",
						   "timed out", "refused", "error" };

/* probe_once - connect from src to 127.0.0.1:22 in the current netns; a probe_result */
static enum probe_result probe_once(const char *src, int connect_ms, int banner_ms)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, b = { .sin_family = AF_INET };
	struct pollfd p;
	int fd, err = 0;
	socklen_t len = sizeof(err);
	enum probe_result res;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return PROBE_ERROR;
	inet_pton(AF_INET, src, &a.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &b.sin_addr);
	b.sin_port = htons(22);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return PROBE_ERROR;
	}
	if (connect(fd, (struct sockaddr *)&b, sizeof(b)) < 0 && errno != EINPROGRESS) {
		res = errno == ECONNREFUSED ? PROBE_REFUSED : PROBE_ERROR;
		close(fd);
		return res;
	}
	p = (struct pollfd){ fd, POLLOUT, 0 };
	if (poll(&p, 1, connect_ms) <= 0) {
		close(fd);
		return PROBE_TIMEOUT;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err) {
		close(fd);
		return err == ECONNREFUSED || err == ECONNRESET ? PROBE_REFUSED : PROBE_ERROR;
	}
	res = PROBE_NO_BANNER;
	if (banner_ms > 0) {
		char buf[256];
		size_t got = 0;
		long long deadline = now_ms() + banner_ms;

		while (got < sizeof(buf) - 1 && now_ms() < deadline) {
			ssize_t r;

			p = (struct pollfd){ fd, POLLIN, 0 };
			if (poll(&p, 1, (int)(deadline - now_ms())) <= 0)
				break;
			r = read(fd, buf + got, sizeof(buf) - 1 - got);
			if (r <= 0)
				break;
			got += (size_t)r;
			buf[got] = '\0';
			if (strstr(buf, "SSH-2.0-")) {
				res = PROBE_BANNER;
				break;
			}
		}
	}
	close(fd);
	return res;
}

/* Counts of a prober's connects. */
struct probe_counts {
	unsigned n[PROBE_NR];
	unsigned attempts;
};

/* A child in the container's netns connecting from one address in a loop,
 * stopped by SIGUSR1 (a pipe's hang-up would not do: later children inherit
 * its write end). */
struct prober {
	pid_t pid;
	int result_fd;		/* read end: struct probe_counts at exit */
};

static volatile sig_atomic_t prober_stopping;

/* prober_on_usr1 - the parent asks the prober to stop */
static void prober_on_usr1(int sig)
{
	prober_stopping = 1;
	(void)sig;
}

/* prober_start - connect from src until stopped, max_ms passed or max_n tries; 0 or -errno */
static int prober_start(struct prober *pr, const char *src, int connect_ms, int banner_ms, int gap_ms,
			int max_ms, unsigned max_n)
{
	int res[2];
	sigset_t block, old;

	if (ctr.netns_fd < 0 || pipe2(res, O_CLOEXEC) < 0)
		return -EINVAL;
	/* SIGUSR1 stays blocked until the child has its handler */
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	pr->pid = fork();
	if (pr->pid < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return -errno;
	}
	if (pr->pid == 0) {
		struct probe_counts c;
		struct sigaction sa = { .sa_handler = prober_on_usr1 };
		long long deadline = now_ms() + max_ms;

		memset(&c, 0, sizeof(c));
		close(res[0]);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGALRM, SIG_DFL);
		sigaction(SIGUSR1, &sa, NULL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (setns(ctr.netns_fd, CLONE_NEWNET) < 0) {
			dprintf(1, "# ctr: prober setns: %s\n", strerror(errno));
			_exit(3);
		}
		while (!prober_stopping && c.attempts < max_n && now_ms() < deadline) {
			enum probe_result r = probe_once(src, connect_ms, banner_ms);

			if (prober_stopping && r == PROBE_TIMEOUT)
				break;	/* cut short by the stop, not an answer */
			c.n[r]++;
			c.attempts++;
			if (gap_ms > 0 && !prober_stopping)
				sleep_ms(gap_ms);
		}
		if (write(res[1], &c, sizeof(c)) != (ssize_t)sizeof(c))
			_exit(4);
		_exit(0);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(res[1]);
	pr->result_fd = res[0];
	return 0;
}

/* prober_collect - wait for a prober's counts (asking it to stop first if stop) and add them to c; 0 or -errno */
static int prober_collect(struct prober *pr, struct probe_counts *c, bool stop)
{
	struct probe_counts got;
	struct pollfd p = { pr->result_fd, POLLIN, 0 };
	int r = 0, status = 0;

	if (stop)
		kill(pr->pid, SIGUSR1);
	if (poll(&p, 1, 20000) <= 0 || read(pr->result_fd, &got, sizeof(got)) != (ssize_t)sizeof(got)) {
		r = -EIO;
		kill(pr->pid, SIGKILL);
	} else {
		for (int i = 0; i < PROBE_NR; i++)
			c->n[i] += got.n[i];
		c->attempts += got.attempts;
	}
	close(pr->result_fd);
	waitpid(pr->pid, &status, 0);
	if (r < 0)
		printf("# ctr: prober %d gave no counts (wait status 0x%x; exit 3: setns failed)\n",
		       (int)pr->pid, status);
	pr->pid = 0;
	return r;
}

/* prober_stop - stop a prober and add its counts to c; 0 or -errno */
static int prober_stop(struct prober *pr, struct probe_counts *c)
{
	return prober_collect(pr, c, true);
}

/* probe - one connect from src inside the container; a probe_result */
static enum probe_result probe(const char *src)
{
	struct prober pr;
	struct probe_counts c;

	memset(&c, 0, sizeof(c));
	/* a dropped SYN is retransmitted after 1 s: 800 ms without an answer is a drop */
	if (prober_start(&pr, src, 800, 3000, 0, 10000, 1) < 0 || prober_collect(&pr, &c, false) < 0)
		return PROBE_ERROR;
	for (int i = 0; i < PROBE_NR; i++)
		if (c.n[i])
			return (enum probe_result)i;
	return PROBE_ERROR;
}

/* counts_str - "A attempts: N banner, N established without banner, ..." into buf */
static const char *counts_str(const struct probe_counts *c, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%u attempts:", c->attempts);

	for (int i = 0; i < PROBE_NR && n < (int)size; i++)
		n += snprintf(buf + n, size - n, "%s %u %s", i ? "," : "", c->n[i], probe_names[i]);
	return buf;
}

#endif /* BPFWRAP_TESTS_CTR_H */
