/* learn_csv.c - svcsensor --learn --flows-in FILE: the service map learned from a flow CSV.
 *
 * The rows go through the same detector (learn mode) as the flows of a packet run, so host keys,
 * counters, console lines and the saved map are made the same way. Everything runs on the
 * calling thread: there is no queue to feed and no worker to wait for. */
#include "svcsensor/flows_in.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "svcsensor/common.h"
#include "svcsensor/detector.h"

/* How many rows between looks at the clock (periodic map saves) and at pending signals. */
#define LEARN_CSV_POLL_ROWS 4096

struct learn_ctx {
	const struct svc_config *cfg;
	struct detector *det; /* made at the first row: a file that cannot be used says one line */
	const sigset_t *sigs;
	uint64_t since_poll;
	time_t last_tick;
	bool stopped; /* SIGINT / SIGTERM */
};

/* Stop on SIGINT/SIGTERM (what was learned is kept), reload on SIGHUP, tick once a second. */
static int poll_outside(struct learn_ctx *c)
{
	struct timespec zero = {0, 0};
	int sig;
	while ((sig = sigtimedwait(c->sigs, NULL, &zero)) > 0) {
		if (sig == SIGHUP) {
			detector__request_reload(c->det);
		} else {
			if (!c->stopped)
				fprintf(stderr, "%s: stopping: saving what was learned\n",
					SVC_PROG);
			c->stopped = true;
		}
	}
	time_t now = time(NULL);
	if (now != c->last_tick) {
		detector__tick(c->det, (uint64_t)now);
		c->last_tick = now;
	}
	return c->stopped ? 1 : 0;
}

static int make_detector(struct learn_ctx *c)
{
	if (!c->det)
		c->det = detector__new(c->cfg, true, c->cfg->print == PRINT_NONE ? NULL : stdout);
	return c->det ? 0 : -EINVAL; /* detector__new said why */
}

static int learn_row(void *ctx, const struct flow_record *rec)
{
	struct learn_ctx *c = ctx;
	int rc = make_detector(c);
	if (rc)
		return rc;
	detector__flow(c->det, rec);
	if (++c->since_poll < LEARN_CSV_POLL_ROWS)
		return 0;
	c->since_poll = 0;
	return poll_outside(c);
}

int pipeline__learn_csv(const struct svc_config *cfg, const char *csv_path)
{
	struct flows_in_stats st;
	sigset_t sigs, old;
	int status = 2, rc;

	/* Signals are taken synchronously (sigtimedwait) between rows, as pipeline.c does. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	detector__thread_register();

	struct learn_ctx c = {.cfg = cfg, .sigs = &sigs, .last_tick = time(NULL)};
	rc = flows_in__read(csv_path, learn_row, &c, &st);
	if (rc < 0 && !c.det) /* the file (or the map) could not be used: map file left alone */
		goto cleanup;
	if (make_detector(&c) != 0) /* a header and no rows: the map is saved all the same */
		goto cleanup;
	/* A read error after some rows: what was learned from them is saved, status 1. */
	status = rc < 0 || st.rejected ? 1 : 0;
	if (detector__finish(c.det) != 0 || detector__stats(c.det)->log_write_errors)
		status = 1;
	fprintf(stderr, "%s: %s: %" PRIu64 " rows learned, %" PRIu64 " rejected%s\n", SVC_PROG,
		csv_path, st.accepted, st.rejected, c.stopped ? " (stopped early)" : "");

cleanup:
	if (c.det)
		detector__free(c.det);
	/* A signal that came during the final save is not acted upon: the run is over. */
	struct timespec zero = {0, 0};
	while (sigtimedwait(&sigs, NULL, &zero) > 0)
		;
	detector__thread_unregister();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return status;
}
