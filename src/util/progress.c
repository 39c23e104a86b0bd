/* progress.c - the offline readers' progress line (see progress.h). */
#include "svcsensor/progress.h"

#include <stdio.h>

#include "svcsensor/common.h"

void progress__line(const char *path, uint64_t pos, uint64_t size, uint64_t packets)
{
	if (size)
		fprintf(stderr, "\r%s: %s %5.1f%%  %llu packets", SVC_PROG, path,
			100.0 * (double)pos / (double)size, (unsigned long long)packets);
	else
		fprintf(stderr, "\r%s: %s  %llu packets", SVC_PROG, path,
			(unsigned long long)packets);
}

void progress__clear(void)
{
	fprintf(stderr, "\r%*s\r", 70, "");
}
