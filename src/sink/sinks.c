/* sinks.c - the sink registry and the list the detector hands every flow to
 * (include/svcsensor/sink.h). A new output is one file under src/sink/ and one line here. */
#include "svcsensor/sink.h"

#include <errno.h>

/* Every sink, in the order each flow reaches them. Each is defined in its own file. */
extern const struct sink_ops console_sink, anomaly_log_sink, report_sink, flow_csv_sink;
static const struct sink_ops *const registry[] = {
    &console_sink,
    &anomaly_log_sink,
    &report_sink,
    &flow_csv_sink,
};
_Static_assert(sizeof(registry) / sizeof(registry[0]) <= SINKS_MAX, "raise SINKS_MAX");

int sinks__open(struct sink_list *l, const struct sink_env *env)
{
	l->n = 0;
	for (unsigned i = 0; i < sizeof(registry) / sizeof(registry[0]); i++) {
		void *self = NULL;
		int err = registry[i]->open(env, &self);
		if (err) {
			sinks__close(l, false);
			return err;
		}
		if (!self)
			continue;
		l->ops[l->n] = registry[i];
		l->self[l->n++] = self;
	}
	return 0;
}

void sinks__flow(struct sink_list *l, const struct sink_flow *f)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->ops[i]->flow)
			l->ops[i]->flow(l->self[i], f);
}

void sinks__flush(struct sink_list *l)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->ops[i]->flush)
			l->ops[i]->flush(l->self[i]);
}

void sinks__tick(struct sink_list *l, uint64_t now_s)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->ops[i]->tick)
			l->ops[i]->tick(l->self[i], now_s);
}

void sinks__reopen(struct sink_list *l)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->ops[i]->reopen)
			l->ops[i]->reopen(l->self[i]);
}

int sinks__close(struct sink_list *l, bool final)
{
	int err = 0;
	for (unsigned i = 0; i < l->n; i++) {
		int e = l->ops[i]->close(l->self[i], final);
		if (e && !err)
			err = e;
	}
	l->n = 0;
	return err;
}

/* One sink's figures: its losses op, or the lost op's count as "records". */
static void sink_losses(const struct sink_ops *ops, const void *self, sink_loss_fn cb, void *ctx)
{
	if (ops->losses)
		ops->losses(self, cb, ctx);
	else if (ops->lost)
		cb(ctx, &(struct sink_loss){.what = "records", .count = ops->lost(self)});
}

static void add_lost(void *ctx, const struct sink_loss *f)
{
	if (!f->benign)
		*(uint64_t *)ctx += f->count;
}

uint64_t sinks__lost(const struct sink_list *l)
{
	uint64_t lost = 0;
	for (unsigned i = 0; i < l->n; i++)
		sink_losses(l->ops[i], l->self[i], add_lost, &lost);
	return lost;
}

/* Adds the sink's name to each figure on the way to the caller. */
struct named {
	const char *sink;
	void (*cb)(void *ctx, const char *sink, const struct sink_loss *f);
	void *ctx;
};

static void name_it(void *ctx, const struct sink_loss *f)
{
	const struct named *n = ctx;
	n->cb(n->ctx, n->sink, f);
}

void sinks__losses(const struct sink_list *l,
		   void (*cb)(void *ctx, const char *sink, const struct sink_loss *f), void *ctx)
{
	for (unsigned i = 0; i < l->n; i++) {
		struct named n = {.sink = l->ops[i]->name, .cb = cb, .ctx = ctx};
		sink_losses(l->ops[i], l->self[i], name_it, &n);
	}
}
