/* privdrop.c - setgroups/setgid/setuid to an unprivileged user, keeping no capability. */
#include "svcsensor/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "svcsensor/common.h"

/* Any capability left in the permitted or effective set (raw syscall: no libcap needed). */
static int caps_left(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	for (unsigned i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (data[i].permitted || data[i].effective)
			return 1;
	return 0;
}

int privdrop__to_user(const char *user)
{
	struct passwd pw, *res = NULL;
	char *buf = NULL;
	long bufsz = sysconf(_SC_GETPW_R_SIZE_MAX);
	int err;

	if (!user || !user[0]) {
		svc_err("user: empty user name");
		return -EINVAL;
	}
	if (bufsz < 16384)
		bufsz = 16384;
	buf = malloc((size_t)bufsz);
	if (!buf) {
		svc_err("user %s: out of memory", user);
		return -ENOMEM;
	}
	err = getpwnam_r(user, &pw, buf, (size_t)bufsz, &res);
	if (!res) {
		if (err == 0 || err == ENOENT || err == ESRCH || err == EBADF || err == EPERM) {
			svc_err("user %s: no such user", user);
			err = -ENOENT;
		} else {
			svc_err("user %s: cannot look it up: %s", user, strerror(err));
			err = -err;
		}
		goto cleanup;
	}
	if (pw.pw_uid == 0 || (getuid() == pw.pw_uid && geteuid() == pw.pw_uid)) {
		err = 0; /* nothing to give up */
		goto cleanup;
	}
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0 || setgroups(1, &pw.pw_gid) < 0 ||
	    setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid) < 0 ||
	    setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) < 0) {
		err = -errno;
		svc_err("user %s: cannot switch to it: %s%s", user, strerror(-err),
			err == -EPERM ? " (only root can drop to another user)" : "");
		goto cleanup;
	}
	if (setuid(0) == 0 || seteuid(0) == 0) {
		svc_err("user %s: root could be regained after the switch", user);
		err = -EPERM;
		goto cleanup;
	}
	if (caps_left() != 0) {
		svc_err("user %s: capabilities are left after the switch", user);
		err = -EPERM;
		goto cleanup;
	}
	err = 0;
cleanup:
	free(buf);
	return err;
}
