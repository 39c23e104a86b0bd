/* flowq.h - the finished-flow queue: many producers (workers), one consumer (detector).
 *
 * Lock-free: liburcu's wait-free concurrent queue (wfcqueue). Producers collect records in a
 * private batch and splice the whole batch into the shared queue in one step, so the shared
 * cache line is touched once per batch, not once per flow. The consumer splices everything
 * queued into its own list in one step too. wfcqueue's dequeue side never sleeps, so the
 * consumer has its own wake-up: a semaphore posted only when the consumer said it sleeps. */
#ifndef SVCSENSOR_FLOWQ_H
#define SVCSENSOR_FLOWQ_H

#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <urcu/wfcqueue.h>

#include "svcsensor/flow.h"

struct flowq {
	struct __cds_wfcq_head head; /* splice into it from any thread; blocking API */
	struct cds_wfcq_tail tail;
	sem_t wake;
	atomic_bool sleeping;
	atomic_uint_fast64_t pushed, popped; /* depth = pushed - popped */
	uint64_t max_depth;		     /* producers wait above this (0 = unbounded) */
	atomic_uint_fast64_t stalls;	     /* times a producer waited for the consumer */
};

/* A producer's private batch; flushed into the queue by flowq__flush. */
struct flowq_batch {
	struct __cds_wfcq_head head;
	struct cds_wfcq_tail tail;
	unsigned n;
};

#define FLOWQ_BATCH 64
/* Records queued at most before producers wait: bounds memory when a worker ends many flows
 * at once (shutdown of a million flows) or the detector falls behind (~400 B a record). */
#define FLOWQ_MAX_DEPTH 2048

int flowq__init(struct flowq *q);
/* Frees any record still queued. No producer or consumer may run. */
void flowq__destroy(struct flowq *q);

void flowq__batch_init(struct flowq_batch *b);
/* Add a record to the batch (ownership moves); flushes when the batch is full. */
void flowq__push(struct flowq *q, struct flowq_batch *b, struct flow_record *r);
/* Move the whole batch into the queue and wake the consumer if it sleeps. Waits (sleeping
 * 100 us at a time, counted in stalls) while the queue holds more than max_depth records. */
void flowq__flush(struct flowq *q, struct flowq_batch *b);

/* Producer that ends: wake the consumer now, whether it sleeps or is about to (its next sleep
 * then returns at once), so it sees the end without waiting for its timeout. */
void flowq__wake(struct flowq *q);
/* Consumer: take every queued record into out (a private batch). If none is queued, sleep up to
 * timeout_ms for a flush. Returns the number of records taken. */
unsigned flowq__take(struct flowq *q, struct flowq_batch *out, unsigned timeout_ms);
/* Pop the first record of a private batch, or NULL when it is empty. */
struct flow_record *flowq__batch_pop(struct flowq_batch *b);

/* Records queued and not yet taken (approximate while producers run). */
uint64_t flowq__depth(struct flowq *q);

#endif
