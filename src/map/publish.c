/* publish.c - the RCU pointer of the map in force (include/svcsensor/map_publish.h): readers
 * take it under rcu_read_lock, one publisher swaps a whole new map in and frees the old one
 * after a grace period. src/map/holder.c publishes from its loader thread, so the grace period
 * is never waited for on the detector thread. */
#include <urcu.h> /* memb flavour: rcu_dereference, rcu_xchg_pointer, synchronize_rcu */

#include "map_internal.h"

#include "svcsensor/map_publish.h"

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
	tsan_acquire(&svcmap_grace_sync);
	svcmap__free(old);
}