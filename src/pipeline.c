/* pipeline.c - one run's life cycle: set up (input, queue, workers, detector), start the
 * threads, wait for the end (signals, periodic stats), stop (join, exit summary), then one
 * cleanup in the reverse order of set-up. */
#include "svcsensor/pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svcsensor/atomic_file.h"
#include "svcsensor/common.h"
#include "svcsensor/consumer.h"
#include "svcsensor/detector.h"
#include "svcsensor/flowq.h"
#include "svcsensor/input.h"
#include "svcsensor/outpath.h"
#include "svcsensor/privdrop.h"
#include "svcsensor/worker.h"

/* Age after which a save's temporary file is taken for a leftover (atomic_file__sweep). */
#define LEFTOVER_AGE_S 60

/* Everything one run holds; set-up fills it in order, the cleanup empties it backwards. */
struct run {
	const struct pipeline_opts *o;
	const struct svc_config *cfg;
	atomic_bool stop;	/* end the input (signals, --duration, a failed start) */
	atomic_uint done_count; /* workers done */
	struct input *in;
	struct flowq queue;
	bool queue_ok;
	struct worker *ws;
	unsigned n, inited, started; /* workers: wanted, set up, running */
	int input_start;	     /* the input's start: 0 or its error */
	struct consumer cons;
	sigset_t sigs;
};

/* Every loss figure of the run: the detector's (sinks, learned map) and, for a packet input,
 * the flow tables' records lost to out of memory. Returns how many are in out
 * (DETECTOR_LOSSES_MAX); *total = the sum of those that are not benign. */
static unsigned collect_losses(struct run *r, struct detector_loss *out, uint64_t *total)
{
	unsigned n = detector__losses(r->cons.det, out, DETECTOR_LOSSES_MAX - 1);

	if (!r->in->ops->records) {
		uint64_t lost = 0;
		for (unsigned w = 0; w < r->started; w++)
			lost += worker__records_lost(&r->ws[w]);
		out[n++] = (struct detector_loss){.source = "flow_table",
						  .what = "records",
						  .count = lost,
						  .err = lost ? ENOMEM : 0};
	}
	*total = 0;
	for (unsigned i = 0; i < n; i++)
		if (!out[i].benign)
			*total += out[i].count;
	return n;
}

/* "lost 0", or "lost: anomaly_log lines 12 (No space left on device), flow_csv rows 0, ..."
 * naming every figure that is not benign (zeros too: which outputs are whole). */
static void format_losses(char *line, size_t size, const struct detector_loss *l, unsigned n,
			  uint64_t total)
{
	int off = snprintf(line, size, total ? "lost:" : "lost 0");
	bool first = true;

	for (unsigned i = 0; total && i < n && off >= 0 && (size_t)off < size; i++) {
		if (l[i].benign)
			continue;
		off += snprintf(line + off, size - (size_t)off, "%s %s %s %" PRIu64,
				first ? "" : ",", l[i].source, l[i].what, l[i].count);
		first = false;
		if (l[i].count && l[i].err && off >= 0 && (size_t)off < size)
			off +=
			    snprintf(line + off, size - (size_t)off, " (%s)", strerror(l[i].err));
	}
}

/* The exit summary's losses: one "lost:" line when anything was lost, one line per benign
 * figure (the console's reader went away). Returns the total lost (not benign). */
static uint64_t print_losses(struct run *r)
{
	struct detector_loss l[DETECTOR_LOSSES_MAX];
	uint64_t total;
	unsigned n = collect_losses(r, l, &total);
	char line[1024];

	if (total) {
		format_losses(line, sizeof(line), l, n, total);
		fprintf(stderr, "%s: %s\n", SVC_PROG, line);
	}
	for (unsigned i = 0; i < n; i++)
		if (l[i].benign && l[i].count)
			fprintf(stderr, "%s: %s: %s %" PRIu64 " (not counted as lost)\n", SVC_PROG,
				l[i].source, l[i].what, l[i].count);
	return total;
}

