/* pktfeed.h - the hand-over from an offline input's reader thread to its workers.
 *
 * One reader thread (src/input/mapped.c with more than one worker, src/input/pcapfile.c) decodes
 * each packet once and hands it to the worker that the symmetric address-pair hash names
 * (flow_key__pair_hash % workers): packets of one flow, and every flow of one host pair, go to
 * one worker in file order, so the result does not depend on the number of workers.
 *
 * Each worker has a bounded channel of packet batches: a ring of PKTCHAN_DEPTH batches guarded
 * by two counting semaphores, one wait per batch of up to PKTBATCH_PKTS packets, not per packet.
 * A batch holds copies of the packets (libpcap) or points into one mapped window of a file
 * (pcapscan.h), which the batch holds a reference to until the worker is done with it.
 *
 * Threading: pktfeed__init / __start / __join / __destroy on the main thread; dispatch,
 * flush_idle and end on the reader thread only; drain on worker threads, each on its own
 * channel. Errors: init and start return 0 or a negative errno after one line. */
#ifndef SVCSENSOR_PKTFEED_H
#define SVCSENSOR_PKTFEED_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "svcsensor/common.h"
#include "svcsensor/decode.h"
#include "svcsensor/input.h"

struct pcapscan_win;
struct worker;

#define PKTBATCH_BYTES (2u << 20) /* >= the largest snaplen libpcap accepts (262144) */
#define PKTCHAN_DEPTH 4

/* A batch of decoded packets. Copied packets: pv.l3 is rebased onto data[] by the worker
 * (pkt_off). Mapped packets: pv.l3 points into win, which the worker releases once done. */
struct pktbatch {
	uint32_t count;
	uint32_t used;		  /* bytes of data[] in use */
	uint64_t clock_us;	  /* the reader's packet clock when the batch was sent */
	bool last;		  /* end of input: no batch follows */
	struct pcapscan_win *win; /* mapped packets: the window they are in, else NULL */
	struct pkt_view pv[PKTBATCH_PKTS];
	uint32_t pkt_off[PKTBATCH_PKTS];
	uint8_t data[PKTBATCH_BYTES];
};

struct pktchan {
	struct pktbatch *slots[PKTCHAN_DEPTH];
	sem_t full, empty;
	unsigned wpos, rpos; /* producer's / consumer's own index */
	bool sems;	     /* the semaphores were made */
};

/* The reader's side of one channel: the batch being filled and when it last sent one. */
struct pktfeed_out {
	struct pktbatch *cur;
	uint64_t last_send_clock;
};

struct pktfeed {
	struct pktchan *chans;	 /* one per worker */
	struct pktfeed_out *out; /* one per worker */
	unsigned n_chans;	 /* channels made */
	unsigned n_workers;	 /* workers that take batches (set by pktfeed__start) */
	pthread_t thread;
	bool running; /* the reader thread was started and not joined */
};

/* Make n channels. 0 or -ENOMEM after one line; pktfeed__destroy in any case. */
int pktfeed__init(struct pktfeed *f, unsigned n);
/* Free the channels (the reader thread joined, the workers ended). */
void pktfeed__destroy(struct pktfeed *f);

/* Start body(arg) as the reader thread "svc-reader", for the first n_workers channels. If the
 * thread cannot start: one line, each of those workers gets its last batch at once, and the
 * negative errno is returned. */
int pktfeed__start(struct pktfeed *f, unsigned n_workers, void *(*body)(void *), void *arg);
void pktfeed__join(struct pktfeed *f);

/* Reader thread, for pktfeed__dispatch: send worker w's batch (if any) and start the next one,
 * on window win (the batch takes a reference) or for copies (win NULL). */
struct pktbatch *pktfeed__next_batch(struct pktfeed *f, unsigned w, uint64_t clock,
				     struct pcapscan_win *win);

/* Reader thread: hand one decoded packet to its worker, copied (win NULL) or where it is in
 * the mapped window win. clock: the reader's packet clock. Inline: it runs once per packet. */
static inline void pktfeed__dispatch(struct pktfeed *f, const struct pkt_view *pv,
				     uint64_t clock, struct pcapscan_win *win)
{
	unsigned w = f->n_workers > 1 ? flow_key__pair_hash(&pv->key) % f->n_workers : 0;
	struct pktbatch *b = f->out[w].cur;
	if (SVC_UNLIKELY(!b || b->count == PKTBATCH_PKTS || b->win != win ||
			 (!win && PKTBATCH_BYTES - b->used < pv->l3_caplen)))
		b = pktfeed__next_batch(f, w, clock, win);
	if (!win) {
		memcpy(b->data + b->used, pv->l3, pv->l3_caplen);
		b->pkt_off[b->count] = b->used;
		b->used += pv->l3_caplen;
	}
	b->pv[b->count++] = *pv;
}
/* Reader thread: a worker that got nothing for a second of packet time still gets a batch, so
 * its flows expire in step with the capture. Call every thousand packets or so. */
void pktfeed__flush_idle(struct pktfeed *f, uint64_t clock);
/* Reader thread, when its input waits (a quiet pipe): every worker that has packets pending,
 * or has not had this clock yet, gets its batch now, so that its flows are accounted, expire
 * at the clock and reach the queue (the worker flushes after each batch) while the input is
 * idle. */
void pktfeed__flush_pending(struct pktfeed *f, uint64_t clock);
/* Reader thread, last: every worker gets a last batch (with what is pending). */
void pktfeed__end(struct pktfeed *f, uint64_t clock);

/* Worker thread: the share of worker w (channel w->id) until its last batch. */
void pktfeed__drain(struct pktfeed *f, struct worker *w);

#endif
