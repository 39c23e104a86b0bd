/* console.h - the seed's one line per flow, batched and written to a stream's descriptor.
 *
 *   " 65. 10.42.0.130     --> remote          , BitTorrent           | PROTOCOL NEVER USED"
 *
 * index right-aligned in 3, source and destination keys left-aligned in 15, application in 20,
 * then the verdict in the seed's spelling (verdict__label, include/svcsensor/verdict.h). Wider values are printed whole, so
 * a column then shifts rather than losing characters. Which flows are printed follows the print
 * setting (all / anomalies / none). Used by the detector thread only: not thread-safe.
 *
 * Write errors: EPIPE (the reader went away, SIGPIPE being ignored) prints one line and ends
 * the console's output, the lines after it counted as not printed; any other error counts the
 * lines it lost (reported once). Neither stops the run. */
#ifndef SVCSENSOR_CONSOLE_H
#define SVCSENSOR_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "svcsensor/config.h"
#include "svcsensor/verdict.h"

struct console;

/* Format one line (with its trailing '\n') into buf, truncated to len like snprintf.
 * Returns what snprintf returns: the length the whole line needs. */
int console__format(char *buf, size_t len, uint64_t index, const char *src, const char *dst,
		    const char *app, const char *label);

/* A console writing to out (borrowed: the caller keeps and closes it; the console writes to
 * its descriptor, after flushing what the stream held, or through it when it has none) with
 * the given print mode. out NULL = print nothing. NULL on out of memory. */
struct console *console__new(FILE *out, enum print_mode mode);

/* Print the line of one judged flow if the print mode selects it (PRINT_ALL: every flow;
 * PRINT_ANOMALIES: verdict other than VERDICT_NONE; PRINT_NONE: nothing). Buffered; flushed
 * when a second has passed since the last flush. Returns true if a line was printed. */
bool console__verdict(struct console *c, uint64_t index, const char *src, const char *dst,
		      const char *app, enum verdict v);

/* Learn mode: print the line with the label "LEARNED" (VERDICT_LEARNED_LABEL; only under
 * PRINT_ALL). */
bool console__learned(struct console *c, uint64_t index, const char *src, const char *dst,
		      const char *app);

/* Flush what is buffered (the detector calls it when idle and on its periodic tick). Does
 * nothing if nothing was printed since the last flush. A write error is reported once. */
void console__flush(struct console *c);

/* Lines lost to write errors so far and the errno of the last one; lines not printed since
 * the reader went away (EPIPE). NULL c: zeros. */
void console__losses(const struct console *c, uint64_t *lost, int *err, uint64_t *unprinted);

/* Flush and free. Does not close the stream. */
void console__free(struct console *c);

/* As a sink (console_sink, include/svcsensor/sink.h): opened when the run has a console stream
 * and print is not none; flushed after every queue pass and every tick. */

#endif
