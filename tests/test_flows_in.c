/* test_flows_in.c - the flow CSV input (svcsensor --learn --flows-in): a map learned from the
 * binary's own flow export equals the map learned from the packets; an nfstream to_csv() file
 * (nfstream's full column list and quoting) gives the map worked out by hand; records carry
 * every field; columns in any order; bad rows counted and reported with their line; files
 * that cannot be used are one-line fatal errors. The end-to-end tests run $SVCSENSOR_BIN
 * (make test sets it) and are skipped without it. */
#include <urcu.h>

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "svcsensor/common.h"
#include "svcsensor/flow.h"
#include "svcsensor/flows_in.h"
#include "svcsensor/service_map.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static char tmpdir[64];

static void setup(void)
{
	rcu_register_thread();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/svcsensor-flowsin-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void rm_tmpdir(void)
{
	rm_tree(tmpdir);
}

static void teardown(void)
{
	rm_tmpdir();
	rcu_unregister_thread();
}

/* cr_skip_test ends the test without .fini: clean up first. */
#define SKIP(...)                                                                                  \
	do {                                                                                       \
		rm_tmpdir();                                                                       \
		cr_skip_test(__VA_ARGS__);                                                         \
	} while (0)

TestSuite(flows_in, .init = setup, .fini = teardown);

static const char *tmp_path(const char *name)
{
	static char path[4][200];
	static int next;
	char *p = path[next++ % 4];
	snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
	return p;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	fclose(f);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The binary under test, or skip. */
static const char *sensor_bin(void)
{
	const char *bin = getenv("SVCSENSOR_BIN");
	if (!bin || !bin[0])
		SKIP("SVCSENSOR_BIN is not set (make test sets it)");
	if (access(bin, X_OK) != 0)
		SKIP("SVCSENSOR_BIN=%s is not an executable", bin);
	return bin;
}

/* Run the binary in tmpdir with args (NULL-terminated), a clean environment (no
 * SVCSENSOR_CONFIG from the caller), stdout to tmpdir/run.out; its stderr into *err (malloc'd).
 * Returns the exit status, -1 if it did not exit. */
static int run_sensor(const char *const args[], char **err)
{
	const char *bin = sensor_bin();
	const char *argv[32] = {bin};
	char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
	char out_path[200], err_path[200];
	size_t n = 1;
	int status;

	for (; args[n - 1]; n++) {
		cr_assert_lt(n, SVC_ARRAY_LEN(argv) - 1);
		argv[n] = args[n - 1];
	}
	argv[n] = NULL;
	snprintf(out_path, sizeof(out_path), "%s/run.out", tmpdir);
	snprintf(err_path, sizeof(err_path), "%s/run.err", tmpdir);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0 || chdir(tmpdir) != 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		execve(bin, (char *const *)argv, envp);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	*err = read_file(err_path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* pcaps/NAME, found from the working directory (make test runs at the top) or next to the
 * binary ($(BUILD)/svcsensor -> ../pcaps). */
static const char *pcap_path(const char *name)
{
	static char path[PATH_MAX];
	snprintf(path, sizeof(path), "pcaps/%s", name);
	if (access(path, R_OK) != 0) {
		const char *bin = sensor_bin();
		const char *slash = strrchr(bin, '/');
		int dir = slash ? (int)(slash - bin) : 0;
		snprintf(path, sizeof(path), "%.*s/../pcaps/%s", dir, slash ? bin : ".", name);
	}
	static char abs_path[PATH_MAX];
	if (access(path, R_OK) != 0 || !realpath(path, abs_path)) /* the run is in tmpdir */
		SKIP("pcaps/%s not found", name);
	return abs_path;
}

/* A map file as a sorted list of entries (svcmap__foreach sorts). */
struct entry {
	char src[HOSTKEY_LEN], dst[HOSTKEY_LEN], app[256];
	struct svcmap_counters c;
};
struct entries {
	struct entry *v;
	size_t n, cap;
};

static void collect(void *ctx, const char *src, const char *dst, const char *app,
		    const struct svcmap_counters *cnt)
{
	struct entries *e = ctx;
	if (e->n == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 64;
		e->v = realloc(e->v, e->cap * sizeof(*e->v));
		cr_assert_not_null(e->v);
	}
	struct entry *x = &e->v[e->n++];
	snprintf(x->src, sizeof(x->src), "%s", src);
	snprintf(x->dst, sizeof(x->dst), "%s", dst);
	snprintf(x->app, sizeof(x->app), "%s", app);
	x->c = *cnt;
}

static struct entries map_entries(const char *path)
{
	struct entries e = {0};
	bool missing = false;
	struct svcmap *m = svcmap__load(path, &missing);
	cr_assert_not_null(m, "%s: %s", path, missing ? "missing" : "does not load");
	rcu_read_lock();
	svcmap__foreach(m, collect, &e);
	rcu_read_unlock();
	svcmap__free(m);
	return e;
}

static void expect_entry(const struct entries *e, const char *src, const char *dst, const char *app,
			 uint64_t flows, uint64_t bytes, uint64_t first_ms, uint64_t last_ms)
{
	for (size_t i = 0; i < e->n; i++) {
		const struct entry *x = &e->v[i];
		if (strcmp(x->src, src) || strcmp(x->dst, dst) || strcmp(x->app, app))
			continue;
		cr_expect_eq(x->c.flows, flows, "%s -> %s %s: flows %lu, want %lu", src, dst, app,
			     (unsigned long)x->c.flows, (unsigned long)flows);
		cr_expect_eq(x->c.bytes, bytes, "%s -> %s %s: bytes %lu, want %lu", src, dst, app,
			     (unsigned long)x->c.bytes, (unsigned long)bytes);
		cr_expect_eq(x->c.first_ms, first_ms, "%s -> %s %s: first_seen_ms", src, dst, app);
		cr_expect_eq(x->c.last_ms, last_ms, "%s -> %s %s: last_seen_ms", src, dst, app);
		return;
	}
	cr_expect_fail("%s -> %s %s: not in the map", src, dst, app);
}

/* Records handed to the callback, copied. */
struct records {
	struct flow_record v[64];
	size_t n;
	int stop_after; /* return 7 after this many (0 = never) */
};

static int keep_record(void *ctx, const struct flow_record *rec)
{
	struct records *r = ctx;
	cr_assert_lt(r->n, SVC_ARRAY_LEN(r->v));
	r->v[r->n++] = *rec;
	return r->stop_after && r->n == (size_t)r->stop_after ? 7 : 0;
}

static void addr_of(const char *text, uint8_t out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, text, out) != 1)
		cr_assert_eq(inet_pton(AF_INET6, text, out), 1, "%s", text);
}

/* ---- fixtures ------------------------------------------------------------------------------ */

/* nfstream's to_csv() of six flows, written by hand: nfstream's column list in its order (no
 * statistical or splt columns), every text field quoted, a quote inside one escaped as \" (what
 * nfstream's csv_converter does), commas inside quoted user_agent and content_type. */
/* clang-format off */
static const char nfstream_csv[] =
	"id,expiration_id,src_ip,src_mac,src_oui,src_port,dst_ip,dst_mac,dst_oui,dst_port,"
	"protocol,ip_version,vlan_id,tunnel_id,bidirectional_first_seen_ms,"
	"bidirectional_last_seen_ms,bidirectional_duration_ms,bidirectional_packets,"
	"bidirectional_bytes,src2dst_first_seen_ms,src2dst_last_seen_ms,src2dst_duration_ms,"
	"src2dst_packets,src2dst_bytes,dst2src_first_seen_ms,dst2src_last_seen_ms,"
	"dst2src_duration_ms,dst2src_packets,dst2src_bytes,application_name,"
	"application_category_name,application_is_guessed,application_confidence,"
	"requested_server_name,client_fingerprint,server_fingerprint,user_agent,content_type\n"
	/* line 2 */
	"0,0,\"192.168.1.10\",\"3c:22:fb:12:34:56\",\"3c:22:fb\",53001,"
	"\"8.8.8.8\",\"f4:92:bf:65:43:21\",\"f4:92:bf\",53,17,4,0,0,"
	"1700000000000,1700000000050,50,2,200,1700000000000,1700000000049,49,1,80,"
	"1700000000001,1700000000050,49,1,120,"
	"\"DNS.Google\",\"Network\",0,6,\"www.google.com\",\"\",\"\",\"\",\"\"\n"
	/* line 3 */
	"1,0,\"192.168.1.10\",\"3c:22:fb:12:34:56\",\"3c:22:fb\",40000,"
	"\"142.250.180.14\",\"f4:92:bf:65:43:21\",\"f4:92:bf\",443,6,4,0,0,"
	"1700000001000,1700000009000,8000,20,15000,1700000001000,1700000008999,7999,8,2000,"
	"1700000001001,1700000009000,7999,12,13000,"
	"\"TLS.YouTube\",\"Media\",0,6,\"www.youtube.com\",\"t13d1516h2_8daaf6152771_02713d6af862\","
	"\"\",\"Mozilla/5.0 (X11; Linux x86_64), Gecko\",\"text/html, charset=utf-8\"\n"
	/* line 4 */
	"2,1,\"192.168.1.10\",\"3c:22:fb:12:34:56\",\"3c:22:fb\",53002,"
	"\"8.8.4.4\",\"f4:92:bf:65:43:21\",\"f4:92:bf\",53,17,4,0,0,"
	"1699999999000,1699999999020,20,2,300,1699999999000,1699999999019,19,1,90,"
	"1699999999001,1699999999020,19,1,210,"
	"\"DNS.Google\",\"Network\",0,6,\"youtube.com\",\"\",\"\",\"\",\"\"\n"
	/* line 5 */
	"3,0,\"192.168.1.20\",\"3c:22:fb:12:34:56\",\"3c:22:fb\",41000,"
	"\"192.168.1.1\",\"f4:92:bf:65:43:21\",\"f4:92:bf\",53,17,4,10,0,"
	"1700000002000,1700000002010,10,2,150,1700000002000,1700000002009,9,1,70,"
	"1700000002001,1700000002010,9,1,80,"
	"\"DNS\",\"Network\",0,6,\"printer.lan\",\"\",\"\",\"\",\"\"\n"
	/* line 6 */
	"4,0,\"fd00::5\",\"3c:22:fb:12:34:56\",\"3c:22:fb\",50000,"
	"\"2001:db8::1\",\"f4:92:bf:65:43:21\",\"f4:92:bf\",443,17,6,0,0,"
	"1700000003000,1700000004000,1000,10,9000,1700000003000,1700000003999,999,4,1000,"
	"1700000003001,1700000004000,999,6,8000,"
	"\"QUIC.YouTube\",\"Media\",1,2,\"rr1.googlevideo.com\",\"\",\"\","
	"\"Mozilla/5.0 \\\"quoted\\\", more\",\"\"\n"
	/* line 7 */
	"5,0,\"192.168.1.10\",\"3c:22:fb:12:34:56\",\"3c:22:fb\",40002,"
	"\"142.250.180.14\",\"f4:92:bf:65:43:21\",\"f4:92:bf\",443,6,4,0,0,"
	"1700000010000,1700000012000,2000,8,1000,1700000010000,1700000011999,1999,4,300,"
	"1700000010001,1700000012000,1999,4,700,"
	"\"TLS.YouTube\",\"Media\",0,6,\"www.youtube.com\",\"\",\"\",\"\",\"\"\n";
/* clang-format on */

/* The map worked out by hand from nfstream_csv with the default local networks (10/8,
 * 172.16/12, 192.168/16, fc00::/7, fe80::/10; everything else is "remote"). */
static void expect_nfstream_map(const struct entries *e)
{
	cr_expect_eq(e->n, 4, "%zu entries, want 4", e->n);
	/* rows 0 and 2: flows 2, bytes 200 + 300, first of row 2, last of row 0 */
	expect_entry(e, "192.168.1.10", "remote", "DNS.Google", 2, 500, 1699999999000,
		     1700000000050);
	/* rows 1 and 5: bytes 15000 + 1000 */
	expect_entry(e, "192.168.1.10", "remote", "TLS.YouTube", 2, 16000, 1700000001000,
		     1700000012000);
	expect_entry(e, "192.168.1.20", "192.168.1.1", "DNS", 1, 150, 1700000002000, 1700000002010);
	expect_entry(e, "fd00::5", "remote", "QUIC.YouTube", 1, 9000, 1700000003000, 1700000004000);
}

/* ---- (a) the key test: CSV learning = packet learning -------------------------------------- */

Test(flows_in, learn_from_own_csv_equals_learn_from_packets, .timeout = 120)
{
	const char *pcap = pcap_path("baseline.pcap");
	char *err;
	const char *learn_pcap[] = {"--learn",	"-q",	 "-r",	      pcap,	 "-m",
				    "A.json",	"-o",	 "flows.csv", "--print", "none",
				    "--report", "a.txt", NULL};
	int rc = run_sensor(learn_pcap, &err);
	cr_assert_eq(rc, 0, "learn from pcap: exit %d\n%s", rc, err);
	free(err);

	const char *learn_csv[] = {"--learn", "--flows-in", "flows.csv", "-m",	  "B.json",
				   "--print", "none",	    "--report",	 "b.txt", NULL};
	rc = run_sensor(learn_csv, &err);
	cr_assert_eq(rc, 0, "learn from CSV: exit %d\n%s", rc, err);

	/* Every exported flow was learned. */
	char *csv = read_file(tmp_path("flows.csv"));
	size_t rows = count_lines(csv) - 1, n = 0, rejected = 1;
	cr_assert_gt(rows, 0);
	const char *sum = strstr(err, "flows.csv: ");
	cr_assert_not_null(sum, "no summary line:\n%s", err);
	cr_assert_eq(sscanf(sum, "flows.csv: %zu rows learned, %zu rejected", &n, &rejected), 2,
		     "%s", sum);
	cr_expect_eq(n, rows, "%zu rows learned, the CSV has %zu", n, rows);
	cr_expect_eq(rejected, 0);
	free(csv);
	free(err);

	/* Same sources, destinations, application sets and counters. */
	struct entries a = map_entries(tmp_path("A.json"));
	struct entries b = map_entries(tmp_path("B.json"));
	cr_assert_gt(a.n, 3, "the baseline map has %zu entries", a.n);
	cr_assert_eq(a.n, b.n, "%zu entries from packets, %zu from the CSV", a.n, b.n);
	for (size_t i = 0; i < a.n; i++) {
		const struct entry *x = &a.v[i], *y = &b.v[i];
		cr_expect_str_eq(x->src, y->src, "entry %zu", i);
		cr_expect_str_eq(x->dst, y->dst, "entry %zu", i);
		cr_expect_str_eq(x->app, y->app, "entry %zu", i);
		cr_expect_eq(x->c.flows, y->c.flows, "%s -> %s %s: flows", x->src, x->dst, x->app);
		cr_expect_eq(x->c.bytes, y->c.bytes, "%s -> %s %s: bytes", x->src, x->dst, x->app);
		cr_expect_eq(x->c.first_ms, y->c.first_ms, "%s -> %s %s: first", x->src, x->dst,
			     x->app);
		cr_expect_eq(x->c.last_ms, y->c.last_ms, "%s -> %s %s: last", x->src, x->dst,
			     x->app);
	}
	free(a.v);
	free(b.v);

	/* And the files themselves: the map file is written the same way from both. */
	char *ja = read_file(tmp_path("A.json")), *jb = read_file(tmp_path("B.json"));
	cr_expect_str_eq(ja, jb);
	free(ja);
	free(jb);
}

/* ---- (b) an nfstream file ------------------------------------------------------------------ */

Test(flows_in, nfstream_csv_learns_the_map_by_hand)
{
	char *err;
	write_file(tmp_path("nf.csv"), nfstream_csv);
	const char *args[] = {"--learn", "--flows-in", "nf.csv",   "-m",    "map.json",
			      "--print", "none",       "--report", "r.txt", NULL};
	int rc = run_sensor(args, &err);
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, err);
	cr_expect(strstr(err, "svcsensor: nf.csv: 6 rows learned, 0 rejected\n"), "%s", err);
	free(err);
	struct entries e = map_entries(tmp_path("map.json"));
	expect_nfstream_map(&e);
	free(e.v);
}

Test(flows_in, nfstream_records_carry_every_field)
{
	struct records r = {0};
	struct flows_in_stats st;
	uint8_t a[16];
	write_file(tmp_path("nf.csv"), nfstream_csv);
	cap_begin();
	int rc = flows_in__read(tmp_path("nf.csv"), keep_record, &r, &st);
	const char *err = cap_end();
	cr_assert_eq(rc, 0, "%d: %s", rc, err);
	cr_expect_str_eq(err, "");
	cr_assert_eq(r.n, 6);
	cr_expect_eq(st.rows, 6);
	cr_expect_eq(st.accepted, 6);
	cr_expect_eq(st.rejected, 0);

	/* row 1: TLS.YouTube, commas inside quoted fields */
	const struct flow_record *x = &r.v[1];
	addr_of("192.168.1.10", a);
	cr_expect_arr_eq(x->key.src, a, 16);
	addr_of("142.250.180.14", a);
	cr_expect_arr_eq(x->key.dst, a, 16);
	cr_expect_eq(x->key.ipver, 4);
	cr_expect_eq(x->key.sport, 40000);
	cr_expect_eq(x->key.dport, 443);
	cr_expect_eq(x->key.proto, 6);
	cr_expect_eq(x->key.vlan, 0);
	cr_expect_eq(x->first_us, 1700000001000ULL * 1000);
	cr_expect_eq(x->last_us, 1700000009000ULL * 1000);
	cr_expect_eq(x->pkts[0], 8);
	cr_expect_eq(x->pkts[1], 12);
	cr_expect_eq(x->bytes[0], 2000);
	cr_expect_eq(x->bytes[1], 13000);
	cr_expect_str_eq(x->app_name, "TLS.YouTube");
	cr_expect_str_eq(x->master_name, "TLS");
	cr_expect_str_eq(x->category, "Media");
	cr_expect_str_eq(x->server_name, "www.youtube.com");
	cr_expect_not(x->guessed);
	cr_expect_eq(x->end_reason, FLOW_END_IDLE); /* expiration_id 0 */

	/* row 2: expiration_id 1 = active timeout */
	cr_expect_eq(r.v[2].end_reason, FLOW_END_ACTIVE);

	/* row 3: a single name has no master; VLAN 10 */
	x = &r.v[3];
	cr_expect_str_eq(x->app_name, "DNS");
	cr_expect_str_eq(x->master_name, "");
	cr_expect_eq(x->key.vlan, 10);
	cr_expect_str_eq(x->server_name, "printer.lan");

	/* row 4: IPv6 in all 16 bytes, guessed, the \"-escaped user agent did not shift fields */
	x = &r.v[4];
	addr_of("fd00::5", a);
	cr_expect_arr_eq(x->key.src, a, 16);
	addr_of("2001:db8::1", a);
	cr_expect_arr_eq(x->key.dst, a, 16);
	cr_expect_eq(x->key.ipver, 6);
	cr_expect_eq(x->key.proto, 17);
	cr_expect(x->guessed);
	cr_expect_str_eq(x->app_name, "QUIC.YouTube");
	cr_expect_str_eq(x->master_name, "QUIC");
	cr_expect_str_eq(x->server_name, "rr1.googlevideo.com");
	cr_expect_eq(x->bytes[0] + x->bytes[1], 9000);

	/* IPv4 uses the first 4 bytes only */
	uint8_t zero[12] = {0};
	cr_expect_arr_eq(r.v[0].key.src + 4, zero, 12);
}

Test(flows_in, columns_in_any_order_extra_columns_bom_crlf)
{
	struct records r = {0};
	struct flows_in_stats st;
	uint8_t a[16];
	/* Only the required columns plus one count, shuffled, with unknown columns; a byte order
	 * mark; CRLF line ends; a bidirectional count only (it goes to src->dst). */
	write_file(tmp_path("odd.csv"),
		   "\xef\xbb\xbf"
		   "note,application_name,dst_ip,x,src_ip,bidirectional_bytes\r\n"
		   "\"hello, world\",HTTP,10.1.2.3,,10.9.8.7,1234\r\n"
		   "plain,\"SSH\",2001:db8::2,1,fe80::1,\r\n");
	cap_begin();
	int rc = flows_in__read(tmp_path("odd.csv"), keep_record, &r, &st);
	const char *err = cap_end();
	cr_assert_eq(rc, 0, "%d: %s", rc, err);
	cr_assert_eq(r.n, 2, "%s", err);
	addr_of("10.9.8.7", a);
	cr_expect_arr_eq(r.v[0].key.src, a, 16);
	addr_of("10.1.2.3", a);
	cr_expect_arr_eq(r.v[0].key.dst, a, 16);
	cr_expect_str_eq(r.v[0].app_name, "HTTP");
	cr_expect_eq(r.v[0].bytes[0], 1234);
	cr_expect_eq(r.v[0].bytes[1], 0);
	cr_expect_eq(r.v[0].key.sport, 0);
	cr_expect_eq(r.v[0].first_us, 0); /* unknown */
	cr_expect_eq(r.v[1].key.ipver, 6);
	cr_expect_str_eq(r.v[1].app_name, "SSH");
	cr_expect_eq(r.v[1].bytes[0], 0); /* empty = 0 */
	cr_expect_eq(st.rejected, 0);
}

Test(flows_in, callback_stops_the_read)
{
	struct records r = {.stop_after = 2};
	struct flows_in_stats st;
	write_file(tmp_path("nf.csv"), nfstream_csv);
	cr_assert_eq(flows_in__read(tmp_path("nf.csv"), keep_record, &r, &st), 7);
	cr_expect_eq(r.n, 2);
	cr_expect_eq(st.accepted, 2);
}

/* ---- (c) bad files ------------------------------------------------------------------------- */

Test(flows_in, bad_rows_counted_and_reported_with_their_line)
{
	struct records r = {0};
	struct flows_in_stats st;
	/* clang-format off */
	write_file(tmp_path("bad.csv"),
		   "src_ip,dst_ip,application_name,src_port,bidirectional_bytes,note\n" /* 1 */
		   "10.0.0.1,10.0.0.2,DNS,53,10,\"two\n"                               /* 2 */
		   "lines\"\n"                                                          /* 3 */
		   "10.0.0.1,10.0.0.2,DNS,53,10\n"         /* 4: 5 fields */
		   "10.0.0.1,,DNS,53,10,x\n"               /* 5: dst_ip empty */
		   "10.0.0.1,fe80::1,DNS,53,10,x\n"        /* 6: IPv4 -> IPv6 */
		   "10.0.0.1,10.0.0.2,DNS,70000,10,x\n"    /* 7: port out of range */
		   "10.0.0.1,10.0.0.2,DNS,53,12abc,x\n"    /* 8: not a number */
		   "10.0.0.1,10.0.0.2,\"DN\"S\",53,10,x\n" /* 9: broken quoting */
		   "\n"                                    /* 10: blank, not a row */
		   "10.0.0.300,10.0.0.2,DNS,53,10,x\n"     /* 11: bad address */
		   "10.0.0.5,10.0.0.6,HTTP,80,20,ok\n");   /* 12: good again */
	/* clang-format on */
	cap_begin();
	int rc = flows_in__read(tmp_path("bad.csv"), keep_record, &r, &st);
	const char *err = cap_end();
	cr_assert_eq(rc, 0, "%d: %s", rc, err);
	cr_expect_eq(st.rows, 9);
	cr_expect_eq(st.accepted, 2);
	cr_expect_eq(st.rejected, 7);
	cr_assert_eq(r.n, 2);
	cr_expect_str_eq(r.v[0].app_name, "DNS");
	cr_expect_str_eq(r.v[1].app_name, "HTTP");
	cr_expect_eq(r.v[1].bytes[0], 20);
	cr_expect_eq(count_lines(err), 7, "%s", err);
	static const char *const want[] = {
	    "bad.csv:4: 5 fields, the header has 6\n",
	    "bad.csv:5: dst_ip is empty\n",
	    "bad.csv:6: src_ip is IPv4 but dst_ip is IPv6\n",
	    "bad.csv:7: src_port: \"70000\" is not a whole number from 0 to 65535\n",
	    "bad.csv:8: bidirectional_bytes: \"12abc\" is not a whole number",
	    "bad.csv:9: malformed quoting",
	    "bad.csv:11: src_ip: \"10.0.0.300\" is not an IPv4 or IPv6 address\n",
	};
	for (size_t i = 0; i < SVC_ARRAY_LEN(want); i++)
		cr_expect(strstr(err, want[i]), "no \"%s\" in:\n%s", want[i], err);
	cr_expect(strstr(err, "svcsensor: "), "%s", err);
}

Test(flows_in, only_the_first_bad_rows_are_reported)
{
	struct flows_in_stats st;
	struct records r = {0};
	char text[4096];
	size_t off = (size_t)snprintf(text, sizeof(text), "src_ip,dst_ip,application_name\n");
	for (int i = 0; i < 25; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "nope,10.0.0.1,DNS\n");
	snprintf(text + off, sizeof(text) - off, "10.0.0.2,10.0.0.1,DNS\n");
	write_file(tmp_path("many.csv"), text);
	cap_begin();
	int rc = flows_in__read(tmp_path("many.csv"), keep_record, &r, &st);
	const char *err = cap_end();
	cr_assert_eq(rc, 0);
	cr_expect_eq(st.rejected, 25);
	cr_expect_eq(st.accepted, 1);
	cr_expect_eq(count_lines(err), FLOWS_IN_REPORT_MAX, "%s", err);
	cr_expect(strstr(err, "many.csv:11: src_ip") && strstr(err, "further bad rows"), "%s", err);
	cr_expect_not(strstr(err, "many.csv:12:"), "%s", err);
}

Test(flows_in, unusable_files_are_one_line_errors)
{
	struct records r = {0};
	struct flows_in_stats st;
	const char *err;

	cap_begin();
	cr_expect_eq(flows_in__read(tmp_path("nope.csv"), keep_record, &r, &st), -ENOENT);
	err = cap_end();
	cr_expect_eq(count_lines(err), 1, "%s", err);
	cr_expect(strstr(err, "nope.csv") && strstr(err, "No such file"), "%s", err);

	write_file(tmp_path("empty.csv"), "");
	cap_begin();
	cr_expect_eq(flows_in__read(tmp_path("empty.csv"), keep_record, &r, &st), -ENODATA);
	err = cap_end();
	cr_expect_eq(count_lines(err), 1, "%s", err);
	cr_expect(strstr(err, "empty.csv: empty file"), "%s", err);

	write_file(tmp_path("noapp.csv"), "src_ip,dst_ip,application_category_name\n"
					  "10.0.0.1,10.0.0.2,Web\n");
	cap_begin();
	cr_expect_eq(flows_in__read(tmp_path("noapp.csv"), keep_record, &r, &st), -EINVAL);
	err = cap_end();
	cr_expect_eq(count_lines(err), 1, "%s", err);
	cr_expect(strstr(err, "noapp.csv:1: header has no application_name column"), "%s", err);
	cr_expect_eq(r.n, 0);
}

Test(flows_in, cli_bad_files)
{
	char *err;
	int rc;

	/* missing, empty, no application_name: exit 2, one line, no map written */
	write_file(tmp_path("empty.csv"), "");
	write_file(tmp_path("noapp.csv"), "src_ip,dst_ip,app\n10.0.0.1,10.0.0.2,DNS\n");
	static const char *const files[] = {"missing.csv", "empty.csv", "noapp.csv"};
	for (size_t i = 0; i < SVC_ARRAY_LEN(files); i++) {
		const char *args[] = {"--learn", "--flows-in", files[i], "-m", "map.json", NULL};
		rc = run_sensor(args, &err);
		cr_expect_eq(rc, 2, "%s: exit %d", files[i], rc);
		cr_expect_eq(count_lines(err), 1, "%s:\n%s", files[i], err);
		cr_expect(strstr(err, files[i]), "%s", err);
		cr_expect_neq(access(tmp_path("map.json"), F_OK), 0, "%s: a map was written",
			      files[i]);
		free(err);
	}

	/* a bad address: counted, reported with its line, the rest learned, exit 1 */
	write_file(tmp_path("bad.csv"), "src_ip,dst_ip,application_name,bidirectional_bytes\n"
					"10.0.0.1,10.0.0.2,DNS,100\n"
					"10.0.0.999,10.0.0.2,DNS,100\n"
					"10.0.0.1,10.0.0.3,HTTP,50\n"
					"10.0.0.1,8.8.8.8,DNS.Google,70\n");
	const char *args[] = {"--learn", "--flows-in", "bad.csv",  "-m",    "map.json",
			      "--print", "none",       "--report", "r.txt", NULL};
	rc = run_sensor(args, &err);
	cr_expect_eq(rc, 1, "exit %d\n%s", rc, err);
	cr_expect(strstr(err, "svcsensor: bad.csv:3: src_ip: \"10.0.0.999\""), "%s", err);
	cr_expect(strstr(err, "svcsensor: bad.csv: 3 rows learned, 1 rejected\n"), "%s", err);
	free(err);
	struct entries e = map_entries(tmp_path("map.json"));
	cr_expect_eq(e.n, 3);
	expect_entry(&e, "10.0.0.1", "10.0.0.2", "DNS", 1, 100, 0, 0);
	expect_entry(&e, "10.0.0.1", "10.0.0.3", "HTTP", 1, 50, 0, 0);
	expect_entry(&e, "10.0.0.1", "remote", "DNS.Google", 1, 70, 0, 0);
	free(e.v);
}

Test(flows_in, cli_rules)
{
	char *err;
	int rc;

	/* only with --learn */
	write_file(tmp_path("nf.csv"), nfstream_csv);
	const char *detect[] = {"--flows-in", "nf.csv", "-m", "map.json", NULL};
	rc = run_sensor(detect, &err);
	cr_expect_eq(rc, 2);
	cr_expect_eq(count_lines(err), 1, "%s", err);
	cr_expect(strstr(err, "--flows-in") && strstr(err, "--learn"), "%s", err);
	free(err);

	/* not with -r */
	const char *both[] = {"--learn", "--flows-in", "nf.csv", "-r", "x.pcap", NULL};
	rc = run_sensor(both, &err);
	cr_expect_eq(rc, 2);
	cr_expect_eq(count_lines(err), 1, "%s", err);
	free(err);

	/* -o with --flows-in: said once, not written, the map still learned */
	const char *with_o[] = {"--learn", "--flows-in", "nf.csv",   "-m",    "o-map.json",
				"-o",	   "again.csv",	 "--print",  "none",  "--report",
				"r.txt",   NULL};
	rc = run_sensor(with_o, &err);
	cr_expect_eq(rc, 0, "exit %d\n%s", rc, err);
	cr_expect(strstr(err, "svcsensor: warning: --flows-out again.csv is not written with "
			      "--flows-in"),
		  "%s", err);
	cr_expect_neq(access(tmp_path("again.csv"), F_OK), 0, "again.csv was written");
	free(err);
	struct entries eo = map_entries(tmp_path("o-map.json"));
	cr_expect_eq(eo.n, 4);
	free(eo.v);

	/* a header and no rows: an empty map is saved, exit 0 */
	write_file(tmp_path("head.csv"), "src_ip,dst_ip,application_name\n");
	const char *head[] = {"--learn",    "--flows-in", "head.csv", "-m",
			      "empty.json", "--report",	  "r.txt",    NULL};
	rc = run_sensor(head, &err);
	cr_expect_eq(rc, 0, "exit %d\n%s", rc, err);
	cr_expect(strstr(err, "head.csv: 0 rows learned, 0 rejected"), "%s", err);
	free(err);
	struct entries e = map_entries(tmp_path("empty.json"));
	cr_expect_eq(e.n, 0);
	free(e.v);

	/* learning twice from the file adds to the map that is there (counters double) */
	const char *learn[] = {"--learn", "--flows-in", "nf.csv",   "-m",    "map.json",
			       "--print", "none",	"--report", "r.txt", NULL};
	for (int i = 0; i < 2; i++) {
		rc = run_sensor(learn, &err);
		cr_assert_eq(rc, 0, "exit %d\n%s", rc, err);
		free(err);
	}
	e = map_entries(tmp_path("map.json"));
	cr_expect_eq(e.n, 4);
	expect_entry(&e, "192.168.1.10", "remote", "TLS.YouTube", 4, 32000, 1700000001000,
		     1700000012000);
	free(e.v);
}
