/* test_config.c - defaults, the shipped config file, overlaying, strict errors, CIDR parsing,
 * validation. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "test_util.h"
#include "svcsensor/common.h"
#include "svcsensor/config.h"

/* ---- helpers ------------------------------------------------------------------------------- */

/* stderr (fd 2) captured into a temporary file between cap_begin and cap_end. */
static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/svcsensor-cfg-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	rm_tree(tmpdir);
}

/* Write text to tmpdir/name; returns the path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
	static char path[128];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static const char *shipped_path(void)
{
	static char path[PATH_MAX];
	if (access("config/svcsensor.json", R_OK) == 0)
		return "config/svcsensor.json";
	/* Run from elsewhere: relative to this source file. */
	snprintf(path, sizeof(path), "%s", __FILE__);
	char *slash = strrchr(path, '/');
	if (slash)
		snprintf(slash, sizeof(path) - (size_t)(slash - path), "/../config/svcsensor.json");
	return path;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Field-by-field equality; names the first difference. */
static void assert_config_eq(const struct svc_config *a, const struct svc_config *b)
{
	cr_assert_eq(a->n_local_networks, b->n_local_networks, "local_networks count");
	for (size_t i = 0; i < a->n_local_networks; i++)
		cr_assert(
		    memcmp(&a->local_networks[i], &b->local_networks[i], sizeof(struct cidr)) == 0,
		    "local_networks[%zu]", i);
	cr_assert_eq(a->remote_mode, b->remote_mode, "remote_mode");
	cr_assert_eq(a->remote_prefix4, b->remote_prefix4, "remote_prefix4");
	cr_assert_eq(a->remote_prefix6, b->remote_prefix6, "remote_prefix6");
	cr_assert(str_eq(a->map_file, b->map_file), "map_file");
	cr_assert(str_eq(a->log_file, b->log_file), "log_file");
	cr_assert_eq(a->log_max_bytes, b->log_max_bytes, "log_max_bytes");
	cr_assert_eq(a->log_keep, b->log_keep, "log_keep");
	cr_assert(str_eq(a->report_file, b->report_file), "report_file");
	cr_assert_eq(a->report_interval, b->report_interval, "report_interval");
	cr_assert(str_eq(a->flows_out, b->flows_out), "flows_out");
	cr_assert_eq(a->flows_max_bytes, b->flows_max_bytes, "flows_max_bytes");
	cr_assert_eq(a->flows_keep, b->flows_keep, "flows_keep");
	cr_assert_eq(a->idle_timeout, b->idle_timeout, "idle_timeout");
	cr_assert_eq(a->active_timeout, b->active_timeout, "active_timeout");
	cr_assert_eq(a->tcp_linger, b->tcp_linger, "tcp_linger");
	cr_assert_eq(a->max_flows, b->max_flows, "max_flows");
	cr_assert_eq(a->threads, b->threads, "threads");
	cr_assert_eq(a->tcp_max_pkts, b->tcp_max_pkts, "tcp_max_pkts");
	cr_assert_eq(a->udp_max_pkts, b->udp_max_pkts, "udp_max_pkts");
	cr_assert_eq(a->guess, b->guess, "guess");
	cr_assert_eq(a->print, b->print, "print");
	cr_assert_eq(a->n_minor_masters, b->n_minor_masters, "minor_masters count");
	for (size_t i = 0; i < a->n_minor_masters; i++)
		cr_assert(str_eq(a->minor_masters[i], b->minor_masters[i]), "minor_masters[%zu]",
			  i);
	cr_assert_eq(a->n_allow, b->n_allow, "allow count");
	for (size_t i = 0; i < a->n_allow; i++) {
		cr_assert(str_eq(a->allow[i].src, b->allow[i].src), "allow[%zu].src", i);
		cr_assert(str_eq(a->allow[i].dst, b->allow[i].dst), "allow[%zu].dst", i);
		cr_assert(str_eq(a->allow[i].app, b->allow[i].app), "allow[%zu].app", i);
	}
	cr_assert_eq(a->learn_save_interval, b->learn_save_interval, "learn_save_interval");
	cr_assert(str_eq(a->interface, b->interface), "interface");
	cr_assert(str_eq(a->fanout, b->fanout), "fanout");
	cr_assert(str_eq(a->bpf_filter, b->bpf_filter), "bpf_filter");
	cr_assert_eq(a->ring_block_size, b->ring_block_size, "ring_block_size");
	cr_assert_eq(a->ring_block_count, b->ring_block_count, "ring_block_count");
	cr_assert_eq(a->ring_frame_size, b->ring_frame_size, "ring_frame_size");
	cr_assert_eq(a->ring_block_timeout_ms, b->ring_block_timeout_ms, "ring_block_timeout_ms");
	cr_assert_eq(a->promisc, b->promisc, "promisc");
	cr_assert(str_eq(a->user, b->user), "user");
	cr_assert_eq(a->stats_interval, b->stats_interval, "stats_interval");
}

