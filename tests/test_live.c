/* test_live.c - suite "live": the capture layer on a veth pair in a private network namespace.
 *
 * Frames are written into va (crafted frames through a packet socket, or tcpreplay) and
 * captured on vb by a fanout group of two rings (the -t 2 shape), or captured on va itself
 * as outgoing frames. Nothing leaves the namespace. Every test needs root; without it (or
 * without iproute2 / tcpreplay / the pcaps) it is skipped with the reason. The svcsensor
 * end-to-end tests at the bottom run $SVCSENSOR_BIN and skip until it has live capture. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netns.h"
#include "test_util.h"
#include "svcsensor/afpacket.h"
#include "svcsensor/decode.h"
#include "svcsensor/fanout_ebpf.h"
#include "svcsensor/flow.h"
#include "svcsensor/privdrop.h"

/* ------------------------------------------------------------ fixture */

static struct netns ns;

static void ns_up(void)
{
	char why[512];

	if (netns__setup(&ns, why, sizeof(why)) != 0)
		cr_skip_test("live: %s", why);
}

static void ns_down(void)
{
	netns__teardown(&ns);
}

TestSuite(live, .init = ns_up, .fini = ns_down, .timeout = 180);

/* Criterion does not run .fini after a skip from the test body: remove the namespace first. */
#define LIVE_SKIP(...)                                                                             \
	do {                                                                                       \
		netns__teardown(&ns);                                                              \
		cr_skip_test(__VA_ARGS__);                                                         \
	} while (0)

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct afpacket_opts ring_opts(const char *ifname, const char *fanout)
{
	struct afpacket_opts o = {
	    .ifname = ifname,
	    .block_size = 1u << 16,
	    .block_count = 64,
	    .frame_size = 2048,
	    .block_timeout_ms = 5,
	    .fanout = fanout,
	    .group_id = afpacket__group_id(),
	};
	return o;
}

/* stderr into a temporary file, to check the one-line errors. */
struct errcap {
	int saved;
	FILE *tmp;
	char text[2048];
};

static void errcap_begin(struct errcap *c)
{
	fflush(stderr);
	c->tmp = tmpfile();
	cr_assert_not_null(c->tmp);
	c->saved = dup(2);
	dup2(fileno(c->tmp), 2);
}

static const char *errcap_end(struct errcap *c)
{
	size_t n;

	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	rewind(c->tmp);
	n = fread(c->text, 1, sizeof(c->text) - 1, c->tmp);
	c->text[n] = '\0';
	fclose(c->tmp);
	return c->text;
}

/* ------------------------------------------------------------ crafted traffic */

#define MAX_FRAMES 8192

/* 48 flows over 24 host pairs (two flows per pair: different protocol and ports), IPv4 and
 * IPv6, untagged, 802.1Q (with priority bits) and QinQ; `per_flow` frames each, alternating
 * direction, interleaved across flows. flow_of[i] = the flow of frame i. */
static size_t make_traffic(struct tframe *out, unsigned *flow_of, unsigned per_flow,
			   unsigned *nflows)
{
	static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP};
	enum { FLOWS = 48 };
	struct tframe flows[FLOWS];
	size_t n = 0;

	for (unsigned i = 0; i < FLOWS; i++) {
		struct tframe *f = &flows[i];
		unsigned pair = i / 2;

		memset(f, 0, sizeof(*f));
		f->ipver = pair % 3 == 2 ? 6 : 4;
		f->proto = protos[i % 3];
		if (f->proto == IPPROTO_ICMP && f->ipver == 6)
			f->proto = IPPROTO_ICMPV6;
		if (f->proto == IPPROTO_TCP || f->proto == IPPROTO_UDP) {
			f->sport = (uint16_t)(40000 + i);
			f->dport = f->proto == IPPROTO_TCP ? 443 : 53;
		}
		if (f->ipver == 4) {
			f->src[0] = 10, f->src[1] = 77, f->src[2] = 0,
			f->src[3] = (uint8_t)(1 + pair);
			f->dst[0] = 10, f->dst[1] = 77, f->dst[2] = 1,
			f->dst[3] = (uint8_t)(1 + pair);
		} else {
			static const uint8_t p6[] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x77};
			memcpy(f->src, p6, 6);
			memcpy(f->dst, p6, 6);
			f->src[15] = (uint8_t)(1 + pair);
			f->dst[14] = 1;
			f->dst[15] = (uint8_t)(1 + pair);
		}
		switch (pair % 4) {
		case 1:
			f->ntags = 1, f->tpid[0] = 0x8100,
			f->tci[0] = (uint16_t)(0xa000 | (10 + pair));
			break;
		case 2:
			f->ntags = 2, f->tpid[0] = 0x88a8, f->tci[0] = (uint16_t)(100 + pair);
			f->tpid[1] = 0x8100, f->tci[1] = 7;
			break;
		default:
			break;
		}
		f->payload = (uint16_t)(20 + i);
	}
	for (unsigned k = 0; k < per_flow; k++)
		for (unsigned i = 0; i < FLOWS && n < MAX_FRAMES; i++) {
			if (k % 2)
				netns__frame_reverse(&flows[i], &out[n]);
			else
				out[n] = flows[i];
			out[n].seq = (uint32_t)n;
			if (flow_of)
				flow_of[n] = i;
			n++;
		}
	*nflows = FLOWS;
	return n;
}

/* What the rings saw. */
struct rx {
	const struct tframe *sent;
	size_t nsent;
	bool tags_stripped; /* received path: the outer tag comes as vlan_tci */
	unsigned cur;	    /* socket being polled */
	uint64_t frames[4]; /* every frame, per socket (noise included) */
	int8_t sock_of[MAX_FRAMES];
	uint16_t times[MAX_FRAMES];
	unsigned bad_vlan, bad_key, bad_ts;
	char first_problem[256];
	uint64_t t0_us;
};

