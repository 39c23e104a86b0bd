/* test_options.c - the option table (src/options.c) against what depends on it: the shipped
 * config/svcsensor.json, --help (in process and from the binary), README.md, the command line
 * (flags and their config keys accept and reject the same values), and the library defaults
 * that still live outside the table. */
#include <criterion/criterion.h>

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
#include "svcsensor/dpi.h"
#include "svcsensor/flow_table.h"
#include "svcsensor/options.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static char tmpdir[64];

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/svcsensor-opt-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
	rm_rf(tmpdir);
}

TestSuite(options, .init = setup, .fini = teardown);

/* A file of the repository, from the root (make test) or relative to this source file. */
static const char *repo_file(const char *rel)
{
	static char path[PATH_MAX];
	if (access(rel, R_OK) == 0)
		return rel;
	snprintf(path, sizeof(path), "%s", __FILE__);
	char *slash = strrchr(path, '/');
	if (slash)
		snprintf(slash, sizeof(path) - (size_t)(slash - path), "/../%s", rel);
	return path;
}

static char *slurp(const char *path)
{
	char *buf = read_all(path);
	cr_assert_not_null(buf, "cannot open %s", path);
	return buf;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* "--name" in text as a whole flag (not the start of a longer one, not inside a word). */
static bool has_flag(const char *text, const char *dashed)
{
	size_t n = strlen(dashed);
	for (const char *p = strstr(text, dashed); p; p = strstr(p + 1, dashed)) {
		char before = p == text ? ' ' : p[-1];
		char after = p[n];
		bool word_before = before == '-' || (before >= 'a' && before <= 'z');
		bool word_after = after == '-' || (after >= 'a' && after <= 'z');
		if (!word_before && !word_after)
			return true;
	}
	return false;
}

/* Every flag of the table in a --help text, with its short form and its config key. */
static void assert_help_lists_every_flag(const char *help, const char *where)
{
	size_t n;
	const struct svc_option *t = options__table(&n);
	char want[96];

	for (size_t i = 0; i < n; i++) {
		if (!t[i].flag)
			continue;
		snprintf(want, sizeof(want), "--%s", t[i].flag);
		cr_assert(has_flag(help, want), "%s: %s not listed", where, want);
		if (t[i].short_flag) {
			snprintf(want, sizeof(want), "-%c, --%s", t[i].short_flag, t[i].flag);
			cr_assert_not_null(strstr(help, want), "%s: \"%s\" not listed", where,
					   want);
		}
	}
}

/* The JSON value spelled as the table spells a default: integers in decimal, true / false,
 * strings as they are, an array of strings joined by commas; NULL for null. malloc'd. */
static char *json_as_default(const char *key, const json_t *v)
{
	char *out = NULL;
	size_t i;
	const json_t *e;

	if (json_is_null(v))
		return NULL;
	if (json_is_integer(v)) {
		cr_assert(asprintf(&out, "%lld", (long long)json_integer_value(v)) > 0);
	} else if (json_is_boolean(v)) {
		out = strdup(json_is_true(v) ? "true" : "false");
	} else if (json_is_string(v)) {
		out = strdup(json_string_value(v));
	} else {
		cr_assert(json_is_array(v), "%s: a %s has no default spelling", key,
			  json_is_object(v) ? "object" : "real");
		out = strdup("");
		json_array_foreach(v, i, e)
		{
			char *next = NULL;
			cr_assert(json_is_string(e), "%s: element %zu is not a string", key, i);
			cr_assert(
			    asprintf(&next, "%s%s%s", out, i ? "," : "", json_string_value(e)) > 0);
			free(out);
			out = next;
		}
	}
	cr_assert_not_null(out);
	return out;
}

/* ---- the table itself ---------------------------------------------------------------------- */

Test(options, every_row_is_well_formed)
{
	size_t n;
	const struct svc_option *t = options__table(&n);

	for (size_t i = 0; i < n; i++) {
		const char *name = t[i].key ? t[i].key : t[i].flag;
		cr_assert(t[i].key || t[i].flag, "row %zu has neither key nor flag", i);
		cr_assert(t[i].help && *t[i].help, "%s: no help line", name);
		cr_assert(t[i].home == SVC_OPT_RUN || t[i].key, "%s: a setting without a key",
			  name);
		cr_assert(t[i].home == SVC_OPT_CFG || !t[i].def,
			  "%s: a run option starts empty, not with a default", name);
		bool no_value = t[i].type == SVC_OPT_BOOL || t[i].type == SVC_OPT_HELP ||
				t[i].type == SVC_OPT_VERSION;
		if (t[i].flag)
			cr_assert_eq(no_value, t[i].arg == NULL, "%s: value name vs type", name);
		if (t[i].type == SVC_OPT_INT)
			cr_assert(t[i].min <= t[i].max, "%s: empty range", name);
		for (size_t j = 0; j < i; j++) {
			cr_assert(!t[i].key || !str_eq(t[i].key, t[j].key), "key %s twice", name);
			cr_assert(!t[i].flag || !str_eq(t[i].flag, t[j].flag), "flag %s twice",
				  name);
			cr_assert(!t[i].short_flag || t[i].short_flag != t[j].short_flag,
				  "-%c twice", t[i].short_flag);
		}
	}
}

Test(options, defaults_are_valid)
{
	struct svc_config c;
	cr_assert_eq(config__defaults(&c), 0, "a default outside its range or not parsable");
	cr_assert_eq(config__validate(&c), 0);
	config__free(&c);
}

/* The library keeps its own defaults for callers without a config (flow_table.h, dpi.h):
 * they must be the table's. */
Test(options, library_defaults_agree_with_the_table)
{
	struct svc_config c;
	cr_assert_eq(config__defaults(&c), 0);
	cr_assert_eq(c.max_flows, FLOW_TABLE_DEFAULT_MAX_FLOWS);
	cr_assert_eq(c.idle_timeout * 1000000ULL, FLOW_TABLE_DEFAULT_IDLE_US);
	cr_assert_eq(c.active_timeout * 1000000ULL, FLOW_TABLE_DEFAULT_ACTIVE_US);
	cr_assert_eq(c.tcp_linger * 1000000ULL, FLOW_TABLE_DEFAULT_LINGER_US);
	cr_assert_eq(c.tcp_max_pkts, DPI_DEFAULT_TCP_MAX_PKTS);
	cr_assert_eq(c.udp_max_pkts, DPI_DEFAULT_UDP_MAX_PKTS);
	config__free(&c);
}

/* ---- the shipped config file --------------------------------------------------------------- */

/* config/svcsensor.json ships every key with the table's default, spelled as JSON. It does
 * not differ from the table anywhere: an entry here would say where and why. */
Test(options, shipped_file_is_the_table)
{
	json_error_t err;
	const char *path = repo_file("config/svcsensor.json");
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	const char *key;
	json_t *v;
	size_t n, keyed = 0;
	const struct svc_option *t = options__table(&n);

	cr_assert_not_null(root, "%s: %s", path, err.text);
	json_object_foreach(root, key, v)
	{
		const struct svc_option *o = options__find_key(key);
		cr_assert_not_null(o, "%s: key \"%s\" is not in the option table", path, key);
		char *spelled = json_as_default(key, v);
		cr_assert(str_eq(spelled, o->def), "%s: %s is %s, the table's default is %s", path,
			  key, spelled ? spelled : "null", o->def ? o->def : "null");
		free(spelled);
	}
	for (size_t i = 0; i < n; i++) {
		if (!t[i].key)
			continue;
		keyed++;
		cr_assert_not_null(json_object_get(root, t[i].key), "%s: key %s missing", path,
				   t[i].key);
	}
	cr_assert_eq(json_object_size(root), keyed);
	json_decref(root);
}

/* ---- --help and README ---------------------------------------------------------------------- */

Test(options, help_lists_every_flag_within_80_columns)
{
	char *help = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&help, &len);
	options__usage(m);
	fclose(m);

	assert_help_lists_every_flag(help, "options__usage");
	size_t col = 0;
	for (const char *p = help; *p; p++) {
		col = *p == '\n' ? 0 : col + 1;
		cr_assert_leq(col, 79, "a --help line is longer than 79 columns:\n%s", help);
	}
	size_t n;
	const struct svc_option *t = options__table(&n);
	for (size_t i = 0; i < n; i++)
		if (t[i].key) /* a flag's line names its key; the others are listed at the end */
			cr_assert_not_null(strstr(help, t[i].key), "key %s not in --help",
					   t[i].key);
	free(help);
}

