/* dpi.h - thin nDPI 4.2 wrapper: one detection module per worker, per-flow classification
 * until the result is final, names.
 *
 * The rules follow Debian's ndpiReader (nDPI 4.2 example/reader_util.c) so that names agree
 * with it on the same capture:
 *   - every packet of the flow is fed while the flow is in detection (TCP packets without
 *     payload too), as the IP header pointer, time in milliseconds;
 *   - the result is final when nDPI reports an application (app id != Unknown) and
 *     ndpi_extra_dissection_possible() is false, or when the flow has seen more packets than
 *     the cap (TCP: tcp_max_pkts, UDP and every other protocol: udp_max_pkts; the packet
 *     that crosses the cap is still fed);
 *   - final without an application → ndpi_detection_giveup() (guessing per opts.guess);
 *     a flow that ends before it is final gets the same give-up (dpi__flow_giveup).
 * Once final, the nDPI flow state is freed; the entry keeps the ids, the category and the
 * server name only (~100 bytes), so a long flow costs little.
 *
 * A module and the flows it classifies belong to one thread. Only dpi__module_new /
 * dpi__module_free take a (process-wide) mutex, because nDPI's module init is not
 * thread-safe. */
#ifndef SVCSENSOR_DPI_H
#define SVCSENSOR_DPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "svcsensor/flow.h"

struct ndpi_flow_struct;
struct dpi_module;

/* Defaults, as ndpiReader 4.2 (max_num_tcp_dissected_pkts / max_num_udp_dissected_pkts). */
#define DPI_DEFAULT_TCP_MAX_PKTS 80
#define DPI_DEFAULT_UDP_MAX_PKTS 24

struct dpi_opts {
	uint32_t tcp_max_pkts; /* 0 = DPI_DEFAULT_TCP_MAX_PKTS */
	uint32_t udp_max_pkts; /* UDP and other protocols; 0 = DPI_DEFAULT_UDP_MAX_PKTS */
	bool guess;	       /* let ndpi_detection_giveup guess (by port / address) */
};

/* nDPI 4.2 keeps the server name in flow->host_server_name[80]: no more is ever known. */
#define DPI_SERVER_NAME_LEN 80

/* Per-flow classification state; embedded in the owner's flow entry. All zero = "not
 * started" (dpi__flow_start makes it live). */
struct dpi_flow {
	struct ndpi_flow_struct *nf; /* nDPI state while in detection, NULL once final */
	uint32_t pkts;		     /* packets fed to nDPI */
	uint16_t app_id, master_id;  /* result as nDPI gives it (ndpi_protocol) */
	uint16_t category;	     /* ndpi_protocol_category_t */
	bool final;		     /* result will not change any more */
	bool guessed;		     /* the result came from the give-up (guess), not from
				      * a dissector */
	const char *server_name;     /* once final: SNI / DNS query / HTTP Host, NULL if
				      * none; control characters replaced by '?'. One copy
				      * per distinct name in the module, shared by its
				      * flows (reference counted); dropped by
				      * dpi__flow_release */
};

/* Build a detection module with every protocol enabled (ndpi_init_detection_module,
 * NDPI_BITMASK_SET_ALL, ndpi_finalize_initialization). Serialised with a process-wide
 * mutex; takes ~30-50 ms and ~9 MB. o may be NULL (defaults, guess on). Returns the module
 * (free with dpi__module_free) or NULL, reported on stderr. */
struct dpi_module *dpi__module_new(const struct dpi_opts *o);

/* Free a module. Flows still in detection must have been given up or released first.
 * NULL is a no-op. */
void dpi__module_free(struct dpi_module *m);

/* Start classifying a new flow: zero *f and allocate its nDPI state (the only allocation
 * per flow). Returns 0, or -ENOMEM: then *f is final "Unknown" and the flow is simply not
 * classified. */
int dpi__flow_start(struct dpi_module *m, struct dpi_flow *f);

/* Feed one packet of a flow in detection.
 * l3:         the IP header; l3_caplen bytes readable (clamped to 65535 for nDPI). A
 *             packet cut by the snaplen (IP length > l3_caplen), which nDPI would ignore,
 *             is handed over as a copy whose IP length is l3_caplen; *l3 is never written.
 * time_ms:    packet time in milliseconds (the caller keeps it monotonic).
 * l4proto:    IPPROTO_* of the flow, selects the packet cap.
 * Returns true when the result is final after this packet (the nDPI state is then freed);
 * a final flow is not touched and returns true at once. Never blocks, never allocates
 * (nDPI itself may, for TLS / HTTP strings, inside its flow state). */
bool dpi__flow_packet(struct dpi_module *m, struct dpi_flow *f, const uint8_t *l3,
		      uint32_t l3_caplen, uint64_t time_ms, uint8_t l4proto);

/* Make the result final now: for a flow still in detection, ndpi_detection_giveup (with
 * guessing per the module's opts), keep the server name, free the nDPI state. No-op on a
 * final flow. */
void dpi__flow_giveup(struct dpi_module *m, struct dpi_flow *f);

/* Free what a flow holds: its nDPI state (a flow without a result becomes final "Unknown")
 * and its server name. Call once per started flow when it ends; a zeroed flow is a no-op. */
void dpi__flow_release(struct dpi_module *m, struct dpi_flow *f);

/* The application name exactly as ndpi_protocol2name gives it ("TLS.YouTube", "DNS",
 * "Unknown") for the ids (master, app); written into buf (always terminated). Returns buf. */
const char *dpi__proto_name(struct dpi_module *m, uint16_t master_id, uint16_t app_id, char *buf,
			    size_t len);

/* Fill the classification fields of a record from a flow (final or not; a flow still in
 * detection reports its current result): app_id / master_id, app_name (ndpi_protocol2name),
 * master_name, category (ndpi_category_get_name), server_name, guessed.
 * Master rule: app_name "M.A" has master M: master_name = "M", master_id = M, app_id = A.
 * A single name ("HTTP", "DNS", "Unknown", also nDPI's {master X, app Unknown} or
 * {X, X}, printed "X") has no master: master_name = "", master_id = 0, app_id = X. */
void dpi__flow_fill_record(struct dpi_module *m, const struct dpi_flow *f, struct flow_record *r);

#endif
