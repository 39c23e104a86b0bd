/* file.c - the service map's file: the streaming loader (yajl) and the atomic, sorted save.
 * The format is described in include/svcsensor/map_file.h; the map itself in src/map/store.c.
 * svcmap__save walks the map under rcu_read_lock and may run on another thread while the one
 * writer keeps learning (what the writer adds meanwhile may or may not be in the file). */
#include <urcu.h> /* memb flavour: rcu_read_lock around the save's walk */

#include "map_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>

#include "svcsensor/atomic_file.h"
#include "svcsensor/common.h"
#include "svcsensor/json_out.h"
#include "svcsensor/utf8.h"

/* ---- save ---------------------------------------------------------------------------------- */

static const struct svc_pair *pair_at(const struct sorted *so, size_t i)
{
	return so->pair[i];
}

/* The file, one line per application so that two saves diff line by line:
 *   {
 *     "format": "svcsensor-map",
 *     "version": 1,
 *     "sources": {
 *       "10.42.0.130": {
 *         "10.42.0.1": {
 *           "DNS": {"flows": 12, "bytes": 3400, "first_seen_ms": 1, "last_seen_ms": 2}
 *         }
 *       }
 *     }
 *   }                                                                          */
static int write_map(FILE *f, const struct svcmap *m)
{
	struct sorted so;
	size_t pi = 0;
	int err = map_sorted_build(m, &so);

	if (err)
		return err;
	fprintf(f, "{\n  \"format\": \"%s\",\n  \"version\": %d,\n  \"sources\": {", MAP_FORMAT,
		MAP_VERSION);
	for (size_t si = 0; si < so.n_src && !err; si++) {
		const struct svc_key *s = so.src[si];
		bool first_dst = true;
		fputs(si ? ",\n    " : "\n    ", f);
		json_out__fstr(f, s->key);
		fputs(": {", f);
		/* so.pair is sorted by source key, so this source's pairs are next in line. */
		while (pi < so.n_pair && strcmp(pair_at(&so, pi)->src->key, s->key) < 0)
			pi++;
		for (; pi < so.n_pair && pair_at(&so, pi)->src == s; pi++) {
			const struct svc_pair *p = pair_at(&so, pi);
			const struct svc_app **apps;
			size_t n;
			fputs(first_dst ? "\n      " : ",\n      ", f);
			first_dst = false;
			json_out__fstr(f, pair_dst(p));
			fputs(": {", f);
			err = map_sorted_apps(p, &apps, &n);
			if (err)
				break;
			for (size_t j = 0; j < n; j++) {
				struct svcmap_counters c;
				map_counters_read(apps[j], &c);
				fputs(j ? ",\n        " : "\n        ", f);
				json_out__fstr(f, apps[j]->name->key);
				fprintf(f,
					": {\"flows\": %" PRIu64 ", \"bytes\": %" PRIu64
					", \"first_seen_ms\": %" PRIu64
					", \"last_seen_ms\": %" PRIu64 "}",
					c.flows, c.bytes, c.first_ms, c.last_ms);
			}
			fputs(n ? "\n      }" : "}", f);
			free(apps);
		}
		fputs(first_dst ? "}" : "\n    }", f);
	}
	fputs(so.n_src ? "\n  }\n}\n" : "}\n}\n", f);
	map_sorted_free(&so);
	return err;
}

/* The content of the file (atomic_file_fill): the map walked under a read-side section, so the
 * writer may keep learning meanwhile; the release pairs the end of this read-side section with
 * a later free after synchronize_rcu (store.c's TSan note). */
static int fill_map(FILE *f, const void *ctx)
{
	int err;

	rcu_read_lock();
	err = write_map(f, ctx);
	rcu_read_unlock();
	tsan_release(&svcmap_grace_sync);
	return err;
}

int svcmap__save(const struct svcmap *m, const char *path)
{
	if (!m || !path || !*path)
		return -EINVAL;
	return atomic_file__write(path, 0644, fill_map, m);
}

/* ---- load ---------------------------------------------------------------------------------- */

