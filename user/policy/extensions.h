/*
 * extensions.h - the parser of bpfwrap's extensions file (docs/extensions.md;
 * /etc/bpfwrap.conf, never hosts.allow/hosts.deny, which libwrap-linked
 * programs read and would reject). Pure: it builds struct guard_conf from
 * text; user/kernel/guard.c compiles that into the guard maps.
 *
 *   trap [TIME]        a connection attempt bans the client from every
 *                      service for TIME (default 1h; "forever" = until
 *                      `bpfwrap unban`), before the policy is consulted;
 *                      TCP once the handshake completed (the client proved
 *                      its address), UDP only with `unproven`
 *   unproven           (with trap) a UDP datagram bans its source, which
 *                      may be forged
 *   per_source N       at most N established connections per client address
 *                      (IPv6: per /64)
 *   source_prefix v4/N v6/M  per_source counts clients per these prefixes
 *   instances N        at most N established connections to the daemon
 *   cps RATE[/BURST]   at most RATE new connections per second, BURST at once
 *   reject | drop      deny with RST / ICMP port unreachable, or silently
 *
 * Line syntax: `daemon_list : client_list : option [: option]...`, first
 * matching line wins (like hosts.allow). daemon_list: daemon names, ALL,
 * PORT/tcp, PORT/udp, LO-HI/tcp (trap ports: also ports nothing listens
 * on). client_list: ALL, addresses and prefixes (a.b.c.d, a.b.c.d/len,
 * a.b.c.d/m.m.m.m, a.b.c., [v6], [v6]/len), one EXCEPT.
 *
 * Errors: functions return 0 or -errno and put diagnostics in the parsed
 * file (file:line:col); a file with errors is never loaded (the rules in
 * force stay). Nothing here prints.
 */
#ifndef BPFWRAP_USER_EXTENSIONS_H
#define BPFWRAP_USER_EXTENSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpfwrap_guard.h"

#define GUARD_DEFAULT_CONF "/etc/bpfwrap.conf"
#define GUARD_DEFAULT_TRAP_S 3600	/* `trap` without a time */
#define GUARD_PORT_RANGE_MAX 1024	/* ports one LO-HI item may name */

/* One diagnostic of the extensions file. */
struct guard_diag {
	unsigned line, col;
	bool error;		/* false: warning */
	char msg[200];
};

/* A client prefix: 16 bytes (IPv4 v4-mapped), len in bits of 128. */
struct guard_prefix {
	uint8_t addr[16];
	uint8_t len;
	bool except;		/* after EXCEPT */
};

struct guard_ports_item {
	uint16_t lo, hi;	/* host order, inclusive */
	uint8_t proto;		/* IPPROTO_TCP / IPPROTO_UDP */
};

/* One line of the extensions file. */
struct guard_conf_rule {
	unsigned line;
	bool all_daemons;
	char (*daemons)[BPFWRAP_DAEMON_NAME_MAX];	/* lower-case names */
	size_t n_daemons;
	struct guard_ports_item *ports;
	size_t n_ports;
	bool all_clients;
	struct guard_prefix *clients;
	size_t n_clients;
	struct guard_rule opt;	/* flags and limits as the kernel takes them (line set) */
};

struct guard_conf {
	char name[256];		/* file name used in diagnostics */
	struct guard_conf_rule *rules;
	size_t n_rules;
	struct guard_diag *diags;
	size_t n_diags;
	size_t n_errors;
};

/* guard_conf_parse - parse an extensions file's text; diagnostics go into *out */
int guard_conf_parse(const char *text, size_t len, const char *name, struct guard_conf **out);

/* guard_conf_load - read and parse a file (-ENOENT if missing; a FIFO, a socket or a device:
 * -EINVAL without opening it, a directory -EISDIR, bigger than 4 MiB -EFBIG; readfile.h) */
int guard_conf_load(const char *path, struct guard_conf **out);

/* guard_conf_free - free a parsed file */
void guard_conf_free(struct guard_conf *c);

/* guard_conf_match - the 1-based line index of the first rule for (daemon, client), 0 none
 * (the reference for the kernel's lookup; client 16 bytes, IPv4 v4-mapped) */
size_t guard_conf_match(const struct guard_conf *c, const char *daemon, const uint8_t addr[16]);

/* guard_parse_prefix - "a.b.c.d[/len|/mask]", "a.b.c.", "[v6][/len]", "v6[/len]" into p */
int guard_parse_prefix(const char *text, struct guard_prefix *p);

/* guard_parse_duration - "90", "90s", "15m", "2h", "1d", "forever" (0) into seconds */
int guard_parse_duration(const char *text, uint32_t *seconds);

/* guard_prefix_has - does prefix p contain the 16-byte address a (or prefix of length >= p->len) */
bool guard_prefix_has(const struct guard_prefix *p, const uint8_t a[16]);

/* guard_addr_text - a 16-byte client address as text (IPv4 for v4-mapped) into buf; buf */
const char *guard_addr_text(const uint8_t a[16], char *buf, size_t size);

#endif /* BPFWRAP_USER_EXTENSIONS_H */
