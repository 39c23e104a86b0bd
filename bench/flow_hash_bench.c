/* flow_hash_bench.c - per-packet cost of the flow table under crafted keys, and the seeded
 * flow_key__hash (include/svcsensor/hash.h) against the unseeded hash it replaced.
 *
 * Two key sets of --flows IPv6 TCP flows to one server port, differing only in the source
 * address: "random" sources, and "crafted" sources that all share one value of the old hash
 * (lo = C ^ mix(hi): the old address fold mix(lo ^ mix(hi)) is then mix(C) for every hi).
 * For each hash (old: written out below and handed to flow_table__packet_hashed; new:
 * flow_table__packet, which computes flow_key__hash itself) and each key set, a fresh table
 * (default size) gets one SYN per flow, then --packets ACKs of those flows in a random order;
 * the ACK phase is timed (ns per packet, median of --runs). The packet views carry no IP
 * header (l3 NULL), so nDPI sees nothing: this is the table's own cost (hash, chain walk,
 * counters, lists). The old hash on crafted keys walks one chain of all the flows per
 * packet, so it is timed on --packets / 100 packets.
 *
 * Output: the figures, then one line of key=value pairs:
 *   flows= packets= hash_ns_old= hash_ns_new= rand_ns_old= rand_ns_new= crafted_ns_old=
 *   crafted_ns_new= new_over_old_random= new_over_old_random_min= crafted_over_random_new=
 *   crafted_over_random_new_min= crafted_over_random_old= chain_max_new_crafted=
 *   chain_max_old_crafted=
 * (medians of the runs; _min: the ratio of the fastest runs). crafted_over_random_new near
 * 1.0 means crafted keys cost what random ones do.
 * Usage: flow_hash_bench [--flows N] [--packets N] [--runs N]
 */
#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svcsensor/flow_table.h"

/* ---- the old (unseeded) flow key hash, as flow_hash.h defined it (its address fold,
 * flow__addr_fold, is still there: the steering hash uses it) ---- */

static inline uint64_t old_hash(const struct flow_key *k)
{
	uint64_t a = flow__addr_fold(k->src) ^ ((uint64_t)k->sport << 32);
	uint64_t b = flow__addr_fold(k->dst) ^ ((uint64_t)k->dport << 32);
	uint64_t rest = ((uint64_t)k->vlan << 16) | ((uint64_t)k->proto << 8) | k->ipver;
	return flow__mix64((a + b) ^ flow__mix64(a ^ b) ^ flow__mix64(rest));
}

/* ---- keys and packets ---- */

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t next_rand(void)
{
	return flow__mix64(rng += 0x9e3779b97f4a7c15ULL);
}

static const uint8_t server[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x80};

static void make_key(struct flow_key *k, int crafted)
{
	uint64_t hi = next_rand(),
		 lo = crafted ? 0x20010db8cafe0000ULL ^ flow__mix64(hi) : next_rand();
	memset(k, 0, sizeof(*k));
	memcpy(k->src, &lo, 8);
	memcpy(k->src + 8, &hi, 8);
	memcpy(k->dst, server, 16);
	k->sport = 40000;
	k->dport = 443;
	k->proto = IPPROTO_TCP;
	k->ipver = 6;
}

