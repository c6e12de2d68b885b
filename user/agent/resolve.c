/*
 * resolve.c - asynchronous double-reverse host name lookup with c-ares
 * (resolve.h): PTR, validation, forward lookup, address and CNAME check.
 *
 * Errors: 0 or -errno; nothing is printed. Results are queued in their slot
 * and handed to the caller from resolve_process() only.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include "resolve.h"

#define TIMER_TAG (-1)		/* epoll data.fd of the timeout timer */

enum state { FREE, PTR, FORWARD, DONE };

struct query {
	struct resolver *r;
	enum state state;
	int family;
	unsigned char addr[16];
	char addr_text[INET6_ADDRSTRLEN + 8];
	char name[POLICY_FIELD_MAX + 1];
	int status;
	const char *reason;
	resolve_cb cb;
	void *arg;
};

struct resolver {
	ares_channel channel;
	bool channel_ok;
	int epfd, timer_fd;
	struct query *queries;
	unsigned max_pending, pending;
};

/* resolve_name_ok - a host name bpfwrap accepts from DNS (see resolve.h) */
bool resolve_name_ok(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (!len || len > POLICY_FIELD_MAX)
		return false;
	for (const char *c = name; *c; c++) {
		if (*c == '.') {
			if (!label)
				return false;	/* empty label: "..", or a leading dot */
			label = 0;
			continue;
		}
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '-' || *c == '_'))
			return false;
		label++;
	}
	return true;
}

/* timer_set - fire the timer after ms (0 = as soon as possible), or never (ms < 0) */
static void timer_set(struct resolver *r, long ms)
{
	struct itimerspec its = { 0 };

	if (ms >= 0) {
		its.it_value.tv_sec = ms / 1000;
		its.it_value.tv_nsec = (ms % 1000) * 1000000 + 1;	/* 0 would disarm */
	}
	timerfd_settime(r->timer_fd, 0, &its, NULL);
}

/* finish - record the result of q; delivered by resolve_process */
static void finish(struct query *q, const char *name, int status, const char *reason)
{
	if (name != q->name)	/* on_forward passes q->name itself when the name is good */
		snprintf(q->name, sizeof(q->name), "%s", name);
	q->status = status;
	q->reason = reason;
	q->state = DONE;
	timer_set(q->r, 0);	/* make resolve_fd readable: there is something to deliver */
}

/* canonical_of - follow the CNAME chain of an answer from name */
static const char *canonical_of(const struct ares_addrinfo *res, const char *name)
{
	const char *canon = name;
	int hops = 0;

	for (bool moved = true; moved && hops < 16; hops++) {
		moved = false;
		for (const struct ares_addrinfo_cname *c = res->cnames; c; c = c->next)
			if (c->alias && c->name && !strcasecmp(c->alias, canon) && strcasecmp(c->name, canon)) {
				canon = c->name;
				moved = true;
				break;
			}
	}
	return canon;
}

/* on_forward - the forward answer: keep the name only if it leads back to the address */
static void on_forward(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct query *q = arg;
	bool found = false;

	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
		finish(q, "unknown", -ECANCELED, "lookup cancelled");
		goto out;
	}
	if (status != ARES_SUCCESS || !res) {
		/* tcpd: "can't verify hostname: gethostbyname(NAME) failed" */
		finish(q, "paranoid", 0, "can't verify host name: forward lookup failed");
		goto out;
	}
	/* tcpd: the forward lookup must not turn the name into another one */
	if (strcasecmp(canonical_of(res, q->name), q->name) && strcasecmp(q->name, "localhost")) {
		finish(q, "paranoid", 0, "host name/name mismatch (CNAME)");
		goto out;
	}
	for (const struct ares_addrinfo_node *n = res->nodes; n && !found; n = n->ai_next) {
		if (n->ai_family != q->family)
			continue;
		if (q->family == AF_INET)
			found = !memcmp(&((const struct sockaddr_in *)n->ai_addr)->sin_addr, q->addr, 4);
		else
			found = !memcmp(&((const struct sockaddr_in6 *)n->ai_addr)->sin6_addr, q->addr, 16);
	}
	if (found)
		finish(q, q->name, 0, "");
	else
		finish(q, "paranoid", 0, "host name/address mismatch");
