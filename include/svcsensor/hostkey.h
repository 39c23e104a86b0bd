/* hostkey.h - host keys: the name of an address in the service map (README.md, "Host keys and
 * the service map").
 *
 * A key is a NUL-terminated string of at most HOSTKEY_LEN - 1 bytes written into the caller's
 * buffer: nothing is allocated, nothing can fail. Pure function of the configuration (borrowed,
 * read only) and the address: any thread may call it concurrently. */
#ifndef SVCSENSOR_HOSTKEY_H
#define SVCSENSOR_HOSTKEY_H

#include <stdint.h>

#include "svcsensor/config.h"

#define HOSTKEY_LEN 48 /* "remote", an IPv6 address, or "2001:db8::/48" */

/* Host key of an address: inside local_networks its text form (as inet_ntop writes it);
 * otherwise "remote" (REMOTE_COLLAPSE), the address (REMOTE_ADDRESS) or the masked prefix
 * "203.0.113.0/24", "2001:db8::/48" (REMOTE_PREFIX). IPv4 networks match ipver 4 addresses only,
 * IPv6 networks ipver 6. Writes a NUL-terminated key into out. Per-flow cost: no allocation,
 * no lock, no syscall (~15 ns). */
void hostkey__of(const struct svc_config *c, const uint8_t addr[16], uint8_t ipver,
		 char out[HOSTKEY_LEN]);

#endif
