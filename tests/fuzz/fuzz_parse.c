/*
 * fuzz_parse.c - libFuzzer target for the policy parser and evaluator.
 *
 * The input is split at its first NUL byte: the bytes before are
 * hosts.allow, the bytes after are hosts.deny (no NUL: hosts.deny is
 * empty). Each text is handed over in a heap block of exactly its length,
 * not NUL-terminated, so that AddressSanitizer catches any read past `len`.
 * Then a fixed set of requests is evaluated (each twice: the answer must not
 * change) and every diagnostic is formatted, into a roomy buffer and into a
 * tiny one. Built with -fsanitize=fuzzer,address,undefined (tests/fuzz/run.sh).
 *
 * A crash, a sanitizer report, a leak or an evaluation that changes its mind
 * (__builtin_trap) is a finding; parse errors are not (parsing never fails
 * on content, only on resources).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define LONG_NAME "aaaaaaaaa.bbbbbbbbb.ccccccccc.ddddddddd.eeeeeeeee.fffffffff.ggggggggg." \
		  "hhhhhhhhh.iiiiiiiii.jjjjjjjjj.kkkkkkkkk.lllllllll.mmmmmmmmm.nnnnnnnnn.example.com"

/* Requests that reach the different branches of the evaluator. */
static const struct request requests[] = {
	{ "sshd", "10.0.0.1", NULL, NULL, NULL, NULL, -1 },
	{ "sshd", "192.168.1.20", "host.example.com", "root", "10.0.0.5", NULL, 22 },
	{ "in.telnetd", "::ffff:10.1.2.3", "paranoid", NULL, "::1", NULL, 23 },
	{ "vsftpd", "2001:db8::1", "unknown", "alice", "2001:db8::2", "server.example.com", 21 },
	{ "/usr/sbin/sshd", "fe80::1", "web", "unknown", NULL, NULL, 65535 },
	{ "22", NULL, LONG_NAME, LONG_NAME, NULL, NULL, 22 },
	{ LONG_NAME, "127.0.0.1", "localhost", "ROOT", "127.0.0.1", "localhost", 0 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, -1 },
	{ "", "", "", "", "", "", -1 },
	{ "ALL", "::FFFF:1.2.3.4", "KNOWN", "UNKNOWN", "0.0.0.0", "", 80 },
};

/* dup_exact - copy n bytes into a heap block of exactly n bytes (1 if n == 0) */
static char *dup_exact(const uint8_t *p, size_t n)
{
	char *s = malloc(n ? n : 1);

	if (s && n)
		memcpy(s, p, n);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - parse one allow/deny pair, evaluate, format diagnostics */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t allow_len = nul ? (size_t)(nul - data) : size;
	size_t deny_len = nul ? size - allow_len - 1 : 0;
	char *allow = dup_exact(data, allow_len);
	char *deny = dup_exact(nul ? nul + 1 : data, deny_len);
	struct policy *policy = NULL;

	if (!allow || !deny)
		goto out;
	if (policy_parse_buffers(&policy, "hosts.allow", allow, allow_len, "hosts.deny", deny,
				 deny_len) < 0 || !policy)
		goto out;

	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		struct decision a, b;

		memset(&a, 0, sizeof(a));
		memset(&b, 0xa5, sizeof(b));
		policy_evaluate(policy, &requests[i], &a);
		policy_evaluate(policy, &requests[i], &b);
		if (a.allow != b.allow || a.reason != b.reason || a.rule != b.rule)
			__builtin_trap(); /* the evaluator must be a function of its input */
	}

	for (size_t i = 0; i < policy->diags.count; i++) {
		char big[1024], tiny[8];
		const char *s;

		s = diag_format(&policy->diags.items[i], big, sizeof(big));
		if (s && strlen(s) >= sizeof(big))
			__builtin_trap();
		s = diag_format(&policy->diags.items[i], tiny, sizeof(tiny));
		if (s && strlen(s) >= sizeof(tiny))
			__builtin_trap();
	}
out:
	if (policy)
		policy_free(policy);
	free(allow);
	free(deny);
	return 0;
}
