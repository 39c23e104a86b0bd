/* test_outpath.c - output paths (src/util/outpath.c, src/util/linefile.c, src/util/atomic_file.c)
 * through the real binary: devices written through and never renamed, "-" as standard output,
 * the flow CSV on disk while the run goes on, appended across runs, reopened on SIGHUP,
 * rotated; log_max_bytes 0; the preflight of every output location; the symlink rule.
 *
 * Expected counts come from the generator's manifest (pcaps/anomalies.manifest.json:
 * flows_total): without a service map every flow is judged UNKNOWN_SOURCE_IP, so the anomaly
 * log holds one line per flow and the flow CSV one row per flow. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "e2e_util.h"
#include "svcsensor/config.h"
#include "svcsensor/outpath.h"

#define RUN_TIMEOUT_MS 60000u
#define CAPTURE "pcaps/anomalies.pcap"

static size_t flows_total(void)
{
	json_error_t e;
	json_t *m = json_load_file("pcaps/anomalies.manifest.json", 0, &e);
	cr_assert_not_null(m, "manifest: %s", e.text);
	json_int_t n = json_integer_value(json_object_get(m, "flows_total"));
	json_decref(m);
	cr_assert_gt(n, 0);
	return (size_t)n;
}

struct out {
	struct e2e_proc p;
	char *out, *err; /* stdout, stderr (never NULL) */
};

static void out_free(struct out *o)
{
	free(o->out);
	free(o->err);
}

/* bin + the given arguments (NULL-terminated), run in dir, stdout and stderr kept. */
static void run_in(const char *dir, struct out *o, ...)
{
	struct e2e_argv a = {0};
	const char *bin = e2e_bin();
	cr_assert_not_null(bin, "svcsensor binary not found: set SVCSENSOR_BIN or build it");
	e2e_argv_add(&a, bin);
	va_list ap;
	va_start(ap, o);
	for (const char *s; (s = va_arg(ap, const char *));)
		e2e_argv_add(&a, s);
	va_end(ap);
	char *outp = e2e_path(dir, "stdout.txt"), *errp = e2e_path(dir, "stderr.txt");
	cr_assert_eq(e2e_run(a.v, dir, outp, errp, RUN_TIMEOUT_MS, &o->p), 0);
	o->out = e2e_slurp(outp, NULL);
	o->err = e2e_slurp(errp, NULL);
	cr_assert(o->out && o->err);
	unlink(outp);
	unlink(errp);
	free(outp);
	free(errp);
	e2e_argv_free(&a);
}

static char *capture(void)
{
	char *abs = e2e_abspath(CAPTURE);
	cr_assert_not_null(abs, CAPTURE " not found (the suite runs from the repository root)");
	return abs;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root (mknod, chown)");
}

/* A character device with /dev/null's numbers, in the test's directory. */
static char *make_null_device(const char *dir)
{
	struct stat st;
	char *dev = e2e_path(dir, "null-device");
	cr_assert_eq(stat("/dev/null", &st), 0);
	cr_assert_eq(mknod(dev, S_IFCHR | 0666, st.st_rdev), 0, "mknod: %s", strerror(errno));
	return dev;
}

static void assert_char_device(const char *path)
{
	struct stat st;
	cr_assert_eq(lstat(path, &st), 0, "%s: %s", path, strerror(errno));
	cr_assert(S_ISCHR(st.st_mode), "%s is no longer a character device (mode %o)", path,
		  (unsigned)st.st_mode);
}

/* ---- devices and "-" ---- */

/* Was: the report was saved by rename over the device, which became a regular file. */
Test(outpath, report_to_a_character_device_stays_a_device)
{
	need_root();
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture(), *dev = make_null_device(dir);
	struct out o;
	run_in(dir, &o, "-r", pcap, "--print", "none", "-q", "-m", "no-map.json", "--log", "",
	       "--report", dev, NULL);
	cr_assert_eq(o.p.status, 0, "%s\n%s", e2e_proc_str(&o.p), o.err);
	assert_char_device(dev);
	/* A report written through gets no JSON twin beside the device. */
	char *twin = e2e_path(dir, "null-device.json");
	cr_assert_not(exists(twin), "%s was created", twin);
	free(twin);
	out_free(&o);
	e2e_rmtree(dir);
	free(dev);
	free(pcap);
	free(dir);
}

