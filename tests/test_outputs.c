/* test_outputs.c - console line, anomaly log (schema, rotation, reopen), report (text, JSON). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "test_util.h"
#include "svcsensor/anomaly_log.h"
#include "svcsensor/console.h"
#include "svcsensor/detector.h"
#include "svcsensor/flow.h"
#include "svcsensor/report.h"

/* ---- helpers ---- */

static char *make_tmpdir(void)
{
	char *d = strdup("/tmp/svcsensor-outputs-XXXXXX");
	cr_assert_not_null(d);
	cr_assert_not_null(mkdtemp(d), "mkdtemp: %s", strerror(errno));
	return d;
}

static struct flow_record *mkrec(const char *src, const char *dst, uint16_t sport, uint16_t dport,
				 uint8_t proto, const char *app, const char *master)
{
	struct flow_record *r = flow_record__new();
	cr_assert_not_null(r);
	int v6 = strchr(src, ':') != NULL;
	r->key.ipver = v6 ? 6 : 4;
	cr_assert_eq(inet_pton(v6 ? AF_INET6 : AF_INET, src, r->key.src), 1);
	cr_assert_eq(inet_pton(v6 ? AF_INET6 : AF_INET, dst, r->key.dst), 1);
	r->key.sport = sport;
	r->key.dport = dport;
	r->key.proto = proto;
	r->first_us = 1700000000000000ULL;
	r->last_us = 1700000000123456ULL; /* 2023-11-14T22:13:20.123Z */
	r->pkts[0] = 3;
	r->pkts[1] = 2;
	r->bytes[0] = 300;
	r->bytes[1] = 200;
	r->end_reason = FLOW_END_IDLE;
	snprintf(r->app_name, sizeof(r->app_name), "%s", app);
	snprintf(r->master_name, sizeof(r->master_name), "%s", master);
	snprintf(r->category, sizeof(r->category), "%s", "Web");
	return r;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* ---- console ---- */

Test(outputs, console_line_matches_the_seed)
{
	char buf[256];
	/* Lines copied from the seed's console block. */
	console__format(buf, sizeof(buf), 0, "10.42.0.130", "10.42.0.1", "DNS", "NONE");
	cr_assert_str_eq(
	    buf, "  0. 10.42.0.130     --> 10.42.0.1       , DNS                  | NONE\n");
	console__format(buf, sizeof(buf), 65, "10.42.0.130", "remote", "BitTorrent",
			verdict__label(VERDICT_PROTOCOL_NEVER_USED));
	cr_assert_str_eq(buf, " 65. 10.42.0.130     --> remote          , BitTorrent           | "
			      "PROTOCOL NEVER USED\n");
	console__format(buf, sizeof(buf), 81, "10.42.0.130", "10.42.0.1", "DNS.Wikipedia",
			verdict__label(VERDICT_DNS_TLS_APPLICATION));
	cr_assert_str_eq(buf, " 81. 10.42.0.130     --> 10.42.0.1       , DNS.Wikipedia        | "
			      "DNS/TLS APPLICATION\n");
	console__format(buf, sizeof(buf), 103, "remote", "10.42.0.130", "ICMP",
			verdict__label(VERDICT_PROTOCOL_NEVER_USED));
	cr_assert_str_eq(buf, "103. remote          --> 10.42.0.130     , ICMP                 | "
			      "PROTOCOL NEVER USED\n");
	console__format(buf, sizeof(buf), 560, "10.42.0.130", "remote", "NTP.UbuntuONE", "NONE");
	cr_assert_str_eq(
	    buf, "560. 10.42.0.130     --> remote          , NTP.UbuntuONE        | NONE\n");
	/* Wider than the column: printed whole. */
	console__format(buf, sizeof(buf), 1234, "2001:db8::1", "remote",
			"TLS.AVeryLongApplicationName", "NONE");
	cr_assert_str_eq(
	    buf,
	    "1234. 2001:db8::1     --> remote          , TLS.AVeryLongApplicationName | NONE\n");
}

Test(outputs, console_labels_in_the_seed_spelling)
{
	cr_assert_str_eq(verdict__label(VERDICT_NONE), "NONE");
	cr_assert_str_eq(verdict__label(VERDICT_PROTOCOL_NEVER_USED), "PROTOCOL NEVER USED");
	cr_assert_str_eq(verdict__label(VERDICT_DNS_TLS_APPLICATION), "DNS/TLS APPLICATION");
	cr_assert_str_eq(verdict__label(VERDICT_UNKNOWN_PROTOCOL), "UNKNOWN PROTOCOL");
	cr_assert_str_eq(verdict__label(VERDICT_UNKNOWN_SOURCE_IP), "UNKNOWN SOURCE IP");
	cr_assert_str_eq(verdict__label(VERDICT_UNKNOWN_DESTINATION_IP), "UNKNOWN DESTINATION IP");
	cr_assert_str_eq(verdict__label(VERDICT__COUNT), "?");
}

static char *run_console(enum print_mode mode, bool learned)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	struct console *c = console__new(m, mode);
	cr_assert_not_null(c);
	if (learned) {
		console__learned(c, 0, "10.42.0.130", "10.42.0.1", "DNS");
		console__learned(c, 1, "10.42.0.130", "remote", "TLS.Amazon");
	} else {
		console__verdict(c, 0, "10.42.0.130", "10.42.0.1", "DNS", VERDICT_NONE);
		console__verdict(c, 1, "10.42.0.130", "remote", "BitTorrent",
				 VERDICT_PROTOCOL_NEVER_USED);
		console__verdict(c, 2, "10.42.0.130", "10.42.0.96", "Unknown",
				 VERDICT_UNKNOWN_DESTINATION_IP);
		console__verdict(c, 3, "10.42.0.130", "remote", "TLS", VERDICT_NONE);
	}
	console__free(c); /* flushes */
	fclose(m);
	return buf;
}

