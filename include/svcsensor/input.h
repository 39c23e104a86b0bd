/* input.h - where a run's packets (or finished flows) come from: one interface, four
 * implementations, each one file under src/input/:
 *
 *   ring      ring.c       live: one AF_PACKET TPACKET_V3 ring per worker (afpacket.h), -i
 *   mapped    mapped.c     classic pcap files walked mapped (pcapscan.h), -r: by the worker
 *                          itself with one worker, by a reader thread that dispatches otherwise
 *   libpcap   pcapfile.c   anything else libpcap reads (pcapng, pipes, -r -): a reader thread
 *   flow CSV  flows_csv.c  finished flows from a CSV (flows_in.h), --flows-in: no packets
 *
 * The reader threads hand decoded packets to the workers through pktfeed.h. Every packet input
 * decodes through input__decode (input_stats.h): the one place where a frame becomes a packet
 * view and is counted.
 *
 * Life cycle (pipeline.c; main thread unless said):
 *   input__open       picks and opens the input (files checked, rings open, CSV header read);
 *                     sets n_workers, the number of workers that run a share
 *   ops->start        after the workers started (n_started of them): the input's own thread
 *   ops->run          on each worker's thread (worker.c): that worker's share, until the end
 *                     of the input or *stop; packets go to worker__account / worker__packet,
 *                     finished flows to worker__emit (worker.h)
 *   ops->live_stats   live inputs, while the workers run: the capture's counters so far
 *   ops->wait         once every worker ended: join the input's own thread
 *   ops->stats        after wait: every counter of the run
 *   ops->summary      after stats: the input's own lines of the exit summary
 *   ops->close        frees everything (also after a failed set-up: any step may be missing)
 * Ownership: the input owns what it opened (rings, mapped files, channels, the CSV file); the
 * caller owns the stop flag and must keep it alive until close. Errors: input__open returns 0 or
 * a negative errno after one line on stderr; later failures are counted in the stats (error:
 * the exit status is 1). A live input whose capture fails (an interface removed) says so in one
 * line and sets *stop itself, so that the run ends instead of going on without it.
 * Pipes (the standard input, a named pipe) are read in poll(2), never blocked in read(2): the
 * stop flag ends them within 0.1 s whatever the writer does, and a quiet writer gets the
 * packets read so far handed to the workers (pktfeed__flush_pending). */
#ifndef SVCSENSOR_INPUT_H
#define SVCSENSOR_INPUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "svcsensor/input_stats.h"

struct svc_config;
struct worker;
struct input;

/* Packets handed to worker__account at most at once. */
#define PKTBATCH_PKTS 1024

struct input_args {
	const struct svc_config *cfg; /* interface, capture filter, ring sizes, fanout, promisc */
	const char *const *files;     /* -r, in order */
	unsigned n_files;
	const char *flows_in; /* --flows-in: a flow CSV (then files and the interface are unused) */
	unsigned threads;     /* workers wanted (>= 1) */
	bool learn;	      /* the flows are learned, not judged (wording of the CSV summary) */
	bool progress;	      /* a progress line on stderr (offline inputs) */
	atomic_bool *stop;    /* set by the caller (signals, --duration): end the input soon */
};

struct input_ops {
	const char *name;
	bool live;    /* a capture that runs until stopped: --duration, --user, stats lines */
	bool records; /* gives finished flows, not packets: the workers keep no flow table */
	/* Start the input's own thread for the n_started workers that run (fewer than n_workers
	 * when some could not start: *stop is then set). 0, or a negative errno after one line
	 * (the workers were still given their end). NULL: nothing to start. */
	int (*start)(struct input *in, unsigned n_started);
	/* Worker w's share (w->id < n_workers), on w's thread. */
	void (*run)(struct input *in, struct worker *w);
	/* Live inputs: captured, drops and freezes so far (the main thread only). NULL offline. */
	void (*live_stats)(struct input *in, struct input_stats *st);
	/* Join the input's own thread. NULL: none. */
	void (*wait)(struct input *in);
	/* Every counter of the run, into *st (zeroed by the caller). */
	void (*stats)(struct input *in, struct input_stats *st);
	/* The input's own exit summary lines on stderr. NULL: none. */
	void (*summary)(struct input *in, const struct input_stats *st);
	void (*close)(struct input *in);
};

/* The part every implementation starts with (its own state follows). */
struct input {
	const struct input_ops *ops;
	unsigned n_workers; /* workers that run a share; set by open */
};

/* Open the input the arguments name: the flow CSV, else the files (checked with libpcap,
 * walked mapped when every one is a classic pcap, read with libpcap otherwise), else the
 * interface. 0 and *out (close it with ops->close), or a negative errno after one line. */
int input__open(const struct input_args *a, struct input **out);

/* The implementations (input__open picks one). Same contract as input__open; the mapped walk
 * returns 1 (nothing opened) when a file is not a classic pcap. */
int input_ring__open(const struct input_args *a, struct input **out);
int input_mapped__open(const struct input_args *a, struct input **out);
int input_pcap__open(const struct input_args *a, struct input **out);
int input_csv__open(const struct input_args *a, struct input **out);

#endif
