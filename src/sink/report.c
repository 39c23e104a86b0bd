/* report.c - per verdict / source / destination aggregates and the seed's report.
 *
 * Aggregates live in small open-addressing string tables (one per verdict for sources, one per
 * source for destinations): a flow costs two lookups and a short scan of its pair's apps. The
 * ordering work (sorting, share rounding) happens only when a report is written. */
#include "svcsensor/report.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/atomic_file.h"
#include "svcsensor/common.h"
#include "svcsensor/json_out.h"
#include "svcsensor/sink.h"
#include "svcsensor/strtab.h"
#include "svcsensor/textbuf.h"

#define SHARE_UNITS 10000U /* hundredths of a percent */
#define REPORT_FILE_MODE 0644

/* Sources and destinations are found by key in string tables (strtab.h), which store the
 * pointer to the node's own copy of its key (name[]); the node is found back from it with
 * offsetof. The slots keep each key's hash, so a probe compares strings only when the hashes
 * match (the nodes are scattered: dereferencing one per probe was most of report__add). */
struct rdst {
	char *key; /* = name */
	uint64_t bytes, flows;
	char **apps;	     /* distinct, ordered by first use (packet time), then name */
	uint64_t *app_first; /* first_us of the earliest flow that used apps[i] */
	size_t n_apps, cap_apps;
	char name[];
};

struct rsrc {
	char *key; /* = name */
	uint64_t bytes, flows;
	struct strtab dsts;
	char name[];
};

#define NODE_OF(k, type) ((type *)(void *)((char *)(k)-offsetof(type, name)))

struct rverdict {
	uint64_t flows, bytes;
	struct strtab srcs;
};

/* Keys, application names and the source / destination nodes live in blocks freed all at
 * once: a large report has hundreds of thousands of them, and freeing each one was most of
 * the time the sensor took to exit. */
struct rblock {
	struct rblock *next;
	size_t used, cap;
	_Alignas(16) unsigned char mem[];
};

struct report {
	struct rverdict v[VERDICT__COUNT];
	uint64_t flows;
	struct rblock *blocks;
};

#define RBLOCK_SIZE (64u * 1024)

/* Zeroed memory for n bytes, 16-byte aligned, freed with the report. */
static void *r_alloc(struct report *r, size_t n)
{
	struct rblock *b = r->blocks;
	n = (n + 15) & ~(size_t)15;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > RBLOCK_SIZE ? n : RBLOCK_SIZE;
		b = calloc(1, sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->cap = cap;
		b->next = r->blocks;
		r->blocks = b;
	}
	void *p = b->mem + b->used;
	b->used += n;
	return p;
}

static char *r_strdup(struct report *r, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = r_alloc(r, n);
	if (d)
		memcpy(d, s, n);
	return d;
}

static void rsrc_free(struct rsrc *s)
{
	size_t pos = 0;
	for (const char *k; (k = strtab__next(&s->dsts, &pos));) {
		struct rdst *d = NODE_OF(k, struct rdst);
		free(d->apps);
		free(d->app_first);
	}
	strtab__free(&s->dsts);
}

struct report *report__new(void)
{
	return calloc(1, sizeof(struct report));
}

