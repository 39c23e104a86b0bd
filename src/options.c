/* options.c - the option table (include/svcsensor/options.h): every tunable and every flag in
 * one row, and what is driven by it: field access, values from text (flags and defaults),
 * getopt_long's tables, the command line and --help.
 *
 * Ranges: a time span is at most 365 days, a periodic interval at most one day; the other
 * ranges are what the code can hold (README.md, Config file, lists them). */
#include "svcsensor/options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/common.h"

#define DAYS_365 (365LL * 86400)
#define ONE_DAY 86400LL

#define CFG(f)                                                                                     \
	.home = SVC_OPT_CFG, .off = offsetof(struct svc_config, f),                                \
	.size = sizeof(((struct svc_config *)0)->f)
#define CFG_LIST(f, n) CFG(f), .off_n = offsetof(struct svc_config, n)
#define RUN(f)                                                                                     \
	.home = SVC_OPT_RUN, .off = offsetof(struct svc_run, f),                                   \
	.size = sizeof(((struct svc_run *)0)->f)
#define RUN_LIST(f, n) RUN(f), .off_n = offsetof(struct svc_run, n)
#define INT(lo, hi) .type = SVC_OPT_INT, .min = (lo), .max = (hi)

/* One row per line group, read as a table: clang-format would put each field on a line. */
/* clang-format off */
static const struct svc_option table[] = {
    /* Input */
    {.flag = "read", .short_flag = 'r', .arg = "FILE", .type = SVC_OPT_FILES,
     RUN_LIST(files, n_files), .section = SVC_SEC_INPUT,
     .help = "read a pcap or pcapng capture; repeatable, read in order; - is the standard "
	     "input"},
    {.key = "interface", .flag = "interface", .short_flag = 'i', .arg = "IFACE",
     .type = SVC_OPT_STR_NULL, CFG(interface), .section = SVC_SEC_INPUT,
     .help = "capture live on IFACE"},
    {.flag = "flows-in", .arg = "FILE", .type = SVC_OPT_ARG, RUN(flows_in),
     .section = SVC_SEC_INPUT,
     .help = "with --learn: learn from a flow CSV (nfstream's columns, or -o's) instead of "
	     "packets"},
    {.key = "threads", .flag = "threads", .short_flag = 't', .arg = "N", INT(1, 64),
     CFG(threads), .def = "1", .section = SVC_SEC_INPUT, .help = "worker threads"},
    {.key = "bpf_filter", .flag = "filter", .short_flag = 'f', .arg = "EXPR",
     .type = SVC_OPT_STR_NULL, CFG(bpf_filter), .section = SVC_SEC_INPUT,
     .help = "capture filter, tcpdump syntax (live and offline)"},

    /* Live capture */
    {.flag = "duration", .arg = "SECONDS", INT(1, DAYS_365), RUN(duration),
     .section = SVC_SEC_LIVE, .help = "stop after SECONDS"},
    {.key = "fanout", .flag = "fanout", .arg = "MODE", .type = SVC_OPT_NAME,
     .choices = config_fanout_names, CFG(fanout), .def = "hash", .section = SVC_SEC_LIVE,
     .help = "how frames are spread over the rings"},
    {.key = "stats_interval", .flag = "stats", .arg = "SECONDS", INT(0, ONE_DAY),
     CFG(stats_interval), .def = "0", .section = SVC_SEC_LIVE,
     .help = "a statistics line every SECONDS, 0 = only the exit summary"},
    {.key = "user", .flag = "user", .arg = "NAME", .type = SVC_OPT_STR_OFF, CFG(user),
     .section = SVC_SEC_LIVE, .help = "drop privileges to NAME once capture is set up"},
    {.key = "promisc", .flag = "no-promisc", .type = SVC_OPT_BOOL, CFG(promisc),
     .def = "true", .section = SVC_SEC_LIVE, .help = "leave promiscuous mode off"},
    {.key = "ring_block_size", INT(4096, 1LL << 30), CFG(ring_block_size), .def = "1048576",
     .section = SVC_SEC_LIVE, .help = "ring: bytes per block, a multiple of the page size"},
    {.key = "ring_block_count", INT(1, 1LL << 20), CFG(ring_block_count), .def = "64",
     .section = SVC_SEC_LIVE, .help = "ring: blocks per worker"},
    {.key = "ring_frame_size", INT(128, 1LL << 30), CFG(ring_frame_size), .def = "2048",
     .section = SVC_SEC_LIVE,
     .help = "ring: nominal frame slot, a multiple of 16, at most ring_block_size"},
    {.key = "ring_block_timeout_ms", INT(0, 60000), CFG(ring_block_timeout_ms), .def = "100",
     .section = SVC_SEC_LIVE,
     .help = "ring: milliseconds before a partly filled block is handed over"},

    /* Mode */
    {.flag = "learn", .short_flag = 'L', .type = SVC_OPT_BOOL, RUN(learn),
     .section = SVC_SEC_MODE, .help = "learn the service map instead of detecting"},
    {.flag = "show-report", .short_flag = 'a', .type = SVC_OPT_BOOL, RUN(show_report),
     .section = SVC_SEC_MODE, .help = "print the last saved report and exit"},

    /* Files */
    {.flag = "config", .short_flag = 'c', .arg = "FILE", .type = SVC_OPT_CONFIG,
     RUN(config_path), .section = SVC_SEC_FILES,
     .help = "settings file (JSON, see config/svcsensor.json); without -c, "
	     "$SVCSENSOR_CONFIG when set"},
    {.key = "map_file", .flag = "map", .short_flag = 'm', .arg = "FILE", .type = SVC_OPT_STR,
     CFG(map_file), .def = "svcsensor-map.json", .section = SVC_SEC_FILES,
     .help = "service map file"},
    {.key = "log_file", .flag = "log", .arg = "FILE", .type = SVC_OPT_STR_NULL, CFG(log_file),
     .def = "anomalies.log", .section = SVC_SEC_FILES,
     .help = "anomaly log, \"\" = none, \"-\" = standard output"},
    {.key = "log_max_bytes", INT(0, LLONG_MAX), CFG(log_max_bytes), .def = "10485760",
     .section = SVC_SEC_FILES,
     .help = "rotate the anomaly log when it would pass this size, 0 = never"},
    {.key = "log_keep", INT(1, 1000), CFG(log_keep), .def = "5", .section = SVC_SEC_FILES,
     .help = "rotated anomaly logs kept"},
    {.key = "report_file", .flag = "report", .arg = "FILE", .type = SVC_OPT_STR_NULL,
     CFG(report_file), .def = "svcsensor-report.txt", .section = SVC_SEC_FILES,
     .help = "report file, \"\" = none; its JSON form is FILE.json"},
    {.key = "report_interval", INT(0, ONE_DAY), CFG(report_interval), .def = "60",
     .section = SVC_SEC_FILES, .help = "seconds between report saves, 0 = only at exit"},
    {.key = "report_max_keys", .flag = "report-max-keys", .arg = "N", INT(1, 1LL << 28),
     CFG(report_max_keys), .def = "100000", .section = SVC_SEC_FILES,
     .help = "report: (verdict, source, destination) rows at most; the rest go to (other)"},
    {.key = "flows_out", .flag = "flows-out", .short_flag = 'o', .arg = "FILE",
     .type = SVC_OPT_STR_NULL, CFG(flows_out), .section = SVC_SEC_FILES,
     .help = "export every finished flow as CSV (appended; \"-\" = standard output)"},
    {.key = "flows_max_bytes", INT(0, LLONG_MAX), CFG(flows_max_bytes), .def = "104857600",
     .section = SVC_SEC_FILES,
     .help = "rotate the flow CSV when it would pass this size, 0 = never"},
    {.key = "flows_keep", INT(1, 1000), CFG(flows_keep), .def = "5", .section = SVC_SEC_FILES,
     .help = "rotated flow CSVs kept"},
    {.key = "learn_save_interval", INT(0, ONE_DAY), CFG(learn_save_interval), .def = "300",
     .section = SVC_SEC_FILES,
     .help = "learn mode: seconds between map saves, 0 = only at exit"},

    /* Tuning */
    {.key = "print", .flag = "print", .arg = "MODE", .type = SVC_OPT_ENUM,
     .choices = config_print_names, CFG(print), .def = "all", .section = SVC_SEC_TUNING,
     .help = "console lines"},
    {.key = "local_networks", .flag = "local", .arg = "CIDR", .type = SVC_OPT_CIDRS,
     CFG_LIST(local_networks, n_local_networks),
     .def = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7,fe80::/10",
     .section = SVC_SEC_TUNING,
     .help = "a local network; repeatable, the first replaces the configured list"},
    {.key = "remote_mode", .type = SVC_OPT_ENUM, .choices = config_remote_names,
     CFG(remote_mode), .def = "remote", .section = SVC_SEC_TUNING,
     .help = "how addresses outside local_networks become host keys"},
    {.key = "remote_prefix4", INT(1, 32), CFG(remote_prefix4), .def = "24",
     .section = SVC_SEC_TUNING, .help = "IPv4 prefix length for remote_mode prefix"},
    {.key = "remote_prefix6", INT(1, 128), CFG(remote_prefix6), .def = "48",
     .section = SVC_SEC_TUNING, .help = "IPv6 prefix length for remote_mode prefix"},
    {.key = "idle_timeout", .flag = "idle-timeout", .arg = "S", INT(1, DAYS_365),
     CFG(idle_timeout), .def = "120", .section = SVC_SEC_TUNING,
     .help = "flow idle timeout in seconds"},
    {.key = "active_timeout", .flag = "active-timeout", .arg = "S", INT(1, DAYS_365),
     CFG(active_timeout), .def = "1800", .section = SVC_SEC_TUNING,
     .help = "flow active timeout in seconds"},
    {.key = "tcp_linger", INT(0, 3600), CFG(tcp_linger), .def = "2", .section = SVC_SEC_TUNING,
     .help = "seconds a closed TCP flow absorbs its trailing packets"},
    {.key = "max_flows", .flag = "max-flows", .arg = "N", INT(16, 1LL << 28), CFG(max_flows),
     .def = "262144", .section = SVC_SEC_TUNING, .help = "live flows per worker at most"},
    {.key = "tcp_max_pkts", INT(1, 10000), CFG(tcp_max_pkts), .def = "80",
     .section = SVC_SEC_TUNING, .help = "TCP packets per flow after which nDPI gives up"},
    {.key = "udp_max_pkts", INT(1, 10000), CFG(udp_max_pkts), .def = "24",
     .section = SVC_SEC_TUNING, .help = "UDP packets per flow after which nDPI gives up"},
    {.key = "guess", .flag = "no-guess", .type = SVC_OPT_BOOL, CFG(guess), .def = "true",
     .section = SVC_SEC_TUNING, .help = "report Unknown instead of nDPI's guess at give-up"},
    {.key = "minor_masters", .type = SVC_OPT_NAMES,
     CFG_LIST(minor_masters, n_minor_masters), .def = "DNS,TLS", .section = SVC_SEC_TUNING,
     .help = "masters whose new applications are DNS_TLS_APPLICATION"},
    {.key = "allow", .type = SVC_OPT_ALLOW, CFG_LIST(allow, n_allow), .def = "",
     .section = SVC_SEC_TUNING, .help = "allow rules {src, dst, app} silencing an anomaly"},

    /* Other */
    {.flag = "quiet", .short_flag = 'q', .type = SVC_OPT_BOOL, RUN(quiet),
     .section = SVC_SEC_OTHER, .help = "no progress line"},
    {.flag = "help", .short_flag = 'h', .type = SVC_OPT_HELP, .home = SVC_OPT_RUN, .section = SVC_SEC_OTHER,
     .help = "this text"},
    {.flag = "version", .short_flag = 'V', .type = SVC_OPT_VERSION, .home = SVC_OPT_RUN,
     .section = SVC_SEC_OTHER,
     .help = "the version"},
};
/* clang-format on */

