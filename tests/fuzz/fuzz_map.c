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
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "svcsensor/service_map.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = fuzz_memfile(data, size, "fuzz-map.json", path, sizeof(path));
	if (fd < 0)
		return 0;
	struct svcmap *m = svcmap__load(path, NULL);
	if (m) {
		size_t s1, p1, e1, s2, p2, e2;
		/* The save fsyncs the file and its directory: on a tmpfs that costs nothing, where
		 * a disk-backed /tmp made the syscalls half of the run time. */
		char saved[] = "/dev/shm/fuzz-map-XXXXXX";
		int sfd = mkstemp(saved);
		if (sfd < 0) {
			strcpy(saved, "/tmp/fuzz-map-XXXXXX");
			sfd = mkstemp(saved);
		}
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
