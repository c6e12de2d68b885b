/*
 * bans.c - the `bpfwrap bans` and `bpfwrap unban` commands: list the bans
 * that trap rules of the extensions file made (the pinned guard_bans and
 * guard_bans_unproven maps of `bpfwrap run --extensions`) and the guard's
 * counters, and remove bans by address or prefix.
 *
 * Errors: each command reports once on stderr and returns its exit status
 * (0 done, 1 nothing unbanned or a map error, 2 usage, 3 no ban map).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cli.h"
#include "extensions.h"
#include "guard.h"
#include "loader.h"

/* boottime_ns - CLOCK_BOOTTIME, the clock of the ban times */
static uint64_t boottime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The two ban maps: bans of clients that proved their address, and those
 * of `unproven` UDP traps. */
static const char *const ban_maps[] = { "guard_bans", "guard_bans_unproven" };
#define N_BAN_MAPS (sizeof(ban_maps) / sizeof(ban_maps[0]))

/* open_bans - a pinned ban map of a pin dir */
static int open_bans(const char *pin_dir, const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (guard_pin_path(path, sizeof(path), pin_dir, name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

/* bans_args - --pin-dir and at most `want` positional arguments */
static int bans_args(int argc, char **argv, const char **pin_dir, const char **arg, bool want,
		     const char *usage)
{
	*pin_dir = LOADER_PIN_DIR;
	*arg = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--pin-dir") && i + 1 < argc) {
			*pin_dir = argv[++i];
		} else if (!strncmp(argv[i], "--pin-dir=", 10)) {
			*pin_dir = argv[i] + 10;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("%s", usage);
			return 0;
		} else if (want && !*arg && argv[i][0] != '-') {
			*arg = argv[i];
		} else {
			fprintf(stderr, "%s", usage);
			return 2;
		}
	}
	if (want && !*arg) {
		fprintf(stderr, "%s", usage);
		return 2;
	}
	return -1;
}

/* print_guard_stats - the guard's counters (summed over CPUs), one line after
 * prefix; nothing if absent */
void print_guard_stats(const char *pin_dir, const char *prefix)
{
	static const char *const names[GUARD_STAT_MAX] = {
		"refused_banned", "trap_hits", "refused_per_source", "refused_instances",
		"refused_cps", "rejected", "revoked", "map_full", "trap_packets", "bans_refused",
		"unproven_bans",
	};
	char path[PATH_MAX];
	int ncpu = libbpf_num_possible_cpus(), fd;
	uint64_t *vals;

	if (ncpu <= 0 || guard_pin_path(path, sizeof(path), pin_dir, "guard_stats"))
		return;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (vals) {
		printf("%s", prefix);
		for (uint32_t k = 0; k < GUARD_STAT_MAX; k++) {
			uint64_t sum = 0;

			if (bpf_map_lookup_elem(fd, &k, vals) == 0)
				for (int c = 0; c < ncpu; c++)
					sum += vals[c];
			printf(" %s=%llu", names[k], (unsigned long long)sum);
		}
		printf("\n");
		free(vals);
	}
	close(fd);
}

/* list_bans - print the bans in force of one map; how many, or -errno */
static int list_bans(int fd, bool unproven, uint64_t now)
{
	struct guard_addr {
		uint8_t a[16];
	} key, next, *prev = NULL;
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int n = 0;

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return -errno;
	for (uint64_t i = 0; i < 2ull * info.max_entries && bpf_map_get_next_key(fd, prev, &next) == 0;
	     i++) {
		struct guard_ban b;
		char addr[INET6_ADDRSTRLEN], left[32], age[32];

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &b) < 0)
			continue;
		if (b.expires_ns && b.expires_ns <= now)
			continue;	/* expired: removed on its next hit or by the agent's sweep */
		if (b.expires_ns)
			snprintf(left, sizeof(left), "%llus",
				 (unsigned long long)((b.expires_ns - now + 999999999ull) / 1000000000ull));
		else
			snprintf(left, sizeof(left), "never");
		snprintf(age, sizeof(age), "%llus",
			 (unsigned long long)(now > b.since_ns ? (now - b.since_ns) / 1000000000ull : 0));
		printf("%-40s %10s %10llu %10s  %u/%s line %u%s\n",
		       guard_addr_text(key.a, addr, sizeof(addr)), left, (unsigned long long)b.hits, age,
		       ntohs(b.port), b.proto == IPPROTO_UDP ? "udp" : "tcp", b.line,
		       unproven ? " (unproven)" : "");
		n++;
	}
	return n;
}

