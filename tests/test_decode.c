/* test_decode.c - Criterion suite for decode.c and the flow key hashes (flow.h).
 *
 * Frames are built byte by byte here, then copied into a heap buffer of exactly caplen bytes
 * before decoding, so that under AddressSanitizer any read past the capture is caught. */
#include <criterion/criterion.h>

#include <netinet/in.h>
#include <pcap/dlt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/decode.h"
#include "svcsensor/flow.h"

/* ---------------------------------------------------------------- frame builder */

struct pkt {
	uint8_t b[4096];
	uint32_t n;
};

static void p8(struct pkt *p, unsigned v)
{
	cr_assert_lt(p->n, sizeof(p->b));
	p->b[p->n++] = (uint8_t)v;
}

static void p16(struct pkt *p, unsigned v)
{
	p8(p, (v >> 8) & 0xff);
	p8(p, v & 0xff);
}

static void pbytes(struct pkt *p, const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p8(p, s[i]);
}

static void pfill(struct pkt *p, unsigned v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p8(p, v);
}

static void set16(struct pkt *p, uint32_t at, unsigned v)
{
	p->b[at] = (uint8_t)(v >> 8);
	p->b[at + 1] = (uint8_t)v;
}

static const uint8_t MAC_A[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
static const uint8_t MAC_B[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};
static const uint8_t IP4_A[4] = {192, 0, 2, 1};
static const uint8_t IP4_B[4] = {198, 51, 100, 7};
static const uint8_t IP6_A[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t IP6_B[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xef};

static void eth_hdr(struct pkt *p, unsigned etype)
{
	pbytes(p, MAC_B, 6);
	pbytes(p, MAC_A, 6);
	p16(p, etype);
}

/* A tag's TCI and the ethertype that follows it (the tag's TPID was written before). */
static void vlan_tag(struct pkt *p, unsigned tci, unsigned next)
{
	p16(p, tci);
	p16(p, next);
}

/* 20-byte IPv4 header, total length 20 + l4len; returns its offset. */
static uint32_t ipv4_hdr(struct pkt *p, unsigned proto, unsigned l4len, unsigned frag)
{
	uint32_t at = p->n;
	p8(p, 0x45);
	p8(p, 0);
	p16(p, 20 + l4len);
	p16(p, 0x1234); /* id */
	p16(p, frag);
	p8(p, 64);
	p8(p, proto);
	p16(p, 0); /* checksum: not checked */
	pbytes(p, IP4_A, 4);
	pbytes(p, IP4_B, 4);
	return at;
}

static uint32_t ipv6_hdr(struct pkt *p, unsigned nh, unsigned plen)
{
	uint32_t at = p->n;
	p8(p, 0x60);
	p8(p, 0);
	p16(p, 0);
	p16(p, plen);
	p8(p, nh);
	p8(p, 64);
	pbytes(p, IP6_A, 16);
	pbytes(p, IP6_B, 16);
	return at;
}

/* TCP header (data offset 5) + payload bytes 'x'; returns its offset. */
static uint32_t tcp_hdr(struct pkt *p, unsigned sport, unsigned dport, unsigned flags,
			unsigned payload)
{
	uint32_t at = p->n;
	p16(p, sport);
	p16(p, dport);
	p16(p, 0x0102), p16(p, 0x0304); /* seq */
	p16(p, 0), p16(p, 0);		/* ack */
	p8(p, 5 << 4);
	p8(p, flags);
	p16(p, 65535);
	p16(p, 0), p16(p, 0); /* checksum, urgent */
	pfill(p, 'x', payload);
	return at;
}

static uint32_t udp_hdr(struct pkt *p, unsigned sport, unsigned dport, unsigned payload)
{
	uint32_t at = p->n;
	p16(p, sport);
	p16(p, dport);
	p16(p, 8 + payload);
	p16(p, 0);
	pfill(p, 'u', payload);
	return at;
}

/* Generic IPv6 extension header (hop-by-hop, routing, destination options): 8 * (1 + hl8)
 * bytes. */
static void ext_hdr(struct pkt *p, unsigned nh, unsigned hl8)
{
	p8(p, nh);
	p8(p, hl8);
	pfill(p, 0, 6 + 8 * hl8);
}

/* AH: (hl4 + 2) * 4 bytes. */
static void ah_hdr(struct pkt *p, unsigned nh, unsigned hl4)
{
	p8(p, nh);
	p8(p, hl4);
	pfill(p, 0xa5, (hl4 + 2) * 4 - 2);
}

static void frag6_hdr(struct pkt *p, unsigned nh, unsigned offset8, unsigned more)
{
	p8(p, nh);
	p8(p, 0);
	p16(p, (offset8 << 3) | (more ? 1 : 0));
	p16(p, 0xdead), p16(p, 0xbeef); /* identification */
}

#define TCP_SYN 0x02
#define TCP_ACK 0x10
#define TCP_PSH 0x08

/* Ethernet + IPv4 + TCP with `payload` bytes: 54 + payload bytes. */
static void build_eth_ipv4_tcp(struct pkt *p, unsigned payload)
{
	eth_hdr(p, 0x0800);
	ipv4_hdr(p, IPPROTO_TCP, 20 + payload, 0);
	tcp_hdr(p, 40000, 443, TCP_PSH | TCP_ACK, payload);
}

/* ---------------------------------------------------------------- decoding helper */

struct dres {
	enum decode_result r;
	struct pkt_view v;
	long l3_off; /* v.l3 - frame, -1 when NULL */
};

/* Decode the first caplen bytes of p (wirelen on the wire) from an exact-size heap copy. */
static struct dres dec_len(int dlt, const struct pkt *p, uint32_t caplen, uint32_t wirelen, int tci)
{
	struct dres d;
	uint8_t *copy = malloc(caplen ? caplen : 1);
	cr_assert_not_null(copy);
	memcpy(copy, p->b, caplen);
	memset(&d.v, 0xee, sizeof(d.v));
	d.r = decode__frame(dlt, copy, caplen, wirelen, 1700000000123456ULL, tci, &d.v);
	d.l3_off = d.v.l3 && d.r != DECODE_NOT_IP ? (long)(d.v.l3 - copy) : -1;
	free(copy);
	d.v.l3 = NULL; /* dangling now */
	return d;
}

static struct dres dec(int dlt, const struct pkt *p)
{
	return dec_len(dlt, p, p->n, p->n, -1);
}

static void assert_v4_pair(const struct flow_key *k)
{
	static const uint8_t zero[12];
	cr_assert_eq(k->ipver, 4);
	cr_assert_arr_eq(k->src, IP4_A, 4);
	cr_assert_arr_eq(k->dst, IP4_B, 4);
	cr_assert_arr_eq(k->src + 4, zero, 12, "IPv4 address bytes 4..15 must be zero");
	cr_assert_arr_eq(k->dst + 4, zero, 12);
}

static void assert_v6_pair(const struct flow_key *k)
{
	cr_assert_eq(k->ipver, 6);
	cr_assert_arr_eq(k->src, IP6_A, 16);
	cr_assert_arr_eq(k->dst, IP6_B, 16);
}

/* ---------------------------------------------------------------- the common case */

Test(decode, eth_ipv4_tcp_literal)
{
	/* Written out fully once: Ethernet / IPv4 192.0.2.1 -> 198.51.100.7 / TCP 40000 -> 443
	 * SYN, MSS option (data offset 6), no payload. */
	static const uint8_t f[] = {
	    0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a,
	    0x08, 0x00, 0x45, 0x00, 0x00, 0x2c, 0x00, 0x01, 0x40, 0x00, 0x40, 0x06,
	    0x00, 0x00, 0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x07, 0x9c, 0x40,
	    0x01, 0xbb, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02,
	    0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
	};
	struct pkt p = {.n = 0};
	pbytes(&p, f, sizeof(f));
	struct dres d = dec(DLT_EN10MB, &p);

	cr_assert_eq(d.r, DECODE_OK, "got %s", decode__result_name(d.r));
	assert_v4_pair(&d.v.key);
	cr_assert_eq(d.v.key.sport, 40000);
	cr_assert_eq(d.v.key.dport, 443);
	cr_assert_eq(d.v.key.proto, IPPROTO_TCP);
	cr_assert_eq(d.v.key.vlan, 0);
	cr_assert_eq(d.v.tcp_flags, TCP_SYN);
	cr_assert_eq(d.v.ip_len, 44);
	cr_assert_eq(d.v.l3_caplen, 44);
	cr_assert_eq(d.v.l4_payload, 0);
	cr_assert_eq(d.v.first_frag, 0);
	cr_assert_eq(d.v.ts_us, 1700000000123456ULL);
	cr_assert_eq(d.l3_off, 14);
}

Test(decode, eth_ipv4_tcp_payload)
{
	struct pkt p = {.n = 0};
	build_eth_ipv4_tcp(&p, 100);
	struct dres d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	assert_v4_pair(&d.v.key);
	cr_assert_eq(d.v.key.sport, 40000);
	cr_assert_eq(d.v.key.dport, 443);
	cr_assert_eq(d.v.tcp_flags, TCP_PSH | TCP_ACK);
	cr_assert_eq(d.v.ip_len, 140);
	cr_assert_eq(d.v.l3_caplen, 140);
	cr_assert_eq(d.v.l4_payload, 100);
}

Test(decode, eth_ipv4_tcp_options_payload)
{
	/* Data offset 8 (12 bytes of options): payload counts from the end of the options. */
	struct pkt p = {.n = 0};
	eth_hdr(&p, 0x0800);
	ipv4_hdr(&p, IPPROTO_TCP, 32 + 10, 0);
	uint32_t t = tcp_hdr(&p, 1234, 80, TCP_ACK, 0);
	p.b[t + 12] = 8 << 4;
	pfill(&p, 1, 12); /* options */
	pfill(&p, 'y', 10);
	struct dres d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.l4_payload, 10);
	cr_assert_eq(d.v.ip_len, 62);
}

Test(decode, eth_ipv4_udp)
{
	struct pkt p = {.n = 0};
	eth_hdr(&p, 0x0800);
	ipv4_hdr(&p, IPPROTO_UDP, 8 + 33, 0);
	udp_hdr(&p, 53000, 53, 33);
	struct dres d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	assert_v4_pair(&d.v.key);
	cr_assert_eq(d.v.key.proto, IPPROTO_UDP);
	cr_assert_eq(d.v.key.sport, 53000);
	cr_assert_eq(d.v.key.dport, 53);
	cr_assert_eq(d.v.l4_payload, 33);
	cr_assert_eq(d.v.tcp_flags, 0);
	cr_assert_eq(d.v.ip_len, 20 + 8 + 33);
}

Test(decode, eth_ipv4_icmp_igmp_no_ports)
{
	static const unsigned protos[] = {IPPROTO_ICMP, IPPROTO_IGMP, IPPROTO_GRE, IPPROTO_SCTP};
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		struct pkt p = {.n = 0};
		eth_hdr(&p, 0x0800);
		ipv4_hdr(&p, protos[i], 8, 0);
		p16(&p, 0x0800), p16(&p, 0xabcd), p16(&p, 0x1111), p16(&p, 0x0001);
		struct dres d = dec(DLT_EN10MB, &p);
		cr_assert_eq(d.r, DECODE_OK);
		assert_v4_pair(&d.v.key);
		cr_assert_eq(d.v.key.proto, protos[i]);
		cr_assert_eq(d.v.key.sport, 0);
		cr_assert_eq(d.v.key.dport, 0);
		cr_assert_eq(d.v.l4_payload, 0);
		cr_assert_eq(d.v.ip_len, 28);
	}
}

