/* atomic_file.c - replace a file whole: temporary file, fsync, rename, directory fsync (see
 * atomic_file.h). */
#include "svcsensor/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svcsensor/common.h"

/* path's directory ("." or "/" included) and the temporary name in it, both malloc'd. */
static int names_for(const char *path, char **dir, char **tmp)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t dlen = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
	size_t n = dlen + strlen(base) + sizeof("/..tmp.XXXXXX");

	*tmp = NULL;
	*dir = !slash ? strdup(".") : slash == path ? strdup("/") : strndup(path, dlen);
	if (!*dir || !(*tmp = malloc(n)))
		return -ENOMEM;
	snprintf(*tmp, n, "%s/.%s.tmp.XXXXXX", *dir, base);
	return 0;
}

/* Make the rename durable; the new file is in place whatever happens here. */
static void sync_dir(const char *path, const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0 || fsync(dfd) != 0)
		svc_warn("%s: saved, but its directory %s could not be synced: %s", path, dir,
			 strerror(errno));
	if (dfd >= 0)
		close(dfd);
}

/* fill, then flush and sync f; 0 or the negative errno of the first failure. */
static int fill_and_sync(FILE *f, atomic_file_fill fill, const void *ctx, const char **what)
{
	int err;

	errno = 0;
	err = fill(f, ctx);
	if (err == -EIO && ferror(f) && errno)
		err = -errno; /* the stream's own write error, not a generic one */
	if (err)
		return err;
	*what = "cannot write";
	if (fflush(f) != 0 || ferror(f))
		return -(errno ? errno : EIO);
	*what = "cannot sync";
	if (fsync(fileno(f)) != 0)
		return -errno;
	return 0;
}

int atomic_file__write(const char *path, mode_t mode, atomic_file_fill fill, const void *ctx)
{
	const char *what = "cannot write";
	char *dir = NULL, *tmp = NULL;
	bool created = false;
	FILE *f = NULL;
	int fd = -1, err;

	if ((err = names_for(path, &dir, &tmp)) != 0)
		goto cleanup;
	what = "cannot create a temporary file in its directory";
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		err = -errno;
		goto cleanup;
	}
	created = true;
	if (fchmod(fd, mode) != 0 || !(f = fdopen(fd, "w"))) {
		err = -errno;
		goto cleanup;
	}
	fd = -1; /* f owns it now */
	what = "cannot write";
	if ((err = fill_and_sync(f, fill, ctx, &what)) != 0)
		goto cleanup;
	err = fclose(f) != 0 ? -(errno ? errno : EIO) : 0;
	f = NULL;
	if (err)
		goto cleanup;
	what = "cannot rename into place";
	if (rename(tmp, path) != 0) {
		err = -errno;
		goto cleanup;
	}
	created = false;
	sync_dir(path, dir);
cleanup:
	if (err)
		svc_err("%s: %s: %s (the previous file, if any, is unchanged)", path, what,
			strerror(-err));
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (created)
		unlink(tmp);
	free(tmp);
	free(dir);
	return err;
}
