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

#include "svcsensor/flow_hash.h" /* struct flow_key, flow_key__pair_hash, flow_key__hash */

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
	uint64_t first_us, last_us;		/* packet timestamps, microseconds since epoch */
	uint64_t pkts[2], bytes[2];		/* [0] src->dst, [1] dst->src; bytes = IP bytes */
	uint16_t app_id, master_id;		/* nDPI protocol ids (master 0 = none) */
	uint8_t end_reason;			/* enum flow_end */
	bool guessed;				/* the name is nDPI's guess at give-up */
	uint16_t worker;			/* which worker made it (diagnostics) */
	char app_name[FLOW_APP_NAME_LEN];	/* "TLS.YouTube", "DNS", "Unknown" */
	char master_name[FLOW_PROTO_NAME_LEN];	/* "TLS" for TLS.YouTube, "" when none */
	char category[FLOW_PROTO_NAME_LEN];	/* nDPI category name */
	char server_name[FLOW_SERVER_NAME_LEN]; /* SNI / DNS query / HTTP Host, "" if none */
};

/* Allocate a zeroed record; NULL on out of memory. */
struct flow_record *flow_record__new(void);
void flow_record__free(struct flow_record *r);

/* Format an address of the key ("10.42.0.1", "2001:db8::1") into buf (>= 46 bytes). */
const char *flow__addr_str(const uint8_t addr[16], uint8_t ipver, char *buf, size_t len);

#endif
