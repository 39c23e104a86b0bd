/* sink.h - the output seam: everything that happens to a judged (or learned) flow after the
 * verdict goes through a list of sinks. The detector computes host keys and the verdict and
 * hands one struct sink_flow to every sink of its list; it knows the list, not the members.
 *
 * A sink is one file under src/sink/ that defines a const struct sink_ops and is named once in
 * the registry (src/sink/sinks.c). Each op runs on the detector thread only (open and close
 * also run on the main thread while the detector thread is not running), so a sink needs no
 * lock. Ops a sink does not need may be NULL (except open and close).
 *
 * Life of a sink: open (from the configuration; a sink that is not configured opens to nothing)
 * -> flow per finished flow -> flush after each pass over the finished-flow queue (write what
 * was batched) -> tick about once a second (periodic saves) -> reopen on SIGHUP (an external
 * logrotate moved the file) -> close at the end (final output, then free). A write error is
 * counted in the sink's lost records (reported once by the sink itself); it never stops the
 * run, and it makes the exit status 1.
 *
 * Losses: every sink that can fail to write names what it lost through its losses op (or, for
 * a sink without one, the lost op: a figure of "records"). The detector collects them after
 * each tick and at the end; the live stats line and the exit summary print them per kind
 * ("lost: anomaly_log lines 12 (No space left on device), flow_csv rows 0") and any figure
 * that is not benign makes the exit status 1 (src/pipeline.c). */
#ifndef SVCSENSOR_SINK_H
#define SVCSENSOR_SINK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "svcsensor/config.h"
#include "svcsensor/flow.h"
#include "svcsensor/verdict.h"

/* What every sink gets for one flow. Borrowed: valid during the call only. */
struct sink_flow {
	const struct flow_record *rec;
	const char *src, *dst; /* host keys (README.md, Host keys) */
	const char *app;       /* rec->app_name, NUL-terminated */
	enum verdict verdict;  /* VERDICT_NONE in learn mode and for allowed flows */
	bool learned;	       /* learn mode: the flow went into the map, nothing was judged */
	bool allowed;	       /* an allow rule silenced the anomaly (verdict is NONE) */
	uint64_t index;	       /* the flow's number in this run, from 0 */
};

/* What a sink is opened with. */
struct sink_env {
	const struct svc_config *cfg; /* borrowed: outlives every sink */
	bool learn;		      /* learn mode */
	FILE *console;		      /* where console lines go; NULL = nowhere */
};

/* One loss figure of a sink: what it could not do, so far. */
struct sink_loss {
	const char *what; /* the unit, plural, static: "lines", "rows", "keys folded" */
	uint64_t count;
	int err;     /* errno of the last failure behind count; 0 = none or not an I/O error */
	bool benign; /* not the run's data lost (the reader of the console's pipe went away):
		      * shown in the summary, but it leaves the exit status 0 */
};

typedef void (*sink_loss_fn)(void *ctx, const struct sink_loss *l);

struct sink_ops {
	const char *name; /* "console", "anomaly_log", ... (diagnostics) */
	/* Build from env. 0 with *self set; 0 with *self NULL when the configuration does not
	 * ask for this sink; a negative errno after one line on stderr (the run does not start). */
	int (*open)(const struct sink_env *env, void **self);
	void (*flow)(void *self, const struct sink_flow *f);
	void (*flush)(void *self);
	void (*tick)(void *self, uint64_t now_s); /* now_s: wall clock, seconds */
	void (*reopen)(void *self);
	/* final: write the final output (save, flush), then free; 0 or the negative errno of a
	 * failed final write (reported by the sink). !final (a run that failed to start): free
	 * without writing anything, so a previous run's files stay as they were; returns 0. */
	int (*close)(void *self, bool final);
	/* Records this sink failed to write so far (NULL = it cannot lose any). Used only
	 * when losses is NULL: one figure "records". */
	uint64_t (*lost)(const void *self);
	/* Every loss figure of this sink so far, each through one call of cb (zeros included:
	 * the summary shows which outputs were whole). NULL = the lost op's one figure. Read
	 * after each tick and, at the end, after the last flush and before close: what close
	 * itself fails to write is not in the figures (only in close's return value), so a sink
	 * writes everything it holds in flush. */
	void (*losses)(const void *self, sink_loss_fn cb, void *ctx);
};

#define SINKS_MAX 16

/* The open sinks of a run. */
struct sink_list {
	unsigned n;
	const struct sink_ops *ops[SINKS_MAX];
	void *self[SINKS_MAX];
};

/* Open every sink of the registry that env's configuration asks for. 0, or the first
 * negative errno (the sinks opened so far are closed again; one line said why). */
int sinks__open(struct sink_list *l, const struct sink_env *env);

/* Hand one flow to every sink, in registry order. */
void sinks__flow(struct sink_list *l, const struct sink_flow *f);
void sinks__flush(struct sink_list *l);
void sinks__tick(struct sink_list *l, uint64_t now_s);
void sinks__reopen(struct sink_list *l);

/* Close every sink (with final outputs when final), leaving the list empty. 0 or the first
 * negative errno. */
int sinks__close(struct sink_list *l, bool final);

/* Sum of every sink's loss figures that are not benign, so far. */
uint64_t sinks__lost(const struct sink_list *l);

/* Every loss figure of every sink, in registry order: cb(ctx, sink name, figure). */
void sinks__losses(const struct sink_list *l,
		   void (*cb)(void *ctx, const char *sink, const struct sink_loss *f), void *ctx);

#endif
