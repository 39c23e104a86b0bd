/* test_live_replay.c - suite "live_replay": the real svcsensor binary capturing live on a veth
 * pair (tests/netns.{h,c}: a private namespace, va <-> vb) while tcpreplay plays the shipped
 * captures into va, compared with the same binary reading the same captures offline (-r).
 *
 *   replay_equals_offline_*   flows live = flows offline (5-tuple + VLAN, app, per-direction
 *                             packets and bytes), no flow split across the two workers, ring
 *                             packets = packets tcpreplay sent, no drops; fanout hash and ebpf
 *   learn_live_then_detect_live
 *                             --learn live on baseline.pcap, then detect live on
 *                             anomalies.pcap: same map and same verdicts as offline, every
 *                             planted anomaly of pcaps/anomalies.manifest.json found
 *   tiny_ring_reports_drops   a 2-page ring under a topspeed replay: drops > 0 in the summary
 *                             line and a warning, packets + drops accounted for
 *   bad_interface_one_line, bad_filter_one_line
 *   stats_lines_during_run    --stats 1 prints "svcsensor: stats:" lines while it runs
 *
 * Why --topspeed, and what may legitimately differ. The captures span an hour (baseline) and
 * 19 minutes (anomalies); replaying them in real time is out of the question for a test, so
 * they are played at top speed (≈ 0.05 s). That compresses every idle gap: flows that the
 * 120 s idle timeout ends offline end at shutdown live (end_reason differs and is not
 * compared), and a 5-tuple used again after a gap offline would be one flow live. So the
 * comparison is made per 5-tuple (+ VLAN, direction-free, "canonical"): live may have fewer
 * records than offline for a tuple (merged), never more (a record more means a flow split,
 * e.g. across the two workers), and never a tuple offline has not. Where offline has exactly
 * one flow for a tuple - every tuple of the shipped captures, as the test logs - the live record
 * must be that flow: same direction (source = first sender), same application, same packets and
 * bytes each way (IP bytes, VLAN- and padding-free, so they do not depend on capture) and, in
 * detect mode, the same verdict. Where offline has several, each live record's application
 * must be one of theirs. The live sensor's timestamps are the wall clock, so times are not
 * compared.
 *
 * Drops: the default ring is 64 blocks of 1 MiB per worker, larger than either capture, so a
 * replay cannot fill it even if the workers stalled: any drop there is a failure. The tiny
 * ring test is where drops are expected.
 *
 * Needs root, iproute2, tcpreplay, the pcaps and $SVCSENSOR_BIN (make test sets it); without
 * one of them every test is skipped with the reason. Nothing leaves the namespace; the
 * processes started are killed by pid and the namespace removed at the end of each test. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netns.h"

/* ------------------------------------------------------------ fixture */

static struct netns ns;
static char scratch[64]; /* per-test directory: outputs, configs, captured output */

static void ns_up(void)
{
	char why[512];

	scratch[0] = '\0';
	if (netns__setup(&ns, why, sizeof(why)) != 0)
		cr_skip_test("live_replay: %s", why);
	snprintf(scratch, sizeof(scratch), "/tmp/svcs-replay-%d-XXXXXX", (int)getpid());
	if (!mkdtemp(scratch)) {
		scratch[0] = '\0';
		netns__teardown(&ns);
		cr_skip_test("live_replay: cannot make a scratch directory in /tmp: %s",
			     strerror(errno));
	}
}

static void ns_down(void)
{
	netns__teardown(&ns); /* kills what is still running, by pid; removes the namespace */
	netns__remove_dir(scratch);
	scratch[0] = '\0';
}

TestSuite(live_replay, .init = ns_up, .fini = ns_down, .timeout = 90);

/* Criterion does not run .fini after a skip from the test body: clean up first. */
#define REPLAY_SKIP(...)                                                                           \
	do {                                                                                       \
		ns_down();                                                                         \
		cr_skip_test(__VA_ARGS__);                                                         \
	} while (0)

/* --duration of the live runs: the replay takes ~0.1 s after the rings are up; the rest is
 * margin for a loaded 2-core CI machine. A run that stops before tcpreplay has finished is
 * reported as such, not as a flow mismatch. */
#define LIVE_SECONDS "3"
#define LIVE_WAIT_MS 20000
#define LOCAL_NET "10.42.0.0/24" /* pcaps/README.md and the manifest's local_networks */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void spath(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", scratch, name);
}

/* ------------------------------------------------------------ what the tests need */

static const char *sensor_bin(void)
{
	static char bin[PATH_MAX];
	const char *env = getenv("SVCSENSOR_BIN");

	if (!env || !env[0])
		REPLAY_SKIP("live_replay: SVCSENSOR_BIN is not set (make test sets it): the "
			    "svcsensor end-to-end replay tests are skipped");
	if (access(env, X_OK) != 0 || !realpath(env, bin))
		REPLAY_SKIP("live_replay: SVCSENSOR_BIN=%s is not an executable", env);
	return bin;
}

static const char *tcpreplay_bin(void)
{
	static char exe[PATH_MAX];

	if (!netns__which("tcpreplay", exe, sizeof(exe)))
		REPLAY_SKIP("live_replay: tcpreplay is not installed (apt-get install tcpreplay)");
	return exe;
}

/* pcaps/NAME as an absolute path: $SVCSENSOR_PCAPS, else ./pcaps (make test runs at the top),
 * else next to the binary ($(BUILD)/svcsensor -> ../pcaps). */
static const char *find_pcap(const char *name, char *buf, size_t len)
{
	char try[PATH_MAX];
	const char *env = getenv("SVCSENSOR_PCAPS");
	const char *bin = getenv("SVCSENSOR_BIN");

	if (env && env[0])
		snprintf(try, sizeof(try), "%s/%s", env, name);
	else
		snprintf(try, sizeof(try), "pcaps/%s", name);
	if (access(try, R_OK) != 0 && bin && strrchr(bin, '/'))
		snprintf(try, sizeof(try), "%.*s/../pcaps/%s", (int)(strrchr(bin, '/') - bin), bin,
			 name);
	if (access(try, R_OK) != 0 || len < PATH_MAX || !realpath(try, buf))
		REPLAY_SKIP("live_replay: pcaps/%s not found (made by the pcap generator, `make "
			    "pcaps`; or set SVCSENSOR_PCAPS)",
			    name);
	return buf;
}

/* Frames in a capture, counted with libpcap: what tcpreplay must send per loop. */
static unsigned long long pcap_count(const char *path)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *d;
	unsigned long long n = 0;
	pcap_t *p = pcap_open_offline(path, errbuf);

	cr_assert_not_null(p, "%s: %s", path, errbuf);
	if (pcap_datalink(p) != DLT_EN10MB) {
		pcap_close(p);
		REPLAY_SKIP("live_replay: %s is not an Ethernet capture: cannot be replayed into a "
			    "veth",
			    path);
	}
	while (pcap_next_ex(p, &h, &d) == 1)
		n++;
	pcap_close(p);
	return n;
}