Test(options, the_binary_prints_the_same_help)
{
	const char *bin = getenv("SVCSENSOR_BIN");
	char cmd[PATH_MAX + 32], *help = NULL;
	size_t len = 0;

	if (!bin || !*bin)
		bin = repo_file("build/svcsensor");
	cr_assert_eq(access(bin, X_OK), 0, "no svcsensor binary at %s (make test builds it)", bin);
	snprintf(cmd, sizeof(cmd), "'%s' --help", bin);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	FILE *m = open_memstream(&help, &len);
	char chunk[4096];
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), p)) > 0)
		fwrite(chunk, 1, got, m);
	fclose(m);
	cr_assert_eq(pclose(p), 0, "svcsensor --help did not exit 0");
	assert_help_lists_every_flag(help, "svcsensor --help");
	free(help);
}

Test(options, readme_names_every_flag_and_key)
{
	char *readme = slurp(repo_file("README.md"));
	size_t n;
	const struct svc_option *t = options__table(&n);
	char want[96];

	for (size_t i = 0; i < n; i++) {
		if (t[i].flag) {
			snprintf(want, sizeof(want), "--%s", t[i].flag);
			cr_assert(has_flag(readme, want), "README.md does not list %s", want);
		}
		if (t[i].key) {
			snprintf(want, sizeof(want), "`%s`", t[i].key);
			cr_assert_not_null(strstr(readme, want), "README.md does not list %s",
					   want);
		}
	}
	free(readme);
}

