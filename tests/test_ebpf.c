/* test_ebpf.c - suite "ebpf": the fanout steering program returns flow_key__pair_hash().
 *
 * The program runs through BPF_PROG_TEST_RUN on crafted frames. Note that test_run builds its
 * skb like the receive path but does NOT strip VLAN tags into skb->vlan_tci: the tags stay in
 * the data, so these tests exercise the in-frame tag parsing. The stripped-tag path (live
 * receive) and the sending path are covered by the live suite (test_live.c). */
#include <criterion/criterion.h>

#include <errno.h>
#include <netinet/in.h>
#include <pcap/dlt.h>
#include <string.h>
#include <unistd.h>

#include "netns.h"
#include "svcsensor/decode.h"
#include "svcsensor/fanout_ebpf.h"
#include "svcsensor/flow.h"

static struct fanout_ebpf *prog;

static void load_prog(void)
{
	int err;

	if (geteuid() != 0)
		cr_skip_test("ebpf: needs root (CAP_BPF + CAP_NET_ADMIN) to load and test-run the "
			     "fanout program; run the suite as root");
	err = fanout_ebpf__load(&prog);
	if (err == -EPERM)
		cr_skip_test("ebpf: the kernel refused to load BPF programs even as root "
			     "(locked down / no CAP_BPF in this container): %s",
			     strerror(-err));
	cr_assert_eq(err, 0, "fanout_ebpf__load: %s", strerror(-err));
}

static void unload_prog(void)
{
	fanout_ebpf__close(prog);
	prog = NULL;
}

static uint32_t run(const uint8_t *frame, size_t len)
{
	uint32_t ret = 0xdeadbeef;
	int err = fanout_ebpf__test_run(prog, frame, (uint32_t)len, &ret);
	cr_assert_eq(err, 0, "test_run: %s", strerror(-err));
	return ret;
}

static void v4(uint8_t a[16], unsigned x, unsigned y, unsigned z, unsigned w)
{
	memset(a, 0, 16);
	a[0] = (uint8_t)x, a[1] = (uint8_t)y, a[2] = (uint8_t)z, a[3] = (uint8_t)w;
}

static void v6(uint8_t a[16], uint16_t last)
{
	static const uint8_t pfx[] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0x42};
	memset(a, 0, 16);
	memcpy(a, pfx, sizeof(pfx));
	a[14] = (uint8_t)(last >> 8);
	a[15] = (uint8_t)last;
}

/* The program on f and on its reverse both equal pair_hash of the decoder's key, and the
 * decoder's key is the one the test meant (netns__frame_key). */
static uint32_t check_both_ways(const struct tframe *f)
{
	struct tframe r;
	const struct tframe *dirs[2] = {f, &r};
	uint8_t buf[2048];
	uint32_t got[2];

	netns__frame_reverse(f, &r);
	for (int d = 0; d < 2; d++) {
		struct flow_key want;
		struct pkt_view pv;
		size_t len = netns__frame_build(dirs[d], buf, sizeof(buf));

		cr_assert_gt(len, 0);
		netns__frame_key(dirs[d], &want);
		cr_assert_eq(
		    decode__frame(DLT_EN10MB, buf, (uint32_t)len, (uint32_t)len, 0, -1, &pv),
		    DECODE_OK);
		cr_assert_eq(memcmp(&pv.key, &want, sizeof(want)), 0,
			     "decoder key differs from the test's");
		got[d] = run(buf, len);
		cr_assert_eq(got[d], flow_key__pair_hash(&want),
			     "direction %d: program %#x, flow_key__pair_hash %#x", d, got[d],
			     flow_key__pair_hash(&want));
	}
	cr_assert_eq(got[0], got[1], "the two directions differ");
	cr_assert_neq(got[0], 0, "a real hash is (almost surely) not 0");
	return got[0];
}

TestSuite(ebpf, .init = load_prog, .fini = unload_prog, .timeout = 30);

Test(ebpf, ipv4_tcp_udp_icmp_both_directions)
{
	struct tframe f = {.ipver = 4, .proto = IPPROTO_TCP, .sport = 51000, .dport = 443};
	uint32_t h[3];

	v4(f.src, 10, 42, 0, 130);
	v4(f.dst, 142, 250, 180, 14);
	h[0] = check_both_ways(&f);
	f.proto = IPPROTO_UDP, f.sport = 5353, f.dport = 53;
	h[1] = check_both_ways(&f);
	f.proto = IPPROTO_ICMP, f.sport = f.dport = 0;
	h[2] = check_both_ways(&f);
	/* The pair hash ignores ports and protocol: one host pair, one worker. */
	cr_assert(h[0] == h[1] && h[1] == h[2]);
}