static void gro_off(void)
{
	/* GRO would merge the replayed segments before capture: packet counts would differ
	 * from the file's for a reason that is not the sensor's. veth starts with it off. */
	int err = netns__set_gro("vb", 0);
	cr_assert_eq(err, 0, "cannot turn GRO off on vb: %s", strerror(-err));
}

/* ------------------------------------------------------------ processes */

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long len;

	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t)(len > 0 ? len : 0) + 1);
	cr_assert_not_null(buf);
	len = (long)fread(buf, 1, (size_t)(len > 0 ? len : 0), f);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Still running? (waitid with WNOWAIT: the child is not reaped.) */
static bool running(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
		return false;
	return si.si_pid == 0;
}

static unsigned threads_of(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	unsigned n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void first_line(const char *path, char *line, size_t len)
{
	char *text = read_text(path);
	snprintf(line, len, "%.*s", (int)strcspn(text, "\n"), text);
	free(text);
}

/* Start svcsensor capturing; return once its `rings` rings are bound to vb and its threads
 * (main, detector, one worker per ring) run: open_group has finished, so the fanout group is
 * complete and nothing sent from now on can miss it. out: its stdout+stderr. */
static pid_t start_live(const char *const argv[], unsigned rings, const char *out)
{
	pid_t pid;
	char line[512];
	int err = netns__spawn(&ns, argv, out, scratch, &pid);
	uint64_t t0 = now_ms();

	cr_assert_eq(err, 0, "%s: %s", argv[0], strerror(-err));
	while (netns__packet_sockets_on(ns.vb_index) < rings || threads_of(pid) < rings + 2) {
		if (!running(pid) || now_ms() - t0 > 10000) {
			first_line(out, line, sizeof(line));
			cr_assert_fail("svcsensor did not start capturing on vb (%u rings) within "
				       "10 s: %s",
				       rings, line[0] ? line : "(no output)");
		}
		sleep_ms(5);
	}
	return pid;
}

struct replay_result {
	unsigned long long actual; /* "Actual: N packets" */
	unsigned long long ok, failed;
	double seconds;
	char actual_line[256];
};

/* tcpreplay -i va --topspeed [--loop N] pcap, inside the namespace. */
static struct replay_result replay(const char *pcap, unsigned loops)
{
	struct replay_result r = {0};
	char out[PATH_MAX], loopbuf[32], line[512];
	const char *argv[8] = {tcpreplay_bin(), "-i", "va", "--topspeed"};
	unsigned argc = 4;
	int status = 0, err;
	bool have_actual = false;
	pid_t pid;
	FILE *f;

	if (loops > 1) {
		snprintf(loopbuf, sizeof(loopbuf), "--loop=%u", loops);
		argv[argc++] = loopbuf;
	}
	argv[argc++] = pcap;
	argv[argc] = NULL;
	spath(out, sizeof(out), "tcpreplay.out");
	err = netns__spawn(&ns, argv, out, NULL, &pid);
	cr_assert_eq(err, 0, "tcpreplay: %s", strerror(-err));
	err = netns__wait(&ns, pid, 60000, &status);
	cr_assert_eq(err, 0, "tcpreplay did not finish: %s", strerror(-err));
	f = fopen(out, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Actual: %llu packets (%*s bytes) sent in %lf", &r.actual,
			   &r.seconds) >= 1) {
			have_actual = true;
			snprintf(r.actual_line, sizeof(r.actual_line), "%.*s",
				 (int)strcspn(line, "\n"), line);
		}
		sscanf(line, " Successful packets: %llu", &r.ok);
		sscanf(line, " Failed packets: %llu", &r.failed);
	}
	fclose(f);
	first_line(out, line, sizeof(line));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "tcpreplay failed: %s", line);
	cr_assert(have_actual, "no 'Actual: N packets' line from tcpreplay: %s", line);
	cr_assert_eq(r.failed, 0, "tcpreplay: %llu packets failed to send", r.failed);
	return r;
}

/* What svcsensor said at exit. */
struct sensor_out {
	int status;
	char *text;
	bool have_ring, have_pkts, have_drop_warning, ebpf_fallback;
	unsigned long long ring_packets, ring_drops, ring_freezes; /* "svcsensor: ring: ..." */
	char fanout[32];
	unsigned long long packets, decoded; /* "svcsensor: packets N, decoded M" */
	unsigned long long warned_drops;     /* "svcsensor: warning: the rings dropped D" */
	char ring_line[256];
};

static void parse_sensor(const char *out, int status, struct sensor_out *s)
{
	memset(s, 0, sizeof(*s));
	s->status = status;
	s->text = read_text(out);
	char *copy = strdup(s->text), *save = NULL;

	cr_assert_not_null(copy);
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (sscanf(
			l,
			"svcsensor: ring: packets %llu, drops %llu, freezes %llu (fanout %31[^)])",
			&s->ring_packets, &s->ring_drops, &s->ring_freezes, s->fanout) == 4) {
			s->have_ring = true;
			snprintf(s->ring_line, sizeof(s->ring_line), "%s", l);
		}
		if (sscanf(l, "svcsensor: packets %llu, decoded %llu", &s->packets, &s->decoded) ==
		    2)
			s->have_pkts = true;
		if (sscanf(l, "svcsensor: warning: the rings dropped %llu packets",
			   &s->warned_drops) == 1)
			s->have_drop_warning = true;
		if (strstr(l, "eBPF fanout unavailable"))
			s->ebpf_fallback = true;
	}
	free(copy);
}

/* Wait for the live sensor to stop by itself (--duration) and read its summary. */
static void finish_live(pid_t pid, const char *out, struct sensor_out *s)
{
	int status = 0, err = netns__wait(&ns, pid, LIVE_WAIT_MS, &status);
	char line[512];

	first_line(out, line, sizeof(line));
	cr_assert_eq(err, 0, "svcsensor did not stop %d s after --duration %s (killed)",
		     LIVE_WAIT_MS / 1000, LIVE_SECONDS);
	parse_sensor(out, status, s);
	cr_assert(WIFEXITED(status), "svcsensor died (status 0x%x); output:\n%s", status, s->text);
	cr_assert(s->have_ring, "no 'svcsensor: ring: packets N, drops D, ...' summary line:\n%s",
		  s->text);
	cr_assert(s->have_pkts, "no 'svcsensor: packets N, decoded M' summary line:\n%s", s->text);
}

/* The replay must be over before --duration stops the sensor, or the comparison means
 * nothing. */