/* Was: rotation renamed the device away (dev -> dev.1, ...) and created a regular file. */
Test(outpath, log_to_a_device_is_never_rotated)
{
	need_root();
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture(), *dev = make_null_device(dir);
	char *cfg = e2e_path(dir, "small.json"), *dev1 = e2e_path(dir, "null-device.1");
	cr_assert_eq(e2e_write(cfg, "{\"log_max_bytes\": 1000}\n"), 0);
	struct out o;
	run_in(dir, &o, "-c", cfg, "-r", pcap, "--print", "none", "-q", "-m", "no-map.json",
	       "--report", "", "--log", dev, NULL);
	cr_assert_eq(o.p.status, 0, "%s\n%s", e2e_proc_str(&o.p), o.err);
	assert_char_device(dev);
	cr_assert_not(exists(dev1), "the device was rotated");
	out_free(&o);
	e2e_rmtree(dir);
	free(dev);
	free(dev1);
	free(cfg);
	free(pcap);
	free(dir);
}

/* Was: --log - created a file named "-". Now the lines go to standard output, and the console
 * lines to standard error. */
Test(outpath, log_dash_is_standard_output)
{
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture(), *dash = e2e_path(dir, "-");
	size_t n = flows_total();
	struct out o;
	run_in(dir, &o, "-r", pcap, "--print", "all", "-q", "-m", "no-map.json", "--report", "",
	       "--log", "-", NULL);
	cr_assert_eq(o.p.status, 0, "%s\n%s", e2e_proc_str(&o.p), o.err);
	cr_assert_not(exists(dash), "a file named - was created");
	size_t lines;
	char **l = e2e_lines(o.out, &lines);
	cr_assert_eq(lines, n, "%zu lines on stdout, %zu flows", lines, n);
	for (size_t i = 0; i < lines; i++) {
		json_t *j = json_loads(l[i], 0, NULL);
		cr_assert_not_null(j, "not JSON: %.80s", l[i]);
		json_decref(j);
	}
	e2e_lines_free(l, lines);
	cr_assert_eq(e2e_count_lines_with(o.err, "UNKNOWN SOURCE IP"), n,
		     "the console lines are not on stderr:\n%.400s", o.err);
	out_free(&o);
	e2e_rmtree(dir);
	free(dash);
	free(pcap);
	free(dir);
}

/* Was: log_max_bytes 0 was refused (range 1..). Now it means no rotation at all. */
Test(outpath, log_max_bytes_zero_never_rotates)
{
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture();
	char *cfg = e2e_path(dir, "norotate.json"), *log = e2e_path(dir, "a.log");
	char *log1 = e2e_path(dir, "a.log.1");
	cr_assert_eq(e2e_write(cfg, "{\"log_max_bytes\": 0}\n"), 0);
	struct out o;
	run_in(dir, &o, "-c", cfg, "-r", pcap, "--print", "none", "-q", "-m", "no-map.json",
	       "--report", "", "--log", log, NULL);
	cr_assert_eq(o.p.status, 0, "%s\n%s", e2e_proc_str(&o.p), o.err);
	out_free(&o);
	/* Twice: the second run appends past any small size, still one file. */
	run_in(dir, &o, "-c", cfg, "-r", pcap, "--print", "none", "-q", "-m", "no-map.json",
	       "--report", "", "--log", log, NULL);
	cr_assert_eq(o.p.status, 0, "%s\n%s", e2e_proc_str(&o.p), o.err);
	char *text = e2e_slurp(log, NULL);
	cr_assert_not_null(text);
	cr_assert_eq(e2e_count_lines_with(text, "\"verdict\""), 2 * flows_total());
	cr_assert_not(exists(log1));
	free(text);
	out_free(&o);
	e2e_rmtree(dir);
	free(cfg);
	free(log);
	free(log1);
	free(pcap);
	free(dir);
}