Test(outputs, console_print_modes)
{
	char *all = run_console(PRINT_ALL, false);
	cr_assert_str_eq(
	    all, "  0. 10.42.0.130     --> 10.42.0.1       , DNS                  | NONE\n"
		 "  1. 10.42.0.130     --> remote          , BitTorrent           | PROTOCOL NEVER "
		 "USED\n"
		 "  2. 10.42.0.130     --> 10.42.0.96      , Unknown              | UNKNOWN "
		 "DESTINATION IP\n"
		 "  3. 10.42.0.130     --> remote          , TLS                  | NONE\n");
	char *anom = run_console(PRINT_ANOMALIES, false);
	cr_assert_str_eq(anom, "  1. 10.42.0.130     --> remote          , BitTorrent           | "
			       "PROTOCOL NEVER USED\n"
			       "  2. 10.42.0.130     --> 10.42.0.96      , Unknown              | "
			       "UNKNOWN DESTINATION IP\n");
	char *none = run_console(PRINT_NONE, false);
	cr_assert_str_eq(none, "");
	char *learned = run_console(PRINT_ALL, true);
	cr_assert_str_eq(
	    learned, "  0. 10.42.0.130     --> 10.42.0.1       , DNS                  | LEARNED\n"
		     "  1. 10.42.0.130     --> remote          , TLS.Amazon           | LEARNED\n");
	char *learned_anom = run_console(PRINT_ANOMALIES, true);
	cr_assert_str_eq(learned_anom, "");
	free(all);
	free(anom);
	free(none);
	free(learned);
	free(learned_anom);
}

Test(outputs, console_without_stream_prints_nothing)
{
	struct console *c = console__new(NULL, PRINT_ALL);
	cr_assert_not_null(c);
	cr_assert_not(console__verdict(c, 0, "a", "b", "DNS", VERDICT_NONE));
	console__flush(c);
	console__free(c);
}

/* ---- anomaly log: schema ---- */

static json_t *load_schema(void)
{
	static const char *const candidates[] = {"docs/anomaly-log.schema.json",
						 "../docs/anomaly-log.schema.json"};
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		json_error_t err;
		json_t *s = json_load_file(candidates[i], 0, &err);
		if (s)
			return s;
	}
	cr_assert_fail(
	    "docs/anomaly-log.schema.json not found or not JSON (run from the repository root)");
	return NULL;
}

/* Validate one line against the schema's required fields, types, enums, bounds and pattern. */
static void validate_line(const json_t *schema, const char *line)
{
	json_error_t err;
	json_t *o = json_loads(line, 0, &err);
	cr_assert_not_null(o, "not JSON: %s (%s)", line, err.text);
	cr_assert(json_is_object(o), "not an object: %s", line);
	json_t *props = json_object_get(schema, "properties");
	json_t *req = json_object_get(schema, "required");
	cr_assert(json_is_array(req) && json_array_size(req) > 20);
	size_t i;
	json_t *name;
	json_array_foreach(req, i, name)
	{
		const char *k = json_string_value(name);
		json_t *v = json_object_get(o, k);
		cr_assert_not_null(v, "field %s missing in %s", k, line);
		json_t *p = json_object_get(props, k);
		const char *type = json_string_value(json_object_get(p, "type"));
		cr_assert_not_null(type, "schema has no type for %s", k);
		if (!strcmp(type, "string"))
			cr_assert(json_is_string(v), "%s is not a string", k);
		else if (!strcmp(type, "integer"))
			cr_assert(json_is_integer(v), "%s is not an integer", k);
		else if (!strcmp(type, "boolean"))
			cr_assert(json_is_boolean(v), "%s is not a boolean", k);
		else
			cr_assert_fail("unexpected schema type %s", type);
		json_t *en = json_object_get(p, "enum");
		if (en) {
			bool found = false;
			size_t j;
			json_t *e;
			json_array_foreach(en, j, e) found |= json_equal(e, v);
			cr_assert(found, "%s value not in the schema's enum: %s", k, line);
		}
		json_t *min = json_object_get(p, "minimum"), *max = json_object_get(p, "maximum");
		if (min)
			cr_assert_geq(json_integer_value(v), json_integer_value(min),
				      "%s below minimum", k);
		if (max)
			cr_assert_leq(json_integer_value(v), json_integer_value(max),
				      "%s above maximum", k);
		const char *pat = json_string_value(json_object_get(p, "pattern"));
		if (pat) {
			regex_t re;
			cr_assert_eq(regcomp(&re, pat, REG_EXTENDED | REG_NOSUB), 0);
			cr_assert_eq(regexec(&re, json_string_value(v), 0, NULL, 0), 0,
				     "%s does not match %s", json_string_value(v), pat);
			regfree(&re);
		}
	}
	/* additionalProperties: false */
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	    cr_assert_not_null(json_object_get(props, k), "field %s not in the schema", k);
	json_decref(o);
}

