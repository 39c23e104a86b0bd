/* map_publish.h - RCU publication of a service map (src/map/publish.c): the pointer to the
 * map in force.
 *
 * svcmap__current under rcu_read_lock(); svcmap__publish swaps in a new map (NULL allowed; the
 * ref then owns it) and frees the old one after a grace period (synchronize_rcu: it blocks
 * until every reader has left its read-side section, so it must not be called under
 * rcu_read_lock, and should not be called on a thread that must not wait: src/map/holder.c
 * calls it on its loader thread). One publisher at a time. Threads registered with liburcu
 * (see service_map.h). No errors. */
#ifndef SVCSENSOR_MAP_PUBLISH_H
#define SVCSENSOR_MAP_PUBLISH_H

struct svcmap;

struct svcmap_ref {
	struct svcmap *map; /* rcu_dereference / rcu_xchg_pointer */
};
struct svcmap *svcmap__current(struct svcmap_ref *ref);
void svcmap__publish(struct svcmap_ref *ref, struct svcmap *next);

#endif
