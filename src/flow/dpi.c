/* dpi.c - nDPI 4.2 wrapper: module per worker, classify until final, names.
 *
 * The "final" rule and the give-up mirror ndpiReader 4.2 (see dpi.h) so that names agree
 * with it on the same capture. */
#include "svcsensor/dpi.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ndpi_api.h>

#include "svcsensor/common.h"
#include "svcsensor/strtab.h"

_Static_assert(DPI_SERVER_NAME_LEN >= sizeof(((struct ndpi_flow_struct *)0)->host_server_name),
	       "dpi_flow.server_name must hold nDPI's host_server_name");
_Static_assert(DPI_SERVER_NAME_LEN <= FLOW_SERVER_NAME_LEN, "record must hold the server name");

/* Server names interned per module: the flows of one service share one copy (a busy link has
 * far fewer distinct SNI / DNS / Host names than flows; at 100 k idle flows a copy per flow
 * was a sixth of the memory they held). The names come from the wire, so the set is a seeded
 * string table (strtab.h) of the entries' s[]; an entry is freed with its last flow. */
struct name_ent {
	uint32_t refs;
	char s[]; /* what dpi_flow.server_name points to; the key in dpi_module.names */
};

#define NAME_ENT_OF(k) ((struct name_ent *)(void *)((char *)(k) - offsetof(struct name_ent, s)))

struct dpi_module {
	struct ndpi_detection_module_struct *ndpi;
	struct strtab names; /* private to the module's worker */
	uint32_t tcp_max_pkts, udp_max_pkts;
	bool guess;
	uint8_t scratch[65535]; /* a snaplen-cut packet, its IP length set to what was captured */
};

/* nDPI's module init touches process-wide state (protocol defaults, libgcrypt init,
 * allocator hooks): one at a time. */
static pthread_mutex_t dpi_init_lock = PTHREAD_MUTEX_INITIALIZER;

struct dpi_module *dpi__module_new(const struct dpi_opts *o)
{
	struct dpi_module *m = calloc(1, sizeof(*m));
	NDPI_PROTOCOL_BITMASK all;

	if (!m) {
		svc_err("nDPI: cannot allocate the detection module: %s", strerror(ENOMEM));
		return NULL;
	}
	m->tcp_max_pkts = o && o->tcp_max_pkts ? o->tcp_max_pkts : DPI_DEFAULT_TCP_MAX_PKTS;
	m->udp_max_pkts = o && o->udp_max_pkts ? o->udp_max_pkts : DPI_DEFAULT_UDP_MAX_PKTS;
	m->guess = o ? o->guess : true;

	pthread_mutex_lock(&dpi_init_lock);
	m->ndpi = ndpi_init_detection_module(ndpi_no_prefs);
	if (m->ndpi) {
		NDPI_BITMASK_SET_ALL(all);
		ndpi_set_protocol_detection_bitmask2(m->ndpi, &all);
		ndpi_finalize_initialization(m->ndpi);
	}
	pthread_mutex_unlock(&dpi_init_lock);

	if (!m->ndpi) {
		svc_err("nDPI: ndpi_init_detection_module failed (out of memory?)");
		free(m);
		return NULL;
	}
	return m;
}

void dpi__module_free(struct dpi_module *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&dpi_init_lock);
	ndpi_exit_detection_module(m->ndpi);
	pthread_mutex_unlock(&dpi_init_lock);
	size_t pos = 0;
	for (const char *k; (k = strtab__next(&m->names, &pos));)
		free(NAME_ENT_OF(k)); /* flows not released (a table freed without a flush) */
	strtab__free(&m->names);
	free(m);
}

int dpi__flow_start(struct dpi_module *m, struct dpi_flow *f)
{
	(void)m;
	memset(f, 0, sizeof(*f));
	f->nf = ndpi_flow_malloc(sizeof(*f->nf));
	if (!f->nf) {
		f->final = true;
		return -ENOMEM;
	}
	memset(f->nf, 0, sizeof(*f->nf));
	return 0;
}

