/* report.c - per verdict / source / destination aggregates and the seed's report.
 *
 * Aggregates live in small open-addressing string tables (one per verdict for sources, one per
 * source for destinations): a flow costs two lookups and a short scan of its pair's apps. The
 * ordering work (sorting, share rounding) happens only when a report is written. */
#include "svcsensor/report.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svcsensor/common.h"
#include "svcsensor/sink.h"
#include "svcsensor/textbuf.h"

#define SHARE_UNITS 10000U /* hundredths of a percent */

/* Open-addressing table of items whose first member is their key (char *). Each slot keeps
 * the key's hash too, so a probe compares strings only when the hashes match (the items are
 * scattered on the heap: dereferencing one per probe was most of report__add). */
struct strtab {
	void **slots;
	uint64_t *hashes;
	size_t cap, n; /* cap is 0 or a power of two */
};

struct rdst {
	char *key;
	uint64_t bytes, flows;
	char **apps;	     /* distinct, ordered by first use (packet time), then name */
	uint64_t *app_first; /* first_us of the earliest flow that used apps[i] */
	size_t n_apps, cap_apps;
};

struct rsrc {
	char *key;
	uint64_t bytes, flows;
	struct strtab dsts;
};

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

static uint64_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

static size_t strtab_find(const struct strtab *t, const char *key, uint64_t h)
{
	size_t mask = t->cap - 1, i = (size_t)h & mask;
	for (;; i = (i + 1) & mask) {
		char **item = t->slots[i];
		if (!item || (t->hashes[i] == h && strcmp(*item, key) == 0))
			return i;
	}
}

static void *strtab_get(const struct strtab *t, const char *key, uint64_t h)
{
	return t->cap ? t->slots[strtab_find(t, key, h)] : NULL;
}

/* Insert an item known to be absent, whose key hashes to h. 0 or -ENOMEM. */
static int strtab_put(struct strtab *t, void *item, uint64_t h)
{
	if ((t->n + 1) * 4 > t->cap * 3) { /* keep the load under 3/4 */
		size_t ncap = t->cap ? t->cap * 2 : 8;
		struct strtab nt = {calloc(ncap, sizeof(void *)), calloc(ncap, sizeof(uint64_t)),
				    ncap, t->n};
		if (!nt.slots || !nt.hashes) {
			free(nt.slots);
			free(nt.hashes);
			return -ENOMEM;
		}
		for (size_t i = 0; i < t->cap; i++)
			if (t->slots[i]) {
				size_t j = strtab_find(&nt, *(char **)t->slots[i], t->hashes[i]);
				nt.slots[j] = t->slots[i];
				nt.hashes[j] = t->hashes[i];
			}
		free(t->slots);
		free(t->hashes);
		*t = nt;
	}
	size_t i = strtab_find(t, *(char **)item, h);
	t->slots[i] = item;
	t->hashes[i] = h;
	t->n++;
	return 0;
}

/* The items of a table in an array (caller frees); NULL when empty or out of memory. */
static void **strtab_items(const struct strtab *t)
{
	void **out;
	size_t j = 0;

	if (!t->n || !(out = malloc(t->n * sizeof(*out))))
		return NULL;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i])
			out[j++] = t->slots[i];
	return out;
}

static void rsrc_free(struct rsrc *s)
{
	for (size_t i = 0; i < s->dsts.cap; i++) {
		struct rdst *d = s->dsts.slots[i];
		if (d) {
			free(d->apps);
			free(d->app_first);
		}
	}
	free(s->dsts.slots);
	free(s->dsts.hashes);
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
		for (size_t i = 0; i < t->cap; i++)
			if (t->slots[i])
				rsrc_free(t->slots[i]);
		free(t->slots);
		free(t->hashes);
	}
	for (struct rblock *b = r->blocks, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(r);
}

static struct rsrc *get_src(struct report *r, struct rverdict *rv, const char *key, uint64_t h)
{
	struct rsrc *s = strtab_get(&rv->srcs, key, h);
	if (s)
		return s;
	s = r_alloc(r, sizeof(*s));
	if (!s || !(s->key = r_strdup(r, key)) || strtab_put(&rv->srcs, s, h) != 0)
		return NULL; /* what was taken from the blocks goes with the report */
	return s;
}

