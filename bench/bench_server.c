/*
 * bench_server.c - the benchmark's TCP server: accept and close, with the
 * access check each baseline makes per connection.
 *
 * Usage: bench_server [-a ADDR] [-p PORT] [-t SECONDS] [-m MODE] [options]
 *   -m plain   accept, close (the ceiling; also the server bpfwrap and
 *              nftables guard: their check happens before accept)
 *   -m wrap    libwrap in process, as sshd used it: hosts_ctl() per accepted
 *              connection, with the tables given by -A/-D (hosts_allow_table,
 *              hosts_deny_table); the time spent in hosts_ctl() is measured
 *   -m tcpd    inetd style: fork per connection, the child dup2()s the socket
 *              to 0/1/2 and execs -T (default /usr/sbin/tcpd) with argv[0]
 *              -0 (default /bin/true); tcpd reads /etc/hosts.allow and
 *              /etc/hosts.deny, so run this mode in a private mount namespace
 *              with the files bind-mounted there
 *   -m sink    accept, read until EOF, close (established-packet costs)
 *   -d NAME    daemon name given to hosts_ctl (default benchd)
 *
 * Prints "ready" once listening. SIGUSR1 prints one line of key=value
 * counters since the previous such line: accepted, denied (wrap), and for
 * wrap the per-call cost of hosts_ctl() (median, min, max, mean in ns over
 * every call), then starts counting afresh. Stops on SIGTERM/SIGINT or after
 * -t seconds (default 600), printing the same line.
 *
 * Errors: setup failures exit 1 with a message on stderr; a failed accept
 * or fork is counted (errors=) and the loop goes on.
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
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <tcpd.h>

/* libwrap wants the two logging levels defined by the program (tcpd does). */
int allow_severity = LOG_INFO;
int deny_severity = LOG_WARNING;

#define MAX_SAMPLES (1 << 20)

static volatile sig_atomic_t stop, report;

/* on_signal - ask the accept loop to finish */
static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* on_usr1 - ask for the counters */
static void on_usr1(int sig)
{
	(void)sig;
	report = 1;
}

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

/* run_tcpd - inetd's job for one connection: a child with the socket as 0/1/2 execs tcpd */
static int run_tcpd(int fd, const char *tcpd, const char *argv0)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char *argv[] = { (char *)argv0, NULL };

		if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		if (fd > 2)
			close(fd);
		execv(tcpd, argv);
		_exit(127);
	}
	return 0;
}

/* print_counters - one key=value line of the counters; then they start afresh */
static void print_counters(unsigned long *accepted, unsigned long *denied, unsigned long *errors,
			   uint64_t *samples, size_t *nsamples, uint64_t *total_ns)
{
	printf("accepted=%lu denied=%lu errors=%lu", *accepted, *denied, *errors);
	if (*nsamples) {
		size_t n = *nsamples;

		qsort(samples, n, sizeof(*samples), cmp_u64);
		printf(" calls=%zu ctl_med_ns=%llu ctl_min_ns=%llu ctl_max_ns=%llu ctl_mean_ns=%llu",
		       n, (unsigned long long)samples[n / 2], (unsigned long long)samples[0],
		       (unsigned long long)samples[n - 1], (unsigned long long)(*total_ns / n));
	}
	printf("\n");
	fflush(stdout);
	*accepted = *denied = *errors = 0;
	*nsamples = 0;
	*total_ns = 0;
}

/* drain - read a connection until EOF or error (sink mode) */
static void drain(int fd)
{
	char buf[65536];

	while (!stop) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *mode = "plain", *daemon = "benchd";
	const char *allow = NULL, *deny = NULL;
	const char *tcpd = "/usr/sbin/tcpd", *argv0 = "/bin/true";
	int port = 8080, seconds = 600, opt;
	unsigned long accepted = 0, denied = 0, errors = 0;
	uint64_t *samples = NULL, total_ns = 0;
	size_t nsamples = 0;

	while ((opt = getopt(argc, argv, "a:p:t:m:d:A:D:T:0:")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 't': seconds = atoi(optarg); break;
		case 'm': mode = optarg; break;
		case 'd': daemon = optarg; break;
		case 'A': allow = optarg; break;
		case 'D': deny = optarg; break;
		case 'T': tcpd = optarg; break;
		case '0': argv0 = optarg; break;
		default:
			fprintf(stderr, "usage: bench_server [-a ADDR] [-p PORT] [-t SECONDS] "
				"[-m plain|wrap|tcpd|sink] [-d DAEMON] [-A ALLOW] [-D DENY] "
				"[-T TCPD] [-0 ARGV0]\n");
			return 1;
		}
	}
	int wrap = !strcmp(mode, "wrap"), is_tcpd = !strcmp(mode, "tcpd");
	int sink = !strcmp(mode, "sink");

	if (!wrap && !is_tcpd && !sink && strcmp(mode, "plain")) {
		fprintf(stderr, "bench_server: unknown mode '%s'\n", mode);
		return 1;
	}
	if (wrap) {
		if (!allow || !deny) {
			fprintf(stderr, "bench_server: -m wrap needs -A and -D\n");
			return 1;
		}
		hosts_allow_table = (char *)allow;
		hosts_deny_table = (char *)deny;
		samples = calloc(MAX_SAMPLES, sizeof(*samples));
		if (!samples) {
			perror("bench_server: calloc");
			return 1;
		}
	}

	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	if (is_tcpd)
		signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */

	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };

	if (ls < 0 || inet_pton(AF_INET, addr, &sin.sin_addr) != 1 ||
	    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(ls, (struct sockaddr *)&sin, sizeof(sin)) || listen(ls, 4096)) {
		fprintf(stderr, "bench_server: listen on %s:%d: %s\n", addr, port, strerror(errno));
		return 1;
	}
	printf("ready mode=%s addr=%s port=%d pid=%d\n", mode, addr, port, getpid());
	fflush(stdout);

	uint64_t deadline = now_ns() + (uint64_t)seconds * 1000000000ull;

	while (!stop && now_ns() < deadline) {
		struct pollfd pfd = { .fd = ls, .events = POLLIN };

		if (report) {
			report = 0;
			print_counters(&accepted, &denied, &errors, samples, &nsamples, &total_ns);
		}

		if (poll(&pfd, 1, 200) <= 0)
			continue;

		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(ls, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EINTR && errno != EAGAIN)
				errors++;
			continue;
		}
		accepted++;
		if (wrap) {
			char host[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &peer.sin_addr, host, sizeof(host));
			uint64_t t0 = now_ns();
			int ok = hosts_ctl((char *)daemon, STRING_UNKNOWN, host, STRING_UNKNOWN);
			uint64_t dt = now_ns() - t0;

			total_ns += dt;
			if (nsamples < MAX_SAMPLES)
				samples[nsamples++] = dt;
			if (!ok)
				denied++;
		} else if (is_tcpd) {
			if (run_tcpd(fd, tcpd, argv0))
				errors++;
		} else if (sink) {
			drain(fd);
		}
		close(fd);
	}

	print_counters(&accepted, &denied, &errors, samples, &nsamples, &total_ns);
	free(samples);
	return 0;
}