Test(decode, eth_ipv6_tcp_udp_icmp6)
{
	struct pkt p = {.n = 0};
	eth_hdr(&p, 0x86dd);
	ipv6_hdr(&p, IPPROTO_TCP, 20 + 7);
	tcp_hdr(&p, 50000, 8443, TCP_SYN | TCP_ACK, 7);
	struct dres d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	assert_v6_pair(&d.v.key);
	cr_assert_eq(d.v.key.proto, IPPROTO_TCP);
	cr_assert_eq(d.v.key.sport, 50000);
	cr_assert_eq(d.v.key.dport, 8443);
	cr_assert_eq(d.v.tcp_flags, TCP_SYN | TCP_ACK);
	cr_assert_eq(d.v.ip_len, 40 + 27);
	cr_assert_eq(d.v.l3_caplen, 40 + 27);
	cr_assert_eq(d.v.l4_payload, 7);
	cr_assert_eq(d.l3_off, 14);

	p.n = 0;
	eth_hdr(&p, 0x86dd);
	ipv6_hdr(&p, IPPROTO_UDP, 8 + 12);
	udp_hdr(&p, 5353, 5353, 12);
	d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.key.proto, IPPROTO_UDP);
	cr_assert_eq(d.v.key.sport, 5353);
	cr_assert_eq(d.v.l4_payload, 12);

	p.n = 0;
	eth_hdr(&p, 0x86dd);
	ipv6_hdr(&p, IPPROTO_ICMPV6, 8);
	p8(&p, 128), p8(&p, 0), p16(&p, 0), p16(&p, 1), p16(&p, 1);
	d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	assert_v6_pair(&d.v.key);
	cr_assert_eq(d.v.key.proto, IPPROTO_ICMPV6);
	cr_assert_eq(d.v.key.sport, 0);
	cr_assert_eq(d.v.key.dport, 0);
	cr_assert_eq(d.v.ip_len, 48);
}

Test(decode, not_ip)
{
	struct pkt p = {.n = 0};
	eth_hdr(&p, 0x0806); /* ARP */
	pfill(&p, 0, 28);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_NOT_IP);

	p.n = 0;
	eth_hdr(&p, 0x0026); /* 802.3 length + LLC (STP) */
	pfill(&p, 0x42, 38);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_NOT_IP);

	p.n = 0;
	eth_hdr(&p, 0x88cc); /* LLDP */
	pfill(&p, 0, 40);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_NOT_IP);

	p.n = 0;
	eth_hdr(&p, 0x8100);
	vlan_tag(&p, 5, 0x0806); /* ARP in a VLAN */
	pfill(&p, 0, 28);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_NOT_IP);
}

/* ---------------------------------------------------------------- VLAN */

Test(decode, vlan_single_and_qinq_outer_kept)
{
	struct pkt p = {.n = 0};
	eth_hdr(&p, 0x8100);
	vlan_tag(&p, 0x6000 | 100, 0x0800); /* PCP 3, id 100 */
	ipv4_hdr(&p, IPPROTO_UDP, 8, 0);
	udp_hdr(&p, 1000, 2000, 0);
	struct dres d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.key.vlan, 100);
	cr_assert_eq(d.v.key.sport, 1000);
	cr_assert_eq(d.v.key.dport, 2000);
	cr_assert_eq(d.l3_off, 18);
	cr_assert_eq(d.v.ip_len, 28);

	static const unsigned tpids[] = {0x88a8, 0x9100, 0x8100};
	for (size_t i = 0; i < 3; i++) {
		p.n = 0;
		eth_hdr(&p, tpids[i]);
		vlan_tag(&p, 200, 0x8100);	    /* outer */
		vlan_tag(&p, 0x1000 | 300, 0x86dd); /* inner, DEI set */
		ipv6_hdr(&p, IPPROTO_TCP, 20);
		tcp_hdr(&p, 1, 2, TCP_SYN, 0);
		d = dec(DLT_EN10MB, &p);
		cr_assert_eq(d.r, DECODE_OK, "tpid %#x: %s", tpids[i], decode__result_name(d.r));
		cr_assert_eq(d.v.key.vlan, 200, "outer id is the flow's VLAN");
		assert_v6_pair(&d.v.key);
		cr_assert_eq(d.v.key.sport, 1);
		cr_assert_eq(d.v.key.dport, 2);
		cr_assert_eq(d.l3_off, 22);
	}
}