/* Keep what outlives the nDPI state: the server name (printable bytes only, so that no
 * output can be broken by a crafted DNS name or Host header). */
static void copy_server_name(char *dst, size_t len, const struct ndpi_flow_struct *nf)
{
	const char *s = nf->host_server_name;
	size_t i, n = strnlen(s, sizeof(nf->host_server_name));

	if (n >= len)
		n = len - 1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	dst[n] = '\0';
}

/* The shared copy of name (one more reference), or NULL when memory is short. */
static const char *name_hold(struct strtab *t, const char *name)
{
	uint64_t h;
	const char *k = strtab__find(t, name, &h);
	if (k) {
		NAME_ENT_OF(k)->refs++;
		return k;
	}
	size_t len = strlen(name);
	struct name_ent *e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return NULL;
	e->refs = 1;
	memcpy(e->s, name, len + 1);
	if (strtab__add(t, e->s, h) != 0) {
		free(e);
		return NULL;
	}
	return e->s;
}

static void name_drop(struct strtab *t, const char *name)
{
	struct name_ent *e = NAME_ENT_OF(name);
	if (--e->refs)
		return;
	strtab__remove(t, e->s);
	free(e);
}

static void finish(struct dpi_module *m, struct dpi_flow *f)
{
	char name[DPI_SERVER_NAME_LEN];

	copy_server_name(name, sizeof(name), f->nf);
	/* Shared: the name outlives the nDPI state for the rest of the flow. If memory is
	 * short the flow simply has no name. */
	f->server_name = name[0] ? name_hold(&m->names, name) : NULL;
	ndpi_free_flow(f->nf);
	f->nf = NULL;
	f->final = true;
}

static void set_result(struct dpi_flow *f, ndpi_protocol p)
{
	f->app_id = p.app_protocol;
	f->master_id = p.master_protocol;
	f->category = (uint16_t)p.category;
}

static void giveup(struct dpi_module *m, struct dpi_flow *f)
{
	uint8_t was_guessed = 0;
	bool had_result =
	    f->app_id != NDPI_PROTOCOL_UNKNOWN || f->master_id != NDPI_PROTOCOL_UNKNOWN;
	ndpi_protocol p = ndpi_detection_giveup(m->ndpi, f->nf, m->guess ? 1 : 0, &was_guessed);

	set_result(f, p);
	/* nDPI raises was_guessed for any non-Unknown result; what matters to a reader is
	 * whether the name came from the give-up rather than from a dissector. */
	f->guessed = !had_result && (p.app_protocol != NDPI_PROTOCOL_UNKNOWN ||
				     p.master_protocol != NDPI_PROTOCOL_UNKNOWN);
	finish(m, f);
}

/* nDPI ignores a packet whose IP length exceeds the bytes it is given (a capture cut by
 * its snaplen): it would never see the flow. Hand it a copy whose IP length says what was
 * captured instead, so the flow is still dissected (and guessed) from what is there. */
static const uint8_t *fit_ip_length(struct dpi_module *m, const uint8_t *l3, uint32_t n)
{
	uint32_t ip_len;

	if ((l3[0] >> 4) == 4 && n >= 20) {
		ip_len = (uint32_t)l3[2] << 8 | l3[3];
		if (ip_len <= n)
			return l3;
		memcpy(m->scratch, l3, n);
		m->scratch[2] = (uint8_t)(n >> 8);
		m->scratch[3] = (uint8_t)n;
		return m->scratch;
	}
	if ((l3[0] >> 4) == 6 && n >= 40) {
		ip_len = 40 + ((uint32_t)l3[4] << 8 | l3[5]);
		if (ip_len <= n)
			return l3;
		memcpy(m->scratch, l3, n);
		m->scratch[4] = (uint8_t)((n - 40) >> 8);
		m->scratch[5] = (uint8_t)(n - 40);
		return m->scratch;
	}
	return l3;
}

