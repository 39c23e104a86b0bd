/* console.c - the seed's per-flow console line, batched.
 *
 * Lines are formatted into the console's own buffer and written with write(2) on the stream's
 * descriptor (a stream without one, as open_memstream's, gets fwrite + fflush), so the console
 * knows exactly which lines reached the reader: a failed or short write counts the lines it
 * did not carry whole. A flush happens when the buffer is full, when a second has passed since
 * the previous one (checked with the coarse monotonic clock, a vDSO read) and whenever the
 * detector is idle (console__flush), so an operator watching a quiet link still sees each line
 * within a second while a busy one costs a write per buffer, not per flow.
 *
 * A reader that goes away (`svcsensor ... | head -1`: EPIPE, SIGPIPE being ignored by
 * src/main.c) ends the console's output with one line; the run goes on and writes its files,
 * and the lines not printed are shown in the summary as benign (exit status unchanged). Any
 * other write error loses the lines it hit: counted, reported once, exit status 1. */
#include "svcsensor/console.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svcsensor/common.h"
#include "svcsensor/monotime.h"
#include "svcsensor/sink.h"

#define CONSOLE_FLUSH_NS 1000000000ULL /* at most this long between a line and its flush */
#define CONSOLE_BUF 16384	       /* lines batched per write */
#define CONSOLE_WAIT_MS 1000	       /* a non-blocking descriptor that is full: wait this long */
/* The seed's columns: index 3 (right), keys 15, application 20. */
#define LINE_FMT "%3llu. %-15s --> %-15s , %-20s | %s\n"

struct console {
	FILE *out;
	int fd; /* out's descriptor, -1 when it has none */
	enum print_mode mode;
	bool stdio_flushed;  /* what out's own buffer held was written before our first write */
	bool closed;	     /* the reader went away (EPIPE): nothing is printed any more */
	bool error_reported; /* a write error (not EPIPE) is reported once */
	uint64_t last_flush_ns;
	size_t len;	    /* bytes in buf */
	uint64_t lines;	    /* lines in buf */
	uint64_t lost;	    /* lines a write error lost */
	int lost_err;	    /* the errno of the last such error */
	uint64_t unprinted; /* lines not printed because the reader went away */
	char buf[CONSOLE_BUF];
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
	c->fd = out ? fileno(out) : -1;
	c->mode = mode;
	c->last_flush_ns = monotime__coarse_ns();
	return c;
}

/* Lines of buf[from, len) (a line cut short counts: its reader did not get it whole). */
static uint64_t lines_from(const struct console *c, size_t from)
{
	uint64_t n = 0;
	for (const char *p = c->buf + from; (p = memchr(p, '\n', (size_t)(c->buf + c->len - p)));
	     p++)
		n++;
	return n;
}

/* Write buf whole to the descriptor; 0, or the errno of the failure with *done bytes written. */
static int write_fd(struct console *c, size_t *done)
{
	while (*done < c->len) {
		ssize_t w = write(c->fd, c->buf + *done, c->len - *done);
		if (w > 0) {
			*done += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = {.fd = c->fd, .events = POLLOUT};
			if (poll(&p, 1, CONSOLE_WAIT_MS) > 0)
				continue;
			return EAGAIN;
		}
		return w < 0 ? errno : EIO;
	}
	return 0;
}

/* The stream has no descriptor: fwrite + fflush; on failure every line of the batch counts. */
static int write_stream(struct console *c, size_t *done)
{
	errno = 0;
	if (fwrite(c->buf, 1, c->len, c->out) == c->len && fflush(c->out) == 0) {
		*done = c->len;
		return 0;
	}
	clearerr(c->out);
	return errno ? errno : EIO;
}

/* A failed write: the reader went away (EPIPE), or the lines are lost. */
static void write_failed(struct console *c, int err, uint64_t n)
{
	if (err == EPIPE) {
		c->closed = true;
		c->unprinted += n;
		svc_err("console: standard output closed (%s); flow lines no longer printed, the "
			"run goes on",
			strerror(err));
		return;
	}
	c->lost += n;
	c->lost_err = err;
	if (!c->error_reported) {
		c->error_reported = true;
		svc_err("console: cannot write flow lines: %s (lines lost are counted; further "
			"errors not reported)",
			strerror(err));
	}
}

void console__flush(struct console *c)
{
	size_t done = 0;
	int err;

	if (!c || !c->out || !c->len)
		return;
	c->last_flush_ns = monotime__coarse_ns();
	if (c->fd >= 0 && !c->stdio_flushed) {
		c->stdio_flushed = true;
		fflush(c->out); /* whatever the process printed there before goes first */
	}
	err = c->fd >= 0 ? write_fd(c, &done) : write_stream(c, &done);
	if (err)
		write_failed(c, err, lines_from(c, done));
	c->len = 0;
	c->lines = 0;
}

static bool print_line(struct console *c, uint64_t index, const char *src, const char *dst,
		       const char *app, const char *label)
{
	if (c->closed) {
		c->unprinted++;
		return false;
	}
	for (int tries = 0;; tries++) {
		size_t room = sizeof(c->buf) - c->len;
		int n = console__format(c->buf + c->len, room, index, src, dst, app, label);
		if (n < 0)
			return false;
		if ((size_t)n < room) {
			c->len += (size_t)n;
			break;
		}
		if (tries || !c->len) { /* longer than the whole buffer: cut, still one line */
			c->len = sizeof(c->buf);
			c->buf[c->len - 1] = '\n';
			break;
		}
		console__flush(c);
		if (c->closed) {
			c->unprinted++;
			return false;
		}
	}
	c->lines++;
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

void console__losses(const struct console *c, uint64_t *lost, int *err, uint64_t *unprinted)
{
	*lost = c ? c->lost : 0;
	*err = c ? c->lost_err : 0;
	*unprinted = c ? c->unprinted : 0;
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

/* Lines lost to write errors; and, once the reader went away, the lines not printed (benign:
 * `| head` is a normal use). */
static void con_losses(const void *self, sink_loss_fn cb, void *ctx)
{
	const struct console *c = self;

	cb(ctx, &(struct sink_loss){.what = "lines", .count = c->lost, .err = c->lost_err});
	if (c->closed)
		cb(ctx, &(struct sink_loss){.what = "lines not written (standard output closed)",
					    .count = c->unprinted,
					    .err = EPIPE,
					    .benign = true});
}

const struct sink_ops console_sink = {
    .name = "console",
    .open = con_open,
    .flow = con_flow,
    .flush = con_flush,
    .tick = con_tick,
    .close = con_close,
    .losses = con_losses,
};
