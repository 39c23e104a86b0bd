/* decode.c - L2..L4 parsing of one captured frame into a packet view.
 *
 * The per-packet path: no allocation, no global state, no syscalls. Every read is checked
 * against what was captured before it happens; lengths announced by the packet (IP total
 * length, IHL, IPv6 payload length, extension header lengths, TCP data offset) are only
 * believed as far as the captured bytes and the wire length allow.
 *
 * Layout of the walk: link header -> ethertype (+ VLAN tags) -> IPv4 | IPv6 (+ extension
 * chain) -> TCP | UDP | anything else (no ports). The common case, Ethernet -> IPv4 ->
 * TCP/UDP, is tested first at every step. */
#include "svcsensor/decode.h"

#include <netinet/in.h>
#include <pcap/dlt.h>
#include <string.h>

#include "svcsensor/common.h"

/* LINKTYPE_RAW as written in pcap files; libpcap maps it to DLT_RAW, but a caller reading
 * the file header itself may hand us the raw value. */
#define LINKTYPE_RAW_VALUE 101

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100	  /* 802.1Q */
#define ETHERTYPE_QINQ 0x88a8	  /* 802.1ad service tag */
#define ETHERTYPE_QINQ_OLD 0x9100 /* pre-standard QinQ */

#define ETH_HLEN_ 14
#define VLAN_HLEN_ 4
#define SLL_HLEN_ 16
#define SLL2_HLEN_ 20
#define NULL_HLEN_ 4

#define IPV4_MIN_HLEN 20
#define IPV6_HLEN 40
#define TCP_MIN_HLEN 20
#define UDP_HLEN 8
#define IP_MAX_TOTLEN 65535u

/* IPv6 extension headers we walk through (RFC 8200 section 4, AH RFC 4302). */
#define IPV6_EXT_HOPOPTS 0
#define IPV6_EXT_ROUTING 43
#define IPV6_EXT_FRAGMENT 44
#define IPV6_EXT_AH 51
#define IPV6_EXT_DSTOPTS 60

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static const char *const result_names[DECODE__COUNT] = {
    [DECODE_OK] = "ok",
    [DECODE_NOT_IP] = "not_ip",
    [DECODE_UNSUPPORTED_LINK] = "unsupported_link",
    [DECODE_TRUNCATED_L2] = "truncated_l2",
    [DECODE_TRUNCATED_L3] = "truncated_l3",
    [DECODE_BAD_IP] = "bad_ip",
    [DECODE_BAD_IPV6_EXT] = "bad_ipv6_ext",
    [DECODE_TRUNCATED_L4] = "truncated_l4",
    [DECODE_FRAGMENT] = "fragment",
};

const char *decode__result_name(enum decode_result r)
{
	if ((unsigned)r >= DECODE__COUNT || !result_names[r])
		return "invalid";
	return result_names[r];
}

int decode__link_supported(int dlt)
{
	switch (dlt) {
	case DLT_EN10MB:
	case DLT_RAW:
	case LINKTYPE_RAW_VALUE:
	case DLT_IPV4:
	case DLT_IPV6:
	case DLT_LINUX_SLL:
	case DLT_LINUX_SLL2:
	case DLT_NULL:
	case DLT_LOOP:
		return 1;
	default:
		return 0;
	}
}

/* BSD loopback: a 4-byte address family in the capturing host's byte order (DLT_NULL) or in
 * network order (DLT_LOOP); files travel between machines, so accept both orders. The IPv6
 * value differs per OS: Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30. */