/* The exit summary of a packet input: decode results, how flows ended, what the detector did. */
static void print_summary(const struct input_stats *st, struct worker *ws, unsigned n,
			  const struct detector_stats *ds, bool learn)
{
	const uint64_t *dec = st->decode;
	uint64_t ended[FLOW_END__COUNT] = {0}, total_ended = 0, chain_long = 0, chain_max = 0;
	for (unsigned w = 0; w < n; w++) {
		const struct flow_table_stats *s = worker__stats(&ws[w]);
		for (unsigned e = 0; e < FLOW_END__COUNT; e++) {
			ended[e] += s->flows_ended[e];
			total_ended += s->flows_ended[e];
		}
		chain_long += s->chain_long;
		chain_max = s->chain_max > chain_max ? s->chain_max : chain_max;
	}
	uint64_t pkts = 0;
	for (unsigned i = 0; i < DECODE__COUNT; i++)
		pkts += dec[i];

	char line[1024];
	int off = snprintf(line, sizeof(line), "packets %" PRIu64 ", decoded %" PRIu64, pkts,
			   dec[DECODE_OK]);
	for (unsigned i = 1; i < DECODE__COUNT; i++)
		if (dec[i] && off < (int)sizeof(line))
			off += snprintf(line + off, sizeof(line) - (size_t)off, ", %s %" PRIu64,
					decode__result_name(i), dec[i]);
	fprintf(stderr, "%s: %s\n", SVC_PROG, line);

	off = snprintf(line, sizeof(line), "flows ended %" PRIu64 " (", total_ended);
	for (unsigned e = 0; e < FLOW_END__COUNT && off < (int)sizeof(line); e++)
		off += snprintf(line + off, sizeof(line) - (size_t)off, "%s%s %" PRIu64,
				e ? ", " : "", flow_end__name(e), ended[e]);
	if (off < (int)sizeof(line))
		snprintf(line + off, sizeof(line) - (size_t)off, ")");
	fprintf(stderr, "%s: %s\n", SVC_PROG, line);
	if (chain_long) /* never with the seeded hash in practice (flow_table.h) */
		fprintf(stderr,
			"%s: flow table lookups over %u entries: %" PRIu64 " (longest %" PRIu64
			")\n",
			SVC_PROG, FLOW_TABLE_CHAIN_LONG, chain_long, chain_max);

	if (learn) {
		fprintf(stderr, "%s: flows learned %" PRIu64 " (flows ended %" PRIu64 ")\n",
			SVC_PROG, ds->flows, total_ended);
	} else {
		off = snprintf(line, sizeof(line), "flows judged %" PRIu64 " (", ds->flows);
		for (unsigned v = 0; v < VERDICT__COUNT && off < (int)sizeof(line); v++)
			off += snprintf(line + off, sizeof(line) - (size_t)off, "%s%s %" PRIu64,
					v ? ", " : "", verdict__name(v), ds->per_verdict[v]);
		if (off < (int)sizeof(line))
			snprintf(line + off, sizeof(line) - (size_t)off,
				 "; allowed %" PRIu64 "); flows ended %" PRIu64 " %s", ds->allowed,
				 total_ended, total_ended == ds->flows ? "= judged" : "!= judged");
		fprintf(stderr, "%s: %s\n", SVC_PROG, line);
	}
	if (ds->map_reloads || ds->map_reload_failures)
		fprintf(stderr,
			"%s: map reloads %" PRIu64 ", failed %" PRIu64
			" (a failed reload keeps the map in force)\n",
			SVC_PROG, ds->map_reloads, ds->map_reload_failures);
}

/* Runs beside the map load (consumer__load): the workers' nDPI modules are built one at a time. */
static int init_workers(void *arg)
{
	struct run *r = arg;
	int rc = 0;
	for (; r->inited < r->n && !rc; r->inited++)
		rc = worker__init(&r->ws[r->inited], r->inited, r->cfg, r->in, &r->queue,
				  &r->done_count);
	return rc;
}

