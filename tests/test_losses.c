/* test_losses.c - suite losses: nothing the run did is lost silently. The real binary, as root
 * where a test needs a small file system (a tmpfs it mounts in its own scratch directory):
 *
 *   anomaly_log_full_disk_counts_lines_lost  the anomaly log on a 64 KiB tmpfs: exit 1, and the
 *       summary's figure = the lines the same run writes into a big directory (checked against
 *       the summary's verdict counts too) minus the lines in the file
 *   final_map_save_fails_map_path_taken      the map's path becomes a directory mid-run: the
 *       map is saved beside it under a fallback name, byte for byte the map a normal run learns
 *   final_map_save_fails_disk_full           the map's file system fills up mid-run: the
 *       fallback goes to $TMPDIR
 *   console_reader_closes_after_one_line     stdout is a pipe whose reader reads one line and
 *       closes: the run ends normally (exit 0), map saved, summary on stderr
 *   kill9_during_map_saves                   kill -9 at 20 moments of a learning run that saves
 *       its map every second: the map file is always absent or a whole map
 *   console_lines_lost_are_counted           stdout on /dev/full: exit 1, the console's figure
 *       = the flows judged
 * and, in process, the detector's loss figures (detector__losses) against output_lost.
 *
 * Inputs are the shipped captures; a slow feed goes through a FIFO on the child's stdin (-r -),
 * so the test decides when the run sees its packets. */
#include <urcu.h> /* first: the flavour of the service map's readers */

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "e2e_util.h"
#include "test_util.h"
#include "svcsensor/config.h"
#include "svcsensor/detector.h"
#include "svcsensor/flow.h"
#include "svcsensor/map_file.h"
#include "svcsensor/service_map.h"

#define RUN_TIMEOUT_MS 60000u
#define BASELINE "pcaps/baseline.pcap"

static char *tdir;	/* this test's scratch directory */
static char *mounts[4]; /* tmpfs mounted by the test, unmounted by the fini */
static unsigned n_mounts;

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN); /* a FIFO whose reader died must not kill the test */
	rcu_register_thread();
	tdir = e2e_mkdtemp("losses");
	cr_assert_not_null(tdir);
	cr_assert_not_null(e2e_bin(), "no svcsensor binary (make all)");
}

static void teardown(void)
{
	for (unsigned i = 0; i < n_mounts; i++) {
		if (umount2(mounts[i], MNT_DETACH) != 0)
			fprintf(stderr, "umount %s: %s\n", mounts[i], strerror(errno));
		free(mounts[i]);
	}
	n_mounts = 0;
	rm_tree(tdir);
	free(tdir);
	rcu_unregister_thread();
}

TestSuite(losses, .init = setup, .fini = teardown, .timeout = 180);

/* A tmpfs of size bytes at tdir/name (skips the test when it cannot be mounted: not root). */
static char *mount_tmpfs(const char *name, const char *size)
{
	char *p = e2e_path(tdir, name), opts[32];

	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(opts, sizeof(opts), "size=%s", size);
	if (mount("tmpfs", p, "tmpfs", 0, opts) != 0)
		cr_skip_test("cannot mount a tmpfs (%s): this test needs root", strerror(errno));
	mounts[n_mounts++] = strdup(p);
	return p;
}

static char **argv_of(struct e2e_argv *a)
{
	return a->v;
}

/* svcsensor ARGS... run in tdir, stdout/stderr into tdir/NAME.out / NAME.err; the stderr text
 * (malloc'd). */
static char *run(struct e2e_argv *a, const char *name, struct e2e_proc *p)
{
	char *out = e2e_path(tdir, name), *err;
	char *o = NULL, *e = NULL;

	cr_assert(asprintf(&o, "%s.out", out) > 0 && asprintf(&e, "%s.err", out) > 0);
	cr_assert_eq(e2e_run(argv_of(a), tdir, o, e, RUN_TIMEOUT_MS, p), 0);
	err = e2e_slurp(e, NULL);
	cr_assert_not_null(err);
	free(out);
	free(o);
	free(e);
	return err;
}

