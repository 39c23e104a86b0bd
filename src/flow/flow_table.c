/* flow_table.c - one worker's flow table: lookup, timeouts, TCP close, eviction, nDPI.
 *
 * Layout: a slab of max_flows entries allocated at creation, addressed by 32-bit index.
 * A power-of-two bucket array (2 x max_flows rounded up) holds the head of each chain;
 * entries chain through hnext (also the free-list link). Chains stay short because the load
 * is at most 1/2 and the hash, flow_key__hash (include/svcsensor/hash.h), is keyed by a
 * per-process seed: the traffic cannot choose keys that share a bucket. Entries never used
 * yet are handed out from a watermark, so the slab's pages are touched only as the table
 * fills.
 *
 * Three intrusive doubly linked lists, each ordered by a monotonic clock, make expiry touch
 * due flows only:
 *   lru     every live flow, by last packet (head = least recently used: idle, eviction)
 *   age     open flows, by first packet (head = oldest: active timeout)
 *   closed  closed TCP flows, by close time (head = first to leave its linger)
 * An entry is on lru and on exactly one of age / closed (the tq link). */
#include "svcsensor/flow_table.h"

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/common.h"
#include "svcsensor/dpi.h"

#define FT_NIL UINT32_MAX

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

enum ft_state { FT_FREE = 0, FT_OPEN, FT_CLOSED };

struct ft_link {
	uint32_t prev, next;
};

struct ft_list {
	uint32_t head, tail;
};

struct ft_entry {
	struct flow_key key;	    /* as first seen: key.src sent the first packet */
	uint32_t hnext;		    /* bucket chain / free list */
	uint8_t state;		    /* enum ft_state */
	uint8_t fin_dirs;	    /* bit d: FIN seen in direction d */
	uint8_t lru_touched;	    /* a packet came since it was queued on t->lru */
	struct ft_link lru;	    /* on t->lru */
	struct ft_link tq;	    /* on t->age (open) or t->closed */
	uint64_t hash;		    /* flow_key__hash (seeded, symmetric) */
	uint64_t start_clk;	    /* table clock at the first packet */
	uint64_t touch_clk;	    /* table clock at the last packet */
	uint64_t close_clk;	    /* table clock at the close (FT_CLOSED) */
	uint64_t first_us, last_us; /* smallest / largest packet time */
	uint64_t pkts[2], bytes[2];
	struct dpi_flow dpi;
};

struct flow_table {
	struct flow_table_opts o;
	flow_emit_fn emit;
	void *emit_ctx;
	struct dpi_module *dpi;

	struct ft_entry *e; /* max_flows entries */
	uint32_t *bucket;   /* bmask + 1 chain heads */
	uint32_t bmask;
	uint32_t free_head; /* recycled entries */
	uint32_t unused;    /* entries [unused, max_flows) never handed out */
	struct ft_list lru, age, closed;

	uint64_t clock; /* largest time seen (us) */
	struct flow_table_stats st;
};

void flow_table__opts_default(struct flow_table_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_flows = FLOW_TABLE_DEFAULT_MAX_FLOWS;
	o->idle_timeout_us = FLOW_TABLE_DEFAULT_IDLE_US;
	o->active_timeout_us = FLOW_TABLE_DEFAULT_ACTIVE_US;
	o->tcp_linger_us = FLOW_TABLE_DEFAULT_LINGER_US;
	o->tcp_max_pkts = DPI_DEFAULT_TCP_MAX_PKTS;
	o->udp_max_pkts = DPI_DEFAULT_UDP_MAX_PKTS;
	o->guess = true;
}

/* ---- intrusive lists (by link offset inside the entry) ---- */

static inline struct ft_link *lnk(struct flow_table *t, uint32_t i, size_t off)
{
	return (struct ft_link *)((char *)&t->e[i] + off);
}

static void list_push_tail(struct flow_table *t, struct ft_list *l, uint32_t i, size_t off)
{
	struct ft_link *n = lnk(t, i, off);

	n->prev = l->tail;
	n->next = FT_NIL;
	if (l->tail != FT_NIL)
		lnk(t, l->tail, off)->next = i;
	else
		l->head = i;
	l->tail = i;
}

static void list_remove(struct flow_table *t, struct ft_list *l, uint32_t i, size_t off)
{
	struct ft_link *n = lnk(t, i, off);

	if (n->prev != FT_NIL)
		lnk(t, n->prev, off)->next = n->next;
	else
		l->head = n->next;
	if (n->next != FT_NIL)
		lnk(t, n->next, off)->prev = n->prev;
	else
		l->tail = n->prev;
	n->prev = n->next = FT_NIL;
}

