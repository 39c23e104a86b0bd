/* common.h - small helpers shared by every module: error reporting, time units.
 *
 * Errors are reported as one line on stderr, "svcsensor: <object>: <reason>", and returned
 * as 0 / negative errno. Nothing below main.c calls exit() or abort(). */
#ifndef SVCSENSOR_COMMON_H
#define SVCSENSOR_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SVC_PROG "svcsensor"

/* Print one line "svcsensor: ..." on stderr. Thread-safe (one fprintf call). */
void svc_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, prefixed "svcsensor: warning: ". */
void svc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define SVC_US_PER_SEC 1000000ULL
#define SVC_US_PER_MS 1000ULL

/* Is a periodic job due? For a job every interval seconds (0 = never), next holds its next
 * time (0 = not scheduled): the first run comes one interval after the first call, and a wall
 * clock set back reschedules instead of waiting. */
bool svc_due(uint64_t *next, unsigned interval, uint64_t now_s);

#define SVC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define SVC_LIKELY(x) __builtin_expect(!!(x), 1)
#define SVC_UNLIKELY(x) __builtin_expect(!!(x), 0)

#endif