/* ---- the flow CSV ---- */

/* A run reading a FIFO that the test feeds and keeps open: the process keeps running after
 * the capture's bytes are in, until the test closes its end. */
struct fed_run {
	pid_t pid;
	int fd; /* the FIFO's write end */
	char *pcap;
	size_t fed;
};

static void fed_start(struct fed_run *f, const char *dir, const char *const *args)
{
	struct e2e_argv a = {0};
	const char *bin = e2e_bin();
	char *fifo = e2e_path(dir, "capture.fifo"), *errp = e2e_path(dir, "fed.err");
	cr_assert_not_null(bin, "svcsensor binary not found: set SVCSENSOR_BIN or build it");
	cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", strerror(errno));
	e2e_argv_add(&a, bin);
	e2e_argv_add(&a, "-r");
	e2e_argv_add(&a, fifo);
	for (; *args; args++)
		e2e_argv_add(&a, *args);
	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(e2e_spawn(a.v, dir, NULL, errp, &f->pid), 0);
	/* Non-blocking until svcsensor opens its end (ENXIO before): never hang on a run that
	 * failed to start. */
	struct e2e_proc p;
	f->fd = -1;
	for (int i = 0; i < 3000 && f->fd < 0; i++) {
		f->fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (f->fd < 0) {
			cr_assert_eq(e2e_running(f->pid, &p), 1, "svcsensor ended: %s",
				     e2e_proc_str(&p));
			usleep(10000);
		}
	}
	cr_assert_geq(f->fd, 0, "svcsensor never opened the FIFO");
	cr_assert_eq(fcntl(f->fd, F_SETFL, 0), 0);
	f->pcap = e2e_slurp(CAPTURE, &f->fed);
	cr_assert_not_null(f->pcap);
	free(fifo);
	free(errp);
	e2e_argv_free(&a);
}

/* Write bytes [from, to) of the capture into the FIFO. */
static void fed_write(struct fed_run *f, size_t from, size_t to)
{
	while (from < to) {
		ssize_t w = write(f->fd, f->pcap + from, to - from);
		cr_assert_gt(w, 0, "write to the FIFO: %s", strerror(errno));
		from += (size_t)w;
	}
}

/* Rows (lines after the header) in path, 0 when it does not exist. */
static size_t rows_in(const char *path)
{
	char *t = e2e_slurp(path, NULL);
	size_t n = t ? e2e_count_lines_with(t, "") : 0;
	free(t);
	return n ? n - 1 : 0;
}

/* Poll (at most 30 s) until path holds at least `rows` rows; the count seen. */
static size_t wait_rows(const char *path, size_t rows)
{
	size_t n = 0;
	for (int i = 0; i < 3000 && (n = rows_in(path)) < rows; i++)
		usleep(10000);
	return n;
}

/* Every record has the header's columns; ids in *ids (marked, each at most once). */
static size_t check_csv(const char *path, bool *ids, size_t n_ids, const char *header)
{
	size_t len;
	char *t = e2e_slurp(path, &len);
	cr_assert_not_null(t, "%s missing", path);
	cr_assert(len > 0 && t[len - 1] == '\n', "%s ends in a torn row", path);
	cr_assert_eq(strncmp(t, header, strlen(header)), 0, "%s: header %.60s", path, t);
	cr_assert_eq(e2e_count_lines_with(t, "id,expiration_id,"), 1, "%s: headers", path);
	struct e2e_csv c;
	cr_assert_eq(e2e_csv_parse(t, len, &c), 0);
	for (size_t i = 0; i < c.nrows; i++) {
		cr_assert_eq(c.rlen[i], c.ncols, "%s: row %zu has %zu fields", path, i, c.rlen[i]);
		unsigned long id = strtoul(c.rows[i][0], NULL, 10);
		if (ids) {
			cr_assert_lt(id, n_ids);
			cr_assert_not(ids[id], "%s: id %lu twice", path, id);
			ids[id] = true;
		}
	}
	size_t rows = c.nrows;
	e2e_csv_free(&c);
	free(t);
	return rows;
}

