/* report.c - per verdict / source / destination aggregates, their snapshot, and the report as
 * a sink whose saves run on a background thread.
 *
 * Aggregates live in small open-addressing string tables (one per verdict for sources, one per
 * source for destinations): a flow costs two lookups and a short scan of its pair's apps. At
 * most max_keys (verdict, source, destination) rows are kept: the flows of further keys go to
 * one (other) -> (other) row per verdict and are counted (folded), so the traffic (spoofed
 * sources, remote_mode "address") cannot decide the memory.
 *
 * Saving: the detector thread takes a snapshot (report_snap.h: the figures copied, the keys
 * and application names shared, O(rows) and no allocation once the arrays are grown) and hands
 * it to the saver thread, which sorts and writes it (src/sink/report_write.c, atomic_file.h):
 * a slow or stalled disk delays the file, never the detector. The saver is the model of the
 * map holder's (src/map/holder.c): started at the first periodic save, every signal blocked,
 * one save at a time; a save asked for while one runs is made after it (coalesced). */
#include "svcsensor/report.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "report_snap.h"
#include "svcsensor/common.h"
#include "svcsensor/sink.h"
#include "svcsensor/strtab.h"

/* Sources and destinations are found by key in string tables (strtab.h), which store the
 * pointer to the node's own copy of its key (name[]); the node is found back from it with
 * offsetof. The slots keep each key's hash, so a probe compares strings only when the hashes
 * match (the nodes are scattered: dereferencing one per probe was most of report__add).
 * Keys and application names are written once and never moved nor freed while the report
 * lives: snapshots point at them (report_snap.h). */
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
	struct rsrc *other;	/* the (other) row, made at the first folded flow */
	struct rdst *other_dst; /* its one destination */
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
	uint64_t keys;	   /* (verdict, source, destination) rows, (other) rows not counted */
	uint64_t max_keys; /* 0 = no bound */
	uint64_t folded;   /* flows added to an (other) row */
	uint64_t srcs;	   /* source nodes, (other) ones included: sizes a snapshot */
	uint64_t app_refs; /* application names over every row: sizes a snapshot */
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

static void rdst_free(struct rdst *d)
{
	free(d->apps);
	free(d->app_first);
}

static void rsrc_free(struct rsrc *s)
{
	size_t pos = 0;
	for (const char *k; (k = strtab__next(&s->dsts, &pos));)
		rdst_free(NODE_OF(k, struct rdst));
	strtab__free(&s->dsts);
}

struct report *report__new(void)
{
	return calloc(1, sizeof(struct report));
}

void report__set_max_keys(struct report *r, uint64_t max_keys)
{
	r->max_keys = max_keys;
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
		if (r->v[v].other_dst)
			rdst_free(r->v[v].other_dst);
	}
	for (struct rblock *b = r->blocks, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(r);
}

static struct rsrc *new_src(struct report *r, const char *key)
{
	size_t len = strlen(key);
	struct rsrc *s = r_alloc(r, sizeof(*s) + len + 1);
	if (!s)
		return NULL;
	memcpy(s->name, key, len + 1);
	s->key = s->name;
	r->srcs++;
	return s;
}

static struct rdst *new_dst(struct report *r, const char *key)
{
	size_t len = strlen(key);
	struct rdst *d = r_alloc(r, sizeof(*d) + len + 1);
	if (!d)
		return NULL;
	memcpy(d->name, key, len + 1);
	d->key = d->name;
	return d;
}

/* The row of (src, dst) in rv, made when it is new and the bound allows; NULL with *fold when
 * it is new and the bound is reached, NULL without on out of memory. */
static struct rdst *get_row(struct report *r, struct rverdict *rv, const char *src, const char *dst,
			    struct rsrc **sp, bool *fold)
{
	uint64_t hs, hd;
	const char *k = strtab__find(&rv->srcs, src, &hs);
	struct rsrc *s = k ? NODE_OF(k, struct rsrc) : NULL;
	struct rdst *d;

