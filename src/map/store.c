/* service_map.c - the learned service map: map[source][destination] = {application: counters}.
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
 *     and the TSan stress program check it; in the product the detector thread is both the
 *     only reader and the only writer of a learn-mode map). A concurrent reader sees each
 *     source, pair and application either absent or whole (keys complete), never torn:
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
 *     (a 1 M-source map in ~20 ms), which matters because the detector thread frees the old
 *     map itself after a reload.
 *
 * ThreadSanitizer sees the index, set and bit publication (compiler __atomic builtins) by
 * itself, but not liburcu's inline-asm atomics and grace periods, so TSan builds add those
 * happens-before edges with __tsan_acquire/release: map publication (publish -> current) and
 * grace periods (end of every lookup -> free after synchronize_rcu). They compile to nothing
 * otherwise. */
#include <urcu.h> /* memb flavour: rcu_dereference, rcu_xchg_pointer, synchronize_rcu */

#include "svcsensor/service_map.h"
#include "svcsensor/tsan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>

#if defined(__SANITIZE_ADDRESS__)
#define SVC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SVC_ASAN 1
#endif
#endif
#ifdef SVC_ASAN
#include <sanitizer/asan_interface.h>
#define asan_poison(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define asan_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define asan_poison(p, n) ((void)(p), (void)(n))
#define asan_unpoison(p, n) ((void)(p), (void)(n))
#endif

#include "svcsensor/common.h"

#define MAP_FORMAT "svcsensor-map"
#define MAP_VERSION 1
#define NAME_MAX_LEN 255		  /* host keys and application names */
#define COUNTER_MAX ((uint64_t)INT64_MAX) /* what JSON readers (yajl, jansson) take back */
#define INDEX_MIN_CAP 16		  /* slots of a new map's indexes */
#define INDEX_LOAD_NUM 7		  /* an index is at most 7/10 full */
#define INDEX_LOAD_DEN 10
#define CACHE_LINE 64
#define ARENA_FIRST_BLOCK 4096 /* a map's first arena block; doubles up to: */
#define ARENA_MAX_BLOCK (1u << 20)