/* Was: rows sat in a 1 MiB stdio buffer until exit: 0 bytes while running, all lost to a
 * SIGKILL. Now the rows of a pass are in the file while the run goes on, and survive it. */
Test(outpath, flow_csv_rows_are_on_disk_while_running)
{
	char *dir = e2e_mkdtemp("outpath"), *csv = e2e_path(dir, "flows.csv");
	const char *args[] = {"-o",	     csv,	 "--print", "none",  "-q", "-m",
			      "no-map.json", "--report", "",	    "--log", "",   NULL};
	struct fed_run f;
	fed_start(&f, dir, args);
	fed_write(&f, 0, f.fed); /* the whole capture, the FIFO kept open */
	size_t seen = wait_rows(csv, 1);
	struct e2e_proc p;
	cr_assert_eq(e2e_running(f.pid, &p), 1, "the run ended: %s", e2e_proc_str(&p));
	cr_assert_gt(seen, 0, "no row in the file while the run goes on");
	kill(f.pid, SIGKILL);
	cr_assert_eq(e2e_wait(f.pid, RUN_TIMEOUT_MS, &p), 0);
	cr_assert_eq(p.signal, SIGKILL);
	size_t rows = check_csv(csv, NULL, 0, "id,");
	cr_assert_geq(rows, seen, "rows lost to SIGKILL");
	close(f.fd);
	free(f.pcap);
	e2e_rmtree(dir);
	free(csv);
	free(dir);
}

/* Was: SIGHUP did not reopen the flow CSV (rows went on into the renamed file). */
Test(outpath, flow_csv_reopened_on_sighup)
{
	char *dir = e2e_mkdtemp("outpath"), *csv = e2e_path(dir, "flows.csv");
	char *old = e2e_path(dir, "flows.csv.old"), *map = e2e_path(dir, "m.json");
	const char *args[] = {"--learn", "-o", csv,	   "--print", "none", "-q",
			      "-m",	 map,  "--report", "",	      NULL};
	size_t n = flows_total();
	struct fed_run f;
	fed_start(&f, dir, args);
	fed_write(&f, 0, f.fed / 2);
	cr_assert_gt(wait_rows(csv, 1), 0, "no row after half the capture");
	cr_assert_eq(rename(csv, old), 0);
	kill(f.pid, SIGHUP);
	for (int i = 0; i < 3000 && !exists(csv); i++)
		usleep(10000);
	cr_assert(exists(csv), "SIGHUP did not reopen %s", csv);
	fed_write(&f, f.fed / 2, f.fed);
	close(f.fd);
	struct e2e_proc p;
	cr_assert_eq(e2e_wait(f.pid, RUN_TIMEOUT_MS, &p), 0);
	cr_assert_eq(p.status, 0, "%s", e2e_proc_str(&p));
	bool *ids = calloc(n, sizeof(*ids));
	size_t a = check_csv(old, ids, n, "id,"), b = check_csv(csv, ids, n, "id,");
	cr_assert_gt(a, 0);
	cr_assert_gt(b, 0, "nothing went to the reopened file");
	cr_assert_eq(a + b, n, "%zu + %zu rows, %zu flows", a, b, n);
	free(ids);
	free(f.pcap);
	e2e_rmtree(dir);
	free(csv);
	free(old);
	free(map);
	free(dir);
}

