/* pcapfile.c - offline reader: libpcap in, decoded packet batches out to the workers. */
#include "svcsensor/pcapfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "svcsensor/common.h"
#include "svcsensor/monotime.h"
#include "svcsensor/pcapscan.h"
#include "svcsensor/progress.h"

/* Flush a worker's partial batch once the packet clock ran this far past its last send, so a
 * worker that sees little traffic still expires its flows in step with the capture. */
#define CLOCK_FLUSH_US (1 * SVC_US_PER_SEC)

int pktchan__init(struct pktchan *c)
{
	memset(c, 0, sizeof(*c));
	for (unsigned i = 0; i < PKTCHAN_DEPTH; i++) {
		c->slots[i] = malloc(sizeof(struct pktbatch));
		if (!c->slots[i]) {
			pktchan__destroy(c);
			return -ENOMEM;
		}
		c->slots[i]->count = c->slots[i]->used = 0;
		c->slots[i]->last = false;
	}
	if (sem_init(&c->full, 0, 0) || sem_init(&c->empty, 0, PKTCHAN_DEPTH))
		return -errno;
	return 0;
}

void pktchan__destroy(struct pktchan *c)
{
	for (unsigned i = 0; i < PKTCHAN_DEPTH; i++) {
		free(c->slots[i]);
		c->slots[i] = NULL;
	}
	sem_destroy(&c->full);
	sem_destroy(&c->empty);
}

struct pktbatch *pktchan__get(struct pktchan *c)
{
	while (sem_wait(&c->full) != 0 && errno == EINTR)
		;
	struct pktbatch *b = c->slots[c->rpos % PKTCHAN_DEPTH];
	if (!b->win)
		for (uint32_t i = 0; i < b->count; i++)
			b->pv[i].l3 = b->data + b->pkt_off[i];
	return b;
}

void pktchan__put(struct pktchan *c)
{
	c->rpos++;
	sem_post(&c->empty);
}

/* Producer side: the batch being filled for worker w (waits for a free slot when needed). */
struct wstate {
	struct pktbatch *cur;
	uint64_t last_send_clock;
};

static struct pktbatch *acquire(struct pktchan *c)
{
	while (sem_wait(&c->empty) != 0 && errno == EINTR)
		;
	struct pktbatch *b = c->slots[c->wpos % PKTCHAN_DEPTH];
	b->count = 0;
	b->used = 0;
	b->last = false;
	b->win = NULL;
	return b;
}

static void send_batch(struct pktchan *c, struct wstate *w, uint64_t clock, bool last)
{
	if (!w->cur)
		w->cur = acquire(c);
	w->cur->clock_us = clock;
	w->cur->last = last;
	w->cur = NULL;
	w->last_send_clock = clock;
	c->wpos++;
	sem_post(&c->full);
}

/* Hand one decoded packet to its worker: a copy of the packet (win NULL), or the packet where
 * it is in the mapped window win (one window per batch; the batch holds a reference). */
static void dispatch(struct pcapfile_reader *r, struct wstate *ws, const struct pkt_view *pv,
		     uint64_t clock, struct pcapscan_win *win)
{
	unsigned w = r->n_workers > 1 ? flow_key__pair_hash(&pv->key) % r->n_workers : 0;
	struct pktchan *c = &r->chans[w];
	struct wstate *s = &ws[w];
	if (s->cur && (s->cur->count == PKTBATCH_PKTS || s->cur->win != win ||
		       (!win && PKTBATCH_BYTES - s->cur->used < pv->l3_caplen)))
		send_batch(c, s, clock, false);
	if (!s->cur)
		s->cur = acquire(c);
	struct pktbatch *b = s->cur;
	if (win) {
		if (!b->count) {
			b->win = win;
			pcapscan__win_hold(win);
		}
	} else {
		memcpy(b->data + b->used, pv->l3, pv->l3_caplen);
		b->pkt_off[b->count] = b->used;
		b->used += pv->l3_caplen;
	}
	b->pv[b->count++] = *pv;
}

/* A worker that got nothing for a second of packet time still gets a batch, so its flows
 * expire in step with the capture. */
