/* test_report.c - the report's bound (report_max_keys, the (other) rows, the folded count), its
 * saves off the detector thread (a slowed disk: a loop device throttled by the block cgroup),
 * and the real errno of a failed write. The report's format tests are in test_outputs.c. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "e2e_util.h"
#include "netns.h"
#include "svcsensor/config.h"
#include "svcsensor/report.h"
#include "svcsensor/sink.h"
#include "test_util.h"

extern const struct sink_ops report_sink; /* src/sink/report.c */

/* ---- the bound, in process ---- */

static void add(struct report *r, enum verdict v, const char *src, const char *dst, const char *app,
		uint64_t bytes, uint64_t first_us)
{
	cr_assert_eq(report__add(r, v, src, dst, app, bytes, first_us), 0, "%s -> %s", src, dst);
}

static char *text_of(const struct report *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	cr_assert_not_null(m);
	cr_assert_eq(report__write_text(r, m), 0);
	fclose(m);
	return buf;
}

/* Three rows kept; the flows of two further keys (one in another verdict: the bound is over
 * every verdict) go to the (other) row of their verdict; a flow of a kept key is never folded.
 * Expected text derived by hand: sources by bytes descending, (other) last, shares of
 * 110 / 160 and 50 / 160. */
Test(report, rows_beyond_max_keys_fold_into_other)
{
	struct report *r = report__new();
	cr_assert_not_null(r);
	report__set_max_keys(r, 3);
	add(r, VERDICT_NONE, "10.0.0.1", "10.0.0.2", "DNS", 100, 1);
	add(r, VERDICT_NONE, "10.0.0.1", "10.0.0.3", "NTP", 50, 2);
	add(r, VERDICT_NONE, "10.0.0.9", "remote", "HTTP", 500, 3);
	add(r, VERDICT_NONE, "10.0.0.4", "10.0.0.5", "TLS", 1000, 4);	       /* folded */
	add(r, VERDICT_NONE, "10.0.0.1", "10.0.0.2", "HTTP", 10, 5);	       /* kept key */
	add(r, VERDICT_UNKNOWN_SOURCE_IP, "10.0.0.7", "remote", "SSH", 70, 6); /* folded */
	cr_assert_eq(report__keys(r), 3);
	cr_assert_eq(report__folded(r), 2);

	char *text = text_of(r);
	const char *none = "+++++++ NONE anomaly flows +++++++\n"
			   "+ 10.0.0.9        exchange       500 bytes with: \n"
			   "\t - remote         ,       500 bytes (100.00%) using ['HTTP']\n"
			   "+ 10.0.0.1        exchange       160 bytes with: \n"
			   "\t - 10.0.0.2       ,       110 bytes (68.75%) using ['DNS', 'HTTP']\n"
			   "\t - 10.0.0.3       ,        50 bytes (31.25%) using ['NTP']\n"
			   "+ (other)         exchange      1000 bytes with: \n"
			   "\t - (other)        ,      1000 bytes (100.00%) using ['TLS']\n\n";
	char usi[256];
	snprintf(usi, sizeof(usi),
		 "+++++++ %s anomaly flows +++++++\n"
		 "+ (other)         exchange        70 bytes with: \n"
		 "\t - (other)        ,        70 bytes (100.00%%) using ['SSH']\n\n",
		 verdict__label(VERDICT_UNKNOWN_SOURCE_IP));
	cr_assert_not_null(strstr(text, none), "NONE section:\n%s", text);
	cr_assert_not_null(strstr(text, usi), "UNKNOWN_SOURCE_IP section:\n%s", text);
	cr_assert_not_null(strstr(text, "+++++++ On 6 flows, 1 anomalies +++++++\n"), "%s", text);
	free(text);

	/* The JSON twin: the same (other) row, last among its verdict's sources. */
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	cr_assert_eq(report__write_json(r, m), 0);
	fclose(m);
	json_error_t je;
	json_t *root = json_loads(buf, 0, &je);
	cr_assert_not_null(root, "JSON: %s\n%s", je.text, buf);
	json_t *srcs =
	    json_object_get(json_array_get(json_object_get(root, "verdicts"), 0), "sources");
	cr_assert_eq(json_array_size(srcs), 3);
	json_t *other = json_array_get(srcs, 2);
	cr_assert_str_eq(json_string_value(json_object_get(other, "source")), "(other)");
	cr_assert_eq(json_integer_value(json_object_get(other, "flows")), 1);
	json_t *od = json_array_get(json_object_get(other, "destinations"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(od, "destination")), "(other)");
	cr_assert_eq(json_integer_value(json_object_get(od, "bytes")), 1000);
	json_decref(root);
	free(buf);
	report__free(r);
}

