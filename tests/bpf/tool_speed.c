/*
 * tool_speed.c - measure what issue 5 targets (root): the phases of a
 * policy build (parse, compile, BPF object load, policy load into the maps)
 * and the kernel's cost per decision, as BPF_PROG_TEST_RUN of the test twin
 * with `repeat` on a TCP SYN (counters and events on, like real traffic).
 *
 *   tool_speed DIR [REPEAT [ADDR...]]
 *
 * DIR holds hosts.allow and hosts.deny. SPEED_RELOADS=N also times N more
 * policy loads (each a flip of the generation). Each ADDR (default: the first
 * address of hosts.allow and 127.0.1.1) is decided for daemon "sshd" and
 * the per-run ns printed, median of 7 batches of REPEAT runs.
 *
 * Errors: prints what failed to stderr and exits 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfwrap.skel.h"
#include "compile.h"
#include "kernel_match.h"
#include "loader.h"
#include "policy.h"

/* now_s - CLOCK_MONOTONIC seconds */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* cmp_double - qsort order */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* reload_times - n more loads of cp (each a flip): print median, p99, max ms */
static int reload_times(struct loader *ld, const struct compiled_policy *cp, int n)
{
	double *ms;
	int err = 0;

	if (n <= 0)
		return 0;
	ms = calloc((size_t)n, sizeof(*ms));
	if (!ms)
		return -ENOMEM;
	for (int i = 0; i < n && !err; i++) {
		double t = now_s();

		err = loader_load_policy(ld, cp);
		ms[i] = (now_s() - t) * 1e3;
	}
	if (!err) {
		qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
		printf("reload x%d: median %.2f ms  p99 %.2f ms  max %.2f ms\n", n, ms[n / 2],
		       ms[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], ms[n - 1]);
	}
	free(ms);
	return err;
}

/* cmp_u32 - qsort order */
static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* run_syn - `repeat` test runs of the twin on the SYN in pkt as sshd's
 * listener; the duration per run in *ns; -EPROTO if the verdict is not res's */
static int run_syn(int prog_fd, uint8_t *pkt, size_t len, uint32_t repeat,
		   const struct km_result *res, uint32_t *ns)
{
	LIBBPF_OPTS(bpf_test_run_opts, o);
	struct __sk_buff ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.cb[0] = 1;
	ctx.cb[1] = BPFWRAP_TEST_STATE_LISTEN;
	ctx.cb[2] = 6;
	ctx.cb[3] = BPFWRAP_TEST_F_NO_OUTPUT;
	o.data_in = pkt;
	o.data_size_in = (uint32_t)len;
	o.ctx_in = &ctx;
	o.ctx_size_in = sizeof(ctx);
	o.repeat = repeat;
	if (bpf_prog_test_run_opts(prog_fd, &o))
		return -errno;
	if ((int)o.retval != res->retval)
		return -EPROTO;	/* not the decision kernel_match saw */
	*ns = o.duration;
	return 0;
}

/* run_cold - median ns of single runs, each after reading 64 MiB (caches cold) */
static int run_cold(int prog_fd, uint8_t *pkt, size_t len, const struct km_result *res,
		    uint32_t *ns)
{
	volatile uint64_t sink;
	const size_t big = 64u << 20;
	uint64_t *buf = malloc(big);
	uint32_t runs[101];

	if (!buf)
		return -ENOMEM;
	memset(buf, 1, big);
	for (int i = 0; i < 101; i++) {
		uint64_t sum = 0;
		int err;

		for (size_t k = 0; k < big / 8; k += 8)
			sum += buf[k];
		sink = sum;
		(void)sink;
		err = run_syn(prog_fd, pkt, len, 1, res, &runs[i]);
		if (err) {
			free(buf);
			return err;
		}
	}
	free(buf);
	qsort(runs, 101, sizeof(runs[0]), cmp_u32);
	*ns = runs[50];
	return 0;
}

/* run_cost - median ns per run of the twin on a SYN from addr (sshd's socket) */
static int run_cost(struct loader *ld, const char *addr, uint32_t repeat, uint32_t *ns,
		    struct km_result *res)
{
	struct bpfwrap_bpf *s = loader_skel(ld);
	struct kernel_match *km;
	struct sock_info si;
	uint8_t pkt[14 + 20 + 20];
	uint32_t runs[7], idx = 0, src;
	int err;

	if (inet_pton(AF_INET, addr, &src) != 1)
		return -EINVAL;
	/* One quiet query through kernel_match gives the decision. */
	err = kernel_match_new(ld, &km);
	if (err)
		return err;
	err = kernel_match_addr(km, "sshd", addr, res);
	kernel_match_free(km);
	if (err)
		return err;
	memset(&si, 0, sizeof(si));
	strcpy(si.daemon.name, "sshd");
	strcpy(si.comm, "sshd");
	if (bpf_map_update_elem(bpf_map__fd(s->maps.test_names), &idx, &si, BPF_ANY))
		return -errno;
	memset(pkt, 0, sizeof(pkt));
	pkt[12] = 0x08;
	pkt[14] = 0x45;
	pkt[14 + 3] = 40;
	pkt[14 + 8] = 64;
	pkt[14 + 9] = 6;
	memcpy(pkt + 14 + 12, &src, 4);
	pkt[14 + 16] = 127;
	pkt[14 + 19] = 1;
	pkt[34 + 0] = 0x9c;	/* sport 40000 */
	pkt[34 + 1] = 0x40;
	pkt[34 + 3] = 22;
	pkt[34 + 12] = 5 << 4;
	pkt[34 + 13] = 0x02;	/* SYN */
	if (getenv("SPEED_COLD"))	/* one run after evicting the caches, 101 times */
		return run_cold(bpf_program__fd(s->progs.bpfwrap_decide_test), pkt, sizeof(pkt), res,
				ns);
	for (int i = 0; i < 7; i++) {
		err = run_syn(bpf_program__fd(s->progs.bpfwrap_decide_test), pkt, sizeof(pkt),
			      repeat, res, &runs[i]);
		if (err)
			return err;
	}
	qsort(runs, 7, sizeof(runs[0]), cmp_u32);
	*ns = runs[3];
	return 0;
}

