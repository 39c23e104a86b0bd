/* anomaly_log.h - one JSON object per line per anomalous flow, in a file that rotates by size.
 *
 * Line schema: docs/anomaly-log.schema.json (every field always present). Lines are written
 * whole, one or a batch of them per write(2) on an O_APPEND descriptor, so a reader (tail -F,
 * a log shipper) never sees a torn line. Rotation: when the next line would take the file past
 * max_bytes, path -> path.1 -> ... -> path.<keep> (the oldest dropped) and a new path is
 * started; max_bytes 0 = never (an external logrotate does it). anomaly_log__reopen serves an
 * external logrotate (SIGHUP). A character device, FIFO or "-" (standard output) is written
 * through, never rotated. A write error is reported once per episode (one line on stderr) and
 * counted; it never stops the sensor. The file handling is linefile.h's.
 *
 * One writer: the detector thread. Not thread-safe. */
#ifndef SVCSENSOR_ANOMALY_LOG_H
#define SVCSENSOR_ANOMALY_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "svcsensor/flow.h"
#include "svcsensor/linefile.h"
#include "svcsensor/verdict.h"

struct anomaly_log;

/* Open (create, append) the log at path. max_bytes 0 = never rotate; keep = rotated files kept
 * besides the live one (0 = the full file is dropped at rotation). Returns NULL after one line
 * on stderr naming the file and the reason (no such directory, permission, ...). The path is
 * copied. */
struct anomaly_log *anomaly_log__open(const char *path, uint64_t max_bytes, unsigned keep);

/* Format the JSON line of one flow (compact, with the trailing '\n'). Returns a malloc'd string
 * the caller frees, its length in *len; NULL on out of memory. Strings are written as
 * json_out.h does: well-formed UTF-8 as it is, control characters escaped, ill-formed bytes (a
 * hostile SNI) replaced by U+FFFD, so the line is always valid JSON. */
char *anomaly_log__format(const struct flow_record *r, const char *src_key, const char *dst_key,
			  enum verdict v, size_t *len);

/* Log one anomalous flow: format, rotate if due, one write(2). 0, or a negative errno (the
 * error is counted, and reported on stderr only the first time). May block on the disk. */
int anomaly_log__write(struct anomaly_log *l, const struct flow_record *r, const char *src_key,
		       const char *dst_key, enum verdict v);

/* The same, batched: the line is kept with others (at most 64 KiB) and written whole with
 * them at the next anomaly_log__flush, or sooner when the batch is full or a rotation is due.
 * 0, or a negative errno of a batch written now (its lines counted lost). */
int anomaly_log__write_batched(struct anomaly_log *l, const struct flow_record *r,
			       const char *src_key, const char *dst_key, enum verdict v);

/* Write the batched lines now (one write(2)). 0 or negative errno (the lines counted lost,
 * reported once as above). Close and reopen flush too. */
int anomaly_log__flush(struct anomaly_log *l);

/* Append one ready line (must end with '\n') after any batched ones, rotating if due. The
 * primitive under anomaly_log__write; 0 or negative errno as above. */
int anomaly_log__write_line(struct anomaly_log *l, const char *line, size_t len);

/* Close and open path again (after an external logrotate renamed it). Re-arms the one-time
 * error report. 0 or negative errno (counted, reported; the next write retries the open). */
int anomaly_log__reopen(struct anomaly_log *l);

/* lines written, bytes, rotations, errors = lines lost (linefile.h). */
const struct linefile_stats *anomaly_log__stats(const struct anomaly_log *l);

/* Close and free. NULL is fine. */
void anomaly_log__close(struct anomaly_log *l);

/* As a sink (anomaly_log_sink, include/svcsensor/sink.h): opened in detect mode when log_file
 * is set; anomalous flows are batched and written at each flush; SIGHUP reopens. */

/* "tcp", "udp", "icmp", "icmpv6", "igmp", "gre", "esp", "ah", "sctp", or "other". */
const char *anomaly_log__l4_name(uint8_t proto);

#endif
