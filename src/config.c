/* config.c - every tunable: built-in defaults, the JSON config file (jansson), validation.
 *
 * One table (opts[]) names every key, where it lives in struct svc_config, its kind and its
 * range. config__load checks each key of the file against it (so a message names the key) and
 * config__validate checks the same ranges again after command-line flags, plus the constraints
 * that span several keys. The file is strict: an unknown key or a wrong type is an error, not a
 * warning, because a typo in a sensor's config silently running with a default is worse. */
#include "svcsensor/config.h"
#include "svcsensor/json_util.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "svcsensor/common.h"

#define CONFIG_MAX_BYTES (4u << 20) /* a config file larger than this is not a config file */
#define U32_MAX_LL ((long long)UINT32_MAX)

enum opt_kind {
	OPT_UINT,	 /* unsigned */
	OPT_U8,		 /* uint8_t */
	OPT_U32,	 /* uint32_t */
	OPT_U64,	 /* uint64_t */
	OPT_BOOL,	 /* bool */
	OPT_STR,	 /* char *, non-empty */
	OPT_STR_NULL,	 /* char *, null or "" = off (stored as NULL) */
	OPT_FANOUT,	 /* char *, one of fanout_names */
	OPT_PRINT,	 /* enum print_mode */
	OPT_REMOTE_MODE, /* enum remote_mode */
	OPT_CIDRS,	 /* local_networks + n_local_networks */
	OPT_NAMES,	 /* minor_masters + n_minor_masters */
	OPT_ALLOW,	 /* allow + n_allow */
};

struct opt {
	const char *name; /* JSON key = struct field name */
	enum opt_kind kind;
	size_t off;
	long long min, max; /* integer kinds */
};

#define OFF(f) offsetof(struct svc_config, f)

static const struct opt opts[] = {
    {"local_networks", OPT_CIDRS, OFF(local_networks), 0, 0},
    {"remote_mode", OPT_REMOTE_MODE, OFF(remote_mode), 0, 0},
    {"remote_prefix4", OPT_U8, OFF(remote_prefix4), 1, 32},
    {"remote_prefix6", OPT_U8, OFF(remote_prefix6), 1, 128},
    {"map_file", OPT_STR, OFF(map_file), 0, 0},
    {"log_file", OPT_STR_NULL, OFF(log_file), 0, 0},
    {"log_max_bytes", OPT_U64, OFF(log_max_bytes), 1, LLONG_MAX},
    {"log_keep", OPT_UINT, OFF(log_keep), 1, 1000},
    {"report_file", OPT_STR_NULL, OFF(report_file), 0, 0},
    {"report_interval", OPT_UINT, OFF(report_interval), 0, U32_MAX_LL},
    {"flows_out", OPT_STR_NULL, OFF(flows_out), 0, 0},
    {"idle_timeout", OPT_UINT, OFF(idle_timeout), 1, U32_MAX_LL},
    {"active_timeout", OPT_UINT, OFF(active_timeout), 1, U32_MAX_LL},
    {"tcp_linger", OPT_UINT, OFF(tcp_linger), 0, U32_MAX_LL},
    {"max_flows", OPT_U32, OFF(max_flows), 16, 1LL << 28},
    {"threads", OPT_UINT, OFF(threads), 1, 64},
    {"tcp_max_pkts", OPT_UINT, OFF(tcp_max_pkts), 1, 10000},
    {"udp_max_pkts", OPT_UINT, OFF(udp_max_pkts), 1, 10000},
    {"guess", OPT_BOOL, OFF(guess), 0, 0},
    {"print", OPT_PRINT, OFF(print), 0, 0},
    {"minor_masters", OPT_NAMES, OFF(minor_masters), 0, 0},
    {"allow", OPT_ALLOW, OFF(allow), 0, 0},
    {"learn_save_interval", OPT_UINT, OFF(learn_save_interval), 0, U32_MAX_LL},
    {"interface", OPT_STR_NULL, OFF(interface), 0, 0},
    {"fanout", OPT_FANOUT, OFF(fanout), 0, 0},
    {"bpf_filter", OPT_STR_NULL, OFF(bpf_filter), 0, 0},
    {"ring_block_size", OPT_UINT, OFF(ring_block_size), 4096, 1LL << 30},
    {"ring_block_count", OPT_UINT, OFF(ring_block_count), 1, 1LL << 20},
    {"ring_frame_size", OPT_UINT, OFF(ring_frame_size), 128, 1LL << 30},
    {"ring_block_timeout_ms", OPT_UINT, OFF(ring_block_timeout_ms), 0, 60000},
    {"promisc", OPT_BOOL, OFF(promisc), 0, 0},
    {"user", OPT_STR_NULL, OFF(user), 0, 0},
    {"stats_interval", OPT_UINT, OFF(stats_interval), 0, U32_MAX_LL},
};

