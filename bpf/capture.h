/* SPDX-License-Identifier: MIT */
/*
 * capture.h - live capture with eBPF: XDP on ingress, TC on egress, records
 * drained from one ring buffer per CPU and handed out as struct pkt.
 *
 * Lifecycle: capture_config_default(), set interfaces and options,
 * capture_open() (loads, attaches, logs one line per interface with its XDP
 * mode), then a loop of capture_poll() (or epoll on capture_fd() and
 * capture_poll(c, 0, ...)), capture_flush() before exit or a deadline, and
 * capture_close() (detaches everything).  Attachments are bpf_links (XDP,
 * tcx on kernels >= 6.6): they go away with the process, so a crash leaves
 * nothing attached.  See docs/capture.md.
 *
 * Not thread-safe: one thread owns a struct capture.
 */
#ifndef FLOWPIC_CAPTURE_H
#define FLOWPIC_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/pkt.h"

#define CAPTURE_MAX_IFACES 32

/* How the BPF programs hand packets to userspace; see docs/capture.md. */
enum capture_design {
	CAPTURE_RECORDS = 0, /* one compact record per packet, 5-tuple on flow start */
	CAPTURE_BATCHES = 1, /* per-flow batches of (time delta, size) pairs */
};

enum capture_dir {
	CAPTURE_INGRESS = 0, /* XDP */
	CAPTURE_EGRESS = 1,  /* TC egress */
};

struct capture_config {
	const char *ifaces[CAPTURE_MAX_IFACES]; /* interface names */
	unsigned int n_ifaces;			/* 0: load only, attach nothing (tests) */
	enum capture_design design;		/* default: the measured winner */
	bool force_generic_xdp;			/* skip native XDP even where the driver has it */
	bool no_egress;				/* ingress (XDP) only */
	uint32_t ring_bytes;	  /* per-CPU ring size, power of 2 >= 4096; default 8 MiB */
	uint32_t flow_map_size;	  /* BPF flow entries (per CPU for records); default 65536 */
	uint32_t batch_age_ms;	  /* a batch older than this is submitted; 1..2000, default 200 */
	const char *verifier_log; /* where a failed load's verifier log goes;
					 * NULL: /tmp/flowpic-verifier.log */
	uint32_t merge_max_held;  /* records the time-ordered merge holds; 0: the
					 * default (MERGE_DEFAULT_MAX_HELD, core/merge.h) */
	bool no_merge;		  /* hand records out in ring order (benchmarks,
					 * the parity test's negative control) */
	bool eager_wakeup;	  /* wake the consumer at every record (the
					 * kernel's default); default: only when a ring
					 * is 1/8 full, else records wait for the next
					 * capture_poll() (call it at least every 100 ms) */
};

/* Counters summed over CPUs: BPF (first) then userspace decoding. Stable order. */
enum capture_counter {
	CAPTURE_C_INGRESS = 0,	 /* frames seen at XDP */
	CAPTURE_C_EGRESS,	 /* skbs seen at TC egress */
	CAPTURE_C_TCP,		 /* TCP packets recorded (wire segments) */
	CAPTURE_C_UDP,		 /* UDP packets recorded (wire segments) */
	CAPTURE_C_GSO,		 /* egress GSO super-packets (each counted as its segments) */
	CAPTURE_C_TRUNCATED,	 /* skip: headers cut short */
	CAPTURE_C_NOT_IP,	 /* skip: ARP, LLDP, ... */
	CAPTURE_C_IP_MALFORMED,	 /* skip: bad IP version/length fields */
	CAPTURE_C_FRAGMENT,	 /* skip: IPv4/IPv6 fragment */
	CAPTURE_C_ICMP,		 /* skip: ICMP/ICMPv6 */
	CAPTURE_C_OTHER_L4,	 /* skip: other IP protocols, too many IPv6 ext headers */
	CAPTURE_C_L4_MALFORMED,	 /* skip: TCP data offset / UDP length inconsistent */
	CAPTURE_C_TOO_BIG,	 /* loss: payload or header beyond the record fields */
	CAPTURE_C_RING_FULL,	 /* loss: ring reserve failed (packets lost) */
	CAPTURE_C_FLOW_MAP_FULL, /* not a loss: flow map full, sent as a full record */
	CAPTURE_C_FLUSH_BUSY,	 /* not a loss: packet met a flush in progress, full record */
	CAPTURE_C_RECORDS,	 /* ring records submitted */
	CAPTURE_C_BATCHES,	 /* batch records submitted (batches design) */
	CAPTURE_C_BPF_COUNT,	 /* (end of the BPF counters) */
	CAPTURE_C_DELIVERED = CAPTURE_C_BPF_COUNT, /* packets handed to on_pkt */
	CAPTURE_C_BAD_RECORD,			   /* loss: ring record that does not decode */
	CAPTURE_C_UNKNOWN_SLOT,	  /* loss: packet record for a slot never announced */
	CAPTURE_C_MERGE_LATE,	  /* not a loss: arrived after its watermark, handed out
				 * out of time order */
	CAPTURE_C_MERGE_FORCED,	  /* not a loss: handed out before its watermark, the
				 * merge was full (raise merge_max_held) */
	CAPTURE_C_MERGE_HELD,	  /* gauge: records the merge holds now */
	CAPTURE_C_MERGE_HELD_MAX, /* gauge: most it held at once */
	CAPTURE_C_COUNT
};