static const char *const all_keys[] = {
    "local_networks",
    "remote_mode",
    "remote_prefix4",
    "remote_prefix6",
    "map_file",
    "log_file",
    "log_max_bytes",
    "log_keep",
    "report_file",
    "report_interval",
    "report_max_keys",
    "flows_out",
    "flows_max_bytes",
    "flows_keep",
    "idle_timeout",
    "active_timeout",
    "tcp_linger",
    "max_flows",
    "threads",
    "tcp_max_pkts",
    "udp_max_pkts",
    "guess",
    "print",
    "minor_masters",
    "allow",
    "learn_save_interval",
    "interface",
    "fanout",
    "bpf_filter",
    "ring_block_size",
    "ring_block_count",
    "ring_frame_size",
    "ring_block_timeout_ms",
    "promisc",
    "user",
    "stats_interval",
};

static struct svc_config cfg, ref;

static void setup(void)
{
	make_tmpdir();
	cr_assert_eq(config__defaults(&cfg), 0);
	cr_assert_eq(config__defaults(&ref), 0);
}

static void teardown(void)
{
	config__free(&cfg);
	config__free(&ref);
	remove_tmpdir();
}

TestSuite(config, .init = setup, .fini = teardown);

/* ---- defaults and the shipped file --------------------------------------------------------- */

Test(config, defaults)
{
	char buf[INET6_ADDRSTRLEN];
	static const char *const nets[] = {"10.0.0.0", "172.16.0.0", "192.168.0.0",
					   "fc00::", "fe80::"};
	static const unsigned plens[] = {8, 12, 16, 7, 10};

	cr_assert_eq(cfg.n_local_networks, 5);
	for (size_t i = 0; i < 5; i++) {
		const struct cidr *n = &cfg.local_networks[i];
		inet_ntop(n->ipver == 6 ? AF_INET6 : AF_INET, n->addr, buf, sizeof(buf));
		cr_assert_str_eq(buf, nets[i]);
		cr_assert_eq(n->plen, plens[i]);
		cr_assert_eq(n->ipver, i < 3 ? 4 : 6);
	}
	cr_assert_eq(cfg.remote_mode, REMOTE_COLLAPSE);
	cr_assert_eq(cfg.remote_prefix4, 24);
	cr_assert_eq(cfg.remote_prefix6, 48);
	cr_assert_str_eq(cfg.map_file, "svcsensor-map.json");
	cr_assert_str_eq(cfg.log_file, "anomalies.log");
	cr_assert_eq(cfg.log_max_bytes, 10485760);
	cr_assert_eq(cfg.log_keep, 5);
	cr_assert_str_eq(cfg.report_file, "svcsensor-report.txt");
	cr_assert_eq(cfg.report_interval, 60);
	cr_assert_null(cfg.flows_out);
	cr_assert_eq(cfg.idle_timeout, 120);
	cr_assert_eq(cfg.active_timeout, 1800);
	cr_assert_eq(cfg.tcp_linger, 2);
	cr_assert_eq(cfg.max_flows, 262144);
	cr_assert_eq(cfg.threads, 1);
	cr_assert_eq(cfg.tcp_max_pkts, 80);
	cr_assert_eq(cfg.udp_max_pkts, 24);
	cr_assert(cfg.guess);
	cr_assert_eq(cfg.print, PRINT_ALL);
	cr_assert_eq(cfg.n_minor_masters, 2);
	cr_assert_str_eq(cfg.minor_masters[0], "DNS");
	cr_assert_str_eq(cfg.minor_masters[1], "TLS");
	cr_assert_eq(cfg.n_allow, 0);
	cr_assert_eq(cfg.learn_save_interval, 300);
	cr_assert_null(cfg.interface);
	cr_assert_str_eq(cfg.fanout, "hash");
	cr_assert_null(cfg.bpf_filter);
	cr_assert_eq(cfg.ring_block_size, 1048576);
	cr_assert_eq(cfg.ring_block_count, 64);
	cr_assert_eq(cfg.ring_frame_size, 2048);
	cr_assert_eq(cfg.ring_block_timeout_ms, 100);
	cr_assert(cfg.promisc);
	cr_assert_null(cfg.user);
	cr_assert_eq(cfg.stats_interval, 0);
	cr_assert_eq(config__validate(&cfg), 0);
}

