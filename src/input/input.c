/* input.c - which input a run reads (input.h). */
#include "svcsensor/input.h"

#include <errno.h>

#include "svcsensor/common.h"
#include "svcsensor/config.h"
#include "svcsensor/pcapfile.h"

int input__open(const struct input_args *a, struct input **out)
{
	*out = NULL;
	if (a->flows_in)
		return input_csv__open(a, out);
	if (a->n_files) {
		if (pcapfile__check(a->files, a->n_files, a->cfg->bpf_filter) != 0)
			return -EINVAL;
		/* Classic pcap files are walked mapped; anything else goes through libpcap. */
		int rc = input_mapped__open(a, out);
		return rc == 1 ? input_pcap__open(a, out) : rc;
	}
	if (a->cfg->interface)
		return input_ring__open(a, out);
	svc_err("no input: give -r FILE or -i IFACE");
	return -EINVAL;
}
