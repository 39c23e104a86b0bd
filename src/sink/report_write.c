/* report_write.c - the report's text and JSON forms, written from a snapshot
 * (src/sink/report_snap.h), and printing the saved report (svcsensor -a).
 *
 * The ordering work (sorting, share rounding) happens here, on whichever thread saves: the
 * report sink's saver thread for periodic saves, the closing thread for the final one. A
 * failed write returns the stream's own errno (ENOSPC, EIO, ...), read right after the call
 * that failed, so the one line that reports it names the real cause. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "report_snap.h"
#include "svcsensor/atomic_file.h"
#include "svcsensor/outpath.h"
#include "svcsensor/common.h"
#include "svcsensor/json_out.h"
#include "svcsensor/report.h"
#include "svcsensor/textbuf.h"

#define SHARE_UNITS 10000U /* hundredths of a percent */
#define REPORT_FILE_MODE 0644

/* The error of a stream that failed: errno of the call that just failed. */
static int stream_err(FILE *f)
{
	if (!ferror(f))
		return 0;
	return -(errno ? errno : EIO);
}

/* ---- ordering ---- */

/* Bytes descending, then key ascending; the (other) row last. */
static int src_order(const void *a, const void *b)
{
	const struct rsnap_src *x = a, *y = b;
	if (x->other != y->other)
		return x->other ? 1 : -1;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return strcmp(x->key, y->key);
}

static int dst_order(const void *a, const void *b)
{
	const struct rsnap_dst *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return strcmp(x->key, y->key);
}

static void snap_sort(struct report_snap *s)
{
	if (s->sorted)
		return;
	for (unsigned v = 0; v < VERDICT__COUNT; v++) {
		const struct rsnap_verdict *sv = &s->v[v];
		if (sv->n_srcs > 1)
			qsort(s->srcs + sv->src0, sv->n_srcs, sizeof(*s->srcs), src_order);
	}
	for (size_t i = 0; i < s->n_srcs; i++)
		if (s->srcs[i].n_dsts > 1)
			qsort(s->dsts + s->srcs[i].dst0, s->srcs[i].n_dsts, sizeof(*s->dsts),
			      dst_order);
	s->sorted = true;
}

/* Shares of the destinations of one source (sorted), in hundredths of a percent, largest
 * remainder: they add up to exactly SHARE_UNITS. With no bytes at all, an equal split. */
static void compute_shares(const struct rsnap_dst *d, size_t n, uint64_t total, unsigned *share)
{
	unsigned __int128 *rem = calloc(n, sizeof(*rem));
	unsigned given = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned __int128 w = total ? d[i].bytes : 1, sum = total ? total : n;
		unsigned __int128 scaled = w * SHARE_UNITS;
		share[i] = (unsigned)(scaled / sum);
		if (rem)
			rem[i] = scaled % sum;
		given += share[i];
	}
	/* Hand the leftover units to the largest remainders, earlier entries first on ties. */
	while (given < SHARE_UNITS && n) {
		size_t best = 0;
		if (rem) {
			for (size_t i = 1; i < n; i++)
				if (rem[i] > rem[best])
					best = i;
			rem[best] = 0;
		} else {
			best = given % n; /* no memory for remainders: round robin */
		}
		share[best]++;
		given++;
	}
	free(rem);
}

/* Visit the snapshot in its deterministic order; the callbacks build text or JSON. */
struct report_visitor {
	int (*section)(void *ctx, enum verdict v, const struct rsnap_verdict *sv);
	int (*source)(void *ctx, const struct rsnap_src *src);
	int (*dest)(void *ctx, const struct report_snap *s, const struct rsnap_dst *d,
		    unsigned share);
	int (*section_end)(void *ctx);
};

static int visit_source(const struct report_snap *s, const struct rsnap_src *src,
			const struct report_visitor *vis, void *ctx)
{
	const struct rsnap_dst *d = s->dsts + src->dst0;
	unsigned *share = calloc(src->n_dsts ? src->n_dsts : 1, sizeof(*share));
	int err = share ? vis->source(ctx, src) : -ENOMEM;

	if (!err)
		compute_shares(d, src->n_dsts, src->bytes, share);
	for (size_t j = 0; !err && j < src->n_dsts; j++)
		err = vis->dest(ctx, s, &d[j], share[j]);
	free(share);
	return err;
}

static int visit(struct report_snap *s, const struct report_visitor *vis, void *ctx)
{
	snap_sort(s);
	for (unsigned k = 0; k < VERDICT__COUNT; k++) {
		enum verdict v = verdict_by_rank[k] /* the table's RANK: the seed's order */;
		const struct rsnap_verdict *sv = &s->v[v];
		int err;

		if (!sv->flows)
			continue;
		if ((err = vis->section(ctx, v, sv)))
			return err;
		for (size_t i = 0; i < sv->n_srcs; i++)
			if ((err = visit_source(s, &s->srcs[sv->src0 + i], vis, ctx)))
				return err;
		if ((err = vis->section_end(ctx)))
			return err;
	}
	return 0;
}

