/* fuzz_config.c - libFuzzer harness for the config file loader (config__load_text, what
 * config__load runs on the file's text; the file read itself is left out: it allocates the
 * 4 MiB size cap per call, which under ASan cut the rate to about 50 runs/s).
 *
 * Input: the text of a config file, where libFuzzer put it (a read past its end is an ASan
 * report). Loaded over the built-in defaults,
 * the loader must accept or refuse without a crash, a leak or a read out of bounds, and what
 * it leaves in the config (accepted or not: a refused file keeps the keys before the bad one)
 * must be what the option table (src/options.c) allows for every key: integers in range,
 * choices from the list, non-empty strings and names, networks with a valid prefix, allow
 * rules with at least one member. An accepted file is then loaded again over that config (the
 * replace path of every list and string) and must be accepted again; config__validate and a
 * double config__free must not crash either. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "svcsensor/config.h"
#include "svcsensor/options.h"

static size_t n_choices(const char *const *c)
{
	size_t n = 0;
	while (c[n])
		n++;
	return n;
}

static bool is_choice(const char *const *c, const char *s)
{
	for (size_t i = 0; c[i]; i++)
		if (!strcmp(c[i], s))
			return true;
	return false;
}

/* One row's field of c against what the row allows. */
static void check_row(const struct svc_option *o, struct svc_config *c)
{
	void *f = options__field(o, c);
	char *s;
	size_t n = o->off_n ? *(size_t *)((char *)c + o->off_n) : 0;

	switch (o->type) {
	case SVC_OPT_INT: {
		unsigned long long v = options__get_uint(o, c);
		CHECK(v >= (unsigned long long)o->min && v <= (unsigned long long)o->max);
		break;
	}
	case SVC_OPT_ENUM:
		CHECK((size_t)options__get_uint(o, c) < n_choices(o->choices));
		break;
	case SVC_OPT_STR:
	case SVC_OPT_STR_NULL:
	case SVC_OPT_STR_OFF:
	case SVC_OPT_NAME:
		memcpy(&s, f, sizeof(s));
		CHECK(o->type != SVC_OPT_STR || s);
		CHECK(!s || *s);
		CHECK(!s || o->type != SVC_OPT_NAME || is_choice(o->choices, s));
		break;
	case SVC_OPT_CIDRS: {
		struct cidr *nets;
		memcpy(&nets, f, sizeof(nets));
		CHECK(!n || nets);
		for (size_t i = 0; i < n; i++)
			CHECK((nets[i].ipver == 4 && nets[i].plen <= 32) ||
			      (nets[i].ipver == 6 && nets[i].plen <= 128));
		break;
	}
	case SVC_OPT_NAMES: {
		char **names;
		memcpy(&names, f, sizeof(names));
		for (size_t i = 0; i < n; i++)
			CHECK(names[i] && *names[i]);
		break;
	}
	case SVC_OPT_ALLOW: {
		struct allow_rule *r;
		memcpy(&r, f, sizeof(r));
		for (size_t i = 0; i < n; i++) {
			CHECK(r[i].src || r[i].dst || r[i].app);
			CHECK((!r[i].src || *r[i].src) && (!r[i].dst || *r[i].dst) &&
			      (!r[i].app || *r[i].app));
		}
		break;
	}
	default:
		break;
	}
}

static void check_config(struct svc_config *c)
{
	size_t n;
	const struct svc_option *t = options__table(&n);
	for (size_t i = 0; i < n; i++)
		if (t[i].key && t[i].home == SVC_OPT_CFG)
			check_row(&t[i], c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char path[] = "fuzz-config.json";
	const char *text = (const char *)data;
	struct svc_config c;

	CHECK(config__defaults(&c) == 0);
	int rc = config__load_text(&c, path, text, size);
	CHECK(rc <= 0);
	check_config(&c);
	if (rc == 0) { /* most inputs are refused at the parse: reload the accepted ones only */
		CHECK(config__load_text(&c, path, text, size) == 0);
		check_config(&c);
	}
	(void)config__validate(&c);
	config__free(&c);
	config__free(&c);
	return 0;
}