static void argv_start(struct e2e_argv *a)
{
	memset(a, 0, sizeof(*a));
	e2e_argv_add(a, e2e_bin());
}

/* The map a normal run learns from the baseline capture (tdir/ref.json), as bytes. */
static char *reference_map(size_t *len)
{
	struct e2e_argv a;
	struct e2e_proc p;
	char *cap = e2e_abspath(BASELINE), *path = e2e_path(tdir, "ref.json"), *text;

	cr_assert_not_null(cap);
	argv_start(&a);
	e2e_argv_add(&a, "--learn");
	e2e_argv_addf(&a, "--read=%s", cap);
	e2e_argv_addf(&a, "--map=%s", path);
	e2e_argv_add(&a, "--print=none");
	e2e_argv_add(&a, "--report=");
	e2e_argv_add(&a, "-q");
	free(run(&a, "ref", &p));
	cr_assert_eq(p.status, 0, "reference learn run: %s", e2e_proc_str(&p));
	text = e2e_slurp(path, len);
	cr_assert_not_null(text);
	e2e_argv_free(&a);
	free(cap);
	free(path);
	return text;
}

/* Lines of a file (0 when it does not exist). */
static size_t file_lines(const char *path)
{
	char *t = e2e_slurp(path, NULL);
	size_t n = t ? count_lines(t) : 0;
	free(t);
	return n;
}

/* The number in the summary's "lost:" line after "SOURCE UNIT...": the first all-digit word
 * that follows the source's name. -1 when there is no such line or figure. */
static long long lost_figure(const char *err, const char *source)
{
	const char *l = strstr(err, "svcsensor: lost:"), *eol, *s;
	char word[64];
	int n;

	if (!l)
		return -1;
	eol = strchr(l, '\n');
	for (s = strstr(l, source); s && (!eol || s < eol); s += n) {
		if (sscanf(s, "%63s%n", word, &n) != 1)
			return -1;
		word[strcspn(word, ",")] = '\0';
		if (word[0] >= '0' && word[0] <= '9' && strspn(word, "0123456789") == strlen(word))
			return atoll(word);
	}
	return -1;
}

/* The path of the first entry of dir whose name starts with prefix (malloc'd), or NULL. */
static char *find_prefixed(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *found = NULL;

	cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
	while (!found && (e = readdir(d)))
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
			found = e2e_path(dir, e->d_name);
	closedir(d);
	return found;
}

