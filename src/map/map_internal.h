/* map_internal.h - what the files of src/map/ share about a map's memory; not a public header
 * (include it as "map_internal.h" from src/map/ only).
 *
 * The layout and its reasons, the concurrency rules (one writer, any number of lock-free
 * readers) and the publication order readers rely on are described at the top of
 * src/map/store.c. Here: the node and index types, the atomic access macros, and the
 * functions one file of the map calls in another:
 *   src/map/index.c  indexes (open addressing), the node arena, the sorted walk;
 *   src/map/store.c  hashing, lookups, the writer (find or add), construction, learn, merge;
 *   src/map/file.c   the streaming loader and the atomic save;
 *   src/map/publish.c  the RCU pointer of the map in force.
 * Errors: 0 or a negative errno, as in the public headers; nothing here prints. Threading: the
 * map_index_*, map_arena_* and map_get_* functions are the writer's (one per map at a time);
 * map_index_collect, map_sorted_* and map_counters_read are readers' (any thread, under
 * rcu_read_lock when the map is shared). */
#ifndef SVCSENSOR_MAP_INTERNAL_H
#define SVCSENSOR_MAP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "svcsensor/service_map.h"
#include "svcsensor/tsan.h"

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
/* Stands for "every read-side section that ended": released at the end of every lookup and
 * walk, acquired after a grace period (src/map/publish.c). Defined in src/map/store.c. */
extern char svcmap_grace_sync;
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
	uint64_t seed; /* hash__seed() (include/svcsensor/hash.h) */
	size_t n_sources, n_pairs, n_entries; /* relaxed atomics */
	size_t n_names;			      /* the writer's own */
	struct index *retired_ix;	      /* outgrown indexes, freed with the map */
	struct arena arena;		      /* every node (the writer's own) */
};

/* Counters of an entry, each read whole (relaxed atomics; the four are not one snapshot). */
static inline void map_counters_read(const struct svc_app *a, struct svcmap_counters *out)
{
	out->flows = LOAD(a->flows);
	out->bytes = LOAD(a->bytes);
	out->first_ms = LOAD(a->first_ms);
	out->last_ms = LOAD(a->last_ms);
}

/* ---- src/map/index.c: indexes ---- */

/* Slots for n entries at most INDEX_LOAD_NUM/INDEX_LOAD_DEN full; 0 when that cannot be
 * allocated anyway. */
size_t map_index_cap_for(size_t n);
/* An empty index of cap slots (a power of two; 0 gives NULL), cache-line aligned. NULL on
 * ENOMEM. */
struct index *map_index_new(size_t cap);
void map_index_free(struct index *ix);
/* Writer: put (h, node) into the first empty slot of its probe sequence (the key is known
 * absent). The release store publishes the node and the slot's hash to readers. */
void map_index_put(struct index *ix, uint64_t h, void *node);
/* Writer: make room for one more entry in *ixp (one of m's indexes), which holds count
 * entries; a full index is rehashed into one twice the size, published, and the old one
 * retired (freed with the map). 0 or -ENOMEM. */
int map_index_reserve(struct svcmap *m, struct index **ixp, size_t count);
/* The indexes m outgrew, freed now: only once no reader can hold them. */
void map_free_retired(struct svcmap *m);

/* ---- src/map/index.c: the arena ---- */

/* n bytes, 8-aligned, uninitialised, from the map's arena (writer only). NULL on ENOMEM. */
void *map_arena_alloc(struct arena *a, size_t n);
/* The same, cache-line aligned. */
void *map_arena_alloc_line(struct arena *a, size_t n);
/* Every block, whatever was carved from it. */
void map_arena_free(struct arena *a);

/* ---- src/map/index.c: the sorted walk ---- */

/* Nodes in key order: src[i] is a const struct svc_key *, pair[i] a const struct svc_pair *. */
struct sorted {
	const void **src;
	size_t n_src;
	const void **pair;
	size_t n_pair;
};
/* Snapshot the sources and pairs of m in key order (reader). 0 or -ENOMEM. A concurrent
 * writer's later additions may be left out; a pair whose source is not in the snapshot may be
 * in it (its source is found by pointer, never assumed present). */
int map_sorted_build(const struct svcmap *m, struct sorted *so);
void map_sorted_free(struct sorted *so);
/* The applications of a pair in name order; *out malloc'd (caller frees). 0 or -ENOMEM. */
int map_sorted_apps(const struct svc_pair *p, const struct svc_app ***out, size_t *n_out);

/* ---- src/map/store.c: the writer ---- */

/* Find or add src and, when dst is not NULL, the pair (src, dst) into *pair. 0, -ENOMEM or
 * -EINVAL (a name utf8__name_ok(name, NAME_MAX_LEN) refuses: host keys and
 * application names are 1..255 bytes of well-formed UTF-8, no control characters). */
int map_get_pair(struct svcmap *m, const char *src, const char *dst, struct svc_pair **pair);
/* Find or add the application app of pair p into *out. 0, -ENOMEM or -EINVAL. */
int map_get_app(struct svcmap *m, struct svc_pair *p, const char *app, struct svc_app **out);
/* Find or add (src[, dst[, app]]); NULL dst / app stop early. 0, -ENOMEM or -EINVAL. */
int map_get_entry(struct svcmap *m, const char *src, const char *dst, const char *app,
		  struct svc_app **out);
/* Add c to the entry's counters (saturating; first/last widened, first_ms 0 = unknown). */
void map_counters_add(struct svc_app *a, const struct svcmap_counters *c);

#endif