	*fold = false;
	if (s && (k = strtab__find(&s->dsts, dst, &hd))) {
		*sp = s;
		return NODE_OF(k, struct rdst);
	}
	if (r->max_keys && r->keys >= r->max_keys) {
		*fold = true;
		return NULL;
	}
	if (!s) {
		if (!(s = new_src(r, src)) || strtab__add(&rv->srcs, s->name, hs) != 0)
			return NULL; /* what was taken from the blocks goes with the report */
		hd = strtab__hash(dst);
	}
	if (!(d = new_dst(r, dst)) || strtab__add(&s->dsts, d->name, hd) != 0)
		return NULL;
	r->keys++;
	*sp = s;
	return d;
}

/* The (other) row of rv, made at its first flow. */
static struct rdst *other_row(struct report *r, struct rverdict *rv, struct rsrc **sp)
{
	if (!rv->other) {
		struct rsrc *s = new_src(r, REPORT_OTHER_KEY);
		struct rdst *d = new_dst(r, REPORT_OTHER_KEY);
		if (!s || !d)
			return NULL;
		rv->other = s;
		rv->other_dst = d;
	}
	*sp = rv->other;
	return rv->other_dst;
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
		r->app_refs++;
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
	struct rsrc *s = NULL;
	struct rdst *d;
	bool fold;

