/*
 * bench_load.c - the benchmark's load generator: full TCP connections, one
 * at a time or many in flight, from several source addresses.
 *
 * Usage: bench_load -d ADDR:PORT [-s FIRST-LAST] [-c CONCURRENCY]
 *                   [-n MAXCONNS] [-t MAXSECONDS] [-w TIMEOUT_MS]
 *        bench_load -d ADDR:PORT -E PACKETS [-s SRC]
 *
 * One connection = nonblocking connect from the next source address (round
 * robin over FIRST..LAST, IPv4, the port chosen at connect time with
 * IP_BIND_ADDRESS_NO_PORT), wait for the server to close (EOF: the server,
 * or the daemon tcpd started, has decided and finished), then close with
 * SO_LINGER 0 so that no TIME_WAIT piles up. -c 1 is sequential. The run
 * ends after MAXCONNS connections or MAXSECONDS, whichever comes first.
 * A connection that fails or takes longer than -w ms (default 3000) counts
 * as failed.
 *
 * -E PACKETS: one connection, then PACKETS writes of one byte each with
 * TCP_NODELAY (established traffic for the per-packet cost), then close.
 *
 * Output: one line of key=value: conns, fails, secs, rate (connections/s),
 * lat_med_us, lat_p99_us, lat_max_us (connect start to EOF).
 *
 * Errors: usage and setup errors exit 2; the run itself exits 0 and reports
 * failures in fails=.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONC 1024
#define MAX_LAT (1 << 21)

struct conn {
	int fd;
	int connected;
	uint64_t start;
};

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

/* parse_range - "a.b.c.d-a.b.c.e" or one address into host-order bounds */
static int parse_range(const char *s, uint32_t *lo, uint32_t *hi)
{
	char buf[64];
	struct in_addr a, b;
	char *dash;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -1;
	dash = strchr(buf, '-');
	if (dash)
		*dash++ = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1 || (dash && inet_pton(AF_INET, dash, &b) != 1))
		return -1;
	*lo = ntohl(a.s_addr);
	*hi = dash ? ntohl(b.s_addr) : *lo;
	return *lo <= *hi ? 0 : -1;
}

/* start_conn - open a nonblocking connect from src to dst; -errno on failure */
static int start_conn(struct conn *c, uint32_t src, const struct sockaddr_in *dst)
{
	int one = 1;
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(src) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&s, sizeof(s)) ||
	    (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) && errno != EINPROGRESS)) {
		int err = -errno;

		close(fd);
		return err;
	}
	c->fd = fd;
	c->connected = 0;
	c->start = now_ns();
	return 0;
}

/* end_conn - close with an RST (no TIME_WAIT) */
static void end_conn(struct conn *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c->fd);
	c->fd = -1;
}

