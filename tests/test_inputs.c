/* test_inputs.c - suites "inputs" and "pipeline": which input a run reads (input.h), the flow
 * CSV read in steps (flows_in__open / flows_in__rows), and a run whose set-up fails after its
 * input was opened: pipeline__run returns 2 after one line and gives back everything it took
 * (no file descriptor or socket left open). The live case runs in a private network
 * namespace (root; skipped without it). */
#include <criterion/criterion.h>

#include <dirent.h>
#include <signal.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e_util.h"
#include "netns.h"
#include "test_util.h"
#include "svcsensor/config.h"
#include "svcsensor/flows_in.h"
#include "svcsensor/input.h"
#include "svcsensor/pipeline.h"

static char *dir;

static void mkdir_tmp(void)
{
	dir = e2e_mkdtemp("inputs");
	cr_assert_not_null(dir);
}

static void rm_tmp(void)
{
	e2e_rmtree(dir);
	free(dir);
}

TestSuite(inputs, .init = mkdir_tmp, .fini = rm_tmp);

/* Open files, sockets, pipes of this process (each an entry of /proc/self/fd). */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static char *pcap(const char *name)
{
	char *p = e2e_abspath(name);
	cr_assert_not_null(p, "%s not found (the suite runs from the repository root)", name);
	return p;
}

/* input__open with threads workers over files (or a flow CSV), the errors captured. */
static int open_input(struct svc_config *cfg, const char *const *files, unsigned n,
		      const char *csv, unsigned threads, struct input **in, const char **err)
{
	atomic_bool stop;
	atomic_init(&stop, false);
	struct input_args a = {.cfg = cfg,
			       .files = files,
			       .n_files = n,
			       .flows_in = csv,
			       .threads = threads,
			       .learn = true,
			       .stop = &stop};
	cap_begin();
	int rc = input__open(&a, in);
	*err = cap_end();
	return rc;
}

Test(inputs, open_picks_the_reader)
{
	struct svc_config cfg;
	cr_assert_eq(config__defaults(&cfg), 0);
	struct input *in = NULL;
	const char *err;

	char *classic = pcap("pcaps/anomalies.pcap"), *ng = pcap("pcaps/edge/pcapng.pcapng");
	const char *one[] = {classic}, *mixed[] = {classic, ng};
	cr_assert_eq(open_input(&cfg, one, 1, NULL, 3, &in, &err), 0, "%s", err);
	cr_expect_str_eq(in->ops->name, "mapped");
	cr_expect_eq(in->n_workers, 3);
	cr_expect_not(in->ops->records);
	cr_expect_not(in->ops->live);
	in->ops->close(in);

	/* one file libpcap must read sends the whole list through libpcap, in order */
	cr_assert_eq(open_input(&cfg, mixed, 2, NULL, 1, &in, &err), 0, "%s", err);
	cr_expect_str_eq(in->ops->name, "libpcap");
	cr_expect_eq(in->n_workers, 1);
	in->ops->close(in);

	/* a flow CSV: finished flows, one worker whatever -t says */
	char *csv = e2e_path(dir, "f.csv");
	cr_assert_eq(e2e_write(csv, "src_ip,dst_ip,application_name\n10.0.0.1,10.0.0.2,DNS\n"), 0);
	cr_assert_eq(open_input(&cfg, NULL, 0, csv, 4, &in, &err), 0, "%s", err);
	cr_expect_str_eq(in->ops->name, "flow CSV");
	cr_expect(in->ops->records);
	cr_expect_eq(in->n_workers, 1);
	in->ops->close(in);

	/* nothing to read: one line */
	cr_expect_eq(open_input(&cfg, NULL, 0, NULL, 1, &in, &err), -EINVAL);
	cr_expect_eq(count_lines(err), 1, "%s", err);
	cr_expect(strstr(err, "no input"), "%s", err);
	cr_expect_null(in);
	free(csv);
	free(classic);
	free(ng);
	config__free(&cfg);
}

