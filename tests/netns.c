/* netns.c - network namespace + veth fixture, child processes, crafted frames (see netns.h). */
#include "netns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void set_why(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

const char *netns__which(const char *prog, char *buf, size_t len)
{
	const char *path = getenv("PATH");
	char dirs[4096];

	snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin:/usr/bin:/bin", path ? path : "");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, len, "%s/%s", d, prog);
		if (access(buf, X_OK) == 0)
			return buf;
	}
	return NULL;
}

/* fork + exec with output to a file; the child stays in our (the test's) namespace. */
static pid_t spawn(const char *const argv[], const char *out_path, const char *cwd)
{
	char exe[512];
	pid_t pid;

	if (strchr(argv[0], '/'))
		snprintf(exe, sizeof(exe), "%s", argv[0]);
	else if (!netns__which(argv[0], exe, sizeof(exe)))
		return -ENOENT;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd =
		    open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int nul = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (nul >= 0)
			dup2(nul, 0);
		if (cwd && chdir(cwd) != 0)
			_exit(126);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int wait_pid(pid_t pid, int timeout_ms, int *status)
{
	for (int waited = 0;; waited += 5) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0)
			return -errno;
		if (waited >= timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			return -ETIMEDOUT;
		}
		sleep_ms(5);
	}
}

int netns__run(const char *const argv[], char *why, size_t whylen)
{
	char out[] = "/tmp/svcs-netns-run-XXXXXX", line[256] = "", cmd[256] = "";
	int fd = mkstemp(out), status = 0, err;
	pid_t pid;

	if (fd < 0)
		return -errno;
	close(fd);
	for (unsigned i = 0; argv[i]; i++)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), "%s%s", i ? " " : "",
			 argv[i]);
	pid = spawn(argv, out, NULL);
	if (pid < 0) {
		set_why(why, whylen, "%s: %s", argv[0], strerror((int)-pid));
		unlink(out);
		return (int)pid;
	}
	err = wait_pid(pid, 20000, &status);
	if (!err && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		FILE *f = fopen(out, "r");
		if (f) {
			if (!fgets(line, sizeof(line), f))
				line[0] = '\0';
			fclose(f);
		}
		line[strcspn(line, "\n")] = '\0';
		set_why(why, whylen, "'%s' failed: %s", cmd, line[0] ? line : "(no output)");
		err = -EIO;
	} else if (err) {
		set_why(why, whylen, "'%s': %s", cmd, strerror(-err));
	}
	unlink(out);
	return err;
}

static void write_sysctl(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, val, strlen(val)) < 0) {
			/* best effort: IPv6 may be compiled out */
		}
		close(fd);
	}
}

/* Namespaces "svcs-<pid>-<n>" left by a test process that no longer exists (killed by a
 * timeout, say) are ours to remove. */
static void remove_stale(void)
{
	DIR *d = opendir("/run/netns");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		int pid;
		unsigned n;
		char why[256];
		if (sscanf(e->d_name, "svcs-%d-%u", &pid, &n) != 2 || pid <= 0 ||
		    kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		const char *argv[] = {"ip", "netns", "del", e->d_name, NULL};
		netns__run(argv, why, sizeof(why));
	}
	closedir(d);
}

