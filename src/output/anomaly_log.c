/* anomaly_log.c - JSON lines for anomalous flows, size rotation, reopen for logrotate.
 *
 * Why one write(2) per line: with O_APPEND the kernel places the whole buffer at the end of
 * the file under the inode lock, so a concurrent reader or an external appender never sees half
 * a line. If the disk fills in the middle of a line, the partial tail is cut off again
 * (ftruncate) so the file still holds whole lines only. */
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

#include <jansson.h>

#include "svcsensor/common.h"

#define LOG_FILE_MODE 0640

struct anomaly_log {
	char *path;
	char *from, *to; /* rotation name buffers, strlen(path) + 16 */
	int fd;		 /* -1 when the last open failed */
	uint64_t size;	 /* bytes in the live file (fstat at open + what we wrote) */
	uint64_t max_bytes;
	unsigned keep;
	bool error_reported;
	struct anomaly_log_stats st;
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
	if (!l->path || !l->from || !l->to)
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
	if (l->fd >= 0)
		close(l->fd);
	free(l->path);
	free(l->from);
	free(l->to);
	free(l);
}

int anomaly_log__reopen(struct anomaly_log *l)
{
	int err;

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

int anomaly_log__write_line(struct anomaly_log *l, const char *line, size_t len)
{
	size_t done = 0;
	int err;

	if (l->fd < 0) {
		err = open_live(l);
		if (err) {
			log_error(l, "cannot open", -err);
			return err;
		}
	}
	if (l->max_bytes && l->size > 0 && l->size + len > l->max_bytes) {
		err = rotate(l);
		if (err) {
			log_error(l, "cannot open after rotation", -err);
			return err;
		}
	}
	while (done < len) {
		ssize_t w = write(l->fd, line + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			struct stat st;
			err = w < 0 ? -errno : -EIO;
			/* Cut a partial line off again: the file keeps whole lines only. */
			if (done && fstat(l->fd, &st) == 0 && (uint64_t)st.st_size >= done)
				(void)!ftruncate(l->fd, st.st_size - (off_t)done);
			log_error(l, "cannot write", -err);
			return err;
		}
		done += (size_t)w;
	}
	l->size += len;
	l->st.lines++;
	l->st.bytes += len;
	return 0;
}

/* Copy a name for JSON: bounded by the field size, bytes outside printable ASCII become '?'
 * (the text may come from the wire: an SNI or a DNS query). */
static const char *clean(char *out, size_t outlen, const char *in, size_t inlen)
{
	size_t i = 0;
	for (; i + 1 < outlen && i < inlen && in[i]; i++) {
		unsigned char ch = (unsigned char)in[i];
		out[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	out[i] = '\0';
	return out;
}

static void iso8601_ms(uint64_t us, char out[32])
{
	time_t secs = (time_t)(us / SVC_US_PER_SEC);
	unsigned ms = (unsigned)((us % SVC_US_PER_SEC) / SVC_US_PER_MS);
	struct tm tm;
	char base[24];

	if (!gmtime_r(&secs, &tm) || !strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm))
		snprintf(base, sizeof(base), "1970-01-01T00:00:00");
	snprintf(out, 32, "%s.%03uZ", base, ms);
}

/* The line is written straight into one buffer: this runs once per anomaly on the detector
 * thread, and building a jansson object per line cost a third of the detector's time (perf, a
 * run with 1 M anomalous flows). The schema is fixed (docs/anomaly-log.schema.json) and every
 * string goes through clean() (printable ASCII) and json_str() (quote and backslash escaped);
 * the tests parse each line back with jansson. */
struct jline {
	char *p, *end;
};

static void j_raw(struct jline *j, const char *s)
{
	while (*s && j->p < j->end)
		*j->p++ = *s++;
}

static void j_str(struct jline *j, const char *key, const char *val)
{
	j_raw(j, key);
	if (j->p < j->end)
		*j->p++ = '"';
	for (; *val && j->p + 1 < j->end; val++) {
		if (*val == '"' || *val == '\\')
			*j->p++ = '\\';
		*j->p++ = *val;
	}
	if (j->p < j->end)
		*j->p++ = '"';
}

static void j_u64(struct jline *j, const char *key, uint64_t v)
{
	char digits[24], *d = digits + sizeof(digits);
	*--d = '\0';
	do
		*--d = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	j_raw(j, key);
	j_raw(j, d);
}

char *anomaly_log__format(const struct flow_record *r, const char *src_key, const char *dst_key,
			  enum verdict v, size_t *len)
{
	char ts[32], sip[64], dip[64];
	char app[FLOW_APP_NAME_LEN], master[FLOW_PROTO_NAME_LEN], cat[FLOW_PROTO_NAME_LEN];
	char sni[FLOW_SERVER_NAME_LEN], skey[64], dkey[64];
	uint64_t dur_us = r->last_us >= r->first_us ? r->last_us - r->first_us : 0;
	/* Every string is bounded (its buffer above; escaping at most doubles it). */
	enum { LINE_MAX_LEN = 2048 };
	char *line = malloc(LINE_MAX_LEN);

	if (!line)
		return NULL;
	struct jline j = {line, line + LINE_MAX_LEN - 2};
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
	j_str(&j, ",\"src_key\":", clean(skey, sizeof(skey), src_key, sizeof(skey)));
	j_str(&j, ",\"dst_key\":", clean(dkey, sizeof(dkey), dst_key, sizeof(dkey)));
	j_u64(&j, ",\"protocol\":", r->key.proto);
	j_str(&j, ",\"l4\":", anomaly_log__l4_name(r->key.proto));
	j_u64(&j, ",\"vlan_id\":", r->key.vlan);
	j_str(&j, ",\"app\":", clean(app, sizeof(app), r->app_name, sizeof(r->app_name)));
	j_str(&j, ",\"master\":",
	      clean(master, sizeof(master), r->master_name, sizeof(r->master_name)));
	j_str(&j, ",\"category\":", clean(cat, sizeof(cat), r->category, sizeof(r->category)));
	j_raw(&j, r->guessed ? ",\"guessed\":true" : ",\"guessed\":false");
	j_str(&j,
	      ",\"server_name\":", clean(sni, sizeof(sni), r->server_name, sizeof(r->server_name)));
	j_u64(&j, ",\"src2dst_packets\":", r->pkts[0]);
	j_u64(&j, ",\"src2dst_bytes\":", r->bytes[0]);
	j_u64(&j, ",\"dst2src_packets\":", r->pkts[1]);
	j_u64(&j, ",\"dst2src_bytes\":", r->bytes[1]);
	j_u64(&j, ",\"duration_ms\":", dur_us / SVC_US_PER_MS);
	j_str(&j, ",\"end_reason\":", flow_end__name((enum flow_end)r->end_reason));
	j_raw(&j, "}");
	/* Room for "\n\0" was kept aside above. */
	*j.p++ = '\n';
	*j.p = '\0';
	*len = (size_t)(j.p - line);
	return line;
}

int anomaly_log__write(struct anomaly_log *l, const struct flow_record *r, const char *src_key,
		       const char *dst_key, enum verdict v)
{
	size_t len = 0;
	char *line = anomaly_log__format(r, src_key, dst_key, v, &len);
	int err;

	if (!line) {
		log_error(l, "cannot format a line", ENOMEM);
		return -ENOMEM;
	}
	err = anomaly_log__write_line(l, line, len);
	free(line);
	return err;
}

const struct anomaly_log_stats *anomaly_log__stats(const struct anomaly_log *l)
{
	return &l->st;
}