Test(decode, vlan_tag_limit_and_truncation)
{
	/* DECODE_MAX_VLAN_TAGS tags parse; one more is not ours. */
	for (unsigned ntags = 1; ntags <= DECODE_MAX_VLAN_TAGS + 1; ntags++) {
		struct pkt p = {.n = 0};
		eth_hdr(&p, 0x88a8);
		for (unsigned t = 0; t < ntags; t++)
			vlan_tag(&p, 10 + t, t + 1 < ntags ? 0x8100 : 0x0800);
		ipv4_hdr(&p, IPPROTO_TCP, 20, 0);
		tcp_hdr(&p, 7, 8, TCP_ACK, 0);
		struct dres d = dec(DLT_EN10MB, &p);
		if (ntags <= DECODE_MAX_VLAN_TAGS) {
			cr_assert_eq(d.r, DECODE_OK, "%u tags", ntags);
			cr_assert_eq(d.v.key.vlan, 10);
			cr_assert_eq(d.v.key.dport, 8);
		} else {
			cr_assert_eq(d.r, DECODE_NOT_IP, "%u tags", ntags);
		}
	}
	/* A stripped tag counts toward the limit. */
	struct pkt p = {.n = 0};
	eth_hdr(&p, 0x8100);
	for (unsigned t = 0; t < DECODE_MAX_VLAN_TAGS; t++)
		vlan_tag(&p, 10 + t, t + 1 < DECODE_MAX_VLAN_TAGS ? 0x8100 : 0x0800);
	ipv4_hdr(&p, IPPROTO_ICMP, 0, 0);
	cr_assert_eq(dec_len(DLT_EN10MB, &p, p.n, p.n, 5).r, DECODE_NOT_IP);

	/* Tag cut in the middle. */
	p.n = 0;
	eth_hdr(&p, 0x8100);
	p16(&p, 42);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_TRUNCATED_L2);
}

Test(decode, stripped_tci_equals_in_frame_tag)
{
	/* AF_PACKET took the tag out of the frame and reported it in tp_vlan_tci. */
	struct pkt tagged = {.n = 0}, stripped = {.n = 0};
	eth_hdr(&tagged, 0x8100);
	vlan_tag(&tagged, 0xa000 | 0x123, 0x0800);
	ipv4_hdr(&tagged, IPPROTO_TCP, 25, 0);
	tcp_hdr(&tagged, 33333, 22, TCP_PSH | TCP_ACK, 5);
	eth_hdr(&stripped, 0x0800);
	ipv4_hdr(&stripped, IPPROTO_TCP, 25, 0);
	tcp_hdr(&stripped, 33333, 22, TCP_PSH | TCP_ACK, 5);

	struct dres a = dec(DLT_EN10MB, &tagged);
	struct dres b = dec_len(DLT_EN10MB, &stripped, stripped.n, stripped.n, 0xa000 | 0x123);
	cr_assert_eq(a.r, DECODE_OK);
	cr_assert_eq(b.r, DECODE_OK);
	cr_assert_eq(a.v.key.vlan, 0x123);
	cr_assert_eq(memcmp(&a.v.key, &b.v.key, sizeof(a.v.key)), 0, "same flow key");
	cr_assert_eq(a.v.ip_len, b.v.ip_len);
	cr_assert_eq(a.v.l3_caplen, b.v.l3_caplen);
	cr_assert_eq(a.v.l4_payload, b.v.l4_payload);
	cr_assert_eq(a.v.tcp_flags, b.v.tcp_flags);
	cr_assert_eq(flow_key__hash(&a.v.key), flow_key__hash(&b.v.key));

	/* QinQ with the outer tag stripped: the stripped one is the outer VLAN. */
	struct pkt qinq = {.n = 0}, inner_only = {.n = 0};
	eth_hdr(&qinq, 0x88a8);
	vlan_tag(&qinq, 0x123, 0x8100);
	vlan_tag(&qinq, 0x456, 0x0800);
	ipv4_hdr(&qinq, IPPROTO_TCP, 25, 0);
	tcp_hdr(&qinq, 33333, 22, TCP_PSH | TCP_ACK, 5);
	eth_hdr(&inner_only, 0x8100);
	vlan_tag(&inner_only, 0x456, 0x0800);
	ipv4_hdr(&inner_only, IPPROTO_TCP, 25, 0);
	tcp_hdr(&inner_only, 33333, 22, TCP_PSH | TCP_ACK, 5);
	struct dres c = dec(DLT_EN10MB, &qinq);
	struct dres e = dec_len(DLT_EN10MB, &inner_only, inner_only.n, inner_only.n, 0x123);
	cr_assert_eq(c.r, DECODE_OK);
	cr_assert_eq(e.r, DECODE_OK);
	cr_assert_eq(c.v.key.vlan, 0x123);
	cr_assert_eq(memcmp(&c.v.key, &e.v.key, sizeof(c.v.key)), 0);
	cr_assert_eq(memcmp(&c.v.key, &a.v.key, sizeof(c.v.key)), 0);

	/* tci 0 (priority tag only) is VLAN 0; -1 is "no tag". */
	struct dres z = dec_len(DLT_EN10MB, &stripped, stripped.n, stripped.n, 0x6000);
	cr_assert_eq(z.r, DECODE_OK);
	cr_assert_eq(z.v.key.vlan, 0);
}

/* ---------------------------------------------------------------- other link types */

/* The IPv4/TCP packet used under every link header: 20 + 20 + 4 bytes. */
static void l3_v4_tcp(struct pkt *p)
{
	ipv4_hdr(p, IPPROTO_TCP, 24, 0);
	tcp_hdr(p, 40000, 443, TCP_ACK, 4);
}

static void l3_v6_udp(struct pkt *p)
{
	ipv6_hdr(p, IPPROTO_UDP, 8 + 4);
	udp_hdr(p, 123, 123, 4);
}

static void assert_v4_tcp_view(const struct dres *d, long l3_off)
{
	cr_assert_eq(d->r, DECODE_OK, "got %s", decode__result_name(d->r));
	assert_v4_pair(&d->v.key);
	cr_assert_eq(d->v.key.proto, IPPROTO_TCP);
	cr_assert_eq(d->v.key.sport, 40000);
	cr_assert_eq(d->v.key.dport, 443);
	cr_assert_eq(d->v.tcp_flags, TCP_ACK);
	cr_assert_eq(d->v.ip_len, 44);
	cr_assert_eq(d->v.l3_caplen, 44);
	cr_assert_eq(d->v.l4_payload, 4);
	cr_assert_eq(d->l3_off, l3_off);
}

static void assert_v6_udp_view(const struct dres *d, long l3_off)
{
	cr_assert_eq(d->r, DECODE_OK, "got %s", decode__result_name(d->r));
	assert_v6_pair(&d->v.key);
	cr_assert_eq(d->v.key.proto, IPPROTO_UDP);
	cr_assert_eq(d->v.key.sport, 123);
	cr_assert_eq(d->v.key.dport, 123);
	cr_assert_eq(d->v.ip_len, 52);
	cr_assert_eq(d->v.l4_payload, 4);
	cr_assert_eq(d->l3_off, l3_off);
}

