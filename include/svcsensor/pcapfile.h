/* pcapfile.h - the libpcap input (src/input/pcapfile.c): captures libpcap reads that the
 * mapped walk (pcapscan.h) does not take - pcapng, pipes and the standard input ("-"), older
 * formats. One reader thread reads the files in order, decodes each frame once (input__decode)
 * and copies it into the batch of the worker it belongs to (pktfeed.h). A file that breaks
 * mid-way is reported (file, record number, libpcap's reason) and what was read stays. A pipe
 * (the standard input or a named pipe) is read through a FILE whose reads wait in poll(2) for
 * 0.1 s at a time: the stop flag ends it (at a record boundary, or a cut record is no error),
 * and when the writer is quiet the packets read so far go to the workers. A named pipe is
 * opened without waiting for a writer. Regular files keep a plain stdio FILE. The
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