/* Without a bound (report__new's default) nothing is folded. */
Test(report, no_bound_keeps_every_row)
{
	struct report *r = report__new();
	char src[32];
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(src, sizeof(src), "10.1.%u.%u", i / 256, i % 256);
		add(r, VERDICT_NONE, src, "remote", "TLS", i, i);
	}
	cr_assert_eq(report__keys(r), 5000);
	cr_assert_eq(report__folded(r), 0);
	report__free(r);
}

/* ---- the real errno of a failed write ---- */

static struct report *big_report(unsigned rows)
{
	struct report *r = report__new();
	char src[32];
	for (unsigned i = 0; i < rows; i++) {
		snprintf(src, sizeof(src), "10.2.%u.%u", i / 256, i % 256);
		add(r, VERDICT_NONE, src, "remote", "TLS.Example", 1000 + i, i);
	}
	return r;
}

/* A write that fails inside the writer (the report is larger than the stream's buffer)
 * returns the stream's own errno: /dev/full says ENOSPC (it was -EIO). */
Test(report, writers_return_the_streams_errno)
{
	struct report *r = big_report(2000);
	for (int json = 0; json < 2; json++) {
		FILE *f = fopen("/dev/full", "w");
		cr_assert_not_null(f, "/dev/full: %s", strerror(errno));
		int err = json ? report__write_json(r, f) : report__write_text(r, f);
		cr_assert_eq(err, -ENOSPC, "%s: %d (%s)", json ? "JSON" : "text", err,
			     strerror(-err));
		fclose(f);
	}
	report__free(r);
}

/* A tmpfs of a few pages, filled: every write on it fails with ENOSPC. Root only. The mount
 * and the scratch directory are removed by the test's .fini (full_fini), which runs even when
 * an assertion ends the test. */
static char *full_mnt, *scratch_dir;

static void full_fini(void)
{
	if (full_mnt) {
		umount2(full_mnt, MNT_DETACH);
		rmdir(full_mnt);
		free(full_mnt);
		full_mnt = NULL;
	}
	if (scratch_dir) {
		e2e_rmtree(scratch_dir);
		free(scratch_dir);
		scratch_dir = NULL;
	}
}

static char *full_tmpfs(const char *dir)
{
	char *mnt = e2e_path(dir, "full");
	cr_assert_eq(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=16k") != 0) {
		int e = errno;
		rmdir(mnt);
		free(mnt);
		cr_skip_test("cannot mount a tmpfs (%s): needs root", strerror(e));
	}
	full_mnt = mnt;
	char *fill = e2e_path(mnt, "fill");
	int fd = open(fill, O_WRONLY | O_CREAT, 0600);
	char page[4096] = {0};
	while (fd >= 0 && write(fd, page, sizeof(page)) > 0)
		;
	if (fd >= 0)
		close(fd);
	free(fill);
	return mnt;
}

static void run_sensor(struct e2e_argv *a, const char *dir, const char *out, struct e2e_proc *p,
		       char **err)
{
	char *errp = e2e_path(dir, "stderr.txt");
	int rc = e2e_run(a->v, dir, out, errp, 120000, p);
	cr_assert_eq(rc, 0, "cannot run svcsensor: %s", strerror(-rc));
	*err = e2e_slurp(errp, NULL);
	cr_assert_not_null(*err);
	cr_assert(!p->timed_out && !p->signal, "%s\n%s", e2e_proc_str(p), *err);
	free(errp);
}

/* svcsensor -a > a full disk: one line naming the output and the real reason, exit 1 (it
 * was silent). */
