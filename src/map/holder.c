/* holder.c - the map in force of a run (include/svcsensor/map_holder.h): the initial load, then
 * one background thread that carries out what would otherwise stall the detector thread on a
 * disk: the SIGHUP reload (detect mode) and the periodic saves (learn mode).
 *
 * Why it is safe:
 *   - reload: the loader builds the new map privately (svcmap__load), then svcmap__publish
 *     swaps it in with rcu_xchg_pointer and waits a grace period on the loader thread before
 *     freeing the old map: the detector, which reads under rcu_read_lock, never waits. The
 *     counters are raised after the swap, so once the detector sees them the new map is in
 *     force.
 *   - save: in learn mode the map is never swapped; the detector thread is its one writer and
 *     the saver walks it as a concurrent reader, which src/map/store.c supports (Concurrency:
 *     every node is published whole with a release store). The save is asked for under the
 *     holder's lock, so everything learned before the request happened before the walk and is
 *     in the file; what is learned during the walk may be. The final save (map_holder__finish)
 *     runs after the thread has stopped and nothing learns any more: it holds everything.
 *
 * Jobs: at most one running and one of each kind queued (requests coalesce). The lock guards
 * the job state and the counters; the map is never touched under it. */
#include <urcu.h> /* memb flavour, as the service map's readers */

#include "svcsensor/map_holder.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svcsensor/common.h"
#include "svcsensor/service_map.h"

enum { JOB_RELOAD = 1, JOB_SAVE = 2 };

struct map_holder {
	const struct svc_config *cfg;
	bool learn;
	struct svcmap_ref ref; /* detect: the map judged against; learn: the map being learned */
	uint64_t learned;      /* learn mode: observations so far (the writer's own) */

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t wake;  /* a job was queued, or stop */
	pthread_cond_t idle;  /* a job ended */
	pthread_t thread;
	bool started, start_failed, stop, finished;
	unsigned jobs;	    /* queued: JOB_RELOAD | JOB_SAVE */
	bool busy;	    /* a job is running */
	uint64_t save_gen;  /* learned when the queued save was asked for */
	uint64_t saved_gen; /* learned when the last successful save was asked for */
	uint64_t reloads, reload_failures;
};

static bool is_set(const char *s)
{
	return s && *s;
}

/* The map file at start-up. NULL only on a real error (message printed). */
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

struct map_holder *map_holder__new(const struct svc_config *cfg, bool learn)
{
	struct map_holder *h = calloc(1, sizeof(*h));
	struct svcmap *m;

	if (!h) {
		svc_err("service map: %s", strerror(ENOMEM));
		return NULL;
	}
	h->cfg = cfg;
	h->learn = learn;
	if (!(m = initial_map(cfg, learn))) {
		free(h);
		return NULL;
	}
	rcu_assign_pointer(h->ref.map, m); /* no reader yet */
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->wake, NULL);
	pthread_cond_init(&h->idle, NULL);
	return h;
}

const struct svcmap *map_holder__current(struct map_holder *h)
{
	return svcmap__current(&h->ref);
}

int map_holder__learn(struct map_holder *h, const char *src, const char *dst, const char *app,
		      uint64_t bytes, uint64_t first_ms, uint64_t last_ms)
{
	h->learned++;
	/* The one writer: in learn mode the map is never swapped, so no read-side section is
	 * needed to keep it. */
	return svcmap__learn(h->ref.map, src, dst, app, bytes, first_ms, last_ms);
}

/* Loader: parse the map file off the detector thread, swap it in, free the old map after a
 * grace period (here, not on the detector thread). A missing or broken file keeps the map in
 * force. */
