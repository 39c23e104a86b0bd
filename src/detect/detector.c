/* detector.c - the detector thread's work per finished flow: host keys, verdict (or learning),
 * console line, anomaly log, report aggregates; plus the periodic saves and the SIGHUP reload.
 *
 * The map judged against is the holder's (src/map/holder.c): a reload is handed to its loader
 * thread, which builds a whole new map off to the side and publishes it under RCU, so a broken
 * file never replaces a good map and the judging never waits for a load. In learn mode the
 * holder keeps the map being learned and its saver thread writes it while learning goes on; a
 * reload only reopens the log (the learned map is never dropped). */
#include <urcu.h> /* first: the flavour of the service map's readers */

#include "svcsensor/detector.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/anomaly_log.h"
#include "svcsensor/common.h"
#include "svcsensor/console.h"
#include "svcsensor/map_holder.h"
#include "svcsensor/report.h"
#include "svcsensor/service_map.h"
#include "svcsensor/verdict.h"

struct detector {
	const struct svc_config *cfg;
	bool learn;
	struct map_holder *map; /* detect: the map judged against; learn: the map being learned */
	struct console *con;
	struct anomaly_log *log; /* NULL when log_file is off, and in learn mode */
	struct report *rep;
	struct detector_stats st;
	atomic_bool reload_pending;
	uint64_t index;		/* running flow index of the console lines */
	uint64_t next_report_s; /* 0 = not scheduled yet */
	uint64_t next_map_save_s;
	bool report_dirty; /* flows since the last report save */
	bool learn_error_reported;
	bool report_error_reported;
};

static bool is_set(const char *s)
{
	return s && *s;
}

void detector__thread_register(void)
{
	rcu_register_thread();
}

void detector__thread_unregister(void)
{
	rcu_unregister_thread();
}

struct detector *detector__new(const struct svc_config *cfg, bool learn, FILE *console)
{
	struct detector *d = calloc(1, sizeof(*d));

	if (!d) {
		svc_err("detector: %s", strerror(ENOMEM));
		return NULL;
	}
	d->cfg = cfg;
	d->learn = learn;
	atomic_init(&d->reload_pending, false);
	if (!(d->map = map_holder__new(cfg, learn)))
		goto fail;
	d->con = console__new(console, cfg->print);
	d->rep = report__new();
	if (!d->con || !d->rep) {
		svc_err("detector: %s", strerror(ENOMEM));
		goto fail;
	}
	if (!learn && is_set(cfg->log_file)) {
		d->log = anomaly_log__open(cfg->log_file, cfg->log_max_bytes, cfg->log_keep);
		if (!d->log)
			goto fail;
	}
	return d;
fail:
	detector__free(d);
	return NULL;
}

void detector__free(struct detector *d)
{
	if (!d)
		return;
	console__free(d->con);
	anomaly_log__close(d->log);
	report__free(d->rep);
	map_holder__free(d->map); /* stops its loader / saver thread, frees the map */
	free(d);
}

void detector__request_reload(struct detector *d)
{
	atomic_store_explicit(&d->reload_pending, true, memory_order_release);
}

/* SIGHUP: reopen the log (external logrotate), then in detect mode hand the map reload to the
 * holder's loader thread; a missing or broken file keeps the map in use. */
static void reload(struct detector *d)
{
	atomic_store_explicit(&d->reload_pending, false, memory_order_relaxed);
	if (d->log)
		anomaly_log__reopen(d->log);
	map_holder__reload(d->map); /* returns at once; learn mode: nothing */
}

static inline void reload_if_pending(struct detector *d)
{
	if (SVC_UNLIKELY(atomic_load_explicit(&d->reload_pending, memory_order_acquire)))
		reload(d);
}

/* Copy a fixed-size record name into a terminated string (records come from other threads'
 * code; never read past the field). */
static void name_copy(char *out, const char *in, size_t size)
{
	size_t n = strnlen(in, size - 1);
	memcpy(out, in, n);
	out[n] = '\0';
}

