/*
 * expand.c - % expansion for spawn/twist/banners, value-for-value like
 * libwrap's percent_x() and its eval_*() helpers (see expand.h).
 *
 * Errors: -EINVAL for bad arguments, -ENAMETOOLONG when the result does not
 * fit the caller's buffer; the output is then the empty string, so a caller
 * that ignores the error still never runs a cut-off command.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "expand.h"

static const char unknown[] = "unknown";
static const char paranoid[] = "paranoid";

/* known - a request field as libwrap shows it: NULL or "" is "unknown" */
static const char *known(const char *v)
{
	return v && *v ? v : unknown;
}

/* name_known - libwrap's HOSTNAME_KNOWN(): neither unknown nor paranoid */
static bool name_known(const char *name)
{
	return strcmp(name, unknown) && strcmp(name, paranoid);
}

/* expand_hostinfo - %h unsanitized: client name unless unknown/paranoid, else the address */
const char *expand_hostinfo(const struct request *req)
{
	const char *name = known(req->client_name);

	return name_known(name) ? name : known(req->client_addr);
}

/* server_hostinfo - %H: server name unless unknown/paranoid, else the server address */
static const char *server_hostinfo(const struct request *req)
{
	const char *name = known(req->server_name);

	return name_known(name) ? name : known(req->server_addr);
}

/* join - "left@right" (or just right if left is NULL), each part cut to POLICY_FIELD_MAX */
static int join(const char *left, const char *right, char *out, size_t size)
{
	int n;

	if (left)
		n = snprintf(out, size, "%.*s@%.*s", POLICY_FIELD_MAX, left, POLICY_FIELD_MAX, right);
	else
		n = snprintf(out, size, "%.*s", POLICY_FIELD_MAX, right);
	if (n < 0 || (size_t)n >= size) {
		if (size)
			out[0] = 0;
		return -ENAMETOOLONG;
	}
	return 0;
}

/* expand_client - %c unsanitized: user@host if the user is known, else host name if known, else address */
int expand_client(const struct request *req, char *out, size_t size)
{
	const char *user = req->user;

	/* libwrap's eval_client(): a user that is set and not "unknown" (any case) */
	if (user && *user && strcasecmp(user, unknown))
		return join(user, expand_hostinfo(req), out, size);
	return join(NULL, expand_hostinfo(req), out, size);
}

/* server_info - %s: daemon@host when the server host is known, else the daemon */
static int server_info(const struct request *req, char *out, size_t size)
{
	const char *host = server_hostinfo(req);

	if (strcmp(host, unknown))
		return join(known(req->daemon), host, out, size);
	return join(NULL, known(req->daemon), out, size);
}

/* expand_sanitize - replace, in place, each character outside EXPAND_OK_CHARS by '_' */
void expand_sanitize(char *s)
{
	for (s += strspn(s, EXPAND_OK_CHARS); *s; s += strspn(s, EXPAND_OK_CHARS))
		*s++ = '_';
}

/* value_of - the raw value of %ch into buf; -ENOENT for an unknown letter */
static int value_of(char ch, const struct request *req, pid_t pid, char *buf, size_t size)
{
	switch (ch) {
	case 'a': return join(NULL, known(req->client_addr), buf, size);
	case 'A': return join(NULL, known(req->server_addr), buf, size);
	case 'c': return expand_client(req, buf, size);
	case 'd': return join(NULL, known(req->daemon), buf, size);
	case 'h': return join(NULL, expand_hostinfo(req), buf, size);
	case 'H': return join(NULL, server_hostinfo(req), buf, size);
	case 'n': return join(NULL, known(req->client_name), buf, size);
	case 'N': return join(NULL, known(req->server_name), buf, size);
	case 's': return server_info(req, buf, size);
	case 'u': return join(NULL, known(req->user), buf, size);
	case '%': return join(NULL, "%", buf, size);
	case 'p':
		if (pid <= 0)
			return join(NULL, unknown, buf, size);
		snprintf(buf, size, "%ld", (long)pid);	/* fits: size >= EXPAND_INFO_MAX + 1 */
		return 0;
	default:
		buf[0] = 0;
		return -ENOENT;
	}
}

/* expand_percent - expand fmt for request req into out[size]; 0, -EINVAL or -ENAMETOOLONG */
int expand_percent(const char *fmt, const struct request *req, pid_t pid, char *out, size_t size)
{
	char value[EXPAND_INFO_MAX + 1];
	size_t used = 0;

	if (!fmt || !req || !out || !size)
		return -EINVAL;
	while (*fmt) {
		const char *piece = fmt;
		size_t len = 1;

		/* like libwrap, a '%' at the very end is copied literally */
		if (fmt[0] == '%' && fmt[1]) {
			value_of(fmt[1], req, pid, value, sizeof(value));
			expand_sanitize(value);
			piece = value;
			len = strlen(value);
			fmt += 2;
		} else {
			fmt++;
		}
		if (used + len >= size) {
			out[0] = 0;
			return -ENAMETOOLONG;
		}
		memcpy(out + used, piece, len);
		used += len;
	}
	out[used] = 0;
	return 0;
}

/* expand_check - 0 if fmt has only known %x sequences, else -EINVAL and *bad_at = offset of the '%' */
int expand_check(const char *fmt, size_t *bad_at)
{
	static const char letters[] = "aAcdhHnNpsu%";

	for (const char *p = fmt; *p; p++) {
		if (p[0] != '%' || !p[1])
			continue;
		if (!strchr(letters, p[1])) {
			if (bad_at)
				*bad_at = (size_t)(p - fmt);
			return -EINVAL;
		}
		p++;
	}
	return 0;
}