struct capture_counters {
	uint64_t v[CAPTURE_C_COUNT];
};

struct capture;

/* Called once per packet (GSO super-packets: once per wire segment), in
 * time order across every ring and batch unless no_merge (see
 * capture_watermark()). */
typedef void (*capture_pkt_fn)(void *ctx, const struct pkt *p, int ifindex, enum capture_dir dir);

void capture_config_default(struct capture_config *cfg);

/*
 * Check cfg's sizes and counts without touching the kernel: 0, or -EINVAL
 * with one line in err (the line capture_open() would give).
 */
int capture_config_check(const struct capture_config *cfg, char *err, size_t errlen);

/*
 * capture_config_check(), then load and attach.  NULL on failure with one line in err that says what
 * failed and what to do (no such interface, no BTF, no ring buffers, missing
 * capability, verifier failure with the log's path).
 */
struct capture *capture_open(const struct capture_config *cfg, char *err, size_t errlen);

/* An fd that is readable when records wait (epoll it; then capture_poll(c, 0)).
 * Unless eager_wakeup, it becomes readable only when a ring is 1/8 full:
 * also call capture_poll(c, 0, ...) from a timer, at least every 100 ms. */
int capture_fd(const struct capture *c);

/*
 * Wait up to timeout_ms (0: do not wait, -1: forever; capped at 100 ms, and
 * at batch_age_ms / 2 for batches) and deliver what the rings hold; batches
 * older than batch_age_ms are pushed out first.
 * Returns packets delivered or a negative errno (-EINTR on a signal).
 */
int capture_poll(struct capture *c, int timeout_ms, capture_pkt_fn on_pkt, void *ctx);

/* Push every partial batch into the rings; the next capture_poll() delivers
 * them and every record the merge holds (end of input, deadlines).
 * 0 or a negative errno. */
int capture_flush(struct capture *c);

/*
 * End of capture: flush the batches and drain the rings until a pass finds
 * nothing (at most 64 passes), then hand out everything the merge holds, in
 * order.  Packets delivered, or a negative errno.
 */
int capture_finish(struct capture *c, capture_pkt_fn on_pkt, void *ctx);

/*
 * The merge's watermark, ns since the Unix epoch: every packet earlier than
 * this has been delivered (0 before the first, and with no_merge).  The
 * agent moves its flow table's clock to it, so no block closes before all of
 * its packets are in.
 */
uint64_t capture_watermark(const struct capture *c);

/* Counters summed over CPUs. */
void capture_counters(const struct capture *c, struct capture_counters *out);

/* Stable snake_case name of counter i, NULL past the end. */
const char *capture_counter_name(unsigned int i);

/* True when counter i means packets were lost (what an operator alerts on). */
bool capture_counter_is_loss(unsigned int i);

/* "native" or "generic": XDP mode of interface i of the config ("" when none). */
const char *capture_xdp_mode(const struct capture *c, unsigned int i);

/* Detach everything and free.  NULL is fine. */
void capture_close(struct capture *c);

/* For tests and benchmarks: the loaded programs' fds (0 = XDP, 1 = TC). */
int capture_prog_fd(const struct capture *c, int which);

#endif
