/* stress_map_holder.c - ThreadSanitizer stress of the map in force (src/map/holder.c; Criterion
 * cannot run under TSan): in learn mode this thread learns new sources and pairs (the indexes
 * and application sets grow) while the saver thread writes the map again and again; the final
 * save must hold every entry. Then in detect mode this thread looks up while the loader thread
 * parses and swaps in the map file again and again. Exit 0 on success. */
#include <urcu.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/config.h"
#include "svcsensor/map_holder.h"
#include "svcsensor/service_map.h"

#define N_LEARN 20000
#define N_APPS 6
#define N_LOOKUPS 200000

static const char *const apps[N_APPS] = {"TLS", "DNS", "QUIC", "HTTP", "NTP", "SSH"};

static int learn_phase(struct svc_config *c)
{
	struct map_holder *h = map_holder__new(c, true);
	char src[32], dst[32];
	size_t entries = 0;
	int bad = 0;

	if (!h)
		return 1;
	for (unsigned i = 0; i < N_LEARN; i++) {
		snprintf(src, sizeof(src), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		snprintf(dst, sizeof(dst), "10.9.%u.%u", (i >> 8) & 15, i & 255);
		if (map_holder__learn(h, src, dst, apps[i % N_APPS], 1, 1, 2) ||
		    map_holder__learn(h, "10.255.0.1", dst, apps[i % N_APPS], 1, 1, 2))
			bad = 1;
		if (i % 500 == 0)
			map_holder__save_async(h);
	}
	if (map_holder__finish(h) != 0)
		bad = 1;
	map_holder__free(h);
	struct svcmap *m = svcmap__load(c->map_file, NULL);
	if (!m)
		return 1;
	svcmap__size(m, NULL, NULL, &entries);
	for (unsigned i = 0; i < N_LEARN && !bad; i += 97) {
		snprintf(src, sizeof(src), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		snprintf(dst, sizeof(dst), "10.9.%u.%u", (i >> 8) & 15, i & 255);
		bad = !svcmap__has_app(m, src, dst, apps[i % N_APPS]);
	}
	svcmap__free(m);
	printf("learn: %zu entries in the final save\n", entries);
	/* N_LEARN sources with one entry each, plus at least one for each of the 4096
	 * destinations of 10.255.0.1. */
	return bad || entries < N_LEARN + 4096;
}

static int detect_phase(struct svc_config *c)
{
	struct map_holder *h = map_holder__new(c, false);
	uint64_t done = 0, failed = 0;
	unsigned long misses = 0;

	if (!h)
		return 1;
	for (unsigned long i = 0; i < N_LOOKUPS; i++) {
		char src[32];
		snprintf(src, sizeof(src), "10.0.%lu.%lu", (i >> 8) & 15, i & 255);
		rcu_read_lock();
		misses += svcmap__lookup(map_holder__current(h), src, "10.9.0.0", "TLS") ==
			  SVCMAP_NO_SOURCE;
		rcu_read_unlock();
		if (i % 2000 == 0)
			map_holder__reload(h);
	}
	map_holder__wait_idle(h);
	map_holder__reloads(h, &done, &failed);
	map_holder__finish(h);
	map_holder__free(h);
	printf("detect: %llu reloads, %llu failed, %lu misses\n", (unsigned long long)done,
	       (unsigned long long)failed, misses);
	return done == 0 || failed != 0 || misses == N_LOOKUPS;
}

int main(void)
{
	char dir[] = "/tmp/stress-holder-XXXXXX", path[300], cmd[300];
	struct svc_config c;
	int bad;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/map.json", dir);
	rcu_register_thread();
	config__defaults(&c);
	config__set_str(&c.map_file, path);
	bad = learn_phase(&c) || detect_phase(&c);
	config__free(&c);
	rcu_unregister_thread();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd)) {
	}
	printf("%s\n", bad ? "FAIL" : "ok");
	return bad;
}
