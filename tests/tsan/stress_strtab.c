/* stress_strtab.c - ThreadSanitizer stress of a shared string table (strtab.h; Criterion
 * cannot run under TSan): one writer adds keys and grows the table, two readers find every
 * announced key and take snapshots meanwhile. Exit 0 when every announced key was found. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/strtab.h"

#define KEYS 100000
#define READERS 2

static char keys[KEYS][24];
static struct strtab t;
static atomic_uint announced;
static atomic_bool done;

static void *reader(void *arg)
{
	unsigned long misses = 0, round = 0;
	(void)arg;
	while (!atomic_load_explicit(&done, memory_order_acquire) || round < 1000) {
		unsigned n = atomic_load_explicit(&announced, memory_order_acquire);
		round++;
		if (!n)
			continue;
		unsigned i = (unsigned)(round * 2654435761u % n);
		if (strtab__find(&t, keys[i], NULL) != keys[i])
			misses++;
		if (round % 20000 == 0) {
			const char **all;
			size_t got;
			if (strtab__collect(&t, &all, &got) == 0) {
				if (got < n)
					misses++;
				free(all);
			}
		}
	}
	return (void *)(uintptr_t)misses;
}

int main(void)
{
	pthread_t th[READERS];
	unsigned long misses = 0;

	strtab__init(&t, true);
	for (unsigned i = 0; i < KEYS; i++)
		snprintf(keys[i], sizeof(keys[i]), "10.%u.%u.%u", i >> 16, i >> 8 & 255, i & 255);
	for (uintptr_t i = 0; i < READERS; i++)
		pthread_create(&th[i], NULL, reader, (void *)i);
	for (unsigned i = 0; i < KEYS; i++) {
		if (strtab__add(&t, keys[i], strtab__hash(keys[i])) != 0)
			return 1;
		atomic_store_explicit(&announced, i + 1, memory_order_release);
	}
	atomic_store_explicit(&done, true, memory_order_release);
	for (int i = 0; i < READERS; i++) {
		void *m;
		pthread_join(th[i], &m);
		misses += (uintptr_t)m;
	}
	strtab__free(&t);
	printf("strtab: %d keys, %d readers, %lu misses\n", KEYS, READERS, misses);
	return misses ? 1 : 0;
}