static void replay_while_running(pid_t pid, const char *pcap, unsigned loops,
				 struct replay_result *r)
{
	*r = replay(pcap, loops);
	cr_assert(running(pid),
		  "svcsensor stopped (--duration %s) before tcpreplay had finished: the machine "
		  "is too slow for this test's margin",
		  LIVE_SECONDS);
}

/* Run svcsensor offline to completion; exit status 0 expected. */
static void run_offline(const char *const argv[], const char *out)
{
	pid_t pid;
	int status = 0, err = netns__spawn(&ns, argv, out, scratch, &pid);
	char *text;

	cr_assert_eq(err, 0, "%s: %s", argv[0], strerror(-err));
	err = netns__wait(&ns, pid, 60000, &status);
	cr_assert_eq(err, 0, "offline svcsensor did not finish within 60 s");
	text = read_text(out);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "offline svcsensor failed (status 0x%x):\n%s", status, text);
	free(text);
}

/* ------------------------------------------------------------ flow CSVs */

struct flowrec {
	char src[48], dst[48], app[80], verdict[32];
	unsigned sport, dport, proto, vlan;
	unsigned long long pk[2], by[2]; /* src2dst, dst2src */
	char dkey[160];			 /* directed: proto vlan src#sport > dst#dport */
	char ckey[160];			 /* canonical: both directions the same */
};

struct flowset {
	struct flowrec *r;
	size_t n;
	bool verdicts;
};

/* One CSV line into fields (RFC 4180 quotes; no embedded newlines in this export's
 * fields). Returns the number of fields. */
static unsigned split_csv(char *line, char **f, unsigned max)
{
	unsigned n = 0;
	char *p = line, *w;

	line[strcspn(line, "\r\n")] = '\0';
	while (n < max) {
		f[n++] = w = p;
		if (*p == '"') {
			p++;
			for (;;) {
				if (*p == '"' && p[1] == '"')
					*w++ = '"', p += 2;
				else if (*p == '"' || !*p) {
					if (*p)
						p++;
					break;
				} else
					*w++ = *p++;
			}
			*w = '\0';
			if (*p == ',')
				p++;
			else
				break;
			/* the field was rewritten in place from its start */
			continue;
		}
		p += strcspn(p, ",");
		if (!*p)
			break;
		*p++ = '\0';
	}
	return n;
}

static int col(char **hdr, unsigned n, const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(hdr[i], name) == 0)
			return (int)i;
	return -1;
}

static void load_flows(const char *path, struct flowset *fs)
{
	enum { MAXF = 64 };
	static const char *const names[] = {"src_ip",		"src_port",	   "dst_ip",
					    "dst_port",		"protocol",	   "vlan_id",
					    "application_name", "src2dst_packets", "src2dst_bytes",
					    "dst2src_packets",	"dst2src_bytes"};
	char line[4096], hline[4096], *hdr[MAXF], *f[MAXF];
	int idx[11], vcol;
	unsigned nh;
	size_t cap = 0;
	FILE *in = fopen(path, "r");

	memset(fs, 0, sizeof(*fs));
	cr_assert_not_null(in, "flow CSV %s was not written", path);
	cr_assert_not_null(fgets(hline, sizeof(hline), in), "%s is empty", path);
	nh = split_csv(hline, hdr, MAXF);
	for (unsigned i = 0; i < 11; i++) {
		idx[i] = col(hdr, nh, names[i]);
		cr_assert_geq(idx[i], 0, "%s: no column %s", path, names[i]);
	}
	vcol = col(hdr, nh, "verdict");
	fs->verdicts = vcol >= 0;
	while (fgets(line, sizeof(line), in)) {
		unsigned n = split_csv(line, f, MAXF);
		struct flowrec *r;
		const char *a, *b;

		cr_assert_eq(n, nh, "%s: a row with %u fields for %u columns", path, n, nh);
		if (fs->n == cap) {
			cap = cap ? cap * 2 : 512;
			fs->r = realloc(fs->r, cap * sizeof(*fs->r));
			cr_assert_not_null(fs->r);
		}
		r = &fs->r[fs->n++];
		memset(r, 0, sizeof(*r));
		snprintf(r->src, sizeof(r->src), "%s", f[idx[0]]);
		r->sport = (unsigned)strtoul(f[idx[1]], NULL, 10);
		snprintf(r->dst, sizeof(r->dst), "%s", f[idx[2]]);
		r->dport = (unsigned)strtoul(f[idx[3]], NULL, 10);
		r->proto = (unsigned)strtoul(f[idx[4]], NULL, 10);
		r->vlan = (unsigned)strtoul(f[idx[5]], NULL, 10);
		snprintf(r->app, sizeof(r->app), "%s", f[idx[6]]);
		r->pk[0] = strtoull(f[idx[7]], NULL, 10);
		r->by[0] = strtoull(f[idx[8]], NULL, 10);
		r->pk[1] = strtoull(f[idx[9]], NULL, 10);
		r->by[1] = strtoull(f[idx[10]], NULL, 10);
		if (vcol >= 0)
			snprintf(r->verdict, sizeof(r->verdict), "%s", f[vcol]);
		snprintf(r->dkey, sizeof(r->dkey), "proto %u vlan %u %s#%u > %s#%u", r->proto,
			 r->vlan, r->src, r->sport, r->dst, r->dport);
		/* canonical: the smaller endpoint first */
		char ea[64], eb[64];
		snprintf(ea, sizeof(ea), "%s#%u", r->src, r->sport);
		snprintf(eb, sizeof(eb), "%s#%u", r->dst, r->dport);
		bool swap = strcmp(ea, eb) > 0;
		a = swap ? eb : ea, b = swap ? ea : eb;
		snprintf(r->ckey, sizeof(r->ckey), "proto %u vlan %u %s = %s", r->proto, r->vlan, a,
			 b);
	}
	fclose(in);
}

static size_t count_ckey(const struct flowset *fs, const char *ckey, const struct flowrec **one)
{
	size_t n = 0;
	for (size_t i = 0; i < fs->n; i++)
		if (strcmp(fs->r[i].ckey, ckey) == 0) {
			n++;
			if (one)
				*one = &fs->r[i];
		}
	return n;
}

/* Distinct (directed 5-tuple + VLAN, application) pairs. */
static size_t distinct_pairs(const struct flowset *fs)
{
	size_t n = 0;
	for (size_t i = 0; i < fs->n; i++) {
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(fs->r[i].dkey, fs->r[j].dkey) == 0 &&
			       strcmp(fs->r[i].app, fs->r[j].app) == 0;
		n += !seen;
	}
	return n;
}

/* Tuples that occur more than once offline (5-tuple reused after a timeout or a close). */
static size_t repeated_tuples(const struct flowset *fs)
{
	size_t n = 0;
	for (size_t i = 0; i < fs->n; i++) {
		bool first = true;
		for (size_t j = 0; j < i && first; j++)
			first = strcmp(fs->r[i].ckey, fs->r[j].ckey) != 0;
		n += first && count_ckey(fs, fs->r[i].ckey, NULL) > 1;
	}
	return n;
}