out:
	if (res)
		ares_freeaddrinfo(res);
}

/* on_reverse - the PTR answer: validate the name, then look it up forward */
static void on_reverse(void *arg, int status, int timeouts, struct hostent *host)
{
	struct query *q = arg;
	struct ares_addrinfo_hints hints = { .ai_family = q->family, .ai_flags = ARES_AI_CANONNAME };

	switch (status) {
	case ARES_SUCCESS:
		break;
	case ARES_EDESTRUCTION:
	case ARES_ECANCELLED:
		finish(q, "unknown", -ECANCELED, "lookup cancelled");
		return;
	case ARES_ETIMEOUT:
		finish(q, "unknown", -ETIMEDOUT, "reverse lookup timed out");
		return;
	case ARES_EBADRESP:
	case ARES_EBADNAME:
		finish(q, "paranoid", 0, "malformed or invalid name in the PTR answer");
		return;
	default:
		/* gethostbyaddr reports a timed-out lookup as ENOTFOUND; its timeouts count tells */
		if (timeouts > 0)
			finish(q, "unknown", -ETIMEDOUT, "reverse lookup timed out");
		else
			finish(q, "unknown", 0, "no PTR record");
		return;
	}
	if (!host || !host->h_name || !resolve_name_ok(host->h_name)) {
		finish(q, "paranoid", 0, "PTR name is not a valid host name");
		return;
	}
	snprintf(q->name, sizeof(q->name), "%s", host->h_name);	/* fits: checked above */
	q->state = FORWARD;
	ares_getaddrinfo(q->r->channel, q->name, NULL, &hints, on_forward, q);
}

/* on_sock_state - c-ares opens/closes a socket: mirror it in our epoll set */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	struct epoll_event ev = { .events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0),
				  .data.fd = fd };

	if (!readable && !writable) {
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
		return;
	}
	if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
		epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* resolve_open - a resolver (c-ares channel) for cfg (NULL = defaults); 0, -EINVAL, -ENOMEM, -EIO */
int resolve_open(struct resolver **out, const struct resolve_config *cfg)
{
	static const struct resolve_config defaults;
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = TIMER_TAG };
	struct ares_options opts = { 0 };
	struct resolver *r;
	int optmask, err;

	*out = NULL;
	if (!cfg)
		cfg = &defaults;
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
		return -EIO;
	r = calloc(1, sizeof(*r));
	if (!r) {
		ares_library_cleanup();
		return -ENOMEM;
	}
	r->max_pending = cfg->max_pending ? cfg->max_pending : 256;
	r->queries = calloc(r->max_pending, sizeof(*r->queries));
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!r->queries || r->epfd < 0 || r->timer_fd < 0 ||
	    epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->timer_fd, &ev) < 0) {
		err = r->queries ? -errno : -ENOMEM;
		goto fail;
	}
	opts.sock_state_cb = on_sock_state;
	opts.sock_state_cb_data = r;
	opts.timeout = (int)(cfg->timeout_ms ? cfg->timeout_ms : 2000);
	opts.tries = (int)(cfg->tries ? cfg->tries : 2);
	/* the PTR name is absolute: never append search domains to it */
	opts.flags = ARES_FLAG_NOSEARCH;
	opts.lookups = cfg->dns_only ? "b" : "fb";
	optmask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
		  ARES_OPT_LOOKUPS;
	if (ares_init_options(&r->channel, &opts, optmask) != ARES_SUCCESS) {
		err = -EIO;
		goto fail;
	}
	r->channel_ok = true;
	if (cfg->servers && ares_set_servers_ports_csv(r->channel, cfg->servers) != ARES_SUCCESS) {
		err = -EINVAL;
		goto fail;
	}
	*out = r;
	return 0;
fail:
	resolve_close(r);
	return err;
}