#define N_OPTS SVC_ARRAY_LEN(table)
#define OPT_VAL_BASE 256 /* getopt_long's value of a row without a short flag: base + index */

const struct svc_option *options__table(size_t *n)
{
	*n = N_OPTS;
	return table;
}

const struct svc_option *options__find_key(const char *key)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (table[i].key && strcmp(table[i].key, key) == 0)
			return &table[i];
	return NULL;
}

/* ---- one field ------------------------------------------------------------------------------ */

void *options__field(const struct svc_option *opt, void *base)
{
	return (char *)base + opt->off;
}

static size_t *list_count(const struct svc_option *opt, void *base)
{
	return (size_t *)(void *)((char *)base + opt->off_n);
}

/* List and string fields hold object pointers of several types: read and write them as bytes
 * so that no lvalue of another pointer type touches them. */
static void *get_ptr(const struct svc_option *opt, void *base)
{
	void *p;
	memcpy(&p, options__field(opt, base), sizeof(p));
	return p;
}

static void set_ptr(const struct svc_option *opt, void *base, const void *p)
{
	memcpy(options__field(opt, base), &p, sizeof(p));
}

unsigned long long options__get_uint(const struct svc_option *opt, const void *base)
{
	const void *f = (const char *)base + opt->off;
	uint8_t v8;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	switch (opt->size) {
	case 1:
		memcpy(&v8, f, 1);
		return v8;
	case 2:
		memcpy(&v16, f, 2);
		return v16;
	case 4:
		memcpy(&v32, f, 4);
		return v32;
	default:
		memcpy(&v64, f, 8);
		return v64;
	}
}

