/*
 * resolve.h - the client's host name as tcpd's sock_hostname() finds it, with
 * c-ares, never blocking.
 *
 * reverse lookup (PTR) of the address, then forward lookup of that name; the
 * name is kept only if the forward answer holds the address and does not
 * lead elsewhere by CNAME (tcpd: "host name/name mismatch") -- else it is
 * "paranoid". No PTR, or the reverse lookup failing or timing out: "unknown".
 * A v4-mapped IPv6 address (::ffff:a.b.c.d) is looked up as IPv4.
 *
 * Host names come from the network, so the name must pass resolve_name_ok():
 * 1..127 characters (libwrap keeps 127; a longer name could only match after
 * being cut, which tcpd's forward check then fails), letters, digits, '-',
 * '_' and '.', no empty label. A PTR answer that fails this, or that c-ares
 * itself rejects as malformed (ARES_EBADRESP: c-ares >= 1.17.2 refuses names
 * with shell or control characters), gives "paranoid", not "unknown": an
 * address whose owner publishes a hostile name is treated like one whose
 * double-reverse check failed, and a rule naming PARANOID catches both.
 *
 * Use from an epoll loop: add resolve_fd() (an epoll set holding c-ares'
 * sockets and a timer for its timeouts), call resolve_process() when it is
 * readable. Results are delivered ONLY from resolve_process() (and from
 * resolve_close(), with status -ECANCELED), never from inside resolve_start().
 *
 * Errors: 0 or -errno; nothing is printed.
 */
#ifndef BPFWRAP_RESOLVE_H
#define BPFWRAP_RESOLVE_H

#include <stdbool.h>
#include <netinet/in.h>

#include "policy.h"

struct resolve_config {
	const char *servers;	/* "127.0.0.1:5353,[::1]:53"; NULL = /etc/resolv.conf */
	unsigned timeout_ms;	/* per try; 0 = 2000 */
	unsigned tries;		/* 0 = 2 */
	unsigned max_pending;	/* lookups in flight; 0 = 256 */
	bool dns_only;		/* skip /etc/hosts (tests) */
};

struct resolve_result {
	const char *addr;	/* the address as given to resolve_start */
	const char *name;	/* host name, "unknown" or "paranoid" */
	int status;		/* 0; -ETIMEDOUT (DNS did not answer); -ECANCELED (closed) */
	const char *reason;	/* why unknown/paranoid, for a log line; "" when the name is good */
};

typedef void (*resolve_cb)(void *arg, const struct resolve_result *res);

struct resolver;

/* resolve_open - a resolver (c-ares channel) for cfg (NULL = defaults); 0, -EINVAL, -ENOMEM, -EIO */
int resolve_open(struct resolver **out, const struct resolve_config *cfg);

/* resolve_close - cancel what is in flight (callbacks get -ECANCELED), free */
void resolve_close(struct resolver *r);

/* resolve_start - look up the name of address text addr; 0, -EINVAL (not an address), -EAGAIN (full) */
int resolve_start(struct resolver *r, const char *addr, resolve_cb cb, void *arg);

/* resolve_fd - epoll fd: readable when c-ares has input or a timeout is due */
int resolve_fd(const struct resolver *r);

/* resolve_process - drive c-ares and deliver finished lookups; returns how many were delivered */
int resolve_process(struct resolver *r);

/* resolve_pending - lookups started and not yet delivered */
unsigned resolve_pending(const struct resolver *r);

/* resolve_name_ok - a host name bpfwrap accepts from DNS (see above) */
bool resolve_name_ok(const char *name);

#endif /* BPFWRAP_RESOLVE_H */
