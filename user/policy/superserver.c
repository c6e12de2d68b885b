/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * superserver.c - inetd.conf and xinetd configuration text into the daemon
 * names tcpd would have seen per service (superserver.h). Returns 0 or
 * -ENOMEM; unusable lines are skipped, as the super-servers skip them.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "superserver.h"

#define WORDS_MAX 8	/* fields of an inetd.conf line that matter (7 + argv[0]) */

/* push - append one service; -ENOMEM */
static int push(struct superserver_list *l, const struct superserver_service *s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct superserver_service *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *s;
	return 0;
}

/* copy_base - the basename of path (up to len bytes) into out; false if empty or too long */
static bool copy_base(char out[SUPERSERVER_NAME_MAX], const char *path, size_t len)
{
	const char *base = path;

	for (size_t i = 0; i < len; i++)
		if (path[i] == '/')
			base = path + i + 1;
	len -= (size_t)(base - path);
	if (len == 0 || len >= SUPERSERVER_NAME_MAX)
		return false;
	memcpy(out, base, len);
	out[len] = '\0';
	return true;
}

/* proto_of - tcp/udp (with 4, 6, 46 suffixes) into IPPROTO_*; 0 for anything else */
static uint8_t proto_of(const char *s, size_t n)
{
	if (n >= 3 && !strncmp(s, "tcp", 3) && strspn(s + 3, "46") >= n - 3)
		return IPPROTO_TCP;
	if (n >= 3 && !strncmp(s, "udp", 3) && strspn(s + 3, "46") >= n - 3)
		return IPPROTO_UDP;
	return 0;
}

/* inetd_line - one inetd.conf line: service type proto wait user server argv0 ... */
static int inetd_line(const char *line, size_t len, struct superserver_list *l)
{
	const char *w[WORDS_MAX];
	size_t wl[WORDS_MAX], nw = 0, i = 0;
	struct superserver_service s = {};
	const char *svc, *colon;
	size_t svc_len;

	while (i < len && nw < WORDS_MAX) {
		while (i < len && isspace((unsigned char)line[i]))
			i++;
		if (i == len)
			break;
		w[nw] = line + i;
		while (i < len && !isspace((unsigned char)line[i]))
			i++;
		wl[nw] = (size_t)(line + i - w[nw]);
		nw++;
	}
	if (nw < 6 || w[0][0] == '#')
		return 0;
	s.proto = proto_of(w[2], wl[2]);
	if (!s.proto || (wl[5] == 8 && !strncmp(w[5], "internal", 8)))
		return 0;	/* rpc/..., unix sockets, services inetd answers itself */
	/* [address:]service */
	svc = w[0];
	svc_len = wl[0];
	colon = memchr(svc, ':', svc_len);
	if (colon) {
		svc_len -= (size_t)(colon + 1 - svc);
		svc = colon + 1;
	}
	if (svc_len == 0 || svc_len >= sizeof(s.service))
		return 0;
	memcpy(s.service, svc, svc_len);
	/* argv[0] is the first word after the program; without one, the program */
	if (!(nw >= 7 ? copy_base(s.daemon, w[6], wl[6]) : copy_base(s.daemon, w[5], wl[5])))
		return 0;
	return push(l, &s);
}

/* superserver_parse_inetd - the services of an inetd.conf text */
int superserver_parse_inetd(const char *text, struct superserver_list *l)
{
	while (*text) {
		size_t len = strcspn(text, "\n");
		int err = inetd_line(text, len, l);

		if (err)
			return err;
		text += len + (text[len] == '\n');
	}
	return 0;
}

/* The attributes of one xinetd service block that name it. */
struct xservice {
	char name[SUPERSERVER_NAME_MAX];
	char server[SUPERSERVER_NAME_MAX];	/* basename */
	char libwrap[SUPERSERVER_NAME_MAX];
	char proto[8], socket_type[16];
	unsigned port;
	bool disabled, internal, redirect;
};

/* trim - the text between blanks of s[0..n) as (start, length) */
static const char *trim(const char *s, size_t *n)
{
	while (*n && isspace((unsigned char)*s)) {
		s++;
		(*n)--;
	}
	while (*n && isspace((unsigned char)s[*n - 1]))
		(*n)--;
	return s;
}

/* set_word - copy a value's first word into out (cut to size) */
static void set_word(char *out, size_t size, const char *v, size_t n)
{
	size_t w = 0;

	while (w < n && !isspace((unsigned char)v[w]))
		w++;
	if (w >= size)
		w = size - 1;
	memcpy(out, v, w);
	out[w] = '\0';
}

