/* afpacket.h - live capture: one AF_PACKET TPACKET_V3 ring per worker, joined in a
 * PACKET_FANOUT group so that the kernel spreads an interface's frames over the workers.
 *
 * Shape of use (main thread, then one worker thread per ring):
 *
 *     struct afpacket *socks[N];
 *     afpacket__offload_warning(ifname);               // once: GRO/LRO merge packets
 *     afpacket__open_group(&opts, N, socks);           // in index order, before privdrop
 *     privdrop__to_user(user);                         // rings keep working unprivileged
 *     worker i:  while (running) afpacket__poll(socks[i], 100, on_frame, ctx);
 *                afpacket__stats(socks[i], &acc)      // periodically, same thread
 *     afpacket__close(socks[i]) after the worker stopped.
 *
 * Frames are Ethernet (DLT_EN10MB) as the interface saw them, except that a received VLAN tag
 * is stripped by the kernel (or the NIC) and handed over as vlan_tci: give it to
 * decode__frame, which treats it as the outer tag. Sent frames (the host's own or forwarded
 * ones leaving by the interface) are captured too: they are the other half of the flows.
 *
 * Fanout modes (socket i = the i-th to join; open them in index order):
 *   hash  kernel's symmetric flow hash (addresses, ports), with PACKET_FANOUT_FLAG_DEFRAG so
 *         IPv4 fragments are reassembled first (a reassembled datagram is captured as one
 *         frame). Both directions of a 5-tuple share a worker; flows of one host pair may not.
 *   ebpf  src/capture/fanout.bpf.c: worker = flow_key__pair_hash % N, the choice the offline
 *         path (-r) makes: every flow of a host pair on one worker (nDPI's host caches) and
 *         live runs distribute like offline ones. Needs the loaded program (fanout_ebpf.h).
 *   cpu   the CPU that received the frame (RSS decides; not flow-symmetric in general).
 *   qm    the NIC queue that received it (same caveat).
 * The group id is per network namespace; afpacket__group_id() makes one per process. */
#ifndef SVCSENSOR_AFPACKET_H
#define SVCSENSOR_AFPACKET_H

#include <stdbool.h>
#include <stdint.h>

struct fanout_ebpf;
struct afpacket;

struct afpacket_opts {
	const char *ifname;
	/* The ring: block_count blocks of block_size bytes. block_size: a multiple of the page
	 * size (a power of two wastes nothing); a frame larger than a block is truncated (its
	 * wire length is still reported), so keep it >= 64 KiB when GRO is on. frame_size: the
	 * nominal slot (>= 80, multiple of 16, <= block_size); TPACKET_V3 packs frames of any
	 * size into a block, it only sizes the kernel's frame count. A partly filled block is
	 * handed over after block_timeout_ms (0 = the kernel's choice from the link speed). */
	unsigned block_size, block_count, frame_size, block_timeout_ms;
	const char *fanout;		/* "hash" | "cpu" | "qm" | "ebpf"; NULL or "" = no group */
	uint16_t group_id;		/* afpacket__group_id() */
	bool promisc;			/* PACKET_MR_PROMISC for the socket's lifetime */
	const char *bpf_filter;		/* tcpdump syntax or NULL; see afpacket__open about VLANs */
	const struct fanout_ebpf *ebpf; /* fanout "ebpf": the loaded steering program; index 0
					 * attaches it (others only join). Not needed after the
					 * group is open. */
};

/* Called once per frame by afpacket__poll, in ring order.
 * frame:   first byte of the Ethernet header; caplen bytes are readable until fn returns
 *          (the block goes back to the kernel after its last frame: copy what you keep).
 * wirelen: the frame's length on the wire (> caplen when the block truncated it).
 * ts_us:   kernel receive time, microseconds since the epoch.
 * vlan_tci: the tag the kernel stripped (TCI with PCP/DEI bits; id = tci & 0x0fff), or -1. */
typedef void (*afpacket_frame_fn)(void *ctx, const uint8_t *frame, uint32_t caplen,
				  uint32_t wirelen, uint64_t ts_us, int vlan_tci);