/* Was: "w": a second run truncated the file. Now it appends, one header. */
Test(outpath, flow_csv_second_run_appends_without_a_second_header)
{
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture(), *csv = e2e_path(dir, "flows.csv");
	size_t n = flows_total();
	for (int i = 0; i < 2; i++) {
		struct out o;
		run_in(dir, &o, "-r", pcap, "-o", csv, "--print", "none", "-q", "-m", "no-map.json",
		       "--report", "", "--log", "", NULL);
		cr_assert_eq(o.p.status, 0, "%s\n%s", e2e_proc_str(&o.p), o.err);
		out_free(&o);
	}
	cr_assert_eq(check_csv(csv, NULL, 0, "id,"), 2 * n);
	e2e_rmtree(dir);
	free(csv);
	free(pcap);
	free(dir);
}

/* A file written with the verdict column (detect) is not appended to without it (learn). */
Test(outpath, flow_csv_with_another_header_is_refused)
{
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture(), *csv = e2e_path(dir, "flows.csv");
	struct out o;
	run_in(dir, &o, "-r", pcap, "-o", csv, "--print", "none", "-q", "-m", "no-map.json",
	       "--report", "", "--log", "", NULL);
	cr_assert_eq(o.p.status, 0, "%s\n%s", e2e_proc_str(&o.p), o.err);
	out_free(&o);
	long size = e2e_file_size(csv);
	run_in(dir, &o, "--learn", "-r", pcap, "-o", csv, "--print", "none", "-q", "-m", "m.json",
	       "--report", "", NULL);
	cr_assert_eq(o.p.status, 2, "%s\n%s", e2e_proc_str(&o.p), o.err);
	cr_assert_eq(e2e_count_lines_with(o.err, "another header"), 1, "%s", o.err);
	cr_assert_eq(e2e_count_lines_with(o.err, "packets "), 0, "something was read:\n%s", o.err);
	cr_assert_eq(e2e_file_size(csv), size);
	out_free(&o);
	e2e_rmtree(dir);
	free(csv);
	free(pcap);
	free(dir);
}

/* Was: nothing rotated the flow CSV (the keys did not exist). */
Test(outpath, flow_csv_rotates_by_size)
{
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture(), *csv = e2e_path(dir, "flows.csv");
	char *cfg = e2e_path(dir, "rot.json");
	const long max = 8192;
	size_t n = flows_total(), total = 0;
	cr_assert_eq(e2e_write(cfg, "{\"flows_max_bytes\": 8192, \"flows_keep\": 1000}\n"), 0);
	struct out o;
	run_in(dir, &o, "-c", cfg, "-r", pcap, "-o", csv, "--print", "none", "-q", "-m",
	       "no-map.json", "--report", "", "--log", "", NULL);
	cr_assert_eq(o.p.status, 0, "%s\n%s", e2e_proc_str(&o.p), o.err);
	out_free(&o);
	bool *ids = calloc(n, sizeof(*ids));
	unsigned files = 0;
	for (unsigned i = 0;; i++) {
		char name[64];
		snprintf(name, sizeof(name), i ? "flows.csv.%u" : "flows.csv", i);
		char *p = e2e_path(dir, name);
		if (!exists(p)) {
			free(p);
			break;
		}
		cr_assert_leq(e2e_file_size(p), max, "%s over %ld bytes", p, max);
		total += check_csv(p, ids, n, "id,expiration_id,");
		files++;
		free(p);
	}
	cr_assert_gt(files, 2, "%u files", files);
	cr_assert_eq(total, n, "%zu rows in %u files, %zu flows", total, files, n);
	free(ids);
	e2e_rmtree(dir);
	free(cfg);
	free(csv);
	free(pcap);
	free(dir);
}