static uint16_t null_family_to_ethertype(const uint8_t *p)
{
	uint32_t le =
	    (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	uint32_t be =
	    (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
	uint32_t fam = le <= 0xffff ? le : be;

	switch (fam) {
	case 2:
		return ETHERTYPE_IPV4;
	case 10:
	case 24:
	case 28:
	case 30:
		return ETHERTYPE_IPV6;
	default:
		return 0;
	}
}

/* Ports, flags and payload of the transport header at l4 (avail bytes of it are both
 * captured and inside the IP packet). Protocols without ports keep ports 0. */
static inline enum decode_result decode_l4(const uint8_t *l4, uint32_t avail, struct pkt_view *out)
{
	uint8_t proto = out->key.proto;

	if (SVC_LIKELY(proto == IPPROTO_TCP)) {
		if (SVC_UNLIKELY(avail < TCP_MIN_HLEN))
			return DECODE_TRUNCATED_L4;
		uint32_t doff = (uint32_t)(l4[12] >> 4) * 4;
		if (SVC_UNLIKELY(doff < TCP_MIN_HLEN || doff > avail))
			return DECODE_TRUNCATED_L4;
		out->key.sport = rd16(l4);
		out->key.dport = rd16(l4 + 2);
		out->tcp_flags = l4[13];
		out->l4_payload = avail - doff;
	} else if (proto == IPPROTO_UDP) {
		if (SVC_UNLIKELY(avail < UDP_HLEN))
			return DECODE_TRUNCATED_L4;
		out->key.sport = rd16(l4);
		out->key.dport = rd16(l4 + 2);
		out->l4_payload = avail - UDP_HLEN;
	}
	return DECODE_OK;
}

/* p: IPv4 header; cap: bytes captured from p; wire: bytes on the wire from p (>= cap). */
static inline enum decode_result decode_ipv4(const uint8_t *p, uint32_t cap, uint32_t wire,
					     struct pkt_view *out)
{
	if (SVC_UNLIKELY(cap < 1))
		return DECODE_TRUNCATED_L3;
	if (SVC_UNLIKELY((p[0] >> 4) != 4))
		return DECODE_BAD_IP;
	uint32_t hlen = (uint32_t)(p[0] & 0x0f) * 4;
	if (SVC_UNLIKELY(hlen < IPV4_MIN_HLEN))
		return DECODE_BAD_IP;
	if (SVC_UNLIKELY(cap < hlen))
		return DECODE_TRUNCATED_L3;

	uint32_t tot = rd16(p + 2);
	if (SVC_UNLIKELY(tot < hlen)) {
		/* Linux BIG TCP GRO packets (> 64 KiB) carry total length 0: the wire says how
		 * long they are. Anything else shorter than its own header is a lie. */
		if (tot == 0 && wire > IP_MAX_TOTLEN)
			tot = wire;
		else
			return DECODE_BAD_IP;
	}
	uint32_t ip_len = min_u32(tot, wire);
	uint32_t cap_end = min_u32(cap, ip_len); /* excludes Ethernet padding */

	out->key.ipver = 4;
	out->key.proto = p[9];
	memcpy(out->key.src, p + 12, 4);
	memcpy(out->key.dst, p + 16, 4);
	out->l3 = p;
	out->l3_caplen = cap_end;
	out->ip_len = ip_len;

	uint16_t frag = rd16(p + 6);
	if (SVC_UNLIKELY(frag & 0x3fff)) {
		if (frag & 0x1fff)
			return DECODE_FRAGMENT;
		out->first_frag = 1; /* MF set, offset 0 */
	}
	return decode_l4(p + hlen, cap_end - hlen, out);
}

/* Why an IPv6 extension header that ends at byte `end` does not fit: cut by the snaplen
 * (it would fit in the packet on the wire) or a chain that runs past the packet. */
static inline enum decode_result ipv6_ext_short(uint32_t end, uint32_t ip_len)
{
	return end <= ip_len ? DECODE_TRUNCATED_L3 : DECODE_BAD_IPV6_EXT;
}

static inline enum decode_result decode_ipv6(const uint8_t *p, uint32_t cap, uint32_t wire,
					     struct pkt_view *out)
{
	if (SVC_UNLIKELY(cap < 1))
		return DECODE_TRUNCATED_L3;
	if (SVC_UNLIKELY((p[0] >> 4) != 6))
		return DECODE_BAD_IP;
	if (SVC_UNLIKELY(cap < IPV6_HLEN))
		return DECODE_TRUNCATED_L3;

	uint32_t plen = rd16(p + 4);
	uint32_t tot = IPV6_HLEN + plen;
	/* Jumbograms / BIG TCP: payload length 0 and more than 64 KiB on the wire. */
	if (SVC_UNLIKELY(plen == 0 && wire > IPV6_HLEN + IP_MAX_TOTLEN))
		tot = wire;
	uint32_t ip_len = min_u32(tot, wire);
	uint32_t cap_end = min_u32(cap, ip_len);

	out->key.ipver = 6;
	memcpy(out->key.src, p + 8, 16);
	memcpy(out->key.dst, p + 24, 16);
	out->l3 = p;
	out->l3_caplen = cap_end;
	out->ip_len = ip_len;

	uint8_t nh = p[6];
	uint32_t off = IPV6_HLEN;
	unsigned n_ext = 0;

	for (;;) {
		uint32_t len;

		if (SVC_LIKELY(nh == IPPROTO_TCP || nh == IPPROTO_UDP))
			break;
		switch (nh) {
		case IPV6_EXT_HOPOPTS:
		case IPV6_EXT_ROUTING:
		case IPV6_EXT_DSTOPTS:
		case IPV6_EXT_AH:
		case IPV6_EXT_FRAGMENT:
			break;
		default: /* upper layer (ICMPv6, ESP 50, no next header 59, ...) */
			goto chain_done;
		}
		if (SVC_UNLIKELY(++n_ext > DECODE_MAX_IPV6_EXT))
			return DECODE_BAD_IPV6_EXT;
		if (SVC_UNLIKELY(cap_end - off < 2))
			return ipv6_ext_short(off + 2, ip_len);
		const uint8_t *h = p + off;
		if (nh == IPV6_EXT_FRAGMENT)
			len = 8;
		else if (nh == IPV6_EXT_AH)
			len = ((uint32_t)h[1] + 2) * 4;
		else
			len = ((uint32_t)h[1] + 1) * 8;
		if (SVC_UNLIKELY(cap_end - off < len))
			return ipv6_ext_short(off + len, ip_len);
		if (nh == IPV6_EXT_FRAGMENT) {
			uint16_t fo = rd16(h + 2);
			if (fo & 0xfff8) {
				out->key.proto = h[0];
				return DECODE_FRAGMENT;
			}
			if (fo & 1)
				out->first_frag = 1;
		}
		nh = h[0];
		off += len;
	}
chain_done:
	out->key.proto = nh;
	return decode_l4(p + off, cap_end - off, out);
}

enum decode_result decode__frame(int dlt, const uint8_t *frame, uint32_t caplen, uint32_t wirelen,
				 uint64_t ts_us, int vlan_tci, struct pkt_view *out)
{
	uint32_t off;
	uint16_t etype;
	unsigned ntags = 0;

	memset(&out->key, 0, sizeof(out->key));
	out->ts_us = ts_us;
	out->l3 = NULL;
	out->l3_caplen = 0;
	out->ip_len = 0;
	out->l4_payload = 0;
	out->tcp_flags = 0;
	out->first_frag = 0;

	if (SVC_UNLIKELY(frame == NULL)) {
		static const uint8_t nothing[1];
		frame = nothing; /* no arithmetic on a null pointer below */
		caplen = 0;
	}
	if (SVC_UNLIKELY(wirelen < caplen))
		wirelen = caplen;
	if (vlan_tci >= 0) {
		out->key.vlan = (uint16_t)(vlan_tci & 0x0fff);
		ntags = 1;
	}

	switch (dlt) {
	case DLT_EN10MB:
		if (SVC_UNLIKELY(caplen < ETH_HLEN_))
			return DECODE_TRUNCATED_L2;
		off = ETH_HLEN_;
		etype = rd16(frame + 12);
		break;
	case DLT_LINUX_SLL:
		if (caplen < SLL_HLEN_)
			return DECODE_TRUNCATED_L2;
		off = SLL_HLEN_;
		etype = rd16(frame + 14);
		break;
	case DLT_LINUX_SLL2:
		if (caplen < SLL2_HLEN_)
			return DECODE_TRUNCATED_L2;
		off = SLL2_HLEN_;
		etype = rd16(frame);
		break;
	case DLT_NULL:
	case DLT_LOOP:
		if (caplen < NULL_HLEN_)
			return DECODE_TRUNCATED_L2;
		off = NULL_HLEN_;
		etype = null_family_to_ethertype(frame);
		break;
	case DLT_RAW:
	case LINKTYPE_RAW_VALUE:
		if (caplen < 1)
			return DECODE_TRUNCATED_L3;
		off = 0;
		etype = (frame[0] >> 4) == 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
		break;
	case DLT_IPV4:
		off = 0;
		etype = ETHERTYPE_IPV4;
		break;
	case DLT_IPV6:
		off = 0;
		etype = ETHERTYPE_IPV6;
		break;
	default:
		return DECODE_UNSUPPORTED_LINK;
	}

	/* VLAN tags (only after an ethertype-carrying link header; off > 0 there). The first
	 * tag, stripped by the capture layer or in the frame, is the flow's VLAN. */
	while (SVC_UNLIKELY(etype == ETHERTYPE_VLAN || etype == ETHERTYPE_QINQ ||
			    etype == ETHERTYPE_QINQ_OLD)) {
		if (++ntags > DECODE_MAX_VLAN_TAGS)
			return DECODE_NOT_IP;
		if (caplen - off < VLAN_HLEN_)
			return DECODE_TRUNCATED_L2;
		if (ntags == 1)
			out->key.vlan = rd16(frame + off) & 0x0fff;
		etype = rd16(frame + off + 2);
		off += VLAN_HLEN_;
	}

	if (SVC_LIKELY(etype == ETHERTYPE_IPV4))
		return decode_ipv4(frame + off, caplen - off, wirelen - off, out);
	if (etype == ETHERTYPE_IPV6)
		return decode_ipv6(frame + off, caplen - off, wirelen - off, out);
	return DECODE_NOT_IP;
}
