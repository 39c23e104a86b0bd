/* strtab.h - the one open-addressing string table: a set of string pointers (interning),
 * found by content. Used for the report's per-verdict sources and per-source destinations and
 * for the per-module server names of dpi.c.
 *
 * What it stores: the pointer to each key, never a copy. The caller owns the keys and keeps
 * each one in place, unchanged, while it is in the table; a key usually sits inside the
 * caller's node (a flexible array member) and the caller gets its node back from the found
 * pointer with offsetof. Slots are {64-bit hash, key pointer}: a probe compares strings only
 * when the stored hash matches.
 *
 * Hashing: hash.h's seeded family (strtab__hash = hash__str with the process seed), since the
 * keys come from the traffic. Linear probing, power-of-two capacity (at least 8), at most 7/10
 * full; growing rehashes from the stored hashes and never reads a key.
 *
 * Threading. A private table (the zero-initialised struct, or strtab__init(t, false)) belongs
 * to one thread. A shared table (strtab__init(t, true)) has one writer (add, reserve) and any
 * number of concurrent readers (find, next, count): a key is published with a release store
 * after its hash, and a grown slot array with a release store of the array pointer; outgrown
 * arrays are kept (a reader may still probe one) until strtab__free. strtab__remove is for
 * private tables only.
 *
 * Errors: 0 or -ENOMEM. Costs: find is one hash of the key plus a probe; add and remove are
 * O(1) on average; a table of n keys holds 16 bytes per slot, under 2 * 16 / 0.7 * n. */
#ifndef SVCSENSOR_STRTAB_H
#define SVCSENSOR_STRTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strtab_array; /* mask, then the slots */

struct strtab {
	struct strtab_array *a; /* NULL until the first add or reserve */
	size_t n;		/* keys in the table */
	bool shared;		/* concurrent readers: keep outgrown arrays until strtab__free */
	struct strtab_array *retired;
};

/* An empty table, private (false) or shared with concurrent readers (true). Allocates
 * nothing; a zeroed struct strtab is an empty private table too. */
void strtab__init(struct strtab *t, bool shared);

/* Free the slot arrays (the keys stay the caller's). The table is then empty and reusable. */
void strtab__free(struct strtab *t);

/* The hash of key that find and add use. */
uint64_t strtab__hash(const char *key);

/* The stored pointer of the key equal to key, or NULL. When h is not NULL it receives the
 * key's hash, for a strtab__add that follows a miss. */
const char *strtab__find(const struct strtab *t, const char *key, uint64_t *h);

/* The same with the key's hash (strtab__hash) already known. */
const char *strtab__find_h(const struct strtab *t, const char *key, uint64_t h);

/* Add key, known absent, whose hash is h. The pointer itself is stored (see above). 0 or
 * -ENOMEM (the table is unchanged). */
int strtab__add(struct strtab *t, const char *key, uint64_t h);

/* Make room for n keys in all, so that adding up to n never grows the table. 0 or -ENOMEM. */
int strtab__reserve(struct strtab *t, size_t n);

/* Remove the key equal to key (private tables only). Its stored pointer, or NULL when absent. */
const char *strtab__remove(struct strtab *t, const char *key);

/* Number of keys. */
size_t strtab__count(const struct strtab *t);

/* Walk the keys in slot order (no particular order): start with *pos = 0; each call returns the
 * next stored pointer, NULL at the end. For a table nobody adds to during the walk (a reader
 * of a shared table that a writer may grow takes strtab__collect instead). */
const char *strtab__next(const struct strtab *t, size_t *pos);

/* A snapshot of the stored pointers, in slot order, into a malloc'd array (*out, caller frees;
 * *n keys). Safe against the writer of a shared table: keys added meanwhile may be left out.
 * 0 or -ENOMEM. */
int strtab__collect(const struct strtab *t, const char ***out, size_t *n);

#endif