static void drop(void *ctx, struct flow_record *r)
{
	(void)ctx;
	flow_record__free(r);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

struct set {
	struct pkt_view *syn, *ack; /* per flow: first packet, later packets */
	uint32_t *order;	    /* flow of each timed packet */
};

/* One run: a fresh table, a SYN per flow, then n timed ACKs. ns per ACK; *chain the longest
 * walk seen. */
static double run_once(const struct set *s, uint32_t flows, uint32_t n, int old, uint64_t *chain)
{
	struct flow_table_opts o;
	flow_table__opts_default(&o);
	struct flow_table *t = flow_table__new(&o, drop, NULL);
	if (!t)
		exit(1);
	for (uint32_t i = 0; i < flows; i++) {
		if (old)
			flow_table__packet_hashed(t, &s->syn[i], old_hash(&s->syn[i].key));
		else
			flow_table__packet(t, &s->syn[i]);
	}
	double t0 = now_ns();
	for (uint32_t j = 0; j < n; j++) {
		const struct pkt_view *pv = &s->ack[s->order[j]];
		if (old)
			flow_table__packet_hashed(t, pv, old_hash(&pv->key));
		else
			flow_table__packet(t, pv);
	}
	double dt = now_ns() - t0;
	*chain = flow_table__stats(t)->chain_max;
	if (flow_table__stats(t)->flows_created != flows) {
		fprintf(stderr, "flow_hash_bench: %llu flows created, %u expected\n",
			(unsigned long long)flow_table__stats(t)->flows_created, flows);
		exit(1);
	}
	flow_table__free(t);
	return dt / n;
}

/* The hashes alone over the keys of s: ns per key. */
static double hash_once(const struct set *s, uint32_t flows, int old)
{
	volatile uint64_t sink = 0;
	uint64_t acc = 0;
	double t0 = now_ns();
	for (int r = 0; r < 20; r++)
		for (uint32_t i = 0; i < flows; i++)
			acc += old ? old_hash(&s->ack[i].key) : flow_key__hash(&s->ack[i].key);
	sink = acc;
	(void)sink;
	return (now_ns() - t0) / (20.0 * flows);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void build_set(struct set *s, int crafted, uint32_t flows, uint32_t packets)
{
	s->syn = calloc(flows, sizeof(*s->syn));
	s->ack = calloc(flows, sizeof(*s->ack));
	s->order = malloc((size_t)packets * sizeof(*s->order));
	if (!s->syn || !s->ack || !s->order) {
		fprintf(stderr, "flow_hash_bench: out of memory\n");
		exit(1);
	}
	for (uint32_t i = 0; i < flows; i++) {
		make_key(&s->syn[i].key, crafted);
		s->syn[i].ts_us = 1700000000000000ULL + i;
		s->syn[i].ip_len = 60;
		s->syn[i].tcp_flags = 0x02;
		s->ack[i] = s->syn[i];
		s->ack[i].tcp_flags = 0x10;
		s->ack[i].ip_len = 52;
	}
	for (uint32_t j = 0; j < packets; j++)
		s->order[j] = (uint32_t)(((next_rand() >> 32) * flows) >> 32);
}

int main(int argc, char **argv)
{
	uint32_t flows = 20000, packets = 1000000;
	int runs = 7;
	static const struct option lo[] = {{"flows", required_argument, 0, 'f'},
					   {"packets", required_argument, 0, 'p'},
					   {"runs", required_argument, 0, 'r'},
					   {0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'f')
			flows = (uint32_t)strtoul(optarg, NULL, 10);
		else if (c == 'p')
			packets = (uint32_t)strtoul(optarg, NULL, 10);
		else if (c == 'r')
			runs = atoi(optarg);
		else {
			fprintf(stderr,
				"usage: flow_hash_bench [--flows N] [--packets N] [--runs N]\n");
			return 2;
		}
	}
	if (flows < 1 || flows > FLOW_TABLE_DEFAULT_MAX_FLOWS || packets < 100 || runs < 1 ||
	    runs > 99) {
		fprintf(stderr, "flow_hash_bench: --flows 1..%u, --packets >= 100, --runs 1..99\n",
			FLOW_TABLE_DEFAULT_MAX_FLOWS);
		return 2;
	}

	struct set sets[2]; /* 0 random, 1 crafted */
	build_set(&sets[0], 0, flows, packets);
	build_set(&sets[1], 1, flows, packets);
	for (uint32_t i = 1; i < flows; i++)
		if (old_hash(&sets[1].syn[i].key) != old_hash(&sets[1].syn[0].key)) {
			fprintf(stderr,
				"flow_hash_bench: crafted key %u misses the old collision\n", i);
			return 1;
		}

	/* [hash old/new][set] per run, interleaved so that machine noise hits all alike. */
	double pkt[2][2][99], hsh[2][99];
	uint64_t chain[2][2] = {{0}};
	/* Which hash goes first alternates between runs; the old hash on crafted keys (seconds of
	 * chain walks) comes last, so it never precedes a measure of the same run. */
	for (int r = 0; r < runs; r++) {
		for (int i = 0; i < 2; i++) {
			int h = i ^ (r & 1);
			hsh[h][r] = hash_once(&sets[0], flows, h == 0);
		}
		for (int i = 0; i < 2; i++) {
			int h = i ^ (r & 1);
			pkt[h][0][r] = run_once(&sets[0], flows, packets, h == 0, &chain[h][0]);
		}
		pkt[1][1][r] = run_once(&sets[1], flows, packets, 0, &chain[1][1]);
		pkt[0][1][r] = run_once(&sets[1], flows, packets / 100, 1, &chain[0][1]);
	}
	/* Medians, and minima (the run least disturbed by other processes: on a busy machine
	 * the ratio of minima is the steadier one). */
	double hm[2], pm[2][2], pmin[2][2];
	for (int h = 0; h < 2; h++) {
		hm[h] = median(hsh[h], runs);
		for (int k = 0; k < 2; k++) {
			pm[h][k] = median(pkt[h][k], runs); /* sorts: [0] is the minimum */
			pmin[h][k] = pkt[h][k][0];
		}
	}
	printf("flow_hash_bench: %u IPv6 flows, %u packets per run (old hash on crafted keys: %u), "
	       "median (min) of %d runs\n",
	       flows, packets, packets / 100, runs);
	printf("  %-32s %18s %18s %14s\n", "", "old hash", "new hash", "new/old");
	printf("  %-32s %18.2f %18.2f %14.2f\n", "hash alone, ns/key", hm[0], hm[1], hm[1] / hm[0]);
	printf("  %-32s %9.2f (%6.2f) %9.2f (%6.2f) %5.2f (%5.2f)\n",
	       "table, random keys, ns/packet", pm[0][0], pmin[0][0], pm[1][0], pmin[1][0],
	       pm[1][0] / pm[0][0], pmin[1][0] / pmin[0][0]);
	printf("  %-32s %9.0f (%6.0f) %9.2f (%6.2f)\n", "table, crafted keys, ns/packet", pm[0][1],
	       pmin[0][1], pm[1][1], pmin[1][1]);
	printf("  %-32s %9.1f (%6.1f) %9.2f (%6.2f)\n", "crafted / random", pm[0][1] / pm[0][0],
	       pmin[0][1] / pmin[0][0], pm[1][1] / pm[1][0], pmin[1][1] / pmin[1][0]);
	printf("  %-32s %18llu %18llu\n", "longest chain walked, crafted",
	       (unsigned long long)chain[0][1], (unsigned long long)chain[1][1]);
	printf("  %-32s %18llu %18llu\n", "longest chain walked, random",
	       (unsigned long long)chain[0][0], (unsigned long long)chain[1][0]);
	printf("flows=%u packets=%u hash_ns_old=%.2f hash_ns_new=%.2f rand_ns_old=%.2f "
	       "rand_ns_new=%.2f crafted_ns_old=%.2f crafted_ns_new=%.2f new_over_old_random=%.3f "
	       "new_over_old_random_min=%.3f crafted_over_random_new=%.3f "
	       "crafted_over_random_new_min=%.3f crafted_over_random_old=%.1f "
	       "chain_max_new_crafted=%llu chain_max_old_crafted=%llu\n",
	       flows, packets, hm[0], hm[1], pm[0][0], pm[1][0], pm[0][1], pm[1][1],
	       pm[1][0] / pm[0][0], pmin[1][0] / pmin[0][0], pm[1][1] / pm[1][0],
	       pmin[1][1] / pmin[1][0], pm[0][1] / pm[0][0], (unsigned long long)chain[1][1],
	       (unsigned long long)chain[0][1]);
	for (int k = 0; k < 2; k++) {
		free(sets[k].syn);
		free(sets[k].ack);
		free(sets[k].order);
	}
	return 0;
}
