/* test_verdict.c - the verdict rules of README.md (Verdicts): the worked example, each rule, IPv6, remote modes,
 * allow rules, custom minor masters. */
#include <urcu.h>

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svcsensor/common.h"
#include "svcsensor/config.h"
#include "svcsensor/detector.h"
#include "svcsensor/service_map.h"
#include "svcsensor/rule.h"

static struct svc_config cfg;
static struct svcmap *map;

static void setup(void)
{
	rcu_register_thread();
	cr_assert_eq(config__defaults(&cfg), 0);
	map = svcmap__new();
	cr_assert_not_null(map);
}

static void teardown(void)
{
	svcmap__free(map);
	config__free(&cfg);
	rcu_unregister_thread();
}

TestSuite(verdict, .init = setup, .fini = teardown);

static void learn(const char *src, const char *dst, const char *app)
{
	cr_assert_eq(svcmap__learn(map, src, dst, app, 100, 1, 2), 0);
}

/* The worked example: 10.42.0.130 -> 10.42.0.1 {DNS, DNS.Google}, 10.42.0.130 -> remote {TLS.Amazon}. */
static void spec_example_map(void)
{
	learn("10.42.0.130", "10.42.0.1", "DNS");
	learn("10.42.0.130", "10.42.0.1", "DNS.Google");
	learn("10.42.0.130", "remote", "TLS.Amazon");
}

/* Judge with the master derived as nDPI gives it: the part before the dot, "" when none. */
static enum verdict judge(const char *src, const char *dst, const char *app, bool *allowed)
{
	char master[32] = "";
	const char *dot = strchr(app, '.');
	if (dot)
		snprintf(master, sizeof(master), "%.*s", (int)(dot - app), app);
	rcu_read_lock();
	enum verdict v = rule__judge(map, &cfg, src, dst, app, master, allowed);
	rcu_read_unlock();
	return v;
}

#define EXPECT(src, dst, app, want)                                                                \
	do {                                                                                       \
		bool allowed_ = true;                                                              \
		enum verdict got_ = judge(src, dst, app, &allowed_);                               \
		cr_assert_eq(got_, want, "%s -> %s %s: got %s, want %s", src, dst, app,            \
			     verdict__name(got_), verdict__name(want));                            \
		cr_assert_not(allowed_, "%s -> %s %s: allowed", src, dst, app);                    \
	} while (0)

/* Host key of an address text under cfg. */
static const char *key(const char *addr)
{
	static char out[4][HOSTKEY_LEN];
	static int next;
	char *o = out[next++ % 4];
	uint8_t a[16] = {0};
	uint8_t ipver = strchr(addr, ':') ? 6 : 4;
	cr_assert_eq(inet_pton(ipver == 6 ? AF_INET6 : AF_INET, addr, a), 1);
	hostkey__of(&cfg, a, ipver, o);
	return o;
}

/* ---- names and weights --------------------------------------------------------------------- */

Test(verdict, names_and_weights)
{
	static const char *const names[] = {"UNKNOWN_SOURCE_IP",   "UNKNOWN_DESTINATION_IP",
					    "UNKNOWN_PROTOCOL",	   "DNS_TLS_APPLICATION",
					    "PROTOCOL_NEVER_USED", "NONE"};
	static const char *const weights[] = {"major", "major", "minor", "minor", "major", ""};
	cr_assert_eq(SVC_ARRAY_LEN(names), VERDICT__COUNT);
	for (int v = 0; v < VERDICT__COUNT; v++) {
		cr_assert_str_eq(verdict__name((enum verdict)v), names[v]);
		cr_assert_str_eq(verdict__weight((enum verdict)v), weights[v]);
	}
	cr_assert_str_eq(verdict__name(VERDICT__COUNT), "?");
	cr_assert_str_eq(verdict__weight((enum verdict)99), "");
}

