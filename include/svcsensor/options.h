/* options.h - the option table: one row per tunable and per command-line flag, naming its
 * config-file key, its flag, its type, its range, its default and its help line.
 *
 * The table drives everything that reads settings: the built-in defaults (config__defaults),
 * the config-file loader (config__load: a key is accepted when a row names it), the command
 * line (options__parse builds getopt_long's tables from it) and --help (options__usage). A
 * default is written in the table only; config/svcsensor.json ships the same values and
 * tests/test_options.c checks that it does. A flag and its config key share one row, so they
 * accept the same values and reject a bad one with the same reason:
 *   svcsensor: --idle-timeout: expected an integer from 1 to 31536000, got 0
 *   svcsensor: sensor.json:3:3: key "idle_timeout": expected an integer from 1 to 31536000, got 0
 *
 * Adding a tunable: a field in struct svc_config (config.h), one row in src/options.c, the key
 * in config/svcsensor.json, a line in README.md (Flags / Config file).
 *
 * Ownership: struct svc_options owns its config (strings and lists, freed by options__free)
 * and the array of -r files; the strings of struct svc_run (file names, flows_in, config_path)
 * are borrowed from argv or the environment, which outlive the run.
 * Errors: one line on stderr naming the flag as the user spelled it ("-t" or "--threads"), or
 * the file and key (config.c); a negative errno is returned.
 * Threading: options__parse uses getopt_long's globals: main thread, before threads start.
 * The table itself is constant and may be read from anywhere. */
#ifndef SVCSENSOR_OPTIONS_H
#define SVCSENSOR_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "svcsensor/config.h"

enum svc_opt_type {
	SVC_OPT_INT,	  /* unsigned integer field (1, 2, 4 or 8 bytes) within [min, max] */
	SVC_OPT_BOOL,	  /* bool; its flag takes no value and sets the opposite of the default */
	SVC_OPT_STR,	  /* char *, non-empty */
	SVC_OPT_STR_NULL, /* char *, "" or null = off (stored as NULL) */
	SVC_OPT_STR_OFF,  /* char *, non-empty, or null = off ("" is refused: a mistake, not off) */
	SVC_OPT_NAME,	  /* char *, one of choices */
	SVC_OPT_ENUM,	  /* an enum: the index of one of choices */
	SVC_OPT_CIDRS,	  /* struct cidr * + count; a flag adds one (the first use replaces) */
	SVC_OPT_NAMES,	  /* char ** + count, non-empty names */
	SVC_OPT_ALLOW,	  /* struct allow_rule * + count; config file only (no text form) */
	SVC_OPT_FILES,	  /* const char ** + count, borrowed names in order (-r) */
	SVC_OPT_ARG,	  /* const char *, borrowed from argv */
	SVC_OPT_CONFIG,	  /* const char *: the settings file, read before every other flag (-c) */
	SVC_OPT_HELP,	  /* --help */
	SVC_OPT_VERSION,  /* --version */
};

/* Which struct a row's field lives in. */
enum svc_opt_home { SVC_OPT_CFG, SVC_OPT_RUN };

/* The --help section a flag is listed under, in this order. */
enum svc_opt_section {
	SVC_SEC_INPUT,
	SVC_SEC_LIVE,
	SVC_SEC_MODE,
	SVC_SEC_FILES,
	SVC_SEC_TUNING,
	SVC_SEC_OTHER,
	SVC_SEC_COUNT,
};

struct svc_option {
	const char *key;  /* config-file key; NULL = a flag only */
	const char *flag; /* long flag without "--"; NULL = a config key only */
	char short_flag;  /* 0 = none */
	const char *arg;  /* the value's name in --help ("N", "FILE"); NULL = the flag takes none */
	enum svc_opt_type type;
	enum svc_opt_home home;
	size_t off, size;	    /* the field in struct svc_config or struct svc_run */
	size_t off_n;		    /* lists: the size_t count beside it */
	long long min, max;	    /* SVC_OPT_INT */
	const char *const *choices; /* SVC_OPT_NAME, SVC_OPT_ENUM: NULL-terminated */
	const char *def; /* default, spelled as on the command line (lists: comma-separated);
			    NULL = unset (0, false, NULL, empty) */
	enum svc_opt_section section;
	const char *help; /* one phrase for --help */
};

/* What one command line asks for besides the settings: the mode and the inputs. */
struct svc_run {
	const char **files; /* -r, in order (the array is owned, the names are argv's) */
	size_t n_files;
	const char *flows_in;	 /* --flows-in */
	const char *config_path; /* -c, else what the caller set (main: $SVCSENSOR_CONFIG) */
	unsigned duration;	 /* --duration, 0 = none */
	bool learn, show_report, quiet;
};

struct svc_options {
	struct svc_config cfg;
	struct svc_run run;
};

/* What options__parse found: run, or print --help / --version (status 0). */
enum options_result { OPTIONS_RUN = 0, OPTIONS_HELP, OPTIONS_VERSION };

/* The table (static) and its number of rows. */
const struct svc_option *options__table(size_t *n);

/* The row whose config key is key, or NULL (a flag-only row has no key). */
const struct svc_option *options__find_key(const char *key);

/* The config's defaults and an empty run. 0 or -ENOMEM (then *o is zeroed). */
int options__init(struct svc_options *o);

/* Apply the command line to *o: first the settings file (-c, else o->run.config_path when
 * set), then every other flag in order. Returns an enum options_result, or a negative errno
 * after one line on stderr (a bad flag or value, an unexpected argument, a bad settings file).
 * Checks each value, not the constraints between settings (config__validate). */
int options__parse(struct svc_options *o, int argc, char **argv);

/* Print --help (usage lines and every flag of the table, wrapped at 80 columns). */
void options__usage(FILE *out);

/* Free what *o owns and zero it. Safe on a zeroed struct. */
void options__free(struct svc_options *o);

/* ---- one row's field, shared with config.c ------------------------------------------------ */

/* The row's field inside base (a struct svc_config or struct svc_run, by opt->home). */
void *options__field(const struct svc_option *opt, void *base);

/* An integer field's value. */
unsigned long long options__get_uint(const struct svc_option *opt, const void *base);

/* What the row accepts, for messages: "an integer from 1 to 64", "a positive integer",
 * "\"all\", \"anomalies\" or \"none\"", "true or false", "a non-empty string". */
const char *options__expected(const struct svc_option *opt, char *buf, size_t len);

/* Set an integer field. -EINVAL with why = "expected ..., got V" when v is out of range. */
int options__set_int(const struct svc_option *opt, void *base, long long v, char *why, size_t len);

/* Set the field from text as a flag spells it (lists: add one element). 0, -ENOMEM, or
 * -EINVAL with why = the reason ("expected ..., got \"text\""). */
int options__set_text(const struct svc_option *opt, void *base, const char *text, char *why,
		      size_t len);

/* Set the field to the row's default (lists: each comma-separated element). */
int options__set_default(const struct svc_option *opt, void *base, char *why, size_t len);

/* Replace a list field with items[0..n) (ownership passes to base; the old list is freed). */
void options__list_replace(const struct svc_option *opt, void *base, void *items, size_t n);

/* Free what the field owns (a string, a list and its elements) and reset it. */
void options__release(const struct svc_option *opt, void *base);

#endif
