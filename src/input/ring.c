/* ring.c - the live input: one AF_PACKET TPACKET_V3 ring per worker, in a fanout group
 * (afpacket.h). Each worker polls its own ring; the main thread reads the kernel's counters. */
#include "svcsensor/input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pcap/dlt.h>

#include "svcsensor/afpacket.h"
#include "svcsensor/common.h"
#include "svcsensor/config.h"
#include "svcsensor/worker.h"

/* One worker's ring and what its thread counted (read after the thread ended). A cache line of
 * its own: the counters are written per frame. */
struct ring_share {
	_Alignas(64) struct afpacket *ring;
	struct worker *w;
	struct input_stats st;
	int error;	     /* the poll error that ended the share, or 0 */
	uint64_t link_downs; /* link downs this ring saw (every ring sees each) */
};

struct ring_input {
	struct input in;
	struct afpacket_opts ao;
	struct ring_share *shares;
	unsigned n;
	atomic_bool *stop;
	struct afpacket_stats total; /* the kernel's counters so far (they reset on read) */
	atomic_bool down_told;	     /* a link down was told (once per run, by any ring) */
	atomic_bool failed;	     /* a ring ended on an error (told once, by the first) */
};

/* One frame, in the ring's block (which goes back to the kernel after the callback: the flow
 * table does not keep pv.l3). */
static void on_frame(void *ctx, const uint8_t *frame, uint32_t caplen, uint32_t wirelen,
		     uint64_t ts_us, int vlan_tci)
{
	struct ring_share *sh = ctx;
	struct pkt_view pv;
	if (input__decode(&sh->st, DLT_EN10MB, frame, caplen, wirelen, ts_us, vlan_tci, &pv))
		worker__packet(sh->w, &pv);
}

static uint64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * SVC_US_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

/* A ring ended on an error: one line for the whole group (every ring of the interface sees
 * its removal), and the run stops: a capture that lost a ring would go on missing its share
 * of the flows without a word. */
static void ring_failed(struct ring_input *r, int err)
{
	if (!atomic_exchange(&r->failed, true)) {
		if (err == -ENODEV)
			svc_err("%s: capture stopped: the interface was removed: %s", r->ao.ifname,
				strerror(-err));
		else
			svc_err("%s: capture stopped: %s", r->ao.ifname, strerror(-err));
	}
	atomic_store(r->stop, true);
}

static void ring_run(struct input *in, struct worker *w)
{
	struct ring_input *r = (struct ring_input *)in;
	struct ring_share *sh = &r->shares[w->id];
	sh->w = w;
	while (!atomic_load_explicit(r->stop, memory_order_relaxed)) {
		int n = afpacket__poll(sh->ring, 100, on_frame, sh);
		if (n == -ENETDOWN) {
			/* The link goes down and up (a cable, a restart): counted, told once. */
			sh->link_downs++;
			if (!atomic_exchange(&r->down_told, true))
				svc_warn(
				    "%s: the link went down; capture resumes when it is up again "
				    "(link downs are counted in the exit summary)",
				    r->ao.ifname);
		} else if (n < 0) {
			sh->error = n;
			ring_failed(r, n);
			break;
		}
		/* Idle links still age flows out: the ring's clock is the wall clock. */
		worker__expire(w, wall_us());
		worker__flush(w);
	}
}

/* The kernel's counters reset on read: only the main thread reads them, into r->total. */
static void ring_live_stats(struct input *in, struct input_stats *st)
{
	struct ring_input *r = (struct ring_input *)in;
	for (unsigned i = 0; i < r->n; i++)
		afpacket__stats(r->shares[i].ring, &r->total);
	st->captured = r->total.packets;
	st->drops = r->total.drops;
	st->freezes = r->total.freezes;
}

static void ring_stats(struct input *in, struct input_stats *st)
{
	struct ring_input *r = (struct ring_input *)in;
	for (unsigned i = 0; i < r->n; i++) {
		const struct input_stats *s = &r->shares[i].st;
		st->packets += s->packets;
		st->bytes += s->bytes;
		for (unsigned d = 0; d < DECODE__COUNT; d++)
			st->decode[d] += s->decode[d];
		if (!st->error)
			st->error = r->shares[i].error;
		if (r->shares[i].link_downs > st->link_downs)
			st->link_downs = r->shares[i].link_downs;
	}
	ring_live_stats(in, st);
}

static void ring_summary(struct input *in, const struct input_stats *st)
{
	struct ring_input *r = (struct ring_input *)in;
	fprintf(stderr, "%s: ring: packets %llu, drops %llu, freezes %llu (fanout %s)\n", SVC_PROG,
		(unsigned long long)st->captured, (unsigned long long)st->drops,
		(unsigned long long)st->freezes, r->ao.fanout ? r->ao.fanout : "none");
	if (st->link_downs)
		svc_warn(
		    "%s: the link went down %llu time%s: frames sent while it was down were not "
		    "captured",
		    r->ao.ifname, (unsigned long long)st->link_downs,
		    st->link_downs == 1 ? "" : "s");
	if (st->drops)
		svc_warn("the rings dropped %llu packets: see README, Live capture (ring size, "
			 "threads)",
			 (unsigned long long)st->drops);
}

static void ring_close(struct input *in)
{
	struct ring_input *r = (struct ring_input *)in;
	for (unsigned i = 0; i < r->n; i++)
		afpacket__close(r->shares[i].ring);
	free(r->shares);
	free(r);
}

static const struct input_ops ring_ops = {
    .name = "ring",
    .live = true,
    .run = ring_run,
    .live_stats = ring_live_stats,
    .stats = ring_stats,
    .summary = ring_summary,
    .close = ring_close,
};

int input_ring__open(const struct input_args *a, struct input **out)
{
	const struct svc_config *cfg = a->cfg;
	struct ring_input *r = calloc(1, sizeof(*r));
	struct afpacket **rings = calloc(a->threads, sizeof(*rings));
	if (r)
		r->shares = aligned_alloc(64, a->threads * sizeof(*r->shares));
	if (r && r->shares)
		memset(r->shares, 0, a->threads * sizeof(*r->shares));
	int rc = r && rings && r->shares ? 0 : -ENOMEM;
	if (rc) {
		svc_err("%s: out of memory", cfg->interface);
		goto cleanup;
	}
	afpacket__offload_warning(cfg->interface);
	r->ao = (struct afpacket_opts){
	    .ifname = cfg->interface,
	    .block_size = cfg->ring_block_size,
	    .block_count = cfg->ring_block_count,
	    .frame_size = cfg->ring_frame_size,
	    .block_timeout_ms = cfg->ring_block_timeout_ms,
	    .fanout = a->threads > 1 ? cfg->fanout : NULL,
	    .group_id = afpacket__group_id(),
	    .promisc = cfg->promisc,
	    .bpf_filter = cfg->bpf_filter,
	};
	rc = afpacket__open_group(&r->ao, a->threads, rings);
	if (rc)
		goto cleanup;
	r->n = a->threads;
	for (unsigned i = 0; i < r->n; i++)
		r->shares[i].ring = rings[i];
	r->in.ops = &ring_ops;
	r->in.n_workers = r->n;
	r->stop = a->stop;
	*out = &r->in;
cleanup:
	free(rings);
	if (rc && r) {
		free(r->shares);
		free(r);
	}
	return rc;
}