static void do_reload(struct map_holder *h)
{
	const char *path = h->cfg->map_file;
	struct svcmap *m;
	bool missing = false;
	size_t sources = 0, pairs = 0, entries = 0;

	m = svcmap__load(path, &missing);
	if (!m) {
		if (missing)
			svc_err("%s: cannot reload the service map: %s; keeping the current map",
				path, strerror(ENOENT));
		/* else svcmap__load said where and why, in one line; the summary at exit
		 * counts failed reloads, and the README says the current map stays. */
		pthread_mutex_lock(&h->lock);
		h->reload_failures++;
		pthread_mutex_unlock(&h->lock);
		return;
	}
	svcmap__size(m, &sources, &pairs, &entries);
	svcmap__publish(&h->ref, m); /* the old map is freed after a grace period */
	pthread_mutex_lock(&h->lock);
	h->reloads++;
	pthread_mutex_unlock(&h->lock);
	fprintf(stderr, "%s: %s: service map reloaded (%zu sources, %zu pairs, %zu entries)\n",
		SVC_PROG, path, sources, pairs, entries);
}

/* Saver: write the map while the detector keeps learning into it. gen = what had been learned
 * when the save was asked for. */
static void do_save(struct map_holder *h, uint64_t gen)
{
	if (svcmap__save(h->ref.map, h->cfg->map_file) != 0)
		return; /* said why; the map stays dirty and the next interval tries again */
	pthread_mutex_lock(&h->lock);
	if (gen > h->saved_gen)
		h->saved_gen = gen;
	pthread_mutex_unlock(&h->lock);
}

static void do_job(struct map_holder *h, unsigned job, uint64_t gen)
{
	if (job == JOB_RELOAD)
		do_reload(h);
	else
		do_save(h, gen);
}

static void *holder_run(void *arg)
{
	struct map_holder *h = arg;

	rcu_register_thread();
	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (!h->jobs && !h->stop)
			pthread_cond_wait(&h->wake, &h->lock);
		if (h->stop)
			break;
		unsigned job = h->jobs & JOB_RELOAD ? JOB_RELOAD : JOB_SAVE;
		uint64_t gen = h->save_gen;
		h->jobs &= ~(unsigned)job;
		h->busy = true;
		pthread_mutex_unlock(&h->lock);
		do_job(h, job, gen);
		pthread_mutex_lock(&h->lock);
		h->busy = false;
		pthread_cond_broadcast(&h->idle);
	}
	pthread_mutex_unlock(&h->lock);
	rcu_unregister_thread();
	return NULL;
}

/* Under the lock: start the background thread if it is not running. Every signal is blocked
 * in it: SIGINT, SIGTERM and SIGHUP are taken by the main thread with sigtimedwait
 * (src/pipeline.c), and one delivered here would end the process. false if it cannot start. */
static bool thread_ready(struct map_holder *h)
{
	sigset_t all, old;
	int rc;

	if (h->started || h->start_failed)
		return h->started;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&h->thread, NULL, holder_run, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		h->start_failed = true;
		svc_warn("service map: no background thread (%s): loading and saving on the "
			 "detector thread",
			 strerror(rc));
		return false;
	}
	h->started = true;
	return true;
}

/* Queue a job for the background thread, or run it here if the thread cannot start. */
static void submit(struct map_holder *h, unsigned job)
{
	uint64_t gen;

	pthread_mutex_lock(&h->lock);
	if (h->finished) {
		pthread_mutex_unlock(&h->lock);
		return;
	}
	if (job == JOB_SAVE) {
		/* Nothing new since the last good save, or since the save queued or running. */
		if (h->learned == h->saved_gen ||
		    (h->learned == h->save_gen && (h->busy || (h->jobs & JOB_SAVE)))) {
			pthread_mutex_unlock(&h->lock);
			return;
		}
		h->save_gen = h->learned;
	}
	gen = h->save_gen;
	if (thread_ready(h)) {
		h->jobs |= job;
		pthread_cond_signal(&h->wake);
		pthread_mutex_unlock(&h->lock);
		return;
	}
	pthread_mutex_unlock(&h->lock);
	do_job(h, job, gen);
}

void map_holder__reload(struct map_holder *h)
{
	if (h->learn || !is_set(h->cfg->map_file))
		return; /* the map being learned is never replaced */
	submit(h, JOB_RELOAD);
}

void map_holder__save_async(struct map_holder *h)
{
	if (h->learn)
		submit(h, JOB_SAVE);
}