static void flush_idle(struct pcapfile_reader *r, struct wstate *ws, uint64_t clock)
{
	for (unsigned w = 0; w < r->n_workers; w++)
		if (clock - ws[w].last_send_clock > CLOCK_FLUSH_US)
			send_batch(&r->chans[w], &ws[w], clock, false);
}

/* stdio buffer of a capture being read: libpcap reads through a FILE, whose default buffer
 * (one page) costs a read(2) per 4 KiB; with this, one per MiB. */
#define READ_BUF (1u << 20)

/* The name errors give a capture: "-" is the standard input. */
static const char *input_name(const char *path)
{
	return strcmp(path, "-") == 0 ? "standard input" : path;
}

/* Open a capture for reading. *iobuf (NULL or a buffer) must be freed after pcap_close. */
static int open_capture(const char *arg, const char *filter, pcap_t **out, char **iobuf)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = NULL;
	const char *path = input_name(arg);
	FILE *f = strcmp(arg, "-") == 0 ? stdin : fopen(path, "rb");

	*iobuf = NULL;
	if (f) {
		*iobuf = malloc(READ_BUF);
		if (*iobuf)
			setvbuf(f, *iobuf, _IOFBF, READ_BUF);
		p = pcap_fopen_offline(f, errbuf); /* on failure it leaves f open */
		if (!p)
			fclose(f);
	} else {
		snprintf(errbuf, sizeof(errbuf), "%s", strerror(errno));
	}
	if (!p) {
		free(*iobuf);
		*iobuf = NULL;
		/* libpcap's texts: "PATH: No such file or directory", "unknown file format", ... */
		const char *why = errbuf;
		size_t plen = strlen(path);
		if (strncmp(why, path, plen) == 0 && why[plen] == ':')
			why += plen + (why[plen + 1] == ' ' ? 2 : 1);
		svc_err("%s: cannot read capture: %s", path, why);
		return -EINVAL;
	}
	int dlt = pcap_datalink(p);
	if (!decode__link_supported(dlt)) {
		const char *name = pcap_datalink_val_to_name(dlt);
		svc_err("%s: unsupported link type %d (%s)", path, dlt, name ? name : "unknown");
		pcap_close(p);
		return -ENOTSUP;
	}
	if (filter && *filter) {
		struct bpf_program prog;
		if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
			svc_err("capture filter \"%s\": %s", filter, pcap_geterr(p));
			pcap_close(p);
			return -EINVAL;
		}
		int rc = pcap_setfilter(p, &prog);
		pcap_freecode(&prog);
		if (rc != 0) {
			svc_err("capture filter \"%s\": %s", filter, pcap_geterr(p));
			pcap_close(p);
			return -EINVAL;
		}
	}
	*out = p;
	return 0;
}

int pcapfile__check(const char *const *files, unsigned n, const char *bpf_filter)
{
	int rc = 0;
	for (unsigned i = 0; i < n; i++) {
		pcap_t *p;
		char *iobuf;
		/* A pipe cannot be read twice: the standard input is checked when it is read. */
		if (strcmp(files[i], "-") == 0) {
			if (isatty(STDIN_FILENO)) {
				svc_err("standard input: is a terminal, not a capture (pipe one in: "
					"zcat day.pcap.gz | svcsensor -r -)");
				rc = rc ? rc : -EINVAL;
			}
			continue;
		}
		/* A named pipe (mkfifo) neither: opening it here would eat its first bytes. */
		struct stat st;
		if (stat(files[i], &st) == 0 && S_ISFIFO(st.st_mode))
			continue;
		int e = open_capture(files[i], bpf_filter, &p, &iobuf);
		if (e)
			rc = rc ? rc : e;
		else
			pcap_close(p);
		free(iobuf);
	}
	return rc;
}

static void progress(struct pcapfile_reader *r, pcap_t *p, const char *path, long size)
{
	FILE *f = pcap_file(p);
	long pos = f ? ftell(f) : -1;
	bool known = size > 0 && pos >= 0;
	progress__line(path, known ? (uint64_t)pos : 0, known ? (uint64_t)size : 0,
		       r->st.packets);
}

static long file_size(const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : NULL;
	if (!f)
		return -1;
	long s = -1;
	if (fseek(f, 0, SEEK_END) == 0)
		s = ftell(f);
	fclose(f);
	return s;
}

