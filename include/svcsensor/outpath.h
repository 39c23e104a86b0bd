/* outpath.h - what an output path names, and how it may be written. Every file svcsensor
 * writes (the service map, the report and its JSON twin, the anomaly log, the flow CSV) goes
 * through here first.
 *
 * Kinds:
 *   "-"             standard output (the anomaly log and the flow CSV; an atomic save writes
 *                   through to it too). Written through, never closed, renamed or rotated.
 *   a regular file  existing or to be created: atomic saves (temporary file + rename) and size
 *                   rotation apply. Created with mode 0640 (atomic saves: the caller's mode),
 *                   opened O_NOFOLLOW | O_CLOEXEC, so a symlink planted between the check and
 *                   the open makes the open fail (ELOOP) instead of writing elsewhere.
 *   anything else  a character device (/dev/null, a tty), a FIFO, a socket: written THROUGH:
 *                   opened O_WRONLY (no O_CREAT, no O_TRUNC), never renamed, truncated or
 *                   rotated. A FIFO with no reader is refused at open (ENXIO) rather than
 *                   blocking the run.
 *
 * Symlink rule (the last component of the path; like the kernel's protected_symlinks): a
 * symlink is followed only when it is owned by root or by the effective uid. Any other
 * owner's symlink is refused with one line ("untrusted symlink"): a user who can write the
 * output directory must not be able to make the sensor (often root) write or replace a file of
 * its choosing. A trusted symlink to a regular file is resolved (realpath) so that an atomic
 * save or a rotation replaces the target, not the link; a trusted symlink to a device or FIFO
 * (/dev/stdout) is written through; a dangling one is refused.
 *
 * Errors: a negative errno and a one-line reason in the caller's buffer; nothing printed,
 * except by outpath__preflight. Reentrant (no state). */
#ifndef SVCSENSOR_OUTPATH_H
#define SVCSENSOR_OUTPATH_H

#include <stdbool.h>
#include <stddef.h>

#include "svcsensor/config.h"

enum outpath_kind {
	OUTPATH_STDOUT,	 /* "-" */
	OUTPATH_REGULAR, /* a regular file, or none yet (to be created) */
	OUTPATH_THROUGH, /* a character device, FIFO or socket */
};

#define OUTPATH_WHY_MAX 4352 /* a reason may name a directory (PATH_MAX) */
#define OUTPATH_FILE_MODE 0640

/* "-": standard output. */
bool outpath__is_stdout(const char *path);

/* Classify path (see the kinds and the symlink rule above). 0, *kind, and *real: a malloc'd
 * path to open (a trusted symlink's resolved target, else a copy of path; NULL for "-").
 * A negative errno with why filled (ELOOP untrusted or dangling symlink, EISDIR a directory,
 * ENOENT/ENOTDIR/EACCES from lstat, ENOMEM). */
int outpath__classify(const char *path, enum outpath_kind *kind, char **real,
		      char why[OUTPATH_WHY_MAX]);

/* Whether path is (or will be created as) a regular file, by outpath__classify. The report's
 * JSON twin (path.json) exists only beside a regular report: a report written through to a
 * device, a FIFO or "-" gets no twin (no /dev/null.json). */
bool outpath__is_regular(const char *path);

/* Open what outpath__classify returned for writing: STDOUT a close-on-exec duplicate of fd 1;
 * REGULAR O_WRONLY|O_CREAT|O_APPEND|O_NOFOLLOW|O_CLOEXEC, mode 0640 when created; THROUGH
 * O_WRONLY|O_CLOEXEC (blocking writes). The descriptor, or a negative errno. */
int outpath__open(const char *real, enum outpath_kind kind);

/* Whether "-" takes standard output for the anomaly log, the flow CSV or the report: the
 * console's lines then go to standard error (src/consumer.c). */
bool outpath__takes_stdout(const struct svc_config *cfg);

/* Before the first packet is read (src/pipeline.c): every output location of the run is
 * checked writable — the map file (learn mode), the report and its JSON twin, the anomaly log
 * (detect mode), the flow CSV. A missing file is fine when its directory exists, is a
 * directory and is writable. 0, or -errno after one line naming the path and the reason
 * (missing directory, not a directory, permission, untrusted symlink, is a directory,
 * read-only file system). Root passes access(2)'s permission checks, so as root only the
 * shape is checked (and a read-only file system, which access(2) reports even to root). */
int outpath__preflight(const struct svc_config *cfg, bool learn);

#endif
