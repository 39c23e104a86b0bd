/* test_readers.c - suite readers: the two offline inputs give the same result.
 *
 * A classic pcap given by name is walked by every worker itself through mapped windows
 * (src/input/pcapscan.c); the same bytes through a pipe (-r -) go through libpcap in the
 * reader thread (src/input/pcapfile.c). Both runs of the real binary must export the same
 * flows (every column but the id), count the same packets and decode results, end with the
 * same status and, for a damaged file, say the same thing about it. The pipe is a FIFO the
 * test makes and feeds from a thread, so svcsensor reads a real pipe. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"
#include "svcsensor/pcapscan.h"

TestSuite(readers, .timeout = 120);

#define RUN_TIMEOUT_MS 60000u

struct feeder {
	pthread_t thread;
	const char *fifo, *src;
};

/* Copy src into the FIFO; svcsensor may stop reading early (a damaged file): EPIPE ends it. */
static void *feed(void *arg)
{
	struct feeder *f = arg;
	int out = open(f->fifo, O_WRONLY), in = open(f->src, O_RDONLY);
	char buf[65536];
	ssize_t n;
	while (out >= 0 && in >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return NULL;
}

struct run {
	struct e2e_proc p;
	struct e2e_csv csv;
	struct e2e_strs rows;
	char *err;
};

/* How the capture reaches svcsensor. */
enum input { BY_NAME, STDIN_PIPE, NAMED_PIPE };

/* One run in dir: -r FILE, or FILE behind a FIFO given as -r - (standard input) or by its
 * path. */
static void run_one(const char *dir, const char *abs, enum input how, const char *threads,
		    const char *filter, struct run *r)
{
	bool piped = how != BY_NAME;
	struct e2e_argv a = {0};
	char *flows = e2e_path(dir, piped ? "pipe.csv" : "file.csv");
	char *errp = e2e_path(dir, piped ? "pipe.err" : "file.err");
	char *fifo = e2e_path(dir, "fifo");
	struct feeder fd = {.fifo = fifo, .src = abs};
	const char *bin = e2e_bin();
	cr_assert_not_null(bin, "svcsensor binary not found: set SVCSENSOR_BIN or build it");

	e2e_argv_add(&a, bin);
	e2e_argv_add(&a, "-r");
	e2e_argv_add(&a, how == BY_NAME ? abs : how == STDIN_PIPE ? "-" : fifo);
	e2e_argv_add(&a, "-t");
	e2e_argv_add(&a, threads);
	if (filter) {
		e2e_argv_add(&a, "-f");
		e2e_argv_add(&a, filter);
	}
	e2e_argv_add(&a, "-o");
	e2e_argv_add(&a, flows);
	e2e_argv_quiet_outputs(&a, dir);

	if (piped) {
		signal(SIGPIPE, SIG_IGN); /* svcsensor may close a damaged capture early */
		unlink(fifo);
		cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo %s: %s", fifo, strerror(errno));
		cr_assert_eq(pthread_create(&fd.thread, NULL, feed, &fd), 0);
	}
	pid_t pid;
	int rc = e2e_spawn_in(a.v, dir, how == STDIN_PIPE ? fifo : NULL, NULL, errp, &pid);
	cr_assert_eq(rc, 0, "cannot start svcsensor: %s", strerror(-rc));
	rc = e2e_wait(pid, RUN_TIMEOUT_MS, &r->p);
	cr_assert_eq(rc, 0, "waitpid: %s", strerror(-rc));
	if (piped)
		pthread_join(fd.thread, NULL);
	r->err = e2e_slurp(errp, NULL);
	if (!r->err)
		r->err = strdup("");
	cr_assert(!r->p.timed_out && !r->p.signal, "%s (%s): %s\n%s", abs, piped ? "pipe" : "file",
		  e2e_proc_str(&r->p), r->err);
	memset(&r->csv, 0, sizeof(r->csv));
	memset(&r->rows, 0, sizeof(r->rows));
	if (e2e_csv_load(flows, &r->csv) == 0) {
		for (size_t i = 0; i < r->csv.nrows; i++)
			e2e_strs_add(&r->rows, e2e_csv_join(r->csv.rows[i], 1, r->csv.rlen[i]));
		e2e_strs_sort(&r->rows);
	}
	e2e_argv_free(&a);
	free(flows);
	free(errp);
	free(fifo);
}

static void run_free(struct run *r)
{
	e2e_csv_free(&r->csv);
	e2e_strs_free(&r->rows);
	free(r->err);
}

/* The stderr line that starts with prefix, with the input's name replaced by "INPUT", or "". */
static char *line_with(const char *err, const char *what, const char *name)
{
	const char *at = strstr(err, what);
	if (!at)
		return strdup("");
	const char *b = at;
	while (b > err && b[-1] != '\n')
		b--;
	const char *e = strchr(at, '\n');
	size_t len = e ? (size_t)(e - b) : strlen(b);
	char *l = strndup(b, len), *n = name ? strstr(l, name) : NULL;
	if (n) {
		char *out = NULL;
		cr_assert(asprintf(&out, "%.*sINPUT%s", (int)(n - l), l, n + strlen(name)) > 0);
		free(l);
		return out;
	}
	return l;
}

static void same_as(const char *rel, const char *threads, const char *filter, enum input how)
{
	char *abs = e2e_abspath(rel);
	cr_assert_not_null(abs, "%s not found (the suite runs from the repository root)", rel);
	char *dir = e2e_mkdtemp("readers");
	cr_assert_not_null(dir, "mkdtemp: %s", strerror(errno));
	struct run file, pipe;
	run_one(dir, abs, BY_NAME, threads, filter, &file);
	run_one(dir, abs, how, threads, filter, &pipe);

	cr_expect_eq(file.p.status, pipe.p.status, "%s -t %s: exit %d by name, %d through a pipe\n"
		     "file:\n%s\npipe:\n%s", rel, threads, file.p.status, pipe.p.status, file.err,
		     pipe.err);
	size_t d = e2e_strs_first_diff(&file.rows, &pipe.rows);
	cr_expect(d == file.rows.n && file.rows.n == pipe.rows.n,
		  "%s -t %s%s%s: %zu flows by name, %zu through a pipe; first difference at sorted "
		  "row %zu:\n  file: %s\n  pipe: %s",
		  rel, threads, filter ? " -f " : "", filter ? filter : "", file.rows.n,
		  pipe.rows.n, d + 1, d < file.rows.n ? file.rows.v[d] : "(none)",
		  d < pipe.rows.n ? pipe.rows.v[d] : "(none)");
	/* the input's counters: "packets N, decoded M[, <decode result> K ...]" */
	char *fl = line_with(file.err, "svcsensor: packets ", NULL),
	     *pl = line_with(pipe.err, "svcsensor: packets ", NULL);
	cr_expect(*fl && !strcmp(fl, pl), "%s: input counters differ:\n  file: %s\n  pipe: %s", rel,
		  fl, pl);
	/* a damaged file: the same reason, with the same record number */
	char *fifo = e2e_path(dir, "fifo");
	char *fr = line_with(file.err, ": record ", abs),
	     *pr = line_with(pipe.err, ": record ", how == STDIN_PIPE ? "standard input" : fifo);
	free(fifo);
	cr_expect_str_eq(fr, pr, "%s: the damage is reported differently:\n  file: %s\n  pipe: %s",
			 rel, fr, pr);
	cr_log_info("[readers] %s -t %s%s%s: %zu flows, \"%s\"%s%s", rel, threads,
		    filter ? " -f " : "", filter ? filter : "", file.rows.n, fl + 11,
		    *fr ? ", " : "", fr);
	free(fl);
	free(pl);
	free(fr);
	free(pr);
	run_free(&file);
	run_free(&pipe);
	e2e_rmtree(dir);
	free(dir);
	free(abs);
}

static void same(const char *rel, const char *threads, const char *filter)
{
	same_as(rel, threads, filter, STDIN_PIPE);
}

Test(readers, baseline_t1)
{
	same("pcaps/baseline.pcap", "1", NULL);
}

Test(readers, baseline_t2)
{
	same("pcaps/baseline.pcap", "2", NULL);
}

Test(readers, anomalies_t4)
{
	same("pcaps/anomalies.pcap", "4", NULL);
}

Test(readers, capture_filter)
{
	same("pcaps/anomalies.pcap", "2", "udp or (tcp and port 443)");
}

/* A named pipe given by its path (mkfifo): read once, through libpcap, like -r -. */
Test(readers, named_pipe)
{
	same_as("pcaps/baseline.pcap", "2", NULL, NAMED_PIPE);
	same_as("pcaps/edge/truncated.pcap", "2", NULL, NAMED_PIPE);
}

Test(readers, edge_captures)
{
	static const char *const files[] = {
	    "pcaps/edge/frag.pcap",	"pcaps/edge/ipv6.pcap",	   "pcaps/edge/nsec_be.pcap",
	    "pcaps/edge/qinq.pcap",	"pcaps/edge/raw.pcap",	   "pcaps/edge/sll.pcap",
	    "pcaps/edge/sll2.pcap",	"pcaps/edge/snaplen.pcap", "pcaps/edge/truncated.pcap",
	    "pcaps/edge/vlan.pcap",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++)
		same(files[i], "2", NULL);
}

Test(readers, damaged_captures)
{
	static const char *const files[] = {
	    "pcaps/malformed/huge_caplen.pcap",	      "pcaps/malformed/record_header_cut.pcap",
	    "pcaps/malformed/caplen_gt_snaplen.pcap", "pcaps/malformed/caplen_gt_wirelen.pcap",
	    "pcaps/malformed/short_frames.pcap",      "pcaps/malformed/header_only.pcap",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++)
		same(files[i], "2", NULL);
}

/* -r - on a terminal or on bytes that are no capture: one line naming the standard input,
 * exit 2, nothing read. */
static void stdin_refused(const char *in_path, const char *expect)
{
	char *dir = e2e_mkdtemp("readers");
	cr_assert_not_null(dir, "mkdtemp: %s", strerror(errno));
	char *errp = e2e_path(dir, "err");
	struct e2e_argv a = {0};
	const char *bin = e2e_bin();
	cr_assert_not_null(bin, "svcsensor binary not found: set SVCSENSOR_BIN or build it");
	e2e_argv_add(&a, bin);
	e2e_argv_add(&a, "-r");
	e2e_argv_add(&a, "-");
	e2e_argv_quiet_outputs(&a, dir);
	pid_t pid;
	struct e2e_proc p;
	cr_assert_eq(e2e_spawn_in(a.v, dir, in_path, NULL, errp, &pid), 0);
	cr_assert_eq(e2e_wait(pid, RUN_TIMEOUT_MS, &p), 0);
	char *err = e2e_slurp(errp, NULL);
	cr_assert_not_null(err);
	cr_expect_eq(p.status, 2, "%s: %s\n%s", in_path, e2e_proc_str(&p), err);
	cr_expect(strstr(err, expect) != NULL, "no \"%s\" in:\n%s", expect, err);
	free(err);
	free(errp);
	e2e_argv_free(&a);
	e2e_rmtree(dir);
	free(dir);
}

Test(readers, stdin_terminal_is_refused)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	cr_assert_geq(m, 0, "posix_openpt: %s", strerror(errno));
	cr_assert_eq(grantpt(m), 0);
	cr_assert_eq(unlockpt(m), 0);
	char *slave = ptsname(m);
	cr_assert_not_null(slave);
	stdin_refused(slave, "svcsensor: standard input: is a terminal, not a capture");
	close(m);
}

