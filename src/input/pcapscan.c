/* pcapscan.c - classic pcap files walked through mapped, reference-counted windows. */
#include "svcsensor/pcapscan.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "svcsensor/common.h"
#include "svcsensor/monotime.h"
#include "svcsensor/progress.h"

#define FILE_HDR 24u
#define REC_HDR 16u
/* libpcap's MAXIMUM_SNAPLEN: the largest record it accepts for the link types we decode. */
#define MAX_CAPLEN 262144u
/* A window holds any record that starts in its first page (1 MiB > 4 KiB + 16 + 262144).
 * Small, because its pages count in the resident size while it is mapped. */
#define WINDOW (1u << 20)
/* Records walked per call at most: the caller expires flows this often. */
#define WALK_MAX 1024u
/* Prefetch the file this far ahead of the record being read: the walk follows a chain of
 * record lengths, and without it every record header is a memory round trip. */
#define PREFETCH_AHEAD 4096u

#define MAGIC_US 0xa1b2c3d4u
#define MAGIC_NS 0xa1b23c4du

struct pcapscan_file {
	const char *path;
	int fd;
	uint64_t size;
	int dlt;
	uint32_t snapshot;
	bool swapped, nsec;
	bool has_filter;
	struct bpf_program prog;
};

static inline uint32_t rd32(const uint8_t *p, bool swapped)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return swapped ? __builtin_bswap32(v) : v;
}