/* Open socket `index` of a capture group on o->ifname, in the order the kernel needs:
 * socket -> PACKET_VERSION (V3) -> capture filter -> PACKET_RX_RING -> mmap -> bind(ifindex)
 * -> PACKET_FANOUT (-> PACKET_FANOUT_DATA for ebpf, index 0) -> promisc membership.
 * The socket is created with protocol 0 and only bound to ETH_P_ALL on the interface, so no
 * frame of another interface ever enters the ring (a socket made with ETH_P_ALL receives
 * from every interface until bind). The filter is attached before the ring exists, so no
 * unfiltered frame is ever in it; it is compiled by libpcap for plain Ethernet and runs on
 * the frame with the received VLAN tag already stripped: "vlan" primitives do not match
 * received tagged traffic, while "tcp port 443" matches it tagged or not.
 * Promisc: a per-socket membership; the kernel drops it when the socket closes (also on a
 * crash), so the interface's previous state comes back without any restore step.
 * Errors, each one line on stderr naming the interface (or the filter) and the reason:
 *   -EINVAL        bad options (sizes, fanout name, ebpf without a program, NULL ifname),
 *                  bad filter expression (libpcap's text), or the kernel refused the group
 *                  (it exists with another mode, or a different ring type).
 *   -ENODEV        no such interface.      -ENETDOWN  interface is down.
 *   -EPROTONOSUPPORT not an Ethernet interface (tun, ppp, ...).
 *   -EPERM         not root / no CAP_NET_RAW.
 *   -ENOMEM        the ring could not be allocated (the message suggests smaller
 *                  ring_block_count / ring_block_size).
 *   -EOPNOTSUPP    fanout "ebpf" only: the kernel refused PACKET_FANOUT_EBPF or the program.
 *                  The caller should reopen the whole group with "hash" (open_group does).
 * On success *out owns the socket and ring (afpacket__close). Does not block. */
int afpacket__open(const struct afpacket_opts *o, unsigned index, struct afpacket **out);

/* Open sockets 0..n-1 of one group, in index order, into out[0..n-1]. For fanout "ebpf"
 * with o->ebpf NULL it loads the program itself (fanout_ebpf__load) and unloads it once the
 * group holds it. If loading or attaching fails it prints one warning and reopens the group
 * with "hash", setting o->fanout = "hash" so the caller can report the mode in use. Any other
 * error closes what was opened and returns the negative errno of afpacket__open. */
int afpacket__open_group(struct afpacket_opts *o, unsigned n, struct afpacket **out);

/* Hand every frame of the ring's ready blocks to fn, in order, returning each block to the
 * kernel right after its last frame. Waits up to timeout_ms (poll(2); -1 = forever, 0 = no
 * wait) for the current block when none is ready; the block timeout bounds the wait for a
 * partly filled block. Handles at most block_count blocks per call, so a busy ring still
 * returns to the caller (to expire flows, check a stop flag).
 * Returns the number of frames handled, 0 on timeout or EINTR, or a negative errno; nothing
 * is printed (the caller names the interface, once for a whole group):
 *   -ENETDOWN  the link went down (ip link set down) and the interface is still there half a
 *              second later: returned once per link down. The ring resumes by itself when the
 *              link is up again, so the caller may keep polling.
 *   -ENODEV    the interface was removed (or moved to another network namespace): the kernel
 *              unbound the socket, nothing more will come. Returned instead of -ENETDOWN
 *              (a removal starts as a link down), at every call from then on.
 *   other      the error the socket reported (SO_ERROR).
 * Only one thread may poll a ring; no allocation, no syscall but poll(2), except after a link
 * down: then the socket's binding is looked at (getsockname) at most every 250 ms. */
int afpacket__poll(struct afpacket *a, int timeout_ms, afpacket_frame_fn fn, void *ctx);

/* Ring counters. packets = frames the kernel received for this socket (after the capture
 * filter, including the dropped ones), drops = frames lost because the ring was full,
 * freezes = times the ring filled up (the kernel froze the block queue). */
struct afpacket_stats {
	uint64_t packets, drops, freezes;
};

/* Add the counters since the previous call to *acc. PACKET_STATISTICS resets on read, so
 * exactly one thread should read a ring's counters (typically the main thread's periodic
 * statistics, once per ring); it may do so while the worker polls the ring (the kernel
 * serializes them). Frames delivered = packets - drops. 0 or a negative errno (one line). */
int afpacket__stats(struct afpacket *a, struct afpacket_stats *acc);

/* The socket's fd, e.g. to poll it together with a wake-up eventfd. Owned by a. */
int afpacket__fd(const struct afpacket *a);

/* Close the socket (which leaves the group and drops its promisc membership) and unmap the
 * ring. NULL ok. */
void afpacket__close(struct afpacket *a);

/* Warn (svc_warn, one line) when the interface merges received packets before capture
 * (GRO, LRO, hardware GRO, GRO fraglist): packet counts and sizes then are not those on the
 * wire. Prints at most once per process. Returns 1 when such an offload is on, 0 when none
 * is (or the driver does not report offloads), a negative errno when the interface cannot be
 * queried (-ENODEV: no such interface; nothing printed). Call from main, before capture. */
int afpacket__offload_warning(const char *ifname);

/* A fanout group id unique to this process (getpid() & 0xffff), so two sensors on one
 * host (in one network namespace) never join each other's group. */
uint16_t afpacket__group_id(void);

#endif
