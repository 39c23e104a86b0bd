/* fuzz_map.c - libFuzzer harness for the service map loader (svcmap__load).
 *
 * Input: the bytes of a map file (put in a memory file). The loader must refuse or accept
 * without a crash, a leak or a read out of bounds; a map it accepts must survive a save and a
 * load back unchanged (same sources, pairs and entries). */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "svcsensor/service_map.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-map.json", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct svcmap *m = svcmap__load(path, NULL);
	if (m) {
		size_t s1, p1, e1, s2, p2, e2;
		char saved[] = "/tmp/fuzz-map-XXXXXX";
		int sfd = mkstemp(saved);
		CHECK(sfd >= 0);
		close(sfd);
		svcmap__size(m, &s1, &p1, &e1);
		CHECK(svcmap__save(m, saved) == 0);
		struct svcmap *again = svcmap__load(saved, NULL);
		CHECK(again != NULL);
		svcmap__size(again, &s2, &p2, &e2);
		CHECK(s1 == s2 && p1 == p2 && e1 == e2);
		svcmap__free(again);
		svcmap__free(m);
		unlink(saved);
	}
	close(fd);
	return 0;
}
