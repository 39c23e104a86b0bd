/* hash.h - the one hash family for tables whose keys the traffic chooses (host keys, server
 * names, application names): seeded per process, so that nobody outside can precompute keys
 * that collide in every sensor's tables and turn linear probing into long scans.
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
 *
 * Not a cryptographic MAC: the seed keeps collisions unpredictable from outside, it does not
 * make them impossible. The flow key's hashes (flow_hash.h) stay outside this family and are
 * unseeded: flow_key__pair_hash must equal what the eBPF fanout program
 * (src/capture/fanout.bpf.c) computes; flow_key__hash (the flow tables' hash) shares that
 * header's mixer and is compiled into the same program text.
 *
 * Pure functions except hash__seed (one getrandom the first time; if that fails, the clock
 * and the pid stand in). No allocation; callable from any thread. */
#ifndef SVCSENSOR_HASH_H
#define SVCSENSOR_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "svcsensor/flow_hash.h" /* flow__mix64 */

/* The seed once drawn (0 before): read by hash__seed's fast path. Set by hash.c only. */
extern uint64_t hash__seed_value;
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

#endif