static const char *const fanout_names[] = {"hash", "cpu", "qm", "ebpf"};
static const char *const print_names[] = {
    [PRINT_ALL] = "all", [PRINT_ANOMALIES] = "anomalies", [PRINT_NONE] = "none"};
static const char *const remote_names[] = {
    [REMOTE_COLLAPSE] = "remote", [REMOTE_ADDRESS] = "address", [REMOTE_PREFIX] = "prefix"};

static const char *const default_networks[] = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
					       "fc00::/7", "fe80::/10"};
static const char *const default_minor_masters[] = {"DNS", "TLS"};

/* ---- small helpers ------------------------------------------------------------------------ */

int config__set_str(char **field, const char *value)
{
	char *copy = NULL;
	if (value) {
		copy = strdup(value);
		if (!copy)
			return -ENOMEM;
	}
	free(*field);
	*field = copy;
	return 0;
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void free_allow(struct allow_rule *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].src);
		free(v[i].dst);
		free(v[i].app);
	}
	free(v);
}

static int names_dup(const char *const *src, size_t n, char ***out)
{
	char **v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		v[i] = strdup(src[i]);
		if (!v[i]) {
			free_names(v, i);
			return -ENOMEM;
		}
	}
	*out = v;
	return 0;
}

static unsigned long long get_uint(const struct svc_config *c, const struct opt *o)
{
	const char *p = (const char *)c + o->off;
	switch (o->kind) {
	case OPT_UINT:
		return *(const unsigned *)(const void *)p;
	case OPT_U8:
		return *(const uint8_t *)(const void *)p;
	case OPT_U32:
		return *(const uint32_t *)(const void *)p;
	case OPT_U64:
		return *(const uint64_t *)(const void *)p;
	default:
		return 0;
	}
}

static void set_uint(struct svc_config *c, const struct opt *o, unsigned long long v)
{
	char *p = (char *)c + o->off;
	switch (o->kind) {
	case OPT_UINT:
		*(unsigned *)(void *)p = (unsigned)v;
		break;
	case OPT_U8:
		*(uint8_t *)(void *)p = (uint8_t)v;
		break;
	case OPT_U32:
		*(uint32_t *)(void *)p = (uint32_t)v;
		break;
	case OPT_U64:
		*(uint64_t *)(void *)p = (uint64_t)v;
		break;
	default:
		break;
	}
}

static bool is_int_kind(enum opt_kind k)
{
	return k == OPT_UINT || k == OPT_U8 || k == OPT_U32 || k == OPT_U64;
}

/* "a positive integer", "an integer from 1 to 64", ... for messages. */
static const char *range_text(const struct opt *o, char *buf, size_t len)
{
	bool open_top = o->max >= U32_MAX_LL;
	if (open_top && o->min == 1)
		return "a positive integer";
	if (open_top && o->min == 0)
		return "a non-negative integer";
	if (open_top)
		snprintf(buf, len, "an integer >= %lld", o->min);
	else
		snprintf(buf, len, "an integer from %lld to %lld", o->min, o->max);
	return buf;
}

static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

/* ---- parsers shared with the command line --------------------------------------------------- */

