/* fanout_ebpf.h - the eBPF fanout steering program (src/capture/fanout.bpf.c): load, hand its
 * fd to the capture layer, run it on a test frame.
 *
 * The program returns flow_key__pair_hash() of a frame's key (0 for non-IP), so with
 * PACKET_FANOUT_EBPF socket i of the group receives exactly the host pairs that the offline
 * path (-r) gives worker i: pair_hash % workers. The object is embedded in the binary (bpftool
 * skeleton): nothing is read from disk, /sys/fs/bpf is not used.
 *
 * Life cycle: main loads it before opening the rings (and before dropping privileges), passes
 * it in afpacket_opts.ebpf; the socket of index 0 attaches it with PACKET_FANOUT_DATA, which
 * takes the kernel's own reference, so fanout_ebpf__close() may follow as soon as the group is
 * open. If loading fails (old kernel, no CAP_BPF/CAP_SYS_ADMIN, verifier), fall back to
 * fanout "hash" (afpacket__open_group does). */
#ifndef SVCSENSOR_FANOUT_EBPF_H
#define SVCSENSOR_FANOUT_EBPF_H

#include <stdint.h>

struct fanout_ebpf;

/* Load and verify the embedded program. On success *out owns it (fanout_ebpf__close).
 * On failure prints one line "svcsensor: eBPF fanout program: <reason>" (libbpf's first
 * complaint, e.g. the verifier's or "Operation not permitted") and returns a negative errno
 * (-EPERM without privileges). Not thread-safe: it swaps libbpf's global print callback for
 * the duration of the load. Does not block. */
int fanout_ebpf__load(struct fanout_ebpf **out);

/* The program's fd (owned by fe: valid until fanout_ebpf__close). */
int fanout_ebpf__prog_fd(const struct fanout_ebpf *fe);

/* Run the program once on an Ethernet frame (BPF_PROG_TEST_RUN) and store its return value in
 * *retval. The kernel builds the skb like the receive path but leaves VLAN tags in the data
 * (no untagging), so this exercises the in-frame tag parsing. len >= 14. For tests and
 * diagnostics: 0 or a negative errno (-EINVAL for a short frame). */
int fanout_ebpf__test_run(const struct fanout_ebpf *fe, const void *frame, uint32_t len,
			  uint32_t *retval);

/* Unload (the kernel keeps the program alive while a fanout group still uses it). NULL ok. */
void fanout_ebpf__close(struct fanout_ebpf *fe);

#endif
