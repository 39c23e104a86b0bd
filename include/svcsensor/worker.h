/* worker.h - one worker thread: its input (its share of the pcap files' packets, walked by
 * itself or sent by the reader thread, or its own AF_PACKET ring), its flow table and nDPI module, and its side of the finished-flow queue.
 * Nothing in a worker is shared with another worker. */
#ifndef SVCSENSOR_WORKER_H
#define SVCSENSOR_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "svcsensor/config.h"
#include "svcsensor/decode.h"
#include "svcsensor/flow_table.h"
#include "svcsensor/flowq.h"
#include "svcsensor/pcapfile.h"
#include "svcsensor/pcapscan.h"

struct afpacket;

struct worker {
	unsigned id;
	pthread_t thread;
	struct flow_table *table;
	struct flowq *queue;		/* shared, multi-producer */
	struct flowq_batch out;		/* this worker's private batch */
	struct pktchan *chan;		/* offline input from the reader thread, or NULL */
	struct pcapscan_cursor cursor;	/* offline input walked by the worker itself (-t 1):
					 * its position; cursor.s is NULL otherwise */
	struct afpacket *ring;		/* live input, or NULL */
	atomic_bool *stop;		/* live: stop capturing */
	atomic_uint *done_count;	/* incremented when the worker has flushed everything */
	uint64_t decode[DECODE__COUNT]; /* live input: decode results (offline: the reader's) */
	uint64_t live_frames;
	struct flow_table_stats stats; /* the table's counters when the thread ended */
	uint64_t hash[PKTBATCH_PKTS]; /* offline: the current batch's flow hashes */
	struct pkt_view pv[PKTBATCH_PKTS]; /* offline, scan: the current batch */
	int error;
};

/* Set up a worker (flow table + nDPI module). 0 or negative errno after one line. */
int worker__init(struct worker *w, unsigned id, const struct svc_config *cfg, struct flowq *q,
		 atomic_uint *done_count);

/* Thread body (arg: struct worker *): process input until the last batch (offline) or stop
 * (live), then end every flow (reason shutdown), flush them to the queue and free the table. */
void *worker__run(void *arg);

/* The flow table's counters (after the thread was joined: as they were when it ended). */
const struct flow_table_stats *worker__stats(const struct worker *w);

/* Free the flow table if the thread did not (after the thread was joined). */
void worker__destroy(struct worker *w);

#endif