Test(outputs, anomaly_line_has_every_field_typed_per_schema)
{
	json_t *schema = load_schema();
	struct flow_record *r =
	    mkrec("10.42.0.130", "93.184.216.34", 51413, 6881, 6, "BitTorrent", "");
	snprintf(r->server_name, sizeof(r->server_name), "%s", "tracker.example.org");
	r->key.vlan = 42;
	r->guessed = true;
	size_t len = 0;
	char *line =
	    anomaly_log__format(r, "10.42.0.130", "remote", VERDICT_PROTOCOL_NEVER_USED, &len);
	cr_assert_not_null(line);
	cr_assert_eq(len, strlen(line));
	cr_assert_eq(line[len - 1], '\n');
	cr_assert_null(memchr(line, '\n', len - 1), "one line only");
	validate_line(schema, line);

	json_t *o = json_loads(line, 0, NULL);
	cr_assert_str_eq(json_string_value(json_object_get(o, "ts")), "2023-11-14T22:13:20.123Z");
	cr_assert_eq(json_integer_value(json_object_get(o, "ts_ms")), 1700000000123LL);
	cr_assert_str_eq(json_string_value(json_object_get(o, "verdict")), "PROTOCOL_NEVER_USED");
	cr_assert_str_eq(json_string_value(json_object_get(o, "weight")), "major");
	cr_assert_str_eq(json_string_value(json_object_get(o, "src_ip")), "10.42.0.130");
	cr_assert_str_eq(json_string_value(json_object_get(o, "dst_ip")), "93.184.216.34");
	cr_assert_eq(json_integer_value(json_object_get(o, "src_port")), 51413);
	cr_assert_eq(json_integer_value(json_object_get(o, "dst_port")), 6881);
	cr_assert_str_eq(json_string_value(json_object_get(o, "src_key")), "10.42.0.130");
	cr_assert_str_eq(json_string_value(json_object_get(o, "dst_key")), "remote");
	cr_assert_eq(json_integer_value(json_object_get(o, "protocol")), 6);
	cr_assert_str_eq(json_string_value(json_object_get(o, "l4")), "tcp");
	cr_assert_eq(json_integer_value(json_object_get(o, "vlan_id")), 42);
	cr_assert_str_eq(json_string_value(json_object_get(o, "app")), "BitTorrent");
	cr_assert_str_eq(json_string_value(json_object_get(o, "master")), "");
	cr_assert_str_eq(json_string_value(json_object_get(o, "category")), "Web");
	cr_assert(json_is_true(json_object_get(o, "guessed")));
	cr_assert_str_eq(json_string_value(json_object_get(o, "server_name")),
			 "tracker.example.org");
	cr_assert_eq(json_integer_value(json_object_get(o, "src2dst_packets")), 3);
	cr_assert_eq(json_integer_value(json_object_get(o, "src2dst_bytes")), 300);
	cr_assert_eq(json_integer_value(json_object_get(o, "dst2src_packets")), 2);
	cr_assert_eq(json_integer_value(json_object_get(o, "dst2src_bytes")), 200);
	cr_assert_eq(json_integer_value(json_object_get(o, "duration_ms")), 123);
	cr_assert_str_eq(json_string_value(json_object_get(o, "end_reason")), "idle");
	json_decref(o);
	free(line);

	/* Every verdict, an IPv6 UDP flow, an ICMP one: still valid per the schema. */
	static const enum verdict vs[] = {VERDICT_UNKNOWN_SOURCE_IP, VERDICT_UNKNOWN_DESTINATION_IP,
					  VERDICT_UNKNOWN_PROTOCOL, VERDICT_DNS_TLS_APPLICATION,
					  VERDICT_PROTOCOL_NEVER_USED};
	struct flow_record *r6 =
	    mkrec("fd00::1", "2001:db8::53", 5353, 53, 17, "DNS.Google", "DNS");
	struct flow_record *ri = mkrec("10.42.0.1", "10.42.0.130", 0, 0, 1, "ICMP", "");
	for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
		line = anomaly_log__format(i % 2 ? r6 : ri, "k1", "k2", vs[i], &len);
		validate_line(schema, line);
		o = json_loads(line, 0, NULL);
		cr_assert_str_eq(json_string_value(json_object_get(o, "verdict")),
				 verdict__name(vs[i]));
		cr_assert_str_eq(json_string_value(json_object_get(o, "weight")),
				 verdict__weight(vs[i]));
		json_decref(o);
		free(line);
	}
	flow_record__free(r);
	flow_record__free(r6);
	flow_record__free(ri);
	json_decref(schema);
}

/* Python's json module reads the line, and the server name in it is the field's bytes (all
 * but the last, the NUL's place) decoded as Python decodes UTF-8 with errors="replace": an
 * independent statement of "well-formed UTF-8 passes, each ill-formed sequence becomes
 * U+FFFD". Exit status 0 when both hold. */