/* cmd_bans - list the bans in force with expiry and hit counts */
int cmd_bans(int argc, char **argv)
{
	static const char usage[] =
		"usage: bpfwrap bans [--pin-dir DIR]\n\n"
		"List the clients banned by trap rules (extensions file): address, time left,\n"
		"refused attempts, age, and the trap that fired; then the guard's counters.\n";
	const char *pin_dir, *unused;
	uint64_t now = boottime_ns();
	int rc, n = 0;

	rc = bans_args(argc, argv, &pin_dir, &unused, false, usage);
	if (rc >= 0)
		return rc;
	printf("%-40s %10s %10s %10s  %s\n", "CLIENT", "EXPIRES", "HITS", "AGE", "TRAP");
	for (size_t m = 0; m < N_BAN_MAPS; m++) {
		int fd = open_bans(pin_dir, ban_maps[m]), got;

		if (fd < 0 && m == 0) {
			fprintf(stderr, "bpfwrap: no ban map in %s (%s): is `bpfwrap run --extensions` "
					"running there?\n", pin_dir, strerror(-fd));
			return 3;
		}
		if (fd < 0)
			continue;	/* an older bpfwrap's pins: no unproven bans */
		got = list_bans(fd, m == 1, now);
		close(fd);
		if (got < 0) {
			fprintf(stderr, "bpfwrap: cannot read %s: %s\n", ban_maps[m], strerror(-got));
			return 1;
		}
		n += got;
	}
	printf("%d ban(s)\n", n);
	print_guard_stats(pin_dir, "counters:");
	return 0;
}

/* in_prefix - a ban key inside the prefix given to unban */
static bool in_prefix(const void *key, const void *arg)
{
	return guard_prefix_has(arg, key);
}

/* cmd_unban - remove the bans of an address or of every address in a prefix */
int cmd_unban(int argc, char **argv)
{
	static const char usage[] = "usage: bpfwrap unban [--pin-dir DIR] ADDRESS|PREFIX\n\n"
				    "Remove bans: one address (192.0.2.7, 2001:db8::7) or every "
				    "address in a prefix\n(192.0.2.0/24, [2001:db8::]/32).\n";
	struct guard_prefix p;
	const char *pin_dir, *arg;
	int fd, rc, n;

	rc = bans_args(argc, argv, &pin_dir, &arg, true, usage);
	if (rc >= 0)
		return rc;
	if (guard_parse_prefix(arg, &p)) {
		fprintf(stderr, "bpfwrap: unban: bad address or prefix '%s'\n", arg);
		return 2;
	}
	n = 0;
	for (size_t m = 0; m < N_BAN_MAPS; m++) {
		int got;

		fd = open_bans(pin_dir, ban_maps[m]);
		if (fd < 0 && m == 0) {
			fprintf(stderr, "bpfwrap: no ban map in %s (%s)\n", pin_dir, strerror(-fd));
			return 3;
		}
		if (fd < 0)
			continue;
		got = guard_delete_keys_where(fd, 16, in_prefix, &p);
		close(fd);
		if (got < 0) {
			fprintf(stderr, "bpfwrap: unban %s: %s\n", arg, strerror(-got));
			return 1;
		}
		n += got;
	}
	printf("bpfwrap: unbanned %d address(es) in %s\n", n, arg);
	return n ? 0 : 1;
}
