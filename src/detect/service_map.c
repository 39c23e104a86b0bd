/* service_map.c - the learned service map: map[source][destination] = {application: counters}.
 *
 * In memory (why this shape): the detector asks, per flow, "is app in map[src][dst]?", and the
 * answer is yes for almost every flow. So that answer costs one hash-table probe:
 *   - m->pairs:   rculfhash of struct svc_pair keyed by hash(src, dst). The pair node holds both
 *                 key strings inline (matching it touches no other node) and its application
 *                 set: an array of (hash, entry) slots, scanned comparing 64-bit hashes first.
 *   - m->sources: rculfhash of struct svc_src keyed by hash(src), only asked when the pair is
 *                 missing (UNKNOWN_SOURCE_IP vs UNKNOWN_DESTINATION_IP) and for has_source.
 * Each key string is hashed once per lookup (svcmap__lookup). Two flat tables rather than a
 * table per source: a nested rculfhash per source would cost a bucket array each for nothing.
 *
 * Concurrency: nothing is removed or changed while the map lives, except counters and appends,
 * so readers are lock-free and safe even while a writer adds entries: lfht adds are RCU-safe;
 * an application set is appended in place (slot written, then its count published with a
 * release store) and, when full, copied into a set twice the size that is published with a
 * release store, the old set being kept until the map is freed (a reader may still scan it;
 * the retired sets add at most the size of the live ones); the all-sources / all-pairs lists
 * are prepended with release stores; counters are relaxed atomics (each counter is whole, the
 * four of an entry are not one snapshot). In practice the only cross-thread case is
 * svcmap__publish (SIGHUP reload): the detector is the sole reader and, in learn mode, the sole
 * writer. A map is destroyed whole (svcmap__free) once no reader can hold it: svcmap__publish
 * waits a grace period (synchronize_rcu) first. call_rcu is not used because cds_lfht_destroy
 * must not run in a call_rcu thread.
 *
 * ThreadSanitizer cannot see liburcu's own synchronisation (uninstrumented library, inline
 * asm), so TSan builds add the happens-before edges it implies with __tsan_acquire/release:
 * node publication (add -> match), map publication (publish -> current) and grace periods
 * (end of every lookup -> free after synchronize_rcu). They compile to nothing otherwise. */
#include <urcu.h> /* memb flavour; must come before rculfhash.h */
#include <urcu/rculfhash.h>

#include "svcsensor/service_map.h"
#include "svcsensor/json_util.h"
#include "svcsensor/tsan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "svcsensor/common.h"

#define MAP_FORMAT "svcsensor-map"
#define MAP_VERSION 1
#define NAME_MAX_LEN 255		  /* host keys and application names */
#define COUNTER_MAX ((uint64_t)INT64_MAX) /* what JSON readers (jansson) take back */

#ifdef SVC_TSAN
static char grace_sync; /* stands for "every read-side section that ended" */

/* liburcu-cds 0.13 hands work to its resize worker thread (urcu workqueue: table creation,
 * auto-resize, destroy) through futexes and inline-asm atomics that TSan cannot see, so it
 * reports the worker freeing what the caller allocated. Those are the library's internals, not
 * ours: ignore what liburcu-cds itself does through intercepted calls (malloc, free, mutexes).
 * Our own accesses to nodes stay checked (see the annotations above). If another module needs
 * TSan suppressions too, merge them here: a program has one __tsan_default_suppressions. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "called_from_lib:liburcu-cds.so\n";
}
#endif

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define LOAD_PTR(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define PUBLISH_PTR(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

struct svc_app {
	uint64_t flows, bytes, first_ms, last_ms; /* relaxed atomics */
	char name[];
};

/* The applications of a pair. Slots [0, n) are complete; n is published with a release store.
 * Grown by copying into a set twice the size; the old one goes on m->retired. */
struct app_slot {
	uint64_t hash;
	struct svc_app *app;
};
struct app_set {
	struct app_set *retired_next;
	uint32_t cap;
	uint32_t n;
	struct app_slot slot[];
};

struct svc_src {
	struct cds_lfht_node node; /* in m->sources */
	struct svc_src *all_next;  /* m->all_sources, immutable once published */
	char key[];
};

struct svc_pair {
	struct cds_lfht_node node; /* in m->pairs */
	const struct svc_src *src;
	struct svc_pair *all_next; /* m->all_pairs, immutable once published */
	struct app_set *apps;	   /* NULL = none yet; published with a release store */
	const char *dst;	   /* = keys + strlen(src) + 1 */
	char keys[];		   /* "src\0dst\0" */
};

struct svcmap {
	struct cds_lfht *sources;
	struct cds_lfht *pairs;
	uint64_t seed;
	struct svc_src *all_sources; /* every node, for iteration and free (no lfht walk) */
	struct svc_pair *all_pairs;
	struct app_set *retired;	      /* outgrown application sets, freed with the map */
	size_t n_sources, n_pairs, n_entries; /* relaxed atomics */
};

/* ---- hashing ------------------------------------------------------------------------------- */

static uint64_t hash_seed;
static pthread_once_t hash_seed_once = PTHREAD_ONCE_INIT;

/* A per-process random seed: remote keys come from the network (remote_mode address), and a
 * fixed hash would let traffic pick long bucket chains. */
