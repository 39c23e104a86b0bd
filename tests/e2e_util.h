/* e2e_util.h - helpers of the end-to-end suite (tests/test_e2e.c): run a program (svcsensor,
 * ndpiReader) as a child with fork/execve/waitpid and a timeout, its stdout/stderr going to
 * files; read small files; split RFC 4180 CSV.
 *
 * Every function here is plain C (no Criterion calls), so a failure comes back as a return
 * value and the test decides how to report it. Names carry the e2e_ prefix: every test source is
 * linked into one binary. */
#ifndef SVCSENSOR_TESTS_E2E_UTIL_H
#define SVCSENSOR_TESTS_E2E_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* ---- files and paths ---- */

/* The svcsensor binary under test: $SVCSENSOR_BIN, else build/svcsensor made absolute.
 * Static string; NULL when neither is executable. */
const char *e2e_bin(void);

/* Absolute path of an existing file (realpath), malloc'd; NULL when it does not exist. */
char *e2e_abspath(const char *path);

/* "dir/name", malloc'd (never NULL: aborts on out of memory, as a test helper may). */
char *e2e_path(const char *dir, const char *name);

/* A fresh directory /tmp/svcsensor-e2e-TAG-XXXXXX, malloc'd; NULL on error. */
char *e2e_mkdtemp(const char *tag);

/* Remove dir and the plain files in it (no recursion: the suite makes flat directories). */
void e2e_rmtree(const char *dir);

/* Whole file, NUL-terminated, malloc'd; *len (if given) without the NUL. NULL on error. */
char *e2e_slurp(const char *path, size_t *len);

/* Write text to path (create/truncate). 0 or -errno. */
int e2e_write(const char *path, const char *text);

/* Size of a file, -1 when it does not exist. */
long e2e_file_size(const char *path);

/* Full path of prog found on $PATH (or prog itself when it has a '/'), malloc'd; NULL when
 * not found or not executable. */
char *e2e_which(const char *prog);

/* ---- text ---- */

/* The lines of text (split on '\n', a last line without '\n' counts, no empty last line),
 * as a malloc'd array of malloc'd strings; *n lines. Free with e2e_lines_free. */
char **e2e_lines(const char *text, size_t *n);
void e2e_lines_free(char **lines, size_t n);

/* Number of lines of text containing needle. */
size_t e2e_count_lines_with(const char *text, const char *needle);

/* ---- argument vectors ---- */

struct e2e_argv {
	char **v; /* NULL-terminated; every element malloc'd */
	size_t n, cap;
};

void e2e_argv_add(struct e2e_argv *a, const char *s);
void e2e_argv_addf(struct e2e_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "--print none -q --map=DIR/no-such-map.json --log=DIR/anomalies.log
 * --report=DIR/report.txt": a run with no map, no console output and every file it writes
 * in dir. */
void e2e_argv_quiet_outputs(struct e2e_argv *a, const char *dir);
void e2e_argv_free(struct e2e_argv *a);
/* The command line as one string for messages ("a b c"), malloc'd; long ones are cut. */
char *e2e_argv_str(const struct e2e_argv *a);

/* ---- child processes ---- */

struct e2e_proc {
	pid_t pid;
	int status;	/* exit status when it exited, -1 otherwise */
	int signal;	/* the signal that ended it, 0 when it exited */
	bool timed_out; /* we killed it (SIGKILL) because the timeout passed */
	double seconds; /* wall time from spawn (or wait) to its end */
};

/* Start argv[0] (a path) with argv, in its own process group, in cwd (NULL: ours), stdin from
 * /dev/null, stdout and
 * stderr into out_path / err_path (created or truncated; NULL: /dev/null). The environment is
 * ours without SVCSENSOR_CONFIG (a developer's settings file must not change results), signal
 * dispositions and mask reset to the defaults. 0 and *pid, or -errno. Does not block. */
int e2e_spawn(char *const argv[], const char *cwd, const char *out_path, const char *err_path,
	      pid_t *pid);

/* The same with stdin from in_path (NULL: /dev/null); a FIFO blocks the child until a writer
 * opens it. */
int e2e_spawn_in(char *const argv[], const char *cwd, const char *in_path, const char *out_path,
		 const char *err_path, pid_t *pid);

/* Wait for pid at most timeout_ms; on timeout SIGKILL it and its process group (e2e_spawn
 * makes the child a group leader, so only what it started goes) and reap it.
 * Fills *p. 0, or -errno when waitpid failed. */
int e2e_wait(pid_t pid, unsigned timeout_ms, struct e2e_proc *p);

/* 1 while pid runs, 0 when it ended (then *p is filled, as e2e_wait does). */
int e2e_running(pid_t pid, struct e2e_proc *p);

/* e2e_spawn + e2e_wait. */
int e2e_run(char *const argv[], const char *cwd, const char *out_path, const char *err_path,
	    unsigned timeout_ms, struct e2e_proc *p);

/* "exit 2", "signal 11 (Segmentation fault)", "timed out", in a static buffer. */
const char *e2e_proc_str(const struct e2e_proc *p);

/* ---- CSV (RFC 4180) ---- */

struct e2e_csv {
	size_t ncols; /* header fields */
	char **hdr;   /* header; a leading '#' of the first name is dropped (ndpiReader) */
	size_t nrows; /* records after the header */
	char ***rows; /* rows[i][j]; a short record's missing fields read as "" */
	size_t *rlen; /* fields in record i */
};

/* Split text into records and fields: fields separated by ',', records by LF or CRLF, a
 * field in double quotes may hold ',', CR, LF and "" (a quote). An empty last line is no
 * record. 0, or -EINVAL for a quote that never closes / a quote inside an unquoted field. */
int e2e_csv_parse(const char *text, size_t len, struct e2e_csv *c);

/* e2e_csv_parse of a file; -errno when it cannot be read. */
int e2e_csv_load(const char *path, struct e2e_csv *c);

/* Column index of name in the header, -1 when absent. */
int e2e_csv_col(const struct e2e_csv *c, const char *name);

/* Field col of row (col < 0 or missing: ""). */
const char *e2e_csv_get(const struct e2e_csv *c, size_t row, int col);

void e2e_csv_free(struct e2e_csv *c);

/* Fields [from, n) joined with ',' and quoted per RFC 4180 where needed, malloc'd. */
char *e2e_csv_join(char *const *fields, size_t from, size_t n);

/* ---- sorted string lists ---- */

struct e2e_strs {
	char **v;
	size_t n, cap;
};

void e2e_strs_add(struct e2e_strs *s, char *owned);
void e2e_strs_addf(struct e2e_strs *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void e2e_strs_sort(struct e2e_strs *s);
void e2e_strs_free(struct e2e_strs *s);
/* Index of the first difference of two sorted lists (== min length when one is a prefix of the
 * other, == n when equal). */
size_t e2e_strs_first_diff(const struct e2e_strs *a, const struct e2e_strs *b);

#endif
