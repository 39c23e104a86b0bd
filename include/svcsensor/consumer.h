/* consumer.h - the detector thread: the only consumer of the finished-flow queue and the owner
 * of every output. It judges (or learns) each record with the detector (detector.h), which hands
 * it to the sinks (sink.h), flushes them after each pass over the queue and ticks the detector
 * once a second. It ends when every worker counted itself done and the queue is
 * empty, then sets finished and wakes the main thread with SIGUSR1.
 *
 * Life cycle (main thread): consumer__load builds the detector (on a helper thread, while the
 * caller's own set-up runs), consumer__start, consumer__join, then
 * consumer__close frees what was made (also after a failed set-up). The fields marked "filled
 * by the caller" are set before consumer__load, in a zeroed struct. */
#ifndef SVCSENSOR_CONSUMER_H
#define SVCSENSOR_CONSUMER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "svcsensor/config.h"
#include "svcsensor/flowq.h"

struct detector;

struct consumer {
	/* filled by the caller */
	struct flowq *queue;
	atomic_uint *done_count; /* workers done */
	unsigned n_workers;
	bool learn;
	/* owned */
	struct detector *det;
	pthread_t thread;
	bool started;
	pthread_t main_thread; /* woken (SIGUSR1) when the last flow is judged */
	atomic_bool finished;
};

/* Build c->det from cfg (map loaded) on a helper thread while work(ctx) runs on this one: the
 * start-up takes the longer of the two, not both. 0, or a negative errno when either failed
 * (each said why; work's value first). */
int consumer__load(struct consumer *c, const struct svc_config *cfg, int (*work)(void *ctx),
		   void *ctx);

/* Start the thread ("svc-detector"), to be woken in the calling thread. 0 or a negative errno
 * after one line. */
int consumer__start(struct consumer *c);

/* Wait for the thread (no-op when it did not start). */
void consumer__join(struct consumer *c);

/* Free the detector (and with it any sink still open: after a failed set-up). */
void consumer__close(struct consumer *c);

#endif
