/* stress_detector.c - ThreadSanitizer stress of the detector (Criterion cannot run under TSan):
 * a detector thread judges while another requests reloads and a third rewrites the map file
 * atomically (svcmap__save). Exit 0 when every flow was judged exactly once. */
#include <urcu.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "svcsensor/config.h"
#include "svcsensor/detector.h"
#include "svcsensor/service_map.h"

static atomic_bool stop;
static struct detector *det;
static char mapp[256];

static void *reloader(void *a)
{
	(void)a;
	while (!atomic_load(&stop)) {
		detector__request_reload(det);
		usleep(100);
	}
	return NULL;
}

static void *writer(void *a)
{
	(void)a;
	rcu_register_thread();
	struct svcmap *m = svcmap__new();
	svcmap__learn(m, "10.42.0.130", "remote", "TLS", 1, 0, 0);
	svcmap__learn(m, "10.42.0.130", "10.42.0.1", "DNS", 1, 0, 0);
	while (!atomic_load(&stop)) {
		svcmap__save(m, mapp);
		usleep(500);
	}
	svcmap__free(m);
	rcu_unregister_thread();
	return NULL;
}

static void *judge(void *a)
{
	unsigned long *n = a;
	detector__thread_register();
	struct flow_record *r = flow_record__new();
	r->key.ipver = 4;
	inet_pton(AF_INET, "10.42.0.130", r->key.src);
	for (unsigned long i = 0; i < *n; i++) {
		inet_pton(AF_INET, i % 2 ? "10.42.0.1" : "8.8.8.8", r->key.dst);
		strcpy(r->app_name, i % 3 ? "DNS" : "TLS");
		r->bytes[0] = 100;
		detector__flow(det, r);
		if (i % 1000 == 0)
			detector__tick(det, i / 1000 + 1);
	}
	flow_record__free(r);
	detector__thread_unregister();
	return NULL;
}

int main(void)
{
	char dir[] = "/tmp/stress-det-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	snprintf(mapp, sizeof mapp, "%s/map.json", dir);
	rcu_register_thread();
	struct svc_config c;
	config__defaults(&c);
	free(c.local_networks);
	c.local_networks = calloc(1, sizeof(struct cidr));
	c.n_local_networks = 1;
	config__parse_cidr("10.42.0.0/24", c.local_networks);
	char p[300];
	config__set_str(&c.map_file, mapp);
	snprintf(p, sizeof p, "%s/anomalies.log", dir);
	config__set_str(&c.log_file, p);
	snprintf(p, sizeof p, "%s/report.txt", dir);
	config__set_str(&c.report_file, p);
	c.log_max_bytes = 100000;
	c.report_interval = 1;
	det = detector__new(&c, false, NULL);
	if (!det)
		return 1;
	unsigned long n = 100000;
	pthread_t t1, t2, t3;
	pthread_create(&t2, NULL, writer, NULL);
	pthread_create(&t1, NULL, reloader, NULL);
	pthread_create(&t3, NULL, judge, &n);
	pthread_join(t3, NULL);
	atomic_store(&stop, true);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	const struct detector_stats *st = detector__stats(det);
	printf("flows %llu reloads %llu failures %llu\n", (unsigned long long)st->flows,
	       (unsigned long long)st->map_reloads, (unsigned long long)st->map_reload_failures);
	int ok = st->flows == n;
	detector__finish(det);
	detector__free(det);
	config__free(&c);
	rcu_unregister_thread();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd)) {
	}
	return ok ? 0 : 1;
}