int netns__setup(struct netns *ns, char *why, size_t whylen)
{
	static unsigned counter;
	char path[128], exe[256];
	int fd, err;

	memset(ns, 0, sizeof(*ns));
	ns->orig_fd = -1;
	if (geteuid() != 0) {
		set_why(why, whylen,
			"needs root (network namespace, veth, packet sockets); "
			"run the suite as root");
		return -EPERM;
	}
	if (!netns__which("ip", exe, sizeof(exe))) {
		set_why(why, whylen, "iproute2's 'ip' is not installed (apt-get install iproute2)");
		return -ENOENT;
	}
	remove_stale();
	snprintf(ns->name, sizeof(ns->name), "svcs-%d-%u", (int)getpid(), counter++);
	{
		const char *argv[] = {"ip", "netns", "add", ns->name, NULL};
		err = netns__run(argv, why, whylen);
		if (err) {
			ns->name[0] = '\0';
			return err;
		}
	}
	ns->orig_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/run/netns/%s", ns->name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (ns->orig_fd < 0 || fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		err = -errno;
		set_why(why, whylen, "cannot enter network namespace %s: %s", ns->name,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		netns__teardown(ns);
		return err;
	}
	close(fd);
	/* /proc/sys/net is per namespace of the opener: we are inside now. Set before the veth
	 * exists so "default" applies to it: no IPv6 means no ND/MLD frames on the link. */
	write_sysctl("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	write_sysctl("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	{
		const char *add[] = {"ip",   "-n",   ns->name, "link", "add", "name", "va",
				     "type", "veth", "peer",   "name", "vb",  NULL};
		const char *upa[] = {"ip", "-n",  ns->name, "link", "set",
				     "va", "mtu", "9000",   "up",   NULL};
		const char *upb[] = {"ip", "-n",  ns->name, "link", "set",
				     "vb", "mtu", "9000",   "up",   NULL};
		if ((err = netns__run(add, why, whylen)) || (err = netns__run(upa, why, whylen)) ||
		    (err = netns__run(upb, why, whylen))) {
			netns__teardown(ns);
			return err;
		}
	}
	ns->va_index = (int)if_nametoindex("va");
	ns->vb_index = (int)if_nametoindex("vb");
	if (!ns->va_index || !ns->vb_index) {
		set_why(why, whylen, "veth pair va/vb not visible in %s", ns->name);
		netns__teardown(ns);
		return -ENODEV;
	}
	return 0;
}

void netns__teardown(struct netns *ns)
{
	for (unsigned i = 0; i < ns->npids; i++) {
		int status;
		if (ns->pids[i] <= 0)
			continue;
		if (waitpid(ns->pids[i], &status, WNOHANG) == 0) {
			kill(ns->pids[i], SIGTERM);
			if (wait_pid(ns->pids[i], 2000, &status) == -ETIMEDOUT)
				(void)0; /* killed with SIGKILL by wait_pid */
		}
		ns->pids[i] = 0;
	}
	ns->npids = 0;
	if (ns->orig_fd >= 0) {
		if (setns(ns->orig_fd, CLONE_NEWNET) < 0)
			fprintf(stderr, "netns: cannot return to the original namespace: %s\n",
				strerror(errno));
		close(ns->orig_fd);
		ns->orig_fd = -1;
	}
	if (ns->name[0]) {
		const char *argv[] = {"ip", "netns", "del", ns->name, NULL};
		char why[256];
		if (netns__run(argv, why, sizeof(why)))
			fprintf(stderr, "netns: %s\n", why);
		ns->name[0] = '\0';
	}
}

int netns__spawn(struct netns *ns, const char *const argv[], const char *out_path, const char *cwd,
		 pid_t *pid)
{
	pid_t p;

	if (ns->npids >= NETNS_MAX_PIDS)
		return -ENOSPC;
	p = spawn(argv, out_path, cwd);
	if (p < 0)
		return (int)p;
	ns->pids[ns->npids++] = p;
	*pid = p;
	return 0;
}

int netns__wait(struct netns *ns, pid_t pid, int timeout_ms, int *status)
{
	int err = wait_pid(pid, timeout_ms, status);

	for (unsigned i = 0; i < ns->npids; i++)
		if (ns->pids[i] == pid)
			ns->pids[i] = 0; /* reaped (or killed and reaped) */
	return err;
}

int netns__set_gro(const char *ifname, int on)
{
	struct ethtool_value ev = {.cmd = ETHTOOL_SGRO, .data = on ? 1 : 0};
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	ifr.ifr_data = (void *)&ev;
	if (ioctl(s, SIOCETHTOOL, &ifr) < 0)
		err = -errno;
	close(s);
	return err;
}

int netns__promisc(const char *ifname)
{
	/* The promiscuity count (IFLA_PROMISCUITY): packet-socket memberships raise it but,
	 * unlike "ip link set promisc on", do not show in SIOCGIFFLAGS. */
	char cmd[128], line[512];
	int count = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ip -d link show dev %s 2>/dev/null", ifname);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "promiscuity ");
		if (p)
			count = atoi(p + 12);
	}
	pclose(f);
	return count < 0 ? -ENOENT : count > 0;
}

/* ------------------------------------------------------------ frames */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t ip_csum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

size_t netns__frame_build(const struct tframe *f, uint8_t *buf, size_t cap)
{
	static const uint8_t mac_a[6] = {0x02, 0x5c, 0, 0, 0, 0x0a};
	static const uint8_t mac_b[6] = {0x02, 0x5c, 0, 0, 0, 0x0b};
	size_t l4len, l3len, off = 12, need;
	uint8_t *l3, *l4;

	l4len = f->proto == IPPROTO_TCP ? 20 : 8;
	l4len += (size_t)f->payload + 8;
	l3len = (f->ipver == 6 ? 40 : 20) + l4len;
	need = 14 + 4 * (size_t)f->ntags + l3len;
	if (need > cap || f->ntags > 3 || l3len > 65535)
		return 0;
	memset(buf, 0, need);
	/* MACs that are nobody's: the receiving stack sees PACKET_OTHERHOST and answers nothing. */
	memcpy(buf, mac_b, 6);
	memcpy(buf + 6, mac_a, 6);
	for (unsigned i = 0; i < f->ntags; i++, off += 4) {
		put16(buf + off, f->tpid[i]);
		put16(buf + off + 2, f->tci[i]);
	}
	put16(buf + off, f->ipver == 6 ? ETH_P_IPV6 : ETH_P_IP);
	l3 = buf + off + 2;
	if (f->ipver == 6) {
		put32(l3, 0x60000000);
		put16(l3 + 4, (uint16_t)l4len);
		l3[6] = f->proto;
		l3[7] = 64;
		memcpy(l3 + 8, f->src, 16);
		memcpy(l3 + 24, f->dst, 16);
		l4 = l3 + 40;
	} else {
		l3[0] = 0x45;
		put16(l3 + 2, (uint16_t)l3len);
		put16(l3 + 4, (uint16_t)f->seq);
		put16(l3 + 6, 0x4000); /* DF */
		l3[8] = 64;
		l3[9] = f->proto;
		memcpy(l3 + 12, f->src, 4);
		memcpy(l3 + 16, f->dst, 4);
		put16(l3 + 10, ip_csum(l3, 20));
		l4 = l3 + 20;
	}
	if (f->proto == IPPROTO_TCP) {
		put16(l4, f->sport);
		put16(l4 + 2, f->dport);
		put32(l4 + 4, f->seq);
		l4[12] = 5 << 4;
		l4[13] = 0x18; /* PSH|ACK */
		put16(l4 + 14, 65535);
	} else if (f->proto == IPPROTO_UDP) {
		put16(l4, f->sport);
		put16(l4 + 2, f->dport);
		put16(l4 + 4, (uint16_t)l4len);
	} else { /* ICMP / ICMPv6 echo request */
		l4[0] = f->ipver == 6 ? 128 : 8;
		put16(l4 + 4, 0x5356);
		put16(l4 + 6, (uint16_t)f->seq);
	}
	memset(buf + need - 8 - f->payload, 'x', f->payload);
	memcpy(buf + need - 8, "SVCS", 4);
	put32(buf + need - 4, f->seq);
	return need;
}