Test(config, shipped_file_equals_defaults)
{
	const char *path = shipped_path();
	cr_assert_eq(config__load(&cfg, path), 0, "loading %s", path);
	assert_config_eq(&cfg, &ref);
	cr_assert_eq(config__validate(&cfg), 0);
}

Test(config, shipped_file_has_every_key_once)
{
	json_error_t err;
	json_t *root = json_load_file(shipped_path(), JSON_REJECT_DUPLICATES, &err);
	cr_assert_not_null(root, "%s", err.text);
	cr_assert_eq(json_object_size(root), SVC_ARRAY_LEN(all_keys));
	for (size_t i = 0; i < SVC_ARRAY_LEN(all_keys); i++)
		cr_assert_not_null(json_object_get(root, all_keys[i]), "missing key %s",
				   all_keys[i]);
	json_decref(root);
}

Test(config, every_key_is_accepted_alone)
{
	json_error_t err;
	json_t *root = json_load_file(shipped_path(), 0, &err);
	cr_assert_not_null(root);
	for (size_t i = 0; i < SVC_ARRAY_LEN(all_keys); i++) {
		json_t *one = json_object();
		json_object_set(one, all_keys[i], json_object_get(root, all_keys[i]));
		char *text = json_dumps(one, 0);
		const char *path = write_file("one.json", text);
		cr_assert_eq(config__load(&cfg, path), 0, "key %s", all_keys[i]);
		free(text);
		json_decref(one);
	}
	assert_config_eq(&cfg, &ref);
	json_decref(root);
}

Test(config, empty_object_changes_nothing)
{
	cr_assert_eq(config__load(&cfg, write_file("empty.json", "{}\n")), 0);
	assert_config_eq(&cfg, &ref);
}

/* ---- overlaying ---------------------------------------------------------------------------- */

