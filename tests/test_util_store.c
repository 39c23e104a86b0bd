/* test_util_store.c - the hash family (hash.h), the string table (strtab.h), the atomic file
 * writer (atomic_file.h) and the progress line (progress.h).
 *
 * The table is checked against a plain array searched with strcmp (an independent model), the
 * file writer against what the file system shows afterwards (content, mode, directory
 * entries) and the errno the kernel gives for the same situation. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "svcsensor/atomic_file.h"
#include "svcsensor/hash.h"
#include "svcsensor/progress.h"
#include "svcsensor/strtab.h"

/* ---- hash ---------------------------------------------------------------------------------- */

static uint64_t seed_in_child(void)
{
	int fd[2];
	uint64_t s = 0;
	cr_assert_eq(pipe(fd), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uint64_t mine = hash__seed();
		_exit(write(fd[1], &mine, sizeof(mine)) == (ssize_t)sizeof(mine) ? 0 : 1);
	}
	close(fd[1]);
	cr_assert_eq(read(fd[0], &s, sizeof(s)), (ssize_t)sizeof(s));
	close(fd[0]);
	waitpid(pid, NULL, 0);
	return s;
}

/* Each process draws its own seed (the children start before this process drew one). */
Test(hash, seed_is_per_process_and_stable)
{
	uint64_t a = seed_in_child(), b = seed_in_child();
	cr_assert_neq(a, 0);
	cr_assert_neq(b, 0);
	cr_assert_neq(a, b, "two processes, one seed %016llx", (unsigned long long)a);
	uint64_t mine = hash__seed();
	cr_assert_eq(hash__seed(), mine);
	cr_assert_neq(mine, 0);
}

Test(hash, depends_on_seed_bytes_and_length)
{
	const uint64_t s1 = 1, s2 = 2;
	size_t len = 99;
	cr_assert_eq(hash__bytes(s1, "10.42.0.130", 11), hash__bytes(s1, "10.42.0.130", 11));
	cr_assert_neq(hash__bytes(s1, "10.42.0.130", 11), hash__bytes(s2, "10.42.0.130", 11));
	cr_assert_neq(hash__bytes(s1, "10.42.0.130", 11), hash__bytes(s1, "10.42.0.131", 11));
	cr_assert_neq(hash__bytes(s1, "", 0), hash__bytes(s1, "\0", 1), "length counts");
	cr_assert_eq(hash__str(s1, "remote", &len), hash__bytes(s1, "remote", 6));
	cr_assert_eq(len, 6);
	cr_assert_neq(hash__pair(1, 2), hash__pair(2, 1), "pairs are ordered");
}

/* Every single-bit change of a key of every length 0..40 changes the hash, and the low bits
 * (what a table uses) of 200 k distinct keys spread evenly. */
Test(hash, single_bit_changes_and_spread)
{
	unsigned char key[40];
	uint64_t seed = hash__seed();

	for (size_t len = 1; len <= sizeof(key); len++) {
		memset(key, 'a', sizeof(key));
		uint64_t h = hash__bytes(seed, key, len);
		for (size_t bit = 0; bit < len * 8; bit++) {
			key[bit / 8] ^= (unsigned char)(1u << bit % 8);
			cr_assert_neq(hash__bytes(seed, key, len), h, "len %zu bit %zu", len, bit);
			key[bit / 8] ^= (unsigned char)(1u << bit % 8);
		}
	}
	enum { KEYS = 200000, BUCKETS = 1024 };
	static unsigned count[BUCKETS];
	char name[32];
	for (unsigned i = 0; i < KEYS; i++) {
		int n = snprintf(name, sizeof(name), "10.%u.%u.%u", i >> 16, i >> 8 & 255, i & 255);
		count[hash__bytes(seed, name, (size_t)n) & (BUCKETS - 1)]++;
	}
	/* Chi-square with 1023 degrees of freedom: mean 1023, sd ~45; 1300 is > 6 sd out. */
	double chi = 0, expect = (double)KEYS / BUCKETS;
	for (unsigned b = 0; b < BUCKETS; b++)
		chi += (count[b] - expect) * (count[b] - expect) / expect;
	cr_assert_lt(chi, 1300, "chi-square %.0f", chi);
}

/* ---- strtab -------------------------------------------------------------------------------- */