static void rx_init(struct rx *r, const struct tframe *sent, size_t n, bool stripped)
{
	struct timespec ts;

	memset(r, 0, sizeof(*r));
	r->sent = sent;
	r->nsent = n;
	r->tags_stripped = stripped;
	memset(r->sock_of, -1, sizeof(r->sock_of));
	clock_gettime(CLOCK_REALTIME, &ts);
	r->t0_us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void on_frame(void *ctx, const uint8_t *frame, uint32_t caplen, uint32_t wirelen,
		     uint64_t ts_us, int vlan_tci)
{
	struct rx *r = ctx;
	int64_t seq = netns__frame_seq(frame, caplen);
	const struct tframe *f;
	struct flow_key want;
	struct pkt_view pv;
	int want_tci;

	r->frames[r->cur]++;
	if (seq < 0 || (size_t)seq >= r->nsent)
		return; /* not ours */
	f = &r->sent[seq];
	r->times[seq]++;
	r->sock_of[seq] = (int8_t)r->cur;
	want_tci = f->ntags && r->tags_stripped ? f->tci[0] : -1;
	if (vlan_tci != want_tci && !r->bad_vlan++)
		snprintf(r->first_problem, sizeof(r->first_problem),
			 "frame %lld: vlan_tci %d, expected %d", (long long)seq, vlan_tci,
			 want_tci);
	netns__frame_key(f, &want);
	if ((decode__frame(DLT_EN10MB, frame, caplen, wirelen, ts_us, vlan_tci, &pv) != DECODE_OK ||
	     memcmp(&pv.key, &want, sizeof(want)) != 0) &&
	    !r->bad_key++)
		snprintf(r->first_problem, sizeof(r->first_problem),
			 "frame %lld: decoded key differs from the sent one", (long long)seq);
	if ((ts_us + 2000000 < r->t0_us || ts_us > r->t0_us + 600000000) && !r->bad_ts++)
		snprintf(r->first_problem, sizeof(r->first_problem), "frame %lld: timestamp %llu",
			 (long long)seq, (unsigned long long)ts_us);
}

/* Poll every ring until nothing arrived for quiet_ms. */
static void drain(struct afpacket **socks, unsigned n, struct rx *r, unsigned quiet_ms)
{
	uint64_t last = now_ms();

	while (now_ms() - last < quiet_ms) {
		for (unsigned i = 0; i < n; i++) {
			r->cur = i;
			int got = afpacket__poll(socks[i], 2, on_frame, r);
			cr_assert_geq(got, 0, "afpacket__poll: %s", strerror(-got));
			if (got > 0)
				last = now_ms();
		}
	}
}

/* Send every frame into ifname, draining the rings every 32 frames. */
static void send_frames(const char *ifname, const struct tframe *frames, size_t n,
			struct afpacket **socks, unsigned nsocks, struct rx *r)
{
	uint8_t buf[2048];
	int fd = netns__tx_open(ifname);

	cr_assert_geq(fd, 0, "tx socket on %s: %s", ifname, strerror(-fd));
	for (size_t i = 0; i < n; i++) {
		size_t len = netns__frame_build(&frames[i], buf, sizeof(buf));
		cr_assert_gt(len, 0);
		int err = netns__tx_send(fd, buf, len);
		cr_assert_eq(err, 0, "send frame %zu: %s", i, strerror(-err));
		if (socks && i % 32 == 31)
			for (unsigned s = 0; s < nsocks; s++) {
				r->cur = s;
				cr_assert_geq(afpacket__poll(socks[s], 0, on_frame, r), 0);
			}
	}
	close(fd);
}

static void open_group_or_fail(struct afpacket_opts *o, unsigned n, struct afpacket **socks)
{
	int err = afpacket__open_group(o, n, socks);
	cr_assert_eq(err, 0, "afpacket__open_group(%s, %s): %s", o->ifname, o->fanout,
		     strerror(-err));
}

/* Exactly once, ring statistics agree, tags and keys as sent; returns frames per socket. */
static void check_exactly_once(struct afpacket **socks, unsigned n, struct rx *r)
{
	struct afpacket_stats st = {0};
	uint64_t seen = 0;

	for (size_t i = 0; i < r->nsent; i++)
		cr_assert_eq(r->times[i], 1, "frame %zu received %u times", i, r->times[i]);
	cr_assert_eq(r->bad_vlan + r->bad_key + r->bad_ts, 0, "%s", r->first_problem);
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(afpacket__stats(socks[i], &st), 0);
		seen += r->frames[i];
	}
	cr_assert_eq(st.drops, 0, "drops %llu", (unsigned long long)st.drops);
	cr_assert_eq(st.packets, seen, "ring statistics say %llu packets, we got %llu",
		     (unsigned long long)st.packets, (unsigned long long)seen);
	cr_assert_geq(seen, r->nsent);
}

/* ------------------------------------------------------------ fanout behaviour */

static struct tframe traffic[MAX_FRAMES];
static unsigned flow_of[MAX_FRAMES];
static struct rx rxs;

Test(live, hash_fanout_every_frame_once_flows_not_split)
{
	struct afpacket_opts o = ring_opts("vb", "hash");
	struct afpacket *socks[2];
	unsigned nflows, per_sock[2] = {0};
	size_t n = make_traffic(traffic, flow_of, 10, &nflows);
	int flow_sock[64];

	open_group_or_fail(&o, 2, socks);
	rx_init(&rxs, traffic, n, true);
	send_frames("va", traffic, n, socks, 2, &rxs);
	drain(socks, 2, &rxs, 100);
	check_exactly_once(socks, 2, &rxs);

	memset(flow_sock, -1, sizeof(flow_sock));
	for (size_t i = 0; i < n; i++) {
		int s = rxs.sock_of[i];
		if (flow_sock[flow_of[i]] < 0)
			flow_sock[flow_of[i]] = s;
		cr_assert_eq(s, flow_sock[flow_of[i]], "flow %u split across rings (frame %zu)",
			     flow_of[i], i);
		per_sock[s]++;
	}
	cr_assert(per_sock[0] && per_sock[1], "one ring got everything (%u / %u)", per_sock[0],
		  per_sock[1]);
	cr_log_info("live hash: %zu frames of %u flows sent, received %u + %u, 0 drops", n, nflows,
		    per_sock[0], per_sock[1]);
	afpacket__close(socks[0]);
	afpacket__close(socks[1]);
}

/* The ring of every frame is flow_key__pair_hash % 2, for the decoded key of what the ring
 * saw as well as for the key that was sent. */
static void check_pair_hash_choice(const struct rx *r, unsigned per_sock[2])
{
	for (size_t i = 0; i < r->nsent; i++) {
		struct flow_key k;
		netns__frame_key(&r->sent[i], &k);
		unsigned want = flow_key__pair_hash(&k) % 2;
		cr_assert_eq(r->sock_of[i], (int)want,
			     "frame %zu (IPv%u, %u tags) on ring %d, pair_hash %% 2 = %u", i,
			     r->sent[i].ipver, r->sent[i].ntags, r->sock_of[i], want);
		per_sock[want]++;
	}
}

