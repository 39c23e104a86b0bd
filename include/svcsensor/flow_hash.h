/* flow_hash.h - the flow key and its symmetric address-pair hash, with no libc dependency.
 *
 * Why a header of its own: the eBPF fanout program (src/capture/fanout.bpf.c, built with
 * clang -target bpf) must return exactly what userspace computes, so both compile this one
 * text. Under -target bpf glibc's <stdint.h>/<string.h> do not build (gnu/stubs-32.h), and
 * flow.h pulls in <urcu/wfcqueue.h>; this header needs neither: fixed-width types come from
 * the compiler's own predefined macros and copies use __builtin_memcpy (same semantics as
 * memcpy in both worlds). flow.h includes it; userspace code keeps including flow.h. */
#ifndef SVCSENSOR_FLOW_HASH_H
#define SVCSENSOR_FLOW_HASH_H

#ifdef __bpf__
/* C11 allows a typedef to be repeated with the same type, so a BPF source that already has
 * these names from elsewhere still builds. */
typedef __UINT8_TYPE__ uint8_t;
typedef __UINT16_TYPE__ uint16_t;
typedef __UINT32_TYPE__ uint32_t;
typedef __UINT64_TYPE__ uint64_t;
#else
#include <stdint.h>
#endif

/* Addresses are 16 bytes; IPv4 uses the first 4, the other 12 are zero. Ports are in host
 * byte order and zero for protocols without ports (ICMP, ICMPv6, IGMP, ...). */
struct flow_key {
	uint8_t src[16];
	uint8_t dst[16];
	uint16_t sport;
	uint16_t dport;
	uint16_t vlan; /* outer VLAN id, 0 when untagged */
	uint8_t proto; /* IPPROTO_* */
	uint8_t ipver; /* 4 or 6 */
};

/* 64-bit mix (from the splitmix64 finaliser constants). */
static inline uint64_t flow__mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static inline uint64_t flow__addr_fold(const uint8_t a[16])
{
	uint64_t lo, hi;
	__builtin_memcpy(&lo, a, 8);
	__builtin_memcpy(&hi, a + 8, 8);
	return flow__mix64(lo ^ flow__mix64(hi));
}

/* Symmetric hash of the address pair (+ VLAN): the same for both directions, and the same for
 * every flow between two hosts. It picks the worker, live (eBPF) and offline, so that nDPI's
 * per-module host caches see all flows of a host pair. Commutative combine: a + b and a ^ b.
 * Unseeded (the kernel program and userspace must agree without sharing a secret): crafted
 * addresses can steer many host pairs to one worker, an imbalance between workers, never a
 * long chain inside a table (the tables use flow_key__hash, seeded). */
static inline uint32_t flow_key__pair_hash(const struct flow_key *k)
{
	uint64_t a = flow__addr_fold(k->src), b = flow__addr_fold(k->dst);
	uint64_t h = flow__mix64((a + b) ^ flow__mix64(a ^ b) ^ ((uint64_t)k->vlan << 48));
	return (uint32_t)(h ^ (h >> 32));
}

/* The flow tables' hash of the full key, flow_key__hash, is not here: it is seeded per
 * process (an unseeded one let crafted 5-tuples share one chain: flow__addr_fold above is
 * public, so IPv6 sources with lo = C ^ flow__mix64(hi) all fold to C) and lives with the
 * seeded family in hash.h, userspace only. Nothing above this line may depend on it: it is
 * the text the eBPF program compiles. */
#ifndef __bpf__
#include "svcsensor/hash.h" /* flow_key__hash */
#endif

#endif