struct node {
	unsigned refs;
	char key[]; /* what the table stores */
};

static struct node *node_of(const char *key)
{
	return (struct node *)(void *)(key - offsetof(struct node, key));
}

static struct node *node_new(const char *s)
{
	struct node *n = malloc(sizeof(*n) + strlen(s) + 1);
	cr_assert_not_null(n);
	n->refs = 0;
	strcpy(n->key, s);
	return n;
}

static uint64_t srng = 88172645463325252ULL;

static unsigned rnd(unsigned n)
{
	srng ^= srng << 13;
	srng ^= srng >> 7;
	srng ^= srng << 17;
	return (unsigned)(srng % n);
}

/* Random adds, finds and removes against a model (an array searched with strcmp); keys from
 * a small space so that every operation often hits. */
Test(strtab, agrees_with_a_linear_model)
{
	enum { SPACE = 3000, OPS = 200000 };
	static struct node *model[SPACE]; /* model[k]: the node of key k when present */
	struct strtab t;
	size_t present = 0;
	char s[32];

	strtab__init(&t, false);
	for (unsigned op = 0; op < OPS; op++) {
		unsigned k = rnd(SPACE), what = rnd(10);
		snprintf(s, sizeof(s), "host-%u.example", k);
		uint64_t h;
		const char *got = strtab__find(&t, s, &h);
		cr_assert_eq(got, model[k] ? model[k]->key : NULL, "op %u key %u", op, k);
		cr_assert_eq(h, strtab__hash(s));
		if (!got && what < 6) {
			struct node *n = node_new(s);
			cr_assert_eq(strtab__add(&t, n->key, h), 0);
			model[k] = n;
			present++;
		} else if (got && what >= 6) {
			cr_assert_eq(strtab__remove(&t, s), model[k]->key);
			free(model[k]);
			model[k] = NULL;
			present--;
		}
		cr_assert_eq(strtab__count(&t), present);
	}
	/* The walk and the snapshot give exactly the present keys. */
	size_t pos = 0, seen = 0;
	for (const char *k; (k = strtab__next(&t, &pos));) {
		unsigned id;
		cr_assert_eq(sscanf(k, "host-%u.", &id), 1);
		cr_assert_eq(model[id]->key, k);
		seen++;
	}
	cr_assert_eq(seen, present);
	const char **all;
	size_t n;
	cr_assert_eq(strtab__collect(&t, &all, &n), 0);
	cr_assert_eq(n, present);
	free(all);
	cr_assert_null(strtab__remove(&t, "never added"));
	strtab__free(&t);
	cr_assert_eq(strtab__count(&t), 0);
	cr_assert_null(strtab__find(&t, "host-1.example", NULL));
	for (unsigned k = 0; k < SPACE; k++)
		free(model[k]);
}

/* Interning: equal content, one stored pointer; the caller gets its node back. */
Test(strtab, interning_gives_one_copy)
{
	struct strtab t = {0};
	const char *names[] = {"a.example", "b.example", "a.example", "", "a.example"};
	struct node *made[5] = {0};

	for (size_t i = 0; i < 5; i++) {
		uint64_t h;
		const char *k = strtab__find(&t, names[i], &h);
		if (!k) {
			made[i] = node_new(names[i]);
			cr_assert_eq(strtab__add(&t, made[i]->key, h), 0);
			k = made[i]->key;
		}
		node_of(k)->refs++;
	}
	cr_assert_eq(strtab__count(&t), 3);
	cr_assert_eq(node_of(strtab__find(&t, "a.example", NULL))->refs, 3);
	cr_assert_eq(strtab__find(&t, "", NULL), made[3]->key, "the empty string is a key");
	strtab__free(&t);
	for (size_t i = 0; i < 5; i++)
		free(made[i]);
}

Test(strtab, reserve_means_no_growth)
{
	struct strtab t;
	static char keys[6000][16];

	strtab__init(&t, true);
	cr_assert_eq(strtab__reserve(&t, 5000), 0);
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%u", i);
		cr_assert_eq(strtab__add(&t, keys[i], strtab__hash(keys[i])), 0);
	}
	cr_assert_null(t.retired, "a reserved shared table never retired an array");
	for (unsigned i = 5000; i < 6000; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%u", i);
		cr_assert_eq(strtab__add(&t, keys[i], strtab__hash(keys[i])), 0);
	}
	cr_assert_not_null(t.retired, "growing a shared table keeps the old array");
	for (unsigned i = 0; i < 6000; i++)
		cr_assert_eq(strtab__find(&t, keys[i], NULL), keys[i]);
	strtab__free(&t);
}

