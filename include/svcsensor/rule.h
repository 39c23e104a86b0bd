/* rule.h - the detection rule (README.md, Verdicts) as a pure function: host keys +
 * application name + service map + settings -> one verdict (include/svcsensor/verdict.h).
 * No outputs, no state: the detector calls it per flow. */
#ifndef SVCSENSOR_RULE_H
#define SVCSENSOR_RULE_H

#include <stdbool.h>

#include "svcsensor/config.h"
#include "svcsensor/service_map.h"
#include "svcsensor/verdict.h"

/* Judge one flow, first match wins:
 *   src_key not a source of m                         -> UNKNOWN_SOURCE_IP       (major)
 *   dst_key not a destination of src_key              -> UNKNOWN_DESTINATION_IP  (major)
 *   app_name in the pair's set                        -> NONE
 *   app_name is "Unknown"                             -> UNKNOWN_PROTOCOL        (minor)
 *   the master is one of c->minor_masters             -> DNS_TLS_APPLICATION     (minor)
 *   otherwise                                         -> PROTOCOL_NEVER_USED     (major)
 * The master is master_name when non-empty, else the part of app_name before its first dot,
 * else app_name itself: "TLS.Wikipedia" -> TLS, and a bare "DNS" new for the pair is DNS too.
 * Then the allow rules (c->allow, in order): an anomaly whose src key, dst key and application
 * name equal a rule's non-NULL fields becomes NONE and *allowed is set to true (allowed may be
 * NULL; it is false otherwise). m NULL = an empty map. Call under rcu_read_lock() when m is
 * shared; never blocks, never allocates. */
enum verdict rule__judge(const struct svcmap *m, const struct svc_config *c, const char *src_key,
			 const char *dst_key, const char *app_name, const char *master_name,
			 bool *allowed);

/* Whether an allow rule of c silences (src_key, dst_key, app_name). */
bool rule__allowed(const struct svc_config *c, const char *src_key, const char *dst_key,
		   const char *app_name);

#endif