#ifdef SVC_TSAN
static char grace_sync; /* stands for "every read-side section that ended" */
#endif

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define LOAD_PTR(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define PUBLISH_PTR(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

/* A source key or an application name (interned: one per distinct string in a map). */
struct svc_key {
	uint32_t id; /* order of creation in its index: application names 0, 1, 2 ... */
	uint8_t len; /* strlen(key): names are at most NAME_MAX_LEN bytes */
	char key[];
};

struct svc_app {
	uint64_t flows, bytes, first_ms, last_ms; /* relaxed atomics */
	const struct svc_key *name;		  /* in m->name_ix */
};

/* The applications of a pair: name[i] (interned) and its entry app_of(set)[i]. The names are
 * one array of pointers so that a scan reads 8 bytes per application. Slots [0, n) are
 * complete; n is published with a release store. Grown by copying into a set twice the size;
 * the old one stays in the arena (a reader may still scan it) until the map is freed. */
struct app_set {
	uint32_t cap;
	uint32_t n;
	const struct svc_key *name[]; /* [cap], then struct svc_app *[cap] */
};

static inline struct svc_app **app_of(const struct app_set *set)
{
	return (struct svc_app **)(set->name + set->cap);
}

/* The applications of a pair as a bit set of name ids, for the first APP_BITS names of the map
 * (a home or office network has fewer distinct nDPI names than that): "is app in the pair?"
 * reads the pair node and nothing else. A name with a later id is looked for in the set. A bit
 * is set (release) after the application is in the set. */
#define APP_BITS 128

/* Cache-line aligned in the arena, with what a lookup reads first (bits, lengths, keys: 40 +
 * key bytes) so that a hit usually reads one line of it. */
struct svc_pair {
	uint64_t app_bits[APP_BITS / 64]; /* acquire / release */
	uint8_t slen, dlen;		  /* strlen of the two keys */
	const struct svc_key *src;
	struct app_set *apps; /* NULL = none yet; published with a release store */
	char keys[];	      /* "src\0dst\0" */
};

static inline const char *pair_dst(const struct svc_pair *p)
{
	return p->keys + p->slen + 1;
}

/* One open-addressing index: slot i is empty while node is NULL. A slot, once filled, never
 * changes: hash is written before node is published (release), and read after node is loaded
 * (acquire). */
struct idx_slot {
	uint64_t hash;
	void *node; /* struct svc_key or struct svc_pair */
};
struct index {
	size_t mask; /* capacity - 1; capacity is a power of two */
	struct index *retired_next;
	void *raw; /* what calloc returned: the index is aligned inside it */
	_Alignas(CACHE_LINE) struct idx_slot slot[];
};

_Static_assert(offsetof(struct index, slot) % CACHE_LINE == 0, "slots start on a cache line");

/* Where a map's nodes live (keys, pairs, entries, application sets): nothing is removed from a
 * map before it is freed whole, so nodes are carved from blocks (4 KB doubling to 1 MB) by the
 * writer and svcmap__free frees a few blocks instead of one malloc chunk per node (a 1 M-source
 * map: ~4 M chunks, ~1 s of free()). Also denser (no chunk header per node) and in insertion
 * order: a pair node and its application set are neighbours. Under ASan the unused part of a
 * block is poisoned, so a read past a node into free space is still caught. */
struct arena_block {
	struct arena_block *next;
	size_t size; /* of data */
	_Alignas(CACHE_LINE) char data[];
};
struct arena {
	struct arena_block *blocks;
	char *cur, *end; /* free part of the current block */
	size_t next_size;
};

struct svcmap {
	struct index *src_ix;  /* published with a release store (grown by the writer) */
	struct index *pair_ix; /* idem */
	struct index *name_ix; /* idem */
	uint64_t seed;
	size_t n_sources, n_pairs, n_entries; /* relaxed atomics */
	size_t n_names;			      /* the writer's own */
	struct index *retired_ix;	      /* outgrown indexes, freed with the map */
	struct arena arena;		      /* every node (the writer's own) */
};

/* ---- hashing ------------------------------------------------------------------------------- */

static uint64_t hash_seed;
static pthread_once_t hash_seed_once = PTHREAD_ONCE_INIT;

/* A per-process random seed: remote keys come from the network (remote_mode address), and a
 * fixed hash would let traffic pick long probe sequences. */
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

/* 64x64 -> 128-bit multiply, folded (the wyhash / rapidhash primitive). */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Hash of a key string; *len_out = strlen(s) (the one pass over the string). One folded
 * multiply per 8 bytes: keys are short and every lookup hashes three of them. */
static uint64_t str_hash(uint64_t seed, const char *s, size_t *len_out)
{
	size_t len = strlen(s), n = len;
	uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL), w;

	*len_out = len;
	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		h = mum(h ^ w, 0xe7037ed1a0b428dbULL);
	}
	/* The last 0-7 bytes in registers (a variable-size memcpy would go through the stack):
	 * two overlapping 4-byte reads, or the first, middle and last byte (wyhash's way). */
	if (n >= 4) {
		uint32_t lo, hi;
		memcpy(&hi, s, 4);
		memcpy(&lo, s + n - 4, 4);
		w = (uint64_t)hi << 32 | lo;
	} else if (n) {
		const unsigned char *u = (const unsigned char *)s;
		w = (uint64_t)u[0] << 16 | (uint64_t)u[n / 2] << 8 | u[n - 1];
	} else {
		w = 0;
	}
	return mum(h ^ w ^ 0xa0761d6478bd642fULL, 0x8ebc6af09c88c6e3ULL ^ len);
}

static uint64_t pair_hash(uint64_t hsrc, uint64_t hdst)
{
	/* Asymmetric: (a, b) and (b, a) are different pairs. */
	return flow__mix64(hsrc * 0xff51afd7ed558ccdULL + hdst);
}

/* ---- indexes ------------------------------------------------------------------------------- */

/* Slots for n entries at most INDEX_LOAD_NUM/INDEX_LOAD_DEN full; 0 when that cannot be
 * allocated anyway. */
static size_t index_cap_for(size_t n)
{
	size_t cap = INDEX_MIN_CAP;
	const size_t max =
	    (SIZE_MAX / 2 - sizeof(struct index) - CACHE_LINE) / sizeof(struct idx_slot);

	if (n > max / INDEX_LOAD_DEN)
		return 0;
	while (n * INDEX_LOAD_DEN > cap * INDEX_LOAD_NUM) {
		if (cap > max / 2)
			return 0;
		cap <<= 1;
	}
	return cap;
}

/* An empty index of cap slots (a power of two), cache-line aligned. calloc: a large index
 * comes as fresh zero pages from mmap, not memset. */
static struct index *index_new(size_t cap)
{
	void *raw;
	struct index *ix;

	if (!cap)
		return NULL;
	raw = calloc(1, sizeof(*ix) + cap * sizeof(ix->slot[0]) + CACHE_LINE - 1);
	if (!raw)
		return NULL;
	ix = (struct index *)(((uintptr_t)raw + CACHE_LINE - 1) & ~(uintptr_t)(CACHE_LINE - 1));
	ix->raw = raw;
	ix->mask = cap - 1;
	return ix;
}

static void index_free(struct index *ix)
{
	if (ix)
		free(ix->raw);
}