/* Problem 6: a full disk under the anomaly log. */
Test(losses, anomaly_log_full_disk_counts_lines_lost)
{
	char *small = mount_tmpfs("small", "64k"), *big = e2e_path(tdir, "big");
	char *cap = e2e_abspath(BASELINE), *small_log = e2e_path(small, "a.log"),
	     *big_log = e2e_path(big, "a.log");
	struct e2e_argv a;
	struct e2e_proc p;
	unsigned long long judged = 0, none = 0;

	cr_assert_eq(mkdir(big, 0755), 0);
	/* No map: every flow of the baseline is an anomaly (UNKNOWN_SOURCE_IP), ~190 kB of log
	 * lines for a 64 kB file system. */
	for (int pass = 0; pass < 2; pass++) {
		argv_start(&a);
		e2e_argv_addf(&a, "--read=%s", cap);
		e2e_argv_addf(&a, "--map=%s/no-map.json", tdir);
		e2e_argv_addf(&a, "--log=%s", pass ? small_log : big_log);
		e2e_argv_add(&a, "--print=none");
		e2e_argv_add(&a, "--report=");
		e2e_argv_add(&a, "-q");
		char *err = run(&a, pass ? "small" : "big", &p);
		if (!pass) {
			/* The lines the run should log, two ways: the file of a run with room, and
			 * the summary's anomalies (judged minus NONE). */
			cr_assert_eq(p.status, 0, "%s\n%s", e2e_proc_str(&p), err);
			const char *s = strstr(err, "flows judged ");
			cr_assert_not_null(s, "%s", err);
			cr_assert_eq(sscanf(s, "flows judged %llu", &judged), 1);
			s = strstr(s, "NONE ");
			cr_assert_not_null(s, "%s", err);
			cr_assert_eq(sscanf(s, "NONE %llu", &none), 1);
			cr_assert_gt(judged - none, 0);
			cr_assert_eq(file_lines(big_log), judged - none,
				     "log lines %zu, anomalies in the summary %llu",
				     file_lines(big_log), judged - none);
		} else {
			size_t written = file_lines(small_log);
			long long lost = lost_figure(err, "anomaly_log");
			cr_assert_eq(p.status, 1, "%s\n%s", e2e_proc_str(&p), err);
			/* The sink's own line; the "lost:" line names it too once the sink
			 * gives its figures through sink_ops.losses. */
			cr_assert_geq(e2e_count_lines_with(err, "No space left on device"), 1,
				      "no line names the reason:\n%s", err);
			cr_assert_gt(lost, 0, "no anomaly_log figure in a \"lost:\" line:\n%s",
				     err);
			cr_assert_lt(written, judged - none, "the file system was not full");
			cr_assert_eq((unsigned long long)lost + written, judged - none,
				     "lost %lld + in the file %zu != anomalies %llu:\n%s", lost,
				     written, judged - none, err);
		}
		free(err);
		e2e_argv_free(&a);
	}
	free(small);
	free(big);
	free(cap);
	free(small_log);
	free(big_log);
}

