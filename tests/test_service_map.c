/* test_service_map.c - learn/lookup, file round trip and format, merge, atomic save, corrupt
 * files, host keys, and RCU publication under concurrent readers (run it under TSan too). */
#include <urcu.h>

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "svcsensor/common.h"
#include "svcsensor/config.h"
#include "svcsensor/service_map.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static char tmpdir[64];

static void setup(void)
{
	rcu_register_thread();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/svcsensor-map-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
	rm_tree(tmpdir);
	rcu_unregister_thread();
}

TestSuite(service_map, .init = setup, .fini = teardown);

static const char *tmp_path(const char *name)
{
	static char path[4][160];
	static int next;
	char *p = path[next++ % 4];
	snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
	return p;
}

static void write_text(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	fclose(f);
}

/* Whole file into a malloc'd string; *len set. */
static char *read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static size_t dir_entries(const char *dir)
{
	size_t n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Every entry as text lines, in foreach order. */
struct dump {
	char buf[1 << 16];
	size_t len;
};

static void dump_visit(void *ctx, const char *src, const char *dst, const char *app,
		       const struct svcmap_counters *c)
{
	struct dump *d = ctx;
	int n = snprintf(d->buf + d->len, sizeof(d->buf) - d->len,
			 "%s\t%s\t%s\t%llu\t%llu\t%llu\t%llu\n", src, dst, app,
			 (unsigned long long)c->flows, (unsigned long long)c->bytes,
			 (unsigned long long)c->first_ms, (unsigned long long)c->last_ms);
	if (n > 0)
		d->len += (size_t)n;
}

static void dump_map(const struct svcmap *m, struct dump *d)
{
	d->len = 0;
	d->buf[0] = '\0';
	rcu_read_lock();
	svcmap__foreach(m, dump_visit, d);
	rcu_read_unlock();
}

/* The example map of tests/test_verdict.c, with counters. */
static struct svcmap *spec_map(void)
{
	struct svcmap *m = svcmap__new();
	cr_assert_not_null(m);
	cr_assert_eq(svcmap__learn(m, "10.42.0.130", "10.42.0.1", "DNS", 100, 1000, 1500), 0);
	cr_assert_eq(svcmap__learn(m, "10.42.0.130", "10.42.0.1", "DNS", 200, 2000, 2500), 0);
	cr_assert_eq(svcmap__learn(m, "10.42.0.130", "10.42.0.1", "DNS.Google", 90, 1200, 1300), 0);
	cr_assert_eq(svcmap__learn(m, "10.42.0.130", "remote", "TLS.Amazon", 5000, 1100, 9000), 0);
	return m;
}

static const char spec_map_text[] =
    "{\n"
    "  \"format\": \"svcsensor-map\",\n"
    "  \"version\": 1,\n"
    "  \"sources\": {\n"
    "    \"10.42.0.130\": {\n"
    "      \"10.42.0.1\": {\n"
    "        \"DNS\": {\"flows\": 2, \"bytes\": 300, \"first_seen_ms\": 1000, "
    "\"last_seen_ms\": 2500},\n"
    "        \"DNS.Google\": {\"flows\": 1, \"bytes\": 90, \"first_seen_ms\": 1200, "
    "\"last_seen_ms\": 1300}\n"
    "      },\n"
    "      \"remote\": {\n"
    "        \"TLS.Amazon\": {\"flows\": 1, \"bytes\": 5000, \"first_seen_ms\": 1100, "
    "\"last_seen_ms\": 9000}\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

/* ---- learn and lookup ---------------------------------------------------------------------- */

Test(service_map, learn_and_lookup)
{
	struct svcmap *m = spec_map();
	struct svcmap_counters c;
	size_t s, p, e;

	rcu_read_lock();
	cr_assert(svcmap__has_source(m, "10.42.0.130"));
	cr_assert_not(svcmap__has_source(m, "10.42.0.1"));
	cr_assert(svcmap__has_pair(m, "10.42.0.130", "10.42.0.1"));
	cr_assert(svcmap__has_pair(m, "10.42.0.130", "remote"));
	cr_assert_not(svcmap__has_pair(m, "10.42.0.130", "10.42.0.96"));
	cr_assert_not(svcmap__has_pair(m, "10.42.0.1", "10.42.0.130"));
	cr_assert(svcmap__has_app(m, "10.42.0.130", "10.42.0.1", "DNS"));
	cr_assert(svcmap__has_app(m, "10.42.0.130", "10.42.0.1", "DNS.Google"));
	cr_assert_not(svcmap__has_app(m, "10.42.0.130", "10.42.0.1", "DNS.Wikipedia"));
	cr_assert_not(svcmap__has_app(m, "10.42.0.130", "remote", "DNS"));

	cr_assert_eq(svcmap__lookup(m, "10.42.0.1", "10.42.0.130", "ICMP"), SVCMAP_NO_SOURCE);
	cr_assert_eq(svcmap__lookup(m, "10.42.0.130", "10.42.0.96", "Unknown"),
		     SVCMAP_NO_DESTINATION);
	cr_assert_eq(svcmap__lookup(m, "10.42.0.130", "remote", "BitTorrent"), SVCMAP_NO_APP);
	cr_assert_eq(svcmap__lookup(m, "10.42.0.130", "remote", "TLS.Amazon"), SVCMAP_MATCH);
	cr_assert_eq(svcmap__lookup(m, "10.42.0.130", NULL, NULL), SVCMAP_NO_DESTINATION);

	cr_assert(svcmap__get(m, "10.42.0.130", "10.42.0.1", "DNS", &c));
	cr_assert_eq(c.flows, 2);
	cr_assert_eq(c.bytes, 300);
	cr_assert_eq(c.first_ms, 1000);
	cr_assert_eq(c.last_ms, 2500);
	cr_assert_not(svcmap__get(m, "10.42.0.130", "10.42.0.1", "TLS", &c));
	rcu_read_unlock();

	svcmap__size(m, &s, &p, &e);
	cr_assert_eq(s, 1);
	cr_assert_eq(p, 2);
	cr_assert_eq(e, 3);
	svcmap__free(m);
}

Test(service_map, null_and_empty_maps_have_nothing)
{
	struct svcmap *m = svcmap__new();
	size_t s = 9, p = 9, e = 9;
	rcu_read_lock();
	cr_assert_eq(svcmap__lookup(NULL, "a", "b", "c"), SVCMAP_NO_SOURCE);
	cr_assert_eq(svcmap__lookup(m, "a", "b", "c"), SVCMAP_NO_SOURCE);
	cr_assert_not(svcmap__has_source(NULL, "a"));
	rcu_read_unlock();
	svcmap__size(NULL, &s, &p, &e);
	cr_assert_eq(s + p + e, 0);
	svcmap__free(m);
	svcmap__free(NULL);
}

Test(service_map, learn_widens_times_and_counts)
{
	struct svcmap *m = svcmap__new();
	struct svcmap_counters c;
	cr_assert_eq(svcmap__learn(m, "a", "b", "X", 10, 500, 600), 0);
	cr_assert_eq(svcmap__learn(m, "a", "b", "X", 1, 100, 200), 0); /* earlier */
	cr_assert_eq(svcmap__learn(m, "a", "b", "X", 1, 0, 0), 0);     /* unknown times */
	cr_assert_eq(svcmap__learn(m, "a", "b", "X", 1, 700, 900), 0); /* later */
	rcu_read_lock();
	cr_assert(svcmap__get(m, "a", "b", "X", &c));
	rcu_read_unlock();
	cr_assert_eq(c.flows, 4);
	cr_assert_eq(c.bytes, 13);
	cr_assert_eq(c.first_ms, 100);
	cr_assert_eq(c.last_ms, 900);
	svcmap__free(m);
}

Test(service_map, learn_rejects_names_that_cannot_be_saved)
{
	struct svcmap *m = svcmap__new();
	char long_name[300];
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';

	cr_assert_eq(svcmap__learn(m, "", "b", "X", 1, 1, 1), -EINVAL);
	cr_assert_eq(svcmap__learn(m, "a", "", "X", 1, 1, 1), -EINVAL);
	cr_assert_eq(svcmap__learn(m, "a", "b", "", 1, 1, 1), -EINVAL);
	cr_assert_eq(svcmap__learn(m, "a", "b", "X\nY", 1, 1, 1), -EINVAL);
	cr_assert_eq(svcmap__learn(m, "a", "b", "\xc3\x28", 1, 1, 1), -EINVAL);
	cr_assert_eq(svcmap__learn(m, "a", "b", long_name, 1, 1, 1), -EINVAL);
	cr_assert_eq(svcmap__learn(m, "a", "b", NULL, 1, 1, 1), -EINVAL);
	cr_assert_eq(svcmap__learn(m, "a", "b", "caf\xc3\xa9", 1, 1, 1), 0, "UTF-8 is fine");
	svcmap__free(m);
}

Test(service_map, foreach_is_sorted)
{
	static const char *const keys[] = {"10.42.0.96",  "10.42.0.1", "remote",
					   "10.42.0.130", "fe80::1",   "10.42.0.10"};
	struct svcmap *m = svcmap__new();
	struct dump *d = malloc(sizeof(*d));

	for (size_t i = 0; i < SVC_ARRAY_LEN(keys); i++)
		for (size_t j = SVC_ARRAY_LEN(keys); j-- > 0;)
			cr_assert_eq(
			    svcmap__learn(m, keys[i], keys[j], j % 2 ? "TLS" : "DNS", 1, 1, 1), 0);
	dump_map(m, d);
	char *prev = NULL;
	size_t lines = 0;
	for (char *line = strtok(d->buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (prev)
			cr_assert_lt(strcmp(prev, line), 0, "%s before %s", prev, line);
		prev = line;
		lines++;
	}
	cr_assert_eq(lines, SVC_ARRAY_LEN(keys) * SVC_ARRAY_LEN(keys));
	free(d);
	svcmap__free(m);
}

/* ---- files --------------------------------------------------------------------------------- */

Test(service_map, file_format_is_readable_and_sorted)
{
	struct svcmap *m = spec_map();
	const char *path = tmp_path("map.json");
	cr_assert_eq(svcmap__save(m, path), 0);
	char *text = read_text(path, NULL);
	cr_assert_str_eq(text, spec_map_text);
	free(text);
	svcmap__free(m);

	struct svcmap *empty = svcmap__new();
	cr_assert_eq(svcmap__save(empty, path), 0);
	text = read_text(path, NULL);
	cr_assert_str_eq(text, "{\n  \"format\": \"svcsensor-map\",\n  \"version\": 1,\n"
			       "  \"sources\": {}\n}\n");
	free(text);
	svcmap__free(empty);
}

Test(service_map, save_load_round_trip)
{
	struct svcmap *m = spec_map();
	struct dump *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	const char *p1 = tmp_path("one.json"), *p2 = tmp_path("two.json");
	bool missing = true;

	/* IPv6 keys, prefixes, and names that need escaping. */
	cr_assert_eq(svcmap__learn(m, "fd00::1", "2001:db8::/48", "QUIC.YouTube", 7, 3, 4), 0);
	cr_assert_eq(svcmap__learn(m, "fd00::1", "remote", "we\"ird\\name", 1, 5, 6), 0);
	cr_assert_eq(svcmap__learn(m, "192.168.1.2", "203.0.113.0/24", "HTTP",
				   (uint64_t)INT64_MAX - 1, 1700000000000ULL, 1700000000001ULL),
		     0);
	cr_assert_eq(svcmap__save(m, p1), 0);

	struct svcmap *l = svcmap__load(p1, &missing);
	cr_assert_not_null(l);
	cr_assert_not(missing);
	dump_map(m, a);
	dump_map(l, b);
	cr_assert_str_eq(a->buf, b->buf);

	size_t s1, q1, e1, s2, q2, e2;
	svcmap__size(m, &s1, &q1, &e1);
	svcmap__size(l, &s2, &q2, &e2);
	cr_assert_eq(s1, s2);
	cr_assert_eq(q1, q2);
	cr_assert_eq(e1, e2);

	/* Saving what was loaded gives the same bytes. */
	cr_assert_eq(svcmap__save(l, p2), 0);
	char *t1 = read_text(p1, NULL), *t2 = read_text(p2, NULL);
	cr_assert_str_eq(t1, t2);
	free(t1);
	free(t2);
	free(a);
	free(b);
	svcmap__free(m);
	svcmap__free(l);
}

Test(service_map, save_does_not_depend_on_insertion_order)
{
	struct svcmap *a = svcmap__new(), *b = svcmap__new();
	const char *pa = tmp_path("a.json"), *pb = tmp_path("b.json");
	char name[3][16];
	for (int i = 0; i < 50; i++) {
		snprintf(name[0], sizeof(name[0]), "10.0.0.%d", i % 7);
		snprintf(name[1], sizeof(name[1]), "10.0.1.%d", i % 11);
		snprintf(name[2], sizeof(name[2]), "App%d", i % 5);
		cr_assert_eq(svcmap__learn(a, name[0], name[1], name[2], (uint64_t)i, 1, 2), 0);
	}
	for (int i = 49; i >= 0; i--) {
		snprintf(name[0], sizeof(name[0]), "10.0.0.%d", i % 7);
		snprintf(name[1], sizeof(name[1]), "10.0.1.%d", i % 11);
		snprintf(name[2], sizeof(name[2]), "App%d", i % 5);
		cr_assert_eq(svcmap__learn(b, name[0], name[1], name[2], (uint64_t)i, 1, 2), 0);
	}
	cr_assert_eq(svcmap__save(a, pa), 0);
	cr_assert_eq(svcmap__save(b, pb), 0);
	char *ta = read_text(pa, NULL), *tb = read_text(pb, NULL);
	cr_assert_str_eq(ta, tb);
	free(ta);
	free(tb);
	svcmap__free(a);
	svcmap__free(b);
}

Test(service_map, hand_written_map_with_empty_entries)
{
	const char *path = tmp_path("hand.json");
	const char text[] =
	    "{\"version\": 1, \"format\": \"svcsensor-map\", \"sources\": {\n"
	    "  \"10.42.0.5\": {},\n"
	    "  \"10.42.0.6\": {\"10.42.0.1\": {}},\n"
	    "  \"10.42.0.7\": {\"remote\": {\"SSH\": {}, \"NTP\": {\"flows\": 3}}}\n"
	    "}}\n";
	struct svcmap_counters c;
	write_text(path, text, strlen(text));
	struct svcmap *m = svcmap__load(path, NULL);
	cr_assert_not_null(m);
	rcu_read_lock();
	cr_assert_eq(svcmap__lookup(m, "10.42.0.5", "10.42.0.1", "DNS"), SVCMAP_NO_DESTINATION);
	cr_assert_eq(svcmap__lookup(m, "10.42.0.6", "10.42.0.1", "DNS"), SVCMAP_NO_APP);
	cr_assert_eq(svcmap__lookup(m, "10.42.0.7", "remote", "SSH"), SVCMAP_MATCH);
	cr_assert(svcmap__get(m, "10.42.0.7", "remote", "NTP", &c));
	cr_assert_eq(c.flows, 3);
	cr_assert_eq(c.bytes, 0);
	rcu_read_unlock();

	/* Saved and loaded again, the empty source and pair survive. */
	const char *p2 = tmp_path("hand2.json");
	cr_assert_eq(svcmap__save(m, p2), 0);
	struct svcmap *l = svcmap__load(p2, NULL);
	cr_assert_not_null(l);
	rcu_read_lock();
	cr_assert_eq(svcmap__lookup(l, "10.42.0.5", "x", "DNS"), SVCMAP_NO_DESTINATION);
	cr_assert_eq(svcmap__lookup(l, "10.42.0.6", "10.42.0.1", "DNS"), SVCMAP_NO_APP);
	rcu_read_unlock();
	svcmap__free(m);
	svcmap__free(l);
}

Test(service_map, merge_adds_counters)
{
	struct svcmap *into = svcmap__new(), *from = svcmap__new();
	struct svcmap_counters c;
	size_t s, p, e;

	cr_assert_eq(svcmap__learn(into, "s", "d", "DNS", 100, 10, 20), 0);
	cr_assert_eq(svcmap__learn(into, "s", "d", "TLS", 1, 10, 20), 0);
	cr_assert_eq(svcmap__learn(from, "s", "d", "DNS", 50, 5, 15), 0);
	cr_assert_eq(svcmap__learn(from, "s", "d", "DNS", 50, 30, 40), 0);
	cr_assert_eq(svcmap__learn(from, "s", "e", "NTP", 7, 1, 2), 0);
	cr_assert_eq(svcmap__learn(from, "t", "d", "HTTP", 8, 3, 4), 0);

	cr_assert_eq(svcmap__merge(into, from), 0);
	rcu_read_lock();
	cr_assert(svcmap__get(into, "s", "d", "DNS", &c));
	cr_assert_eq(c.flows, 3);
	cr_assert_eq(c.bytes, 200);
	cr_assert_eq(c.first_ms, 5);
	cr_assert_eq(c.last_ms, 40);
	cr_assert(svcmap__get(into, "s", "d", "TLS", &c));
	cr_assert_eq(c.flows, 1);
	cr_assert(svcmap__get(into, "s", "e", "NTP", &c));
	cr_assert_eq(c.bytes, 7);
	cr_assert(svcmap__has_app(into, "t", "d", "HTTP"));
	/* from is unchanged */
	cr_assert(svcmap__get(from, "s", "d", "DNS", &c));
	cr_assert_eq(c.flows, 2);
	cr_assert_not(svcmap__has_app(from, "s", "d", "TLS"));
	rcu_read_unlock();
	svcmap__size(into, &s, &p, &e);
	cr_assert_eq(s, 2);
	cr_assert_eq(p, 3);
	cr_assert_eq(e, 4);

	/* Merging twice adds twice. */
	cr_assert_eq(svcmap__merge(into, from), 0);
	rcu_read_lock();
	cr_assert(svcmap__get(into, "s", "d", "DNS", &c));
	rcu_read_unlock();
	cr_assert_eq(c.flows, 5);
	cr_assert_eq(svcmap__merge(into, into), -EINVAL);
	cr_assert_eq(svcmap__merge(into, NULL), 0);
	svcmap__free(into);
	svcmap__free(from);
}

/* A map large enough that its file exceeds a small RLIMIT_FSIZE. */
static struct svcmap *big_map(void)
{
	struct svcmap *m = svcmap__new();
	char src[32], dst[32];
	for (int i = 0; i < 400; i++) {
		snprintf(src, sizeof(src), "10.1.%d.%d", i / 250, i % 250);
		snprintf(dst, sizeof(dst), "192.168.%d.1", i % 13);
		cr_assert_eq(svcmap__learn(m, src, dst, "TLS.YouTube", 1000, 1, 2), 0);
	}
	return m;
}

Test(service_map, failed_save_leaves_the_old_file_byte_identical)
{
	const char *path = tmp_path("map.json");
	struct svcmap *old = spec_map(), *big = big_map();
	size_t len_before, len_after;
	struct rlimit rl = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};

	cr_assert_eq(svcmap__save(old, path), 0);
	char *before = read_text(path, &len_before);
	cr_assert_lt(len_before, 4096);

	/* The disk "fills up" (a file size limit; works as root too): the write fails. */
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	cap_begin();
	int rc = svcmap__save(big, path);
	const char *msg = cap_end();
	rl.rlim_cur = RLIM_INFINITY;
	setrlimit(RLIMIT_FSIZE, &rl);

	cr_assert_eq(rc, -EFBIG, "rc %d", rc);
	cr_assert_eq(count_lines(msg), 1, "%s", msg);
	cr_assert_not_null(strstr(msg, path), "%s", msg);
	cr_assert_not_null(strstr(msg, "File too large"), "%s", msg);
	char *after = read_text(path, &len_after);
	cr_assert_eq(len_after, len_before);
	cr_assert(memcmp(before, after, len_before) == 0);
	cr_assert_eq(dir_entries(tmpdir), 1, "the temporary file is removed");

	/* Still loadable, and the next save works. */
	struct svcmap *l = svcmap__load(path, NULL);
	cr_assert_not_null(l);
	cr_assert_eq(svcmap__save(big, path), 0);
	free(before);
	free(after);
	svcmap__free(l);
	svcmap__free(old);
	svcmap__free(big);
}

Test(service_map, failed_rename_and_missing_directory)
{
	struct svcmap *m = spec_map();
	const char *dirpath = tmp_path("a-directory");
	const char *nodir = tmp_path("no/such/dir/map.json");

	cr_assert_eq(mkdir(dirpath, 0755), 0);
	cap_begin();
	int rc = svcmap__save(m, dirpath); /* rename over a directory fails */
	const char *msg = cap_end();
	cr_assert_lt(rc, 0);
	cr_assert_not_null(strstr(msg, dirpath), "%s", msg);
	cr_assert_eq(dir_entries(tmpdir), 1, "only the directory, no temporary file");
	cr_assert_eq(dir_entries(dirpath), 0);

	cap_begin();
	rc = svcmap__save(m, nodir);
	msg = cap_end();
	cr_assert_eq(rc, -ENOENT);
	cr_assert_eq(count_lines(msg), 1);
	cr_assert_not_null(strstr(msg, nodir), "%s", msg);

	if (geteuid() != 0) { /* root writes anywhere */
		const char *path = tmp_path("ro/map.json");
		const char *ro = tmp_path("ro");
		cr_assert_eq(mkdir(ro, 0755), 0);
		cr_assert_eq(svcmap__save(m, path), 0);
		char *before = read_text(path, NULL);
		chmod(ro, 0555);
		cap_begin();
		rc = svcmap__save(m, path);
		cap_end();
		chmod(ro, 0755);
		cr_assert_eq(rc, -EACCES);
		char *after = read_text(path, NULL);
		cr_assert_str_eq(before, after);
		free(before);
		free(after);
	}
	svcmap__free(m);
}

struct corrupt_case {
	const char *text;
	const char *reason; /* substring of the one-line message */
};

static const struct corrupt_case corrupt_cases[] = {
    {"", "empty file: not a service map"},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"a\": {\"b\": {\"DNS\": "
     "{\"flows\": 1",
     ":1:"},
    {"{\"format\": \"svcsensor-map\",\n \"version\": 1,\n \"sources\": {,}}", ":3:"},
    {"\x7f"
     "ELF\x02\x01\x01\x00\x00\x00",
     ":1:"},
    {"{\"format\": \"svcsensor-map\", \"format\": \"svcsensor-map\"}", "duplicate"},
    {"[]", "expected a JSON object at the top level, got an array"},
    {"{\"format\": \"other-map\", \"version\": 1, \"sources\": {}}",
     "format: expected \"svcsensor-map\", got \"other-map\""},
    {"{\"version\": 1, \"sources\": {}}", "not a service map file"},
    {"{\"format\": \"svcsensor-map\", \"sources\": {}}", "no \"version\""},
    {"{\"format\": \"svcsensor-map\", \"version\": 1}", "no \"sources\""},
    {"{\"format\": \"svcsensor-map\", \"version\": 2, \"sources\": {}}", "unsupported version 2"},
    {"{\"format\": \"svcsensor-map\", \"version\": \"1\", \"sources\": {}}",
     "version: expected an integer, got a string"},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": []}",
     "sources: expected an object of source keys, got an array"},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {}, \"extra\": 1}",
     "unknown member \"extra\""},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"10.0.0.1\": []}}",
     "sources[\"10.0.0.1\"]: expected an object of destinations, got an array"},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"10.0.0.1\": "
     "{\"remote\": [\"DNS\"]}}}",
     "sources[\"10.0.0.1\"][\"remote\"]: expected an object of applications, got an array"},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"10.0.0.1\": "
     "{\"remote\": {\"DNS\": 5}}}}",
     "sources[\"10.0.0.1\"][\"remote\"][\"DNS\"]: expected an object of counters"},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"10.0.0.1\": "
     "{\"remote\": {\"DNS\": {\"flows\": \"12\"}}}}}",
     "sources[\"10.0.0.1\"][\"remote\"][\"DNS\"]: flows: expected a non-negative integer, got "
     "a string"},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"10.0.0.1\": "
     "{\"remote\": {\"DNS\": {\"bytes\": -3}}}}}",
     "bytes: expected a non-negative integer, got -3"},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"10.0.0.1\": "
     "{\"remote\": {\"DNS\": {\"flows\": 1.5}}}}}",
     "got a real number"},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"10.0.0.1\": "
     "{\"remote\": {\"DNS\": {\"packets\": 1}}}}}",
     "unknown member \"packets\""},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"10.0.0.1\": "
     "{\"remote\": {\"DNS\": {\"first_seen_ms\": 9, \"last_seen_ms\": 3}}}}}",
     "first_seen_ms (9) is after last_seen_ms (3)"},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"\": {}}}",
     "bad source key \"\""},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"a\": {\"b\\tc\": {}}}}",
     "bad destination key"},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"a\": {\"b\": {\"\": {}}}}}",
     "bad application name"},
    /* duplicates at every level (the map is built while it is read: each one is refused) */
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"a\": {}, \"a\": {}}}",
     "sources: duplicate source key \"a\""},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"a\": {\"b\": {}, \"b\": {}}}}",
     "sources[\"a\"]: duplicate destination key \"b\""},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"a\": {\"b\": {\"DNS\": {}, "
     "\"DNS\": {}}}}}",
     "sources[\"a\"][\"b\"]: duplicate application name \"DNS\""},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"a\": {\"b\": {\"DNS\": "
     "{\"flows\": 1, \"flows\": 2}}}}}",
     "duplicate member \"flows\""},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"a\\u0000b\": {}}}",
     "contains a NUL character"},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {}} {}", ":1:"},
    {"{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {\"\xff\": {}}}", ":1:"},
};

