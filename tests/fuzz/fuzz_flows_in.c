/* fuzz_flows_in.c - libFuzzer harness for the flow CSV reader (--flows-in): flows_in__open_stream
 * and flows_in__rows, what flows_in__read does after its fopen (a memory file opened by path
 * cost half the run time in system calls).
 *
 * Input: the bytes of a flow CSV, read through fmemopen. The reader must refuse the file or
 * read it to its end without a crash, a leak or a read out of bounds. Every row it hands on
 * must be a record flows_in.h promises: IPv4 or IPv6 addresses in the flow_key layout, a
 * non-empty application name that passes the service map's name rule, NUL-terminated text
 * fields, last seen not before first seen, a known end reason; and its counts must add up
 * (rows = accepted + rejected, accepted = the rows handed on). When the input's length is a
 * multiple of 5 the callback stops the read at the second row, and the reader must return the
 * callback's value. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "svcsensor/flow.h"
#include "svcsensor/flows_in.h"
#include "svcsensor/utf8.h"

#define STOP_VALUE 77

struct seen {
	uint64_t rows;
	bool stop_early;
};

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static int on_row(void *ctx, const struct flow_record *rec)
{
	static const uint8_t zero[12];
	struct seen *seen = ctx;
	const struct flow_key *k = &rec->key;

	CHECK(k->ipver == 4 || k->ipver == 6);
	if (k->ipver == 4)
		CHECK(!memcmp(k->src + 4, zero, 12) && !memcmp(k->dst + 4, zero, 12));
	CHECK(terminated(rec->app_name, sizeof(rec->app_name)));
	CHECK(terminated(rec->master_name, sizeof(rec->master_name)));
	CHECK(terminated(rec->category, sizeof(rec->category)));
	CHECK(terminated(rec->server_name, sizeof(rec->server_name)));
	CHECK(rec->app_name[0] && utf8__name_ok(rec->app_name, FLOW_APP_NAME_LEN - 1));
	CHECK(rec->last_us >= rec->first_us);
	CHECK(rec->end_reason < FLOW_END__COUNT);
	seen->rows++;
	return seen->stop_early && seen->rows == 2 ? STOP_VALUE : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen seen = {.stop_early = size % 5 == 0};
	struct flows_in *r;
	FILE *f = fmemopen((void *)data, size, "r");
	if (!f) /* an empty input, where the C library refuses a zero size */
		return 0;
	int rc = flows_in__open_stream(f, "fuzz-flows.csv", &r);
	if (rc) {
		CHECK(rc < 0);
		return 0;
	}
	rc = flows_in__rows(r, on_row, &seen);
	struct flows_in_stats st = *flows_in__stats(r);
	flows_in__close(r);
	CHECK(rc <= 0 || rc == STOP_VALUE);
	CHECK((rc == STOP_VALUE) == (seen.stop_early && seen.rows == 2));
	CHECK(st.rows == st.accepted + st.rejected);
	/* rows that ended on the header's line (lone CRs) were all taken before fn stopped it */
	CHECK(rc == STOP_VALUE ? st.accepted >= seen.rows : st.accepted == seen.rows);
	return 0;
}