static void hash_seed_init(void)
{
	uint64_t s = 0;
	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)getpid();
	}
	hash_seed = flow__mix64(s);
}

static uint64_t str_hash(uint64_t seed, const char *s)
{
	size_t len = strlen(s);
	uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL), w;

	for (; len >= 8; s += 8, len -= 8) {
		memcpy(&w, s, 8);
		h = flow__mix64(h ^ w) * 0x9e3779b97f4a7c15ULL;
	}
	w = 0;
	memcpy(&w, s, len);
	return flow__mix64(h ^ w);
}

static uint64_t pair_hash(uint64_t hsrc, uint64_t hdst)
{
	/* Asymmetric: (a, b) and (b, a) are different pairs. */
	return flow__mix64(hsrc * 0xff51afd7ed558ccdULL + hdst);
}

/* ---- lookups ------------------------------------------------------------------------------- */

struct pair_key {
	const char *src;
	const char *dst;
};

static int src_match(struct cds_lfht_node *node, const void *key)
{
	const struct svc_src *s = caa_container_of(node, struct svc_src, node);
	tsan_acquire(s);
	return strcmp(s->key, (const char *)key) == 0;
}

static int pair_match(struct cds_lfht_node *node, const void *key)
{
	const struct svc_pair *p = caa_container_of(node, struct svc_pair, node);
	const struct pair_key *k = key;
	tsan_acquire(p);
	return strcmp(p->keys, k->src) == 0 && strcmp(p->dst, k->dst) == 0;
}

static struct svc_src *find_src(const struct svcmap *m, const char *key, uint64_t h)
{
	struct cds_lfht_iter it;
	cds_lfht_lookup(m->sources, h, src_match, key, &it);
	struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
	return n ? caa_container_of(n, struct svc_src, node) : NULL;
}

static struct svc_pair *find_pair(const struct svcmap *m, uint64_t h, const char *src,
				  const char *dst)
{
	struct cds_lfht_iter it;
	struct pair_key k = {.src = src, .dst = dst};
	cds_lfht_lookup(m->pairs, h, pair_match, &k, &it);
	struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
	return n ? caa_container_of(n, struct svc_pair, node) : NULL;
}

static struct svc_app *find_app(const struct svc_pair *p, uint64_t h, const char *app)
{
	const struct app_set *set = LOAD_PTR(p->apps);
	if (!set)
		return NULL;
	uint32_t n = __atomic_load_n(&set->n, __ATOMIC_ACQUIRE);
	for (uint32_t i = 0; i < n; i++)
		if (set->slot[i].hash == h && strcmp(set->slot[i].app->name, app) == 0)
			return set->slot[i].app;
	return NULL;
}

/* The common walk: how far (src, dst, app) gets. dst / app NULL stop early. The pair is asked
 * first: when it exists the source does too, and that is the common case. */
static enum svcmap_match locate(const struct svcmap *m, const char *src, const char *dst,
				const char *app, struct svc_app **found)
{
	enum svcmap_match r = SVCMAP_NO_SOURCE;
	const struct svc_pair *p;
	struct svc_app *a;
	uint64_t hs;

	if (!m || !src)
		goto out;
	hs = str_hash(m->seed, src);
	p = dst ? find_pair(m, pair_hash(hs, str_hash(m->seed, dst)), src, dst) : NULL;
	if (!p) {
		if (find_src(m, src, hs))
			r = SVCMAP_NO_DESTINATION;
		goto out;
	}
	r = SVCMAP_NO_APP;
	if (!app)
		goto out;
	a = find_app(p, str_hash(m->seed, app), app);
	if (!a)
		goto out;
	r = SVCMAP_MATCH;
	if (found)
		*found = a;
out:
	tsan_release(&grace_sync);
	return r;
}

enum svcmap_match svcmap__lookup(const struct svcmap *m, const char *src, const char *dst,
				 const char *app)
{
	return locate(m, src, dst, app, NULL);
}

bool svcmap__has_source(const struct svcmap *m, const char *src)
{
	return locate(m, src, NULL, NULL, NULL) != SVCMAP_NO_SOURCE;
}

bool svcmap__has_pair(const struct svcmap *m, const char *src, const char *dst)
{
	enum svcmap_match r = locate(m, src, dst, NULL, NULL);
	return r == SVCMAP_NO_APP || r == SVCMAP_MATCH;
}

bool svcmap__has_app(const struct svcmap *m, const char *src, const char *dst, const char *app)
{
	return locate(m, src, dst, app, NULL) == SVCMAP_MATCH;
}

static void counters_read(const struct svc_app *a, struct svcmap_counters *out)
{
	out->flows = LOAD(a->flows);
	out->bytes = LOAD(a->bytes);
	out->first_ms = LOAD(a->first_ms);
	out->last_ms = LOAD(a->last_ms);
}

bool svcmap__get(const struct svcmap *m, const char *src, const char *dst, const char *app,
		 struct svcmap_counters *out)
{
	struct svc_app *a = NULL;
	if (locate(m, src, dst, app, &a) != SVCMAP_MATCH)
		return false;
	if (out)
		counters_read(a, out);
	tsan_release(&grace_sync);
	return true;
}

