/* flow_table.h - one worker's private flow table with nDPI classification.
 *
 * Owned by exactly one thread; no locks. Preallocated and bounded: at most max_flows live
 * flows; when full, the least recently used flow ends with FLOW_END_EVICTED. No allocation per
 * packet (nDPI's own per-flow state is allocated once per flow and freed as soon as the
 * classification is final). Time is the packets' own time: a flow's end and content never
 * depend on which worker holds it or on how many workers there are.
 *
 * Semantics:
 * - Both directions of a key are one flow; key.src of the record is the sender of the
 *   flow's first packet; pkts/bytes [0] count src->dst, bytes are pv->ip_len.
 * - The table's clock is the largest packet (or expire) time seen: a packet older than that
 *   (concatenated captures) counts with its own time in first_us/last_us (the record keeps
 *   the smallest and largest) but is placed at the clock for timeouts, so a backwards gap
 *   never expires anything and the lists stay ordered.
 * - A flow ends when its first deadline passes: idle (clock - last packet > idle), active
 *   (clock - first packet > active), or, for a closed TCP flow, the linger (clock - close >
 *   linger; reason FLOW_END_TCP). The reason is the deadline that passed first, whether the
 *   end is noticed by the flow's next packet (which then starts a new flow) or by
 *   flow_table__expire - so it does not depend on how often expire is called.
 * - TCP close: a RST, or a FIN seen in both directions. The closed flow absorbs trailing
 *   packets (last ACK, repeated FIN/RST) for tcp_linger_us; a SYN without ACK during the
 *   linger ends it (FLOW_END_TCP) and starts a new flow.
 * - Table full: due flows are expired first; then the least recently used flow ends with
 *   FLOW_END_EVICTED (a closed TCP flow in its linger ends with FLOW_END_TCP instead: it
 *   had already closed). Evictions depend on load, so they are the one thing that may
 *   differ with the number of workers.
 * - Classification as in dpi.h (ndpiReader 4.2 rules); a flow that ends before its result
 *   is final gets nDPI's give-up. Names in the record: see dpi__flow_fill_record. */
#ifndef SVCSENSOR_FLOW_TABLE_H
#define SVCSENSOR_FLOW_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "svcsensor/decode.h"
#include "svcsensor/flow.h"

/* Defaults (the same values config.c ships). */
#define FLOW_TABLE_DEFAULT_MAX_FLOWS 262144u
#define FLOW_TABLE_DEFAULT_IDLE_US (120 * 1000000ULL)
#define FLOW_TABLE_DEFAULT_ACTIVE_US (1800 * 1000000ULL)
#define FLOW_TABLE_DEFAULT_LINGER_US (2 * 1000000ULL)

struct flow_table_opts {
	uint32_t max_flows;	    /* live flows at most (>= 1, < 2^31) */
	uint64_t idle_timeout_us;   /* default 120 s; 0 = no idle timeout */
	uint64_t active_timeout_us; /* default 1800 s; 0 = no active timeout */
	uint64_t tcp_linger_us;	    /* closed TCP flow absorbs trailing packets this long (from
				     * the close); 0 = a closed flow ends at once */
	uint32_t tcp_max_pkts;	    /* DPI gives up after this many packets (TCP); 0 = 80 */
	uint32_t udp_max_pkts;	    /* ... (UDP and others); 0 = 24 */
	bool guess;		    /* use nDPI's guess at give-up */
	uint16_t worker_id;	    /* copied into each record */
};

/* Fill *o with the defaults above, guess on, worker 0. */
void flow_table__opts_default(struct flow_table_opts *o);

/* Receives each finished flow. The record is the callee's to keep (and free). If the record
 * cannot be allocated the flow is counted in stats.records_lost. */
typedef void (*flow_emit_fn)(void *ctx, struct flow_record *rec);

struct flow_table_stats {
	uint64_t packets; /* packets accounted to flows */
	uint64_t flows_created;
	uint64_t flows_ended[FLOW_END__COUNT];
	uint64_t records_lost; /* allocation failure for a record */
	uint64_t live;	       /* flows currently in the table */
	uint64_t in_detection; /* live flows still holding nDPI state */
	uint64_t chain_max;    /* longest bucket chain a packet's lookup walked (entries) */
	uint64_t chain_long;   /* lookups that walked more than FLOW_TABLE_CHAIN_LONG entries */
};

/* A chain longer than this is a sign of crafted keys or of a broken hash: with the seeded
 * flow_key__hash and at least two buckets per flow, the longest chain of a full table of
 * 2^18..2^22 flows is about 7..8 entries (n balls into 2n bins: the expected number of bins
 * holding 9 or more is below 0.03 at n = 2^22). */
#define FLOW_TABLE_CHAIN_LONG 16

struct flow_table;

/* Build a table (and its nDPI module). All max_flows entries are allocated here (pages are
 * touched as flows first use them). emit must not be NULL; it is called from
 * flow_table__packet / __expire / __flush / __free, on the owner's thread. NULL on error
 * (bad opts, out of memory), reported on stderr. May take ~50 ms (nDPI module init,
 * serialised internally). */
struct flow_table *flow_table__new(const struct flow_table_opts *opts, flow_emit_fn emit,
				   void *emit_ctx);

/* flow_table__flush(t, FLOW_END_SHUTDOWN) (emitting every flow), then free everything.
 * NULL is a no-op. */
void flow_table__free(struct flow_table *t);

/* Account one decoded packet: find or create its flow, classify, update counters; may end
 * this packet's previous flow (idle / active timeout, linger over, SYN during the linger)
 * and then start a new one; may evict when the table is full. Allocates only nDPI's state
 * for a new flow and a record (flow_record__new) for an ended one; never blocks (beyond the
 * emit callback). */
void flow_table__packet(struct flow_table *t, const struct pkt_view *pv);

/* The same, with h = flow_key__hash(&pv->key) already computed (the worker computes it once
 * to prefetch). h must be a symmetric hash of the key (the same for both directions); any
 * such hash works (bench/flow_hash_bench.c feeds another), only the chains' lengths differ. */
void flow_table__packet_hashed(struct flow_table *t, const struct pkt_view *pv, uint64_t h);

/* Warm the cache for a packet that will be accounted soon: stage 0 prefetches the bucket of
 * hash h, stage 1 (a few packets later, when the bucket is in cache) its first entry. Only a
 * hint: never changes the table. */
void flow_table__prefetch(const struct flow_table *t, uint64_t h, int stage);

/* Advance the clock to now_us (never backwards) and end the flows whose idle / active
 * timeout / TCP linger has passed. Cheap to call often: it looks only at the heads of three
 * time-ordered lists (last packet, first packet, close) and touches due flows only.
 * For output independent of the number of workers, offline runs should call it on every
 * table with the time of the input's last packet before flushing. */
void flow_table__expire(struct flow_table *t, uint64_t now_us);

/* End every live flow: those already due at the table's clock with their timeout's reason
 * (as flow_table__expire would), closed TCP flows with FLOW_END_TCP, all others with why. */
void flow_table__flush(struct flow_table *t, enum flow_end why);

/* Counters of the table; valid until flow_table__free. Read on the owner's thread. */
const struct flow_table_stats *flow_table__stats(const struct flow_table *t);

#endif
