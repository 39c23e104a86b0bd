/* decode.h - L2..L4 parsing of one captured frame into a packet view.
 *
 * Never trusts a length field: every header is checked against the captured length, and a
 * frame that lies is reported by reason, never read past its end. No allocation, no state. */
#ifndef SVCSENSOR_DECODE_H
#define SVCSENSOR_DECODE_H

#include <stdint.h>

#include "svcsensor/flow.h"

/* What decode__frame made of a frame. DECODE_OK frames go to the flow table; every other
 * result is a counted drop reason (names via decode__result_name). */
enum decode_result {
	DECODE_OK = 0,
	DECODE_NOT_IP,           /* ARP, LLDP, ... : not an error, just not ours */
	DECODE_UNSUPPORTED_LINK, /* link type we cannot parse */
	DECODE_TRUNCATED_L2,     /* frame shorter than its link / VLAN headers */
	DECODE_TRUNCATED_L3,     /* shorter than the IP header it announces */
	DECODE_BAD_IP,           /* bad version, IHL < 5, total length < header, ... */
	DECODE_BAD_IPV6_EXT,     /* extension header chain runs past the data or too long */
	DECODE_TRUNCATED_L4,     /* TCP/UDP header cut off (snaplen or a lie) */
	DECODE_FRAGMENT,         /* non-first IPv4/IPv6 fragment: no ports, counted apart */
	DECODE__COUNT
};

const char *decode__result_name(enum decode_result r);

/* The view of one decoded packet. Pointers point into the caller's frame. */
struct pkt_view {
	struct flow_key key;   /* src = this packet's sender */
	uint64_t ts_us;        /* packet timestamp, microseconds since the epoch */
	const uint8_t *l3;     /* IP header */
	uint32_t l3_caplen;    /* bytes captured from the IP header on */
	uint32_t ip_len;       /* bytes accounted for the flow: the IP packet's length on the wire
	                        * (IP total length, bounded by the frame's wire length; link-layer
	                        * headers, VLAN tags and Ethernet padding are not counted) */
	uint32_t l4_payload;   /* captured TCP/UDP payload bytes (0 for others) */
	uint8_t tcp_flags;     /* TCP flags byte, 0 for other protocols */
	uint8_t first_frag;    /* 1 when this is the first fragment of a fragmented datagram */
};

/* Link types are libpcap DLT_* values (DLT_EN10MB, DLT_RAW, DLT_LINUX_SLL, DLT_LINUX_SLL2,
 * DLT_NULL, DLT_IPV4, DLT_IPV6, ...). */
int decode__link_supported(int dlt);

/* Decode one frame.
 * dlt:        libpcap link type of the frame.
 * frame:      first captured byte; caplen bytes are readable.
 * wirelen:    the frame's length on the wire (>= caplen normally; a smaller value is clamped).
 * vlan_tci:   a VLAN tag the capture layer already stripped (AF_PACKET tp_vlan_tci), or -1.
 *             It becomes the outer VLAN, exactly as if the tag were still in the frame.
 * Returns DECODE_OK and fills *out, or a drop reason (then *out is unspecified). */
enum decode_result decode__frame(int dlt, const uint8_t *frame, uint32_t caplen,
				 uint32_t wirelen, uint64_t ts_us, int vlan_tci,
				 struct pkt_view *out);

#endif