Test(decode, linux_sll)
{
	struct pkt p = {.n = 0};
	p16(&p, 0); /* packet type: to us */
	p16(&p, 1); /* ARPHRD_ETHER */
	p16(&p, 6); /* address length */
	pbytes(&p, MAC_A, 6);
	p16(&p, 0);	 /* address padding to 8 */
	p16(&p, 0x0800); /* protocol at offset 14 */
	cr_assert_eq(p.n, 16);
	l3_v4_tcp(&p);
	struct dres d = dec(DLT_LINUX_SLL, &p);
	assert_v4_tcp_view(&d, 16);

	set16(&p, 14, 0x86dd);
	p.n = 16;
	l3_v6_udp(&p);
	d = dec(DLT_LINUX_SLL, &p);
	assert_v6_udp_view(&d, 16);

	set16(&p, 14, 0x0806);
	cr_assert_eq(dec(DLT_LINUX_SLL, &p).r, DECODE_NOT_IP);
	cr_assert_eq(dec_len(DLT_LINUX_SLL, &p, 15, p.n, -1).r, DECODE_TRUNCATED_L2);

	/* An in-band 802.1Q tag after the cooked header. */
	p.n = 0;
	pfill(&p, 0, 14);
	p16(&p, 0x8100);
	vlan_tag(&p, 77, 0x0800);
	l3_v4_tcp(&p);
	d = dec(DLT_LINUX_SLL, &p);
	assert_v4_tcp_view(&d, 20);
	cr_assert_eq(d.v.key.vlan, 77);
}

Test(decode, linux_sll2)
{
	struct pkt p = {.n = 0};
	p16(&p, 0x86dd);	/* protocol at offset 0 */
	p16(&p, 0);		/* reserved */
	p16(&p, 0), p16(&p, 2); /* interface index */
	p16(&p, 1);		/* ARPHRD_ETHER */
	p8(&p, 4);		/* packet type: outgoing */
	p8(&p, 6);
	pbytes(&p, MAC_A, 6);
	p16(&p, 0);
	cr_assert_eq(p.n, 20);
	l3_v6_udp(&p);
	struct dres d = dec(DLT_LINUX_SLL2, &p);
	assert_v6_udp_view(&d, 20);

	set16(&p, 0, 0x0800);
	p.n = 20;
	l3_v4_tcp(&p);
	d = dec(DLT_LINUX_SLL2, &p);
	assert_v4_tcp_view(&d, 20);

	cr_assert_eq(dec_len(DLT_LINUX_SLL2, &p, 19, p.n, -1).r, DECODE_TRUNCATED_L2);
	set16(&p, 0, 0x0806);
	cr_assert_eq(dec(DLT_LINUX_SLL2, &p).r, DECODE_NOT_IP);
}

Test(decode, null_and_loop_families_both_orders)
{
	struct {
		int dlt;
		uint8_t hdr[4];
		int v6;
	} cases[] = {
	    {DLT_NULL, {2, 0, 0, 0}, 0}, /* AF_INET, little-endian writer */
	    {DLT_NULL, {0, 0, 0, 2}, 0}, /* AF_INET, big-endian writer */
	    {DLT_LOOP, {0, 0, 0, 2}, 0}, /* network order */
	    {DLT_LOOP, {2, 0, 0, 0}, 0},  {DLT_NULL, {10, 0, 0, 0}, 1}, /* Linux AF_INET6 */
	    {DLT_NULL, {24, 0, 0, 0}, 1},				/* NetBSD/OpenBSD */
	    {DLT_NULL, {28, 0, 0, 0}, 1},				/* FreeBSD */
	    {DLT_NULL, {30, 0, 0, 0}, 1},				/* Darwin */
	    {DLT_LOOP, {0, 0, 0, 30}, 1}, {DLT_NULL, {0, 0, 0, 24}, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pkt p = {.n = 0};
		pbytes(&p, cases[i].hdr, 4);
		if (cases[i].v6)
			l3_v6_udp(&p);
		else
			l3_v4_tcp(&p);
		struct dres d = dec(cases[i].dlt, &p);
		if (cases[i].v6)
			assert_v6_udp_view(&d, 4);
		else
			assert_v4_tcp_view(&d, 4);
	}
	struct pkt p = {.n = 0};
	p8(&p, 7), p8(&p, 0), p8(&p, 0), p8(&p, 0); /* unknown family */
	l3_v4_tcp(&p);
	cr_assert_eq(dec(DLT_NULL, &p).r, DECODE_NOT_IP);
	cr_assert_eq(dec_len(DLT_NULL, &p, 3, p.n, -1).r, DECODE_TRUNCATED_L2);
	cr_assert_eq(dec_len(DLT_LOOP, &p, 0, p.n, -1).r, DECODE_TRUNCATED_L2);
}

Test(decode, raw_ipv4_ipv6_links)
{
	struct pkt v4 = {.n = 0}, v6 = {.n = 0};
	l3_v4_tcp(&v4);
	l3_v6_udp(&v6);
	static const int raw[] = {DLT_RAW, 101};
	for (size_t i = 0; i < 2; i++) {
		struct dres d = dec(raw[i], &v4);
		assert_v4_tcp_view(&d, 0);
		d = dec(raw[i], &v6);
		assert_v6_udp_view(&d, 0);
	}
	struct dres d = dec(DLT_IPV4, &v4);
	assert_v4_tcp_view(&d, 0);
	d = dec(DLT_IPV6, &v6);
	assert_v6_udp_view(&d, 0);

	/* The link type promises a version; the packet must keep it. */
	cr_assert_eq(dec(DLT_IPV4, &v6).r, DECODE_BAD_IP);
	cr_assert_eq(dec(DLT_IPV6, &v4).r, DECODE_BAD_IP);
	v4.b[0] = 0x55; /* version 5 */
	cr_assert_eq(dec(DLT_RAW, &v4).r, DECODE_BAD_IP);
	cr_assert_eq(dec_len(DLT_RAW, &v4, 0, 0, -1).r, DECODE_TRUNCATED_L3);
	cr_assert_eq(dec_len(DLT_IPV6, &v6, 39, 39, -1).r, DECODE_TRUNCATED_L3);
}

Test(decode, link_supported)
{
	static const int yes[] = {DLT_EN10MB,	 DLT_RAW,	 101,	   DLT_IPV4, DLT_IPV6,
				  DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_NULL, DLT_LOOP};
	static const int no[] = {
	    DLT_IEEE802_11, DLT_IEEE802_11_RADIO, DLT_PPP, DLT_FDDI, DLT_USB_LINUX, DLT_NFLOG, -1,
	    100000};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_assert_eq(decode__link_supported(yes[i]), 1, "dlt %d", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		cr_assert_eq(decode__link_supported(no[i]), 0, "dlt %d", no[i]);
		struct pkt p = {.n = 0};
		build_eth_ipv4_tcp(&p, 0);
		cr_assert_eq(dec(no[i], &p).r, DECODE_UNSUPPORTED_LINK);
	}
}

Test(decode, result_names)
{
	cr_assert_str_eq(decode__result_name(DECODE_OK), "ok");
	cr_assert_str_eq(decode__result_name(DECODE_NOT_IP), "not_ip");
	cr_assert_str_eq(decode__result_name(DECODE_UNSUPPORTED_LINK), "unsupported_link");
	cr_assert_str_eq(decode__result_name(DECODE_TRUNCATED_L2), "truncated_l2");
	cr_assert_str_eq(decode__result_name(DECODE_TRUNCATED_L3), "truncated_l3");
	cr_assert_str_eq(decode__result_name(DECODE_BAD_IP), "bad_ip");
	cr_assert_str_eq(decode__result_name(DECODE_BAD_IPV6_EXT), "bad_ipv6_ext");
	cr_assert_str_eq(decode__result_name(DECODE_TRUNCATED_L4), "truncated_l4");
	cr_assert_str_eq(decode__result_name(DECODE_FRAGMENT), "fragment");
	cr_assert_str_eq(decode__result_name(DECODE__COUNT), "invalid");
	cr_assert_str_eq(decode__result_name((enum decode_result) - 1), "invalid");
	for (int i = 0; i < DECODE__COUNT; i++) {
		const char *n = decode__result_name((enum decode_result)i);
		cr_assert_not_null(n);
		for (const char *c = n; *c; c++)
			cr_assert((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_',
				  "%s is not snake_case", n);
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(n, decode__result_name((enum decode_result)j));
	}
}

Test(decode, null_frame_and_wirelen_clamp)
{
	struct pkt_view v;
	cr_assert_eq(decode__frame(DLT_EN10MB, NULL, 0, 0, 0, -1, &v), DECODE_TRUNCATED_L2);
	cr_assert_eq(decode__frame(DLT_IPV4, NULL, 0, 0, 0, -1, &v), DECODE_TRUNCATED_L3);
	cr_assert_eq(decode__frame(DLT_RAW, NULL, 0, 0, 0, -1, &v), DECODE_TRUNCATED_L3);

	/* wirelen < caplen is clamped up to caplen. */
	struct pkt p = {.n = 0};
	build_eth_ipv4_tcp(&p, 10);
	struct dres d = dec_len(DLT_EN10MB, &p, p.n, 20, -1);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.ip_len, 50);
	cr_assert_eq(d.v.l4_payload, 10);
}

/* ---------------------------------------------------------------- IPv6 extension headers */

/* Ethernet + IPv6 whose chain starts with `first`; the caller appends the chain and TCP. */
static void v6_start(struct pkt *p, unsigned first)
{
	eth_hdr(p, 0x86dd);
	ipv6_hdr(p, first, 0);
}

static void v6_finish(struct pkt *p)
{
	set16(p, 14 + 4, p->n - 14 - 40);
}

static void assert_v6_tcp_ports(const struct dres *d, unsigned payload)
{
	cr_assert_eq(d->r, DECODE_OK, "got %s", decode__result_name(d->r));
	assert_v6_pair(&d->v.key);
	cr_assert_eq(d->v.key.proto, IPPROTO_TCP);
	cr_assert_eq(d->v.key.sport, 40000);
	cr_assert_eq(d->v.key.dport, 443);
	cr_assert_eq(d->v.l4_payload, payload);
}

Test(decode, ipv6_each_extension_header)
{
	static const unsigned generic[] = {0 /* hop-by-hop */, 43 /* routing */,
					   60 /* destination options */};
	for (size_t i = 0; i < 3; i++) {
		for (unsigned hl8 = 0; hl8 < 3; hl8++) {
			struct pkt p = {.n = 0};
			v6_start(&p, generic[i]);
			ext_hdr(&p, IPPROTO_TCP, hl8);
			tcp_hdr(&p, 40000, 443, TCP_SYN, 3);
			v6_finish(&p);
			struct dres d = dec(DLT_EN10MB, &p);
			assert_v6_tcp_ports(&d, 3);
			cr_assert_eq(d.v.ip_len, 40 + 8 * (1 + hl8) + 23);
			cr_assert_eq(d.v.first_frag, 0);
		}
	}

	/* AH: length in 4-byte units minus 2 (here 24 bytes). */
	struct pkt p = {.n = 0};
	v6_start(&p, 51);
	ah_hdr(&p, IPPROTO_TCP, 4);
	tcp_hdr(&p, 40000, 443, TCP_SYN, 1);
	v6_finish(&p);
	struct dres d = dec(DLT_EN10MB, &p);
	assert_v6_tcp_ports(&d, 1);
	cr_assert_eq(d.v.ip_len, 40 + 24 + 21);

	/* Fragment header, offset 0, more fragments: first fragment, ports parsed. */
	p.n = 0;
	v6_start(&p, 44);
	frag6_hdr(&p, IPPROTO_TCP, 0, 1);
	tcp_hdr(&p, 40000, 443, TCP_ACK, 16);
	v6_finish(&p);
	d = dec(DLT_EN10MB, &p);
	assert_v6_tcp_ports(&d, 16);
	cr_assert_eq(d.v.first_frag, 1);

	/* Fragment header, offset 0, no more fragments (atomic fragment): a whole datagram. */
	p.n = 0;
	v6_start(&p, 44);
	frag6_hdr(&p, IPPROTO_TCP, 0, 0);
	tcp_hdr(&p, 40000, 443, TCP_ACK, 0);
	v6_finish(&p);
	d = dec(DLT_EN10MB, &p);
	assert_v6_tcp_ports(&d, 0);
	cr_assert_eq(d.v.first_frag, 0);

	/* Later fragment: no ports, counted apart, addresses and protocol still known. */
	p.n = 0;
	v6_start(&p, 44);
	frag6_hdr(&p, IPPROTO_UDP, 185, 1);
	pfill(&p, 'f', 64);
	v6_finish(&p);
	d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_FRAGMENT);
	assert_v6_pair(&d.v.key);
	cr_assert_eq(d.v.key.proto, IPPROTO_UDP);
	cr_assert_eq(d.v.key.sport, 0);

	/* Last fragment (offset != 0, M = 0). */
	p.n = 0;
	v6_start(&p, 0);
	ext_hdr(&p, 44, 0);
	frag6_hdr(&p, IPPROTO_TCP, 1, 0);
	pfill(&p, 'f', 8);
	v6_finish(&p);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_FRAGMENT);

	/* Every bit of the 13-bit offset counts (here the highest and the lowest alone). */
	static const unsigned offsets[] = {0x1000, 1, 0x1fff};
	for (size_t i = 0; i < 3; i++) {
		p.n = 0;
		v6_start(&p, 44);
		frag6_hdr(&p, IPPROTO_TCP, offsets[i], 1);
		pfill(&p, 'f', 24);
		v6_finish(&p);
		cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_FRAGMENT, "offset %#x", offsets[i]);
	}
}

