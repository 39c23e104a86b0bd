/* afpacket.c - TPACKET_V3 ring, fanout join, block walk, ring statistics.
 *
 * Ring layout (TPACKET_V3): block_count blocks of block_size bytes, each starting with a
 * tpacket_block_desc. The kernel fills the current block with variable-size frames and hands
 * it over (block_status |= TP_STATUS_USER) when it is full or its timeout expires; we walk
 * its frames (tp_next_offset), then give it back (TP_STATUS_KERNEL). Blocks are handed over
 * strictly in order, so the reader only ever looks at block `cur`. */
#include "svcsensor/afpacket.h"

#include <errno.h>
#include <limits.h>
#include <net/if.h> /* before any <linux/...> header that defines the same names */
#include <net/if_arp.h>
#include <linux/ethtool.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "svcsensor/common.h"
#include "svcsensor/fanout_ebpf.h"
#include "svcsensor/monotime.h"

/* After the socket said ENETDOWN: how long before it is told as a link down (a removed
 * interface first goes down, and is unbound from the socket a moment later), and how often
 * the binding is looked at from then on. */
#define DOWN_GRACE_MS 500
#define BOUND_CHECK_MS 250

struct afpacket {
	int fd;
	uint8_t *ring;
	size_t ring_len;
	unsigned block_size, block_count;
	unsigned cur; /* next block to read */
	int ifindex;  /* the interface bound to */
	/* The link went down (ENETDOWN) since the socket was opened: from then on the binding is
	 * watched, since the kernel reports no second error when the interface is removed. */
	bool watch;
	bool gone;		/* the interface was removed: -ENODEV from then on */
	bool down_told;		/* -ENETDOWN was returned for the last link down */
	uint64_t down_ms;	/* monotonic time of the last link down */
	uint64_t next_check_ms; /* next look at the binding */
	char ifname[IFNAMSIZ];
};

uint16_t afpacket__group_id(void)
{
	return (uint16_t)(getpid() & 0xffff);
}

int afpacket__fd(const struct afpacket *a)
{
	return a->fd;
}

/* ---------------------------------------------------------------- opening */

/* PACKET_FANOUT type (+ flags) of a mode name, or -1. */
static int fanout_type(const char *name)
{
	if (strcmp(name, "hash") == 0)
		return PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG;
	if (strcmp(name, "cpu") == 0)
		return PACKET_FANOUT_CPU;
	if (strcmp(name, "qm") == 0)
		return PACKET_FANOUT_QM;
	if (strcmp(name, "ebpf") == 0)
		return PACKET_FANOUT_EBPF;
	return -1;
}

static int check_opts(const struct afpacket_opts *o)
{
	long page = sysconf(_SC_PAGESIZE);

	if (!o->ifname || !o->ifname[0]) {
		svc_err("capture: no interface given");
		return -EINVAL;
	}
	if (strlen(o->ifname) >= IFNAMSIZ) {
		svc_err("%s: interface name longer than %d characters", o->ifname, IFNAMSIZ - 1);
		return -EINVAL;
	}
	if (page <= 0)
		page = 4096;
	if (o->block_size == 0 || o->block_size % (unsigned long)page != 0) {
		svc_err(
		    "%s: ring_block_size %u: must be a non-zero multiple of the page size (%ld)",
		    o->ifname, o->block_size, page);
		return -EINVAL;
	}
	if (o->block_count == 0) {
		svc_err("%s: ring_block_count must be at least 1", o->ifname);
		return -EINVAL;
	}
	if (o->frame_size < TPACKET_ALIGN(TPACKET3_HDRLEN) ||
	    o->frame_size % TPACKET_ALIGNMENT != 0 || o->frame_size > o->block_size) {
		svc_err("%s: ring_frame_size %u: must be a multiple of %d between %zu and "
			"ring_block_size (%u)",
			o->ifname, o->frame_size, TPACKET_ALIGNMENT,
			(size_t)TPACKET_ALIGN(TPACKET3_HDRLEN), o->block_size);
		return -EINVAL;
	}
	if ((uint64_t)o->block_size * o->block_count > SIZE_MAX / 2 ||
	    (uint64_t)(o->block_size / o->frame_size) * o->block_count > UINT_MAX) {
		svc_err("%s: ring of %u blocks of %u bytes is too large", o->ifname, o->block_count,
			o->block_size);
		return -EINVAL;
	}
	if (o->fanout && o->fanout[0] && fanout_type(o->fanout) < 0) {
		svc_err("%s: fanout '%s': expected hash, cpu, qm or ebpf", o->ifname, o->fanout);
		return -EINVAL;
	}
	return 0;
}

