/* flow.c - flow record allocation and naming helpers. */
#include "svcsensor/flow.h"

#include <stdlib.h>
#include <string.h>

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

/* Address text, the same as inet_ntop gives (RFC 5952 with glibc's choices: the first longest
 * run of two or more zero words is "::", IPv4-mapped and -compatible addresses end in dotted
 * quad). Written by hand because glibc's inet_ntop (sprintf) costs ~120 ns, and the detector
 * formats up to six addresses per flow (host keys, CSV row, anomaly line). */
static char *put_dec8(char *o, unsigned v)
{
	if (v >= 100) {
		*o++ = (char)('0' + v / 100);
		v %= 100;
		*o++ = (char)('0' + v / 10);
	} else if (v >= 10) {
		*o++ = (char)('0' + v / 10);
	}
	*o++ = (char)('0' + v % 10);
	return o;
}

static char *put_ipv4(char *o, const uint8_t *a)
{
	for (int i = 0; i < 4; i++) {
		if (i)
			*o++ = '.';
		o = put_dec8(o, a[i]);
	}
	return o;
}

static char *put_ipv6(char *o, const uint8_t *a)
{
	static const char hex[] = "0123456789abcdef";
	unsigned w[8];
	int best = -1, best_len = 0, cur = -1, cur_len = 0;

	for (int i = 0; i < 8; i++) {
		w[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
		if (w[i]) {
			cur = -1;
			continue;
		}
		if (cur < 0) {
			cur = i;
			cur_len = 0;
		}
		if (++cur_len > best_len) {
			best = cur;
			best_len = cur_len;
		}
	}
	if (best_len < 2)
		best = -1;
	for (int i = 0; i < 8; i++) {
		if (best >= 0 && i >= best && i < best + best_len) {
			if (i == best)
				*o++ = ':';
			continue;
		}
		if (i)
			*o++ = ':';
		if (i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)))
			return put_ipv4(o, a + 12);
		for (int shift = w[i] >= 0x1000	 ? 12
				 : w[i] >= 0x100 ? 8
				 : w[i] >= 0x10	 ? 4
						 : 0;
		     shift >= 0; shift -= 4)
			*o++ = hex[(w[i] >> shift) & 0xf];
	}
	if (best >= 0 && best + best_len == 8)
		*o++ = ':';
	return o;
}

const char *flow__addr_str(const uint8_t addr[16], uint8_t ipver, char *buf, size_t len)
{
	char text[48];
	char *end = ipver == 6 ? put_ipv6(text, addr) : put_ipv4(text, addr);
	size_t n = (size_t)(end - text);
	if (len == 0)
		return buf;
	if (n >= len)
		n = len - 1;
	memcpy(buf, text, n);
	buf[n] = '\0';
	return buf;
}
