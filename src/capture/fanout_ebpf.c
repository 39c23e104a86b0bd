/* fanout_ebpf.c - loader of the eBPF fanout steering program (embedded bpftool skeleton). */
#include "svcsensor/fanout_ebpf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "fanout.skel.h"
#include "svcsensor/common.h"

struct fanout_ebpf {
	struct fanout_bpf *skel;
};

/* libbpf reports through a global print callback. During the load we keep two things for
 * our one-line error: its "BPF program load failed: <reason>" line (else its first warning)
 * and, when the verifier refused the program, the verifier's own reason - the last line of
 * the log before its statistics ("R1 invalid mem access 'scalar'"). Everything else is
 * dropped. libbpf prints the whole verifier log in one call. */
static char load_warning[256], verifier_reason[160];

static bool is_log_stat(const char *line, size_t len)
{
	return len == 0 || strncmp(line, "processed ", 10) == 0 ||
	       strncmp(line, "verification time", 17) == 0 ||
	       strncmp(line, "stack depth", 11) == 0 || strncmp(line, "-- END", 6) == 0 ||
	       strncmp(line, "libbpf:", 7) == 0;
}

/* The verifier's reason: the last non-statistics line before "-- END PROG LOAD LOG --". */
static void keep_verifier_reason(const char *msg)
{
	const char *beg = strstr(msg, "-- BEGIN PROG LOAD LOG --");
	const char *end = strstr(msg, "-- END PROG LOAD LOG --");

	if (!beg || !end || end < beg)
		return;
	beg = strchr(beg, '\n');
	while (beg && end > beg + 1) {
		const char *line = end - 1; /* the '\n' ending the previous line */
		while (line > beg && line[-1] != '\n')
			line--;
		size_t len = (size_t)(end - 1 - line);
		if (line[len] == '\n' && !is_log_stat(line, len)) {
			snprintf(verifier_reason, sizeof(verifier_reason), "%.*s", (int)len, line);
			return;
		}
		end = line;
	}
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static int keep_warnings(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = NULL;

	if (level != LIBBPF_WARN || vasprintf(&msg, fmt, ap) < 0)
		return 0;
	keep_verifier_reason(msg);
	/* The RLIMIT_MEMLOCK note comes first whatever failed: not the reason. */
	if (strstr(msg, "RLIMIT_MEMLOCK (err")) {
		free(msg);
		return 0;
	}
	if (!load_warning[0] ||
	    (strstr(msg, "load failed") && !strstr(load_warning, "load failed"))) {
		const char *m = strncmp(msg, "libbpf: ", 8) == 0 ? msg + 8 : msg;
		snprintf(load_warning, sizeof(load_warning), "%.*s", (int)strcspn(m, "\n"), m);
	}
	free(msg);
	return 0;
}
#pragma GCC diagnostic pop

int fanout_ebpf__load(struct fanout_ebpf **out)
{
	struct fanout_ebpf *fe;
	libbpf_print_fn_t prev;
	int err;

	*out = NULL;
	fe = calloc(1, sizeof(*fe));
	if (!fe) {
		svc_err("eBPF fanout program: out of memory");
		return -ENOMEM;
	}
	load_warning[0] = verifier_reason[0] = '\0';
	prev = libbpf_set_print(keep_warnings);
	fe->skel = fanout_bpf__open_and_load();
	err = fe->skel ? 0 : -(errno ? errno : EINVAL);
	libbpf_set_print(prev);
	if (err) {
		svc_err("eBPF fanout program: cannot load: %s%s%s%s%s%s", strerror(-err),
			err == -EPERM ? " (needs root or CAP_BPF)" : "",
			load_warning[0] ? " - " : "", load_warning,
			verifier_reason[0] ? "; verifier: " : "", verifier_reason);
		free(fe);
		return err;
	}
	*out = fe;
	return 0;
}

int fanout_ebpf__prog_fd(const struct fanout_ebpf *fe)
{
	return bpf_program__fd(fe->skel->progs.fanout_steer);
}

int fanout_ebpf__test_run(const struct fanout_ebpf *fe, const void *frame, uint32_t len,
			  uint32_t *retval)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = len, .repeat = 1);
	int err;

	if (len < 14)
		return -EINVAL;
	err = bpf_prog_test_run_opts(fanout_ebpf__prog_fd(fe), &opts);
	if (err) /* libbpf 1.x returns -errno */
		return err < 0 ? err : -EINVAL;
	*retval = opts.retval;
	return 0;
}

void fanout_ebpf__close(struct fanout_ebpf *fe)
{
	if (!fe)
		return;
	fanout_bpf__destroy(fe->skel);
	free(fe);
}