static int python_checks_line(const char *line, const unsigned char *field, size_t n)
{
	static const char script[] =
	    "import json, sys\n"
	    "line = open(sys.argv[1], 'rb').read()\n"
	    "field = bytes.fromhex(open(sys.argv[2]).read().strip())\n"
	    "got = json.loads(line.decode('utf-8'))['server_name']\n"
	    "want = field.decode('utf-8', 'replace')\n"
	    "sys.exit(0 if got == want else 1)\n";
	char *dir = make_tmpdir();
	char *lp = path_in(dir, "line"), *fp = path_in(dir, "field"), *pp = path_in(dir, "c.py");
	char *cmd = NULL;
	FILE *f = fopen(lp, "w");
	cr_assert_not_null(f);
	fputs(line, f);
	fclose(f);
	f = fopen(fp, "w");
	cr_assert_not_null(f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", field[i]);
	fclose(f);
	f = fopen(pp, "w");
	cr_assert_not_null(f);
	fputs(script, f);
	fclose(f);
	cr_assert(asprintf(&cmd, "python3 %s %s %s", pp, lp, fp) > 0);
	int rc = system(cmd);
	free(cmd);
	rm_rf(dir);
	free(lp);
	free(fp);
	free(pp);
	free(dir);
	return rc;
}

Test(outputs, anomaly_line_survives_hostile_names)
{
	json_t *schema = load_schema();
	struct flow_record *r = mkrec("10.42.0.130", "10.42.0.1", 1000, 53, 17, "DNS", "DNS");
	/* Quotes, backslash, control bytes, ill-formed UTF-8, well-formed UTF-8, 0x7f, and no
	 * terminating NUL. */
	static const char hostile[] = "a\"b\\c\n\x01\xff\xfe caf\xc3\xa9 \x7f\xe2\x82";
	memset(r->server_name, 'x', sizeof(r->server_name));
	memcpy(r->server_name, hostile, sizeof(hostile) - 1);
	size_t len;
	char *line =
	    anomaly_log__format(r, "10.42.0.130", "10.42.0.1", VERDICT_DNS_TLS_APPLICATION, &len);
	cr_assert_not_null(line);
	validate_line(schema, line);
	json_t *o = json_loads(line, 0, NULL);
	const char *sn = json_string_value(json_object_get(o, "server_name"));
	/* By hand: each ill-formed sequence (\xff, \xfe, the cut \xe2\x82) is one U+FFFD. */
	static const char want[] = "a\"b\\c\n\x01\xef\xbf\xbd\xef\xbf\xbd caf\xc3\xa9 "
				   "\x7f\xef\xbf\xbdxxx";
	cr_assert_eq(strncmp(sn, want, sizeof(want) - 1), 0, "got %s", sn);
	/* The field's 127 bytes, where 4 ill-formed bytes became 3 replacements of 3 bytes. */
	cr_assert_eq(strlen(sn), FLOW_SERVER_NAME_LEN - 1 + 3 * 3 - 4);
	cr_assert_eq(python_checks_line(line, (const unsigned char *)r->server_name,
					sizeof(r->server_name) - 1),
		     0, "Python reads another server name from %s", line);
	json_decref(o);
	free(line);
	flow_record__free(r);
	json_decref(schema);
}

/* ---- anomaly log: rotation ---- */

/* One line per sequence number: the seq is in src_port / server_name. */
static void write_seq(struct anomaly_log *l, struct flow_record *r, unsigned seq)
{
	r->key.sport = (uint16_t)(seq % 60000);
	snprintf(r->server_name, sizeof(r->server_name), "seq-%06u.example.org", seq);
	cr_assert_eq(anomaly_log__write(l, r, "10.42.0.130", "remote", VERDICT_PROTOCOL_NEVER_USED),
		     0);
}

/* Read every line of a file; record each seq in seen[]. Returns the line count. */
static unsigned check_file(const char *path, unsigned *seen, unsigned n, uint64_t max_bytes)
{
	char *text = read_all(path);
	cr_assert_not_null(text, "%s missing", path);
	size_t size = strlen(text);
	if (max_bytes)
		cr_assert_leq(size, max_bytes, "%s is %zu bytes, over %llu", path, size,
			      (unsigned long long)max_bytes);
	cr_assert(size == 0 || text[size - 1] == '\n', "%s ends in a torn line", path);
	unsigned lines = 0;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_error_t err;
		json_t *o = json_loads(line, 0, &err);
		cr_assert_not_null(o, "%s: torn or invalid line: %.80s (%s)", path, line, err.text);
		cr_assert(json_is_object(o));
		unsigned seq;
		cr_assert_eq(
		    sscanf(json_string_value(json_object_get(o, "server_name")), "seq-%u", &seq),
		    1);
		cr_assert_lt(seq, n);
		seen[seq]++;
		json_decref(o);
		lines++;
	}
	free(text);
	return lines;
}

/* check_file on the live log and on every rotated file (path.1, path.2, ...) until one is
 * missing: the lines of all, the files in *files. */
static unsigned check_rotated(const char *dir, const char *path, unsigned *seen, unsigned n,
			      uint64_t max_bytes, unsigned *files)
{
	unsigned total = check_file(path, seen, n, max_bytes);
	*files = 1;
	for (unsigned i = 1;; i++) {
		char name[64];
		snprintf(name, sizeof(name), "anomalies.log.%u", i);
		char *p = path_in(dir, name);
		bool there = exists(p);
		if (there) {
			total += check_file(p, seen, n, max_bytes);
			(*files)++;
		}
		free(p);
		if (!there)
			return total;
	}
}

Test(outputs, anomaly_log_rotation_keeps_every_line_once)
{
	char *dir = make_tmpdir();
	char *path = path_in(dir, "anomalies.log");
	const unsigned n = 10000, keep = 1000;
	const uint64_t max = 64 * 1024;
	struct anomaly_log *l = anomaly_log__open(path, max, keep);
	cr_assert_not_null(l);
	struct flow_record *r = mkrec("10.42.0.130", "93.184.216.34", 1, 6881, 6, "BitTorrent", "");
	for (unsigned i = 0; i < n; i++)
		write_seq(l, r, i);
	const struct linefile_stats *st = anomaly_log__stats(l);
	cr_assert_eq(st->lines, n);
	cr_assert_eq(st->errors, 0);
	cr_assert_geq(st->rotations, 5, "only %llu rotations", (unsigned long long)st->rotations);
	cr_assert_lt(st->rotations, keep);
	const uint64_t rotations = st->rotations;
	anomaly_log__close(l);

	unsigned *seen = calloc(n, sizeof(*seen)), files;
	unsigned total = check_rotated(dir, path, seen, n, max, &files);
	cr_assert_eq(files, rotations + 1);
	cr_assert_eq(total, n);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(seen[i], 1, "line %u seen %u times", i, seen[i]);
	free(seen);
	flow_record__free(r);
	rm_rf(dir);
	free(path);
	free(dir);
}