/* JSON path of the member being checked, for messages: sources["10.42.0.130"]["remote"]. */
struct jpath {
	char buf[768];
};

static void jpath_member(struct jpath *jp, const char *base, const char *key)
{
	/* Keys are at most 255 bytes once checked; the precisions only bound the text. */
	snprintf(jp->buf, sizeof(jp->buf), "%.500s[\"%.255s\"]", base, key);
}

static void load_err(const char *path, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void load_err(const char *path, const char *where, const char *fmt, ...)
{
	char reason[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (where && *where)
		svc_err("%s: %s: %s", path, where, reason);
	else
		svc_err("%s: %s", path, reason);
}

static int check_name(const char *path, const char *where, const char *what, const char *name)
{
	if (utf8__name_ok(name, NAME_MAX_LEN))
		return 0;
	load_err(path, where, "bad %s \"%s\": expected 1 to %d characters, no control characters",
		 what, name, NAME_MAX_LEN);
	return -EINVAL;
}

/* The file is parsed as a stream (yajl) and the map built as the parser goes: no document
 * tree is held, so loading takes about the map's own memory and a fraction of the time
 * (an 18 MB map: jansson's tree peaked at ~120 MB; a 4.5 MB map loaded in 190 ms before).
 * Every check of the format stays: each message names the JSON path and the reason. */
enum level { L_DOC, L_TOP, L_SOURCES, L_DSTS, L_APPS, L_COUNTERS };
#define KEY_BUF (NAME_MAX_LEN + 2)
enum top_member { T_NONE, T_FORMAT, T_VERSION, T_SOURCES };
enum kind { K_OBJECT, K_ARRAY, K_STRING, K_INTEGER, K_REAL, K_TRUE, K_FALSE, K_NULL };

static const char *const kind_name[] = {"an object",   "an array",	 "a string", "an integer",
					"a real number", "true", "false",	 "null"};

struct map_loader {
	const char *path;
	struct svcmap *m;
	enum level level;
	enum top_member top; /* the top-level member whose value comes next */
	bool have_format, have_version, have_sources;
	char sk[KEY_BUF], dk[KEY_BUF], ak[KEY_BUF]; /* a longer key is cut, then refused */
	struct jpath w1, w2, w3; /* sources["s"], ...["d"], ...["a"] */
	struct svc_pair *pair;
	struct svcmap_counters c;
	int counter;	       /* index in counter_names of the member whose value comes next */
	unsigned seen_counters; /* bit i: counter_names[i] given */
	int err;	       /* reported already: the parse stops */
};

static const char *const counter_names[] = {"flows", "bytes", "first_seen_ms", "last_seen_ms"};

/* A key as a C string (a longer one is cut, then refused by check_name). */
static void key_copy(char *out, size_t size, const unsigned char *k, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(out, k, len);
	out[len] = '\0';
}

/* A host key or application name into out, checked (a NUL byte, "\u0000", is refused too:
 * the name would be cut). 0 or -EINVAL after one line. */
static int name_key(struct map_loader *ld, char *out, const unsigned char *k, size_t len,
		    const char *where, const char *what)
{
	key_copy(out, KEY_BUF, k, len);
	if (memchr(k, '\0', len)) {
		load_err(ld->path, where, "bad %s \"%s\\u0000...\": contains a NUL character",
			 what, out);
		return -EINVAL;
	}
	return check_name(ld->path, where, what, out);
}

static int stop(struct map_loader *ld, int err)
{
	ld->err = err;
	return 0; /* yajl: cancel the parse */
}

/* The value at this level must be an object (what it holds: `what`); it opens level next. */
static int open_object(struct map_loader *ld, enum kind k, const char *where, const char *what,
		       enum level next)
{
	if (k != K_OBJECT) {
		load_err(ld->path, where, "expected an object of %s, got %s", what, kind_name[k]);
		return stop(ld, -EINVAL);
	}
	ld->level = next;
	return 1;
}

/* A value of the given kind where the level expects one (K_OBJECT also opens it). */
static int on_value(struct map_loader *ld, enum kind k, const char *str, size_t slen,
		    long long num)
{
	switch (ld->level) {
	case L_DOC:
		if (k != K_OBJECT) {
			load_err(ld->path, NULL, "expected a JSON object at the top level, got %s",
				 kind_name[k]);
			return stop(ld, -EINVAL);
		}
		ld->level = L_TOP;
		return 1;
	case L_TOP:
		if (ld->top == T_FORMAT) {
			if (k != K_STRING || slen != strlen(MAP_FORMAT) ||
			    memcmp(str, MAP_FORMAT, slen) != 0) {
				if (k == K_STRING)
					load_err(ld->path, "format", "expected \"%s\", got \"%.*s\"",
						 MAP_FORMAT, (int)(slen > 64 ? 64 : slen), str);
				else
					load_err(ld->path, "format", "expected \"%s\", got %s",
						 MAP_FORMAT, kind_name[k]);
				return stop(ld, -EINVAL);
			}
		} else if (ld->top == T_VERSION) {
			if (k != K_INTEGER) {
				load_err(ld->path, "version", "expected an integer, got %s",
					 kind_name[k]);
				return stop(ld, -EINVAL);
			}
			if (num != MAP_VERSION) {
				load_err(ld->path, "version",
					 "unsupported version %lld (this build reads version %d)", num,
					 MAP_VERSION);
				return stop(ld, -EINVAL);
			}
		} else {
			ld->top = T_NONE;
			return open_object(ld, k, "sources", "source keys", L_SOURCES);
		}
		ld->top = T_NONE;
		return 1;
	case L_SOURCES:
		return open_object(ld, k, ld->w1.buf, "destinations", L_DSTS);
	case L_DSTS:
		return open_object(ld, k, ld->w2.buf, "applications", L_APPS);
	case L_APPS:
		memset(&ld->c, 0, sizeof(ld->c));
		ld->seen_counters = 0;
		return open_object(ld, k, ld->w3.buf,
				   "counters {\"flows\", \"bytes\", \"first_seen_ms\", "
				   "\"last_seen_ms\"}",
				   L_COUNTERS);
	case L_COUNTERS: {
		const char *name = counter_names[ld->counter];
		uint64_t *fields[] = {&ld->c.flows, &ld->c.bytes, &ld->c.first_ms, &ld->c.last_ms};
		if (k != K_INTEGER) {
			load_err(ld->path, ld->w3.buf, "%s: expected a non-negative integer, got %s",
				 name, kind_name[k]);
			return stop(ld, -EINVAL);
		}
		if (num < 0) {
			load_err(ld->path, ld->w3.buf,
				 "%s: expected a non-negative integer, got %lld", name, num);
			return stop(ld, -EINVAL);
		}
		*fields[ld->counter] = (uint64_t)num;
		return 1;
	}
	}
	return 1;
}

static int on_key(void *ctx, const unsigned char *k, size_t len)
{
	struct map_loader *ld = ctx;
	size_t n_before;
	int err;

	switch (ld->level) {
	case L_TOP: {
		char key[64];
		bool *have = NULL;
		key_copy(key, sizeof(key), k, len);
		if (!strcmp(key, "format")) {
			ld->top = T_FORMAT;
			have = &ld->have_format;
		} else if (!strcmp(key, "version")) {
			ld->top = T_VERSION;
			have = &ld->have_version;
		} else if (!strcmp(key, "sources")) {
			ld->top = T_SOURCES;
			have = &ld->have_sources;
		} else {
			load_err(ld->path, NULL,
				 "unknown member \"%s\" (expected format, version, sources)", key);
			return stop(ld, -EINVAL);
		}
		if (*have) {
			load_err(ld->path, NULL, "duplicate member \"%s\"", key);
			return stop(ld, -EINVAL);
		}
		*have = true;
		return 1;
	}
	case L_SOURCES:
		if ((err = name_key(ld, ld->sk, k, len, "sources", "source key")) != 0)
			return stop(ld, err);
		jpath_member(&ld->w1, "sources", ld->sk);
		n_before = ld->m->n_sources;
		if ((err = map_get_entry(ld->m, ld->sk, NULL, NULL, NULL)) != 0)
			return stop(ld, err);
		if (ld->m->n_sources == n_before) {
			load_err(ld->path, "sources", "duplicate source key \"%s\"", ld->sk);
			return stop(ld, -EINVAL);
		}
		return 1;
	case L_DSTS:
		if ((err = name_key(ld, ld->dk, k, len, ld->w1.buf, "destination key")) != 0)
			return stop(ld, err);
		jpath_member(&ld->w2, ld->w1.buf, ld->dk);
		n_before = ld->m->n_pairs;
		if ((err = map_get_pair(ld->m, ld->sk, ld->dk, &ld->pair)) != 0)
			return stop(ld, err);
		if (ld->m->n_pairs == n_before) {
			load_err(ld->path, ld->w1.buf, "duplicate destination key \"%s\"", ld->dk);
			return stop(ld, -EINVAL);
		}
		return 1;
	case L_APPS:
		if ((err = name_key(ld, ld->ak, k, len, ld->w2.buf, "application name")) != 0)
			return stop(ld, err);
		jpath_member(&ld->w3, ld->w2.buf, ld->ak);
		return 1;
	case L_COUNTERS: {
		char key[64];
		key_copy(key, sizeof(key), k, len);
		for (ld->counter = 0; ld->counter < (int)SVC_ARRAY_LEN(counter_names); ld->counter++)
			if (!strcmp(key, counter_names[ld->counter]))
				break;
		if (ld->counter == (int)SVC_ARRAY_LEN(counter_names)) {
			load_err(ld->path, ld->w3.buf,
				 "unknown member \"%s\" (expected flows, bytes, first_seen_ms, "
				 "last_seen_ms)",
				 key);
			return stop(ld, -EINVAL);
		}
		if (ld->seen_counters & (1u << ld->counter)) {
			load_err(ld->path, ld->w3.buf, "duplicate member \"%s\"", key);
			return stop(ld, -EINVAL);
		}
		ld->seen_counters |= 1u << ld->counter;
		return 1;
	}
	case L_DOC:
		break;
	}
	return 1;
}

/* The end of an object: an application's counters are complete, or a level closes. */
static int on_end_map(void *ctx)
{
	struct map_loader *ld = ctx;
	struct svc_app *a;
	size_t n_before;
	int err;

	switch (ld->level) {
	case L_COUNTERS:
		if (ld->c.first_ms && ld->c.last_ms && ld->c.first_ms > ld->c.last_ms) {
			load_err(ld->path, ld->w3.buf,
				 "first_seen_ms (%" PRIu64 ") is after last_seen_ms (%" PRIu64 ")",
				 ld->c.first_ms, ld->c.last_ms);
			return stop(ld, -EINVAL);
		}
		n_before = ld->m->n_entries;
		if ((err = map_get_app(ld->m, ld->pair, ld->ak, &a)) != 0)
			return stop(ld, err);
		if (ld->m->n_entries == n_before) {
			load_err(ld->path, ld->w2.buf, "duplicate application name \"%s\"", ld->ak);
			return stop(ld, -EINVAL);
		}
		map_counters_add(a, &ld->c);
		ld->level = L_APPS;
		return 1;
	case L_APPS:
		ld->level = L_DSTS;
		return 1;
	case L_DSTS:
		ld->level = L_SOURCES;
		return 1;
	case L_SOURCES:
		ld->level = L_TOP;
		return 1;
	case L_TOP:
		ld->level = L_DOC;
		return 1;
	case L_DOC:
		break;
	}
	return 1;
}

static int on_start_map(void *ctx)
{
	return on_value(ctx, K_OBJECT, NULL, 0, 0);
}

static int on_start_array(void *ctx)
{
	return on_value(ctx, K_ARRAY, NULL, 0, 0); /* never a valid value here: it stops */
}

static int on_null(void *ctx)
{
	return on_value(ctx, K_NULL, NULL, 0, 0);
}

static int on_bool(void *ctx, int b)
{
	return on_value(ctx, b ? K_TRUE : K_FALSE, NULL, 0, 0);
}

static int on_integer(void *ctx, long long v)
{
	return on_value(ctx, K_INTEGER, NULL, 0, v);
}

static int on_double(void *ctx, double v)
{
	(void)v;
	return on_value(ctx, K_REAL, NULL, 0, 0);
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
	return on_value(ctx, K_STRING, (const char *)s, len, 0);
}

static const yajl_callbacks map_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_bool,
    .yajl_integer = on_integer,
    .yajl_double = on_double,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
};

/* Line and column (1-based line, 0-based column, as jansson counted) of byte `at` of the
 * chunk, given where the chunk starts. */
static void position(const unsigned char *chunk, size_t at, unsigned *line, unsigned *col)
{
	for (size_t i = 0; i < at; i++) {
		if (chunk[i] == '\n') {
			(*line)++;
			*col = 0;
		} else {
			(*col)++;
		}
	}
}

/* yajl's own words, one line: "parse error: premature EOF", "lexical error: invalid char in
 * json text", ... (its verbose form adds the text around the error on more lines). */
static void syntax_err(const char *path, yajl_handle h, const unsigned char *chunk, size_t len,
		       unsigned line, unsigned col)
{
	unsigned char *msg = yajl_get_error(h, 0, chunk, len);
	char text[160];
	size_t at = yajl_get_bytes_consumed(h);
	snprintf(text, sizeof(text), "%s", msg ? (const char *)msg : "syntax error");
	text[strcspn(text, "\n")] = '\0';
	if (at > len)
		at = len;
	position(chunk, at, &line, &col);
	svc_err("%s:%u:%u: %s", path, line, col, text);
	if (msg)
		yajl_free_error(h, msg);
}

struct svcmap *svcmap__load(const char *path, bool *missing)
{
	struct map_loader ld = {.path = path, .level = L_DOC};
	unsigned char buf[64 * 1024];
	unsigned line = 1, col = 0;
	struct stat st;
	yajl_handle h = NULL;
	bool any = false;
	int fd, err = 0;

	if (missing)
		*missing = false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && missing) {
			*missing = true;
			return NULL;
		}
		svc_err("%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		svc_err("%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	ld.m = svcmap__new();
	h = ld.m ? yajl_alloc(&map_callbacks, NULL, &ld) : NULL;
	if (!h) {
		load_err(path, NULL, "out of memory");
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			svc_err("%s: cannot read: %s", path, strerror(errno));
			err = -errno;
			goto out;
		}
		yajl_status ys = n ? yajl_parse(h, buf, (size_t)n) : yajl_complete_parse(h);
		if (ys == yajl_status_client_canceled) {
			err = ld.err; /* said already */
			goto out;
		}
		if (ys != yajl_status_ok) {
			if (!n && !any)
				load_err(path, NULL, "empty file: not a service map");
			else
				syntax_err(path, h, buf, n ? (size_t)n : 0, line, col);
			err = -EINVAL;
			goto out;
		}
		if (!n)
			break;
		any = true;
		position(buf, (size_t)n, &line, &col);
	}
	if (!ld.have_format) {
		load_err(path, NULL, "no \"format\": \"%s\" member: not a service map file",
			 MAP_FORMAT);
		err = -EINVAL;
	} else if (!ld.have_version) {
		load_err(path, NULL, "no \"version\" member");
		err = -EINVAL;
	} else if (!ld.have_sources) {
		load_err(path, NULL, "no \"sources\" member");
		err = -EINVAL;
	}
out:
	if (err == -ENOMEM && !ld.err)
		load_err(path, NULL, "out of memory");
	if (h)
		yajl_free(h);
	close(fd);
	if (err) {
		svcmap__free(ld.m);
		return NULL;
	}
	/* Nobody reads this map yet: the indexes it outgrew while loading can go now. */
	map_free_retired(ld.m);
	return ld.m;
}