Test(ebpf, ipv6_both_directions)
{
	struct tframe f = {.ipver = 6, .proto = IPPROTO_TCP, .sport = 40000, .dport = 443};

	v6(f.src, 0x130);
	v6(f.dst, 0x1);
	f.dst[0] = 0x2a; /* a different /16 too */
	check_both_ways(&f);
	f.proto = IPPROTO_UDP, f.dport = 443; /* QUIC */
	check_both_ways(&f);
	f.proto = IPPROTO_ICMPV6, f.sport = f.dport = 0;
	check_both_ways(&f);
}

Test(ebpf, vlan_8021q_both_directions)
{
	struct tframe f = {.ipver = 4,
			   .proto = IPPROTO_UDP,
			   .sport = 123,
			   .dport = 123,
			   .ntags = 1,
			   .tpid = {0x8100},
			   .tci = {0xa00a}}; /* PCP 5, id 10 */
	uint32_t tagged, untagged;

	v4(f.src, 192, 168, 1, 2);
	v4(f.dst, 192, 168, 1, 1);
	tagged = check_both_ways(&f);
	f.tci[0] = 0x000a; /* same id, no priority bits: same hash */
	cr_assert_eq(check_both_ways(&f), tagged);
	f.ntags = 0;
	untagged = check_both_ways(&f);
	cr_assert_neq(tagged, untagged, "the VLAN id must be part of the pair hash");
	f.ipver = 6, f.ntags = 1, f.tci[0] = 4094;
	v6(f.src, 2);
	v6(f.dst, 3);
	check_both_ways(&f);
}

Test(ebpf, qinq_outer_tag_is_the_flow_vlan)
{
	struct tframe f = {.ipver = 4,
			   .proto = IPPROTO_TCP,
			   .sport = 1234,
			   .dport = 80,
			   .ntags = 2,
			   .tpid = {0x88a8, 0x8100},
			   .tci = {100, 200}};
	struct tframe g;
	uint32_t h;

	v4(f.src, 10, 0, 0, 1);
	v4(f.dst, 10, 0, 0, 2);
	h = check_both_ways(&f);
	g = f;
	g.tci[1] = 300; /* the inner tag does not matter */
	cr_assert_eq(check_both_ways(&g), h);
	g = f;
	g.tpid[0] = 0x9100; /* pre-standard QinQ */
	cr_assert_eq(check_both_ways(&g), h);
	g = f;
	g.ntags = 3, g.tpid[2] = 0x8100, g.tci[2] = 7; /* triple tag: still the outer */
	cr_assert_eq(check_both_ways(&g), h);
	g = f;
	g.ipver = 6;
	v6(g.src, 0xa);
	v6(g.dst, 0xb);
	check_both_ways(&g);
}

static size_t raw_frame(uint8_t *buf, uint16_t etype, size_t len)
{
	memset(buf, 0x11, len);
	buf[12] = (uint8_t)(etype >> 8);
	buf[13] = (uint8_t)etype;
	return len;
}

