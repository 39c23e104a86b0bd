/* worker.c - the worker loop: packets in, finished flows out. */
#include "svcsensor/worker.h"

#include <errno.h>
#include <string.h>

#include "svcsensor/common.h"
#include "svcsensor/afpacket.h"

#include <pcap/dlt.h>
#include <time.h>

static void emit(void *ctx, struct flow_record *rec)
{
	struct worker *w = ctx;
	flowq__push(w->queue, &w->out, rec);
}

int worker__init(struct worker *w, unsigned id, const struct svc_config *cfg, struct flowq *q,
		 atomic_uint *done_count)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->queue = q;
	w->done_count = done_count;
	flowq__batch_init(&w->out);
	struct flow_table_opts o = {
	    .max_flows = cfg->max_flows,
	    .idle_timeout_us = (uint64_t)cfg->idle_timeout * SVC_US_PER_SEC,
	    .active_timeout_us = (uint64_t)cfg->active_timeout * SVC_US_PER_SEC,
	    .tcp_linger_us = (uint64_t)cfg->tcp_linger * SVC_US_PER_SEC,
	    .tcp_max_pkts = cfg->tcp_max_pkts,
	    .udp_max_pkts = cfg->udp_max_pkts,
	    .guess = cfg->guess,
	    .worker_id = (uint16_t)id,
	};
	w->table = flow_table__new(&o, emit, w);
	return w->table ? 0 : -ENOMEM;
}

/* Account one batch of this worker's packets, then expire flows at the input's clock. */
static void account_batch(struct worker *w, const struct pkt_view *pv, uint32_t n,
			  uint64_t clock_us)
{
	/* Hash every packet once, then walk the batch prefetching the bucket PF_FAR packets
	 * ahead and its first entry PF_NEAR ahead: the flow lookups of a busy link are cache
	 * misses, and this overlaps them. */
	enum { PF_FAR = 8, PF_NEAR = 4 };
	for (uint32_t i = 0; i < n; i++)
		w->hash[i] = flow_key__hash(&pv[i].key);
	for (uint32_t i = 0; i < n; i++) {
		if (i + PF_FAR < n)
			flow_table__prefetch(w->table, w->hash[i + PF_FAR], 0);
		if (i + PF_NEAR < n)
			flow_table__prefetch(w->table, w->hash[i + PF_NEAR], 1);
		flow_table__packet_hashed(w->table, &pv[i], w->hash[i]);
	}
	flow_table__expire(w->table, clock_us);
}

/* Offline, from the reader thread's batches. */
static void run_channel(struct worker *w)
{
	for (;;) {
		struct pktbatch *b = pktchan__get(w->chan);
		account_batch(w, b->pv, b->count, b->clock_us);
		if (b->win)
			pcapscan__win_release(b->win); /* done with the mapped packets */
		b->win = NULL;
		bool last = b->last;
		pktchan__put(w->chan);
		/* One splice per input batch keeps the detector fed without per-flow traffic. */
		flowq__flush(w->queue, &w->out);
		if (last)
			break;
	}
}

/* Offline, walking the files itself. */
static void run_scan(struct worker *w)
{
	uint64_t clock = 0;
	int n;
	while ((n = pcapscan__next(&w->cursor, w->pv, PKTBATCH_PKTS, &clock)) >= 0) {
		account_batch(w, w->pv, (uint32_t)n, clock);
		flowq__flush(w->queue, &w->out); /* one splice per call (<= 1024 records) */
	}
	/* Every worker ends at the input's last time, whoever held its last packet. */
	flow_table__expire(w->table, clock);
}

/* Live: one frame from the ring. pv points into the ring block, which goes back to the
 * kernel after the callback: the flow table must not keep pv.l3 (it does not). */
static void on_frame(void *ctx, const uint8_t *frame, uint32_t caplen, uint32_t wirelen,
		     uint64_t ts_us, int vlan_tci)
{
	struct worker *w = ctx;
	struct pkt_view pv;
	enum decode_result r =
	    decode__frame(DLT_EN10MB, frame, caplen, wirelen, ts_us, vlan_tci, &pv);

	w->live_frames++;
	w->decode[r]++;
	if (SVC_LIKELY(r == DECODE_OK))
		flow_table__packet(w->table, &pv);
}

static uint64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * SVC_US_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static void run_live(struct worker *w)
{
	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		int n = afpacket__poll(w->ring, 100, on_frame, w);
		if (n < 0 && n != -ENETDOWN) {
			w->error = n;
			break;
		}
		/* Idle links still age flows out: the ring's clock is the wall clock. */
		flow_table__expire(w->table, wall_us());
		flowq__flush(w->queue, &w->out);
	}
}

void *worker__run(void *arg)
{
	struct worker *w = arg;
	if (w->cursor.s)
		run_scan(w);
	else if (w->chan)
		run_channel(w);
	else if (w->ring)
		run_live(w);
	flow_table__flush(w->table, FLOW_END_SHUTDOWN);
	flowq__flush(w->queue, &w->out);
	w->stats = *flow_table__stats(w->table);
	atomic_fetch_add(w->done_count, 1);
	flowq__wake(w->queue);
	/* Free the table (nDPI's module and per-flow state) here, while the detector judges the
	 * last flows: in parallel with it and with the other workers, not after them. */
	flow_table__free(w->table);
	w->table = NULL;
	return NULL;
}

const struct flow_table_stats *worker__stats(const struct worker *w)
{
	return w->table ? flow_table__stats(w->table) : &w->stats;
}

void worker__destroy(struct worker *w)
{
	if (w->table)
		flow_table__free(w->table); /* emits only if the thread never ran */
	w->table = NULL;
	struct flow_record *r;
	while ((r = flowq__batch_pop(&w->out)))
		flow_record__free(r);
}