Test(live, ebpf_fanout_follows_pair_hash_received)
{
	struct afpacket_opts o = ring_opts("vb", "ebpf");
	struct afpacket *socks[2];
	unsigned nflows, per_sock[2] = {0};
	size_t n = make_traffic(traffic, flow_of, 10, &nflows);

	open_group_or_fail(&o, 2, socks);
	cr_assert_str_eq(o.fanout, "ebpf", "fell back to %s", o.fanout);
	rx_init(&rxs, traffic, n, true);
	send_frames("va", traffic, n, socks, 2, &rxs);
	drain(socks, 2, &rxs, 100);
	check_exactly_once(socks, 2, &rxs);
	check_pair_hash_choice(&rxs, per_sock);
	cr_assert(per_sock[0] && per_sock[1]);
	cr_log_info("live ebpf (receive side): %zu frames, ring 0 %u, ring 1 %u, all = "
		    "pair_hash %% 2",
		    n, per_sock[0], per_sock[1]);
	afpacket__close(socks[0]);
	afpacket__close(socks[1]);
}

/* Frames leaving by the interface (PACKET_OUTGOING) reach the program with skb->data at the
 * MAC header and VLAN tags in the frame: the same choice must come out. */
Test(live, ebpf_fanout_follows_pair_hash_sent)
{
	struct afpacket_opts o = ring_opts("va", "ebpf");
	struct afpacket *socks[2];
	unsigned nflows, per_sock[2] = {0};
	size_t n = make_traffic(traffic, flow_of, 4, &nflows);

	open_group_or_fail(&o, 2, socks);
	rx_init(&rxs, traffic, n, false);
	send_frames("va", traffic, n, socks, 2, &rxs);
	drain(socks, 2, &rxs, 100);
	check_exactly_once(socks, 2, &rxs);
	check_pair_hash_choice(&rxs, per_sock);
	cr_log_info("live ebpf (sending side): %zu frames, ring 0 %u, ring 1 %u", n, per_sock[0],
		    per_sock[1]);
	afpacket__close(socks[0]);
	afpacket__close(socks[1]);
}

Test(live, cpu_and_qm_fanout_every_frame_once)
{
	const char *modes[] = {"cpu", "qm"};

	for (unsigned m = 0; m < 2; m++) {
		struct afpacket_opts o = ring_opts("vb", modes[m]);
		struct afpacket *socks[2];
		unsigned nflows;
		size_t n = make_traffic(traffic, flow_of, 4, &nflows);

		o.group_id = (uint16_t)(afpacket__group_id() ^ (0x100 << m)); /* a fresh group */
		open_group_or_fail(&o, 2, socks);
		rx_init(&rxs, traffic, n, true);
		send_frames("va", traffic, n, socks, 2, &rxs);
		drain(socks, 2, &rxs, 100);
		check_exactly_once(socks, 2, &rxs);
		afpacket__close(socks[0]);
		afpacket__close(socks[1]);
	}
}

Test(live, single_socket_without_fanout)
{
	struct afpacket_opts o = ring_opts("vb", NULL);
	struct afpacket *a;
	unsigned nflows;
	size_t n = make_traffic(traffic, flow_of, 2, &nflows);

	cr_assert_eq(afpacket__open(&o, 0, &a), 0);
	rx_init(&rxs, traffic, n, true);
	send_frames("va", traffic, n, &a, 1, &rxs);
	drain(&a, 1, &rxs, 100);
	check_exactly_once(&a, 1, &rxs);
	afpacket__close(a);
}

Test(live, capture_filter_applies_to_untagged_view)
{
	struct afpacket_opts o = ring_opts("vb", "hash");
	struct afpacket *socks[2];
	struct afpacket_stats st = {0};
	unsigned nflows, want = 0, got = 0;
	size_t n = make_traffic(traffic, flow_of, 4, &nflows);

	o.bpf_filter = "udp";
	open_group_or_fail(&o, 2, socks);
	rx_init(&rxs, traffic, n, true);
	send_frames("va", traffic, n, socks, 2, &rxs);
	drain(socks, 2, &rxs, 100);
	/* The filter sees the frame after the kernel stripped the outer tag: untagged and
	 * single-tagged UDP match "udp"; QinQ frames still carry their inner tag and do not. */
	for (size_t i = 0; i < n; i++) {
		bool match = traffic[i].proto == IPPROTO_UDP && traffic[i].ntags <= 1;
		want += match;
		got += rxs.times[i];
		cr_assert_eq(rxs.times[i], match ? 1 : 0, "frame %zu (proto %u, %u tags)", i,
			     traffic[i].proto, traffic[i].ntags);
	}
	cr_assert_eq(afpacket__stats(socks[0], &st), 0);
	cr_assert_eq(afpacket__stats(socks[1], &st), 0);
	cr_assert_eq(st.packets, rxs.frames[0] + rxs.frames[1],
		     "filtered-out frames must not count");
	cr_assert_gt(want, 0);
	cr_assert_eq(got, want);
	afpacket__close(socks[0]);
	afpacket__close(socks[1]);
}

Test(live, poll_times_out_with_0)
{
	struct afpacket_opts o = ring_opts("vb", "hash");
	struct afpacket *a;
	uint64_t t;

	cr_assert_eq(afpacket__open(&o, 0, &a), 0);
	rx_init(&rxs, traffic, 0, true);
	t = now_ms();
	cr_assert_eq(afpacket__poll(a, 50, on_frame, &rxs), 0);
	cr_assert_geq(now_ms() - t, 40);
	afpacket__close(a);
}

/* ------------------------------------------------------------ replay: rates and drops */

/* Run tcpreplay --topspeed of pcap into ifname; the number of frames it sent. */
static unsigned long replay(const char *pcap, const char *ifname)
{
	char exe[256], out[64], line[256];
	unsigned long ok = 0, failed = 0;
	int status = 0, err;
	pid_t pid;
	FILE *f;

	if (!netns__which("tcpreplay", exe, sizeof(exe)))
		LIVE_SKIP("live: tcpreplay is not installed (apt-get install tcpreplay)");
	snprintf(out, sizeof(out), "/tmp/svcs-%d-tcpreplay.out", (int)getpid());
	const char *argv[] = {"tcpreplay", "-i", ifname, "--topspeed", pcap, NULL};
	err = netns__spawn(&ns, argv, out, NULL, &pid);
	cr_assert_eq(err, 0, "tcpreplay: %s", strerror(-err));
	err = netns__wait(&ns, pid, 120000, &status);
	cr_assert_eq(err, 0, "tcpreplay: %s", strerror(-err));
	f = fopen(out, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, " Successful packets: %lu", &ok);
		sscanf(line, " Failed packets: %lu", &failed);
		if (strstr(line, "Actual:") || strstr(line, "Rated:"))
			cr_log_info("tcpreplay: %s", line);
	}
	fclose(f);
	unlink(out);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "tcpreplay failed");
	if (failed)
		cr_log_warn("tcpreplay: %lu frames failed to send", failed);
	return ok;
}