/* The interface exists, is up and carries Ethernet frames (loopback too: it has a
 * 14-byte Ethernet header). Asked through an unprivileged datagram socket, so these
 * errors are reported the same way with or without root. */
static int check_interface(const char *ifname, int *ifindex)
{
	struct ifreq ifr;
	int s, err = 0;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		err = -errno;
		svc_err("%s: cannot query the interface: %s", ifname, strerror(-err));
		return err;
	}
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) {
		err = -errno;
		if (err == -ENODEV)
			svc_err("%s: no such interface", ifname);
		else
			svc_err("%s: cannot query the interface: %s", ifname, strerror(-err));
		goto cleanup;
	}
	*ifindex = ifr.ifr_ifindex;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		err = -errno;
		svc_err("%s: cannot read the interface flags: %s", ifname, strerror(-err));
		goto cleanup;
	}
	if (!(ifr.ifr_flags & IFF_UP)) {
		svc_err("%s: interface is down (ip link set %s up)", ifname, ifname);
		err = -ENETDOWN;
		goto cleanup;
	}
	if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) {
		err = -errno;
		svc_err("%s: cannot read the link type: %s", ifname, strerror(-err));
		goto cleanup;
	}
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER &&
	    ifr.ifr_hwaddr.sa_family != ARPHRD_LOOPBACK) {
		svc_err(
		    "%s: link type %u is not Ethernet: only Ethernet interfaces can be captured",
		    ifname, (unsigned)ifr.ifr_hwaddr.sa_family);
		err = -EPROTONOSUPPORT;
	}
cleanup:
	close(s);
	return err;
}

/* Compile a tcpdump expression for Ethernet frames and attach it to the socket. */
static int attach_filter(int fd, const char *ifname, const char *expr)
{
	struct bpf_program prog;
	struct sock_fprog fprog;
	pcap_t *p;
	int err = 0;

	p = pcap_open_dead(DLT_EN10MB, 65535);
	if (!p) {
		svc_err("%s: capture filter '%s': out of memory", ifname, expr);
		return -ENOMEM;
	}
	if (pcap_compile(p, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) < 0) {
		svc_err("%s: capture filter '%s': %s", ifname, expr, pcap_geterr(p));
		pcap_close(p);
		return -EINVAL;
	}
	/* libpcap's struct bpf_insn is the kernel's struct sock_filter. */
	_Static_assert(sizeof(struct bpf_insn) == sizeof(struct sock_filter), "bpf_insn layout");
	fprog.len = (unsigned short)prog.bf_len;
	fprog.filter = (struct sock_filter *)prog.bf_insns;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) < 0) {
		err = -errno;
		svc_err("%s: capture filter '%s': the kernel refused it: %s", ifname, expr,
			strerror(-err));
	}
	pcap_freecode(&prog);
	pcap_close(p);
	return err;
}