/* The seed's report order, written out here independently of the table: NONE, then the
 * anomalies sorted by their console label (strcmp order), which the seed's sections follow. */
Test(verdict, rank_is_the_seeds_section_order)
{
	enum verdict order[VERDICT__COUNT];
	unsigned n = 0;

	for (int v = 0; v < VERDICT__COUNT; v++)
		if (v != VERDICT_NONE)
			order[n++] = (enum verdict)v;
	for (unsigned i = 0; i < n; i++) /* insertion sort by label */
		for (unsigned j = i; j > 0 && strcmp(verdict__label(order[j - 1]),
						     verdict__label(order[j])) > 0; j--) {
			enum verdict t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	cr_assert_eq(verdict_by_rank[0], VERDICT_NONE);
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(verdict_by_rank[i + 1], order[i], "rank %u: %s, want %s", i + 1,
			     verdict__name(verdict_by_rank[i + 1]), verdict__name(order[i]));
		cr_assert_eq(verdict_table[order[i]].rank, i + 1);
	}
	cr_assert_str_eq(verdict__label(VERDICT_DNS_TLS_APPLICATION), "DNS/TLS APPLICATION");
	cr_assert_str_eq(verdict__label(VERDICT__COUNT), "?");
}

/* ---- the worked example ------------------------------------------------------------------- */

Test(verdict, spec_worked_example)
{
	spec_example_map();
	EXPECT("10.42.0.130", "remote", "BitTorrent", VERDICT_PROTOCOL_NEVER_USED);
	EXPECT("10.42.0.130", "10.42.0.1", "DNS.Wikipedia", VERDICT_DNS_TLS_APPLICATION);
	EXPECT("10.42.0.130", "10.42.0.96", "Unknown", VERDICT_UNKNOWN_DESTINATION_IP);
	EXPECT("10.42.0.1", "10.42.0.130", "ICMP", VERDICT_UNKNOWN_SOURCE_IP);
}

Test(verdict, spec_worked_example_from_addresses)
{
	/* The same, starting from addresses: the remote host collapses to "remote". */
	spec_example_map();
	EXPECT(key("10.42.0.130"), key("52.94.236.248"), "BitTorrent", VERDICT_PROTOCOL_NEVER_USED);
	EXPECT(key("10.42.0.130"), key("10.42.0.1"), "DNS.Wikipedia", VERDICT_DNS_TLS_APPLICATION);
	EXPECT(key("10.42.0.130"), key("10.42.0.96"), "Unknown", VERDICT_UNKNOWN_DESTINATION_IP);
	EXPECT(key("10.42.0.1"), key("10.42.0.130"), "ICMP", VERDICT_UNKNOWN_SOURCE_IP);
	EXPECT(key("10.42.0.130"), key("54.239.28.85"), "TLS.Amazon", VERDICT_NONE);
}

/* ---- each rule ----------------------------------------------------------------------------- */

Test(verdict, none_when_the_app_is_known_for_the_pair)
{
	spec_example_map();
	EXPECT("10.42.0.130", "10.42.0.1", "DNS", VERDICT_NONE);
	EXPECT("10.42.0.130", "10.42.0.1", "DNS.Google", VERDICT_NONE);
	EXPECT("10.42.0.130", "remote", "TLS.Amazon", VERDICT_NONE);
}

Test(verdict, unknown_protocol)
{
	spec_example_map();
	EXPECT("10.42.0.130", "remote", "Unknown", VERDICT_UNKNOWN_PROTOCOL);
	EXPECT("10.42.0.130", "10.42.0.1", "Unknown", VERDICT_UNKNOWN_PROTOCOL);
	/* Once learned, Unknown is a known application of the pair like any other. */
	learn("10.42.0.130", "remote", "Unknown");
	EXPECT("10.42.0.130", "remote", "Unknown", VERDICT_NONE);
}

