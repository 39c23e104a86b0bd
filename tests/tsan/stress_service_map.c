/* stress_service_map.c - ThreadSanitizer stress of the service map's RCU publication (Criterion
 * cannot run under TSan): 3 readers look up under rcu_read_lock while the main thread publishes
 * 1000 maps; then a reader runs while the main thread learns into a live map (the single writer
 * with concurrent readers that src/map/store.c supports): first new sources and pairs (the
 * indexes grow and are republished), then many applications per pair and more distinct names
 * than a pair's bit set holds (application sets grow and are republished, names past id 128 are
 * found by scanning). Exit 0 on success. */
#include <urcu.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "svcsensor/service_map.h"

#define N_KEYS 16
#define N_PUBLISH 1000
#define N_READERS 3
#define N_LEARN 3000
#define N_APPS 200     /* distinct application names: past the pair's 128-bit set */
#define N_APP_PAIRS 64 /* each learns half of the names: sets grow 4 -> 128 */

static struct svcmap_ref ref;
static atomic_bool stop;
static atomic_int started;
static atomic_ulong errors;

static struct svcmap *gen_map(uint64_t g)
{
	struct svcmap *m = svcmap__new();
	char src[32], dst[32], app[32];
	if (!m || svcmap__learn(m, "gen", "gen", "g", g, 1, 2))
		abort();
	snprintf(app, sizeof(app), "app-%llu", (unsigned long long)g);
	for (int j = 0; j < N_KEYS; j++) {
		snprintf(src, sizeof(src), j % 2 ? "10.0.0.%d" : "fd00::%d", j);
		snprintf(dst, sizeof(dst), "dst-%d", j);
		if (svcmap__learn(m, src, dst, app, 1, 1, 2))
			abort();
	}
	return m;
}

static void *reader(void *arg)
{
	uint64_t *last = arg;
	char src[32], dst[32], app[32], other[32];
	bool counted = false;
	rcu_register_thread();
	while (!atomic_load(&stop)) {
		struct svcmap_counters c;
		rcu_read_lock();
		const struct svcmap *m = svcmap__current(&ref);
		if (!m || !svcmap__get(m, "gen", "gen", "g", &c)) {
			atomic_fetch_add(&errors, 1);
			rcu_read_unlock();
			continue;
		}
		uint64_t g = c.bytes;
		if (g < __atomic_load_n(last, __ATOMIC_RELAXED))
			atomic_fetch_add(&errors, 1);
		snprintf(app, sizeof(app), "app-%llu", (unsigned long long)g);
		snprintf(other, sizeof(other), "app-%llu", (unsigned long long)g + 1);
		for (int j = 0; j < N_KEYS; j++) {
			snprintf(src, sizeof(src), j % 2 ? "10.0.0.%d" : "fd00::%d", j);
			snprintf(dst, sizeof(dst), "dst-%d", j);
			if (svcmap__lookup(m, src, dst, app) != SVCMAP_MATCH ||
			    svcmap__lookup(m, src, dst, other) != SVCMAP_NO_APP)
				atomic_fetch_add(&errors, 1);
		}
		rcu_read_unlock();
		__atomic_store_n(last, g, __ATOMIC_RELAXED);
		if (!counted) {
			counted = true;
			atomic_fetch_add(&started, 1);
		}
	}
	rcu_unregister_thread();
	return NULL;
}

static struct svcmap *live;

static void *learn_reader(void *arg)
{
	unsigned seed = 1;
	char src[32], dst[32];
	(void)arg;
	rcu_register_thread();
	while (!atomic_load(&stop)) {
		int i = (int)(rand_r(&seed) % N_LEARN);
		struct svcmap_counters c;
		snprintf(src, sizeof(src), "10.9.%d.%d", i % 16, i % 200);
		snprintf(dst, sizeof(dst), "d%d", i);
		rcu_read_lock();
		if (svcmap__get(live, src, dst, "TLS", &c) && c.flows > 2)
			atomic_fetch_add(&errors, 1);
		rcu_read_unlock();
	}
	rcu_unregister_thread();
	return NULL;
}

