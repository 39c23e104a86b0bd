/* fuzz_pcapscan.c - libFuzzer harness for the mapped pcap walk, checked against libpcap.
 *
 * Input: the bytes of a capture file. They are put in a memory file (memfd) and read twice:
 * by pcapscan (mapped windows, our record parser) and by libpcap's own reader (pcap_next_ex
 * over the same bytes). When pcapscan takes the file (classic pcap 2.4), both must see the
 * same records: the same count, the same captured and wire bytes, and an error exactly when
 * libpcap stops with one. A read outside the mapping is an ASan report; a disagreement traps. */
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "fuzz_util.h"
#include "svcsensor/pcapscan.h"


struct tally {
	uint64_t records, caplen, wirelen;
	bool error;
};

/* libpcap over the same bytes; decode results are not compared (same decoder both ways). */
static void with_libpcap(const char *path, struct tally *t)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	pcap_t *p = pcap_open_offline(path, errbuf);
	struct pcap_pkthdr *h;
	const u_char *d;
	int rc;
	memset(t, 0, sizeof(*t));
	if (!p) {
		t->error = true;
		return;
	}
	while ((rc = pcap_next_ex(p, &h, &d)) == 1) {
		t->records++;
		t->caplen += h->caplen;
		t->wirelen += h->len;
	}
	t->error = rc == PCAP_ERROR;
	pcap_close(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = fuzz_memfile(data, size, "fuzz.pcap", path, sizeof(path));
	if (fd < 0)
		return 0;
	const char *files[] = {path};
	atomic_bool stop;
	atomic_init(&stop, false);
	struct pcapscan s;
	if (pcapscan__open(&s, files, 1, NULL, &stop, false) == 1) {
		struct pcapscan_cursor c;
		struct pkt_view pv[64];
		struct tally ours = {0}, theirs;
		uint64_t clock = 0;
		int n;
		pcapscan__cursor_init(&c, &s);
		while ((n = pcapscan__next(&c, pv, 64, &clock)) >= 0) {
			CHECK(n <= 64);
			for (int i = 0; i < n; i++) {
				/* the view points inside the mapped window */
				CHECK(c.win && pv[i].l3 >= c.win->base &&
				      pv[i].l3 + pv[i].l3_caplen <= c.win->base + c.win->len);
				ours.caplen += pv[i].l3_caplen;
			}
		}
		ours.records = c.st.packets;
		ours.wirelen = c.st.bytes;
		ours.error = c.error != 0;
		pcapscan__close(&s);
		with_libpcap(path, &theirs);
		CHECK(ours.records == theirs.records);
		CHECK(ours.wirelen == theirs.wirelen);
		CHECK(ours.error == theirs.error);
		(void)theirs.caplen; /* ours counts from the IP header: not comparable */
	}
	close(fd);
	return 0;
}