Test(service_map, corrupt_files_are_rejected_with_one_clear_line)
{
	const char *path = tmp_path("corrupt.json");
	for (size_t i = 0; i < SVC_ARRAY_LEN(corrupt_cases); i++) {
		const struct corrupt_case *cc = &corrupt_cases[i];
		bool missing = true;
		write_text(path, cc->text, strlen(cc->text));
		cap_begin();
		struct svcmap *m = svcmap__load(path, &missing);
		const char *msg = cap_end();
		cr_assert_null(m, "case %zu accepted", i);
		cr_assert_not(missing);
		cr_assert_eq(count_lines(msg), 1, "case %zu: \"%s\"", i, msg);
		cr_assert(strncmp(msg, "svcsensor: ", 11) == 0, "%s", msg);
		cr_assert_not_null(strstr(msg, path), "case %zu: file not named: %s", i, msg);
		cr_assert_not_null(strstr(msg, cc->reason), "case %zu: \"%s\" not in \"%s\"", i,
				   cc->reason, msg);
	}
}

Test(service_map, truncated_saved_files_are_rejected)
{
	struct svcmap *m = spec_map();
	const char *path = tmp_path("full.json"), *cut = tmp_path("cut.json");
	size_t len;
	cr_assert_eq(svcmap__save(m, path), 0);
	char *text = read_text(path, &len);
	/* Every proper prefix that is not the whole document must be refused, never crash. */
	for (size_t n = 0; n + 1 < len; n += 7) {
		write_text(cut, text, n);
		cap_begin();
		struct svcmap *l = svcmap__load(cut, NULL);
		const char *msg = cap_end();
		cr_assert_null(l, "prefix of %zu bytes accepted", n);
		cr_assert_eq(count_lines(msg), 1, "%s", msg);
	}
	free(text);
	svcmap__free(m);
}

