/* mapped.c - the offline input for classic pcap files, walked through mapped windows
 * (pcapscan.h). With one worker the worker walks the files itself; with more, a reader thread
 * walks them and hands each worker pointers into the windows (pktfeed.h). */
#include "svcsensor/input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/common.h"
#include "svcsensor/config.h"
#include "svcsensor/pcapscan.h"
#include "svcsensor/pktfeed.h"
#include "svcsensor/worker.h"

struct mapped_input {
	struct input in;
	struct pcapscan scan;
	struct pcapscan_cursor cur; /* the one walk: by worker 0 or by the reader thread */
	bool feeding;		    /* more than one worker: the reader thread walks */
	struct pktfeed feed;
	struct pkt_view pv[PKTBATCH_PKTS]; /* the walk's current batch */
};

/* One worker: the walk, a batch at a time, each accounted as it comes. */
static void walk_alone(struct mapped_input *m, struct worker *w)
{
	uint64_t clock = 0;
	int n;
	while ((n = pcapscan__next(&m->cur, m->pv, PKTBATCH_PKTS, &clock)) >= 0) {
		worker__account(w, m->pv, (uint32_t)n, clock);
		worker__flush(w); /* one splice per call (<= 1024 records) */
	}
	/* The flows end at the input's last time. */
	worker__expire(w, clock);
}

static void mapped_run(struct input *in, struct worker *w)
{
	struct mapped_input *m = (struct mapped_input *)in;
	if (m->feeding)
		pktfeed__drain(&m->feed, w);
	else
		walk_alone(m, w);
}

/* The reader thread: the walk, each packet dispatched to its worker without a copy. */
static void *feed_run(void *arg)
{
	struct mapped_input *m = arg;
	struct pkt_view *pv = m->pv;
	uint64_t clock = 0;
	int n;
	for (;;) {
		/* A batch sent while these packets are dispatched must carry the clock at the
		 * packet being dispatched, not the clock after the whole walk (the worker expires
		 * its flows at the batch's clock before it sees the packets still to come). */
		uint64_t at = clock;
		/* 256 at a time: the dispatch reads them while they are still in the cache. */
		if ((n = pcapscan__next(&m->cur, pv, 256, &clock)) < 0)
			break;
		for (int i = 0; i < n; i++) {
			if (pv[i].ts_us > at)
				at = pv[i].ts_us;
			pktfeed__dispatch(&m->feed, &pv[i], at, m->cur.win);
		}
		pktfeed__flush_idle(&m->feed, clock);
	}
	pktfeed__end(&m->feed, clock);
	return NULL;
}

static int mapped_start(struct input *in, unsigned n_started)
{
	struct mapped_input *m = (struct mapped_input *)in;
	return m->feeding ? pktfeed__start(&m->feed, n_started, feed_run, m) : 0;
}

static void mapped_wait(struct input *in)
{
	struct mapped_input *m = (struct mapped_input *)in;
	if (m->feeding)
		pktfeed__join(&m->feed);
}

static void mapped_stats(struct input *in, struct input_stats *st)
{
	struct mapped_input *m = (struct mapped_input *)in;
	*st = m->cur.st;
	st->error = m->cur.error;
}

static void mapped_close(struct input *in)
{
	struct mapped_input *m = (struct mapped_input *)in;
	pktfeed__destroy(&m->feed);
	pcapscan__close(&m->scan);
	free(m);
}

static const struct input_ops mapped_ops = {
    .name = "mapped",
    .start = mapped_start,
    .run = mapped_run,
    .wait = mapped_wait,
    .stats = mapped_stats,
    .close = mapped_close,
};

int input_mapped__open(const struct input_args *a, struct input **out)
{
	struct mapped_input *m = calloc(1, sizeof(*m));
	if (!m)
		return 1; /* libpcap needs less */
	int rc = pcapscan__open(&m->scan, a->files, a->n_files, a->cfg->bpf_filter, a->stop,
				a->progress);
	if (rc != 1) {
		free(m);
		return rc < 0 ? rc : 1;
	}
	m->in.ops = &mapped_ops;
	m->in.n_workers = a->threads;
	m->feeding = a->threads > 1;
	pcapscan__cursor_init(&m->cur, &m->scan);
	if (m->feeding && pktfeed__init(&m->feed, a->threads) != 0) {
		mapped_close(&m->in);
		return -ENOMEM;
	}
	*out = &m->in;
	return 0;
}