Test(decode, ipv6_full_chain)
{
	struct pkt p = {.n = 0};
	v6_start(&p, 0);
	ext_hdr(&p, 60, 1);	     /* hop-by-hop, 16 bytes */
	ext_hdr(&p, 43, 0);	     /* destination options, 8 */
	ext_hdr(&p, 44, 2);	     /* routing, 24 */
	frag6_hdr(&p, 51, 0, 1);     /* fragment, 8, first */
	ah_hdr(&p, 60, 1);	     /* AH, 12 */
	ext_hdr(&p, IPPROTO_TCP, 0); /* destination options, 8 */
	tcp_hdr(&p, 40000, 443, TCP_SYN, 9);
	v6_finish(&p);
	struct dres d = dec(DLT_EN10MB, &p);
	assert_v6_tcp_ports(&d, 9);
	cr_assert_eq(d.v.first_frag, 1);
	cr_assert_eq(d.v.ip_len, 40 + 16 + 8 + 24 + 8 + 12 + 8 + 29);
	cr_assert_eq(d.v.l3_caplen, d.v.ip_len);
}

Test(decode, ipv6_esp_and_no_next_header)
{
	struct pkt p = {.n = 0};
	v6_start(&p, 0);
	ext_hdr(&p, 50, 0);
	p16(&p, 0x0102), p16(&p, 0x0304); /* SPI: must not be read as ports */
	pfill(&p, 0xee, 40);
	v6_finish(&p);
	struct dres d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	assert_v6_pair(&d.v.key);
	cr_assert_eq(d.v.key.proto, 50);
	cr_assert_eq(d.v.key.sport, 0);
	cr_assert_eq(d.v.key.dport, 0);
	cr_assert_eq(d.v.l4_payload, 0);

	p.n = 0;
	v6_start(&p, 59);
	v6_finish(&p);
	d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.key.proto, 59);
	cr_assert_eq(d.v.ip_len, 40);
}

