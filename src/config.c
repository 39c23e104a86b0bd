/* config.c - the JSON config file (jansson), the built-in defaults and validation, all driven
 * by the option table (src/options.c): a key is accepted when a row names it, its value is
 * checked against that row's type and range (so a message names the key and what it
 * expects), and config__validate checks the same ranges again after command-line flags, plus
 * the constraints that span several keys. The file is strict: an unknown key or a wrong type is
 * an error, not a warning, because a typo in a sensor's config silently running with a default
 * is worse. */
#include "svcsensor/config.h"
#include "svcsensor/json_util.h"
#include "svcsensor/options.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "svcsensor/common.h"

#define CONFIG_MAX_BYTES (4u << 20) /* a config file larger than this is not a config file */

const char *const config_fanout_names[] = {"hash", "cpu", "qm", "ebpf", NULL};
const char *const config_print_names[] = {
    [PRINT_ALL] = "all", [PRINT_ANOMALIES] = "anomalies", [PRINT_NONE] = "none", NULL};
const char *const config_remote_names[] = {
    [REMOTE_COLLAPSE] = "remote", [REMOTE_ADDRESS] = "address", [REMOTE_PREFIX] = "prefix", NULL};

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

/* The index of s in a NULL-terminated list of names, or -1. */
static int name_index(const char *const *names, const char *s)
{
	for (int i = 0; s && names[i]; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

static size_t names_count(const char *const *names)
{
	size_t n = 0;
	while (names[n])
		n++;
	return n;
}

/* ---- parsers shared with the command line --------------------------------------------------- */

int config__parse_print(const char *s, enum print_mode *out)
{
	int i = name_index(config_print_names, s);
	if (i < 0)
		return -EINVAL;
	*out = (enum print_mode)i;
	return 0;
}

int config__parse_remote_mode(const char *s, enum remote_mode *out)
{
	int i = name_index(config_remote_names, s);
	if (i < 0)
		return -EINVAL;
	*out = (enum remote_mode)i;
	return 0;
}

const char *config__print_name(enum print_mode m)
{
	return (unsigned)m < names_count(config_print_names) ? config_print_names[m] : "?";
}

const char *config__remote_mode_name(enum remote_mode m)
{
	return (unsigned)m < names_count(config_remote_names) ? config_remote_names[m] : "?";
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
	size_t n;
	const struct svc_option *t = options__table(&n);

	if (!c)
		return;
	for (size_t i = 0; i < n; i++)
		if (t[i].home == SVC_OPT_CFG)
			options__release(&t[i], c);
	memset(c, 0, sizeof(*c));
}

int config__defaults(struct svc_config *c)
{
	size_t n;
	const struct svc_option *t = options__table(&n);
	char why[256];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < n; i++) {
		if (t[i].home != SVC_OPT_CFG)
			continue;
		int err = options__set_default(&t[i], c, why, sizeof(why));
		if (err) {
			/* -EINVAL: a default outside its own row's range (tests/test_options.c) */
			if (err == -EINVAL)
				svc_err("default of %s: %s", t[i].key, why);
			config__free(c);
			return err;
		}
	}
	return 0;
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

static int load_int(struct svc_config *c, const struct svc_option *o, const json_t *v,
		    const struct load_ctx *lc)
{
	char buf[64], why[256];
	if (!json_is_integer(v))
		return key_error(lc, o->key, "expected %s, got %s",
				 options__expected(o, buf, sizeof(buf)), json_util__kind(v));
	if (options__set_int(o, c, json_integer_value(v), why, sizeof(why)) != 0)
		return key_error(lc, o->key, "%s", why);
	return 0;
}

static int load_cidrs(struct svc_config *c, const struct svc_option *o, const json_t *v,
		      const struct load_ctx *lc)
{
	size_t n, i;
	const json_t *e;
	struct cidr *nets;

	if (!json_is_array(v))
		return key_error(lc, o->key, "expected an array of CIDR strings, got %s",
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
			return key_error(lc, o->key, "element %zu: expected a CIDR string, got %s",
					 i, json_util__kind(e));
		}
		if (config__parse_cidr(s, &nets[i]) != 0) {
			free(nets);
			return key_error(lc, o->key,
					 "element %zu: \"%s\" is not a network (expected "
					 "ADDRESS/PREFIX, e.g. 10.0.0.0/8 or fc00::/7)",
					 i, s);
		}
	}
	options__list_replace(o, c, nets, n);
	return 0;
}

static int load_names(struct svc_config *c, const struct svc_option *o, const json_t *v,
		      const struct load_ctx *lc)
{
	size_t n, i;
	const json_t *e;
	char **names;

	if (!json_is_array(v))
		return key_error(lc, o->key, "expected an array of names, got %s",
				 json_util__kind(v));
	n = json_array_size(v);
	names = calloc(n ? n : 1, sizeof(*names));
	if (!names)
		return -ENOMEM;
	json_array_foreach(v, i, e)
	{
		const char *s = plain_string(e);
		if (!s || !*s) {
			free_names(names, i);
			return key_error(lc, o->key,
					 "element %zu: expected a non-empty string, got %s", i,
					 s ? "\"\"" : json_util__kind(e));
		}
		names[i] = strdup(s);
		if (!names[i]) {
			free_names(names, i);
			return -ENOMEM;
		}
	}
	options__list_replace(o, c, names, n);
	return 0;
}

/* One member of an allow rule: src, dst or app, a non-empty string or null (= any). */
static int load_allow_member(struct allow_rule *r, size_t i, const char *mk, const json_t *mv,
			     const struct load_ctx *lc, const char *key)
{
	char **field = strcmp(mk, "src") == 0	? &r->src
		       : strcmp(mk, "dst") == 0 ? &r->dst
		       : strcmp(mk, "app") == 0 ? &r->app
						: NULL;
	const char *s = plain_string(mv);

	if (!field)
		return key_error(
		    lc, key, "element %zu: unknown member \"%s\" (expected src, dst, app)", i, mk);
	if (json_is_null(mv))
		return 0; /* wildcard, the same as leaving it out */
	if (!s || !*s)
		return key_error(lc, key,
				 "element %zu: \"%s\" must be a non-empty string or null, got %s",
				 i, mk, s ? "\"\"" : json_util__kind(mv));
	return config__set_str(field, s);
}

static int load_allow(struct svc_config *c, const struct svc_option *o, const json_t *v,
		      const struct load_ctx *lc)
{
	size_t n, i;
	const json_t *e;
	struct allow_rule *rules;
	int err = 0;

	if (!json_is_array(v))
		return key_error(lc, o->key,
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
			err = key_error(lc, o->key, "element %zu: expected an object, got %s", i,
					json_util__kind(e));
			goto fail;
		}
		json_object_foreach((json_t *)e, mk, mv)
		{
			if ((err = load_allow_member(&rules[i], i, mk, mv, lc, o->key)) != 0)
				goto fail;
		}
		if (!rules[i].src && !rules[i].dst && !rules[i].app) {
			err = key_error(lc, o->key,
					"element %zu: a rule needs at least one of src, dst, app "
					"(an empty rule would silence every anomaly)",
					i);
			goto fail;
		}
	}
	options__list_replace(o, c, rules, n);
	return 0;
fail:
	free_allow(rules, n);
	return err;
}

