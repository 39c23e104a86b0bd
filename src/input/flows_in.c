/* flows_in.c - flow CSV reader: libcsv does the CSV (RFC 4180, strict), this file maps the
 * header by name and turns each row into a struct flow_record.
 *
 * The file is fed to libcsv one line at a time so that every row can be reported with its line
 * number, and so that a row with broken quoting costs that row only: the parser is reset and
 * reading goes on at the next line. */
#include "svcsensor/flows_in.h"

#include <arpa/inet.h>
#include <csv.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/common.h"
#include "svcsensor/utf8.h"

/* The columns read; the first COL__REQUIRED must be in the header. */
enum col {
	COL_SRC_IP = 0,
	COL_DST_IP,
	COL_APP,
	COL__REQUIRED,
	COL_SRC_PORT = COL__REQUIRED,
	COL_DST_PORT,
	COL_PROTO,
	COL_IPVER,
	COL_VLAN,
	COL_FIRST,
	COL_LAST,
	COL_BI_PKTS,
	COL_BI_BYTES,
	COL_S2D_PKTS,
	COL_S2D_BYTES,
	COL_D2S_PKTS,
	COL_D2S_BYTES,
	COL_SERVER,
	COL_CATEGORY,
	COL_GUESSED,
	COL_END_REASON,
	COL_EXPIRATION,
	COL__COUNT
};

static const char *const col_names[COL__COUNT] = {
    [COL_SRC_IP] = "src_ip",
    [COL_DST_IP] = "dst_ip",
    [COL_APP] = "application_name",
    [COL_SRC_PORT] = "src_port",
    [COL_DST_PORT] = "dst_port",
    [COL_PROTO] = "protocol",
    [COL_IPVER] = "ip_version",
    [COL_VLAN] = "vlan_id",
    [COL_FIRST] = "bidirectional_first_seen_ms",
    [COL_LAST] = "bidirectional_last_seen_ms",
    [COL_BI_PKTS] = "bidirectional_packets",
    [COL_BI_BYTES] = "bidirectional_bytes",
    [COL_S2D_PKTS] = "src2dst_packets",
    [COL_S2D_BYTES] = "src2dst_bytes",
    [COL_D2S_PKTS] = "dst2src_packets",
    [COL_D2S_BYTES] = "dst2src_bytes",
    [COL_SERVER] = "requested_server_name",
    [COL_CATEGORY] = "application_category_name",
    [COL_GUESSED] = "application_is_guessed",
    [COL_END_REASON] = "end_reason",
    [COL_EXPIRATION] = "expiration_id",
};

/* Longest value kept per column: more than any field read needs (the server name is the
 * longest, FLOW_SERVER_NAME_LEN); a longer value is flagged, then cut or refused. */
#define VAL_MAX 256

struct flows_in {
	const char *path;
	FILE *f;
	struct csv_parser p;
	bool parser; /* p is initialised */
	bool eof;    /* the file was read to its end (csv_fini done) */
	char *buf;   /* the line being fed */
	size_t cap;
	flows_in_fn fn;
	void *ctx;
	struct flows_in_stats st;
	/* rows completed while the header was read (a line may end more than one row: libcsv
	 * also ends a row at a lone CR), handed on first by flows_in__rows */
	struct flow_record *stash;
	size_t n_stash, cap_stash;

	uint64_t line;	   /* line being fed, from 1 */
	uint64_t row_line; /* line where the current row starts */
	bool row_open;	   /* a row has begun and not ended */
	bool header_done;
	bool nfstream; /* nfstream's to_csv() dialect: \" inside quotes */
	int col_of_field_cap;
	size_t n_header;	  /* fields in the header */
	int *col_of_field;	  /* header field index -> enum col, or -1 */
	int field_of[COL__COUNT]; /* enum col -> header field index, or -1 */

	/* the current row */
	size_t nfield;
	bool have[COL__COUNT];
	bool toolong[COL__COUNT];
	char val[COL__COUNT][VAL_MAX];

