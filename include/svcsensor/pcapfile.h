/* pcapfile.h - offline input with more than one worker: one reader thread reads the files in
 * order, decodes each frame once, and hands it to the worker that the symmetric address-pair
 * hash names. Classic pcap files are walked through mapped windows (pcapscan.h) and the
 * batches point into them; anything else is read with libpcap and copied into the batches.
 *
 * One reader thread, N workers. Each worker has a bounded channel of packet batches (a ring
 * of PKTCHAN_DEPTH batches guarded by two counting semaphores: one wait per batch of up to
 * PKTBATCH_PKTS packets, not per packet). Packets of one flow go to one worker in file order,
 * so the result does not depend on the number of workers. */
#ifndef SVCSENSOR_PCAPFILE_H
#define SVCSENSOR_PCAPFILE_H

#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "svcsensor/decode.h"

struct pcapscan;
struct pcapscan_win;

#define PKTBATCH_PKTS 1024
#define PKTBATCH_BYTES (2u << 20) /* >= the largest snaplen libpcap accepts (262144) */
#define PKTCHAN_DEPTH 4

/* A batch of decoded packets. Copied packets (libpcap): pv.l3 is rebased onto data[] by the
 * consumer (pkt_off). Mapped packets: pv.l3 points into win, which the consumer releases
 * (pcapscan__win_release) once it is done with the batch. */
struct pktbatch {
	uint32_t count;
	uint32_t used;		  /* bytes of data[] in use */
	uint64_t clock_us;	  /* the reader's packet clock when the batch was sent */
	bool last;		  /* end of input: no batch follows */
	struct pcapscan_win *win; /* mapped packets: the window they are in, else NULL */
	struct pkt_view pv[PKTBATCH_PKTS];
	uint32_t pkt_off[PKTBATCH_PKTS];
	uint8_t data[PKTBATCH_BYTES];
};

struct pktchan {
	struct pktbatch *slots[PKTCHAN_DEPTH];
	sem_t full, empty;
	unsigned wpos, rpos; /* producer's / consumer's own index */
};

int pktchan__init(struct pktchan *c);
void pktchan__destroy(struct pktchan *c);
/* Consumer side: wait for the next filled batch; pv[i].l3 already point to the packets. */
struct pktbatch *pktchan__get(struct pktchan *c);
/* Consumer side: give the batch back to the producer. */
void pktchan__put(struct pktchan *c);

/* Reader statistics (the reader decodes, so decode drops of offline input are counted here). */
struct pcapfile_stats {
	uint64_t packets;		/* records read */
	uint64_t bytes;			/* wire bytes of records read */
	uint64_t decode[DECODE__COUNT]; /* by decode result */
	uint64_t files_ok, files_failed;
	bool truncated; /* some file ended in the middle of a record */
	uint64_t last_ts_us;
};

struct pcapfile_reader {
	const char *const *files;
	unsigned n_files;
	const char *bpf_filter; /* optional capture filter (tcpdump syntax) */
	const struct pcapscan *scan; /* the files can be walked mapped (then files is unused) */
	struct pktchan *chans;	/* one per worker */
	unsigned n_workers;
	atomic_bool *stop; /* set by main on SIGINT/SIGTERM */
	bool progress;	   /* progress line on stderr */
	struct pcapfile_stats st;
	int error; /* 0, or the negative errno of the first fatal error */
};

/* Check that each file can be opened as a capture with a supported link type before threads
 * start: one line per problem. 0 or negative errno. */
int pcapfile__check(const char *const *files, unsigned n, const char *bpf_filter);

/* Reader thread body (arg: struct pcapfile_reader *). Reads every file in order, then sends a
 * last batch to every worker. A file that breaks mid-way is reported (file, record number,
 * libpcap's reason) and what was read stays. */
void *pcapfile__run(void *arg);

#endif
