/* console.c - the seed's per-flow console line on buffered stdio.
 *
 * Lines go through the stream's own buffer; a flush happens when a second has passed since
 * the previous one (checked with the coarse monotonic clock, a vDSO read) and whenever the
 * detector is idle (console__flush), so an operator watching a quiet link still sees each
 * line within a second while a busy one costs a write per buffer, not per flow. */
#include "svcsensor/console.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svcsensor/common.h"
#include "svcsensor/monotime.h"
#include "svcsensor/sink.h"

#define CONSOLE_FLUSH_NS 1000000000ULL /* at most this long between a line and its flush */
/* The seed's columns: index 3 (right), keys 15, application 20. */
#define LINE_FMT "%3llu. %-15s --> %-15s , %-20s | %s\n"

struct console {
	FILE *out;
	enum print_mode mode;
	bool dirty;	     /* something printed since the last flush */
	bool error_reported; /* a stream error is reported once */
	uint64_t last_flush_ns;
};

int console__format(char *buf, size_t len, uint64_t index, const char *src, const char *dst,
		    const char *app, const char *label)
{
	return snprintf(buf, len, LINE_FMT, (unsigned long long)index, src, dst, app, label);
}

struct console *console__new(FILE *out, enum print_mode mode)
{
	struct console *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->out = out;
	c->mode = mode;
	c->last_flush_ns = monotime__coarse_ns();
	return c;
}

void console__flush(struct console *c)
{
	if (!c || !c->out || !c->dirty)
		return;
	c->dirty = false;
	c->last_flush_ns = monotime__coarse_ns();
	if (fflush(c->out) != 0 && !c->error_reported) {
		c->error_reported = true;
		svc_err("console: cannot write flow lines: %s (further errors not reported)",
			strerror(errno));
	}
}

static bool print_line(struct console *c, uint64_t index, const char *src, const char *dst,
		       const char *app, const char *label)
{
	/* One fprintf with the same format as console__format: no intermediate copy. */
	fprintf(c->out, LINE_FMT, (unsigned long long)index, src, dst, app, label);
	c->dirty = true;
	if (monotime__coarse_ns() - c->last_flush_ns >= CONSOLE_FLUSH_NS)
		console__flush(c);
	return true;
}

bool console__verdict(struct console *c, uint64_t index, const char *src, const char *dst,
		      const char *app, enum verdict v)
{
	if (!c || !c->out || c->mode == PRINT_NONE)
		return false;
	if (c->mode == PRINT_ANOMALIES && v == VERDICT_NONE)
		return false;
	return print_line(c, index, src, dst, app, verdict__label(v));
}

bool console__learned(struct console *c, uint64_t index, const char *src, const char *dst,
		      const char *app)
{
	if (!c || !c->out || c->mode != PRINT_ALL)
		return false;
	return print_line(c, index, src, dst, app, VERDICT_LEARNED_LABEL);
}

void console__free(struct console *c)
{
	if (!c)
		return;
	console__flush(c);
	free(c);
}

/* ---- the console as a sink ---- */

static int con_open(const struct sink_env *env, void **self)
{
	if (!env->console || env->cfg->print == PRINT_NONE)
		return 0;
	if (!(*self = console__new(env->console, env->cfg->print))) {
		svc_err("console: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	return 0;
}

static void con_flow(void *self, const struct sink_flow *f)
{
	if (f->learned)
		console__learned(self, f->index, f->src, f->dst, f->app);
	else
		console__verdict(self, f->index, f->src, f->dst, f->app, f->verdict);
}

static void con_flush(void *self)
{
	console__flush(self);
}

static void con_tick(void *self, uint64_t now_s)
{
	(void)now_s;
	console__flush(self);
}

static int con_close(void *self, bool final)
{
	(void) final; /* lines already printed are flushed either way */
	console__free(self);
	return 0;
}

const struct sink_ops console_sink = {
    .name = "console",
    .open = con_open,
    .flow = con_flow,
    .flush = con_flush,
    .tick = con_tick,
    .close = con_close,
};
