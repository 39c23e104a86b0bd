/* test_flow_table.c - Criterion suite "flow_table": real IPv4/IPv6 TCP/UDP packets built
 * here (no decoder involved), fed to a table; the emitted records are checked. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "svcsensor/flow_table.h"

#define SEC 1000000ULL
#define T0 (1700000000ULL * SEC)

#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define PSH 0x08
#define ACK 0x10

/* ---- packet builder ---- */

struct pkt {
	uint8_t buf[1600];
	struct pkt_view pv;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t ip4_csum(const uint8_t *h)
{
	uint32_t s = 0;
	for (int i = 0; i < 20; i += 2)
		s += (uint32_t)(h[i] << 8 | h[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Build an IPv4 (address with '.') or IPv6 packet carrying TCP (flags, seq, ack) or UDP
 * with payload; fill the packet view the way the decoder would. */
static struct pkt *build(struct pkt *p, uint8_t proto, const char *src, uint16_t sport,
			 const char *dst, uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack,
			 const void *payload, size_t plen, uint64_t ts)
{
	int v6 = strchr(src, ':') != NULL;
	size_t l3h = v6 ? 40 : 20, l4h = proto == IPPROTO_TCP ? 20 : 8;
	size_t total = l3h + l4h + plen;
	uint8_t *l4 = p->buf + l3h;

	cr_assert(total <= sizeof(p->buf));
	memset(p, 0, sizeof(*p));
	if (v6) {
		p->buf[0] = 0x60;
		put16(p->buf + 4, (uint16_t)(l4h + plen));
		p->buf[6] = proto;
		p->buf[7] = 64;
		cr_assert(inet_pton(AF_INET6, src, p->buf + 8) == 1);
		cr_assert(inet_pton(AF_INET6, dst, p->buf + 24) == 1);
		memcpy(p->pv.key.src, p->buf + 8, 16);
		memcpy(p->pv.key.dst, p->buf + 24, 16);
	} else {
		p->buf[0] = 0x45;
		put16(p->buf + 2, (uint16_t)total);
		put16(p->buf + 4, 0x1234);
		put16(p->buf + 6, 0x4000);
		p->buf[8] = 64;
		p->buf[9] = proto;
		cr_assert(inet_pton(AF_INET, src, p->buf + 12) == 1);
		cr_assert(inet_pton(AF_INET, dst, p->buf + 16) == 1);
		put16(p->buf + 10, ip4_csum(p->buf));
		memcpy(p->pv.key.src, p->buf + 12, 4);
		memcpy(p->pv.key.dst, p->buf + 16, 4);
	}
	put16(l4, sport);
	put16(l4 + 2, dport);
	if (proto == IPPROTO_TCP) {
		put32(l4 + 4, seq);
		put32(l4 + 8, ack);
		l4[12] = 5 << 4;
		l4[13] = flags;
		put16(l4 + 14, 65535);
	} else {
		put16(l4 + 4, (uint16_t)(8 + plen));
	}
	if (plen)
		memcpy(l4 + l4h, payload, plen);

	p->pv.key.sport = sport;
	p->pv.key.dport = dport;
	p->pv.key.proto = proto;
	p->pv.key.ipver = v6 ? 6 : 4;
	p->pv.ts_us = ts;
	p->pv.l3 = p->buf;
	p->pv.l3_caplen = (uint32_t)total;
	p->pv.ip_len = (uint32_t)total;
	p->pv.l4_payload = (uint32_t)plen;
	p->pv.tcp_flags = proto == IPPROTO_TCP ? flags : 0;
	return p;
}

/* DNS query (or answer with one A record) for name; returns the length. */
static size_t dns_msg(uint8_t *m, const char *name, int answer)
{
	size_t n = 12, l;
	const char *s = name, *dot;

	memset(m, 0, 12);
	put16(m, 0xbeef);
	put16(m + 2, answer ? 0x8180 : 0x0100);
	put16(m + 4, 1);
	put16(m + 6, answer ? 1 : 0);
	while (*s) {
		dot = strchr(s, '.');
		l = dot ? (size_t)(dot - s) : strlen(s);
		m[n++] = (uint8_t)l;
		memcpy(m + n, s, l);
		n += l;
		s += l + (dot ? 1 : 0);
	}
	m[n++] = 0;
	put16(m + n, 1); /* A */
	put16(m + n + 2, 1);
	n += 4;
	if (answer) {
		put16(m + n, 0xc00c);
		put16(m + n + 2, 1);
		put16(m + n + 4, 1);
		put32(m + n + 6, 300);
		put16(m + n + 10, 4);
		m[n + 12] = 93, m[n + 13] = 184, m[n + 14] = 216, m[n + 15] = 34;
		n += 16;
	}
	return n;
}

/* TLS 1.2 record with a ClientHello carrying SNI name. */
static size_t client_hello(uint8_t *m, const char *name)
{
	size_t nl = strlen(name), n = 0, hs, ext;

	m[n++] = 0x16, m[n++] = 3, m[n++] = 1, n += 2; /* record, length later */
	hs = n;
	m[n++] = 1, n += 3; /* ClientHello, length later */
	m[n++] = 3, m[n++] = 3;
	for (int i = 0; i < 32; i++)
		m[n++] = (uint8_t)(i * 7 + 1);
	m[n++] = 0;		 /* session id */
	put16(m + n, 4), n += 2; /* cipher suites */
	put16(m + n, 0x1301), n += 2;
	put16(m + n, 0xc02f), n += 2;
	m[n++] = 1, m[n++] = 0; /* compression: null */
	ext = n, n += 2;
	put16(m + n, 0), n += 2; /* server_name */
	put16(m + n, (uint16_t)(nl + 5)), n += 2;
	put16(m + n, (uint16_t)(nl + 3)), n += 2;
	m[n++] = 0;
	put16(m + n, (uint16_t)nl), n += 2;
	memcpy(m + n, name, nl), n += nl;
	put16(m + n, 0x000a), n += 2; /* supported_groups */
	put16(m + n, 4), n += 2;
	put16(m + n, 2), n += 2;
	put16(m + n, 0x001d), n += 2;
	put16(m + ext, (uint16_t)(n - ext - 2));
	m[hs + 1] = 0;
	put16(m + hs + 2, (uint16_t)(n - hs - 4));
	put16(m + 3, (uint16_t)(n - 5));
	return n;
}

/* ---- record sink ---- */

#define KEEP_MAX 64

struct sink {
	struct flow_record *r[KEEP_MAX];
	size_t n;     /* kept */
	size_t total; /* emitted */
	int keep;
};

static void sink_emit(void *ctx, struct flow_record *r)
{
	struct sink *s = ctx;

	s->total++;
	if (s->keep && s->n < KEEP_MAX)
		s->r[s->n++] = r;
	else
		flow_record__free(r);
}

static void sink_clear(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++)
		flow_record__free(s->r[i]);
	s->n = 0;
}

static struct sink sk;
static struct flow_table *ft;
static struct flow_table_opts fo;

static void setup(void)
{
	memset(&sk, 0, sizeof(sk));
	sk.keep = 1;
	flow_table__opts_default(&fo);
	fo.max_flows = 1024;
	fo.worker_id = 3;
}

static void teardown(void)
{
	flow_table__free(ft);
	ft = NULL;
	sink_clear(&sk);
}

static void start(void)
{
	ft = flow_table__new(&fo, sink_emit, &sk);
	cr_assert_not_null(ft);
}

static void feed(struct pkt *p)
{
	flow_table__packet(ft, &p->pv);
}

static const struct flow_table_stats *st(void)
{
	return flow_table__stats(ft);
}

static int is_addr(const uint8_t a[16], const char *s)
{
	uint8_t b[16] = {0};
	if (strchr(s, ':'))
		inet_pton(AF_INET6, s, b);
	else
		inet_pton(AF_INET, s, b);
	return !memcmp(a, b, 16);
}

TestSuite(flow_table, .init = setup, .fini = teardown, .timeout = 60);

/* ---- tests ---- */

Test(flow_table, dns_both_directions_one_flow)
{
	struct pkt q, a;
	uint8_t m[512];
	size_t ql, al;

	start();
	ql = dns_msg(m, "www.example.com", 0);
	build(&q, IPPROTO_UDP, "10.0.0.2", 40000, "10.0.0.1", 53, 0, 0, 0, m, ql, T0);
	feed(&q);
	cr_assert_eq(st()->live, 1);
	al = dns_msg(m, "www.example.com", 1);
	build(&a, IPPROTO_UDP, "10.0.0.1", 53, "10.0.0.2", 40000, 0, 0, 0, m, al, T0 + 2000);
	feed(&a);
	cr_assert_eq(st()->live, 1);
	cr_assert_eq(st()->flows_created, 1);
	cr_assert_eq(st()->in_detection, 0, "DNS is final after the answer");
	cr_assert_eq(sk.total, 0);

	flow_table__flush(ft, FLOW_END_SHUTDOWN);
	cr_assert_eq(sk.n, 1);
	struct flow_record *r = sk.r[0];
	cr_assert(is_addr(r->key.src, "10.0.0.2"));
	cr_assert(is_addr(r->key.dst, "10.0.0.1"));
	cr_assert_eq(r->key.sport, 40000);
	cr_assert_eq(r->key.dport, 53);
	cr_assert_eq(r->key.proto, IPPROTO_UDP);
	cr_assert_eq(r->pkts[0], 1);
	cr_assert_eq(r->pkts[1], 1);
	cr_assert_eq(r->bytes[0], 28 + ql);
	cr_assert_eq(r->bytes[1], 28 + al);
	cr_assert_eq(r->first_us, T0);
	cr_assert_eq(r->last_us, T0 + 2000);
	cr_assert_eq(r->end_reason, FLOW_END_SHUTDOWN);
	cr_assert_eq(r->worker, 3);
	cr_assert_str_eq(r->app_name, "DNS");
	cr_assert_str_eq(r->master_name, "");
	cr_assert_str_eq(r->server_name, "www.example.com");
	cr_assert_not(r->guessed);
	cr_assert_eq(st()->live, 0);
	cr_assert_eq(st()->flows_ended[FLOW_END_SHUTDOWN], 1);
}

Test(flow_table, dns_ipv6_source_is_first_sender)
{
	struct pkt a, q;
	uint8_t m[512];

	start();
	/* The answer is seen first (capture started late): its sender is the source. */
	build(&a, IPPROTO_UDP, "2001:db8::53", 53, "2001:db8::2", 41000, 0, 0, 0, m,
	      dns_msg(m, "ipv6.example.org", 1), T0);
	feed(&a);
	build(&q, IPPROTO_UDP, "2001:db8::2", 41000, "2001:db8::53", 53, 0, 0, 0, m,
	      dns_msg(m, "ipv6.example.org", 0), T0 + 10);
	feed(&q);
	feed(&q);
	flow_table__flush(ft, FLOW_END_SHUTDOWN);
	cr_assert_eq(sk.n, 1);
	cr_assert(is_addr(sk.r[0]->key.src, "2001:db8::53"));
	cr_assert_eq(sk.r[0]->key.sport, 53);
	cr_assert_eq(sk.r[0]->key.ipver, 6);
	cr_assert_eq(sk.r[0]->pkts[0], 1);
	cr_assert_eq(sk.r[0]->pkts[1], 2);
	cr_assert_str_eq(sk.r[0]->app_name, "DNS");
	cr_assert_str_eq(sk.r[0]->server_name, "ipv6.example.org");
}

/* Client 10.1.0.2:50000 -> server 10.1.0.1:80: handshake, GET, response, FIN, FIN, ACK. */
static uint64_t http_session(const char *host, uint64_t t)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
				   "Content-Length: 5\r\n\r\nhello";
	char req[256];
	struct pkt p;
	const char *c = "10.1.0.2", *s = "10.1.0.1";
	int rl = snprintf(req, sizeof(req),
			  "GET /index.html HTTP/1.1\r\nHost: %s\r\nUser-Agent: test/1.0\r\n"
			  "Accept: */*\r\n\r\n",
			  host);

	feed(build(&p, IPPROTO_TCP, c, 50000, s, 80, SYN, 100, 0, NULL, 0, t));
	feed(build(&p, IPPROTO_TCP, s, 80, c, 50000, SYN | ACK, 900, 101, NULL, 0, t + 1000));
	feed(build(&p, IPPROTO_TCP, c, 50000, s, 80, ACK, 101, 901, NULL, 0, t + 2000));
	feed(build(&p, IPPROTO_TCP, c, 50000, s, 80, PSH | ACK, 101, 901, req, (size_t)rl,
		   t + 3000));
	feed(build(&p, IPPROTO_TCP, s, 80, c, 50000, PSH | ACK, 901, 101 + (uint32_t)rl, resp,
		   sizeof(resp) - 1, t + 4000));
	feed(build(&p, IPPROTO_TCP, c, 50000, s, 80, FIN | ACK, 101 + (uint32_t)rl, 960, NULL, 0,
		   t + 5000));
	feed(build(&p, IPPROTO_TCP, s, 80, c, 50000, FIN | ACK, 960, 102 + (uint32_t)rl, NULL, 0,
		   t + 6000));
	feed(build(&p, IPPROTO_TCP, c, 50000, s, 80, ACK, 102 + (uint32_t)rl, 961, NULL, 0,
		   t + 7000));
	return t + 7000;
}

Test(flow_table, http_host_fin_fin_ack_one_flow)
{
	uint64_t last;

	start();
	last = http_session("www.example.com", T0);
	cr_assert_eq(st()->flows_created, 1, "trailing ACK must not start a flow");
	cr_assert_eq(sk.total, 0, "closed flow lingers");
	/* Closed by the second FIN, 1 ms before the last ACK; the linger counts from there. */
	flow_table__expire(ft, last - 1000 + fo.tcp_linger_us);
	cr_assert_eq(sk.total, 0, "linger not over yet");
	flow_table__expire(ft, last - 1000 + fo.tcp_linger_us + 1);
	cr_assert_eq(sk.n, 1);
	struct flow_record *r = sk.r[0];
	cr_assert_eq(r->end_reason, FLOW_END_TCP);
	cr_assert(is_addr(r->key.src, "10.1.0.2"));
	cr_assert_eq(r->key.dport, 80);
	cr_assert_eq(r->pkts[0], 5);
	cr_assert_eq(r->pkts[1], 3);
	cr_assert_eq(r->first_us, T0);
	cr_assert_eq(r->last_us, last);
	cr_assert_str_eq(r->app_name, "HTTP");
	cr_assert_str_eq(r->master_name, "");
	cr_assert_str_eq(r->server_name, "www.example.com");
	cr_assert_eq(st()->live, 0);
	cr_assert_eq(st()->in_detection, 0);
	cr_assert_eq(st()->flows_ended[FLOW_END_TCP], 1);
}

Test(flow_table, linger_absorbs_repeats_then_new_flow_after_linger)
{
	struct pkt p;
	uint64_t last;

	start();
	last = http_session("www.example.com", T0);
	/* Repeated FIN and a late RST within the linger: same flow. */
	feed(build(&p, IPPROTO_TCP, "10.1.0.1", 80, "10.1.0.2", 50000, FIN | ACK, 960, 200, NULL, 0,
		   last + 200000));
	feed(build(&p, IPPROTO_TCP, "10.1.0.2", 50000, "10.1.0.1", 80, RST, 200, 0, NULL, 0,
		   last + 300000));
	cr_assert_eq(st()->flows_created, 1);
	cr_assert_eq(sk.total, 0);
	/* A stray ACK after the linger: the old flow ends (TCP), the ACK starts a new one. */
	feed(build(&p, IPPROTO_TCP, "10.1.0.1", 80, "10.1.0.2", 50000, ACK, 961, 200, NULL, 0,
		   last + fo.tcp_linger_us + 1));
	cr_assert_eq(sk.n, 1);
	cr_assert_eq(sk.r[0]->end_reason, FLOW_END_TCP);
	cr_assert_eq(sk.r[0]->pkts[0] + sk.r[0]->pkts[1], 10);
	cr_assert_eq(st()->flows_created, 2);
	flow_table__flush(ft, FLOW_END_SHUTDOWN);
	cr_assert_eq(sk.n, 2);
	cr_assert_eq(sk.r[1]->end_reason, FLOW_END_SHUTDOWN);
	cr_assert(is_addr(sk.r[1]->key.src, "10.1.0.1"));
	cr_assert_eq(sk.r[1]->pkts[0], 1);
}

Test(flow_table, rst_closes)
{
	struct pkt p;

	start();
	feed(build(&p, IPPROTO_TCP, "10.2.0.2", 40500, "10.2.0.1", 22, SYN, 1, 0, NULL, 0, T0));
	feed(build(&p, IPPROTO_TCP, "10.2.0.1", 22, "10.2.0.2", 40500, RST | ACK, 0, 2, NULL, 0,
		   T0 + 500));
	/* Retransmitted SYN? No: a second RST (e.g. to a late segment) is absorbed. */
	feed(build(&p, IPPROTO_TCP, "10.2.0.1", 22, "10.2.0.2", 40500, RST, 0, 0, NULL, 0,
		   T0 + 900));
	cr_assert_eq(st()->flows_created, 1);
	flow_table__expire(ft, T0 + 500 + fo.tcp_linger_us + 1);
	cr_assert_eq(sk.n, 1);
	cr_assert_eq(sk.r[0]->end_reason, FLOW_END_TCP);
	cr_assert_eq(sk.r[0]->pkts[0], 1);
	cr_assert_eq(sk.r[0]->pkts[1], 2);
	cr_assert_eq(st()->live, 0);
}

Test(flow_table, syn_during_linger_starts_new_flow)
{
	struct pkt p;

	start();
	feed(build(&p, IPPROTO_TCP, "10.2.0.2", 40501, "10.2.0.1", 8080, SYN, 1, 0, NULL, 0, T0));
	feed(build(&p, IPPROTO_TCP, "10.2.0.1", 8080, "10.2.0.2", 40501, RST | ACK, 0, 2, NULL, 0,
		   T0 + 100));
	/* SYN+ACK during the linger is a trailing packet, not a new connection. */
	feed(build(&p, IPPROTO_TCP, "10.2.0.1", 8080, "10.2.0.2", 40501, SYN | ACK, 0, 2, NULL, 0,
		   T0 + 150));
	cr_assert_eq(sk.total, 0);
	/* The client retries: a SYN without ACK ends the closed flow at once. */
	feed(build(&p, IPPROTO_TCP, "10.2.0.2", 40501, "10.2.0.1", 8080, SYN, 1000, 0, NULL, 0,
		   T0 + 200));
	cr_assert_eq(sk.n, 1);
	cr_assert_eq(sk.r[0]->end_reason, FLOW_END_TCP);
	cr_assert_eq(sk.r[0]->pkts[0], 1);
	cr_assert_eq(sk.r[0]->pkts[1], 2);
	cr_assert_eq(st()->flows_created, 2);
	cr_assert_eq(st()->live, 1);
	flow_table__flush(ft, FLOW_END_SHUTDOWN);
	cr_assert_eq(sk.n, 2);
	cr_assert_eq(sk.r[1]->end_reason, FLOW_END_SHUTDOWN);
	cr_assert_eq(sk.r[1]->first_us, T0 + 200);
	cr_assert_eq(sk.r[1]->pkts[0], 1);
}

Test(flow_table, idle_timeout_on_packet_and_on_expire)
{
	struct pkt p;
	uint8_t junk[32] = {1, 2, 3};

	fo.idle_timeout_us = 30 * SEC;
	fo.active_timeout_us = 600 * SEC;
	start();
	build(&p, IPPROTO_UDP, "10.3.0.2", 5000, "10.3.0.1", 6000, 0, 0, 0, junk, sizeof(junk), T0);
	feed(&p);
	/* A gap of exactly the idle timeout is not idle (> idle is). */
	p.pv.ts_us = T0 + 30 * SEC;
	feed(&p);
	cr_assert_eq(sk.total, 0);
	p.pv.ts_us = T0 + 60 * SEC + 1;
	feed(&p);
	cr_assert_eq(sk.n, 1);
	cr_assert_eq(sk.r[0]->end_reason, FLOW_END_IDLE);
	cr_assert_eq(sk.r[0]->pkts[0], 2);
	cr_assert_eq(sk.r[0]->last_us, T0 + 30 * SEC);
	cr_assert_eq(st()->live, 1);

	flow_table__expire(ft, T0 + 90 * SEC + 1);
	cr_assert_eq(sk.n, 1);
	flow_table__expire(ft, T0 + 90 * SEC + 2);
	cr_assert_eq(sk.n, 2);
	cr_assert_eq(sk.r[1]->end_reason, FLOW_END_IDLE);
	cr_assert_eq(sk.r[1]->first_us, T0 + 60 * SEC + 1);
	cr_assert_eq(st()->flows_ended[FLOW_END_IDLE], 2);
	cr_assert_eq(st()->live, 0);
}

Test(flow_table, active_timeout_on_packet_and_on_expire)
{
	struct pkt p;
	uint8_t junk[16] = {9};
	uint64_t t;

	fo.idle_timeout_us = 30 * SEC;
	fo.active_timeout_us = 60 * SEC;
	start();
	build(&p, IPPROTO_UDP, "10.4.0.2", 5000, "10.4.0.1", 6000, 0, 0, 0, junk, sizeof(junk), T0);
	for (t = 0; t <= 60; t += 10) {
		p.pv.ts_us = T0 + t * SEC;
		feed(&p);
	}
	cr_assert_eq(sk.total, 0, "60 s is not more than the active timeout");
	p.pv.ts_us = T0 + 70 * SEC;
	feed(&p);
	cr_assert_eq(sk.n, 1);
	cr_assert_eq(sk.r[0]->end_reason, FLOW_END_ACTIVE);
	cr_assert_eq(sk.r[0]->pkts[0], 7);
	cr_assert_eq(st()->flows_created, 2);

	/* Second flow from 70 s, packets until 120 s; expire at 131 s: active, not idle. */
	for (t = 80; t <= 120; t += 10) {
		p.pv.ts_us = T0 + t * SEC;
		feed(&p);
	}
	flow_table__expire(ft, T0 + 130 * SEC);
	cr_assert_eq(sk.n, 1);
	flow_table__expire(ft, T0 + 131 * SEC);
	cr_assert_eq(sk.n, 2);
	cr_assert_eq(sk.r[1]->end_reason, FLOW_END_ACTIVE);
	cr_assert_eq(sk.r[1]->pkts[0], 6);
}

Test(flow_table, reason_is_first_deadline_whoever_notices)
{
	struct pkt p, p2;
	uint8_t junk[16] = {7};

	fo.idle_timeout_us = 30 * SEC;
	fo.active_timeout_us = 60 * SEC;
	start();
	/* Flow A: packets 0..50 s → active deadline 60 s precedes idle deadline 80 s. */
	build(&p, IPPROTO_UDP, "10.5.0.2", 5000, "10.5.0.1", 6000, 0, 0, 0, junk, sizeof(junk), T0);
	build(&p2, IPPROTO_UDP, "10.5.0.3", 5000, "10.5.0.1", 6000, 0, 0, 0, junk, sizeof(junk),
	      T0);
	for (int t = 0; t <= 50; t += 10) {
		p.pv.ts_us = T0 + (uint64_t)t * SEC;
		p2.pv.ts_us = p.pv.ts_us;
		feed(&p);
		feed(&p2);
	}
	/* A is noticed by expire, B by its own packet, both long after both deadlines. */
	flow_table__expire(ft, T0 + 500 * SEC);
	cr_assert_eq(sk.n, 2);
	cr_assert_eq(sk.r[0]->end_reason, FLOW_END_ACTIVE);
	cr_assert_eq(sk.r[1]->end_reason, FLOW_END_ACTIVE);

	/* Flow C: one packet at 500 s; noticed by a packet at 1000 s: idle (deadline 530). */
	p.pv.ts_us = T0 + 500 * SEC;
	feed(&p);
	p.pv.ts_us = T0 + 1000 * SEC;
	feed(&p);
	cr_assert_eq(sk.n, 3);
	cr_assert_eq(sk.r[2]->end_reason, FLOW_END_IDLE);
}

Test(flow_table, eviction_at_bound_lru)
{
	struct pkt p[5];
	uint8_t junk[8] = {1};

	fo.max_flows = 4;
	start();
	for (int i = 0; i < 4; i++) {
		build(&p[i], IPPROTO_UDP, "10.6.0.2", (uint16_t)(7000 + i), "10.6.0.1", 9999, 0, 0,
		      0, junk, sizeof(junk), T0 + (uint64_t)i * 1000);
		feed(&p[i]);
	}
	/* Touch flow 0 again: flow 1 becomes the least recently used. */
	p[0].pv.ts_us = T0 + 5000;
	feed(&p[0]);
	cr_assert_eq(st()->live, 4);
	cr_assert_eq(sk.total, 0);
	build(&p[4], IPPROTO_UDP, "10.6.0.2", 7004, "10.6.0.1", 9999, 0, 0, 0, junk, sizeof(junk),
	      T0 + 6000);
	feed(&p[4]);
	cr_assert_eq(sk.n, 1);
	cr_assert_eq(sk.r[0]->end_reason, FLOW_END_EVICTED);
	cr_assert_eq(sk.r[0]->key.sport, 7001);
	cr_assert_eq(st()->flows_ended[FLOW_END_EVICTED], 1);
	cr_assert_eq(st()->live, 4);
	cr_assert_eq(st()->flows_created, 5);
	flow_table__flush(ft, FLOW_END_SHUTDOWN);
	cr_assert_eq(sk.n, 5);
	cr_assert_eq(st()->flows_ended[FLOW_END_SHUTDOWN], 4);
	cr_assert_eq(st()->live, 0);
}

Test(flow_table, full_table_expires_due_before_evicting)
{
	struct pkt p;
	uint8_t junk[8] = {1};

	fo.max_flows = 2;
	fo.idle_timeout_us = 10 * SEC;
	start();
	build(&p, IPPROTO_UDP, "10.6.1.2", 1, "10.6.1.1", 2, 0, 0, 0, junk, sizeof(junk), T0);
	feed(&p);
	build(&p, IPPROTO_UDP, "10.6.1.2", 3, "10.6.1.1", 4, 0, 0, 0, junk, sizeof(junk),
	      T0 + 5 * SEC);
	feed(&p);
	build(&p, IPPROTO_UDP, "10.6.1.2", 5, "10.6.1.1", 6, 0, 0, 0, junk, sizeof(junk),
	      T0 + 11 * SEC);
	feed(&p);
	cr_assert_eq(sk.n, 1);
	cr_assert_eq(sk.r[0]->end_reason, FLOW_END_IDLE);
	cr_assert_eq(sk.r[0]->key.sport, 1);
	cr_assert_eq(st()->flows_ended[FLOW_END_EVICTED], 0);
}

Test(flow_table, time_backwards_never_expires)
{
	struct pkt a, b;
	uint8_t junk[8] = {1};

	fo.idle_timeout_us = 30 * SEC;
	start();
	build(&a, IPPROTO_UDP, "10.7.0.2", 1111, "10.7.0.1", 2222, 0, 0, 0, junk, sizeof(junk),
	      T0 + 1000 * SEC);
	feed(&a);
	/* A second capture, an hour earlier, appended to the first. */
	build(&b, IPPROTO_UDP, "10.7.0.3", 1111, "10.7.0.1", 2222, 0, 0, 0, junk, sizeof(junk),
	      T0 - 3600 * SEC);
	feed(&b);
	a.pv.ts_us = T0 - 3590 * SEC;
	feed(&a);
	b.pv.ts_us = T0 - 3500 * SEC;
	feed(&b);
	flow_table__expire(ft, T0 - 3000 * SEC);
	flow_table__expire(ft, T0 + 1000 * SEC);
	cr_assert_eq(sk.total, 0);
	cr_assert_eq(st()->flows_created, 2);
	cr_assert_eq(st()->live, 2);

	flow_table__expire(ft, T0 + 1030 * SEC + 1);
	cr_assert_eq(sk.n, 2);
	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(sk.r[i]->end_reason, FLOW_END_IDLE);
		cr_assert_eq(sk.r[i]->pkts[0], 2);
		cr_assert(sk.r[i]->first_us <= sk.r[i]->last_us);
	}
	cr_assert_eq(st()->live, 0);
}

Test(flow_table, flush_ends_all_with_shutdown)
{
	struct pkt p;
	uint8_t junk[8] = {1};

	start();
	for (int i = 0; i < 3; i++) {
		build(&p, IPPROTO_UDP, "10.8.0.2", (uint16_t)(100 + i), "10.8.0.1", 9, 0, 0, 0,
		      junk, sizeof(junk), T0 + (uint64_t)i);
		feed(&p);
	}
	cr_assert_eq(st()->in_detection, 3);
	flow_table__flush(ft, FLOW_END_SHUTDOWN);
	cr_assert_eq(sk.n, 3);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(sk.r[i]->end_reason, FLOW_END_SHUTDOWN);
		cr_assert_str_eq(sk.r[i]->app_name, "Unknown");
	}
	cr_assert_eq(st()->live, 0);
	cr_assert_eq(st()->in_detection, 0);
	/* flow_table__free flushes too. */
	feed(&p);
	flow_table__free(ft);
	ft = NULL;
	cr_assert_eq(sk.n, 4);
	cr_assert_eq(sk.r[3]->end_reason, FLOW_END_SHUTDOWN);
}