Test(report, show_report_to_a_full_disk_says_no_space, .fini = full_fini)
{
	char *dir = scratch_dir = e2e_mkdtemp("report-a");
	char *mnt = full_tmpfs(dir);
	char *rpath = e2e_path(dir, "report.txt"), *out = e2e_path(mnt, "out.txt");
	struct report *r = big_report(2000); /* larger than stdout's buffer */
	cr_assert_eq(report__save(r, rpath), 0);
	report__free(r);

	struct e2e_argv a = {0};
	struct e2e_proc p;
	char *err;
	e2e_argv_add(&a, e2e_bin());
	e2e_argv_add(&a, "-a");
	e2e_argv_addf(&a, "--report=%s", rpath);
	run_sensor(&a, dir, out, &p, &err);
	cr_assert_eq(p.status, 1, "%s\n%s", e2e_proc_str(&p), err);
	cr_assert_str_eq(err, "svcsensor: standard output: cannot print the report: No space "
			      "left on device\n");
	free(err);
	e2e_argv_free(&a);
	free(out);
	free(rpath);
}

/* A run whose report sits on a full disk: each file's line names ENOSPC, never a generic
 * "Input/output error"; the run completes with status 1. */
Test(report, save_to_a_full_disk_says_no_space, .fini = full_fini)
{
	char *dir = scratch_dir = e2e_mkdtemp("report-full");
	char *mnt = full_tmpfs(dir);
	char *pcap = e2e_abspath("pcaps/anomalies.pcap");
	cr_assert_not_null(pcap);
	struct e2e_argv a = {0};
	struct e2e_proc p;
	char *err;
	e2e_argv_add(&a, e2e_bin());
	e2e_argv_add(&a, "-r");
	e2e_argv_add(&a, pcap);
	e2e_argv_quiet_outputs(&a, dir);
	e2e_argv_addf(&a, "--report=%s/report.txt", mnt);
	run_sensor(&a, dir, NULL, &p, &err);
	cr_assert_eq(p.status, 1, "%s\n%s", e2e_proc_str(&p), err);
	cr_assert_eq(e2e_count_lines_with(err, "No space left on device"), 2, "%s", err);
	cr_assert_eq(e2e_count_lines_with(err, "Input/output error"), 0, "%s", err);
	cr_assert_eq(e2e_count_lines_with(err, "report.txt.json: cannot write"), 1, "%s", err);
	free(err);
	e2e_argv_free(&a);
	free(pcap);
}

/* ---- the bound, end to end ---- */

/* One UDP packet per flow, local addresses both sides (so each is its own host key); flows
 * keys_n .. n-1 repeat the keys of the first ones with another source port (another flow,
 * the same key). */
static void bound_pcap(const char *path, unsigned keys_n, unsigned n)
{
	struct tframe *f = calloc(n, sizeof(*f));
	cr_assert_not_null(f);
	for (unsigned i = 0; i < n; i++) {
		unsigned k = i % keys_n;
		f[i].ipver = 4;
		f[i].proto = IPPROTO_UDP;
		f[i].sport = (uint16_t)(20000 + i);
		f[i].dport = 5000;
		f[i].payload = 32;
		f[i].seq = i;
		uint32_t s = htonl(0x0a010000u + k), d = htonl(0x0a020000u + k);
		memcpy(f[i].src, &s, 4);
		memcpy(f[i].dst, &d, 4);
	}
	cr_assert_eq(netns__pcap_write(path, f, n), 0);
	free(f);
}

/* The value of "name": "..." in a JSON line (the anomaly log's flat objects). */
static void field(const char *line, const char *name, char *out, size_t cap)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":\"", name);
	const char *at = strstr(line, pat);
	cr_assert_not_null(at, "no %s in %s", name, line);
	at += strlen(pat);
	size_t n = strcspn(at, "\"");
	cr_assert_lt(n, cap);
	memcpy(out, at, n);
	out[n] = '\0';
}

/* Flows per (verdict, source key, destination key), counted from the anomaly log. */
struct keycount {
	char key[160];
	unsigned flows;
	bool kept;
};

static size_t log_keys(const char *log, struct keycount *kc, size_t cap, size_t *lines)
{
	size_t n = 0, nl;
	char **l = e2e_lines(log, &nl);
	for (size_t i = 0; i < nl; i++) {
		char v[40], s[48], d[48], key[160];
		field(l[i], "verdict", v, sizeof(v));
		field(l[i], "src_key", s, sizeof(s));
		field(l[i], "dst_key", d, sizeof(d));
		snprintf(key, sizeof(key), "%s %s %s", v, s, d);
		size_t j = 0;
		while (j < n && strcmp(kc[j].key, key) != 0)
			j++;
		if (j == n) {
			cr_assert_lt(n, cap);
			snprintf(kc[n++].key, sizeof(kc[0].key), "%s", key);
		}
		kc[j].flows++;
	}
	e2e_lines_free(l, nl);
	*lines = nl;
	return n;
}