Test(verdict, first_match_wins)
{
	spec_example_map();
	/* An unknown source wins over everything after it, even for "Unknown" or DNS. */
	EXPECT("10.42.0.77", "10.42.0.1", "Unknown", VERDICT_UNKNOWN_SOURCE_IP);
	EXPECT("10.42.0.77", "10.42.0.1", "DNS", VERDICT_UNKNOWN_SOURCE_IP);
	/* An unknown destination wins over the application rules. */
	EXPECT("10.42.0.130", "10.42.0.2", "DNS", VERDICT_UNKNOWN_DESTINATION_IP);
	EXPECT("10.42.0.130", "10.42.0.2", "DNS.Google", VERDICT_UNKNOWN_DESTINATION_IP);
	/* A destination of another source is not a destination of this one. */
	learn("10.42.0.5", "10.42.0.2", "NTP");
	EXPECT("10.42.0.130", "10.42.0.2", "NTP", VERDICT_UNKNOWN_DESTINATION_IP);
	/* Direction matters: the source is the one that spoke first. */
	EXPECT("10.42.0.2", "10.42.0.5", "NTP", VERDICT_UNKNOWN_SOURCE_IP);
}

Test(verdict, dns_tls_application_masters)
{
	spec_example_map();
	EXPECT("10.42.0.130", "remote", "TLS.YouTube", VERDICT_DNS_TLS_APPLICATION);
	EXPECT("10.42.0.130", "remote", "DNS.NetFlix", VERDICT_DNS_TLS_APPLICATION);
	/* A bare DNS or TLS never seen for the pair is DNS/TLS too. */
	EXPECT("10.42.0.130", "remote", "DNS", VERDICT_DNS_TLS_APPLICATION);
	EXPECT("10.42.0.130", "remote", "TLS", VERDICT_DNS_TLS_APPLICATION);
	/* Other masters, and names that merely start like one, are major. */
	EXPECT("10.42.0.130", "remote", "QUIC.YouTube", VERDICT_PROTOCOL_NEVER_USED);
	EXPECT("10.42.0.130", "remote", "HTTP", VERDICT_PROTOCOL_NEVER_USED);
	EXPECT("10.42.0.130", "remote", "DNSCrypt", VERDICT_PROTOCOL_NEVER_USED);
	EXPECT("10.42.0.130", "remote", "TL", VERDICT_PROTOCOL_NEVER_USED);
	EXPECT("10.42.0.130", "remote", "SSH", VERDICT_PROTOCOL_NEVER_USED);
}

Test(verdict, master_name_given_by_ndpi_is_used)
{
	bool allowed;
	spec_example_map();
	rcu_read_lock();
	/* nDPI's master id wins over the spelling of the name. */
	cr_assert_eq(rule__judge(map, &cfg, "10.42.0.130", "remote", "Google", "DNS", &allowed),
		     VERDICT_DNS_TLS_APPLICATION);
	cr_assert_eq(
	    rule__judge(map, &cfg, "10.42.0.130", "remote", "TLS.Foo", "QUIC", &allowed),
	    VERDICT_PROTOCOL_NEVER_USED);
	/* Empty or NULL master: derived from the name. */
	cr_assert_eq(rule__judge(map, &cfg, "10.42.0.130", "remote", "TLS.Foo", "", &allowed),
		     VERDICT_DNS_TLS_APPLICATION);
	cr_assert_eq(rule__judge(map, &cfg, "10.42.0.130", "remote", "TLS.Foo", NULL, &allowed),
		     VERDICT_DNS_TLS_APPLICATION);
	/* allowed may be NULL. */
	cr_assert_eq(rule__judge(map, &cfg, "10.42.0.130", "remote", "SSH", NULL, NULL),
		     VERDICT_PROTOCOL_NEVER_USED);
	rcu_read_unlock();
}