static void put_uint(const struct svc_option *opt, void *base, unsigned long long v)
{
	void *f = options__field(opt, base);
	uint8_t v8 = (uint8_t)v;
	uint16_t v16 = (uint16_t)v;
	uint32_t v32 = (uint32_t)v;
	uint64_t v64 = v;

	switch (opt->size) {
	case 1:
		memcpy(f, &v8, 1);
		break;
	case 2:
		memcpy(f, &v16, 2);
		break;
	case 4:
		memcpy(f, &v32, 4);
		break;
	default:
		memcpy(f, &v64, 8);
		break;
	}
}

/* "\"a\", \"b\" or \"c\"" into buf (without the quotes when quote is false). */
static const char *choices_text(const char *const *choices, bool quote, char *buf, size_t len)
{
	const char *q = quote ? "\"" : "";
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; choices[i] && used < len; i++) {
		const char *sep = i == 0 ? "" : choices[i + 1] ? ", " : " or ";
		int w = snprintf(buf + used, len - used, "%s%s%s%s", sep, q, choices[i], q);
		used += w > 0 ? (size_t)w : 0;
	}
	return buf;
}

static int choice_index(const char *const *choices, const char *s)
{
	for (int i = 0; choices[i]; i++)
		if (strcmp(choices[i], s) == 0)
			return i;
	return -1;
}

