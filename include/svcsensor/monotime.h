/* monotime.h - the monotonic clock in the units its users want: milliseconds for the progress
 * line's once-a-second pace, coarse nanoseconds for the console's flush pace (a vDSO read of
 * CLOCK_MONOTONIC_COARSE, cheap enough to ask per line).
 *
 * Never fails (clock_gettime on a monotonic clock cannot, with a valid pointer); any thread. */
#ifndef SVCSENSOR_MONOTIME_H
#define SVCSENSOR_MONOTIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t monotime__ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline uint64_t monotime__coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

#endif
