/* hostkey.c - the host key of an address (include/svcsensor/hostkey.h): its text inside the
 * local networks, otherwise "remote", the address or its masked prefix (remote_mode). Called
 * twice per judged flow: no allocation, no lock, no syscall. */
#include "svcsensor/hostkey.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "svcsensor/flow.h"

static bool prefix_match(const uint8_t *net, const uint8_t *a, unsigned plen)
{
	unsigned full = plen / 8, rem = plen % 8;
	if (memcmp(net, a, full) != 0)
		return false;
	if (rem) {
		uint8_t mask = (uint8_t)(0xffu << (8 - rem));
		return ((net[full] ^ a[full]) & mask) == 0;
	}
	return true;
}

/* At most 45 characters + NUL: fits HOSTKEY_LEN. */
static void addr_text(const uint8_t *addr, uint8_t ipver, char out[HOSTKEY_LEN])
{
	flow__addr_str(addr, ipver, out, HOSTKEY_LEN);
}

void hostkey__of(const struct svc_config *c, const uint8_t addr[16], uint8_t ipver,
		 char out[HOSTKEY_LEN])
{
	uint8_t v = ipver == 6 ? 6 : 4;

	for (size_t i = 0; i < c->n_local_networks; i++) {
		const struct cidr *n = &c->local_networks[i];
		if (n->ipver == v && prefix_match(n->addr, addr, n->plen)) {
			addr_text(addr, v, out);
			return;
		}
	}
	switch (c->remote_mode) {
	case REMOTE_ADDRESS:
		addr_text(addr, v, out);
		return;
	case REMOTE_PREFIX: {
		unsigned maxlen = v == 6 ? 128 : 32;
		unsigned plen = v == 6 ? c->remote_prefix6 : c->remote_prefix4;
		uint8_t net[16] = {0};
		char text[HOSTKEY_LEN];
		if (plen > maxlen)
			plen = maxlen;
		memcpy(net, addr, v == 6 ? 16 : 4);
		for (unsigned bit = plen; bit < maxlen; bit++)
			net[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
		addr_text(net, v, text);
		/* Masked text is at most 39 characters ("ffff:...:ffff"). */
		snprintf(out, HOSTKEY_LEN, "%.39s/%u", text, plen);
		return;
	}
	case REMOTE_COLLAPSE:
	default:
		memcpy(out, "remote", sizeof("remote"));
		return;
	}
}