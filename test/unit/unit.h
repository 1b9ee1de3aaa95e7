/*
 * unit.h
 *	  A minimal test runner for the server-independent C modules.
 *
 * Each test binary prints one TAP-like line per check ("ok - ..." or
 * "not ok - ...", the latter followed by a "#" diagnostic) and ends with
 * "N passed, N failed".  It exits 1 when anything failed.  test/run_unit.sh
 * sums the counts of all binaries.
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

static int	unit_passed = 0;
static int	unit_failed = 0;

#define UNIT_CHECK(cond, name) \
	do { \
		if (cond) { unit_passed++; printf("ok - %s\n", (name)); } \
		else { unit_failed++; printf("not ok - %s\n#   at %s:%d: %s\n", (name), __FILE__, __LINE__, #cond); } \
	} while (0)

#define UNIT_STREQ(got, want, name) \
	do { \
		const char *g_ = (got); const char *w_ = (want); \
		if (g_ != NULL && strcmp(g_, w_) == 0) { unit_passed++; printf("ok - %s\n", (name)); } \
		else { unit_failed++; printf("not ok - %s\n#   at %s:%d\n#   got:  \"%s\"\n#   want: \"%s\"\n", (name), __FILE__, __LINE__, g_ ? g_ : "(null)", w_); } \
	} while (0)

#define UNIT_DONE() \
	do { \
		printf("%d passed, %d failed\n", unit_passed, unit_failed); \
		return unit_failed ? 1 : 0; \
	} while (0)

#endif							/* UNIT_H */
