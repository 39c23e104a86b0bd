/* hash.h - the one hash family for tables whose keys the traffic chooses (host keys, server
 * names, application names, flow keys): seeded per process, so that nobody outside can
 * precompute keys that collide in every sensor's tables and turn linear probing or a bucket
 * chain into long scans.
 *
 *   hash__seed()                 a random 64-bit seed (getrandom), the same for the whole
 *                                process, never 0; thread-safe, cheap after the first call.
 *   hash__bytes(seed, p, len)    a 64-bit hash of len bytes: one folded 64x64->128 multiply
 *                                per 8 bytes, the tail read as two overlapping words; keys
 *                                here are short, so this beats a byte-at-a-time hash.
 *   hash__str(seed, s, &len)     the same of strlen(s) bytes, the length handed back so a
 *                                match can be a compare of known length.
 *   hash__pair(ha, hb)           an asymmetric combine of two hashes: (a, b) != (b, a).
 *   hash__mix64(x)               a bijective 64-bit mixer (flow__mix64 of flow_hash.h).
 *   flow_key__hash(k)            the flow tables' hash of a flow key (src/flow/flow_table.c):
 *                                symmetric (both directions equal), keyed by the seed.
 *
 * Not a cryptographic MAC: the seed keeps collisions unpredictable from outside, it does not
 * make them impossible. The one unseeded hash of the sensor is flow_key__pair_hash
 * (flow_hash.h): it must equal what the eBPF fanout program (src/capture/fanout.bpf.c)
 * computes, and it only picks a worker. flow_key__hash was unseeded too, sharing that
 * header's address fold; it is here since that fold can be inverted (see flow_hash.h).
 *
 * Pure functions except hash__seed (one getrandom the first time; if that fails, the clock
 * and the pid stand in). No allocation; callable from any thread. */
#ifndef SVCSENSOR_HASH_H
#define SVCSENSOR_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "svcsensor/flow_hash.h" /* flow__mix64, struct flow_key */

/* The seed once drawn (0 before): read by hash__seed's fast path. Set by hash.c only, after
 * hash__flow_keys (keys derived from the seed), so whoever sees the seed sees the keys. */
extern uint64_t hash__seed_value;
extern uint64_t hash__flow_keys[5];
uint64_t hash__seed_draw(void);

static inline uint64_t hash__seed(void)
{
	uint64_t s = __atomic_load_n(&hash__seed_value, __ATOMIC_ACQUIRE);
	return __builtin_expect(s != 0, 1) ? s : hash__seed_draw();
}

static inline uint64_t hash__mix64(uint64_t x)
{
	return flow__mix64(x);
}

/* 64x64 -> 128-bit multiply, the two halves folded with xor. */
static inline uint64_t hash__mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t hash__bytes(uint64_t seed, const void *data, size_t len)
{
	const unsigned char *s = data;
	size_t n = len;
	uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL), w;

	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		h = hash__mum(h ^ w, 0xe7037ed1a0b428dbULL);
	}
	/* The last 0-7 bytes in registers (a variable-size memcpy would go through the stack):
	 * two overlapping 4-byte reads, or the first, middle and last byte. */
	if (n >= 4) {
		uint32_t lo, hi;
		memcpy(&hi, s, 4);
		memcpy(&lo, s + n - 4, 4);
		w = (uint64_t)hi << 32 | lo;
	} else if (n) {
		w = (uint64_t)s[0] << 16 | (uint64_t)s[n / 2] << 8 | s[n - 1];
	} else {
		w = 0;
	}
	return hash__mum(h ^ w ^ 0xa0761d6478bd642fULL, 0x8ebc6af09c88c6e3ULL ^ len);
}

static inline uint64_t hash__str(uint64_t seed, const char *s, size_t *len_out)
{
	size_t len = strlen(s);
	if (len_out)
		*len_out = len;
	return hash__bytes(seed, s, len);
}

static inline uint64_t hash__pair(uint64_t ha, uint64_t hb)
{
	return hash__mix64(ha * 0xff51afd7ed558ccdULL + hb);
}

/* One endpoint (address, port) of a flow key, keyed: the two address words are xored with
 * independent secret words before the multiply that compresses them (so no address pair can
 * be chosen to collide without the keys, unlike an unkeyed fold), then the port goes in with a
 * second multiply by a secret odd word. IPv4 addresses have hi = 0: still keyed. */
static inline uint64_t hash__endpoint(const uint64_t *k, const uint8_t a[16], uint16_t port)
{
	uint64_t lo, hi;
	memcpy(&lo, a, 8);
	memcpy(&hi, a + 8, 8);
	return hash__mum(hash__mum(lo ^ k[0], hi ^ k[1]) ^ port, k[2]);
}

/* Symmetric: the two endpoints are hashed alike and combined by + and ^ (both commutative),
 * keyed once more with VLAN, protocol and IP version in; three multiplies on the critical path
 * (the endpoints in parallel), no branch. Used per packet by src/worker.c and
 * src/flow/flow_table.c. */
static inline uint64_t flow_key__hash(const struct flow_key *key)
{
	(void)hash__seed(); /* the first call draws the seed and the keys */
	const uint64_t *k = hash__flow_keys;
	uint64_t a = hash__endpoint(k, key->src, key->sport);
	uint64_t b = hash__endpoint(k, key->dst, key->dport);
	uint64_t rest = (uint64_t)key->vlan << 16 | (uint64_t)key->proto << 8 | key->ipver;
	return hash__mum((a + b) ^ k[3], (a ^ b) ^ rest ^ k[4]);
}

#endif