int config__parse_print(const char *s, enum print_mode *out)
{
	int i = s ? name_index(print_names, SVC_ARRAY_LEN(print_names), s) : -1;
	if (i < 0)
		return -EINVAL;
	*out = (enum print_mode)i;
	return 0;
}

int config__parse_remote_mode(const char *s, enum remote_mode *out)
{
	int i = s ? name_index(remote_names, SVC_ARRAY_LEN(remote_names), s) : -1;
	if (i < 0)
		return -EINVAL;
	*out = (enum remote_mode)i;
	return 0;
}

const char *config__print_name(enum print_mode m)
{
	return (unsigned)m < SVC_ARRAY_LEN(print_names) ? print_names[m] : "?";
}

const char *config__remote_mode_name(enum remote_mode m)
{
	return (unsigned)m < SVC_ARRAY_LEN(remote_names) ? remote_names[m] : "?";
}

int config__parse_cidr(const char *s, struct cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	struct cidr r = {0};
	const char *slash;
	size_t alen;
	unsigned maxlen, plen;

	if (!s || !*s)
		return -EINVAL;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';

	if (inet_pton(AF_INET, buf, r.addr) == 1) {
		r.ipver = 4;
		maxlen = 32;
	} else if (inet_pton(AF_INET6, buf, r.addr) == 1) {
		r.ipver = 6;
		maxlen = 128;
	} else {
		return -EINVAL;
	}

	plen = maxlen;
	if (slash) {
		const char *p = slash + 1;
		/* Digits only: strtoul would take "+8", " 8" and "8junk". */
		if (*p == '\0' || strlen(p) > 3)
			return -EINVAL;
		plen = 0;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			plen = plen * 10 + (unsigned)(*p - '0');
		}
		if (plen > maxlen)
			return -EINVAL;
	}
	r.plen = (uint8_t)plen;

	/* Host bits are cleared: "10.1.2.3/8" is the network 10.0.0.0/8. */
	for (unsigned bit = plen; bit < maxlen; bit++)
		r.addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	*out = r;
	return 0;
}

/* ---- defaults and free --------------------------------------------------------------------- */

void config__free(struct svc_config *c)
{
	if (!c)
		return;
	free(c->local_networks);
	free(c->map_file);
	free(c->log_file);
	free(c->report_file);
	free(c->flows_out);
	free_names(c->minor_masters, c->n_minor_masters);
	free_allow(c->allow, c->n_allow);
	free(c->interface);
	free(c->fanout);
	free(c->bpf_filter);
	free(c->user);
	memset(c, 0, sizeof(*c));
}

int config__defaults(struct svc_config *c)
{
	memset(c, 0, sizeof(*c));

	c->n_local_networks = SVC_ARRAY_LEN(default_networks);
	c->local_networks = calloc(c->n_local_networks, sizeof(*c->local_networks));
	if (!c->local_networks)
		goto nomem;
	for (size_t i = 0; i < c->n_local_networks; i++)
		if (config__parse_cidr(default_networks[i], &c->local_networks[i]) != 0)
			goto nomem; /* cannot happen: the table above is valid */
	c->remote_mode = REMOTE_COLLAPSE;
	c->remote_prefix4 = 24;
	c->remote_prefix6 = 48;

	if (config__set_str(&c->map_file, "svcsensor-map.json") ||
	    config__set_str(&c->log_file, "anomalies.log") ||
	    config__set_str(&c->report_file, "svcsensor-report.txt") ||
	    config__set_str(&c->fanout, "hash"))
		goto nomem;
	c->log_max_bytes = 10485760;
	c->log_keep = 5;
	c->report_interval = 60;
	c->flows_out = NULL;

	c->idle_timeout = 120;
	c->active_timeout = 1800;
	c->tcp_linger = 2;
	c->max_flows = 262144;
	c->threads = 1;
	c->tcp_max_pkts = 80;
	c->udp_max_pkts = 24;
	c->guess = true;

	c->print = PRINT_ALL;
	if (names_dup(default_minor_masters, SVC_ARRAY_LEN(default_minor_masters),
		      &c->minor_masters))
		goto nomem;
	c->n_minor_masters = SVC_ARRAY_LEN(default_minor_masters);
	c->allow = NULL;
	c->n_allow = 0;
	c->learn_save_interval = 300;

	c->interface = NULL;
	c->bpf_filter = NULL;
	c->ring_block_size = 1048576;
	c->ring_block_count = 64;
	c->ring_frame_size = 2048;
	c->ring_block_timeout_ms = 100;
	c->promisc = true;
	c->user = NULL;
	c->stats_interval = 0;
	return 0;

nomem:
	config__free(c);
	return -ENOMEM;
}