struct problems {
	unsigned n;
	char text[4096];
};

static void problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct problems *p, const char *fmt, ...)
{
	va_list ap;
	size_t len = strlen(p->text);

	if (p->n++ >= 12 || len + 2 >= sizeof(p->text))
		return;
	p->text[len++] = '\n';
	p->text[len] = '\0';
	va_start(ap, fmt);
	vsnprintf(p->text + len, sizeof(p->text) - len, fmt, ap);
	va_end(ap);
}

/* The comparison explained at the top of the file. */
static void compare_flows(const struct flowset *live, const struct flowset *off, const char *what)
{
	struct problems p = {0};

	for (size_t i = 0; i < live->n; i++) {
		const struct flowrec *l = &live->r[i], *o = NULL;
		size_t nl = count_ckey(live, l->ckey, NULL), no = count_ckey(off, l->ckey, &o);

		if (no == 0) {
			problem(&p, "live flow %s %s: no offline flow has this 5-tuple", l->dkey,
				l->app);
			continue;
		}
		if (nl > no) {
			problem(&p,
				"%s: %zu live records for %zu offline flow(s): a flow was split "
				"(across the two workers?)",
				l->ckey, nl, no);
			continue;
		}
		if (no == 1) {
			if (strcmp(l->dkey, o->dkey) != 0)
				problem(&p, "direction: live %s, offline %s", l->dkey, o->dkey);
			if (strcmp(l->app, o->app) != 0)
				problem(&p, "%s: application live %s, offline %s", l->dkey, l->app,
					o->app);
			if (l->pk[0] != o->pk[0] || l->pk[1] != o->pk[1] || l->by[0] != o->by[0] ||
			    l->by[1] != o->by[1])
				problem(&p,
					"%s %s: packets/bytes live %llu/%llu + %llu/%llu, offline "
					"%llu/%llu + %llu/%llu",
					l->dkey, l->app, l->pk[0], l->by[0], l->pk[1], l->by[1],
					o->pk[0], o->by[0], o->pk[1], o->by[1]);
			if (live->verdicts && off->verdicts && strcmp(l->verdict, o->verdict) != 0)
				problem(&p, "%s %s: verdict live %s, offline %s", l->dkey, l->app,
					l->verdict, o->verdict);
			continue;
		}
		/* Several offline flows on this tuple: the live record is one of them or a merge
		 * of consecutive ones; its application (and verdict) must be one of theirs. */
		bool app_ok = false;
		for (size_t j = 0; j < off->n && !app_ok; j++)
			app_ok = strcmp(off->r[j].ckey, l->ckey) == 0 &&
				 strcmp(off->r[j].app, l->app) == 0 &&
				 (!live->verdicts || !off->verdicts ||
				  strcmp(off->r[j].verdict, l->verdict) == 0);
		if (!app_ok)
			problem(&p, "%s: live %s %s matches none of the %zu offline flows", l->ckey,
				l->app, l->verdict, no);
	}
	for (size_t j = 0; j < off->n; j++)
		if (count_ckey(live, off->r[j].ckey, NULL) == 0)
			problem(&p, "offline flow %s %s: missing live", off->r[j].dkey,
				off->r[j].app);
	cr_assert_eq(p.n, 0, "%s: %u difference(s) between live and offline flows:%s", what, p.n,
		     p.text);
}

static void free_flows(struct flowset *fs)
{
	free(fs->r);
	memset(fs, 0, sizeof(*fs));
}

/* ------------------------------------------------------------ 1. replay = offline */

static void replay_equals_offline(const char *mode, const char *pcap_name)
{
	const char *bin = sensor_bin();
	char pcap[PATH_MAX], live_csv[PATH_MAX], off_csv[PATH_MAX], map[PATH_MAX], log[PATH_MAX],
	    rep[PATH_MAX], out[PATH_MAX], off_out[PATH_MAX], off_log[PATH_MAX], off_rep[PATH_MAX];
	struct replay_result rr;
	struct sensor_out so;
	struct flowset live, off;
	unsigned long long in_file;
	pid_t pid;

	find_pcap(pcap_name, pcap, sizeof(pcap));
	tcpreplay_bin();
	in_file = pcap_count(pcap);
	spath(live_csv, sizeof(live_csv), "live.csv");
	spath(off_csv, sizeof(off_csv), "offline.csv");
	spath(map, sizeof(map), "none.json"); /* absent: judged against an empty map */
	spath(log, sizeof(log), "log"), spath(rep, sizeof(rep), "rep");
	spath(off_log, sizeof(off_log), "log.off"), spath(off_rep, sizeof(off_rep), "rep.off");
	spath(out, sizeof(out), "live.out"), spath(off_out, sizeof(off_out), "offline.out");

	const char *off_argv[] = {bin,	     "-r",	pcap,	   "-t",       "2",
				  "-o",	     off_csv,	"--print", "none",     "-m",
				  map,	     "--log",	off_log,   "--report", off_rep,
				  "--local", LOCAL_NET, "-q",	   NULL};
	run_offline(off_argv, off_out);

	gro_off();
	const char *argv[] = {bin,	 "-i",	       "vb",	     "-t",	 "2",	 "--fanout",
			      mode,	 "-o",	       live_csv,     "--print",	 "none", "-m",
			      map,	 "--log",      log,	     "--report", rep,	 "--local",
			      LOCAL_NET, "--duration", LIVE_SECONDS, NULL};
	pid = start_live(argv, 2, out);
	replay_while_running(pid, pcap, 1, &rr);
	finish_live(pid, out, &so);

	load_flows(live_csv, &live);
	load_flows(off_csv, &off);
	cr_log_info("replay %s --fanout %s: %s", pcap_name, mode, rr.actual_line);
	cr_log_info("replay %s --fanout %s: in file %llu, sent %llu, ring packets %llu, received "
		    "%llu, dropped %llu, decoded %llu; flows live %zu, offline %zu; distinct "
		    "(5-tuple, app) live %zu, offline %zu; 5-tuples repeated offline %zu",
		    pcap_name, mode, in_file, rr.actual, so.ring_packets,
		    so.ring_packets - so.ring_drops, so.ring_drops, so.decoded, live.n, off.n,
		    distinct_pairs(&live), distinct_pairs(&off), repeated_tuples(&off));

	cr_assert_eq(WEXITSTATUS(so.status), 0, "svcsensor -i vb exit status %d:\n%s",
		     WEXITSTATUS(so.status), so.text);
	cr_assert_eq(rr.actual, in_file, "tcpreplay sent %llu of the %llu packets in %s", rr.actual,
		     in_file, pcap_name);
	cr_assert_eq(so.ring_packets, rr.actual,
		     "ring packets %llu != %llu sent by tcpreplay (%s)\n%s", so.ring_packets,
		     rr.actual, so.ring_line, so.text);
	cr_assert_eq(so.ring_drops, 0,
		     "the default ring (64 x 1 MiB per worker) holds all of %s, yet the summary "
		     "reports %llu drops:\n%s",
		     pcap_name, so.ring_drops, so.text);
	cr_assert_eq(so.packets, rr.actual, "workers saw %llu packets, %llu were sent:\n%s",
		     so.packets, rr.actual, so.text);
	cr_assert_eq(so.decoded, rr.actual, "decoded %llu of %llu packets:\n%s", so.decoded,
		     rr.actual, so.text);
	compare_flows(&live, &off, pcap_name);

	bool fell_back = strcmp(mode, "ebpf") == 0 && strcmp(so.fanout, "hash") == 0;
	if (!fell_back)
		cr_assert_str_eq(so.fanout, mode, "the summary names fanout %s, asked for %s",
				 so.fanout, mode);
	free_flows(&live);
	free_flows(&off);
	if (fell_back) {
		cr_assert(so.ebpf_fallback, "fanout ebpf became hash without the warning:\n%s",
			  so.text);
		char why[512];
		snprintf(why, sizeof(why), "%s", so.text);
		free(so.text);
		REPLAY_SKIP(
		    "live_replay: the eBPF steering program could not be used here, so "
		    "svcsensor fell back to fanout hash (checked: flows equal offline); eBPF "
		    "steering itself was not exercised. svcsensor said:\n%s",
		    why);
	}
	free(so.text);
}

