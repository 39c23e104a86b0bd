/* test_dpi.c - Criterion suite "dpi": the nDPI wrapper on hand-built packets. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <ndpi_api.h>

#include "svcsensor/dpi.h"

#define T0_MS 1700000000000ULL

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* IPv4/UDP packet around payload; returns the IP length. */
static size_t udp4(uint8_t *b, const char *src, uint16_t sport, const char *dst, uint16_t dport,
		   const void *payload, size_t plen)
{
	size_t total = 28 + plen;

	memset(b, 0, 28);
	b[0] = 0x45;
	put16(b + 2, (uint16_t)total);
	b[8] = 64;
	b[9] = IPPROTO_UDP;
	inet_pton(AF_INET, src, b + 12);
	inet_pton(AF_INET, dst, b + 16);
	put16(b + 20, sport);
	put16(b + 22, dport);
	put16(b + 24, (uint16_t)(8 + plen));
	memcpy(b + 28, payload, plen);
	return total;
}

/* DNS query for "www.wikipedia.org" A, or its answer. */
static size_t dns(uint8_t *m, int answer)
{
	static const uint8_t q[] = {3,	 'w', 'w', 'w', 9,   'w', 'i', 'k', 'i', 'p', 'e', 'd',
				    'i', 'a', 3,   'o', 'r', 'g', 0,   0,   1,	 0,   1};
	static const uint8_t an[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 185, 15, 59, 224};
	size_t n = 12;

	memset(m, 0, 12);
	put16(m, 0x4242);
	put16(m + 2, answer ? 0x8180 : 0x0100);
	put16(m + 4, 1);
	put16(m + 6, answer ? 1 : 0);
	memcpy(m + n, q, sizeof(q));
	n += sizeof(q);
	if (answer) {
		memcpy(m + n, an, sizeof(an));
		n += sizeof(an);
	}
	return n;
}

static struct dpi_module *mod;

static void fini(void)
{
	dpi__module_free(mod);
	mod = NULL;
}

TestSuite(dpi, .fini = fini, .timeout = 60);

Test(dpi, dns_names_and_server_name)
{
	struct dpi_opts o = {.guess = true};
	struct dpi_flow f;
	struct flow_record r;
	uint8_t pkt[256], m[200];
	size_t n;

	mod = dpi__module_new(&o);
	cr_assert_not_null(mod);
	cr_assert_eq(dpi__flow_start(mod, &f), 0);
	n = udp4(pkt, "10.42.0.130", 40000, "10.42.0.1", 53, m, dns(m, 0));
	bool fin = dpi__flow_packet(mod, &f, pkt, (uint32_t)n, T0_MS, IPPROTO_UDP);
	if (!fin) {
		n = udp4(pkt, "10.42.0.1", 53, "10.42.0.130", 40000, m, dns(m, 1));
		fin = dpi__flow_packet(mod, &f, pkt, (uint32_t)n, T0_MS + 3, IPPROTO_UDP);
	}
	cr_assert(fin, "DNS query + answer is final");
	cr_assert(f.final);
	cr_assert_null(f.nf, "nDPI state freed once final");
	cr_assert_eq(f.pkts <= 2, 1);

	memset(&r, 0, sizeof(r));
	dpi__flow_fill_record(mod, &f, &r);
	/* wikipedia.org is a known host for nDPI: "DNS.Wikipedia", master DNS. */
	cr_assert_str_eq(r.server_name, "www.wikipedia.org");
	cr_assert(!strcmp(r.app_name, "DNS") || !strncmp(r.app_name, "DNS.", 4), "got %s",
		  r.app_name);
	if (!strcmp(r.app_name, "DNS")) {
		cr_assert_str_eq(r.master_name, "");
		cr_assert_eq(r.master_id, 0);
		cr_assert_eq(r.app_id, NDPI_PROTOCOL_DNS);
	} else {
		cr_assert_str_eq(r.master_name, "DNS");
		cr_assert_eq(r.master_id, NDPI_PROTOCOL_DNS);
	}
	cr_assert_str_neq(r.category, "", "category name");
	cr_assert_not(r.guessed);

	/* A packet after final is ignored. */
	cr_assert(dpi__flow_packet(mod, &f, pkt, (uint32_t)n, T0_MS + 5, IPPROTO_UDP));
	/* The name outlives the nDPI state in its own allocation, released with the flow. */
	cr_assert_str_eq(f.server_name, "www.wikipedia.org");
	dpi__flow_release(mod, &f);
	cr_assert_null(f.server_name);
}

