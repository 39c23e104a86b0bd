/* strtab.c - open-addressing string table (see strtab.h). */
#include "svcsensor/strtab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/hash.h"

#define STRTAB_MIN_CAP 8
#define LOAD_NUM 7 /* at most 7/10 full */
#define LOAD_DEN 10

#define LOAD_ACQ(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE_REL(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

struct strtab_slot {
	uint64_t hash;	 /* written before key is published */
	const char *key; /* NULL: empty; release store / acquire load */
};

struct strtab_array {
	size_t mask; /* capacity - 1, a power of two minus one */
	struct strtab_array *retired_next;
	struct strtab_slot slot[];
};

void strtab__init(struct strtab *t, bool shared)
{
	memset(t, 0, sizeof(*t));
	t->shared = shared;
}

void strtab__free(struct strtab *t)
{
	struct strtab_array *r, *next;

	for (r = t->retired; r; r = next) {
		next = r->retired_next;
		free(r);
	}
	free(t->a);
	t->a = NULL;
	t->retired = NULL;
	t->n = 0;
}

uint64_t strtab__hash(const char *key)
{
	return hash__str(hash__seed(), key, NULL);
}

const char *strtab__find_h(const struct strtab *t, const char *key, uint64_t h)
{
	const struct strtab_array *a = LOAD_ACQ(t->a);

	if (!a)
		return NULL;
	for (size_t i = h & a->mask;; i = (i + 1) & a->mask) {
		const char *k = LOAD_ACQ(a->slot[i].key);
		if (!k)
			return NULL;
		if (a->slot[i].hash == h && strcmp(k, key) == 0)
			return k;
	}
}

const char *strtab__find(const struct strtab *t, const char *key, uint64_t *h)
{
	uint64_t hh = strtab__hash(key);
	if (h)
		*h = hh;
	return strtab__find_h(t, key, hh);
}

/* Writer: (h, key) into the first empty slot of its probe sequence. */
static void put(struct strtab_array *a, uint64_t h, const char *key)
{
	size_t i = h & a->mask;
	while (a->slot[i].key)
		i = (i + 1) & a->mask;
	a->slot[i].hash = h;
	STORE_REL(a->slot[i].key, key);
}

/* Slots for n keys within the load limit; 0 when that overflows. */
static size_t cap_for(size_t n)
{
	size_t cap = STRTAB_MIN_CAP;
	const size_t max = (SIZE_MAX - sizeof(struct strtab_array)) / sizeof(struct strtab_slot);

	if (n > max / LOAD_DEN)
		return 0;
	while (n * LOAD_DEN > cap * LOAD_NUM) {
		if (cap > max / 2)
			return 0;
		cap <<= 1;
	}
	return cap;
}

/* Rehash into an array of cap slots (stored hashes, no key is read) and publish it. */
static int regrow(struct strtab *t, size_t cap)
{
	struct strtab_array *old = t->a, *a;

	if (!cap)
		return -ENOMEM;
	a = calloc(1, sizeof(*a) + cap * sizeof(a->slot[0]));
	if (!a)
		return -ENOMEM;
	a->mask = cap - 1;
	for (size_t i = 0; old && i <= old->mask; i++)
		if (old->slot[i].key)
			put(a, old->slot[i].hash, old->slot[i].key);
	STORE_REL(t->a, a);
	if (!old)
		return 0;
	if (t->shared) {
		old->retired_next = t->retired;
		t->retired = old;
	} else {
		free(old);
	}
	return 0;
}

int strtab__reserve(struct strtab *t, size_t n)
{
	size_t cap = cap_for(n);
	if (cap && t->a && cap <= t->a->mask + 1)
		return 0;
	return regrow(t, cap);
}

int strtab__add(struct strtab *t, const char *key, uint64_t h)
{
	if (!t->a || (t->n + 1) * LOAD_DEN > (t->a->mask + 1) * LOAD_NUM) {
		size_t cap = cap_for(t->n + 1);
		if (t->a && cap && cap <= t->a->mask + 1)
			cap = (t->a->mask + 1) * 2; /* double: adds stay O(1) on average */
		int err = regrow(t, cap);
		if (err)
			return err;
	}
	put(t->a, h, key);
	__atomic_store_n(&t->n, t->n + 1, __ATOMIC_RELAXED);
	return 0;
}

const char *strtab__remove(struct strtab *t, const char *key)
{
	struct strtab_array *a = t->a;
	uint64_t h = strtab__hash(key);
	const char *found;
	size_t i;

	if (!a)
		return NULL;
	for (i = h & a->mask;; i = (i + 1) & a->mask) {
		found = a->slot[i].key;
		if (!found)
			return NULL;
		if (a->slot[i].hash == h && strcmp(found, key) == 0)
			break;
	}
	/* Backward shift: move up every later key of the run that may sit closer to its home
	 * slot, so that no probe stops early at the hole (no tombstones). */
	for (size_t j = (i + 1) & a->mask; a->slot[j].key; j = (j + 1) & a->mask) {
		size_t home = a->slot[j].hash & a->mask;
		if (((j - home) & a->mask) >= ((j - i) & a->mask)) {
			a->slot[i] = a->slot[j];
			i = j;
		}
	}
	a->slot[i].key = NULL;
	t->n--;
	return found;
}

size_t strtab__count(const struct strtab *t)
{
	return __atomic_load_n(&t->n, __ATOMIC_RELAXED);
}

const char *strtab__next(const struct strtab *t, size_t *pos)
{
	const struct strtab_array *a = LOAD_ACQ(t->a);

	for (; a && *pos <= a->mask; (*pos)++) {
		const char *k = LOAD_ACQ(a->slot[*pos].key);
		if (k) {
			(*pos)++;
			return k;
		}
	}
	return NULL;
}

int strtab__collect(const struct strtab *t, const char ***out, size_t *n_out)
{
	const struct strtab_array *a = LOAD_ACQ(t->a);
	size_t n = 0, k = 0, cap = a ? a->mask + 1 : 0;
	const char **v;

	for (size_t i = 0; i < cap; i++)
		n += LOAD_ACQ(a->slot[i].key) != NULL;
	v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < cap && k < n; i++) {
		const char *key = LOAD_ACQ(a->slot[i].key);
		if (key)
			v[k++] = key;
	}
	*out = v;
	*n_out = k;
	return 0;
}