Test(service_map, missing_and_unreadable_files)
{
	const char *path = tmp_path("absent.json");
	bool missing = false;

	cap_begin();
	struct svcmap *m = svcmap__load(path, &missing);
	const char *msg = cap_end();
	cr_assert_null(m);
	cr_assert(missing);
	cr_assert_str_eq(msg, "", "a missing file is the caller's to report");

	cap_begin();
	m = svcmap__load(path, NULL);
	msg = cap_end();
	cr_assert_null(m);
	cr_assert_not_null(strstr(msg, "No such file"), "%s", msg);
	cr_assert_not_null(strstr(msg, path), "%s", msg);

	cap_begin();
	m = svcmap__load(tmpdir, &missing);
	msg = cap_end();
	cr_assert_null(m);
	cr_assert_not(missing);
	cr_assert_not_null(strstr(msg, "not a regular file"), "%s", msg);
}

/* ---- host keys ----------------------------------------------------------------------------- */

static void key_of(const struct svc_config *c, const char *addr, const char *want)
{
	uint8_t a[16] = {0};
	char out[HOSTKEY_LEN];
	uint8_t ipver = strchr(addr, ':') ? 6 : 4;
	cr_assert_eq(inet_pton(ipver == 6 ? AF_INET6 : AF_INET, addr, a), 1, "%s", addr);
	memset(out, 'Z', sizeof(out));
	hostkey__of(c, a, ipver, out);
	cr_assert_str_eq(out, want, "%s", addr);
}

