/* pcapfile.c - the libpcap input: whatever libpcap reads (pcapng, pipes, the standard input),
 * decoded by a reader thread and handed to the workers in batches (pktfeed.h). */
#include "svcsensor/pcapfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "svcsensor/common.h"
#include "svcsensor/config.h"
#include "svcsensor/input.h"
#include "svcsensor/monotime.h"
#include "svcsensor/pktfeed.h"
#include "svcsensor/progress.h"

struct pcap_input {
	struct input in;
	const char *const *files;
	unsigned n_files;
	const char *bpf_filter;
	atomic_bool *stop;
	bool progress;
	struct pktfeed feed;
	struct input_stats st; /* written by the reader thread, read after it was joined */
};

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

static void progress(const struct pcap_input *r, pcap_t *p, const char *path, long size)
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

/* The end of one file's read: the progress line cleared, a broken record reported (file,
 * record number, libpcap's reason; what was read before it is kept). 0 or -EIO. */
static int read_end(const struct pcap_input *r, pcap_t *p, const char *path, int nx,
		    uint64_t record)
{
	if (r->progress)
		progress__clear();
	if (nx != PCAP_ERROR)
		return 0;
	/* libpcap: "truncated dump file; tried to read N captured bytes, only got M" */
	svc_err("%s: record %llu: %s (%llu records read before it are kept)", path,
		(unsigned long long)record + 1, pcap_geterr(p), (unsigned long long)record);
	return -EIO;
}

/* Read one file into the workers' batches. 0 when the file was read to its end. */
static int read_file(struct pcap_input *r, const char *path, uint64_t *clock)
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
	uint64_t next_progress = monotime__ms() + PROGRESS_PERIOD_MS, record = 0;
	struct pcap_pkthdr *h;
	const u_char *data;
	int nx;

	while ((nx = pcap_next_ex(p, &h, &data)) == 1) {
		record++;
		uint64_t ts = (uint64_t)h->ts.tv_sec * SVC_US_PER_SEC + (uint64_t)h->ts.tv_usec;
		if (ts > *clock)
			*clock = ts; /* packet time only moves forward for expiry */
		struct pkt_view pv;
		if (input__decode(&r->st, dlt, data, h->caplen, h->len, ts, -1, &pv))
			pktfeed__dispatch(&r->feed, &pv, *clock, NULL);
		if ((record & 1023) == 0) {
			pktfeed__flush_idle(&r->feed, *clock);
			if (atomic_load_explicit(r->stop, memory_order_relaxed)) {
				r->st.stopped = true;
				break;
			}
			if (r->progress && monotime__ms() >= next_progress) {
				progress(r, p, path, size);
				next_progress = monotime__ms() + PROGRESS_PERIOD_MS;
			}
		}
	}
	rc = read_end(r, p, path, nx, record);
	pcap_close(p);
	free(iobuf);
	return rc;
}

/* The reader thread: every file in order, then a last batch to every worker. */
static void *reader_run(void *arg)
{
	struct pcap_input *r = arg;
	uint64_t clock = 0;
	for (unsigned i = 0; i < r->n_files; i++) {
		if (atomic_load(r->stop)) {
			r->st.stopped = true;
			break;
		}
		int rc = read_file(r, r->files[i], &clock);
		if (rc) {
			r->st.files_failed++;
			if (!r->st.error)
				r->st.error = rc;
		} else {
			r->st.files_ok++;
		}
	}
	/* Every worker gets a last batch (with what is pending) even after an error. */
	pktfeed__end(&r->feed, clock);
	return NULL;
}

static int libpcap_start(struct input *in, unsigned n_started)
{
	struct pcap_input *r = (struct pcap_input *)in;
	return pktfeed__start(&r->feed, n_started, reader_run, r);
}

static void libpcap_run(struct input *in, struct worker *w)
{
	pktfeed__drain(&((struct pcap_input *)in)->feed, w);
}

static void libpcap_wait(struct input *in)
{
	pktfeed__join(&((struct pcap_input *)in)->feed);
}

static void libpcap_stats(struct input *in, struct input_stats *st)
{
	*st = ((struct pcap_input *)in)->st;
}

static void libpcap_close(struct input *in)
{
	struct pcap_input *r = (struct pcap_input *)in;
	pktfeed__destroy(&r->feed);
	free(r);
}

static const struct input_ops libpcap_ops = {
    .name = "libpcap",
    .start = libpcap_start,
    .run = libpcap_run,
    .wait = libpcap_wait,
    .stats = libpcap_stats,
    .close = libpcap_close,
};

int input_pcap__open(const struct input_args *a, struct input **out)
{
	struct pcap_input *r = calloc(1, sizeof(*r));
	if (!r) {
		svc_err("reader: out of memory");
		return -ENOMEM;
	}
	r->in.ops = &libpcap_ops;
	r->in.n_workers = a->threads;
	r->files = a->files;
	r->n_files = a->n_files;
	r->bpf_filter = a->cfg->bpf_filter;
	r->stop = a->stop;
	r->progress = a->progress;
	int rc = pktfeed__init(&r->feed, a->threads);
	if (rc) {
		libpcap_close(&r->in);
		return rc;
	}
	*out = &r->in;
	return 0;
}