/* Wait (at most 20 s) until the file at path holds needle. */
static bool wait_for_text(const char *path, const char *needle)
{
	for (int i = 0; i < 2000; i++) {
		char *t = e2e_slurp(path, NULL);
		bool found = t && strstr(t, needle);
		free(t);
		if (found)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

/* Write [from, to) of data to fd, chunk bytes at a time, pausing pause_us between chunks. */
static void feed(int fd, const char *data, size_t from, size_t to, size_t chunk, unsigned pause_us)
{
	while (from < to) {
		size_t n = to - from < chunk ? to - from : chunk;
		ssize_t w = write(fd, data + from, n);
		if (w <= 0)
			return; /* the reader is gone (killed) */
		from += (size_t)w;
		if (pause_us)
			usleep(pause_us);
	}
}

/* Fill the file system of dir until it refuses a byte more. */
static void fill_up(const char *dir)
{
	char *p = e2e_path(dir, "filler"), block[4096] = {0};
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert_geq(fd, 0);
	while (write(fd, block, sizeof(block)) > 0)
		;
	while (write(fd, block, 1) > 0)
		;
	cr_assert_eq(errno, ENOSPC);
	close(fd);
	free(p);
}

/* Problem 2: learn from the baseline through stdin; once the map was loaded (its "no service
 * map yet" line), break the map's place, then feed the rest. The final save fails: the map is
 * in a fallback file, byte for byte the reference, and one line names it. */
static void final_save_fails(bool disk_full)
{
	size_t ref_len, cap_len, fb_len;
	char *ref = reference_map(&ref_len), *cap_path = e2e_abspath(BASELINE);
	char *cap = e2e_slurp(cap_path, &cap_len);
	char *mapdir = disk_full ? mount_tmpfs("mnt", "64k") : strdup(tdir);
	char *tmpdir = e2e_path(tdir, "tmp"), *map = e2e_path(mapdir, "m.json");
	char *fifo = e2e_path(tdir, "in.fifo"), *err_path = e2e_path(tdir, "run.err");
	struct e2e_argv a;
	struct e2e_proc p;
	pid_t pid;

	cr_assert_not_null(cap);
	cr_assert_eq(mkdir(tmpdir, 0755), 0);
	cr_assert_eq(setenv("TMPDIR", tmpdir, 1), 0); /* the child's fallback directory */
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	argv_start(&a);
	e2e_argv_add(&a, "--learn");
	e2e_argv_add(&a, "--read=-");
	e2e_argv_addf(&a, "--map=%s", map);
	e2e_argv_add(&a, "--print=none");
	e2e_argv_add(&a, "--report=");
	e2e_argv_add(&a, "-q");
	cr_assert_eq(e2e_spawn_in(argv_of(&a), tdir, fifo, NULL, err_path, &pid), 0);
	int fd = open(fifo, O_WRONLY);
	cr_assert_geq(fd, 0);
	feed(fd, cap, 0, 100000, 100000, 0);
	cr_assert(wait_for_text(err_path, "no service map yet"), "the run did not start");
	if (disk_full)
		fill_up(mapdir);
	else
		cr_assert_eq(mkdir(map, 0755), 0); /* the map's path is taken by a directory */
	feed(fd, cap, 100000, cap_len, 1 << 20, 0);
	close(fd);
	cr_assert_eq(e2e_wait(pid, RUN_TIMEOUT_MS, &p), 0);
	char *err = e2e_slurp(err_path, NULL);
	cr_assert_eq(p.status, 1, "%s\n%s", e2e_proc_str(&p), err);

	/* Beside the map when its directory takes files, else in $TMPDIR. */
	char *fb = find_prefixed(disk_full ? tmpdir : mapdir, "m.json.unsaved-");
	cr_assert_not_null(fb, "no fallback map:\n%s", err);
	cr_assert_eq(e2e_count_lines_with(err, fb), 1, "no line names %s:\n%s", fb, err);
	cr_assert_eq(
	    e2e_count_lines_with(err, disk_full ? "No space left on device" : "Is a directory"),
	    disk_full ? 3 : 2,
	    "the reason, in each failed save's line and the "
	    "fallback's:\n%s",
	    err);
	char *text = e2e_slurp(fb, &fb_len);
	cr_assert(fb_len == ref_len && memcmp(text, ref, ref_len) == 0,
		  "the fallback %s is not the map a normal run learns (%zu vs %zu bytes)", fb,
		  fb_len, ref_len);
	struct svcmap *m = svcmap__load(fb, NULL);
	cr_assert_not_null(m, "the fallback does not load");
	size_t sources, pairs, entries;
	svcmap__size(m, &sources, &pairs, &entries);
	cr_assert_gt(entries, 0);
	svcmap__free(m);

	free(text);
	free(fb);
	free(err);
	e2e_argv_free(&a);
	free(ref);
	free(cap_path);
	free(cap);
	free(mapdir);
	free(tmpdir);
	free(map);
	free(fifo);
	free(err_path);
}

Test(losses, final_map_save_fails_map_path_taken)
{
	final_save_fails(false);
}

Test(losses, final_map_save_fails_disk_full)
{
	final_save_fails(true);
}

/* Problem 3: `svcsensor --learn -r baseline.pcap | head -1`. The pipe is shrunk to one page,
 * so the console's lines (~28 kB) cannot all be in it when the reader closes: the run meets
 * EPIPE for sure. */
Test(losses, console_reader_closes_after_one_line)
{
	size_t ref_len, map_len;
	char *ref = reference_map(&ref_len), *cap = e2e_abspath(BASELINE);
	char *map = e2e_path(tdir, "m.json"), *fifo = e2e_path(tdir, "out.fifo");
	char *err_path = e2e_path(tdir, "run.err"), line[512];
	struct e2e_argv a;
	struct e2e_proc p;
	size_t n = 0;
	pid_t pid;

	cr_assert_eq(mkfifo(fifo, 0600), 0);
	/* Our read end first (non-blocking open needs no writer), so the size is set before the
	 * child writes anything. */
	int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* not the child's */
	cr_assert_geq(fd, 0);
	cr_assert_geq(fcntl(fd, F_SETPIPE_SZ, 4096), 4096);
	argv_start(&a);
	e2e_argv_add(&a, "--learn");
	e2e_argv_addf(&a, "--read=%s", cap);
	e2e_argv_addf(&a, "--map=%s", map);
	e2e_argv_add(&a, "--report=");
	e2e_argv_add(&a, "-q");
	cr_assert_eq(e2e_spawn_in(argv_of(&a), tdir, NULL, fifo, err_path, &pid), 0);
	cr_assert_eq(fcntl(fd, F_SETFL, 0), 0); /* blocking reads from now on */
	/* One line, a byte at a time. A read gives 0 until the child has opened its end. */
	for (int idle = 0; n < sizeof(line) - 1 && idle < 2000;) {
		ssize_t r = read(fd, line + n, 1);
		if (r == 1 && line[n] == '\n')
			break;
		if (r == 1)
			n++;
		else if (r == 0 && ++idle)
			usleep(10 * 1000);
		else
			break;
	}
	line[n] = '\0';
	close(fd); /* as head -1 does */
	cr_assert_not_null(strstr(line, "LEARNED"), "first line: \"%s\"", line);

	cr_assert_eq(e2e_wait(pid, RUN_TIMEOUT_MS, &p), 0);
	char *err = e2e_slurp(err_path, NULL);
	/* A reader that leaves is a normal use: 0 (README, Exit status). */
	cr_assert_eq(p.status, 0, "%s\n%s", e2e_proc_str(&p), err);
	cr_assert_eq(e2e_count_lines_with(err, "console: standard output closed"), 1, "%s", err);
	cr_assert_eq(e2e_count_lines_with(err, "flows learned 396"), 1, "no summary:\n%s", err);
	cr_assert_null(strstr(err, "svcsensor: lost:"), "nothing was lost:\n%s", err);
	char *text = e2e_slurp(map, &map_len);
	cr_assert(text && map_len == ref_len && memcmp(text, ref, ref_len) == 0,
		  "the saved map is not the map a normal run learns");
	struct svcmap *m = svcmap__load(map, NULL);
	cr_assert_not_null(m);
	svcmap__free(m);

	free(text);
	free(err);
	e2e_argv_free(&a);
	free(ref);
	free(cap);
	free(map);
	free(fifo);
	free(err_path);
}

/* A map of n made-up sources (its saves then take a while: a kill lands in one more often). */
static char *big_map(unsigned n, size_t *len)
{
	struct svcmap *m = svcmap__new();
	char *path = e2e_path(tdir, "big.json"), src[32], *text;

	cr_assert_not_null(m);
	for (unsigned i = 0; i < n; i++) {
		snprintf(src, sizeof(src), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		cr_assert_eq(svcmap__learn(m, src, "remote", "TLS", 100, 1, 2), 0);
	}
	cr_assert_eq(svcmap__save(m, path), 0);
	svcmap__free(m);
	text = e2e_slurp(path, len);
	cr_assert_not_null(text);
	free(path);
	return text;
}

/* kill -9 at 20 moments of a run that learns from a slow feed of the baseline (about 4 s) and
 * saves its map every second; every other run starts from a big map. After each kill the map
 * file is absent (only when the run had none and no save completed) or loads whole. */
Test(losses, kill9_during_map_saves)
{
	enum { RUNS = 20, BIG_SOURCES = 100000 };
	size_t cap_len, big_len;
	char *cap_path = e2e_abspath(BASELINE), *cap = e2e_slurp(cap_path, &cap_len);
	char *big = big_map(BIG_SOURCES, &big_len);
	char *map = e2e_path(tdir, "m.json"), *cfg = e2e_path(tdir, "save-often.json");
	char *fifo = e2e_path(tdir, "in.fifo");
	unsigned saved_new = 0, absent = 0, mid_save = 0;

	cr_assert_not_null(cap);
	cr_assert_eq(e2e_write(cfg, "{\"learn_save_interval\": 1}\n"), 0);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	for (unsigned run = 0; run < RUNS; run++) {
		bool from_big = run % 2;
		struct e2e_argv a;
		struct e2e_proc p;
		struct stat before = {0}, after;
		pid_t pid;

		unlink(map);
		if (from_big) {
			cr_assert_eq(e2e_write(map, big), 0);
			cr_assert_eq(stat(map, &before), 0);
		}
		argv_start(&a);
		e2e_argv_addf(&a, "--config=%s", cfg);
		e2e_argv_add(&a, "--learn");
		e2e_argv_add(&a, "--read=-");
		e2e_argv_addf(&a, "--map=%s", map);
		e2e_argv_add(&a, "--print=none");
		e2e_argv_add(&a, "--report=");
		e2e_argv_add(&a, "-q");
		cr_assert_eq(e2e_spawn_in(argv_of(&a), tdir, fifo, NULL, NULL, &pid), 0);
		int fd = open(fifo, O_WRONLY);
		cr_assert_geq(fd, 0);
		/* The kill comes at 0.2 s, 0.4 s, ... 4 s into the feed: 40 kB every 40 ms. */
		struct timespec t0, t;
		double kill_at = 0.2 * (run + 1);
		size_t off = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if ((double)(t.tv_sec - t0.tv_sec) +
				(double)(t.tv_nsec - t0.tv_nsec) / 1e9 >=
			    kill_at)
				break;
			if (off < cap_len) {
				size_t n = cap_len - off < 40000 ? cap_len - off : 40000;
				feed(fd, cap, off, off + n, n, 0);
				off += n;
			}
			usleep(40 * 1000);
		}
		kill(pid, SIGKILL);
		close(fd);
		cr_assert_eq(e2e_wait(pid, RUN_TIMEOUT_MS, &p), 0);
		cr_assert_eq(p.signal, SIGKILL, "run %u ended before the kill: %s", run,
			     e2e_proc_str(&p));
		/* A save's temporary file left behind: this kill landed in the middle of one. */
		char *tmp;
		while ((tmp = find_prefixed(tdir, ".m.json.tmp."))) {
			mid_save++;
			unlink(tmp);
			free(tmp);
		}

		if (stat(map, &after) != 0) {
			cr_assert_eq(errno, ENOENT);
			cr_assert_not(from_big, "run %u: the map it started from is gone", run);
			absent++;
		} else {
			struct svcmap *m = svcmap__load(map, NULL);
			size_t sources, pairs, entries;
			cr_assert_not_null(m, "run %u: the map file left by kill -9 is not whole",
					   run);
			svcmap__size(m, &sources, &pairs, &entries);
			if (from_big)
				cr_assert_geq(sources, BIG_SOURCES, "run %u: sources lost", run);
			svcmap__free(m);
			if (!from_big || after.st_ino != before.st_ino)
				saved_new++;
		}
		e2e_argv_free(&a);
	}
	cr_log_info("kill -9 x %d: in the middle of a save %u times; a save had completed in %u "
		    "runs, no map yet in %u",
		    RUNS, mid_save, saved_new, absent);
	free(cap_path);
	free(cap);
	free(big);
	free(map);
	free(cfg);
	free(fifo);
}

/* A leftover temporary file of a killed save, stamped `age_s` seconds ago. */
static char *leftover(const char *name, unsigned age_s)
{
	char *path = e2e_path(tdir, name);
	struct timespec t[2];
	cr_assert_eq(e2e_write(path, "{\"half a map"), 0);
	clock_gettime(CLOCK_REALTIME, &t[0]);
	t[0].tv_sec -= (time_t)age_s;
	t[1] = t[0];
	cr_assert_eq(utimensat(AT_FDCWD, path, t, 0), 0, "%s", strerror(errno));
	return path;
}

/* Was: every kill -9 mid-save (kill9_during_map_saves) left its ".m.json.tmp.XXXXXX" behind
 * for good. A run removes the idle ones of the files it saves, and only those. */
Test(losses, leftovers_of_a_killed_save_are_removed_at_start)
{
	char *map = e2e_path(tdir, "m.json"), *report = e2e_path(tdir, "r.txt");
	char *old_map = leftover(".m.json.tmp.Ab12Cd", 3600);
	char *old_twin = leftover(".r.txt.json.tmp.Xy34Zw", 600);
	char *fresh = leftover(".m.json.tmp.Fr56Sh", 0);	/* a save in progress */
	char *other = leftover(".other.json.tmp.Ot78Hr", 3600); /* not a file of this run */
	char *cap = e2e_abspath(BASELINE);
	struct e2e_argv a;
	struct e2e_proc p;

	argv_start(&a);
	e2e_argv_add(&a, "--learn");
	e2e_argv_addf(&a, "--read=%s", cap);
	e2e_argv_addf(&a, "--map=%s", map);
	e2e_argv_addf(&a, "--report=%s", report);
	e2e_argv_add(&a, "--print=none");
	e2e_argv_add(&a, "-q");
	char *err = run(&a, "sweep", &p);
	cr_assert_eq(p.status, 0, "%s\n%s", e2e_proc_str(&p), err);
	cr_assert_neq(access(old_map, F_OK), 0, "%s is still there:\n%s", old_map, err);
	cr_assert_neq(access(old_twin, F_OK), 0, "%s is still there:\n%s", old_twin, err);
	cr_assert_eq(access(fresh, F_OK), 0, "a fresh temporary (a save in progress) was removed");
	cr_assert_eq(access(other, F_OK), 0, "another file's temporary was removed");
	cr_assert_eq(e2e_count_lines_with(err, "left by an interrupted save"), 2, "%s", err);
	struct svcmap *m = svcmap__load(map, NULL);
	cr_assert_not_null(m, "the run's own map is not whole");
	svcmap__free(m);
	e2e_argv_free(&a);
	free(err);
	free(cap);
	free(map);
	free(report);
	free(old_map);
	free(old_twin);
	free(fresh);
	free(other);
}

/* Standard output on a device that takes nothing (/dev/full: ENOSPC): every console line is
 * lost, and the summary's figure is the flows printed (print all: every flow judged). */
Test(losses, console_lines_lost_are_counted)
{
	char *cap = e2e_abspath("pcaps/anomalies.pcap"), *out = e2e_path(tdir, "run.err");
	struct e2e_argv a;
	struct e2e_proc p;
	unsigned long long judged = 0;

	argv_start(&a);
	e2e_argv_addf(&a, "--read=%s", cap);
	e2e_argv_addf(&a, "--map=%s/no-map.json", tdir);
	e2e_argv_add(&a, "--log=");
	e2e_argv_add(&a, "--report=");
	e2e_argv_add(&a, "-q");
	cr_assert_eq(e2e_run(argv_of(&a), tdir, "/dev/full", out, RUN_TIMEOUT_MS, &p), 0);
	char *err = e2e_slurp(out, NULL);
	cr_assert_eq(p.status, 1, "%s\n%s", e2e_proc_str(&p), err);
	const char *s = strstr(err, "flows judged ");
	cr_assert(s && sscanf(s, "flows judged %llu", &judged) == 1 && judged > 0, "%s", err);
	cr_assert_eq(lost_figure(err, "console"), (long long)judged, "%s", err);
	cr_assert_eq(e2e_count_lines_with(err, "No space left on device"), 2,
		     "the console's one error line and the summary's reason:\n%s", err);
	free(err);
	e2e_argv_free(&a);
	free(cap);
	free(out);
}

/* ---- in process: the detector's loss figures and output_lost agree ---- */

/* n flows 10.42.0.130 -> 192.0.2.1 judged against no map (each an anomaly). */
static struct detector *judge_n(struct svc_config *cfg, FILE *console, unsigned n)
{
	struct detector *d = detector__new(cfg, false, console);

	cr_assert_not_null(d);
	for (unsigned i = 0; i < n; i++) {
		struct flow_record *r = flow_record__new();
		cr_assert_not_null(r);
		r->key.ipver = 4;
		r->key.proto = 6;
		r->key.sport = (uint16_t)(40000 + i);
		r->key.dport = 443;
		memcpy(r->key.src, (uint8_t[]){10, 42, 0, 130}, 4);
		memcpy(r->key.dst, (uint8_t[]){192, 0, 2, 1}, 4);
		r->first_us = 1700000000000000ULL;
		r->last_us = r->first_us + 1000;
		snprintf(r->app_name, sizeof(r->app_name), "TLS");
		cr_assert_neq(detector__flow(d, r), VERDICT_NONE);
		flow_record__free(r);
	}
	return d;
}

static const struct detector_loss *figure(const struct detector_loss *l, unsigned n,
					  const char *source, bool benign)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(l[i].source, source) == 0 && l[i].benign == benign)
			return &l[i];
	return NULL;
}