Test(verdict, empty_and_null_maps)
{
	bool allowed;
	EXPECT("10.42.0.130", "remote", "DNS", VERDICT_UNKNOWN_SOURCE_IP);
	rcu_read_lock();
	cr_assert_eq(rule__judge(NULL, &cfg, "10.42.0.130", "remote", "DNS", "", &allowed),
		     VERDICT_UNKNOWN_SOURCE_IP);
	rcu_read_unlock();
}

/* ---- IPv6 and remote modes ----------------------------------------------------------------- */

Test(verdict, ipv6_example)
{
	learn(key("fd00:42::130"), key("fd00:42::1"), "DNS");
	learn(key("fd00:42::130"), key("fd00:42::1"), "DNS.Google");
	learn(key("fd00:42::130"), key("2a00:1450:4001::200e"), "TLS.Amazon");
	cr_assert_str_eq(key("2a00:1450:4001::200e"), "remote");

	EXPECT(key("fd00:42::130"), key("2600:1f18::1"), "BitTorrent", VERDICT_PROTOCOL_NEVER_USED);
	EXPECT(key("fd00:42::130"), key("fd00:42::1"), "DNS.Wikipedia",
	       VERDICT_DNS_TLS_APPLICATION);
	EXPECT(key("fd00:42::130"), key("fd00:42::96"), "Unknown", VERDICT_UNKNOWN_DESTINATION_IP);
	EXPECT(key("fd00:42::1"), key("fd00:42::130"), "ICMPV6", VERDICT_UNKNOWN_SOURCE_IP);
	EXPECT(key("fd00:42::130"), key("2600:1f18::1"), "Unknown", VERDICT_UNKNOWN_PROTOCOL);
	EXPECT(key("fd00:42::130"), key("2600:1f18::1"), "TLS.Amazon", VERDICT_NONE);
	EXPECT(key("fe80::1"), key("fd00:42::1"), "DNS", VERDICT_UNKNOWN_SOURCE_IP);
	/* An IPv4 host and an IPv6 host are different keys. */
	EXPECT(key("10.42.0.130"), key("fd00:42::1"), "DNS", VERDICT_UNKNOWN_SOURCE_IP);
}

Test(verdict, remote_collapse_vs_per_address)
{
	/* Learned in collapse mode: every remote address is one destination. */
	learn(key("10.42.0.130"), key("52.94.236.248"), "TLS.Amazon");
	EXPECT(key("10.42.0.130"), key("54.239.28.85"), "TLS.Amazon", VERDICT_NONE);
	EXPECT(key("10.42.0.130"), key("2a00:1450::1"), "TLS.Amazon", VERDICT_NONE);

	/* Per-address mode: a new remote address is a new destination. */
	svcmap__free(map);
	map = svcmap__new();
	cfg.remote_mode = REMOTE_ADDRESS;
	learn(key("10.42.0.130"), key("52.94.236.248"), "TLS.Amazon");
	cr_assert_str_eq(key("52.94.236.248"), "52.94.236.248");
	EXPECT(key("10.42.0.130"), key("52.94.236.248"), "TLS.Amazon", VERDICT_NONE);
	EXPECT(key("10.42.0.130"), key("54.239.28.85"), "TLS.Amazon",
	       VERDICT_UNKNOWN_DESTINATION_IP);
	EXPECT(key("10.42.0.130"), key("52.94.236.248"), "TLS.Netflix",
	       VERDICT_DNS_TLS_APPLICATION);
	/* A remote host that starts a flow is an unknown source, not "remote". */
	EXPECT(key("52.94.236.248"), key("10.42.0.130"), "TLS.Amazon", VERDICT_UNKNOWN_SOURCE_IP);
}

