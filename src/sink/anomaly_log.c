/* anomaly_log.c - JSON lines for anomalous flows, size rotation, reopen for logrotate.
 *
 * Why whole lines per write(2): with O_APPEND the kernel places the whole buffer at the end of
 * the file under the inode lock, so a concurrent reader or an external appender never sees half
 * a line. If the disk fills in the middle of a write, the partial tail is cut off again
 * (ftruncate) so the file still holds whole lines only. The detector batches the lines of one
 * pass over the finished-flow queue into one write (a write(2) per line was a quarter of its
 * time on a busy capture), so a line reaches the file within one pass. */
#include "svcsensor/anomaly_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "svcsensor/common.h"
#include "svcsensor/json_out.h"
#include "svcsensor/sink.h"
#include "svcsensor/textbuf.h"

#define LOG_FILE_MODE 0640
#define PENDING_MAX (64u * 1024) /* batched lines are written at least this often */

struct anomaly_log {
	char *path;
	char *from, *to; /* rotation name buffers, strlen(path) + 16 */
	int fd;		 /* -1 when the last open failed */
	uint64_t size;	 /* bytes in the live file (fstat at open + what we wrote) */
	uint64_t max_bytes;
	unsigned keep;
	bool error_reported;
	struct anomaly_log_stats st;
	char *pending; /* batched whole lines not yet written (PENDING_MAX bytes) */
	size_t pending_len;
	uint64_t pending_lines;
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

/* One report line per error episode; every error counted. */
static void log_error(struct anomaly_log *l, const char *what, int err)
{
	l->st.errors++;
	if (l->error_reported)
		return;
	l->error_reported = true;
	svc_err("%s: %s: %s (anomaly lines are being lost; further errors are only counted)",
		l->path, what, strerror(err));
}

static int open_live(struct anomaly_log *l)
{
	struct stat st;
	int fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, LOG_FILE_MODE);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	l->fd = fd;
	l->size = (uint64_t)st.st_size;
	return 0;
}

struct anomaly_log *anomaly_log__open(const char *path, uint64_t max_bytes, unsigned keep)
{
	struct anomaly_log *l = calloc(1, sizeof(*l));
	size_t n = strlen(path) + 16;
	int err;

	if (!l)
		goto nomem;
	l->fd = -1;
	l->max_bytes = max_bytes;
	l->keep = keep;
	l->path = strdup(path);
	l->from = malloc(n);
	l->to = malloc(n);
	l->pending = malloc(PENDING_MAX);
	if (!l->path || !l->from || !l->to || !l->pending)
		goto nomem;
	err = open_live(l);
	if (err) {
		svc_err("%s: cannot open the anomaly log: %s", path, strerror(-err));
		anomaly_log__close(l);
		return NULL;
	}
	return l;
nomem:
	svc_err("%s: cannot open the anomaly log: %s", path, strerror(ENOMEM));
	anomaly_log__close(l);
	return NULL;
}

void anomaly_log__close(struct anomaly_log *l)
{
	if (!l)
		return;
	anomaly_log__flush(l);
	if (l->fd >= 0)
		close(l->fd);
	free(l->path);
	free(l->from);
	free(l->to);
	free(l->pending);
	free(l);
}

int anomaly_log__reopen(struct anomaly_log *l)
{
	int err;

	anomaly_log__flush(l); /* batched lines belong to the file they were logged in */
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->error_reported = false;
	err = open_live(l);
	if (err)
		log_error(l, "cannot reopen", -err);
	return err;
}

/* path.(keep-1) -> path.keep, ..., path -> path.1, then a new live file. */
static int rotate(struct anomaly_log *l)
{
	size_t n = strlen(l->path) + 16;

	close(l->fd);
	l->fd = -1;
	if (l->keep == 0) {
		if (unlink(l->path) != 0 && errno != ENOENT)
			log_error(l, "cannot remove for rotation", errno);
	} else {
		for (unsigned i = l->keep - 1; i >= 1; i--) {
			snprintf(l->from, n, "%s.%u", l->path, i);
			snprintf(l->to, n, "%s.%u", l->path, i + 1);
			if (rename(l->from, l->to) != 0 && errno != ENOENT)
				log_error(l, "cannot rotate", errno);
		}
		snprintf(l->to, n, "%s.1", l->path);
		if (rename(l->path, l->to) != 0 && errno != ENOENT)
			log_error(l, "cannot rotate", errno);
	}
	l->st.rotations++;
	return open_live(l);
}

/* Write whole lines (len bytes, `lines` of them) at the end of the live file, rotating first
 * if they would take it past max_bytes. 0 or negative errno (the lines are counted lost). */
static int write_lines(struct anomaly_log *l, const char *buf, size_t len, uint64_t lines)
{
	size_t done = 0;
	int err;

	if (l->fd < 0) {
		err = open_live(l);
		if (err) {
			l->st.errors += lines - 1;
			log_error(l, "cannot open", -err);
			return err;
		}
	}
	if (l->max_bytes && l->size > 0 && l->size + len > l->max_bytes) {
		err = rotate(l);
		if (err) {
			l->st.errors += lines - 1;
			log_error(l, "cannot open after rotation", -err);
			return err;
		}
	}
	while (done < len) {
		ssize_t w = write(l->fd, buf + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			struct stat st;
			err = w < 0 ? -errno : -EIO;
			/* Cut a partial line off again: the file keeps whole lines only. */
			if (done && fstat(l->fd, &st) == 0 && (uint64_t)st.st_size >= done)
				(void)!ftruncate(l->fd, st.st_size - (off_t)done);
			l->st.errors += lines - 1;
			log_error(l, "cannot write", -err);
			return err;
		}
		done += (size_t)w;
	}
	l->size += len;
	l->st.lines += lines;
	l->st.bytes += len;
	return 0;
}

int anomaly_log__write_line(struct anomaly_log *l, const char *line, size_t len)
{
	int err = anomaly_log__flush(l); /* lines stay in order */
	int e = write_lines(l, line, len, 1);
	return e ? e : err;
}

int anomaly_log__flush(struct anomaly_log *l)
{
	if (!l->pending_len)
		return 0;
	int err = write_lines(l, l->pending, l->pending_len, l->pending_lines);
	l->pending_len = 0;
	l->pending_lines = 0;
	return err;
}

/* Add a line to the batch; the batch is written first when the line would not fit in it, or
 * would not fit in the live file before its rotation (a batch never straddles a rotation). */
static int batch_line(struct anomaly_log *l, const char *line, size_t len)
{
	int err = 0;
	if (l->pending_len && (l->pending_len + len > PENDING_MAX ||
			       (l->max_bytes && l->size + l->pending_len + len > l->max_bytes)))
		err = anomaly_log__flush(l);
	if (len > PENDING_MAX) {
		int e = write_lines(l, line, len, 1);
		return e ? e : err;
	}
	memcpy(l->pending + l->pending_len, line, len);
	l->pending_len += len;
	l->pending_lines++;
	return err;
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
	return batch_line(l, line, len);
}

const struct anomaly_log_stats *anomaly_log__stats(const struct anomaly_log *l)
{
	return &l->st;
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

const struct sink_ops anomaly_log_sink = {
    .name = "anomaly_log",
    .open = al_open,
    .flow = al_flow,
    .flush = al_flush,
    .reopen = al_reopen,
    .close = al_close,
    .lost = al_lost,
};