Test(live, tiny_ring_counts_drops)
{
	enum { N = 30000 };
	struct tframe *frames = calloc(N, sizeof(*frames));
	struct afpacket_opts o = ring_opts("vb", "hash");
	struct afpacket *socks[2];
	struct afpacket_stats st = {0};
	char pcap[64];
	unsigned long sent;
	uint64_t got;

	cr_assert_not_null(frames);
	for (unsigned i = 0; i < N; i++) {
		struct tframe *f = &frames[i];
		f->ipver = 4, f->proto = IPPROTO_UDP, f->sport = (uint16_t)(1024 + i % 64);
		f->dport = 53, f->payload = 32, f->seq = i;
		f->src[0] = 10, f->src[1] = 78, f->src[3] = (uint8_t)(1 + i % 7);
		f->dst[0] = 10, f->dst[1] = 79, f->dst[3] = 1;
	}
	snprintf(pcap, sizeof(pcap), "/tmp/svcs-%d-burst.pcap", (int)getpid());
	cr_assert_eq(netns__pcap_write(pcap, frames, N), 0);
	free(frames);

	/* Two blocks of one page each: a few dozen small frames fit, then the ring is full. */
	o.block_size = 4096, o.block_count = 2, o.frame_size = 2048, o.block_timeout_ms = 1000;
	open_group_or_fail(&o, 2, socks);
	sent = replay(pcap, "va");
	unlink(pcap);
	rx_init(&rxs, traffic, 0, true);
	drain(socks, 2, &rxs, 1200); /* > block timeout: the partly filled blocks come too */
	cr_assert_eq(afpacket__stats(socks[0], &st), 0);
	cr_assert_eq(afpacket__stats(socks[1], &st), 0);
	got = rxs.frames[0] + rxs.frames[1];
	cr_log_info("live tiny ring: sent %lu, packets %llu, delivered %llu, drops %llu, "
		    "freezes %llu",
		    sent, (unsigned long long)st.packets, (unsigned long long)got,
		    (unsigned long long)st.drops, (unsigned long long)st.freezes);
	cr_assert_eq(st.packets, sent, "every frame sent is counted by the kernel");
	cr_assert_gt(st.drops, 0, "a 2-block ring under a burst must drop");
	cr_assert_eq(got, st.packets - st.drops, "delivered = packets - drops");
	/* Counters reset on read: a second read adds nothing. */
	struct afpacket_stats again = st;
	cr_assert_eq(afpacket__stats(socks[0], &again), 0);
	cr_assert_eq(again.packets, st.packets);
	afpacket__close(socks[0]);
	afpacket__close(socks[1]);
}

/* Two worker threads polling their ring while tcpreplay plays a real capture. */
struct worker {
	struct afpacket *a;
	unsigned index;
	atomic_bool *stop;
	uint64_t frames, ip_frames, wrong_ring;
	uint64_t *flows; /* flow_key__hash of every IP frame */
	size_t nflows, cap;
	int err;
};