Test(inputs, unusable_inputs_fail_at_open_with_one_line_and_keep_nothing)
{
	struct svc_config cfg;
	cr_assert_eq(config__defaults(&cfg), 0);
	struct input *in = NULL;
	const char *err;
	char *missing = e2e_path(dir, "missing.csv"), *empty = e2e_path(dir, "empty.csv");
	char *junk = e2e_path(dir, "junk.pcap");
	cr_assert_eq(e2e_write(empty, ""), 0);
	cr_assert_eq(e2e_write(junk, "not a capture at all, just words\n"), 0);
	int fds = open_fds();

	cr_expect_eq(open_input(&cfg, NULL, 0, missing, 1, &in, &err), -ENOENT);
	cr_expect_eq(count_lines(err), 1, "%s", err);
	cr_expect_eq(open_input(&cfg, NULL, 0, empty, 1, &in, &err), -ENODATA);
	cr_expect(strstr(err, "empty file"), "%s", err);
	const char *files[] = {junk};
	cr_expect_lt(open_input(&cfg, files, 1, NULL, 2, &in, &err), 0);
	cr_expect_eq(count_lines(err), 1, "%s", err);
	cr_expect(strstr(err, "junk.pcap") && strstr(err, "cannot read capture"), "%s", err);
	cr_expect_eq(open_fds(), fds, "a failed open left a file open");
	free(missing);
	free(empty);
	free(junk);
	config__free(&cfg);
}

/* ---- the flow CSV in steps ------------------------------------------------------------------ */

struct rows {
	char app[8][64];
	unsigned n;
};

static int keep_app(void *ctx, const struct flow_record *rec)
{
	struct rows *r = ctx;
	cr_assert_lt(r->n, 8);
	snprintf(r->app[r->n++], sizeof(r->app[0]), "%s", rec->app_name);
	return 0;
}

/* libcsv ends a row at a lone CR too, so the line that ends the header can end rows after it:
 * those rows are read with the header by flows_in__open and must come out first, in order. */
Test(inputs, rows_on_the_header_line_come_first)
{
	char *csv = e2e_path(dir, "cr.csv");
	cr_assert_eq(e2e_write(csv, "src_ip,dst_ip,application_name\r"
				    "10.0.0.1,10.0.0.2,DNS\r"
				    "10.0.0.1,10.0.0.3,SSH\n"
				    "10.0.0.1,10.0.0.4,HTTP\n"),
		     0);
	struct flows_in *rd = NULL;
	cap_begin();
	int rc = flows_in__open(csv, &rd);
	const char *err = cap_end();
	cr_assert_eq(rc, 0, "%d: %s", rc, err);
	struct rows r = {0};
	cr_assert_eq(flows_in__rows(rd, keep_app, &r), 0);
	cr_assert_eq(r.n, 3);
	cr_expect_str_eq(r.app[0], "DNS");
	cr_expect_str_eq(r.app[1], "SSH");
	cr_expect_str_eq(r.app[2], "HTTP");
	cr_expect_eq(flows_in__stats(rd)->accepted, 3);
	cr_expect_eq(flows_in__stats(rd)->rejected, 0);
	flows_in__close(rd);

	/* the same through flows_in__read */
	struct rows again = {0};
	struct flows_in_stats st;
	cr_assert_eq(flows_in__read(csv, keep_app, &again, &st), 0);
	cr_expect_eq(again.n, 3);
	cr_expect_str_eq(again.app[0], "DNS");
	cr_expect_eq(st.accepted, 3);
	free(csv);
}

