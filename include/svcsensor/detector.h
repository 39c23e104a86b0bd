/* detector.h - the single consumer's brain: host keys, verdict against the service map (or
 * learning into it), then the sink list (include/svcsensor/sink.h), which it opens from the
 * configuration and hands every flow with its host keys and verdict. Runs on the detector
 * thread only, except detector__request_reload which any thread (a signal handler's flag
 * reader in main) may call.
 *
 * RCU: the detector reads the service map under rcu_read_lock() (liburcu memb flavour, as in
 * service_map.h), so the thread that calls detector__flow / detector__tick must be registered
 * with RCU first: rcu_register_thread() from <urcu.h>, or detector__thread_register() which
 * does the same without the caller picking a flavour, and unregistered before it exits.
 * detector__new / detector__finish / detector__free may run on another thread (main) only
 * while the detector thread is not running (before it starts, after it is joined); that thread
 * should be registered too, since loading and saving the map walk its hash tables.
 *
 * The configuration is borrowed: it must outlive the detector. */
#ifndef SVCSENSOR_DETECTOR_H
#define SVCSENSOR_DETECTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "svcsensor/config.h"
#include "svcsensor/flow.h"
#include "svcsensor/verdict.h"

struct detector_stats {
	uint64_t flows; /* flows judged (or learned) */
	uint64_t per_verdict[VERDICT__COUNT];
	uint64_t allowed; /* anomalies silenced by allow rules (counted NONE) */
	/* What the sinks failed to write so far: the sum of their loss figures that are not
	 * benign (sink.h), each in its own unit (lines, rows, ...). Updated after each pass. */
	uint64_t output_lost;
	uint64_t learn_lost; /* learn mode: observations the map could not take (ENOMEM) */
	uint64_t map_reloads, map_reload_failures;
};

/* One loss figure of the run's outputs, named: "anomaly_log" "lines" 12 (ENOSPC). */
struct detector_loss {
	const char *source; /* a sink's name, or "service_map" (static strings) */
	const char *what;   /* the unit, plural */
	uint64_t count;
	int err;     /* errno of the last failure, 0 = none known */
	bool benign; /* shown, but not a loss of the run's data (sink.h) */
};

#define DETECTOR_LOSSES_MAX 32

struct detector;

/* Build the detector from the configuration: loads cfg->map_file (a missing file in detect
 * mode warns once and starts from an empty map; a broken one is an error), opens the sinks.
 * learn = learn mode (the detector is then the map's writer and judges nothing).
 * console: where console lines go (stdout normally; NULL = none).
 * Returns NULL after printing one line on error. */
struct detector *detector__new(const struct svc_config *cfg, bool learn, FILE *console);

/* Judge (detect mode) or learn (learn mode) one finished flow and hand it to the sinks.
 * Returns the verdict (VERDICT_NONE in learn mode). Does not take ownership of rec. */
enum verdict detector__flow(struct detector *d, const struct flow_record *rec);

/* Flush the sinks (console lines, anomaly log lines): the detector thread calls it after each
 * pass over the finished-flow queue, so lines reach their files within a pass. */
void detector__flush(struct detector *d);

/* Periodic work on the detector thread: the sinks' tick (the report every report_interval), the
 * map handed to the saver thread in learn mode every learn_save_interval (src/map/holder.c:
 * learning goes on while it is written), a requested reload, and the reload counters.
 * now_s = wall clock. */
void detector__tick(struct detector *d, uint64_t now_s);

/* Ask for a reload (SIGHUP): map file loaded again and swapped in under RCU (old map kept if
 * the file is broken or missing, one line on stderr), anomaly log reopened. In learn mode only
 * the log is reopened: the map being learned is never replaced. Async-signal-safe (sets an
 * atomic flag); taken at the next detector__tick or detector__flow, on the detector thread,
 * which reopens the log and hands the map to the loader thread (src/map/holder.c): judging
 * goes on against the map in force while the file is parsed. */
void detector__request_reload(struct detector *d);

/* The loss figures of every sink (zeros included) and, in learn mode, of the map, as of the
 * last tick, flush pass or detector__finish: at most max of them into out; returns how many.
 * Any thread (a copy taken under a lock), while the detector lives. */
unsigned detector__losses(struct detector *d, struct detector_loss *out, unsigned max);

/* Final outputs: every sink closed (report saved, log flushed), the map saved in learn mode
 * (after any save still running: the file holds everything learned); a reload still running is
 * waited for. 0 or the first negative errno. */
int detector__finish(struct detector *d);

/* Counters so far (updated by the detector thread; read them from it or after joining it).
 * In learn mode every flow is counted in flows and per_verdict[VERDICT_NONE]. The reload
 * counters are the loader thread's, collected by detector__tick and detector__finish. */
const struct detector_stats *detector__stats(const struct detector *d);

/* rcu_register_thread() / rcu_unregister_thread() of the flavour the service map uses. */
void detector__thread_register(void);
void detector__thread_unregister(void);

void detector__free(struct detector *d);

#endif