Test(decode, ipv6_chain_runs_off_the_end)
{
	/* Routing header claims 8 * (1 + 200) bytes; the packet is much shorter. */
	struct pkt p = {.n = 0};
	v6_start(&p, 43);
	p8(&p, IPPROTO_TCP);
	p8(&p, 200);
	pfill(&p, 0, 30);
	v6_finish(&p);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_BAD_IPV6_EXT);

	/* The chain ends exactly at the end of the packet with the next header missing. */
	p.n = 0;
	v6_start(&p, 60);
	ext_hdr(&p, 0, 0);
	v6_finish(&p);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_BAD_IPV6_EXT);

	/* One byte of the next extension header only. */
	p.n = 0;
	v6_start(&p, 60);
	ext_hdr(&p, 43, 0);
	p8(&p, 6);
	v6_finish(&p);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_BAD_IPV6_EXT);

	/* Fragment header cut short. */
	p.n = 0;
	v6_start(&p, 44);
	p8(&p, 6), p8(&p, 0), p16(&p, 0);
	v6_finish(&p);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_BAD_IPV6_EXT);

	/* The header fits in the frame but the payload length ends before it: a lie. */
	p.n = 0;
	v6_start(&p, 60);
	ext_hdr(&p, IPPROTO_TCP, 1);
	tcp_hdr(&p, 40000, 443, TCP_SYN, 0);
	set16(&p, 14 + 4, 8);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_BAD_IPV6_EXT);

	/* The same chain cut by a snaplen (the packet on the wire holds it): truncated_l3. */
	p.n = 0;
	v6_start(&p, 60);
	ext_hdr(&p, IPPROTO_TCP, 1);
	tcp_hdr(&p, 40000, 443, TCP_SYN, 0);
	v6_finish(&p);
	cr_assert_eq(dec_len(DLT_EN10MB, &p, 14 + 40 + 10, p.n, -1).r, DECODE_TRUNCATED_L3);
	cr_assert_eq(dec_len(DLT_EN10MB, &p, 14 + 40 + 1, p.n, -1).r, DECODE_TRUNCATED_L3);
}

Test(decode, ipv6_chain_too_long)
{
	for (unsigned n = DECODE_MAX_IPV6_EXT - 1; n <= DECODE_MAX_IPV6_EXT + 2; n++) {
		struct pkt p = {.n = 0};
		v6_start(&p, 60);
		for (unsigned i = 0; i < n; i++)
			ext_hdr(&p, i + 1 < n ? 60 : IPPROTO_TCP, 0);
		tcp_hdr(&p, 40000, 443, TCP_SYN, 0);
		v6_finish(&p);
		struct dres d = dec(DLT_EN10MB, &p);
		if (n <= DECODE_MAX_IPV6_EXT)
			assert_v6_tcp_ports(&d, 0);
		else
			cr_assert_eq(d.r, DECODE_BAD_IPV6_EXT, "%u headers", n);
	}
}

/* ---------------------------------------------------------------- IPv4 fragments */

Test(decode, ipv4_fragments)
{
	/* First fragment: MF, offset 0 - ports parsed, first_frag. */
	struct pkt p = {.n = 0};
	eth_hdr(&p, 0x0800);
	ipv4_hdr(&p, IPPROTO_UDP, 8 + 1472, 0x2000);
	udp_hdr(&p, 4444, 5555, 1472);
	struct dres d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.first_frag, 1);
	cr_assert_eq(d.v.key.sport, 4444);
	cr_assert_eq(d.v.key.dport, 5555);
	cr_assert_eq(d.v.ip_len, 1500);

	/* Later fragment: offset 185 (1480 bytes), MF still set. */
	p.n = 0;
	eth_hdr(&p, 0x0800);
	ipv4_hdr(&p, IPPROTO_UDP, 100, 0x2000 | 185);
	pfill(&p, 'z', 100);
	d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_FRAGMENT);
	assert_v4_pair(&d.v.key);
	cr_assert_eq(d.v.key.proto, IPPROTO_UDP);
	cr_assert_eq(d.v.key.sport, 0);

	/* Last fragment: offset != 0, MF clear. */
	p.n = 0;
	eth_hdr(&p, 0x0800);
	ipv4_hdr(&p, IPPROTO_TCP, 40, 370);
	pfill(&p, 'z', 40);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_FRAGMENT);

	/* Highest and lowest offset bits alone, with and without MF. */
	static const unsigned frags[] = {0x1000, 0x0001, 0x3000, 0x1fff, 0x5000};
	for (size_t i = 0; i < sizeof(frags) / sizeof(frags[0]); i++) {
		p.n = 0;
		eth_hdr(&p, 0x0800);
		ipv4_hdr(&p, IPPROTO_TCP, 20, frags[i]);
		tcp_hdr(&p, 1, 2, TCP_ACK, 0);
		cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_FRAGMENT, "frag field %#x", frags[i]);
	}

	/* DF set, offset 0: a whole datagram. */
	p.n = 0;
	eth_hdr(&p, 0x0800);
	ipv4_hdr(&p, IPPROTO_TCP, 20, 0x4000);
	tcp_hdr(&p, 1, 2, TCP_ACK, 0);
	d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.first_frag, 0);
	cr_assert_eq(d.v.key.dport, 2);

	/* A first fragment too small to hold the TCP header (tiny fragment attack). */
	p.n = 0;
	eth_hdr(&p, 0x0800);
	ipv4_hdr(&p, IPPROTO_TCP, 8, 0x2000);
	p16(&p, 1), p16(&p, 2), p16(&p, 3), p16(&p, 4);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_TRUNCATED_L4);
}

/* ---------------------------------------------------------------- lengths that lie */

Test(decode, ipv4_total_length_lies)
{
	/* Total length larger than what is on the wire: ip_len bounded by the wire. */
	struct pkt p = {.n = 0};
	build_eth_ipv4_tcp(&p, 10);
	set16(&p, 16, 1500);
	struct dres d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.ip_len, 50);
	cr_assert_eq(d.v.l3_caplen, 50);
	cr_assert_eq(d.v.l4_payload, 10);

	/* Total length shorter than the IHL. */
	set16(&p, 16, 19);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_BAD_IP);
	set16(&p, 16, 0); /* 0 on a small packet is no BIG TCP packet */
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_BAD_IP);

	/* Total length ends inside the TCP header. */
	set16(&p, 16, 30);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_TRUNCATED_L4);

	/* Total length shorter than the frame: the rest is not payload. */
	set16(&p, 16, 45);
	d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.ip_len, 45);
	cr_assert_eq(d.v.l4_payload, 5);

	/* IHL < 5. */
	for (unsigned ihl = 0; ihl < 5; ihl++) {
		set16(&p, 16, 50);
		p.b[14] = (uint8_t)(0x40 | ihl);
		cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_BAD_IP, "ihl %u", ihl);
	}

	/* IHL 15 (60 bytes) on a frame that has 50 IP bytes but claims 60+ total. */
	p.b[14] = 0x4f;
	set16(&p, 16, 80);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_TRUNCATED_L3);

	/* IHL larger than the total length. */
	p.b[14] = 0x47;
	set16(&p, 16, 24);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_BAD_IP);

	/* Version 6 behind the IPv4 ethertype; version 4 behind IPv6's. */
	p.b[14] = 0x65;
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_BAD_IP);
	p.n = 0;
	eth_hdr(&p, 0x86dd);
	l3_v4_tcp(&p);
	pfill(&p, 0, 20);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_BAD_IP);
}

Test(decode, ipv4_options)
{
	struct pkt p = {.n = 0};
	eth_hdr(&p, 0x0800);
	ipv4_hdr(&p, IPPROTO_UDP, 8 + 8 + 2, 0);
	p.b[14] = 0x47; /* IHL 7 */
	set16(&p, 16, 28 + 8 + 2);
	pfill(&p, 1, 8); /* 8 bytes of options (NOPs) */
	udp_hdr(&p, 67, 68, 2);
	struct dres d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.key.sport, 67);
	cr_assert_eq(d.v.key.dport, 68);
	cr_assert_eq(d.v.l4_payload, 2);
	cr_assert_eq(d.v.ip_len, 38);
}