/* 1 when f (already opened) is a classic pcap 2.4 file we can walk; fills magic fields. */
static int classic_pcap(struct pcapscan_file *f)
{
	uint8_t h[FILE_HDR];
	struct stat st;
	if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	if (pread(f->fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return 0;
	uint32_t magic;
	memcpy(&magic, h, 4);
	if (magic == MAGIC_US || magic == MAGIC_NS) {
		f->swapped = false;
	} else if (magic == __builtin_bswap32(MAGIC_US) || magic == __builtin_bswap32(MAGIC_NS)) {
		f->swapped = true;
		magic = __builtin_bswap32(magic);
	} else {
		return 0; /* pcapng, Kuznetzov's format, ... */
	}
	f->nsec = magic == MAGIC_NS;
	uint16_t major, minor;
	memcpy(&major, h + 4, 2);
	memcpy(&minor, h + 6, 2);
	if (f->swapped) {
		major = __builtin_bswap16(major);
		minor = __builtin_bswap16(minor);
	}
	/* 2.3 and older may have caplen and len swapped: libpcap's business */
	if (major != 2 || minor != 4)
		return 0;
	f->size = (uint64_t)st.st_size;
	return 1;
}

/* Link type, snapshot and the compiled filter, from libpcap itself. 0 or -EINVAL. */
static int libpcap_facts(struct pcapscan_file *f, const char *filter)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = pcap_open_offline(f->path, errbuf);
	if (!p) {
		svc_err("%s: cannot read capture: %s", f->path, errbuf);
		return -EINVAL;
	}
	f->dlt = pcap_datalink(p);
	f->snapshot = (uint32_t)pcap_snapshot(p);
	if (f->snapshot == 0 || f->snapshot > MAX_CAPLEN)
		f->snapshot = MAX_CAPLEN;
	int rc = 0;
	if (filter && *filter) {
		if (pcap_compile(p, &f->prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
			svc_err("capture filter \"%s\": %s", filter, pcap_geterr(p));
			rc = -EINVAL;
		} else {
			f->has_filter = true;
		}
	}
	pcap_close(p);
	return rc;
}

/* A mapped page whose file was cut under it (truncated or rewritten in place while being
 * read) raises SIGBUS on the thread that touches it, possibly inside nDPI: there is no safe
 * way back into that code, so say what happened in one line and stop with status 2 instead
 * of dumping core. */
static struct sigaction sigbus_before;
static unsigned sigbus_users;

static void on_sigbus(int sig)
{
	static const char msg[] = SVC_PROG ": a capture file shrank while it was being read (it was "
				  "truncated or rewritten in place); stopping\n";
	(void)sig;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(2);
}

static void sigbus_hold(void)
{
	if (sigbus_users++ == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_sigbus;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, &sigbus_before);
	}
}

static void sigbus_drop(void)
{
	if (sigbus_users && --sigbus_users == 0)
		sigaction(SIGBUS, &sigbus_before, NULL);
}

int pcapscan__open(struct pcapscan *s, const char *const *files, unsigned n,
		   const char *bpf_filter, atomic_bool *stop, bool progress)
{
	memset(s, 0, sizeof(*s));
	if (!n)
		return 0;
	s->files = calloc(n, sizeof(*s->files));
	if (!s->files)
		return 0; /* the reader thread needs less */
	s->stop = stop;
	s->progress = progress;
	for (unsigned i = 0; i < n; i++) {
		struct pcapscan_file *f = &s->files[s->n_files];
		f->path = files[i];
		if (strcmp(files[i], "-") == 0)
			break; /* the standard input: a pipe, maybe */
		/* Only regular files: opening a named pipe here would take its first reader. */
		struct stat st;
		if (stat(files[i], &st) != 0 || !S_ISREG(st.st_mode))
			break;
		f->fd = open(files[i], O_RDONLY | O_CLOEXEC);
		if (f->fd < 0)
			break;
		s->n_files++;
		if (!classic_pcap(f))
			break;
		int rc = libpcap_facts(f, bpf_filter);
		if (rc) {
			pcapscan__close(s);
			return rc;
		}
		if (i + 1 == n) {
			s->walkable = true;
			sigbus_hold();
			return 1; /* every file can be walked */
		}
	}
	pcapscan__close(s);
	return 0;
}

void pcapscan__close(struct pcapscan *s)
{
	if (s->files && s->n_files && s->walkable)
		sigbus_drop();
	for (unsigned i = 0; i < s->n_files; i++) {
		if (s->files[i].has_filter)
			pcap_freecode(&s->files[i].prog);
		close(s->files[i].fd);
	}
	free(s->files);
	s->files = NULL;
	s->n_files = 0;
}

void pcapscan__cursor_init(struct pcapscan_cursor *c, const struct pcapscan *s)
{
	memset(c, 0, sizeof(*c));
	c->s = s;
	c->next_progress = monotime__ms() + PROGRESS_PERIOD_MS;
}

void pcapscan__win_hold(struct pcapscan_win *w)
{
	atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
}

void pcapscan__win_release(struct pcapscan_win *w)
{
	/* acq_rel: every read of the window by the releasing threads happens before munmap */
	if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) == 1) {
		munmap((void *)w->base, w->len);
		free(w);
	}
}

static void unmap(struct pcapscan_cursor *c)
{
	if (c->win)
		pcapscan__win_release(c->win);
	c->win = NULL;
}

/* Map the window that starts at the page holding c->off. 0 or negative errno. */
static int remap(struct pcapscan_cursor *c, const struct pcapscan_file *f)
{
	unmap(c);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t base = c->off & ~(page - 1);
	uint64_t len = f->size - base < WINDOW ? f->size - base : WINDOW;
	struct pcapscan_win *w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, f->fd, (off_t)base);
	if (m == MAP_FAILED) {
		int e = errno;
		free(w);
		return -e;
	}
	madvise(m, len, MADV_SEQUENTIAL); /* read-ahead for a file not yet in the page cache */
	w->base = m;
	w->off = base;
	w->len = len;
	atomic_init(&w->refs, 1);
	c->win = w;
	c->pf = c->off;
	return 0;
}

static void end_file(struct pcapscan_cursor *c, int rc);

