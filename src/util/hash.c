/* hash.c - the per-process seed of the hash family (see hash.h). */
#include "svcsensor/hash.h"

#include <pthread.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t hash__seed_value;
uint64_t hash__flow_keys[5];
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
	if (!s)
		s = 0x9e3779b97f4a7c15ULL;
	/* flow_key__hash's words: distinct, unrelated to each other for whoever lacks s (the
	 * mixer is a bijection of s + i * odd). k[2] is a multiplier: odd, never 0. */
	for (unsigned i = 0; i < 5; i++)
		hash__flow_keys[i] = hash__mix64(s + (i + 1) * 0xd1b54a32d192ed03ULL);
	hash__flow_keys[2] |= 1;
	__atomic_store_n(&hash__seed_value, s, __ATOMIC_RELEASE);
}

/* The slow path of hash__seed: the first call draws the seed (once, whatever the threads). */
uint64_t hash__seed_draw(void)
{
	pthread_once(&seed_once, seed_init);
	return __atomic_load_n(&hash__seed_value, __ATOMIC_ACQUIRE);
}