Test(flow_table, ndpi_state_freed_when_final)
{
	struct pkt p;
	uint8_t junk[40];

	start();
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	build(&p, IPPROTO_UDP, "10.9.0.2", 33333, "10.9.0.1", 44444, 0, 0, 0, junk, sizeof(junk),
	      T0);
	for (int i = 0; i < 24; i++) {
		p.pv.ts_us = T0 + (uint64_t)i * 1000;
		feed(&p);
	}
	cr_assert_eq(st()->in_detection, 1, "24 packets: still in detection");
	feed(&p);
	cr_assert_eq(st()->in_detection, 0, "25th packet crosses the UDP cap");
	cr_assert_eq(st()->live, 1);
	for (int i = 0; i < 100; i++)
		feed(&p); /* after final: nDPI is not called again */
	flow_table__flush(ft, FLOW_END_SHUTDOWN);
	cr_assert_eq(sk.n, 1);
	cr_assert_eq(sk.r[0]->pkts[0], 125);
}

Test(flow_table, tls_sni_master_and_app)
{
	struct pkt p;
	uint8_t m[512];
	size_t n = client_hello(m, "www.youtube.com");
	const char *c = "192.168.1.10", *s = "172.217.1.1";

	start();
	feed(build(&p, IPPROTO_TCP, c, 51000, s, 443, SYN, 1, 0, NULL, 0, T0));
	feed(build(&p, IPPROTO_TCP, s, 443, c, 51000, SYN | ACK, 7, 2, NULL, 0, T0 + 1000));
	feed(build(&p, IPPROTO_TCP, c, 51000, s, 443, ACK, 2, 8, NULL, 0, T0 + 2000));
	feed(build(&p, IPPROTO_TCP, c, 51000, s, 443, PSH | ACK, 2, 8, m, n, T0 + 3000));
	flow_table__flush(ft, FLOW_END_SHUTDOWN);
	cr_assert_eq(sk.n, 1);
	cr_assert_str_eq(sk.r[0]->app_name, "TLS.YouTube");
	cr_assert_str_eq(sk.r[0]->master_name, "TLS");
	cr_assert_neq(sk.r[0]->master_id, 0);
	cr_assert_str_eq(sk.r[0]->server_name, "www.youtube.com");
	cr_assert_not(sk.r[0]->guessed);
}