/* A capture of more distinct keys than report_max_keys: exactly max rows plus one (other)
 * row; each kept row holds its key's flows, and the (other) row the flows of every other key,
 * all counted independently from the anomaly log (one line per flow: no map, so every flow is
 * UNKNOWN_SOURCE_IP). */
Test(report, capture_beyond_max_keys_keeps_max_rows_and_folds_the_rest, .fini = full_fini)
{
	enum { KEYS = 50, FLOWS = 60, MAX = 20 };
	char *dir = scratch_dir = e2e_mkdtemp("report-bound");
	char *pcap = e2e_path(dir, "bound.pcap"), *logp = e2e_path(dir, "anomalies.log");
	char *jpath = e2e_path(dir, "report.txt.json");
	bound_pcap(pcap, KEYS, FLOWS);

	struct e2e_argv a = {0};
	struct e2e_proc p;
	char *err;
	e2e_argv_add(&a, e2e_bin());
	e2e_argv_add(&a, "-r");
	e2e_argv_add(&a, pcap);
	e2e_argv_quiet_outputs(&a, dir);
	e2e_argv_addf(&a, "--report-max-keys=%d", MAX);
	run_sensor(&a, dir, NULL, &p, &err);
	/* Folding counts as a loss: exit 1, and the summary's lost line names the figure. */
	cr_assert_eq(p.status, 1, "%s\n%s", e2e_proc_str(&p), err);
	cr_assert_eq(e2e_count_lines_with(err, "report_max_keys (20 rows) reached"), 1, "%s", err);

	struct keycount kc[KEYS + 1] = {0};
	size_t lines, n_keys;
	char *log = e2e_slurp(logp, NULL);
	cr_assert_not_null(log);
	n_keys = log_keys(log, kc, KEYS + 1, &lines);
	cr_assert_eq(lines, FLOWS);
	cr_assert_eq(n_keys, KEYS);

	json_error_t je;
	json_t *root = json_load_file(jpath, 0, &je);
	cr_assert_not_null(root, "%s: %s", jpath, je.text);
	json_t *vs = json_object_get(root, "verdicts");
	cr_assert_eq(json_array_size(vs), 1);
	json_t *v = json_array_get(vs, 0);
	const char *vname = json_string_value(json_object_get(v, "verdict"));
	json_t *srcs = json_object_get(v, "sources");
	size_t rows = 0, other_rows = 0;
	json_int_t other_flows = -1;
	for (size_t i = 0; i < json_array_size(srcs); i++) {
		json_t *s = json_array_get(srcs, i);
		const char *sk = json_string_value(json_object_get(s, "source"));
		json_t *ds = json_object_get(s, "destinations");
		for (size_t j = 0; j < json_array_size(ds); j++) {
			json_t *d = json_array_get(ds, j);
			const char *dk = json_string_value(json_object_get(d, "destination"));
			json_int_t fl = json_integer_value(json_object_get(d, "flows"));
			if (!strcmp(sk, "(other)")) {
				cr_assert_str_eq(dk, "(other)");
				cr_assert_eq(i, json_array_size(srcs) - 1, "(other) is not last");
				other_rows++;
				other_flows = fl;
				continue;
			}
			char key[160];
			snprintf(key, sizeof(key), "%s %s %s", vname, sk, dk);
			size_t k = 0;
			while (k < n_keys && strcmp(kc[k].key, key) != 0)
				k++;
			cr_assert_lt(k, n_keys, "row %s is in no log line", key);
			cr_assert_eq(fl, kc[k].flows, "%s", key);
			kc[k].kept = true;
			rows++;
		}
	}
	unsigned folded_keys = 0, folded_flows = 0;
	for (size_t k = 0; k < n_keys; k++)
		if (!kc[k].kept) {
			folded_keys++;
			folded_flows += kc[k].flows;
		}
	cr_assert_eq(rows, MAX);
	cr_assert_eq(other_rows, 1);
	cr_assert_eq(folded_keys, KEYS - MAX);
	cr_assert_eq(other_flows, folded_flows);
	char figure[64];
	snprintf(figure, sizeof(figure), "report flows folded %u", folded_flows);
	cr_assert_eq(e2e_count_lines_with(err, figure), 1, "no \"%s\" in:\n%s", figure, err);
	cr_log_info("%d keys, max %d: %u keys (%u flows) folded into (other)", KEYS, MAX,
		    folded_keys, folded_flows);
	json_decref(root);
	free(log);
	free(err);
	e2e_argv_free(&a);
	free(pcap);
	free(logp);
	free(jpath);
}

