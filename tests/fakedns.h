/*
 * fakedns.h - DNS wire format for the tests' fake DNS servers
 * (tests/unit/test_resolve.c, tests/integration/itest.h): reverse names,
 * names as labels, the question of a query, the reply header and answer
 * records. Which records a server knows and how it answers stays with
 * each server.
 *
 * Errors: nothing prints; a query that cannot be read gives 0 (the caller
 * sends no reply), an address that is not one gives "". Reply buffers are
 * the caller's and must hold the records it adds.
 */
#ifndef BPFWRAP_TESTS_FAKEDNS_H
#define BPFWRAP_TESTS_FAKEDNS_H

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Record types. */
#define FAKEDNS_A 1
#define FAKEDNS_CNAME 5
#define FAKEDNS_PTR 12
#define FAKEDNS_AAAA 28

/* Helpers are static: one copy per test binary; not every includer uses each. */
#define FAKEDNS_FN static __attribute__((unused))

/* fakedns_reverse_name - the in-addr.arpa / ip6.arpa name of an address text ("" if none) */
FAKEDNS_FN void fakedns_reverse_name(const char *addr, char *out, size_t size)
{
	unsigned char b[16];
	size_t len = 0;

	out[0] = '\0';
	if (inet_pton(AF_INET, addr, b) == 1) {
		snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
		return;
	}
	if (inet_pton(AF_INET6, addr, b) != 1)
		return;
	for (int i = 15; i >= 0 && len + 5 < size; i--)
		len += (size_t)snprintf(out + len, size - len, "%x.%x.", b[i] & 15, b[i] >> 4);
	snprintf(out + len, size - len, "ip6.arpa");
}

/* fakedns_put_name - a dotted name as DNS labels (each cut to 63, at most 64); bytes written */
FAKEDNS_FN size_t fakedns_put_name(unsigned char *p, const char *name)
{
	size_t n = 0;

	for (int i = 0; *name && i < 64; i++) {
		size_t len = strcspn(name, ".");

		if (len > 63)
			len = 63;
		p[n++] = (unsigned char)len;
		memcpy(p + n, name, len);
		n += len;
		name += len;
		if (*name == '.')
			name++;
	}
	p[n++] = 0;
	return n;
}

/*
 * fakedns_question - the question of query q: its name, dotted, into
 * qname[size] and its type into *qtype; the length of header and question,
 * or 0 if q cannot be read
 */
FAKEDNS_FN size_t fakedns_question(const unsigned char *q, size_t qlen, char *qname, size_t size,
				   int *qtype)
{
	size_t pos = 12, nlen = 0, qend;

	qname[0] = '\0';
	if (qlen < 17)
		return 0;
	while (pos < qlen && q[pos]) {
		size_t len = q[pos++];

		if (pos + len > qlen || nlen + len + 2 > size)
			return 0;
		if (nlen)
			qname[nlen++] = '.';
		memcpy(qname + nlen, q + pos, len);
		nlen += len;
		qname[nlen] = '\0';
		pos += len;
	}
	qend = pos + 5;
	if (qend > qlen)
		return 0;
	*qtype = q[pos + 1] << 8 | q[pos + 2];
	return qend;
}

/* fakedns_reply - start the reply to q in out: its header and question (qend bytes), no records */
FAKEDNS_FN size_t fakedns_reply(unsigned char *out, const unsigned char *q, size_t qend)
{
	memcpy(out, q, qend);
	out[2] = 0x81;	/* QR, RD */
	out[3] = 0x80;	/* RA, NOERROR */
	memset(out + 6, 0, 6);
	return qend;
}

/* fakedns_put_answer - at out + n an answer record for the question's name, TTL 60; new length */
FAKEDNS_FN size_t fakedns_put_answer(unsigned char *out, size_t n, int type,
				     const unsigned char *rdata, size_t rdlen)
{
	out[n++] = 0xc0, out[n++] = 12;	/* owner: a pointer to the question's name */
	out[n++] = 0, out[n++] = (unsigned char)type;
	out[n++] = 0, out[n++] = 1;
	out[n++] = 0, out[n++] = 0, out[n++] = 0, out[n++] = 60;
	out[n++] = (unsigned char)(rdlen >> 8), out[n++] = (unsigned char)rdlen;
	memcpy(out + n, rdata, rdlen);
	return n + rdlen;
}

#endif /* BPFWRAP_TESTS_FAKEDNS_H */