/* A header without a line end: the header is complete only at the end of the file. */
Test(inputs, header_without_line_end_is_a_header)
{
	char *csv = e2e_path(dir, "h.csv");
	cr_assert_eq(e2e_write(csv, "src_ip,dst_ip,application_name"), 0);
	struct flows_in *rd = NULL;
	cr_assert_eq(flows_in__open(csv, &rd), 0);
	struct rows r = {0};
	cr_expect_eq(flows_in__rows(rd, keep_app, &r), 0);
	cr_expect_eq(r.n, 0);
	flows_in__close(rd);
	free(csv);
}

/* ---- pipeline: a set-up that fails after the input was opened ------------------------------ */

TestSuite(pipeline, .init = mkdir_tmp, .fini = rm_tmp, .timeout = 60);

/* pipeline__run over cfg (files or none): status, stderr. */
static int run_captured(struct svc_config *cfg, const char *const *files, unsigned n,
			const char **err)
{
	struct pipeline_opts po = {.cfg = cfg, .files = files, .n_files = n, .quiet = true};
	cap_begin();
	int rc = pipeline__run(&po);
	*err = cap_end();
	return rc;
}

static void broken_map(struct svc_config *cfg)
{
	char *map = e2e_path(dir, "map.json");
	cr_assert_eq(e2e_write(map, "{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {"),
		     0);
	cr_assert_eq(config__set_str(&cfg->map_file, map), 0);
	free(map);
}

Test(pipeline, failed_setup_after_the_files_opened_keeps_nothing)
{
	struct svc_config cfg;
	cr_assert_eq(config__defaults(&cfg), 0);
	char *file = pcap("pcaps/anomalies.pcap");
	const char *files[] = {file};
	const char *err;
	cfg.print = PRINT_NONE;
	char *log = e2e_path(dir, "a.log"), *report = e2e_path(dir, "r.txt");
	cr_assert_eq(config__set_str(&cfg.log_file, log), 0);
	cr_assert_eq(config__set_str(&cfg.report_file, report), 0);
	int fds = open_fds();

	/* the detector cannot start: the map is broken (the mapped walk is open, two workers
	 * are built) */
	cfg.threads = 2;
	broken_map(&cfg);
	cr_expect_eq(run_captured(&cfg, files, 1, &err), 2);
	cr_expect_eq(count_lines(err), 1, "%s", err);
	cr_expect(strstr(err, "map.json"), "%s", err);
	cr_expect_eq(open_fds(), fds, "a file is left open:\n%s", err);

	/* the flow CSV export cannot be created: the detector is built, then freed */
	char *nomap = e2e_path(dir, "none.json"); /* detect mode: a warning, an empty map */
	cr_assert_eq(config__set_str(&cfg.map_file, nomap), 0);
	free(nomap);
	char *csv = e2e_path(dir, "no-such-dir/flows.csv");
	cr_assert_eq(config__set_str(&cfg.flows_out, csv), 0);
	cr_expect_eq(run_captured(&cfg, files, 1, &err), 2);
	cr_expect(strstr(err, "no-such-dir"), "%s", err);
	cr_expect_eq(open_fds(), fds, "a file is left open:\n%s", err);
	free(csv);
	free(log);
	free(report);
	free(file);
	config__free(&cfg);
}

Test(pipeline, failed_setup_closes_the_rings)
{
	struct netns ns = {.orig_fd = -1};
	char why[512];
	if (netns__setup(&ns, why, sizeof(why)) != 0) {
		netns__teardown(&ns);
		cr_skip_test("pipeline: %s", why);
	}
	struct svc_config cfg;
	cr_assert_eq(config__defaults(&cfg), 0);
	cr_assert_eq(config__set_str(&cfg.interface, "vb"), 0);
	cfg.threads = 2;
	cfg.print = PRINT_NONE;
	broken_map(&cfg);
	int fds = open_fds();
	const char *err;
	int rc = run_captured(&cfg, NULL, 0, &err);
	int after = open_fds();
	netns__teardown(&ns);
	cr_expect_eq(rc, 2, "%s", err);
	cr_expect(strstr(err, "map.json"), "%s", err);
	cr_expect_eq(after, fds, "%d descriptors before, %d after: a ring is left open\n%s", fds,
		     after, err);
	config__free(&cfg);
}