/* ---- saves off the detector thread, on a slowed disk ----
 *
 * The disk: an ext4 image on a loop device, mounted in a scratch directory, with the block
 * cgroup's write throttle (cgroup v1 blkio.throttle.write_bps_device) on that device for a
 * cgroup this test process joins: every write-back the process causes on the device (the
 * report's fsync) goes at SLOW_BPS. Root and cgroup v1's blkio controller are needed; the test
 * is skipped otherwise. Everything is undone by pid and path. */

#define BLKIO "/sys/fs/cgroup/blkio"
#define SLOW_BPS 262144 /* bytes per second */

struct slowdisk {
	char *dir, *img, *mnt;
	char loopdev[256];
	char cg[128];
	bool attached, mounted, in_cg;
};

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int e = n < 0 ? -errno : 0;
	close(fd);
	return e;
}

static struct slowdisk slow; /* torn down by the test's .fini, even after a failed assertion */

static void slowdisk_teardown(struct slowdisk *sd)
{
	char pid[32];
	if (sd->in_cg) {
		snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		write_file(BLKIO "/cgroup.procs", pid);
	}
	/* A task that just ended may still hold the cgroup for a moment (EBUSY). */
	for (unsigned i = 0; sd->cg[0] && rmdir(sd->cg) != 0 && errno == EBUSY && i < 200; i++)
		usleep(10000);
	if (sd->mounted)
		umount2(sd->mnt, MNT_DETACH);
	if (sd->attached) {
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "losetup -d %s", sd->loopdev);
		if (system(cmd) != 0)
			cr_log_warn("%s failed", cmd);
	}
	if (sd->img)
		unlink(sd->img);
	if (sd->mnt)
		rmdir(sd->mnt);
	if (sd->dir)
		e2e_rmtree(sd->dir);
	free(sd->dir);
	free(sd->img);
	free(sd->mnt);
	memset(sd, 0, sizeof(*sd));
}

static pid_t slow_child; /* a sensor started on the slowed disk, ended by slow_fini */

static void slow_fini(void)
{
	if (slow_child > 0) {
		struct e2e_proc p;
		kill(-slow_child, SIGKILL); /* its own process group (e2e_spawn) */
		e2e_wait(slow_child, 10000, &p);
		slow_child = 0;
	}
	slowdisk_teardown(&slow);
}

/* Returns NULL when ready, else why it cannot be (the caller skips). join: this process
 * joins the throttled cgroup (else a child joins it: sd->cg). */
static const char *slowdisk_setup(struct slowdisk *sd, bool join)
{
	char cmd[512], line[sizeof(sd->loopdev)];
	struct stat st;

	memset(sd, 0, sizeof(*sd));
	if (geteuid() != 0)
		return "needs root";
	if (access(BLKIO "/blkio.throttle.write_bps_device", F_OK) != 0)
		return "no cgroup v1 blkio controller";
	sd->dir = e2e_mkdtemp("report-slow");
	sd->img = e2e_path(sd->dir, "disk.img");
	sd->mnt = e2e_path(sd->dir, "mnt");
	snprintf(cmd, sizeof(cmd), "truncate -s 64M %s && mkfs.ext4 -q -F %s", sd->img, sd->img);
	if (system(cmd) != 0)
		return "mkfs.ext4 failed";
	snprintf(cmd, sizeof(cmd), "losetup -f --show %s", sd->img);
	FILE *p = popen(cmd, "r");
	if (!p || !fgets(line, sizeof(line), p)) {
		if (p)
			pclose(p);
		return "losetup failed";
	}
	pclose(p);
	line[strcspn(line, "\n")] = '\0';
	memcpy(sd->loopdev, line, sizeof(sd->loopdev));
	sd->attached = true;
	if (mkdir(sd->mnt, 0700) != 0 || mount(sd->loopdev, sd->mnt, "ext4", 0, NULL) != 0)
		return "cannot mount the loop device";
	sd->mounted = true;
	if (stat(sd->loopdev, &st) != 0)
		return "cannot stat the loop device";
	snprintf(sd->cg, sizeof(sd->cg), BLKIO "/svcsensor-test-%d", (int)getpid());
	if (mkdir(sd->cg, 0755) != 0) {
		sd->cg[0] = '\0';
		return "cannot make a blkio cgroup";
	}
	char path[192], rule[64], pid[32];
	snprintf(path, sizeof(path), "%s/blkio.throttle.write_bps_device", sd->cg);
	snprintf(rule, sizeof(rule), "%u:%u %d\n", major(st.st_rdev), minor(st.st_rdev), SLOW_BPS);
	if (write_file(path, rule) != 0)
		return "cannot set the write throttle";
	if (!join)
		return NULL;
	snprintf(path, sizeof(path), "%s/cgroup.procs", sd->cg);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (write_file(path, pid) != 0)
		return "cannot join the blkio cgroup";
	sd->in_cg = true;
	return NULL;
}

