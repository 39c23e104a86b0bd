/* store.c - the learned service map: map[source][destination] = {application: counters}:
 * lookups, learning (the one writer), merge, construction. Its hash is the seeded family of
 * include/svcsensor/hash.h, its name rule utf8__name_ok (include/svcsensor/utf8.h). Its memory
 * (indexes, arena, sorted walk) is src/map/index.c, its file src/map/file.c, the RCU pointer of
 * the map in force src/map/publish.c, and the thread that loads and saves it src/map/holder.c.
 *
 *
 * In memory (why this shape): the detector asks, per flow, "is app in map[src][dst]?", and the
 * answer is yes for almost every flow. So that answer costs one probe of a flat index and reads
 * one pair node:
 *   - m->pair_ix: open-addressing index of struct svc_pair keyed by hash(src, dst). The pair
 *                 node (cache-line aligned) holds both key strings inline and a 128-bit set of
 *                 the ids of its applications, so a hit usually reads the slot, then one line
 *                 of the node, and nothing else. The node also points to its application set (the
 *                 interned names and their entries, the counters), read by get, learn, save.
 *   - m->name_ix: the application names, interned: one struct svc_key per distinct name, with
 *                 an id 0, 1, 2 ... (a few hundred names at most: this index stays in cache).
 *                 The pair's bit set answers for ids < 128; a later name is looked for in the
 *                 set (comparing name pointers). A name the map has never seen answers "not
 *                 in the pair" at once.
 *   - m->src_ix:  struct svc_key of the sources, keyed by hash(src), only asked when the pair
 *                 is missing (UNKNOWN_SOURCE_IP vs UNKNOWN_DESTINATION_IP), for has_source,
 *                 and when the learner adds a pair.
 * An index is one cache-line aligned array of {64-bit hash, node pointer} slots, power-of-two
 * capacity, linear probing, at most 70 % full (a miss ends at the first empty slot, a few
 * slots on). Nothing is ever removed from a live map, so there are no tombstones. Each key
 * string is hashed once per lookup, its length with it, so a match is an inline compare of
 * known length; the stored 64-bit hash is compared before any string and is reused when an
 * index grows, so growing never touches a node. A loaded map has its source and pair indexes
 * sized from the file's counts: they never grow (only the small name index may). Every node
 * (keys, pairs, sets, entries) is carved from the map's arena (see struct arena).
 * (These used to be two liburcu rculfhash tables with automatic resize: a lookup walked a
 * split-ordered list, several times slower and worse as the map grew, and destroying a large
 * table raced with the library's own shrink worker. The lock-free resizable table bought
 * nothing here: see Concurrency.)
 *
 * Concurrency (what is supported, exactly):
 *   - A map that nobody writes (detect mode: loaded, then only read) takes any number of
 *     concurrent readers: lookups, get, size, foreach, save.
 *   - One writer at a time (svcmap__learn, svcmap__merge into it, load while building): the
 *     caller serialises writers. Readers may run concurrently with that one writer (the tests
 *     and the TSan stress program check it; in the product the detector thread is the only
 *     writer of a learn-mode map and the saver thread of src/map/holder.c its concurrent
 *     reader). A concurrent reader sees each source, pair and application either absent or
 *     whole (keys complete), never torn:
 *       . a new node is written, then its slot's hash, then the slot's pointer with a release
 *         store; readers load the pointer with an acquire load before reading the hash;
 *       . an index that is full enough is rehashed by the writer into a new array twice the
 *         size, published with a release store of m->src_ix / m->pair_ix / m->name_ix; the old
 *         array is retired, not freed (a reader may still probe it) and freed with the map.
 *         The retired arrays of a learned map add less than its live indexes (1 M sources +
 *         1 M pairs: 64 MB live, < 64 MB retired); a loaded map has none of note;
 *       . an application set is appended in place (slot written, then its count published with
 *         a release store, then the pair's id bit set with a release store) and, when full,
 *         copied into a set twice the size that is published with a release store, the old
 *         set staying in the arena until the map is freed;
 *       . counters are relaxed atomics (each counter is whole, the four of an entry are not one
 *         snapshot); sizes are relaxed atomics.
 *   - Swapping maps: svcmap__publish (SIGHUP reload) under RCU, readers under rcu_read_lock.
 *     A map is destroyed whole (svcmap__free) once no reader can hold it: svcmap__publish waits
 *     a grace period (synchronize_rcu) first. svcmap__free is plain free() of the arena's
 *     blocks and the index arrays: no helper thread, nothing left to race with, and fast
 *     (a 1 M-source map in ~20 ms); the loader thread of src/map/holder.c frees the old map
 *     after a reload, never the detector thread.
 *
 * ThreadSanitizer sees the index, set and bit publication (compiler __atomic builtins) by
 * itself, but not liburcu's inline-asm atomics and grace periods, so TSan builds add those
 * happens-before edges with __tsan_acquire/release: map publication (publish -> current) and
 * grace periods (end of every lookup -> free after synchronize_rcu). They compile to nothing
 * otherwise. */