void svcmap__size(const struct svcmap *m, size_t *sources, size_t *pairs, size_t *entries)
{
	if (sources)
		*sources = m ? LOAD(m->n_sources) : 0;
	if (pairs)
		*pairs = m ? LOAD(m->n_pairs) : 0;
	if (entries)
		*entries = m ? LOAD(m->n_entries) : 0;
}

/* ---- construction -------------------------------------------------------------------------- */

static unsigned long pow2_at_least(size_t n)
{
	unsigned long s = 16;
	while (s < n && s < (1UL << 22))
		s <<= 1;
	return s;
}

/* A map whose tables start large enough for the given counts (a loaded map is not resized
 * while readers use it). */
static struct svcmap *map_new_sized(size_t n_sources, size_t n_pairs)
{
	const int flags = CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING;
	struct svcmap *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	pthread_once(&hash_seed_once, hash_seed_init);
	m->seed = hash_seed;
	m->sources = cds_lfht_new(pow2_at_least(n_sources), 16, 0, flags, NULL);
	m->pairs = cds_lfht_new(pow2_at_least(n_pairs), 16, 0, flags, NULL);
	if (!m->sources || !m->pairs) {
		if (m->sources)
			cds_lfht_destroy(m->sources, NULL);
		if (m->pairs)
			cds_lfht_destroy(m->pairs, NULL);
		free(m);
		return NULL;
	}
	return m;
}

struct svcmap *svcmap__new(void)
{
	return map_new_sized(0, 0);
}

void svcmap__free(struct svcmap *m)
{
	struct svc_src *s, *snext;
	struct svc_pair *p, *pnext;
	struct app_set *set, *setnext;

	if (!m)
		return;
	/* cds_lfht_destroy wants empty tables. Nodes are freed only after the tables are
	 * destroyed: that also waits for a resize worker that might still walk them. */
	rcu_read_lock();
	for (p = m->all_pairs; p; p = p->all_next)
		cds_lfht_del(m->pairs, &p->node);
	for (s = m->all_sources; s; s = s->all_next)
		cds_lfht_del(m->sources, &s->node);
	rcu_read_unlock();
	if (cds_lfht_destroy(m->pairs, NULL) != 0 || cds_lfht_destroy(m->sources, NULL) != 0)
		svc_warn("service map: hash table not destroyed (leaked)");

	for (p = m->all_pairs; p; p = pnext) {
		pnext = p->all_next;
		if (p->apps) {
			for (uint32_t i = 0; i < p->apps->n; i++)
				free(p->apps->slot[i].app);
			free(p->apps);
		}
		free(p);
	}
	for (set = m->retired; set; set = setnext) {
		setnext = set->retired_next;
		free(set);
	}
	for (s = m->all_sources; s; s = snext) {
		snext = s->all_next;
		free(s);
	}
	free(m);
}

/* Host keys and application names: 1..255 bytes of valid UTF-8 without control characters, so
 * that every learned name can be saved as JSON and loaded back. */