/* Temporary files of saves in progress in dir (".NAME.tmp.XXXXXX", atomic_file.h). */
static unsigned temp_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;
	cr_assert_not_null(d);
	while ((e = readdir(d)))
		n += strstr(e->d_name, ".tmp.") != NULL;
	closedir(d);
	return n;
}

/* The detector's side of one flow: what the report sink is handed (sink.h). */
static void sink_flow(void *self, unsigned key)
{
	struct flow_record rec = {0};
	char src[32];
	snprintf(src, sizeof(src), "10.3.%u.%u", key / 256 % 256, key % 256);
	rec.bytes[0] = 1000 + key;
	rec.first_us = key;
	struct sink_flow f = {
	    .rec = &rec, .src = src, .dst = "remote", .app = "TLS", .verdict = VERDICT_NONE};
	report_sink.flow(self, &f);
}

static uint64_t flows_in_text(const char *path)
{
	char *t = e2e_slurp(path, NULL);
	cr_assert_not_null(t, "%s", path);
	const char *at = strstr(t, "+++++++ On ");
	cr_assert_not_null(at, "%s has no totals line", path);
	uint64_t n = strtoull(at + 11, NULL, 10);
	free(t);
	return n;
}

/* A periodic save that takes seconds (a report of ROWS rows written at SLOW_BPS) is handed to
 * the saver: the detector's side (the sink's flow and tick ops, called here as the detector
 * calls them) goes on adding flows while the save's temporary file exists, and never starts a
 * second save while one runs. The periodic file holds exactly the flows before the tick that
 * asked for it (the snapshot); the final save, after the running one, holds every flow. Before
 * the saver thread, the tick itself wrote the file: no flow could be added during a save. */
Test(report, periodic_save_on_a_slow_disk_does_not_hold_the_detector, .fini = slow_fini)
{
	enum { ROWS = 3000 };
	struct slowdisk *sdp = &slow;
	const char *why = slowdisk_setup(sdp, true);
	if (why)
		cr_skip_test("slowed disk unavailable: %s", why);
	struct svc_config cfg;
	cr_assert_eq(config__defaults(&cfg), 0);
	char *rpath = e2e_path(sdp->mnt, "report.txt"),
	     *jpath = e2e_path(sdp->mnt, "report.txt.json");
	cfg.report_file = rpath;
	cfg.report_interval = 1;
	struct sink_env env = {.cfg = &cfg};
	void *self = NULL;
	cr_assert_eq(report_sink.open(&env, &self), 0);
	cr_assert_not_null(self);

	uint64_t fed = 0;
	for (unsigned k = 0; k < ROWS; k++, fed++)
		sink_flow(self, k);
	report_sink.tick(self, 1000); /* schedules */
	report_sink.tick(self, 1001); /* due: the save of the ROWS flows */

	uint64_t during = 0;
	unsigned most_temps = 0, rounds = 0;
	bool ticked = false;
	for (; rounds < 60000; rounds++) {
		for (unsigned i = 0; i < 20; i++, fed++)
			sink_flow(self, (unsigned)(fed % ROWS)); /* kept rows: the size stays */
		unsigned t = temp_files(sdp->mnt);
		if (t > most_temps)
			most_temps = t;
		if (t) {
			during += 20;
			if (!ticked) { /* due again while it runs: waits, never a second save */
				report_sink.tick(self, 1002);
				report_sink.tick(self, 1003);
				ticked = true;
			}
		} else if (access(jpath, F_OK) == 0) {
			break; /* both files in place, no save running */
		}
		usleep(2000);
	}
	cr_log_info("%llu of %llu flows added while the periodic save ran (%u rounds)",
		    (unsigned long long)during, (unsigned long long)fed, rounds);
	cr_assert_gt(during, 0, "no flow was added while the save ran: the detector waited");
	cr_assert_eq(most_temps, 1, "two saves ran at once");
	cr_assert_eq(flows_in_text(rpath), ROWS, "the periodic file is not the tick's snapshot");
	cr_assert_eq(report_sink__save_failures(self), 0);

	cr_assert_eq(report_sink.close(self, true), 0);
	cr_assert_eq(flows_in_text(rpath), fed, "the final save lacks flows");
	cr_assert_eq(temp_files(sdp->mnt), 0);
	free(rpath);
	free(jpath);
}

