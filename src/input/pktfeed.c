/* pktfeed.c - packet batches from a reader thread to the workers (channels, dispatch). */
#include "svcsensor/pktfeed.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/common.h"
#include "svcsensor/pcapscan.h"
#include "svcsensor/worker.h"

/* Flush a worker's partial batch once the packet clock ran this far past its last send, so a
 * worker that sees little traffic still expires its flows in step with the capture. */
#define CLOCK_FLUSH_US (1 * SVC_US_PER_SEC)

static void chan_destroy(struct pktchan *c)
{
	for (unsigned i = 0; i < PKTCHAN_DEPTH; i++) {
		free(c->slots[i]);
		c->slots[i] = NULL;
	}
	if (c->sems) {
		sem_destroy(&c->full);
		sem_destroy(&c->empty);
	}
	c->sems = false;
}

/* Make one channel; on failure what was made is freed by chan_destroy. */
static int chan_init(struct pktchan *c)
{
	memset(c, 0, sizeof(*c));
	for (unsigned i = 0; i < PKTCHAN_DEPTH; i++) {
		c->slots[i] = calloc(1, sizeof(struct pktbatch));
		if (!c->slots[i])
			return -ENOMEM;
	}
	if (sem_init(&c->full, 0, 0) != 0)
		return -errno;
	if (sem_init(&c->empty, 0, PKTCHAN_DEPTH) != 0) {
		int e = errno;
		sem_destroy(&c->full);
		return -e;
	}
	c->sems = true;
	return 0;
}

int pktfeed__init(struct pktfeed *f, unsigned n)
{
	memset(f, 0, sizeof(*f));
	f->chans = calloc(n, sizeof(*f->chans));
	f->out = calloc(n, sizeof(*f->out));
	int rc = f->chans && f->out ? 0 : -ENOMEM;
	for (unsigned i = 0; !rc && i < n; i++) {
		rc = chan_init(&f->chans[i]);
		f->n_chans = i + 1; /* a channel made in part is freed with the others */
	}
	if (rc)
		svc_err("packet channels: %s", strerror(-rc));
	return rc;
}

void pktfeed__destroy(struct pktfeed *f)
{
	for (unsigned i = 0; i < f->n_chans; i++)
		chan_destroy(&f->chans[i]);
	free(f->chans);
	free(f->out);
	f->chans = NULL;
	f->out = NULL;
	f->n_chans = 0;
}

/* ---- reader side ---------------------------------------------------------------------------- */

/* The batch being filled for channel c (waits for a free slot when needed). */
static struct pktbatch *acquire(struct pktchan *c)
{
	while (sem_wait(&c->empty) != 0 && errno == EINTR)
		;
	struct pktbatch *b = c->slots[c->wpos % PKTCHAN_DEPTH];
	b->count = 0;
	b->used = 0;
	b->last = false;
	b->win = NULL;
	return b;
}

static void send_batch(struct pktchan *c, struct pktfeed_out *o, uint64_t clock, bool last)
{
	if (!o->cur)
		o->cur = acquire(c);
	o->cur->clock_us = clock;
	o->cur->last = last;
	o->cur = NULL;
	o->last_send_clock = clock;
	c->wpos++;
	sem_post(&c->full);
}

struct pktbatch *pktfeed__next_batch(struct pktfeed *f, unsigned w, uint64_t clock,
				     struct pcapscan_win *win)
{
	struct pktchan *c = &f->chans[w];
	struct pktfeed_out *o = &f->out[w];
	if (o->cur)
		send_batch(c, o, clock, false);
	o->cur = acquire(c);
	if (win) {
		o->cur->win = win;
		pcapscan__win_hold(win);
	}
	return o->cur;
}

void pktfeed__flush_idle(struct pktfeed *f, uint64_t clock)
{
	for (unsigned w = 0; w < f->n_workers; w++)
		if (clock - f->out[w].last_send_clock > CLOCK_FLUSH_US)
			send_batch(&f->chans[w], &f->out[w], clock, false);
}

void pktfeed__flush_pending(struct pktfeed *f, uint64_t clock)
{
	for (unsigned w = 0; w < f->n_workers; w++) {
		const struct pktfeed_out *o = &f->out[w];
		if ((o->cur && o->cur->count) || clock != o->last_send_clock)
			send_batch(&f->chans[w], &f->out[w], clock, false);
	}
}

void pktfeed__end(struct pktfeed *f, uint64_t clock)
{
	for (unsigned w = 0; w < f->n_workers; w++)
		send_batch(&f->chans[w], &f->out[w], clock, true);
}

int pktfeed__start(struct pktfeed *f, unsigned n_workers, void *(*body)(void *), void *arg)
{
	f->n_workers = n_workers < f->n_chans ? n_workers : f->n_chans;
	int rc = pthread_create(&f->thread, NULL, body, arg);
	if (rc != 0) {
		svc_err("cannot start the reader thread: %s", strerror(rc));
		pktfeed__end(f, 0); /* the workers that run wait for a batch: give each its last */
		return -rc;
	}
	f->running = true;
	pthread_setname_np(f->thread, "svc-reader");
	return 0;
}

void pktfeed__join(struct pktfeed *f)
{
	if (f->running)
		pthread_join(f->thread, NULL);
	f->running = false;
}

/* ---- worker side ---------------------------------------------------------------------------- */

void pktfeed__drain(struct pktfeed *f, struct worker *w)
{
	struct pktchan *c = &f->chans[w->id];
	for (;;) {
		while (sem_wait(&c->full) != 0 && errno == EINTR)
			;
		struct pktbatch *b = c->slots[c->rpos % PKTCHAN_DEPTH];
		if (!b->win)
			for (uint32_t i = 0; i < b->count; i++)
				b->pv[i].l3 = b->data + b->pkt_off[i];
		worker__account(w, b->pv, b->count, b->clock_us);
		if (b->win)
			pcapscan__win_release(b->win); /* done with the mapped packets */
		b->win = NULL;
		bool last = b->last;
		c->rpos++;
		sem_post(&c->empty);
		/* One splice per input batch keeps the detector fed without per-flow traffic. */
		worker__flush(w);
		if (last)
			break;
	}
}
