/* worker.c - the worker: its input's share in, finished flows out. */
#include "svcsensor/worker.h"

#include <errno.h>
#include <string.h>

#include "svcsensor/common.h"

/* The flow table's callback for a flow it ended. */
static void emit(void *ctx, struct flow_record *rec)
{
	worker__emit(ctx, rec);
}

int worker__init(struct worker *w, unsigned id, const struct svc_config *cfg, struct input *in,
		 struct flowq *q, atomic_uint *done_count)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->input = in;
	w->queue = q;
	w->done_count = done_count;
	atomic_init(&w->records_lost, 0);
	flowq__batch_init(&w->out);
	if (in->ops->records)
		return 0; /* finished flows in: nothing to classify */
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

/* The table's counters are the worker's own; the stats line reads this copy. A store only when
 * it changed (almost never): no shared cache line is written per batch. */
static void publish_lost(struct worker *w)
{
	uint64_t lost = flow_table__stats(w->table)->records_lost;
	if (lost != atomic_load_explicit(&w->records_lost, memory_order_relaxed))
		atomic_store_explicit(&w->records_lost, lost, memory_order_relaxed);
}

uint64_t worker__records_lost(struct worker *w)
{
	return atomic_load_explicit(&w->records_lost, memory_order_relaxed);
}

void worker__account(struct worker *w, const struct pkt_view *pv, uint32_t n, uint64_t clock_us)
{
	/* Hash every packet once, then walk the batch prefetching the bucket PF_FAR packets
	 * ahead and its first entry PF_NEAR ahead: the flow lookups of a busy link are cache
	 * misses, and this overlaps them. flow_key__hash is the seeded one of hash.h. */
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
	publish_lost(w);
}

void worker__expire(struct worker *w, uint64_t clock_us)
{
	flow_table__expire(w->table, clock_us);
	publish_lost(w);
}

void *worker__run(void *arg)
{
	struct worker *w = arg;
	w->input->ops->run(w->input, w);
	if (w->table) {
		flow_table__flush(w->table, FLOW_END_SHUTDOWN);
		w->stats = *flow_table__stats(w->table);
		publish_lost(w);
	}
	flowq__flush(w->queue, &w->out);
	atomic_fetch_add(w->done_count, 1);
	flowq__wake(w->queue);
	/* Free the table (nDPI's module and per-flow state) here, while the detector judges the
	 * last flows: in parallel with it and with the other workers, not after them. */
	if (w->table)
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