#define LRU offsetof(struct ft_entry, lru)
#define TQ offsetof(struct ft_entry, tq)

/* ---- lookup ---- */

/* 0 when pv's key is e's direction, 1 when reversed, -1 when another flow. */
static int key_dir(const struct flow_key *a, const struct flow_key *b)
{
	if (a->proto != b->proto || a->vlan != b->vlan || a->ipver != b->ipver)
		return -1;
	if (a->sport == b->sport && a->dport == b->dport && !memcmp(a->src, b->src, 16) &&
	    !memcmp(a->dst, b->dst, 16))
		return 0;
	if (a->sport == b->dport && a->dport == b->sport && !memcmp(a->src, b->dst, 16) &&
	    !memcmp(a->dst, b->src, 16))
		return 1;
	return -1;
}

/* The entry of k (direction in *dir), or FT_NIL. Counts the entries walked: the longest walk
 * and the walks beyond FLOW_TABLE_CHAIN_LONG are the table's only sign that its chains grew
 * (flow_key__hash is seeded so that traffic cannot choose them); two predictable compares. */
static uint32_t lookup(struct flow_table *t, uint64_t h, const struct flow_key *k, int *dir)
{
	uint32_t i, n = 0;

	for (i = t->bucket[h & t->bmask]; i != FT_NIL; i = t->e[i].hnext) {
		n++;
		if (t->e[i].hash != h)
			continue;
		*dir = key_dir(&t->e[i].key, k);
		if (*dir >= 0)
			break;
	}
	if (SVC_UNLIKELY(n > t->st.chain_max))
		t->st.chain_max = n;
	if (SVC_UNLIKELY(n > FLOW_TABLE_CHAIN_LONG))
		t->st.chain_long++;
	return i;
}

static void bucket_unlink(struct flow_table *t, uint32_t idx)
{
	uint32_t *p = &t->bucket[t->e[idx].hash & t->bmask];

	while (*p != FT_NIL && *p != idx)
		p = &t->e[*p].hnext;
	if (*p == idx)
		*p = t->e[idx].hnext;
}

/* ---- ending a flow ---- */

/* The reason of the deadline that passed first at now, or -1 when none has passed.
 * Ties: linger, then idle, then active. */
static int due_reason(const struct flow_table *t, const struct ft_entry *e, uint64_t now)
{
	int why = -1;
	uint64_t first = UINT64_MAX;

	if (e->state == FT_CLOSED && now - e->close_clk > t->o.tcp_linger_us) {
		why = FLOW_END_TCP;
		first = e->close_clk + t->o.tcp_linger_us;
	}
	if (t->o.idle_timeout_us && now - e->touch_clk > t->o.idle_timeout_us &&
	    e->touch_clk + t->o.idle_timeout_us < first) {
		why = FLOW_END_IDLE;
		first = e->touch_clk + t->o.idle_timeout_us;
	}
	if (t->o.active_timeout_us && now - e->start_clk > t->o.active_timeout_us &&
	    e->start_clk + t->o.active_timeout_us < first)
		why = FLOW_END_ACTIVE;
	return why;
}

static void emit_record(struct flow_table *t, struct ft_entry *e, enum flow_end why)
{
	struct flow_record *r = flow_record__new();

	if (SVC_UNLIKELY(!r)) {
		t->st.records_lost++;
		return;
	}
	r->key = e->key;
	r->first_us = e->first_us;
	r->last_us = e->last_us;
	memcpy(r->pkts, e->pkts, sizeof(r->pkts));
	memcpy(r->bytes, e->bytes, sizeof(r->bytes));
	r->end_reason = (uint8_t)why;
	r->worker = t->o.worker_id;
	dpi__flow_fill_record(t->dpi, &e->dpi, r);
	t->emit(t->emit_ctx, r);
}

static void end_flow(struct flow_table *t, uint32_t idx, enum flow_end why)
{
	struct ft_entry *e = &t->e[idx];

	if (!e->dpi.final) {
		dpi__flow_giveup(t->dpi, &e->dpi);
		t->st.in_detection--;
	}
	/* Out of every index before the callback, so the table is consistent if it looks. */
	bucket_unlink(t, idx);
	list_remove(t, &t->lru, idx, LRU);
	list_remove(t, e->state == FT_CLOSED ? &t->closed : &t->age, idx, TQ);
	t->st.live--;
	t->st.flows_ended[why]++;

	emit_record(t, e, why);
	dpi__flow_release(t->dpi, &e->dpi);

	e->state = FT_FREE;
	e->hnext = t->free_head;
	t->free_head = idx;
}

