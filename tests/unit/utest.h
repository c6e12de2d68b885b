/*
 * utest.h - the scratch directory of a unit test: tmpdir, made by the
 * cmocka group fixture setup() and removed, with all it holds, by
 * teardown().
 *
 * The includer defines UTEST_NAME (e.g. "test_spawn") before including;
 * the directory is /tmp/UTEST_NAME.XXXXXX.
 *
 * Errors: setup() and teardown() return -1 when the directory cannot be
 * made or removed (cmocka then fails the group).
 */
#ifndef BPFWRAP_TESTS_UTEST_H
#define BPFWRAP_TESTS_UTEST_H

#include <stdio.h>
#include <stdlib.h>

#ifndef UTEST_NAME
#error "define UTEST_NAME before including unit/utest.h"
#endif

static char tmpdir[] = "/tmp/" UTEST_NAME ".XXXXXX";

/* setup - create tmpdir */
static int setup(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

/* teardown - remove tmpdir and what is in it */
static int teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif /* BPFWRAP_TESTS_UTEST_H */