/* A string value for a row that takes one (a string type or a choice). */
static int load_text(struct svc_config *c, const struct svc_option *o, const json_t *v,
		     const struct load_ctx *lc)
{
	const char *s = plain_string(v);
	char buf[128], why[512];
	int err;

	if (o->type == SVC_OPT_STR_NULL && json_is_null(v))
		return options__set_text(o, c, "", why, sizeof(why));
	if (o->type == SVC_OPT_STR_OFF && json_is_null(v))
		return config__set_str((char **)options__field(o, c), NULL);
	if (!s)
		return key_error(lc, o->key, "expected %s, got %s",
				 options__expected(o, buf, sizeof(buf)), json_util__kind(v));
	err = options__set_text(o, c, s, why, sizeof(why));
	if (err == -EINVAL)
		return key_error(lc, o->key, "%s", why);
	return err;
}

static int load_member(struct svc_config *c, const char *key, const json_t *v,
		       const struct load_ctx *lc)
{
	const struct svc_option *o = options__find_key(key);
	if (!o)
		return key_error(lc, key, "unknown setting");

	switch (o->type) {
	case SVC_OPT_INT:
		return load_int(c, o, v, lc);
	case SVC_OPT_BOOL:
		if (!json_is_boolean(v))
			return key_error(lc, key, "expected true or false, got %s",
					 json_util__kind(v));
		*(bool *)options__field(o, c) = json_is_true(v);
		return 0;
	case SVC_OPT_CIDRS:
		return load_cidrs(c, o, v, lc);
	case SVC_OPT_NAMES:
		return load_names(c, o, v, lc);
	case SVC_OPT_ALLOW:
		return load_allow(c, o, v, lc);
	default:
		return load_text(c, o, v, lc);
	}
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
	int err = read_file(path, &text, &len);
	if (err)
		return err;
	err = config__load_text(c, path, text, len);
	free(text);
	return err;
}

