/* report_tick.c - what a periodic report save costs the detector thread.
 *
 * Opens the report sink (src/sink/report.c) as the detector does, hands it --rows flows of
 * distinct (source, destination) keys through its flow op, then calls its tick op until a save
 * is due and times that call: the time the detector thread spends on one periodic save. It
 * does this twice (the second save follows more flows of the same keys: the snapshot arrays
 * are then reused). It also reports the resident memory the rows took (ru_maxrss before and
 * after feeding them) and the time until the saved file is complete.
 *
 * Before the saver thread the tick wrote the report itself (sort, format, write, fsync);
 * since, it takes a snapshot and hands it over. The program uses only the sink's ops, so the
 * same source builds against either version. One line of key=value pairs:
 *   rows= tick1_ms= tick2_ms= save_done_ms= rss_kib_per_1000_rows=
 * Usage: report_tick [--rows N] [--dir DIR]   (DIR: where the report is written, default /tmp)
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "svcsensor/config.h"
#include "svcsensor/flow.h"
#include "svcsensor/sink.h"

extern const struct sink_ops report_sink;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long maxrss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void feed(void *self, unsigned rows, unsigned round)
{
	struct flow_record rec = {0};
	char src[32], dst[32];
	for (unsigned i = 0; i < rows; i++) {
		snprintf(src, sizeof(src), "10.%u.%u.%u", 1 + i / 65536 % 200, i / 256 % 256,
			 i % 256);
		snprintf(dst, sizeof(dst), "192.168.%u.%u", i / 7 % 256, i % 7);
		rec.bytes[0] = 1000 + i + round;
		rec.bytes[1] = 200;
		rec.first_us = i;
		struct sink_flow f = {.rec = &rec,
				      .src = src,
				      .dst = dst,
				      .app = i % 3 ? "TLS.Example" : "DNS",
				      .verdict = VERDICT_NONE};
		report_sink.flow(self, &f);
	}
}

/* The tick op at second *t, timed (ms); with interval 1 every second is due. */
static double timed_tick(void *self, uint64_t *t)
{
	double a = now_ms();
	report_sink.tick(self, (*t)++);
	return now_ms() - a;
}

/* Wait until no temporary file is left in dir and path exists: the save is complete. */
static void wait_saved(const char *dir, const char *path)
{
	for (;;) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "ls -a %s | grep -q '\\.tmp\\.'", dir);
		if (access(path, F_OK) == 0 && system(cmd) != 0)
			return;
		usleep(1000);
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"rows", required_argument, 0, 'n'}, {"dir", required_argument, 0, 'd'}, {0, 0, 0, 0}};
	unsigned rows = 100000;
	const char *dir = "/tmp";
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'n')
			rows = (unsigned)strtoul(optarg, NULL, 10);
		else if (c == 'd')
			dir = optarg;
		else
			return 2;
	}
	char tdir[512], path[600], jpath[620];
	snprintf(tdir, sizeof(tdir), "%s/report-tick-XXXXXX", dir);
	if (!mkdtemp(tdir)) {
		fprintf(stderr, "report_tick: %s: %s\n", tdir, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/report.txt", tdir);
	snprintf(jpath, sizeof(jpath), "%s/report.txt.json", tdir);

	struct svc_config cfg;
	if (config__defaults(&cfg) != 0)
		return 1;
	cfg.report_file = path;
	cfg.report_interval = 1;
	cfg.report_max_keys = rows + 1;
	struct sink_env env = {.cfg = &cfg};
	void *self = NULL;
	if (report_sink.open(&env, &self) != 0 || !self)
		return 1;

	long rss0 = maxrss_kib();
	feed(self, rows, 0);
	long rss1 = maxrss_kib();
	uint64_t t = 1000;
	report_sink.tick(self, t++); /* schedules the first save for the next second */
	double start = now_ms();
	double tick1 = timed_tick(self, &t);
	wait_saved(tdir, jpath);
	double done = now_ms() - start;
	usleep(50000); /* the saver marks itself idle just after the rename */
	feed(self, rows, 1);
	double tick2 = timed_tick(self, &t);
	int err = report_sink.close(self, true);

	printf("rows=%u tick1_ms=%.3f tick2_ms=%.3f save_done_ms=%.1f "
	       "rss_kib_per_1000_rows=%.1f close=%d\n",
	       rows, tick1, tick2, done, (double)(rss1 - rss0) * 1000.0 / rows, err);
	unlink(path);
	unlink(jpath);
	rmdir(tdir);
	return err ? 1 : 0;
}