Test(flow_table, vlan_and_protocol_separate_flows)
{
	struct pkt p;
	uint8_t junk[8] = {1};

	start();
	build(&p, IPPROTO_UDP, "10.10.0.2", 1000, "10.10.0.1", 2000, 0, 0, 0, junk, sizeof(junk),
	      T0);
	feed(&p);
	p.pv.key.vlan = 42;
	feed(&p);
	build(&p, IPPROTO_TCP, "10.10.0.2", 1000, "10.10.0.1", 2000, SYN, 0, 0, NULL, 0, T0);
	feed(&p);
	cr_assert_eq(st()->flows_created, 3);
	cr_assert_eq(st()->live, 3);
}

Test(flow_table, many_flows_in_and_out)
{
	struct pkt q, a;
	uint8_t m[512];
	size_t ql = dns_msg(m, "a.example.net", 0);
	uint8_t am[512];
	size_t al = dns_msg(am, "a.example.net", 1);
	uint64_t t = T0;

	sk.keep = 0;
	fo.max_flows = 512;
	fo.idle_timeout_us = 2 * SEC;
	start();
	for (uint32_t i = 0; i < 10000; i++) {
		char src[32];
		snprintf(src, sizeof(src), "10.%u.%u.%u", 20 + i % 3, (i >> 8) & 255, i & 255);
		build(&q, IPPROTO_UDP, src, (uint16_t)(1024 + i), "10.0.0.53", 53, 0, 0, 0, m, ql,
		      t);
		feed(&q);
		/* Every other flow is left unanswered: those end in detection (give-up). */
		if (i % 2 == 0) {
			build(&a, IPPROTO_UDP, "10.0.0.53", 53, src, (uint16_t)(1024 + i), 0, 0, 0,
			      am, al, t + 100);
			feed(&a);
		}
		t += 1000; /* 1 ms apart: ~2000 flows live within the idle timeout > 512 */
		if (i % 64 == 0)
			flow_table__expire(ft, t);
	}
	cr_assert_leq(st()->live, 512);
	flow_table__flush(ft, FLOW_END_SHUTDOWN);
	cr_assert_eq(st()->flows_created, 10000);
	uint64_t ended = 0;
	for (int r = 0; r < FLOW_END__COUNT; r++)
		ended += st()->flows_ended[r];
	cr_assert_eq(ended, 10000);
	cr_assert_eq(sk.total, 10000);
	cr_assert_gt(st()->flows_ended[FLOW_END_EVICTED], 0);
	cr_assert_eq(st()->live, 0);
	cr_assert_eq(st()->in_detection, 0);
	cr_assert_eq(st()->packets, 15000);
}