Test(live_replay, replay_equals_offline_hash_baseline)
{
	replay_equals_offline("hash", "baseline.pcap");
}

Test(live_replay, replay_equals_offline_hash_anomalies)
{
	replay_equals_offline("hash", "anomalies.pcap");
}

Test(live_replay, replay_equals_offline_ebpf_baseline)
{
	replay_equals_offline("ebpf", "baseline.pcap");
}

Test(live_replay, replay_equals_offline_ebpf_anomalies)
{
	replay_equals_offline("ebpf", "anomalies.pcap");
}

/* ------------------------------------------------------------ 2. learn live, detect live */

static json_t *load_json(const char *path)
{
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e);

	cr_assert_not_null(j, "%s: %s (line %d)", path, e.text, e.line);
	return j;
}

static json_t *map_sources(json_t *map, const char *path)
{
	json_t *s = json_object_get(map, "sources");
	cr_assert(json_is_object(s), "%s: no \"sources\" object", path);
	return s;
}

/* Every source / destination / application of a is in b; with counters, the bytes (and, when
 * no offline 5-tuple repeats, the flows) are equal. */
static void map_included(json_t *a, const char *an, json_t *b, const char *bn, bool counters,
			 bool flows_exact, struct problems *p)
{
	const char *src, *dst, *app;
	json_t *dsts, *apps, *ca;

	json_object_foreach(a, src, dsts)
	{
		json_t *bdsts = json_object_get(b, src);
		if (!bdsts) {
			problem(p, "source %s: in %s, not in %s", src, an, bn);
			continue;
		}
		json_object_foreach(dsts, dst, apps)
		{
			json_t *bapps = json_object_get(bdsts, dst);
			if (!bapps) {
				problem(p, "%s -> %s: in %s, not in %s", src, dst, an, bn);
				continue;
			}
			if (json_is_array(apps)) { /* the manifest's form: a list of names */
				size_t i;
				json_array_foreach(apps, i, ca)
				{
					const char *name = json_string_value(ca);
					if (!name || !json_object_get(bapps, name))
						problem(p, "%s -> %s %s: in %s, not in %s", src,
							dst, name ? name : "?", an, bn);
				}
				continue;
			}
			json_object_foreach(apps, app, ca)
			{
				json_t *cb =
				    json_is_array(bapps) ? NULL : json_object_get(bapps, app);
				if (json_is_array(bapps)) {
					size_t i;
					json_t *v;
					bool found = false;
					json_array_foreach(bapps, i, v)
					{
						found |= json_is_string(v) &&
							 !strcmp(json_string_value(v), app);
					}
					if (!found)
						problem(p, "%s -> %s %s: in %s, not in %s", src,
							dst, app, an, bn);
					continue;
				}
				if (!cb) {
					problem(p, "%s -> %s %s: in %s, not in %s", src, dst, app,
						an, bn);
					continue;
				}
				if (!counters)
					continue;
				json_int_t fa = json_integer_value(json_object_get(ca, "flows"));
				json_int_t fb = json_integer_value(json_object_get(cb, "flows"));
				json_int_t ba = json_integer_value(json_object_get(ca, "bytes"));
				json_int_t bb = json_integer_value(json_object_get(cb, "bytes"));
				if (ba != bb)
					problem(p, "%s -> %s %s: bytes %s %lld, %s %lld", src, dst,
						app, an, (long long)ba, bn, (long long)bb);
				if (flows_exact ? fa != fb : fa < 1)
					problem(p, "%s -> %s %s: flows %s %lld, %s %lld", src, dst,
						app, an, (long long)fa, bn, (long long)fb);
			}
		}
	}
}

static const struct flowrec *find_directed(const struct flowset *fs, const char *src,
					   unsigned sport, const char *dst, unsigned dport,
					   unsigned proto)
{
	for (size_t i = 0; i < fs->n; i++) {
		const struct flowrec *r = &fs->r[i];
		if (r->proto == proto && r->sport == sport && r->dport == dport &&
		    !strcmp(r->src, src) && !strcmp(r->dst, dst))
			return r;
	}
	return NULL;
}

