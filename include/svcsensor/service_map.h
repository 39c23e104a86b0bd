/* service_map.h - map[source key][destination key] = set of application names, with per-entry
 * counters; host keys; JSON load/save; RCU publication.
 *
 * Readers (the detector) look up under rcu_read_lock() (liburcu memb flavour, <urcu.h>) and
 * never block; a whole new map is swapped in with svcmap__publish (SIGHUP reload). In learn mode
 * the detector thread is the only writer. */
#ifndef SVCSENSOR_SERVICE_MAP_H
#define SVCSENSOR_SERVICE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "svcsensor/config.h"
#include "svcsensor/flow.h"

#define HOSTKEY_LEN 48 /* "remote", an IPv6 address, or "2001:db8::/48" */

/* Host key of an address (SPEC.md, Host keys): inside local_networks its text form; otherwise
 * "remote", or the address / prefix per remote_mode. Writes a NUL-terminated key into out. */
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

/* Load a map file. NULL after one line on stderr ("map.json:12: expected an array ...") if the
 * file is unreadable or malformed; *missing (if non-NULL) set to true when it does not exist. */
struct svcmap *svcmap__load(const char *path, bool *missing);

/* Write the map to path atomically (temporary file in the same directory, fsync, rename).
 * 0 or negative errno after one line on stderr. The old file stays whole on any failure. */
int svcmap__save(const struct svcmap *m, const char *path);

/* Add one observation (learn mode; single writer). 0 or -ENOMEM. */
int svcmap__learn(struct svcmap *m, const char *src, const char *dst, const char *app,
		  uint64_t bytes, uint64_t first_ms, uint64_t last_ms);

/* Merge every entry of from into into (counters added, first/last widened). 0 or -ENOMEM. */
int svcmap__merge(struct svcmap *into, const struct svcmap *from);

/* Lookups; call under rcu_read_lock(). */
bool svcmap__has_source(const struct svcmap *m, const char *src);
bool svcmap__has_pair(const struct svcmap *m, const char *src, const char *dst);
bool svcmap__has_app(const struct svcmap *m, const char *src, const char *dst, const char *app);
/* Counters of an entry; false when absent. */
bool svcmap__get(const struct svcmap *m, const char *src, const char *dst, const char *app,
		 struct svcmap_counters *out);

/* Sizes: sources, (src,dst) pairs, (src,dst,app) entries. */
void svcmap__size(const struct svcmap *m, size_t *sources, size_t *pairs, size_t *entries);

/* Iterate every entry (sorted by source, destination, app: deterministic output). */
typedef void (*svcmap_visit_fn)(void *ctx, const char *src, const char *dst, const char *app,
				const struct svcmap_counters *cnt);
void svcmap__foreach(const struct svcmap *m, svcmap_visit_fn fn, void *ctx);

/* RCU publication: the current map pointer. svcmap__current under rcu_read_lock();
 * svcmap__publish swaps in a new map and frees the old one after a grace period. */
struct svcmap_ref {
	struct svcmap *map; /* rcu_dereference / rcu_xchg_pointer */
};
struct svcmap *svcmap__current(struct svcmap_ref *ref);
void svcmap__publish(struct svcmap_ref *ref, struct svcmap *next);

#endif