/* flow__addr_str is a hand-written inet_ntop (the detector formats several addresses per
 * flow): it must give exactly inet_ntop's text, for IPv4 and for IPv6 with every shape of
 * zero run, IPv4-mapped and -compatible addresses included. */
Test(flow_table, addr_str_equals_inet_ntop)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char ours[64], libc[64];
	for (unsigned i = 0; i < 200000; i++) {
		uint8_t a[16];
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		for (int b = 0; b < 16; b++)
			a[b] = (uint8_t)(x >> ((b % 8) * 8)) ^ (uint8_t)(b * 37 + i);
		/* zero some 16-bit words (bit k of the pattern) to make runs of every length */
		unsigned zeros = (unsigned)(x >> 40) & 0xff;
		for (int w = 0; w < 8; w++)
			if (zeros & (1u << w))
				a[2 * w] = a[2 * w + 1] = 0;
		if (i % 50 == 0) { /* ::ffff:a.b.c.d and ::a.b.c.d */
			memset(a, 0, 10);
			a[10] = a[11] = (i % 100) ? 0xff : 0;
		}
		uint8_t ver = i % 3 == 0 ? 4 : 6;
		flow__addr_str(a, ver, ours, sizeof(ours));
		cr_assert_not_null(inet_ntop(ver == 6 ? AF_INET6 : AF_INET, a, libc, sizeof(libc)));
		cr_assert_str_eq(ours, libc, "address %u (IPv%u)", i, ver);
	}
}

