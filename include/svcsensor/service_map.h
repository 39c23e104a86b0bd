/* service_map.h - map[source key][destination key] = set of application names, with per-entry
 * counters; host keys; JSON load/save; RCU publication.
 *
 * Readers (the detector) look up under rcu_read_lock() (liburcu memb flavour, <urcu.h>) and
 * never block; a whole new map is swapped in with svcmap__publish (SIGHUP reload). In learn mode
 * the detector thread is the only writer.
 *
 * In memory: flat open-addressing indexes (sources, (source, destination) pairs, interned
 * application names) of {64-bit hash, node} slots; each key string is hashed once per lookup
 * (service_map.c). Freeing a map is a few free() calls, whatever its size.
 *
 * Threads: every thread that calls an svcmap__ function (reader, writer, loader, publisher) must
 * be registered with liburcu: rcu_register_thread() once at its start (<urcu.h>),
 * rcu_unregister_thread() before it ends (read-side sections and svcmap__publish's grace
 * period require it). Supported concurrency:
 *   - any number of readers (lookups, get, size, foreach, save) of a map nobody writes;
 *   - at most one writer per map at a time (learn, merge into it; the caller serialises
 *     writers), with any number of concurrent readers: lock-free reads stay safe while the
 *     single writer adds entries and grows the indexes (an entry is seen absent or whole);
 *   - svcmap__free only once no other thread can use the map (svcmap__publish ensures it).
 *
 * File (JSON, sorted by key, one line per application):
 *   {"format": "svcsensor-map", "version": 1,
 *    "sources": {"10.42.0.130": {"10.42.0.1": {"DNS": {"flows": 12, "bytes": 3400,
 *                                                      "first_seen_ms": 1700000000000,
 *                                                      "last_seen_ms": 1700000009000}}}}}
 * Counters may be left out of a hand-written file (they are then 0). An empty object makes a
 * known source with no destination ("10.42.0.5": {}) or a known pair with no application
 * ("10.42.0.5": {"10.42.0.1": {}}); both survive a save. */
#ifndef SVCSENSOR_SERVICE_MAP_H
#define SVCSENSOR_SERVICE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "svcsensor/config.h"
#include "svcsensor/flow.h"

#define HOSTKEY_LEN 48 /* "remote", an IPv6 address, or "2001:db8::/48" */

/* Host key of an address (README.md, Host keys and the service map): inside local_networks its text form (as
 * inet_ntop writes it); otherwise "remote" (REMOTE_COLLAPSE), the address (REMOTE_ADDRESS) or
 * the masked prefix "203.0.113.0/24", "2001:db8::/48" (REMOTE_PREFIX). IPv4 networks match
 * ipver 4 addresses only, IPv6 networks ipver 6. Writes a NUL-terminated key into out. Per-flow
 * cost: no allocation, no lock, no syscall (~15 ns). */
void hostkey__of(const struct svc_config *c, const uint8_t addr[16], uint8_t ipver,
		 char out[HOSTKEY_LEN]);

/* Counters of one (source, destination, application) entry. Times are ms since the epoch. */
struct svcmap_counters {
	uint64_t flows, bytes;
	uint64_t first_ms, last_ms;
};

struct svcmap;

struct svcmap *svcmap__new(void);
void svcmap__free(struct svcmap *m); /* not while readers may hold it: see svcmap__publish */

/* Load a map file. NULL after one line on stderr if the file is unreadable or malformed:
 *   svcsensor: map.json:12:5: '}' expected near ','                     (parse error)
 *   svcsensor: map.json: sources["10.0.0.1"]["remote"]["DNS"]: flows: expected ...  (content)
 * When the file does not exist and missing is non-NULL, *missing is set to true and nothing is
 * printed (the caller decides whether that is an error). The caller keeps its old map on NULL. */
struct svcmap *svcmap__load(const char *path, bool *missing);

/* Write the map to path atomically (temporary file in the same directory, fflush + fsync,
 * rename, fsync of the directory), mode 0644, sorted by key so that saves diff well.
 * 0 or negative errno after one line on stderr naming path and reason; the old file stays
 * whole and no temporary file is left on any failure. Blocks on disk I/O. */
int svcmap__save(const struct svcmap *m, const char *path);

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

/* RCU publication: the current map pointer. svcmap__current under rcu_read_lock();
 * svcmap__publish swaps in a new map (NULL allowed) and frees the old one after a grace period
 * (synchronize_rcu: it blocks until every reader has left its read-side section, so it must
 * not be called under rcu_read_lock). One publisher at a time. */
struct svcmap_ref {
	struct svcmap *map; /* rcu_dereference / rcu_xchg_pointer */
};
struct svcmap *svcmap__current(struct svcmap_ref *ref);
void svcmap__publish(struct svcmap_ref *ref, struct svcmap *next);

#endif