Test(outpath, flows_out_dash_is_standard_output)
{
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture(), *dash = e2e_path(dir, "-");
	struct out o;
	run_in(dir, &o, "-r", pcap, "-o", "-", "--print", "all", "-q", "-m", "no-map.json",
	       "--report", "", "--log", "", NULL);
	cr_assert_eq(o.p.status, 0, "%s\n%s", e2e_proc_str(&o.p), o.err);
	cr_assert_not(exists(dash));
	struct e2e_csv c;
	cr_assert_eq(e2e_csv_parse(o.out, strlen(o.out), &c), 0, "stdout is no CSV");
	cr_assert_eq(c.nrows, flows_total());
	cr_assert_eq(e2e_csv_col(&c, "verdict"), (int)c.ncols - 1);
	e2e_csv_free(&c);
	cr_assert_eq(e2e_count_lines_with(o.err, "UNKNOWN SOURCE IP"), flows_total());
	out_free(&o);
	e2e_rmtree(dir);
	free(dash);
	free(pcap);
	free(dir);
}

/* ---- preflight and symlinks ---- */

/* One line naming path and containing reason, exit 2, nothing read (no summary). */
static void refused(struct out *o, const char *path, const char *reason)
{
	cr_assert_eq(o->p.status, 2, "%s\n%s", e2e_proc_str(&o->p), o->err);
	cr_assert_eq(e2e_count_lines_with(o->err, ""), 1, "not one line:\n%s", o->err);
	cr_assert(strstr(o->err, path) && strstr(o->err, reason), "no %s / %s in: %s", path, reason,
		  o->err);
}

/* Was: the learned map's missing directory was found at the save, after the whole input. */
Test(outpath, preflight_map_in_a_missing_directory)
{
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture();
	struct out o;
	run_in(dir, &o, "--learn", "-r", pcap, "--print", "none", "-q", "-m",
	       "/nonexistent-svcsensor/m.json", "--report", "", NULL);
	refused(&o, "/nonexistent-svcsensor/m.json", "missing directory");
	out_free(&o);
	e2e_rmtree(dir);
	free(pcap);
	free(dir);
}

Test(outpath, preflight_report_in_a_missing_directory)
{
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture();
	struct out o;
	run_in(dir, &o, "-r", pcap, "--print", "none", "-q", "-m", "no-map.json", "--log", "",
	       "--report", "/nonexistent-svcsensor/r.txt", NULL);
	refused(&o, "/nonexistent-svcsensor/r.txt", "missing directory");
	out_free(&o);
	e2e_rmtree(dir);
	free(pcap);
	free(dir);
}

Test(outpath, preflight_directory_in_the_way)
{
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture(), *sub = e2e_path(dir, "sub");
	cr_assert_eq(mkdir(sub, 0700), 0);
	struct out o;
	run_in(dir, &o, "-r", pcap, "--print", "none", "-q", "-m", "no-map.json", "--report", "",
	       "--log", sub, NULL);
	refused(&o, sub, "Is a directory");
	out_free(&o);
	rmdir(sub);
	e2e_rmtree(dir);
	free(sub);
	free(pcap);
	free(dir);
}

/* Was: a symlink planted in the output directory by another user was followed: the log was
 * appended to the file of the planter's choosing. */
Test(outpath, untrusted_symlink_is_refused)
{
	need_root();
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture();
	char *victim = e2e_path(dir, "victim"), *link = e2e_path(dir, "planted.log");
	cr_assert_eq(e2e_write(victim, "keep me\n"), 0);
	cr_assert_eq(symlink(victim, link), 0);
	cr_assert_eq(lchown(link, 65534, 65534), 0, "lchown: %s", strerror(errno));
	struct out o;
	run_in(dir, &o, "-r", pcap, "--print", "none", "-q", "-m", "no-map.json", "--report", "",
	       "--log", link, NULL);
	refused(&o, link, "untrusted symlink");
	char *t = e2e_slurp(victim, NULL);
	cr_assert_str_eq(t, "keep me\n");
	free(t);
	out_free(&o);
	e2e_rmtree(dir);
	free(victim);
	free(link);
	free(pcap);
	free(dir);
}

