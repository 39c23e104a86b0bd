/* flow_table.h - one worker's private flow table with nDPI classification.
 *
 * Owned by exactly one thread; no locks. Preallocated and bounded: at most max_flows live
 * flows; when full, the least recently used flow ends with FLOW_END_EVICTED. No allocation per
 * packet (nDPI's own per-flow state is allocated once per flow and freed as soon as the
 * classification is final). Time is the packets' own time: a flow's end and content never
 * depend on which worker holds it or on how many workers there are. */
#ifndef SVCSENSOR_FLOW_TABLE_H
#define SVCSENSOR_FLOW_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "svcsensor/decode.h"
#include "svcsensor/flow.h"

struct flow_table_opts {
	uint32_t max_flows;        /* live flows at most */
	uint64_t idle_timeout_us;  /* default 120 s */
	uint64_t active_timeout_us;/* default 1800 s */
	uint64_t tcp_linger_us;    /* closed TCP flow absorbs trailing packets this long */
	uint32_t tcp_max_pkts;     /* DPI gives up after this many packets (TCP) */
	uint32_t udp_max_pkts;     /* ... (UDP and others) */
	bool guess;                /* use nDPI's guess at give-up */
	uint16_t worker_id;        /* copied into each record */
};

/* Receives each finished flow. The record is the callee's to keep (and free). If the record
 * cannot be allocated the flow is counted in stats.records_lost. */
typedef void (*flow_emit_fn)(void *ctx, struct flow_record *rec);

struct flow_table_stats {
	uint64_t packets;          /* packets accounted to flows */
	uint64_t flows_created;
	uint64_t flows_ended[FLOW_END__COUNT];
	uint64_t records_lost;     /* allocation failure for a record */
	uint64_t live;             /* flows currently in the table */
	uint64_t in_detection;     /* live flows still holding nDPI state */
};

struct flow_table;

/* Build a table (and its nDPI module). NULL on error, reported on stderr. May take ~50 ms
 * (nDPI module init, serialised internally). */
struct flow_table *flow_table__new(const struct flow_table_opts *opts, flow_emit_fn emit,
				   void *emit_ctx);

/* End every flow with reason FLOW_END_SHUTDOWN (emitting them), then free everything. */
void flow_table__free(struct flow_table *t);

/* Account one decoded packet: find or create its flow, classify, update counters; may end
 * this packet's previous flow (idle / active timeout) and then start a new one. */
void flow_table__packet(struct flow_table *t, const struct pkt_view *pv);

/* End flows whose idle / active timeout / TCP linger has passed at now_us. Cheap to call
 * often (amortised: it looks at the least recently used end only). */
void flow_table__expire(struct flow_table *t, uint64_t now_us);

/* End every live flow with the given reason. */
void flow_table__flush(struct flow_table *t, enum flow_end why);

const struct flow_table_stats *flow_table__stats(const struct flow_table *t);

#endif