/* The LRU list is kept lazily (CLOCK-style second chance): a packet only marks its flow
 * touched instead of moving it to the tail, which would touch two neighbouring entries (two
 * cache misses) on every packet. When a touched flow reaches the head it is moved to the tail
 * once. The head can then be younger than a flow behind it, so an idle flow may be ended a
 * little later than its deadline, never earlier, and always with the reason and content its
 * packets decided (due_reason): output does not change, only when memory is given back.
 * Returns true when i was touched and has been requeued. */
static bool lru_second_chance(struct flow_table *t, uint32_t i)
{
	if (!t->e[i].lru_touched)
		return false;
	t->e[i].lru_touched = 0;
	list_remove(t, &t->lru, i, LRU);
	list_push_tail(t, &t->lru, i, LRU);
	return true;
}

/* End the flows due at the clock, walking each list from its oldest end. */
static void expire_due(struct flow_table *t)
{
	uint64_t now = t->clock;
	uint32_t i;

	while ((i = t->closed.head) != FT_NIL && now - t->e[i].close_clk > t->o.tcp_linger_us)
		end_flow(t, i, (enum flow_end)due_reason(t, &t->e[i], now));
	if (t->o.active_timeout_us)
		while ((i = t->age.head) != FT_NIL &&
		       now - t->e[i].start_clk > t->o.active_timeout_us)
			end_flow(t, i, (enum flow_end)due_reason(t, &t->e[i], now));
	if (t->o.idle_timeout_us)
		while ((i = t->lru.head) != FT_NIL) {
			if (now - t->e[i].touch_clk > t->o.idle_timeout_us)
				end_flow(t, i, (enum flow_end)due_reason(t, &t->e[i], now));
			else if (!lru_second_chance(t, i))
				break;
		}
}

void flow_table__expire(struct flow_table *t, uint64_t now_us)
{
	if (now_us > t->clock)
		t->clock = now_us;
	expire_due(t);
}

void flow_table__flush(struct flow_table *t, enum flow_end why)
{
	uint32_t i;

	expire_due(t);
	while ((i = t->lru.head) != FT_NIL)
		end_flow(t, i, t->e[i].state == FT_CLOSED ? FLOW_END_TCP : why);
}

/* ---- packets ---- */

static uint32_t alloc_entry(struct flow_table *t)
{
	uint32_t i;

	if (t->free_head != FT_NIL) {
		i = t->free_head;
		t->free_head = t->e[i].hnext;
		return i;
	}
	if (t->unused < t->o.max_flows)
		return t->unused++;
	return FT_NIL;
}

static uint32_t new_flow(struct flow_table *t, uint64_t h, const struct pkt_view *pv)
{
	struct ft_entry *e;
	uint32_t i = alloc_entry(t);

	if (i == FT_NIL) {
		expire_due(t);
		i = alloc_entry(t);
	}
	if (i == FT_NIL) {
		uint32_t lru;
		while (lru_second_chance(t, (lru = t->lru.head)))
			;
		end_flow(t, lru, t->e[lru].state == FT_CLOSED ? FLOW_END_TCP : FLOW_END_EVICTED);
		i = alloc_entry(t);
	}

	e = &t->e[i];
	memset(e, 0, offsetof(struct ft_entry, dpi));
	e->key = pv->key;
	e->hash = h;
	e->state = FT_OPEN;
	e->start_clk = e->touch_clk = t->clock;
	e->first_us = e->last_us = pv->ts_us;
	e->hnext = t->bucket[h & t->bmask];
	t->bucket[h & t->bmask] = i;
	list_push_tail(t, &t->lru, i, LRU);
	list_push_tail(t, &t->age, i, TQ);
	if (dpi__flow_start(t->dpi, &e->dpi) == 0)
		t->st.in_detection++;
	t->st.live++;
	t->st.flows_created++;
	return i;
}

static void close_flow(struct flow_table *t, uint32_t idx)
{
	struct ft_entry *e = &t->e[idx];

	if (t->o.tcp_linger_us == 0) {
		end_flow(t, idx, FLOW_END_TCP);
		return;
	}
	list_remove(t, &t->age, idx, TQ);
	e->state = FT_CLOSED;
	e->close_clk = t->clock;
	list_push_tail(t, &t->closed, idx, TQ);
}

