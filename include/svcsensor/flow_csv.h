/* flow_csv.h - flow export: every finished flow as one CSV row, nfstream's column names.
 *
 * Columns: id, expiration_id, src_ip, src_port, dst_ip, dst_port, protocol, ip_version, vlan_id,
 * bidirectional_first_seen_ms, bidirectional_last_seen_ms, bidirectional_duration_ms,
 * bidirectional_packets, bidirectional_bytes, src2dst_packets, src2dst_bytes, dst2src_packets,
 * dst2src_bytes, application_name, application_category_name, application_is_guessed,
 * requested_server_name, end_reason, and in detect mode verdict.
 * Bytes are IP bytes (IP header included, link layer not), see decode.h. Text fields are
 * quoted per RFC 4180 when they hold a comma, a quote or a line break. */
#ifndef SVCSENSOR_FLOW_CSV_H
#define SVCSENSOR_FLOW_CSV_H

#include <stdbool.h>

#include "svcsensor/flow.h"

struct flow_csv;

/* Open path for appending (a line file, linefile.h: "-" = standard output, a device is written
 * through) with the header (with_verdict adds the verdict column) written when the file is
 * new or empty, or after a rotation; an existing file with another header is refused. Rotation
 * by size: max_bytes (0 = never), keep rotated files. NULL after one line on stderr. */
struct flow_csv *flow_csv__open(const char *path, bool with_verdict, uint64_t max_bytes,
				unsigned keep);

/* Batch one row (written at the next flush, or when 64 KiB are batched). verdict is the
 * verdict name (ignored without the column). Errors are counted and reported once per
 * episode. Ids restart from 0 in each run. */
void flow_csv__write(struct flow_csv *c, const struct flow_record *r, const char *verdict);

/* Write the batched rows (one write(2)). 0 or negative errno (rows counted lost). */
int flow_csv__flush(struct flow_csv *c);

/* SIGHUP: flush, close and open path again (an external logrotate moved it). */
int flow_csv__reopen(struct flow_csv *c);

/* Rows lost so far (not written whole). */
uint64_t flow_csv__lost(const struct flow_csv *c);

/* Flush and close; 0, or negative errno if any row was lost (reported). */
int flow_csv__close(struct flow_csv *c);

/* As a sink (flow_csv_sink, include/svcsensor/sink.h): opened when flows_out is set, every flow
 * batched, written at each flush (after each detector pass), reopened on SIGHUP; the verdict
 * column in detect mode. */

/* nfstream's expiration_id for an end reason: 0 idle, 1 active, -1 anything else. */
int flow_csv__expiration_id(enum flow_end e);

#endif