/* ---- the command line ---------------------------------------------------------------------- */

struct parsed {
	struct svc_options o;
	int rc;
	char *msg; /* stderr */
};

/* Parse "svcsensor ARGS..." (NULL-terminated) into p. */
static void parse(struct parsed *p, const char *const *args)
{
	char *argv[32];
	int argc = 0;
	argv[argc++] = "svcsensor";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	cr_assert_eq(options__init(&p->o), 0);
	cap_begin();
	p->rc = options__parse(&p->o, argc, argv);
	p->msg = strdup(cap_end());
}

static void parsed_free(struct parsed *p)
{
	options__free(&p->o);
	free(p->msg);
}

/* config__load of {"key": value}: its return value and stderr (malloc'd). */
static int load_one(struct svc_config *c, const char *key, const char *value, char **msg)
{
	char *path = path_in(tmpdir, "one.json");
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "{\"%s\": %s}\n", key, value);
	fclose(f);
	cr_assert_eq(config__defaults(c), 0);
	cap_begin();
	int rc = config__load(c, path);
	*msg = strdup(cap_end());
	free(path);
	return rc;
}

/* The reason in a one-line message after its prefix ("svcsensor: --flag: ", "key \"k\": "). */
static const char *reason_after(const char *msg, const char *prefix)
{
	const char *p = strstr(msg, prefix);
	cr_assert_not_null(p, "\"%s\" not in \"%s\"", prefix, msg);
	return p + strlen(prefix);
}

/* A flag and its key given the same value: both accepted with the same field value, or both
 * rejected with one line naming the flag / the key and the same reason. */
static void same_verdict(const struct svc_option *o, const char *text, const char *json)
{
	char dashed[64], prefix[96];
	struct parsed p;
	struct svc_config c;
	char *kmsg;

	snprintf(dashed, sizeof(dashed), "--%s", o->flag);
	parse(&p, (const char *const[]){dashed, text, NULL});
	int krc = load_one(&c, o->key, json, &kmsg);

	cr_assert_eq(p.rc < 0, krc < 0, "%s %s and %s: %s were judged differently:\n%s%s", dashed,
		     text, o->key, json, p.msg, kmsg);
	if (krc < 0) {
		cr_assert_eq(count_lines(p.msg), 1, "%s %s: \"%s\"", dashed, text, p.msg);
		cr_assert_eq(count_lines(kmsg), 1, "%s: %s: \"%s\"", o->key, json, kmsg);
		snprintf(prefix, sizeof(prefix), "svcsensor: %s: ", dashed);
		cr_assert_eq(strncmp(p.msg, prefix, strlen(prefix)), 0, "\"%s\"", p.msg);
		const char *flag_reason = p.msg + strlen(prefix);
		snprintf(prefix, sizeof(prefix), "key \"%s\": ", o->key);
		cr_assert_str_eq(flag_reason, reason_after(kmsg, prefix),
				 "flag and key reasons differ:\n%s%s", p.msg, kmsg);
	} else if (o->type == SVC_OPT_INT) {
		cr_assert_eq(options__get_uint(o, &p.o.cfg), options__get_uint(o, &c),
			     "%s %s and %s: %s set different values", dashed, text, o->key, json);
	}
	config__free(&c);
	free(kmsg);
	parsed_free(&p);
}

