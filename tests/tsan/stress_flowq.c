/* stress_flowq.c - ThreadSanitizer stress of the finished-flow queue (Criterion cannot run under
 * TSan): 4 producers, 1 consumer, every record seen exactly once. Exit 0 on success. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "svcsensor/flowq.h"

#define PRODUCERS 4
#define PER 20000

static struct flowq q;

static void *produce(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct flowq_batch b;
	flowq__batch_init(&b);
	for (unsigned i = 0; i < PER; i++) {
		struct flow_record *r = flow_record__new();
		if (!r)
			abort();
		r->worker = (uint16_t)id;
		r->pkts[0] = i;
		flowq__push(&q, &b, r);
	}
	flowq__flush(&q, &b);
	return NULL;
}

int main(void)
{
	if (flowq__init(&q))
		return 1;
	pthread_t th[PRODUCERS];
	for (uintptr_t i = 0; i < PRODUCERS; i++)
		pthread_create(&th[i], NULL, produce, (void *)i);
	uint64_t next[PRODUCERS] = {0}, total = 0;
	struct flowq_batch got;
	flowq__batch_init(&got);
	while (total < (uint64_t)PRODUCERS * PER) {
		flowq__take(&q, &got, 20);
		struct flow_record *r;
		while ((r = flowq__batch_pop(&got))) {
			if (r->pkts[0] != next[r->worker]++) {
				fprintf(stderr, "stress_flowq: producer %u out of sequence\n",
					r->worker);
				return 1;
			}
			total++;
			flow_record__free(r);
		}
	}
	for (unsigned i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	flowq__destroy(&q);
	printf("stress_flowq: %llu records, each once\n", (unsigned long long)total);
	return 0;
}