int config__load_text(struct svc_config *c, const char *path, const char *text, size_t len)
{
	json_error_t jerr;
	json_t *root = NULL;
	const char *key;
	json_t *v;
	int err = 0;

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
	return err;
}

/* ---- validation ---------------------------------------------------------------------------- */

/* One key's value on its own, as its row says (a caller may have set the field directly). */
static int validate_key(const struct svc_config *c, const struct svc_option *o)
{
	char buf[128];
	const void *f = (const char *)c + o->off;
	const char *s = NULL;
	unsigned long long v;

	if (o->type == SVC_OPT_STR || o->type == SVC_OPT_NAME)
		memcpy(&s, f, sizeof(s));
	switch (o->type) {
	case SVC_OPT_INT:
		v = options__get_uint(o, c);
		if (v < (unsigned long long)o->min || v > (unsigned long long)o->max) {
			svc_err("config: %s: expected %s, got %llu", o->key,
				options__expected(o, buf, sizeof(buf)), v);
			return -EINVAL;
		}
		return 0;
	case SVC_OPT_STR:
		if (!s || !*s) {
			svc_err("config: %s: must be set", o->key);
			return -EINVAL;
		}
		return 0;
	case SVC_OPT_NAME:
		if (name_index(o->choices, s) < 0) {
			svc_err("config: %s: expected %s, got \"%s\"", o->key,
				options__expected(o, buf, sizeof(buf)), s ? s : "(none)");
			return -EINVAL;
		}
		return 0;
	case SVC_OPT_ENUM:
		v = options__get_uint(o, c);
		if (v >= names_count(o->choices)) {
			svc_err("config: %s: expected %s, got %llu", o->key,
				options__expected(o, buf, sizeof(buf)), v);
			return -EINVAL;
		}
		return 0;
	default:
		return 0;
	}
}

/* The lists' elements (the loader checks them; a caller may have built them itself). */
static int validate_lists(const struct svc_config *c)
{
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
	return 0;
}

int config__validate(const struct svc_config *c)
{
	size_t n;
	const struct svc_option *t = options__table(&n);
	long page = sysconf(_SC_PAGESIZE);

	if (page <= 0)
		page = 4096;
	for (size_t i = 0; i < n; i++)
		if (t[i].home == SVC_OPT_CFG && validate_key(c, &t[i]) != 0)
			return -EINVAL;
	if (validate_lists(c) != 0)
		return -EINVAL;
	if (c->active_timeout < c->idle_timeout) {
		svc_err(
		    "config: active_timeout (%u s) must not be shorter than idle_timeout (%u s)",
		    c->active_timeout, c->idle_timeout);
		return -EINVAL;
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
