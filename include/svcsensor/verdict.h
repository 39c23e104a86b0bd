/* verdict.h - the verdicts, as one table: every fact about a verdict is one row of
 * SVC_VERDICTS, and everything else (the enum, names, console labels, weights, the report's
 * section order, the exit summary) is generated from it. A new verdict is one row here plus
 * its rule in src/detect/rule.c (docs/ARCHITECTURE.md, "Add a verdict").
 *
 * Columns:
 *   ID      enum verdict's VERDICT_<ID>; its spelling is the verdict's NAME in the anomaly log,
 *           the report JSON, the flow CSV and the exit summary ("UNKNOWN_SOURCE_IP")
 *   LABEL   the seed's console spelling, also the report's section title
 *   WEIGHT  "major", "minor", or "" for NONE (anomaly log "weight")
 *   RANK    the report's section order, 0 first: NONE, then the anomalies alphabetically by
 *           label (the seed's layout). Ranks are checked at compile time to be 0..count-1,
 *           each once.
 * Row order is the enum's order (ids are stable: the report JSON's per_verdict object and the
 * exit summary list verdicts in it); NONE stays last. No state: usable from any thread. */
#ifndef SVCSENSOR_VERDICT_H
#define SVCSENSOR_VERDICT_H

/* The table reads as columns. */
/* clang-format off */
#define SVC_VERDICTS(X)                                                                            \
	/* ID                       LABEL                       WEIGHT   RANK */                   \
	X(UNKNOWN_SOURCE_IP,        "UNKNOWN SOURCE IP",        "major", 5)                        \
	X(UNKNOWN_DESTINATION_IP,   "UNKNOWN DESTINATION IP",   "major", 3)                        \
	X(UNKNOWN_PROTOCOL,         "UNKNOWN PROTOCOL",         "minor", 4)                        \
	X(DNS_TLS_APPLICATION,      "DNS/TLS APPLICATION",      "minor", 1)                        \
	X(PROTOCOL_NEVER_USED,      "PROTOCOL NEVER USED",      "major", 2)                        \
	X(NONE,                     "NONE",                     "",      0)

/* One verdict per flow, first match wins (README.md, Verdicts). */
enum verdict {
#define SVC_VERDICT_ENUM(id, label, weight, rank) VERDICT_##id,
	SVC_VERDICTS(SVC_VERDICT_ENUM)
#undef SVC_VERDICT_ENUM
	VERDICT__COUNT
};
/* clang-format on */

struct verdict_info {
	const char *name;   /* "UNKNOWN_SOURCE_IP" */
	const char *label;  /* "UNKNOWN SOURCE IP" */
	const char *weight; /* "major" | "minor" | "" */
	unsigned rank;	    /* report section order */
};

/* Indexed by enum verdict (src/detect/verdict.c). */
extern const struct verdict_info verdict_table[VERDICT__COUNT];
/* verdict_by_rank[k]: the verdict whose RANK is k. */
extern const enum verdict verdict_by_rank[VERDICT__COUNT];

/* "UNKNOWN_SOURCE_IP", ..., "NONE"; "?" out of range. */
static inline const char *verdict__name(enum verdict v)
{
	return (unsigned)v < VERDICT__COUNT ? verdict_table[v].name : "?";
}
/* The seed's spelling: "UNKNOWN SOURCE IP", "DNS/TLS APPLICATION", ...; "?" out of range. */
static inline const char *verdict__label(enum verdict v)
{
	return (unsigned)v < VERDICT__COUNT ? verdict_table[v].label : "?";
}
/* "major", "minor", "" for NONE and out of range. */
static inline const char *verdict__weight(enum verdict v)
{
	return (unsigned)v < VERDICT__COUNT ? verdict_table[v].weight : "";
}

/* Label printed on the console in learn mode instead of a verdict. */
#define VERDICT_LEARNED_LABEL "LEARNED"

#endif