/* Map the window for the record at c->off; a failure ends the file (reported). */
static void move_window(struct pcapscan_cursor *c, const struct pcapscan_file *f)
{
	int rc = remap(c, f);
	if (rc) {
		svc_err("%s: cannot map: %s", f->path, strerror(-rc));
		end_file(c, rc);
	}
}

/* The walk of the current file is over: rc 0 (read to its end, or stopped) or the error
 * that ended it (already reported by worker 0). */
static void end_file(struct pcapscan_cursor *c, int rc)
{
	unmap(c);
	if (rc) {
		c->st.files_failed++;
		if (!c->error)
			c->error = rc;
	} else {
		c->st.files_ok++;
	}
	c->file++;
	c->file_open = false;
}

/* The record at c->off is damaged: say so (file, record number, libpcap's words) and end
 * the file with what was read before it kept. */
static void record_error(struct pcapscan_cursor *c, const struct pcapscan_file *f,
			 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void record_error(struct pcapscan_cursor *c, const struct pcapscan_file *f,
			 const char *fmt, ...)
{
	char why[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	svc_err("%s: record %llu: %s (%llu records read before it are kept)", f->path,
		(unsigned long long)c->record + 1, why, (unsigned long long)c->record);
	end_file(c, -EIO);
}

static void progress(struct pcapscan_cursor *c, const struct pcapscan_file *f)
{
	progress__line(f->path, c->off, f->size, c->st.packets);
	c->next_progress = monotime__ms() + PROGRESS_PERIOD_MS;
}

/* Why the walk cannot take a record at c->off: the fast path's one answer is AT_RECORD. */
enum at {
	AT_RECORD,	/* a whole record in the mapped window */
	AT_FILE_END,	/* nothing left in the file */
	AT_SHORT_HDR,	/* the file ends inside a record header */
	AT_MOVE,	/* the record is not (all) in the window: map the next one */
	AT_BIG,		/* caplen above MAX_CAPLEN */
	AT_SHORT_DATA,	/* the file ends inside the record's data */
};

/* Look at the record at c->off: AT_RECORD and its header (*h) and caplen when it can be read
 * from the window, else what stands in the way. Keeps the file streaming into the cache ahead
 * of the walk (the prefetch covers the window only). */
static inline enum at record_at(struct pcapscan_cursor *c, const struct pcapscan_file *f,
				const uint8_t **h, uint32_t *caplen)
{
	uint64_t left = f->size - c->off;
	if (SVC_UNLIKELY(left < REC_HDR))
		return left ? AT_SHORT_HDR : AT_FILE_END;
	const struct pcapscan_win *w = c->win;
	if (SVC_UNLIKELY(!w || c->off < w->off || c->off + REC_HDR > w->off + w->len))
		return AT_MOVE;
	uint64_t win_end = w->off + w->len;
	uint64_t pf_end = c->off + PREFETCH_AHEAD < win_end ? c->off + PREFETCH_AHEAD : win_end;
	if (c->pf < c->off)
		c->pf = c->off;
	for (; c->pf < pf_end; c->pf += 64)
		__builtin_prefetch(w->base + (c->pf - w->off));

	*h = w->base + (c->off - w->off);
	*caplen = rd32(*h + 8, f->swapped);
	if (SVC_UNLIKELY(*caplen > MAX_CAPLEN))
		return AT_BIG;
	if (SVC_UNLIKELY(*caplen > left - REC_HDR))
		return AT_SHORT_DATA;
	if (SVC_UNLIKELY(c->off + REC_HDR + *caplen > win_end))
		return AT_MOVE;
	return AT_RECORD;
}

/* Act on what record_at found (not AT_RECORD): end the file, report a damaged record, or map
 * the window the record is in. The walk then looks again. */
static void step_over(struct pcapscan_cursor *c, const struct pcapscan_file *f, enum at at,
		      uint32_t caplen)
{
	uint64_t left = f->size - c->off;
	switch (at) {
	case AT_FILE_END:
		end_file(c, 0);
		break;
	case AT_SHORT_HDR:
		record_error(c, f, "truncated dump file; tried to read %u header bytes, only got %llu",
			     REC_HDR, (unsigned long long)left);
		break;
	case AT_BIG:
		record_error(c, f, "invalid packet capture length %u, bigger than snaplen of %u",
			     caplen, f->snapshot);
		break;
	case AT_SHORT_DATA: {
		uint64_t got = left - REC_HDR;
		uint32_t tried = caplen > f->snapshot && got < f->snapshot ? f->snapshot : caplen;
		record_error(c, f, "truncated dump file; tried to read %u captured bytes, only got %llu",
			     tried, (unsigned long long)got);
		break;
	}
	case AT_MOVE:
	case AT_RECORD:
		move_window(c, f);
		break;
	}
}

/* Walk the record at h (caplen from record_at): the fields as libpcap gives them (signed
 * 32-bit time), the capture filter, the clock, the decode. True when *v holds a packet. */
static inline bool take_record(struct pcapscan_cursor *c, const struct pcapscan_file *f,
			       const uint8_t *h, uint32_t caplen, struct pkt_view *v,
			       uint64_t *clock)
{
	int32_t sec = (int32_t)rd32(h, f->swapped), frac = (int32_t)rd32(h + 4, f->swapped);
	uint32_t wirelen = rd32(h + 12, f->swapped);
	const uint8_t *data = h + REC_HDR;
	uint32_t cap = caplen < f->snapshot ? caplen : f->snapshot;
	c->off += REC_HDR + caplen;
	c->record++;
	if (f->nsec)
		frac /= 1000;
	uint64_t ts = (uint64_t)(int64_t)sec * SVC_US_PER_SEC + (uint64_t)(int64_t)frac;
	if (f->has_filter) {
		struct pcap_pkthdr ph = {.caplen = cap, .len = wirelen};
		if (!pcap_offline_filter(&f->prog, &ph, data))
			return false;
	}
	if (ts > *clock)
		*clock = ts; /* packet time only moves forward for expiry */
	return input__decode(&c->st, f->dlt, data, cap, wirelen, ts, -1, v);
}

/* Before a call's walk: a stop ends the walk (the file being walked counts as read), and the
 * progress line is due once a second. */
static void before_walk(struct pcapscan_cursor *c)
{
	const struct pcapscan *s = c->s;
	if (c->file < s->n_files && atomic_load_explicit(s->stop, memory_order_relaxed)) {
		if (c->file_open)
			end_file(c, 0);
		c->file = s->n_files;
		c->st.stopped = true;
	}
	if (s->progress && c->file < s->n_files && monotime__ms() >= c->next_progress)
		progress(c, &s->files[c->file]);
}

int pcapscan__next(struct pcapscan_cursor *c, struct pkt_view *pv, unsigned max,
		   uint64_t *clock)
{
	const struct pcapscan *s = c->s;
	unsigned n = 0, walked = 0;

	if (c->done)
		return -1;
	before_walk(c);
	for (;;) {
		if (c->file >= s->n_files) {
			if (n)
				break;
			if (s->progress)
				progress__clear();
			c->done = true;
			return -1;
		}
		const struct pcapscan_file *f = &s->files[c->file];
		if (!c->file_open) {
			c->file_open = true;
			c->off = c->pf = FILE_HDR;
			c->record = 0;
		}
		if (n == max || walked == WALK_MAX)
			break;
		const uint8_t *h = NULL;
		uint32_t caplen = 0;
		enum at at = record_at(c, f, &h, &caplen);
		if (SVC_UNLIKELY(at != AT_RECORD)) {
			if (n) /* what was walked goes out first: the window may move */
				break;
			step_over(c, f, at, caplen);
			continue;
		}
		walked++;
		if (take_record(c, f, h, caplen, &pv[n], clock))
			n++;
	}
	return (int)n;
}