/* The detector's way: lines batched, written whole at each flush (and when a batch fills up or
 * a rotation is due): the files hold the same lines, whole, each once, none over max_bytes. */
Test(outputs, anomaly_log_batched_lines_rotate_whole_and_once)
{
	char *dir = make_tmpdir();
	char *path = path_in(dir, "anomalies.log");
	const unsigned n = 10000, keep = 1000;
	const uint64_t max = 64 * 1024;
	struct anomaly_log *l = anomaly_log__open(path, max, keep);
	cr_assert_not_null(l);
	struct flow_record *r = mkrec("10.42.0.130", "93.184.216.34", 1, 6881, 6, "BitTorrent", "");
	unsigned flushed_at = 0;
	for (unsigned i = 0; i < n; i++) {
		r->key.sport = (uint16_t)(i % 60000);
		snprintf(r->server_name, sizeof(r->server_name), "seq-%06u.example.org", i);
		cr_assert_eq(anomaly_log__write_batched(l, r, "10.42.0.130", "remote",
							VERDICT_PROTOCOL_NEVER_USED),
			     0);
		if (i % 37 == 36) {
			cr_assert_eq(anomaly_log__flush(l), 0);
			/* after a flush, everything logged so far is in the files */
			cr_assert_eq(anomaly_log__stats(l)->lines, i + 1);
			flushed_at = i + 1;
		}
	}
	cr_assert_leq(anomaly_log__stats(l)->lines, n);
	cr_assert_geq(anomaly_log__stats(l)->lines, flushed_at);
	anomaly_log__close(l); /* writes the rest */
	unsigned *seen = calloc(n, sizeof(*seen)), files;
	unsigned total = check_rotated(dir, path, seen, n, max, &files);
	cr_assert_eq(total, n);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(seen[i], 1, "line %u seen %u times", i, seen[i]);
	free(seen);
	flow_record__free(r);
	rm_rf(dir);
	free(path);
	free(dir);
}

Test(outputs, anomaly_log_batched_write_error_counts_every_line, .init = cr_redirect_stderr)
{
	struct anomaly_log *l = anomaly_log__open("/dev/full", 0, 1);
	cr_assert_not_null(l);
	struct flow_record *r = mkrec("10.42.0.130", "93.184.216.34", 1, 22, 6, "SSH", "");
	for (int i = 0; i < 5; i++)
		cr_assert_eq(anomaly_log__write_batched(l, r, "a", "b", VERDICT_PROTOCOL_NEVER_USED),
			     0);
	cr_assert_eq(anomaly_log__flush(l), -ENOSPC);
	cr_assert_eq(anomaly_log__stats(l)->errors, 5);
	cr_assert_eq(anomaly_log__stats(l)->lines, 0);
	cr_assert_eq(anomaly_log__flush(l), 0); /* nothing left to write */
	anomaly_log__close(l);
	flow_record__free(r);
	fflush(stderr);
	cr_assert_stderr_eq_str("svcsensor: /dev/full: cannot write: No space left on device "
				"(anomaly lines are being lost; further errors are only counted)\n");
}

Test(outputs, anomaly_log_keeps_only_log_keep_files)
{
	char *dir = make_tmpdir();
	char *path = path_in(dir, "anomalies.log");
	const unsigned n = 3000, keep = 3;
	const uint64_t max = 16 * 1024;
	struct anomaly_log *l = anomaly_log__open(path, max, keep);
	cr_assert_not_null(l);
	struct flow_record *r = mkrec("10.42.0.130", "93.184.216.34", 1, 6881, 6, "BitTorrent", "");
	for (unsigned i = 0; i < n; i++)
		write_seq(l, r, i);
	cr_assert_gt(anomaly_log__stats(l)->rotations, keep + 2);
	anomaly_log__close(l);

	/* The live file plus .1 .. .keep, nothing else in the directory. */
	unsigned entries = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			entries++;
	closedir(d);
	cr_assert_eq(entries, keep + 1);
	unsigned *seen = calloc(n, sizeof(*seen));
	unsigned total = check_file(path, seen, n, max);
	for (unsigned i = 1; i <= keep; i++) {
		char name[64];
		snprintf(name, sizeof(name), "anomalies.log.%u", i);
		char *p = path_in(dir, name);
		total += check_file(p, seen, n, max);
		free(p);
	}
	/* What is kept is the newest lines, each once, without a gap. */
	for (unsigned i = n - total; i < n; i++)
		cr_assert_eq(seen[i], 1, "line %u seen %u times", i, seen[i]);
	for (unsigned i = 0; i < n - total; i++)
		cr_assert_eq(seen[i], 0);
	free(seen);
	flow_record__free(r);
	rm_rf(dir);
	free(path);
	free(dir);
}

