/* outpath.c - classify, open and check output paths (see outpath.h for the rules). */
#include "svcsensor/outpath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svcsensor/common.h"

bool outpath__is_stdout(const char *path)
{
	return path && strcmp(path, "-") == 0;
}

static bool trusted_owner(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* The kind of what path names, following it (the symlink was trusted already). */
static int kind_of(const struct stat *st, enum outpath_kind *kind, char *why)
{
	if (S_ISDIR(st->st_mode)) {
		snprintf(why, OUTPATH_WHY_MAX, "%s", strerror(EISDIR));
		return -EISDIR;
	}
	*kind = S_ISREG(st->st_mode) ? OUTPATH_REGULAR : OUTPATH_THROUGH;
	return 0;
}

/* path is a symlink (lst): trusted? then what it points to. */
static int classify_link(const char *path, const struct stat *lst, enum outpath_kind *kind,
			 char **real, char *why)
{
	struct stat st;
	int err;

	if (!trusted_owner(lst->st_uid)) {
		snprintf(why, OUTPATH_WHY_MAX,
			 "untrusted symlink (owned by uid %u; only symlinks owned by root or by "
			 "uid %u are followed)",
			 (unsigned)lst->st_uid, (unsigned)geteuid());
		return -ELOOP;
	}
	if (stat(path, &st) != 0) {
		err = -errno;
		snprintf(why, OUTPATH_WHY_MAX, "symlink to nothing: %s", strerror(errno));
		return err == -ENOENT ? -ELOOP : err;
	}
	if ((err = kind_of(&st, kind, why)) != 0)
		return err;
	if (*kind == OUTPATH_THROUGH) {
		*real = strdup(path); /* /dev/stdout: opened through the link */
	} else if (!(*real = realpath(path, NULL))) {
		err = -errno;
		snprintf(why, OUTPATH_WHY_MAX, "cannot resolve the symlink: %s", strerror(errno));
		return err;
	}
	return *real ? 0 : -ENOMEM;
}

int outpath__classify(const char *path, enum outpath_kind *kind, char **real,
		      char why[OUTPATH_WHY_MAX])
{
	struct stat lst;
	int err;

	*real = NULL;
	why[0] = '\0';
	if (outpath__is_stdout(path)) {
		*kind = OUTPATH_STDOUT;
		return 0;
	}
	if (lstat(path, &lst) != 0) {
		err = -errno;
		if (errno != ENOENT) {
			snprintf(why, OUTPATH_WHY_MAX, "%s", strerror(errno));
			return err;
		}
		*kind = OUTPATH_REGULAR; /* to be created */
	} else if (S_ISLNK(lst.st_mode)) {
		return classify_link(path, &lst, kind, real, why);
	} else if ((err = kind_of(&lst, kind, why)) != 0) {
		return err;
	}
	if (!(*real = strdup(path))) {
		snprintf(why, OUTPATH_WHY_MAX, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	return 0;
}

int outpath__open(const char *real, enum outpath_kind kind)
{
	int fd;

	if (kind == OUTPATH_STDOUT)
		fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	else if (kind == OUTPATH_REGULAR)
		fd = open(real, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
			  OUTPATH_FILE_MODE);
	else
		/* O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of hanging the run;
		 * the writes themselves block as usual. */
		fd = open(real, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (kind == OUTPATH_THROUGH) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
			int err = -errno;
			close(fd);
			return err;
		}
	}
	return fd;
}

bool outpath__takes_stdout(const struct svc_config *cfg)
{
	return outpath__is_stdout(cfg->log_file) || outpath__is_stdout(cfg->flows_out) ||
	       outpath__is_stdout(cfg->report_file);
}

/* faccessat with the effective ids: permission for a non-root user, and EROFS for anyone. */
static int access_w(const char *path, int mode)
{
	return faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0 ? 0 : -errno;
}

/* path does not exist yet: its directory must exist, be a directory, and be writable. */
static int check_dir_of(const char *path, char *why)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	struct stat st;
	int err;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (stat(dir, &st) != 0) {
		err = -errno;
		snprintf(why, OUTPATH_WHY_MAX, "%s %s: %s",
			 errno == ENOENT ? "missing directory" : "cannot reach directory", dir,
			 strerror(errno));
		return err;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, OUTPATH_WHY_MAX, "%s is not a directory", dir);
		return -ENOTDIR;
	}
	if ((err = access_w(dir, W_OK | X_OK)) != 0) {
		snprintf(why, OUTPATH_WHY_MAX, "cannot create files in %s: %s", dir,
			 strerror(-err));
		return err;
	}
	return 0;
}

/* One output location; 0, or -errno after its one line. replaces: an existing file is replaced
 * (atomic save) or rotated, so its directory must be writable too. */
static int check_one(const char *path, const char *what, bool replaces)
{
	char why[OUTPATH_WHY_MAX], *real = NULL;
	enum outpath_kind kind;
	struct stat st;
	int err;

	if (!path || !*path)
		return 0;
	err = outpath__classify(path, &kind, &real, why);
	if (err == -ENOTDIR || err == -ENOENT)
		err = check_dir_of(path, why); /* a component of the directory is missing */
	else if (!err && kind == OUTPATH_REGULAR && stat(real, &st) != 0)
		err = check_dir_of(real, why);
	else if (!err && kind != OUTPATH_STDOUT && (err = access_w(real, W_OK)) != 0)
		snprintf(why, OUTPATH_WHY_MAX, "cannot write: %s", strerror(-err));
	if (!err && replaces && kind == OUTPATH_REGULAR && stat(real, &st) == 0)
		err = check_dir_of(real, why);
	free(real);
	if (err)
		svc_err("%s: %s: %s (nothing was read)", path, what, why);
	return err;
}

bool outpath__is_regular(const char *path)
{
	char why[OUTPATH_WHY_MAX], *real = NULL;
	enum outpath_kind kind = OUTPATH_THROUGH;
	int err = outpath__classify(path, &kind, &real, why);

	free(real);
	return !err && kind == OUTPATH_REGULAR;
}

int outpath__preflight(const struct svc_config *cfg, bool learn)
{
	char *twin = NULL;
	int err = 0;

	if (learn)
		err = check_one(cfg->map_file, "service map", true);
	if (!err)
		err = check_one(cfg->report_file, "report", true);
	if (!err && cfg->report_file && *cfg->report_file &&
	    outpath__is_regular(cfg->report_file)) {
		size_t n = strlen(cfg->report_file) + sizeof(".json");
		if (!(twin = malloc(n)))
			return -ENOMEM;
		snprintf(twin, n, "%s.json", cfg->report_file);
		err = check_one(twin, "report (JSON)", true);
		free(twin);
	}
	if (!err && !learn)
		err = check_one(cfg->log_file, "anomaly log", cfg->log_max_bytes > 0);
	if (!err)
		err = check_one(cfg->flows_out, "flow CSV", cfg->flows_max_bytes > 0);
	return err;
}
