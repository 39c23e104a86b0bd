/* test_detector.c - the detector: learn, save, judge each verdict, missing / broken map, reload
 * under load, periodic saves. */
#include <urcu.h> /* the flavour of the service map */

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "test_util.h"
#include "svcsensor/config.h"
#include "svcsensor/detector.h"
#include "svcsensor/flow.h"

/* ---- fixture ---- */

struct fx {
	char *dir;
	char *map, *log, *report;
	struct svc_config cfg;
	char *out; /* console output (memstream) */
	size_t out_len;
	FILE *console;
};

static void fx_init(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	f->dir = strdup("/tmp/svcsensor-detector-XXXXXX");
	cr_assert_not_null(mkdtemp(f->dir));
	f->map = path_in(f->dir, "map.json");
	f->log = path_in(f->dir, "anomalies.log");
	f->report = path_in(f->dir, "report.txt");
	cr_assert_eq(config__defaults(&f->cfg), 0);
	/* The seed's network: 10.42.0.0/24 is local, everything else is "remote". */
	free(f->cfg.local_networks);
	f->cfg.local_networks = calloc(1, sizeof(struct cidr));
	f->cfg.n_local_networks = 1;
	cr_assert_eq(config__parse_cidr("10.42.0.0/24", &f->cfg.local_networks[0]), 0);
	f->cfg.remote_mode = REMOTE_COLLAPSE;
	for (size_t i = 0; i < f->cfg.n_minor_masters; i++)
		free(f->cfg.minor_masters[i]);
	free(f->cfg.minor_masters);
	f->cfg.minor_masters = calloc(2, sizeof(char *));
	f->cfg.minor_masters[0] = strdup("DNS");
	f->cfg.minor_masters[1] = strdup("TLS");
	f->cfg.n_minor_masters = 2;
	cr_assert_eq(config__set_str(&f->cfg.map_file, f->map), 0);
	cr_assert_eq(config__set_str(&f->cfg.log_file, f->log), 0);
	cr_assert_eq(config__set_str(&f->cfg.report_file, f->report), 0);
	f->cfg.log_max_bytes = 1 << 20;
	f->cfg.log_keep = 3;
	f->cfg.report_interval = 0;
	f->cfg.learn_save_interval = 0;
	f->cfg.print = PRINT_ALL;
	f->console = open_memstream(&f->out, &f->out_len);
	cr_assert_not_null(f->console);
	detector__thread_register();
}

static void fx_fini(struct fx *f)
{
	if (f->console)
		fclose(f->console);
	free(f->out);
	config__free(&f->cfg);
	rm_rf(f->dir);
	free(f->dir);
	free(f->map);
	free(f->log);
	free(f->report);
	detector__thread_unregister();
}

/* The console text so far. */
static const char *fx_console(struct fx *f)
{
	fflush(f->console);
	return f->out ? f->out : "";
}

static struct flow_record *mkrec(const char *src, const char *dst, uint8_t proto, const char *app,
				 const char *master, uint64_t bytes)
{
	static uint16_t port = 40000;
	struct flow_record *r = flow_record__new();
	cr_assert_not_null(r);
	r->key.ipver = 4;
	cr_assert_eq(inet_pton(AF_INET, src, r->key.src), 1);
	cr_assert_eq(inet_pton(AF_INET, dst, r->key.dst), 1);
	r->key.proto = proto;
	r->key.sport = proto == 1 ? 0 : port++;
	r->key.dport = proto == 1 ? 0 : 443;
	r->first_us = 1700000000000000ULL;
	r->last_us = 1700000001500000ULL;
	r->pkts[0] = 4;
	r->pkts[1] = 3;
	r->bytes[0] = bytes / 2;
	r->bytes[1] = bytes - bytes / 2;
	snprintf(r->app_name, sizeof(r->app_name), "%s", app);
	snprintf(r->master_name, sizeof(r->master_name), "%s", master);
	return r;
}

static enum verdict judge(struct detector *d, const char *src, const char *dst, uint8_t proto,
			  const char *app, const char *master, uint64_t bytes)
{
	struct flow_record *r = mkrec(src, dst, proto, app, master, bytes);
	enum verdict v = detector__flow(d, r);
	flow_record__free(r);
	return v;
}