void flow_table__prefetch(const struct flow_table *t, uint64_t h, int stage)
{
	const uint32_t *b = &t->bucket[h & t->bmask];
	if (stage == 0) {
		__builtin_prefetch(b);
	} else {
		uint32_t i = *b;
		if (i != FT_NIL)
			__builtin_prefetch(&t->e[i], 1);
	}
}

void flow_table__packet(struct flow_table *t, const struct pkt_view *pv)
{
	flow_table__packet_hashed(t, pv, flow_key__hash(&pv->key));
}

void flow_table__packet_hashed(struct flow_table *t, const struct pkt_view *pv, uint64_t h)
{
	struct ft_entry *e;
	uint32_t idx;
	int dir = 0, why;
	bool tcp = pv->key.proto == IPPROTO_TCP;

	if (pv->ts_us > t->clock)
		t->clock = pv->ts_us;
	t->st.packets++;

	idx = lookup(t, h, &pv->key, &dir);
	if (idx != FT_NIL) {
		e = &t->e[idx];
		why = due_reason(t, e, t->clock);
		if (why < 0 && e->state == FT_CLOSED && tcp &&
		    (pv->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
			why = FLOW_END_TCP; /* a new connection on the same ports */
		if (why >= 0) {
			end_flow(t, idx, (enum flow_end)why);
			idx = FT_NIL;
		}
	}
	if (idx == FT_NIL) {
		idx = new_flow(t, h, pv);
		dir = 0;
	}

	e = &t->e[idx];
	e->pkts[dir]++;
	e->bytes[dir] += pv->ip_len;
	if (pv->ts_us < e->first_us)
		e->first_us = pv->ts_us;
	if (pv->ts_us > e->last_us)
		e->last_us = pv->ts_us;
	e->touch_clk = t->clock;
	e->lru_touched = t->lru.tail != idx;

	if (!e->dpi.final && pv->l3 && pv->l3_caplen &&
	    dpi__flow_packet(t->dpi, &e->dpi, pv->l3, pv->l3_caplen, t->clock / SVC_US_PER_MS,
			     pv->key.proto))
		t->st.in_detection--;

	if (tcp && e->state == FT_OPEN) {
		if (pv->tcp_flags & TCP_RST) {
			close_flow(t, idx);
		} else if (pv->tcp_flags & TCP_FIN) {
			e->fin_dirs |= (uint8_t)(1u << dir);
			if (e->fin_dirs == 3)
				close_flow(t, idx);
		}
	}
}

/* ---- life cycle ---- */

struct flow_table *flow_table__new(const struct flow_table_opts *opts, flow_emit_fn emit,
				   void *emit_ctx)
{
	struct flow_table *t = NULL;
	struct dpi_opts dopts;
	uint64_t nb = 1;

	if (!opts || !emit || opts->max_flows == 0 || opts->max_flows >= (1u << 31)) {
		svc_err("flow table: invalid options (max_flows must be 1..2^31-1, emit set)");
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		goto nomem;
	t->o = *opts;
	t->emit = emit;
	t->emit_ctx = emit_ctx;
	t->free_head = FT_NIL;
	t->lru.head = t->lru.tail = FT_NIL;
	t->age.head = t->age.tail = FT_NIL;
	t->closed.head = t->closed.tail = FT_NIL;

	while (nb < 2ull * opts->max_flows)
		nb <<= 1;
	t->bmask = (uint32_t)(nb - 1);
	/* calloc: pages of never-used entries stay untouched until the table fills. */
	t->e = calloc(opts->max_flows, sizeof(*t->e));
	t->bucket = malloc(nb * sizeof(*t->bucket));
	if (!t->e || !t->bucket)
		goto nomem;
	memset(t->bucket, 0xff, nb * sizeof(*t->bucket)); /* FT_NIL */

	dopts.tcp_max_pkts = opts->tcp_max_pkts;
	dopts.udp_max_pkts = opts->udp_max_pkts;
	dopts.guess = opts->guess;
	t->dpi = dpi__module_new(&dopts);
	if (!t->dpi)
		goto cleanup;
	return t;

nomem:
	svc_err("flow table: cannot allocate %u flow entries: %s", opts->max_flows,
		strerror(ENOMEM));
cleanup:
	if (t) {
		free(t->e);
		free(t->bucket);
		free(t);
	}
	return NULL;
}

void flow_table__free(struct flow_table *t)
{
	if (!t)
		return;
	flow_table__flush(t, FLOW_END_SHUTDOWN);
	dpi__module_free(t->dpi);
	free(t->e);
	free(t->bucket);
	free(t);
}

const struct flow_table_stats *flow_table__stats(const struct flow_table *t)
{
	return &t->st;
}
