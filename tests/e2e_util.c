/* e2e_util.c - child processes, files and CSV for the end-to-end suite (see e2e_util.h). */
#include "e2e_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		fprintf(stderr, "e2e_util: out of memory\n");
		abort();
	}
	return q;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xrealloc(NULL, n), s, n);
}

static char *xvasprintf(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0) {
		fprintf(stderr, "e2e_util: out of memory\n");
		abort();
	}
	return s;
}

/* ---- files and paths ---- */

const char *e2e_bin(void)
{
	static char buf[PATH_MAX];
	const char *env = getenv("SVCSENSOR_BIN");
	if (env && *env && access(env, X_OK) == 0)
		return env;
	if (realpath("build/svcsensor", buf) && access(buf, X_OK) == 0)
		return buf;
	return NULL;
}

char *e2e_abspath(const char *path)
{
	char buf[PATH_MAX];
	return realpath(path, buf) ? xstrdup(buf) : NULL;
}

char *e2e_path(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = xrealloc(NULL, a + b + 2);
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return p;
}

char *e2e_mkdtemp(const char *tag)
{
	char *d = NULL;
	if (asprintf(&d, "/tmp/svcsensor-e2e-%s-XXXXXX", tag) < 0)
		return NULL;
	if (!mkdtemp(d)) {
		free(d);
		return NULL;
	}
	return d;
}

void e2e_rmtree(const char *dir)
{
	DIR *d;
	struct dirent *e;
	if (!dir || !(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *p = e2e_path(dir, e->d_name);
		unlink(p);
		free(p);
	}
	closedir(d);
	rmdir(dir);
}

char *e2e_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = xrealloc(NULL, cap);
	for (;;) {
		if (cap - n < 2)
			buf = xrealloc(buf, cap *= 2);
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	bool err = ferror(f);
	fclose(f);
	if (err) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

int e2e_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -errno;
	size_t n = strlen(text);
	int rc = fwrite(text, 1, n, f) == n ? 0 : -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

long e2e_file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

char *e2e_which(const char *prog)
{
	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0 ? xstrdup(prog) : NULL;
	const char *path = getenv("PATH");
	char *copy = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin"), *save = NULL;
	char *found = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char *p = e2e_path(*dir ? dir : ".", prog);
		struct stat st;
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0)
			found = p;
		else
			free(p);
	}
	free(copy);
	return found;
}

/* ---- text ---- */

char **e2e_lines(const char *text, size_t *n)
{
	char **v = NULL;
	size_t cnt = 0;
	const char *p = text ? text : "";
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		v = xrealloc(v, (cnt + 1) * sizeof(*v));
		v[cnt] = xrealloc(NULL, len + 1);
		memcpy(v[cnt], p, len);
		v[cnt][len] = '\0';
		cnt++;
		p += len + (nl ? 1 : 0);
	}
	*n = cnt;
	return v;
}

