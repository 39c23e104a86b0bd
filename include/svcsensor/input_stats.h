/* input_stats.h - what an input counted (input.h), and input__decode: the one decode every
 * packet input calls, so that a frame becomes a packet view and is counted the same way whether
 * it came from a ring, a mapped pcap walk or libpcap. Apart from input.h so that the mapped walk
 * (pcapscan.h) counts into it without the input interface. Plain data; no locking: each
 * counter has one writer thread, read after that thread ended. */
#ifndef SVCSENSOR_INPUT_STATS_H
#define SVCSENSOR_INPUT_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "svcsensor/common.h"
#include "svcsensor/decode.h"

/* What an input counted. Offline inputs count packets per record read, live ones per frame the
 * ring handed over; the flow CSV counts good rows as packets and bad rows as rejected. */
struct input_stats {
	uint64_t packets;		/* packets read (flow CSV: rows accepted) */
	uint64_t bytes;			/* their wire bytes */
	uint64_t decode[DECODE__COUNT]; /* by decode result */
	uint64_t rejected;		/* records refused (flow CSV: bad rows) */
	uint64_t files_ok, files_failed;
	uint64_t captured, drops, freezes; /* live: the kernel's counters (afpacket.h) */
	uint64_t link_downs;		   /* live: times the link went down (afpacket.h) */
	bool stopped;			   /* the input ended on *stop, before its end */
	int error; /* 0, or the negative errno of the first error that ended a file or a ring */
};

/* The one decode of every packet input: decode the frame (decode.h) into *pv and count it in
 * *st (packets, bytes, decode result). True when pv holds a packet for the flow table.
 * Inline: it runs once per packet. */
static inline bool input__decode(struct input_stats *st, int dlt, const uint8_t *frame,
				 uint32_t caplen, uint32_t wirelen, uint64_t ts_us, int vlan_tci,
				 struct pkt_view *pv)
{
	enum decode_result r = decode__frame(dlt, frame, caplen, wirelen, ts_us, vlan_tci, pv);
	st->packets++;
	st->bytes += wirelen;
	st->decode[r]++;
	return SVC_LIKELY(r == DECODE_OK);
}

#endif