/* The example map of tests/test_verdict.c: 10.42.0.130 -> 10.42.0.1 {DNS, DNS.Google}, -> remote {TLS.Amazon}. */
static void learn_spec_map(struct fx *f)
{
	struct detector *d = detector__new(&f->cfg, true, f->console);
	cr_assert_not_null(d);
	cr_assert_eq(judge(d, "10.42.0.130", "10.42.0.1", 17, "DNS", "DNS", 100), VERDICT_NONE);
	cr_assert_eq(judge(d, "10.42.0.130", "10.42.0.1", 17, "DNS.Google", "DNS", 120),
		     VERDICT_NONE);
	cr_assert_eq(judge(d, "10.42.0.130", "52.95.1.1", 6, "TLS.Amazon", "TLS", 5000),
		     VERDICT_NONE);
	cr_assert_eq(judge(d, "10.42.0.130", "54.1.2.3", 6, "TLS.Amazon", "TLS", 7000),
		     VERDICT_NONE);
	cr_assert_eq(detector__stats(d)->flows, 4);
	cr_assert_eq(detector__finish(d), 0);
	detector__free(d);
}

static unsigned file_lines(const char *path)
{
	FILE *fp = fopen(path, "r");
	if (!fp)
		return 0;
	unsigned n = 0;
	int ch;
	while ((ch = fgetc(fp)) != EOF)
		n += ch == '\n';
	fclose(fp);
	return n;
}