void report__free(struct report *r)
{
	if (!r)
		return;
	for (unsigned v = 0; v < VERDICT__COUNT; v++) {
		struct strtab *t = &r->v[v].srcs;
		size_t pos = 0;
		for (const char *k; (k = strtab__next(t, &pos));)
			rsrc_free(NODE_OF(k, struct rsrc));
		strtab__free(t);
	}
	for (struct rblock *b = r->blocks, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(r);
}

static struct rsrc *get_src(struct report *r, struct rverdict *rv, const char *key)
{
	uint64_t h;
	const char *k = strtab__find(&rv->srcs, key, &h);
	if (k)
		return NODE_OF(k, struct rsrc);
	size_t len = strlen(key);
	struct rsrc *s = r_alloc(r, sizeof(*s) + len + 1);
	if (!s)
		return NULL;
	memcpy(s->name, key, len + 1);
	s->key = s->name;
	if (strtab__add(&rv->srcs, s->name, h) != 0)
		return NULL; /* what was taken from the blocks goes with the report */
	return s;
}

static struct rdst *get_dst(struct report *r, struct rsrc *s, const char *key)
{
	uint64_t h;
	const char *k = strtab__find(&s->dsts, key, &h);
	if (k)
		return NODE_OF(k, struct rdst);
	size_t len = strlen(key);
	struct rdst *d = r_alloc(r, sizeof(*d) + len + 1);
	if (!d)
		return NULL;
	memcpy(d->name, key, len + 1);
	d->key = d->name;
	if (strtab__add(&s->dsts, d->name, h) != 0)
		return NULL;
	return d;
}

/* Keep apps ordered by the packet time of their first flow (ties by name): the order then
 * depends on the traffic, not on which worker finished a flow first. */
static int add_app(struct report *r, struct rdst *d, const char *app, uint64_t first_us)
{
	char *name = NULL;
	size_t i;

	for (i = 0; i < d->n_apps; i++)
		if (strcmp(d->apps[i], app) == 0)
			break;
	if (i < d->n_apps) {
		if (first_us >= d->app_first[i])
			return 0;
		name = d->apps[i]; /* seen earlier than we knew: move it */
		memmove(&d->apps[i], &d->apps[i + 1], (d->n_apps - i - 1) * sizeof(*d->apps));
		memmove(&d->app_first[i], &d->app_first[i + 1],
			(d->n_apps - i - 1) * sizeof(*d->app_first));
		d->n_apps--;
	} else {
		if (d->n_apps == d->cap_apps) {
			size_t ncap = d->cap_apps ? d->cap_apps * 2 : 4;
			char **na = realloc(d->apps, ncap * sizeof(*na));
			if (!na)
				return -ENOMEM;
			d->apps = na;
			uint64_t *nf = realloc(d->app_first, ncap * sizeof(*nf));
			if (!nf)
				return -ENOMEM;
			d->app_first = nf;
			d->cap_apps = ncap;
		}
		if (!(name = r_strdup(r, app)))
			return -ENOMEM;
	}
	size_t at = d->n_apps;
	while (at > 0 && (d->app_first[at - 1] > first_us ||
			  (d->app_first[at - 1] == first_us && strcmp(d->apps[at - 1], name) > 0)))
		at--;
	memmove(&d->apps[at + 1], &d->apps[at], (d->n_apps - at) * sizeof(*d->apps));
	memmove(&d->app_first[at + 1], &d->app_first[at], (d->n_apps - at) * sizeof(*d->app_first));
	d->apps[at] = name;
	d->app_first[at] = first_us;
	d->n_apps++;
	return 0;
}

int report__add(struct report *r, enum verdict v, const char *src, const char *dst, const char *app,
		uint64_t bytes, uint64_t first_us)
{
	struct rverdict *rv;
	struct rsrc *s;
	struct rdst *d;

	if ((unsigned)v >= VERDICT__COUNT)
		return -EINVAL;
	rv = &r->v[v];
	r->flows++;
	rv->flows++;
	rv->bytes += bytes;
	if (!(s = get_src(r, rv, src)) || !(d = get_dst(r, s, dst)))
		return -ENOMEM;
	s->flows++;
	s->bytes += bytes;
	d->flows++;
	d->bytes += bytes;
	return add_app(r, d, app, first_us);
}

void report__totals(const struct report *r, uint64_t *flows, uint64_t *anomalies)
{
	if (flows)
		*flows = r->flows;
	if (anomalies)
		*anomalies = r->flows - r->v[VERDICT_NONE].flows;
}

/* Sort by bytes descending, then key ascending. rsrc and rdst both start with key, bytes. */
struct keyed {
	char *key;
	uint64_t bytes;
};

static int by_bytes_then_key(const void *a, const void *b)
{
	const struct keyed *x = *(const struct keyed *const *)a;
	const struct keyed *y = *(const struct keyed *const *)b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* The nodes of a table (their key's offset in them: name_off), sorted; NULL when empty or
 * out of memory. The caller frees the array. */
static void **sorted_items(const struct strtab *t, size_t name_off)
{
	const char **keys;
	size_t n;

	if (!strtab__count(t) || strtab__collect(t, &keys, &n) != 0)
		return NULL;
	/* In place: each key pointer becomes its node's (pointers of one size, copied bytewise). */
	void **items = (void **)keys;
	for (size_t i = 0; i < n; i++) {
		void *node = (char *)keys[i] - name_off;
		memcpy(&items[i], &node, sizeof(node));
	}
	qsort(items, n, sizeof(*items), by_bytes_then_key);
	return items;
}

/* Shares of the destinations of one source (sorted), in hundredths of a percent, largest
 * remainder: they add up to exactly SHARE_UNITS. With no bytes at all, an equal split. */
static void compute_shares(struct rdst **d, size_t n, uint64_t total, unsigned *share)
{
	unsigned __int128 *rem = calloc(n, sizeof(*rem));
	unsigned given = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned __int128 w = total ? d[i]->bytes : 1, sum = total ? total : n;
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

/* Visit the report in its deterministic order; the callbacks build text or JSON. */
struct report_visitor {
	int (*section)(void *ctx, enum verdict v, const struct rverdict *rv);
	int (*source)(void *ctx, const struct rsrc *s);
	int (*dest)(void *ctx, const struct rdst *d, unsigned share);
	int (*section_end)(void *ctx);
};

static int visit(const struct report *r, const struct report_visitor *vis, void *ctx)
{
	for (unsigned k = 0; k < VERDICT__COUNT; k++) {
		enum verdict v = verdict_by_rank[k] /* the table's RANK: the seed's order */;
		const struct rverdict *rv = &r->v[v];
		struct rsrc **srcs;
		int err;

		if (!rv->flows)
			continue;
		if ((err = vis->section(ctx, v, rv)))
			return err;
		size_t n_srcs = strtab__count(&rv->srcs);
		srcs = (struct rsrc **)sorted_items(&rv->srcs, offsetof(struct rsrc, name));
		if (!srcs && n_srcs)
			return -ENOMEM;
		for (size_t i = 0; i < n_srcs; i++) {
			struct rdst **dsts = (struct rdst **)sorted_items(
			    &srcs[i]->dsts, offsetof(struct rdst, name));
			size_t n = strtab__count(&srcs[i]->dsts);
			unsigned *share = calloc(n ? n : 1, sizeof(*share));

			err = (!dsts && n) || !share ? -ENOMEM : vis->source(ctx, srcs[i]);
			if (!err)
				compute_shares(dsts, n, srcs[i]->bytes, share);
			for (size_t j = 0; !err && j < n; j++)
				err = vis->dest(ctx, dsts[j], share[j]);
			free(share);
			free(dsts);
			if (err) {
				free(srcs);
				return err;
			}
		}
		free(srcs);
		if ((err = vis->section_end(ctx)))
			return err;
	}
	return 0;
}

/* ---- text ---- */

static int text_section(void *ctx, enum verdict v, const struct rverdict *rv)
{
	(void)rv;
	if (fprintf(ctx, "+++++++ %s anomaly flows +++++++\n", verdict__label(v)) < 0)
		return -EIO;
	return 0;
}

/* Lines are built in a buffer and written with one fwrite: a large report has hundreds of
 * thousands of them, and printf's format parsing was most of the time spent saving it. */
static int text_source(void *ctx, const struct rsrc *s)
{
	char line[128];
	struct textbuf b = {line, line + sizeof(line)};
	/* "+ %-15s exchange %9llu bytes with: \n"; the trailing space after "with:" is the
	 * seed's. A key is at most 47 characters (HOSTKEY_LEN), so the line fits. */
	textbuf__str(&b, "+ ");
	textbuf__str_pad(&b, s->key, 15);
	textbuf__str(&b, " exchange ");
	textbuf__u64_pad(&b, s->bytes, 9);
	textbuf__str(&b, " bytes with: \n");
	size_t n = textbuf__len(&b, line);
	return fwrite(line, 1, n, ctx) == n ? 0 : -EIO;
}

static int text_dest(void *ctx, const struct rdst *d, unsigned share)
{
	/* "\t - %-15s, %9llu bytes (%u.%02u%%) using ['a', 'b']\n" */
	size_t need = 128;
	for (size_t i = 0; i < d->n_apps; i++)
		need += strlen(d->apps[i]) + 4;
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
		textbuf__str(&b, d->apps[i]);
		textbuf__char(&b, '\'');
	}
	textbuf__str(&b, "]\n");
	size_t n = textbuf__len(&b, line);
	int err = fwrite(line, 1, n, ctx) == n ? 0 : -EIO;
	if (line != small)
		free(line);
	return err;
}

static int text_section_end(void *ctx)
{
	return fputc('\n', (FILE *)ctx) == EOF ? -EIO : 0;
}

int report__write_text(const struct report *r, FILE *out)
{
	static const struct report_visitor vis = {text_section, text_source, text_dest,
						  text_section_end};
	uint64_t flows, anomalies;
	int err = visit(r, &vis, out);

	if (err)
		return err;
	report__totals(r, &flows, &anomalies);
	fprintf(out, "+++++++ On %llu flows, %llu anomalies +++++++\n", (unsigned long long)flows,
		(unsigned long long)anomalies);
	return ferror(out) ? -EIO : 0;
}

/* ---- JSON ----
 * Written straight to the file in the visitor's order (a jansson tree of a large report cost
 * more than the rest of the exit: one allocation per value, then freeing them all). */

struct json_ctx {
	FILE *f;
	bool first_section, first_source, first_dest;
};

static int json_section(void *ctx, enum verdict v, const struct rverdict *rv)
{
	struct json_ctx *j = ctx;
	fprintf(j->f,
		"%s\n    {\"verdict\": \"%s\", \"label\": \"%s\", \"flows\": %llu, "
		"\"bytes\": %llu, \"sources\": [",
		j->first_section ? "" : ",", verdict__name(v), verdict__label(v),
		(unsigned long long)rv->flows, (unsigned long long)rv->bytes);
	j->first_section = false;
	j->first_source = true;
	return 0;
}

static int json_source(void *ctx, const struct rsrc *s)
{
	struct json_ctx *j = ctx;
	fputs(j->first_source ? "\n      {\"source\": " : "]},\n      {\"source\": ", j->f);
	json_out__fstr(j->f, s->key);
	fprintf(j->f, ", \"bytes\": %llu, \"flows\": %llu, \"destinations\": [",
		(unsigned long long)s->bytes, (unsigned long long)s->flows);
	j->first_source = false;
	j->first_dest = true;
	return 0;
}

static int json_dest(void *ctx, const struct rdst *d, unsigned share)
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
		json_out__fstr(j->f, d->apps[i]);
	}
	fputs("]}", j->f);
	j->first_dest = false;
	return 0;
}

static int json_section_end(void *ctx)
{
	struct json_ctx *j = ctx;
	fputs(j->first_source ? "]}" : "]}]}", j->f);
	return 0;
}

int report__write_json(const struct report *r, FILE *out)
{
	static const struct report_visitor vis = {json_section, json_source, json_dest,
						  json_section_end};
	struct json_ctx j = {.f = out, .first_section = true};
	uint64_t flows, anomalies;
	int err;

	report__totals(r, &flows, &anomalies);
	fprintf(out, "{\n  \"totals\": {\"flows\": %llu, \"anomalies\": %llu, \"per_verdict\": {",
		(unsigned long long)flows, (unsigned long long)anomalies);
	for (unsigned v = 0; v < VERDICT__COUNT; v++)
		fprintf(out, "%s\"%s\": %llu", v ? ", " : "", verdict__name((enum verdict)v),
			(unsigned long long)r->v[v].flows);
	fputs("}},\n  \"verdicts\": [", out);
	if ((err = visit(r, &vis, &j)))
		return err;
	fputs(j.first_section ? "]\n}\n" : "\n  ]\n}\n", out);
	return ferror(out) ? -EIO : 0;
}

/* ---- saving ---- */

static int write_text_cb(FILE *f, const void *ctx)
{
	return report__write_text(ctx, f);
}

static int write_json_cb(FILE *f, const void *ctx)
{
	return report__write_json(ctx, f);
}

int report__save(const struct report *r, const char *path)
{
	size_t n = strlen(path) + 6;
	char *jpath = malloc(n);
	int err, jerr;

	if (!jpath) {
		svc_err("%s: cannot save the report: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	snprintf(jpath, n, "%s.json", path);
	err = atomic_file__write(path, REPORT_FILE_MODE, write_text_cb, r);
	jerr = atomic_file__write(jpath, REPORT_FILE_MODE, write_json_cb, r);
	free(jpath);
	return err ? err : jerr;
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
		err = -errno;
		if (err == -ENOENT)
			svc_err("%s: no saved report yet (the sensor writes it every "
				"report_interval and at exit)",
				path);
		else
			svc_err("%s: cannot read the report: %s", path, strerror(-err));
		return err;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (fwrite(buf, 1, n, out) != n) {
			err = -EIO;
			break;
		}
	if (!err && ferror(f)) {
		err = -EIO;
		svc_err("%s: cannot read the report: %s", path, strerror(EIO));
	}
	fclose(f);
	if (!err && fflush(out) != 0)
		err = -errno;
	return err;
}

/* ---- the report as a sink: aggregates every flow, saved every report_interval and at the end */

struct report_sink {
	struct report *rep;
	const char *path; /* cfg->report_file */
	unsigned interval;
	uint64_t next_s; /* 0 = not scheduled yet */
	bool dirty;	 /* flows since the last save */
	bool error_reported;
};

static int rs_open(const struct sink_env *env, void **self)
{
	struct report_sink *s;

	if (!env->cfg->report_file || !*env->cfg->report_file)
		return 0;
	if (!(s = calloc(1, sizeof(*s))) || !(s->rep = report__new())) {
		free(s);
		svc_err("report: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	s->path = env->cfg->report_file;
	s->interval = env->cfg->report_interval;
	*self = s;
	return 0;
}

static void rs_flow(void *self, const struct sink_flow *f)
{
	struct report_sink *s = self;
	const struct flow_record *rec = f->rec;

	s->dirty = true;
	if (report__add(s->rep, f->verdict, f->src, f->dst, f->app, rec->bytes[0] + rec->bytes[1],
			rec->first_us) != 0 &&
	    !s->error_reported) {
		s->error_reported = true;
		svc_err("report: %s: some flows are missing from the breakdown", strerror(ENOMEM));
	}
}

static void rs_tick(void *self, uint64_t now_s)
{
	struct report_sink *s = self;

	if (svc_due(&s->next_s, s->interval, now_s) && s->dirty &&
	    report__save(s->rep, s->path) == 0)
		s->dirty = false;
}

static int rs_close(void *self, bool final)
{
	struct report_sink *s = self;
	int err = final ? report__save(s->rep, s->path) : 0;

	report__free(s->rep);
	free(s);
	return err;
}

const struct sink_ops report_sink = {
    .name = "report",
    .open = rs_open,
    .flow = rs_flow,
    .tick = rs_tick,
    .close = rs_close,
};