static void worker_frame(void *ctx, const uint8_t *frame, uint32_t caplen, uint32_t wirelen,
			 uint64_t ts_us, int vlan_tci)
{
	struct worker *w = ctx;
	struct pkt_view pv;

	w->frames++;
	if (decode__frame(DLT_EN10MB, frame, caplen, wirelen, ts_us, vlan_tci, &pv) != DECODE_OK)
		return;
	w->ip_frames++;
	if (flow_key__pair_hash(&pv.key) % 2 != w->index)
		w->wrong_ring++;
	if (w->nflows == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4096;
		uint64_t *p = realloc(w->flows, cap * sizeof(*p));
		if (!p) {
			w->err = -ENOMEM;
			return;
		}
		w->flows = p, w->cap = cap;
	}
	w->flows[w->nflows++] = flow_key__hash(&pv.key);
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint64_t idle_since = 0;

	for (;;) {
		int r = afpacket__poll(w->a, 10, worker_frame, w);
		if (r < 0) {
			w->err = r;
			break;
		}
		if (r > 0)
			idle_since = 0;
		else if (atomic_load(w->stop)) {
			if (!idle_since)
				idle_since = now_ms();
			else if (now_ms() - idle_since > 100)
				break;
		}
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static size_t uniq(uint64_t *v, size_t n)
{
	size_t m = 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || v[m - 1] != v[i])
			v[m++] = v[i];
	return m;
}

static void baseline_replay(const char *mode)
{
	const char *dir = getenv("SVCSENSOR_PCAPS") ? getenv("SVCSENSOR_PCAPS") : "pcaps";
	char path[512], errbuf[PCAP_ERRBUF_SIZE];
	struct afpacket_opts o = ring_opts("vb", mode);
	struct afpacket *socks[2];
	struct afpacket_stats st = {0};
	struct worker w[2];
	pthread_t th[2];
	atomic_bool stop = false;
	unsigned long sent, in_file = 0;
	size_t split = 0;
	pcap_t *p;

	snprintf(path, sizeof(path), "%s/baseline.pcap", dir);
	if (access(path, R_OK) != 0)
		LIVE_SKIP("live: %s not present (made by the pcap generator, `make pcaps`); "
			  "the replay of a real capture is skipped",
			  path);
	p = pcap_open_offline(path, errbuf);
	cr_assert_not_null(p, "%s: %s", path, errbuf);
	if (pcap_datalink(p) != DLT_EN10MB) {
		pcap_close(p);
		LIVE_SKIP("live: %s is not an Ethernet capture: cannot be replayed into a veth",
			  path);
	}
	{
		struct pcap_pkthdr *h;
		const u_char *d;
		while (pcap_next_ex(p, &h, &d) == 1)
			in_file++;
	}
	pcap_close(p);

	o.block_size = 1u << 20, o.block_count = 32; /* 32 MiB per ring: no drops expected */
	open_group_or_fail(&o, 2, socks);
	cr_assert_str_eq(o.fanout, mode);
	for (unsigned i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].a = socks[i], w[i].index = i, w[i].stop = &stop;
		cr_assert_eq(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	sent = replay(path, "va");
	atomic_store(&stop, true);
	for (unsigned i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(w[i].err, 0, "worker %u: %s", i, strerror(-w[i].err));
		cr_assert_eq(afpacket__stats(socks[i], &st), 0);
		w[i].nflows = uniq(w[i].flows, w[i].nflows);
	}
	/* A flow whose key hash shows up in both rings was split. */
	for (size_t i = 0, j = 0; i < w[0].nflows && j < w[1].nflows;) {
		if (w[0].flows[i] == w[1].flows[j])
			split++, i++, j++;
		else if (w[0].flows[i] < w[1].flows[j])
			i++;
		else
			j++;
	}
	cr_log_info("live replay %s (%s): %lu frames in the file, %lu sent, packets %llu, drops "
		    "%llu, ring 0 %llu frames / %zu flows, ring 1 %llu / %zu, split flows %zu",
		    path, mode, in_file, sent, (unsigned long long)st.packets,
		    (unsigned long long)st.drops, (unsigned long long)w[0].frames, w[0].nflows,
		    (unsigned long long)w[1].frames, w[1].nflows, split);
	cr_assert_eq(sent, in_file, "tcpreplay did not send every frame of the file");
	cr_assert_eq(st.packets, sent, "kernel counted %llu of %lu frames",
		     (unsigned long long)st.packets, sent);
	cr_assert_eq(st.drops, 0);
	cr_assert_eq(w[0].frames + w[1].frames, st.packets - st.drops);
	cr_assert_eq(split, 0, "%zu flows were seen on both rings", split);
	if (strcmp(mode, "ebpf") == 0)
		cr_assert_eq(w[0].wrong_ring + w[1].wrong_ring, 0,
			     "%llu frames not on ring pair_hash %% 2",
			     (unsigned long long)(w[0].wrong_ring + w[1].wrong_ring));
	for (unsigned i = 0; i < 2; i++) {
		free(w[i].flows);
		afpacket__close(socks[i]);
	}
}

Test(live, baseline_replay_hash)
{
	baseline_replay("hash");
}

Test(live, baseline_replay_ebpf)
{
	baseline_replay("ebpf");
}

/* ------------------------------------------------------------ errors and settings */

Test(live, unknown_interface_one_line_enodev)
{
	struct afpacket_opts o = ring_opts("nosuch0", "hash");
	struct afpacket *a = (void *)1;
	struct errcap c;
	const char *msg;
	int err;

	errcap_begin(&c);
	err = afpacket__open(&o, 0, &a);
	msg = errcap_end(&c);
	cr_assert_eq(err, -ENODEV);
	cr_assert_null(a);
	cr_assert_str_eq(msg, "svcsensor: nosuch0: no such interface\n");
}

Test(live, bad_filter_one_line_einval)
{
	struct afpacket_opts o = ring_opts("vb", "hash");
	struct afpacket *a;
	struct errcap c;
	const char *msg;
	int err;

	o.bpf_filter = "tcp prot 80";
	errcap_begin(&c);
	err = afpacket__open(&o, 0, &a);
	msg = errcap_end(&c);
	cr_assert_eq(err, -EINVAL);
	cr_assert_eq(count_lines(msg), 1, "%s", msg);
	cr_assert(strncmp(msg, "svcsensor: vb: capture filter 'tcp prot 80': ", 45) == 0, "%s",
		  msg);
	cr_assert(strstr(msg, "syntax error") != NULL, "libpcap's reason expected: %s", msg);
}

Test(live, interface_down_one_line_enetdown)
{
	const char *down[] = {"ip", "link", "set", "vb", "down", NULL};
	struct afpacket_opts o = ring_opts("vb", "hash");
	struct afpacket *a;
	struct errcap c;
	char why[256];
	const char *msg;
	int err;

	cr_assert_eq(netns__run(down, why, sizeof(why)), 0, "%s", why);
	errcap_begin(&c);
	err = afpacket__open(&o, 0, &a);
	msg = errcap_end(&c);
	cr_assert_eq(err, -ENETDOWN);
	cr_assert_str_eq(msg, "svcsensor: vb: interface is down (ip link set vb up)\n");
}

/* Poll a ring (frames counted into rxs) until it returns an error or ms pass: the error, or
 * 0. *told: what it printed meanwhile. */
static int poll_until_error(struct afpacket *a, unsigned ms, const char **told)
{
	static struct errcap c;
	uint64_t t0 = now_ms();
	int r = 0;

	errcap_begin(&c);
	while (r >= 0 && now_ms() - t0 < ms)
		r = afpacket__poll(a, 50, on_frame, &rxs);
	*told = errcap_end(&c);
	return r < 0 ? r : 0;
}

/* The interface goes down under a running ring: poll says so once (-ENETDOWN, half a second
 * later: a removal starts the same way), prints nothing (ring.c names the interface once for
 * the group), and the ring captures again when it is back up, without reopening. */
Test(live, interface_down_while_capturing_then_resumes)
{
	const char *down[] = {"ip", "link", "set", "vb", "down", NULL};
	const char *up[] = {"ip", "link", "set", "vb", "up", NULL};
	struct afpacket_opts o = ring_opts("vb", "hash");
	struct afpacket *a;
	unsigned nflows;
	char why[256];
	const char *msg;
	size_t n = make_traffic(traffic, flow_of, 2, &nflows);
	int r;

	cr_assert_eq(afpacket__open(&o, 0, &a), 0);
	rx_init(&rxs, traffic, n, true);
	cr_assert_eq(netns__run(down, why, sizeof(why)), 0, "%s", why);
	r = poll_until_error(a, 5000, &msg);
	cr_assert_eq(r, -ENETDOWN, "poll: %d", r);
	cr_assert_str_eq(msg, "", "afpacket__poll printed: %s", msg);
	cr_assert_eq(poll_until_error(a, 1000, &msg), 0, "the link down is reported once");
	cr_assert_eq(netns__run(up, why, sizeof(why)), 0, "%s", why);
	send_frames("va", traffic, n, &a, 1, &rxs);
	drain(&a, 1, &rxs, 100);
	check_exactly_once(&a, 1, &rxs);
	afpacket__close(a);
}

/* The interface is removed under a running ring: the kernel reports only a link down
 * (ENETDOWN) and unbinds the socket; poll says -ENODEV (no -ENETDOWN before it), and keeps
 * saying it. */
Test(live, interface_removed_while_capturing_enodev)
{
	const char *del[] = {"ip", "link", "del", "vb", NULL};
	struct afpacket_opts o = ring_opts("vb", "hash");
	struct afpacket *a;
	char why[256];
	const char *msg;

	cr_assert_eq(afpacket__open(&o, 0, &a), 0);
	rx_init(&rxs, traffic, 0, true);
	cr_assert_eq(poll_until_error(a, 200, &msg), 0);
	cr_assert_eq(netns__run(del, why, sizeof(why)), 0, "%s", why);
	int r = poll_until_error(a, 5000, &msg);
	cr_assert_eq(r, -ENODEV, "poll after ip link del: %d (%s)", r, strerror(-r));
	cr_assert_str_eq(msg, "", "afpacket__poll printed: %s", msg);
	cr_assert_eq(afpacket__poll(a, 10, on_frame, &rxs), -ENODEV);
	afpacket__close(a);
}

/* Removed while its link was down: the kernel reports nothing more (the socket's error was
 * the link down), the ring still finds out. */
Test(live, interface_removed_while_down_enodev)
{
	const char *down[] = {"ip", "link", "set", "vb", "down", NULL};
	const char *del[] = {"ip", "link", "del", "vb", NULL};
	struct afpacket_opts o = ring_opts("vb", "hash");
	struct afpacket *a;
	char why[256];
	const char *msg;

	cr_assert_eq(afpacket__open(&o, 0, &a), 0);
	rx_init(&rxs, traffic, 0, true);
	cr_assert_eq(netns__run(down, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(poll_until_error(a, 5000, &msg), -ENETDOWN);
	cr_assert_eq(netns__run(del, why, sizeof(why)), 0, "%s", why);
	int r = poll_until_error(a, 5000, &msg);
	cr_assert_eq(r, -ENODEV, "poll after ip link del: %d (%s)", r, strerror(-r));
	afpacket__close(a);
}

Test(live, not_ethernet_refused)
{
	const char *add[] = {"ip", "tuntap", "add", "dev", "svtun0", "mode", "tun", NULL};
	const char *up[] = {"ip", "link", "set", "svtun0", "up", NULL};
	struct afpacket_opts o = ring_opts("svtun0", "hash");
	struct afpacket *a;
	struct errcap c;
	char why[256];
	const char *msg;
	int err;

	if (netns__run(add, why, sizeof(why)) != 0 || netns__run(up, why, sizeof(why)) != 0)
		LIVE_SKIP("live: cannot make a tun interface to test with: %s", why);
	errcap_begin(&c);
	err = afpacket__open(&o, 0, &a);
	msg = errcap_end(&c);
	cr_assert_eq(err, -EPROTONOSUPPORT);
	cr_assert_eq(count_lines(msg), 1, "%s", msg);
	cr_assert(strstr(msg, "svtun0: link type") != NULL, "%s", msg);
}

static void expect_einval(const struct afpacket_opts *o, unsigned index, const char *says)
{
	struct afpacket *a;
	struct errcap c;
	const char *msg;
	int err;

	errcap_begin(&c);
	err = afpacket__open(o, index, &a);
	msg = errcap_end(&c);
	cr_assert_eq(err, -EINVAL, "%s: %d", says, err);
	cr_assert_eq(count_lines(msg), 1, "%s", msg);
	cr_assert(strstr(msg, says) != NULL, "expected '%s' in: %s", says, msg);
}

Test(live, bad_ring_and_fanout_settings)
{
	struct afpacket_opts o;

	o = ring_opts("vb", "hash"), o.block_size = 1000;
	expect_einval(&o, 0, "vb: ring_block_size 1000: must be a non-zero multiple");
	o = ring_opts("vb", "hash"), o.block_count = 0;
	expect_einval(&o, 0, "vb: ring_block_count must be at least 1");
	o = ring_opts("vb", "hash"), o.frame_size = 40;
	expect_einval(&o, 0, "vb: ring_frame_size 40");
	o = ring_opts("vb", "hash"), o.frame_size = 1u << 17;
	expect_einval(&o, 0, "ring_frame_size 131072");
	o = ring_opts("vb", "roundrobin");
	expect_einval(&o, 0, "vb: fanout 'roundrobin': expected hash, cpu, qm or ebpf");
	o = ring_opts("vb", "ebpf"); /* index 0 of an ebpf group needs the program */
	expect_einval(&o, 0, "vb: fanout ebpf: the steering program is not loaded");
	o = ring_opts("a-very-long-interface-name", "hash");
	expect_einval(&o, 0, "interface name longer than 15 characters");
}

Test(live, group_join_in_another_mode_is_einval)
{
	struct afpacket_opts o = ring_opts("vb", "hash");
	struct afpacket *a, *b;
	struct errcap c;
	const char *msg;
	int err;

	cr_assert_eq(afpacket__open(&o, 0, &a), 0);
	o.fanout = "cpu";
	errcap_begin(&c);
	err = afpacket__open(&o, 1, &b);
	msg = errcap_end(&c);
	cr_assert_eq(err, -EINVAL);
	cr_assert(strstr(msg, "cannot join fanout group") != NULL, "%s", msg);
	afpacket__close(a);
}

/* When the ebpf join is refused, open_group reopens the whole group with hash and says so. */
Test(live, ebpf_refused_falls_back_to_hash)
{
	struct afpacket_opts o = ring_opts("vb", "hash");
	struct afpacket *squatter, *socks[2];
	struct errcap c;
	const char *msg;
	unsigned nflows;
	size_t n;
	int err;

	/* The group id is taken in hash mode: the kernel refuses PACKET_FANOUT_EBPF on it. */
	cr_assert_eq(afpacket__open(&o, 0, &squatter), 0);
	o.fanout = "ebpf";
	errcap_begin(&c);
	err = afpacket__open_group(&o, 2, socks);
	msg = errcap_end(&c);
	cr_assert_eq(err, 0);
	cr_assert_str_eq(o.fanout, "hash");
	cr_assert(strstr(msg, "cannot join fanout group") != NULL, "%s", msg);
	cr_assert(strstr(msg, "svcsensor: warning: vb: eBPF fanout unavailable, using fanout "
			      "hash") != NULL,
		  "%s", msg);
	cr_assert_eq(count_lines(msg), 2, "%s", msg);
	afpacket__close(squatter);
	/* The fallback group works. */
	n = make_traffic(traffic, flow_of, 2, &nflows);
	rx_init(&rxs, traffic, n, true);
	send_frames("va", traffic, n, socks, 2, &rxs);
	drain(socks, 2, &rxs, 100);
	check_exactly_once(socks, 2, &rxs);
	afpacket__close(socks[0]);
	afpacket__close(socks[1]);
}

Test(live, promisc_while_open_dropped_on_close)
{
	struct afpacket_opts o = ring_opts("vb", "hash");
	struct afpacket *socks[2];

	cr_assert_eq(netns__promisc("vb"), 0);
	o.promisc = true;
	open_group_or_fail(&o, 2, socks);
	cr_assert_eq(netns__promisc("vb"), 1);
	afpacket__close(socks[0]);
	cr_assert_eq(netns__promisc("vb"), 1, "the other socket still holds it");
	afpacket__close(socks[1]);
	cr_assert_eq(netns__promisc("vb"), 0, "the kernel drops the membership on close");
}

Test(live, offload_warning_once_when_gro_on)
{
	struct errcap c;
	const char *msg;
	int r;

	cr_assert_eq(netns__set_gro("vb", 0), 0);
	errcap_begin(&c);
	r = afpacket__offload_warning("vb");
	msg = errcap_end(&c);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(msg, "");

	cr_assert_eq(netns__set_gro("vb", 1), 0);
	errcap_begin(&c);
	r = afpacket__offload_warning("vb");
	cr_assert_eq(afpacket__offload_warning("vb"), 1);
	msg = errcap_end(&c);
	cr_assert_eq(r, 1);
	cr_assert_eq(count_lines(msg), 1, "warned once: %s", msg);
	cr_assert(strncmp(msg, "svcsensor: warning: vb: GRO on:", 31) == 0, "%s", msg);
	cr_assert(strstr(msg, "ethtool -K vb gro off") != NULL, "%s", msg);
	cr_assert_eq(afpacket__offload_warning("nosuch0"), -ENODEV);
}

Test(live, group_id_is_per_process)
{
	cr_assert_eq(afpacket__group_id(), (uint16_t)(getpid() & 0xffff));
}

/* Open the rings as root, drop to nobody, and the rings still capture; a new socket is then
 * refused with EPERM. Runs in a child: the parent stays root to remove the namespace. */
Test(live, rings_work_after_privdrop_new_socket_eperm)
{
	struct passwd *pw = getpwnam("nobody");
	uid_t uid = pw ? pw->pw_uid : 0;
	gid_t gid = pw ? pw->pw_gid : 0;
	int status;
	pid_t pid;

	if (!pw)
		LIVE_SKIP("live: no 'nobody' user on this system to drop privileges to");
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct afpacket_opts o = ring_opts("vb", "hash");
		struct afpacket *socks[2], *late;
		unsigned nflows;
		size_t n = make_traffic(traffic, flow_of, 2, &nflows);
		int tx = netns__tx_open("va"), err;
		uint8_t buf[2048];

		if (tx < 0 || afpacket__open_group(&o, 2, socks) != 0)
			_exit(10);
		if (privdrop__to_user("nobody") != 0)
			_exit(11);
		if (getuid() != uid || geteuid() != uid || getgid() != gid)
			_exit(12);
		rx_init(&rxs, traffic, n, true);
		for (size_t i = 0; i < n; i++) {
			size_t len = netns__frame_build(&traffic[i], buf, sizeof(buf));
			if (netns__tx_send(tx, buf, len) != 0)
				_exit(13);
		}
		for (uint64_t t = now_ms(); now_ms() - t < 300;)
			for (unsigned s = 0; s < 2; s++) {
				rxs.cur = s;
				if (afpacket__poll(socks[s], 5, on_frame, &rxs) < 0)
					_exit(14);
			}
		for (size_t i = 0; i < n; i++)
			if (rxs.times[i] != 1)
				_exit(15);
		struct errcap c;
		errcap_begin(&c);
		err = afpacket__open(&o, 2, &late);
		const char *msg = errcap_end(&c);
		if (err != -EPERM)
			_exit(16);
		_exit(strcmp(msg, "svcsensor: vb: cannot open a packet socket: Operation not "
				  "permitted (run as root or with CAP_NET_RAW)\n") == 0
			  ? 0
			  : 17);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child died");
	cr_assert_eq(WEXITSTATUS(status), 0,
		     "child step %d failed (10 open, 11 privdrop, 12 ids, 13 send, 14 poll, 15 "
		     "frames, 16 no EPERM, 17 message)",
		     WEXITSTATUS(status));
}

/* ------------------------------------------------------------ privdrop (no namespace) */

Test(privdrop, unknown_user_one_line_enoent)
{
	struct errcap c;
	const char *msg;
	int err;

	errcap_begin(&c);
	err = privdrop__to_user("no-such-user-svcs");
	msg = errcap_end(&c);
	cr_assert_eq(err, -ENOENT);
	cr_assert_str_eq(msg, "svcsensor: user no-such-user-svcs: no such user\n");
}

Test(privdrop, not_root_is_eperm)
{
	struct passwd *pw = getpwnam("nobody");
	uid_t nobody = pw ? pw->pw_uid : 0;
	int status;
	pid_t pid;

	if (geteuid() != 0 || !pw || !getpwnam("daemon"))
		cr_skip_test("privdrop: needs root and the users nobody and daemon to test a "
			     "refused switch");
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setresuid(nobody, nobody, nobody) != 0)
			_exit(10);
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 2);
		_exit(privdrop__to_user("daemon") == -EPERM ? 0 : 11);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}

/* ------------------------------------------------------------ svcsensor end to end */

/* The binary under test, or skip with the reason. */
static const char *sensor_bin_with_live_capture(void)
{
	const char *bin = getenv("SVCSENSOR_BIN");
	char out[64], text[8192];
	const char *argv[] = {NULL, "--help", NULL};
	int status = 0;
	size_t n = 0;
	pid_t pid;
	FILE *f;

	if (!bin || !bin[0])
		LIVE_SKIP("live: SVCSENSOR_BIN is not set (make test sets it): the svcsensor "
			  "end-to-end capture test is skipped");
	if (access(bin, X_OK) != 0)
		LIVE_SKIP("live: SVCSENSOR_BIN=%s is not an executable", bin);
	snprintf(out, sizeof(out), "/tmp/svcs-%d-help.out", (int)getpid());
	argv[0] = bin;
	cr_assert_eq(netns__spawn(&ns, argv, out, NULL, &pid), 0);
	netns__wait(&ns, pid, 10000, &status);
	f = fopen(out, "r");
	if (f) {
		n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
	}
	text[n] = '\0';
	unlink(out);
	if (!strstr(text, "--interface") || !strstr(text, "--fanout"))
		LIVE_SKIP("live: %s has no live capture with --fanout yet (not in its --help): "
			  "end-to-end capture test skipped",
			  bin);
	return bin;
}

static void sensor_end_to_end(const char *mode)
{
	const char *bin = sensor_bin_with_live_capture();
	char dir[64], csv[96], log[96], line[1024];
	unsigned nflows, records = 0;
	size_t n = make_traffic(traffic, flow_of, 6, &nflows);
	int status = 0, err;
	uint64_t t;
	pid_t pid;
	FILE *f;

	/* Its default outputs (report, anomaly log) go to a scratch directory, not the tree. */
	snprintf(dir, sizeof(dir), "/tmp/svcs-%d-%s-XXXXXX", (int)getpid(), mode);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(csv, sizeof(csv), "%s/flows.csv", dir);
	snprintf(log, sizeof(log), "%s/sensor.out", dir);
	const char *argv[] = {bin,  "-i",	   "vb", "-t",	       "2", "--fanout",
			      mode, "--flows-out", csv,	 "--duration", "4", NULL};
	err = netns__spawn(&ns, argv, log, dir, &pid);
	cr_assert_eq(err, 0, "%s: %s", bin, strerror(-err));
	/* Ready when its two rings are bound to vb. */
	for (t = now_ms(); netns__packet_sockets_on(ns.vb_index) < 2; usleep(10000)) {
		if (waitpid(pid, &status, WNOHANG) == pid || now_ms() - t > 3000) {
			f = fopen(log, "r");
			line[0] = '\0';
			if (f) {
				if (!fgets(line, sizeof(line), f))
					line[0] = '\0';
				fclose(f);
			}
			cr_assert_fail("svcsensor -i vb --fanout %s did not open its rings: %s",
				       mode, line);
		}
	}
	send_frames("va", traffic, n, NULL, 0, NULL);
	err = netns__wait(&ns, pid, 20000, &status);
	cr_assert_eq(err, 0, "svcsensor did not stop after --duration 4");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "svcsensor exit status %d",
		  status);
	f = fopen(csv, "r");
	cr_assert_not_null(f, "%s not written", csv);
	while (fgets(line, sizeof(line), f))
		records += strstr(line, "10.77.") || strstr(line, "2001:db8:77:");
	fclose(f);
	f = fopen(log, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "packets") || strstr(line, "warning") || strstr(line, "error"))
			cr_log_info("svcsensor --fanout %s: %s", mode, line);
	if (f)
		fclose(f);
	cr_log_info("svcsensor --fanout %s: %zu frames sent, %u flow records for %u flows", mode, n,
		    records, nflows);
	netns__remove_dir(dir);
	/* One record per flow: a flow split across the two workers would give two. */
	cr_assert_eq(records, nflows, "%u flow records for %u flows (fanout %s)", records, nflows,
		     mode);
}

