/* test_flowq.c - the finished-flow queue: several producers, one consumer, nothing lost or
 * duplicated, order kept per producer, the consumer woken by a flush. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "svcsensor/flowq.h"

#define PRODUCERS 4
#define PER_PRODUCER 50000

struct producer {
	struct flowq *q;
	unsigned id;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	struct flowq_batch b;
	flowq__batch_init(&b);
	for (unsigned i = 0; i < PER_PRODUCER; i++) {
		struct flow_record *r = flow_record__new();
		cr_assert_not_null(r);
		r->worker = (uint16_t)p->id;
		r->pkts[0] = i; /* sequence number within the producer */
		flowq__push(p->q, &b, r);
		if (i % 1000 == 999)
			flowq__flush(p->q, &b); /* as a worker does at the end of an input batch */
	}
	flowq__flush(p->q, &b);
	return NULL;
}

Test(flowq, many_producers_nothing_lost_or_duplicated)
{
	struct flowq q;
	cr_assert_eq(flowq__init(&q), 0);
	pthread_t th[PRODUCERS];
	struct producer ps[PRODUCERS];
	for (unsigned i = 0; i < PRODUCERS; i++) {
		ps[i] = (struct producer){&q, i};
		cr_assert_eq(pthread_create(&th[i], NULL, produce, &ps[i]), 0);
	}
	uint64_t next[PRODUCERS] = {0};
	uint64_t total = 0;
	struct flowq_batch got;
	flowq__batch_init(&got);
	while (total < (uint64_t)PRODUCERS * PER_PRODUCER) {
		flowq__take(&q, &got, 50);
		struct flow_record *r;
		while ((r = flowq__batch_pop(&got))) {
			cr_assert_lt(r->worker, PRODUCERS);
			/* Per-producer order is kept, so every record is seen once, in sequence. */
			cr_assert_eq(r->pkts[0], next[r->worker],
				     "producer %u: got %llu, want %llu", r->worker,
				     (unsigned long long)r->pkts[0],
				     (unsigned long long)next[r->worker]);
			next[r->worker]++;
			total++;
			flow_record__free(r);
		}
	}
	for (unsigned i = 0; i < PRODUCERS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(next[i], PER_PRODUCER);
	}
	cr_assert_eq(flowq__take(&q, &got, 0), 0, "nothing beyond what was pushed");
	cr_assert_eq(flowq__depth(&q), 0);
	flowq__destroy(&q);
}

static void *late_flush(void *arg)
{
	struct flowq *q = arg;
	struct timespec d = {0, 100 * 1000 * 1000};
	nanosleep(&d, NULL);
	struct flowq_batch b;
	flowq__batch_init(&b);
	flowq__push(q, &b, flow_record__new());
	flowq__flush(q, &b);
	return NULL;
}

Test(flowq, sleeping_consumer_is_woken_by_flush)
{
	struct flowq q;
	cr_assert_eq(flowq__init(&q), 0);
	pthread_t th;
	pthread_create(&th, NULL, late_flush, &q);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct flowq_batch got;
	flowq__batch_init(&got);
	unsigned n = 0;
	while (!n)
		n = flowq__take(&q, &got, 5000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_eq(n, 1);
	/* Woken by the post, not by the 5 s timeout. */
	cr_assert_lt(waited, 4.0, "consumer slept %.2f s although a flush happened", waited);
	flow_record__free(flowq__batch_pop(&got));
	pthread_join(th, NULL);
	flowq__destroy(&q);
}

Test(flowq, destroy_frees_queued_records)
{
	struct flowq q;
	cr_assert_eq(flowq__init(&q), 0);
	struct flowq_batch b;
	flowq__batch_init(&b);
	for (int i = 0; i < 100; i++)
		flowq__push(&q, &b, flow_record__new());
	flowq__flush(&q, &b);
	cr_assert_eq(flowq__depth(&q), 100);
	flowq__destroy(&q); /* ASan reports a leak if records stayed behind */
}
