/* test_util.h - helpers shared by the in-process suites: capture what the code under test
 * writes to stderr (its one-line errors; not thread-safe, one capture at a time per test
 * process) and scratch directories. */
#ifndef SVCSENSOR_TESTS_TEST_UTIL_H
#define SVCSENSOR_TESTS_TEST_UTIL_H

#include <stddef.h>

/* Redirect fd 2 into a temporary file. */
void cap_begin(void);
/* Restore fd 2 and return what was written (at most 16 KiB; static buffer, valid until the
 * next cap_end). */
const char *cap_end(void);
/* Number of '\n' in s. */
size_t count_lines(const char *s);

/* "dir/name", allocated (free it); asserts on out of memory. */
char *path_in(const char *dir, const char *name);
/* Remove the files of a flat scratch directory, then the directory. */
void rm_rf(const char *dir);
/* Remove a scratch tree whatever it holds (a test may have made its top read-only). */
void rm_tree(const char *dir);
/* The whole file at path, NUL-terminated and allocated (free it); NULL when it cannot be
 * opened. */
char *read_all(const char *path);

#endif
