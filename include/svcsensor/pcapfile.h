/* pcapfile.h - the libpcap input (src/input/pcapfile.c): captures libpcap reads that the
 * mapped walk (pcapscan.h) does not take - pcapng, pipes and the standard input ("-"), older
 * formats. One reader thread reads the files in order, decodes each frame once (input__decode)
 * and copies it into the batch of the worker it belongs to (pktfeed.h). A file that breaks
 * mid-way is reported (file, record number, libpcap's reason) and what was read stays. The
 * input itself is opened through input.h (input_pcap__open); this header adds the check that
 * runs before any input is chosen. */
#ifndef SVCSENSOR_PCAPFILE_H
#define SVCSENSOR_PCAPFILE_H

/* Check that each file can be opened as a capture with a supported link type and that the
 * capture filter compiles for it, before threads start: one line per problem. The standard
 * input and named pipes are checked when they are read (they cannot be read twice). 0 or
 * negative errno. Main thread. */
int pcapfile__check(const char *const *files, unsigned n, const char *bpf_filter);

#endif
