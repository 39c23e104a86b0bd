/* detector_bench.c - throughput of the detector path (host keys, verdict under RCU against the
 * service map, anomaly log, report aggregates), without capture or DPI.
 *
 * Builds a service map of --entries (source, destination, application) entries with
 * svcmap__learn, saves it with svcmap__save to a temporary directory, starts a detector on it
 * (detect mode, console off, anomaly log and report in the temporary directory) and pushes
 * --flows synthetic finished-flow records through detector__flow, then detector__finish.
 * A share of the records (--anomaly-share) leaves the map (new application, unknown source) so
 * the anomaly log is written as in real use.
 *
 * In the same run it times a floor: the map lookups alone (two hostkey__of + svcmap__has_app
 * under rcu_read_lock) over the same records. Prints one line of key=value pairs:
 *   entries= flows= seconds= flows_per_s= floor_per_s= ratio_floor= anomalies=
 * Usage: detector_bench [--entries N] [--flows N] [--anomaly-share F] [--dir DIR]
 */
#include <urcu.h>

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svcsensor/config.h"
#include "svcsensor/detector.h"
#include "svcsensor/flow.h"
#include "svcsensor/service_map.h"

static const char *const remote_apps[] = {
    "TLS.YouTube",
    "TLS.NetFlix",
    "TLS.Google",
    "QUIC.YouTube",
    "TLS.Facebook",
    "TLS.Amazon",
    "TLS.AmazonVideo",
    "TLS.Microsoft",
    "TLS.Microsoft365",
    "TLS.Spotify",
    "TLS.WhatsApp",
    "TLS.Instagram",
    "HTTP",
    "TLS",
    "QUIC.Google",
    "NTP",
};
static const char *const dns_apps[] = {"DNS", "DNS.Google", "DNS.YouTube", "DNS.NetFlix"};
#define N_REMOTE (sizeof(remote_apps) / sizeof(remote_apps[0]))
#define N_DNS (sizeof(dns_apps) / sizeof(dns_apps[0]))
#define PER_SOURCE (N_REMOTE + N_DNS)
#define POOL 16384

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
	return flow__mix64(rng += 0x9e3779b97f4a7c15ULL);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void addr4(uint8_t a[16], uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3)
{
	memset(a, 0, 16);
	a[0] = b0;
	a[1] = b1;
	a[2] = b2;
	a[3] = b3;
}

static void src_addr(uint8_t a[16], uint32_t s, int unknown)
{
	addr4(a, 10, unknown ? 2 : 1, (uint8_t)(s >> 8), (uint8_t)s);
}