/* Temporaries of the saves a killed run left (atomic_file.h): the files this run saves. */
static void sweep_leftovers(const struct svc_config *cfg, bool learn)
{
	if (learn && cfg->map_file && *cfg->map_file && outpath__is_regular(cfg->map_file))
		atomic_file__sweep(cfg->map_file, LEFTOVER_AGE_S);
	if (cfg->report_file && *cfg->report_file && outpath__is_regular(cfg->report_file))
		atomic_file__sweep(cfg->report_file, LEFTOVER_AGE_S); /* and its .json twin */
}

static int set_up(struct run *r)
{
	const struct pipeline_opts *o = r->o;
	const struct svc_config *cfg = r->cfg;
	struct input_args a = {
	    .cfg = cfg,
	    .files = o->files,
	    .n_files = o->n_files,
	    .flows_in = o->flows_in,
	    .threads = cfg->threads ? cfg->threads : 1,
	    .learn = o->learn,
	    .progress = !o->quiet && isatty(STDERR_FILENO),
	    .stop = &r->stop,
	};
	/* Every output location is checked before anything is read (outpath.h). */
	int rc = outpath__preflight(cfg, o->learn);
	if (rc)
		return rc;
	sweep_leftovers(cfg, o->learn);
	rc = input__open(&a, &r->in);
	if (rc)
		return rc;
	/* The capture is set up: the rings keep working unprivileged. */
	if (r->in->ops->live && cfg->user && (rc = privdrop__to_user(cfg->user)) != 0)
		return rc;
	rc = flowq__init(&r->queue);
	if (rc) {
		svc_err("finished-flow queue: %s", strerror(-rc));
		return rc;
	}
	r->queue_ok = true;
	r->n = r->in->n_workers;
	r->ws = calloc(r->n, sizeof(*r->ws));
	if (!r->ws) {
		svc_err("out of memory");
		return -ENOMEM;
	}
	r->cons.queue = &r->queue;
	r->cons.done_count = &r->done_count;
	r->cons.n_workers = r->n;
	r->cons.learn = o->learn;
	return consumer__load(&r->cons, cfg, init_workers, r); /* the detector opens the sinks */
}

/* The detector thread, the workers, then the input's own thread. A worker that cannot start
 * stops the run: the others end at once, and the run's status says so. */
static int start(struct run *r)
{
	/* Signals go to this thread only: block them before any thread starts. */
	sigemptyset(&r->sigs);
	sigaddset(&r->sigs, SIGINT);
	sigaddset(&r->sigs, SIGTERM);
	sigaddset(&r->sigs, SIGHUP);
	sigaddset(&r->sigs, SIGUSR1); /* internal: the detector thread has finished */
	pthread_sigmask(SIG_BLOCK, &r->sigs, NULL);

	int rc = consumer__start(&r->cons);
	if (rc)
		return rc;
	for (; r->started < r->n; r->started++) {
		struct worker *w = &r->ws[r->started];
		if (pthread_create(&w->thread, NULL, worker__run, w) != 0) {
			svc_err("cannot start worker %u", r->started);
			break;
		}
		char name[16];
		snprintf(name, sizeof(name), "svc-worker%u", r->started % 100);
		pthread_setname_np(w->thread, name);
	}
	if (r->started != r->n) {
		atomic_store(&r->stop, true);
		/* Workers that never started must not be waited for by the consumer. */
		atomic_fetch_add(&r->done_count, r->n - r->started);
	}
	if (r->in->ops->start)
		r->input_start = r->in->ops->start(r->in, r->started);
	return 0;
}