Test(readers, stdin_not_a_capture_is_refused)
{
	char *abs = e2e_abspath("pcaps/README.md");
	cr_assert_not_null(abs, "pcaps/README.md not found (the suite runs from the repository root)");
	stdin_refused(abs, "svcsensor: standard input: cannot read capture: ");
	free(abs);
}

/* A capture cut shorter while it is walked mapped (rewritten in place, truncated by a
 * rotation): the next read of a lost page raises SIGBUS; the sensor says so in one line and
 * ends with status 2 instead of dumping core. The walk runs in a child process. */
Test(readers, file_cut_while_mapped_stops_cleanly)
{
	char *src = e2e_abspath("pcaps/baseline.pcap");
	cr_assert_not_null(src, "pcaps/baseline.pcap not found (the suite runs from the repository root)");
	char *dir = e2e_mkdtemp("readers"), *path = e2e_path(dir, "cut.pcap");
	char *errp = e2e_path(dir, "err");
	size_t len = 0;
	char *bytes = e2e_slurp(src, &len);
	cr_assert_not_null(bytes);
	cr_assert_gt(len, 2u << 20, "the test needs a capture over two 1 MiB windows");
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(bytes, 1, len, f), len);
	fclose(f);

	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(100);
		const char *files[] = {path};
		atomic_bool stop;
		atomic_init(&stop, false);
		struct pcapscan s;
		if (pcapscan__open(&s, files, 1, NULL, &stop, false) != 1)
			_exit(101);
		struct pcapscan_cursor c;
		struct pkt_view pv[64];
		uint64_t clock = 0;
		pcapscan__cursor_init(&c, &s);
		if (pcapscan__next(&c, pv, 64, &clock) < 0) /* the first window is mapped */
			_exit(102);
		if (truncate(path, 4096) != 0)
			_exit(103);
		while (pcapscan__next(&c, pv, 64, &clock) >= 0)
			;
		_exit(104); /* the walk ended normally over a file cut to 4 KiB */
	}
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	char *err = e2e_slurp(errp, NULL);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "child: status 0x%x, stderr:\n%s", st,
		  err ? err : "");
	cr_assert(err && strstr(err, "svcsensor: a capture file shrank while it was being read"),
		  "stderr: %s", err ? err : "(none)");
	free(err);
	free(bytes);
	free(src);
	free(path);
	free(errp);
	e2e_rmtree(dir);
	free(dir);
}