const char *options__expected(const struct svc_option *opt, char *buf, size_t len)
{
	switch (opt->type) {
	case SVC_OPT_INT:
		if (opt->max == LLONG_MAX && opt->min <= 1)
			return opt->min == 1 ? "a positive integer" : "a non-negative integer";
		snprintf(buf, len, "an integer from %lld to %lld", opt->min, opt->max);
		return buf;
	case SVC_OPT_BOOL:
		return "true or false";
	case SVC_OPT_STR:
		return "a non-empty string";
	case SVC_OPT_STR_NULL:
		return "a string or null";
	case SVC_OPT_STR_OFF:
		return "a non-empty string or null";
	case SVC_OPT_NAME:
	case SVC_OPT_ENUM:
		return choices_text(opt->choices, true, buf, len);
	case SVC_OPT_CIDRS:
		return "a network (ADDRESS/PREFIX, e.g. 10.0.0.0/8 or fc00::/7)";
	case SVC_OPT_NAMES:
		return "a non-empty name";
	default:
		return "a value";
	}
}

int options__set_int(const struct svc_option *opt, void *base, long long v, char *why, size_t len)
{
	char buf[64];
	if (v < opt->min || v > opt->max) {
		snprintf(why, len, "expected %s, got %lld",
			 options__expected(opt, buf, sizeof(buf)), v);
		return -EINVAL;
	}
	put_uint(opt, base, (unsigned long long)v);
	return 0;
}