Test(outputs, anomaly_log_reopen_after_external_rename)
{
	char *dir = make_tmpdir();
	char *path = path_in(dir, "anomalies.log");
	char *old = path_in(dir, "anomalies.log-20240101");
	struct anomaly_log *l = anomaly_log__open(path, 0, 5);
	cr_assert_not_null(l);
	struct flow_record *r = mkrec("10.42.0.130", "93.184.216.34", 1, 22, 6, "SSH", "");
	for (unsigned i = 0; i < 10; i++)
		write_seq(l, r, i);
	cr_assert_eq(rename(path, old), 0); /* logrotate */
	for (unsigned i = 10; i < 15; i++)
		write_seq(l, r, i); /* still the renamed file until the reopen */
	cr_assert_not(exists(path));
	cr_assert_eq(anomaly_log__reopen(l), 0);
	cr_assert(exists(path));
	for (unsigned i = 15; i < 22; i++)
		write_seq(l, r, i);
	anomaly_log__close(l);

	unsigned seen[22] = {0};
	cr_assert_eq(check_file(old, seen, 22, 0), 15);
	cr_assert_eq(check_file(path, seen, 22, 0), 7);
	for (unsigned i = 0; i < 22; i++)
		cr_assert_eq(seen[i], 1);
	flow_record__free(r);
	rm_rf(dir);
	free(path);
	free(old);
	free(dir);
}

Test(outputs, anomaly_log_open_error_is_one_line, .init = cr_redirect_stderr)
{
	cr_assert_null(anomaly_log__open("/nonexistent-dir/anomalies.log", 0, 1));
	fflush(stderr);
	cr_assert_stderr_eq_str(
	    "svcsensor: /nonexistent-dir/anomalies.log: cannot open the anomaly log: "
	    "No such file or directory\n");
}

Test(outputs, anomaly_log_write_error_reported_once_and_counted, .init = cr_redirect_stderr)
{
	struct anomaly_log *l = anomaly_log__open("/dev/full", 0, 1);
	cr_assert_not_null(l);
	struct flow_record *r = mkrec("10.42.0.130", "93.184.216.34", 1, 22, 6, "SSH", "");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(anomaly_log__write(l, r, "a", "b", VERDICT_PROTOCOL_NEVER_USED),
			     -ENOSPC);
	cr_assert_eq(anomaly_log__stats(l)->errors, 3);
	cr_assert_eq(anomaly_log__stats(l)->lines, 0);
	anomaly_log__close(l);
	flow_record__free(r);
	fflush(stderr);
	cr_assert_stderr_eq_str(
	    "svcsensor: /dev/full: cannot write: No space left on device "
	    "(anomaly lines are being lost; further errors are only counted)\n");
}

/* ---- report ---- */

/* Hand-built flows. Bytes per flow are chosen so the expected text below can be worked out on
 * paper: the NONE source 10.42.0.130 has 300+100+50 = 450 bytes to 10.42.0.1 and 1000+550 =
 * 1550 to remote: 2000 in all, shares 22.50% and 77.50%. */
static struct report *hand_report(void)
{
	struct report *r = report__new();
	cr_assert_not_null(r);
	cr_assert_eq(report__add(r, VERDICT_NONE, "10.42.0.130", "10.42.0.1", "DNS", 300, 1000), 0);
	cr_assert_eq(
	    report__add(r, VERDICT_NONE, "10.42.0.130", "remote", "TLS.Amazon", 1000, 2000), 0);
	cr_assert_eq(
	    report__add(r, VERDICT_NONE, "10.42.0.130", "10.42.0.1", "DNS.Amazon", 100, 3000), 0);
	cr_assert_eq(report__add(r, VERDICT_NONE, "10.42.0.130", "remote", "HTTP", 550, 4000), 0);
	cr_assert_eq(report__add(r, VERDICT_NONE, "10.42.0.130", "10.42.0.1", "DNS", 50, 5000), 0);
	cr_assert_eq(report__add(r, VERDICT_NONE, "remote", "10.42.0.130", "TLS", 691, 6000), 0);
	/* UNKNOWN_SOURCE_IP: one source, one destination. */
	cr_assert_eq(report__add(r, VERDICT_UNKNOWN_SOURCE_IP, "10.42.0.1", "10.42.0.130", "ICMP",
				 2470, 7000),
		     0);
	cr_assert_eq(report__add(r, VERDICT_UNKNOWN_SOURCE_IP, "10.42.0.1", "10.42.0.130", "ICMP",
				 2470, 8000),
		     0);
	/* PROTOCOL_NEVER_USED: two sources with equal bytes (ordered by name), and shares that
	 * need rounding: 1/3 each -> 33.34 + 33.33 + 33.33 (the first by order takes the unit). */
	cr_assert_eq(
	    report__add(r, VERDICT_PROTOCOL_NEVER_USED, "remote", "10.42.0.130", "ICMP", 300, 9000),
	    0);
	cr_assert_eq(report__add(r, VERDICT_PROTOCOL_NEVER_USED, "10.42.0.130", "remote",
				 "BitTorrent", 100, 10000),
		     0);
	cr_assert_eq(report__add(r, VERDICT_PROTOCOL_NEVER_USED, "10.42.0.130", "10.42.0.2", "SSH",
				 100, 11000),
		     0);
	cr_assert_eq(report__add(r, VERDICT_PROTOCOL_NEVER_USED, "10.42.0.130", "10.42.0.10",
				 "SSDP", 100, 12000),
		     0);
	/* DNS_TLS_APPLICATION: 2 bytes of 3 -> 66.67 / 33.33. */
	cr_assert_eq(report__add(r, VERDICT_DNS_TLS_APPLICATION, "10.42.0.130", "remote",
				 "TLS.Wikipedia", 2, 13000),
		     0);
	cr_assert_eq(report__add(r, VERDICT_DNS_TLS_APPLICATION, "10.42.0.130", "10.42.0.1",
				 "DNS.Wikipedia", 1, 14000),
		     0);
	return r;
}

/* Derived by hand from hand_report(): sections NONE, then the anomalies alphabetically by
 * label (the seed's order); sources and destinations by bytes descending, ties by name. */
