/* atomic_file.h - the one way a file is replaced whole (the report, its JSON twin, the learned
 * service map): readers of path see the old content or the new one, never a mix, and a crash
 * or a full disk at any point leaves the old file whole.
 *
 * Steps: a temporary file ".NAME.tmp.XXXXXX" in path's own directory (mkostemp, O_CLOEXEC; the
 * same directory so that rename(2) is atomic), chmod to mode, fill(f, ctx) writes the content,
 * fflush + fsync, close, rename over path, fsync of the directory (so the rename survives a
 * power cut).
 *
 * Errors: 0 or a negative errno, the one that made the step fail (ENOSPC, EFBIG, EACCES,
 * EISDIR, ...; from fill: what it returned, or the stream's write error when it returned -EIO
 * for a stream in error). On any error the temporary file is removed, path is untouched, and
 * one line is printed: "svcsensor: PATH: STEP: REASON (the previous file, if any, is
 * unchanged)". When only the directory's fsync fails the new file is in place: 0, and a
 * one-line warning.
 *
 * What path names is classified first (outpath.h): a trusted symlink to a regular file is
 * resolved, so the target is replaced and the link stays; an untrusted symlink (owned by
 * neither root nor the effective uid) is refused ("cannot save: untrusted symlink ...").
 * A target that is not a regular file — a character device (/dev/null, a tty), a FIFO, a
 * socket, or "-" (standard output) — is written THROUGH instead: opened O_WRONLY, filled,
 * flushed, closed; never renamed over, so a device stays a device. Such a write is not atomic
 * (a reader of a FIFO sees the content as it comes) and not fsynced.
 *
 * Blocking (disk I/O and fsync): not for a thread that must not wait. Reentrant; concurrent
 * saves of the same path each complete whole, the last rename wins. */
#ifndef SVCSENSOR_ATOMIC_FILE_H
#define SVCSENSOR_ATOMIC_FILE_H

#include <stdio.h>
#include <sys/types.h>

/* Writes the content to f; 0 or a negative errno. It need not check the stream: the stream's
 * errors are caught by the fflush that follows. */
typedef int (*atomic_file_fill)(FILE *f, const void *ctx);

int atomic_file__write(const char *path, mode_t mode, atomic_file_fill fill, const void *ctx);

/* A process killed mid-save (kill -9, power cut) leaves its temporary file behind; the
 * previous file is whole, the temporary is garbage. Remove, in path's directory, the
 * temporaries of path and of names that extend it (path.json): ".NAME*.tmp.XXXXXX", regular
 * files owned by the effective uid and not modified for min_age_s seconds (a save in progress
 * keeps writing its own). One warning line when any was removed; returns how many. Called
 * once at start for the files a run saves (src/pipeline.c). */
unsigned atomic_file__sweep(const char *path, unsigned min_age_s);

#endif