Test(dpi, proto_names)
{
	char buf[64];

	mod = dpi__module_new(NULL);
	cr_assert_not_null(mod);
	cr_assert_str_eq(dpi__proto_name(mod, 0, NDPI_PROTOCOL_DNS, buf, sizeof(buf)), "DNS");
	cr_assert_str_eq(
	    dpi__proto_name(mod, NDPI_PROTOCOL_TLS, NDPI_PROTOCOL_YOUTUBE, buf, sizeof(buf)),
	    "TLS.YouTube");
	cr_assert_str_eq(
	    dpi__proto_name(mod, NDPI_PROTOCOL_HTTP, NDPI_PROTOCOL_HTTP, buf, sizeof(buf)), "HTTP");
	cr_assert_str_eq(dpi__proto_name(mod, 0, 0, buf, sizeof(buf)), "Unknown");
	cr_assert_str_eq(dpi__proto_name(mod, NDPI_PROTOCOL_TLS, NDPI_PROTOCOL_YOUTUBE, buf, 4),
			 "TLS");

	/* Record split for the single-name forms nDPI can return. */
	struct dpi_flow f = {
	    .final = true, .master_id = NDPI_PROTOCOL_HTTP, .app_id = NDPI_PROTOCOL_HTTP};
	struct flow_record r;
	memset(&r, 0, sizeof(r));
	dpi__flow_fill_record(mod, &f, &r);
	cr_assert_str_eq(r.app_name, "HTTP");
	cr_assert_str_eq(r.master_name, "");
	cr_assert_eq(r.app_id, NDPI_PROTOCOL_HTTP);
	cr_assert_eq(r.master_id, 0);
	f.app_id = 0;
	dpi__flow_fill_record(mod, &f, &r);
	cr_assert_str_eq(r.app_name, "HTTP");
	cr_assert_str_eq(r.master_name, "");
	cr_assert_eq(r.app_id, NDPI_PROTOCOL_HTTP);
	f.master_id = NDPI_PROTOCOL_TLS;
	f.app_id = NDPI_PROTOCOL_YOUTUBE;
	dpi__flow_fill_record(mod, &f, &r);
	cr_assert_str_eq(r.app_name, "TLS.YouTube");
	cr_assert_str_eq(r.master_name, "TLS");
	cr_assert_eq(r.master_id, NDPI_PROTOCOL_TLS);
	cr_assert_eq(r.app_id, NDPI_PROTOCOL_YOUTUBE);
}

/* Unclassifiable UDP payload to server:port (the port's default protocol, or the server's
 * address owner, is what a guess can find; no dissector matches the payload). */
static void garbage_flow(int guess, const char *server, uint16_t port, struct flow_record *r,
			 int *final_after)
{
	struct dpi_opts o = {.guess = guess != 0, .udp_max_pkts = 24};
	struct dpi_flow f;
	uint8_t pkt[256], junk[48];
	size_t n;
	int i;

	for (i = 0; i < (int)sizeof(junk); i++)
		junk[i] = (uint8_t)(0xA5 ^ (i * 29));
	mod = dpi__module_new(&o);
	cr_assert_not_null(mod);
	cr_assert_eq(dpi__flow_start(mod, &f), 0);
	*final_after = 0;
	for (i = 1; i <= 30; i++) {
		n = udp4(pkt, i % 2 ? "10.77.0.2" : server, i % 2 ? 40123 : port,
			 i % 2 ? server : "10.77.0.2", i % 2 ? port : 40123, junk, sizeof(junk));
		if (dpi__flow_packet(mod, &f, pkt, (uint32_t)n, T0_MS + (uint64_t)i, IPPROTO_UDP)) {
			*final_after = i;
			break;
		}
	}
	memset(r, 0, sizeof(*r));
	dpi__flow_fill_record(mod, &f, r);
	dpi__flow_release(mod, &f);
}