static uint64_t snap_anomalies(const struct report_snap *s)
{
	return s->flows - s->v[VERDICT_NONE].flows;
}

/* ---- text ---- */

static int text_section(void *ctx, enum verdict v, const struct rsnap_verdict *sv)
{
	(void)sv;
	if (fprintf(ctx, "+++++++ %s anomaly flows +++++++\n", verdict__label(v)) < 0)
		return stream_err(ctx);
	return 0;
}

/* Lines are built in a buffer and written with one fwrite: a large report has hundreds of
 * thousands of them, and printf's format parsing was most of the time spent saving it. */
static int text_source(void *ctx, const struct rsnap_src *src)
{
	char line[128];
	struct textbuf b = {line, line + sizeof(line)};
	/* "+ %-15s exchange %9llu bytes with: \n"; the trailing space after "with:" is the
	 * seed's. A key is at most 47 characters (HOSTKEY_LEN), so the line fits. */
	textbuf__str(&b, "+ ");
	textbuf__str_pad(&b, src->key, 15);
	textbuf__str(&b, " exchange ");
	textbuf__u64_pad(&b, src->bytes, 9);
	textbuf__str(&b, " bytes with: \n");
	size_t n = textbuf__len(&b, line);
	return fwrite(line, 1, n, ctx) == n ? 0 : stream_err(ctx);
}

static int text_dest(void *ctx, const struct report_snap *s, const struct rsnap_dst *d,
		     unsigned share)
{
	const char *const *apps = s->apps + d->app0;
	/* "\t - %-15s, %9llu bytes (%u.%02u%%) using ['a', 'b']\n" */
	size_t need = 128;
	for (size_t i = 0; i < d->n_apps; i++)
		need += strlen(apps[i]) + 4;
	char small[1024], *line = need <= sizeof(small) ? small : malloc(need);
	if (!line)
		return -ENOMEM;
	struct textbuf b = {line, line + need};
	textbuf__str(&b, "\t - ");
	textbuf__str_pad(&b, d->key, 15);
	textbuf__str(&b, ", ");
	textbuf__u64_pad(&b, d->bytes, 9);
	textbuf__str(&b, " bytes (");
	textbuf__u64(&b, share / 100);
	textbuf__char(&b, '.');
	textbuf__char(&b, (char)('0' + share % 100 / 10));
	textbuf__char(&b, (char)('0' + share % 10));
	textbuf__str(&b, "%) using [");
	for (size_t i = 0; i < d->n_apps; i++) {
		if (i)
			textbuf__str(&b, ", ");
		textbuf__char(&b, '\'');
		textbuf__str(&b, apps[i]);
		textbuf__char(&b, '\'');
	}
	textbuf__str(&b, "]\n");
	size_t n = textbuf__len(&b, line);
	int err = fwrite(line, 1, n, ctx) == n ? 0 : stream_err(ctx);
	if (line != small)
		free(line);
	return err;
}

static int text_section_end(void *ctx)
{
	return fputc('\n', (FILE *)ctx) == EOF ? stream_err(ctx) : 0;
}

int report_snap__write_text(struct report_snap *s, FILE *out)
{
	static const struct report_visitor vis = {text_section, text_source, text_dest,
						  text_section_end};
	int err = visit(s, &vis, out);

	if (err)
		return err;
	if (fprintf(out, "+++++++ On %llu flows, %llu anomalies +++++++\n",
		    (unsigned long long)s->flows, (unsigned long long)snap_anomalies(s)) < 0)
		return stream_err(out);
	return stream_err(out);
}

/* ---- JSON ----
 * Written straight to the file in the visitor's order (a jansson tree of a large report cost
 * more than the rest of the exit: one allocation per value, then freeing them all). Each
 * callback checks the stream once at its end: a failure is caught while errno is its own. */

struct json_ctx {
	FILE *f;
	bool first_section, first_source, first_dest;
};

static int json_section(void *ctx, enum verdict v, const struct rsnap_verdict *sv)
{
	struct json_ctx *j = ctx;
	fprintf(j->f,
		"%s\n    {\"verdict\": \"%s\", \"label\": \"%s\", \"flows\": %llu, "
		"\"bytes\": %llu, \"sources\": [",
		j->first_section ? "" : ",", verdict__name(v), verdict__label(v),
		(unsigned long long)sv->flows, (unsigned long long)sv->bytes);
	j->first_section = false;
	j->first_source = true;
	return stream_err(j->f);
}