/* A decimal integer, optionally negative (so "-5" is reported as out of range, as a config
 * file's -5 is): digits only, no sign '+', no spaces, no suffix. */
static bool parse_ll(const char *s, long long *out)
{
	char *end;
	const char *digits = s[0] == '-' ? s + 1 : s;
	if (*digits < '0' || *digits > '9')
		return false;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

static int list_append(const struct svc_option *opt, void *base, const void *elem, size_t es)
{
	size_t *n = list_count(opt, base);
	char *v = realloc(get_ptr(opt, base), (*n + 1) * es);
	if (!v)
		return -ENOMEM;
	memcpy(v + *n * es, elem, es);
	set_ptr(opt, base, v);
	(*n)++;
	return 0;
}

static int set_string(const struct svc_option *opt, void *base, const char *text)
{
	char *copy = NULL;
	if (text && !(copy = strdup(text)))
		return -ENOMEM;
	free(get_ptr(opt, base));
	set_ptr(opt, base, copy);
	return 0;
}

static int set_list_text(const struct svc_option *opt, void *base, const char *text, char *why,
			 size_t len)
{
	struct cidr net;
	char *name;

	switch (opt->type) {
	case SVC_OPT_CIDRS:
		if (config__parse_cidr(text, &net) != 0) {
			snprintf(why, len,
				 "\"%s\" is not a network (expected ADDRESS/PREFIX, e.g. "
				 "10.0.0.0/8 or fc00::/7)",
				 text);
			return -EINVAL;
		}
		return list_append(opt, base, &net, sizeof(net));
	case SVC_OPT_NAMES:
		if (!*text) {
			snprintf(why, len, "expected a non-empty name, got \"\"");
			return -EINVAL;
		}
		if (!(name = strdup(text)))
			return -ENOMEM;
		if (list_append(opt, base, &name, sizeof(name)) != 0) {
			free(name);
			return -ENOMEM;
		}
		return 0;
	case SVC_OPT_FILES:
		return list_append(opt, base, &text, sizeof(text));
	default:
		snprintf(why, len, "has no command-line form (config file only)");
		return -EINVAL;
	}
}

int options__set_text(const struct svc_option *opt, void *base, const char *text, char *why,
		      size_t len)
{
	char buf[128];
	long long v;
	int i;

	switch (opt->type) {
	case SVC_OPT_INT:
		if (parse_ll(text, &v))
			return options__set_int(opt, base, v, why, len);
		break;
	case SVC_OPT_BOOL:
		if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
			break;
		*(bool *)options__field(opt, base) = strcmp(text, "true") == 0;
		return 0;
	case SVC_OPT_STR:
	case SVC_OPT_STR_OFF:
		if (!*text) {
			snprintf(why, len, "expected a non-empty string, got \"\"");
			return -EINVAL;
		}
		return set_string(opt, base, text);
	case SVC_OPT_STR_NULL:
		return set_string(opt, base, *text ? text : NULL);
	case SVC_OPT_NAME:
		if (choice_index(opt->choices, text) < 0)
			break;
		return set_string(opt, base, text);
	case SVC_OPT_ENUM:
		if ((i = choice_index(opt->choices, text)) < 0)
			break;
		put_uint(opt, base, (unsigned)i);
		return 0;
	case SVC_OPT_ARG:
	case SVC_OPT_CONFIG:
		set_ptr(opt, base, text);
		return 0;
	case SVC_OPT_HELP:
	case SVC_OPT_VERSION:
		return 0;
	default:
		return set_list_text(opt, base, text, why, len);
	}
	snprintf(why, len, "expected %s, got \"%s\"", options__expected(opt, buf, sizeof(buf)),
		 text);
	return -EINVAL;
}

static bool is_list(enum svc_opt_type t)
{
	return t == SVC_OPT_CIDRS || t == SVC_OPT_NAMES || t == SVC_OPT_ALLOW || t == SVC_OPT_FILES;
}

int options__set_default(const struct svc_option *opt, void *base, char *why, size_t len)
{
	if (!opt->def)
		return 0;
	if (!is_list(opt->type))
		return options__set_text(opt, base, opt->def, why, len);

	options__release(opt, base);
	char *copy = strdup(opt->def), *save = NULL;
	if (!copy)
		return -ENOMEM;
	int err = 0;
	for (char *e = strtok_r(copy, ",", &save); e && !err; e = strtok_r(NULL, ",", &save))
		err = options__set_text(opt, base, e, why, len);
	free(copy);
	return err;
}

void options__release(const struct svc_option *opt, void *base)
{
	size_t n = is_list(opt->type) ? *list_count(opt, base) : 0;
	void *p;

	switch (opt->type) {
	case SVC_OPT_STR:
	case SVC_OPT_STR_NULL:
	case SVC_OPT_STR_OFF:
	case SVC_OPT_NAME:
	case SVC_OPT_CIDRS:
	case SVC_OPT_NAMES:
	case SVC_OPT_ALLOW:
	case SVC_OPT_FILES:
		p = get_ptr(opt, base);
		break;
	default:
		return; /* nothing owned: a number, a flag, a borrowed string */
	}
	switch (opt->type) {
	case SVC_OPT_NAMES:
		for (size_t i = 0; i < n; i++)
			free(((char **)p)[i]);
		free(p);
		break;
	case SVC_OPT_ALLOW:
		for (size_t i = 0; i < n; i++) {
			struct allow_rule *r = (struct allow_rule *)p + i;
			free(r->src);
			free(r->dst);
			free(r->app);
		}
		free(p);
		break;
	default:
		free(p);
		break;
	}
	set_ptr(opt, base, NULL);
	if (is_list(opt->type))
		*list_count(opt, base) = 0;
}

void options__list_replace(const struct svc_option *opt, void *base, void *items, size_t n)
{
	options__release(opt, base);
	set_ptr(opt, base, items);
	*list_count(opt, base) = n;
}

/* ---- the command line ----------------------------------------------------------------------- */

int options__init(struct svc_options *o)
{
	memset(o, 0, sizeof(*o));
	return config__defaults(&o->cfg);
}

void options__free(struct svc_options *o)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (table[i].home == SVC_OPT_RUN)
			options__release(&table[i], &o->run);
	config__free(&o->cfg);
	memset(o, 0, sizeof(*o));
}