Test(options, flag_and_key_share_one_range)
{
	size_t n, checked = 0;
	const struct svc_option *t = options__table(&n);
	char text[32];

	for (size_t i = 0; i < n; i++) {
		if (!t[i].flag || !t[i].key || t[i].type != SVC_OPT_INT)
			continue;
		const long long probes[] = {t[i].min - 1, t[i].min, t[i].max, t[i].max + 1};
		for (size_t k = 0; k < SVC_ARRAY_LEN(probes); k++) {
			if ((k == 3 && t[i].max == LLONG_MAX) || (k == 0 && t[i].min == LLONG_MIN))
				continue;
			snprintf(text, sizeof(text), "%lld", probes[k]);
			same_verdict(&t[i], text, text);
		}
		checked++;
	}
	cr_assert_geq(checked, 5, "threads, stats, idle and active timeouts, max_flows at least");
}

Test(options, flag_and_key_share_one_spelling)
{
	size_t n;
	const struct svc_option *t = options__table(&n);
	char json[64];

	for (size_t i = 0; i < n; i++) {
		if (!t[i].flag || !t[i].key)
			continue;
		switch (t[i].type) {
		case SVC_OPT_NAME:
		case SVC_OPT_ENUM:
			same_verdict(&t[i], "bogus", "\"bogus\"");
			snprintf(json, sizeof(json), "\"%s\"", t[i].choices[0]);
			same_verdict(&t[i], t[i].choices[0], json);
			break;
		case SVC_OPT_STR:
		case SVC_OPT_STR_OFF:
			same_verdict(&t[i], "", "\"\"");
			break;
		default:
			break;
		}
	}
}

/* The two disagreements issue 9 named, with the ranges written out: --stats and stats_interval
 * stop at one day, --idle-timeout and idle_timeout at 365 days. */
Test(options, the_named_ranges)
{
	static const struct {
		const char *flag, *key, *ok, *bad, *reason;
	} cases[] = {
	    {"--stats", "stats_interval", "86400", "86401", "from 0 to 86400"},
	    {"--idle-timeout", "idle_timeout", "31536000", "31536001", "from 1 to 31536000"},
	    {"--active-timeout", "active_timeout", "31536000", "31536001", "from 1 to 31536000"},
	    {"--threads", "threads", "64", "65", "from 1 to 64"},
	};
	for (size_t i = 0; i < SVC_ARRAY_LEN(cases); i++) {
		struct parsed p;
		struct svc_config c;
		char *msg;

		parse(&p, (const char *const[]){cases[i].flag, cases[i].ok, NULL});
		cr_assert_eq(p.rc, OPTIONS_RUN, "%s %s: %s", cases[i].flag, cases[i].ok, p.msg);
		parsed_free(&p);
		parse(&p, (const char *const[]){cases[i].flag, cases[i].bad, NULL});
		cr_assert_lt(p.rc, 0, "%s %s accepted", cases[i].flag, cases[i].bad);
		cr_assert_not_null(strstr(p.msg, cases[i].reason), "%s", p.msg);
		parsed_free(&p);

		cr_assert_eq(load_one(&c, cases[i].key, cases[i].ok, &msg), 0, "%s", msg);
		config__free(&c);
		free(msg);
		cr_assert_lt(load_one(&c, cases[i].key, cases[i].bad, &msg), 0);
		cr_assert_not_null(strstr(msg, cases[i].reason), "%s", msg);
		config__free(&c);
		free(msg);
	}
}