Test(dpi, unclassifiable_udp_guess_off_is_unknown)
{
	struct flow_record r;
	int after;

	garbage_flow(0, "10.77.0.1", 5060, &r, &after);
	cr_assert_eq(after, 25, "give-up at the 25th packet (cap 24), got %d", after);
	cr_assert_str_eq(r.app_name, "Unknown");
	cr_assert_str_eq(r.master_name, "");
	cr_assert_str_eq(r.category, "Unspecified");
	cr_assert_eq(r.app_id, 0);
	cr_assert_not(r.guessed);
	fini();
	garbage_flow(0, "8.8.8.8", 47000, &r, &after);
	cr_assert_str_eq(r.app_name, "Unknown");
	cr_assert_not(r.guessed);
}

Test(dpi, unclassifiable_udp_guess_on_is_guessed)
{
	struct flow_record r;
	int after;

	garbage_flow(1, "10.77.0.1", 5060, &r, &after);
	cr_assert_eq(after, 25);
	cr_assert_str_eq(r.app_name, "SIP", "guess by port, got %s", r.app_name);
	cr_assert(r.guessed);
	fini();
	garbage_flow(1, "8.8.8.8", 47000, &r, &after);
	cr_assert_str_eq(r.app_name, "Google", "guess by address, got %s", r.app_name);
	cr_assert(r.guessed);
}

