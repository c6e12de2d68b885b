/*
 * bench_stats.c - keep the kernel's BPF run-time statistics on while it runs
 * (BPF_ENABLE_STATS: run_time_ns and run_cnt of every program), and off
 * again as soon as it exits, however it exits: the kernel counts the open
 * file descriptor, so nothing has to be restored by hand (unlike the
 * kernel.bpf_stats_enabled sysctl, which it leaves untouched).
 *
 * Usage: bench_stats [-t MAXSECONDS]   (default 900)
 * Prints "ready" when the statistics are on; exits on SIGTERM/SIGINT or
 * after MAXSECONDS.
 *
 * Errors: if the kernel refuses, exits 1 with the reason on stderr.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

static volatile sig_atomic_t stop;

/* on_signal - end the wait */
static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	int secs = 900, opt;

	while ((opt = getopt(argc, argv, "t:")) != -1) {
		if (opt != 't') {
			fprintf(stderr, "usage: bench_stats [-t MAXSECONDS]\n");
			return 2;
		}
		secs = atoi(optarg);
	}
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);

	if (fd < 0) {
		fprintf(stderr, "bench_stats: BPF_ENABLE_STATS: %s\n", strerror(-fd));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; i < secs * 10 && !stop; i++)
		usleep(100000);
	close(fd);
	return 0;
}
