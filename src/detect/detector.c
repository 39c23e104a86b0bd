/* detector.c - the detector thread's work per finished flow: host keys, verdict (or learning),
 * then the sink list (include/svcsensor/sink.h); plus the learn-mode map saves and the SIGHUP
 * reload. The detector knows no output: it hands each flow to the list.
 *
 * The map judged against is the holder's (src/map/holder.c): a reload is handed to its loader
 * thread, which builds a whole new map off to the side and publishes it under RCU, so a broken
 * file never replaces a good map and the judging never waits for a load. In learn mode the
 * holder keeps the map being learned and its saver thread writes it while learning goes on; a
 * reload only reopens the sinks' files (the learned map is never dropped). */
#include <urcu.h> /* first: the flavour of the service map's readers */

#include "svcsensor/detector.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/common.h"
#include "svcsensor/map_holder.h"
#include "svcsensor/rule.h"
#include "svcsensor/service_map.h"
#include "svcsensor/sink.h"

struct detector {
	const struct svc_config *cfg;
	bool learn;
	struct map_holder *map; /* detect: the map judged against; learn: the map being learned */
	struct sink_list sinks; /* every output; closed by detector__finish */
	struct detector_stats st;
	atomic_bool reload_pending;
	uint64_t index; /* running flow index (console lines) */
	uint64_t next_map_save_s;
	bool learn_error_reported;
	int learn_err; /* errno of the last observation the map refused */

	/* The loss figures as of the last refresh, for any thread (the stats line). */
	pthread_mutex_t losses_lock;
	struct detector_loss losses[DETECTOR_LOSSES_MAX];
	unsigned n_losses;
};

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
	pthread_mutex_init(&d->losses_lock, NULL);
	if (!(d->map = map_holder__new(cfg, learn)))
		goto fail;
	struct sink_env env = {.cfg = cfg, .learn = learn, .console = console};
	if (sinks__open(&d->sinks, &env) != 0)
		goto fail; /* the sink said why */
	return d;
fail:
	detector__free(d);
	return NULL;
}

void detector__free(struct detector *d)
{
	if (!d)
		return;
	sinks__close(&d->sinks, false); /* open only if detector__finish was not called */
	map_holder__free(d->map);	/* stops its loader / saver thread, frees the map */
	pthread_mutex_destroy(&d->losses_lock);
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
	sinks__reopen(&d->sinks);
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
		       const char *dst, const char *app, uint64_t bytes)
{
	int err = map_holder__learn(d->map, src, dst, app, bytes, rec->first_us / SVC_US_PER_MS,
				    rec->last_us / SVC_US_PER_MS);

	if (!err)
		return;
	d->st.learn_lost++;
	d->learn_err = -err;
	if (!d->learn_error_reported) {
		d->learn_error_reported = true;
		svc_err("service map: cannot learn %s -> %s %s: %s (further errors not reported)",
			src, dst, app, strerror(-err));
	}
}

enum verdict detector__flow(struct detector *d, const struct flow_record *rec)
{
	char src[HOSTKEY_LEN], dst[HOSTKEY_LEN];
	char app[FLOW_APP_NAME_LEN], master[FLOW_PROTO_NAME_LEN];
	uint64_t bytes = rec->bytes[0] + rec->bytes[1];
	struct sink_flow f = {.rec = rec,
			      .src = src,
			      .dst = dst,
			      .app = app,
			      .verdict = VERDICT_NONE,
			      .learned = d->learn,
			      .index = d->index++};

	reload_if_pending(d);
	hostkey__of(d->cfg, rec->key.src, rec->key.ipver, src);
	hostkey__of(d->cfg, rec->key.dst, rec->key.ipver, dst);
	name_copy(app, rec->app_name, sizeof(app));
	name_copy(master, rec->master_name, sizeof(master));
	d->st.flows++;

	if (d->learn) {
		learn_flow(d, rec, src, dst, app, bytes);
	} else {
		rcu_read_lock();
		f.verdict = rule__judge(map_holder__current(d->map), d->cfg, src, dst, app, master,
					&f.allowed);
		rcu_read_unlock();
		if (f.allowed) /* silenced by an allow rule: counted NONE */
			d->st.allowed++;
	}
	d->st.per_verdict[f.verdict]++;
	sinks__flow(&d->sinks, &f);
	return f.verdict;
}

/* Under the lock: one figure into the snapshot (a sink with more than fit is cut). */
static void add_loss(void *ctx, const char *sink, const struct sink_loss *f)
{
	struct detector *d = ctx;

	if (d->n_losses < DETECTOR_LOSSES_MAX)
		d->losses[d->n_losses++] = (struct detector_loss){.source = sink,
								  .what = f->what,
								  .count = f->count,
								  .err = f->err,
								  .benign = f->benign};
}

/* Take the sinks' figures for the stats line and the summary (detector thread). */
static void refresh_losses(struct detector *d)
{
	pthread_mutex_lock(&d->losses_lock);
	d->n_losses = 0;
	sinks__losses(&d->sinks, add_loss, d);
	if (d->learn)
		add_loss(d, "service_map",
			 &(struct sink_loss){.what = "observations",
					     .count = d->st.learn_lost,
					     .err = d->learn_err});
	pthread_mutex_unlock(&d->losses_lock);
}

unsigned detector__losses(struct detector *d, struct detector_loss *out, unsigned max)
{
	unsigned n;

	pthread_mutex_lock(&d->losses_lock);
	n = d->n_losses < max ? d->n_losses : max;
	memcpy(out, d->losses, n * sizeof(*out));
	pthread_mutex_unlock(&d->losses_lock);
	return n;
}

void detector__flush(struct detector *d)
{
	sinks__flush(&d->sinks);
	d->st.output_lost = sinks__lost(&d->sinks);
}

void detector__tick(struct detector *d, uint64_t now_s)
{
	reload_if_pending(d);
	sinks__tick(&d->sinks, now_s);
	if (d->learn && svc_due(&d->next_map_save_s, d->cfg->learn_save_interval, now_s))
		map_holder__save_async(d->map); /* if anything was learned; the saver writes it */
	map_holder__reloads(d->map, &d->st.map_reloads, &d->st.map_reload_failures);
	refresh_losses(d);
}

int detector__finish(struct detector *d)
{
	int err, e;

	detector__flush(d);
	refresh_losses(d);		     /* after the last write, while the sinks still exist */
	err = sinks__close(&d->sinks, true); /* final report, last log lines */
	e = map_holder__finish(d->map);	     /* learn mode: the final save, after any running one */
	err = err ? err : e;
	map_holder__reloads(d->map, &d->st.map_reloads, &d->st.map_reload_failures);
	return err;
}

const struct detector_stats *detector__stats(const struct detector *d)
{
	return &d->st;
}