/* ---- the file ------------------------------------------------------------------------------ */

/* Where the top-level member named key starts in the (valid) JSON text: 1-based line and
 * column. jansson keeps no positions for values, so this walks the text once, tracking strings
 * and nesting depth. Returns false when not found. Only used to build an error message. */
static bool key_position(const char *text, size_t len, const char *key, int *line, int *col)
{
	size_t klen = strlen(key);
	int depth = 0, ln = 1;
	size_t line_start = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = text[i];
		if (ch == '\n') {
			ln++;
			line_start = i + 1;
		} else if (ch == '{' || ch == '[') {
			depth++;
		} else if (ch == '}' || ch == ']') {
			depth--;
		} else if (ch == '"') {
			size_t start = i;
			for (i++; i < len && text[i] != '"'; i++)
				if (text[i] == '\\')
					i++;
			if (depth != 1 || i >= len)
				continue;
			/* A key is a string followed by ':'. Escaped keys are not matched. */
			size_t j = i + 1;
			while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' ||
					   text[j] == '\n'))
				j++;
			if (j < len && text[j] == ':' && i - start - 1 == klen &&
			    memcmp(text + start + 1, key, klen) == 0) {
				*line = ln;
				*col = (int)(start - line_start) + 1;
				return true;
			}
		}
	}
	return false;
}

struct load_ctx {
	const char *path;
	const char *text;
	size_t len;
};

