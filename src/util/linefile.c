/* linefile.c - whole lines appended, batched, rotated by size, reopened (see linefile.h).
 *
 * Why whole lines per write(2): with O_APPEND the kernel places the whole buffer at the end of
 * the file under the inode lock, so a concurrent reader or an external appender never sees half
 * a line. The detector batches the lines of one pass over the finished-flow queue into one
 * write (a write(2) per line was a quarter of its time on a busy capture, src/sink/anomaly_log.c
 * measured it), so a line reaches the file within one pass. */
#include "svcsensor/linefile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "svcsensor/common.h"
#include "svcsensor/outpath.h"

struct linefile {
	char *path;		/* as configured: classified again at each reopen */
	char *real;		/* what it resolved to at the last open */
	enum outpath_kind kind; /* of real */
	bool pipe;		/* a FIFO or a socket: EPIPE instead of SIGPIPE */
	int fd;			/* -1 when the last open failed */
	uint64_t size;		/* bytes in the live file (fstat at open + what we wrote) */
	uint64_t base;		/* of which the header */
	struct linefile_opts o; /* strings borrowed */
	size_t header_len;
	bool header_done;	   /* written once to a device or "-" */
	bool error_reported;	   /* in an error episode */
	char why[OUTPATH_WHY_MAX]; /* the reason of the last failed open */
	struct linefile_stats st;
	char *pending; /* batched whole lines not yet written (LINEFILE_BATCH_MAX bytes) */
	size_t pending_len;
	uint64_t pending_lines;
};

/* One line per error episode; every line counted. */
static void lost(struct linefile *l, const char *step, const char *reason, uint64_t lines,
		 int err)
{
	l->st.errors += lines;
	if (err)
		l->st.last_err = err < 0 ? -err : err;
	if (l->error_reported)
		return;
	l->error_reported = true;
	svc_err("%s: %s: %s (%s are being lost; further errors are only counted)", l->path, step,
		reason, l->o.unit);
}

static bool rotates(const struct linefile *l)
{
	return l->o.max_bytes && l->kind == OUTPATH_REGULAR;
}

/* write(2) that turns a FIFO's or socket's missing reader into EPIPE: SIGPIPE is blocked in
 * this thread for the call and a pending one taken back, so the sensor keeps running. */
static ssize_t write_fd(struct linefile *l, const void *buf, size_t len)
{
	if (!l->pipe)
		return write(l->fd, buf, len);
	sigset_t set, old;
	struct timespec zero = {0, 0};
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	ssize_t w = write(l->fd, buf, len);
	int e = errno;
	if (w < 0 && e == EPIPE)
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return w;
}