Test(live_replay, learn_live_then_detect_live)
{
	const char *bin = sensor_bin();
	char base[PATH_MAX], anom[PATH_MAX], manifest_path[PATH_MAX], live_map[PATH_MAX],
	    off_map[PATH_MAX], live_learn_csv[PATH_MAX], off_learn_csv[PATH_MAX],
	    live_det[PATH_MAX], off_det[PATH_MAX], log[PATH_MAX], rep[PATH_MAX], out[PATH_MAX];
	struct replay_result r_learn, r_det;
	struct sensor_out s_learn, s_det;
	struct flowset fl_live, fl_off, det_live, det_off;
	struct problems p = {0};
	pid_t pid;

	find_pcap("baseline.pcap", base, sizeof(base));
	find_pcap("anomalies.pcap", anom, sizeof(anom));
	find_pcap("anomalies.manifest.json", manifest_path, sizeof(manifest_path));
	tcpreplay_bin();
	spath(live_map, sizeof(live_map), "live-map.json");
	spath(off_map, sizeof(off_map), "offline-map.json");
	spath(live_learn_csv, sizeof(live_learn_csv), "live-learn.csv");
	spath(off_learn_csv, sizeof(off_learn_csv), "offline-learn.csv");
	spath(live_det, sizeof(live_det), "live-det.csv");
	spath(off_det, sizeof(off_det), "offline-det.csv");
	spath(log, sizeof(log), "log"), spath(rep, sizeof(rep), "rep");

	/* Offline reference: learn(baseline) -> detect(anomalies). */
	{
		const char *learn[] = {bin,	  "-r", base,	       "--learn", "-m",
				       off_map,	  "-o", off_learn_csv, "--print", "none",
				       "--log",	  log,	"--report",    rep,	  "--local",
				       LOCAL_NET, "-q", NULL};
		const char *detect[] = {bin,	 "-r",	    anom,      "-m",	off_map, "-o",
					off_det, "--print", "none",    "--log", log,	 "--report",
					rep,	 "--local", LOCAL_NET, "-q",	NULL};
		spath(out, sizeof(out), "offline-learn.out");
		run_offline(learn, out);
		spath(out, sizeof(out), "offline-det.out");
		run_offline(detect, out);
	}

	gro_off();
	/* Live: learn while baseline.pcap is replayed. */
	{
		const char *argv[] = {bin,	 "-i",	       "vb",	       "--learn", "-m",
				      live_map,	 "-o",	       live_learn_csv, "--print", "none",
				      "--log",	 log,	       "--report",     rep,	  "--local",
				      LOCAL_NET, "--duration", LIVE_SECONDS,   NULL};
		spath(out, sizeof(out), "live-learn.out");
		pid = start_live(argv, 1, out);
		replay_while_running(pid, base, 1, &r_learn);
		finish_live(pid, out, &s_learn);
		cr_assert_eq(WEXITSTATUS(s_learn.status), 0, "live --learn exit status %d:\n%s",
			     WEXITSTATUS(s_learn.status), s_learn.text);
	}
	/* Live: detect with the live-learned map while anomalies.pcap is replayed. */
	{
		const char *argv[] = {bin,	    "-i",	  "vb",	     "-m",	live_map,
				      "-o",	    live_det,	  "--print", "none",	"--log",
				      log,	    "--report",	  rep,	     "--local", LOCAL_NET,
				      "--duration", LIVE_SECONDS, NULL};
		spath(out, sizeof(out), "live-det.out");
		pid = start_live(argv, 1, out);
		replay_while_running(pid, anom, 1, &r_det);
		finish_live(pid, out, &s_det);
		cr_assert_eq(WEXITSTATUS(s_det.status), 0, "live detect exit status %d:\n%s",
			     WEXITSTATUS(s_det.status), s_det.text);
	}
	cr_log_info("learn live (baseline.pcap): sent %llu, ring packets %llu, dropped %llu",
		    r_learn.actual, s_learn.ring_packets, s_learn.ring_drops);
	cr_log_info("detect live (anomalies.pcap): sent %llu, ring packets %llu, dropped %llu",
		    r_det.actual, s_det.ring_packets, s_det.ring_drops);
	cr_assert_eq(s_learn.ring_packets, r_learn.actual, "learn: ring %llu, sent %llu",
		     s_learn.ring_packets, r_learn.actual);
	cr_assert_eq(s_learn.ring_drops, 0, "learn: %llu drops:\n%s", s_learn.ring_drops,
		     s_learn.text);
	cr_assert_eq(s_det.ring_packets, r_det.actual, "detect: ring %llu, sent %llu",
		     s_det.ring_packets, r_det.actual);
	cr_assert_eq(s_det.ring_drops, 0, "detect: %llu drops:\n%s", s_det.ring_drops, s_det.text);

	/* The flows learned from are the same flows. */
	load_flows(live_learn_csv, &fl_live);
	load_flows(off_learn_csv, &fl_off);
	compare_flows(&fl_live, &fl_off, "learn (baseline.pcap)");
	bool flows_exact = repeated_tuples(&fl_off) == 0;

	/* The learned maps: same sources, destinations and applications, same bytes (the sum
	 * over the flows does not depend on how flows were cut) and, when no 5-tuple repeats
	 * offline, the same flow counts. Times are the wall clock live, not compared. */
	json_t *jl = load_json(live_map), *jo = load_json(off_map), *jm = load_json(manifest_path);
	json_t *sl = map_sources(jl, live_map), *so = map_sources(jo, off_map);
	json_t *sm = json_object_get(jm, "baseline_map");
	cr_assert(json_is_object(sm), "%s: no baseline_map", manifest_path);
	map_included(sl, "the live map", so, "the offline map", true, flows_exact, &p);
	map_included(so, "the offline map", sl, "the live map", true, flows_exact, &p);
	/* ... and both hold what the generator planted (its manifest, not the sensor). */
	map_included(sl, "the live map", sm, "the manifest's baseline_map", false, false, &p);
	map_included(sm, "the manifest's baseline_map", sl, "the live map", false, false, &p);
	cr_assert_eq(p.n, 0, "%u difference(s) between the learned maps:%s", p.n, p.text);
	cr_log_info("learned maps: %zu source(s); live = offline = manifest's baseline_map",
		    json_object_size(sl));

	/* Verdict per (5-tuple, app): live = offline. */
	load_flows(live_det, &det_live);
	load_flows(off_det, &det_off);
	cr_assert(det_live.verdicts, "%s has no verdict column", live_det);
	compare_flows(&det_live, &det_off, "detect (anomalies.pcap)");

	/* Every planted anomaly, by its 5-tuple, with its app and verdict; every verdict type
	 * of the manifest, with its count; the other flows NONE. */
	json_t *planted = json_object_get(jm, "anomalies"),
	       *byv = json_object_get(jm, "anomalies_by_verdict");
	json_t *a;
	size_t i;
	const char *vname;
	json_t *vcount;
	cr_assert(json_is_array(planted) && json_is_object(byv), "%s: no anomalies", manifest_path);
	memset(&p, 0, sizeof(p));
	json_array_foreach(planted, i, a)
	{
		const char *src = json_string_value(json_object_get(a, "src_ip"));
		const char *dst = json_string_value(json_object_get(a, "dst_ip"));
		const char *app = json_string_value(json_object_get(a, "app"));
		const char *verdict = json_string_value(json_object_get(a, "verdict"));
		unsigned proto = (unsigned)json_integer_value(json_object_get(a, "protocol"));
		unsigned sport = (unsigned)json_integer_value(json_object_get(a, "src_port"));
		unsigned dport = (unsigned)json_integer_value(json_object_get(a, "dst_port"));
		cr_assert(src && dst && app && verdict, "%s: anomaly %zu incomplete", manifest_path,
			  i);
		const struct flowrec *r = find_directed(&det_live, src, sport, dst, dport, proto);
		if (!r)
			problem(&p, "planted %s %s:%u > %s:%u proto %u: no live flow", verdict, src,
				sport, dst, dport, proto);
		else if (strcmp(r->app, app) || strcmp(r->verdict, verdict))
			problem(&p, "planted %s:%u > %s:%u: expected %s %s, live %s %s", src, sport,
				dst, dport, app, verdict, r->app, r->verdict);
	}
	json_int_t planted_total = 0;
	json_object_foreach(byv, vname, vcount)
	{
		json_int_t got = 0;
		for (size_t k = 0; k < det_live.n; k++)
			got += strcmp(det_live.r[k].verdict, vname) == 0;
		planted_total += json_integer_value(vcount);
		cr_log_info("detect live: %s %lld (manifest %lld)", vname, (long long)got,
			    (long long)json_integer_value(vcount));
		if (got == 0 || got != json_integer_value(vcount))
			problem(&p, "verdict %s: %lld live flows, manifest %lld", vname,
				(long long)got, (long long)json_integer_value(vcount));
	}
	{
		json_int_t none = 0,
			   expect_none =
			       json_integer_value(json_object_get(jm, "flows_expected_none"));
		for (size_t k = 0; k < det_live.n; k++)
			none += strcmp(det_live.r[k].verdict, "NONE") == 0;
		if (none != expect_none || (json_int_t)det_live.n != planted_total + expect_none)
			problem(&p,
				"live: %lld NONE of %zu flows; manifest: %lld NONE, %lld "
				"anomalies",
				(long long)none, det_live.n, (long long)expect_none,
				(long long)planted_total);
	}
	cr_assert_eq(p.n, 0, "live detection vs the manifest, %u problem(s):%s", p.n, p.text);

	json_decref(jl), json_decref(jo), json_decref(jm);
	free_flows(&fl_live), free_flows(&fl_off), free_flows(&det_live), free_flows(&det_off);
	free(s_learn.text), free(s_det.text);
}

