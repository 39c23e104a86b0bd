/* pipeline.h - builds and runs the threads of one svcsensor run:
 *
 *   input (input.h: rings, mapped pcap walk, libpcap reader, flow CSV) -> workers
 *       -> finished-flow queue -> detector thread (consumer.h)
 *
 * and, on the calling (main) thread, waits for signals: SIGINT/SIGTERM stop the capture,
 * SIGHUP reloads the map and reopens the logs. Every flow that a worker ends is judged exactly
 * once before pipeline__run returns. SIGINT, SIGTERM and SIGHUP stay blocked in the calling
 * thread after it returns (the process is ending). */
#ifndef SVCSENSOR_PIPELINE_H
#define SVCSENSOR_PIPELINE_H

#include <stdbool.h>

#include "svcsensor/config.h"

struct pipeline_opts {
	const struct svc_config *cfg;
	bool learn;		  /* learn mode: the detector writes the map */
	const char *const *files; /* offline input (-r), in order */
	unsigned n_files;
	const char *flows_in; /* finished flows from a flow CSV (--flows-in) instead of packets
			       * (main.c then turns the flow CSV export off) */
	unsigned duration; /* live: stop after this many seconds (0 = never) */
	bool quiet;	   /* no progress line */
};

/* Run to the end of the input or a stop signal. Returns 0 when every input was read and every
 * output written, 1 when the run completed but something was lost or unreadable (a truncated
 * file, a bad row of a flow CSV, a failed write), 2 when it could not start (one line said
 * why) or read nothing before its input failed. */
int pipeline__run(const struct pipeline_opts *o);

#endif
