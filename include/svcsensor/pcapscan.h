/* pcapscan.h - offline input without a reader thread, for classic pcap files.
 *
 * Every worker maps the capture files itself (read-only windows of the shared page cache,
 * no copy) and walks all their records, in order; it decodes each frame and keeps the
 * frames whose symmetric address-pair hash names it, as the reader thread would have sent
 * it. Workers never wait for each other, and with -t 1 one thread does all the work, so
 * -t N scales with the cores. The walk is cheap next to the per-packet work (it prefetches
 * the file ahead of itself): on this machine it reads 2 M packets (1.8 GB) in ~0.14 s
 * where a bare libpcap loop needs ~0.45 s (README, Performance).
 *
 * Used when every -r file is a regular file in classic pcap format 2.4 (either byte
 * order, micro- or nanosecond). Anything else (pcapng, "-" for the standard input, older
 * formats) goes through the libpcap reader thread of pcapfile.h. Records are handled as libpcap 1.10
 * handles them: a caplen above the file's snapshot is cut to it, one above 262144 is an
 * error, a record cut by the end of the file is reported with its number. */
#ifndef SVCSENSOR_PCAPSCAN_H
#define SVCSENSOR_PCAPSCAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "svcsensor/decode.h"
#include "svcsensor/pcapfile.h"

struct pcapscan_file;

/* The files, opened and checked once by the main thread; read-only while workers run. */
struct pcapscan {
	struct pcapscan_file *files;
	unsigned n_files;
	unsigned n_workers;
	atomic_bool *stop; /* set by main on SIGINT/SIGTERM: every walk stops soon after */
	bool progress;	   /* worker 0 prints a progress line on stderr */
};

/* One worker's position in the input. Worker 0 also keeps the input's statistics and
 * reports its errors (every worker meets the same records, so one report is enough). */
struct pcapscan_cursor {
	const struct pcapscan *s;
	unsigned me;
	unsigned file;	       /* index of the file being walked */
	const uint8_t *win;    /* mapped window of that file */
	uint64_t win_off;      /* file offset of win[0] */
	uint64_t win_len;      /* bytes mapped */
	uint64_t off;	       /* file offset of the next record */
	uint64_t pf;	       /* file offset prefetched up to */
	uint64_t record;       /* records walked in this file */
	uint64_t next_progress; /* monotonic ms of the next progress line */
	bool file_open;	       /* the walk of files[file] has started */
	bool done;
	struct pcapfile_stats st; /* worker 0 only; packets as in pcapfile.h */
	int error;		  /* worker 0 only: 0 or the negative errno of the first error */
};

/* Decide whether files can be scanned: 1 (s is set up; pcapscan__close it), 0 (use the
 * reader thread; nothing to close), negative errno after one line (a file that
 * pcapfile__check accepted could not be opened again). */
int pcapscan__open(struct pcapscan *s, const char *const *files, unsigned n,
		   const char *bpf_filter, unsigned n_workers, atomic_bool *stop, bool progress);
void pcapscan__close(struct pcapscan *s);

void pcapscan__cursor_init(struct pcapscan_cursor *c, const struct pcapscan *s, unsigned me);

/* The next packets of this worker, up to max: fills pv (pv[i].l3 points into the mapped
 * file, valid until the next call) and *clock (the largest time of every record walked so
 * far, this worker's or not). Returns after at most 1024 records walked, so the caller can
 * expire flows in step with the capture even when none of them is its own: 0 packets is a
 * normal answer. -1 at the end of the input (nothing in pv); the cursor is then unmapped. */
int pcapscan__next(struct pcapscan_cursor *c, struct pkt_view *pv, unsigned max,
		   uint64_t *clock);

#endif