static void loss_config(struct svc_config *cfg, const char *log)
{
	char *map = e2e_path(tdir, "no-map.json");

	cr_assert_eq(config__defaults(cfg), 0);
	cr_assert_eq(config__set_str(&cfg->map_file, map), 0);
	cr_assert_eq(config__set_str(&cfg->log_file, log), 0);
	cr_assert_eq(config__set_str(&cfg->report_file, ""), 0);
	cfg->print = PRINT_ALL;
	free(map);
}

/* Console and anomaly log both on /dev/full: each figure counts every line, with ENOSPC, and
 * output_lost is their sum. */
Test(losses, detector_figures_add_up_to_output_lost)
{
	enum { N = 50 };
	struct svc_config cfg;
	struct detector_loss l[DETECTOR_LOSSES_MAX];
	FILE *full = fopen("/dev/full", "w");

	cr_assert_not_null(full);
	loss_config(&cfg, "/dev/full");
	struct detector *d = judge_n(&cfg, full, N);
	detector__finish(d); /* the lines were lost at its last flush: counted, not an error */
	unsigned n = detector__losses(d, l, DETECTOR_LOSSES_MAX);
	const struct detector_loss *con = figure(l, n, "console", false);
	const struct detector_loss *log = figure(l, n, "anomaly_log", false);
	cr_assert(con && log, "%u figures", n);
	cr_assert_eq(con->count, N);
	cr_assert_str_eq(con->what, "lines");
	cr_assert_eq(con->err, ENOSPC);
	cr_assert_eq(log->count, N);
	cr_assert_eq(detector__stats(d)->output_lost, con->count + log->count);
	cr_assert_null(figure(l, n, "console", true));
	detector__free(d);
	fclose(full);
	config__free(&cfg);
}