Test(decode, tcp_data_offset_lies)
{
	struct pkt p = {.n = 0};
	build_eth_ipv4_tcp(&p, 10);
	uint32_t doff_at = 14 + 20 + 12;

	p.b[doff_at] = 15 << 4; /* 60 bytes: more than the 30 there are */
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_TRUNCATED_L4);
	for (unsigned doff = 0; doff < 5; doff++) {
		p.b[doff_at] = (uint8_t)(doff << 4);
		cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_TRUNCATED_L4, "doff %u", doff);
	}
	p.b[doff_at] = 7 << 4; /* 28 bytes: fits, 2 bytes of payload left */
	struct dres d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.l4_payload, 2);

	/* UDP header of 4 bytes. */
	p.n = 0;
	eth_hdr(&p, 0x0800);
	ipv4_hdr(&p, IPPROTO_UDP, 4, 0);
	p16(&p, 53), p16(&p, 53);
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_TRUNCATED_L4);
}

Test(decode, ipv6_payload_length_lies)
{
	struct pkt p = {.n = 0};
	eth_hdr(&p, 0x86dd);
	ipv6_hdr(&p, IPPROTO_TCP, 20 + 6);
	tcp_hdr(&p, 40000, 443, TCP_ACK, 6);

	set16(&p, 18, 9000); /* more than the wire: bounded */
	struct dres d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.ip_len, 66);
	cr_assert_eq(d.v.l4_payload, 6);

	set16(&p, 18, 10); /* ends inside the TCP header */
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_TRUNCATED_L4);

	set16(&p, 18, 0); /* 0 on a small packet: nothing after the header */
	cr_assert_eq(dec(DLT_EN10MB, &p).r, DECODE_TRUNCATED_L4);

	set16(&p, 18, 22); /* shorter than the frame: the rest is padding */
	d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.ip_len, 62);
	cr_assert_eq(d.v.l3_caplen, 62);
	cr_assert_eq(d.v.l4_payload, 2);
}

Test(decode, big_tcp_zero_length_takes_wire_length)
{
	/* Captured with a snaplen: 54 bytes of a 70,014-byte GRO packet. */
	struct pkt p = {.n = 0};
	build_eth_ipv4_tcp(&p, 0);
	set16(&p, 16, 0);
	struct dres d = dec_len(DLT_EN10MB, &p, p.n, 70014, -1);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.ip_len, 70000);
	cr_assert_eq(d.v.l3_caplen, 40);

	p.n = 0;
	eth_hdr(&p, 0x86dd);
	ipv6_hdr(&p, IPPROTO_TCP, 0);
	tcp_hdr(&p, 40000, 443, TCP_ACK, 0);
	d = dec_len(DLT_EN10MB, &p, p.n, 80014, -1);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.ip_len, 80000);
}

/* ---------------------------------------------------------------- padding and snaplen */

Test(decode, ethernet_padding_not_counted)
{
	/* A bare ACK is 54 bytes; Ethernet pads it to 60. */
	struct pkt p = {.n = 0};
	build_eth_ipv4_tcp(&p, 0);
	pfill(&p, 0, 6);
	cr_assert_eq(p.n, 60);
	struct dres d = dec(DLT_EN10MB, &p);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.ip_len, 40);
	cr_assert_eq(d.v.l3_caplen, 40);
	cr_assert_eq(d.v.l4_payload, 0);

	/* Small UDP in a VLAN, padded, wirelen with the FCS on top. */
	p.n = 0;
	eth_hdr(&p, 0x8100);
	vlan_tag(&p, 9, 0x0800);
	ipv4_hdr(&p, IPPROTO_UDP, 8 + 2, 0);
	udp_hdr(&p, 9, 9, 2);
	pfill(&p, 0, 64 - p.n);
	d = dec_len(DLT_EN10MB, &p, p.n, p.n + 4, -1);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.ip_len, 30);
	cr_assert_eq(d.v.l3_caplen, 30);
	cr_assert_eq(d.v.l4_payload, 2);
}

Test(decode, small_snaplen)
{
	/* 1514-byte frame captured with snaplen 54, 64 and 40. */
	struct pkt p = {.n = 0};
	build_eth_ipv4_tcp(&p, 1460);
	struct dres d = dec_len(DLT_EN10MB, &p, 54, p.n, -1);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.ip_len, 1500, "bytes on the wire are accounted");
	cr_assert_eq(d.v.l3_caplen, 40);
	cr_assert_eq(d.v.l4_payload, 0);
	cr_assert_eq(d.v.key.dport, 443);

	d = dec_len(DLT_EN10MB, &p, 64, p.n, -1);
	cr_assert_eq(d.r, DECODE_OK);
	cr_assert_eq(d.v.l4_payload, 10);

	cr_assert_eq(dec_len(DLT_EN10MB, &p, 40, p.n, -1).r, DECODE_TRUNCATED_L4);
	cr_assert_eq(dec_len(DLT_EN10MB, &p, 30, p.n, -1).r, DECODE_TRUNCATED_L3);
}

static int sane_failure(enum decode_result r)
{
	return r == DECODE_TRUNCATED_L2 || r == DECODE_TRUNCATED_L3 || r == DECODE_TRUNCATED_L4;
}

Test(decode, every_truncation_point_ipv4_tcp)
{
	struct pkt p = {.n = 0};
	build_eth_ipv4_tcp(&p, 12);
	for (int lie = 0; lie < 2; lie++) {
		for (uint32_t cap = 0; cap <= p.n; cap++) {
			/* lie = 0: snaplen cut (wire keeps the full length); lie = 1: the frame
			 * itself is that short, the IP total length lies. */
			uint32_t wire = lie ? cap : p.n;
			struct dres d = dec_len(DLT_EN10MB, &p, cap, wire, -1);
			enum decode_result want = cap < 14   ? DECODE_TRUNCATED_L2
						  : cap < 34 ? DECODE_TRUNCATED_L3
						  : cap < 54 ? DECODE_TRUNCATED_L4
							     : DECODE_OK;
			cr_assert_eq(d.r, want, "cap %u wire %u: %s", cap, wire,
				     decode__result_name(d.r));
			if (d.r == DECODE_OK) {
				cr_assert_eq(d.v.ip_len, lie ? cap - 14 : 52);
				cr_assert_eq(d.v.l3_caplen, cap - 14);
				cr_assert_eq(d.v.l4_payload, cap - 54);
				cr_assert_eq(d.v.key.sport, 40000);
			}
		}
	}
}