/* ---- the same, end to end: the real sensor reading a FIFO, its report on the slowed disk ---- */

static void pcap_put(FILE *f, const void *p, size_t n)
{
	cr_assert_eq(fwrite(p, 1, n, f), n, "write to the FIFO: %s", strerror(errno));
}

static void pcap_header(FILE *f)
{
	uint32_t h[6] = {0xa1b2c3d4u, 2 | (4u << 16), 0, 0, 65535, 1 /* DLT_EN10MB */};
	pcap_put(f, h, sizeof(h));
}

/* One UDP packet 10.a.b.c -> remote-ish local address, at ts_us: a flow of its own. */
static void pcap_flow(FILE *f, uint32_t src, uint32_t dst, uint16_t sport, uint64_t ts_us)
{
	struct tframe t = {
	    .ipver = 4, .proto = IPPROTO_UDP, .sport = sport, .dport = 5000, .payload = 32};
	uint8_t buf[256];
	uint32_t s = htonl(src), d = htonl(dst);
	memcpy(t.src, &s, 4);
	memcpy(t.dst, &d, 4);
	size_t len = netns__frame_build(&t, buf, sizeof(buf));
	cr_assert_gt(len, 0);
	uint32_t rec[4] = {(uint32_t)(ts_us / 1000000), (uint32_t)(ts_us % 1000000), (uint32_t)len,
			   (uint32_t)len};
	pcap_put(f, rec, sizeof(rec));
	pcap_put(f, buf, len);
}

/* Packets of one flow far ahead on the packet clock: they end the flows before them (idle
 * timeout 1 s). The libpcap reader hands a partial batch over once the clock has moved on, but
 * looks at that every 1024 records (src/input/pcapfile.c): 2100 records get everything before
 * them to the workers. */
static void pcap_clock(FILE *f, uint64_t ts_us)
{
	for (unsigned i = 0; i < 2100; i++)
		pcap_flow(f, 0x0a090001u, 0x0a090002u, 9000, ts_us + i * 1000ull);
	cr_assert_eq(fflush(f), 0);
}

static size_t log_lines_with(const char *logp, const char *needle)
{
	char *t = e2e_slurp(logp, NULL);
	size_t n = t ? e2e_count_lines_with(t, needle) : 0;
	free(t);
	return n;
}

/* The name of a temporary file in dir (a save in progress), or "" (static buffer). */
static const char *temp_name(const char *dir)
{
	static char name[256];
	DIR *d = opendir(dir);
	struct dirent *e;
	name[0] = '\0';
	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp."))
			snprintf(name, sizeof(name), "%s", e->d_name);
	closedir(d);
	return name;
}

static bool exists_in(const char *dir, const char *name)
{
	char *p = e2e_path(dir, name);
	bool yes = access(p, F_OK) == 0;
	free(p);
	return yes;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static FILE *open_fifo_writer(const char *fifo, pid_t pid)
{
	for (unsigned i = 0; i < 3000; i++) {
		int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			fcntl(fd, F_SETFL, 0);
			return fdopen(fd, "w");
		}
		struct e2e_proc p;
		cr_assert_eq(e2e_running(pid, &p), 1, "svcsensor ended before reading: %s",
			     e2e_proc_str(&p));
		sleep_ms(10);
	}
	cr_assert_fail("svcsensor never opened %s", fifo);
	return NULL;
}

/* Phase A (A_FLOWS flows) is judged, then the periodic save of its report starts on the slowed
 * disk (its temporary file appears). While that very file still exists, phase B's flows are
 * written to the FIFO and every one of them reaches the anomaly log: the detector goes on
 * judging while the save runs. Before the saver thread, the detector was inside the save until
 * it ended, and phase B waited for it. The counts come from the log; no time is asserted. */
