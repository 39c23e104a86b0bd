/* progress.h - the one progress line of the offline readers (pcapfile.c, pcapscan.c), on
 * stderr, redrawn in place with '\r':
 *   "svcsensor: FILE  42.0%  123456 packets"   (position known)
 *   "svcsensor: FILE  123456 packets"          (a pipe: no size)
 * The callers decide when (once a second, monotime__ms) and whether (not --quiet, stderr a
 * terminal). Writes to stderr only; the line may interleave with another thread's output. */
#ifndef SVCSENSOR_PROGRESS_H
#define SVCSENSOR_PROGRESS_H

#include <stdint.h>

#define PROGRESS_PERIOD_MS 1000 /* between two redraws */

/* Draw the line for path: pos bytes read of size (size 0: unknown, no percentage). */
void progress__line(const char *path, uint64_t pos, uint64_t size, uint64_t packets);

/* Erase the line (the cursor back at the start of an empty line). */
void progress__clear(void);

#endif