/* Live: the capture's counters every stats_interval, and what was lost so far. */
static void stats_line(struct run *r, struct input_stats *prev)
{
	struct input_stats st = {0};
	struct detector_loss l[DETECTOR_LOSSES_MAX];
	uint64_t total;
	unsigned n = collect_losses(r, l, &total);
	char lost[768];

	format_losses(lost, sizeof(lost), l, n, total);
	r->in->ops->live_stats(r->in, &st);
	fprintf(stderr,
		"%s: stats: packets %llu (+%llu), drops %llu (+%llu), flows ended %llu, queue "
		"%llu, %s\n",
		SVC_PROG, (unsigned long long)st.captured,
		(unsigned long long)(st.captured - prev->captured), (unsigned long long)st.drops,
		(unsigned long long)(st.drops - prev->drops),
		(unsigned long long)atomic_load(&r->queue.pushed),
		(unsigned long long)flowq__depth(&r->queue), lost);
	*prev = st;
}

/* The main thread: signals until the detector thread has judged the last flow. */
static void wait_for_end(struct run *r)
{
	const struct svc_config *cfg = r->cfg;
	bool live = r->in->ops->live, stopping = false;
	time_t t_start = time(NULL), next_stats = t_start + (time_t)cfg->stats_interval;
	struct input_stats prev = {0};
	while (!atomic_load(&r->cons.finished)) {
		if (live && cfg->stats_interval && time(NULL) >= next_stats) {
			stats_line(r, &prev);
			next_stats = time(NULL) + (time_t)cfg->stats_interval;
		}
		if (live && r->o->duration && !stopping &&
		    time(NULL) - t_start >= (time_t)r->o->duration) {
			stopping = true;
			atomic_store(&r->stop, true);
		}
		struct timespec to = {0, 200 * 1000 * 1000};
		int sig = sigtimedwait(&r->sigs, NULL, &to);
		if (sig == SIGINT || sig == SIGTERM) {
			if (!stopping)
				fprintf(stderr, "%s: stopping: %s\n", SVC_PROG,
					r->in->ops->records && r->o->learn
					    ? "saving what was learned"
					    : "ending every flow, writing outputs");
			stopping = true;
			atomic_store(&r->stop, true);
		} else if (sig == SIGHUP) {
			detector__request_reload(r->cons.det);
		}
	}
}

/* Join every thread, write the final outputs and the exit summary; the run's status. */
static int finish(struct run *r)
{
	if (r->in->ops->wait)
		r->in->ops->wait(r->in);
	for (unsigned i = 0; i < r->started; i++)
		pthread_join(r->ws[i].thread, NULL);
	consumer__join(&r->cons);

	int status = detector__finish(r->cons.det) != 0 ? 1 : 0;
	struct input_stats st = {0};
	r->in->ops->stats(r->in, &st);
	if (st.error || st.rejected || r->input_start || r->started != r->n)
		status = st.error && st.files_ok + st.files_failed > 0 && !st.packets ? 2 : 1;
	if (!r->in->ops->records)
		print_summary(&st, r->ws, r->started, detector__stats(r->cons.det), r->o->learn);
	if (r->in->ops->summary)
		r->in->ops->summary(r->in, &st);
	/* Anything lost (a sink's lines, flow records, observations) makes the status 1; what
	 * is benign (a closed console pipe) does not. */
	if (print_losses(r))
		status = status ? status : 1;
	return status;
}

int pipeline__run(const struct pipeline_opts *o)
{
	struct run r = {.o = o, .cfg = o->cfg};
	int status = 2;
	atomic_init(&r.stop, false);
	atomic_init(&r.done_count, 0);
	/* The main thread loads, saves and frees the map (before / after the detector thread). */
	detector__thread_register();
	if (set_up(&r) == 0 && start(&r) == 0) {
		wait_for_end(&r);
		status = finish(&r);
	}
	/* INT/TERM/HUP stay blocked: one that arrives after the last flow was judged (a late
	 * SIGHUP from logrotate, a second Ctrl-C) must not kill the process while it writes its
	 * last outputs and exits. The cleanup, in the reverse order of set-up: */
	consumer__close(&r.cons);
	for (unsigned i = 0; i < r.inited; i++)
		worker__destroy(&r.ws[i]);
	free(r.ws);
	if (r.queue_ok)
		flowq__destroy(&r.queue);
	if (r.in)
		r.in->ops->close(r.in);
	detector__thread_unregister();
	return status;
}