/* getopt_long's tables: longs[] ends with a zero row; shorts starts with ':' (a missing value
 * is reported as ':' so that the message is ours). */
static void build_getopt(struct option *longs, char *shorts)
{
	size_t nl = 0, ns = 0;
	shorts[ns++] = ':';
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct svc_option *t = &table[i];
		int val = t->short_flag ? t->short_flag : OPT_VAL_BASE + (int)i;
		if (t->flag)
			longs[nl++] = (struct option){
			    t->flag, t->arg ? required_argument : no_argument, NULL, val};
		if (t->short_flag) {
			shorts[ns++] = t->short_flag;
			if (t->arg)
				shorts[ns++] = ':';
		}
	}
	longs[nl] = (struct option){NULL, 0, NULL, 0};
	shorts[ns] = '\0';
}

/* The row getopt_long's return value c stands for, or NULL ('?', ':'). */
static const struct svc_option *row_of(int c)
{
	if (c >= OPT_VAL_BASE && (size_t)(c - OPT_VAL_BASE) < N_OPTS)
		return &table[c - OPT_VAL_BASE];
	for (size_t i = 0; c > 0 && i < N_OPTS; i++)
		if (table[i].short_flag == c)
			return &table[i];
	return NULL;
}

/* The flag as the user spelled it, "-t" or "--threads", for messages. */
static const char *typed_name(const struct svc_option *opt, char **argv, char *buf, size_t len)
{
	const char *typed = argv[optind - 1];
	if (optarg && typed == optarg && optind >= 2)
		typed = argv[optind - 2];
	if (opt->short_flag && strncmp(typed, "--", 2) != 0)
		snprintf(buf, len, "-%c", opt->short_flag);
	else
		snprintf(buf, len, "--%s", opt->flag);
	return buf;
}