/* The comparisons above mean something only if a capture given by name really is walked
 * mapped: pcapscan takes every classic pcap we ship and leaves pcapng, pipes and the
 * standard input to libpcap. */
Test(readers, classic_pcaps_are_walked_mapped)
{
	static const char *const mapped[] = {
	    "pcaps/baseline.pcap",     "pcaps/anomalies.pcap",	"pcaps/edge/nsec_be.pcap",
	    "pcaps/edge/sll2.pcap",    "pcaps/edge/truncated.pcap", "pcaps/edge/vlan.pcap",
	    "pcaps/malformed/huge_caplen.pcap",
	};
	static const char *const not_mapped[] = {"pcaps/edge/pcapng.pcapng", "-"};
	atomic_bool stop;
	atomic_init(&stop, false);
	for (size_t i = 0; i < sizeof(mapped) / sizeof(*mapped); i++) {
		char *abs = e2e_abspath(mapped[i]);
		cr_assert_not_null(abs, "%s not found (the suite runs from the repository root)",
				   mapped[i]);
		const char *files[] = {abs};
		struct pcapscan s;
		cr_assert_eq(pcapscan__open(&s, files, 1, NULL, &stop, false), 1,
			     "%s is not walked mapped", mapped[i]);
		pcapscan__close(&s);
		free(abs);
	}
	for (size_t i = 0; i < sizeof(not_mapped) / sizeof(*not_mapped); i++) {
		char *abs = strcmp(not_mapped[i], "-") ? e2e_abspath(not_mapped[i]) : strdup("-");
		cr_assert_not_null(abs);
		const char *files[] = {abs};
		struct pcapscan s;
		cr_assert_eq(pcapscan__open(&s, files, 1, NULL, &stop, false), 0,
			     "%s should go through libpcap", not_mapped[i]);
		free(abs);
	}
	/* one file that cannot be mapped sends the whole list through libpcap, in order */
	char *a = e2e_abspath("pcaps/baseline.pcap"), *b = e2e_abspath("pcaps/edge/pcapng.pcapng");
	const char *both[] = {a, b};
	struct pcapscan s;
	cr_assert_eq(pcapscan__open(&s, both, 2, NULL, &stop, false), 0);
	free(a);
	free(b);
}
