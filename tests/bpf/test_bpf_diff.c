// SPDX-License-Identifier: MIT
/*
 * test_bpf_diff.c - differential test: every Ethernet frame of real captures
 * through the BPF programs (bpf_prog_test_run_opts) and through core/parse.c.
 * For each frame the offline parser accepts, the BPF side must deliver
 * exactly one packet with the same addresses, ports, protocol, flags,
 * ip_len and size; for each frame it skips, nothing, and the counter of the
 * same reason goes up by one.
 *
 * Even frames go through the XDP program, odd ones through the TC program.
 * The BPF side sees a frame's captured bytes only (cut at 3000: the kernel's
 * test run takes about a page), so the parser is given the same bytes and
 * their length as the wire length.
 *
 * usage: test_bpf_diff [--inject-fault] records|batches MAX_FRAMES MAX_FILES PATH...
 * (PATH: a capture, or a directory searched recursively; gzip/xz are read
 * as is).  --inject-fault changes one expected size: the run must fail.
 */
#include <dirent.h>
#include <errno.h>
/* pcap/bpf.h (classic BPF) clashes with linux/bpf.h: keep it out. */
#define lib_pcap_bpf_h
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bpf_harness.h"
#include "core/parse.h"
#include "core/zfile.h"

static struct harness H;
static unsigned long max_frames, max_files, files, frames, accepted, skipped, untestable;
static unsigned long mismatches;
static int inject_fault;

static const enum capture_counter reason_counter[SKIP_REASON_COUNT] = {
	[SKIP_TRUNCATED] = CAPTURE_C_TRUNCATED,
	[SKIP_NOT_IP] = CAPTURE_C_NOT_IP,
	[SKIP_IP_MALFORMED] = CAPTURE_C_IP_MALFORMED,
	[SKIP_FRAGMENT] = CAPTURE_C_FRAGMENT,
	[SKIP_ICMP] = CAPTURE_C_ICMP,
	[SKIP_OTHER_L4] = CAPTURE_C_OTHER_L4,
	[SKIP_L4_MALFORMED] = CAPTURE_C_L4_MALFORMED,
};

static void mismatch(const char *path, unsigned long i, const char *what)
{
	if (mismatches++ < 20)
		fprintf(stderr, "MISMATCH %s frame %lu: %s\n", path, i, what);
}

static int same(const struct pkt *a, const struct pkt *b)
{
	return !memcmp(a->src, b->src, 16) && !memcmp(a->dst, b->dst, 16) &&
	       a->ip_len == b->ip_len && a->size == b->size && a->sport == b->sport &&
	       a->dport == b->dport && a->proto == b->proto && a->tcp_flags == b->tcp_flags;
}

static void one_frame(const char *path, unsigned long i, const uint8_t *data, uint32_t caplen)
{
	struct capture_counters before, after;
	enum skip_reason r;
	struct pkt want;
	int which = (int)(i & 1), v;
	char buf[160];

	/* The kernel's test run takes at most about a page: longer frames
	 * (GRO'd in the capture) are cut, for both sides, like a snap length. */
	if (caplen > 3000)
		caplen = 3000;
	memset(&want, 0, sizeof(want));
	r = parse_frame(LINK_ETHERNET, data, caplen, caplen, &want);
	if (inject_fault && r == SKIP_NONE && accepted == 100)
		want.size++;
	capture_counters(H.c, &before);
	H.n = 0;
	v = h_run(&H, which, data, caplen, 0, 0);
	if (v == -EINVAL) {
		/* The kernel's test run refuses frames under 14 bytes and IP
		 * skbs shorter than their header: not something a hook sees. */
		if (untestable++ < 5 && getenv("FPT_VERBOSE"))
			fprintf(stderr, "not testable: %s frame %lu (%u bytes, %s)\n", path, i,
				caplen, which ? "tc" : "xdp");
		return;
	}
	if (v != (which ? 0 : 2)) {
		snprintf(buf, sizeof(buf), "verdict %d", v);
		mismatch(path, i, buf);
		return;
	}
	if (h_drain(&H) < 0) {
		mismatch(path, i, "drain failed");
		return;
	}
	capture_counters(H.c, &after);
	if (r == SKIP_NONE) {
		accepted++;
		if (H.n != 1)
			snprintf(buf, sizeof(buf), "parse.c accepts, BPF delivered %u packets",
				 H.n);
		else if (!same(&H.pkts[0].p, &want))
			snprintf(buf, sizeof(buf),
				 "BPF size %u ip_len %u ports %u>%u flags %#x, parse.c size %u "
				 "ip_len %u ports %u>%u flags %#x",
				 H.pkts[0].p.size, H.pkts[0].p.ip_len, H.pkts[0].p.sport,
				 H.pkts[0].p.dport, H.pkts[0].p.tcp_flags, want.size, want.ip_len,
				 want.sport, want.dport, want.tcp_flags);
		else
			return;
		mismatch(path, i, buf);
		return;
	}
	skipped++;
	if (H.n != 0) {
		snprintf(buf, sizeof(buf), "parse.c skips (%s), BPF delivered %u packets",
			 skip_reason_name(r), H.n);
		mismatch(path, i, buf);
	} else if (after.v[reason_counter[r]] != before.v[reason_counter[r]] + 1) {
		snprintf(buf, sizeof(buf), "parse.c skips as %s, BPF counted otherwise",
			 skip_reason_name(r));
		mismatch(path, i, buf);
	}
}