/* ---- crafted keys: the flow tables' hash is seeded ---- */

/* The flow tables' hash as it was when it was unseeded (include/svcsensor/flow_hash.h before
 * flow_key__hash moved to hash.h), written out here from its definition: splitmix64's
 * finaliser, the address fold mix(lo ^ mix(hi)) and the symmetric combine. */
static uint64_t old_mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t old_fold(const uint8_t a[16])
{
	uint64_t lo, hi;
	memcpy(&lo, a, 8);
	memcpy(&hi, a + 8, 8);
	return old_mix(lo ^ old_mix(hi));
}

static uint64_t old_flow_hash(const struct flow_key *k)
{
	uint64_t a = old_fold(k->src) ^ ((uint64_t)k->sport << 32);
	uint64_t b = old_fold(k->dst) ^ ((uint64_t)k->dport << 32);
	uint64_t rest = ((uint64_t)k->vlan << 16) | ((uint64_t)k->proto << 8) | k->ipver;
	return old_mix((a + b) ^ old_mix(a ^ b) ^ old_mix(rest));
}

/* The i-th crafted IPv6 source: any hi word, lo = C ^ mix(hi), so that the fold of every one
 * is mix(C): one value of the old hash for all of them (same ports, same server). */
static void crafted_src(uint32_t i, char *out, size_t len)
{
	uint8_t a[16];
	uint64_t hi = 0x0000000100000000ULL * (i + 1) + 0xfe00, lo;
	lo = 0x20010db8cafe0000ULL ^ old_mix(hi);
	memcpy(a, &lo, 8);
	memcpy(a + 8, &hi, 8);
	cr_assert_not_null(inet_ntop(AF_INET6, a, out, (socklen_t)len));
}

