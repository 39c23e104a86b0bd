/* hash.c - the per-process seed of the hash family (see hash.h). */
#include "svcsensor/hash.h"

#include <pthread.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t hash__seed_value;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void)
{
	uint64_t s = 0;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
		/* Entropy not ready yet (early boot): the clock and the pid, still per process. */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)getpid();
	}
	s = hash__mix64(s);
	__atomic_store_n(&hash__seed_value, s ? s : 0x9e3779b97f4a7c15ULL, __ATOMIC_RELEASE);
}

/* The slow path of hash__seed: the first call draws the seed (once, whatever the threads). */
uint64_t hash__seed_draw(void)
{
	pthread_once(&seed_once, seed_init);
	return __atomic_load_n(&hash__seed_value, __ATOMIC_ACQUIRE);
}