static bool name_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	if (!s || !*s)
		return false;
	while (*p) {
		unsigned c = *p, extra;
		uint32_t cp;
		if (c < 0x20 || c == 0x7f)
			return false;
		if (c < 0x80) {
			p++;
			n++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			extra = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			extra = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			extra = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (unsigned i = 1; i <= extra; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		p += extra + 1;
		n += extra + 1;
	}
	return n <= NAME_MAX_LEN;
}

/* Writer side: find or add. Single writer per map. Caller holds rcu_read_lock(). */
static int get_src(struct svcmap *m, const char *key, uint64_t h, struct svc_src **out)
{
	struct svc_src *s = find_src(m, key, h);
	if (!s) {
		size_t len = strlen(key);
		if (!name_ok(key))
			return -EINVAL;
		s = malloc(sizeof(*s) + len + 1);
		if (!s)
			return -ENOMEM;
		memcpy(s->key, key, len + 1);
		cds_lfht_node_init(&s->node);
		s->all_next = m->all_sources;
		tsan_release(s);
		cds_lfht_add(m->sources, h, &s->node);
		PUBLISH_PTR(m->all_sources, s);
		STORE(m->n_sources, m->n_sources + 1);
	}
	*out = s;
	return 0;
}

static int get_pair(struct svcmap *m, const struct svc_src *s, uint64_t h, const char *dst,
		    struct svc_pair **out)
{
	struct svc_pair *p = find_pair(m, h, s->key, dst);
	if (!p) {
		size_t slen = strlen(s->key), dlen = strlen(dst);
		if (!name_ok(dst))
			return -EINVAL;
		p = malloc(sizeof(*p) + slen + 1 + dlen + 1);
		if (!p)
			return -ENOMEM;
		memcpy(p->keys, s->key, slen + 1);
		memcpy(p->keys + slen + 1, dst, dlen + 1);
		p->dst = p->keys + slen + 1;
		p->src = s;
		p->apps = NULL;
		cds_lfht_node_init(&p->node);
		p->all_next = m->all_pairs;
		tsan_release(p);
		cds_lfht_add(m->pairs, h, &p->node);
		PUBLISH_PTR(m->all_pairs, p);
		STORE(m->n_pairs, m->n_pairs + 1);
	}
	*out = p;
	return 0;
}

/* Append (h, a) to the pair's set: in place while there is room, else into a copy twice the
 * size (the old set is retired, not freed: a reader may be scanning it). */
static int app_set_append(struct svcmap *m, struct svc_pair *p, uint64_t h, struct svc_app *a)
{
	struct app_set *set = p->apps;
	if (!set || set->n == set->cap) {
		uint32_t cap = set ? set->cap * 2 : 4;
		struct app_set *bigger = malloc(sizeof(*bigger) + cap * sizeof(bigger->slot[0]));
		if (!bigger)
			return -ENOMEM;
		bigger->cap = cap;
		bigger->n = set ? set->n : 0;
		bigger->retired_next = NULL;
		if (set)
			memcpy(bigger->slot, set->slot, set->n * sizeof(set->slot[0]));
		PUBLISH_PTR(p->apps, bigger);
		if (set) {
			set->retired_next = m->retired;
			m->retired = set;
		}
		set = bigger;
	}
	set->slot[set->n].hash = h;
	set->slot[set->n].app = a;
	__atomic_store_n(&set->n, set->n + 1, __ATOMIC_RELEASE);
	return 0;
}

static int get_app(struct svcmap *m, struct svc_pair *p, const char *app, struct svc_app **out)
{
	uint64_t h = str_hash(m->seed, app);
	struct svc_app *a = find_app(p, h, app);
	if (!a) {
		size_t len = strlen(app);
		if (!name_ok(app))
			return -EINVAL;
		a = calloc(1, sizeof(*a) + len + 1);
		if (!a)
			return -ENOMEM;
		memcpy(a->name, app, len + 1);
		if (app_set_append(m, p, h, a) != 0) {
			free(a);
			return -ENOMEM;
		}
		STORE(m->n_entries, m->n_entries + 1);
	}
	*out = a;
	return 0;
}

/* Find or add (src[, dst[, app]]); NULL dst / app stop early. */
static int get_entry(struct svcmap *m, const char *src, const char *dst, const char *app,
		     struct svc_app **out)
{
	struct svc_src *s;
	struct svc_pair *p;
	uint64_t hs = str_hash(m->seed, src);
	int err;

	rcu_read_lock();
	err = get_src(m, src, hs, &s);
	if (!err && dst)
		err = get_pair(m, s, pair_hash(hs, str_hash(m->seed, dst)), dst, &p);
	if (!err && dst && app)
		err = get_app(m, p, app, out);
	rcu_read_unlock();
	return err;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return (a > COUNTER_MAX - (b > COUNTER_MAX ? COUNTER_MAX : b)) ? COUNTER_MAX : a + b;
}

static void counters_add(struct svc_app *a, const struct svcmap_counters *c)
{
	uint64_t first = LOAD(a->first_ms), last = LOAD(a->last_ms);
	STORE(a->flows, sat_add(LOAD(a->flows), c->flows));
	STORE(a->bytes, sat_add(LOAD(a->bytes), c->bytes));
	/* first_ms 0 = unknown */
	if (c->first_ms && (!first || c->first_ms < first))
		STORE(a->first_ms, c->first_ms);
	if (c->last_ms > last)
		STORE(a->last_ms, c->last_ms);
}

int svcmap__learn(struct svcmap *m, const char *src, const char *dst, const char *app,
		  uint64_t bytes, uint64_t first_ms, uint64_t last_ms)
{
	struct svc_app *a;
	struct svcmap_counters c = {
	    .flows = 1, .bytes = bytes, .first_ms = first_ms, .last_ms = last_ms};
	int err;

	if (!m || !src || !dst || !app)
		return -EINVAL;
	err = get_entry(m, src, dst, app, &a);
	if (err)
		return err;
	counters_add(a, &c);
	return 0;
}

int svcmap__merge(struct svcmap *into, const struct svcmap *from)
{
	int err = 0;

	if (!into || into == from)
		return -EINVAL;
	if (!from)
		return 0;
	/* Empty sources and pairs (possible in a hand-edited file) are carried over too. */
	for (const struct svc_src *s = LOAD_PTR(from->all_sources); s && !err; s = s->all_next)
		err = get_entry(into, s->key, NULL, NULL, NULL);
	for (const struct svc_pair *p = LOAD_PTR(from->all_pairs); p && !err; p = p->all_next) {
		err = get_entry(into, p->src->key, p->dst, NULL, NULL);
		const struct app_set *set = LOAD_PTR(p->apps);
		uint32_t n = set ? __atomic_load_n(&set->n, __ATOMIC_ACQUIRE) : 0;
		for (uint32_t i = 0; i < n && !err; i++) {
			const struct svc_app *a = set->slot[i].app;
			struct svc_app *to;
			struct svcmap_counters c;
			err = get_entry(into, p->src->key, p->dst, a->name, &to);
			if (!err) {
				counters_read(a, &c);
				counters_add(to, &c);
			}
		}
	}
	return err;
}

/* ---- sorted iteration ---------------------------------------------------------------------- */

struct sorted {
	const struct svc_src **src;
	size_t n_src;
	const struct svc_pair **pair;
	size_t n_pair;
};

static int cmp_src(const void *a, const void *b)
{
	const struct svc_src *x = *(const struct svc_src *const *)a;
	const struct svc_src *y = *(const struct svc_src *const *)b;
	return strcmp(x->key, y->key);
}

static int cmp_pair(const void *a, const void *b)
{
	const struct svc_pair *x = *(const struct svc_pair *const *)a;
	const struct svc_pair *y = *(const struct svc_pair *const *)b;
	int c = strcmp(x->src->key, y->src->key);
	return c ? c : strcmp(x->dst, y->dst);
}

static int cmp_app(const void *a, const void *b)
{
	const struct svc_app *x = *(const struct svc_app *const *)a;
	const struct svc_app *y = *(const struct svc_app *const *)b;
	return strcmp(x->name, y->name);
}

static void sorted_free(struct sorted *so)
{
	free(so->src);
	free(so->pair);
	memset(so, 0, sizeof(*so));
}

/* Snapshot the sources and pairs in key order. 0 or -ENOMEM. */
static int sorted_build(const struct svcmap *m, struct sorted *so)
{
	size_t n;

	memset(so, 0, sizeof(*so));
	n = 0;
	for (const struct svc_src *s = LOAD_PTR(m->all_sources); s; s = s->all_next)
		n++;
	so->src = malloc((n ? n : 1) * sizeof(*so->src));
	if (!so->src)
		goto nomem;
	for (const struct svc_src *s = LOAD_PTR(m->all_sources); s && so->n_src < n;
	     s = s->all_next)
		so->src[so->n_src++] = s;

	n = 0;
	for (const struct svc_pair *p = LOAD_PTR(m->all_pairs); p; p = p->all_next)
		n++;
	so->pair = malloc((n ? n : 1) * sizeof(*so->pair));
	if (!so->pair)
		goto nomem;
	for (const struct svc_pair *p = LOAD_PTR(m->all_pairs); p && so->n_pair < n;
	     p = p->all_next)
		so->pair[so->n_pair++] = p;

	qsort(so->src, so->n_src, sizeof(*so->src), cmp_src);
	qsort(so->pair, so->n_pair, sizeof(*so->pair), cmp_pair);
	return 0;
nomem:
	sorted_free(so);
	return -ENOMEM;
}

/* The applications of a pair in name order; *out malloc'd (caller frees). */
static int sorted_apps(const struct svc_pair *p, const struct svc_app ***out, size_t *n_out)
{
	const struct app_set *set = LOAD_PTR(p->apps);
	uint32_t n = set ? __atomic_load_n(&set->n, __ATOMIC_ACQUIRE) : 0;
	const struct svc_app **v = malloc((n ? n : 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		v[i] = set->slot[i].app;
	qsort(v, n, sizeof(*v), cmp_app);
	*out = v;
	*n_out = n;
	return 0;
}

void svcmap__foreach(const struct svcmap *m, svcmap_visit_fn fn, void *ctx)
{
	struct sorted so;

	if (!m || sorted_build(m, &so) != 0)
		return;
	for (size_t i = 0; i < so.n_pair; i++) {
		const struct svc_app **apps;
		size_t n;
		if (sorted_apps(so.pair[i], &apps, &n) != 0)
			break;
		for (size_t j = 0; j < n; j++) {
			struct svcmap_counters c;
			counters_read(apps[j], &c);
			fn(ctx, so.pair[i]->src->key, so.pair[i]->dst, apps[j]->name, &c);
		}
		free(apps);
	}
	sorted_free(&so);
	tsan_release(&grace_sync);
}

/* ---- save ---------------------------------------------------------------------------------- */

static void put_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p, f);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p);
		} else {
			fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* The file, one line per application so that two saves diff line by line:
 *   {
 *     "format": "svcsensor-map",
 *     "version": 1,
 *     "sources": {
 *       "10.42.0.130": {
 *         "10.42.0.1": {
 *           "DNS": {"flows": 12, "bytes": 3400, "first_seen_ms": 1, "last_seen_ms": 2}
 *         }
 *       }
 *     }
 *   }                                                                          */
static int write_map(FILE *f, const struct svcmap *m)
{
	struct sorted so;
	size_t pi = 0;
	int err = sorted_build(m, &so);

	if (err)
		return err;
	fprintf(f, "{\n  \"format\": \"%s\",\n  \"version\": %d,\n  \"sources\": {", MAP_FORMAT,
		MAP_VERSION);
	for (size_t si = 0; si < so.n_src && !err; si++) {
		const struct svc_src *s = so.src[si];
		bool first_dst = true;
		fputs(si ? ",\n    " : "\n    ", f);
		put_str(f, s->key);
		fputs(": {", f);
		/* so.pair is sorted by source key, so this source's pairs are next in line. */
		while (pi < so.n_pair && strcmp(so.pair[pi]->src->key, s->key) < 0)
			pi++;
		for (; pi < so.n_pair && so.pair[pi]->src == s; pi++) {
			const struct svc_pair *p = so.pair[pi];
			const struct svc_app **apps;
			size_t n;
			fputs(first_dst ? "\n      " : ",\n      ", f);
			first_dst = false;
			put_str(f, p->dst);
			fputs(": {", f);
			err = sorted_apps(p, &apps, &n);
			if (err)
				break;
			for (size_t j = 0; j < n; j++) {
				struct svcmap_counters c;
				counters_read(apps[j], &c);
				fputs(j ? ",\n        " : "\n        ", f);
				put_str(f, apps[j]->name);
				fprintf(f,
					": {\"flows\": %" PRIu64 ", \"bytes\": %" PRIu64
					", \"first_seen_ms\": %" PRIu64
					", \"last_seen_ms\": %" PRIu64 "}",
					c.flows, c.bytes, c.first_ms, c.last_ms);
			}
			fputs(n ? "\n      }" : "}", f);
			free(apps);
		}
		fputs(first_dst ? "}" : "\n    }", f);
	}
	fputs(so.n_src ? "\n  }\n}\n" : "}\n}\n", f);
	sorted_free(&so);
	return err;
}

int svcmap__save(const struct svcmap *m, const char *path)
{
	char *tmp = NULL, *dir = NULL;
	const char *slash;
	FILE *f = NULL;
	int fd = -1, dfd = -1, err = 0;
	const char *what = "cannot write";

	if (!m || !path || !*path)
		return -EINVAL;
	/* Temporary file in the same directory, so that rename() is atomic. */
	slash = strrchr(path, '/');
	if (slash)
		dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
	else
		dir = strdup(".");
	if (!dir || asprintf(&tmp, "%s/.%s.tmp-XXXXXX", dir, slash ? slash + 1 : path) < 0) {
		tmp = NULL;
		err = -ENOMEM;
		goto fail;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		what = "cannot create a temporary file in its directory";
		free(tmp);
		tmp = NULL; /* nothing to unlink */
		goto fail;
	}
	if (fchmod(fd, 0644) != 0) {
		err = -errno;
		goto fail;
	}
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		goto fail;
	}
	fd = -1; /* owned by f now */

	rcu_read_lock();
	err = write_map(f, m);
	rcu_read_unlock();
	tsan_release(&grace_sync);
	if (err)
		goto fail;
	if (fflush(f) != 0 || ferror(f)) {
		err = -(errno ? errno : EIO);
		goto fail;
	}
	if (fsync(fileno(f)) != 0) {
		err = -errno;
		what = "cannot sync";
		goto fail;
	}
	if (fclose(f) != 0) {
		f = NULL;
		err = -(errno ? errno : EIO);
		goto fail;
	}
	f = NULL;
	if (rename(tmp, path) != 0) {
		err = -errno;
		what = "cannot replace";
		goto fail;
	}
	free(tmp);
	tmp = NULL;

	/* Make the rename itself durable. The new file is in place whatever happens here. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0)
		svc_warn("%s: saved, but its directory %s could not be synced: %s", path, dir,
			 strerror(errno));
	if (dfd >= 0)
		close(dfd);
	free(dir);
	return 0;

fail:
	svc_err("%s: %s: %s (the previous map file, if any, is unchanged)", path, what,
		strerror(-err));
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(dir);
	return err;
}

/* ---- load ---------------------------------------------------------------------------------- */

/* JSON path of the member being checked, for messages: sources["10.42.0.130"]["remote"]. */
struct jpath {
	char buf[768];
};

static void jpath_member(struct jpath *jp, const char *base, const char *key)
{
	/* Keys are at most 255 bytes once checked; the precisions only bound the text. */
	snprintf(jp->buf, sizeof(jp->buf), "%.500s[\"%.255s\"]", base, key);
}

static void load_err(const char *path, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void load_err(const char *path, const char *where, const char *fmt, ...)
{
	char reason[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (where && *where)
		svc_err("%s: %s: %s", path, where, reason);
	else
		svc_err("%s: %s", path, reason);
}

static int load_counters(const char *path, const char *where, const json_t *obj,
			 struct svcmap_counters *c)
{
	static const char *const names[] = {"flows", "bytes", "first_seen_ms", "last_seen_ms"};
	uint64_t *fields[] = {&c->flows, &c->bytes, &c->first_ms, &c->last_ms};
	const char *k;
	json_t *v;

	memset(c, 0, sizeof(*c));
	json_object_foreach((json_t *)obj, k, v)
	{
		size_t i;
		for (i = 0; i < SVC_ARRAY_LEN(names); i++)
			if (strcmp(k, names[i]) == 0)
				break;
		if (i == SVC_ARRAY_LEN(names)) {
			load_err(path, where,
				 "unknown member \"%s\" (expected flows, bytes, first_seen_ms, "
				 "last_seen_ms)",
				 k);
			return -EINVAL;
		}
		if (!json_is_integer(v)) {
			load_err(path, where, "%s: expected a non-negative integer, got %s", k,
				 json_util__kind(v));
			return -EINVAL;
		}
		if (json_integer_value(v) < 0) {
			load_err(path, where, "%s: expected a non-negative integer, got %lld", k,
				 (long long)json_integer_value(v));
			return -EINVAL;
		}
		*fields[i] = (uint64_t)json_integer_value(v);
	}
	if (c->first_ms && c->last_ms && c->first_ms > c->last_ms) {
		load_err(path, where,
			 "first_seen_ms (%" PRIu64 ") is after last_seen_ms (%" PRIu64 ")",
			 c->first_ms, c->last_ms);
		return -EINVAL;
	}
	return 0;
}

static int check_name(const char *path, const char *where, const char *what, const char *name)
{
	if (name_ok(name))
		return 0;
	load_err(path, where, "bad %s \"%s\": expected 1 to %d characters, no control characters",
		 what, name, NAME_MAX_LEN);
	return -EINVAL;
}

/* Count sources and pairs, to size the hash tables before building. */
static void count_sources(const json_t *sources, size_t *n_src, size_t *n_pairs)
{
	const char *k;
	json_t *v;
	*n_src = json_object_size(sources);
	*n_pairs = 0;
	json_object_foreach((json_t *)sources, k, v) *n_pairs +=
	    json_is_object(v) ? json_object_size(v) : 0;
}

static int load_sources(const char *path, struct svcmap *m, const json_t *sources)
{
	const char *sk, *dk, *ak;
	json_t *sv, *dv, *av;
	struct jpath w1 = {{0}}, w2 = {{0}}, w3 = {{0}};
	int err;

	json_object_foreach((json_t *)sources, sk, sv)
	{
		jpath_member(&w1, "sources", sk);
		if ((err = check_name(path, "sources", "source key", sk)) != 0)
			return err;
		if (!json_is_object(sv)) {
			load_err(path, w1.buf, "expected an object of destinations, got %s",
				 json_util__kind(sv));
			return -EINVAL;
		}
		if ((err = get_entry(m, sk, NULL, NULL, NULL)) != 0)
			return err;
		json_object_foreach(sv, dk, dv)
		{
			jpath_member(&w2, w1.buf, dk);
			if ((err = check_name(path, w1.buf, "destination key", dk)) != 0)
				return err;
			if (!json_is_object(dv)) {
				load_err(path, w2.buf, "expected an object of applications, got %s",
					 json_util__kind(dv));
				return -EINVAL;
			}
			if ((err = get_entry(m, sk, dk, NULL, NULL)) != 0)
				return err;
			json_object_foreach(dv, ak, av)
			{
				struct svcmap_counters c;
				struct svc_app *a;
				jpath_member(&w3, w2.buf, ak);
				if ((err = check_name(path, w2.buf, "application name", ak)) != 0)
					return err;
				if (!json_is_object(av)) {
					load_err(path, w3.buf,
						 "expected an object of counters {\"flows\", "
						 "\"bytes\", \"first_seen_ms\", \"last_seen_ms\"}, "
						 "got %s",
						 json_util__kind(av));
					return -EINVAL;
				}
				if ((err = load_counters(path, w3.buf, av, &c)) != 0)
					return err;
				if ((err = get_entry(m, sk, dk, ak, &a)) != 0)
					return err;
				counters_add(a, &c);
			}
		}
	}
	return 0;
}

struct svcmap *svcmap__load(const char *path, bool *missing)
{
	struct svcmap *m = NULL;
	json_t *root = NULL, *sources = NULL, *v;
	json_error_t jerr;
	struct stat st;
	const char *k;
	size_t n_src, n_pairs;
	FILE *f;
	int err = -EINVAL;

	if (missing)
		*missing = false;
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && missing) {
			*missing = true;
			return NULL;
		}
		svc_err("%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		svc_err("%s: not a regular file", path);
		fclose(f);
		return NULL;
	}
	root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	fclose(f);
	if (!root) {
		if (jerr.line > 0)
			svc_err("%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		else
			svc_err("%s: %s", path, jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		load_err(path, NULL, "expected a JSON object at the top level, got %s",
			 json_util__kind(root));
		goto cleanup;
	}
	json_object_foreach(root, k, v)
	{
		if (strcmp(k, "format") == 0) {
			if (!json_is_string(v) || strcmp(json_string_value(v), MAP_FORMAT) != 0) {
				load_err(path, "format", "expected \"%s\", got %s%s%s", MAP_FORMAT,
					 json_is_string(v) ? "\"" : "",
					 json_is_string(v) ? json_string_value(v) : json_util__kind(v),
					 json_is_string(v) ? "\"" : "");
				goto cleanup;
			}
		} else if (strcmp(k, "version") == 0) {
			if (!json_is_integer(v)) {
				load_err(path, "version", "expected an integer, got %s",
					 json_util__kind(v));
				goto cleanup;
			}
			if (json_integer_value(v) != MAP_VERSION) {
				load_err(path, "version",
					 "unsupported version %lld (this build reads version %d)",
					 (long long)json_integer_value(v), MAP_VERSION);
				goto cleanup;
			}
		} else if (strcmp(k, "sources") == 0) {
			if (!json_is_object(v)) {
				load_err(path, "sources",
					 "expected an object of source keys, got %s", json_util__kind(v));
				goto cleanup;
			}
			sources = v;
		} else {
			load_err(path, NULL,
				 "unknown member \"%s\" (expected format, version, sources)", k);
			goto cleanup;
		}
	}
	if (!json_object_get(root, "format")) {
		load_err(path, NULL, "no \"format\": \"%s\" member: not a service map file",
			 MAP_FORMAT);
		goto cleanup;
	}
	if (!json_object_get(root, "version")) {
		load_err(path, NULL, "no \"version\" member");
		goto cleanup;
	}
	if (!sources) {
		load_err(path, NULL, "no \"sources\" member");
		goto cleanup;
	}

	count_sources(sources, &n_src, &n_pairs);
	m = map_new_sized(n_src, n_pairs);
	if (!m) {
		load_err(path, NULL, "out of memory");
		goto cleanup;
	}
	err = load_sources(path, m, sources);
	if (err == -ENOMEM)
		load_err(path, NULL, "out of memory");
cleanup:
	json_decref(root);
	if (err && m) {
		svcmap__free(m);
		m = NULL;
	}
	return err ? NULL : m;
}

/* ---- publication --------------------------------------------------------------------------- */

struct svcmap *svcmap__current(struct svcmap_ref *ref)
{
	struct svcmap *m = rcu_dereference(ref->map);
	tsan_acquire(ref);
	return m;
}

void svcmap__publish(struct svcmap_ref *ref, struct svcmap *next)
{
	struct svcmap *old;

	tsan_release(ref);
	old = rcu_xchg_pointer(&ref->map, next);
	if (!old)
		return;
	synchronize_rcu(); /* every reader that could see old has left its read-side section */
	tsan_acquire(&grace_sync);
	svcmap__free(old);
}

/* ---- host keys ----------------------------------------------------------------------------- */

static bool prefix_match(const uint8_t *net, const uint8_t *a, unsigned plen)
{
	unsigned full = plen / 8, rem = plen % 8;
	if (memcmp(net, a, full) != 0)
		return false;
	if (rem) {
		uint8_t mask = (uint8_t)(0xffu << (8 - rem));
		return ((net[full] ^ a[full]) & mask) == 0;
	}
	return true;
}

/* Address text, the same as inet_ntop gives (RFC 5952 with glibc's choices: the first longest
 * run of two or more zero words is "::", IPv4-mapped and -compatible addresses end in dotted
 * quad). Written by hand because glibc's inet_ntop (sprintf) costs ~120 ns, twice per flow. */
static char *put_dec8(char *o, unsigned v)
{
	if (v >= 100) {
		*o++ = (char)('0' + v / 100);
		v %= 100;
		*o++ = (char)('0' + v / 10);
	} else if (v >= 10) {
		*o++ = (char)('0' + v / 10);
	}
	*o++ = (char)('0' + v % 10);
	return o;
}

static char *put_ipv4(char *o, const uint8_t *a)
{
	for (int i = 0; i < 4; i++) {
		if (i)
			*o++ = '.';
		o = put_dec8(o, a[i]);
	}
	return o;
}

static char *put_ipv6(char *o, const uint8_t *a)
{
	static const char hex[] = "0123456789abcdef";
	unsigned w[8];
	int best = -1, best_len = 0, cur = -1, cur_len = 0;

	for (int i = 0; i < 8; i++) {
		w[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
		if (w[i]) {
			cur = -1;
			continue;
		}
		if (cur < 0) {
			cur = i;
			cur_len = 0;
		}
		if (++cur_len > best_len) {
			best = cur;
			best_len = cur_len;
		}
	}
	if (best_len < 2)
		best = -1;
	for (int i = 0; i < 8; i++) {
		if (best >= 0 && i >= best && i < best + best_len) {
			if (i == best)
				*o++ = ':';
			continue;
		}
		if (i)
			*o++ = ':';
		if (i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)))
			return put_ipv4(o, a + 12);
		for (int shift = w[i] >= 0x1000	 ? 12
				 : w[i] >= 0x100 ? 8
				 : w[i] >= 0x10	 ? 4
						 : 0;
		     shift >= 0; shift -= 4)
			*o++ = hex[(w[i] >> shift) & 0xf];
	}
	if (best >= 0 && best + best_len == 8)
		*o++ = ':';
	return o;
}

/* At most 45 characters + NUL: fits HOSTKEY_LEN. */
static void addr_text(const uint8_t *addr, uint8_t ipver, char out[HOSTKEY_LEN])
{
	char *end = ipver == 6 ? put_ipv6(out, addr) : put_ipv4(out, addr);
	*end = '\0';
}

void hostkey__of(const struct svc_config *c, const uint8_t addr[16], uint8_t ipver,
		 char out[HOSTKEY_LEN])
{
	uint8_t v = ipver == 6 ? 6 : 4;

	for (size_t i = 0; i < c->n_local_networks; i++) {
		const struct cidr *n = &c->local_networks[i];
		if (n->ipver == v && prefix_match(n->addr, addr, n->plen)) {
			addr_text(addr, v, out);
			return;
		}
	}
	switch (c->remote_mode) {
	case REMOTE_ADDRESS:
		addr_text(addr, v, out);
		return;
	case REMOTE_PREFIX: {
		unsigned maxlen = v == 6 ? 128 : 32;
		unsigned plen = v == 6 ? c->remote_prefix6 : c->remote_prefix4;
		uint8_t net[16] = {0};
		char text[HOSTKEY_LEN];
		if (plen > maxlen)
			plen = maxlen;
		memcpy(net, addr, v == 6 ? 16 : 4);
		for (unsigned bit = plen; bit < maxlen; bit++)
			net[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
		addr_text(net, v, text);
		/* Masked text is at most 39 characters ("ffff:...:ffff"). */
		snprintf(out, HOSTKEY_LEN, "%.39s/%u", text, plen);
		return;
	}
	case REMOTE_COLLAPSE:
	default:
		snprintf(out, HOSTKEY_LEN, "remote");
		return;
	}
}