	if ((unsigned)v >= VERDICT__COUNT)
		return -EINVAL;
	rv = &r->v[v];
	r->flows++;
	rv->flows++;
	rv->bytes += bytes;
	d = get_row(r, rv, src, dst, &s, &fold);
	if (fold) {
		r->folded++;
		d = other_row(r, rv, &s);
	}
	if (!d)
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

uint64_t report__keys(const struct report *r)
{
	return r->keys;
}

uint64_t report__folded(const struct report *r)
{
	return r->folded;
}

/* ---- snapshot (report_snap.h) ---- */

/* At least need elements of size in *p; 0 or -ENOMEM. */
static int grow(void *pp, size_t *cap, size_t need, size_t size)
{
	void **p = pp;
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 64;
	while (ncap < need)
		ncap *= 2;
	void *np = realloc(*p, ncap * size);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

static void snap_dst(struct report_snap *s, const struct rdst *d)
{
	struct rsnap_dst *o = &s->dsts[s->n_dsts++];
	o->key = d->key;
	o->bytes = d->bytes;
	o->flows = d->flows;
	o->app0 = s->n_apps;
	o->n_apps = d->n_apps;
	memcpy(&s->apps[s->n_apps], d->apps, d->n_apps * sizeof(*d->apps));
	s->n_apps += d->n_apps;
}

static struct rsnap_src *snap_src(struct report_snap *s, const struct rsrc *src, bool other)
{
	struct rsnap_src *o = &s->srcs[s->n_srcs++];
	o->key = src->key;
	o->bytes = src->bytes;
	o->flows = src->flows;
	o->dst0 = s->n_dsts;
	o->other = other;
	return o;
}

int report__snapshot(const struct report *r, struct report_snap *s)
{
	/* Every row, source and application name of r fits: the walk below never checks. */
	if (grow(&s->srcs, &s->cap_srcs, r->srcs, sizeof(*s->srcs)) ||
	    grow(&s->dsts, &s->cap_dsts, r->keys + VERDICT__COUNT, sizeof(*s->dsts)) ||
	    grow(&s->apps, &s->cap_apps, r->app_refs, sizeof(*s->apps)))
		return -ENOMEM;
	s->n_srcs = s->n_dsts = s->n_apps = 0;
	s->sorted = false;
	s->flows = r->flows;
	for (unsigned v = 0; v < VERDICT__COUNT; v++) {
		const struct rverdict *rv = &r->v[v];
		struct rsnap_verdict *sv = &s->v[v];
		size_t pos = 0;

		sv->flows = rv->flows;
		sv->bytes = rv->bytes;
		sv->src0 = s->n_srcs;
		for (const char *k; (k = strtab__next(&rv->srcs, &pos));) {
			const struct rsrc *src = NODE_OF(k, struct rsrc);
			struct rsnap_src *o = snap_src(s, src, false);
			size_t dpos = 0;
			for (const char *dk; (dk = strtab__next(&src->dsts, &dpos));)
				snap_dst(s, NODE_OF(dk, struct rdst));
			o->n_dsts = s->n_dsts - o->dst0;
		}
		if (rv->other) {
			struct rsnap_src *o = snap_src(s, rv->other, true);
			snap_dst(s, rv->other_dst);
			o->n_dsts = 1;
		}
		sv->n_srcs = s->n_srcs - sv->src0;
	}
	return 0;
}

/* A snapshot of r written with fn: the synchronous forms of the writers. */
static int with_snapshot(const struct report *r, FILE *out, const char *path,
			 int (*fn)(struct report_snap *, FILE *))
{
	struct report_snap s = {0};
	int err = report__snapshot(r, &s);

	if (!err)
		err = fn ? fn(&s, out) : report_snap__save(&s, path);
	else if (path)
		svc_err("%s: cannot save the report: %s", path, strerror(-err));
	report_snap__free(&s);
	return err;
}

int report__write_text(const struct report *r, FILE *out)
{
	return with_snapshot(r, out, NULL, report_snap__write_text);
}

int report__write_json(const struct report *r, FILE *out)
{
	return with_snapshot(r, out, NULL, report_snap__write_json);
}

int report__save(const struct report *r, const char *path)
{
	return with_snapshot(r, NULL, path, NULL);
}

/* ---- the report as a sink: aggregates every flow, saved every report_interval (on the
 * saver thread) and at the end (on the closing thread, after any running save) ---- */

struct report_sink {
	struct report *rep;
	const char *path; /* cfg->report_file */
	unsigned interval;
	uint64_t next_s; /* 0 = not scheduled yet */
	bool want;	 /* a periodic save is due and not handed over yet */
	bool error_reported, fold_reported;
	uint64_t missing; /* flows report__add could not take (out of memory) */

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t wake;  /* a save was queued, or stop */
	pthread_t thread;
	bool started, start_failed, stop;
	bool queued, busy;  /* snap belongs to the saver while either is set */
	uint64_t snap_gen;  /* rep->flows when snap was taken */
	uint64_t saved_gen; /* rep->flows at the snapshot of the last good save */
	uint64_t saves, save_failures;
	struct report_snap snap;
};

/* One save of the snapshot; counts it. Called without the lock, with snap owned. */
static void save_snap(struct report_sink *s)
{
	int err = report_snap__save(&s->snap, s->path); /* a failure said why, in one line */

	pthread_mutex_lock(&s->lock);
	s->saves++;
	if (err)
		s->save_failures++; /* the rows stay unsaved: the next interval tries again */
	else if (s->snap_gen > s->saved_gen)
		s->saved_gen = s->snap_gen;
	pthread_mutex_unlock(&s->lock);
}

static void *saver_run(void *arg)
{
	struct report_sink *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->queued && !s->stop)
			pthread_cond_wait(&s->wake, &s->lock);
		if (s->stop)
			break;
		s->queued = false;
		s->busy = true;
		pthread_mutex_unlock(&s->lock);
		save_snap(s);
		pthread_mutex_lock(&s->lock);
		s->busy = false;
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Under the lock: start the saver if it is not running. Every signal is blocked in it (they
 * are the main thread's, src/pipeline.c), as in src/map/holder.c. false if it cannot start. */
static bool saver_ready(struct report_sink *s)
{
	sigset_t all, old;
	int rc;

	if (s->started || s->start_failed)
		return s->started;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&s->thread, NULL, saver_run, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		s->start_failed = true;
		svc_warn("report: no background thread (%s): saving on the detector thread",
			 strerror(rc));
		return false;
	}
	s->started = true;
	return true;
}

/* Let a running save end, drop a queued one (the final save supersedes it), join. */
static void saver_stop(struct report_sink *s)
{
	bool join;

	pthread_mutex_lock(&s->lock);
	s->stop = true;
	s->queued = false;
	join = s->started;
	s->started = false;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	if (join)
		pthread_join(s->thread, NULL);
}

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
	report__set_max_keys(s->rep, env->cfg->report_max_keys);
	s->path = env->cfg->report_file;
	s->interval = env->cfg->report_interval;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	*self = s;
	return 0;
}

static void rs_flow(void *self, const struct sink_flow *f)
{
	struct report_sink *s = self;
	const struct flow_record *rec = f->rec;
	uint64_t folded = s->rep->folded;

	if (report__add(s->rep, f->verdict, f->src, f->dst, f->app, rec->bytes[0] + rec->bytes[1],
			rec->first_us) != 0) {
		s->missing++;
		if (!s->error_reported) {
			s->error_reported = true;
			svc_err("report: %s: some flows are missing from the breakdown",
				strerror(ENOMEM));
		}
	}
	if (s->rep->folded != folded && !s->fold_reported) {
		s->fold_reported = true;
		svc_warn("report: report_max_keys (%llu rows) reached: the flows of further "
			 "(verdict, source, destination) keys are added to the (other) rows",
			 (unsigned long long)s->rep->max_keys);
	}
}

/* A due save is handed to the saver when it is idle: one running, at most one waiting here
 * (coalesced; it is retried every tick until the saver takes it). */
static void rs_tick(void *self, uint64_t now_s)
{
	struct report_sink *s = self;
	bool idle, fresh;

	if (svc_due(&s->next_s, s->interval, now_s))
		s->want = true;
	if (!s->want)
		return;
	pthread_mutex_lock(&s->lock);
	idle = !s->queued && !s->busy;
	fresh = s->rep->flows != s->saved_gen; /* flows since the last good save */
	pthread_mutex_unlock(&s->lock);
	if (!idle)
		return;
	s->want = false;
	if (!fresh)
		return;
	if (report__snapshot(s->rep, &s->snap) != 0) {
		svc_err("%s: cannot save the report: %s", s->path, strerror(ENOMEM));
		return;
	}
	pthread_mutex_lock(&s->lock);
	s->snap_gen = s->rep->flows;
	if (saver_ready(s)) {
		s->queued = true;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	pthread_mutex_unlock(&s->lock);
	save_snap(s);
}

static int rs_close(void *self, bool final)
{
	struct report_sink *s = self;
	int err = 0;

	saver_stop(s); /* after it, snap is ours again */
	if (final) {
		err = report__snapshot(s->rep, &s->snap);
		if (err)
			svc_err("%s: cannot save the report: %s", s->path, strerror(-err));
		else
			err = report_snap__save(&s->snap, s->path);
	}
	report_snap__free(&s->snap);
	report__free(s->rep);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return err;
}

uint64_t report_sink__folded(const void *self)
{
	const struct report_sink *s = self;
	return s ? s->rep->folded : 0;
}

uint64_t report_sink__save_failures(const void *self)
{
	struct report_sink *s = (struct report_sink *)self;
	uint64_t n;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	n = s->save_failures;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Flows folded into the (other) rows count as a loss (their pairs are no longer told apart;
 * the totals keep them), and so do flows the breakdown could not take. */
static void rs_losses(const void *self, sink_loss_fn cb, void *ctx)
{
	const struct report_sink *s = self;
	cb(ctx, &(struct sink_loss){.what = "flows folded", .count = s->rep->folded});
	cb(ctx, &(struct sink_loss){.what = "flows missing from the breakdown",
				    .count = s->missing,
				    .err = s->missing ? ENOMEM : 0});
}

const struct sink_ops report_sink = {
    .name = "report",
    .losses = rs_losses,
    .open = rs_open,
    .flow = rs_flow,
    .tick = rs_tick,
    .close = rs_close,
};