Test(report, sensor_judges_while_its_report_is_saved_to_a_slow_disk, .fini = slow_fini)
{
	enum { A_FLOWS = 5000, B_FLOWS = 200 };
	const uint64_t t0 = 1700000000ull * 1000000;
	const char *why = slowdisk_setup(&slow, false);
	if (why)
		cr_skip_test("slowed disk unavailable: %s", why);
	const char *dir = slow.dir;
	char *fifo = e2e_path(dir, "in.pcap"), *cfgp = e2e_path(dir, "cfg.json");
	char *logp = e2e_path(dir, "anomalies.log"), *errp = e2e_path(dir, "stderr.txt");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	cr_assert_eq(e2e_write(cfgp, "{\"report_interval\": 1}\n"), 0);
	signal(SIGPIPE, SIG_IGN);

	struct e2e_argv a = {0};
	e2e_argv_add(&a, "/bin/sh");
	e2e_argv_add(&a, "-c");
	e2e_argv_addf(&a, "echo $$ > %s/cgroup.procs && exec \"$@\"", slow.cg);
	e2e_argv_add(&a, "sh");
	e2e_argv_add(&a, e2e_bin());
	e2e_argv_addf(&a, "-c%s", cfgp);
	e2e_argv_add(&a, "-r");
	e2e_argv_add(&a, fifo);
	e2e_argv_add(&a, "--idle-timeout=1");
	e2e_argv_quiet_outputs(&a, dir);
	e2e_argv_addf(&a, "--report=%s/report.txt", slow.mnt);
	pid_t pid;
	cr_assert_eq(e2e_spawn(a.v, dir, NULL, errp, &pid), 0);
	slow_child = pid;
	FILE *f = open_fifo_writer(fifo, pid);
	cr_assert_not_null(f);

	pcap_header(f);
	for (unsigned i = 0; i < A_FLOWS; i++)
		pcap_flow(f, 0x0a040000u + i, 0x0a060000u + i, 20000, t0 + i * 100);
	pcap_clock(f, t0 + 5000000);
	unsigned waited = 0;
	while (log_lines_with(logp, "\"src_key\":\"10.4.") < A_FLOWS && waited++ < 6000)
		sleep_ms(10);
	cr_assert_eq(log_lines_with(logp, "\"src_key\":\"10.4."), A_FLOWS, "phase A not judged");
	char save[256] = "";
	for (waited = 0; !save[0] && waited < 6000; waited++) {
		snprintf(save, sizeof(save), "%s", temp_name(slow.mnt));
		if (!save[0])
			sleep_ms(5);
	}
	cr_assert(save[0], "no periodic save started");

	for (unsigned i = 0; i < B_FLOWS; i++)
		pcap_flow(f, 0x0a050000u + i, 0x0a060000u + i, 20000, t0 + 20000000 + i * 100);
	pcap_clock(f, t0 + 25000000);
	size_t judged = 0;
	bool save_running = true;
	while (save_running && (judged = log_lines_with(logp, "\"src_key\":\"10.5.")) < B_FLOWS) {
		sleep_ms(5);
		save_running = exists_in(slow.mnt, save);
	}
	if (judged == B_FLOWS)
		save_running = exists_in(slow.mnt, save); /* still the same save */
	cr_log_info("phase B: %zu of %d flows judged while the save (%s) ran", judged, B_FLOWS,
		    save);
	fclose(f);
	struct e2e_proc p;
	cr_assert_eq(e2e_wait(pid, 120000, &p), 0);
	slow_child = 0;
	char *err = e2e_slurp(errp, NULL);
	cr_assert_eq(p.status, 0, "%s\n%s", e2e_proc_str(&p), err ? err : "");
	cr_assert_eq(judged, B_FLOWS, "phase B was not judged while the report was saved");
	cr_assert(save_running, "the save ended before phase B was judged");
	char *rpath = e2e_path(slow.mnt, "report.txt");
	cr_assert_eq(flows_in_text(rpath), log_lines_with(logp, "\"verdict\""),
		     "the final report does not hold every flow");
	free(rpath);
	free(err);
	e2e_argv_free(&a);
	free(fifo);
	free(cfgp);
	free(logp);
	free(errp);
}
