/* stderr_capture.h - capture what the code under test writes to stderr (its one-line errors),
 * for in-process API tests. Not thread-safe; one capture at a time per test process. */
#ifndef SVCSENSOR_TESTS_STDERR_CAPTURE_H
#define SVCSENSOR_TESTS_STDERR_CAPTURE_H

#include <stddef.h>

/* Redirect fd 2 into a temporary file. */
void cap_begin(void);
/* Restore fd 2 and return what was written (at most 16 KiB; static buffer, valid until the
 * next cap_end). */
const char *cap_end(void);
/* Number of '\n' in s. */
size_t count_lines(const char *s);

#endif
