/* anomaly_log.c - JSON lines for anomalous flows, on a line file (src/util/linefile.c: whole
 * lines per write(2), size rotation, reopen for logrotate, write-through for a device or "-"). */
#include "svcsensor/anomaly_log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svcsensor/common.h"
#include "svcsensor/json_out.h"
#include "svcsensor/linefile.h"
#include "svcsensor/sink.h"
#include "svcsensor/textbuf.h"

struct anomaly_log {
	struct linefile *lf;
};

const char *anomaly_log__l4_name(uint8_t proto)
{
	switch (proto) {
	case 1:
		return "icmp";
	case 2:
		return "igmp";
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 47:
		return "gre";
	case 50:
		return "esp";
	case 51:
		return "ah";
	case 58:
		return "icmpv6";
	case 132:
		return "sctp";
	default:
		return "other";
	}
}

struct anomaly_log *anomaly_log__open(const char *path, uint64_t max_bytes, unsigned keep)
{
	const struct linefile_opts o = {
	    .max_bytes = max_bytes, .keep = keep, .what = "anomaly log", .unit = "anomaly lines"};
	struct anomaly_log *l = calloc(1, sizeof(*l));

	if (!l) {
		svc_err("%s: cannot open the anomaly log: %s", path, strerror(ENOMEM));
		return NULL;
	}
	if (!(l->lf = linefile__open(path, &o))) {
		free(l);
		return NULL;
	}
	return l;
}

void anomaly_log__close(struct anomaly_log *l)
{
	if (!l)
		return;
	linefile__close(l->lf);
	free(l);
}

int anomaly_log__reopen(struct anomaly_log *l)
{
	return linefile__reopen(l->lf);
}

int anomaly_log__write_line(struct anomaly_log *l, const char *line, size_t len)
{
	return linefile__write(l->lf, line, len, 1);
}

int anomaly_log__flush(struct anomaly_log *l)
{
	return linefile__flush(l->lf);
}

static void iso8601_ms(uint64_t us, char out[32])
{
	/* Flows end in bursts within one second: format the seconds once per second. */
	static _Thread_local time_t cached_secs = -1;
	static _Thread_local char base[24];
	time_t secs = (time_t)(us / SVC_US_PER_SEC);
	unsigned ms = (unsigned)((us % SVC_US_PER_SEC) / SVC_US_PER_MS);
	struct tm tm;

	if (secs != cached_secs) {
		if (!gmtime_r(&secs, &tm) ||
		    !strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm))
			snprintf(base, sizeof(base), "1970-01-01T00:00:00");
		cached_secs = secs;
	}
	memcpy(out, base, 19);
	out[19] = '.';
	out[20] = (char)('0' + ms / 100);
	out[21] = (char)('0' + ms / 10 % 10);
	out[22] = (char)('0' + ms % 10);
	out[23] = 'Z';
	out[24] = '\0';
}

/* The line is written straight into one buffer: this runs once per anomaly on the detector
 * thread, and building a jansson object per line cost a third of the detector's time (perf, a
 * run with 1 M anomalous flows). The schema is fixed (docs/anomaly-log.schema.json) and every
 * string goes through json_out (json_out.h: well-formed UTF-8 as it is, control characters
 * escaped, ill-formed bytes replaced by U+FFFD), bounded by its field; the tests parse each
 * line back. */
static void j_str(struct textbuf *j, const char *key, const char *val)
{
	textbuf__str(j, key);
	json_out__str(j, val);
}

/* A name from the record or a host key: at most max bytes of it (its field's size less the
 * NUL: the text may come from the wire, an SNI or a DNS query). */
static void j_name(struct textbuf *j, const char *key, const char *val, size_t max)
{
	textbuf__str(j, key);
	json_out__strn(j, val, max);
}

static void j_u64(struct textbuf *j, const char *key, uint64_t v)
{
	textbuf__str(j, key);
	textbuf__u64(j, v);
}

#define KEY_MAX 63 /* bytes of a host key written (HOSTKEY_LEN is less) */

/* Every string is bounded (its field, KEY_MAX); escaping at most multiplies it by 6
 * (JSON_OUT_MAX); 1024 bytes hold the member names, numbers, addresses and fixed names. */
#define LINE_MAX_LEN                                                                               \
	(JSON_OUT_MAX(FLOW_SERVER_NAME_LEN) + JSON_OUT_MAX(FLOW_APP_NAME_LEN) +                    \
	 2 * JSON_OUT_MAX(FLOW_PROTO_NAME_LEN) + 2 * JSON_OUT_MAX(KEY_MAX) + 1024)

