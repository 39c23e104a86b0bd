/* test_map_holder.c - the map in force (src/map/holder.c): a SIGHUP reload parsed on the loader
 * thread while lookups go on against the old map, a broken or missing file keeping the map in
 * force, learn-mode saves written by the saver thread while learning goes on, and the final
 * save holding everything. */
#include <urcu.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"
#include "svcsensor/config.h"
#include "svcsensor/map_holder.h"
#include "svcsensor/service_map.h"

static char dir[64];
static char *map_path;
static struct svc_config cfg;

static void setup(void)
{
	cr_redirect_stderr(); /* the holder's one-line messages */
	rcu_register_thread();
	snprintf(dir, sizeof(dir), "/tmp/svcsensor-holder-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	map_path = path_in(dir, "map.json");
	cr_assert_eq(config__defaults(&cfg), 0);
	cr_assert_eq(config__set_str(&cfg.map_file, map_path), 0);
}

static void teardown(void)
{
	config__free(&cfg);
	rm_rf(dir);
	free(map_path);
	rcu_unregister_thread();
}

TestSuite(map_holder, .init = setup, .fini = teardown);

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void src_name(char *out, size_t size, const char *prefix, unsigned i)
{
	snprintf(out, size, "%s.%u.%u.%u", prefix, (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

/* Write map_path atomically (a temporary file renamed over it, as an operator's tool would):
 * n sources "<prefix>.a.b.c" -> "remote" {"TLS"}. */
static void write_map(const char *prefix, unsigned n)
{
	struct svcmap *m = svcmap__new();
	char src[64], *tmp = path_in(dir, "map.json.new");

	cr_assert_not_null(m);
	for (unsigned i = 0; i < n; i++) {
		src_name(src, sizeof(src), prefix, i);
		cr_assert_eq(svcmap__learn(m, src, "remote", "TLS", 100, 1, 2), 0);
	}
	cr_assert_eq(svcmap__save(m, tmp), 0);
	cr_assert_eq(rename(tmp, map_path), 0);
	svcmap__free(m);
	free(tmp);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
}

static enum svcmap_match lookup_now(struct map_holder *h, const char *src)
{
	rcu_read_lock();
	enum svcmap_match r = svcmap__lookup(map_holder__current(h), src, "remote", "TLS");
	rcu_read_unlock();
	return r;
}

static void check_reloads(struct map_holder *h, uint64_t done, uint64_t failed)
{
	uint64_t d = 99, f = 99;
	map_holder__reloads(h, &d, &f);
	cr_assert_eq(d, done, "%llu reloads, expected %llu", (unsigned long long)d,
		     (unsigned long long)done);
	cr_assert_eq(f, failed, "%llu failed reloads, expected %llu", (unsigned long long)f,
		     (unsigned long long)failed);
}

/* A large map file (150 000 sources) is parsed on the loader thread: the call that asks for the
 * reload returns at once, lookups keep being answered by the old map while the file is parsed,
 * the old map stays readable for a reader that still holds it after the swap, and then the new
 * map is the one in force. */
Test(map_holder, reload_parses_on_the_loader_thread_while_lookups_go_on)
{
	write_map("old", 1);
	struct map_holder *h = map_holder__new(&cfg, false);
	cr_assert_not_null(h);
	cr_assert_eq(lookup_now(h, "old.0.0.0"), SVCMAP_MATCH);
	write_map("new", 150000);

	rcu_read_lock();
	const struct svcmap *old = map_holder__current(h), *cur = old;
	double t0 = now_s();
	map_holder__reload(h);
	double t_call = now_s() - t0;
	unsigned long lookups = 0;
	while (cur == old && now_s() - t0 < 60) {
		/* The detector's side: judging against the map in force goes on. */
		cr_assert_eq(svcmap__lookup(old, "old.0.0.0", "remote", "TLS"), SVCMAP_MATCH);
		cr_assert_eq(svcmap__lookup(old, "new.0.0.7", "remote", "TLS"), SVCMAP_NO_SOURCE);
		lookups++;
		cur = map_holder__current(h);
	}
	double t_swap = now_s() - t0;
	cr_assert_neq(cur, old, "no new map after %.1f s", t_swap);
	cr_assert_eq(svcmap__lookup(cur, "new.0.0.7", "remote", "TLS"), SVCMAP_MATCH);
	/* The old map is freed only after this reader leaves its read-side section. */
	cr_assert_eq(svcmap__lookup(old, "old.0.0.0", "remote", "TLS"), SVCMAP_MATCH);
	rcu_read_unlock();

	cr_log_info("reload asked in %.6f s, new map in force after %.3f s, %lu lookups meanwhile",
		    t_call, t_swap, lookups);
	cr_assert_lt(t_call * 10, t_swap, "asking took %.6f s, the swap came after %.6f s", t_call,
		     t_swap);
	cr_assert_geq(lookups, 100, "only %lu lookups while the file was parsed", lookups);
	map_holder__wait_idle(h);
	check_reloads(h, 1, 0);
	cr_assert_eq(lookup_now(h, "old.0.0.0"), SVCMAP_NO_SOURCE);
	cr_assert_eq(lookup_now(h, "new.0.146.255"), SVCMAP_MATCH);
	size_t s = 0;
	rcu_read_lock();
	svcmap__size(map_holder__current(h), &s, NULL, NULL);
	rcu_read_unlock();
	cr_assert_eq(s, 150000);
	map_holder__free(h);
}

Test(map_holder, broken_or_missing_file_keeps_the_map_and_counts_a_failure)
{
	write_map("old", 3);
	struct map_holder *h = map_holder__new(&cfg, false);
	cr_assert_not_null(h);
	rcu_read_lock();
	const struct svcmap *before = map_holder__current(h);
	rcu_read_unlock();

	write_text(map_path, "{\"format\": \"svcsensor-map\", \"version\": 1, \"sources\": {");
	cap_begin();
	map_holder__reload(h);
	map_holder__wait_idle(h);
	const char *err = cap_end();
	cr_assert_eq(count_lines(err), 1, "%s", err);
	cr_assert(strstr(err, map_path), "%s", err);
	check_reloads(h, 0, 1);

	unlink(map_path);
	cap_begin();
	map_holder__reload(h);
	map_holder__wait_idle(h);
	err = cap_end();
	cr_assert_eq(count_lines(err), 1, "%s", err);
	cr_assert(strstr(err, "keeping the current map"), "%s", err);
	check_reloads(h, 0, 2);

	rcu_read_lock();
	cr_assert_eq(map_holder__current(h), before, "the map in force was replaced");
	rcu_read_unlock();
	cr_assert_eq(lookup_now(h, "old.0.0.2"), SVCMAP_MATCH);

	/* A good file is taken; after finish, a reload is refused. */
	write_map("new", 2);
	map_holder__reload(h);
	map_holder__wait_idle(h);
	check_reloads(h, 1, 2);
	cr_assert_eq(lookup_now(h, "new.0.0.1"), SVCMAP_MATCH);
	cr_assert_eq(map_holder__finish(h), 0);
	write_map("third", 2);
	map_holder__reload(h);
	map_holder__wait_idle(h);
	check_reloads(h, 1, 2);
	cr_assert_eq(lookup_now(h, "new.0.0.1"), SVCMAP_MATCH);
	map_holder__free(h);
}

/* ---- learn mode ---- */

#define SET_A 60000u /* learned before the save is asked for */
#define SET_B 60000u /* learned while it runs */

static void learn_range(struct map_holder *h, const char *prefix, unsigned from, unsigned to)
{
	char src[64];
	for (unsigned i = from; i < to; i++) {
		src_name(src, sizeof(src), prefix, i);
		cr_assert_eq(map_holder__learn(h, src, "remote", "TLS", i, 1000 + i, 2000 + i), 0);
	}
}

/* Every entry of prefix [from, to) in the file at map_path, each with the counters learned. */
static void check_file_holds(const char *prefix, unsigned from, unsigned to, size_t *entries)
{
	struct svcmap *m = svcmap__load(map_path, NULL);
	char src[64];

	cr_assert_not_null(m, "the saved map does not load back");
	for (unsigned i = from; i < to; i++) {
		struct svcmap_counters c;
		src_name(src, sizeof(src), prefix, i);
		cr_assert(svcmap__get(m, src, "remote", "TLS", &c), "%s missing", src);
		cr_assert_eq(c.flows, 1);
		cr_assert_eq(c.bytes, i);
		cr_assert_eq(c.first_ms, 1000 + i);
		cr_assert_eq(c.last_ms, 2000 + i);
	}
	svcmap__size(m, NULL, NULL, entries);
	svcmap__free(m);
}

static unsigned temp_files_left(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;
	cr_assert_not_null(d);
	while ((e = readdir(d)))
		n += strstr(e->d_name, ".tmp.") != NULL; /* ".NAME.tmp.XXXXXX", atomic_file.h */
	closedir(d);
	return n;
}

Test(map_holder, learn_mode_save_runs_while_learning_goes_on)
{
	struct map_holder *h = map_holder__new(&cfg, true); /* no file yet: a new map */
	cr_assert_not_null(h);
	learn_range(h, "a", 0, SET_A);
	map_holder__save_async(h);
	/* The detector's side: learning goes on while the saver writes the file. */
	unsigned during = 0;
	for (unsigned i = 0; i < SET_B; i += 500) {
		if (access(map_path, F_OK) != 0)
			during = i;
		learn_range(h, "b", i, i + 500);
	}
	map_holder__wait_idle(h);
	cr_log_info("%u of %u entries learned while the first save ran", during, SET_B);
	cr_assert_gt(during, 0, "learning did not go on during the save");

	size_t entries = 0;
	check_file_holds("a", 0, SET_A, &entries); /* everything learned before the save began */
	cr_assert_geq(entries, SET_A);
	cr_assert_leq(entries, SET_A + SET_B);

	cr_assert_eq(map_holder__finish(h), 0);
	check_file_holds("a", 0, SET_A, &entries);
	check_file_holds("b", 0, SET_B, &entries); /* the final save holds everything */
	cr_assert_eq(entries, SET_A + SET_B);
	cr_assert_eq(temp_files_left(), 0);
	map_holder__free(h);
}

/* The final save waits for a running save, then writes everything. */
Test(map_holder, final_save_after_a_running_one_holds_everything)
{
	struct map_holder *h = map_holder__new(&cfg, true);
	cr_assert_not_null(h);
	learn_range(h, "a", 0, SET_A);
	map_holder__save_async(h);
	learn_range(h, "b", 0, 1000);
	cr_assert_eq(map_holder__finish(h), 0);
	size_t entries = 0;
	check_file_holds("a", 0, SET_A, &entries);
	check_file_holds("b", 0, 1000, &entries);
	cr_assert_eq(entries, SET_A + 1000);
	cr_assert_eq(temp_files_left(), 0);
	map_holder__free(h);
}

/* A save asked for while one runs is done after it (nothing learned in between is left out
 * for an interval); with nothing new learned, no save is made. */
Test(map_holder, saves_follow_what_was_learned)
{
	struct map_holder *h = map_holder__new(&cfg, true);
	cr_assert_not_null(h);
	map_holder__save_async(h); /* nothing learned yet */
	map_holder__wait_idle(h);
	cr_assert_neq(access(map_path, F_OK), 0, "a save with nothing learned");

	learn_range(h, "a", 0, SET_A);
	map_holder__save_async(h);
	learn_range(h, "late", 0, 1);
	map_holder__save_async(h); /* while the first one is (most likely) still running */
	map_holder__wait_idle(h);
	size_t entries = 0;
	check_file_holds("a", 0, SET_A, &entries);
	check_file_holds("late", 0, 1, &entries);

	struct stat st1, st2;
	cr_assert_eq(stat(map_path, &st1), 0);
	map_holder__save_async(h); /* nothing new: the file is left as it is */
	map_holder__wait_idle(h);
	cr_assert_eq(stat(map_path, &st2), 0);
	cr_assert_eq(st1.st_ino, st2.st_ino, "the map was saved again with nothing new");
	map_holder__free(h);
}

/* Learn mode: a reload never replaces the map being learned (nothing is read, nothing counted). */
Test(map_holder, learn_mode_reload_keeps_the_learned_map)
{
	struct map_holder *h = map_holder__new(&cfg, true);
	cr_assert_not_null(h);
	learn_range(h, "a", 0, 10);
	write_map("other", 5);
	map_holder__reload(h);
	map_holder__wait_idle(h);
	check_reloads(h, 0, 0);
	cr_assert_eq(lookup_now(h, "a.0.0.9"), SVCMAP_MATCH);
	cr_assert_eq(lookup_now(h, "other.0.0.1"), SVCMAP_NO_SOURCE);
	map_holder__free(h);
}