/* first_allow_addr - the address of the first hosts.allow line "X : a.b.c.d[/n]" */
static int first_allow_addr(const char *path, char *out, size_t size)
{
	char line[256], *p, *q;
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (!p || !(p = strchr(line, ':')))
		return -EINVAL;
	for (p++; *p == ' '; p++)
		;
	q = p + strcspn(p, "/ \n");
	*q = 0;
	if ((size_t)snprintf(out, size, "%s", p) >= size)
		return -ENAMETOOLONG;
	return 0;
}

int main(int argc, char **argv)
{
	struct loader_opts lo = { .pin_dir = NULL };
	struct compiled_policy *cp = NULL;
	struct policy *pol = NULL;
	struct loader *ld = NULL;
	char allow[4096], deny[4096], first[64];
	const char *defaults[2];
	const char *const *addrs;
	uint32_t repeat = 100000;
	int n_addrs, err;
	double t0, t1, t2, t3, t4;

	if (argc < 2) {
		fprintf(stderr, "usage: tool_speed DIR [REPEAT [ADDR...]]\n");
		return 2;
	}
	snprintf(allow, sizeof(allow), "%s/hosts.allow", argv[1]);
	snprintf(deny, sizeof(deny), "%s/hosts.deny", argv[1]);
	if (argc > 2)
		repeat = (uint32_t)strtoul(argv[2], NULL, 10);
	if (getenv("SPEED_DEDUP_NS"))	/* 1: every denied run sends an event */
		lo.dedup_ns = strtoull(getenv("SPEED_DEDUP_NS"), NULL, 10);
	t0 = now_s();
	err = policy_load(&pol, allow, deny);
	if (err) {
		fprintf(stderr, "policy_load: %s\n", strerror(-err));
		return 1;
	}
	t1 = now_s();
	err = compile_policy(pol, NULL, 0, &cp);
	if (err) {
		fprintf(stderr, "compile_policy: %s\n", strerror(-err));
		return 1;
	}
	t2 = now_s();
	/* SPEED_COMPILE_LOOPS=N: compile N more times (for a profiler) */
	for (long k = getenv("SPEED_COMPILE_LOOPS") ? atol(getenv("SPEED_COMPILE_LOOPS")) : 0;
	     k > 0; k--) {
		struct compiled_policy *again = NULL;

		if (compile_policy(pol, NULL, 0, &again) == 0)
			compiled_policy_free(again);
	}
	err = loader_open(&lo, &ld);
	if (err) {
		fprintf(stderr, "loader_open: %s\n", strerror(-err));
		return 1;
	}
	t3 = now_s();
	err = loader_load_policy(ld, cp);
	if (err) {
		fprintf(stderr, "loader_load_policy: %s\n", strerror(-err));
		return 1;
	}
	t4 = now_s();
	printf("entries v4 %zu v6 %zu daemons %zu rules %u\n", cp->n_v4, cp->n_v6, cp->n_daemons,
	       cp->n_rules);
	printf("parse %.3f s  compile %.3f s  open %.3f s  load %.3f s  compile+load %.3f s\n",
	       t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t1);
	fflush(stdout);
	/* SPEED_RELOADS=N: load the same policy N more times (flips) */
	err = reload_times(ld, cp, getenv("SPEED_RELOADS") ? atoi(getenv("SPEED_RELOADS")) : 0);
	if (err) {
		fprintf(stderr, "loader_load_policy: %s\n", strerror(-err));
		return 1;
	}

	if (argc > 3) {
		addrs = (const char *const *)argv + 3;
		n_addrs = argc - 3;
	} else {
		if (first_allow_addr(allow, first, sizeof(first)))
			strcpy(first, "192.0.2.1");
		defaults[0] = first;
		defaults[1] = "127.0.1.1";
		addrs = defaults;
		n_addrs = 2;
	}
	for (int i = 0; i < n_addrs && repeat; i++) {
		struct km_result r;
		uint32_t ns = 0;

		err = run_cost(ld, addrs[i], repeat, &ns, &r);
		if (err) {
			fprintf(stderr, "%s: %s\n", addrs[i], strerror(-err));
			return 1;
		}
		printf("%-16s %s rule %u: %u ns per run\n", addrs[i],
		       r.final == BPFWRAP_ALLOW ? "allow" : r.final == BPFWRAP_DENY ? "deny" : "ask",
		       r.rule_id, ns);
	}
	loader_close(ld);
	compiled_policy_free(cp);
	policy_free(pol);
	return 0;
}
