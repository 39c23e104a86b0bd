/* map_holder.h - the map in force of a run (src/map/holder.c): the initial load, the SIGHUP
 * reload, learn-mode saves, the final save. The detector owns one and never waits for a disk:
 *
 *   - detect mode: map_holder__reload hands the reload to the holder's background thread (the
 *     loader), which parses the map file while the detector keeps judging against the map in
 *     force, publishes the new map (rcu_xchg_pointer) and frees the old one after a grace
 *     period. A missing or broken file keeps the map in force (one line on stderr, a failure
 *     counted); a good one prints "service map reloaded (N sources, ...)".
 *   - learn mode: the detector thread is the map's only writer (map_holder__learn);
 *     map_holder__save_async hands a save to the background thread (the saver), which walks
 *     the map under rcu_read_lock while learning goes on. A reload never replaces the map
 *     being learned. map_holder__finish saves once more, synchronously, after any running
 *     save: the final file holds everything learned (or a fallback file does, when the map
 *     file cannot be written).
 *
 * The background thread is started at the first job (with every signal blocked: the process's
 * signals stay with the thread that waits for them) and stopped by map_holder__finish or
 * map_holder__free; if it cannot be started the job runs on the caller's thread instead.
 *
 * Errors: map_holder__new returns NULL after one line on stderr; map_holder__finish returns 0
 * or the save's negative errno (svcmap__save said why); the background jobs report on stderr
 * and in the counters. Ownership: the holder owns the map; the configuration is borrowed and
 * must outlive it.
 *
 * Threads: every caller registered with liburcu (rcu_register_thread, <urcu.h>, as for
 * service_map.h). map_holder__current from any reader, under rcu_read_lock; map_holder__learn,
 * map_holder__reload and map_holder__save_async from one thread (the detector's), never inside
 * a read-side section; map_holder__new, map_holder__finish and map_holder__free while no other
 * thread uses the holder (before the detector thread starts, after it is joined). */
#ifndef SVCSENSOR_MAP_HOLDER_H
#define SVCSENSOR_MAP_HOLDER_H

#include <stdbool.h>
#include <stdint.h>

#include "svcsensor/config.h"

struct svcmap;
struct map_holder;

/* Load cfg->map_file. Detect mode: a missing file (or no map_file) warns once and starts from
 * an empty map; a broken or unreadable one is an error. Learn mode: no map_file is an error, a
 * missing file starts a new map ("no service map yet, learning a new one"). NULL after one
 * line on stderr. */
struct map_holder *map_holder__new(const struct svc_config *cfg, bool learn);

/* The map in force (never NULL while the holder lives). Under rcu_read_lock(); the map stays
 * valid until rcu_read_unlock(). Never blocks. */
const struct svcmap *map_holder__current(struct map_holder *h);

/* Learn mode: one observation into the map (svcmap__learn: 0, -ENOMEM or -EINVAL). */
int map_holder__learn(struct map_holder *h, const char *src, const char *dst, const char *app,
		      uint64_t bytes, uint64_t first_ms, uint64_t last_ms);

/* Detect mode with a map_file: ask the loader for a reload and return at once (requests that
 * come while one waits are one reload). Learn mode, no map_file, or after finish: nothing. */
void map_holder__reload(struct map_holder *h);

/* Learn mode: if anything was learned since the last successful save was asked for, ask the
 * saver to write the map file and return at once (a save asked for while one runs is done
 * after it). Otherwise, and after finish: nothing. */
void map_holder__save_async(struct map_holder *h);

/* Wait until the background thread has no job running or queued (tests, benches). */
void map_holder__wait_idle(struct map_holder *h);

/* Reloads done and failed so far (the loader's counters). */
void map_holder__reloads(struct map_holder *h, uint64_t *done, uint64_t *failed);

/* End of the run: wait for a running job, drop queued ones, stop the background thread; in
 * learn mode save the map synchronously (always, even if nothing was learned). If that save
 * fails, nothing learned is lost: the map is written to "MAP.unsaved-YYYYmmddTHHMMSSZ-PID"
 * beside the map file, else under the same name in $TMPDIR (/tmp when unset), and one line
 * names the file and the reason (or, if every attempt failed, says the map is lost and why).
 * 0, or the first save's negative errno (also when the fallback holds the map: the map file
 * is not up to date). Later reload / save_async calls do nothing. */
int map_holder__finish(struct map_holder *h);

/* Stop the background thread (as map_holder__finish, without the save) and free the map. */
void map_holder__free(struct map_holder *h);

#endif
