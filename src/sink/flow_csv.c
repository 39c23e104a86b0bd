/* flow_csv.c - nfstream-style flow CSV export, on a line file (src/util/linefile.c): the rows
 * of one detector pass go out in one write(2), so a row is on disk within a pass (not in a
 * stdio buffer until exit), a killed run loses at most the pass being written, and the file is
 * appended to across runs, reopened on SIGHUP and rotated by size like the anomaly log. */
#include "svcsensor/flow_csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/common.h"
#include "svcsensor/linefile.h"
#include "svcsensor/sink.h"
#include "svcsensor/textbuf.h"

struct flow_csv {
	struct linefile *lf;
	bool with_verdict;
	uint64_t next_id;
};

#define COLUMNS                                                                                    \
	"id,expiration_id,src_ip,src_port,dst_ip,dst_port,protocol,ip_version,vlan_id,"            \
	"bidirectional_first_seen_ms,bidirectional_last_seen_ms,bidirectional_duration_ms,"        \
	"bidirectional_packets,bidirectional_bytes,src2dst_packets,src2dst_bytes,"                 \
	"dst2src_packets,dst2src_bytes,application_name,application_category_name,"                \
	"application_is_guessed,requested_server_name,end_reason"

struct flow_csv *flow_csv__open(const char *path, bool with_verdict, uint64_t max_bytes,
				unsigned keep)
{
	const struct linefile_opts o = {
	    .max_bytes = max_bytes,
	    .keep = keep,
	    .what = "flow CSV",
	    .unit = "flow rows",
	    .header = with_verdict ? COLUMNS ",verdict\n" : COLUMNS "\n",
	};
	struct flow_csv *c = calloc(1, sizeof(*c));

	if (!c) {
		svc_err("%s: cannot open the flow CSV: %s", path, strerror(ENOMEM));
		return NULL;
	}
	c->with_verdict = with_verdict;
	if (!(c->lf = linefile__open(path, &o))) {
		free(c);
		return NULL;
	}
	return c;
}

int flow_csv__expiration_id(enum flow_end e)
{
	return e == FLOW_END_IDLE ? 0 : e == FLOW_END_ACTIVE ? 1 : -1;
}

/* RFC 4180: quote when needed, double the quotes. */
static void put_text(struct textbuf *b, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		textbuf__str(b, s);
		return;
	}
	textbuf__char(b, '"');
	for (; *s; s++) {
		if (*s == '"')
			textbuf__char(b, '"');
		textbuf__char(b, *s);
	}
	textbuf__char(b, '"');
}

static void put_u64(struct textbuf *b, uint64_t v)
{
	textbuf__u64(b, v);
	textbuf__char(b, ',');
}

/* The row is built in one buffer and batched: printf's format parsing per field was most of
 * the export's cost. Bounded: names are bounded in the record, and quoting
 * at most doubles them. */
void flow_csv__write(struct flow_csv *c, const struct flow_record *r, const char *verdict)
{
	enum {
		ROW_MAX = 2 * (FLOW_APP_NAME_LEN + 2 * FLOW_PROTO_NAME_LEN + FLOW_SERVER_NAME_LEN) +
			  2 * 48 + 20 * 24 + 64
	};
	char row[ROW_MAX], addr[48];
	struct textbuf b = {row, row + sizeof(row)};
	const struct flow_key *k = &r->key;
	uint64_t first = r->first_us / SVC_US_PER_MS, last = r->last_us / SVC_US_PER_MS;

	put_u64(&b, c->next_id++);
	textbuf__i64(&b, flow_csv__expiration_id(r->end_reason));
	textbuf__char(&b, ',');
	textbuf__str(&b, flow__addr_str(k->src, k->ipver, addr, sizeof(addr)));
	textbuf__char(&b, ',');
	put_u64(&b, k->sport);
	textbuf__str(&b, flow__addr_str(k->dst, k->ipver, addr, sizeof(addr)));
	textbuf__char(&b, ',');
	put_u64(&b, k->dport);
	put_u64(&b, k->proto);
	put_u64(&b, k->ipver);
	put_u64(&b, k->vlan);
	put_u64(&b, first);
	put_u64(&b, last);
	put_u64(&b, last - first);
	put_u64(&b, r->pkts[0] + r->pkts[1]);
	put_u64(&b, r->bytes[0] + r->bytes[1]);
	put_u64(&b, r->pkts[0]);
	put_u64(&b, r->bytes[0]);
	put_u64(&b, r->pkts[1]);
	put_u64(&b, r->bytes[1]);
	put_text(&b, r->app_name);
	textbuf__char(&b, ',');
	put_text(&b, r->category);
	textbuf__str(&b, r->guessed ? ",1," : ",0,");
	put_text(&b, r->server_name);
	textbuf__char(&b, ',');
	textbuf__str(&b, flow_end__name(r->end_reason));
	if (c->with_verdict) {
		textbuf__char(&b, ',');
		put_text(&b, verdict ? verdict : "");
	}
	textbuf__char(&b, '\n');
	linefile__add(c->lf, row, textbuf__len(&b, row));
}

int flow_csv__flush(struct flow_csv *c)
{
	return linefile__flush(c->lf);
}

int flow_csv__reopen(struct flow_csv *c)
{
	return linefile__reopen(c->lf);
}

uint64_t flow_csv__lost(const struct flow_csv *c)
{
	return linefile__stats(c->lf)->errors;
}

int flow_csv__close(struct flow_csv *c)
{
	if (!c)
		return 0;
	int rc = linefile__flush(c->lf);
	if (!rc && linefile__stats(c->lf)->errors)
		rc = -EIO;
	linefile__close(c->lf);
	free(c);
	return rc;
}

/* ---- the flow CSV as a sink: every flow, with its verdict in detect mode ---- */

static int csv_open(const struct sink_env *env, void **self)
{
	const struct svc_config *cfg = env->cfg;

	if (!cfg->flows_out || !*cfg->flows_out)
		return 0;
	*self = flow_csv__open(cfg->flows_out, !env->learn, cfg->flows_max_bytes, cfg->flows_keep);
	return *self ? 0 : -EIO; /* flow_csv__open said why */
}

static void csv_flow(void *self, const struct sink_flow *f)
{
	flow_csv__write(self, f->rec, f->learned ? NULL : verdict__name(f->verdict));
}

static void csv_flush(void *self)
{
	flow_csv__flush(self);
}

static void csv_reopen(void *self)
{
	flow_csv__reopen(self);
}

static int csv_close(void *self, bool final)
{
	(void) final; /* rows already written stay; nothing is batched after a failed start */
	return flow_csv__close(self);
}

static uint64_t csv_lost(const void *self)
{
	return flow_csv__lost(self);
}

static void csv_losses(const void *self, sink_loss_fn cb, void *ctx)
{
	const struct linefile_stats *st = linefile__stats(((const struct flow_csv *)self)->lf);
	cb(ctx, &(struct sink_loss){.what = "rows", .count = st->errors, .err = st->last_err});
}

const struct sink_ops flow_csv_sink = {
    .name = "flow_csv",
    .open = csv_open,
    .flow = csv_flow,
    .flush = csv_flush,
    .reopen = csv_reopen,
    .close = csv_close,
    .lost = csv_lost,
    .losses = csv_losses,
};