/* Apply one flag; *seen says whether a list flag was given before (its first use replaces the
 * configured list, the next ones add to it). */
static int apply_flag(struct svc_options *o, const struct svc_option *opt, bool *seen, char **argv)
{
	void *base = opt->home == SVC_OPT_CFG ? (void *)&o->cfg : (void *)&o->run;
	char why[512], name[64];
	int err;

	if (opt->type == SVC_OPT_CONFIG)
		return 0; /* read in the first pass */
	if (opt->type == SVC_OPT_BOOL) {
		*(bool *)options__field(opt, base) = !(opt->def && strcmp(opt->def, "true") == 0);
		return 0;
	}
	if (is_list(opt->type) && !*seen)
		options__release(opt, base);
	*seen = true;
	err = options__set_text(opt, base, optarg, why, sizeof(why));
	if (err == -EINVAL)
		svc_err("%s: %s", typed_name(opt, argv, name, sizeof(name)), why);
	else if (err)
		svc_err("%s: %s", typed_name(opt, argv, name, sizeof(name)), strerror(-err));
	return err;
}

int options__parse(struct svc_options *o, int argc, char **argv)
{
	struct option longs[N_OPTS + 1];
	char shorts[2 * N_OPTS + 2];
	bool seen[N_OPTS] = {false};
	const struct svc_option *opt;
	int c, err;

	build_getopt(longs, shorts);
	/* First pass: only -c, so that the file is applied before every other flag. */
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, shorts + 1, longs, NULL)) != -1)
		if ((opt = row_of(c)) && opt->type == SVC_OPT_CONFIG)
			o->run.config_path = optarg;
	if (o->run.config_path && (err = config__load(&o->cfg, o->run.config_path)) != 0)
		return err;

	optind = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		if (c == ':') {
			svc_err("option %s needs a value (see --help)", argv[optind - 1]);
			return -EINVAL;
		}
		if (!(opt = row_of(c))) {
			if (optopt && row_of(optopt))
				svc_err("option %s takes no value (see --help)", argv[optind - 1]);
			else if (optopt)
				svc_err("unknown option -%c (see --help)", optopt);
			else
				svc_err("unknown option %s (see --help)", argv[optind - 1]);
			return -EINVAL;
		}
		if (opt->type == SVC_OPT_HELP)
			return OPTIONS_HELP;
		if (opt->type == SVC_OPT_VERSION)
			return OPTIONS_VERSION;
		if ((err = apply_flag(o, opt, &seen[opt - table], argv)) != 0)
			return err;
	}
	if (optind < argc) {
		svc_err("unexpected argument \"%s\" (captures are given with -r)", argv[optind]);
		return -EINVAL;
	}
	return OPTIONS_RUN;
}

/* ---- --help --------------------------------------------------------------------------------- */

#define HELP_WIDTH 80
#define HELP_INDENT 27

/* Print text from column col, wrapped before HELP_WIDTH, continuation lines at indent. */
static void wrap(FILE *out, int col, int indent, const char *text)
{
	while (*text) {
		size_t room = (size_t)(HELP_WIDTH - 1 - col), n = strlen(text);
		if (n > room) {
			n = room;
			while (n > 0 && text[n] != ' ')
				n--;
			if (n == 0) /* one word longer than the line: let it overflow */
				n = strcspn(text, " ");
		}
		fprintf(out, "%.*s\n", (int)n, text);
		text += n;
		while (*text == ' ')
			text++;
		if (*text)
			fprintf(out, "%*s", indent, "");
		col = indent;
	}
}

/* A help line's text: the phrase, then "(part; part; ...)". */
struct help_text {
	char buf[512];
	size_t used;
	bool open;
};