	int err;  /* fatal (negative errno): stop */
	int stop; /* fn's non-zero value: stop */
	unsigned reported;
	struct flow_record rec;
};

/* One bad row: counted, and reported while under the limit. */
static void bad_row(struct flows_in *r, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bad_row(struct flows_in *r, uint64_t line, const char *fmt, ...)
{
	r->st.rows++;
	r->st.rejected++;
	if (r->reported++ >= FLOWS_IN_REPORT_MAX)
		return;
	char reason[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	svc_err("%s:%" PRIu64 ": %s%s", r->path, line, reason,
		r->reported == FLOWS_IN_REPORT_MAX ? " (further bad rows only counted)" : "");
}

/* ---- header ------------------------------------------------------------------------------ */

static void header_field(struct flows_in *r, const char *s, size_t len)
{
	if ((int)r->n_header >= r->col_of_field_cap) {
		int cap = r->col_of_field_cap ? r->col_of_field_cap * 2 : 64;
		int *n = realloc(r->col_of_field, (size_t)cap * sizeof(*n));
		if (!n) {
			svc_err("%s: out of memory", r->path);
			r->err = -ENOMEM;
			return;
		}
		r->col_of_field = n;
		r->col_of_field_cap = cap;
	}
	/* A UTF-8 byte order mark (spreadsheets write one) is not part of the first name. */
	if (r->n_header == 0 && len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) {
		s += 3;
		len -= 3;
	}
	int col = -1;
	for (int c = 0; c < COL__COUNT; c++)
		if (strlen(col_names[c]) == len && !memcmp(col_names[c], s, len) &&
		    r->field_of[c] < 0) { /* a repeated name: the first one counts */
			col = c;
			r->field_of[c] = (int)r->n_header;
			break;
		}
	if ((len == 7 && !memcmp(s, "src_mac", 7)) || (len == 7 && !memcmp(s, "src_oui", 7)))
		r->nfstream = true;
	r->col_of_field[r->n_header++] = col;
}

static void header_end(struct flows_in *r)
{
	char missing[128] = "";
	size_t off = 0;
	for (int c = 0; c < COL__REQUIRED; c++)
		if (r->field_of[c] < 0)
			off += (size_t)snprintf(missing + off, sizeof(missing) - off, "%s%s",
						off ? ", " : "", col_names[c]);
	if (off) {
		svc_err("%s:%" PRIu64 ": header has no %s column (a flow CSV needs src_ip, dst_ip "
			"and application_name)",
			r->path, r->row_line, missing);
		r->err = -EINVAL;
		return;
	}
	r->header_done = true;
}

/* ---- field values ------------------------------------------------------------------------ */

/* An unsigned decimal number no greater than max. Empty is 0 (unknown). */
static bool num_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (!*s) {
		*out = 0;
		return true;
	}
	if (*s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || errno || v > max)
		return false;
	*out = v;
	return true;
}

/* "10.42.0.1" or "2001:db8::1" into the flow_key layout; the IP version, or 0. */
static uint8_t parse_addr(const char *s, uint8_t out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, out) == 1)
		return 4;
	if (inet_pton(AF_INET6, s, out) == 1)
		return 6;
	memset(out, 0, 16);
	return 0;
}