Test(config, partial_file_changes_only_its_keys)
{
	const char *path = write_file(
	    "partial.json", "{\n"
			    "  \"idle_timeout\": 30,\n"
			    "  \"print\": \"anomalies\",\n"
			    "  \"remote_mode\": \"prefix\",\n"
			    "  \"local_networks\": [\"192.168.1.0/24\", \"2001:db8::/32\"],\n"
			    "  \"minor_masters\": [\"DNS\", \"TLS\", \"QUIC\"],\n"
			    "  \"allow\": [{\"src\": \"10.42.0.130\", \"app\": \"NTP\"},\n"
			    "            {\"dst\": \"remote\", \"src\": null}],\n"
			    "  \"flows_out\": \"flows.csv\",\n"
			    "  \"log_file\": null,\n"
			    "  \"report_file\": \"\",\n"
			    "  \"guess\": false,\n"
			    "  \"log_max_bytes\": 20000000000\n"
			    "}\n");
	cr_assert_eq(config__load(&cfg, path), 0);

	cr_assert_eq(cfg.idle_timeout, 30);
	cr_assert_eq(cfg.print, PRINT_ANOMALIES);
	cr_assert_eq(cfg.remote_mode, REMOTE_PREFIX);
	cr_assert_eq(cfg.n_local_networks, 2);
	cr_assert_eq(cfg.local_networks[0].ipver, 4);
	cr_assert_eq(cfg.local_networks[0].plen, 24);
	cr_assert_eq(cfg.local_networks[1].ipver, 6);
	cr_assert_eq(cfg.local_networks[1].plen, 32);
	cr_assert_eq(cfg.n_minor_masters, 3);
	cr_assert_str_eq(cfg.minor_masters[2], "QUIC");
	cr_assert_eq(cfg.n_allow, 2);
	cr_assert_str_eq(cfg.allow[0].src, "10.42.0.130");
	cr_assert_null(cfg.allow[0].dst);
	cr_assert_str_eq(cfg.allow[0].app, "NTP");
	cr_assert_null(cfg.allow[1].src);
	cr_assert_str_eq(cfg.allow[1].dst, "remote");
	cr_assert_null(cfg.allow[1].app);
	cr_assert_str_eq(cfg.flows_out, "flows.csv");
	cr_assert_null(cfg.log_file);
	cr_assert_null(cfg.report_file, "\"\" means off, stored as NULL");
	cr_assert_not(cfg.guess);
	cr_assert_eq(cfg.log_max_bytes, 20000000000ULL);

	/* Everything else is still the default. */
	cfg.idle_timeout = ref.idle_timeout;
	cfg.print = ref.print;
	cfg.remote_mode = ref.remote_mode;
	cfg.guess = ref.guess;
	cfg.log_max_bytes = ref.log_max_bytes;
	struct svc_config mix = cfg;
	mix.local_networks = ref.local_networks;
	mix.n_local_networks = ref.n_local_networks;
	mix.minor_masters = ref.minor_masters;
	mix.n_minor_masters = ref.n_minor_masters;
	mix.allow = NULL;
	mix.n_allow = 0;
	mix.flows_out = NULL;
	mix.log_file = ref.log_file;
	mix.report_file = ref.report_file;
	assert_config_eq(&mix, &ref);
	cr_assert_eq(config__validate(&cfg), 0);
}

Test(config, second_file_overlays_the_first)
{
	cr_assert_eq(
	    config__load(&cfg, write_file("a.json", "{\"threads\": 4, \"user\": \"nobody\"}")), 0);
	cr_assert_eq(config__load(&cfg, write_file("b.json", "{\"threads\": 2, \"user\": null}")),
		     0);
	cr_assert_eq(cfg.threads, 2);
	cr_assert_null(cfg.user);
}

/* ---- strict errors ------------------------------------------------------------------------- */

struct bad_case {
	const char *json;
	const char *key;    /* must appear as key "KEY" */
	const char *reason; /* substring of the message */
};