Test(service_map, hostkey_local_and_remote_collapse)
{
	struct svc_config c;
	cr_assert_eq(config__defaults(&c), 0);
	key_of(&c, "10.42.0.130", "10.42.0.130");
	key_of(&c, "172.16.5.4", "172.16.5.4");
	key_of(&c, "172.31.255.255", "172.31.255.255");
	key_of(&c, "192.168.1.1", "192.168.1.1");
	key_of(&c, "fd12:3456::1", "fd12:3456::1");
	key_of(&c, "fe80::1", "fe80::1");
	key_of(&c, "8.8.8.8", "remote");
	key_of(&c, "172.32.0.1", "remote");
	key_of(&c, "11.0.0.1", "remote");
	key_of(&c, "2001:db8::1", "remote");
	key_of(&c, "fec0::1", "remote");
	key_of(&c, "::ffff:10.0.0.1", "remote"); /* an IPv6 address; IPv4 networks don't match */
	key_of(&c, "a00::1", "remote");		 /* starts with byte 10, but it is IPv6 */
	config__free(&c);
}

Test(service_map, hostkey_remote_address_mode)
{
	struct svc_config c;
	cr_assert_eq(config__defaults(&c), 0);
	c.remote_mode = REMOTE_ADDRESS;
	key_of(&c, "10.42.0.130", "10.42.0.130");
	key_of(&c, "8.8.8.8", "8.8.8.8");
	key_of(&c, "2001:db8::1", "2001:db8::1");
	key_of(&c, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
	       "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
	config__free(&c);
}

Test(service_map, hostkey_remote_prefix_mode)
{
	struct svc_config c;
	cr_assert_eq(config__defaults(&c), 0);
	c.remote_mode = REMOTE_PREFIX;
	key_of(&c, "192.168.7.7", "192.168.7.7");
	key_of(&c, "203.0.113.77", "203.0.113.0/24");
	key_of(&c, "2001:db8:1:2::5", "2001:db8:1::/48");
	key_of(&c, "fd00::9", "fd00::9");
	c.remote_prefix4 = 16;
	c.remote_prefix6 = 33;
	key_of(&c, "203.0.113.77", "203.0.0.0/16");
	key_of(&c, "2001:db8:ffff::1", "2001:db8:8000::/33");
	c.remote_prefix4 = 32;
	c.remote_prefix6 = 128;
	key_of(&c, "203.0.113.77", "203.0.113.77/32");
	key_of(&c, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
	config__free(&c);
}

Test(service_map, hostkey_custom_networks)
{
	struct svc_config c;
	cr_assert_eq(config__defaults(&c), 0);
	free(c.local_networks);
	c.local_networks = calloc(2, sizeof(*c.local_networks));
	c.n_local_networks = 2;
	cr_assert_eq(config__parse_cidr("192.168.1.128/25", &c.local_networks[0]), 0);
	cr_assert_eq(config__parse_cidr("2001:db8:0:1::/64", &c.local_networks[1]), 0);
	key_of(&c, "192.168.1.129", "192.168.1.129");
	key_of(&c, "192.168.1.127", "remote");
	key_of(&c, "10.0.0.1", "remote");
	key_of(&c, "2001:db8:0:1::42", "2001:db8:0:1::42");
	key_of(&c, "2001:db8:0:2::42", "remote");
	c.n_local_networks = 0;
	key_of(&c, "192.168.1.129", "remote");
	config__free(&c);
}

/* ---- publication --------------------------------------------------------------------------- */

Test(service_map, publish_swaps_and_frees)
{
	struct svcmap_ref ref = {0};
	struct svcmap *a = spec_map(), *b = svcmap__new();

	rcu_read_lock();
	cr_assert_null(svcmap__current(&ref));
	rcu_read_unlock();
	svcmap__publish(&ref, a);
	rcu_read_lock();
	cr_assert_eq(svcmap__current(&ref), a);
	cr_assert(svcmap__has_source(svcmap__current(&ref), "10.42.0.130"));
	rcu_read_unlock();
	svcmap__publish(&ref, b); /* a freed (ASan checks) */
	rcu_read_lock();
	cr_assert_eq(svcmap__current(&ref), b);
	cr_assert_not(svcmap__has_source(svcmap__current(&ref), "10.42.0.130"));
	rcu_read_unlock();
	svcmap__publish(&ref, NULL);
	cr_assert_null(ref.map);
}

/* Generation g of the map: the entry ("gen", "gen", "g") with bytes = g, and for every
 * j < N_KEYS the entry (src j, dst j, "app-g"). A consistent reader sees exactly one g. */
#define N_KEYS 16
#define N_PUBLISH 1000
#define N_READERS 3

static struct svcmap *gen_map(uint64_t g)
{
	struct svcmap *m = svcmap__new();
	char src[32], dst[32], app[32];
	cr_assert_not_null(m);
	cr_assert_eq(svcmap__learn(m, "gen", "gen", "g", g, 1, 2), 0);
	snprintf(app, sizeof(app), "app-%llu", (unsigned long long)g);
	for (int j = 0; j < N_KEYS; j++) {
		snprintf(src, sizeof(src), j % 2 ? "10.0.0.%d" : "fd00::%d", j);
		snprintf(dst, sizeof(dst), "dst-%d", j);
		cr_assert_eq(svcmap__learn(m, src, dst, app, 1, 1, 2), 0);
	}
	return m;
}

struct reader {
	pthread_t tid;
	struct svcmap_ref *ref;
	atomic_bool *stop;
	atomic_int *started;
	uint64_t iterations, errors, first_gen, last_gen;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	char src[32], dst[32], app[32], other[32];
	bool counted = false;

	rcu_register_thread();
	r->first_gen = UINT64_MAX;
	while (!atomic_load(r->stop)) {
		struct svcmap_counters c;
		rcu_read_lock();
		const struct svcmap *m = svcmap__current(r->ref);
		if (!m || !svcmap__get(m, "gen", "gen", "g", &c)) {
			r->errors++;
			rcu_read_unlock();
			continue;
		}
		uint64_t g = c.bytes;
		if (g < r->last_gen)
			r->errors++; /* went back in time */
		snprintf(app, sizeof(app), "app-%llu", (unsigned long long)g);
		snprintf(other, sizeof(other), "app-%llu", (unsigned long long)g + 1);
		for (int j = 0; j < N_KEYS; j++) {
			snprintf(src, sizeof(src), j % 2 ? "10.0.0.%d" : "fd00::%d", j);
			snprintf(dst, sizeof(dst), "dst-%d", j);
			if (svcmap__lookup(m, src, dst, app) != SVCMAP_MATCH ||
			    svcmap__lookup(m, src, dst, other) != SVCMAP_NO_APP ||
			    svcmap__lookup(m, dst, src, app) != SVCMAP_NO_SOURCE)
				r->errors++;
		}
		size_t s, p, e;
		svcmap__size(m, &s, &p, &e);
		if (s != N_KEYS + 1 || p != N_KEYS + 1 || e != N_KEYS + 1)
			r->errors++;
		rcu_read_unlock();
		if (r->first_gen == UINT64_MAX)
			r->first_gen = g;
		r->last_gen = g;
		r->iterations++;
		if (!counted) {
			counted = true;
			atomic_fetch_add(r->started, 1);
		}
	}
	rcu_unregister_thread();
	return NULL;
}

Test(service_map, readers_see_consistent_maps_while_publishing, .timeout = 120)
{
	struct svcmap_ref ref = {0};
	atomic_bool stop = false;
	atomic_int started = 0;
	struct reader rd[N_READERS];

	svcmap__publish(&ref, gen_map(0));
	for (int i = 0; i < N_READERS; i++) {
		rd[i] = (struct reader){.ref = &ref, .stop = &stop, .started = &started};
		cr_assert_eq(pthread_create(&rd[i].tid, NULL, reader_main, &rd[i]), 0);
	}
	while (atomic_load(&started) < N_READERS)
		usleep(100);
	for (uint64_t g = 1; g <= N_PUBLISH; g++)
		svcmap__publish(&ref, gen_map(g));
	/* Let every reader see the last generation. */
	for (int spins = 0; spins < 100000; spins++) {
		bool all = true;
		for (int i = 0; i < N_READERS; i++)
			all &= __atomic_load_n(&rd[i].last_gen, __ATOMIC_RELAXED) == N_PUBLISH;
		if (all)
			break;
		usleep(100);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < N_READERS; i++) {
		pthread_join(rd[i].tid, NULL);
		cr_assert_eq(rd[i].errors, 0, "reader %d: %llu inconsistent lookups", i,
			     (unsigned long long)rd[i].errors);
		cr_assert_gt(rd[i].iterations, 0);
		cr_assert_eq(rd[i].last_gen, N_PUBLISH);
		cr_assert_lt(rd[i].first_gen, N_PUBLISH, "reader %d saw one map only", i);
	}
	svcmap__publish(&ref, NULL);
}

/* Learn mode with a second reader: lock-free reads stay safe while the writer adds entries. */
struct learn_reader {
	pthread_t tid;
	struct svcmap *m;
	atomic_bool *stop;
	uint64_t errors, found;
};

#define N_LEARN 3000

static void *learn_reader_main(void *arg)
{
	struct learn_reader *r = arg;
	char src[32], dst[32];
	unsigned seed = 1;
	rcu_register_thread();
	while (!atomic_load(r->stop)) {
		int i = (int)(rand_r(&seed) % N_LEARN);
		struct svcmap_counters c;
		snprintf(src, sizeof(src), "10.9.%d.%d", i % 16, i % 200);
		snprintf(dst, sizeof(dst), "d%d", i);
		rcu_read_lock();
		if (svcmap__get(r->m, src, dst, "TLS", &c)) {
			/* Each counter is whole, but the four are not one snapshot: an entry
			 * appears with zero counters, then flows, then bytes grow. */
			uint64_t b = c.bytes;
			r->found++;
			if (c.flows > 2 || (b != 0 && b != (uint64_t)i && b != 2 * (uint64_t)i))
				r->errors++;
		}
		rcu_read_unlock();
	}
	rcu_unregister_thread();
	return NULL;
}

Test(service_map, reads_are_safe_while_learning, .timeout = 120)
{
	struct svcmap *m = svcmap__new();
	atomic_bool stop = false;
	struct learn_reader r = {.m = m, .stop = &stop};
	char src[32], dst[32];

	cr_assert_eq(pthread_create(&r.tid, NULL, learn_reader_main, &r), 0);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < N_LEARN; i++) {
			snprintf(src, sizeof(src), "10.9.%d.%d", i % 16, i % 200);
			snprintf(dst, sizeof(dst), "d%d", i);
			rcu_read_lock();
			cr_assert_eq(svcmap__learn(m, src, dst, "TLS", (uint64_t)i, 1, 2), 0);
			rcu_read_unlock();
		}
	atomic_store(&stop, true);
	pthread_join(r.tid, NULL);
	cr_assert_eq(r.errors, 0);
	size_t e;
	svcmap__size(m, NULL, NULL, &e);
	cr_assert_eq(e, N_LEARN);
	svcmap__free(m);
}

/* ---- scale ----------------------------------------------------------------------------------- */

/* A map of 200 k sources and 500 k pairs: the learned map's indexes grow from 16 slots many
 * times over, the loaded map's are sized from the file. Every entry is found, absent keys are
 * not, the file round-trips byte for byte, and both maps free cleanly (under ASan: no leak, no
 * bad access; make asan, or the sanitizer build of this suite). */
#define BIG_SOURCES 200000
#define BIG_PAIRS 500000

static const char *const big_dsts[] = {"remote", "10.42.0.1", "2001:db8::/48"};
static const char *const big_apps[] = {"DNS",	      "TLS.YouTube", "QUIC.Google", "HTTP",
				       "TLS.NetFlix", "NTP",	     "Unknown"};

/* Pair k: source k % BIG_SOURCES (IPv4 or IPv6 text), destination k / BIG_SOURCES, the
 * application k % 7, and for k % 5 == 0 also the application (k + 3) % 7. */
static void big_src(unsigned s, char out[48], bool absent)
{
	if (s % 2)
		snprintf(out, 48, "fd00:%x::%x:%x", absent ? 1u : 0u, s >> 16, s & 0xffff);
	else
		snprintf(out, 48, "10.%u.%u.%u", (s >> 16) + (absent ? 100 : 0), (s >> 8) & 255,
			 s & 255);
}

static void check_big_map(const struct svcmap *m)
{
	char src[48], nosrc[48];
	size_t s, p, e;

	svcmap__size(m, &s, &p, &e);
	cr_assert_eq(s, BIG_SOURCES);
	cr_assert_eq(p, BIG_PAIRS);
	cr_assert_eq(e, BIG_PAIRS + BIG_PAIRS / 5);
	rcu_read_lock();
	for (unsigned k = 0; k < BIG_PAIRS; k++) {
		const char *dst = big_dsts[k / BIG_SOURCES];
		const char *app = big_apps[k % 7], *app2 = big_apps[(k + 3) % 7];
		const char *other = big_apps[(k + 1) % 7]; /* in the map, not in this pair */
		big_src(k % BIG_SOURCES, src, false);
		cr_assert_eq(svcmap__lookup(m, src, dst, app), SVCMAP_MATCH, "%s %s %s", src, dst,
			     app);
		cr_assert_eq(svcmap__lookup(m, src, dst, app2),
			     k % 5 == 0 ? SVCMAP_MATCH : SVCMAP_NO_APP);
		if ((k + 1) % 7 != (k + 3) % 7 || k % 5)
			cr_assert_eq(svcmap__lookup(m, src, dst, other), SVCMAP_NO_APP);
		if (k % 7)
			continue; /* the absent keys on a sample: they cost the same */
		big_src(k % BIG_SOURCES, nosrc, true);
		cr_assert_eq(svcmap__lookup(m, src, dst, "TLS.NeverSeen"), SVCMAP_NO_APP);
		cr_assert_eq(svcmap__lookup(m, src, "10.99.99.99", app), SVCMAP_NO_DESTINATION);
		cr_assert_eq(svcmap__lookup(m, nosrc, dst, app), SVCMAP_NO_SOURCE);
		cr_assert_eq(svcmap__lookup(m, dst, src, app), SVCMAP_NO_SOURCE); /* reversed */
		cr_assert_not(svcmap__has_source(m, nosrc));
		cr_assert_not(svcmap__has_pair(m, src, "10.99.99.99"));
		cr_assert_not(svcmap__has_pair(m, nosrc, dst));
		cr_assert_not(svcmap__has_app(m, src, dst, "TLS.NeverSeen"));
		cr_assert_not(svcmap__has_app(m, nosrc, dst, app));
		cr_assert_not(svcmap__get(m, src, dst, "TLS.NeverSeen", NULL));
	}
	/* Keys that share a prefix with a present one, and keys no map can hold. */
	char long_key[400];
	memset(long_key, '1', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	cr_assert_not(svcmap__has_source(m, "10.0.0.1")); /* "10.0.0.10" .. exist */
	cr_assert_not(svcmap__has_source(m, "10.0.0"));
	cr_assert_not(svcmap__has_source(m, long_key));
	cr_assert_not(svcmap__has_source(m, ""));
	cr_assert_not(svcmap__has_pair(m, "10.0.0.2", "remot"));
	cr_assert_not(svcmap__has_pair(m, "10.0.0.2", "remote "));
	cr_assert(svcmap__has_pair(m, "10.0.0.2", "remote"));
	cr_assert_not(svcmap__has_app(m, "10.0.0.2", "remote", "DN"));
	rcu_read_unlock();
}

Test(service_map, large_map_round_trips_and_frees, .timeout = 600)
{
	struct svcmap *m = svcmap__new();
	const char *p1 = tmp_path("big1.json"), *p2 = tmp_path("big2.json");
	char src[48];

	cr_assert_not_null(m);
	for (unsigned k = 0; k < BIG_PAIRS; k++) {
		const char *dst = big_dsts[k / BIG_SOURCES];
		big_src(k % BIG_SOURCES, src, false);
		cr_assert_eq(svcmap__learn(m, src, dst, big_apps[k % 7], k, 1000 + k, 2000 + k), 0);
		if (k % 5 == 0)
			cr_assert_eq(svcmap__learn(m, src, dst, big_apps[(k + 3) % 7], 1, 1, 2), 0);
	}
	check_big_map(m);
	cr_assert_eq(svcmap__save(m, p1), 0);

	struct svcmap *l = svcmap__load(p1, NULL);
	cr_assert_not_null(l);
	check_big_map(l);
	struct svcmap_counters c;
	rcu_read_lock();
	cr_assert(svcmap__get(l, "10.0.0.2", "10.42.0.1", big_apps[(BIG_SOURCES + 2) % 7], &c));
	rcu_read_unlock();
	cr_assert_eq(c.flows, 1);
	cr_assert_eq(c.bytes, BIG_SOURCES + 2);
	cr_assert_eq(c.first_ms, 1000 + BIG_SOURCES + 2);
	cr_assert_eq(c.last_ms, 2000 + BIG_SOURCES + 2);

	cr_assert_eq(svcmap__save(l, p2), 0);
	size_t n1, n2;
	char *t1 = read_text(p1, &n1), *t2 = read_text(p2, &n2);
	cr_assert_eq(n1, n2);
	cr_assert(memcmp(t1, t2, n1) == 0, "the loaded map saves the same bytes");
	free(t1);
	free(t2);
	svcmap__free(m);
	svcmap__free(l);
}

/* More distinct application names than a pair's bit set holds exactly (128 ids): past that,
 * names share bits, and the answer must still be exact. Learned, then loaded (the names get
 * other ids there: the file is sorted). */
#define MANY_NAMES 400
#define MANY_PAIRS 40

static void check_many_names(const struct svcmap *m)
{
	char src[32], name[32];
	rcu_read_lock();
	for (int k = 0; k < MANY_PAIRS; k++) {
		snprintf(src, sizeof(src), "10.7.0.%d", k);
		for (int n = 0; n < MANY_NAMES; n++) {
			struct svcmap_counters c = {0};
			bool in = (n + k) % 3 == 0;
			snprintf(name, sizeof(name), "App%d", n);
			cr_assert_eq(svcmap__has_app(m, src, "remote", name), in, "%s %s", src,
				     name);
			cr_assert_eq(svcmap__get(m, src, "remote", name, &c), in);
			if (in)
				cr_assert_eq(c.bytes, (uint64_t)(n * 1000 + k));
		}
		cr_assert_eq(svcmap__lookup(m, src, "remote", "App400"), SVCMAP_NO_APP);
	}
	rcu_read_unlock();
}

Test(service_map, many_application_names_stay_exact)
{
	struct svcmap *m = svcmap__new();
	const char *path = tmp_path("names.json");
	char src[32], name[32];

	for (int n = 0; n < MANY_NAMES; n++)
		for (int k = 0; k < MANY_PAIRS; k++) {
			if ((n + k) % 3)
				continue;
			snprintf(src, sizeof(src), "10.7.0.%d", k);
			snprintf(name, sizeof(name), "App%d", n);
			cr_assert_eq(
			    svcmap__learn(m, src, "remote", name, (uint64_t)(n * 1000 + k), 1, 2),
			    0);
		}
	check_many_names(m);
	cr_assert_eq(svcmap__save(m, path), 0);
	struct svcmap *l = svcmap__load(path, NULL);
	cr_assert_not_null(l);
	check_many_names(l);
	svcmap__free(m);
	svcmap__free(l);
}

/* hostkey__of formats addresses itself (inet_ntop is too slow per flow): it must agree with
 * inet_ntop everywhere, zero runs and embedded IPv4 included. */
Test(service_map, hostkey_text_equals_inet_ntop)
{
	struct svc_config c;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	cr_assert_eq(config__defaults(&c), 0);
	c.remote_mode = REMOTE_ADDRESS;
	c.n_local_networks = 0;
	for (int n = 0; n < 200000; n++) {
		uint8_t a[16] = {0};
		char want[INET6_ADDRSTRLEN], got[HOSTKEY_LEN];
		uint8_t ipver = n % 3 ? 6 : 4;
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		uint64_t r = x >> 11;
		for (int i = 0; i < 16; i++) {
			uint64_t z = x * (uint64_t)(2 * i + 1);
			a[i] = (uint8_t)(z >> 56);
		}
		if (ipver == 6) {
			/* Zero some words (runs of every length), sometimes the v4-mapped and
			 * v4-compatible prefixes, sometimes small values. */
			for (int w = 0; w < 8; w++)
				if ((r >> w) & 1)
					a[2 * w] = a[2 * w + 1] = 0;
				else if ((r >> (8 + w)) & 1)
					a[2 * w] = 0;
			if ((r >> 16) % 8 == 0) {
				memset(a, 0, 10);
				a[10] = a[11] = (r >> 19) & 1 ? 0xff : 0;
			}
		} else {
			memset(a + 4, 0, 12);
			if ((r >> 16) & 1)
				a[(r >> 17) % 4] = (uint8_t)((r >> 20) % 10);
		}
		inet_ntop(ipver == 6 ? AF_INET6 : AF_INET, a, want, sizeof(want));
		hostkey__of(&c, a, ipver, got);
		cr_assert_str_eq(got, want);
	}
	/* Fixed corner cases. */
	static const char *const fixed[] = {
	    "::",
	    "::1",
	    "1::",
	    "::ffff:1.2.3.4",
	    "::1.2.3.4",
	    "::ffff:0:1.2.3.4",
	    "1:0:0:2::3",
	    "1::2:0:0:3",
	    "0:1::",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    "::ffff:0.0.0.0",
	    "1:0:1:0:1:0:1:0",
	    "2001:db8::ff00:42:8329",
	    "fe80::1:0:0:0",
	};
	for (size_t i = 0; i < SVC_ARRAY_LEN(fixed); i++) {
		uint8_t a[16];
		char want[INET6_ADDRSTRLEN], got[HOSTKEY_LEN];
		cr_assert_eq(inet_pton(AF_INET6, fixed[i], a), 1, "%s", fixed[i]);
		inet_ntop(AF_INET6, a, want, sizeof(want));
		hostkey__of(&c, a, 6, got);
		cr_assert_str_eq(got, want);
	}
	uint8_t v4[16] = {255, 255, 255, 255};
	char got4[HOSTKEY_LEN];
	hostkey__of(&c, v4, 4, got4);
	cr_assert_str_eq(got4, "255.255.255.255");
	config__free(&c);
}