#include "map_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/common.h"
#include "svcsensor/hash.h"
#include "svcsensor/utf8.h"

#ifdef SVC_TSAN
char svcmap_grace_sync;
#endif

/* ---- lookups ------------------------------------------------------------------------------- */

/* a[0, n) == b[0, n), inline: keys are short (host keys <= 47 bytes, most under 16) and a match
 * is the common case, so every byte is compared; a libc call costs more than the compare. */
static inline bool bytes_eq(const char *a, const char *b, size_t n)
{
	uint64_t x, y;
	uint32_t u, v;

	if (n >= 8) {
		for (size_t i = 0; i + 8 <= n; i += 8) {
			memcpy(&x, a + i, 8);
			memcpy(&y, b + i, 8);
			if (x != y)
				return false;
		}
		memcpy(&x, a + n - 8, 8); /* the tail, overlapping */
		memcpy(&y, b + n - 8, 8);
		return x == y;
	}
	if (n >= 4) {
		memcpy(&u, a, 4);
		memcpy(&v, b, 4);
		if (u != v)
			return false;
		memcpy(&u, a + n - 4, 4);
		memcpy(&v, b + n - 4, 4);
		return u == v;
	}
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

/* A source or an application name in its index (m->src_ix, m->name_ix). */
static struct svc_key *find_key(struct index *const *ixp, const char *key, size_t len, uint64_t h)
{
	const struct index *ix = LOAD_PTR(*ixp);
	const size_t mask = ix->mask;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct svc_key *s = LOAD_PTR(ix->slot[i].node);
		if (!s)
			return NULL;
		if (ix->slot[i].hash == h && s->len == len && bytes_eq(s->key, key, len))
			return s;
	}
}

static struct svc_pair *find_pair_in(const struct index *ix, uint64_t h, const char *src,
				     size_t slen, const char *dst, size_t dlen)
{
	const size_t mask = ix->mask;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct svc_pair *p = LOAD_PTR(ix->slot[i].node);
		if (!p)
			return NULL;
		if (ix->slot[i].hash == h && p->slen == slen && p->dlen == dlen &&
		    bytes_eq(p->keys, src, slen) && bytes_eq(p->keys + slen + 1, dst, dlen))
			return p;
	}
}

static struct svc_pair *find_pair(const struct svcmap *m, uint64_t h, const char *src, size_t slen,
				  const char *dst, size_t dlen)
{
	return find_pair_in(LOAD_PTR(m->pair_ix), h, src, slen, dst, dlen);
}

/* Is the interned name in the pair's set? Its entry into *entry when entry is not NULL. The
 * plain lookups pass NULL: for the first APP_BITS names the pair's bit set answers alone. */
static inline bool app_in(const struct svc_pair *p, const struct svc_key *name,
			  struct svc_app **entry)
{
	const uint32_t id = name->id;