static const struct bad_case bad_cases[] = {
    {"{\"idle_timeout\": -5}", "idle_timeout", "expected an integer from 1 to 31536000, got -5"},
    {"{\"idle_timeout\": 0}", "idle_timeout", "expected an integer from 1 to 31536000, got 0"},
    {"{\"idle_timeout\": 31536001}", "idle_timeout", "from 1 to 31536000"},
    {"{\"idle_timeout\": \"120\"}", "idle_timeout", "got a string"},
    {"{\"idle_timeout\": 1.5}", "idle_timeout", "got a real number"},
    {"{\"idle_timeout\": null}", "idle_timeout", "got null"},
    {"{\"active_timeout\": 4294967296}", "active_timeout", "from 1 to 31536000"},
    {"{\"tcp_linger\": 3601}", "tcp_linger", "from 0 to 3600"},
    {"{\"stats_interval\": 86401}", "stats_interval", "from 0 to 86400"},
    {"{\"learn_save_interval\": 86401}", "learn_save_interval", "from 0 to 86400"},
    {"{\"idle_timout\": 5}", "idle_timout", "unknown setting"},
    {"{\"threads\": 65}", "threads", "from 1 to 64"},
    {"{\"threads\": 0}", "threads", "from 1 to 64"},
    {"{\"max_flows\": 15}", "max_flows", "15"},
    {"{\"remote_prefix4\": 33}", "remote_prefix4", "from 1 to 32"},
    {"{\"remote_prefix6\": 129}", "remote_prefix6", "from 1 to 128"},
    {"{\"log_max_bytes\": -1}", "log_max_bytes", "non-negative integer"},
    {"{\"flows_keep\": 0}", "flows_keep", "from 1 to 1000"},
    {"{\"log_keep\": -1}", "log_keep", "from 1 to 1000"},
    {"{\"report_interval\": -1}", "report_interval", "from 0 to 86400"},
    {"{\"report_interval\": 86401}", "report_interval", "from 0 to 86400"},
    {"{\"ring_block_timeout_ms\": 60001}", "ring_block_timeout_ms", "from 0 to 60000"},
    {"{\"tcp_max_pkts\": 0}", "tcp_max_pkts", "from 1 to 10000"},
    {"{\"local_networks\": [\"10.0.0.0/33\"]}", "local_networks", "10.0.0.0/33"},
    {"{\"local_networks\": [\"10.0.0.0/8\", \"fc00::/129\"]}", "local_networks", "element 1"},
    {"{\"local_networks\": [\"not-an-address\"]}", "local_networks", "not a network"},
    {"{\"local_networks\": \"10.0.0.0/8\"}", "local_networks", "expected an array"},
    {"{\"local_networks\": [8]}", "local_networks", "got an integer"},
    {"{\"remote_mode\": \"subnet\"}", "remote_mode", "\"subnet\""},
    {"{\"remote_mode\": 1}", "remote_mode", "got an integer"},
    {"{\"print\": \"some\"}", "print", "expected \"all\", \"anomalies\" or \"none\""},
    {"{\"print\": true}", "print", "got true"},
    {"{\"fanout\": \"rr\"}", "fanout", "\"rr\""},
    {"{\"guess\": \"yes\"}", "guess", "expected true or false"},
    {"{\"promisc\": 1}", "promisc", "expected true or false"},
    {"{\"map_file\": \"\"}", "map_file", "non-empty string"},
    {"{\"map_file\": null}", "map_file", "got null"},
    {"{\"log_file\": 5}", "log_file", "string or null"},
    {"{\"interface\": [\"eth0\"]}", "interface", "got an array"},
    {"{\"user\": \"\"}", "user", "expected a non-empty string, got \"\""},
    {"{\"user\": 0}", "user", "expected a non-empty string or null, got an integer"},
    {"{\"minor_masters\": [\"DNS\", 3]}", "minor_masters", "element 1"},
    {"{\"minor_masters\": [\"\"]}", "minor_masters", "non-empty"},
    {"{\"minor_masters\": \"DNS\"}", "minor_masters", "expected an array"},
    {"{\"allow\": [{\"src\": \"1.2.3.4\", \"port\": 5}]}", "allow", "unknown member \"port\""},
    {"{\"allow\": [{}]}", "allow", "at least one of src, dst, app"},
    {"{\"allow\": [{\"src\": null}]}", "allow", "at least one of src, dst, app"},
    {"{\"allow\": [{\"app\": 5}]}", "allow", "\"app\" must be a non-empty string"},
    {"{\"allow\": [\"remote\"]}", "allow", "expected an object"},
    {"{\"allow\": {\"src\": \"x\"}}", "allow", "expected an array"},
};