/* The file at path, which must exist (freed by the caller). */
static char *must_read(const char *path)
{
	char *buf = read_all(path);
	cr_assert_not_null(buf, "%s missing", path);
	return buf;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	cr_assert_not_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* ---- tests ---- */

Test(detector, learn_then_detect_each_verdict, .init = cr_redirect_stderr)
{
	struct fx f;
	fx_init(&f);
	learn_spec_map(&f);
	cr_assert_str_eq(
	    fx_console(&f),
	    "  0. 10.42.0.130     --> 10.42.0.1       , DNS                  | LEARNED\n"
	    "  1. 10.42.0.130     --> 10.42.0.1       , DNS.Google           | LEARNED\n"
	    "  2. 10.42.0.130     --> remote          , TLS.Amazon           | LEARNED\n"
	    "  3. 10.42.0.130     --> remote          , TLS.Amazon           | LEARNED\n");
	/* The learned map is in the file, and the learn-mode report shows it as NONE flows. */
	json_error_t err;
	json_t *map = json_load_file(f.map, 0, &err);
	cr_assert_not_null(map, "%s", err.text);
	json_t *remote = json_object_get(
	    json_object_get(json_object_get(map, "sources"), "10.42.0.130"), "remote");
	cr_assert_not_null(json_object_get(remote, "TLS.Amazon"));
	cr_assert_eq(
	    json_integer_value(json_object_get(json_object_get(remote, "TLS.Amazon"), "bytes")),
	    12000);
	json_decref(map);
	char *rep = must_read(f.report);
	cr_assert_str_eq(
	    rep, "+++++++ NONE anomaly flows +++++++\n"
		 "+ 10.42.0.130     exchange     12220 bytes with: \n"
		 "\t - remote         ,     12000 bytes (98.20%) using ['TLS.Amazon']\n"
		 "\t - 10.42.0.1      ,       220 bytes (1.80%) using ['DNS', 'DNS.Google']\n"
		 "\n"
		 "+++++++ On 4 flows, 0 anomalies +++++++\n");
	free(rep);
	fclose(f.console);
	free(f.out);
	f.out = NULL;
	f.console = open_memstream(&f.out, &f.out_len);

	/* Detect mode over the saved map: the example map's flows, one per verdict. */
	struct detector *d = detector__new(&f.cfg, false, f.console);
	cr_assert_not_null(d);
	cr_assert_eq(judge(d, "10.42.0.130", "8.8.4.4", 6, "BitTorrent", "", 900),
		     VERDICT_PROTOCOL_NEVER_USED);
	cr_assert_eq(judge(d, "10.42.0.130", "10.42.0.1", 17, "DNS.Wikipedia", "DNS", 90),
		     VERDICT_DNS_TLS_APPLICATION);
	cr_assert_eq(judge(d, "10.42.0.130", "10.42.0.96", 17, "Unknown", "", 300),
		     VERDICT_UNKNOWN_DESTINATION_IP);
	cr_assert_eq(judge(d, "10.42.0.1", "10.42.0.130", 1, "ICMP", "", 84),
		     VERDICT_UNKNOWN_SOURCE_IP);
	cr_assert_eq(judge(d, "10.42.0.130", "1.1.1.1", 17, "Unknown", "", 60),
		     VERDICT_UNKNOWN_PROTOCOL);
	cr_assert_eq(judge(d, "10.42.0.130", "13.32.0.1", 6, "TLS.Amazon", "TLS", 4000),
		     VERDICT_NONE);
	cr_assert_eq(judge(d, "10.42.0.130", "10.42.0.1", 17, "DNS.Google", "DNS", 100),
		     VERDICT_NONE);
	const struct detector_stats *st = detector__stats(d);
	cr_assert_eq(st->flows, 7);
	cr_assert_eq(st->per_verdict[VERDICT_NONE], 2);
	cr_assert_eq(st->per_verdict[VERDICT_PROTOCOL_NEVER_USED], 1);
	cr_assert_eq(st->per_verdict[VERDICT_DNS_TLS_APPLICATION], 1);
	cr_assert_eq(st->per_verdict[VERDICT_UNKNOWN_DESTINATION_IP], 1);
	cr_assert_eq(st->per_verdict[VERDICT_UNKNOWN_SOURCE_IP], 1);
	cr_assert_eq(st->per_verdict[VERDICT_UNKNOWN_PROTOCOL], 1);
	cr_assert_eq(st->output_lost, 0);
	cr_assert_eq(detector__finish(d), 0);
	cr_assert_str_eq(
	    fx_console(&f),
	    "  0. 10.42.0.130     --> remote          , BitTorrent           | PROTOCOL NEVER "
	    "USED\n"
	    "  1. 10.42.0.130     --> 10.42.0.1       , DNS.Wikipedia        | DNS/TLS "
	    "APPLICATION\n"
	    "  2. 10.42.0.130     --> 10.42.0.96      , Unknown              | UNKNOWN DESTINATION "
	    "IP\n"
	    "  3. 10.42.0.1       --> 10.42.0.130     , ICMP                 | UNKNOWN SOURCE IP\n"
	    "  4. 10.42.0.130     --> remote          , Unknown              | UNKNOWN PROTOCOL\n"
	    "  5. 10.42.0.130     --> remote          , TLS.Amazon           | NONE\n"
	    "  6. 10.42.0.130     --> 10.42.0.1       , DNS.Google           | NONE\n");
	/* The anomaly log: the five anomalies in order, nothing for NONE. */
	static const char *const expect[] = {"PROTOCOL_NEVER_USED", "DNS_TLS_APPLICATION",
					     "UNKNOWN_DESTINATION_IP", "UNKNOWN_SOURCE_IP",
					     "UNKNOWN_PROTOCOL"};
	char *log = must_read(f.log);
	unsigned i = 0;
	for (char *save = NULL, *line = strtok_r(log, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), i++) {
		json_t *o = json_loads(line, 0, &err);
		cr_assert_not_null(o, "%s", err.text);
		cr_assert_lt(i, 5);
		cr_assert_str_eq(json_string_value(json_object_get(o, "verdict")), expect[i]);
		json_decref(o);
	}
	cr_assert_eq(i, 5);
	free(log);
	rep = must_read(f.report);
	cr_assert(strstr(rep, "+++++++ On 7 flows, 5 anomalies +++++++\n"), "%s", rep);
	cr_assert(strstr(rep, "+++++++ UNKNOWN SOURCE IP anomaly flows +++++++\n"
			      "+ 10.42.0.1       exchange        84 bytes with: \n"
			      "\t - 10.42.0.130    ,        84 bytes (100.00%) using ['ICMP']\n"),
		  "%s", rep);
	free(rep);
	char *json_path = path_in(f.dir, "report.txt.json");
	cr_assert_eq(access(json_path, R_OK), 0);
	free(json_path);
	detector__free(d);
	fx_fini(&f);
}

Test(detector, print_anomalies_only, .init = cr_redirect_stderr)
{
	struct fx f;
	fx_init(&f);
	learn_spec_map(&f);
	fclose(f.console);
	free(f.out);
	f.out = NULL;
	f.console = open_memstream(&f.out, &f.out_len);
	f.cfg.print = PRINT_ANOMALIES;
	struct detector *d = detector__new(&f.cfg, false, f.console);
	cr_assert_not_null(d);
	judge(d, "10.42.0.130", "10.42.0.1", 17, "DNS", "DNS", 80);
	judge(d, "10.42.0.130", "8.8.4.4", 6, "SSH", "", 900);
	judge(d, "10.42.0.130", "10.42.0.1", 17, "DNS", "DNS", 80);
	detector__tick(d, 1000); /* flushes the console */
	cr_assert_str_eq(f.out ? f.out : "", "  1. 10.42.0.130     --> remote          , SSH       "
					     "           | PROTOCOL NEVER USED\n");
	detector__free(d);
	fx_fini(&f);
}

Test(detector, missing_map_warns_once_and_gives_unknown_source, .init = cr_redirect_stderr)
{
	struct fx f;
	fx_init(&f);
	struct detector *d = detector__new(&f.cfg, false, NULL);
	cr_assert_not_null(d);
	cr_assert_eq(judge(d, "10.42.0.130", "10.42.0.1", 17, "DNS", "DNS", 80),
		     VERDICT_UNKNOWN_SOURCE_IP);
	cr_assert_eq(judge(d, "10.42.0.130", "8.8.8.8", 6, "TLS", "TLS", 80),
		     VERDICT_UNKNOWN_SOURCE_IP);
	cr_assert_eq(detector__stats(d)->per_verdict[VERDICT_UNKNOWN_SOURCE_IP], 2);
	detector__free(d);
	fflush(stderr);
	char *expected = NULL;
	cr_assert(asprintf(&expected,
			   "svcsensor: warning: %s: no service map yet, every flow will be "
			   "UNKNOWN_SOURCE_IP\n",
			   f.map) > 0);
	cr_assert_stderr_eq_str(expected);
	free(expected);
	fx_fini(&f);
}

Test(detector, broken_map_fails_new, .init = cr_redirect_stderr)
{
	struct fx f;
	fx_init(&f);
	write_file(f.map, "{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": "
			  "{\"10.42.0.130\": [1, 2]");
	cr_assert_null(detector__new(&f.cfg, false, NULL));
	cr_assert_null(detector__new(&f.cfg, true, NULL),
		       "learn mode must not overwrite a broken map");
	/* The broken file is left as it was. */
	char *text = must_read(f.map);
	cr_assert(strstr(text, "[1, 2]"));
	free(text);
	fx_fini(&f);
}

Test(detector, unwritable_log_fails_new, .init = cr_redirect_stderr)
{
	struct fx f;
	fx_init(&f);
	cr_assert_eq(config__set_str(&f.cfg.log_file, "/nonexistent-dir/anomalies.log"), 0);
	cr_assert_null(detector__new(&f.cfg, false, NULL));
	fx_fini(&f);
}

Test(detector, learn_merges_into_existing_map, .init = cr_redirect_stderr)
{
	struct fx f;
	fx_init(&f);
	learn_spec_map(&f);
	struct detector *d = detector__new(&f.cfg, true, NULL);
	cr_assert_not_null(d);
	judge(d, "10.42.0.130", "8.8.8.8", 17, "QUIC.YouTube", "QUIC", 3000);
	judge(d, "10.42.0.77", "10.42.0.1", 17, "DNS", "DNS", 70);
	cr_assert_eq(detector__finish(d), 0);
	detector__free(d);

	d = detector__new(&f.cfg, false, NULL);
	cr_assert_not_null(d);
	cr_assert_eq(judge(d, "10.42.0.130", "1.2.3.4", 6, "TLS.Amazon", "TLS", 10), VERDICT_NONE);
	cr_assert_eq(judge(d, "10.42.0.130", "1.2.3.4", 17, "QUIC.YouTube", "QUIC", 10),
		     VERDICT_NONE);
	cr_assert_eq(judge(d, "10.42.0.77", "10.42.0.1", 17, "DNS", "DNS", 10), VERDICT_NONE);
	cr_assert_eq(judge(d, "10.42.0.77", "10.42.0.1", 17, "DNS.Google", "DNS", 10),
		     VERDICT_DNS_TLS_APPLICATION);
	detector__free(d);
	fx_fini(&f);
}

Test(detector, allow_rule_silences_an_anomaly, .init = cr_redirect_stderr)
{
	struct fx f;
	fx_init(&f);
	learn_spec_map(&f);
	f.cfg.allow = calloc(1, sizeof(struct allow_rule));
	f.cfg.allow[0].src = strdup("10.42.0.130");
	f.cfg.allow[0].app = strdup("SSH");
	f.cfg.n_allow = 1;
	struct detector *d = detector__new(&f.cfg, false, NULL);
	cr_assert_not_null(d);
	cr_assert_eq(judge(d, "10.42.0.130", "8.8.4.4", 6, "SSH", "", 900), VERDICT_NONE);
	cr_assert_eq(judge(d, "10.42.0.130", "8.8.4.4", 6, "BitTorrent", "", 900),
		     VERDICT_PROTOCOL_NEVER_USED);
	cr_assert_eq(detector__stats(d)->allowed, 1);
	cr_assert_eq(detector__stats(d)->per_verdict[VERDICT_NONE], 1);
	detector__free(d);
	cr_assert_eq(file_lines(f.log), 1);
	fx_fini(&f);
}

/* The map reload runs on the loader thread of src/map/holder.c: tick (which collects its
 * counters) until they reach done and failed, for at most 10 s, then check them. */
static void wait_reloads(struct detector *d, uint64_t now_s, uint64_t done, uint64_t failed)
{
	for (unsigned ms = 0; ms < 10000; ms++) {
		detector__tick(d, now_s);
		const struct detector_stats *st = detector__stats(d);
		if (st->map_reloads >= done && st->map_reload_failures >= failed)
			break;
		usleep(1000);
	}
	cr_assert_eq(detector__stats(d)->map_reloads, done);
	cr_assert_eq(detector__stats(d)->map_reload_failures, failed);
}

/* Learn-mode saves run on the saver thread of src/map/holder.c: wait (at most 10 s) until the
 * file at path holds needle. */
static bool wait_file_with(const char *path, const char *needle)
{
	for (unsigned ms = 0; ms < 10000; ms++) {
		FILE *fp = fopen(path, "r");
		if (fp) {
			char *buf = NULL;
			size_t len = 0;
			bool found = getdelim(&buf, &len, '\0', fp) > 0 && strstr(buf, needle);
			free(buf);
			fclose(fp);
			if (found)
				return true;
		}
		usleep(1000);
	}
	return false;
}

/* Reload under load: a second thread keeps asking for reloads while this thread judges; every
 * record is judged exactly once and against a whole map. */
struct reloader {
	struct detector *d;
	atomic_bool stop;
	atomic_ulong requests;
};

static void *reload_loop(void *arg)
{
	struct reloader *r = arg;
	while (!atomic_load(&r->stop)) {
		detector__request_reload(r->d);
		atomic_fetch_add(&r->requests, 1);
		usleep(200);
	}
	return NULL;
}

Test(detector, reload_under_load_loses_nothing, .init = cr_redirect_stderr)
{
	struct fx f;
	fx_init(&f);
	learn_spec_map(&f);
	f.cfg.log_max_bytes = 512 * 1024; /* several rotations, none dropped */
	f.cfg.log_keep = 100;
	struct detector *d = detector__new(&f.cfg, false, NULL);
	cr_assert_not_null(d);
	struct reloader rl = {.d = d};
	atomic_init(&rl.stop, false);
	atomic_init(&rl.requests, 0);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, reload_loop, &rl), 0);

	/* At least 20000 records, and on (up to 200000) until the loader thread has swapped in
	 * more than 10 maps while this thread judged: reloads no longer slow the judging down. */
	unsigned n = 0, anomalies = 0;
	for (unsigned i = 0;; i++) {
		if (i % 1000 == 0 && i >= 20000 &&
		    (detector__stats(d)->map_reloads > 10 || i >= 200000)) {
			n = i;
			break;
		}
		enum verdict v;
		switch (i % 4) {
		case 0:
			v = judge(d, "10.42.0.130", "10.42.0.1", 17, "DNS", "DNS", 100);
			cr_assert_eq(v, VERDICT_NONE, "record %u", i);
			break;
		case 1:
			v = judge(d, "10.42.0.130", "8.8.8.8", 6, "TLS.Amazon", "TLS", 1000);
			cr_assert_eq(v, VERDICT_NONE, "record %u", i);
			break;
		case 2:
			v = judge(d, "10.42.0.130", "8.8.8.8", 6, "BitTorrent", "", 700);
			cr_assert_eq(v, VERDICT_PROTOCOL_NEVER_USED, "record %u", i);
			anomalies++;
			break;
		default:
			v = judge(d, "10.42.0.9", "10.42.0.130", 1, "ICMP", "", 84);
			cr_assert_eq(v, VERDICT_UNKNOWN_SOURCE_IP, "record %u", i);
			anomalies++;
			break;
		}
		if (i % 1000 == 0)
			detector__tick(d, 1000 + i / 1000);
	}
	atomic_store(&rl.stop, true);
	pthread_join(t, NULL);
	const struct detector_stats *st = detector__stats(d);
	cr_assert_eq(st->flows, n);
	uint64_t sum = 0;
	for (unsigned v = 0; v < VERDICT__COUNT; v++)
		sum += st->per_verdict[v];
	cr_assert_eq(sum, n);
	cr_assert_eq(st->per_verdict[VERDICT_NONE], n / 2);
	cr_assert_gt(st->map_reloads, 10, "only %llu reloads for %lu requests",
		     (unsigned long long)st->map_reloads, atomic_load(&rl.requests));
	cr_assert_eq(st->map_reload_failures, 0);
	cr_assert_eq(st->output_lost, 0);
	cr_log_info("%llu reloads for %lu requests", (unsigned long long)st->map_reloads,
		    atomic_load(&rl.requests));
	cr_assert_eq(detector__finish(d), 0);
	detector__free(d);
	/* Every anomaly logged once, across the rotated files. */
	unsigned lines = file_lines(f.log);
	for (unsigned i = 1; i <= f.cfg.log_keep; i++) {
		char name[32];
		snprintf(name, sizeof(name), "anomalies.log.%u", i);
		char *p = path_in(f.dir, name);
		lines += file_lines(p);
		free(p);
	}
	cr_assert_eq(lines, anomalies);
	char *first = path_in(f.dir, "anomalies.log.1");
	cr_assert_eq(access(first, F_OK), 0, "the log rotated during the run");
	free(first);
	char *rep = must_read(f.report);
	char *want = NULL;
	cr_assert(asprintf(&want, "+++++++ On %u flows, %u anomalies +++++++\n", n, anomalies) > 0);
	cr_assert(strstr(rep, want), "%s", rep);
	free(want);
	free(rep);
	fx_fini(&f);
}

