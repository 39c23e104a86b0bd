/* worker.h - one worker thread: its share of the input (input.h: its AF_PACKET ring, the pcap
 * files it walks itself, the batches a reader thread sends it, or the flow CSV's rows), its flow
 * table and nDPI module, and its side of the finished-flow queue. Nothing in a worker is shared
 * with another worker.
 *
 * The thread body runs the input's share (in->ops->run), then ends every flow (reason shutdown),
 * flushes them to the queue and counts itself done. The input calls back on the worker's thread:
 * worker__account for a batch of packets, worker__packet for one, worker__expire and
 * worker__flush to keep flows ageing and the detector fed, worker__emit for a finished flow read
 * from elsewhere (no flow table then). */
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
#include "svcsensor/input.h"

struct worker {
	unsigned id;
	pthread_t thread;
	struct input *input;	 /* runs this worker's share (borrowed) */
	struct flow_table *table; /* NULL when the input gives finished flows */
	struct flowq *queue;	 /* shared, multi-producer */
	struct flowq_batch out;	 /* this worker's private batch */
	atomic_uint *done_count; /* incremented when the worker has flushed everything */
	struct flow_table_stats stats; /* the table's counters when the thread ended */
	/* The table's records_lost, published after each batch for the live stats line. */
	atomic_uint_fast64_t records_lost;
	uint64_t hash[PKTBATCH_PKTS];  /* the current batch's flow hashes */
};

/* Set up a worker for its share of in: a flow table + nDPI module unless the input gives
 * finished flows. 0 or negative errno after one line. */
int worker__init(struct worker *w, unsigned id, const struct svc_config *cfg, struct input *in,
		 struct flowq *q, atomic_uint *done_count);

/* Thread body (arg: struct worker *): the input's share until its end (or stop), then end every
 * flow (reason shutdown), flush them to the queue and free the table. */
void *worker__run(void *arg);

/* The flow table's counters (after the thread was joined: as they were when it ended). */
const struct flow_table_stats *worker__stats(const struct worker *w);

/* Flow records lost so far (out of memory); any thread. */
uint64_t worker__records_lost(struct worker *w);

/* Free the flow table if the thread did not (after the thread was joined). */
void worker__destroy(struct worker *w);

/* ---- for the inputs, on the worker's thread ---- */

/* Account n <= PKTBATCH_PKTS decoded packets (pv[i].l3 readable during the call), then expire
 * flows at the input's clock. */
void worker__account(struct worker *w, const struct pkt_view *pv, uint32_t n, uint64_t clock_us);

/* Expire the flows due at clock_us (an idle input's clock still moves). */
void worker__expire(struct worker *w, uint64_t clock_us);

/* Account one decoded packet (pv->l3 readable during the call). */
static inline void worker__packet(struct worker *w, const struct pkt_view *pv)
{
	flow_table__packet(w->table, pv);
}

/* Hand a finished flow (ownership moves) to the queue, batched. */
static inline void worker__emit(struct worker *w, struct flow_record *r)
{
	flowq__push(w->queue, &w->out, r);
}

/* Splice what this worker finished into the queue: once per input batch or poll. */
static inline void worker__flush(struct worker *w)
{
	flowq__flush(w->queue, &w->out);
}

#endif
