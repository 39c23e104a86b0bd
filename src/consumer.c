/* consumer.c - the detector thread and its start-up: the map loaded beside the workers' set-up. */
#include "svcsensor/consumer.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "svcsensor/common.h"
#include "svcsensor/detector.h"
#include "svcsensor/outpath.h"

static void *consumer_run(void *arg)
{
	struct consumer *c = arg;
	struct flowq_batch b;
	flowq__batch_init(&b);
	detector__thread_register();
	time_t last_tick = 0;
	for (;;) {
		/* Read "all workers done" before taking: a worker flushes before it counts itself
		 * done, so an empty take after that means nothing can follow. */
		bool all_done = atomic_load(c->done_count) == c->n_workers;
		unsigned n = flowq__take(c->queue, &b, all_done ? 0 : 100);
		struct flow_record *r;
		while ((r = flowq__batch_pop(&b))) {
			detector__flow(c->det, r); /* and to every sink */
			flow_record__free(r);
		}
		if (n)
			detector__flush(c->det);
		time_t now = time(NULL);
		if (now != last_tick) {
			detector__tick(c->det, (uint64_t)now);
			last_tick = now;
		}
		if (all_done && n == 0)
			break;
	}
	detector__thread_unregister();
	atomic_store(&c->finished, true);
	pthread_kill(c->main_thread, SIGUSR1);
	return NULL;
}

/* Start-up helper: load the map and build the detector. */
struct loader {
	pthread_t thread;
	const struct svc_config *cfg;
	bool learn;
	FILE *console;
	struct detector *det;
};

static void *load_detector(void *arg)
{
	struct loader *l = arg;
	l->det = detector__new(l->cfg, l->learn, l->console);
	return NULL;
}

int consumer__load(struct consumer *c, const struct svc_config *cfg, int (*work)(void *ctx),
		   void *ctx)
{
	/* "-" for the log, the flow CSV or the report takes standard output: the console's lines
	 * then go to standard error so the two streams do not mix (outpath.h). */
	FILE *console = outpath__takes_stdout(cfg) ? stderr : stdout;
	struct loader ld = {
	    .cfg = cfg, .learn = c->learn, .console = cfg->print == PRINT_NONE ? NULL : console};
	bool loading = pthread_create(&ld.thread, NULL, load_detector, &ld) == 0;
	if (!loading)
		load_detector(&ld);
	int rc = work(ctx);
	if (loading)
		pthread_join(ld.thread, NULL);
	c->det = ld.det;
	return rc ? rc : c->det ? 0 : -EINVAL;
}

int consumer__start(struct consumer *c)
{
	c->main_thread = pthread_self();
	atomic_init(&c->finished, false);
	int rc = pthread_create(&c->thread, NULL, consumer_run, c);
	if (rc != 0) {
		svc_err("cannot start the detector thread");
		return -rc;
	}
	c->started = true;
	/* Thread names show in top -H, ps -L and perf: "svc-detector", "svc-worker0", ... */
	pthread_setname_np(c->thread, "svc-detector");
	return 0;
}

void consumer__join(struct consumer *c)
{
	if (c->started)
		pthread_join(c->thread, NULL);
	c->started = false;
}

void consumer__close(struct consumer *c)
{
	if (c->det)
		detector__free(c->det);
	c->det = NULL;
}