static void one_file(const char *path)
{
	char err[PCAP_ERRBUF_SIZE + 256] = "";
	struct pcap_pkthdr *hdr;
	const uint8_t *data;
	struct zfile *z;
	unsigned long i = 0;
	pcap_t *p;

	if (files >= max_files)
		return;
	z = zfile_open(path, err, sizeof(err));
	if (!z)
		return;
	p = pcap_fopen_offline(zfile_stream(z), err);
	if (!p) {
		zfile_close(z);
		return; /* not a pcap (pcapng, text, ...): not ours to judge */
	}
	zfile_stream_closed(z);
	if (pcap_datalink(p) != 1 /* DLT_EN10MB */) {
		pcap_close(p);
		zfile_close(z);
		return;
	}
	files++;
	while (i < max_frames && pcap_next_ex(p, &hdr, &data) == 1) {
		one_frame(path, i, data, hdr->caplen);
		i++;
	}
	frames += i;
	pcap_close(p);
	zfile_close(z);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void walk(const char *path)
{
	struct dirent **names;
	struct stat st;
	int n, k;

	if (stat(path, &st)) {
		fprintf(stderr, "test_bpf_diff: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	if (!S_ISDIR(st.st_mode)) {
		one_file(path);
		return;
	}
	n = scandir(path, &names, NULL, by_name);
	for (k = 0; k < n; k++) {
		char sub[4096];

		if (names[k]->d_name[0] != '.') {
			snprintf(sub, sizeof(sub), "%s/%s", path, names[k]->d_name);
			walk(sub);
		}
		free(names[k]);
	}
	if (n >= 0)
		free(names);
}

int main(int argc, char **argv)
{
	int a = 1;

	if (a < argc && !strcmp(argv[a], "--inject-fault")) {
		inject_fault = 1;
		a++;
	}
	if (argc - a < 4) {
		fprintf(stderr, "usage: test_bpf_diff [--inject-fault] records|batches "
				"MAX_FRAMES MAX_FILES PATH...\n");
		return 2;
	}
	/* A small flow map: every frame is flushed, and a flush walks the map. */
	H.c = h_open(strcmp(argv[a], "batches") ? CAPTURE_RECORDS : CAPTURE_BATCHES, 0, 4096);
	if (!H.c)
		return 1;
	max_frames = strtoul(argv[a + 1], NULL, 10);
	max_files = strtoul(argv[a + 2], NULL, 10);
	for (a += 3; a < argc; a++)
		walk(argv[a]);
	capture_close(H.c);
	printf("test_bpf_diff: %lu files, %lu frames: %lu accepted, %lu skipped, "
	       "%lu not testable, %lu mismatches\n",
	       files, frames, accepted, skipped, untestable, mismatches);
	if (!files || !accepted) {
		fprintf(stderr, "test_bpf_diff: no Ethernet capture found: nothing compared\n");
		return 1;
	}
	return mismatches ? 1 : 0;
}
