/* privdrop.h - give up root once the capture is set up. */
#ifndef SVCSENSOR_PRIVDROP_H
#define SVCSENSOR_PRIVDROP_H

/* Become `user` for good: supplementary groups = the user's primary group only, then gid,
 * then uid (real, effective and saved), with PR_SET_KEEPCAPS off so every capability goes
 * too. Call it from main after the sockets, rings and the eBPF program exist and before any
 * file the sensor writes is opened by a thread that cares about ownership: the rings keep
 * working, but nothing new can be opened that needs privileges. Applies to every thread of
 * the process (glibc broadcasts set*id). Afterwards it checks that root cannot be regained
 * and that no capability is left.
 * A user that resolves to uid 0, or a process already running as that user, is left as is.
 * Errors (one line naming the user and the reason): -ENOENT no such user, -EPERM not allowed
 * (not root), or the errno of the failing call. Does not block (beyond an NSS lookup). */
int privdrop__to_user(const char *user);

#endif
