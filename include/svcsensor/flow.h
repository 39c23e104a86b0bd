/* flow.h - the flow key, its symmetric hashes, and the finished-flow record.
 *
 * A flow is bidirectional: both directions of (addresses, ports, L4 protocol, VLAN) are one
 * flow. The "source" is the endpoint that sent the first packet seen. */
#ifndef SVCSENSOR_FLOW_H
#define SVCSENSOR_FLOW_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <urcu/wfcqueue.h>

/* Addresses are 16 bytes; IPv4 uses the first 4, the other 12 are zero. Ports are in host
 * byte order and zero for protocols without ports (ICMP, ICMPv6, IGMP, ...). */
struct flow_key {
	uint8_t src[16];
	uint8_t dst[16];
	uint16_t sport;
	uint16_t dport;
	uint16_t vlan;  /* outer VLAN id, 0 when untagged */
	uint8_t proto;  /* IPPROTO_* */
	uint8_t ipver;  /* 4 or 6 */
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
	memcpy(&lo, a, 8);
	memcpy(&hi, a + 8, 8);
	return flow__mix64(lo ^ flow__mix64(hi));
}

/* Symmetric hash of the address pair (+ VLAN): the same for both directions, and the same for
 * every flow between two hosts. It picks the worker, live (eBPF) and offline, so that nDPI's
 * per-module host caches see all flows of a host pair. Commutative combine: a + b and a ^ b. */
static inline uint32_t flow_key__pair_hash(const struct flow_key *k)
{
	uint64_t a = flow__addr_fold(k->src), b = flow__addr_fold(k->dst);
	uint64_t h = flow__mix64((a + b) ^ flow__mix64(a ^ b) ^ ((uint64_t)k->vlan << 48));
	return (uint32_t)(h ^ (h >> 32));
}

/* Symmetric hash of the full key: both directions give the same value. For flow tables. */
static inline uint64_t flow_key__hash(const struct flow_key *k)
{
	uint64_t a = flow__addr_fold(k->src) ^ ((uint64_t)k->sport << 32);
	uint64_t b = flow__addr_fold(k->dst) ^ ((uint64_t)k->dport << 32);
	uint64_t rest = ((uint64_t)k->vlan << 16) | ((uint64_t)k->proto << 8) | k->ipver;
	return flow__mix64((a + b) ^ flow__mix64(a ^ b) ^ flow__mix64(rest));
}

/* Why a flow ended. Names (flow_end__name) are the CSV / log spelling. */
enum flow_end {
	FLOW_END_IDLE = 0,     /* idle timeout */
	FLOW_END_ACTIVE = 1,   /* active timeout */
	FLOW_END_TCP = 2,      /* FIN both ways or RST (after the linger) */
	FLOW_END_EVICTED = 3,  /* table full, least recently used */
	FLOW_END_SHUTDOWN = 4, /* end of input, signal */
	FLOW_END__COUNT
};

const char *flow_end__name(enum flow_end e);

#define FLOW_APP_NAME_LEN 64
#define FLOW_PROTO_NAME_LEN 32
#define FLOW_SERVER_NAME_LEN 128

/* A finished flow, as it travels from a worker to the detector. Allocated by the worker
 * (flow_record__new), owned by whoever holds it, freed by the consumer (flow_record__free).
 * key.src is the endpoint that sent the first packet. */
struct flow_record {
	struct cds_wfcq_node qnode; /* finished-flow queue linkage */
	struct flow_key key;
	uint64_t first_us, last_us;    /* packet timestamps, microseconds since epoch */
	uint64_t pkts[2], bytes[2];    /* [0] src->dst, [1] dst->src; bytes = IP bytes */
	uint16_t app_id, master_id;    /* nDPI protocol ids (master 0 = none) */
	uint8_t end_reason;            /* enum flow_end */
	bool guessed;                  /* the name is nDPI's guess at give-up */
	uint16_t worker;               /* which worker made it (diagnostics) */
	char app_name[FLOW_APP_NAME_LEN];        /* "TLS.YouTube", "DNS", "Unknown" */
	char master_name[FLOW_PROTO_NAME_LEN];   /* "TLS" for TLS.YouTube, "" when none */
	char category[FLOW_PROTO_NAME_LEN];      /* nDPI category name */
	char server_name[FLOW_SERVER_NAME_LEN];  /* SNI / DNS query / HTTP Host, "" if none */
};

/* Allocate a zeroed record; NULL on out of memory. */
struct flow_record *flow_record__new(void);
void flow_record__free(struct flow_record *r);

/* Format an address of the key ("10.42.0.1", "2001:db8::1") into buf (>= 46 bytes). */
const char *flow__addr_str(const uint8_t addr[16], uint8_t ipver, char *buf, size_t len);

#endif
