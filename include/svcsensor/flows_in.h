/* flows_in.h - read finished flows back from a flow CSV in nfstream's column layout (what
 * nfstream's to_csv() writes, and what svcsensor's own --flows-out writes). The flow CSV input
 * (src/input/flows_csv.c, input.h) feeds them to the detector: svcsensor --learn --flows-in FILE
 * learns a service map without reading packets.
 *
 * The header row is mapped by name: columns may come in any order, unknown columns are ignored.
 *   required:       src_ip, dst_ip, application_name
 *   used if there:  src_port, dst_port, protocol, ip_version, vlan_id,
 *                   bidirectional_first_seen_ms, bidirectional_last_seen_ms,
 *                   bidirectional_packets, bidirectional_bytes, src2dst_packets, src2dst_bytes,
 *                   dst2src_packets, dst2src_bytes, requested_server_name,
 *                   application_category_name, application_is_guessed, end_reason (svcsensor's
 *                   spelling) or else expiration_id (nfstream's: 0 idle, 1 active)
 * Parsing is RFC 4180 (libcsv). nfstream's to_csv() escapes a quote inside a quoted field as
 * \" rather than ""; when the header names src_mac or src_oui (columns nfstream always writes
 * and svcsensor never does) \" is read as an escaped quote.
 * An optional numeric field that is empty reads as 0 (unknown); one that holds anything but a
 * number in range makes the row bad. When the per-direction counters are absent, the
 * bidirectional ones are put in the src->dst direction, so the flow's totals stay right. */
#ifndef SVCSENSOR_FLOWS_IN_H
#define SVCSENSOR_FLOWS_IN_H

#include <stdint.h>
#include <stdio.h>

#include "svcsensor/flow.h"

/* How many bad rows are reported one per line; the rest are only counted. */
#define FLOWS_IN_REPORT_MAX 10

struct flows_in_stats {
	uint64_t rows;	   /* data rows seen (blank lines are not rows) */
	uint64_t accepted; /* rows handed to fn */
	uint64_t rejected; /* bad rows: not handed to fn */
};

/* Called once per good row, in file order. rec is borrowed: valid during the call only (the
 * reader reuses it). Return 0 to go on; any other value stops the read, and flows_in__read
 * returns that value. */
typedef int (*flows_in_fn)(void *ctx, const struct flow_record *rec);

/* Read the flow CSV at path and call fn for every good row. A bad row (an address that does
 * not parse, an empty required field, a number out of range, a wrong number of fields, broken
 * quoting) is counted in st->rejected and skipped; the first FLOWS_IN_REPORT_MAX are reported
 * as one line each, "svcsensor: flows.csv:LINE: reason" (LINE: where the row's first field
 * ends). st may be NULL; it is zeroed first and filled as far as the read got.
 * Returns 0 when the whole file was read (bad rows or not), fn's value when fn stopped it, or
 * a negative errno after one line on stderr when the file cannot be used at all: missing or
 * unreadable (-errno of open), empty or without a header (-ENODATA), a required column missing
 * (-EINVAL), a read error (-EIO), out of memory (-ENOMEM). Blocks on file I/O only. */
int flows_in__read(const char *path, flows_in_fn fn, void *ctx, struct flows_in_stats *st);

/* The same read in steps, for a reader that hands rows on as they come (the flow CSV input):
 * flows_in__open opens the file and reads its header (the errors of flows_in__read that make a
 * file unusable: missing, unreadable, empty, no header, a required column missing), returning 0
 * and *out, or a negative errno after one line. flows_in__rows then calls fn for every good row
 * to the end of the file and returns as flows_in__read does. flows_in__stats: the counts so far.
 * flows_in__close frees everything (NULL ok). One thread at a time. */
struct flows_in;
int flows_in__open(const char *path, struct flows_in **out);
/* flows_in__open on a stream already open (path only names it in messages): r owns f from
 * then on, and f is closed on failure too. */
int flows_in__open_stream(FILE *f, const char *path, struct flows_in **out);
int flows_in__rows(struct flows_in *r, flows_in_fn fn, void *ctx);
const struct flows_in_stats *flows_in__stats(const struct flows_in *r);
void flows_in__close(struct flows_in *r);

#endif