/* ---- the flow CSV through the pipeline, stopped ------------------------------------------- */

/* Sum of every "flows" counter of a map file. */
static unsigned long long map_flows(const char *path)
{
	char *text = e2e_slurp(path, NULL);
	cr_assert_not_null(text, "%s: no map saved", path);
	unsigned long long sum = 0;
	for (const char *p = text; (p = strstr(p, "\"flows\":")); p += 8)
		sum += strtoull(p + 8, NULL, 10);
	free(text);
	return sum;
}

/* SIGINT while the rows are read: the read stops, every row read before it is learned and
 * saved, the summary says so, exit 0. */
Test(pipeline, flow_csv_stopped_by_sigint_saves_what_was_learned, .timeout = 120)
{
	const char *bin = e2e_bin();
	if (!bin)
		cr_skip_test("no svcsensor binary (make test sets SVCSENSOR_BIN)");
	enum { ROWS = 4000000 };
	char *csv = e2e_path(dir, "big.csv"), *map = e2e_path(dir, "map.json");
	char *errp = e2e_path(dir, "err"), *report = e2e_path(dir, "r.txt");
	FILE *f = fopen(csv, "w");
	cr_assert_not_null(f);
	fprintf(f, "src_ip,dst_ip,application_name,bidirectional_bytes\n");
	for (unsigned i = 0; i < ROWS; i++)
		fprintf(f, "10.0.%u.%u,10.1.0.1,%s,100\n", (i >> 8) & 255, i & 255,
			i % 3 ? "DNS" : "HTTP");
	cr_assert_eq(fclose(f), 0);

	char *argv[] = {(char *)bin, "--learn", "--flows-in", csv, "-m", map, "--print", "none",
			"--report", report, "--log", "/dev/null", NULL};
	pid_t pid;
	cr_assert_eq(e2e_spawn(argv, dir, NULL, errp, &pid), 0);
	struct e2e_proc p;
	/* Under way: the map warning is printed before the first row is read. */
	for (unsigned waited = 0;; waited += 10) {
		char *err = e2e_slurp(errp, NULL);
		bool started = err && strstr(err, "learning a new one");
		free(err);
		if (started)
			break;
		cr_assert(e2e_running(pid, &p), "the run ended (%s) before it started reading",
			  e2e_proc_str(&p));
		cr_assert_lt(waited, 30000, "no start after 30 s");
		usleep(10000);
	}
	usleep(200000);
	cr_assert(e2e_running(pid, &p), "all %d rows read before SIGINT: raise ROWS", ROWS);
	kill(pid, SIGINT);
	cr_assert_eq(e2e_wait(pid, 60000, &p), 0);
	char *err = e2e_slurp(errp, NULL);
	cr_assert(!p.timed_out && !p.signal && p.status == 0, "%s\n%s", e2e_proc_str(&p), err);
	cr_expect_eq(e2e_count_lines_with(err, "stopping: saving what was learned"), 1, "%s", err);
	unsigned long long learned = 0, rejected = 1;
	const char *sum = strstr(err, "big.csv: ");
	cr_assert_not_null(sum, "%s", err);
	cr_assert_eq(sscanf(sum, "big.csv: %llu rows learned, %llu rejected", &learned, &rejected),
		     2, "%s", err);
	cr_expect(strstr(sum, "(stopped early)"), "%s", err);
	cr_expect_eq(rejected, 0);
	cr_expect_gt(learned, 0);
	cr_expect_lt(learned, (unsigned long long)ROWS);
	cr_expect_eq(map_flows(map), learned, "the map counts %llu flows, the summary %llu",
		     map_flows(map), learned);
	free(err);
	free(csv);
	free(map);
	free(errp);
	free(report);
}
