/*
 * ident.h - RFC 931/1413 client: ask the client host's identd which user owns
 * a connection (the rfc931 option and user@host patterns), never blocking.
 *
 * A non-blocking TCP connection goes from the server's address (when this
 * host has it; else from any) to the client's port 113, sends
 * "CLIENTPORT , SERVERPORT\r\n" and reads one reply line of at most 1000
 * bytes. The reply is parsed as tcpd does ("%u , %u : USERID :%*[^:]:%255s"):
 * both ports must echo the query, the user is the first blank-delimited word
 * after the third colon, cut to 127 characters like libwrap's request field.
 * The reply is hostile input: a user with any byte outside '!'..'~' is
 * refused (status -EBADMSG, user "unknown") -- never passed on.
 *
 * Use from an epoll loop: add ident_fd(), call ident_process() when it is
 * readable; results are delivered only from ident_process() (and, with
 * -ECANCELED, from ident_close()).
 *
 * Errors: 0 or -errno; nothing is printed.
 */
#ifndef BPFWRAP_IDENT_H
#define BPFWRAP_IDENT_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define IDENT_REPLY_MAX 1000	/* RFC 1413: a reply line is at most 1000 characters */

struct ident_config {
	unsigned timeout_ms;	/* whole exchange; 0 = 10000 (libwrap's rfc931 default) */
	unsigned max_pending;	/* 0 = 64 */
	uint16_t port;		/* identd port; 0 = 113 (tests use another) */
};

struct ident_result {
	const char *client_addr;
	const char *user;	/* the user, or "unknown" */
	int status;		/* 0; -ETIMEDOUT, -ECONNREFUSED, ...; -ENOENT (ERROR reply);
				 * -EBADMSG (malformed, wrong ports, hostile user); -EMSGSIZE; -ECANCELED */
};

typedef void (*ident_cb)(void *arg, const struct ident_result *res);

struct identer;

/* ident_open - an ident client for cfg (NULL = defaults); 0 or -errno */
int ident_open(struct identer **out, const struct ident_config *cfg);

/* ident_close - cancel what is in flight (callbacks get -ECANCELED), free */
void ident_close(struct identer *id);

/* ident_start - ask client_addr's identd about connection client_port -> server_addr:server_port */
int ident_start(struct identer *id, const char *client_addr, uint16_t client_port,
		const char *server_addr, uint16_t server_port, ident_cb cb, void *arg);

/* ident_fd - epoll fd: readable when a query can progress or times out */
int ident_fd(const struct identer *id);

/* ident_process - progress queries, deliver finished ones; returns how many were delivered */
int ident_process(struct identer *id);

/* ident_pending - queries started and not yet delivered */
unsigned ident_pending(const struct identer *id);

/* ident_parse_reply - the user from one reply line for these ports; 0, -ENOENT, -EBADMSG */
int ident_parse_reply(const char *line, unsigned client_port, unsigned server_port, char *user,
		      size_t size);

#endif /* BPFWRAP_IDENT_H */