Test(verdict, remote_prefix_mode)
{
	cfg.remote_mode = REMOTE_PREFIX;
	learn(key("10.42.0.130"), key("52.94.236.248"), "TLS.Amazon");
	learn(key("10.42.0.130"), key("2a00:1450:4001:81c::200e"), "QUIC.YouTube");
	cr_assert_str_eq(key("52.94.236.248"), "52.94.236.0/24");
	cr_assert_str_eq(key("2a00:1450:4001:81c::200e"), "2a00:1450:4001::/48");
	EXPECT(key("10.42.0.130"), key("52.94.236.7"), "TLS.Amazon", VERDICT_NONE);
	EXPECT(key("10.42.0.130"), key("52.94.237.7"), "TLS.Amazon",
	       VERDICT_UNKNOWN_DESTINATION_IP);
	EXPECT(key("10.42.0.130"), key("2a00:1450:4001:999::1"), "QUIC.YouTube", VERDICT_NONE);
	EXPECT(key("10.42.0.130"), key("2a00:1450:4002::1"), "QUIC.YouTube",
	       VERDICT_UNKNOWN_DESTINATION_IP);
}

/* ---- allow rules --------------------------------------------------------------------------- */

static void add_rule(const char *src, const char *dst, const char *app)
{
	struct allow_rule *r = realloc(cfg.allow, (cfg.n_allow + 1) * sizeof(*r));
	cr_assert_not_null(r);
	cfg.allow = r;
	r += cfg.n_allow++;
	r->src = src ? strdup(src) : NULL;
	r->dst = dst ? strdup(dst) : NULL;
	r->app = app ? strdup(app) : NULL;
}

#define EXPECT_ALLOWED(src, dst, app)                                                              \
	do {                                                                                       \
		bool allowed_ = false;                                                             \
		enum verdict got_ = judge(src, dst, app, &allowed_);                               \
		cr_assert_eq(got_, VERDICT_NONE, "%s -> %s %s: got %s", src, dst, app,             \
			     verdict__name(got_));                                                 \
		cr_assert(allowed_, "%s -> %s %s: not marked allowed", src, dst, app);             \
	} while (0)

Test(verdict, allow_rules_silence_matching_anomalies)
{
	spec_example_map();
	add_rule("10.42.0.130", "remote", "BitTorrent"); /* exact */
	add_rule(NULL, NULL, "NTP");			 /* any pair */
	add_rule("10.42.0.1", NULL, NULL);		 /* anything from the gateway */
	add_rule(NULL, "10.42.0.200", NULL);		 /* anything to a printer */

	EXPECT_ALLOWED("10.42.0.130", "remote", "BitTorrent");
	EXPECT_ALLOWED("10.42.0.130", "remote", "NTP");
	EXPECT_ALLOWED("10.42.0.99", "10.42.0.7", "NTP"); /* even an unknown source */
	EXPECT_ALLOWED("10.42.0.1", "10.42.0.130", "ICMP");
	EXPECT_ALLOWED("10.42.0.130", "10.42.0.200", "IPP");

	/* Not matching: every field of a rule must match. */
	EXPECT("10.42.0.131", "remote", "BitTorrent", VERDICT_UNKNOWN_SOURCE_IP);
	EXPECT("10.42.0.130", "10.42.0.1", "BitTorrent", VERDICT_PROTOCOL_NEVER_USED);
	EXPECT("10.42.0.130", "remote", "BitTorrent.Foo", VERDICT_PROTOCOL_NEVER_USED);
	EXPECT("10.42.0.130", "remote", "SSH", VERDICT_PROTOCOL_NEVER_USED);
	/* A flow that is no anomaly is not counted as allowed. */
	EXPECT("10.42.0.130", "remote", "TLS.Amazon", VERDICT_NONE);

	cr_assert(rule__allowed(&cfg, "x", "y", "NTP"));
	cr_assert_not(rule__allowed(&cfg, "x", "y", "DNS"));
}