Test(live, svcsensor_two_workers_fanout_hash)
{
	sensor_end_to_end("hash");
}

Test(live, svcsensor_two_workers_fanout_ebpf)
{
	sensor_end_to_end("ebpf");
}

/* svcsensor -i vb -t 2 (fanout hash) started in the namespace, in a fresh directory
 * /tmp/svcs-PID-TAG-XXXXXX (dir, 64 bytes) with stdout and stderr in dir/sensor.out (out, 96
 * bytes); returns once its two rings are open. */
static pid_t spawn_on_vb(const char *tag, char *dir, char *out)
{
	const char *bin = sensor_bin_with_live_capture();
	int status = 0, err;
	uint64_t t;
	pid_t pid;

	snprintf(dir, 64, "/tmp/svcs-%d-%s-XXXXXX", (int)getpid(), tag);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(out, 96, "%s/sensor.out", dir);
	const char *argv[] = {bin,     "-i",	"vb",	       "-t",	  "2",	  "--fanout",
			      "hash",  "--map", "no-map.json", "--print", "none", "--report",
			      "r.txt", "--log", "a.log",       NULL};
	err = netns__spawn(&ns, argv, out, dir, &pid);
	cr_assert_eq(err, 0, "%s: %s", bin, strerror(-err));
	for (t = now_ms(); netns__packet_sockets_on(ns.vb_index) < 2; usleep(10000))
		cr_assert(waitpid(pid, &status, WNOHANG) != pid && now_ms() - t < 5000,
			  "svcsensor -i vb did not open its rings");
	return pid;
}