/* xattr - one `name = value` (also += and -=) line of a service block */
static void xattr(struct xservice *x, const char *line, size_t len)
{
	const char *eq = memchr(line, '=', len);
	const char *key, *val;
	size_t kn, vn;

	if (!eq)
		return;
	kn = (size_t)(eq - line);
	if (kn && (line[kn - 1] == '+' || line[kn - 1] == '-'))
		kn--;
	key = trim(line, &kn);
	vn = len - (size_t)(eq + 1 - line);
	val = trim(eq + 1, &vn);
#define KEY(k) (kn == strlen(k) && !strncasecmp(key, k, kn))
	if (KEY("server")) {
		if (!copy_base(x->server, val, vn))
			x->server[0] = '\0';
	} else if (KEY("libwrap")) {
		set_word(x->libwrap, sizeof(x->libwrap), val, vn);
	} else if (KEY("protocol")) {
		set_word(x->proto, sizeof(x->proto), val, vn);
	} else if (KEY("socket_type")) {
		set_word(x->socket_type, sizeof(x->socket_type), val, vn);
	} else if (KEY("port")) {
		x->port = (unsigned)strtoul(val, NULL, 10);
	} else if (KEY("disable")) {
		x->disabled = vn >= 3 && !strncasecmp(val, "yes", 3);
	} else if (KEY("type")) {
		for (size_t i = 0; i + 8 <= vn; i++)
			if (!strncasecmp(val + i, "INTERNAL", 8))
				x->internal = true;
	} else if (KEY("redirect")) {
		x->redirect = true;
	}
#undef KEY
}

/* xservice_done - a finished service block into the list (if usable) */
static int xservice_done(const struct xservice *x, struct superserver_list *l)
{
	struct superserver_service s = {};
	const char *daemon;

	if (x->disabled || !x->name[0])
		return 0;
	if (x->proto[0])
		s.proto = proto_of(x->proto, strlen(x->proto));
	else if (!strcasecmp(x->socket_type, "dgram"))
		s.proto = IPPROTO_UDP;
	else
		s.proto = IPPROTO_TCP;
	if (!s.proto)
		return 0;
	/* xinetd: libwrap wins; internal and redirected services go by name */
	if (x->libwrap[0])
		daemon = x->libwrap;
	else if (x->internal || x->redirect)
		daemon = x->name;
	else
		daemon = x->server;
	if (!daemon[0])
		return 0;
	snprintf(s.service, sizeof(s.service), "%s", x->name);
	snprintf(s.daemon, sizeof(s.daemon), "%s", daemon);
	s.port = x->port <= 65535 ? (uint16_t)x->port : 0;
	return push(l, &s);
}

/* superserver_parse_xinetd - the services of one xinetd file */
int superserver_parse_xinetd(const char *text, struct superserver_list *l,
			     void (*include)(const char *dir, void *ctx), void *ctx)
{
	struct xservice x;
	bool in_block = false, want_block = false;

	while (*text) {
		size_t len = strcspn(text, "\n");
		size_t n = len;
		const char *line = trim(text, &n);

		text += len + (text[len] == '\n');
		if (!n || line[0] == '#')
			continue;
		if (!in_block && n > 8 && !strncmp(line, "service", 7) &&
		    isspace((unsigned char)line[7])) {
			size_t vn = n - 7;
			const char *v = trim(line + 7, &vn);

			memset(&x, 0, sizeof(x));
			set_word(x.name, sizeof(x.name), v, vn);
			want_block = true;
			if (memchr(v, '{', vn))
				in_block = true;
		} else if (!in_block && n > 11 && !strncmp(line, "includedir", 10) &&
			   isspace((unsigned char)line[10])) {
			char dir[4096];
			size_t vn = n - 10;
			const char *v = trim(line + 10, &vn);

			set_word(dir, sizeof(dir), v, vn);
			if (include)
				include(dir, ctx);
		} else if (!in_block && line[0] == '{') {
			in_block = want_block;
		} else if (in_block && line[0] == '}') {
			int err = xservice_done(&x, l);

			if (err)
				return err;
			in_block = want_block = false;
		} else if (in_block) {
			xattr(&x, line, n);
		}
	}
	return 0;
}

/* superserver_list_free - release a list */
void superserver_list_free(struct superserver_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}
