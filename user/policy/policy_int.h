/*
 * policy_int.h - helpers shared by the parser (parse.c) and the reference
 * evaluator (evaluate.c) only: libwrap's own address readers, reproduced
 * call for call, and the ASCII case folding that strcasecmp() does in the
 * C locale. Not part of the public policy API.
 */
#ifndef BPFWRAP_POLICY_INT_H
#define BPFWRAP_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "policy.h"

/* libwrap reads a logical line into char[2048] with fgets(): 2046 chars + '\n' fit. */
#define POLICY_LINE_BUF 2048

/* pol_lower - ASCII lower case of one byte (strcasecmp in the C locale) */
static inline unsigned char pol_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* pol_hash - FNV-1a of n bytes (a fast pre-check before comparing strings) */
static inline uint64_t pol_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h;
}

/* pol_dot_quad - libwrap's dot_quad_addr(): exactly 4 runs of non-dots, then inet_addr();
 * true and *addr (network order) if it is one, false for INADDR_NONE */
bool pol_dot_quad(const char *s, uint32_t *addr);

/* pol_parse_v6 - getaddrinfo(s, AF_INET6, AI_PASSIVE|AI_NUMERICHOST) as libwrap calls it */
bool pol_parse_v6(const char *s, struct in6_addr *out);

/* pol_glob - libwrap's match_pattern_ylo(): '*' and '?', case-insensitive; both lower-cased */
bool pol_glob(const char *s, const char *pattern);

/* pol_strip_mapped - offset of the subject libwrap's string_match() compares:
 * 7 for "::ffff:" (any case) + a dotted quad, else 0 */
size_t pol_strip_mapped(const char *s);

/*
 * The evaluator's compact form of a rule's lists, built by the parser: 32
 * bytes per token, contiguous, so that rejecting a rule touches little
 * memory. Plain string tokens are matched from here; anything else goes to
 * the full struct pattern.
 */
enum fast_op {
	FP_EXCEPT,	/* EXCEPT */
	FP_STR,		/* daemon list: string_match() on the daemon name */
	FP_HOSTSTR,	/* client list: string_match() on the address, maybe on the name */
	FP_GENERIC,	/* anything else: the full pattern */
};

struct fast_pat {
	uint8_t op;		/* enum fast_op */
	uint8_t skind;		/* enum string_kind (FP_STR, FP_HOSTSTR) */
	uint8_t also_name;	/* FP_HOSTSTR: NOT_INADDR() */
	uint32_t len;
	uint64_t hash;
	const char *low;
	const struct pattern *p;
};

struct rule_fast {
	uint32_t n_daemons, n_clients;
	struct fast_pat items[];	/* daemons, then clients */
};

#endif /* BPFWRAP_POLICY_INT_H */