/* ------------------------------------------------------------ 3. tiny ring: drops shown */

Test(live_replay, tiny_ring_reports_drops)
{
	enum { LOOPS = 5 };
	const char *bin = sensor_bin();
	char pcap[PATH_MAX], cfg[PATH_MAX], map[PATH_MAX], log[PATH_MAX], rep[PATH_MAX],
	    out[PATH_MAX];
	long page = sysconf(_SC_PAGESIZE);
	struct replay_result rr;
	struct sensor_out so;
	unsigned long long in_file;
	pid_t pid;
	FILE *f;

	find_pcap("baseline.pcap", pcap, sizeof(pcap));
	tcpreplay_bin();
	in_file = pcap_count(pcap);
	spath(cfg, sizeof(cfg), "tiny.json");
	spath(map, sizeof(map), "none.json");
	spath(log, sizeof(log), "log"), spath(rep, sizeof(rep), "rep");
	spath(out, sizeof(out), "tiny.out");
	/* The smallest ring the config accepts but one: ring_block_size = one page (its
	 * minimum), 2 blocks (minimum 1); frames of 2048 bytes fit in a block. */
	f = fopen(cfg, "w");
	cr_assert_not_null(f);
	fprintf(f, "{\"ring_block_size\": %ld, \"ring_block_count\": 2}\n", page > 0 ? page : 4096);
	fclose(f);

	gro_off();
	const char *argv[] = {bin,	  "-c", cfg,	      "-i",	    "vb",
			      "-t",	  "2",	"--fanout",   "hash",	    "--print",
			      "none",	  "-m", map,	      "--log",	    log,
			      "--report", rep,	"--duration", LIVE_SECONDS, NULL};
	pid = start_live(argv, 2, out);
	replay_while_running(pid, pcap, LOOPS, &rr);
	finish_live(pid, out, &so);
	cr_log_info("tiny ring (2 x %ld B per worker, 2 workers), baseline.pcap x %d at top speed: "
		    "sent %llu, ring packets %llu, dropped %llu, freezes %llu, delivered to the "
		    "workers %llu; %s",
		    page, LOOPS, rr.actual, so.ring_packets, so.ring_drops, so.ring_freezes,
		    so.packets, rr.actual_line);
	cr_assert(WEXITSTATUS(so.status) == 0 || WEXITSTATUS(so.status) == 1,
		  "svcsensor exit status %d:\n%s", WEXITSTATUS(so.status), so.text);
	cr_assert_eq(rr.actual, in_file * LOOPS, "tcpreplay sent %llu, expected %llu", rr.actual,
		     in_file * LOOPS);
	cr_assert_eq(so.ring_packets, rr.actual, "ring packets %llu != %llu sent:\n%s",
		     so.ring_packets, rr.actual, so.text);
	cr_assert_gt(so.ring_drops, 0,
		     "a 2-page ring under a %llu-packet topspeed burst reports no drops:\n%s",
		     rr.actual, so.text);
	cr_assert_eq(so.packets + so.ring_drops, so.ring_packets,
		     "packets handled by the workers (%llu) + drops (%llu) != ring packets (%llu):"
		     "\n%s",
		     so.packets, so.ring_drops, so.ring_packets, so.text);
	cr_assert(so.have_drop_warning,
		  "no 'svcsensor: warning: the rings dropped N packets' line:\n%s", so.text);
	cr_assert_eq(so.warned_drops, so.ring_drops,
		     "the warning says %llu drops, the summary %llu", so.warned_drops,
		     so.ring_drops);
	free(so.text);
}

/* ------------------------------------------------------------ 4. bad interface / filter */

static void expect_one_line_error(const char *const argv[], const char *names, const char *what)
{
	char out[PATH_MAX];
	int status = 0, err;
	char *text;
	pid_t pid;

	spath(out, sizeof(out), "err.out");
	err = netns__spawn(&ns, argv, out, scratch, &pid);
	cr_assert_eq(err, 0, "%s: %s", argv[0], strerror(-err));
	err = netns__wait(&ns, pid, 10000, &status);
	cr_assert_eq(err, 0, "svcsensor with %s did not exit within 10 s", what);
	text = read_text(out);
	cr_log_info("%s: exit %d, said: %s", what, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		    text);
	cr_assert(WIFEXITED(status), "svcsensor with %s died (status 0x%x): %s", what, status,
		  text);
	cr_assert_neq(WEXITSTATUS(status), 0, "svcsensor with %s exited 0: %s", what, text);
	cr_assert_eq(WEXITSTATUS(status), 2,
		     "README: exit 2 when it could not start; %s gave %d: %s", what,
		     WEXITSTATUS(status), text);
	cr_assert_eq(count_lines(text), 1, "%s: one line expected, got %u:\n%s", what,
		     count_lines(text), text);
	cr_assert(strncmp(text, "svcsensor: ", 11) == 0, "%s: %s", what, text);
	cr_assert(strstr(text, names) != NULL, "%s: the line does not name %s: %s", what, names,
		  text);
	free(text);
}