Test(detector, broken_map_on_reload_keeps_the_old_one, .init = cr_redirect_stderr)
{
	struct fx f;
	fx_init(&f);
	learn_spec_map(&f);
	struct detector *d = detector__new(&f.cfg, false, NULL);
	cr_assert_not_null(d);
	cr_assert_eq(judge(d, "10.42.0.130", "8.8.8.8", 6, "TLS.Amazon", "TLS", 10), VERDICT_NONE);

	write_file(f.map, "{ this is not a map");
	detector__request_reload(d);
	cr_assert_eq(judge(d, "10.42.0.130", "8.8.8.8", 6, "TLS.Amazon", "TLS", 10), VERDICT_NONE);
	wait_reloads(d, 5000, 0, 1);
	cr_assert_eq(judge(d, "10.42.0.130", "8.8.8.8", 6, "TLS.Amazon", "TLS", 10), VERDICT_NONE);

	/* A missing file on reload keeps the old map too. */
	unlink(f.map);
	detector__request_reload(d);
	wait_reloads(d, 5000, 0, 2);
	cr_assert_eq(judge(d, "10.42.0.130", "10.42.0.1", 17, "DNS.Google", "DNS", 10),
		     VERDICT_NONE);

	/* A good new map is taken: 10.42.0.130 -> remote now only knows QUIC.YouTube. */
	write_file(f.map, "{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": "
			  "{\"10.42.0.130\": {\"remote\": {\"QUIC.YouTube\": {}}}}}");
	detector__request_reload(d);
	wait_reloads(d, 5001, 1, 2);
	cr_assert_eq(judge(d, "10.42.0.130", "8.8.8.8", 17, "QUIC.YouTube", "QUIC", 10),
		     VERDICT_NONE);
	cr_assert_eq(judge(d, "10.42.0.130", "8.8.8.8", 6, "TLS.Amazon", "TLS", 10),
		     VERDICT_DNS_TLS_APPLICATION);
	cr_assert_eq(judge(d, "10.42.0.130", "10.42.0.1", 17, "DNS", "DNS", 10),
		     VERDICT_UNKNOWN_DESTINATION_IP);
	detector__free(d);
	fx_fini(&f);
}

