/* flow_csv.c - nfstream-style flow CSV export. */
#include "svcsensor/flow_csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/common.h"

struct flow_csv {
	FILE *f;
	char *path;
	bool with_verdict;
	uint64_t next_id;
	bool failed;
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
static void put_text(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void flow_csv__write(struct flow_csv *c, const struct flow_record *r, const char *verdict)
{
	char src[48], dst[48];
	const struct flow_key *k = &r->key;
	uint64_t first = r->first_us / SVC_US_PER_MS, last = r->last_us / SVC_US_PER_MS;
	fprintf(c->f, "%llu,%d,%s,%u,%s,%u,%u,%u,%u,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,",
		(unsigned long long)c->next_id++, flow_csv__expiration_id(r->end_reason),
		flow__addr_str(k->src, k->ipver, src, sizeof(src)), k->sport,
		flow__addr_str(k->dst, k->ipver, dst, sizeof(dst)), k->dport, k->proto, k->ipver,
		k->vlan, (unsigned long long)first, (unsigned long long)last,
		(unsigned long long)(last - first), (unsigned long long)(r->pkts[0] + r->pkts[1]),
		(unsigned long long)(r->bytes[0] + r->bytes[1]), (unsigned long long)r->pkts[0],
		(unsigned long long)r->bytes[0], (unsigned long long)r->pkts[1],
		(unsigned long long)r->bytes[1]);
	put_text(c->f, r->app_name);
	fputc(',', c->f);
	put_text(c->f, r->category);
	fprintf(c->f, ",%d,", r->guessed ? 1 : 0);
	put_text(c->f, r->server_name);
	fprintf(c->f, ",%s", flow_end__name(r->end_reason));
	if (c->with_verdict) {
		fputc(',', c->f);
		put_text(c->f, verdict ? verdict : "");
	}
	if (fputc('\n', c->f) == EOF && !c->failed) {
		c->failed = true;
		svc_err("%s: write failed: %s", c->path, strerror(errno));
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