Test(live_replay, bad_interface_one_line)
{
	const char *bin = sensor_bin();
	char map[PATH_MAX], log[PATH_MAX], rep[PATH_MAX];

	spath(map, sizeof(map), "none.json");
	spath(log, sizeof(log), "log"), spath(rep, sizeof(rep), "rep");
	const char *argv[] = {bin,    "-i",	    "nosuchif0", "-t",	  "2", "--print",
			      "none", "-m",	    map,	 "--log", log, "--report",
			      rep,    "--duration", "2",	 NULL};
	expect_one_line_error(argv, "nosuchif0", "-i nosuchif0");
}

Test(live_replay, bad_filter_one_line)
{
	const char *bin = sensor_bin();
	char map[PATH_MAX], log[PATH_MAX], rep[PATH_MAX];

	gro_off(); /* no offload warning on vb: the error is the only line */
	spath(map, sizeof(map), "none.json");
	spath(log, sizeof(log), "log"), spath(rep, sizeof(rep), "rep");
	const char *argv[] = {bin,	 "-i",	       "vb", "-t", "2",	    "-f", "tcp porrt 80",
			      "--print", "none",       "-m", map,  "--log", log,  "--report",
			      rep,	 "--duration", "2",  NULL};
	expect_one_line_error(argv, "tcp porrt 80", "-f 'tcp porrt 80'");
	/* and no ring was left behind */
	cr_assert_eq(netns__packet_sockets_on(ns.vb_index), 0);
}

/* ------------------------------------------------------------ 5. --stats */

struct stats_line {
	unsigned long long packets, dpackets, drops, ddrops, flows, queue;
};

static unsigned parse_stats(const char *text, struct stats_line *st, unsigned max,
			    bool *before_summary)
{
	unsigned n = 0;
	const char *l = text, *summary = strstr(text, "\nsvcsensor: packets ");

	*before_summary = true;
	for (; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		struct stats_line s;
		if (sscanf(
			l,
			"svcsensor: stats: packets %llu (+%llu), drops %llu (+%llu), flows ended "
			"%llu, queue %llu",
			&s.packets, &s.dpackets, &s.drops, &s.ddrops, &s.flows, &s.queue) != 6) {
			if (strncmp(l, "svcsensor: stats:", 17) == 0)
				cr_assert_fail("unparsable stats line: %.*s", (int)strcspn(l, "\n"),
					       l);
			continue;
		}
		if (summary && l > summary)
			*before_summary = false;
		if (n < max)
			st[n] = s;
		n++;
	}
	return n;
}

Test(live_replay, stats_lines_during_run)
{
	enum { MAXS = 64 };
	const char *bin = sensor_bin();
	char pcap[PATH_MAX], map[PATH_MAX], log[PATH_MAX], rep[PATH_MAX], out[PATH_MAX];
	struct stats_line st[MAXS];
	struct replay_result rr;
	struct sensor_out so;
	unsigned n, seen_while_running = 0;
	bool before_summary;
	uint64_t t0;
	pid_t pid;

	find_pcap("anomalies.pcap", pcap, sizeof(pcap));
	tcpreplay_bin();
	spath(map, sizeof(map), "none.json");
	spath(log, sizeof(log), "log"), spath(rep, sizeof(rep), "rep");
	spath(out, sizeof(out), "stats.out");
	gro_off();
	const char *argv[] = {bin, "-i",       "vb",   "-t",	     "2",	   "--stats",
			      "1", "--print",  "none", "-m",	     map,	   "--log",
			      log, "--report", rep,    "--duration", LIVE_SECONDS, NULL};
	pid = start_live(argv, 2, out);
	replay_while_running(pid, pcap, 1, &rr);
	/* While it still runs, a stats line must show the replayed packets. */
	for (t0 = now_ms(); running(pid) && now_ms() - t0 < 10000; sleep_ms(50)) {
		char *text = read_text(out);
		unsigned k = parse_stats(text, st, MAXS, &before_summary);
		free(text);
		if (k && st[(k < MAXS ? k : MAXS) - 1].packets >= rr.actual && running(pid)) {
			seen_while_running = k;
			break;
		}
	}
	finish_live(pid, out, &so);
	n = parse_stats(so.text, st, MAXS, &before_summary);
	cr_log_info("--stats 1, --duration %s: %u stats lines; sent %llu, ring packets %llu, "
		    "drops %llu",
		    LIVE_SECONDS, n, rr.actual, so.ring_packets, so.ring_drops);
	for (unsigned i = 0; i < n && i < MAXS; i++)
		cr_log_info("stats %u: packets %llu (+%llu), drops %llu (+%llu), flows ended %llu, "
			    "queue %llu",
			    i, st[i].packets, st[i].dpackets, st[i].drops, st[i].ddrops,
			    st[i].flows, st[i].queue);
	cr_assert_eq(WEXITSTATUS(so.status), 0, "exit status %d:\n%s", WEXITSTATUS(so.status),
		     so.text);
	cr_assert_gt(seen_while_running, 0,
		     "no 'svcsensor: stats:' line counting the %llu replayed packets appeared "
		     "while svcsensor was running:\n%s",
		     rr.actual, so.text);
	cr_assert_geq(n, 2, "--stats 1 over %s s: %u stats lines:\n%s", LIVE_SECONDS, n, so.text);
	cr_assert(before_summary, "a stats line after the final summary:\n%s", so.text);
	for (unsigned i = 0; i < n && i < MAXS; i++) {
		unsigned long long pp = i ? st[i - 1].packets : 0, pd = i ? st[i - 1].drops : 0;
		cr_assert_geq(st[i].packets, pp, "stats packets went down at line %u", i);
		cr_assert_eq(st[i].dpackets, st[i].packets - pp,
			     "stats line %u: +%llu but the total went %llu -> %llu", i,
			     st[i].dpackets, pp, st[i].packets);
		cr_assert_eq(st[i].ddrops, st[i].drops - pd,
			     "stats line %u: drops +%llu, %llu -> %llu", i, st[i].ddrops, pd,
			     st[i].drops);
		cr_assert_geq(st[i].drops, pd, "stats drops went down at line %u", i);
	}
	unsigned last = (n < MAXS ? n : MAXS) - 1;
	cr_assert_eq(st[last].packets, rr.actual, "last stats line: %llu packets, %llu sent",
		     st[last].packets, rr.actual);
	cr_assert_eq(so.ring_packets, rr.actual,
		     "final ring packets %llu != %llu sent (the stats reads must not lose any)",
		     so.ring_packets, rr.actual);
	cr_assert_eq(so.ring_drops, st[last].drops, "drops: final %llu, last stats %llu",
		     so.ring_drops, st[last].drops);
	free(so.text);
}