/* 50 000 IPv6 SYNs to one server whose keys share one value of the old hash (checked here
 * with the old formula), then the server's SYN-ACKs: with the old hash every flow was in one
 * chain (longest walk 50 000 entries, each packet a walk of the whole chain); with the seeded
 * hash the longest walk stays a few entries, and every reply still finds its flow. */
Test(flow_table, crafted_old_hash_collisions_keep_chains_short)
{
	enum { N = 50000 };
	struct pkt p;
	char src[INET6_ADDRSTRLEN];
	uint64_t h0 = 0;

	sk.keep = 0;
	fo.max_flows = 65536;
	start();
	for (uint32_t i = 0; i < N; i++) {
		crafted_src(i, src, sizeof(src));
		build(&p, IPPROTO_TCP, src, 40000, "2001:db8::80", 443, SYN, 1, 0, NULL, 0, T0 + i);
		uint64_t old = old_flow_hash(&p.pv.key);
		if (i == 0)
			h0 = old;
		cr_assert_eq(old, h0, "crafted key %u does not collide under the old hash", i);
		feed(&p);
	}
	cr_assert_eq(st()->flows_created, N, "crafted sources are distinct flows");
	for (uint32_t i = 0; i < N; i++) {
		crafted_src(i, src, sizeof(src));
		feed(build(&p, IPPROTO_TCP, "2001:db8::80", 443, src, 40000, SYN | ACK, 9, 2, NULL,
			   0, T0 + N + i));
	}
	cr_assert_eq(st()->flows_created, N, "every SYN-ACK found its flow");
	cr_assert_eq(st()->live, N);
	cr_log_info("flow_table: %u keys colliding under the old hash: longest chain walked %llu, "
		    "walks over %u: %llu",
		    N, (unsigned long long)st()->chain_max, FLOW_TABLE_CHAIN_LONG,
		    (unsigned long long)st()->chain_long);
	cr_assert_leq(st()->chain_max, 16, "longest chain walked: %llu entries",
		      (unsigned long long)st()->chain_max);
	cr_assert_eq(st()->chain_long, 0);
}

