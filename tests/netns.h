/* netns.h - test fixtures for the capture suites: a private network namespace with a veth
 * pair, processes started inside it, and crafted Ethernet frames.
 *
 * netns__setup() makes "svcs-<pid>-<n>" (ip netns add), moves the calling process into it
 * (setns), creates va <-> vb (ip -n NS link add name va type veth peer name vb), turns IPv6
 * off (no router/neighbour solicitations: the only frames on the link are the test's), and
 * brings both ends up. A frame written into va arrives on vb and nowhere else: nothing leaves
 * the namespace. netns__teardown() kills what netns__spawn() started (by pid), moves the
 * process back and deletes the namespace (the veth pair goes with it).
 *
 * Every fixture needs root; when something is missing the functions return a negative errno
 * and a reason in `why` for cr_skip_test/cr_log_warn. */
#ifndef SVCSENSOR_TESTS_NETNS_H
#define SVCSENSOR_TESTS_NETNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "svcsensor/flow.h"

#define NETNS_MAX_PIDS 8

struct netns {
	char name[32];
	int orig_fd; /* the namespace the process came from (-1 when not entered) */
	int va_index, vb_index;
	pid_t pids[NETNS_MAX_PIDS];
	unsigned npids;
};

/* Create, enter and wire the namespace. 0, or a negative errno with why[] filled. */
int netns__setup(struct netns *ns, char *why, size_t whylen);

/* Undo netns__setup (safe on a partly set up or zeroed struct). */
void netns__teardown(struct netns *ns);

/* Start argv[0] (a path, or searched in PATH) inside the namespace, in directory cwd (NULL:
 * ours), stdout/stderr to out_path (or /dev/null when NULL). The pid is recorded for
 * teardown. 0 or negative errno. */
int netns__spawn(struct netns *ns, const char *const argv[], const char *out_path, const char *cwd,
		 pid_t *pid);

/* Wait up to timeout_ms for pid; *status as waitpid. 0, -ETIMEDOUT (then it is killed),
 * or negative errno. */
int netns__wait(struct netns *ns, pid_t pid, int timeout_ms, int *status);

/* Run a command to completion (up to 20 s) inside the namespace; 0 when it exited 0,
 * otherwise a negative value with why[] holding the command and its first output line. */
int netns__run(const char *const argv[], char *why, size_t whylen);

/* GRO on/off on an interface of the namespace (ETHTOOL_SGRO). 0 or negative errno. */
int netns__set_gro(const char *ifname, int on);

/* Whether ifname is promiscuous (promiscuity count > 0, as "ip -d link" shows it):
 * 1, 0, or negative errno. */
int netns__promisc(const char *ifname);

/* Absolute path of an executable found in PATH (or the usual sbin dirs), or NULL. */
const char *netns__which(const char *prog, char *buf, size_t len);

/* ------------------------------------------------------------ crafted frames */

/* One test frame: Ethernet, 0-3 VLAN tags, IPv4 or IPv6, TCP/UDP/ICMP. The last 8 bytes are
 * "SVCS" and the 32-bit sequence number (network order), found by netns__frame_seq. */
struct tframe {
	uint8_t ipver;		  /* 4 or 6 */
	uint8_t src[16], dst[16]; /* flow_key layout: IPv4 in the first 4 bytes */
	uint16_t sport, dport;
	uint8_t proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP(V6) */
	unsigned ntags;
	uint16_t tpid[3], tci[3];
	uint32_t seq;
	uint16_t payload; /* payload bytes before the 8-byte marker */
};

/* Write the frame into buf (cap bytes); its length, or 0 when it does not fit. */
size_t netns__frame_build(const struct tframe *f, uint8_t *buf, size_t cap);

/* The frame's flow key as decode__frame builds it (outer VLAN = first tag's id). */
void netns__frame_key(const struct tframe *f, struct flow_key *k);

/* The marker's sequence number, or -1 when the frame carries no marker. */
int64_t netns__frame_seq(const uint8_t *frame, uint32_t caplen);

/* The same frame the other way round (addresses and ports swapped). */
void netns__frame_reverse(const struct tframe *f, struct tframe *r);

/* A packet socket bound to ifname for sending raw frames; fd or negative errno. */
int netns__tx_open(const char *ifname);
/* Send one frame; 0 or negative errno (ENOBUFS is retried). */
int netns__tx_send(int fd, const uint8_t *frame, size_t len);

/* Write frames to a pcap file (DLT_EN10MB). 0 or negative errno. */
int netns__pcap_write(const char *path, const struct tframe *frames, size_t n);

/* Packet sockets bound to ifindex in the current namespace (/proc/net/packet, column Iface):
 * how a test knows the sensor's rings are open. */
unsigned netns__packet_sockets_on(int ifindex);

/* Remove the files of a flat scratch directory, then the directory. "" is a no-op. */
void netns__remove_dir(const char *dir);

#endif