Test(ebpf, non_ip_and_refused_frames_return_0)
{
	uint8_t buf[256];
	struct tframe f = {.ipver = 4, .proto = IPPROTO_UDP, .sport = 1, .dport = 2};
	size_t len;

	cr_assert_eq(run(buf, raw_frame(buf, 0x0806, 60)), 0, "ARP");
	cr_assert_eq(run(buf, raw_frame(buf, 0x88cc, 60)), 0, "LLDP");
	cr_assert_eq(run(buf, raw_frame(buf, 0x0060, 60)), 0, "802.3 length field");
	/* test_run itself refuses untagged IP frames shorter than their IP header, so the cut
	 * frames are VLAN-tagged (their skb->protocol is 0x8100): IP header cut before the
	 * addresses -> 0. */
	raw_frame(buf, 0x8100, 14 + 4 + 10);
	buf[16] = 0x08, buf[17] = 0x00, buf[18] = 0x45;
	cr_assert_eq(run(buf, 14 + 4 + 10), 0, "VLAN + IPv4 cut before the addresses");
	cr_assert_eq(run(buf, 14 + 4 + 19), 0, "VLAN + IPv4 cut inside the destination");
	buf[16] = 0x86, buf[17] = 0xdd, buf[18] = 0x60;
	cr_assert_eq(run(buf, 14 + 4 + 30), 0, "VLAN + IPv6 cut inside the source");
	raw_frame(buf, 0x8100, 16);
	cr_assert_eq(run(buf, 16), 0, "VLAN tag cut");

	v4(f.src, 1, 2, 3, 4);
	v4(f.dst, 5, 6, 7, 8);
	len = netns__frame_build(&f, buf, sizeof(buf));
	buf[14] = 0x65; /* IPv4 ethertype, version 6: the decoder calls it bad_ip */
	cr_assert_eq(run(buf, len), 0, "IPv4 ethertype with version 6");

	/* More tags than the decoder accepts (DECODE_MAX_VLAN_TAGS = 4): not IP for both. */
	{
		uint8_t big[256];
		size_t off = 12;
		struct pkt_view pv;

		len = netns__frame_build(&f, buf, sizeof(buf));
		memcpy(big, buf, 12);
		for (int i = 0; i < 5; i++, off += 4) {
			big[off] = 0x81, big[off + 1] = 0x00, big[off + 2] = 0, big[off + 3] = 5;
		}
		memcpy(big + off, buf + 12, len - 12);
		cr_assert_eq(decode__frame(DLT_EN10MB, big, (uint32_t)(len + 20),
					   (uint32_t)(len + 20), 0, -1, &pv),
			     DECODE_NOT_IP);
		cr_assert_eq(run(big, len + 20), 0, "5 VLAN tags");
		/* 4 tags is still IP for both, and agrees. */
		memmove(big + 12 + 16, big + 12 + 20, len - 12);
		cr_assert_eq(decode__frame(DLT_EN10MB, big, (uint32_t)(len + 16),
					   (uint32_t)(len + 16), 0, -1, &pv),
			     DECODE_OK);
		cr_assert_eq(run(big, len + 16), flow_key__pair_hash(&pv.key), "4 VLAN tags");
	}
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

/* Random frames of every shape: whatever the decoder accepts, the program agrees with
 * pair_hash of the decoder's key; whatever it calls not-IP, the program returns 0. */
Test(ebpf, random_frames_agree_with_decoder)
{
	static const uint16_t tpids[] = {0x8100, 0x88a8, 0x9100};
	static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP};
	uint8_t buf[2048];
	unsigned ok = 0, n = 5000;

	for (unsigned i = 0; i < n; i++) {
		struct tframe f;
		struct pkt_view pv;
		enum decode_result r;
		size_t len;
		uint32_t got;

		memset(&f, 0, sizeof(f));
		f.ipver = rnd() & 1 ? 6 : 4;
		for (int b = 0; b < 16; b++) {
			f.src[b] = (uint8_t)rnd();
			f.dst[b] = (uint8_t)rnd();
		}
		if (f.ipver == 4) {
			memset(f.src + 4, 0, 12);
			memset(f.dst + 4, 0, 12);
		}
		if (rnd() % 8 == 0)
			memcpy(f.dst, f.src, 16); /* a host talking to itself */
		f.proto = protos[rnd() % 3];
		if (f.proto == IPPROTO_ICMP && f.ipver == 6)
			f.proto = IPPROTO_ICMPV6;
		f.sport = (uint16_t)rnd(), f.dport = (uint16_t)rnd();
		f.ntags = rnd() % 4;
		for (unsigned t = 0; t < f.ntags; t++) {
			f.tpid[t] = tpids[rnd() % 3];
			f.tci[t] = (uint16_t)rnd();
		}
		f.payload = (uint16_t)(rnd() % 200);
		f.seq = i;
		len = netns__frame_build(&f, buf, sizeof(buf));
		cr_assert_gt(len, 0);
		r = decode__frame(DLT_EN10MB, buf, (uint32_t)len, (uint32_t)len, 0, -1, &pv);
		got = run(buf, len);
		if (r == DECODE_OK) {
			ok++;
			cr_assert_eq(got, flow_key__pair_hash(&pv.key),
				     "frame %u (IPv%u, %u tags): program %#x, pair_hash %#x", i,
				     f.ipver, f.ntags, got, flow_key__pair_hash(&pv.key));
		} else {
			cr_assert_fail("frame %u: decoder refused a well-formed frame: %s", i,
				       decode__result_name(r));
		}
	}
	cr_assert_eq(ok, n);
	cr_log_info("ebpf: %u random frames, program == flow_key__pair_hash for all", n);
}

Test(ebpf, test_run_rejects_short_frames)
{
	uint8_t buf[14] = {0};
	uint32_t ret;
	cr_assert_eq(fanout_ebpf__test_run(prog, buf, 10, &ret), -EINVAL);
}