/* established - one connection, n one-byte writes; 0 or -1 */
static int established(const struct sockaddr_in *dst, uint32_t src, long n)
{
	struct conn c;
	int one = 1;

	if (start_conn(&c, src, dst))
		return -1;
	struct pollfd p = { .fd = c.fd, .events = POLLOUT };
	int err = 0;
	socklen_t el = sizeof(err);

	if (poll(&p, 1, 3000) != 1 || getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
		fprintf(stderr, "bench_load: connect: %s\n", err ? strerror(err) : "timeout");
		end_conn(&c);
		return -1;
	}
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	uint64_t t0 = now_ns();
	long sent = 0;

	while (sent < n && now_ns() - t0 < 60000000000ull) {
		if (write(c.fd, "x", 1) == 1) {
			sent++;
		} else if (errno == EAGAIN) {
			p.events = POLLOUT;
			poll(&p, 1, 100);
		} else {
			break;
		}
	}
	shutdown(c.fd, SHUT_WR);
	p.events = POLLIN;
	poll(&p, 1, 3000); /* the server closes after EOF */
	close(c.fd);
	printf("packets=%ld secs=%.3f\n", sent, (now_ns() - t0) / 1e9);
	return sent == n ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *dsts = NULL, *srcs = "127.0.0.1";
	long maxconns = 10000, epackets = 0;
	double maxsecs = 5;
	int conc = 1, timeout_ms = 3000, opt;

	while ((opt = getopt(argc, argv, "d:s:c:n:t:w:E:")) != -1) {
		switch (opt) {
		case 'd': dsts = optarg; break;
		case 's': srcs = optarg; break;
		case 'c': conc = atoi(optarg); break;
		case 'n': maxconns = atol(optarg); break;
		case 't': maxsecs = atof(optarg); break;
		case 'w': timeout_ms = atoi(optarg); break;
		case 'E': epackets = atol(optarg); break;
		default: goto usage;
		}
	}
	char host[64];
	const char *colon = dsts ? strrchr(dsts, ':') : NULL;
	struct sockaddr_in dst = { .sin_family = AF_INET };
	uint32_t lo, hi;

	if (!colon || colon - dsts >= (long)sizeof(host) || conc < 1 || conc > MAX_CONC ||
	    maxconns < 1 || maxsecs <= 0 || parse_range(srcs, &lo, &hi))
		goto usage;
	memcpy(host, dsts, colon - dsts);
	host[colon - dsts] = '\0';
	dst.sin_port = htons(atoi(colon + 1));
	if (inet_pton(AF_INET, host, &dst.sin_addr) != 1)
		goto usage;
	if (epackets > 0)
		return established(&dst, lo, epackets) ? 1 : 0;

	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct conn conns[MAX_CONC];
	uint64_t *lat = calloc(MAX_LAT, sizeof(*lat));
	size_t nlat = 0;
	long started = 0, done = 0, fails = 0, inflight = 0;
	uint32_t next = lo;
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(maxsecs * 1e9);
	uint64_t tmo = (uint64_t)timeout_ms * 1000000ull;

	if (ep < 0 || !lat) {
		perror("bench_load: setup");
		return 2;
	}
	for (int i = 0; i < conc; i++)
		conns[i].fd = -1;

	for (;;) {
		uint64_t now = now_ns();
		int stopping = now >= deadline || started >= maxconns;

		/* Fill free slots. */
		for (int i = 0; i < conc && !stopping; i++) {
			if (conns[i].fd >= 0 || started >= maxconns)
				continue;
			struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = i };

			if (start_conn(&conns[i], next, &dst)) {
				fails++;
				started++;
				continue;
			}
			next = next == hi ? lo : next + 1;
			started++;
			inflight++;
			epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
		}
		if (!inflight)
			break;
		/* Time out stuck connections (bounded wait for the stragglers too). */
		now = now_ns();
		for (int i = 0; i < conc; i++) {
			if (conns[i].fd >= 0 && now - conns[i].start > tmo) {
				end_conn(&conns[i]);
				fails++;
				inflight--;
			}
		}
		if (!inflight)
			continue;

		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 50);

		for (int k = 0; k < n; k++) {
			struct conn *c = &conns[evs[k].data.u32];

			if (c->fd < 0)
				continue;
			if (!c->connected) {
				int err = 0;
				socklen_t el = sizeof(err);

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err) {
					end_conn(c);
					fails++;
					inflight--;
					continue;
				}
				c->connected = 1;
				struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP,
							  .data.u32 = evs[k].data.u32 };

				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			char b[64];
			ssize_t r = read(c->fd, b, sizeof(b));

			if (r > 0)
				continue; /* a banner: wait for EOF */
			if (r < 0 && errno == EAGAIN)
				continue;
			uint64_t dt = now_ns() - c->start;

			end_conn(c);
			inflight--;
			if (r < 0) { /* reset before EOF: not a finished connection */
				fails++;
				continue;
			}
			done++;
			if (nlat < MAX_LAT)
				lat[nlat++] = dt;
		}
	}

	double secs = (now_ns() - t0) / 1e9;

	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	printf("conns=%ld fails=%ld secs=%.3f rate=%.1f lat_med_us=%.1f lat_p99_us=%.1f lat_max_us=%.1f\n",
	       done, fails, secs, done / secs,
	       nlat ? lat[nlat / 2] / 1e3 : 0.0,
	       nlat ? lat[(size_t)(nlat * 0.99)] / 1e3 : 0.0,
	       nlat ? lat[nlat - 1] / 1e3 : 0.0);
	free(lat);
	return 0;
usage:
	fprintf(stderr, "usage: bench_load -d ADDR:PORT [-s FIRST-LAST] [-c CONC] [-n MAX] "
		"[-t SECS] [-w TIMEOUT_MS] | -E PACKETS\n");
	return 2;
}