static void help_part(struct help_text *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void help_part(struct help_text *h, const char *fmt, ...)
{
	va_list ap;
	int w = snprintf(h->buf + h->used, sizeof(h->buf) - h->used, "%s", h->open ? "; " : " (");
	h->used += w > 0 ? (size_t)w : 0;
	h->open = true;
	va_start(ap, fmt);
	w = h->used < sizeof(h->buf)
		? vsnprintf(h->buf + h->used, sizeof(h->buf) - h->used, fmt, ap)
		: 0;
	va_end(ap);
	h->used += w > 0 ? (size_t)w : 0;
	if (h->used >= sizeof(h->buf))
		h->used = sizeof(h->buf) - 1;
}

/* A default for --help: a list's commas followed by a space, so that it wraps. */
static const char *list_text(const char *def, char *buf, size_t len)
{
	size_t used = 0;
	for (; *def && used + 2 < len; def++) {
		buf[used++] = *def;
		if (*def == ',')
			buf[used++] = ' ';
	}
	buf[used] = '\0';
	return buf;
}

/* One flag: "  -t, --threads N          worker threads (1 to 64; default 1; config: threads)". */
static void usage_row(FILE *out, const struct svc_option *t)
{
	struct help_text h = {.used = 0, .open = false};
	char choices[128], def[256];
	int col;

	if (t->short_flag)
		col = fprintf(out, "  -%c, --%s", t->short_flag, t->flag);
	else
		col = fprintf(out, "      --%s", t->flag);
	if (t->arg)
		col += fprintf(out, " %s", t->arg);
	if (col >= HELP_INDENT - 1) {
		fprintf(out, "\n");
		col = 0;
	}
	fprintf(out, "%*s", HELP_INDENT - col, "");

	h.used = (size_t)snprintf(h.buf, sizeof(h.buf), "%s", t->help);
	if (t->type == SVC_OPT_INT)
		help_part(&h, "%lld to %lld", t->min, t->max);
	if (t->type == SVC_OPT_NAME || t->type == SVC_OPT_ENUM)
		help_part(&h, "%s", choices_text(t->choices, false, choices, sizeof(choices)));
	if (t->def && t->type != SVC_OPT_BOOL)
		help_part(&h, "default %s", list_text(t->def, def, sizeof(def)));
	if (t->key)
		help_part(&h, "config: %s", t->key);
	if (h.open && h.used + 1 < sizeof(h.buf))
		h.buf[h.used++] = ')', h.buf[h.used] = '\0';
	wrap(out, HELP_INDENT, HELP_INDENT, h.buf);
}

void options__usage(FILE *out)
{
	static const char *const titles[SVC_SEC_COUNT] = {
	    [SVC_SEC_INPUT] = "Input:",	  [SVC_SEC_LIVE] = "Live capture:",
	    [SVC_SEC_MODE] = "Mode:",	  [SVC_SEC_FILES] = "Files:",
	    [SVC_SEC_TUNING] = "Tuning:", [SVC_SEC_OTHER] = "Other:",
	};
	char keys[1024];
	size_t used = 0;

	fputs("Usage: svcsensor [OPTIONS] (-r FILE ... | -i IFACE)\n"
	      "       svcsensor --learn [OPTIONS] (-r FILE ... | -i IFACE) [-m MAP]\n"
	      "       svcsensor --learn [OPTIONS] --flows-in FLOWS.csv [-m MAP]\n"
	      "       svcsensor -a [--report FILE]\n"
	      "\n"
	      "Learns a service map (which host talks to which, with which applications) and\n"
	      "flags flows that leave it. A flag overrides the settings file's key.\n",
	      out);
	for (int s = 0; s < SVC_SEC_COUNT; s++) {
		fprintf(out, "\n%s\n", titles[s]);
		for (size_t i = 0; i < N_OPTS; i++)
			if (table[i].flag && table[i].section == (enum svc_opt_section)s)
				usage_row(out, &table[i]);
	}
	keys[0] = '\0';
	for (size_t i = 0; i < N_OPTS && used < sizeof(keys); i++)
		if (table[i].key && !table[i].flag) {
			int w = snprintf(keys + used, sizeof(keys) - used, "%s%s", used ? ", " : "",
					 table[i].key);
			used += w > 0 ? (size_t)w : 0;
		}
	fputs("\nSettings without a flag (config/svcsensor.json lists each with its default):\n  ",
	      out);
	wrap(out, 2, 2, keys);
}
