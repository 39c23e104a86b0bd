/* config.h - the settings of a run (struct svc_config), the JSON config file and validation.
 *
 * Every key's type, range and default is a row of the option table (options.h, src/options.c),
 * which also gives the key its command-line flag, if any. config/svcsensor.json ships every key
 * with its default; README.md (Config file) documents them.
 *
 * Ownership: a struct svc_config owns its strings and lists (config__free). Errors: one line
 * on stderr, a negative errno returned. Threading: filled on the main thread, then read-only. */
#ifndef SVCSENSOR_CONFIG_H
#define SVCSENSOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum print_mode { PRINT_ALL = 0, PRINT_ANOMALIES, PRINT_NONE };

/* How addresses outside local_networks become host keys. */
enum remote_mode {
	REMOTE_COLLAPSE = 0, /* every remote address is the key "remote" (the seed's behaviour) */
	REMOTE_ADDRESS,	     /* each remote address is its own key */
	REMOTE_PREFIX, /* remote addresses keyed by prefix (remote_prefix4 / remote_prefix6) */
};

/* An IPv4 or IPv6 network. addr uses the flow_key layout (IPv4 in the first 4 bytes). */
struct cidr {
	uint8_t addr[16];
	uint8_t ipver; /* 4 or 6 */
	uint8_t plen;  /* prefix length */
};

/* A rule that silences a known false positive: any field NULL = wildcard. Matched against the
 * host keys (as printed: "10.42.0.130", "remote") and the application name. */
struct allow_rule {
	char *src;
	char *dst;
	char *app;
};

struct svc_config {
	/* host keys */
	struct cidr *local_networks;
	size_t n_local_networks;
	enum remote_mode remote_mode;
	uint8_t remote_prefix4, remote_prefix6;

	/* files ("" or NULL = off where it makes sense) */
	char *map_file;
	char *log_file;
	uint64_t log_max_bytes; /* 0 = never rotate */
	unsigned log_keep;
	char *report_file;	  /* text report; the JSON form is report_file + ".json" */
	unsigned report_interval; /* seconds; 0 = only at exit */
	uint32_t report_max_keys; /* (verdict, source, destination) rows; more fold into (other) */
	char *flows_out;	  /* flow CSV export, NULL = off */
	uint64_t flows_max_bytes; /* rotate the flow CSV past this size; 0 = never */
	unsigned flows_keep;	  /* rotated flow CSVs kept */

	/* flows */
	unsigned idle_timeout;	 /* seconds */
	unsigned active_timeout; /* seconds */
	unsigned tcp_linger;	 /* seconds a closed TCP flow absorbs trailing packets */
	uint32_t max_flows;	 /* per worker */
	unsigned threads;
	unsigned tcp_max_pkts, udp_max_pkts; /* DPI packet caps */
	bool guess;			     /* use nDPI's guess at give-up */

	/* detection and output */
	enum print_mode print;
	char **minor_masters; /* masters whose new apps are DNS_TLS_APPLICATION */
	size_t n_minor_masters;
	struct allow_rule *allow;
	size_t n_allow;
	unsigned
	    learn_save_interval; /* seconds between map saves in learn mode; 0 = only at exit */

	/* live capture (issue: live capture) */
	char *interface;
	char *fanout; /* hash | cpu | qm | ebpf */
	char *bpf_filter;
	unsigned ring_block_size, ring_block_count, ring_frame_size, ring_block_timeout_ms;
	bool promisc;
	char *user;
	unsigned stats_interval;
};

/* Fill *c with the built-in defaults: the option table's (the same values
 * config/svcsensor.json ships). *c is overwritten, not freed first. 0 or -ENOMEM (then *c is
 * zeroed). */
int config__defaults(struct svc_config *c);

/* Overlay the keys of the JSON file at path onto *c (keys absent from the file keep their
 * value). Strict: an unknown key, a wrong type or a bad value is an error. On error prints one
 * line naming the file, the key (line:column when known) and the reason, e.g.
 *   svcsensor: config.json:4:3: key "idle_timeout": expected an integer from 1 to 31536000, got -5
 * and returns a negative errno (-ENOENT when the file does not exist, -EINVAL for bad content);
 * *c is then still valid (keys before the bad one applied; a bad list leaves the old list).
 * null or "" for the optional files (log_file, report_file, flows_out) and interface /
 * bpf_filter is stored as NULL; user takes null (NULL) but refuses "". */
int config__load(struct svc_config *c, const char *path);

/* The same on the text of a config file already in memory (len bytes; no NUL needed); path
 * only names it in messages. config__load reads the file whole and calls this. */
int config__load_text(struct svc_config *c, const char *path, const char *text, size_t len);

/* Check every key's range again (a caller may have set fields directly) and the constraints
 * between keys (timeouts, ring geometry), after flags were applied. Prints one line
 * ("svcsensor: config: KEY: reason") and returns -EINVAL on the first problem. */
int config__validate(const struct svc_config *c);

/* Parse "10.0.0.0/8" or "fd00::/8" (or a bare address = host prefix). Host bits after the
 * prefix are cleared ("10.1.2.3/8" is 10.0.0.0/8). 0 or -EINVAL. */
int config__parse_cidr(const char *s, struct cidr *out);

/* Parse a print mode name ("all", "anomalies", "none"). 0 or -EINVAL. */
int config__parse_print(const char *s, enum print_mode *out);

/* Parse a remote mode name ("remote", "address", "prefix"). 0 or -EINVAL. */
int config__parse_remote_mode(const char *s, enum remote_mode *out);

/* The config-file spelling of a mode ("all", "prefix", ...); "?" when out of range. Static. */
const char *config__print_name(enum print_mode m);
const char *config__remote_mode_name(enum remote_mode m);

/* The spellings of the modes, indexed by the enum, and of the fanout modes; NULL-terminated
 * (the option table's choices). */
extern const char *const config_print_names[];
extern const char *const config_remote_names[];
extern const char *const config_fanout_names[];

/* Replace a string setting (frees the old one). 0 or -ENOMEM. */
int config__set_str(char **field, const char *value);

/* Free what *c owns and zero it; a zeroed config frees fine, and so does a second free. */
void config__free(struct svc_config *c);

#endif