static const char expected_text[] =
    "+++++++ NONE anomaly flows +++++++\n"
    "+ 10.42.0.130     exchange      2000 bytes with: \n"
    "\t - remote         ,      1550 bytes (77.50%) using ['TLS.Amazon', 'HTTP']\n"
    "\t - 10.42.0.1      ,       450 bytes (22.50%) using ['DNS', 'DNS.Amazon']\n"
    "+ remote          exchange       691 bytes with: \n"
    "\t - 10.42.0.130    ,       691 bytes (100.00%) using ['TLS']\n"
    "\n"
    "+++++++ DNS/TLS APPLICATION anomaly flows +++++++\n"
    "+ 10.42.0.130     exchange         3 bytes with: \n"
    "\t - remote         ,         2 bytes (66.67%) using ['TLS.Wikipedia']\n"
    "\t - 10.42.0.1      ,         1 bytes (33.33%) using ['DNS.Wikipedia']\n"
    "\n"
    "+++++++ PROTOCOL NEVER USED anomaly flows +++++++\n"
    "+ 10.42.0.130     exchange       300 bytes with: \n"
    "\t - 10.42.0.10     ,       100 bytes (33.34%) using ['SSDP']\n"
    "\t - 10.42.0.2      ,       100 bytes (33.33%) using ['SSH']\n"
    "\t - remote         ,       100 bytes (33.33%) using ['BitTorrent']\n"
    "+ remote          exchange       300 bytes with: \n"
    "\t - 10.42.0.130    ,       300 bytes (100.00%) using ['ICMP']\n"
    "\n"
    "+++++++ UNKNOWN SOURCE IP anomaly flows +++++++\n"
    "+ 10.42.0.1       exchange      4940 bytes with: \n"
    "\t - 10.42.0.130    ,      4940 bytes (100.00%) using ['ICMP']\n"
    "\n"
    "+++++++ On 14 flows, 8 anomalies +++++++\n";

static char *report_text(const struct report *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	cr_assert_eq(report__write_text(r, m), 0);
	fclose(m);
	return buf;
}

Test(outputs, report_text_matches_hand_derived)
{
	struct report *r = hand_report();
	char *text = report_text(r);
	cr_assert_str_eq(text, expected_text);
	uint64_t flows, anomalies;
	report__totals(r, &flows, &anomalies);
	cr_assert_eq(flows, 14);
	cr_assert_eq(anomalies, 8);
	free(text);
	report__free(r);
}

Test(outputs, report_empty)
{
	struct report *r = report__new();
	char *text = report_text(r);
	cr_assert_str_eq(text, "+++++++ On 0 flows, 0 anomalies +++++++\n");
	free(text);
	report__free(r);
}

/* For many sources with awkward byte counts, the printed shares of each source add up to
 * exactly 100.00%. */
Test(outputs, report_shares_sum_to_100)
{
	struct report *r = report__new();
	unsigned seed = 12345;
	for (int s = 0; s < 40; s++) {
		char src[32];
		snprintf(src, sizeof(src), "10.0.0.%d", s);
		int ndst = 1 + s % 7;
		for (int d = 0; d < ndst; d++) {
			char dst[32];
			snprintf(dst, sizeof(dst), "10.0.1.%d", d);
			seed = seed * 1103515245u + 12345u;
			cr_assert_eq(report__add(r, (enum verdict)(s % VERDICT__COUNT), src, dst,
						 "X", 1 + (seed >> 8) % 100000, 0),
				     0);
		}
	}
	char *text = report_text(r);
	unsigned sum = 0, sources = 0;
	bool in_source = false;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned whole, hundredths;
		const char *paren = strchr(line, '(');
		if (line[0] == '+' && line[1] == ' ') {
			if (in_source)
				cr_assert_eq(sum, 10000, "shares of a source add up to %u", sum);
			in_source = true;
			sources++;
			sum = 0;
		} else if (line[0] == '\t' && paren &&
			   sscanf(paren, "(%u.%u%%)", &whole, &hundredths) == 2) {
			sum += whole * 100 + hundredths;
		} else if (line[0] == '+' || line[0] == '\0') {
			if (in_source)
				cr_assert_eq(sum, 10000, "shares of a source add up to %u", sum);
			in_source = false;
		}
	}
	cr_assert_eq(sources, 40);
	free(text);
	report__free(r);
}

