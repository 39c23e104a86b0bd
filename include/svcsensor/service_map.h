/* service_map.h - the service map store: map[source key][destination key] = set of application
 * names, with per-entry counters (src/map/store.c, src/map/index.c).
 *
 * Related headers, included below so that one include still gives the whole map:
 *   svcsensor/hostkey.h      host keys (HOSTKEY_LEN, hostkey__of);
 *   svcsensor/map_file.h     the JSON file: svcmap__load, svcmap__save;
 *   svcsensor/map_publish.h  the RCU pointer of the map in force: svcmap__current, svcmap__publish;
 *   svcsensor/map_holder.h   the map in force of a run: initial load, SIGHUP reload on a loader
 *                            thread, learn-mode saves on a saver thread.
 *
 * Readers (the detector) look up under rcu_read_lock() (liburcu memb flavour, <urcu.h>) and
 * never block. In learn mode the detector thread is the only writer.
 *
 * In memory: flat open-addressing indexes (sources, (source, destination) pairs, interned
 * application names) of {64-bit hash, node} slots; each key string is hashed once per lookup
 * (src/map/store.c). Freeing a map is a few free() calls, whatever its size.
 *
 * Errors: 0 or a negative errno; nothing here prints (the file functions do, map_file.h).
 * Ownership: a map belongs to whoever made it (svcmap__new, svcmap__load) until it is published.
 *
 * Threads: every thread that calls an svcmap__ function (reader, writer, loader, publisher) must
 * be registered with liburcu: rcu_register_thread() once at its start (<urcu.h>),
 * rcu_unregister_thread() before it ends (read-side sections and svcmap__publish's grace
 * period require it). Supported concurrency:
 *   - any number of readers (lookups, get, size, foreach, save) of a map nobody writes;
 *   - at most one writer per map at a time (learn, merge into it; the caller serialises
 *     writers), with any number of concurrent readers: lock-free reads stay safe while the
 *     single writer adds entries and grows the indexes (an entry is seen absent or whole);
 *   - svcmap__free only once no other thread can use the map (svcmap__publish ensures it). */
#ifndef SVCSENSOR_SERVICE_MAP_H
#define SVCSENSOR_SERVICE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "svcsensor/config.h"
#include "svcsensor/flow.h"
#include "svcsensor/hostkey.h"

/* Counters of one (source, destination, application) entry. Times are ms since the epoch. */
struct svcmap_counters {
	uint64_t flows, bytes;
	uint64_t first_ms, last_ms;
};

struct svcmap;

struct svcmap *svcmap__new(void);
void svcmap__free(struct svcmap *m); /* not while readers may hold it: see svcmap__publish */

/* Add one observation (learn mode; single writer): flows + 1, bytes + bytes, first/last widened
 * (first_ms 0 = unknown). 0, -ENOMEM, or -EINVAL for a name that could not be saved (empty,
 * longer than 255 bytes, control characters, not UTF-8). */
int svcmap__learn(struct svcmap *m, const char *src, const char *dst, const char *app,
		  uint64_t bytes, uint64_t first_ms, uint64_t last_ms);

/* Merge every entry of from into into (counters added, first/last widened). into != from.
 * 0, -ENOMEM or -EINVAL. */
int svcmap__merge(struct svcmap *into, const struct svcmap *from);

/* How far (src, dst, app) gets in the map: the verdict's first three questions in one walk,
 * each key hashed once. A NULL map is empty. Call under rcu_read_lock(); never blocks. */
enum svcmap_match {
	SVCMAP_NO_SOURCE = 0,  /* src is not a source */
	SVCMAP_NO_DESTINATION, /* dst is not a destination of src (or dst is NULL) */
	SVCMAP_NO_APP,	       /* app never seen for the pair (or app is NULL) */
	SVCMAP_MATCH,	       /* app is in the pair's set */
};
enum svcmap_match svcmap__lookup(const struct svcmap *m, const char *src, const char *dst,
				 const char *app);

/* Lookups; call under rcu_read_lock(). A NULL map is empty. */
bool svcmap__has_source(const struct svcmap *m, const char *src);
bool svcmap__has_pair(const struct svcmap *m, const char *src, const char *dst);
bool svcmap__has_app(const struct svcmap *m, const char *src, const char *dst, const char *app);
/* Counters of an entry; false when absent. */
bool svcmap__get(const struct svcmap *m, const char *src, const char *dst, const char *app,
		 struct svcmap_counters *out);

/* Sizes: sources, (src,dst) pairs, (src,dst,app) entries. */
void svcmap__size(const struct svcmap *m, size_t *sources, size_t *pairs, size_t *entries);

/* Iterate every entry (sorted by source, destination, app: deterministic output). Under
 * rcu_read_lock(); fn must not modify the map. Allocates a sorted index (skips on ENOMEM). */
typedef void (*svcmap_visit_fn)(void *ctx, const char *src, const char *dst, const char *app,
				const struct svcmap_counters *cnt);
void svcmap__foreach(const struct svcmap *m, svcmap_visit_fn fn, void *ctx);

#include "svcsensor/map_file.h"
#include "svcsensor/map_publish.h"

#endif
