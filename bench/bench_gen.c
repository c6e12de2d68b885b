/*
 * bench_gen.c - generate the benchmark's policies: N rules of the form
 * `ALL : a.b.c.d/len`, the same set for every variant.
 *
 * Usage: bench_gen -n RULES -o DIR [-s SEED]
 *
 * Writes DIR/hosts.allow: RULES-1 pseudo-random IPv4 prefixes (half /32,
 * a third /24, the rest /16../23; first octet never 0, 127 or >= 224, the
 * net part masked as libwrap requires), then `ALL : 127.0.0.0/24` last, so
 * the benchmark clients (127.0.0.x) are allowed by the last line (libwrap
 * reads every line before it) and, in the compiled table, by their most
 * specific entry; DIR/hosts.deny: `ALL : ALL` (everything else, e.g. the
 * flood sources 127.0.1.x, is denied); DIR/nft.elements: the same RULES
 * prefixes, comma-separated, for an nftables interval set.
 *
 * Errors: usage errors exit 2, write errors exit 1 with a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static uint64_t rng_state = 88172645463325252ull;

/* rnd - xorshift64: deterministic for a seed */
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* open_out - fopen DIR/NAME for writing, or exit 1 */
static FILE *open_out(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
		fprintf(stderr, "bench_gen: path too long\n");
		exit(1);
	}
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	return f;
}

/* close_out - fclose, or exit 1 on a write error */
static void close_out(FILE *f)
{
	if (ferror(f) | fclose(f)) {
		perror("bench_gen: write");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	long n = 0;
	const char *dir = NULL;
	int opt;

	while ((opt = getopt(argc, argv, "n:o:s:")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case 'o': dir = optarg; break;
		case 's': rng_state ^= strtoull(optarg, NULL, 0) * 0x9e3779b97f4a7c15ull; break;
		default: goto usage;
		}
	}
	if (n < 1 || !dir)
		goto usage;

	FILE *allow = open_out(dir, "hosts.allow");
	FILE *deny = open_out(dir, "hosts.deny");
	FILE *nft = open_out(dir, "nft.elements");

	for (long i = 0; i < n - 1; i++) {
		uint32_t a, r = (uint32_t)(rnd() % 6);
		int len = r < 3 ? 32 : r < 5 ? 24 : 16 + (int)(rnd() % 8);

		do
			a = (uint32_t)rnd();
		while ((a >> 24) == 0 || (a >> 24) == 127 || (a >> 24) >= 224);
		a &= len == 32 ? ~0u : ~((1u << (32 - len)) - 1);
		fprintf(allow, "ALL : %u.%u.%u.%u/%d\n", a >> 24, (a >> 16) & 255,
			(a >> 8) & 255, a & 255, len);
		fprintf(nft, "%u.%u.%u.%u/%d,\n", a >> 24, (a >> 16) & 255,
			(a >> 8) & 255, a & 255, len);
	}
	fprintf(allow, "ALL : 127.0.0.0/24\n");
	fprintf(nft, "127.0.0.0/24\n");
	fprintf(deny, "ALL : ALL\n");
	close_out(allow);
	close_out(deny);
	close_out(nft);
	return 0;
usage:
	fprintf(stderr, "usage: bench_gen -n RULES -o DIR [-s SEED]\n");
	return 2;
}
