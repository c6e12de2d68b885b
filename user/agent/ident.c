/*
 * ident.c - non-blocking RFC 1413 queries in an epoll set, with a timer for
 * their deadlines, and tcpd's reply parsing (ident.h).
 *
 * Errors: 0 or -errno; nothing is printed. Every query ends in exactly one
 * callback.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include "ident.h"
#include "util.h"

#define TIMER_TAG UINT32_MAX

enum state { FREE, CONNECTING, READING, DONE };

struct query {
	enum state state;
	int fd;
	uint64_t deadline;
	uint16_t client_port, server_port;
	char addr[INET6_ADDRSTRLEN + 8];
	char buf[IDENT_REPLY_MAX + 1];
	size_t len;
	char user[POLICY_FIELD_MAX + 1];
	int status;
	ident_cb cb;
	void *arg;
};

struct identer {
	struct ident_config cfg;
	int epfd, timer_fd;
	struct query *queries;
	unsigned pending;
};

/* skip_blanks - past spaces and tabs */
static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* expect - skip blanks, then the literal text (case-insensitive); NULL if absent */
static const char *expect(const char *p, const char *text)
{
	size_t len = strlen(text);

	p = skip_blanks(p);
	return strncasecmp(p, text, len) ? NULL : p + len;
}

/* number - skip blanks, read a decimal port; NULL if none */
static const char *number(const char *p, unsigned *out)
{
	unsigned long v = 0;
	const char *start;

	p = skip_blanks(p);
	for (start = p; *p >= '0' && *p <= '9' && v <= 65535; p++)
		v = v * 10 + (unsigned long)(*p - '0');
	if (p == start || v > 65535)
		return NULL;
	*out = (unsigned)v;
	return p;
}

/* ident_parse_reply - the user from one reply line for these ports; 0, -ENOENT, -EBADMSG */
int ident_parse_reply(const char *line, unsigned client_port, unsigned server_port, char *user,
		      size_t size)
{
	unsigned cport, sport;
	const char *p = line, *end;
	size_t len;

	snprintf(user, size, "unknown");
	if (!(p = number(p, &cport)) || !(p = expect(p, ",")) || !(p = number(p, &sport)) ||
	    !(p = expect(p, ":")))
		return -EBADMSG;
	if (cport != client_port || sport != server_port)
		return -EBADMSG;
	if (expect(p, "ERROR"))
		return -ENOENT;
	if (!(p = expect(p, "USERID")) || !(p = expect(p, ":")))
		return -EBADMSG;
	/* the OS field (with an optional ",charset"): at least one character up to ':' */
	end = strchr(p, ':');
	if (!end || end == p)
		return -EBADMSG;
	/* the user: the first word after the colon, as tcpd's %255s reads it */
	p = end + 1;
	while (*p && isspace((unsigned char)*p))
		p++;
	for (len = 0; p[len] && !isspace((unsigned char)p[len]); len++)
		if ((unsigned char)p[len] < '!' || (unsigned char)p[len] > '~')
			return -EBADMSG;	/* control or non-ASCII byte: hostile, refuse */
	if (!len)
		return -EBADMSG;
	if (len > POLICY_FIELD_MAX)
		len = POLICY_FIELD_MAX;	/* libwrap keeps 127 characters */
	if (len >= size)
		return -EBADMSG;
	memcpy(user, p, len);
	user[len] = 0;
	return 0;
}

/* ident_open - an ident client for cfg (NULL = defaults); 0 or -errno */
int ident_open(struct identer **out, const struct ident_config *cfg)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = TIMER_TAG };
	struct identer *id;
	int err;

	*out = NULL;
	id = calloc(1, sizeof(*id));
	if (!id)
		return -ENOMEM;
	if (cfg)
		id->cfg = *cfg;
	if (!id->cfg.timeout_ms)
		id->cfg.timeout_ms = 10000;
	if (!id->cfg.max_pending)
		id->cfg.max_pending = 64;
	if (!id->cfg.port)
		id->cfg.port = 113;
	id->queries = calloc(id->cfg.max_pending, sizeof(*id->queries));
	id->epfd = epoll_create1(EPOLL_CLOEXEC);
	id->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!id->queries || id->epfd < 0 || id->timer_fd < 0 ||
	    epoll_ctl(id->epfd, EPOLL_CTL_ADD, id->timer_fd, &ev) < 0) {
		err = id->queries ? -errno : -ENOMEM;
		ident_close(id);
		return err;
	}
	*out = id;
	return 0;
}