static int setup_ring(struct afpacket *a, const struct afpacket_opts *o)
{
	struct tpacket_req3 req;
	int err;

	memset(&req, 0, sizeof(req));
	req.tp_block_size = o->block_size;
	req.tp_block_nr = o->block_count;
	req.tp_frame_size = o->frame_size;
	req.tp_frame_nr = (o->block_size / o->frame_size) * o->block_count;
	req.tp_retire_blk_tov = o->block_timeout_ms;
	if (setsockopt(a->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0) {
		err = -errno;
		goto fail;
	}
	a->ring_len = (size_t)o->block_size * o->block_count;
	a->ring = mmap(NULL, a->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);
	if (a->ring == MAP_FAILED) {
		a->ring = NULL;
		err = -errno;
		goto fail;
	}
	a->block_size = o->block_size;
	a->block_count = o->block_count;
	return 0;
fail:
	if (err == -ENOMEM)
		svc_err("%s: cannot allocate the capture ring (%u blocks of %u bytes = %llu MiB): "
			"out of memory; lower ring_block_count or ring_block_size",
			o->ifname, o->block_count, o->block_size,
			(unsigned long long)o->block_size * o->block_count >> 20);
	else
		svc_err(
		    "%s: cannot set up the capture ring (%u blocks of %u bytes, frames of %u): %s",
		    o->ifname, o->block_count, o->block_size, o->frame_size, strerror(-err));
	return err;
}

static int join_fanout(struct afpacket *a, const struct afpacket_opts *o, unsigned index)
{
	int type = fanout_type(o->fanout);
	bool ebpf = type == PACKET_FANOUT_EBPF;
	uint32_t arg = (uint32_t)o->group_id | (uint32_t)type << 16;
	int err;

	if (setsockopt(a->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) < 0) {
		err = -errno;
		if (ebpf) {
			svc_err("%s: cannot join fanout group %u in ebpf mode: %s", o->ifname,
				o->group_id, strerror(-err));
			return -EOPNOTSUPP;
		}
		svc_err("%s: cannot join fanout group %u (%s): %s%s", o->ifname, o->group_id,
			o->fanout, strerror(-err),
			err == -EINVAL ? " (the group exists with another mode or ring?)" : "");
		return err;
	}
	if (ebpf && index == 0) {
		int prog_fd = fanout_ebpf__prog_fd(o->ebpf);

		if (setsockopt(a->fd, SOL_PACKET, PACKET_FANOUT_DATA, &prog_fd, sizeof(prog_fd)) <
		    0) {
			svc_err("%s: cannot attach the eBPF fanout program to group %u: %s",
				o->ifname, o->group_id, strerror(errno));
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

int afpacket__open(const struct afpacket_opts *o, unsigned index, struct afpacket **out)
{
	struct afpacket *a = NULL;
	struct sockaddr_ll sll;
	int ifindex = 0, version = TPACKET_V3, err;

	*out = NULL;
	err = check_opts(o);
	if (err)
		return err;
	if (o->fanout && strcmp(o->fanout, "ebpf") == 0 && index == 0 && !o->ebpf) {
		svc_err("%s: fanout ebpf: the steering program is not loaded", o->ifname);
		return -EINVAL;
	}
	err = check_interface(o->ifname, &ifindex);
	if (err)
		return err;

	a = calloc(1, sizeof(*a));
	if (!a) {
		svc_err("%s: out of memory", o->ifname);
		return -ENOMEM;
	}
	strncpy(a->ifname, o->ifname, IFNAMSIZ - 1);
	/* Protocol 0: no frame is queued until bind() names the interface and ETH_P_ALL. */
	a->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (a->fd < 0) {
		err = -errno;
		if (err == -EPERM || err == -EACCES)
			svc_err("%s: cannot open a packet socket: %s (run as root or with "
				"CAP_NET_RAW)",
				o->ifname, strerror(-err));
		else
			svc_err("%s: cannot open a packet socket: %s", o->ifname, strerror(-err));
		goto cleanup;
	}
	if (setsockopt(a->fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0) {
		err = -errno;
		svc_err("%s: TPACKET_V3 not supported: %s", o->ifname, strerror(-err));
		goto cleanup;
	}
	if (o->bpf_filter && o->bpf_filter[0]) {
		err = attach_filter(a->fd, o->ifname, o->bpf_filter);
		if (err)
			goto cleanup;
	}
	err = setup_ring(a, o);
	if (err)
		goto cleanup;

	a->ifindex = ifindex;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = ifindex;
	if (bind(a->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		err = -errno;
		svc_err("%s: cannot bind the packet socket: %s", o->ifname, strerror(-err));
		goto cleanup;
	}
	if (o->fanout && o->fanout[0]) {
		err = join_fanout(a, o, index);
		if (err)
			goto cleanup;
	}
	if (o->promisc) {
		struct packet_mreq mr;

		memset(&mr, 0, sizeof(mr));
		mr.mr_ifindex = ifindex;
		mr.mr_type = PACKET_MR_PROMISC;
		if (setsockopt(a->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
			err = -errno;
			svc_err("%s: cannot enable promiscuous mode: %s", o->ifname,
				strerror(-err));
			goto cleanup;
		}
	}
	*out = a;
	return 0;
cleanup:
	afpacket__close(a);
	return err;
}

int afpacket__open_group(struct afpacket_opts *o, unsigned n, struct afpacket **out)
{
	struct fanout_ebpf *loaded = NULL;
	unsigned i = 0;
	int err = 0;

	if (n == 0)
		return -EINVAL;
	if (o->fanout && strcmp(o->fanout, "ebpf") == 0 && !o->ebpf) {
		err = fanout_ebpf__load(&loaded);
		if (err)
			goto fallback;
		o->ebpf = loaded;
	}
	for (i = 0; i < n; i++) {
		err = afpacket__open(o, i, &out[i]);
		if (err)
			break;
	}
	if (loaded) {
		/* The group holds its own reference to the program now (or failed). */
		o->ebpf = NULL;
		fanout_ebpf__close(loaded);
	}
	if (!err)
		return 0;
	while (i > 0)
		afpacket__close(out[--i]);
	if (err != -EOPNOTSUPP || !o->fanout || strcmp(o->fanout, "ebpf") != 0)
		return err;
fallback:
	svc_warn("%s: eBPF fanout unavailable, using fanout hash (flows of a host pair may "
		 "then be split across workers)",
		 o->ifname ? o->ifname : "capture");
	o->fanout = "hash";
	for (i = 0; i < n; i++) {
		err = afpacket__open(o, i, &out[i]);
		if (err) {
			while (i > 0)
				afpacket__close(out[--i]);
			return err;
		}
	}
	return 0;
}

void afpacket__close(struct afpacket *a)
{
	if (!a)
		return;
	if (a->ring)
		munmap(a->ring, a->ring_len);
	if (a->fd >= 0)
		close(a->fd);
	free(a);
}

/* ---------------------------------------------------------------- reading */

static inline struct tpacket_block_desc *block_at(const struct afpacket *a, unsigned i)
{
	return (struct tpacket_block_desc *)(a->ring + (size_t)i * a->block_size);
}

/* The kernel publishes a block by setting TP_STATUS_USER after writing its frames: acquire
 * so that the frames are read after the status. */
static inline bool block_ready(const struct tpacket_block_desc *bd)
{
	return __atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER;
}

/* Every frame of one block, in order. The headers are the kernel's, but a bad offset must
 * not make us read outside the block: the walk stops there. */
static inline unsigned walk_block(const struct afpacket *a, struct tpacket_block_desc *bd,
				  afpacket_frame_fn fn, void *ctx)
{
	const uint8_t *base = (const uint8_t *)bd, *end = base + a->block_size;
	uint32_t n = bd->hdr.bh1.num_pkts, off = bd->hdr.bh1.offset_to_first_pkt;
	unsigned handled = 0;

	while (handled < n) {
		if (SVC_UNLIKELY(off > a->block_size - sizeof(struct tpacket3_hdr)))
			break;
		const struct tpacket3_hdr *h = (const struct tpacket3_hdr *)(base + off);
		uint32_t next = h->tp_next_offset;
		const uint8_t *frame = base + off + h->tp_mac;

		if (SVC_UNLIKELY(h->tp_mac > a->block_size - off ||
				 h->tp_snaplen > (size_t)(end - frame)))
			break;
		/* The next header and the start of its frame (~64 bytes further): both are
		 * read as soon as fn returns. */
		if (SVC_LIKELY(next != 0)) {
			__builtin_prefetch(base + off + next);
			__builtin_prefetch(base + off + next + 64);
		}
		int vlan = (h->tp_status & TP_STATUS_VLAN_VALID) ? (int)h->hv1.tp_vlan_tci : -1;
		uint64_t ts = (uint64_t)h->tp_sec * SVC_US_PER_SEC + h->tp_nsec / 1000;
		fn(ctx, frame, h->tp_snaplen, h->tp_len, ts, vlan);
		handled++;
		if (next == 0)
			break; /* the last frame of the block */
		off += next;
	}
	return handled;
}

/* POLLERR: the socket has a pending error (ENETDOWN when the interface went down). Reading
 * SO_ERROR clears it, so the next poll waits again. */
static int socket_error(const struct afpacket *a)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -errno;
	return -soerr;
}

/* Whether the socket is still bound to its interface. The kernel unbinds a packet socket
 * (its address then names interface -1) when the interface is removed or moved to another
 * network namespace; a link down leaves it bound, and it captures again once the link is up. */
static bool still_bound(const struct afpacket *a)
{
	struct sockaddr_ll sll;
	socklen_t len = sizeof(sll);

	memset(&sll, 0, sizeof(sll));
	if (getsockname(a->fd, (struct sockaddr *)&sll, &len) < 0)
		return true; /* cannot tell: keep capturing */
	return sll.sll_ifindex == a->ifindex;
}

/* After a link down: -ENODEV once the interface is gone, -ENETDOWN once per link down that
 * lasted DOWN_GRACE_MS with the interface still there, else 0. */
static int link_watch(struct afpacket *a)
{
	uint64_t now = monotime__ms();

	if (a->gone)
		return -ENODEV;
	if (now < a->next_check_ms)
		return 0;
	a->next_check_ms = now + BOUND_CHECK_MS;
	if (!still_bound(a)) {
		a->gone = true;
		return -ENODEV;
	}
	if (!a->down_told && now - a->down_ms >= DOWN_GRACE_MS) {
		a->down_told = true;
		return -ENETDOWN;
	}
	return 0;
}

int afpacket__poll(struct afpacket *a, int timeout_ms, afpacket_frame_fn fn, void *ctx)
{
	unsigned frames = 0, b;

	if (!block_ready(block_at(a, a->cur))) {
		if (SVC_UNLIKELY(a->watch)) {
			int err = link_watch(a);
			if (err)
				return err;
		}
		struct pollfd pfd = {.fd = a->fd, .events = POLLIN | POLLERR};
		int r = poll(&pfd, 1, timeout_ms);

		if (r < 0)
			return errno == EINTR ? 0 : -errno;
		if (SVC_UNLIKELY(pfd.revents & POLLERR)) {
			int err = socket_error(a);
			if (err && err != -ENETDOWN)
				return err;
			if (err) {
				/* Told later by link_watch: a removal starts the same way. */
				a->watch = true;
				a->down_told = false;
				a->down_ms = monotime__ms();
				a->next_check_ms = a->down_ms;
			}
		}
	}
	for (b = 0; b < a->block_count; b++) {
		struct tpacket_block_desc *bd = block_at(a, a->cur);

		if (!block_ready(bd))
			break;
		frames += walk_block(a, bd, fn, ctx);
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		if (++a->cur == a->block_count)
			a->cur = 0;
	}
	return (int)frames;
}

int afpacket__stats(struct afpacket *a, struct afpacket_stats *acc)
{
	struct tpacket_stats_v3 st;
	socklen_t len = sizeof(st);

	memset(&st, 0, sizeof(st));
	if (getsockopt(a->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0) {
		int err = -errno;
		svc_err("%s: cannot read the ring statistics: %s", a->ifname, strerror(-err));
		return err;
	}
	acc->packets += st.tp_packets; /* the kernel adds tp_drops into it */
	acc->drops += st.tp_drops;
	acc->freezes += st.tp_freeze_q_cnt;
	return 0;
}

/* ---------------------------------------------------------------- offloads */

static int ethtool_value(int s, const char *ifname, uint32_t cmd, uint32_t *val)
{
	struct ethtool_value ev = {.cmd = cmd};
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	ifr.ifr_data = (void *)&ev;
	if (ioctl(s, SIOCETHTOOL, &ifr) < 0)
		return -errno;
	*val = ev.data;
	return 0;
}

/* Whether the named features (netdev feature strings) are active: bit i of *on for names[i].
 * Best effort: 0 with *on = 0 when the driver does not report features. */
static int ethtool_features(int s, const char *ifname, const char *const *names, unsigned n,
			    unsigned *on)
{
	struct {
		struct ethtool_sset_info hdr;
		uint32_t len;
	} sset = {.hdr = {.cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ULL << ETH_SS_FEATURES}};
	struct ethtool_gstrings *strs = NULL;
	struct ethtool_gfeatures *feats = NULL;
	struct ifreq ifr;
	uint32_t count, blocks, i;
	unsigned k;

	*on = 0;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	ifr.ifr_data = (void *)&sset;
	if (ioctl(s, SIOCETHTOOL, &ifr) < 0 || !(sset.hdr.sset_mask & (1ULL << ETH_SS_FEATURES)))
		return 0;
	count = sset.len;
	if (count == 0 || count > 4096)
		return 0;
	blocks = (count + 31) / 32;
	strs = calloc(1, sizeof(*strs) + (size_t)count * ETH_GSTRING_LEN);
	feats = calloc(1, sizeof(*feats) + blocks * sizeof(feats->features[0]));
	if (!strs || !feats)
		goto cleanup;
	strs->cmd = ETHTOOL_GSTRINGS;
	strs->string_set = ETH_SS_FEATURES;
	strs->len = count;
	ifr.ifr_data = (void *)strs;
	if (ioctl(s, SIOCETHTOOL, &ifr) < 0)
		goto cleanup;
	feats->cmd = ETHTOOL_GFEATURES;
	feats->size = blocks;
	ifr.ifr_data = (void *)feats;
	if (ioctl(s, SIOCETHTOOL, &ifr) < 0)
		goto cleanup;
	for (i = 0; i < count && i < strs->len; i++) {
		const char *name = (const char *)strs->data + (size_t)i * ETH_GSTRING_LEN;
		for (k = 0; k < n; k++)
			if (strncmp(name, names[k], ETH_GSTRING_LEN) == 0 &&
			    (feats->features[i / 32].active & (1U << (i % 32))))
				*on |= 1U << k;
	}
cleanup:
	free(strs);
	free(feats);
	return 0;
}

int afpacket__offload_warning(const char *ifname)
{
	static atomic_bool warned;
	static const char *const extra[] = {"rx-gro-hw", "rx-gro-list"};
	char list[64] = "", cmd[64] = "";
	uint32_t val;
	unsigned on = 0;
	int s, err, any = 0;

	if (!ifname || !ifname[0] || strlen(ifname) >= IFNAMSIZ)
		return -EINVAL;
	if (if_nametoindex(ifname) == 0)
		return -ENODEV;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	err = ethtool_value(s, ifname, ETHTOOL_GGRO, &val);
	if (err == 0 && val) {
		strcat(list, "GRO");
		strcat(cmd, " gro off");
	}
	err = ethtool_value(s, ifname, ETHTOOL_GFLAGS, &val);
	if (err == 0 && (val & ETH_FLAG_LRO)) {
		strcat(list, list[0] ? ", LRO" : "LRO");
		strcat(cmd, " lro off");
	}
	ethtool_features(s, ifname, extra, SVC_ARRAY_LEN(extra), &on);
	if (on & 1) {
		strcat(list, list[0] ? ", hardware GRO" : "hardware GRO");
		strcat(cmd, " rx-gro-hw off");
	}
	if (on & 2) {
		strcat(list, list[0] ? ", GRO fraglist" : "GRO fraglist");
		strcat(cmd, " rx-gro-list off");
	}
	close(s);
	any = list[0] != '\0';
	if (any && !atomic_exchange(&warned, true))
		svc_warn("%s: %s on: the kernel merges received packets before capture, so packet "
			 "counts and sizes differ from the wire (ethtool -K %s%s)",
			 ifname, list, ifname, cmd);
	return any;
}
