/* report_snap.h - private to src/sink/report*.c: a snapshot of the report's aggregates, the
 * only thing the report's writers read.
 *
 * The detector thread fills it (report__snapshot, src/sink/report.c) in one walk: flat arrays
 * of figures, with pointers to the report's keys and application names. Those strings are
 * never changed nor freed while the report lives (they sit in the report's blocks), so the
 * saver thread can read them while the detector keeps adding flows; the figures and the
 * application lists, which do change, are copied. The arrays are kept between saves and grown
 * when needed: after the first save a snapshot allocates nothing.
 *
 * The writers (src/sink/report_write.c) sort the snapshot in place (sources and destinations
 * by bytes descending, then key) and write the text or the JSON form from it. */
#ifndef SVCSENSOR_REPORT_SNAP_H
#define SVCSENSOR_REPORT_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "svcsensor/verdict.h"

/* The row that takes the flows of keys beyond report_max_keys (report.h). */
#define REPORT_OTHER_KEY "(other)"

struct rsnap_dst {
	const char *key;
	uint64_t bytes, flows;
	size_t app0, n_apps; /* apps[app0 .. app0 + n_apps) of the snapshot, in first-use order */
};

struct rsnap_src {
	const char *key;
	uint64_t bytes, flows;
	size_t dst0, n_dsts; /* dsts[dst0 .. dst0 + n_dsts) */
	bool other;	     /* the (other) row: written last in its section */
};

struct rsnap_verdict {
	uint64_t flows, bytes;
	size_t src0, n_srcs; /* srcs[src0 .. src0 + n_srcs) */
};

struct report_snap {
	struct rsnap_verdict v[VERDICT__COUNT];
	uint64_t flows;
	bool sorted;
	struct rsnap_src *srcs;
	struct rsnap_dst *dsts;
	const char **apps;
	size_t n_srcs, n_dsts, n_apps;
	size_t cap_srcs, cap_dsts, cap_apps;
};

struct report;

/* Fill s from r (detector thread): every figure copied, keys and application names shared.
 * The arrays of s are reused and grown as needed. 0 or -ENOMEM (s is then empty). */
int report__snapshot(const struct report *r, struct report_snap *s);

/* Write the text / JSON form of s to out (s is sorted first). 0 or a negative errno: the
 * stream's own error (ENOSPC, EIO, ...) when a write failed, -ENOMEM. */
int report_snap__write_text(struct report_snap *s, FILE *out);
int report_snap__write_json(struct report_snap *s, FILE *out);

/* Save the text at path and the JSON at path + ".json" (atomic_file.h). 0 or a negative
 * errno after one line on stderr naming the file. */
int report_snap__save(struct report_snap *s, const char *path);

void report_snap__free(struct report_snap *s);

#endif
