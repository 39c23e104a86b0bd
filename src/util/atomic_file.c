/* atomic_file.c - replace a file whole: temporary file, fsync, rename, directory fsync; or,
 * for a device, FIFO or "-", write through (see atomic_file.h). */
#include "svcsensor/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "svcsensor/common.h"
#include "svcsensor/outpath.h"

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

/* Not a regular file (a device, a FIFO, "-"): a rename would replace the device by a file, so
 * the content is written into it as it is. No fsync: a device or a pipe has nothing to sync. */
static int write_through(const char *path, const char *real, enum outpath_kind kind,
			 atomic_file_fill fill, const void *ctx)
{
	const char *what = "cannot open";
	int fd = outpath__open(real, kind), err = 0;
	FILE *f = NULL;

	if (fd < 0) {
		err = fd;
		goto cleanup;
	}
	if (!(f = fdopen(fd, "w"))) {
		err = -errno;
		close(fd);
		goto cleanup;
	}
	what = "cannot write";
	errno = 0;
	err = fill(f, ctx);
	if (err == -EIO && ferror(f) && errno)
		err = -errno;
	if (!err && (fflush(f) != 0 || ferror(f)))
		err = -(errno ? errno : EIO);
	if (fclose(f) != 0 && !err)
		err = -(errno ? errno : EIO);
cleanup:
	if (err)
		svc_err("%s: %s: %s", path, what, strerror(-err));
	return err;
}

/* The temporary file, its fill, the rename; path (for messages) resolves to real. */
static int replace(const char *path, const char *real, mode_t mode, atomic_file_fill fill,
		   const void *ctx)
{
	const char *what = "cannot write";
	char *dir = NULL, *tmp = NULL;
	bool created = false;
	FILE *f = NULL;
	int fd = -1, err;

	if ((err = names_for(real, &dir, &tmp)) != 0)
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
	if (rename(tmp, real) != 0) {
		err = -errno;
		goto cleanup;
	}
	created = false;
	sync_dir(real, dir);
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

int atomic_file__write(const char *path, mode_t mode, atomic_file_fill fill, const void *ctx)
{
	char why[OUTPATH_WHY_MAX], *real = NULL;
	enum outpath_kind kind;
	int err = outpath__classify(path, &kind, &real, why);

	if (err)
		svc_err("%s: cannot save: %s (the previous file, if any, is unchanged)", path, why);
	else if (kind == OUTPATH_REGULAR)
		err = replace(path, real, mode, fill, ctx);
	else
		err = write_through(path, real, kind, fill, ctx);
	free(real);
	return err;
}

/* A leftover of ours: ".BASE" + anything + ".tmp." + the six characters mkostemp chose. */
static bool is_leftover(const char *name, const char *base)
{
	size_t n = strlen(name), b = strlen(base);
	return name[0] == '.' && n >= 1 + b + sizeof(".tmp.XXXXXX") - 1 &&
	       strncmp(name + 1, base, b) == 0 && strncmp(name + n - 11, ".tmp.", 5) == 0;
}

unsigned atomic_file__sweep(const char *path, unsigned min_age_s)
{
	char *dir = NULL, *tmp = NULL;
	const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
	unsigned removed = 0;
	DIR *d;

	if (!*base || names_for(path, &dir, &tmp) != 0 || !(d = opendir(dir))) {
		free(dir);
		free(tmp);
		return 0;
	}
	time_t now = time(NULL);
	for (struct dirent *e; (e = readdir(d));) {
		struct stat st;
		if (!is_leftover(e->d_name, base) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		/* Ours (same owner), a plain file, and idle: a save in progress keeps writing it. */
		if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
		    now - st.st_mtime < (time_t)min_age_s)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	if (removed)
		svc_warn("%s: removed %u temporary file%s left by an interrupted save", path,
			 removed, removed == 1 ? "" : "s");
	free(dir);
	free(tmp);
	return removed;
}