/* All of buf, or the negative errno and the bytes written in *done. */
static int write_all(struct linefile *l, const char *buf, size_t len, size_t *done)
{
	*done = 0;
	while (*done < len) {
		ssize_t w = write_fd(l, buf + *done, len - *done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		*done += (size_t)w;
	}
	return 0;
}

/* An existing regular file must start with our header. 0, or -EPROTO with why set. */
static int check_header(struct linefile *l)
{
	char *buf = malloc(l->header_len);
	int fd = open(l->real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), err = 0;
	ssize_t n = -1;

	if (buf && fd >= 0)
		n = pread(fd, buf, l->header_len, 0);
	if (!buf || fd < 0 || n < 0) {
		err = !buf ? -ENOMEM : -errno;
		snprintf(l->why, sizeof(l->why), "cannot read its header: %s", strerror(-err));
	} else if ((size_t)n != l->header_len || memcmp(buf, l->o.header, l->header_len) != 0) {
		err = -EPROTO;
		snprintf(l->why, sizeof(l->why),
			 "it starts with another header (other columns, e.g. with or without the "
			 "verdict column): move it away or choose another file");
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return err;
}

/* The header of a new file (or of a device's first open), then the file is ready. */
static int start_file(struct linefile *l)
{
	size_t done;
	int err;

	l->base = 0;
	if (!l->o.header)
		return 0;
	if (l->kind == OUTPATH_REGULAR && l->size > 0) {
		l->base = l->header_len;
		return check_header(l);
	}
	if (l->kind != OUTPATH_REGULAR && l->header_done)
		return 0;
	if ((err = write_all(l, l->o.header, l->header_len, &done)) != 0) {
		if (done && l->kind == OUTPATH_REGULAR)
			(void)!ftruncate(l->fd, 0);
		snprintf(l->why, sizeof(l->why), "cannot write its header: %s", strerror(-err));
		return err;
	}
	l->header_done = true;
	l->size += l->header_len;
	l->base = l->header_len;
	return 0;
}

/* Open the live file: classify path again (reopen, first open) or open what it resolved to
 * (after a rotation). 0, or a negative errno with l->why set. */
static int open_live(struct linefile *l, bool classify)
{
	struct stat st;
	int err;

	if (classify) {
		free(l->real);
		err = outpath__classify(l->path, &l->kind, &l->real, l->why);
		if (err)
			return err;
	}
	l->fd = outpath__open(l->real, l->kind);
	if (l->fd < 0) {
		err = l->fd;
		l->fd = -1;
		snprintf(l->why, sizeof(l->why), "%s%s", strerror(-err),
			 err == -ENXIO ? " (a FIFO with no reader: start the reader first)" : "");
		return err;
	}
	if (fstat(l->fd, &st) != 0) {
		err = -errno;
		snprintf(l->why, sizeof(l->why), "%s", strerror(-err));
		goto fail;
	}
	l->pipe = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
	l->size = l->kind == OUTPATH_REGULAR ? (uint64_t)st.st_size : 0;
	if ((err = start_file(l)) == 0)
		return 0;
fail:
	close(l->fd);
	l->fd = -1;
	return err;
}

struct linefile *linefile__open(const char *path, const struct linefile_opts *o)
{
	struct linefile *l = calloc(1, sizeof(*l));
	int err = -ENOMEM;

	if (!l)
		goto fail;
	l->fd = -1;
	l->o = *o;
	l->header_len = o->header ? strlen(o->header) : 0;
	l->path = strdup(path);
	l->pending = malloc(LINEFILE_BATCH_MAX);
	snprintf(l->why, sizeof(l->why), "%s", strerror(ENOMEM));
	if (l->path && l->pending && (err = open_live(l, true)) == 0)
		return l;
fail:
	svc_err("%s: cannot open the %s: %s", path, o->what, l ? l->why : strerror(-err));
	linefile__close(l);
	return NULL;
}

void linefile__close(struct linefile *l)
{
	if (!l)
		return;
	if (l->pending)
		linefile__flush(l);
	if (l->fd >= 0)
		close(l->fd);
	free(l->path);
	free(l->real);
	free(l->pending);
	free(l);
}

int linefile__reopen(struct linefile *l)
{
	int err;

	linefile__flush(l); /* batched lines belong to the file they were logged in */
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->error_reported = false;
	err = open_live(l, true);
	if (err)
		lost(l, "cannot reopen", l->why, 0, err);
	return err;
}

/* path.(keep-1) -> path.keep, ..., path -> path.1, then a new live file. Renames that fail are
 * reported (the lines themselves go to the new file). */
static int rotate(struct linefile *l)
{
	size_t n = strlen(l->real) + 16;
	char *from = malloc(n), *to = malloc(n);
	int err = 0;

	close(l->fd);
	l->fd = -1;
	if (!from || !to) {
		err = -ENOMEM;
	} else if (l->o.keep == 0) {
		if (unlink(l->real) != 0 && errno != ENOENT)
			err = -errno;
	} else {
		for (unsigned i = l->o.keep - 1; i >= 1; i--) {
			snprintf(from, n, "%s.%u", l->real, i);
			snprintf(to, n, "%s.%u", l->real, i + 1);
			if (rename(from, to) != 0 && errno != ENOENT)
				err = -errno;
		}
		snprintf(to, n, "%s.1", l->real);
		if (rename(l->real, to) != 0 && errno != ENOENT)
			err = -errno;
	}
	free(from);
	free(to);
	if (err)
		lost(l, "cannot rotate", strerror(-err), 0, err);
	l->st.rotations++;
	return open_live(l, false);
}

int linefile__write(struct linefile *l, const char *buf, size_t len, uint64_t lines)
{
	size_t done;
	int err = linefile__flush(l); /* lines stay in order */

	if (l->fd < 0 && (err = open_live(l, true)) != 0) {
		lost(l, "cannot open", l->why, lines, err);
		return err;
	}
	if (rotates(l) && l->size > l->base && l->size + len > l->o.max_bytes &&
	    (err = rotate(l)) != 0) {
		lost(l, "cannot open after rotation", l->why, lines, err);
		return err;
	}
	if ((err = write_all(l, buf, len, &done)) != 0) {
		struct stat st;
		/* Cut a partial line off again: the file keeps whole lines only. A device or a
		 * pipe cannot be cut (and must not be truncated). */
		if (done && l->kind == OUTPATH_REGULAR && fstat(l->fd, &st) == 0 &&
		    (uint64_t)st.st_size >= done)
			(void)!ftruncate(l->fd, st.st_size - (off_t)done);
		lost(l, "cannot write", strerror(-err), lines, err);
		return err;
	}
	l->error_reported = false; /* the episode is over */
	l->size += len;
	l->st.lines += lines;
	l->st.bytes += len;
	return 0;
}

int linefile__flush(struct linefile *l)
{
	if (!l->pending_len)
		return 0;
	size_t len = l->pending_len;
	uint64_t lines = l->pending_lines;
	l->pending_len = 0;
	l->pending_lines = 0;
	return linefile__write(l, l->pending, len, lines);
}

int linefile__add(struct linefile *l, const char *line, size_t len)
{
	int err = 0;
	if (l->pending_len && (l->pending_len + len > LINEFILE_BATCH_MAX ||
			       (rotates(l) && l->size + l->pending_len + len > l->o.max_bytes)))
		err = linefile__flush(l);
	if (len > LINEFILE_BATCH_MAX) {
		int e = linefile__write(l, line, len, 1);
		return e ? e : err;
	}
	memcpy(l->pending + l->pending_len, line, len);
	l->pending_len += len;
	l->pending_lines++;
	return err;
}

const struct linefile_stats *linefile__stats(const struct linefile *l)
{
	return &l->st;
}
