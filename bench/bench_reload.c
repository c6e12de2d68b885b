/*
 * bench_reload.c - reload latency: from writing a policy file to the new
 * verdict being enforced, seen by a real client.
 *
 * Usage: bench_reload -f TARGET -b BASE -d ADDR:PORT -s PROBE_SRC
 *                     [-n RELOADS] [-w ATTEMPT_MS] [-g GAP_MS] [-H PID]
 *
 * BASE holds a policy file in which PROBE_SRC is denied (nothing in it
 * matches PROBE_SRC, and the other file denies ALL). Reload i writes
 * TARGET as BASE plus the line `ALL : PROBE_SRC` when i is even (the probe
 * becomes allowed) and as BASE alone when i is odd (denied again); each write
 * goes to TARGET.tmp and is renamed over TARGET (atomic, as editors and
 * config managers do). The clock starts before the write. Then the probe
 * connects from PROBE_SRC in a loop: an attempt that connects within
 * ATTEMPT_MS (default 5) means allowed; one that does not means denied (the
 * SYN was dropped). Latency = first attempt that shows the new verdict
 * (for "denied", the start of that attempt, so its resolution is ATTEMPT_MS).
 * A reload not seen within 5 s counts as missed. GAP_MS (default 20) of
 * quiet follow each observed reload. With -H PID, each write is followed by
 * SIGHUP to PID (for an agent that reloads on SIGHUP rather than on its own
 * file watch); the clock still starts before the write.
 *
 * Output: one line of key=value: reloads, missed, med_ms, p99_ms, max_ms,
 * allow_med_ms, deny_med_ms. Exits 0; 2 on usage or setup errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* now_ns - CLOCK_MONOTONIC in nanoseconds */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* cmp_u64 - qsort order for uint64_t */
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* probe - 1 if a connection from src completes within ms, 0 if not, -1 on error */
static int probe(const struct sockaddr_in *src, const struct sockaddr_in *dst, int ms)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, ok = -1;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (!bind(fd, (const struct sockaddr *)src, sizeof(*src)) &&
	    (!connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) || errno == EINPROGRESS)) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int err = 0;
		socklen_t el = sizeof(err);

		if (poll(&p, 1, ms) == 1)
			ok = !getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) && !err ? 1 : -1;
		else
			ok = 0;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	return ok;
}

/* write_policy - TARGET.tmp <- base [+ extra line], renamed over TARGET; 0 or -1 */
static int write_policy(const char *target, const char *base, size_t blen, const char *extra)
{
	char tmp[4096];
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", target) >= (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	size_t off = 0;

	while (off < blen) {
		ssize_t n = write(fd, base + off, blen - off);

		if (n <= 0) {
			close(fd);
			return -1;
		}
		off += n;
	}
	if (extra && write(fd, extra, strlen(extra)) != (ssize_t)strlen(extra)) {
		close(fd);
		return -1;
	}
	if (close(fd))
		return -1;
	return rename(tmp, target);
}

/* read_all - whole file into a malloc'd buffer; NULL on error */
static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET)) {
		buf = malloc(n + 1);
		if (buf && fread(buf, 1, n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = n;
	}
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	const char *target = NULL, *basep = NULL, *dsts = NULL, *srcs = NULL;
	int n = 100, attempt_ms = 5, gap_ms = 20, hup = 0, opt;

	while ((opt = getopt(argc, argv, "f:b:d:s:n:w:g:H:")) != -1) {
		switch (opt) {
		case 'f': target = optarg; break;
		case 'b': basep = optarg; break;
		case 'd': dsts = optarg; break;
		case 's': srcs = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'w': attempt_ms = atoi(optarg); break;
		case 'g': gap_ms = atoi(optarg); break;
		case 'H': hup = atoi(optarg); break;
		default: goto usage;
		}
	}
	struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET };
	char host[64], extra[96];
	const char *colon = dsts ? strrchr(dsts, ':') : NULL;
	size_t blen = 0;
	char *base = basep ? read_all(basep, &blen) : NULL;

	if (!target || !base || !srcs || !colon || colon - dsts >= (long)sizeof(host) ||
	    n < 1 || n > 100000 || attempt_ms < 1)
		goto usage;
	memcpy(host, dsts, colon - dsts);
	host[colon - dsts] = '\0';
	dst.sin_port = htons(atoi(colon + 1));
	if (inet_pton(AF_INET, host, &dst.sin_addr) != 1 || inet_pton(AF_INET, srcs, &src.sin_addr) != 1)
		goto usage;
	snprintf(extra, sizeof(extra), "ALL : %s\n", srcs);

	uint64_t *all = calloc(n, sizeof(*all)), *al = calloc(n, sizeof(*al)), *de = calloc(n, sizeof(*de));
	int nall = 0, nal = 0, nde = 0, missed = 0;

	if (!all || !al || !de)
		return 2;
	for (int i = 0; i < n; i++) {
		int want = i % 2 == 0;
		uint64_t t0 = now_ns(), t1 = 0;

		if (write_policy(target, base, blen, want ? extra : NULL)) {
			perror("bench_reload: write");
			return 2;
		}
		if (hup > 0 && kill(hup, SIGHUP)) {
			perror("bench_reload: SIGHUP");
			return 2;
		}
		while (now_ns() - t0 < 5000000000ull) {
			uint64_t ta = now_ns();
			int got = probe(&src, &dst, attempt_ms);

			if (got == want) {
				t1 = want ? now_ns() : ta;
				break;
			}
			if (got < 0)
				usleep(1000); /* refused/reset: no verdict either way, try again */
		}
		if (!t1) {
			missed++;
			continue;
		}
		all[nall++] = t1 - t0;
		if (want)
			al[nal++] = t1 - t0;
		else
			de[nde++] = t1 - t0;
		usleep(gap_ms * 1000);
	}
	qsort(all, nall, sizeof(*all), cmp_u64);
	qsort(al, nal, sizeof(*al), cmp_u64);
	qsort(de, nde, sizeof(*de), cmp_u64);
	printf("reloads=%d missed=%d med_ms=%.2f p99_ms=%.2f max_ms=%.2f allow_med_ms=%.2f deny_med_ms=%.2f\n",
	       n, missed, nall ? all[nall / 2] / 1e6 : -1, nall ? all[(size_t)((nall - 1) * 0.99)] / 1e6 : -1,
	       nall ? all[nall - 1] / 1e6 : -1, nal ? al[nal / 2] / 1e6 : -1, nde ? de[nde / 2] / 1e6 : -1);
	return 0;
usage:
	fprintf(stderr, "usage: bench_reload -f TARGET -b BASE -d ADDR:PORT -s PROBE_SRC "
		"[-n RELOADS] [-w ATTEMPT_MS] [-g GAP_MS] [-H PID]\n");
	return 2;
}
