/* pcapfile.c - the libpcap input: whatever libpcap reads (pcapng, pipes, the standard input),
 * decoded by a reader thread and handed to the workers in batches (pktfeed.h). */
#include "svcsensor/pcapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

/* A capture read from a pipe: the standard input or a named pipe. Its FILE reads through
 * stream_read, which waits in poll(2) and never in read(2): a writer that goes quiet (or never
 * closes) neither holds the stop flag off nor keeps the packets read so far from the workers.
 * Regular files keep a plain FILE (no poll per read). */
struct stream {
	int fd;
	bool own_fd;	       /* a named pipe opened here (the standard input is not ours) */
	struct pcap_input *r;  /* its stop flag and packet channels */
	const uint64_t *clock; /* the reader's packet clock */
	bool stopped;	       /* the read ended on the stop flag */
};

/* How long a read waits for the pipe before it looks at the stop flag again. */
#define STREAM_WAIT_MS 100

/* The writer is quiet: every packet read so far goes to its worker now, and every worker
 * gets the packet clock (a closed flow in its linger ends there), so the flows that finished
 * reach the outputs while the pipe waits. */
static void stream_idle(struct stream *s)
{
	pktfeed__flush_pending(&s->r->feed, *s->clock);
}

static ssize_t stream_read(void *cookie, char *buf, size_t size)
{
	struct stream *s = cookie;
	bool idle = false;
	for (;;) {
		if (atomic_load_explicit(s->r->stop, memory_order_relaxed)) {
			s->stopped = true;
			return 0; /* an end of file: libpcap ends at the record boundary */
		}
		struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
		int n = poll(&pfd, 1, STREAM_WAIT_MS);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n == 0 && !idle) {
			/* The writer is quiet: what was read so far goes to the workers now. */
			stream_idle(s);
			idle = true;
		}
		if (n <= 0)
			continue;
		ssize_t got = read(s->fd, buf, size);
		if (got >= 0)
			return got;
		if (errno != EAGAIN && errno != EINTR)
			return -1;
	}
}

static int stream_close(void *cookie)
{
	struct stream *s = cookie;
	if (s->own_fd)
		close(s->fd);
	s->own_fd = false;
	return 0;
}

/* The FILE of one capture: a plain one for a regular file (and for the check, s NULL), a
 * polled one (s) for the standard input or a named pipe that is not a regular file. A named
 * pipe is opened without waiting for its writer (the poll waits, and sees the stop flag).
 * NULL with errno set when it cannot be opened. */
static FILE *open_stream(const char *arg, struct stream *s)
{
	bool is_stdin = strcmp(arg, "-") == 0;
	struct stat st;
	if (!s)
		return is_stdin ? stdin : fopen(arg, "rb");
	if (is_stdin ? fstat(STDIN_FILENO, &st) != 0 || S_ISREG(st.st_mode)
		     : stat(arg, &st) != 0 || !S_ISFIFO(st.st_mode))
		return is_stdin ? stdin : fopen(arg, "rb");
	s->fd = is_stdin ? STDIN_FILENO : open(arg, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (s->fd < 0)
		return NULL;
	s->own_fd = !is_stdin;
	cookie_io_functions_t io = {.read = stream_read, .close = stream_close};
	FILE *f = fopencookie(s, "rb", io);
	if (!f) {
		int e = errno;
		stream_close(s);
		errno = e;
	}
	return f;
}

/* Open a capture for reading (s: see open_stream). *iobuf (NULL or a buffer) must be freed
 * after pcap_close. -ECANCELED without a message when a pipe's read ended on the stop flag
 * before its header was read. */
static int open_capture(const char *arg, const char *filter, pcap_t **out, char **iobuf,
			struct stream *s)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = NULL;
	const char *path = input_name(arg);
	FILE *f = open_stream(arg, s);

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
	if (!p && s && s->stopped) {
		free(*iobuf);
		*iobuf = NULL;
		return -ECANCELED;
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
		int e = open_capture(files[i], bpf_filter, &p, &iobuf, NULL);
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

/* Size of a regular file (the progress line's percentage), -1 for anything else: a named
 * pipe must not be opened again (that would wait for a writer). */
static long file_size(const char *path)
{
	struct stat st;
	if (strcmp(path, "-") == 0 || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return -1;
	return (long)st.st_size;
}

/* The end of one file's read: the progress line cleared, a broken record reported (file,
 * record number, libpcap's reason; what was read before it is kept). 0 or -EIO. */
static int read_end(struct pcap_input *r, pcap_t *p, const char *path, int nx, uint64_t record,
		    bool stopped)
{
	if (r->progress)
		progress__clear();
	if (stopped)
		r->st.stopped = true; /* a record cut by the stop is no error */
	if (nx != PCAP_ERROR || stopped)
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
	struct stream s = {.fd = -1, .r = r, .clock = clock};
	int rc = open_capture(path, r->bpf_filter, &p, &iobuf, &s);
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
	rc = read_end(r, p, path, nx, record, s.stopped);
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
		if (rc == -ECANCELED) {
			r->st.stopped = true; /* stopped while waiting for a pipe's header */
			break;
		}
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