/* One writer, two readers: every key the writer announced is found, whole, by the readers
 * while the table grows under them (also a ThreadSanitizer subject). */
enum { SHARED_KEYS = 60000 };
static char shared_keys[SHARED_KEYS][16];
static struct strtab shared;
static atomic_uint announced;

static void *reader(void *arg)
{
	unsigned misses = 0;
	(void)arg;
	for (unsigned round = 0; round < 400000; round++) {
		unsigned n = atomic_load_explicit(&announced, memory_order_acquire);
		if (!n)
			continue;
		unsigned i = (round * 2654435761u) % n;
		const char *k = strtab__find(&shared, shared_keys[i], NULL);
		if (k != shared_keys[i])
			misses++;
		if (n == SHARED_KEYS && round > 200000)
			break;
	}
	return (void *)(uintptr_t)misses;
}

Test(strtab, shared_readers_during_growth)
{
	pthread_t r[2];

	strtab__init(&shared, true);
	for (unsigned i = 0; i < SHARED_KEYS; i++)
		snprintf(shared_keys[i], sizeof(shared_keys[i]), "10.0.%u.%u", i >> 8, i & 255);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&r[i], NULL, reader, NULL), 0);
	for (unsigned i = 0; i < SHARED_KEYS; i++) {
		cr_assert_eq(strtab__add(&shared, shared_keys[i], strtab__hash(shared_keys[i])), 0);
		atomic_store_explicit(&announced, i + 1, memory_order_release);
	}
	for (int i = 0; i < 2; i++) {
		void *misses;
		pthread_join(r[i], &misses);
		cr_assert_eq((uintptr_t)misses, 0, "reader %d missed %zu announced keys", i,
			     (size_t)(uintptr_t)misses);
	}
	strtab__free(&shared);
}

/* ---- atomic_file --------------------------------------------------------------------------- */

static char tmpdir[64];

static void mk_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/svcsensor-atomic-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void rm_tmpdir(void)
{
	rm_tree(tmpdir);
}

TestSuite(atomic_file, .init = mk_tmpdir, .fini = rm_tmpdir);

static int fill_text(FILE *f, const void *ctx)
{
	fputs(ctx, f);
	return 0;
}

static int fill_fails(FILE *f, const void *ctx)
{
	(void)ctx;
	fputs("half a file", f);
	return -ENOMEM;
}

/* Writes many bytes and reports a stream error the way the report's writers do. */
static int fill_big(FILE *f, const void *ctx)
{
	(void)ctx;
	for (int i = 0; i < 100000; i++)
		fputs("0123456789abcdef0123456789abcdef\n", f);
	return ferror(f) ? -EIO : 0;
}

/* The same without looking at the stream (the service map's writer does not). */
static int fill_big_unchecked(FILE *f, const void *ctx)
{
	(void)fill_big(f, ctx);
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, 1 << 16);
	cr_assert_not_null(buf);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Every name in dir (dot files too, so that a temporary file would show). */
static unsigned entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;
	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

Test(atomic_file, replaces_whole_with_its_mode)
{
	char *path = path_in(tmpdir, "out.txt");
	struct stat st;

	cr_assert_eq(atomic_file__write(path, 0640, fill_text, "first\n"), 0);
	cr_assert_eq(atomic_file__write(path, 0640, fill_text, "second\n"), 0);
	char *got = slurp(path);
	cr_assert_str_eq(got, "second\n");
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0640, "mode %o", st.st_mode & 07777);
	cr_assert_eq(entries(tmpdir), 1, "no temporary file left");
	free(got);

	/* A relative path: the temporary file goes into the working directory. */
	char cwd[256];
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir(tmpdir), 0);
	cr_assert_eq(atomic_file__write("rel.txt", 0600, fill_text, "rel\n"), 0);
	cr_assert_eq(chdir(cwd), 0);
	char *rel = path_in(tmpdir, "rel.txt");
	got = slurp(rel);
	cr_assert_str_eq(got, "rel\n");
	cr_assert_eq(entries(tmpdir), 2);
	free(got);
	free(rel);
	free(path);
}

