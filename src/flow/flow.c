/* flow.c - flow record allocation and naming helpers. */
#include "svcsensor/flow.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const end_names[FLOW_END__COUNT] = {
    [FLOW_END_IDLE] = "idle",	    [FLOW_END_ACTIVE] = "active",     [FLOW_END_TCP] = "tcp_close",
    [FLOW_END_EVICTED] = "evicted", [FLOW_END_SHUTDOWN] = "shutdown",
};

const char *flow_end__name(enum flow_end e)
{
	return (unsigned)e < FLOW_END__COUNT ? end_names[e] : "?";
}

struct flow_record *flow_record__new(void)
{
	struct flow_record *r = calloc(1, sizeof(*r));
	if (r)
		cds_wfcq_node_init(&r->qnode);
	return r;
}

void flow_record__free(struct flow_record *r)
{
	free(r);
}

const char *flow__addr_str(const uint8_t addr[16], uint8_t ipver, char *buf, size_t len)
{
	if (!inet_ntop(ipver == 6 ? AF_INET6 : AF_INET, addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}