Test(config, every_kind_of_bad_value_names_the_key)
{
	for (size_t i = 0; i < SVC_ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *bc = &bad_cases[i];
		char want[128];
		struct svc_config c;
		cr_assert_eq(config__defaults(&c), 0);
		const char *path = write_file("bad.json", bc->json);

		cap_begin();
		int rc = config__load(&c, path);
		const char *msg = cap_end();

		cr_assert_lt(rc, 0, "%s: accepted", bc->json);
		cr_assert_eq(count_lines(msg), 1, "%s: expected one line, got \"%s\"", bc->json,
			     msg);
		cr_assert(strncmp(msg, "svcsensor: ", 11) == 0, "%s", msg);
		cr_assert_not_null(strstr(msg, path), "%s: file not named in \"%s\"", bc->json,
				   msg);
		snprintf(want, sizeof(want), "key \"%s\"", bc->key);
		cr_assert_not_null(strstr(msg, want), "%s: key not named in \"%s\"", bc->json, msg);
		cr_assert_not_null(strstr(msg, bc->reason), "%s: \"%s\" not in \"%s\"", bc->json,
				   bc->reason, msg);
		/* Still a valid configuration that can be freed. */
		config__free(&c);
	}
}

Test(config, error_names_line_and_column_of_the_key)
{
	const char *path = write_file("lines.json", "{\n"
						    "  \"threads\": 2,\n"
						    "  \"print\": \"all\",\n"
						    "    \"idle_timeout\": -1\n"
						    "}\n");
	char want[256];
	cap_begin();
	cr_assert_lt(config__load(&cfg, path), 0);
	const char *msg = cap_end();
	snprintf(want, sizeof(want),
		 "svcsensor: %s:4:5: key \"idle_timeout\": expected an integer from 1 to 31536000, "
		 "got -1\n",
		 path);
	cr_assert_str_eq(msg, want);
}

Test(config, error_keeps_earlier_keys_and_a_valid_config)
{
	const char *path = write_file("half.json", "{\"threads\": 4, \"idle_timeout\": -1, "
						   "\"tcp_linger\": 9}");
	cap_begin();
	cr_assert_eq(config__load(&cfg, path), -EINVAL);
	cap_end();
	cr_assert_eq(cfg.threads, 4);
	cr_assert_eq(cfg.idle_timeout, 120);
	cr_assert_eq(cfg.tcp_linger, 2, "keys after the bad one are not applied");
	cr_assert_eq(config__validate(&cfg), 0);
}

struct parse_case {
	const char *text;
	const char *reason; /* substring, or NULL */
};

static const struct parse_case parse_cases[] = {
    {"{\"idle_timeout\": 5", NULL},   /* truncated */
    {"{\"idle_timeout\": 5,}", NULL}, /* trailing comma */
    {"{\"threads\": 2, \"threads\": 3}", "duplicate"},
    {"{\"max_flows\": 99999999999999999999}", "too big"},
    {"{'threads': 2}", NULL},
    {"{\"threads\": 2} junk", NULL},
    {"", NULL},
    {"\xff\xfe{}", NULL},
    {"{\"user\": \"a\\u0000b\"}", "\\u0000"}, /* NUL inside a string */
};

Test(config, parse_errors_give_line_and_column)
{
	for (size_t i = 0; i < SVC_ARRAY_LEN(parse_cases); i++) {
		const char *path = write_file("parse.json", parse_cases[i].text);
		char want[160];
		cap_begin();
		int rc = config__load(&cfg, path);
		const char *msg = cap_end();
		cr_assert_eq(rc, -EINVAL, "case %zu accepted", i);
		cr_assert_eq(count_lines(msg), 1, "case %zu: \"%s\"", i, msg);
		snprintf(want, sizeof(want), "svcsensor: %s:1:", path);
		cr_assert(strncmp(msg, want, strlen(want)) == 0, "case %zu: \"%s\"", i, msg);
		if (parse_cases[i].reason)
			cr_assert_not_null(strstr(msg, parse_cases[i].reason), "case %zu: %s", i,
					   msg);
	}
	assert_config_eq(&cfg, &ref);
}