/* Copy a text field, cut to fit. */
static void text_copy(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- rows -------------------------------------------------------------------------------- */

/* Numeric columns: the range each accepts. */
static const uint64_t col_max[COL__COUNT] = {
    [COL_SRC_PORT] = 65535,
    [COL_DST_PORT] = 65535,
    [COL_PROTO] = 255,
    [COL_IPVER] = 6,
    [COL_VLAN] = 65535,
    /* ms: so that ms * 1000 fits in 64 bits */
    [COL_FIRST] = UINT64_MAX / SVC_US_PER_MS,
    [COL_LAST] = UINT64_MAX / SVC_US_PER_MS,
    [COL_BI_PKTS] = UINT64_MAX,
    [COL_BI_BYTES] = UINT64_MAX,
    [COL_S2D_PKTS] = UINT64_MAX,
    [COL_S2D_BYTES] = UINT64_MAX,
    [COL_D2S_PKTS] = UINT64_MAX,
    [COL_D2S_BYTES] = UINT64_MAX,
};

/* Per-direction counters from what the file has; the bidirectional column fills a missing
 * direction so that the totals (what the map counts) are right. */
static void directions(const struct flows_in *r, uint64_t bi, int c_s2d, int c_d2s, uint64_t v_s2d,
		       uint64_t v_d2s, uint64_t out[2])
{
	bool s2d = r->field_of[c_s2d] >= 0, d2s = r->field_of[c_d2s] >= 0;
	out[0] = v_s2d;
	out[1] = v_d2s;
	if (!s2d && !d2s)
		out[0] = bi;
	else if (!d2s)
		out[1] = bi > v_s2d ? bi - v_s2d : 0;
	else if (!s2d)
		out[0] = bi > v_d2s ? bi - v_d2s : 0;
}

/* The row's shape and its numeric columns into num[]: false after bad_row. */
static bool row_numbers(struct flows_in *r, uint64_t line, uint64_t num[COL__COUNT])
{
	if (r->nfield != r->n_header) {
		bad_row(r, line, "%zu fields, the header has %zu", r->nfield, r->n_header);
		return false;
	}
	for (int c = 0; c < COL__REQUIRED; c++)
		if (!r->val[c][0]) {
			bad_row(r, line, "%s is empty", col_names[c]);
			return false;
		}
	for (int c = COL__REQUIRED; c < COL__COUNT; c++) {
		if (!col_max[c] || r->field_of[c] < 0)
			continue;
		if (r->toolong[c] || !num_u64(r->val[c], col_max[c], &num[c])) {
			bad_row(r, line, "%s: \"%.40s\" is not a whole number from 0 to %" PRIu64,
				col_names[c], r->val[c], col_max[c]);
			return false;
		}
	}
	return true;
}

/* Addresses, ports, protocol and VLAN into k: false after bad_row. */
static bool row_key(struct flows_in *r, uint64_t line, const uint64_t num[COL__COUNT],
		    struct flow_key *k)
{
	uint8_t v4or6;
	if (r->toolong[COL_SRC_IP] || !(k->ipver = parse_addr(r->val[COL_SRC_IP], k->src))) {
		bad_row(r, line, "src_ip: \"%.60s\" is not an IPv4 or IPv6 address",
			r->val[COL_SRC_IP]);
		return false;
	}
	if (r->toolong[COL_DST_IP] || !(v4or6 = parse_addr(r->val[COL_DST_IP], k->dst))) {
		bad_row(r, line, "dst_ip: \"%.60s\" is not an IPv4 or IPv6 address",
			r->val[COL_DST_IP]);
		return false;
	}
	if (v4or6 != k->ipver) {
		bad_row(r, line, "src_ip is IPv%u but dst_ip is IPv%u", k->ipver, v4or6);
		return false;
	}
	if (r->val[COL_IPVER][0] && num[COL_IPVER] != k->ipver) {
		bad_row(r, line, "ip_version %" PRIu64 " but the addresses are IPv%u",
			num[COL_IPVER], k->ipver);
		return false;
	}
	k->sport = (uint16_t)num[COL_SRC_PORT];
	k->dport = (uint16_t)num[COL_DST_PORT];
	k->proto = (uint8_t)num[COL_PROTO];
	k->vlan = (uint16_t)num[COL_VLAN];
	return true;
}

/* Application (and its master), category and server name: false after bad_row. */
static bool row_names(struct flows_in *r, uint64_t line, struct flow_record *rec)
{
	const char *app = r->val[COL_APP];
	if (r->toolong[COL_APP] || strlen(app) >= FLOW_APP_NAME_LEN) {
		bad_row(r, line, "application_name: longer than %d bytes", FLOW_APP_NAME_LEN - 1);
		return false;
	}
	/* The service map's name rule (it learns these names): no control characters, UTF-8. */
	if (!utf8__name_ok(app, FLOW_APP_NAME_LEN - 1)) {
		bad_row(r, line, "application_name: control character or invalid UTF-8");
		return false;
	}
	memcpy(rec->app_name, app, strlen(app) + 1);
	const char *dot = strchr(app, '.');
	if (dot) { /* "TLS.YouTube": master TLS */
		size_t n = (size_t)(dot - app);
		if (n >= FLOW_PROTO_NAME_LEN)
			n = FLOW_PROTO_NAME_LEN - 1;
		memcpy(rec->master_name, app, n);
		rec->master_name[n] = '\0';
	}
	text_copy(rec->category, sizeof(rec->category), r->val[COL_CATEGORY]);
	text_copy(rec->server_name, sizeof(rec->server_name), r->val[COL_SERVER]);
	return true;
}

/* Times, counters, the guessed flag and the end reason: false after bad_row. */
static bool row_rest(struct flows_in *r, uint64_t line, const uint64_t num[COL__COUNT],
		     struct flow_record *rec)
{
	if (num[COL_LAST] && num[COL_LAST] < num[COL_FIRST]) {
		bad_row(r, line,
			"bidirectional_last_seen_ms is before bidirectional_first_seen_ms");
		return false;
	}
	rec->first_us = num[COL_FIRST] * SVC_US_PER_MS;
	rec->last_us = (num[COL_LAST] ? num[COL_LAST] : num[COL_FIRST]) * SVC_US_PER_MS;
	directions(r, num[COL_BI_PKTS], COL_S2D_PKTS, COL_D2S_PKTS, num[COL_S2D_PKTS],
		   num[COL_D2S_PKTS], rec->pkts);
	directions(r, num[COL_BI_BYTES], COL_S2D_BYTES, COL_D2S_BYTES, num[COL_S2D_BYTES],
		   num[COL_D2S_BYTES], rec->bytes);

	const char *g = r->val[COL_GUESSED];
	if (!strcmp(g, "1") || !strcasecmp(g, "true"))
		rec->guessed = true;
	else if (*g && strcmp(g, "0") && strcasecmp(g, "false")) {
		bad_row(r, line, "application_is_guessed: \"%.20s\" is not 0, 1, true or false", g);
		return false;
	}

	rec->end_reason = FLOW_END_SHUTDOWN;
	if (r->val[COL_END_REASON][0]) {
		for (unsigned e = 0; e < FLOW_END__COUNT; e++)
			if (!strcmp(r->val[COL_END_REASON], flow_end__name(e)))
				rec->end_reason = (uint8_t)e;
	} else if (!strcmp(r->val[COL_EXPIRATION], "0")) {
		rec->end_reason = FLOW_END_IDLE;
	} else if (!strcmp(r->val[COL_EXPIRATION], "1")) {
		rec->end_reason = FLOW_END_ACTIVE;
	}
	return true;
}

static void row_end(struct flows_in *r)
{
	struct flow_record *rec = &r->rec;
	uint64_t line = r->row_line, num[COL__COUNT] = {0};

	if (!row_numbers(r, line, num))
		return;
	memset(rec, 0, sizeof(*rec));
	if (!row_key(r, line, num, &rec->key) || !row_names(r, line, rec) ||
	    !row_rest(r, line, num, rec))
		return;
	r->st.rows++;
	r->st.accepted++;
	int rc = r->fn(r->ctx, rec);
	if (rc)
		r->stop = rc;
}

/* ---- libcsv callbacks -------------------------------------------------------------------- */

static void on_field(void *s, size_t len, void *data)
{
	struct flows_in *r = data;
	if (r->err || r->stop)
		return;
	if (!s)
		len = 0;
	if (!r->header_done) {
		header_field(r, s ? s : "", len);
		return;
	}
	size_t i = r->nfield++;
	int c = i < r->n_header ? r->col_of_field[i] : -1;
	if (c < 0)
		return;
	r->have[c] = true;
	r->toolong[c] = len >= VAL_MAX;
	if (len >= VAL_MAX)
		len = VAL_MAX - 1;
	memcpy(r->val[c], s, len);
	r->val[c][len] = '\0';
	/* A NUL byte would cut the value short unseen: make it a control character, which no
	 * check lets through (not a number, not an address, not a name). */
	for (char *z; (z = memchr(r->val[c], '\0', len));)
		*z = '\x01';
}

/* Reset the per-row state for the next row. */
static void row_reset(struct flows_in *r)
{
	r->nfield = 0;
	r->row_open = false;
	for (int c = 0; c < COL__COUNT; c++)
		if (r->have[c]) {
			r->have[c] = r->toolong[c] = false;
			r->val[c][0] = '\0';
		}
}

static void on_row(int term, void *data)
{
	struct flows_in *r = data;
	(void)term;
	if (!r->err && !r->stop) {
		if (!r->header_done)
			header_end(r);
		else
			row_end(r);
	}
	row_reset(r);
}

/* ---- the file ---------------------------------------------------------------------------- */

/* nfstream writes a quote inside a quoted field as \" (utils.py csv_converter): make it the
 * RFC's "" in place, so that libcsv reads it. Every nfstream text field is quoted. */
static void nfstream_unescape(char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++)
		if (s[i] == '\\' && s[i + 1] == '"')
			s[i] = '"', i++;
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

static const unsigned char parser_opts = CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL;

/* A line libcsv did not take whole: a bad row (dropped; parsing starts again at the next
 * line), or a fatal error in the header or the parser. 0 or a negative errno after one line. */
static int parse_error(struct flows_in *r)
{
	int e = csv_error(&r->p);
	if (e != CSV_EPARSE) {
		svc_err("%s:%" PRIu64 ": %s", r->path, r->line, csv_strerror(e));
		return -ENOMEM;
	}
	if (!r->header_done) {
		svc_err("%s:%" PRIu64 ": header: malformed quoting", r->path, r->line);
		return -EINVAL;
	}
	if (r->row_line == r->line)
		bad_row(r, r->line, "malformed quoting");
	else
		bad_row(r, r->row_line, "malformed quoting (at line %" PRIu64 ")", r->line);
	row_reset(r);
	csv_free(&r->p);
	r->parser = csv_init(&r->p, parser_opts) == 0;
	if (!r->parser) {
		svc_err("%s: out of memory", r->path);
		return -ENOMEM;
	}
	return 0;
}

/* The end of the file: a read error, or the last row's end (csv_fini). 0 or a negative errno
 * after one line. */
static int at_eof(struct flows_in *r, int read_errno)
{
	r->eof = true;
	if (ferror(r->f)) {
		if (r->line)
			svc_err("%s:%" PRIu64 ": read error: %s", r->path, r->line + 1,
				strerror(read_errno));
		else
			svc_err("%s: cannot read flow CSV: %s", r->path, strerror(read_errno));
		return -EIO;
	}
	if (r->err || r->stop || csv_fini(&r->p, on_field, on_row, r) == 0)
		return 0;
	/* The last row's quote never closed (it took every line after it). */
	if (r->header_done) {
		bad_row(r, r->row_line, "quoted field not closed before the end of the file");
		return 0;
	}
	svc_err("%s:%" PRIu64 ": header: quoted field not closed", r->path, r->row_line);
	return -EINVAL;
}

/* Feed the file to libcsv a line at a time, to its end (or only up to the end of the header).
 * Stops early on a fatal error (r->err) or when fn said so (r->stop). 0 or a negative errno
 * after one line. */
static int feed_lines(struct flows_in *r, bool header_only)
{
	while (!r->err && !r->stop && !(header_only && r->header_done)) {
		errno = 0;
		ssize_t n = getline(&r->buf, &r->cap, r->f);
		if (n <= 0)
			return at_eof(r, errno);
		r->line++;
		if (!r->row_open && !blank(r->buf, (size_t)n)) {
			r->row_open = true;
			r->row_line = r->line;
		}
		if (r->nfstream)
			nfstream_unescape(r->buf, (size_t)n);
		size_t used = csv_parse(&r->p, r->buf, (size_t)n, on_field, on_row, r);
		if (used != (size_t)n && !r->err && !r->stop) {
			int rc = parse_error(r);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* While the header is read: keep a row that ends with it, for flows_in__rows. */
static int stash_row(void *ctx, const struct flow_record *rec)
{
	struct flows_in *r = ctx;
	if (r->n_stash == r->cap_stash) {
		size_t cap = r->cap_stash ? 2 * r->cap_stash : 4;
		struct flow_record *n = realloc(r->stash, cap * sizeof(*n));
		if (!n) {
			svc_err("%s: out of memory", r->path);
			return -ENOMEM;
		}
		r->stash = n;
		r->cap_stash = cap;
	}
	r->stash[r->n_stash++] = *rec;
	return 0;
}

int flows_in__open(const char *path, struct flows_in **out)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		int rc = -errno;
		svc_err("%s: cannot open flow CSV: %s", path, strerror(errno));
		return rc;
	}
	return flows_in__open_stream(f, path, out);
}

int flows_in__open_stream(FILE *f, const char *path, struct flows_in **out)
{
	int rc = 0;
	struct flows_in *r = calloc(1, sizeof(*r));
	if (!r) {
		svc_err("%s: out of memory", path);
		fclose(f);
		return -ENOMEM;
	}
	r->path = path;
	r->f = f;
	for (int c = 0; c < COL__COUNT; c++)
		r->field_of[c] = -1;
	r->parser = csv_init(&r->p, parser_opts) == 0;
	if (!r->parser) {
		svc_err("%s: out of memory", path);
		rc = -ENOMEM;
		goto cleanup;
	}
	r->fn = stash_row;
	r->ctx = r;
	rc = feed_lines(r, true);
	if (!rc)
		rc = r->err ? r->err : r->stop; /* stash_row's out of memory */
	if (!rc && !r->header_done) {
		svc_err("%s: empty file: no header row", path);
		rc = -ENODATA;
	}
cleanup:
	if (rc) {
		flows_in__close(r);
		return rc;
	}
	*out = r;
	return 0;
}

int flows_in__rows(struct flows_in *r, flows_in_fn fn, void *ctx)
{
	int rc = 0;
	for (size_t i = 0; i < r->n_stash && !rc; i++)
		rc = fn(ctx, &r->stash[i]);
	free(r->stash);
	r->stash = NULL;
	r->n_stash = r->cap_stash = 0;
	if (rc)
		return rc;
	r->fn = fn;
	r->ctx = ctx;
	if (!r->eof)
		rc = feed_lines(r, false);
	if (!rc)
		rc = r->err ? r->err : r->stop;
	return rc;
}

const struct flows_in_stats *flows_in__stats(const struct flows_in *r)
{
	return &r->st;
}

void flows_in__close(struct flows_in *r)
{
	if (!r)
		return;
	if (r->parser)
		csv_free(&r->p);
	if (r->f)
		fclose(r->f);
	free(r->buf);
	free(r->stash);
	free(r->col_of_field);
	free(r);
}

int flows_in__read(const char *path, flows_in_fn fn, void *ctx, struct flows_in_stats *st)
{
	struct flows_in *r;
	if (st)
		memset(st, 0, sizeof(*st));
	int rc = flows_in__open(path, &r);
	if (rc)
		return rc;
	rc = flows_in__rows(r, fn, ctx);
	if (st)
		*st = r->st;
	flows_in__close(r);
	return rc;
}
