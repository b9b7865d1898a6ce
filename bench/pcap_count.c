// SPDX-License-Identifier: MIT
/*
 * pcap_count.c - the throughput ceiling for bench/run.sh: a bare libpcap
 * read loop (pcap_open_offline + pcap_next_ex) that only counts packets and
 * sums their wire lengths.  Nothing flowpic does per packet can be cheaper,
 * so its packet rate is what flowpic's rate is compared with.
 *
 * Usage: pcap_count FILE
 * Prints "packets BYTES" (wire bytes, from h->len) on one line.
 */
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	uint64_t packets = 0, bytes = 0;
	pcap_t *p;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "Usage: %s FILE\n", argv[0]);
		return 2;
	}
	p = pcap_open_offline(argv[1], errbuf);
	if (!p) {
		fprintf(stderr, "%s: %s\n", argv[1], errbuf);
		return 1;
	}
	while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
		packets++;
		bytes += h->len;
	}
	if (rc == PCAP_ERROR) {
		fprintf(stderr, "%s: %s\n", argv[1], pcap_geterr(p));
		pcap_close(p);
		return 1;
	}
	pcap_close(p);
	printf("%" PRIu64 " %" PRIu64 "\n", packets, bytes);
	return 0;
}
