/* detector.c - the detector thread's work per finished flow: host keys, verdict (or learning),
 * then the sink list (include/svcsensor/sink.h); plus the learn-mode map saves and the SIGHUP
 * reload. The detector knows no output: it hands each flow to the list.
 *
 * The map judged against sits behind an RCU pointer (svcmap_ref): a reload builds a whole new
 * map off to the side and publishes it, so a broken file never replaces a good map and the
 * judging never waits for a load. In learn mode the same pointer holds the map being learned;
 * nothing else reads it, and a reload only reopens the log (the learned map is never dropped). */
#include <urcu.h> /* first: the flavour of the service map's readers */

#include "svcsensor/detector.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/common.h"
#include "svcsensor/rule.h"
#include "svcsensor/service_map.h"
#include "svcsensor/sink.h"

struct detector {
	const struct svc_config *cfg;
	bool learn;
	struct svcmap_ref ref; /* detect: the map judged against; learn: the map being learned */
	struct sink_list sinks; /* every output; closed by detector__finish */
	struct detector_stats st;
	atomic_bool reload_pending;
	uint64_t index; /* running flow index (console lines) */
	uint64_t next_map_save_s;
	bool map_dirty; /* learn mode: flows since the last map save */
	bool learn_error_reported;
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

/* Load the map file for detector__new. NULL only on a real error (message printed). */
static struct svcmap *initial_map(const struct svc_config *cfg, bool learn)
{
	struct svcmap *m;
	bool missing = false;

	if (!is_set(cfg->map_file)) {
		if (learn) {
			svc_err("learn mode: no map_file to write the service map to");
			return NULL;
		}
		svc_warn("no map_file configured, every flow will be UNKNOWN_SOURCE_IP");
		m = svcmap__new();
		goto check_alloc;
	}
	m = svcmap__load(cfg->map_file, &missing);
	if (m)
		return m;
	if (!missing)
		return NULL; /* broken or unreadable: svcmap__load said why */
	if (learn)
		fprintf(stderr, "%s: %s: no service map yet, learning a new one\n", SVC_PROG,
			cfg->map_file);
	else
		svc_warn("%s: no service map yet, every flow will be UNKNOWN_SOURCE_IP",
			 cfg->map_file);
	m = svcmap__new();
check_alloc:
	if (!m)
		svc_err("service map: %s", strerror(ENOMEM));
	return m;
}

struct detector *detector__new(const struct svc_config *cfg, bool learn, FILE *console)
{
	struct detector *d = calloc(1, sizeof(*d));
	struct svcmap *m;

	if (!d) {
		svc_err("detector: %s", strerror(ENOMEM));
		return NULL;
	}
	d->cfg = cfg;
	d->learn = learn;
	atomic_init(&d->reload_pending, false);
	if (!(m = initial_map(cfg, learn)))
		goto fail;
	rcu_assign_pointer(d->ref.map, m); /* no reader yet */
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
	sinks__close(&d->sinks); /* nothing left open after detector__finish */
	/* Nobody reads the map any more: the detector thread is its only reader. */
	svcmap__free(d->ref.map);
	free(d);
}

void detector__request_reload(struct detector *d)
{
	atomic_store_explicit(&d->reload_pending, true, memory_order_release);
}

/* SIGHUP: reopen the log (external logrotate), then in detect mode load the map file again and
 * publish it; a missing or broken file keeps the map in use. */
static void reload(struct detector *d)
{
	const char *path = d->cfg->map_file;
	struct svcmap *m;
	bool missing = false;
	size_t sources = 0, pairs = 0, entries = 0;

	atomic_store_explicit(&d->reload_pending, false, memory_order_relaxed);
	sinks__reopen(&d->sinks);
	if (d->learn || !is_set(path))
		return;
	m = svcmap__load(path, &missing);
	if (!m) {
		d->st.map_reload_failures++;
		if (missing)
			svc_err("%s: cannot reload the service map: %s; keeping the current map",
				path, strerror(ENOENT));
		/* else svcmap__load said where and why, in one line; the summary at exit
		 * counts failed reloads, and the README says the current map stays. */
		return;
	}
	svcmap__size(m, &sources, &pairs, &entries);
	svcmap__publish(&d->ref, m); /* the old map is freed after a grace period */
	d->st.map_reloads++;
	fprintf(stderr, "%s: %s: service map reloaded (%zu sources, %zu pairs, %zu entries)\n",
		SVC_PROG, path, sources, pairs, entries);
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
	int err;

	rcu_read_lock(); /* lock-free hash table updates are made inside a read-side section */
	err = svcmap__learn(rcu_dereference(d->ref.map), src, dst, app, bytes,
			    rec->first_us / SVC_US_PER_MS, rec->last_us / SVC_US_PER_MS);
	rcu_read_unlock();
	if (err && !d->learn_error_reported) {
		d->learn_error_reported = true;
		svc_err("service map: cannot learn %s -> %s %s: %s (further errors not reported)",
			src, dst, app, strerror(-err));
	}
	d->map_dirty = true;
}

enum verdict detector__flow(struct detector *d, const struct flow_record *rec)
{
	char src[HOSTKEY_LEN], dst[HOSTKEY_LEN];
	char app[FLOW_APP_NAME_LEN], master[FLOW_PROTO_NAME_LEN];
	uint64_t bytes = rec->bytes[0] + rec->bytes[1];
	struct sink_flow f = {.rec = rec, .src = src, .dst = dst, .app = app,
			      .verdict = VERDICT_NONE, .learned = d->learn, .index = d->index++};

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
		f.verdict = rule__judge(svcmap__current(&d->ref), d->cfg, src, dst, app, master,
					&f.allowed);
		rcu_read_unlock();
		if (f.allowed) /* silenced by an allow rule: counted NONE */
			d->st.allowed++;
	}
	d->st.per_verdict[f.verdict]++;
	sinks__flow(&d->sinks, &f);
	return f.verdict;
}

static int save_map(struct detector *d)
{
	int err;

	rcu_read_lock();
	err = svcmap__save(rcu_dereference(d->ref.map), d->cfg->map_file);
	rcu_read_unlock();
	if (!err)
		d->map_dirty = false;
	return err;
}

void detector__flush(struct detector *d)
{
	sinks__flush(&d->sinks);
	d->st.log_write_errors = sinks__lost(&d->sinks);
}

void detector__tick(struct detector *d, uint64_t now_s)
{
	reload_if_pending(d);
	sinks__tick(&d->sinks, now_s);
	if (d->learn && svc_due(&d->next_map_save_s, d->cfg->learn_save_interval, now_s) &&
	    d->map_dirty)
		save_map(d);
}

int detector__finish(struct detector *d)
{
	int err, e;

	detector__flush(d);
	err = sinks__close(&d->sinks); /* final report, last log lines */
	if (d->learn) {
		e = save_map(d);
		err = err ? err : e;
	}
	return err;
}

const struct detector_stats *detector__stats(const struct detector *d)
{
	return &d->st;
}