Test(config, top_level_must_be_an_object)
{
	const char *path = write_file("array.json", "[1, 2]");
	cap_begin();
	cr_assert_eq(config__load(&cfg, path), -EINVAL);
	const char *msg = cap_end();
	cr_assert_not_null(strstr(msg, path));
	cr_assert_not_null(strstr(msg, "expected a JSON object"), "%s", msg);
}

Test(config, missing_file_and_directory)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/nope.json", tmpdir);
	cap_begin();
	cr_assert_eq(config__load(&cfg, path), -ENOENT);
	const char *msg = cap_end();
	cr_assert_not_null(strstr(msg, path));
	cr_assert_not_null(strstr(msg, "No such file"), "%s", msg);

	cap_begin();
	cr_assert_lt(config__load(&cfg, tmpdir), 0);
	msg = cap_end();
	cr_assert_not_null(strstr(msg, "not a regular file"), "%s", msg);
	assert_config_eq(&cfg, &ref);
}

/* ---- CIDR ---------------------------------------------------------------------------------- */

static void check_cidr(const char *s, const char *addr, unsigned ipver, unsigned plen)
{
	struct cidr c;
	char buf[INET6_ADDRSTRLEN];
	cr_assert_eq(config__parse_cidr(s, &c), 0, "%s rejected", s);
	cr_assert_eq(c.ipver, ipver, "%s", s);
	cr_assert_eq(c.plen, plen, "%s", s);
	inet_ntop(ipver == 6 ? AF_INET6 : AF_INET, c.addr, buf, sizeof(buf));
	cr_assert_str_eq(buf, addr, "%s", s);
	if (ipver == 4)
		for (int i = 4; i < 16; i++)
			cr_assert_eq(c.addr[i], 0, "%s: IPv4 tail not zero", s);
}

Test(config, cidr_ipv4)
{
	check_cidr("10.0.0.0/8", "10.0.0.0", 4, 8);
	check_cidr("172.16.0.0/12", "172.16.0.0", 4, 12);
	check_cidr("192.168.1.7", "192.168.1.7", 4, 32);
	check_cidr("10.1.2.3/8", "10.0.0.0", 4, 8);
	check_cidr("172.31.255.255/12", "172.16.0.0", 4, 12);
	check_cidr("0.0.0.0/0", "0.0.0.0", 4, 0);
	check_cidr("1.2.3.4/32", "1.2.3.4", 4, 32);
}

Test(config, cidr_ipv6)
{
	check_cidr("fc00::/7", "fc00::", 6, 7);
	check_cidr("fdff:1::1/7", "fc00::", 6, 7);
	check_cidr("fe80::/10", "fe80::", 6, 10);
	check_cidr("2001:db8::1", "2001:db8::1", 6, 128);
	check_cidr("2001:db8:abcd:1234::/48", "2001:db8:abcd::", 6, 48);
	check_cidr("::/0", "::", 6, 0);
}

Test(config, cidr_bad)
{
	static const char *const bad[] = {
	    "",
	    "/8",
	    "10.0.0.0/",
	    "10.0.0.0/33",
	    "10.0.0.0/-1",
	    "10.0.0.0/+8",
	    "10.0.0.0/8x",
	    "10.0.0.0/ 8",
	    "10.0.0/8",
	    "10.0.0.256/24",
	    "10.0.0.0/8/9",
	    " 10.0.0.0/8",
	    "fc00::/129",
	    "fc00:::/7",
	    "hello",
	    "hello/8",
	    "10.0.0.0/1000",
	    "2001:db8::g/32",
	};
	struct cidr c;
	for (size_t i = 0; i < SVC_ARRAY_LEN(bad); i++)
		cr_assert_eq(config__parse_cidr(bad[i], &c), -EINVAL, "\"%s\" accepted", bad[i]);
	cr_assert_eq(config__parse_cidr(NULL, &c), -EINVAL);
}