static int json_source(void *ctx, const struct rsnap_src *src)
{
	struct json_ctx *j = ctx;
	fputs(j->first_source ? "\n      {\"source\": " : "]},\n      {\"source\": ", j->f);
	json_out__fstr(j->f, src->key);
	fprintf(j->f, ", \"bytes\": %llu, \"flows\": %llu, \"destinations\": [",
		(unsigned long long)src->bytes, (unsigned long long)src->flows);
	j->first_source = false;
	j->first_dest = true;
	return stream_err(j->f);
}

static int json_dest(void *ctx, const struct report_snap *s, const struct rsnap_dst *d,
		     unsigned share)
{
	struct json_ctx *j = ctx;
	fputs(j->first_dest ? "\n        {\"destination\": " : ",\n        {\"destination\": ",
	      j->f);
	json_out__fstr(j->f, d->key);
	fprintf(j->f, ", \"bytes\": %llu, \"share\": %u.%02u, \"flows\": %llu, \"apps\": [",
		(unsigned long long)d->bytes, share / 100, share % 100,
		(unsigned long long)d->flows);
	for (size_t i = 0; i < d->n_apps; i++) {
		if (i)
			fputs(", ", j->f);
		json_out__fstr(j->f, s->apps[d->app0 + i]);
	}
	fputs("]}", j->f);
	j->first_dest = false;
	return stream_err(j->f);
}

static int json_section_end(void *ctx)
{
	struct json_ctx *j = ctx;
	fputs(j->first_source ? "]}" : "]}]}", j->f);
	return stream_err(j->f);
}

int report_snap__write_json(struct report_snap *s, FILE *out)
{
	static const struct report_visitor vis = {json_section, json_source, json_dest,
						  json_section_end};
	struct json_ctx j = {.f = out, .first_section = true};
	int err;

	fprintf(out, "{\n  \"totals\": {\"flows\": %llu, \"anomalies\": %llu, \"per_verdict\": {",
		(unsigned long long)s->flows, (unsigned long long)snap_anomalies(s));
	for (unsigned v = 0; v < VERDICT__COUNT; v++)
		fprintf(out, "%s\"%s\": %llu", v ? ", " : "", verdict__name((enum verdict)v),
			(unsigned long long)s->v[v].flows);
	fputs("}},\n  \"verdicts\": [", out);
	if ((err = stream_err(out)) || (err = visit(s, &vis, &j)))
		return err;
	fputs(j.first_section ? "]\n}\n" : "\n  ]\n}\n", out);
	return stream_err(out);
}

/* ---- saving ---- */

static int write_text_cb(FILE *f, const void *ctx)
{
	return report_snap__write_text((struct report_snap *)ctx, f);
}

static int write_json_cb(FILE *f, const void *ctx)
{
	return report_snap__write_json((struct report_snap *)ctx, f);
}

int report_snap__save(struct report_snap *s, const char *path)
{
	size_t n = strlen(path) + 6;
	char *jpath = malloc(n);
	int err, jerr;

	if (!jpath) {
		svc_err("%s: cannot save the report: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	snprintf(jpath, n, "%s.json", path);
	snap_sort(s); /* once, for both files */
	/* The twin only beside a regular file (outpath.h): never /dev/null.json. */
	bool twin = outpath__is_regular(path);
	err = atomic_file__write(path, REPORT_FILE_MODE, write_text_cb, s);
	jerr = twin ? atomic_file__write(jpath, REPORT_FILE_MODE, write_json_cb, s) : 0;
	free(jpath);
	return err ? err : jerr;
}

void report_snap__free(struct report_snap *s)
{
	free(s->srcs);
	free(s->dsts);
	free(s->apps);
	memset(s, 0, sizeof(*s));
}

/* ---- svcsensor -a ---- */

static int print_fail(const char *path, const char *what, int err)
{
	svc_err("%s: %s: %s", path, what, strerror(err));
	return -err;
}

int report__print_saved(const char *path, FILE *out)
{
	char buf[8192];
	size_t n;
	FILE *f;
	int err = 0;

	if (!path || !*path) {
		svc_err("no report file configured (report_file)");
		return -EINVAL;
	}
	f = fopen(path, "r");
	if (!f) {
		err = errno;
		if (err == ENOENT) {
			svc_err("%s: no saved report yet (the sensor writes it every "
				"report_interval and at exit)",
				path);
			return -err;
		}
		return print_fail(path, "cannot read the report", err);
	}
	/* Each failure is named by the call that failed, with its own errno: a read error on
	 * the file, or a write error on out (a full disk under a redirection, a closed pipe). */
	const char *where = out == stdout ? "standard output" : "output";
	errno = 0;
	while (!err && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			err = print_fail(where, "cannot print the report", errno ? errno : EIO);
	if (!err && ferror(f))
		err = print_fail(path, "cannot read the report", errno ? errno : EIO);
	fclose(f);
	if (!err && fflush(out) != 0)
		err = print_fail(where, "cannot print the report", errno ? errno : EIO);
	return err;
}
