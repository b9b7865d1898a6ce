/* SPDX-License-Identifier: MIT */
/*
 * capture_abi.h - what the BPF programs (capture.bpf.c) and the userspace
 * library (capture.c) share: ring record layouts, map values, counter
 * indices.  Fixed-width types, large fields first, explicit padding.
 * Mirrored in: capture.c (decoder, _Static_assert on every size),
 * docs/capture.md (record formats).  Change FP_ABI_VERSION with any layout.
 *
 * Every ring record starts with a byte: high nibble the ABI version, low
 * nibble the record kind.
 */
#ifndef FLOWPIC_CAPTURE_ABI_H
#define FLOWPIC_CAPTURE_ABI_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define FP_ABI_VERSION 1
#define FP_KIND(k) ((__u8)(FP_ABI_VERSION << 4 | (k)))

enum fp_rec_kind {
	FP_REC_FLOW = 1,  /* records design: flow announcement + its packet */
	FP_REC_PKT = 2,	  /* records design: one packet of an announced slot */
	FP_REC_BATCH = 3, /* batches design: up to FP_BATCH_MAX packets of a flow */
	FP_REC_FULL = 4,  /* batches design: one packet with its 5-tuple */
};

/* Pairs per batch: 8 bytes each; 32 -> a 320-byte record per 32 packets. */
#define FP_BATCH_MAX 32

/* Skip reasons: the numbers of enum skip_reason in core/pkt.h. */
#define FP_SKIP_NONE 0
#define FP_SKIP_TRUNCATED 2
#define FP_SKIP_NOT_IP 3
#define FP_SKIP_IP_MALFORMED 4
#define FP_SKIP_FRAGMENT 5
#define FP_SKIP_ICMP 6
#define FP_SKIP_OTHER_L4 7
#define FP_SKIP_L4_MALFORMED 8

/* Counter indices: the first CAPTURE_C_BPF_COUNT entries of enum
 * capture_counter in capture.h (checked there). */
enum fp_counter {
	FP_C_INGRESS = 0,
	FP_C_EGRESS,
	FP_C_TCP,
	FP_C_UDP,
	FP_C_GSO,
	FP_C_TRUNCATED,
	FP_C_NOT_IP,
	FP_C_IP_MALFORMED,
	FP_C_FRAGMENT,
	FP_C_ICMP,
	FP_C_OTHER_L4,
	FP_C_L4_MALFORMED,
	FP_C_TOO_BIG,
	FP_C_RING_FULL,
	FP_C_FLOW_MAP_FULL,
	FP_C_FLUSH_BUSY,
	FP_C_RECORDS,
	FP_C_BATCHES,
	FP_C_COUNT
};

/* A flow as one hook on one CPU sees it.  44 bytes. */
struct fp_key {
	__u8 src[16]; /* IPv4 as ::ffff:a.b.c.d, network order */
	__u8 dst[16];
	__u32 ifindex;
	__u16 sport; /* host order */
	__u16 dport;
	__u8 proto; /* 6 or 17 */
	__u8 dir;   /* 0 ingress (XDP), 1 egress (TC) */
	__u16 cpu;  /* batches design: the CPU owning the entry; else 0 */
};

/* Records design, 16 bytes (24 in the ring with its header). */
struct fp_rec_pkt {
	__u8 kind; /* FP_KIND(FP_REC_PKT) */
	__u8 tcp_flags;
	__u16 size;	/* transport payload; GSO: of the whole super-packet */
	__u32 slot;	/* flow slot announced by an FP_REC_FLOW on this ring */
	__u32 dt_ns;	/* since the previous record on this ring */
	__u16 hdr;	/* ip_len - size */
	__u16 gso_size; /* 0, or the segment payload of a GSO super-packet */
};

/* FLOW (records) and FULL (batches): a packet with its 5-tuple.  72 bytes. */
struct fp_rec_flow {
	__u8 kind;
	__u8 tcp_flags;
	__u16 size;
	__u32 slot;  /* FLOW: the slot later FP_REC_PKT records name */
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u16 hdr;
	__u16 gso_size;
	__u32 pad;
	struct fp_key key;
	__u32 pad2;
};

/* One packet of a batch.  8 bytes. */
struct fp_pair {
	__u32 dt_ns; /* since the batch's ts0 (batch age < 4.29 s) */
	__u16 size;
	__u8 hdr4; /* (ip_len - size) / 4: every IP/TCP/UDP header is 4n bytes */
	__u8 tcp_flags;
};

/* Batches design ring record: 64 + 8 * FP_BATCH_MAX bytes. */
struct fp_rec_batch {
	__u8 kind; /* FP_KIND(FP_REC_BATCH) */
	__u8 n;	   /* pairs used */
	__u16 pad;
	__u32 pad1;
	__u64 ts0; /* CLOCK_MONOTONIC of the first pair */
	struct fp_key key;
	__u32 pad2;
	struct fp_pair pairs[FP_BATCH_MAX];
};

/* Batches design: the value of the flow map (key includes the CPU). */
struct fp_batch {
	__u64 ts0;
	__u64 last; /* time of the last packet: idle entries are deleted */
	__u32 n;
	__u32 pad;
	struct fp_pair pairs[FP_BATCH_MAX];
};

/* Records design: the value of the per-CPU flow map. */
struct fp_slot {
	__u32 slot;
	__u32 valid; /* 1 once announced on this CPU: an entry another
				 * CPU created reads as zeroes here */
};

/* Per-CPU state shared by the programs on one CPU. */
struct fp_cpu_state {
	__u64 last_ts;	 /* records: time of the last record on this CPU's ring */
	__u32 next_slot; /* records: next slot number (monotonic, wraps) */
	__u32 busy;	 /* batches: a datapath program is modifying a batch */
	__u32 flushing;	 /* batches: the flush program is running */
	__u32 pending;	 /* batches: entries of this CPU holding pairs
				 * (userspace flushes only CPUs with some) */
};

/* Flush program (raw_tp, run with BPF_F_TEST_RUN_ON_CPU): ctx args[0] =
 * minimum batch age in ns (0: everything), args[1] = idle ns after which an
 * empty entry is deleted.  Returns 0, or 1 when the CPU was busy (retry). */

#endif