/* Was: the atomic save renamed over the link itself. Now the target is replaced. */
Test(outpath, trusted_symlink_report_replaces_its_target)
{
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture();
	char *target = e2e_path(dir, "target.txt"), *link = e2e_path(dir, "report.txt");
	char *jl = e2e_path(dir, "report.txt.json");
	cr_assert_eq(e2e_write(target, "old\n"), 0);
	cr_assert_eq(symlink("target.txt", link), 0);
	struct out o;
	run_in(dir, &o, "-r", pcap, "--print", "none", "-q", "-m", "no-map.json", "--log", "",
	       "--report", link, NULL);
	cr_assert_eq(o.p.status, 0, "%s\n%s", e2e_proc_str(&o.p), o.err);
	struct stat st;
	cr_assert_eq(lstat(link, &st), 0);
	cr_assert(S_ISLNK(st.st_mode), "the link was replaced by a file");
	char *t = e2e_slurp(target, NULL);
	cr_assert_not_null(t);
	cr_assert(strstr(t, "On ") && strstr(t, " anomalies"), "target holds no report: %.80s", t);
	free(t);
	out_free(&o);
	unlink(jl);
	e2e_rmtree(dir);
	free(jl);
	free(target);
	free(link);
	free(pcap);
	free(dir);
}

/* ---- FIFOs and full devices ---- */

/* The read end of a FIFO, opened before the writer (so svcsensor's open finds a reader). */
static int fifo_reader(const char *fifo)
{
	cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", strerror(errno));
	int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", fifo, strerror(errno));
	return fd;
}

/* bin + args in dir, stderr kept in dir/err.txt; the pid. */
static pid_t spawn_in(const char *dir, const char *const *args)
{
	struct e2e_argv a = {0};
	const char *bin = e2e_bin();
	char *errp = e2e_path(dir, "err.txt");
	pid_t pid;
	cr_assert_not_null(bin, "svcsensor binary not found: set SVCSENSOR_BIN or build it");
	e2e_argv_add(&a, bin);
	for (; *args; args++)
		e2e_argv_add(&a, *args);
	cr_assert_eq(e2e_spawn(a.v, dir, NULL, errp, &pid), 0);
	free(errp);
	e2e_argv_free(&a);
	return pid;
}

/* A FIFO with a small log_max_bytes: every line reaches the reader, the FIFO is never renamed. */
Test(outpath, log_to_a_fifo_is_written_through)
{
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture(), *fifo = e2e_path(dir, "log.fifo");
	char *cfg = e2e_path(dir, "small.json"), *fifo1 = e2e_path(dir, "log.fifo.1");
	cr_assert_eq(e2e_write(cfg, "{\"log_max_bytes\": 1000}\n"), 0);
	int rd = fifo_reader(fifo);
	const char *args[] = {"-c", cfg,	   "-r",       pcap, "--print", "none", "-q",
			      "-m", "no-map.json", "--report", "",   "--log",	fifo,	NULL};
	pid_t pid = spawn_in(dir, args);
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	struct e2e_proc p;
	bool ended = false;
	/* Non-blocking reads: 0 means no writer (yet, or any more), EAGAIN a writer and no data. */
	for (int idle = 0; idle < 6000;) {
		ssize_t n = read(rd, buf + len, cap - 1 - len);
		if (n > 0) {
			len += (size_t)n;
			idle = 0;
			continue;
		}
		if (ended)
			break;
		ended = e2e_running(pid, &p) == 0;
		if (!ended) {
			usleep(5000);
			idle++;
		}
	}
	cr_assert(ended, "svcsensor did not end");
	buf[len] = '\0';
	cr_assert_eq(p.status, 0, "%s", e2e_proc_str(&p));
	cr_assert_eq(e2e_count_lines_with(buf, "\"verdict\""), flows_total());
	struct stat st;
	cr_assert_eq(lstat(fifo, &st), 0);
	cr_assert(S_ISFIFO(st.st_mode), "the FIFO was replaced");
	cr_assert_not(exists(fifo1), "the FIFO was rotated");
	close(rd);
	free(buf);
	e2e_rmtree(dir);
	free(fifo);
	free(fifo1);
	free(cfg);
	free(pcap);
	free(dir);
}