static void learn_flow(struct detector *d, const struct flow_record *rec, const char *src,
		       const char *dst, const char *app, uint64_t bytes, uint64_t index)
{
	int err = map_holder__learn(d->map, src, dst, app, bytes, rec->first_us / SVC_US_PER_MS,
				    rec->last_us / SVC_US_PER_MS);

	if (err && !d->learn_error_reported) {
		d->learn_error_reported = true;
		svc_err("service map: cannot learn %s -> %s %s: %s (further errors not reported)",
			src, dst, app, strerror(-err));
	}
	console__learned(d->con, index, src, dst, app);
}

enum verdict detector__flow(struct detector *d, const struct flow_record *rec)
{
	char src[HOSTKEY_LEN], dst[HOSTKEY_LEN];
	char app[FLOW_APP_NAME_LEN], master[FLOW_PROTO_NAME_LEN];
	uint64_t bytes = rec->bytes[0] + rec->bytes[1], index = d->index++;
	enum verdict v = VERDICT_NONE;
	bool allowed = false;

	reload_if_pending(d);
	hostkey__of(d->cfg, rec->key.src, rec->key.ipver, src);
	hostkey__of(d->cfg, rec->key.dst, rec->key.ipver, dst);
	name_copy(app, rec->app_name, sizeof(app));
	name_copy(master, rec->master_name, sizeof(master));
	d->st.flows++;

	if (d->learn) {
		learn_flow(d, rec, src, dst, app, bytes, index);
	} else {
		rcu_read_lock();
		v = verdict__judge(map_holder__current(d->map), d->cfg, src, dst, app, master,
				   &allowed);
		rcu_read_unlock();
		if (allowed && v != VERDICT_NONE) /* silenced by an allow rule: counted NONE */
			v = VERDICT_NONE;
		if (allowed)
			d->st.allowed++;
		console__verdict(d->con, index, src, dst, app, v);
		if (v != VERDICT_NONE && d->log) {
			anomaly_log__write_batched(d->log, rec, src, dst, v);
			d->st.log_write_errors = anomaly_log__stats(d->log)->errors;
		}
	}
	d->st.per_verdict[v]++;
	if (report__add(d->rep, v, src, dst, app, bytes, rec->first_us) != 0 &&
	    !d->report_error_reported) {
		d->report_error_reported = true;
		svc_err("report: %s: some flows are missing from the breakdown", strerror(ENOMEM));
	}
	d->report_dirty = true;
	return v;
}

/* Is a periodic job due? Schedules the first run one interval after the first tick and copes
 * with a wall clock set back. */
static bool due(uint64_t *next, unsigned interval, uint64_t now_s)
{
	if (!interval)
		return false;
	if (!*next || now_s + interval < *next) {
		*next = now_s + interval;
		return false;
	}
	if (now_s < *next)
		return false;
	*next = now_s + interval;
	return true;
}

void detector__flush(struct detector *d)
{
	console__flush(d->con);
	if (d->log) {
		anomaly_log__flush(d->log);
		d->st.log_write_errors = anomaly_log__stats(d->log)->errors;
	}
}

void detector__tick(struct detector *d, uint64_t now_s)
{
	reload_if_pending(d);
	console__flush(d->con);
	if (due(&d->next_report_s, d->cfg->report_interval, now_s) && d->report_dirty &&
	    is_set(d->cfg->report_file)) {
		if (report__save(d->rep, d->cfg->report_file) == 0)
			d->report_dirty = false;
	}
	if (d->learn && due(&d->next_map_save_s, d->cfg->learn_save_interval, now_s))
		map_holder__save_async(d->map); /* if anything was learned; the saver writes it */
	map_holder__reloads(d->map, &d->st.map_reloads, &d->st.map_reload_failures);
}

int detector__finish(struct detector *d)
{
	int err = 0, e;

	detector__flush(d);
	if (is_set(d->cfg->report_file)) {
		e = report__save(d->rep, d->cfg->report_file);
		err = err ? err : e;
	}
	e = map_holder__finish(d->map); /* learn mode: the final save, after any running one */
	err = err ? err : e;
	map_holder__reloads(d->map, &d->st.map_reloads, &d->st.map_reload_failures);
	return err;
}

const struct detector_stats *detector__stats(const struct detector *d)
{
	return &d->st;
}