void map_holder__wait_idle(struct map_holder *h)
{
	pthread_mutex_lock(&h->lock);
	while (h->started && !h->stop && (h->busy || h->jobs))
		pthread_cond_wait(&h->idle, &h->lock);
	pthread_mutex_unlock(&h->lock);
}

void map_holder__reloads(struct map_holder *h, uint64_t *done, uint64_t *failed)
{
	pthread_mutex_lock(&h->lock);
	*done = h->reloads;
	*failed = h->reload_failures;
	pthread_mutex_unlock(&h->lock);
}

/* Let a running job end, drop queued ones, join the thread. Later jobs are refused. */
static void stop_thread(struct map_holder *h)
{
	bool join;

	pthread_mutex_lock(&h->lock);
	h->finished = true;
	h->stop = true;
	h->jobs = 0;
	join = h->started;
	h->started = false;
	pthread_cond_broadcast(&h->wake);
	pthread_mutex_unlock(&h->lock);
	if (join)
		pthread_join(h->thread, NULL);
}

/* The fallback names of path: "PATH.unsaved-YYYYmmddTHHMMSSZ-PID" beside it, and the same
 * name in $TMPDIR (/tmp when unset). No other run uses them (the pid), so a fallback never
 * replaces an earlier one. 0 or -ENOMEM. */
static int fallback_names(const char *path, char **beside, char **in_tmp)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	const char *tmpdir = getenv("TMPDIR");
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	if (!tmpdir || !*tmpdir)
		tmpdir = "/tmp";
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
	*beside = *in_tmp = NULL;
	if (asprintf(beside, "%s.unsaved-%s-%ld", path, stamp, (long)getpid()) < 0)
		*beside = NULL;
	if (asprintf(in_tmp, "%s/%s.unsaved-%s-%ld", tmpdir, base, stamp, (long)getpid()) < 0)
		*in_tmp = NULL;
	return *beside && *in_tmp ? 0 : -ENOMEM;
}

/* The final save failed with err: nothing learned may be lost, so the map goes to a fallback
 * file, beside the map file or else in $TMPDIR, and one line says where (each failed attempt
 * printed its own line: svcmap__save). Returns err: the run's status says the map file is
 * not up to date. */
static int save_fallback(struct map_holder *h, const struct svcmap *m, int err)
{
	const char *path = h->cfg->map_file;
	char *beside, *in_tmp;
	int e1 = ENOMEM, e2 = ENOMEM;

	if (fallback_names(path, &beside, &in_tmp) == 0) {
		if ((e1 = -svcmap__save(m, beside)) == 0) {
			svc_err("%s: the learned map could not be saved (%s); it is in %s instead "
				"(move it to %s to use it)",
				path, strerror(-err), beside, path);
		} else if ((e2 = -svcmap__save(m, in_tmp)) == 0) {
			svc_err("%s: the learned map could not be saved (%s), nor beside it (%s); "
				"it is in %s instead (move it to %s to use it)",
				path, strerror(-err), strerror(e1), in_tmp, path);
		}
	}
	if (e1 && e2)
		svc_err("%s: the learned map could not be saved (%s), nor to %s (%s), nor to %s "
			"(%s): what this run learned is lost",
			path, strerror(-err), beside ? beside : "a fallback", strerror(e1),
			in_tmp ? in_tmp : "$TMPDIR", strerror(e2));
	free(beside);
	free(in_tmp);
	return err;
}

int map_holder__finish(struct map_holder *h)
{
	const struct svcmap *m;
	int err;

	stop_thread(h);
	if (!h->learn)
		return 0;
	/* Nothing learns any more and no save runs: this one holds everything. The map being
	 * learned is never swapped, so it stays valid without a read-side section. */
	m = h->ref.map;
	rcu_read_lock();
	err = svcmap__save(m, h->cfg->map_file);
	rcu_read_unlock();
	if (!err)
		h->saved_gen = h->learned;
	else
		save_fallback(h, m, err);
	return err;
}

void map_holder__free(struct map_holder *h)
{
	if (!h)
		return;
	stop_thread(h);
	/* No reader is left: the detector is done with it and the background thread is joined. */
	svcmap__free(h->ref.map);
	pthread_cond_destroy(&h->idle);
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