/* Writer: put (h, node) into the first empty slot of its probe sequence (the key is known
 * absent). The release store publishes the node and the slot's hash to readers. */
static void index_put(struct index *ix, uint64_t h, void *node)
{
	size_t i = h & ix->mask;
	while (ix->slot[i].node)
		i = (i + 1) & ix->mask;
	ix->slot[i].hash = h;
	PUBLISH_PTR(ix->slot[i].node, node);
}

/* Writer: make room for one more entry in *ixp, which holds count entries: when it would pass
 * the load limit, rehash it (stored hashes, no string is read) into an index twice the size,
 * publish that, and retire the old one (readers may still probe it). 0 or -ENOMEM. */
static int index_reserve(struct svcmap *m, struct index **ixp, size_t count)
{
	struct index *ix = *ixp, *bigger;
	size_t cap = ix->mask + 1;

	if ((count + 1) * INDEX_LOAD_DEN <= cap * INDEX_LOAD_NUM)
		return 0;
	bigger = index_new(cap <= SIZE_MAX / 4 / sizeof(struct idx_slot) ? cap * 2 : 0);
	if (!bigger)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		if (ix->slot[i].node)
			index_put(bigger, ix->slot[i].hash, ix->slot[i].node);
	PUBLISH_PTR(*ixp, bigger);
	ix->retired_next = m->retired_ix;
	m->retired_ix = ix;
	return 0;
}

/* Reader: the nodes of a snapshot of an index, in slot order, into a malloc'd array (caller
 * frees). 0 or -ENOMEM. A concurrent writer may add nodes after the count: they are left out. */
static int index_collect(const struct index *ix, const void ***out, size_t *n_out)
{
	size_t n = 0, cap = ix->mask + 1, k = 0;
	const void **v;

	for (size_t i = 0; i < cap; i++)
		n += LOAD_PTR(ix->slot[i].node) != NULL;
	v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < cap && k < n; i++) {
		const void *node = LOAD_PTR(ix->slot[i].node);
		if (node)
			v[k++] = node;
	}
	*out = v;
	*n_out = k;
	return 0;
}

/* ---- arena --------------------------------------------------------------------------------- */

/* n bytes, 8-aligned, uninitialised, from the map's arena (writer only). NULL on ENOMEM. A
 * request larger than a quarter of the biggest block gets a block of its own, so the current
 * block's free part is not thrown away. The unused part of a block is poisoned under ASan. */
static void *arena_alloc(struct arena *a, size_t n);

/* The same, cache-line aligned (blocks are; the skipped bytes stay poisoned). */
static void *arena_alloc_line(struct arena *a, size_t n)
{
	size_t pad = (size_t)(-(uintptr_t)a->cur & (CACHE_LINE - 1));

	if (a->cur && (size_t)(a->end - a->cur) >= pad + n)
		a->cur += pad;
	else if (n <= ARENA_MAX_BLOCK / 4)
		a->cur = a->end; /* a fresh block: its data is aligned */
	return arena_alloc(a, n);
}

static void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_block *b;
	size_t size;
	void *p, *mem;

	n = (n + 7) & ~(size_t)7;
	if (SVC_LIKELY((size_t)(a->end - a->cur) >= n)) {
		p = a->cur;
		a->cur += n;
		asan_unpoison(p, n);
		return p;
	}
	if (!a->next_size)
		a->next_size = ARENA_FIRST_BLOCK;
	size = n > ARENA_MAX_BLOCK / 4 ? n : a->next_size;
	if (size < n)
		size = n;
	if (size > SIZE_MAX - sizeof(*b))
		return NULL;
	if (posix_memalign(&mem, CACHE_LINE, sizeof(*b) + size) != 0)
		return NULL;
	b = mem;
	b->size = size;
	if (n > ARENA_MAX_BLOCK / 4) {
		/* A block of its own, behind the current one. */
		b->next = a->blocks ? a->blocks->next : NULL;
		if (a->blocks)
			a->blocks->next = b;
		else
			a->blocks = b;
		return b->data;
	}
	b->next = a->blocks;
	a->blocks = b;
	a->cur = b->data + n;
	a->end = b->data + size;
	asan_poison(a->cur, (size_t)(a->end - a->cur));
	if (a->next_size < ARENA_MAX_BLOCK)
		a->next_size *= 2;
	return b->data;
}