Test(atomic_file, fill_error_keeps_the_old_file)
{
	char *path = path_in(tmpdir, "out.txt");

	cr_assert_eq(atomic_file__write(path, 0644, fill_text, "old\n"), 0);
	cap_begin();
	int rc = atomic_file__write(path, 0644, fill_fails, NULL);
	const char *msg = cap_end();
	cr_assert_eq(rc, -ENOMEM);
	cr_assert_eq(count_lines(msg), 1, "%s", msg);
	cr_assert_not_null(strstr(msg, path), "%s", msg);
	char *got = slurp(path);
	cr_assert_str_eq(got, "old\n");
	cr_assert_eq(entries(tmpdir), 1, "no temporary file left");
	free(got);
	free(path);
}

/* The disk "fills up" (a file size limit; works as root too): the kernel's EFBIG comes back,
 * not a generic EIO, and the old file stays whole. */
Test(atomic_file, full_disk_gives_the_real_errno)
{
	char *path = path_in(tmpdir, "out.txt");
	struct rlimit rl = {.rlim_cur = 65536, .rlim_max = RLIM_INFINITY};

	cr_assert_eq(atomic_file__write(path, 0644, fill_text, "old\n"), 0);
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	cap_begin();
	int rc = atomic_file__write(path, 0644, fill_big, NULL);
	const char *msg = cap_end();
	rl.rlim_cur = RLIM_INFINITY;
	setrlimit(RLIMIT_FSIZE, &rl);
	cr_assert_eq(rc, -EFBIG, "rc %d (%s)", rc, strerror(-rc));
	cr_assert_eq(count_lines(msg), 1, "%s", msg);
	cr_assert_not_null(strstr(msg, strerror(EFBIG)), "%s", msg);

	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &(struct rlimit){65536, RLIM_INFINITY}), 0);
	cap_begin();
	rc = atomic_file__write(path, 0644, fill_big_unchecked, NULL);
	cap_end();
	setrlimit(RLIMIT_FSIZE, &rl);
	cr_assert_eq(rc, -EFBIG, "unchecked stream: rc %d (%s)", rc, strerror(-rc));
	char *got = slurp(path);
	cr_assert_str_eq(got, "old\n");
	cr_assert_eq(entries(tmpdir), 1, "no temporary file left");
	free(got);
	free(path);
}

Test(atomic_file, errors_are_the_kernels)
{
	char *missing = path_in(tmpdir, "no/such/dir/out.txt");
	char *dir = path_in(tmpdir, "a-directory");

	cap_begin();
	int rc = atomic_file__write(missing, 0644, fill_text, "x");
	const char *msg = cap_end();
	cr_assert_eq(rc, -ENOENT);
	cr_assert_eq(count_lines(msg), 1, "%s", msg);

	/* rename(2) of a file over a directory: EISDIR. */
	cr_assert_eq(mkdir(dir, 0755), 0);
	cap_begin();
	rc = atomic_file__write(dir, 0644, fill_text, "x");
	msg = cap_end();
	cr_assert_eq(rc, -EISDIR, "rc %d", rc);
	cr_assert_not_null(strstr(msg, dir), "%s", msg);
	cr_assert_eq(entries(tmpdir), 1, "only the directory: no temporary file");
	cr_assert_eq(entries(dir), 0);

	if (geteuid() != 0) { /* root writes anywhere */
		char *ro = path_in(tmpdir, "ro"), *in_ro = path_in(ro, "out.txt");
		cr_assert_eq(mkdir(ro, 0555), 0);
		cap_begin();
		rc = atomic_file__write(in_ro, 0644, fill_text, "x");
		cap_end();
		cr_assert_eq(rc, -EACCES);
		free(ro);
		free(in_ro);
	}
	free(missing);
	free(dir);
}

/* ---- progress ------------------------------------------------------------------------------ */

Test(progress, line_and_clear, .init = cr_redirect_stderr)
{
	progress__line("day.pcap", 50, 200, 7);
	progress__line("-", 1234, 0, 42);
	progress__clear();
	fflush(stderr);
	cr_assert_stderr_eq_str("\rsvcsensor: day.pcap  25.0%  7 packets"
				"\rsvcsensor: -  42 packets"
				"\r                                                                      \r");
}
