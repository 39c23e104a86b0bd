/* pcapscan.h - offline input for classic pcap files, read through mapped windows.
 *
 * The file is mapped read-only in windows of the shared page cache (no copy into a buffer)
 * and walked record by record, each frame decoded once, the file prefetched ahead of the walk
 * (the walk follows a chain of record lengths; without it every record header is a memory
 * round trip). The mapped input (src/input/mapped.c) uses it: with -t 1 the worker walks the
 * file itself, one thread does everything; with more workers its reader thread walks it and
 * hands each worker pointers into the windows, not copies (pktfeed.h): a window stays mapped
 * until the last batch that points into it is done (reference counts), so resident memory
 * stays a few windows deep.
 *
 * Used when every -r file is a regular file in classic pcap format 2.4 (either byte
 * order, micro- or nanosecond). Anything else (pcapng, "-" for the standard input, older
 * formats) goes through libpcap in the reader thread. Records are handled as libpcap 1.10
 * handles them: a caplen above the file's snapshot is cut to it, one above 262144 is an
 * error, a record cut by the end of the file is reported with its number. A file cut shorter
 * while it is mapped (SIGBUS) ends the run with one line and status 2. tests/
 * test_readers.c checks that both inputs give the same flows, counts and messages. */
#ifndef SVCSENSOR_PCAPSCAN_H
#define SVCSENSOR_PCAPSCAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "svcsensor/decode.h"
#include "svcsensor/input_stats.h"

struct pcapscan_file;

/* The files, opened and checked once by the main thread; read-only while they are walked. */
struct pcapscan {
	struct pcapscan_file *files;
	unsigned n_files;
	atomic_bool *stop; /* set by main on SIGINT/SIGTERM: the walk stops soon after */
	bool progress;	   /* a progress line on stderr */
	bool walkable;	   /* pcapscan__open said yes (a SIGBUS handler is installed) */
};

/* A mapped window of a file, shared by the batches that point into it. */
struct pcapscan_win {
	const uint8_t *base;
	uint64_t off, len; /* file offset of base[0], bytes mapped */
	atomic_uint refs;  /* the walk's own reference + one per batch holding it */
};

/* Take / drop a reference; the last one unmaps the window. Thread-safe. */
void pcapscan__win_hold(struct pcapscan_win *w);
void pcapscan__win_release(struct pcapscan_win *w);

/* A position in the input; it also keeps the input's statistics and reports its errors. */
struct pcapscan_cursor {
	const struct pcapscan *s;
	unsigned file;		/* index of the file being walked */
	struct pcapscan_win *win; /* current window of that file, or NULL */
	uint64_t off;		/* file offset of the next record */
	uint64_t pf;		/* file offset prefetched up to */
	uint64_t record;	/* records walked in this file */
	uint64_t next_progress; /* monotonic ms of the next progress line */
	bool file_open;		/* the walk of files[file] has started */
	bool done;
	struct input_stats st;	/* packets, bytes, decode results, files (input_stats.h) */
	int error;		  /* 0 or the negative errno of the first error */
};

/* Decide whether files can be walked: 1 (s is set up; pcapscan__close it), 0 (use libpcap;
 * nothing to close), negative errno after one line (a file that pcapfile__check accepted
 * could not be opened again). */
int pcapscan__open(struct pcapscan *s, const char *const *files, unsigned n,
		   const char *bpf_filter, atomic_bool *stop, bool progress);
void pcapscan__close(struct pcapscan *s);

void pcapscan__cursor_init(struct pcapscan_cursor *c, const struct pcapscan *s);

/* The next decoded packets, up to max: fills pv (pv[i].l3 points into c->win, which stays
 * mapped until the next call unless the caller holds it) and *clock (the largest time of
 * every record walked so far). Returns after at most 1024 records walked, so the caller can
 * expire flows in step with the capture: 0 packets is a normal answer. -1 at the end of the
 * input (nothing in pv; the cursor holds no window any more). */
int pcapscan__next(struct pcapscan_cursor *c, struct pkt_view *pv, unsigned max,
		   uint64_t *clock);

#endif
