/* flows_csv.c - the flow CSV input (--flows-in): finished flows read from a CSV (flows_in.h)
 * go to the finished-flow queue as the workers' flows do, and the detector learns (or judges)
 * them like any other flow. One worker reads the whole file, in order; it keeps no flow table. */
#include "svcsensor/input.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "svcsensor/common.h"
#include "svcsensor/flows_in.h"
#include "svcsensor/worker.h"

struct csv_input {
	struct input in;
	const char *path;
	struct flows_in *rd;
	atomic_bool *stop;
	bool learn;
	int error;    /* what ended the read early: a negative errno, or 0 */
	bool stopped; /* *stop ended it */
};

struct csv_share {
	struct csv_input *c;
	struct worker *w;
};

/* One good row: a record of its own to the queue (the reader reuses rec). */
static int push_row(void *ctx, const struct flow_record *rec)
{
	struct csv_share *sh = ctx;
	struct flow_record *r = flow_record__new();
	if (!r) {
		svc_err("%s: out of memory", sh->c->path);
		return -ENOMEM;
	}
	*r = *rec;
	worker__emit(sh->w, r);
	return atomic_load_explicit(sh->c->stop, memory_order_relaxed) ? 1 : 0;
}

static void csv_run(struct input *in, struct worker *w)
{
	struct csv_input *c = (struct csv_input *)in;
	struct csv_share sh = {.c = c, .w = w};
	int rc = atomic_load(c->stop) ? 1 : flows_in__rows(c->rd, push_row, &sh);
	c->stopped = rc > 0;
	c->error = rc < 0 ? rc : 0;
}

static void csv_stats(struct input *in, struct input_stats *st)
{
	struct csv_input *c = (struct csv_input *)in;
	const struct flows_in_stats *fs = flows_in__stats(c->rd);
	st->packets = fs->accepted;
	st->rejected = fs->rejected;
	st->error = c->error;
	st->files_ok = !c->error;
	st->files_failed = !!c->error;
	st->stopped = c->stopped;
}

static void csv_summary(struct input *in, const struct input_stats *st)
{
	struct csv_input *c = (struct csv_input *)in;
	fprintf(stderr, "%s: %s: %" PRIu64 " rows %s, %" PRIu64 " rejected%s\n", SVC_PROG, c->path,
		st->packets, c->learn ? "learned" : "judged", st->rejected,
		st->stopped ? " (stopped early)" : "");
}

static void csv_close(struct input *in)
{
	struct csv_input *c = (struct csv_input *)in;
	flows_in__close(c->rd);
	free(c);
}

static const struct input_ops csv_ops = {
    .name = "flow CSV",
    .records = true,
    .run = csv_run,
    .stats = csv_stats,
    .summary = csv_summary,
    .close = csv_close,
};

int input_csv__open(const struct input_args *a, struct input **out)
{
	struct csv_input *c = calloc(1, sizeof(*c));
	if (!c) {
		svc_err("%s: out of memory", a->flows_in);
		return -ENOMEM;
	}
	int rc = flows_in__open(a->flows_in, &c->rd);
	if (rc) {
		free(c);
		return rc;
	}
	c->in.ops = &csv_ops;
	c->in.n_workers = 1; /* the rows in file order */
	c->path = a->flows_in;
	c->stop = a->stop;
	c->learn = a->learn;
	*out = &c->in;
	return 0;
}