/* arm - timer at the earliest deadline; at once if a result waits */
static void arm(struct identer *id)
{
	struct itimerspec its = { 0 };
	uint64_t next = 0;

	for (unsigned i = 0; i < id->cfg.max_pending; i++) {
		const struct query *q = &id->queries[i];
		uint64_t when = q->state == DONE ? 1 : q->deadline;

		if (q->state != FREE && (!next || when < next))
			next = when;
	}
	its.it_value.tv_sec = (time_t)(next / 1000);
	its.it_value.tv_nsec = (long)(next % 1000) * 1000000;
	timerfd_settime(id->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* finish - close the connection and keep the result for delivery */
static void finish(struct identer *id, struct query *q, int status)
{
	if (q->fd >= 0) {
		epoll_ctl(id->epfd, EPOLL_CTL_DEL, q->fd, NULL);
		close(q->fd);
		q->fd = -1;
	}
	if (status)
		snprintf(q->user, sizeof(q->user), "unknown");
	q->status = status;
	q->state = DONE;
}

/* to_sockaddr - address text and port into a sockaddr; v4-mapped IPv6 becomes IPv4 */
static int to_sockaddr(const char *text, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
		return -EINVAL;
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		struct in_addr a;

		memcpy(&a, &sin6->sin6_addr.s6_addr[12], 4);
		memset(ss, 0, sizeof(*ss));
		sin->sin_family = AF_INET;
		sin->sin_addr = a;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return 0;
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	*len = sizeof(*sin6);
	return 0;
}

/* ident_start - ask client_addr's identd about connection client_port -> server_addr:server_port */
int ident_start(struct identer *id, const char *client_addr, uint16_t client_port,
		const char *server_addr, uint16_t server_port, ident_cb cb, void *arg)
{
	struct epoll_event ev = { .events = EPOLLOUT };
	struct sockaddr_storage peer, local;
	socklen_t peer_len, local_len;
	struct query *q = NULL;
	int fd;

	if (!id || !client_addr || !cb || strlen(client_addr) >= sizeof(q->addr) ||
	    to_sockaddr(client_addr, id->cfg.port, &peer, &peer_len))
		return -EINVAL;
	for (unsigned i = 0; i < id->cfg.max_pending && !q; i++)
		if (id->queries[i].state == FREE)
			q = &id->queries[i];
	if (!q)
		return -EAGAIN;
	fd = socket(peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* from the server's address, like tcpd, so the client's identd sees the same pair;
	 * if this host does not have it (another namespace), from any address */
	if (server_addr && !to_sockaddr(server_addr, 0, &local, &local_len) &&
	    local.ss_family == peer.ss_family)
		(void)bind(fd, (struct sockaddr *)&local, local_len);
	memset(q, 0, sizeof(*q));
	q->fd = fd;
	q->cb = cb;
	q->arg = arg;
	q->client_port = client_port;
	q->server_port = server_port;
	q->deadline = monotonic_ms() + id->cfg.timeout_ms;
	snprintf(q->addr, sizeof(q->addr), "%s", client_addr);
	q->state = CONNECTING;
	id->pending++;
	ev.data.u32 = (uint32_t)(q - id->queries);
	if (epoll_ctl(id->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		finish(id, q, -errno);
	else if (connect(fd, (struct sockaddr *)&peer, peer_len) < 0 && errno != EINPROGRESS)
		finish(id, q, -errno);	/* delivered from ident_process, like every result */
	arm(id);
	return 0;
}

/* step - progress one query on an epoll event */
static void step(struct identer *id, struct query *q, uint32_t events)
{
	if (q->state == CONNECTING) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)(q - id->queries) };
		char line[32];
		int err = 0, n;
		socklen_t len = sizeof(err);

		if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			finish(id, q, -err);
			return;
		}
		n = snprintf(line, sizeof(line), "%u , %u\r\n", q->client_port, q->server_port);
		if (send(q->fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
			finish(id, q, -EIO);	/* 16 bytes on a fresh connection: all or broken */
			return;
		}
		q->state = READING;
		epoll_ctl(id->epfd, EPOLL_CTL_MOD, q->fd, &ev);
		return;
	}
	if (q->state == READING) {
		ssize_t n = recv(q->fd, q->buf + q->len, IDENT_REPLY_MAX - q->len, 0);
		char *nl, *end;

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				finish(id, q, -errno);
			return;
		}
		q->len += (size_t)n;
		q->buf[q->len] = 0;
		nl = memchr(q->buf, '\n', q->len);
		if (!nl && n > 0) {
			if (q->len >= IDENT_REPLY_MAX)
				finish(id, q, -EMSGSIZE);
			return;	/* more to come */
		}
		/* a whole line, or the peer closed after a last line without newline */
		end = nl ? nl : q->buf + q->len;
		if (memchr(q->buf, 0, (size_t)(end - q->buf))) {
			finish(id, q, -EBADMSG);	/* NUL byte inside the line */
			return;
		}
		*end = 0;
		finish(id, q, ident_parse_reply(q->buf, q->client_port, q->server_port, q->user,
						sizeof(q->user)));
	}
}

/* deliver - hand finished queries to their callbacks */
static int deliver(struct identer *id)
{
	int n = 0;

	for (unsigned i = 0; i < id->cfg.max_pending; i++) {
		struct query *q = &id->queries[i];
		struct ident_result res;

		if (q->state != DONE)
			continue;
		res = (struct ident_result){ q->addr, q->user, q->status };
		q->state = FREE;
		id->pending--;
		n++;
		q->cb(q->arg, &res);
	}
	return n;
}

/* ident_process - progress queries, deliver finished ones; returns how many were delivered */
int ident_process(struct identer *id)
{
	struct epoll_event evs[32];
	uint64_t expirations, now;
	int n;

	if (!id)
		return -EINVAL;
	n = epoll_wait(id->epfd, evs, 32, 0);
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u32 == TIMER_TAG) {
			if (read(id->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
				return -errno;
			continue;
		}
		step(id, &id->queries[evs[i].data.u32], evs[i].events);
	}
	now = monotonic_ms();
	for (unsigned i = 0; i < id->cfg.max_pending; i++) {
		struct query *q = &id->queries[i];

		if ((q->state == CONNECTING || q->state == READING) && now >= q->deadline)
			finish(id, q, -ETIMEDOUT);
	}
	n = deliver(id);
	arm(id);
	return n;
}

/* ident_close - cancel what is in flight (callbacks get -ECANCELED), free */
void ident_close(struct identer *id)
{
	if (!id)
		return;
	for (unsigned i = 0; id->queries && i < id->cfg.max_pending; i++) {
		struct query *q = &id->queries[i];

		if (q->state == CONNECTING || q->state == READING)
			finish(id, q, -ECANCELED);
	}
	if (id->queries)
		deliver(id);
	if (id->epfd >= 0)
		close(id->epfd);
	if (id->timer_fd >= 0)
		close(id->timer_fd);
	free(id->queries);
	free(id);
}

/* ident_fd - epoll fd: readable when a query can progress or times out */
int ident_fd(const struct identer *id)
{
	return id ? id->epfd : -EINVAL;
}

/* ident_pending - queries started and not yet delivered */
unsigned ident_pending(const struct identer *id)
{
	return id->pending;
}
