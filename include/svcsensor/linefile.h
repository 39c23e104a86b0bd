/* linefile.h - an output file of whole lines: the anomaly log (anomaly_log.h) and the flow CSV
 * (flow_csv.h) are each one.
 *
 * Whole lines: lines are batched (at most 64 KiB) and written with one write(2) per batch on an
 * O_APPEND descriptor, so the kernel places the whole batch at the end of the file and a reader
 * (tail -F, a log shipper) never sees half a line. If a write fails part-way (a full disk), the
 * partial tail is cut off again (ftruncate): the file holds whole lines only.
 *
 * The path is classified by outpath.h: a regular file (or none yet: created 0640, O_NOFOLLOW)
 * is appended to and rotated by size: when the next batch would take it past max_bytes, path ->
 * path.1 -> ... -> path.<keep> (the oldest dropped) and a new path is started; max_bytes 0 =
 * never rotate (for an external logrotate). A character device, FIFO, socket or "-" (standard
 * output) is written THROUGH: never rotated, renamed or truncated. A FIFO or socket whose
 * reader went away fails the write with EPIPE (counted) instead of killing the process.
 *
 * Header (optional, the flow CSV's): the first line of every new regular file (created, or
 * empty, or started by a rotation), and written once at the first open of a device or "-".
 * An existing non-empty file must start with the same header, or the open is refused (one
 * line): appending rows of other columns would make the file unreadable.
 *
 * reopen (SIGHUP) closes and opens path again (an external logrotate renamed it). Losses: every
 * line not written is counted (stats.errors); the first failure of an episode prints one line
 * naming the file, the step and the real errno; a later successful write or a reopen ends the
 * episode. Losses never stop the sensor.
 *
 * One writer (the detector thread). Not thread-safe. May block on the disk. */
#ifndef SVCSENSOR_LINEFILE_H
#define SVCSENSOR_LINEFILE_H

#include <stddef.h>
#include <stdint.h>

struct linefile;

struct linefile_stats {
	uint64_t lines;	    /* lines written whole (the header not counted) */
	uint64_t bytes;	    /* bytes of those lines */
	uint64_t rotations; /* size rotations done */
	uint64_t errors;    /* lines lost to write / open errors */
	int last_err;	    /* errno of the last failure (0: none yet) */
};

struct linefile_opts {
	uint64_t max_bytes; /* rotate before passing this size; 0 = never */
	unsigned keep;	    /* rotated files kept besides the live one (0: dropped at rotation) */
	const char *what;   /* "anomaly log": messages ("cannot open the anomaly log") */
	const char *unit;   /* "anomaly lines": what is lost ("anomaly lines are being lost") */
	const char *header; /* first line of a new file, with its '\n'; NULL = none */
};

#define LINEFILE_BATCH_MAX (64u * 1024) /* batched lines are written at least this often */

/* Open (create, append) path. Strings of o are borrowed for the file's life (string literals in
 * practice); path is copied. NULL after one line on stderr naming the file and the reason. */
struct linefile *linefile__open(const char *path, const struct linefile_opts *o);

/* Batch one whole line (ending with '\n'); the batch is written first when the line would not
 * fit in it, or the live file would pass max_bytes (a batch never straddles a rotation).
 * 0, or the negative errno of a batch written now (its lines counted lost). */
int linefile__add(struct linefile *l, const char *line, size_t len);

/* Write the batch now (one write(2)). 0 or negative errno (lines counted lost). */
int linefile__flush(struct linefile *l);

/* Write `lines` whole lines (len bytes) now, after the batch, rotating first if due. */
int linefile__write(struct linefile *l, const char *buf, size_t len, uint64_t lines);

/* Flush, close and open path again. 0 or negative errno (counted, reported; the next write
 * retries the open). */
int linefile__reopen(struct linefile *l);

const struct linefile_stats *linefile__stats(const struct linefile *l);

/* Flush, close and free. NULL is fine. */
void linefile__close(struct linefile *l);

#endif