/* The interface the sensor captures on is removed: the run ends by itself within seconds,
 * with one line naming the interface and the error, and exit status 1 (not 0: its capture
 * did not run to the end it was asked for). */
Test(live, svcsensor_interface_removed_one_line_status_1)
{
	const char *del[] = {"ip", "link", "del", "vb", NULL};
	char dir[64], out[96], why[256];
	int status = 0, err;
	pid_t pid = spawn_on_vb("removed", dir, out);

	cr_assert_eq(netns__run(del, why, sizeof(why)), 0, "%s", why);
	/* A liveness bound, not a timing claim: the old code never ended by itself. */
	err = netns__wait(&ns, pid, 10000, &status);
	char *text = read_all(out);
	netns__remove_dir(dir);
	cr_assert_not_null(text, "no output");
	cr_assert_eq(err, 0, "svcsensor still ran 10 s after its interface was removed:\n%s", text);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "exit status %d, expected 1:\n%s",
		  status, text);
	unsigned lines = 0;
	const char *line = NULL;
	for (const char *p = text; (p = strstr(p, "No such device")); p++, lines++)
		line = p;
	cr_assert_eq(lines, 1, "one line with the error expected:\n%s", text);
	const char *bol = line;
	while (bol > text && bol[-1] != '\n')
		bol--;
	cr_assert(strncmp(bol, "svcsensor: vb: ", 15) == 0, "the line names the interface:\n%s",
		  text);
	cr_assert_null(strstr(text, "went down"), "a removal is not a link down:\n%s", text);
	free(text);
}

