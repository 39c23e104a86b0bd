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
 * in the same order as the text. Memory grows with the distinct (verdict, source, destination)
 * triples seen. Used by the detector thread only: not thread-safe. */
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

/* Write the text form to out. 0 or -EIO. */
int report__write_text(const struct report *r, FILE *out);

/* Write the JSON form to out (shares as exact decimals, 99.95). 0, -EIO or -ENOMEM. */
int report__write_json(const struct report *r, FILE *out);

/* Save the text form at path and the JSON form at path + ".json", each atomically (temporary
 * file in the same directory, fsync, rename), mode 0644. The previous files stay whole on any
 * failure. 0, or a negative errno after one line on stderr naming the file. Blocks on disk. */
int report__save(const struct report *r, const char *path);

/* Print the last saved report at path to out (svcsensor -a). 0, or negative errno after one
 * line on stderr. */
int report__print_saved(const char *path, FILE *out);

/* As a sink (report_sink, include/svcsensor/sink.h): every flow is added; the report is saved
 * every report_interval when flows came since the last save, and at close. Opened only when
 * report_file is set. */

#endif