/* Phase 3: pair i holds "A<n>" when (n + i) is even, once learned. A MATCH must come with
 * its entry; anything else must never match. */
static atomic_ulong apps_seen;

static void *apps_reader(void *arg)
{
	unsigned seed = 7;
	char src[32], app[32];
	(void)arg;
	rcu_register_thread();
	while (!atomic_load(&stop)) {
		int i = (int)(rand_r(&seed) % N_APP_PAIRS), n = (int)(rand_r(&seed) % N_APPS);
		struct svcmap_counters c;
		snprintf(src, sizeof(src), "10.8.0.%d", i);
		snprintf(app, sizeof(app), "A%d", n);
		rcu_read_lock();
		enum svcmap_match r = svcmap__lookup(live, src, "remote", app);
		if (r == SVCMAP_MATCH) {
			atomic_fetch_add(&apps_seen, 1);
			if ((n + i) % 2 || !svcmap__get(live, src, "remote", app, &c) ||
			    c.flows > 1)
				atomic_fetch_add(&errors, 1);
		}
		rcu_read_unlock();
	}
	rcu_unregister_thread();
	return NULL;
}

int main(void)
{
	pthread_t th[N_READERS];
	uint64_t last[N_READERS] = {0};
	char src[32], dst[32];

	rcu_register_thread();
	svcmap__publish(&ref, gen_map(0));
	for (int i = 0; i < N_READERS; i++)
		pthread_create(&th[i], NULL, reader, &last[i]);
	while (atomic_load(&started) < N_READERS)
		;
	for (uint64_t g = 1; g <= N_PUBLISH; g++)
		svcmap__publish(&ref, gen_map(g));
	for (;;) {
		bool all = true;
		for (int i = 0; i < N_READERS; i++)
			all &= __atomic_load_n(&last[i], __ATOMIC_RELAXED) == N_PUBLISH;
		if (all)
			break;
	}
	atomic_store(&stop, true);
	for (int i = 0; i < N_READERS; i++)
		pthread_join(th[i], NULL);
	svcmap__publish(&ref, NULL);

	atomic_store(&stop, false);
	live = svcmap__new();
	pthread_create(&th[0], NULL, learn_reader, NULL);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < N_LEARN; i++) {
			snprintf(src, sizeof(src), "10.9.%d.%d", i % 16, i % 200);
			snprintf(dst, sizeof(dst), "d%d", i);
			rcu_read_lock();
			if (svcmap__learn(live, src, dst, "TLS", (uint64_t)i, 1, 2))
				abort();
			rcu_read_unlock();
		}
	atomic_store(&stop, true);
	pthread_join(th[0], NULL);
	svcmap__free(live);

	atomic_store(&stop, false);
	live = svcmap__new();
	pthread_create(&th[0], NULL, apps_reader, NULL);
	for (int n = 0; n < N_APPS; n++)
		for (int i = 0; i < N_APP_PAIRS; i++) {
			char app[32];
			if ((n + i) % 2)
				continue;
			snprintf(src, sizeof(src), "10.8.0.%d", i);
			snprintf(app, sizeof(app), "A%d", n);
			rcu_read_lock();
			if (svcmap__learn(live, src, "remote", app, 1, 1, 2))
				abort();
			rcu_read_unlock();
		}
	atomic_store(&stop, true);
	pthread_join(th[0], NULL);
	rcu_read_lock();
	for (int n = 0; n < N_APPS; n++)
		for (int i = 0; i < N_APP_PAIRS; i++) {
			char app[32];
			snprintf(src, sizeof(src), "10.8.0.%d", i);
			snprintf(app, sizeof(app), "A%d", n);
			if (svcmap__has_app(live, src, "remote", app) != !((n + i) % 2))
				atomic_fetch_add(&errors, 1);
		}
	rcu_read_unlock();
	svcmap__free(live);
	rcu_unregister_thread();

	if (atomic_load(&errors)) {
		fprintf(stderr, "stress_service_map: %lu inconsistent lookups\n",
			(unsigned long)atomic_load(&errors));
		return 1;
	}
	printf("stress_service_map: ok (%lu concurrent application matches)\n",
	       (unsigned long)atomic_load(&apps_seen));
	return 0;
}