Test(verdict, allow_rules_apply_to_every_kind_of_anomaly)
{
	spec_example_map();
	add_rule("10.42.0.130", NULL, NULL);
	EXPECT_ALLOWED("10.42.0.130", "10.42.0.96", "Unknown");	     /* unknown destination */
	EXPECT_ALLOWED("10.42.0.130", "remote", "Unknown");	     /* unknown protocol */
	EXPECT_ALLOWED("10.42.0.130", "10.42.0.1", "DNS.Wikipedia"); /* DNS/TLS */
	EXPECT_ALLOWED("10.42.0.130", "remote", "BitTorrent");	     /* never used */
	EXPECT("10.42.0.1", "10.42.0.130", "ICMP", VERDICT_UNKNOWN_SOURCE_IP);
}

/* ---- settings ------------------------------------------------------------------------------ */

Test(verdict, custom_minor_masters)
{
	spec_example_map();
	for (size_t i = 0; i < cfg.n_minor_masters; i++)
		free(cfg.minor_masters[i]);
	cfg.minor_masters[0] = strdup("QUIC");
	cfg.n_minor_masters = 1;

	EXPECT("10.42.0.130", "remote", "QUIC.YouTube", VERDICT_DNS_TLS_APPLICATION);
	EXPECT("10.42.0.130", "remote", "QUIC", VERDICT_DNS_TLS_APPLICATION);
	EXPECT("10.42.0.130", "remote", "TLS.YouTube", VERDICT_PROTOCOL_NEVER_USED);
	EXPECT("10.42.0.130", "10.42.0.1", "DNS.Wikipedia", VERDICT_PROTOCOL_NEVER_USED);
	EXPECT("10.42.0.130", "remote", "Unknown", VERDICT_UNKNOWN_PROTOCOL);

	/* No minor masters: every new application is major. */
	cfg.n_minor_masters = 0;
	EXPECT("10.42.0.130", "remote", "QUIC.YouTube", VERDICT_PROTOCOL_NEVER_USED);
	EXPECT("10.42.0.130", "remote", "Unknown", VERDICT_UNKNOWN_PROTOCOL);
	cfg.n_minor_masters = 1; /* so that config__free frees it */
}

Test(verdict, minor_masters_from_the_config_file)
{
	char path[] = "/tmp/svcsensor-verdict-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	const char text[] = "{\"minor_masters\": [\"DNS\", \"TLS\", \"QUIC\"],"
			    " \"allow\": [{\"src\": \"10.42.0.1\", \"app\": \"ICMP\"}]}";
	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	cr_assert_eq(config__load(&cfg, path), 0);
	unlink(path);

	spec_example_map();
	EXPECT("10.42.0.130", "remote", "QUIC.YouTube", VERDICT_DNS_TLS_APPLICATION);
	EXPECT("10.42.0.130", "remote", "TLS.YouTube", VERDICT_DNS_TLS_APPLICATION);
	EXPECT_ALLOWED("10.42.0.1", "10.42.0.130", "ICMP");
	EXPECT("10.42.0.1", "10.42.0.130", "SSH", VERDICT_UNKNOWN_SOURCE_IP);
}

Test(verdict, judged_against_a_loaded_map)
{
	char dir[] = "/tmp/svcsensor-verdict-XXXXXX";
	char path[64];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/map.json", dir);
	spec_example_map();
	cr_assert_eq(svcmap__save(map, path), 0);
	svcmap__free(map);
	map = svcmap__load(path, NULL);
	cr_assert_not_null(map);
	unlink(path);
	rmdir(dir);

	EXPECT("10.42.0.130", "remote", "BitTorrent", VERDICT_PROTOCOL_NEVER_USED);
	EXPECT("10.42.0.130", "10.42.0.1", "DNS.Wikipedia", VERDICT_DNS_TLS_APPLICATION);
	EXPECT("10.42.0.130", "10.42.0.96", "Unknown", VERDICT_UNKNOWN_DESTINATION_IP);
	EXPECT("10.42.0.1", "10.42.0.130", "ICMP", VERDICT_UNKNOWN_SOURCE_IP);
	EXPECT("10.42.0.130", "10.42.0.1", "DNS.Google", VERDICT_NONE);
}