/* ---- names and validation ------------------------------------------------------------------ */

Test(config, mode_names)
{
	enum print_mode p;
	enum remote_mode r;
	cr_assert_eq(config__parse_print("none", &p), 0);
	cr_assert_eq(p, PRINT_NONE);
	cr_assert_eq(config__parse_print("anomalies", &p), 0);
	cr_assert_eq(p, PRINT_ANOMALIES);
	cr_assert_eq(config__parse_print("All", &p), -EINVAL);
	cr_assert_eq(config__parse_remote_mode("address", &r), 0);
	cr_assert_eq(r, REMOTE_ADDRESS);
	cr_assert_eq(config__parse_remote_mode("remote", &r), 0);
	cr_assert_eq(r, REMOTE_COLLAPSE);
	cr_assert_eq(config__parse_remote_mode("", &r), -EINVAL);
	cr_assert_str_eq(config__print_name(PRINT_ANOMALIES), "anomalies");
	cr_assert_str_eq(config__remote_mode_name(REMOTE_PREFIX), "prefix");
}

static void expect_invalid(struct svc_config *c, const char *word)
{
	cap_begin();
	int rc = config__validate(c);
	const char *msg = cap_end();
	cr_assert_eq(rc, -EINVAL, "%s: accepted", word);
	cr_assert_eq(count_lines(msg), 1, "%s", msg);
	cr_assert_not_null(strstr(msg, word), "\"%s\" not in \"%s\"", word, msg);
}

Test(config, validate)
{
	struct svc_config c;

#define CASE(field, value, word)                                                                   \
	do {                                                                                       \
		cr_assert_eq(config__defaults(&c), 0);                                             \
		c.field = value;                                                                   \
		expect_invalid(&c, word);                                                          \
		config__free(&c);                                                                  \
	} while (0)

	CASE(idle_timeout, 0, "idle_timeout");
	CASE(active_timeout, 60, "active_timeout");
	CASE(threads, 0, "threads");
	CASE(threads, 65, "threads");
	CASE(max_flows, 8, "max_flows");
	CASE(remote_prefix4, 40, "remote_prefix4");
	CASE(tcp_max_pkts, 0, "tcp_max_pkts");
	CASE(ring_block_size, 1000000, "ring_block_size");
	CASE(ring_frame_size, 2050, "ring_frame_size");
	CASE(print, (enum print_mode)7, "print");
	CASE(remote_mode, (enum remote_mode)9, "remote_mode");
#undef CASE

	cr_assert_eq(config__defaults(&c), 0);
	cr_assert_eq(config__set_str(&c.fanout, "rr"), 0);
	expect_invalid(&c, "fanout");
	cr_assert_eq(config__set_str(&c.fanout, "ebpf"), 0);
	cr_assert_eq(config__validate(&c), 0);
	cr_assert_eq(config__set_str(&c.map_file, NULL), 0);
	expect_invalid(&c, "map_file");
	config__free(&c);

	/* Equal timeouts are fine; flags can set what the file can. */
	cr_assert_eq(config__defaults(&c), 0);
	c.active_timeout = c.idle_timeout;
	c.threads = 64;
	cr_assert_eq(config__validate(&c), 0);
	config__free(&c);
}

Test(config, set_str_and_free)
{
	char *s = NULL;
	cr_assert_eq(config__set_str(&s, "eth0"), 0);
	cr_assert_str_eq(s, "eth0");
	cr_assert_eq(config__set_str(&s, "wlan0"), 0);
	cr_assert_str_eq(s, "wlan0");
	cr_assert_eq(config__set_str(&s, NULL), 0);
	cr_assert_null(s);

	struct svc_config c;
	memset(&c, 0, sizeof(c));
	config__free(&c); /* a zeroed config frees fine */
	cr_assert_eq(config__defaults(&c), 0);
	config__free(&c);
	config__free(&c); /* free zeroes: a second free is harmless */
}