/* The chain counters themselves: a hash that puts every flow in one bucket (any symmetric
 * hash may be handed to flow_table__packet_hashed) makes the n-th new flow walk the n flows
 * before it; a reply to the first flow walks all of them. */
Test(flow_table, chain_counters_count_the_walk)
{
	enum { N = 100 };
	struct pkt p;
	char src[32];

	start();
	for (uint32_t i = 0; i < N; i++) {
		snprintf(src, sizeof(src), "10.9.%u.%u", i >> 8, i & 255);
		build(&p, IPPROTO_UDP, src, 5000, "10.9.255.1", 53, 0, 0, 0, NULL, 0, T0 + i);
		flow_table__packet_hashed(ft, &p.pv, 42);
	}
	cr_assert_eq(st()->flows_created, N);
	cr_assert_eq(st()->chain_max, N - 1);
	cr_assert_eq(st()->chain_long, N - 1 - FLOW_TABLE_CHAIN_LONG, "walks of 17..99 entries");
	build(&p, IPPROTO_UDP, "10.9.255.1", 53, "10.9.0.0", 5000, 0, 0, 0, NULL, 0, T0 + N);
	flow_table__packet_hashed(ft, &p.pv, 42);
	cr_assert_eq(st()->flows_created, N, "the reply found the first flow");
	cr_assert_eq(st()->chain_max, N);
	cr_assert_eq(st()->chain_long, N - FLOW_TABLE_CHAIN_LONG);
}

