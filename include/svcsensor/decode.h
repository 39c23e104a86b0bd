/* decode.h - L2..L4 parsing of one captured frame into a packet view.
 *
 * Never trusts a length field: every header is checked against the captured length, and a
 * frame that lies is reported by reason, never read past its end. No allocation, no state. */
#ifndef SVCSENSOR_DECODE_H
#define SVCSENSOR_DECODE_H

#include <stdint.h>

#include "svcsensor/flow.h"

/* What decode__frame made of a frame. DECODE_OK frames go to the flow table; every other
 * result is a counted drop reason (names via decode__result_name).
 *
 * Truncation choice: a frame cut by a small snaplen (caplen < wirelen) whose IP header is
 * complete but whose TCP/UDP header is not is DECODE_TRUNCATED_L4, the same reason as a TCP
 * data offset or IP length that lies: without ports there is no flow key, so it is counted,
 * not guessed. A cut inside the IPv6 extension chain, where the whole chain would fit in the
 * packet on the wire, is DECODE_TRUNCATED_L3; a chain that runs past the packet itself or
 * has more than DECODE_MAX_IPV6_EXT headers is DECODE_BAD_IPV6_EXT. */
enum decode_result {
	DECODE_OK = 0,
	DECODE_NOT_IP,		 /* ARP, LLDP, ..., or more than DECODE_MAX_VLAN_TAGS tags */
	DECODE_UNSUPPORTED_LINK, /* link type we cannot parse */
	DECODE_TRUNCATED_L2,	 /* frame shorter than its link / VLAN headers */
	DECODE_TRUNCATED_L3,	 /* shorter than the IP header it announces (IHL, 40 bytes, ext) */
	DECODE_BAD_IP,		 /* bad version, IHL < 5, total length < header, ... */
	DECODE_BAD_IPV6_EXT,	 /* extension header chain runs past the packet or too long */
	DECODE_TRUNCATED_L4,	 /* TCP/UDP header cut off (snaplen or a lie) */
	DECODE_FRAGMENT,	 /* non-first IPv4/IPv6 fragment: no ports, counted apart */
	DECODE__COUNT
};

/* VLAN tags parsed (0x8100, 0x88a8, 0x9100; a tag stripped by the capture layer counts). */
#define DECODE_MAX_VLAN_TAGS 4
/* IPv6 extension headers walked (hop-by-hop, routing, destination options, fragment, AH). */
#define DECODE_MAX_IPV6_EXT 8

/* Short snake_case name of a result ("ok", "not_ip", "truncated_l4", ...) for counters
 * output; "invalid" for a value outside the enum. Static string, never NULL. */
const char *decode__result_name(enum decode_result r);

/* The view of one decoded packet. Pointers point into the caller's frame. */
struct pkt_view {
	struct flow_key key; /* src = this packet's sender */
	uint64_t ts_us;	     /* packet timestamp, microseconds since the epoch */
	const uint8_t *l3;   /* IP header */
	uint32_t l3_caplen;  /* bytes captured from the IP header on, up to the IP packet's
			      * end (Ethernet padding excluded); <= ip_len */
	uint32_t ip_len;     /* bytes accounted for the flow: the IP packet's length on the wire
			      * (IP total length, bounded by the frame's wire length; link-layer
			      * headers, VLAN tags and Ethernet padding are not counted) */
	uint32_t l4_payload; /* captured TCP/UDP payload bytes inside the IP packet (0 for
			      * others) */
	uint8_t tcp_flags;   /* TCP flags byte, 0 for other protocols */
	uint8_t first_frag;  /* 1 when this is the first fragment of a fragmented datagram */
};

/* 1 when decode__frame parses link type dlt, else 0. Link types are libpcap DLT_* values:
 * DLT_EN10MB (0..DECODE_MAX_VLAN_TAGS tags), DLT_RAW (and LINKTYPE_RAW 101), DLT_IPV4,
 * DLT_IPV6, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_NULL and DLT_LOOP (family in either byte
 * order). Pure function. */
int decode__link_supported(int dlt);

/* Decode one frame.
 * dlt:        libpcap link type of the frame.
 * frame:      first captured byte; caplen bytes are readable.
 * wirelen:    the frame's length on the wire (>= caplen normally; a smaller value is clamped).
 * vlan_tci:   a VLAN tag the capture layer already stripped (AF_PACKET tp_vlan_tci), or -1.
 *             It becomes the outer VLAN, exactly as if the tag were still in the frame.
 * Returns DECODE_OK and fills *out, or a drop reason (then *out is unspecified; for
 * DECODE_FRAGMENT the key's addresses, protocol and VLAN are filled, ports are 0).
 * key.vlan is the outer (first) tag's id. IPv4 lands in the first 4 address bytes, the rest
 * zero. IPv4 first fragments (MF, offset 0) and IPv6 ones (fragment header, offset 0) are
 * decoded with their ports and first_frag = 1. ESP, no-next-header and non-TCP/UDP
 * protocols decode with ports 0. A total length of 0 (IPv4) or payload length of 0 (IPv6)
 * on a packet longer than 64 KiB on the wire (BIG TCP / jumbogram) takes the wire length.
 * Never reads past frame + caplen; no allocation; does not block. */
enum decode_result decode__frame(int dlt, const uint8_t *frame, uint32_t caplen, uint32_t wirelen,
				 uint64_t ts_us, int vlan_tci, struct pkt_view *out);

#endif
