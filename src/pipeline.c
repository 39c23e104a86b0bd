/* pipeline.c - thread set-up, the detector (consumer) thread, signals, the exit summary. */
#include "svcsensor/pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svcsensor/common.h"
#include "svcsensor/afpacket.h"
#include "svcsensor/privdrop.h"
#include "svcsensor/detector.h"
#include "svcsensor/flowq.h"
#include "svcsensor/pcapfile.h"
#include "svcsensor/pcapscan.h"
#include "svcsensor/worker.h"

struct consumer {
	pthread_t thread;
	struct flowq *queue;
	struct detector *det;
	bool learn;
	atomic_uint *done_count;
	unsigned n_workers;
	atomic_bool finished;
	pthread_t main_thread; /* woken (SIGUSR1) when the last flow is judged */
};

/* The detector thread: the only consumer of finished flows and the owner of every output. */
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
			detector__flow(c->det, r);
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

static void print_summary(const struct pcapfile_reader *rd, struct worker *ws, unsigned n,
			  const struct detector_stats *ds, bool learn)
{
	uint64_t dec[DECODE__COUNT] = {0};
	uint64_t ended[FLOW_END__COUNT] = {0}, lost = 0, total_ended = 0;
	for (unsigned i = 0; i < DECODE__COUNT; i++)
		dec[i] = rd ? rd->st.decode[i] : 0;
	for (unsigned w = 0; w < n; w++) {
		const struct flow_table_stats *s = worker__stats(&ws[w]);
		for (unsigned i = 0; i < DECODE__COUNT; i++)
			dec[i] += ws[w].decode[i];
		for (unsigned e = 0; e < FLOW_END__COUNT; e++) {
			ended[e] += s->flows_ended[e];
			total_ended += s->flows_ended[e];
		}
		lost += s->records_lost;
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
	if (lost)
		fprintf(stderr, "%s: flow records lost (out of memory): %" PRIu64 "\n", SVC_PROG,
			lost);

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

int pipeline__run(const struct pipeline_opts *o)
{
	const struct svc_config *cfg = o->cfg;
	unsigned n = cfg->threads ? cfg->threads : 1;
	int status = 2;
	struct flowq queue;
	atomic_uint done_count;
	atomic_bool stop;
	atomic_init(&done_count, 0);
	atomic_init(&stop, false);

	bool live = !o->n_files && cfg->interface;
	struct afpacket **rings = NULL;
	struct afpacket_opts ao = {0};
	if (!o->n_files && !live) {
		svc_err("no input: give -r FILE or -i IFACE");
		return 2;
	}
	if (!live && pcapfile__check(o->files, o->n_files, cfg->bpf_filter) != 0)
		return 2;
	if (live) {
		rings = calloc(n, sizeof(*rings));
		if (!rings)
			return 2;
		afpacket__offload_warning(cfg->interface);
		ao = (struct afpacket_opts){
		    .ifname = cfg->interface,
		    .block_size = cfg->ring_block_size,
		    .block_count = cfg->ring_block_count,
		    .frame_size = cfg->ring_frame_size,
		    .block_timeout_ms = cfg->ring_block_timeout_ms,
		    .fanout = n > 1 ? cfg->fanout : NULL,
		    .group_id = afpacket__group_id(),
		    .promisc = cfg->promisc,
		    .bpf_filter = cfg->bpf_filter,
		};
		if (afpacket__open_group(&ao, n, rings) != 0) {
			free(rings);
			return 2;
		}
		if (cfg->user && privdrop__to_user(cfg->user) != 0) {
			for (unsigned i = 0; i < n; i++)
				afpacket__close(rings[i]);
			free(rings);
			return 2;
		}
	}
	if (flowq__init(&queue) != 0) {
		svc_err("finished-flow queue: %s", strerror(errno));
		return 2;
	}

	struct worker *ws = calloc(n, sizeof(*ws));
	struct pktchan *chans = calloc(n, sizeof(*chans));
	struct consumer cons = {0};
	struct pcapfile_reader rd = {0};
	struct pcapscan scan = {0};
	bool mapped = false, scanning = false; /* mapped files; walked by the one worker */
	pthread_t reader;
	unsigned started = 0, inited = 0, chans_ok = 0;
	bool reader_started = false, consumer_started = false;
	sigset_t sigs;

	/* The main thread loads, saves and frees the map (before / after the detector thread). */
	detector__thread_register();
	if (!ws || !chans) {
		svc_err("out of memory");
		goto cleanup;
	}
	/* The map loads on a helper thread while this one builds the workers' nDPI modules
	 * (which must be built one at a time): start-up takes the longer of the two, not both. */
	struct loader ld = {.cfg = cfg,
			    .learn = o->learn,
			    .console = cfg->print == PRINT_NONE ? NULL : stdout};
	bool loading = pthread_create(&ld.thread, NULL, load_detector, &ld) == 0;
	if (!loading)
		load_detector(&ld);
	int init_err = 0;
	for (; inited < n && !init_err; inited++)
		init_err = worker__init(&ws[inited], inited, cfg, &queue, &done_count);
	if (loading)
		pthread_join(ld.thread, NULL);
	cons.det = ld.det;
	if (init_err || !cons.det)
		goto cleanup;
	for (; live && chans_ok < n; chans_ok++) {
		ws[chans_ok].ring = rings[chans_ok];
		ws[chans_ok].stop = &stop;
	}
	if (live)
		chans_ok = 0;
	if (!live) {
		/* Classic pcap files are read mapped: with one worker by the worker itself. */
		int sc = pcapscan__open(&scan, o->files, o->n_files, cfg->bpf_filter, &stop,
					!o->quiet && isatty(STDERR_FILENO));
		if (sc < 0)
			goto cleanup;
		mapped = sc == 1;
		scanning = mapped && n == 1;
		if (scanning) {
			pcapscan__cursor_init(&ws[0].cursor, &scan);
		}
	}
	for (; !live && !scanning && chans_ok < n; chans_ok++) {
		if (pktchan__init(&chans[chans_ok]) != 0) {
			svc_err("packet channels: out of memory");
			goto cleanup;
		}
		ws[chans_ok].chan = &chans[chans_ok];
	}

	/* Signals go to this thread only: block them before any thread starts. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1); /* internal: the detector thread has finished */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	cons.queue = &queue;
	cons.learn = o->learn;
	cons.done_count = &done_count;
	cons.n_workers = n;
	cons.main_thread = pthread_self();
	atomic_init(&cons.finished, false);
	if (pthread_create(&cons.thread, NULL, consumer_run, &cons) != 0) {
		svc_err("cannot start the detector thread");
		goto unblock;
	}
	consumer_started = true;
	/* Thread names show in top -H, ps -L and perf: "svc-detector", "svc-worker0", ... */
	pthread_setname_np(cons.thread, "svc-detector");
	for (; started < n; started++) {
		if (pthread_create(&ws[started].thread, NULL, worker__run, &ws[started]) != 0) {
			svc_err("cannot start worker %u", started);
			break;
		}
		char name[16];
		snprintf(name, sizeof(name), "svc-worker%u", started % 100);
		pthread_setname_np(ws[started].thread, name);
	}
	rd.files = o->files;
	rd.n_files = o->n_files;
	rd.bpf_filter = cfg->bpf_filter;
	rd.scan = mapped ? &scan : NULL;
	rd.chans = chans;
	rd.n_workers = started;
	rd.stop = &stop;
	rd.progress = !o->quiet && isatty(STDERR_FILENO);
	if (live || scanning) {
		if (started != n) {
			atomic_store(&stop, true);
			atomic_fetch_add(&done_count, n - started);
		}
	} else if (started == n && pthread_create(&reader, NULL, pcapfile__run, &rd) == 0) {
		reader_started = true;
		pthread_setname_np(reader, "svc-reader");
	} else {
		/* Workers that started wait for a batch: give each a last one. */
		atomic_store(&stop, true);
		rd.n_files = 0;
		rd.n_workers = started;
		pcapfile__run(&rd);
		/* Workers that never started must not be waited for by the consumer. */
		atomic_fetch_add(&done_count, n - started);
	}

	/* The main thread: signals until the detector thread has judged the last flow. */
	bool stopping = false;
	time_t t_start = time(NULL), next_stats = t_start + (time_t)cfg->stats_interval;
	struct afpacket_stats ring_total = {0}, ring_prev = {0};
	while (!atomic_load(&cons.finished)) {
		if (live && cfg->stats_interval && time(NULL) >= next_stats) {
			/* The kernel's counters reset on read: only this thread reads them. */
			for (unsigned i = 0; i < n; i++)
				afpacket__stats(rings[i], &ring_total);
			fprintf(stderr,
				"%s: stats: packets %llu (+%llu), drops %llu (+%llu), flows ended "
				"%llu, "
				"queue %llu\n",
				SVC_PROG, (unsigned long long)ring_total.packets,
				(unsigned long long)(ring_total.packets - ring_prev.packets),
				(unsigned long long)ring_total.drops,
				(unsigned long long)(ring_total.drops - ring_prev.drops),
				(unsigned long long)atomic_load(&queue.pushed),
				(unsigned long long)flowq__depth(&queue));
			ring_prev = ring_total;
			next_stats = time(NULL) + (time_t)cfg->stats_interval;
		}
		if (live && o->duration && !stopping &&
		    time(NULL) - t_start >= (time_t)o->duration) {
			stopping = true;
			atomic_store(&stop, true);
		}
		struct timespec to = {0, 200 * 1000 * 1000};
		int sig = sigtimedwait(&sigs, NULL, &to);
		if (sig == SIGINT || sig == SIGTERM) {
			if (!stopping)
				fprintf(stderr,
					"%s: stopping: ending every flow, writing outputs\n",
					SVC_PROG);
			stopping = true;
			atomic_store(&stop, true);
		} else if (sig == SIGHUP) {
			detector__request_reload(cons.det);
		}
	}
	status = 0;
	if (reader_started)
		pthread_join(reader, NULL);
	for (unsigned i = 0; i < started; i++)
		pthread_join(ws[i].thread, NULL);
	pthread_join(cons.thread, NULL);
	consumer_started = false;
	if (scanning && started) {
		/* The worker walked the input: its counts are the input's. */
		rd.st = ws[0].cursor.st;
		rd.error = ws[0].cursor.error;
	}

	if (detector__finish(cons.det) != 0)
		status = 1;
	if (rd.error || started != n)
		status =
		    rd.error && rd.st.files_ok + rd.st.files_failed > 0 && !rd.st.packets ? 2 : 1;
	print_summary(&rd, ws, started, detector__stats(cons.det), o->learn);
	if (live) {
		for (unsigned i = 0; i < n; i++)
			afpacket__stats(rings[i], &ring_total);
		fprintf(stderr, "%s: ring: packets %llu, drops %llu, freezes %llu (fanout %s)\n",
			SVC_PROG, (unsigned long long)ring_total.packets,
			(unsigned long long)ring_total.drops,
			(unsigned long long)ring_total.freezes, ao.fanout ? ao.fanout : "none");
		if (ring_total.drops)
			svc_warn("the rings dropped %llu packets: see README, Live capture (ring "
				 "size, threads)",
				 (unsigned long long)ring_total.drops);
	}
	if (detector__stats(cons.det)->log_write_errors)
		status = status ? status : 1;

unblock:
	if (consumer_started) {
		/* Failed start: let the consumer finish on an empty queue. */
		atomic_store(&done_count, n);
		pthread_join(cons.thread, NULL);
	}
	/* INT/TERM/HUP stay blocked: one that arrives after the last flow was judged (a late
	 * SIGHUP from logrotate, a second Ctrl-C) must not kill the process while it writes
	 * its last outputs and exits. */
cleanup:
	if (cons.det)
		detector__free(cons.det);
	for (unsigned i = 0; i < inited; i++)
		worker__destroy(&ws[i]);
	for (unsigned i = 0; i < chans_ok; i++)
		pktchan__destroy(&chans[i]);
	if (mapped)
		pcapscan__close(&scan);
	if (rings)
		for (unsigned i = 0; i < n; i++)
			afpacket__close(rings[i]);
	free(rings);
	free(ws);
	free(chans);
	flowq__destroy(&queue);
	detector__thread_unregister();
	return status;
}
