/* report.h - the seed's anomaly report: per verdict, per source key, per destination key, the
 * bytes exchanged (both directions), each destination's share of its source's bytes and the
 * distinct applications used (first-seen order), plus flow counts.
 *
 * Text form (the seed's layout; sections NONE first, then the anomalies in the seed's order,
 * alphabetical by label; only verdicts that occurred; sources and destinations by bytes
 * descending, ties by name, so the text is deterministic):
 *
 *   +++++++ NONE anomaly flows +++++++
 *   + 10.42.0.130     exchange  81181970 bytes with:
 *   	 - 10.42.0.1      ,     40464 bytes (0.05%) using ['DNS', 'DNS.Amazon']
 *   	 - remote         ,  81141506 bytes (99.95%) using ['TLS.Amazon', 'HTTP']
 *
 *   +++++++ On 611 flows, 268 anomalies +++++++
 *
 * Shares are hundredths of a percent rounded by largest remainder, so the shares of one source
 * always add up to exactly 100.00%. JSON form (report__write_json, saved as path + ".json"):
 *
 *   {"totals": {"flows": N, "anomalies": M, "per_verdict": {"NONE": n, ...every verdict}},
 *    "verdicts": [{"verdict": "NONE", "label": "NONE", "flows": n, "bytes": b,
 *                  "sources": [{"source": "10.42.0.130", "bytes": b, "flows": n,
 *                               "destinations": [{"destination": "remote", "bytes": b,
 *                                                 "share": 99.95, "flows": n,
 *                                                 "apps": ["TLS.Amazon", "HTTP"]}]}]}]}
 *
 * in the same order as the text.
 *
 * Bound: at most max_keys (verdict, source, destination) rows (report_max_keys; 0 = no bound,
 * the default of report__new). The flows of a key beyond it are added to one row per verdict,
 * source "(other)" to destination "(other)", written last in its section (text and JSON alike)
 * with its bytes, flows and applications; report__folded counts those flows. Memory: about
 * 0.5 KiB per row (docs/report.md), so max_keys decides it, not the traffic.
 *
 * Threads: a struct report is used by one thread (the detector). The sink saves from a
 * snapshot on its own saver thread (src/sink/report.c, docs/report.md). */
#ifndef SVCSENSOR_REPORT_H
#define SVCSENSOR_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "svcsensor/verdict.h"

struct report;

/* An empty report; NULL on out of memory. */
struct report *report__new(void);
void report__free(struct report *r);

/* Account one flow: bytes = both directions; first_us = the flow's first packet time, which
 * orders each destination's applications (earliest first, then by name) so the text does not
 * depend on the order workers finish flows in. 0 or -ENOMEM (the flow is then counted in the
 * totals but may be missing from the breakdown). -EINVAL for a verdict out of range. */
int report__add(struct report *r, enum verdict v, const char *src, const char *dst, const char *app,
		uint64_t bytes, uint64_t first_us);

/* Flows accounted, and those whose verdict is not NONE. */
void report__totals(const struct report *r, uint64_t *flows, uint64_t *anomalies);

/* Bound the rows (see Bound above); applies to rows made from now on. */
void report__set_max_keys(struct report *r, uint64_t max_keys);

/* (verdict, source, destination) rows kept, (other) rows not counted: at most max_keys. */
uint64_t report__keys(const struct report *r);

/* Flows added to an (other) row because their key was new and the bound reached. A flow of a
 * key already kept is never folded. Not a loss: every folded flow is in the totals, its
 * verdict's figures and its (other) row. */
uint64_t report__folded(const struct report *r);

/* Write the text form to out. 0, -ENOMEM or the stream's errno (ENOSPC, EIO, ...). */
int report__write_text(const struct report *r, FILE *out);

/* Write the JSON form to out (shares as exact decimals, 99.95). As report__write_text. */
int report__write_json(const struct report *r, FILE *out);

/* Save the text form at path and the JSON form at path + ".json", each atomically (temporary
 * file in the same directory, fsync, rename), mode 0644. The previous files stay whole on any
 * failure. 0, or a negative errno after one line on stderr naming the file. Blocks on disk. */
int report__save(const struct report *r, const char *path);

/* Print the last saved report at path to out (svcsensor -a). 0, or the negative errno of the
 * read or write that failed, after one line on stderr naming the file or the output
 * ("svcsensor: standard output: cannot print the report: No space left on device"). */
int report__print_saved(const char *path, FILE *out);

/* As a sink (report_sink, include/svcsensor/sink.h), opened only when report_file is set,
 * bounded by report_max_keys: every flow is added on the detector thread. Every
 * report_interval, when flows came since the last good save, the detector takes a snapshot
 * (O(rows), no allocation once grown) and a background thread (started at the first periodic
 * save, every signal blocked) sorts and writes it with atomic_file; a save due while one runs
 * is made after it (coalesced, never two at once). A failed periodic save prints one line
 * (atomic_file.h), is counted, and is tried again at the next interval. close(final) waits for
 * a running save, then saves everything on the calling thread and returns its error.
 *
 * Figures for the exit summary (self = the sink's instance; 0 for NULL): flows folded into the
 * (other) rows (read on the detector thread, or once it has ended), and periodic saves that
 * failed (any thread). */
uint64_t report_sink__folded(const void *self);
uint64_t report_sink__save_failures(const void *self);

#endif