bool dpi__flow_packet(struct dpi_module *m, struct dpi_flow *f, const uint8_t *l3,
		      uint32_t l3_caplen, uint64_t time_ms, uint8_t l4proto)
{
	uint32_t cap, len = l3_caplen > 65535 ? 65535 : l3_caplen;
	bool enough;
	ndpi_protocol p;

	if (f->final)
		return true;
	if (SVC_UNLIKELY(!f->nf)) { /* never started */
		f->final = true;
		return true;
	}

	f->pkts++;
	cap = l4proto == IPPROTO_TCP ? m->tcp_max_pkts : m->udp_max_pkts;
	enough = f->pkts > cap;
	l3 = fit_ip_length(m, l3, len);
	p = ndpi_detection_process_packet(m->ndpi, f->nf, l3, (unsigned short)len, time_ms);
	set_result(f, p);

	if (!enough && p.app_protocol == NDPI_PROTOCOL_UNKNOWN)
		return false;
	if (!enough && ndpi_extra_dissection_possible(m->ndpi, f->nf))
		return false; /* e.g. TLS waiting for the certificate */
	if (p.app_protocol == NDPI_PROTOCOL_UNKNOWN)
		giveup(m, f);
	else
		finish(m, f);
	return true;
}

void dpi__flow_giveup(struct dpi_module *m, struct dpi_flow *f)
{
	if (f->final)
		return;
	if (!f->nf) {
		f->final = true;
		return;
	}
	/* ndpiReader gives up on every flow not completed at the end, detected or not. */
	giveup(m, f);
}

void dpi__flow_release(struct dpi_module *m, struct dpi_flow *f)
{
	if (f->server_name)
		name_drop(&m->names, f->server_name);
	f->server_name = NULL;
	if (f->nf) {
		ndpi_free_flow(f->nf);
		f->nf = NULL;
	}
	if (!f->final) {
		f->app_id = f->master_id = NDPI_PROTOCOL_UNKNOWN;
		f->category = NDPI_PROTOCOL_CATEGORY_UNSPECIFIED;
		f->final = true;
	}
}

const char *dpi__proto_name(struct dpi_module *m, uint16_t master_id, uint16_t app_id, char *buf,
			    size_t len)
{
	ndpi_protocol p = {.master_protocol = master_id, .app_protocol = app_id};

	if (!len)
		return buf;
	buf[0] = '\0';
	ndpi_protocol2name(m->ndpi, p, buf, (u_int)(len > 65535 ? 65535 : len));
	buf[len - 1] = '\0';
	return buf;
}

/* Bounded copy, always terminated (once per finished flow: no printf machinery). */
static void copy_str(char *dst, size_t len, const char *src)
{
	size_t n = src ? strnlen(src, len - 1) : 0;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

void dpi__flow_fill_record(struct dpi_module *m, const struct dpi_flow *f, struct flow_record *r)
{
	uint16_t master = f->master_id, app = f->app_id;
	const char *cat;

	dpi__proto_name(m, master, app, r->app_name, sizeof(r->app_name));

	/* Same split as ndpi_protocol2name: "M.A" only when M is known, differs from A, and
	 * A is known; everything else prints one name. */
	if (master != NDPI_PROTOCOL_UNKNOWN && master != app && app != NDPI_PROTOCOL_UNKNOWN) {
		r->master_id = master;
		r->app_id = app;
		copy_str(r->master_name, sizeof(r->master_name),
			 ndpi_get_proto_name(m->ndpi, master));
	} else {
		r->master_id = NDPI_PROTOCOL_UNKNOWN;
		r->app_id = (master != NDPI_PROTOCOL_UNKNOWN) ? master : app;
		r->master_name[0] = '\0';
	}

	cat = ndpi_category_get_name(m->ndpi, (ndpi_protocol_category_t)f->category);
	copy_str(r->category, sizeof(r->category), cat);
	if (f->nf) /* still in detection: what nDPI has so far */
		copy_server_name(r->server_name, sizeof(r->server_name), f->nf);
	else
		copy_str(r->server_name, sizeof(r->server_name),
			 f->server_name ? f->server_name : "");
	r->guessed = f->guessed;
}