static struct rdst *get_dst(struct report *r, struct rsrc *s, const char *key, uint64_t h)
{
	struct rdst *d = strtab_get(&s->dsts, key, h);
	if (d)
		return d;
	d = r_alloc(r, sizeof(*d));
	if (!d || !(d->key = r_strdup(r, key)) || strtab_put(&s->dsts, d, h) != 0)
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
	if (!(s = get_src(r, rv, src, str_hash(src))) || !(d = get_dst(r, s, dst, str_hash(dst))))
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

static void **sorted_items(const struct strtab *t)
{
	void **items = strtab_items(t);
	if (items)
		qsort(items, t->n, sizeof(*items), by_bytes_then_key);
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
		srcs = (struct rsrc **)sorted_items(&rv->srcs);
		if (!srcs && rv->srcs.n)
			return -ENOMEM;
		for (size_t i = 0; i < rv->srcs.n; i++) {
			struct rdst **dsts = (struct rdst **)sorted_items(&srcs[i]->dsts);
			size_t n = srcs[i]->dsts.n;
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

/* A JSON string: quote, backslash and control bytes escaped; other bytes as they are. */
static void json_string_out(FILE *f, const char *s)
{
	fputc('"', f);
	for (;;) {
		size_t run = 0;
		while (s[run] && s[run] != '"' && s[run] != '\\' && (unsigned char)s[run] >= 0x20)
			run++;
		fwrite(s, 1, run, f); /* names are plain text: mostly one run */
		s += run;
		if (!*s)
			break;
		unsigned char ch = (unsigned char)*s++;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else
			fprintf(f, "\\u%04x", ch);
	}
	fputc('"', f);
}

struct json_ctx {
	FILE *f;
	bool first_section, first_source, first_dest;
};

static int json_section(void *ctx, enum verdict v, const struct rverdict *rv)
{
	struct json_ctx *j = ctx;
	fprintf(j->f, "%s\n    {\"verdict\": \"%s\", \"label\": \"%s\", \"flows\": %llu, "
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
	json_string_out(j->f, s->key);
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
	json_string_out(j->f, d->key);
	fprintf(j->f, ", \"bytes\": %llu, \"share\": %u.%02u, \"flows\": %llu, \"apps\": [",
		(unsigned long long)d->bytes, share / 100, share % 100,
		(unsigned long long)d->flows);
	for (size_t i = 0; i < d->n_apps; i++) {
		if (i)
			fputs(", ", j->f);
		json_string_out(j->f, d->apps[i]);
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

/* Write path through a temporary file in its directory, fsync, rename, fsync the directory. */
static int save_atomic(const char *path, int (*writer)(FILE *, const void *), const void *ctx)
{
	size_t n = strlen(path) + 16;
	char *tmp = malloc(n), *dircopy = NULL;
	const char *what = "cannot create a temporary file";
	bool created = false;
	FILE *f = NULL;
	int fd = -1, err = 0;

	if (!tmp) {
		err = -ENOMEM;
		goto cleanup;
	}
	snprintf(tmp, n, "%s.tmp.XXXXXX", path);
	if ((fd = mkstemp(tmp)) < 0) {
		err = -errno;
		goto cleanup;
	}
	created = true;
	if (fchmod(fd, 0644) != 0 || !(f = fdopen(fd, "w"))) {
		err = -errno;
		goto cleanup;
	}
	fd = -1; /* f owns it now */
	what = "cannot write";
	if ((err = writer(f, ctx)) != 0)
		goto cleanup;
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		err = -errno;
		goto cleanup;
	}
	err = fclose(f) != 0 ? -errno : 0;
	f = NULL;
	if (err)
		goto cleanup;
	what = "cannot rename into place";
	if (rename(tmp, path) != 0) {
		err = -errno;
		goto cleanup;
	}
	created = false;
	/* Make the rename itself durable; a failure here loses nothing already written. */
	if ((dircopy = strdup(path))) {
		int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
cleanup:
	if (err)
		svc_err("%s: %s: %s", path, what, strerror(-err));
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (created)
		unlink(tmp);
	free(tmp);
	free(dircopy);
	return err;
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
	err = save_atomic(path, write_text_cb, r);
	jerr = save_atomic(jpath, write_json_cb, r);
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

	if (svc_due(&s->next_s, s->interval, now_s) && s->dirty && report__save(s->rep, s->path) == 0)
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
