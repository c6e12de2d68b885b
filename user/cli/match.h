/*
 * match.h - the engine behind `bpfwrap match`: one function that decides a
 * parsed query. The reference evaluator is the default engine; another one
 * (e.g. the kernel program via BPF_PROG_TEST_RUN) can be swapped in without
 * touching the query reading or the output.
 */
#ifndef BPFWRAP_MATCH_H
#define BPFWRAP_MATCH_H

#include <stdio.h>

#include "policy.h"

struct match_engine {
	/* decide - fill *out for *req; 0, or -errno if this engine cannot answer */
	int (*decide)(void *ctx, const struct request *req, struct decision *out);
	/* how - one line on how the last query was decided (--verbose); may be NULL */
	void (*how)(void *ctx, char *buf, size_t size);
	void *ctx;
	const char *name;	/* for messages, e.g. "evaluator" */
};

/* match_engine_evaluator - the reference evaluator on policy */
struct match_engine match_engine_evaluator(const struct policy *policy);

/*
 * match_batch - read `DAEMON CLIENT_ADDR CLIENT_NAME USER SERVER_ADDR` lines
 * ("-" = not supplied) from in, write one "allow"/"deny" line per query to
 * the file descriptor out_fd (buffered). Returns 0, 2 for a malformed line
 * (message on stderr with the line number, earlier answers written), or 1
 * for an engine or output error (message on stderr).
 */
int match_batch(FILE *in, const char *in_name, int out_fd, const struct match_engine *engine);

#endif /* BPFWRAP_MATCH_H */
