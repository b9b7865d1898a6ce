/* SPDX-License-Identifier: MIT */
/*
 * bpf_harness.h - run the capture programs on crafted frames with
 * bpf_prog_test_run_opts and collect what the capture library decodes from
 * the rings.  Shared by the BPF unit and differential tests (root needed).
 */
#ifndef FLOWPIC_TEST_BPF_HARNESS_H
#define FLOWPIC_TEST_BPF_HARNESS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "bpf/capture.h"

#define H_MAX_PKTS 4096

struct got {
	struct pkt p;
	int ifindex;
	enum capture_dir dir;
};

struct harness {
	struct capture *c;
	struct got pkts[H_MAX_PKTS];
	unsigned int n;
	unsigned int overflow;
};

static inline void h_on_pkt(void *ctx, const struct pkt *p, int ifindex, enum capture_dir dir)
{
	struct harness *h = ctx;

	if (h->n >= H_MAX_PKTS) {
		h->overflow++;
		return;
	}
	h->pkts[h->n].p = *p;
	h->pkts[h->n].ifindex = ifindex;
	h->pkts[h->n].dir = dir;
	h->n++;
}

/* Load only (no interface); NULL with a message on stderr. */
static inline struct capture *h_open(enum capture_design d, uint32_t ring_bytes,
				     uint32_t flow_map_size)
{
	struct capture_config cfg;
	char err[512] = "";
	struct capture *c;

	capture_config_default(&cfg);
	cfg.design = d;
	if (ring_bytes)
		cfg.ring_bytes = ring_bytes;
	if (flow_map_size)
		cfg.flow_map_size = flow_map_size;
	c = capture_open(&cfg, err, sizeof(err));
	if (!c)
		fprintf(stderr, "capture_open: %s\n", err);
	return c;
}

/* Run the XDP program (which = 0) or the TC program (1) on one frame;
 * gso_segs/gso_size go into the TC program's __sk_buff.  Returns the
 * program's verdict, or -errno when the run itself failed. */
static inline int h_run(struct harness *h, int which, const void *data, uint32_t len,
			uint32_t gso_segs, uint32_t gso_size)
{
	struct __sk_buff skb;
	int e;

	memset(&skb, 0, sizeof(skb));
	skb.gso_segs = gso_segs;
	skb.gso_size = gso_size;
	{
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = data, .data_size_in = len,
			    .repeat = 1);

		if (which == 1 && (gso_segs || gso_size)) {
			o.ctx_in = &skb;
			o.ctx_size_in = sizeof(skb);
		}
		e = bpf_prog_test_run_opts(capture_prog_fd(h->c, which), &o);
		if (e)
			return e;
		return (int)o.retval;
	}
}

/* Flush partial batches and collect everything the rings hold. */
static inline int h_drain(struct harness *h)
{
	int e = capture_flush(h->c);

	if (e)
		return e;
	return capture_poll(h->c, 0, h_on_pkt, h);
}

static inline uint64_t h_counter(struct harness *h, enum capture_counter i)
{
	struct capture_counters cs;

	capture_counters(h->c, &cs);
	return cs.v[i];
}

#endif
