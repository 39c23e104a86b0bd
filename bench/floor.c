/* floor.c - the bench floor: the cheapest possible pass over a capture file.
 *
 * A bare libpcap loop (pcap_open_offline + pcap_next_ex) that touches nothing but the record
 * headers, then prints "packets N bytes B" (B = captured bytes). Any sensor reading the same
 * file through libpcap cannot be faster than this, so its wall time is the unit the harness
 * divides by. Usage: floor FILE [FILE...]
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	char err[PCAP_ERRBUF_SIZE];
	uint64_t packets = 0, bytes = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: floor FILE [FILE...]\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		pcap_t *p = pcap_open_offline(argv[i], err);
		struct pcap_pkthdr *h;
		const u_char *data;
		int rc;

		if (!p) {
			fprintf(stderr, "floor: %s: %s\n", argv[i], err);
			return 1;
		}
		while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
			packets++;
			bytes += h->caplen;
		}
		if (rc == PCAP_ERROR) {
			fprintf(stderr, "floor: %s: %s\n", argv[i], pcap_geterr(p));
			pcap_close(p);
			return 1;
		}
		pcap_close(p);
	}
	printf("packets %llu bytes %llu\n", (unsigned long long)packets, (unsigned long long)bytes);
	return 0;
}