static void arena_free(struct arena *a)
{
	struct arena_block *b, *next;
	for (b = a->blocks; b; b = next) {
		next = b->next;
		asan_unpoison(b->data, b->size);
		free(b);
	}
	memset(a, 0, sizeof(*a));
}

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
	hs = str_hash(m->seed, src, &slen);
	if (dst) {
		hp = pair_hash(hs, str_hash(m->seed, dst, &dlen));
		ix = LOAD_PTR(m->pair_ix);
		__builtin_prefetch(&ix->slot[hp & ix->mask]);
		if (app) {
			uint64_t ha = str_hash(m->seed, app, &alen);
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

/* A map whose indexes start large enough for the given counts (a loaded map never grows). */
static struct svcmap *map_new_sized(size_t n_sources, size_t n_pairs)
{
	struct svcmap *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	pthread_once(&hash_seed_once, hash_seed_init);
	m->seed = hash_seed;
	m->src_ix = index_new(index_cap_for(n_sources));
	m->pair_ix = index_new(index_cap_for(n_pairs));
	m->name_ix = index_new(index_cap_for(0));
	if (!m->src_ix || !m->pair_ix || !m->name_ix) {
		index_free(m->src_ix);
		index_free(m->pair_ix);
		index_free(m->name_ix);
		free(m);
		return NULL;
	}
	return m;
}

struct svcmap *svcmap__new(void)
{
	return map_new_sized(0, 0);
}

static void free_retired(struct svcmap *m)
{
	struct index *ix, *ixnext;
	for (ix = m->retired_ix; ix; ix = ixnext) {
		ixnext = ix->retired_next;
		index_free(ix);
	}
	m->retired_ix = NULL;
}

/* Plain frees, no other thread involved: the arena's blocks (every node), the three live
 * indexes and the retired ones. */
void svcmap__free(struct svcmap *m)
{
	if (!m)
		return;
	arena_free(&m->arena);
	index_free(m->pair_ix);
	index_free(m->src_ix);
	index_free(m->name_ix);
	free_retired(m);
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
		if (!name_ok(key))
			return -EINVAL;
		if ((err = index_reserve(m, ixp, count)) != 0)
			return err;
		s = arena_alloc(&m->arena, sizeof(*s) + len + 1);
		if (!s)
			return -ENOMEM;
		s->id = (uint32_t)count;
		s->len = (uint8_t)len;
		memcpy(s->key, key, len + 1);
		index_put(*ixp, h, s);
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

	if (!name_ok(dst))
		return -EINVAL;
	if ((err = index_reserve(m, &m->pair_ix, m->n_pairs)) != 0)
		return err;
	p = arena_alloc_line(&m->arena, sizeof(*p) + slen + 1 + dlen + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p->keys, s->key, slen + 1);
	memcpy(p->keys + slen + 1, dst, dlen + 1);
	p->slen = (uint8_t)slen;
	p->dlen = (uint8_t)dlen;
	memset(p->app_bits, 0, sizeof(p->app_bits));
	p->src = s;
	p->apps = NULL;
	index_put(m->pair_ix, h, p);
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
	bigger = arena_alloc(&m->arena, sizeof(*bigger) + cap * (sizeof(bigger->name[0]) +
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

static int get_app(struct svcmap *m, struct svc_pair *p, const char *app, struct svc_app **out)
{
	size_t len;
	uint64_t h = str_hash(m->seed, app, &len);
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
		a = arena_alloc(&m->arena, sizeof(*a));
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
static int get_pair(struct svcmap *m, const char *src, const char *dst, struct svc_pair **pair)
{
	struct svc_key *s;
	struct svc_pair *p = NULL;
	size_t slen, dlen = 0;
	uint64_t hs = str_hash(m->seed, src, &slen), hp = 0;
	int err;

	if (dst) {
		hp = pair_hash(hs, str_hash(m->seed, dst, &dlen));
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
static int get_entry(struct svcmap *m, const char *src, const char *dst, const char *app,
		     struct svc_app **out)
{
	struct svc_pair *p;
	int err = get_pair(m, src, dst, &p);

	if (err || !dst || !app)
		return err;
	return get_app(m, p, app, out);
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
			err = get_entry(into, s->key, NULL, NULL, NULL);
	}
	ix = LOAD_PTR(from->pair_ix);
	for (size_t i = 0; i <= ix->mask && !err; i++) {
		const struct svc_pair *p = LOAD_PTR(ix->slot[i].node);
		if (!p)
			continue;
		err = get_entry(into, p->src->key, pair_dst(p), NULL, NULL);
		const struct app_set *set = LOAD_PTR(p->apps);
		uint32_t n = set ? __atomic_load_n(&set->n, __ATOMIC_ACQUIRE) : 0;
		for (uint32_t j = 0; j < n && !err; j++) {
			const struct svc_app *a = app_of(set)[j];
			struct svc_app *to;
			struct svcmap_counters c;
			err = get_entry(into, p->src->key, pair_dst(p), a->name->key, &to);
			if (!err) {
				counters_read(a, &c);
				counters_add(to, &c);
			}
		}
	}
	return err;
}

/* ---- sorted iteration ---------------------------------------------------------------------- */

/* Nodes as index_collect gives them: src[i] is a const struct svc_key *, pair[i] a const
 * struct svc_pair *. */
struct sorted {
	const void **src;
	size_t n_src;
	const void **pair;
	size_t n_pair;
};

static int cmp_src(const void *a, const void *b)
{
	const struct svc_key *x = *(const void *const *)a;
	const struct svc_key *y = *(const void *const *)b;
	return strcmp(x->key, y->key);
}

static int cmp_pair(const void *a, const void *b)
{
	const struct svc_pair *x = *(const void *const *)a;
	const struct svc_pair *y = *(const void *const *)b;
	int c = strcmp(x->src->key, y->src->key);
	return c ? c : strcmp(pair_dst(x), pair_dst(y));
}

static int cmp_app(const void *a, const void *b)
{
	const struct svc_app *x = *(const struct svc_app *const *)a;
	const struct svc_app *y = *(const struct svc_app *const *)b;
	return strcmp(x->name->key, y->name->key);
}

static const struct svc_pair *pair_at(const struct sorted *so, size_t i)
{
	return so->pair[i];
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
	int err;

	memset(so, 0, sizeof(*so));
	if ((err = index_collect(LOAD_PTR(m->src_ix), &so->src, &so->n_src)) != 0)
		return err;
	if ((err = index_collect(LOAD_PTR(m->pair_ix), &so->pair, &so->n_pair)) != 0) {
		sorted_free(so);
		return err;
	}
	qsort(so->src, so->n_src, sizeof(*so->src), cmp_src);
	qsort(so->pair, so->n_pair, sizeof(*so->pair), cmp_pair);
	return 0;
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
		v[i] = app_of(set)[i];
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
		const struct svc_pair *p = so.pair[i];
		if (sorted_apps(p, &apps, &n) != 0)
			break;
		for (size_t j = 0; j < n; j++) {
			struct svcmap_counters c;
			counters_read(apps[j], &c);
			fn(ctx, p->src->key, pair_dst(p), apps[j]->name->key, &c);
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
		const struct svc_key *s = so.src[si];
		bool first_dst = true;
		fputs(si ? ",\n    " : "\n    ", f);
		put_str(f, s->key);
		fputs(": {", f);
		/* so.pair is sorted by source key, so this source's pairs are next in line. */
		while (pi < so.n_pair && strcmp(pair_at(&so, pi)->src->key, s->key) < 0)
			pi++;
		for (; pi < so.n_pair && pair_at(&so, pi)->src == s; pi++) {
			const struct svc_pair *p = pair_at(&so, pi);
			const struct svc_app **apps;
			size_t n;
			fputs(first_dst ? "\n      " : ",\n      ", f);
			first_dst = false;
			put_str(f, pair_dst(p));
			fputs(": {", f);
			err = sorted_apps(p, &apps, &n);
			if (err)
				break;
			for (size_t j = 0; j < n; j++) {
				struct svcmap_counters c;
				counters_read(apps[j], &c);
				fputs(j ? ",\n        " : "\n        ", f);
				put_str(f, apps[j]->name->key);
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

static int check_name(const char *path, const char *where, const char *what, const char *name)
{
	if (name_ok(name))
		return 0;
	load_err(path, where, "bad %s \"%s\": expected 1 to %d characters, no control characters",
		 what, name, NAME_MAX_LEN);
	return -EINVAL;
}

/* The file is parsed as a stream (yajl) and the map built as the parser goes: no document
 * tree is held, so loading takes about the map's own memory and a fraction of the time
 * (an 18 MB map: jansson's tree peaked at ~120 MB; a 4.5 MB map loaded in 190 ms before).
 * Every check of the format stays: each message names the JSON path and the reason. */
enum level { L_DOC, L_TOP, L_SOURCES, L_DSTS, L_APPS, L_COUNTERS };
#define KEY_BUF (NAME_MAX_LEN + 2)
enum top_member { T_NONE, T_FORMAT, T_VERSION, T_SOURCES };
enum kind { K_OBJECT, K_ARRAY, K_STRING, K_INTEGER, K_REAL, K_TRUE, K_FALSE, K_NULL };

static const char *const kind_name[] = {"an object",   "an array",	 "a string", "an integer",
					"a real number", "true", "false",	 "null"};

struct map_loader {
	const char *path;
	struct svcmap *m;
	enum level level;
	enum top_member top; /* the top-level member whose value comes next */
	bool have_format, have_version, have_sources;
	char sk[KEY_BUF], dk[KEY_BUF], ak[KEY_BUF]; /* a longer key is cut, then refused */
	struct jpath w1, w2, w3; /* sources["s"], ...["d"], ...["a"] */
	struct svc_pair *pair;
	struct svcmap_counters c;
	int counter;	       /* index in counter_names of the member whose value comes next */
	unsigned seen_counters; /* bit i: counter_names[i] given */
	int err;	       /* reported already: the parse stops */
};

static const char *const counter_names[] = {"flows", "bytes", "first_seen_ms", "last_seen_ms"};

/* A key as a C string (a longer one is cut, then refused by check_name). */
static void key_copy(char *out, size_t size, const unsigned char *k, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(out, k, len);
	out[len] = '\0';
}

/* A host key or application name into out, checked (a NUL byte, "\u0000", is refused too:
 * the name would be cut). 0 or -EINVAL after one line. */
static int name_key(struct map_loader *ld, char *out, const unsigned char *k, size_t len,
		    const char *where, const char *what)
{
	key_copy(out, KEY_BUF, k, len);
	if (memchr(k, '\0', len)) {
		load_err(ld->path, where, "bad %s \"%s\\u0000...\": contains a NUL character",
			 what, out);
		return -EINVAL;
	}
	return check_name(ld->path, where, what, out);
}

static int stop(struct map_loader *ld, int err)
{
	ld->err = err;
	return 0; /* yajl: cancel the parse */
}

/* The value at this level must be an object (what it holds: `what`); it opens level next. */
static int open_object(struct map_loader *ld, enum kind k, const char *where, const char *what,
		       enum level next)
{
	if (k != K_OBJECT) {
		load_err(ld->path, where, "expected an object of %s, got %s", what, kind_name[k]);
		return stop(ld, -EINVAL);
	}
	ld->level = next;
	return 1;
}

/* A value of the given kind where the level expects one (K_OBJECT also opens it). */
static int on_value(struct map_loader *ld, enum kind k, const char *str, size_t slen,
		    long long num)
{
	switch (ld->level) {
	case L_DOC:
		if (k != K_OBJECT) {
			load_err(ld->path, NULL, "expected a JSON object at the top level, got %s",
				 kind_name[k]);
			return stop(ld, -EINVAL);
		}
		ld->level = L_TOP;
		return 1;
	case L_TOP:
		if (ld->top == T_FORMAT) {
			if (k != K_STRING || slen != strlen(MAP_FORMAT) ||
			    memcmp(str, MAP_FORMAT, slen) != 0) {
				if (k == K_STRING)
					load_err(ld->path, "format", "expected \"%s\", got \"%.*s\"",
						 MAP_FORMAT, (int)(slen > 64 ? 64 : slen), str);
				else
					load_err(ld->path, "format", "expected \"%s\", got %s",
						 MAP_FORMAT, kind_name[k]);
				return stop(ld, -EINVAL);
			}
		} else if (ld->top == T_VERSION) {
			if (k != K_INTEGER) {
				load_err(ld->path, "version", "expected an integer, got %s",
					 kind_name[k]);
				return stop(ld, -EINVAL);
			}
			if (num != MAP_VERSION) {
				load_err(ld->path, "version",
					 "unsupported version %lld (this build reads version %d)", num,
					 MAP_VERSION);
				return stop(ld, -EINVAL);
			}
		} else {
			ld->top = T_NONE;
			return open_object(ld, k, "sources", "source keys", L_SOURCES);
		}
		ld->top = T_NONE;
		return 1;
	case L_SOURCES:
		return open_object(ld, k, ld->w1.buf, "destinations", L_DSTS);
	case L_DSTS:
		return open_object(ld, k, ld->w2.buf, "applications", L_APPS);
	case L_APPS:
		memset(&ld->c, 0, sizeof(ld->c));
		ld->seen_counters = 0;
		return open_object(ld, k, ld->w3.buf,
				   "counters {\"flows\", \"bytes\", \"first_seen_ms\", "
				   "\"last_seen_ms\"}",
				   L_COUNTERS);
	case L_COUNTERS: {
		const char *name = counter_names[ld->counter];
		uint64_t *fields[] = {&ld->c.flows, &ld->c.bytes, &ld->c.first_ms, &ld->c.last_ms};
		if (k != K_INTEGER) {
			load_err(ld->path, ld->w3.buf, "%s: expected a non-negative integer, got %s",
				 name, kind_name[k]);
			return stop(ld, -EINVAL);
		}
		if (num < 0) {
			load_err(ld->path, ld->w3.buf,
				 "%s: expected a non-negative integer, got %lld", name, num);
			return stop(ld, -EINVAL);
		}
		*fields[ld->counter] = (uint64_t)num;
		return 1;
	}
	}
	return 1;
}

static int on_key(void *ctx, const unsigned char *k, size_t len)
{
	struct map_loader *ld = ctx;
	size_t n_before;
	int err;

	switch (ld->level) {
	case L_TOP: {
		char key[64];
		bool *have = NULL;
		key_copy(key, sizeof(key), k, len);
		if (!strcmp(key, "format")) {
			ld->top = T_FORMAT;
			have = &ld->have_format;
		} else if (!strcmp(key, "version")) {
			ld->top = T_VERSION;
			have = &ld->have_version;
		} else if (!strcmp(key, "sources")) {
			ld->top = T_SOURCES;
			have = &ld->have_sources;
		} else {
			load_err(ld->path, NULL,
				 "unknown member \"%s\" (expected format, version, sources)", key);
			return stop(ld, -EINVAL);
		}
		if (*have) {
			load_err(ld->path, NULL, "duplicate member \"%s\"", key);
			return stop(ld, -EINVAL);
		}
		*have = true;
		return 1;
	}
	case L_SOURCES:
		if ((err = name_key(ld, ld->sk, k, len, "sources", "source key")) != 0)
			return stop(ld, err);
		jpath_member(&ld->w1, "sources", ld->sk);
		n_before = ld->m->n_sources;
		if ((err = get_entry(ld->m, ld->sk, NULL, NULL, NULL)) != 0)
			return stop(ld, err);
		if (ld->m->n_sources == n_before) {
			load_err(ld->path, "sources", "duplicate source key \"%s\"", ld->sk);
			return stop(ld, -EINVAL);
		}
		return 1;
	case L_DSTS:
		if ((err = name_key(ld, ld->dk, k, len, ld->w1.buf, "destination key")) != 0)
			return stop(ld, err);
		jpath_member(&ld->w2, ld->w1.buf, ld->dk);
		n_before = ld->m->n_pairs;
		if ((err = get_pair(ld->m, ld->sk, ld->dk, &ld->pair)) != 0)
			return stop(ld, err);
		if (ld->m->n_pairs == n_before) {
			load_err(ld->path, ld->w1.buf, "duplicate destination key \"%s\"", ld->dk);
			return stop(ld, -EINVAL);
		}
		return 1;
	case L_APPS:
		if ((err = name_key(ld, ld->ak, k, len, ld->w2.buf, "application name")) != 0)
			return stop(ld, err);
		jpath_member(&ld->w3, ld->w2.buf, ld->ak);
		return 1;
	case L_COUNTERS: {
		char key[64];
		key_copy(key, sizeof(key), k, len);
		for (ld->counter = 0; ld->counter < (int)SVC_ARRAY_LEN(counter_names); ld->counter++)
			if (!strcmp(key, counter_names[ld->counter]))
				break;
		if (ld->counter == (int)SVC_ARRAY_LEN(counter_names)) {
			load_err(ld->path, ld->w3.buf,
				 "unknown member \"%s\" (expected flows, bytes, first_seen_ms, "
				 "last_seen_ms)",
				 key);
			return stop(ld, -EINVAL);
		}
		if (ld->seen_counters & (1u << ld->counter)) {
			load_err(ld->path, ld->w3.buf, "duplicate member \"%s\"", key);
			return stop(ld, -EINVAL);
		}
		ld->seen_counters |= 1u << ld->counter;
		return 1;
	}
	case L_DOC:
		break;
	}
	return 1;
}

/* The end of an object: an application's counters are complete, or a level closes. */
static int on_end_map(void *ctx)
{
	struct map_loader *ld = ctx;
	struct svc_app *a;
	size_t n_before;
	int err;

	switch (ld->level) {
	case L_COUNTERS:
		if (ld->c.first_ms && ld->c.last_ms && ld->c.first_ms > ld->c.last_ms) {
			load_err(ld->path, ld->w3.buf,
				 "first_seen_ms (%" PRIu64 ") is after last_seen_ms (%" PRIu64 ")",
				 ld->c.first_ms, ld->c.last_ms);
			return stop(ld, -EINVAL);
		}
		n_before = ld->m->n_entries;
		if ((err = get_app(ld->m, ld->pair, ld->ak, &a)) != 0)
			return stop(ld, err);
		if (ld->m->n_entries == n_before) {
			load_err(ld->path, ld->w2.buf, "duplicate application name \"%s\"", ld->ak);
			return stop(ld, -EINVAL);
		}
		counters_add(a, &ld->c);
		ld->level = L_APPS;
		return 1;
	case L_APPS:
		ld->level = L_DSTS;
		return 1;
	case L_DSTS:
		ld->level = L_SOURCES;
		return 1;
	case L_SOURCES:
		ld->level = L_TOP;
		return 1;
	case L_TOP:
		ld->level = L_DOC;
		return 1;
	case L_DOC:
		break;
	}
	return 1;
}

static int on_start_map(void *ctx)
{
	return on_value(ctx, K_OBJECT, NULL, 0, 0);
}

static int on_start_array(void *ctx)
{
	return on_value(ctx, K_ARRAY, NULL, 0, 0); /* never a valid value here: it stops */
}

static int on_null(void *ctx)
{
	return on_value(ctx, K_NULL, NULL, 0, 0);
}

static int on_bool(void *ctx, int b)
{
	return on_value(ctx, b ? K_TRUE : K_FALSE, NULL, 0, 0);
}

static int on_integer(void *ctx, long long v)
{
	return on_value(ctx, K_INTEGER, NULL, 0, v);
}

static int on_double(void *ctx, double v)
{
	(void)v;
	return on_value(ctx, K_REAL, NULL, 0, 0);
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
	return on_value(ctx, K_STRING, (const char *)s, len, 0);
}

static const yajl_callbacks map_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_bool,
    .yajl_integer = on_integer,
    .yajl_double = on_double,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
};

/* Line and column (1-based line, 0-based column, as jansson counted) of byte `at` of the
 * chunk, given where the chunk starts. */
static void position(const unsigned char *chunk, size_t at, unsigned *line, unsigned *col)
{
	for (size_t i = 0; i < at; i++) {
		if (chunk[i] == '\n') {
			(*line)++;
			*col = 0;
		} else {
			(*col)++;
		}
	}
}

/* yajl's own words, one line: "parse error: premature EOF", "lexical error: invalid char in
 * json text", ... (its verbose form adds the text around the error on more lines). */
static void syntax_err(const char *path, yajl_handle h, const unsigned char *chunk, size_t len,
		       unsigned line, unsigned col)
{
	unsigned char *msg = yajl_get_error(h, 0, chunk, len);
	char text[160];
	size_t at = yajl_get_bytes_consumed(h);
	snprintf(text, sizeof(text), "%s", msg ? (const char *)msg : "syntax error");
	text[strcspn(text, "\n")] = '\0';
	if (at > len)
		at = len;
	position(chunk, at, &line, &col);
	svc_err("%s:%u:%u: %s", path, line, col, text);
	if (msg)
		yajl_free_error(h, msg);
}

struct svcmap *svcmap__load(const char *path, bool *missing)
{
	struct map_loader ld = {.path = path, .level = L_DOC};
	unsigned char buf[64 * 1024];
	unsigned line = 1, col = 0;
	struct stat st;
	yajl_handle h = NULL;
	bool any = false;
	int fd, err = 0;

	if (missing)
		*missing = false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && missing) {
			*missing = true;
			return NULL;
		}
		svc_err("%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		svc_err("%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	ld.m = svcmap__new();
	h = ld.m ? yajl_alloc(&map_callbacks, NULL, &ld) : NULL;
	if (!h) {
		load_err(path, NULL, "out of memory");
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			svc_err("%s: cannot read: %s", path, strerror(errno));
			err = -errno;
			goto out;
		}
		yajl_status ys = n ? yajl_parse(h, buf, (size_t)n) : yajl_complete_parse(h);
		if (ys == yajl_status_client_canceled) {
			err = ld.err; /* said already */
			goto out;
		}
		if (ys != yajl_status_ok) {
			if (!n && !any)
				load_err(path, NULL, "empty file: not a service map");
			else
				syntax_err(path, h, buf, n ? (size_t)n : 0, line, col);
			err = -EINVAL;
			goto out;
		}
		if (!n)
			break;
		any = true;
		position(buf, (size_t)n, &line, &col);
	}
	if (!ld.have_format) {
		load_err(path, NULL, "no \"format\": \"%s\" member: not a service map file",
			 MAP_FORMAT);
		err = -EINVAL;
	} else if (!ld.have_version) {
		load_err(path, NULL, "no \"version\" member");
		err = -EINVAL;
	} else if (!ld.have_sources) {
		load_err(path, NULL, "no \"sources\" member");
		err = -EINVAL;
	}
out:
	if (err == -ENOMEM && !ld.err)
		load_err(path, NULL, "out of memory");
	if (h)
		yajl_free(h);
	close(fd);
	if (err) {
		svcmap__free(ld.m);
		return NULL;
	}
	/* Nobody reads this map yet: the indexes it outgrew while loading can go now. */
	free_retired(ld.m);
	return ld.m;
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

/* At most 45 characters + NUL: fits HOSTKEY_LEN. */
static void addr_text(const uint8_t *addr, uint8_t ipver, char out[HOSTKEY_LEN])
{
	flow__addr_str(addr, ipver, out, HOSTKEY_LEN);
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
		memcpy(out, "remote", sizeof("remote"));
		return;
	}
}