/* hash_in_child: flow_key__hash of k computed in a fresh process (its own seed). */
static uint64_t hash_in_child(const struct flow_key *k)
{
	int fd[2];
	uint64_t h = 0;
	cr_assert_eq(pipe(fd), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uint64_t mine = flow_key__hash(k);
		_exit(write(fd[1], &mine, sizeof(mine)) == (ssize_t)sizeof(mine) ? 0 : 1);
	}
	close(fd[1]);
	cr_assert_eq(read(fd[0], &h, sizeof(h)), (ssize_t)sizeof(h));
	close(fd[0]);
	waitpid(pid, NULL, 0);
	return h;
}

/* Symmetric (a reply is hashed like its request, IPv4 and IPv6) and keyed by the process's
 * seed: the same key hashes differently in two processes (the children start before this
 * process drew a seed), so no key set collides on every sensor. */
Test(flow_table, flow_key_hash_symmetric_and_per_process)
{
	struct pkt p, r;
	char src[INET6_ADDRSTRLEN];

	build(&p, IPPROTO_TCP, "192.0.2.7", 51000, "198.51.100.9", 443, SYN, 1, 0, NULL, 0, T0);
	uint64_t a = hash_in_child(&p.pv.key), b = hash_in_child(&p.pv.key);
	cr_assert_neq(a, b, "two processes hashed a key alike: %016llx", (unsigned long long)a);
	for (uint32_t i = 0; i < 2000; i++) {
		if (i % 2)
			crafted_src(i, src, sizeof(src));
		else
			snprintf(src, sizeof(src), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		const char *dst = i % 2 ? "2001:db8::80" : "10.255.0.1";
		build(&p, IPPROTO_TCP, src, (uint16_t)(1024 + i), dst, 443, SYN, 1, 0, NULL, 0, T0);
		build(&r, IPPROTO_TCP, dst, 443, src, (uint16_t)(1024 + i), SYN | ACK, 1, 2, NULL,
		      0, T0);
		cr_assert_eq(flow_key__hash(&p.pv.key), flow_key__hash(&r.pv.key), "key %u", i);
		r.pv.key.sport ^= 1; /* another flow */
		cr_assert_neq(flow_key__hash(&p.pv.key), flow_key__hash(&r.pv.key), "key %u", i);
	}
}