/* Read one file into the workers' batches. 0 when the file was read to its end. */
static int read_file(struct pcapfile_reader *r, struct wstate *ws, const char *path,
		     uint64_t *clock)
{
	pcap_t *p;
	char *iobuf;
	int rc = open_capture(path, r->bpf_filter, &p, &iobuf);
	if (rc) {
		free(iobuf);
		return rc;
	}
	int dlt = pcap_datalink(p);
	long size = r->progress ? file_size(path) : -1;
	path = input_name(path);
	uint64_t next_progress = monotime__ms() + PROGRESS_PERIOD_MS;
	uint64_t record = 0;
	struct pcap_pkthdr *h;
	const u_char *data;
	int nx;

	while ((nx = pcap_next_ex(p, &h, &data)) == 1) {
		record++;
		r->st.packets++;
		r->st.bytes += h->len;
		uint64_t ts = (uint64_t)h->ts.tv_sec * SVC_US_PER_SEC + (uint64_t)h->ts.tv_usec;
		if (ts > *clock)
			*clock = ts; /* packet time only moves forward for expiry */

		struct pkt_view pv;
		enum decode_result dr = decode__frame(dlt, data, h->caplen, h->len, ts, -1, &pv);
		r->st.decode[dr]++;
		if (dr == DECODE_OK)
			dispatch(r, ws, &pv, *clock, NULL);
		if ((record & 1023) == 0) {
			flush_idle(r, ws, *clock);
			if (atomic_load_explicit(r->stop, memory_order_relaxed))
				break;
			if (r->progress && monotime__ms() >= next_progress) {
				progress(r, p, path, size);
				next_progress = monotime__ms() + PROGRESS_PERIOD_MS;
			}
		}
	}
	if (r->progress)
		progress__clear();
	if (nx == PCAP_ERROR) {
		/* libpcap: "truncated dump file; tried to read N captured bytes, only got M" */
		svc_err("%s: record %llu: %s (%llu records read before it are kept)", path,
			(unsigned long long)record + 1, pcap_geterr(p), (unsigned long long)record);
		r->st.truncated = true;
		rc = -EIO;
	}
	pcap_close(p);
	free(iobuf);
	return rc;
}

/* Walk the mapped files (pcapscan.h) into the workers' batches, without copying packets. */
static void read_mapped(struct pcapfile_reader *r, struct wstate *ws, uint64_t *clock)
{
	struct pcapscan_cursor cur;
	struct pkt_view pv[256];
	int n;
	pcapscan__cursor_init(&cur, r->scan);
	for (;;) {
		/* A batch sent while these packets are dispatched must carry the clock at the
		 * packet being dispatched, not the clock after the whole walk (the worker expires
		 * its flows at the batch's clock before it sees the packets still to come). */
		uint64_t at = *clock;
		if ((n = pcapscan__next(&cur, pv, SVC_ARRAY_LEN(pv), clock)) < 0)
			break;
		for (int i = 0; i < n; i++) {
			if (pv[i].ts_us > at)
				at = pv[i].ts_us;
			dispatch(r, ws, &pv[i], at, cur.win);
		}
		flush_idle(r, ws, *clock);
	}
	r->st = cur.st;
	r->error = cur.error;
}

void *pcapfile__run(void *arg)
{
	struct pcapfile_reader *r = arg;
	struct wstate *ws = calloc(r->n_workers, sizeof(*ws));
	uint64_t clock = 0;
	if (!ws) {
		r->error = -ENOMEM;
		svc_err("reader: out of memory");
	}
	if (ws && r->scan && r->n_files)
		read_mapped(r, ws, &clock);
	for (unsigned i = 0; ws && !r->scan && i < r->n_files; i++) {
		if (atomic_load(r->stop))
			break;
		int rc = read_file(r, ws, r->files[i], &clock);
		if (rc) {
			r->st.files_failed++;
			if (!r->error)
				r->error = rc;
		} else {
			r->st.files_ok++;
		}
	}
	r->st.last_ts_us = clock;
	/* Every worker gets a last batch (with what is pending) even after an error. */
	for (unsigned w = 0; w < r->n_workers; w++) {
		struct wstate none = {0};
		send_batch(&r->chans[w], ws ? &ws[w] : &none, clock, true);
	}
	free(ws);
	return NULL;
}