Test(options, the_short_flag_is_named_as_typed)
{
	struct parsed p;
	parse(&p, (const char *const[]){"-t", "0", NULL});
	cr_assert_str_eq(p.msg, "svcsensor: -t: expected an integer from 1 to 64, got 0\n");
	parsed_free(&p);
	parse(&p, (const char *const[]){"-t65", NULL});
	cr_assert_str_eq(p.msg, "svcsensor: -t: expected an integer from 1 to 64, got 65\n");
	parsed_free(&p);
	parse(&p, (const char *const[]){"--threads=abc", NULL});
	cr_assert_str_eq(p.msg,
			 "svcsensor: --threads: expected an integer from 1 to 64, got \"abc\"\n");
	parsed_free(&p);
}

Test(options, the_config_file_comes_first_then_the_flags_in_order)
{
	char *path = path_in(tmpdir, "cfg.json");
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("{\"threads\": 4, \"print\": \"none\", \"local_networks\": [\"10.9.0.0/16\"]}\n", f);
	fclose(f);

	struct parsed p;
	parse(&p, (const char *const[]){"-t", "2", "-r", "a.pcap", "--local", "192.168.7.0/24",
					"-r", "b.pcap", "--local", "fd00::/8", "-c", path,
					"--no-promisc", "-L", NULL});
	cr_assert_eq(p.rc, OPTIONS_RUN, "%s", p.msg);
	cr_assert_eq(p.o.cfg.threads, 2, "a flag wins over the file, wherever -c is");
	cr_assert_eq(p.o.cfg.print, PRINT_NONE, "the file's other keys apply");
	cr_assert_eq(p.o.cfg.n_local_networks, 2, "--local replaces the list, then adds");
	cr_assert_eq(p.o.cfg.local_networks[0].plen, 24);
	cr_assert_eq(p.o.cfg.local_networks[1].ipver, 6);
	cr_assert_eq(p.o.run.n_files, 2);
	cr_assert_str_eq(p.o.run.files[0], "a.pcap");
	cr_assert_str_eq(p.o.run.files[1], "b.pcap");
	cr_assert_not(p.o.cfg.promisc);
	cr_assert(p.o.cfg.guess);
	cr_assert(p.o.run.learn);
	cr_assert_not(p.o.run.quiet);
	parsed_free(&p);

	/* A path set before parsing ($SVCSENSOR_CONFIG in main) is read as -c would be. */
	cr_assert_eq(options__init(&p.o), 0);
	p.o.run.config_path = path;
	char *argv[] = {"svcsensor", "-q", NULL};
	cr_assert_eq(options__parse(&p.o, 2, argv), OPTIONS_RUN);
	cr_assert_eq(p.o.cfg.threads, 4);
	cr_assert(p.o.run.quiet);
	options__free(&p.o);
	free(path);
}

Test(options, bad_command_lines_are_one_line)
{
	static const struct {
		const char *args[4];
		int rc;
		const char *line;
	} cases[] = {
	    {{"--bogus"}, -EINVAL, "svcsensor: unknown option --bogus (see --help)\n"},
	    {{"-Z"}, -EINVAL, "svcsensor: unknown option -Z (see --help)\n"},
	    {{"--map"}, -EINVAL, "svcsensor: option --map needs a value (see --help)\n"},
	    {{"--learn=yes"},
	     -EINVAL,
	     "svcsensor: option --learn=yes takes no value (see --help)\n"},
	    {{"x.pcap"},
	     -EINVAL,
	     "svcsensor: unexpected argument \"x.pcap\" (captures are given with -r)\n"},
	    {{"--local", "10.0.0.0/33"},
	     -EINVAL,
	     "svcsensor: --local: \"10.0.0.0/33\" is not a network (expected ADDRESS/PREFIX, "
	     "e.g. 10.0.0.0/8 or fc00::/7)\n"},
	    {{"-h", "--bogus"}, OPTIONS_HELP, ""},
	    {{"-V"}, OPTIONS_VERSION, ""},
	};
	for (size_t i = 0; i < SVC_ARRAY_LEN(cases); i++) {
		struct parsed p;
		parse(&p, cases[i].args);
		cr_assert_eq(p.rc, cases[i].rc, "case %zu: %d", i, p.rc);
		cr_assert_str_eq(p.msg, cases[i].line, "case %zu", i);
		parsed_free(&p);
	}
}