/* The link goes down twice under a running sensor (two rings): one warning naming the
 * interface, capture goes on, the exit summary counts both downs, exit status 0. */
Test(live, svcsensor_link_down_warned_once_counted)
{
	const char *down[] = {"ip", "link", "set", "vb", "down", NULL};
	const char *up[] = {"ip", "link", "set", "vb", "up", NULL};
	char dir[64], out[96], why[256];
	int status = 0, err;
	uint64_t t;
	pid_t pid = spawn_on_vb("down", dir, out);

	/* First down: wait for its warning (a liveness bound), then up again. */
	cr_assert_eq(netns__run(down, why, sizeof(why)), 0, "%s", why);
	bool warned = false;
	for (t = now_ms(); !warned && now_ms() - t < 5000; usleep(50000)) {
		FILE *f = fopen(out, "r");
		char line[512];
		while (f && !warned && fgets(line, sizeof(line), f))
			warned = strstr(line, "the link went down;") != NULL;
		if (f)
			fclose(f);
	}
	cr_assert_eq(netns__run(up, why, sizeof(why)), 0, "%s", why);
	/* Second down, long enough to be told (afpacket.h: half a second). */
	cr_assert_eq(netns__run(down, why, sizeof(why)), 0, "%s", why);
	usleep(1500000);
	cr_assert_eq(netns__run(up, why, sizeof(why)), 0, "%s", why);
	usleep(1000000);
	cr_assert_eq(waitpid(pid, &status, WNOHANG), 0, "svcsensor ended on a link down");
	kill(pid, SIGINT);
	err = netns__wait(&ns, pid, 10000, &status);
	char *text = read_all(out);
	netns__remove_dir(dir);
	cr_assert_not_null(text, "no output");
	cr_assert_eq(err, 0, "svcsensor did not end after SIGINT:\n%s", text);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d:\n%s", status,
		  text);
	cr_assert(warned, "no warning while the link was down:\n%s", text);
	unsigned n = 0;
	for (const char *p = text; (p = strstr(p, "the link went down;")); p++)
		n++;
	cr_assert_eq(n, 1, "one warning for the group expected:\n%s", text);
	cr_assert(strstr(text, "svcsensor: warning: vb: the link went down 2 times"),
		  "the summary counts both downs:\n%s", text);
	free(text);
}