static void set_app(struct flow_record *r, const char *app)
{
	snprintf(r->app_name, sizeof r->app_name, "%s", app);
	const char *dot = strchr(app, '.');
	if (dot)
		snprintf(r->master_name, sizeof r->master_name, "%.*s", (int)(dot - app), app);
	else
		r->master_name[0] = 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"entries", required_argument, 0, 'e'},
					   {"flows", required_argument, 0, 'n'},
					   {"anomaly-share", required_argument, 0, 'a'},
					   {"dir", required_argument, 0, 'd'},
					   {0, 0, 0, 0}};
	uint64_t entries = 10000, flows = 5000000;
	double anomaly_share = 0.01;
	const char *dir = NULL;
	char tmpl[] = "/tmp/detector_bench.XXXXXX", path[4096];
	struct flow_record *pool = NULL;
	int c, status = 1;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'e':
			entries = strtoull(optarg, NULL, 10);
			break;
		case 'n':
			flows = strtoull(optarg, NULL, 10);
			break;
		case 'a':
			anomaly_share = strtod(optarg, NULL);
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: detector_bench [--entries N] [--flows N] "
					"[--anomaly-share F] [--dir DIR]\n");
			return 2;
		}
	}
	if (entries < PER_SOURCE || flows == 0) {
		fprintf(stderr, "detector_bench: --entries >= %zu and --flows > 0\n", PER_SOURCE);
		return 2;
	}
	if (!dir && !(dir = mkdtemp(tmpl))) {
		fprintf(stderr, "detector_bench: mkdtemp: %s\n", strerror(errno));
		return 1;
	}

	detector__thread_register();
	struct svc_config cfg;
	if (config__defaults(&cfg)) {
		fprintf(stderr, "detector_bench: config__defaults failed\n");
		return 1;
	}
	cfg.print = PRINT_NONE;
	cfg.report_interval = 0;
	snprintf(path, sizeof path, "%s/map.json", dir);
	config__set_str(&cfg.map_file, path);
	snprintf(path, sizeof path, "%s/anomalies.log", dir);
	config__set_str(&cfg.log_file, path);
	snprintf(path, sizeof path, "%s/report.txt", dir);
	config__set_str(&cfg.report_file, path);
	cfg.log_max_bytes = 1ull << 30;

	/* the map: sources 10.1.x.y, each with 16 remote apps and 4 DNS apps at 10.0.0.1 */
	uint32_t sources = (uint32_t)(entries / PER_SOURCE);
	struct svcmap *m = svcmap__new();
	char sk[HOSTKEY_LEN], dk[HOSTKEY_LEN], rk[HOSTKEY_LEN];
	uint8_t a[16];
	addr4(a, 10, 0, 0, 1);
	hostkey__of(&cfg, a, 4, dk);
	addr4(a, 198, 18, 0, 1);
	hostkey__of(&cfg, a, 4, rk);
	double t0 = now_s();
	for (uint32_t s = 0; m && s < sources; s++) {
		src_addr(a, s, 0);
		hostkey__of(&cfg, a, 4, sk);
		for (size_t i = 0; i < N_REMOTE; i++)
			if (svcmap__learn(m, sk, rk, remote_apps[i], 1000, 1700000000000ull,
					  1700000100000ull))
				goto oom;
		for (size_t i = 0; i < N_DNS; i++)
			if (svcmap__learn(m, sk, dk, dns_apps[i], 100, 1700000000000ull,
					  1700000100000ull))
				goto oom;
	}
	if (!m || svcmap__save(m, cfg.map_file))
		goto oom;
	size_t ns, np, ne;
	svcmap__size(m, &ns, &np, &ne);
	double t_build = now_s() - t0;
	svcmap__free(m);

	/* the records */
	pool = calloc(POOL, sizeof *pool);
	if (!pool)
		goto oom;
	uint64_t anomalies_planned = 0;
	for (uint32_t i = 0; i < POOL; i++) {
		struct flow_record *r = &pool[i];
		uint64_t x = next_rand();
		int anomaly = (double)(x >> 11) / 9007199254740992.0 < anomaly_share;
		uint32_t s = (uint32_t)((x >> 8) % sources);
		int dns = (x & 7) == 0;
		r->key.ipver = 4;
		src_addr(r->key.src, s, anomaly && (x & 0x100));
		if (dns)
			addr4(r->key.dst, 10, 0, 0, 1);
		else
			addr4(r->key.dst, 198, 18, (uint8_t)(x >> 40), (uint8_t)(x >> 48));
		r->key.proto = dns ? 17 : 6;
		r->key.sport = (uint16_t)(1024 + (x >> 16) % 60000);
		r->key.dport = dns ? 53 : 443;
		r->first_us = 1700000000000000ull + i * 1000ull;
		r->last_us = r->first_us + 5000000;
		r->pkts[0] = 10;
		r->pkts[1] = 12;
		r->bytes[0] = 1500;
		r->bytes[1] = 9000;
		r->end_reason = FLOW_END_TCP;
		if (anomaly && !(x & 0x100))
			set_app(r, dns ? "DNS.TikTok" : "TLS.TikTok");
		else
			set_app(r, dns ? dns_apps[(x >> 24) % N_DNS]
				       : remote_apps[(x >> 24) % N_REMOTE]);
		snprintf(r->server_name, sizeof r->server_name, "host%u.example.com", s);
		anomalies_planned += (uint64_t)anomaly;
	}

	/* floor: the lookups alone, on the saved map */
	struct svcmap *lm = svcmap__load(cfg.map_file, NULL);
	if (!lm)
		goto oom;
	uint64_t hits = 0;
	t0 = now_s();
	for (uint64_t i = 0; i < flows; i++) {
		const struct flow_record *r = &pool[i & (POOL - 1)];
		rcu_read_lock();
		hostkey__of(&cfg, r->key.src, r->key.ipver, sk);
		hostkey__of(&cfg, r->key.dst, r->key.ipver, dk);
		hits += svcmap__has_app(lm, sk, dk, r->app_name);
		rcu_read_unlock();
	}
	double t_floor = now_s() - t0;
	svcmap__free(lm);

	/* the detector */
	struct detector *d = detector__new(&cfg, false, NULL);
	if (!d)
		goto out;
	t0 = now_s();
	for (uint64_t i = 0; i < flows; i++)
		detector__flow(d, &pool[i & (POOL - 1)]);
	double t_flows = now_s() - t0;
	int frc = detector__finish(d);
	double t_total = now_s() - t0;
	const struct detector_stats *st = detector__stats(d);
	uint64_t anomalies = st->flows - st->per_verdict[VERDICT_NONE];

	printf("entries=%zu sources=%zu flows=%llu seconds=%.4f flows_per_s=%.0f "
	       "with_finish_per_s=%.0f floor_per_s=%.0f ratio_floor=%.3f anomalies=%llu "
	       "map_build_s=%.3f lookup_hits=%llu finish_rc=%d\n",
	       ne, ns, (unsigned long long)flows, t_flows, (double)flows / t_flows,
	       (double)flows / t_total, (double)flows / t_floor, t_flows / t_floor,
	       (unsigned long long)anomalies, t_build, (unsigned long long)hits, frc);
	(void)anomalies_planned;
	detector__free(d);
	status = frc ? 1 : 0;
	goto out;
oom:
	fprintf(stderr, "detector_bench: building the map failed (out of memory or save error)\n");
out:
	free(pool);
	config__free(&cfg);
	detector__thread_unregister();
	if (dir == tmpl) {
		const char *files[] = {"map.json", "anomalies.log", "report.txt",
				       "report.txt.json"};
		for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
			snprintf(path, sizeof path, "%s/%s", dir, files[i]);
			unlink(path);
		}
		rmdir(dir);
	}
	return status;
}