/* The FIFO's reader goes away: lines are lost and counted (exit 1, one line), the sensor is not
 * killed by SIGPIPE. The log is larger than a pipe's buffer, so a write must meet the closed
 * end. */
Test(outpath, fifo_reader_gone_is_a_counted_loss_not_a_signal)
{
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture(), *fifo = e2e_path(dir, "log.fifo");
	char *errp = e2e_path(dir, "err.txt");
	int rd = fifo_reader(fifo);
	const char *args[] = {"-r",	     pcap,	 "--print", "none",  "-q", "-m",
			      "no-map.json", "--report", "",	    "--log", fifo, NULL};
	pid_t pid = spawn_in(dir, args);
	char buf[4096];
	struct e2e_proc p;
	ssize_t n = 0;
	for (int i = 0; i < 6000 && (n = read(rd, buf, sizeof(buf))) <= 0; i++)
		usleep(5000);
	cr_assert_gt(n, 0, "nothing came through the FIFO");
	close(rd);
	cr_assert_eq(e2e_wait(pid, RUN_TIMEOUT_MS, &p), 0);
	char *err = e2e_slurp(errp, NULL);
	cr_assert_eq(p.signal, 0, "killed: %s\n%s", e2e_proc_str(&p), err);
	cr_assert_eq(p.status, 1, "%s\n%s", e2e_proc_str(&p), err);
	cr_assert_eq(e2e_count_lines_with(err, "cannot write: Broken pipe"), 1, "%s", err);
	free(err);
	e2e_rmtree(dir);
	free(errp);
	free(fifo);
	free(pcap);
	free(dir);
}

/* A flow CSV whose header cannot be written is refused at start (one line, exit 2, nothing
 * read); rows lost later are counted like the anomaly log's (src/util/linefile.c, the
 * outputs suite's /dev/full tests). */
Test(outpath, flow_csv_that_cannot_be_written_is_refused_at_start)
{
	char *dir = e2e_mkdtemp("outpath"), *pcap = capture();
	struct out o;
	run_in(dir, &o, "-r", pcap, "-o", "/dev/full", "--print", "none", "-q", "-m", "no-map.json",
	       "--report", "", "--log", "", NULL);
	cr_assert_eq(o.p.status, 2, "%s\n%s", e2e_proc_str(&o.p), o.err);
	cr_assert_eq(e2e_count_lines_with(o.err, "/dev/full: cannot open the flow CSV: cannot "
						 "write its header: No space left on device"),
		     1, "%s", o.err);
	cr_assert_eq(e2e_count_lines_with(o.err, "packets "), 0, "something was read:\n%s", o.err);
	out_free(&o);
	e2e_rmtree(dir);
	free(pcap);
	free(dir);
}

/* Not root: the preflight asks the kernel with the effective ids (faccessat AT_EACCESS). The
 * check runs in a child that became nobody. */
Test(outpath, preflight_permission_for_a_non_root_user)
{
	need_root();
	char *dir = e2e_mkdtemp("outpath"), *report = e2e_path(dir, "r.txt");
	cr_assert_eq(chmod(dir, 0755), 0); /* root's, not writable by nobody */
	struct svc_config cfg;
	cr_assert_eq(config__defaults(&cfg), 0);
	cr_assert_eq(config__set_str(&cfg.report_file, report), 0);
	cr_assert_eq(config__set_str(&cfg.log_file, ""), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 2); /* its one line is not ours to show */
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(3);
		_exit(outpath__preflight(&cfg, false) == -EACCES ? 0 : 1);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	/* Root passes the same check (only the shape is checked for root). */
	cr_assert_eq(outpath__preflight(&cfg, false), 0);
	config__free(&cfg);
	e2e_rmtree(dir);
	free(report);
	free(dir);
}
