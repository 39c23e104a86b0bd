/* map_file.h - the service map's file (src/map/file.c): streaming load, atomic sorted save.
 *
 * File (JSON, sorted by key, one line per application):
 *   {"format": "svcsensor-map", "version": 1,
 *    "sources": {"10.42.0.130": {"10.42.0.1": {"DNS": {"flows": 12, "bytes": 3400,
 *                                                      "first_seen_ms": 1700000000000,
 *                                                      "last_seen_ms": 1700000009000}}}}}
 * Counters may be left out of a hand-written file (they are then 0). An empty object makes a
 * known source with no destination ("10.42.0.5": {}) or a known pair with no application
 * ("10.42.0.5": {"10.42.0.1": {}}); both survive a save.
 *
 * Errors: one line on stderr (svc_err), then NULL or a negative errno. Ownership: a loaded map
 * is the caller's (svcmap__free, or publish it). Threads: registered with liburcu (see
 * service_map.h); loading builds a private map (any thread), saving reads the map under
 * rcu_read_lock and may run while the map's one writer keeps learning. */
#ifndef SVCSENSOR_MAP_FILE_H
#define SVCSENSOR_MAP_FILE_H

#include <stdbool.h>

struct svcmap;

/* Load a map file. NULL after one line on stderr if the file is unreadable or malformed:
 *   svcsensor: map.json:12:5: '}' expected near ','                     (parse error)
 *   svcsensor: map.json: sources["10.0.0.1"]["remote"]["DNS"]: flows: expected ...  (content)
 * When the file does not exist and missing is non-NULL, *missing is set to true and nothing is
 * printed (the caller decides whether that is an error). The caller keeps its old map on NULL. */
struct svcmap *svcmap__load(const char *path, bool *missing);

/* Write the map to path atomically (atomic_file__write of atomic_file.h: a temporary file
 * ".NAME.tmp.XXXXXX" in the same directory, fflush + fsync, rename, fsync of the directory),
 * mode 0644, sorted by key so that saves diff well. -EINVAL, with nothing printed, when m or
 * path is NULL or path is empty. Otherwise 0, or a negative errno after one line on stderr:
 *   svcsensor: PATH: STEP: REASON (the previous file, if any, is unchanged)
 * the old file stays whole and no temporary file is left on any failure. Blocks on disk I/O.
 * While the writer learns concurrently, the file holds every entry whose learning happened
 * before the call (ordered by a lock or a thread start, as src/map/holder.c hands a save
 * over); what is learned during the save may be in it or not. */
int svcmap__save(const struct svcmap *m, const char *path);

#endif
