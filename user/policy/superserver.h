/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * superserver.h - which daemon name tcpd would have seen for each service of
 * a super-server, from inetd.conf and xinetd's configuration: inetd runs
 * `server argv0 args...` (with tcpd: `/usr/sbin/tcpd /usr/sbin/in.telnetd`),
 * and tcpd names the daemon by argv[0]'s basename; xinetd names it by the
 * basename of `server`, by `libwrap = NAME` if given, and by the service's
 * name for internal and redirected services.
 *
 * Pure text parsing: the caller reads the files (xinetd's includedir too)
 * and turns service names into ports (getservbyname). Lines that cannot be
 * used (rpc services, internal inetd services, disabled xinetd services,
 * garbage) are skipped; nothing here prints.
 */
#ifndef BPFWRAP_SUPERSERVER_H
#define BPFWRAP_SUPERSERVER_H

#include <stddef.h>
#include <stdint.h>

#define SUPERSERVER_NAME_MAX 64

/* One service a super-server listens for. */
struct superserver_service {
	char service[SUPERSERVER_NAME_MAX];	/* /etc/services name, or a port number */
	uint8_t proto;				/* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t port;				/* from the file (xinetd `port =`), else 0 */
	char daemon[SUPERSERVER_NAME_MAX];	/* what tcpd would call it */
};

/* A growing list of services. */
struct superserver_list {
	struct superserver_service *v;
	size_t n, cap;
};

/* superserver_parse_inetd - the services of an inetd.conf text, appended to l */
int superserver_parse_inetd(const char *text, struct superserver_list *l);

/* superserver_parse_xinetd - the services of one xinetd file, appended to l;
 * each `includedir DIR` found is passed to include(dir, ctx) */
int superserver_parse_xinetd(const char *text, struct superserver_list *l,
			     void (*include)(const char *dir, void *ctx), void *ctx);

/* superserver_list_free - release a list */
void superserver_list_free(struct superserver_list *l);

#endif /* BPFWRAP_SUPERSERVER_H */