/* The console's reader went away: its lines are a benign figure, not in output_lost. */
Test(losses, closed_console_pipe_is_benign)
{
	enum { N = 50 };
	struct svc_config cfg;
	struct detector_loss l[DETECTOR_LOSSES_MAX];
	int p[2];
	char *log = e2e_path(tdir, "a.log");

	cr_assert_eq(pipe(p), 0);
	close(p[0]); /* the reader is gone before the first line */
	FILE *out = fdopen(p[1], "w");
	cr_assert_not_null(out);
	loss_config(&cfg, log);
	struct detector *d = judge_n(&cfg, out, N);
	detector__flush(d); /* the console's write meets EPIPE */
	cr_assert_eq(detector__finish(d), 0);
	unsigned n = detector__losses(d, l, DETECTOR_LOSSES_MAX);
	const struct detector_loss *gone = figure(l, n, "console", true);
	cr_assert_not_null(gone);
	cr_assert_eq(gone->count, N);
	cr_assert_eq(gone->err, EPIPE);
	cr_assert_eq(figure(l, n, "console", false)->count, 0);
	cr_assert_eq(detector__stats(d)->output_lost, 0);
	cr_assert_eq(file_lines(log), N); /* the other outputs go on */
	detector__free(d);
	fclose(out);
	config__free(&cfg);
	free(log);
}