Test(dpi, udp_cap_is_a_setting)
{
	struct dpi_opts o = {.guess = false, .udp_max_pkts = 3};
	struct dpi_flow f;
	uint8_t pkt[256], junk[20] = {0x17, 0x99, 0x42};
	size_t n = udp4(pkt, "10.1.1.1", 1234, "10.1.1.2", 4321, junk, sizeof(junk));

	mod = dpi__module_new(&o);
	cr_assert_not_null(mod);
	cr_assert_eq(dpi__flow_start(mod, &f), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_not(dpi__flow_packet(mod, &f, pkt, (uint32_t)n, T0_MS, IPPROTO_UDP));
	cr_assert(dpi__flow_packet(mod, &f, pkt, (uint32_t)n, T0_MS, IPPROTO_UDP));
	cr_assert_eq(f.pkts, 4);
	cr_assert_null(f.nf);
	dpi__flow_release(mod, &f);
}

Test(dpi, giveup_before_final_and_release)
{
	struct dpi_opts o = {.guess = false};
	struct dpi_flow f, g;
	uint8_t pkt[256], junk[20] = {0x17, 0x99};
	struct flow_record r;
	size_t n;

	mod = dpi__module_new(&o);
	cr_assert_not_null(mod);
	cr_assert_eq(dpi__flow_start(mod, &f), 0);
	n = udp4(pkt, "10.1.1.1", 1234, "10.1.1.2", 4321, junk, sizeof(junk));
	cr_assert_not(dpi__flow_packet(mod, &f, pkt, (uint32_t)n, T0_MS, IPPROTO_UDP));
	dpi__flow_giveup(mod, &f);
	cr_assert(f.final);
	cr_assert_null(f.nf);
	memset(&r, 0, sizeof(r));
	dpi__flow_fill_record(mod, &f, &r);
	cr_assert_str_eq(r.app_name, "Unknown");
	dpi__flow_giveup(mod, &f); /* no-op */
	dpi__flow_release(mod, &f);

	cr_assert_eq(dpi__flow_start(mod, &g), 0);
	dpi__flow_release(mod, &g);
	cr_assert(g.final);
	cr_assert_null(g.nf);
}

Test(dpi, snaplen_cut_packet_still_seen)
{
	struct dpi_opts o = {.guess = true};
	struct dpi_flow f;
	struct flow_record r;
	uint8_t pkt[256], m[200];
	size_t n = udp4(pkt, "10.42.0.130", 40000, "10.42.0.1", 53, m, dns(m, 0));
	uint8_t *cut = malloc(40); /* exact size: the IP header says n bytes, 40 were captured */

	cr_assert_gt(n, 40);
	memcpy(cut, pkt, 40);
	mod = dpi__module_new(&o);
	cr_assert_not_null(mod);
	cr_assert_eq(dpi__flow_start(mod, &f), 0);
	dpi__flow_packet(mod, &f, cut, 40, T0_MS, IPPROTO_UDP);
	dpi__flow_giveup(mod, &f);
	memset(&r, 0, sizeof(r));
	dpi__flow_fill_record(mod, &f, &r);
	cr_assert_str_eq(r.app_name, "DNS", "nDPI must see a cut packet, got %s", r.app_name);
	cr_assert_eq(cut[2] << 8 | cut[3], (int)n, "the caller's packet is not modified");
	free(cut);
	dpi__flow_release(mod, &f);
}

/* DNS query (answer = 0) or answer for host (a dotted name), id as the transaction id. */
static size_t dns_for(uint8_t *m, const char *host, uint16_t id, int answer)
{
	static const uint8_t an[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 192, 0, 2, 7};
	size_t n = 12;
	memset(m, 0, 12);
	put16(m, id);
	put16(m + 2, answer ? 0x8180 : 0x0100);
	put16(m + 4, 1);
	put16(m + 6, answer ? 1 : 0);
	for (const char *l = host; *l;) {
		const char *dot = strchr(l, '.');
		size_t len = dot ? (size_t)(dot - l) : strlen(l);
		m[n++] = (uint8_t)len;
		memcpy(m + n, l, len);
		n += len;
		l += len + (dot ? 1 : 0);
	}
	m[n++] = 0;
	put16(m + n, 1);
	put16(m + n + 2, 1);
	n += 4;
	if (answer) {
		memcpy(m + n, an, sizeof(an));
		n += sizeof(an);
	}
	return n;
}

/* Server names are kept once per distinct name and shared by the flows that carry it: the
 * same pointer for one name, each flow's name intact while others come and go (300 names,
 * so the set grows and entries are dropped from the middle of probe runs). */
Test(dpi, server_names_shared_per_name)
{
	enum { FLOWS = 1200, NAMES = 300 };
	static struct dpi_flow f[FLOWS];
	uint8_t pkt[512], m[400];
	char host[64];

	mod = dpi__module_new(NULL);
	cr_assert_not_null(mod);
	for (unsigned i = 0; i < FLOWS; i++) {
		snprintf(host, sizeof(host), "svc%u.example.org", i % NAMES);
		cr_assert_eq(dpi__flow_start(mod, &f[i]), 0);
		uint16_t port = (uint16_t)(20000 + i);
		size_t n = udp4(pkt, "10.42.0.130", port, "10.42.0.1", 53, m,
				dns_for(m, host, (uint16_t)i, 0));
		bool fin = dpi__flow_packet(mod, &f[i], pkt, (uint32_t)n, T0_MS + i, IPPROTO_UDP);
		if (!fin) {
			n = udp4(pkt, "10.42.0.1", 53, "10.42.0.130", port, m,
				 dns_for(m, host, (uint16_t)i, 1));
			fin = dpi__flow_packet(mod, &f[i], pkt, (uint32_t)n, T0_MS + i + 1,
					       IPPROTO_UDP);
		}
		cr_assert(fin, "flow %u: DNS query + answer is final", i);
		cr_assert_not_null(f[i].server_name, "flow %u has no name", i);
		cr_assert_str_eq(f[i].server_name, host);
		if (i >= NAMES)
			cr_assert_eq(f[i].server_name, f[i - NAMES].server_name,
				     "flows %u and %u carry %s in two copies", i, i - NAMES, host);
	}
	/* Release in a scattered order; every flow still held keeps its own name. */
	static bool gone[FLOWS];
	for (unsigned k = 0; k < FLOWS; k++) {
		unsigned i = (k * 7919u) % FLOWS;
		cr_assert_not(gone[i]);
		dpi__flow_release(mod, &f[i]);
		gone[i] = true;
		cr_assert_null(f[i].server_name);
		if (k % 97 == 0)
			for (unsigned j = 0; j < FLOWS; j++) {
				if (gone[j])
					continue;
				snprintf(host, sizeof(host), "svc%u.example.org", j % NAMES);
				cr_assert_str_eq(f[j].server_name, host, "flow %u after %u releases",
						 j, k + 1);
			}
	}
}
