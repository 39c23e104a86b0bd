/* fanout_ebpf.c - loader of the eBPF fanout steering program (embedded bpftool skeleton). */
#include "svcsensor/fanout_ebpf.h"

#include <errno.h>
#include <stdarg.h>
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

/* libbpf reports through a global print callback, one call per line (the verifier log comes
 * as many lines). During the load we keep only its first warning, which names the failing
 * step ("prog 'fanout_steer': BPF program load failed: Permission denied"), for our one-line
 * error; the rest is dropped. */
static char first_warning[256];

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static int keep_first_warning(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBBPF_WARN || first_warning[0])
		return 0;
	vsnprintf(first_warning, sizeof(first_warning), fmt, ap);
	first_warning[strcspn(first_warning, "\n")] = '\0';
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
	first_warning[0] = '\0';
	prev = libbpf_set_print(keep_first_warning);
	fe->skel = fanout_bpf__open_and_load();
	err = fe->skel ? 0 : -(errno ? errno : EINVAL);
	libbpf_set_print(prev);
	if (err) {
		const char *why = first_warning;

		/* "libbpf: prog 'x': ..." -> "prog 'x': ..." */
		if (strncmp(why, "libbpf: ", 8) == 0)
			why += 8;
		svc_err("eBPF fanout program: cannot load: %s%s%s", strerror(-err),
			why[0] ? " - " : "", why);
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
