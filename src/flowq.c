/* flowq.c - finished-flow queue: wfcqueue + batched splice + consumer wake-up. */
#include "svcsensor/flowq.h"
#include "svcsensor/tsan.h"

#include <errno.h>
#include <time.h>

/* The splice is a full barrier (uatomic_xchg) that TSan cannot see: everything a producer
 * wrote before flushing happens-before what the consumer does after taking (tsan.h). */

int flowq__init(struct flowq *q)
{
	__cds_wfcq_init(&q->head, &q->tail);
	if (sem_init(&q->wake, 0, 0) != 0)
		return -errno;
	atomic_init(&q->sleeping, false);
	atomic_init(&q->pushed, 0);
	atomic_init(&q->popped, 0);
	atomic_init(&q->stalls, 0);
	q->max_depth = FLOWQ_MAX_DEPTH;
	return 0;
}

void flowq__destroy(struct flowq *q)
{
	struct flowq_batch rest;
	flowq__batch_init(&rest);
	flowq__take(q, &rest, 0);
	struct flow_record *r;
	while ((r = flowq__batch_pop(&rest)))
		flow_record__free(r);
	sem_destroy(&q->wake);
}

void flowq__batch_init(struct flowq_batch *b)
{
	__cds_wfcq_init(&b->head, &b->tail);
	b->n = 0;
}

void flowq__push(struct flowq *q, struct flowq_batch *b, struct flow_record *r)
{
	cds_wfcq_node_init(&r->qnode);
	/* The batch is private: the blocking-API enqueue on it never contends. */
	cds_wfcq_enqueue(&b->head, &b->tail, &r->qnode);
	if (++b->n >= FLOWQ_BATCH)
		flowq__flush(q, b);
}

void flowq__flush(struct flowq *q, struct flowq_batch *b)
{
	if (!b->n)
		return;
	unsigned n = b->n;
	tsan_release(q);
	/* Splicing into the shared queue is wait-free for the enqueuer side; the private batch
	 * (source) has a single user, so the blocking dequeue side of it never waits. */
	__cds_wfcq_splice_blocking(&q->head, &q->tail, &b->head, &b->tail);
	b->n = 0;
	atomic_fetch_add_explicit(&q->pushed, n, memory_order_release);
	if (atomic_load(&q->sleeping) && atomic_exchange(&q->sleeping, false))
		sem_post(&q->wake);
	if (q->max_depth && flowq__depth(q) > q->max_depth) {
		atomic_fetch_add_explicit(&q->stalls, 1, memory_order_relaxed);
		struct timespec pause = {0, 100 * 1000};
		while (flowq__depth(q) > q->max_depth / 2)
			nanosleep(&pause, NULL);
	}
}

void flowq__wake(struct flowq *q)
{
	sem_post(&q->wake);
}

static unsigned take_now(struct flowq *q, struct flowq_batch *out)
{
	if (cds_wfcq_empty(&q->head, &q->tail))
		return 0;
	/* Count by walking: exact, and the consumer walks the list anyway. */
	struct flowq_batch tmp;
	flowq__batch_init(&tmp);
	__cds_wfcq_splice_blocking(&tmp.head, &tmp.tail, &q->head, &q->tail);
	tsan_acquire(q);
	unsigned n = 0;
	struct cds_wfcq_node *node;
	__cds_wfcq_for_each_blocking(&tmp.head, &tmp.tail, node) n++;
	__cds_wfcq_splice_blocking(&out->head, &out->tail, &tmp.head, &tmp.tail);
	out->n += n;
	atomic_fetch_add_explicit(&q->popped, n, memory_order_relaxed);
	return n;
}

unsigned flowq__take(struct flowq *q, struct flowq_batch *out, unsigned timeout_ms)
{
	unsigned n = take_now(q, out);
	if (n || !timeout_ms)
		return n;
	atomic_store(&q->sleeping, true);
	/* A flush that ran before the flag was visible did not post: look again before sleeping.
	 * A post that arrives after we stopped waiting only makes a later wait return early. */
	n = take_now(q, out);
	if (!n) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		ts.tv_sec += timeout_ms / 1000 + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		while (sem_timedwait(&q->wake, &ts) != 0 && errno == EINTR)
			;
	}
	atomic_store(&q->sleeping, false);
	return n ? n : take_now(q, out);
}

struct flow_record *flowq__batch_pop(struct flowq_batch *b)
{
	struct cds_wfcq_node *node = __cds_wfcq_dequeue_blocking(&b->head, &b->tail);
	if (!node)
		return NULL;
	b->n--;
	return caa_container_of(node, struct flow_record, qnode);
}

uint64_t flowq__depth(struct flowq *q)
{
	uint64_t push = atomic_load_explicit(&q->pushed, memory_order_acquire);
	uint64_t pop = atomic_load_explicit(&q->popped, memory_order_relaxed);
	return push > pop ? push - pop : 0;
}
