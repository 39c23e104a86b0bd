/* fanout.bpf.c - PACKET_FANOUT_EBPF steering program: picks the ring (worker) of a frame.
 *
 * Returns flow_key__pair_hash() of the frame's key, built the way decode__frame() builds it
 * (IPv4 address in the first 4 of 16 bytes, outer VLAN id = first tag, stripped or in the
 * frame), so the live choice is the offline one: worker = pair_hash % workers, both directions
 * of every flow of a host pair on one worker. The kernel applies % num_sockets. Frames that
 * are not IPv4/IPv6 (or that the decoder would refuse the same way) return 0.
 *
 * Where the bytes are. bpf_skb_load_bytes_relative(BPF_HDR_START_MAC) only reads the linear
 * part of the skb, and drivers that leave headers in page fragments (napi_gro_frags with GRO
 * off) would then all land on ring 0. bpf_skb_load_bytes() reads fragments too, relative to
 * skb->data, which at the fanout hook is:
 *   received frames  after eth_type_trans(): data = the byte after the Ethernet header,
 *                    skb->protocol = its ethertype (after the outer tag when the kernel or the
 *                    NIC stripped it into skb->vlan_tci; inner tags stay in the data);
 *   sent frames      (PACKET_OUTGOING, dev_queue_xmit_nit): data = the MAC header, and
 *                    skb->protocol may not describe the frame (raw packet-socket senders, VLAN
 *                    frames), so the ethertype is read from the frame itself.
 * bpf_prog_test_run() builds its skb like the receive path, with VLAN tags left in the data.
 */
#include <linux/bpf.h>
#include <linux/if_packet.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "svcsensor/flow_hash.h"

#define ETH_HLEN_ 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define ETHERTYPE_QINQ_OLD 0x9100
/* decode.h's DECODE_MAX_VLAN_TAGS: more tags than this is "not IP" for the decoder too. */
#define MAX_VLAN_TAGS 4

static __always_inline int is_vlan(__u16 etype)
{
	return etype == ETHERTYPE_VLAN || etype == ETHERTYPE_QINQ || etype == ETHERTYPE_QINQ_OLD;
}

SEC("socket")
int fanout_steer(struct __sk_buff *skb)
{
	struct flow_key k;
	__u32 off;
	__u16 etype;
	__u8 ver;
	unsigned ntags = 0;

	__builtin_memset(&k, 0, sizeof(k));

	if (skb->pkt_type == PACKET_OUTGOING) {
		if (bpf_skb_load_bytes(skb, 12, &etype, sizeof(etype)))
			return 0;
		etype = bpf_ntohs(etype);
		off = ETH_HLEN_;
	} else {
		etype = bpf_ntohs((__u16)skb->protocol);
		off = 0;
	}

	/* The first tag, stripped into vlan_tci or in the frame, is the flow's VLAN. */
	if (skb->vlan_present) {
		k.vlan = skb->vlan_tci & 0x0fff;
		ntags = 1;
	}
#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		__u16 tag[2];

		if (!is_vlan(etype))
			break;
		if (++ntags > MAX_VLAN_TAGS)
			return 0;
		if (bpf_skb_load_bytes(skb, off, tag, sizeof(tag)))
			return 0;
		if (ntags == 1)
			k.vlan = bpf_ntohs(tag[0]) & 0x0fff;
		etype = bpf_ntohs(tag[1]);
		off += 4;
	}

	if (etype == ETHERTYPE_IPV4) {
		__u8 addrs[8];

		if (bpf_skb_load_bytes(skb, off, &ver, 1) || (ver >> 4) != 4)
			return 0;
		if (bpf_skb_load_bytes(skb, off + 12, addrs, sizeof(addrs)))
			return 0;
		__builtin_memcpy(k.src, addrs, 4);
		__builtin_memcpy(k.dst, addrs + 4, 4);
	} else if (etype == ETHERTYPE_IPV6) {
		if (bpf_skb_load_bytes(skb, off, &ver, 1) || (ver >> 4) != 6)
			return 0;
		if (bpf_skb_load_bytes(skb, off + 8, k.src, 16) ||
		    bpf_skb_load_bytes(skb, off + 24, k.dst, 16))
			return 0;
	} else {
		return 0;
	}
	return flow_key__pair_hash(&k);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
