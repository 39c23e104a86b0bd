/* flow_csv.c - nfstream-style flow CSV export. */
#include "svcsensor/flow_csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/common.h"
#include "svcsensor/sink.h"
#include "svcsensor/textbuf.h"

struct flow_csv {
	FILE *f;
	char *path;
	bool with_verdict;
	uint64_t next_id;
	bool failed;
	uint64_t lost; /* rows fwrite could not take */
	char *buf;
};

#define CSV_BUF (1u << 20)

static const char *const header =
    "id,expiration_id,src_ip,src_port,dst_ip,dst_port,protocol,ip_version,vlan_id,"
    "bidirectional_first_seen_ms,bidirectional_last_seen_ms,bidirectional_duration_ms,"
    "bidirectional_packets,bidirectional_bytes,src2dst_packets,src2dst_bytes,"
    "dst2src_packets,dst2src_bytes,application_name,application_category_name,"
    "application_is_guessed,requested_server_name,end_reason";

struct flow_csv *flow_csv__open(const char *path, bool with_verdict)
{
	struct flow_csv *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->f = fopen(path, "w");
	if (!c->f) {
		svc_err("%s: cannot create flow export: %s", path, strerror(errno));
		free(c);
		return NULL;
	}
	c->buf = malloc(CSV_BUF);
	if (c->buf)
		setvbuf(c->f, c->buf, _IOFBF, CSV_BUF);
	c->path = strdup(path);
	c->with_verdict = with_verdict;
	fprintf(c->f, "%s%s\n", header, with_verdict ? ",verdict" : "");
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

/* The row is built in one buffer and written with one fwrite: printf's format parsing per
 * field was most of the export's cost. Bounded: names are bounded in the record, and quoting
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
	size_t len = textbuf__len(&b, row);
	if (fwrite(row, 1, len, c->f) != len) {
		c->lost++;
		if (!c->failed)
			svc_err("%s: write failed: %s", c->path, strerror(errno));
		c->failed = true;
	}
}

int flow_csv__close(struct flow_csv *c)
{
	if (!c)
		return 0;
	int rc = 0;
	if (fclose(c->f) != 0 && !c->failed) {
		svc_err("%s: write failed: %s", c->path, strerror(errno));
		c->failed = true;
	}
	if (c->failed)
		rc = -EIO;
	free(c->buf);
	free(c->path);
	free(c);
	return rc;
}

/* ---- the flow CSV as a sink: every flow, with its verdict in detect mode ---- */

static int csv_open(const struct sink_env *env, void **self)
{
	const char *path = env->cfg->flows_out;

	if (!path || !*path)
		return 0;
	*self = flow_csv__open(path, !env->learn);
	return *self ? 0 : -EIO; /* flow_csv__open said why */
}

static void csv_flow(void *self, const struct sink_flow *f)
{
	flow_csv__write(self, f->rec, f->learned ? NULL : verdict__name(f->verdict));
}

static int csv_close(void *self, bool final)
{
	(void) final; /* rows already written stay; the file was created at open */
	return flow_csv__close(self);
}

static uint64_t csv_lost(const void *self)
{
	return ((const struct flow_csv *)self)->lost;
}

const struct sink_ops flow_csv_sink = {
    .name = "flow_csv",
    .open = csv_open,
    .flow = csv_flow,
    .close = csv_close,
    .lost = csv_lost,
};