Test(detector, reload_reopens_the_anomaly_log, .init = cr_redirect_stderr)
{
	struct fx f;
	fx_init(&f);
	learn_spec_map(&f);
	struct detector *d = detector__new(&f.cfg, false, NULL);
	cr_assert_not_null(d);
	judge(d, "10.42.0.130", "8.8.8.8", 6, "SSH", "", 10);
	char *old = path_in(f.dir, "anomalies.log.old");
	cr_assert_eq(rename(f.log, old), 0);
	judge(d, "10.42.0.130", "8.8.8.8", 6, "SSH", "", 10);
	detector__request_reload(d);
	detector__tick(d, 1);
	judge(d, "10.42.0.130", "8.8.8.8", 6, "SSH", "", 10);
	judge(d, "10.42.0.130", "8.8.8.8", 6, "SSH", "", 10);
	detector__free(d);
	cr_assert_eq(file_lines(old), 2);
	cr_assert_eq(file_lines(f.log), 2);
	free(old);
	fx_fini(&f);
}

Test(detector, periodic_report_and_map_saves, .init = cr_redirect_stderr)
{
	struct fx f;
	fx_init(&f);
	f.cfg.report_interval = 10;
	f.cfg.learn_save_interval = 30;
	struct detector *d = detector__new(&f.cfg, true, NULL);
	cr_assert_not_null(d);
	judge(d, "10.42.0.130", "10.42.0.1", 17, "DNS", "DNS", 100);
	detector__tick(d, 1000); /* schedules */
	cr_assert_neq(access(f.report, F_OK), 0);
	detector__tick(d, 1009);
	cr_assert_neq(access(f.report, F_OK), 0);
	detector__tick(d, 1010); /* hands the report's snapshot to its saver thread */
	cr_assert(wait_file_with(f.report, "On 1 flows"), "report saved after report_interval");
	cr_assert_neq(access(f.map, F_OK), 0);
	detector__tick(d, 1030); /* hands the save to the saver thread */
	cr_assert(wait_file_with(f.map, "\"DNS\""), "map saved after learn_save_interval");
	/* The saved map is usable while learning goes on. */
	judge(d, "10.42.0.130", "8.8.8.8", 6, "TLS", "TLS", 100);
	detector__tick(d, 1060);
	cr_assert(wait_file_with(f.map, "\"TLS\""), "map saved again after learn_save_interval");
	cr_assert_eq(detector__finish(d), 0);
	detector__free(d);
	fx_fini(&f);
}