void netns__frame_key(const struct tframe *f, struct flow_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->src, f->src, f->ipver == 6 ? 16 : 4);
	memcpy(k->dst, f->dst, f->ipver == 6 ? 16 : 4);
	if (f->proto == IPPROTO_TCP || f->proto == IPPROTO_UDP) {
		k->sport = f->sport;
		k->dport = f->dport;
	}
	k->proto = f->proto;
	k->ipver = f->ipver;
	k->vlan = f->ntags ? (uint16_t)(f->tci[0] & 0x0fff) : 0;
}

int64_t netns__frame_seq(const uint8_t *frame, uint32_t caplen)
{
	const uint8_t *m;

	if (caplen < 8)
		return -1;
	m = frame + caplen - 8;
	if (memcmp(m, "SVCS", 4) != 0)
		return -1;
	return (int64_t)((uint32_t)m[4] << 24 | (uint32_t)m[5] << 16 | (uint32_t)m[6] << 8 | m[7]);
}

void netns__frame_reverse(const struct tframe *f, struct tframe *r)
{
	*r = *f;
	memcpy(r->src, f->dst, 16);
	memcpy(r->dst, f->src, 16);
	r->sport = f->dport;
	r->dport = f->sport;
}

int netns__tx_open(const char *ifname)
{
	struct sockaddr_ll sll;
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = 0; /* send only: never queue received frames */
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if (!sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		int err = sll.sll_ifindex ? -errno : -ENODEV;
		close(fd);
		return err;
	}
	return fd;
}

int netns__tx_send(int fd, const uint8_t *frame, size_t len)
{
	/* ENOBUFS: the peer's backlog was full and the frame was dropped before any tap saw
	 * it, so sending it again cannot duplicate it. */
	for (int tries = 0; tries < 1000; tries++) {
		ssize_t n = send(fd, frame, len, 0);
		if (n == (ssize_t)len)
			return 0;
		if (n >= 0)
			return -EIO;
		if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
			return -errno;
		sleep_ms(1);
	}
	return -ENOBUFS;
}

int netns__pcap_write(const char *path, const struct tframe *frames, size_t n)
{
	pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *d;
	uint8_t buf[10000];
	int err = 0;

	if (!p)
		return -ENOMEM;
	d = pcap_dump_open(p, path);
	if (!d) {
		pcap_close(p);
		return -EIO;
	}
	for (size_t i = 0; i < n; i++) {
		struct pcap_pkthdr h;
		size_t len = netns__frame_build(&frames[i], buf, sizeof(buf));
		if (!len) {
			err = -EINVAL;
			break;
		}
		memset(&h, 0, sizeof(h));
		h.ts.tv_sec = 1700000000 + (time_t)(i / 1000);
		h.ts.tv_usec = (suseconds_t)(i % 1000) * 1000;
		h.caplen = h.len = (bpf_u_int32)len;
		pcap_dump((u_char *)d, &h, buf);
	}
	pcap_dump_close(d);
	pcap_close(p);
	return err;
}

unsigned netns__packet_sockets_on(int ifindex)
{
	FILE *f = fopen("/proc/net/packet", "r");
	char line[256];
	unsigned n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long sk;
		int ref, type, proto, iface;
		if (sscanf(line, "%llx %d %d %x %d", &sk, &ref, &type, &proto, &iface) == 5 &&
		    iface == ifindex)
			n++;
	}
	fclose(f);
	return n;
}

void netns__remove_dir(const char *dir)
{
	DIR *d;
	struct dirent *e;
	char path[512];

	if (!dir[0])
		return;
	d = opendir(dir);
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	if (d)
		closedir(d);
	rmdir(dir);
}
