/* index.c - the memory of a service map: its open-addressing indexes, the arena its nodes are
 * carved from, and the sorted walk over both (svcmap__foreach, and the save in
 * src/map/file.c). Why this shape and how readers and the one writer share it: the top of
 * src/map/store.c. */
#include "map_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/common.h"

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

/* ---- indexes ------------------------------------------------------------------------------- */

/* Slots for n entries at most INDEX_LOAD_NUM/INDEX_LOAD_DEN full; 0 when that cannot be
 * allocated anyway. */
size_t map_index_cap_for(size_t n)
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
struct index *map_index_new(size_t cap)
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

void map_index_free(struct index *ix)
{
	if (ix)
		free(ix->raw);
}

/* Writer: put (h, node) into the first empty slot of its probe sequence (the key is known
 * absent). The release store publishes the node and the slot's hash to readers. */
void map_index_put(struct index *ix, uint64_t h, void *node)
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
int map_index_reserve(struct svcmap *m, struct index **ixp, size_t count)
{
	struct index *ix = *ixp, *bigger;
	size_t cap = ix->mask + 1;

	if ((count + 1) * INDEX_LOAD_DEN <= cap * INDEX_LOAD_NUM)
		return 0;
	bigger = map_index_new(cap <= SIZE_MAX / 4 / sizeof(struct idx_slot) ? cap * 2 : 0);
	if (!bigger)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		if (ix->slot[i].node)
			map_index_put(bigger, ix->slot[i].hash, ix->slot[i].node);
	PUBLISH_PTR(*ixp, bigger);
	ix->retired_next = m->retired_ix;
	m->retired_ix = ix;
	return 0;
}

/* Reader: every node of an index, in slot order, into a malloc'd array (caller frees). 0 or
 * -ENOMEM. Nodes a concurrent writer adds to this index meanwhile may be in it or not; every
 * node added before the call is (a new node can take any empty slot, before or after older
 * ones, so the walk goes to the end of the array instead of stopping at a count taken first;
 * an index the writer outgrows is replaced, never changed further). */
static int map_index_collect(const struct index *ix, const void ***out, size_t *n_out)
{
	size_t n = 0, cap = ix->mask + 1, k = 0, room;
	const void **v, **bigger;

	for (size_t i = 0; i < cap; i++)
		n += LOAD_PTR(ix->slot[i].node) != NULL;
	room = n + n / 16 + 16; /* what the writer may add during the walk */
	v = malloc(room * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++) {
		const void *node = LOAD_PTR(ix->slot[i].node);
		if (!node)
			continue;
		if (k == room) {
			room *= 2;
			bigger = realloc(v, room * sizeof(*v));
			if (!bigger) {
				free(v);
				return -ENOMEM;
			}
			v = bigger;
		}
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
void *map_arena_alloc(struct arena *a, size_t n)
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

/* The same, cache-line aligned (blocks are; the skipped bytes stay poisoned). */
void *map_arena_alloc_line(struct arena *a, size_t n)
{
	size_t pad = (size_t)(-(uintptr_t)a->cur & (CACHE_LINE - 1));

	if (a->cur && (size_t)(a->end - a->cur) >= pad + n)
		a->cur += pad;
	else if (n <= ARENA_MAX_BLOCK / 4)
		a->cur = a->end; /* a fresh block: its data is aligned */
	return map_arena_alloc(a, n);
}

void map_arena_free(struct arena *a)
{
	struct arena_block *b, *next;
	for (b = a->blocks; b; b = next) {
		next = b->next;
		asan_unpoison(b->data, b->size);
		free(b);
	}
	memset(a, 0, sizeof(*a));
}

/* The outgrown indexes, once no reader can probe them (a loaded map before it is published, a
 * map being freed). */
void map_free_retired(struct svcmap *m)
{
	struct index *ix, *ixnext;
	for (ix = m->retired_ix; ix; ix = ixnext) {
		ixnext = ix->retired_next;
		map_index_free(ix);
	}
	m->retired_ix = NULL;
}

/* ---- sorted walk --------------------------------------------------------------------------- */

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

void map_sorted_free(struct sorted *so)
{
	free(so->src);
	free(so->pair);
	memset(so, 0, sizeof(*so));
}

/* Snapshot the sources and pairs in key order. 0 or -ENOMEM. */
int map_sorted_build(const struct svcmap *m, struct sorted *so)
{
	int err;

	memset(so, 0, sizeof(*so));
	if ((err = map_index_collect(LOAD_PTR(m->src_ix), &so->src, &so->n_src)) != 0)
		return err;
	if ((err = map_index_collect(LOAD_PTR(m->pair_ix), &so->pair, &so->n_pair)) != 0) {
		map_sorted_free(so);
		return err;
	}
	qsort(so->src, so->n_src, sizeof(*so->src), cmp_src);
	qsort(so->pair, so->n_pair, sizeof(*so->pair), cmp_pair);
	return 0;
}

/* The applications of a pair in name order; *out malloc'd (caller frees). */
int map_sorted_apps(const struct svc_pair *p, const struct svc_app ***out, size_t *n_out)
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

	if (!m || map_sorted_build(m, &so) != 0)
		return;
	for (size_t i = 0; i < so.n_pair; i++) {
		const struct svc_app **apps;
		size_t n;
		const struct svc_pair *p = so.pair[i];
		if (map_sorted_apps(p, &apps, &n) != 0)
			break;
		for (size_t j = 0; j < n; j++) {
			struct svcmap_counters c;
			map_counters_read(apps[j], &c);
			fn(ctx, p->src->key, pair_dst(p), apps[j]->name->key, &c);
		}
		free(apps);
	}
	map_sorted_free(&so);
	tsan_release(&svcmap_grace_sync);
}