/* One line: "svcsensor: FILE:LINE:COL: key "KEY": REASON". */
static int key_error(const struct load_ctx *lc, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int key_error(const struct load_ctx *lc, const char *key, const char *fmt, ...)
{
	char reason[512];
	va_list ap;
	int line, col;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (key_position(lc->text, lc->len, key, &line, &col))
		svc_err("%s:%d:%d: key \"%s\": %s", lc->path, line, col, key, reason);
	else
		svc_err("%s: key \"%s\": %s", lc->path, key, reason);
	return -EINVAL;
}

/* A JSON string without embedded NUL bytes (jansson allows "\u0000"). */
static const char *plain_string(const json_t *j)
{
	const char *s = json_string_value(j);
	if (!s || strlen(s) != json_string_length(j))
		return NULL;
	return s;
}

static int load_int(struct svc_config *c, const struct opt *o, const json_t *v,
		    const struct load_ctx *lc)
{
	char buf[64];
	if (!json_is_integer(v))
		return key_error(lc, o->name, "expected %s, got %s",
				 range_text(o, buf, sizeof(buf)), json_util__kind(v));
	long long x = json_integer_value(v);
	if (x < o->min || x > o->max)
		return key_error(lc, o->name, "expected %s, got %lld",
				 range_text(o, buf, sizeof(buf)), x);
	set_uint(c, o, (unsigned long long)x);
	return 0;
}

static int load_cidrs(struct svc_config *c, const json_t *v, const struct load_ctx *lc,
		      const char *key)
{
	size_t n, i;
	const json_t *e;
	struct cidr *nets;

	if (!json_is_array(v))
		return key_error(lc, key, "expected an array of CIDR strings, got %s",
				 json_util__kind(v));
	n = json_array_size(v);
	nets = calloc(n ? n : 1, sizeof(*nets));
	if (!nets)
		return -ENOMEM;
	json_array_foreach(v, i, e)
	{
		const char *s = plain_string(e);
		if (!s) {
			free(nets);
			return key_error(lc, key, "element %zu: expected a CIDR string, got %s", i,
					 json_util__kind(e));
		}
		if (config__parse_cidr(s, &nets[i]) != 0) {
			free(nets);
			return key_error(lc, key,
					 "element %zu: \"%s\" is not a network (expected "
					 "ADDRESS/PREFIX, e.g. 10.0.0.0/8 or fc00::/7)",
					 i, s);
		}
	}
	free(c->local_networks);
	c->local_networks = nets;
	c->n_local_networks = n;
	return 0;
}

static int load_names(struct svc_config *c, const json_t *v, const struct load_ctx *lc,
		      const char *key)
{
	size_t n, i;
	const json_t *e;
	char **names;

	if (!json_is_array(v))
		return key_error(lc, key, "expected an array of names, got %s", json_util__kind(v));
	n = json_array_size(v);
	names = calloc(n ? n : 1, sizeof(*names));
	if (!names)
		return -ENOMEM;
	json_array_foreach(v, i, e)
	{
		const char *s = plain_string(e);
		if (!s || !*s) {
			free_names(names, i);
			return key_error(lc, key,
					 "element %zu: expected a non-empty string, got %s", i,
					 s ? "\"\"" : json_util__kind(e));
		}
		names[i] = strdup(s);
		if (!names[i]) {
			free_names(names, i);
			return -ENOMEM;
		}
	}
	free_names(c->minor_masters, c->n_minor_masters);
	c->minor_masters = names;
	c->n_minor_masters = n;
	return 0;
}

static int load_allow(struct svc_config *c, const json_t *v, const struct load_ctx *lc,
		      const char *key)
{
	size_t n, i;
	const json_t *e;
	struct allow_rule *rules;
	int err = 0;

	if (!json_is_array(v))
		return key_error(lc, key,
				 "expected an array of {\"src\",\"dst\",\"app\"} objects, got %s",
				 json_util__kind(v));
	n = json_array_size(v);
	rules = calloc(n ? n : 1, sizeof(*rules));
	if (!rules)
		return -ENOMEM;
	json_array_foreach(v, i, e)
	{
		const char *mk;
		const json_t *mv;
		if (!json_is_object(e)) {
			err = key_error(lc, key, "element %zu: expected an object, got %s", i,
					json_util__kind(e));
			goto fail;
		}
		json_object_foreach((json_t *)e, mk, mv)
		{
			char **field = strcmp(mk, "src") == 0	? &rules[i].src
				       : strcmp(mk, "dst") == 0 ? &rules[i].dst
				       : strcmp(mk, "app") == 0 ? &rules[i].app
								: NULL;
			const char *s = plain_string(mv);
			if (!field) {
				err = key_error(lc, key,
						"element %zu: unknown member \"%s\" (expected src, "
						"dst, app)",
						i, mk);
				goto fail;
			}
			if (json_is_null(mv))
				continue; /* wildcard, the same as leaving it out */
			if (!s || !*s) {
				err = key_error(lc, key,
						"element %zu: \"%s\" must be a non-empty string or "
						"null, got %s",
						i, mk, s ? "\"\"" : json_util__kind(mv));
				goto fail;
			}
			if (config__set_str(field, s)) {
				err = -ENOMEM;
				goto fail;
			}
		}
		if (!rules[i].src && !rules[i].dst && !rules[i].app) {
			err = key_error(lc, key,
					"element %zu: a rule needs at least one of src, dst, app "
					"(an empty rule would silence every anomaly)",
					i);
			goto fail;
		}
	}
	free_allow(c->allow, c->n_allow);
	c->allow = rules;
	c->n_allow = n;
	return 0;
fail:
	free_allow(rules, n);
	return err;
}

static int load_member(struct svc_config *c, const char *key, const json_t *v,
		       const struct load_ctx *lc)
{
	const struct opt *o = NULL;
	for (size_t i = 0; i < SVC_ARRAY_LEN(opts); i++)
		if (strcmp(opts[i].name, key) == 0)
			o = &opts[i];
	if (!o)
		return key_error(lc, key, "unknown setting");

	char **strp = (char **)(void *)((char *)c + o->off);
	const char *s = plain_string(v);

	switch (o->kind) {
	case OPT_UINT:
	case OPT_U8:
	case OPT_U32:
	case OPT_U64:
		return load_int(c, o, v, lc);
	case OPT_BOOL:
		if (!json_is_boolean(v))
			return key_error(lc, key, "expected true or false, got %s",
					 json_util__kind(v));
		*(bool *)(void *)((char *)c + o->off) = json_is_true(v);
		return 0;
	case OPT_STR:
		if (!s || !*s)
			return key_error(lc, key, "expected a non-empty string, got %s",
					 s ? "\"\"" : json_util__kind(v));
		return config__set_str(strp, s);
	case OPT_STR_NULL:
		if (json_is_null(v))
			return config__set_str(strp, NULL);
		if (!s)
			return key_error(lc, key, "expected a string or null, got %s",
					 json_util__kind(v));
		return config__set_str(strp, *s ? s : NULL);
	case OPT_FANOUT:
		if (!s || name_index(fanout_names, SVC_ARRAY_LEN(fanout_names), s) < 0)
			return key_error(
			    lc, key, "expected \"hash\", \"cpu\", \"qm\" or \"ebpf\", got %s%s%s",
			    s ? "\"" : "", s ? s : json_util__kind(v), s ? "\"" : "");
		return config__set_str(strp, s);
	case OPT_PRINT:
		if (!s || config__parse_print(s, &c->print) != 0)
			return key_error(lc, key,
					 "expected \"all\", \"anomalies\" or \"none\", got %s%s%s",
					 s ? "\"" : "", s ? s : json_util__kind(v), s ? "\"" : "");
		return 0;
	case OPT_REMOTE_MODE:
		if (!s || config__parse_remote_mode(s, &c->remote_mode) != 0)
			return key_error(
			    lc, key, "expected \"remote\", \"address\" or \"prefix\", got %s%s%s",
			    s ? "\"" : "", s ? s : json_util__kind(v), s ? "\"" : "");
		return 0;
	case OPT_CIDRS:
		return load_cidrs(c, v, lc, key);
	case OPT_NAMES:
		return load_names(c, v, lc, key);
	case OPT_ALLOW:
		return load_allow(c, v, lc, key);
	}
	return -EINVAL;
}

/* Read the whole file (bounded) so that error messages can point at a key's line. */
static int read_file(const char *path, char **out, size_t *out_len)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int err = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		err = -errno;
		svc_err("%s: cannot open: %s", path, strerror(errno));
		return err;
	}
	if (fstat(fd, &st) != 0) {
		err = -errno;
		svc_err("%s: cannot stat: %s", path, strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		svc_err("%s: not a regular file", path);
		goto cleanup;
	}
	if ((unsigned long long)st.st_size > CONFIG_MAX_BYTES) {
		err = -EFBIG;
		svc_err("%s: too large for a config file (%lld bytes, at most %u)", path,
			(long long)st.st_size, CONFIG_MAX_BYTES);
		goto cleanup;
	}
	buf = malloc(CONFIG_MAX_BYTES + 1);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, CONFIG_MAX_BYTES + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			svc_err("%s: cannot read: %s", path, strerror(errno));
			goto cleanup;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > CONFIG_MAX_BYTES) {
			err = -EFBIG;
			svc_err("%s: too large for a config file (more than %u bytes)", path,
				CONFIG_MAX_BYTES);
			goto cleanup;
		}
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	buf = NULL;
cleanup:
	free(buf);
	close(fd);
	return err;
}