void e2e_lines_free(char **lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

size_t e2e_count_lines_with(const char *text, const char *needle)
{
	size_t n, hits = 0;
	char **l = e2e_lines(text, &n);
	for (size_t i = 0; i < n; i++)
		hits += strstr(l[i], needle) != NULL;
	e2e_lines_free(l, n);
	return hits;
}

/* ---- argument vectors ---- */

void e2e_argv_add(struct e2e_argv *a, const char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	a->v[a->n++] = xstrdup(s);
	a->v[a->n] = NULL;
}

void e2e_argv_addf(struct e2e_argv *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	e2e_argv_add(a, s);
	free(s);
}

void e2e_argv_free(struct e2e_argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

char *e2e_argv_str(const struct e2e_argv *a)
{
	size_t cap = 1, len = 0;
	char *s = xrealloc(NULL, cap);
	s[0] = '\0';
	for (size_t i = 0; i < a->n; i++) {
		size_t l = strlen(a->v[i]);
		if (len > 600) {
			s = xrealloc(s, len + 32);
			len += (size_t)sprintf(s + len, " ... (%zu arguments)", a->n);
			break;
		}
		s = xrealloc(s, cap = len + l + 2);
		if (i)
			s[len++] = ' ';
		memcpy(s + len, a->v[i], l + 1);
		len += l;
	}
	return s;
}

/* ---- child processes ---- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Spawn times by pid, so e2e_wait can report the wall time of the whole run. */
#define E2E_MAX_CHILDREN 64
static struct {
	pid_t pid;
	double t0;
} started[E2E_MAX_CHILDREN];

static void remember(pid_t pid)
{
	for (unsigned i = 0; i < E2E_MAX_CHILDREN; i++)
		if (started[i].pid == 0) {
			started[i].pid = pid;
			started[i].t0 = now_s();
			return;
		}
}

static double start_of(pid_t pid, bool forget)
{
	for (unsigned i = 0; i < E2E_MAX_CHILDREN; i++)
		if (started[i].pid == pid) {
			double t = started[i].t0;
			if (forget)
				started[i].pid = 0;
			return t;
		}
	return now_s();
}

static int redirect(const char *path, int fd, int flags)
{
	int f = open(path ? path : "/dev/null", flags, 0644);
	if (f < 0)
		return -1;
	if (f != fd) {
		if (dup2(f, fd) < 0)
			return -1;
		close(f);
	}
	return 0;
}

int e2e_spawn(char *const argv[], const char *cwd, const char *out_path, const char *err_path,
	      pid_t *pid)
{
	return e2e_spawn_in(argv, cwd, NULL, out_path, err_path, pid);
}

int e2e_spawn_in(char *const argv[], const char *cwd, const char *in_path, const char *out_path,
		 const char *err_path, pid_t *pid)
{
	/* Build the environment before fork: the child only calls async-signal-safe functions. */
	size_t n = 0, k = 0;
	while (environ[n])
		n++;
	char **envp = xrealloc(NULL, (n + 1) * sizeof(*envp));
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "SVCSENSOR_CONFIG=", 17) != 0)
			envp[k++] = environ[i];
	envp[k] = NULL;

	fflush(NULL);
	pid_t p = fork();
	if (p < 0) {
		int e = errno;
		free(envp);
		return -e;
	}
	if (p == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setpgid(0, 0); /* its own group: a timeout kills whatever it started too */
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				signal(s, SIG_DFL);
		if (cwd && chdir(cwd) != 0)
			_exit(126);
		if (redirect(in_path, 0, O_RDONLY) ||
		    redirect(out_path, 1, O_WRONLY | O_CREAT | O_TRUNC) ||
		    redirect(err_path, 2, O_WRONLY | O_CREAT | O_TRUNC))
			_exit(126);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	free(envp);
	remember(p);
	*pid = p;
	return 0;
}

static void fill(struct e2e_proc *p, pid_t pid, int st)
{
	p->pid = pid;
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	p->signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	p->seconds = now_s() - start_of(pid, true);
}

int e2e_running(pid_t pid, struct e2e_proc *p)
{
	int st;
	pid_t r = waitpid(pid, &st, WNOHANG);
	if (r == 0)
		return 1;
	if (r == pid) {
		p->timed_out = false;
		fill(p, pid, st);
	}
	return 0;
}

int e2e_wait(pid_t pid, unsigned timeout_ms, struct e2e_proc *p)
{
	double deadline = now_s() + timeout_ms / 1000.0;
	int st;
	memset(p, 0, sizeof(*p));
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (now_s() >= deadline) {
			kill(-pid, SIGKILL); /* the child's own process group (e2e_spawn) */
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			fill(p, pid, st);
			p->timed_out = true;
			return 0;
		}
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fill(p, pid, st);
	return 0;
}

int e2e_run(char *const argv[], const char *cwd, const char *out_path, const char *err_path,
	    unsigned timeout_ms, struct e2e_proc *p)
{
	pid_t pid;
	int rc = e2e_spawn(argv, cwd, out_path, err_path, &pid);
	if (rc)
		return rc;
	return e2e_wait(pid, timeout_ms, p);
}

const char *e2e_proc_str(const struct e2e_proc *p)
{
	static char buf[96];
	if (p->timed_out)
		snprintf(buf, sizeof(buf), "timed out after %.1f s (killed)", p->seconds);
	else if (p->signal)
		snprintf(buf, sizeof(buf), "killed by signal %d (%s)", p->signal,
			 strsignal(p->signal));
	else
		snprintf(buf, sizeof(buf), "exit %d", p->status);
	return buf;
}

/* ---- CSV ---- */

struct field_buf {
	char *s;
	size_t n, cap;
};

static void fb_put(struct field_buf *f, char c)
{
	if (f->n + 2 > f->cap)
		f->s = xrealloc(f->s, f->cap = f->cap ? f->cap * 2 : 64);
	f->s[f->n++] = c;
}

static char *fb_take(struct field_buf *f)
{
	char *s = xrealloc(NULL, f->n + 1);
	memcpy(s, f->s ? f->s : "", f->n);
	s[f->n] = '\0';
	f->n = 0;
	return s;
}

int e2e_csv_parse(const char *text, size_t len, struct e2e_csv *c)
{
	memset(c, 0, sizeof(*c));
	struct field_buf fb = {0};
	char **rec = NULL;
	size_t nrec = 0, nrecs = 0;
	char ***recs = NULL;
	size_t *lens = NULL;
	size_t i = 0;
	int rc = 0;

	while (i < len) {
		/* one record */
		bool end_rec = false;
		while (!end_rec) {
			if (i < len && text[i] == '"') {
				i++;
				for (;;) {
					if (i >= len) {
						rc = -EINVAL; /* quote never closes */
						goto out;
					}
					if (text[i] == '"') {
						if (i + 1 < len && text[i + 1] == '"') {
							fb_put(&fb, '"');
							i += 2;
							continue;
						}
						i++;
						break;
					}
					fb_put(&fb, text[i++]);
				}
				if (i < len && text[i] != ',' && text[i] != '\n' &&
				    text[i] != '\r') {
					rc = -EINVAL; /* text after the closing quote */
					goto out;
				}
			} else {
				while (i < len && text[i] != ',' && text[i] != '\n' &&
				       !(text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')) {
					if (text[i] == '"') {
						rc = -EINVAL;
						goto out;
					}
					fb_put(&fb, text[i++]);
				}
			}
			rec = xrealloc(rec, (nrec + 1) * sizeof(*rec));
			rec[nrec++] = fb_take(&fb);
			if (i < len && text[i] == ',') {
				i++;
				continue;
			}
			if (i < len && text[i] == '\r')
				i++;
			if (i < len && text[i] == '\n')
				i++;
			end_rec = true;
		}
		recs = xrealloc(recs, (nrecs + 1) * sizeof(*recs));
		lens = xrealloc(lens, (nrecs + 1) * sizeof(*lens));
		recs[nrecs] = rec;
		lens[nrecs++] = nrec;
		rec = NULL;
		nrec = 0;
	}
out:
	for (size_t k = 0; k < nrec; k++)
		free(rec[k]);
	free(rec);
	free(fb.s);
	if (rc) {
		for (size_t r = 0; r < nrecs; r++) {
			for (size_t k = 0; k < lens[r]; k++)
				free(recs[r][k]);
			free(recs[r]);
		}
		free(recs);
		free(lens);
		return rc;
	}
	if (nrecs) {
		c->hdr = recs[0];
		c->ncols = lens[0];
		if (c->ncols && c->hdr[0][0] == '#')
			memmove(c->hdr[0], c->hdr[0] + 1, strlen(c->hdr[0]));
		c->nrows = nrecs - 1;
		c->rows = xrealloc(NULL, c->nrows * sizeof(*c->rows));
		c->rlen = xrealloc(NULL, c->nrows * sizeof(*c->rlen));
		memcpy(c->rows, recs + 1, c->nrows * sizeof(*c->rows));
		memcpy(c->rlen, lens + 1, c->nrows * sizeof(*c->rlen));
	}
	free(recs);
	free(lens);
	return 0;
}

int e2e_csv_load(const char *path, struct e2e_csv *c)
{
	size_t len;
	char *t = e2e_slurp(path, &len);
	if (!t) {
		memset(c, 0, sizeof(*c));
		return -errno ? -errno : -EIO;
	}
	int rc = e2e_csv_parse(t, len, c);
	free(t);
	return rc;
}

int e2e_csv_col(const struct e2e_csv *c, const char *name)
{
	for (size_t i = 0; i < c->ncols; i++)
		if (!strcmp(c->hdr[i], name))
			return (int)i;
	return -1;
}

const char *e2e_csv_get(const struct e2e_csv *c, size_t row, int col)
{
	if (col < 0 || row >= c->nrows || (size_t)col >= c->rlen[row])
		return "";
	return c->rows[row][col];
}

void e2e_csv_free(struct e2e_csv *c)
{
	for (size_t k = 0; k < c->ncols; k++)
		free(c->hdr[k]);
	free(c->hdr);
	for (size_t r = 0; r < c->nrows; r++) {
		for (size_t k = 0; k < c->rlen[r]; k++)
			free(c->rows[r][k]);
		free(c->rows[r]);
	}
	free(c->rows);
	free(c->rlen);
	memset(c, 0, sizeof(*c));
}

char *e2e_csv_join(char *const *fields, size_t from, size_t n)
{
	struct field_buf fb = {0};
	for (size_t i = from; i < n; i++) {
		const char *s = fields[i];
		if (i > from)
			fb_put(&fb, ',');
		bool q = strpbrk(s, ",\"\r\n") != NULL;
		if (q)
			fb_put(&fb, '"');
		for (; *s; s++) {
			if (*s == '"')
				fb_put(&fb, '"');
			fb_put(&fb, *s);
		}
		if (q)
			fb_put(&fb, '"');
	}
	char *r = fb_take(&fb);
	free(fb.s);
	return r;
}

/* ---- sorted string lists ---- */

void e2e_strs_add(struct e2e_strs *s, char *owned)
{
	if (s->n == s->cap)
		s->v = xrealloc(s->v, (s->cap = s->cap ? s->cap * 2 : 64) * sizeof(*s->v));
	s->v[s->n++] = owned;
}

void e2e_strs_addf(struct e2e_strs *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	e2e_strs_add(s, xvasprintf(fmt, ap));
	va_end(ap);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void e2e_strs_sort(struct e2e_strs *s)
{
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_str);
}

void e2e_strs_free(struct e2e_strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

size_t e2e_strs_first_diff(const struct e2e_strs *a, const struct e2e_strs *b)
{
	size_t n = a->n < b->n ? a->n : b->n;
	for (size_t i = 0; i < n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return i;
	return n;
}

void e2e_argv_quiet_outputs(struct e2e_argv *a, const char *dir)
{
	e2e_argv_add(a, "--print");
	e2e_argv_add(a, "none");
	e2e_argv_add(a, "-q");
	e2e_argv_addf(a, "--map=%s/no-such-map.json", dir);
	e2e_argv_addf(a, "--log=%s/anomalies.log", dir);
	e2e_argv_addf(a, "--report=%s/report.txt", dir);
}