/* The line of one flow into line[LINE_MAX_LEN], with its '\n' and a NUL; returns its length. */
static size_t format_into(char *line, const struct flow_record *r, const char *src_key,
			  const char *dst_key, enum verdict v)
{
	char ts[32], sip[64], dip[64];
	uint64_t dur_us = r->last_us >= r->first_us ? r->last_us - r->first_us : 0;
	struct textbuf j = {line, line + LINE_MAX_LEN - 2};

	iso8601_ms(r->last_us, ts);
	flow__addr_str(r->key.src, r->key.ipver, sip, sizeof(sip));
	flow__addr_str(r->key.dst, r->key.ipver, dip, sizeof(dip));
	j_str(&j, "{\"ts\":", ts);
	j_u64(&j, ",\"ts_ms\":", r->last_us / SVC_US_PER_MS);
	j_str(&j, ",\"verdict\":", verdict__name(v));
	j_str(&j, ",\"weight\":", verdict__weight(v));
	j_str(&j, ",\"src_ip\":", sip);
	j_u64(&j, ",\"src_port\":", r->key.sport);
	j_str(&j, ",\"dst_ip\":", dip);
	j_u64(&j, ",\"dst_port\":", r->key.dport);
	j_name(&j, ",\"src_key\":", src_key, KEY_MAX);
	j_name(&j, ",\"dst_key\":", dst_key, KEY_MAX);
	j_u64(&j, ",\"protocol\":", r->key.proto);
	j_str(&j, ",\"l4\":", anomaly_log__l4_name(r->key.proto));
	j_u64(&j, ",\"vlan_id\":", r->key.vlan);
	j_name(&j, ",\"app\":", r->app_name, sizeof(r->app_name) - 1);
	j_name(&j, ",\"master\":", r->master_name, sizeof(r->master_name) - 1);
	j_name(&j, ",\"category\":", r->category, sizeof(r->category) - 1);
	textbuf__str(&j, r->guessed ? ",\"guessed\":true" : ",\"guessed\":false");
	j_name(&j, ",\"server_name\":", r->server_name, sizeof(r->server_name) - 1);
	j_u64(&j, ",\"src2dst_packets\":", r->pkts[0]);
	j_u64(&j, ",\"src2dst_bytes\":", r->bytes[0]);
	j_u64(&j, ",\"dst2src_packets\":", r->pkts[1]);
	j_u64(&j, ",\"dst2src_bytes\":", r->bytes[1]);
	j_u64(&j, ",\"duration_ms\":", dur_us / SVC_US_PER_MS);
	j_str(&j, ",\"end_reason\":", flow_end__name((enum flow_end)r->end_reason));
	textbuf__char(&j, '}');
	/* Room for "\n\0" was kept aside above. */
	*j.p++ = '\n';
	*j.p = '\0';
	return (size_t)(j.p - line);
}

char *anomaly_log__format(const struct flow_record *r, const char *src_key, const char *dst_key,
			  enum verdict v, size_t *len)
{
	char *line = malloc(LINE_MAX_LEN);
	if (line)
		*len = format_into(line, r, src_key, dst_key, v);
	return line;
}

int anomaly_log__write(struct anomaly_log *l, const struct flow_record *r, const char *src_key,
		       const char *dst_key, enum verdict v)
{
	char line[LINE_MAX_LEN];
	size_t len = format_into(line, r, src_key, dst_key, v);
	return anomaly_log__write_line(l, line, len);
}

int anomaly_log__write_batched(struct anomaly_log *l, const struct flow_record *r,
			       const char *src_key, const char *dst_key, enum verdict v)
{
	char line[LINE_MAX_LEN];
	size_t len = format_into(line, r, src_key, dst_key, v);
	return linefile__add(l->lf, line, len);
}

const struct linefile_stats *anomaly_log__stats(const struct anomaly_log *l)
{
	return linefile__stats(l->lf);
}

/* ---- the anomaly log as a sink: anomalous flows only, detect mode only ---- */

static int al_open(const struct sink_env *env, void **self)
{
	const struct svc_config *c = env->cfg;

	if (env->learn || !c->log_file || !*c->log_file)
		return 0;
	*self = anomaly_log__open(c->log_file, c->log_max_bytes, c->log_keep);
	return *self ? 0 : -EIO; /* anomaly_log__open said why */
}

static void al_flow(void *self, const struct sink_flow *f)
{
	if (f->verdict != VERDICT_NONE)
		anomaly_log__write_batched(self, f->rec, f->src, f->dst, f->verdict);
}

static void al_flush(void *self)
{
	anomaly_log__flush(self);
}

static void al_reopen(void *self)
{
	anomaly_log__reopen(self);
}

static int al_close(void *self, bool final)
{
	int err = final ? anomaly_log__flush(self) : 0;

	anomaly_log__close(self);
	return err;
}

static uint64_t al_lost(const void *self)
{
	return anomaly_log__stats(self)->errors;
}

static void al_losses(const void *self, sink_loss_fn cb, void *ctx)
{
	const struct linefile_stats *st = anomaly_log__stats(self);
	cb(ctx, &(struct sink_loss){.what = "lines", .count = st->errors, .err = st->last_err});
}

const struct sink_ops anomaly_log_sink = {
    .name = "anomaly_log",
    .open = al_open,
    .flow = al_flow,
    .flush = al_flush,
    .reopen = al_reopen,
    .close = al_close,
    .lost = al_lost,
    .losses = al_losses,
};