	if (id < APP_BITS) {
		const uint64_t bits = LOAD_PTR(p->app_bits[id / 64]);
		if (!((bits >> (id % 64)) & 1))
			return false;
		if (!entry)
			return true;
	}
	const struct app_set *set = LOAD_PTR(p->apps);
	if (!set)
		return false;
	uint32_t n = __atomic_load_n(&set->n, __ATOMIC_ACQUIRE);
	for (uint32_t i = 0; i < n; i++)
		if (set->name[i] == name) {
			if (entry)
				*entry = app_of(set)[i];
			return true;
		}
	return false;
}

static struct svc_app *find_app(const struct svc_pair *p, const struct svc_key *name)
{
	struct svc_app *a = NULL;
	app_in(p, name, &a);
	return a;
}

/* The common walk: how far (src, dst, app) gets. dst / app NULL stop early. The pair is asked
 * first: when it exists the source does too, and that is the common case. Each key is hashed
 * once. The pair's slot is prefetched before the application name is looked up (a small,
 * cached index), so that the two overlap. */
static enum svcmap_match locate(const struct svcmap *m, const char *src, const char *dst,
				const char *app, struct svc_app **found)
{
	enum svcmap_match r = SVCMAP_NO_SOURCE;
	const struct svc_pair *p = NULL;
	const struct svc_key *name = NULL;
	size_t slen, dlen, alen;
	uint64_t hs, hp = 0;
	const struct index *ix = NULL;

	if (!m || !src)
		goto out;
	hs = hash__str(m->seed, src, &slen);
	if (dst) {
		hp = hash__pair(hs, hash__str(m->seed, dst, &dlen));
		ix = LOAD_PTR(m->pair_ix);
		__builtin_prefetch(&ix->slot[hp & ix->mask]);
		if (app) {
			uint64_t ha = hash__str(m->seed, app, &alen);
			name = find_key(&m->name_ix, app, alen, ha);
		}
		p = find_pair_in(ix, hp, src, slen, dst, dlen);
	}
	if (!p) {
		if (find_key(&m->src_ix, src, slen, hs))
			r = SVCMAP_NO_DESTINATION;
		goto out;
	}
	r = SVCMAP_NO_APP;
	if (!app || !name || !app_in(p, name, found))
		goto out;
	r = SVCMAP_MATCH;
out:
	tsan_release(&svcmap_grace_sync);
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

bool svcmap__get(const struct svcmap *m, const char *src, const char *dst, const char *app,
		 struct svcmap_counters *out)
{
	struct svc_app *a = NULL;
	if (locate(m, src, dst, app, &a) != SVCMAP_MATCH)
		return false;
	if (out)
		map_counters_read(a, out);
	tsan_release(&svcmap_grace_sync);
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

/* A map whose indexes start large enough for the given counts (a loaded map never grows). */
static struct svcmap *map_new_sized(size_t n_sources, size_t n_pairs)
{
	struct svcmap *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->seed = hash__seed();
	m->src_ix = map_index_new(map_index_cap_for(n_sources));
	m->pair_ix = map_index_new(map_index_cap_for(n_pairs));
	m->name_ix = map_index_new(map_index_cap_for(0));
	if (!m->src_ix || !m->pair_ix || !m->name_ix) {
		map_index_free(m->src_ix);
		map_index_free(m->pair_ix);
		map_index_free(m->name_ix);
		free(m);
		return NULL;
	}
	return m;
}

struct svcmap *svcmap__new(void)
{
	return map_new_sized(0, 0);
}

/* Plain frees, no other thread involved: the arena's blocks (every node), the three live
 * indexes and the retired ones. */
void svcmap__free(struct svcmap *m)
{
	if (!m)
		return;
	map_arena_free(&m->arena);
	map_index_free(m->pair_ix);
	map_index_free(m->src_ix);
	map_index_free(m->name_ix);
	map_free_retired(m);
	free(m);
}

/* Writer side: find or add. Single writer per map (see Concurrency). */

/* Find or add key in *ixp (m->src_ix with count m->n_sources, or m->name_ix with m->n_names):
 * *added tells which, for the caller's count. */
static int get_key(struct svcmap *m, struct index **ixp, size_t count, const char *key, size_t len,
		   uint64_t h, struct svc_key **out, bool *added)
{
	struct svc_key *s = find_key(ixp, key, len, h);
	int err;

	*added = false;
	if (!s) {
		if (!utf8__name_ok(key, NAME_MAX_LEN))
			return -EINVAL;
		if ((err = map_index_reserve(m, ixp, count)) != 0)
			return err;
		s = map_arena_alloc(&m->arena, sizeof(*s) + len + 1);
		if (!s)
			return -ENOMEM;
		s->id = (uint32_t)count;
		s->len = (uint8_t)len;
		memcpy(s->key, key, len + 1);
		map_index_put(*ixp, h, s);
		*added = true;
	}
	*out = s;
	return 0;
}

static int get_src(struct svcmap *m, const char *key, size_t len, uint64_t h, struct svc_key **out)
{
	bool added;
	int err = get_key(m, &m->src_ix, m->n_sources, key, len, h, out, &added);
	if (added)
		STORE(m->n_sources, m->n_sources + 1);
	return err;
}

/* Add the pair (s, dst), known absent, under hash h. */
static int add_pair(struct svcmap *m, const struct svc_key *s, uint64_t h, const char *dst,
		    size_t dlen, struct svc_pair **out)
{
	struct svc_pair *p;
	size_t slen = s->len;
	int err;

	if (!utf8__name_ok(dst, NAME_MAX_LEN))
		return -EINVAL;
	if ((err = map_index_reserve(m, &m->pair_ix, m->n_pairs)) != 0)
		return err;
	p = map_arena_alloc_line(&m->arena, sizeof(*p) + slen + 1 + dlen + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p->keys, s->key, slen + 1);
	memcpy(p->keys + slen + 1, dst, dlen + 1);
	p->slen = (uint8_t)slen;
	p->dlen = (uint8_t)dlen;
	memset(p->app_bits, 0, sizeof(p->app_bits));
	p->src = s;
	p->apps = NULL;
	map_index_put(m->pair_ix, h, p);
	STORE(m->n_pairs, m->n_pairs + 1);
	*out = p;
	return 0;
}

/* Make room for want applications in the pair's set: when it is too small, copy it into a set
 * of max(want, twice its size, 4) slots and publish that (the old set stays in the arena: a
 * reader may be scanning it). Allocated before the entries, so that a pair node and its set
 * are neighbours in the arena. 0 or -ENOMEM. */
static int app_set_reserve(struct svcmap *m, struct svc_pair *p, size_t want)
{
	const struct app_set *set = p->apps;
	struct app_set *bigger;
	size_t cap;

	if (!want || (set && set->cap >= want))
		return 0;
	cap = set ? 2 * (size_t)set->cap : 4;
	if (cap < want)
		cap = want;
	if (cap > UINT32_MAX)
		return -ENOMEM;
	bigger = map_arena_alloc(&m->arena, sizeof(*bigger) + cap * (sizeof(bigger->name[0]) +
								     sizeof(struct svc_app *)));
	if (!bigger)
		return -ENOMEM;
	bigger->cap = (uint32_t)cap;
	bigger->n = set ? set->n : 0;
	if (set) {
		memcpy(bigger->name, set->name, set->n * sizeof(set->name[0]));
		memcpy(app_of(bigger), app_of(set), set->n * sizeof(struct svc_app *));
	}
	PUBLISH_PTR(p->apps, bigger);
	return 0;
}

int map_get_app(struct svcmap *m, struct svc_pair *p, const char *app, struct svc_app **out)
{
	size_t len;
	uint64_t h = hash__str(m->seed, app, &len);
	struct svc_key *name;
	struct app_set *set;
	struct svc_app *a;
	bool added;
	int err = get_key(m, &m->name_ix, m->n_names, app, len, h, &name, &added);

	if (err)
		return err;
	if (added)
		m->n_names++;
	a = added ? NULL : find_app(p, name);
	if (!a) {
		err = app_set_reserve(m, p, p->apps ? (size_t)p->apps->n + 1 : 1);
		if (err)
			return err;
		a = map_arena_alloc(&m->arena, sizeof(*a));
		if (!a)
			return -ENOMEM;
		memset(a, 0, sizeof(*a));
		a->name = name;
		/* Append: slot written, then the count published with a release store. */
		set = p->apps;
		set->name[set->n] = name;
		app_of(set)[set->n] = a;
		__atomic_store_n(&set->n, set->n + 1, __ATOMIC_RELEASE);
		if (name->id < APP_BITS) {
			uint64_t *w = &p->app_bits[name->id / 64];
			PUBLISH_PTR(*w, *w | (uint64_t)1 << (name->id % 64));
		}
		STORE(m->n_entries, m->n_entries + 1);
	}
	*out = a;
	return 0;
}

/* Find or add src and, when dst is not NULL, the pair (src, dst) into *pair. Each key is hashed
 * once; when the pair exists (the common case when learning) the source is not looked up. */
int map_get_pair(struct svcmap *m, const char *src, const char *dst, struct svc_pair **pair)
{
	struct svc_key *s;
	struct svc_pair *p = NULL;
	size_t slen, dlen = 0;
	uint64_t hs = hash__str(m->seed, src, &slen), hp = 0;
	int err;

	if (dst) {
		hp = hash__pair(hs, hash__str(m->seed, dst, &dlen));
		p = find_pair(m, hp, src, slen, dst, dlen);
	}
	if (!p) {
		if ((err = get_src(m, src, slen, hs, &s)) != 0)
			return err;
		if (!dst)
			return 0;
		if ((err = add_pair(m, s, hp, dst, dlen, &p)) != 0)
			return err;
	}
	*pair = p;
	return 0;
}

/* Find or add (src[, dst[, app]]); NULL dst / app stop early. */
int map_get_entry(struct svcmap *m, const char *src, const char *dst, const char *app,
		  struct svc_app **out)
{
	struct svc_pair *p;
	int err = map_get_pair(m, src, dst, &p);

	if (err || !dst || !app)
		return err;
	return map_get_app(m, p, app, out);
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return (a > COUNTER_MAX - (b > COUNTER_MAX ? COUNTER_MAX : b)) ? COUNTER_MAX : a + b;
}

void map_counters_add(struct svc_app *a, const struct svcmap_counters *c)
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
	err = map_get_entry(m, src, dst, app, &a);
	if (err)
		return err;
	map_counters_add(a, &c);
	return 0;
}

int svcmap__merge(struct svcmap *into, const struct svcmap *from)
{
	const struct index *ix;
	int err = 0;

	if (!into || into == from)
		return -EINVAL;
	if (!from)
		return 0;
	/* Empty sources and pairs (possible in a hand-edited file) are carried over too. */
	ix = LOAD_PTR(from->src_ix);
	for (size_t i = 0; i <= ix->mask && !err; i++) {
		const struct svc_key *s = LOAD_PTR(ix->slot[i].node);
		if (s)
			err = map_get_entry(into, s->key, NULL, NULL, NULL);
	}
	ix = LOAD_PTR(from->pair_ix);
	for (size_t i = 0; i <= ix->mask && !err; i++) {
		const struct svc_pair *p = LOAD_PTR(ix->slot[i].node);
		if (!p)
			continue;
		err = map_get_entry(into, p->src->key, pair_dst(p), NULL, NULL);
		const struct app_set *set = LOAD_PTR(p->apps);
		uint32_t n = set ? __atomic_load_n(&set->n, __ATOMIC_ACQUIRE) : 0;
		for (uint32_t j = 0; j < n && !err; j++) {
			const struct svc_app *a = app_of(set)[j];
			struct svc_app *to;
			struct svcmap_counters c;
			err = map_get_entry(into, p->src->key, pair_dst(p), a->name->key, &to);
			if (!err) {
				map_counters_read(a, &c);
				map_counters_add(to, &c);
			}
		}
	}
	return err;
}