int config__load(struct svc_config *c, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	json_error_t jerr;
	json_t *root = NULL;
	const char *key;
	json_t *v;
	int err;

	err = read_file(path, &text, &len);
	if (err)
		return err;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (jerr.line > 0)
			svc_err("%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		else
			svc_err("%s: %s", path, jerr.text);
		err = -EINVAL;
		goto cleanup;
	}
	if (!json_is_object(root)) {
		svc_err("%s: expected a JSON object of settings at the top level, got %s", path,
			json_util__kind(root));
		err = -EINVAL;
		goto cleanup;
	}

	struct load_ctx lc = {.path = path, .text = text, .len = len};
	json_object_foreach(root, key, v)
	{
		err = load_member(c, key, v, &lc);
		if (err == -ENOMEM)
			svc_err("%s: key \"%s\": out of memory", path, key);
		if (err)
			goto cleanup;
	}
cleanup:
	json_decref(root);
	free(text);
	return err;
}

/* ---- validation ---------------------------------------------------------------------------- */

int config__validate(const struct svc_config *c)
{
	char buf[64];
	long page = sysconf(_SC_PAGESIZE);

	if (page <= 0)
		page = 4096;

	for (size_t i = 0; i < SVC_ARRAY_LEN(opts); i++) {
		const struct opt *o = &opts[i];
		if (!is_int_kind(o->kind))
			continue;
		unsigned long long v = get_uint(c, o);
		if (v < (unsigned long long)o->min || v > (unsigned long long)o->max) {
			svc_err("config: %s: expected %s, got %llu", o->name,
				range_text(o, buf, sizeof(buf)), v);
			return -EINVAL;
		}
	}
	if (c->active_timeout < c->idle_timeout) {
		svc_err(
		    "config: active_timeout (%u s) must not be shorter than idle_timeout (%u s)",
		    c->active_timeout, c->idle_timeout);
		return -EINVAL;
	}
	if (!c->map_file || !*c->map_file) {
		svc_err("config: map_file: must be set");
		return -EINVAL;
	}
	if (!c->fanout || name_index(fanout_names, SVC_ARRAY_LEN(fanout_names), c->fanout) < 0) {
		svc_err("config: fanout: expected hash, cpu, qm or ebpf, got \"%s\"",
			c->fanout ? c->fanout : "(none)");
		return -EINVAL;
	}
	if ((unsigned)c->print >= SVC_ARRAY_LEN(print_names)) {
		svc_err("config: print: expected all, anomalies or none");
		return -EINVAL;
	}
	if ((unsigned)c->remote_mode >= SVC_ARRAY_LEN(remote_names)) {
		svc_err("config: remote_mode: expected remote, address or prefix");
		return -EINVAL;
	}
	for (size_t i = 0; i < c->n_local_networks; i++) {
		const struct cidr *n = &c->local_networks[i];
		if ((n->ipver != 4 && n->ipver != 6) || n->plen > (n->ipver == 4 ? 32 : 128)) {
			svc_err("config: local_networks: element %zu is not a valid network", i);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < c->n_minor_masters; i++) {
		if (!c->minor_masters[i] || !*c->minor_masters[i]) {
			svc_err("config: minor_masters: element %zu is empty", i);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < c->n_allow; i++) {
		if (!c->allow[i].src && !c->allow[i].dst && !c->allow[i].app) {
			svc_err("config: allow: element %zu has no src, dst or app", i);
			return -EINVAL;
		}
	}
	/* TPACKET_V3 ring geometry, as the kernel checks it in packet_set_ring(). */
	if (c->ring_block_size % (unsigned long)page != 0) {
		svc_err("config: ring_block_size: %u is not a multiple of the page size (%ld)",
			c->ring_block_size, page);
		return -EINVAL;
	}
	if (c->ring_frame_size % 16 != 0 || c->ring_frame_size > c->ring_block_size) {
		svc_err("config: ring_frame_size: %u must be a multiple of 16 and at most "
			"ring_block_size (%u)",
			c->ring_frame_size, c->ring_block_size);
		return -EINVAL;
	}
	if ((unsigned long long)c->ring_block_size * c->ring_block_count > (1ULL << 34)) {
		svc_err("config: ring_block_size x ring_block_count: %llu bytes per ring is more "
			"than 16 GiB",
			(unsigned long long)c->ring_block_size * c->ring_block_count);
		return -EINVAL;
	}
	return 0;
}