/* parse_addr - address text into family + bytes; a v4-mapped IPv6 address becomes IPv4 */
static int parse_addr(const char *text, int *family, unsigned char *addr)
{
	struct in6_addr a6;

	if (inet_pton(AF_INET, text, addr) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, &a6) != 1)
		return -EINVAL;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		*family = AF_INET;
		memcpy(addr, &a6.s6_addr[12], 4);
	} else {
		*family = AF_INET6;
		memcpy(addr, &a6, 16);
	}
	return 0;
}

/* rearm - next wake-up: c-ares' next timeout while lookups are in flight, at once if one is done */
static void rearm(struct resolver *r)
{
	struct timeval tv, *tvp = ares_timeout(r->channel, NULL, &tv);

	if (r->pending && tvp)
		timer_set(r, tvp->tv_sec * 1000 + tvp->tv_usec / 1000);
	for (unsigned i = 0; i < r->max_pending; i++)
		if (r->queries[i].state == DONE)
			timer_set(r, 0);
}

/* resolve_start - look up the name of address text addr; 0, -EINVAL (not an address), -EAGAIN (full) */
int resolve_start(struct resolver *r, const char *addr, resolve_cb cb, void *arg)
{
	struct query *q = NULL;

	if (!r || !addr || !cb || strlen(addr) >= sizeof(q->addr_text))
		return -EINVAL;
	for (unsigned i = 0; i < r->max_pending && !q; i++)
		if (r->queries[i].state == FREE)
			q = &r->queries[i];
	if (!q)
		return -EAGAIN;
	memset(q, 0, sizeof(*q));
	if (parse_addr(addr, &q->family, q->addr))
		return -EINVAL;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->state = PTR;
	snprintf(q->addr_text, sizeof(q->addr_text), "%s", addr);
	r->pending++;
	/* may complete at once (hosts file): finish() then only queues the result */
	ares_gethostbyaddr(r->channel, q->addr, q->family == AF_INET ? 4 : 16, q->family, on_reverse, q);
	rearm(r);
	return 0;
}

/* deliver - hand finished lookups to their callbacks */
static int deliver(struct resolver *r)
{
	int n = 0;

	for (unsigned i = 0; i < r->max_pending; i++) {
		struct query *q = &r->queries[i];
		struct resolve_result res;

		if (q->state != DONE)
			continue;
		res = (struct resolve_result){ q->addr_text, q->name, q->status, q->reason };
		q->state = FREE;	/* the callback may start a new lookup in this slot */
		r->pending--;
		n++;
		q->cb(q->arg, &res);
	}
	return n;
}

/* resolve_process - drive c-ares and deliver finished lookups; returns how many were delivered */
int resolve_process(struct resolver *r)
{
	struct epoll_event evs[16];
	uint64_t expirations;
	int n;

	if (!r)
		return -EINVAL;
	n = epoll_wait(r->epfd, evs, 16, 0);
	for (int i = 0; i < n; i++) {
		if (evs[i].data.fd == TIMER_TAG) {
			if (read(r->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
				return -errno;
			continue;
		}
		ares_process_fd(r->channel,
				evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP) ? evs[i].data.fd : ARES_SOCKET_BAD,
				evs[i].events & EPOLLOUT ? evs[i].data.fd : ARES_SOCKET_BAD);
	}
	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);	/* timeouts */
	n = deliver(r);
	rearm(r);
	return n;
}

/* resolve_close - cancel what is in flight (callbacks get -ECANCELED), free */
void resolve_close(struct resolver *r)
{
	if (!r)
		return;
	if (r->channel_ok)
		ares_destroy(r->channel);	/* runs the callbacks with ARES_EDESTRUCTION */
	if (r->queries)
		deliver(r);
	if (r->epfd >= 0)
		close(r->epfd);
	if (r->timer_fd >= 0)
		close(r->timer_fd);
	free(r->queries);
	free(r);
	ares_library_cleanup();
}

/* resolve_fd - epoll fd: readable when c-ares has input or a timeout is due */
int resolve_fd(const struct resolver *r)
{
	return r ? r->epfd : -EINVAL;
}

/* resolve_pending - lookups started and not yet delivered */
unsigned resolve_pending(const struct resolver *r)
{
	return r->pending;
}
