/* fuzz_util.h - shared by the file-level harnesses: the input as a file the code under test
 * opens by path, without touching the disk. */
#ifndef SVCSENSOR_FUZZ_UTIL_H
#define SVCSENSOR_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

/* A memory file holding data; its path ("/proc/self/fd/N") in path. The fd (close it), or
 * -1 when it could not be made (the input is then skipped). */
static inline int fuzz_memfile(const uint8_t *data, size_t size, const char *name, char *path,
			       size_t path_len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	snprintf(path, path_len, "/proc/self/fd/%d", fd);
	return fd;
}

#endif