Test(decode, every_truncation_point_other_frames)
{
	struct pkt frames[6];
	int dlts[6];
	memset(frames, 0, sizeof(frames));

	/* QinQ + IPv6 + chain + TCP */
	eth_hdr(&frames[0], 0x88a8);
	vlan_tag(&frames[0], 10, 0x8100);
	vlan_tag(&frames[0], 20, 0x86dd);
	ipv6_hdr(&frames[0], 0, 0);
	ext_hdr(&frames[0], 44, 1);
	frag6_hdr(&frames[0], 51, 0, 1);
	ah_hdr(&frames[0], IPPROTO_TCP, 1);
	tcp_hdr(&frames[0], 40000, 443, TCP_SYN, 5);
	set16(&frames[0], 22 + 4, frames[0].n - 22 - 40);
	dlts[0] = DLT_EN10MB;
	/* SLL + IPv4 + UDP */
	pfill(&frames[1], 0, 14);
	p16(&frames[1], 0x0800);
	ipv4_hdr(&frames[1], IPPROTO_UDP, 8 + 4, 0);
	udp_hdr(&frames[1], 1, 2, 4);
	dlts[1] = DLT_LINUX_SLL;
	/* SLL2 + IPv6 + UDP */
	p16(&frames[2], 0x86dd);
	pfill(&frames[2], 0, 18);
	l3_v6_udp(&frames[2]);
	dlts[2] = DLT_LINUX_SLL2;
	/* NULL + IPv4 + TCP */
	p8(&frames[3], 2), p8(&frames[3], 0), p8(&frames[3], 0), p8(&frames[3], 0);
	l3_v4_tcp(&frames[3]);
	dlts[3] = DLT_NULL;
	/* RAW IPv6 + TCP */
	ipv6_hdr(&frames[4], IPPROTO_TCP, 20);
	tcp_hdr(&frames[4], 40000, 443, TCP_SYN, 0);
	dlts[4] = DLT_RAW;
	/* RAW IPv4 with options + TCP */
	ipv4_hdr(&frames[5], IPPROTO_TCP, 4 + 20, 0);
	frames[5].b[0] = 0x46;
	pfill(&frames[5], 1, 4);
	tcp_hdr(&frames[5], 40000, 443, TCP_SYN, 0);
	dlts[5] = DLT_IPV4;

	for (int f = 0; f < 6; f++) {
		struct dres full = dec(dlts[f], &frames[f]);
		cr_assert_eq(full.r, DECODE_OK, "frame %d: %s", f, decode__result_name(full.r));
		for (int lie = 0; lie < 2; lie++) {
			int seen_ok = 0;
			for (uint32_t cap = 0; cap <= frames[f].n; cap++) {
				uint32_t wire = lie ? cap : frames[f].n;
				struct dres d = dec_len(dlts[f], &frames[f], cap, wire, -1);
				if (d.r == DECODE_OK) {
					seen_ok = 1;
					cr_assert_eq(memcmp(&d.v.key, &full.v.key, sizeof(d.v.key)),
						     0);
					cr_assert_leq(d.v.l3_caplen, d.v.ip_len);
					cr_assert_leq(d.v.l4_payload, d.v.l3_caplen);
					cr_assert_eq(d.v.ip_len,
						     lie ? full.v.l3_caplen - (frames[f].n - cap)
							 : full.v.ip_len);
				} else {
					/* Once the headers are all there, more bytes keep it OK. */
					cr_assert_not(seen_ok,
						      "frame %d cap %u lie %d: %s after ok", f, cap,
						      lie, decode__result_name(d.r));
					cr_assert(sane_failure(d.r) ||
						      (lie && d.r == DECODE_BAD_IPV6_EXT),
						  "frame %d cap %u lie %d: %s", f, cap, lie,
						  decode__result_name(d.r));
				}
			}
			cr_assert(seen_ok);
		}
	}
}

/* ---------------------------------------------------------------- flow key hashes */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	uint64_t x = rng_state; /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static struct flow_key random_key(int kind)
{
	struct flow_key k;
	memset(&k, 0, sizeof(k));
	if (kind == 0 || kind == 2) { /* IPv4, or IPv4 in a VLAN */
		uint32_t a = (uint32_t)rng(), b = (uint32_t)rng();
		memcpy(k.src, &a, 4);
		memcpy(k.dst, &b, 4);
		k.ipver = 4;
	} else {
		for (int i = 0; i < 16; i += 8) {
			uint64_t a = rng(), b = rng();
			memcpy(k.src + i, &a, 8);
			memcpy(k.dst + i, &b, 8);
		}
		k.ipver = 6;
	}
	k.sport = (uint16_t)rng();
	k.dport = (uint16_t)rng();
	k.proto = rng() & 1 ? IPPROTO_TCP : IPPROTO_UDP;
	k.vlan = kind >= 2 ? (uint16_t)(rng() % 4095 + 1) : 0;
	return k;
}

static struct flow_key swapped(const struct flow_key *k)
{
	struct flow_key s = *k;
	memcpy(s.src, k->dst, 16);
	memcpy(s.dst, k->src, 16);
	s.sport = k->dport;
	s.dport = k->sport;
	return s;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

Test(decode, flow_hashes_symmetric)
{
	for (int kind = 0; kind < 4; kind++) {
		for (int i = 0; i < 20000; i++) {
			struct flow_key k = random_key(kind), s = swapped(&k);
			cr_assert_eq(flow_key__hash(&k), flow_key__hash(&s), "kind %d #%d", kind,
				     i);
			cr_assert_eq(flow_key__pair_hash(&k), flow_key__pair_hash(&s));
		}
	}
	/* Also on keys straight out of the decoder: both directions of a real flow. */
	struct pkt a = {.n = 0}, b = {.n = 0};
	eth_hdr(&a, 0x8100);
	vlan_tag(&a, 30, 0x0800);
	ipv4_hdr(&a, IPPROTO_TCP, 20, 0);
	tcp_hdr(&a, 40000, 443, TCP_SYN, 0);
	eth_hdr(&b, 0x8100);
	vlan_tag(&b, 30, 0x0800);
	ipv4_hdr(&b, IPPROTO_TCP, 20, 0);
	memcpy(b.b + 18 + 12, IP4_B, 4);
	memcpy(b.b + 18 + 16, IP4_A, 4);
	tcp_hdr(&b, 443, 40000, TCP_SYN | TCP_ACK, 0);
	struct dres da = dec(DLT_EN10MB, &a), db = dec(DLT_EN10MB, &b);
	cr_assert_eq(da.r, DECODE_OK);
	cr_assert_eq(db.r, DECODE_OK);
	cr_assert_neq(memcmp(&da.v.key, &db.v.key, sizeof(da.v.key)), 0);
	cr_assert_eq(flow_key__hash(&da.v.key), flow_key__hash(&db.v.key));
	cr_assert_eq(flow_key__pair_hash(&da.v.key), flow_key__pair_hash(&db.v.key));
}

Test(decode, flow_hashes_differ)
{
	enum { N = 20000 };
	static uint64_t full[N], pair[N];
	for (int kind = 0; kind < 4; kind++) {
		for (int i = 0; i < N; i++) {
			struct flow_key k = random_key(kind);
			full[i] = flow_key__hash(&k);
			pair[i] = flow_key__pair_hash(&k);
		}
		qsort(full, N, sizeof(full[0]), cmp_u64);
		qsort(pair, N, sizeof(pair[0]), cmp_u64);
		int dup_full = 0, dup_pair = 0;
		for (int i = 1; i < N; i++) {
			dup_full += full[i] == full[i - 1];
			dup_pair += pair[i] == pair[i - 1];
		}
		/* 64-bit: no collision expected; 32-bit over 20k keys: ~0.05 expected. */
		cr_assert_eq(dup_full, 0, "kind %d: %d full-hash collisions", kind, dup_full);
		cr_assert_leq(dup_pair, 3, "kind %d: %d pair-hash collisions", kind, dup_pair);
	}

	/* One field changed: the hash changes (VLAN, protocol, a port, one address bit). */
	int same = 0;
	for (int i = 0; i < 5000; i++) {
		struct flow_key k = random_key(i % 4), m;
		uint64_t h = flow_key__hash(&k);
		m = k, m.vlan ^= 1, same += flow_key__hash(&m) == h;
		m = k, m.proto = m.proto == IPPROTO_TCP ? IPPROTO_UDP : IPPROTO_TCP,
		same += flow_key__hash(&m) == h;
		m = k, m.sport ^= 0x0100, same += flow_key__hash(&m) == h;
		m = k, m.dst[3] ^= 0x01, same += flow_key__hash(&m) == h;
		m = k, m.vlan ^= 1, same += flow_key__pair_hash(&m) == flow_key__pair_hash(&k);
		m = k, m.src[0] ^= 0x80, same += flow_key__pair_hash(&m) == flow_key__pair_hash(&k);
	}
	cr_assert_eq(same, 0, "%d single-field changes kept the hash", same);

	/* Spread over workers: pair_hash % 4 within 10% of even over 40k host pairs. */
	unsigned bucket[4] = {0};
	for (int i = 0; i < 40000; i++) {
		struct flow_key k = random_key(i % 4);
		bucket[flow_key__pair_hash(&k) % 4]++;
	}
	for (int w = 0; w < 4; w++)
		cr_assert(bucket[w] > 9000 && bucket[w] < 11000, "worker %d got %u", w, bucket[w]);
}