/* Re-create the text from the JSON form with the seed's layout: it must equal the text form. */
static char *text_from_json(const json_t *root)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	size_t i, j, k, a;
	json_t *sec, *src, *dst, *app;
	json_array_foreach(json_object_get(root, "verdicts"), i, sec)
	{
		fprintf(m, "+++++++ %s anomaly flows +++++++\n",
			json_string_value(json_object_get(sec, "label")));
		uint64_t sec_flows = 0;
		json_array_foreach(json_object_get(sec, "sources"), j, src)
		{
			fprintf(m, "+ %-15s exchange %9lld bytes with: \n",
				json_string_value(json_object_get(src, "source")),
				json_integer_value(json_object_get(src, "bytes")));
			uint64_t src_flows = 0;
			double share_sum = 0;
			json_array_foreach(json_object_get(src, "destinations"), k, dst)
			{
				double share = json_number_value(json_object_get(dst, "share"));
				share_sum += share;
				src_flows +=
				    (uint64_t)json_integer_value(json_object_get(dst, "flows"));
				fprintf(m, "\t - %-15s, %9lld bytes (%.2f%%) using [",
					json_string_value(json_object_get(dst, "destination")),
					json_integer_value(json_object_get(dst, "bytes")), share);
				json_array_foreach(json_object_get(dst, "apps"), a, app)
				    fprintf(m, "%s'%s'", a ? ", " : "", json_string_value(app));
				fprintf(m, "]\n");
			}
			cr_assert_float_eq(share_sum, 100.0, 1e-6);
			cr_assert_eq(src_flows,
				     (uint64_t)json_integer_value(json_object_get(src, "flows")));
			sec_flows += src_flows;
		}
		cr_assert_eq(sec_flows,
			     (uint64_t)json_integer_value(json_object_get(sec, "flows")));
		cr_assert_eq(sec_flows,
			     (uint64_t)json_integer_value(json_object_get(
				 json_object_get(json_object_get(root, "totals"), "per_verdict"),
				 json_string_value(json_object_get(sec, "verdict")))));
		fprintf(m, "\n");
	}
	json_t *tot = json_object_get(root, "totals");
	fprintf(m, "+++++++ On %lld flows, %lld anomalies +++++++\n",
		json_integer_value(json_object_get(tot, "flows")),
		json_integer_value(json_object_get(tot, "anomalies")));
	fclose(m);
	return buf;
}

Test(outputs, report_json_agrees_with_text)
{
	struct report *r = hand_report();
	char *dumped = NULL;
	size_t dlen = 0;
	FILE *m = open_memstream(&dumped, &dlen);
	cr_assert_eq(report__write_json(r, m), 0);
	fclose(m);
	/* As a reader of the saved file sees it. */
	json_error_t jerr;
	json_t *parsed = json_loads(dumped, 0, &jerr);
	cr_assert_not_null(parsed, "%s at %d:%d in:\n%s", jerr.text, jerr.line, jerr.column,
			   dumped);
	char *text = text_from_json(parsed);
	cr_assert_str_eq(text, expected_text);
	json_t *per = json_object_get(json_object_get(parsed, "totals"), "per_verdict");
	cr_assert_eq(json_object_size(per), VERDICT__COUNT);
	cr_assert_eq(json_integer_value(json_object_get(per, "UNKNOWN_DESTINATION_IP")), 0);
	cr_assert_eq(json_integer_value(json_object_get(per, "NONE")), 6);
	free(text);
	free(dumped);
	json_decref(parsed);
	report__free(r);
}

Test(outputs, report_saved_atomically_and_printed)
{
	char *dir = make_tmpdir();
	char *path = path_in(dir, "report.txt");
	char *jpath = path_in(dir, "report.txt.json");
	struct report *r = hand_report();
	cr_assert_eq(report__save(r, path), 0);
	char *text = read_all(path);
	cr_assert_str_eq(text, expected_text);
	json_error_t err;
	json_t *root = json_load_file(jpath, 0, &err);
	cr_assert_not_null(root, "%s", err.text);
	char *again = text_from_json(root);
	cr_assert_str_eq(again, expected_text);
	/* No temporary file left behind. */
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned entries = 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			entries++;
	closedir(d);
	cr_assert_eq(entries, 2);
	/* svcsensor -a */
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	cr_assert_eq(report__print_saved(path, m), 0);
	fclose(m);
	cr_assert_str_eq(buf, expected_text);
	free(buf);
	free(again);
	free(text);
	json_decref(root);
	report__free(r);
	rm_rf(dir);
	free(path);
	free(jpath);
	free(dir);
}

Test(outputs, report_print_saved_missing_is_one_line, .init = cr_redirect_stderr)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	cr_assert_eq(report__print_saved("/nonexistent-dir/report.txt", m), -ENOENT);
	fclose(m);
	cr_assert_str_eq(buf, "");
	free(buf);
	fflush(stderr);
	cr_assert_stderr_eq_str(
	    "svcsensor: /nonexistent-dir/report.txt: no saved report yet (the sensor "
	    "writes it every report_interval and at exit)\n");
}

Test(outputs, report_save_failure_keeps_nothing_half_written, .init = cr_redirect_stderr)
{
	struct report *r = hand_report();
	cr_assert_eq(report__save(r, "/nonexistent-dir/report.txt"), -ENOENT);
	report__free(r);
}

/* The JSON report escapes what JSON needs escaped (quote, backslash, control bytes), so any
 * name reads back as it was. */
Test(outputs, report_json_escapes_names)
{
	static const char *const apps[] = {"plain", "quo\"te", "back\\slash", "ctl\x01\x1f"};
	struct report *r = report__new();
	cr_assert_not_null(r);
	for (size_t i = 0; i < sizeof(apps) / sizeof(*apps); i++)
		cr_assert_eq(report__add(r, VERDICT_NONE, "10.42.0.130", "remote", apps[i], 10,
					 1000 + i),
			     0);
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	cr_assert_eq(report__write_json(r, m), 0);
	fclose(m);
	json_error_t err;
	json_t *root = json_loads(text, 0, &err);
	cr_assert_not_null(root, "%s in:\n%s", err.text, text);
	json_t *got = json_object_get(
	    json_array_get(
		json_object_get(
		    json_array_get(
			json_object_get(json_array_get(json_object_get(root, "verdicts"), 0),
					"sources"),
			0),
		    "destinations"),
		0),
	    "apps");
	cr_assert_eq(json_array_size(got), sizeof(apps) / sizeof(*apps));
	for (size_t i = 0; i < sizeof(apps) / sizeof(*apps); i++)
		cr_assert_str_eq(json_string_value(json_array_get(got, i)), apps[i]);
	json_decref(root);
	free(text);
	report__free(r);
}
