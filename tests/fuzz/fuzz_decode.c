/* fuzz_decode.c - libFuzzer harness for decode__frame.
 *
 * Input layout: byte 0 = selector, bytes 1.. = the frame.
 *   selector & 0x0f, modulo the number of links, picks the link type from links[] below
 *   (tests/fuzz/run.sh writes its seeds with the same order);
 *   selector & 0x10: pass a stripped VLAN tag (vlan_tci) as AF_PACKET would;
 *   selector & 0x20: the frame was cut by a snaplen (wirelen > caplen).
 * The frame is decoded where libFuzzer put it, so a read past its end is an ASan report.
 * Beyond "no crash" the harness traps when an OK view breaks its documented invariants. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <pcap/dlt.h>

#include "fuzz_util.h"
#include "svcsensor/decode.h"

static const int links[] = {
    DLT_EN10MB, DLT_RAW,  101 /* LINKTYPE_RAW */, DLT_IPV4, DLT_IPV6, DLT_LINUX_SLL, DLT_LINUX_SLL2,
    DLT_NULL,	DLT_LOOP,
};
#define N_LINKS (sizeof(links) / sizeof(links[0]))

static void check_view(const uint8_t *frame, uint32_t caplen, const struct pkt_view *v)
{
	static const uint8_t zero[12];

	CHECK(v->l3 >= frame && v->l3 <= frame + caplen);
	CHECK(v->l3_caplen <= caplen - (uint32_t)(v->l3 - frame));
	CHECK(v->l3_caplen <= v->ip_len);
	CHECK(v->l4_payload <= v->l3_caplen);
	CHECK(v->key.ipver == 4 || v->key.ipver == 6);
	CHECK(v->key.vlan <= 0x0fff);
	if (v->key.ipver == 4) {
		CHECK(v->l3_caplen >= 20);
		CHECK(memcmp(v->key.src + 4, zero, 12) == 0);
		CHECK(memcmp(v->key.dst + 4, zero, 12) == 0);
	} else {
		CHECK(v->l3_caplen >= 40);
	}
	if (v->key.proto != 6 && v->key.proto != 17) {
		CHECK(v->key.sport == 0 && v->key.dport == 0);
		CHECK(v->l4_payload == 0);
	}
	if (v->key.proto != 6)
		CHECK(v->tcp_flags == 0);
	CHECK(v->first_frag <= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size - 1 > UINT32_MAX)
		return 0;
	uint8_t sel = data[0];
	int dlt = links[(sel & 0x0f) % N_LINKS];
	int tci = (sel & 0x10) ? 0x2000 | 0x0abc : -1;
	const uint8_t *frame = data + 1;
	uint32_t caplen = (uint32_t)(size - 1);
	uint32_t wirelen = (sel & 0x20) ? caplen + 1460 : caplen;

	struct pkt_view v1, v2;
	enum decode_result r1 = decode__frame(dlt, frame, caplen, wirelen, 42, tci, &v1);
	CHECK((unsigned)r1 < DECODE__COUNT);
	CHECK(decode__result_name(r1) != NULL);
	if (r1 == DECODE_OK) {
		check_view(frame, caplen, &v1);
		if (tci >= 0)
			CHECK(v1.key.vlan == 0x0abc);
		/* Pure function: the same input gives the same view. */
		enum decode_result r2 = decode__frame(dlt, frame, caplen, wirelen, 42, tci, &v2);
		CHECK(r2 == r1);
		CHECK(memcmp(&v1.key, &v2.key, sizeof(v1.key)) == 0);
		CHECK(v1.ip_len == v2.ip_len && v1.l3 == v2.l3);
		/* Symmetric hashes hold on whatever the decoder produces. */
		struct flow_key s = v1.key;
		memcpy(s.src, v1.key.dst, 16);
		memcpy(s.dst, v1.key.src, 16);
		s.sport = v1.key.dport;
		s.dport = v1.key.sport;
		CHECK(flow_key__hash(&s) == flow_key__hash(&v1.key));
		CHECK(flow_key__pair_hash(&s) == flow_key__pair_hash(&v1.key));
	}
	return 0;
}
