// SPDX-License-Identifier: MIT
/*
 * capture.bpf.c - XDP (ingress) and TC (egress) programs that record packet
 * sizes and times per 5-tuple into one ring buffer per CPU.  Both entry
 * points are thin: parse (parse.bpf.h), then hand the packet to the design
 * chosen at load time (rodata `design`; the verifier prunes the other):
 *
 *   records: a 16-byte record per packet (time delta, size, header length,
 *            flags, flow slot); the 5-tuple goes out only when a flow takes
 *            a slot (FP_REC_FLOW);
 *   batches: (time delta, size) pairs appended to a per-flow, per-CPU entry
 *            of a hash map, submitted as one record when full or old, and by
 *            the flush program for idle flows.
 *
 * The packet always passes untouched (XDP_PASS, TC_ACT_OK); every path that
 * loses or skips a packet bumps its own per-CPU counter.
 */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "capture_abi.h"
#include "parse.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define FP_TC_ACT_OK 0

const volatile __u32 design = 0;	       /* 0 records, 1 batches */
const volatile __u32 slot_mask = 65535;	       /* records: userspace slot table - 1 (2^k - 1) */
const volatile __u64 batch_age_ns = 200000000; /* batches: submit when older */
const volatile __u64 wakeup_bytes = 0;	       /* 0: wake the consumer per record */

/* One ring per CPU: producers on one CPU never contend with another CPU's.
 * The rings are created by userspace at the configured size; this is only
 * the template (the kernel does not compare ring sizes of inner maps, and
 * libbpf 1.1 crashes resizing an inner map: bpf_map__set_max_entries
 * dereferences the inner map's NULL obj). */
struct ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1); /* set to the CPU count before load */
	__type(key, __u32);
	__array(values, struct ring);
} rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FP_C_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fp_cpu_state);
} cpu_state SEC(".maps");

/* Records design: flow -> slot, per CPU; an eviction only costs a new
 * announcement, never a packet.  An entry inserted on one CPU exists,
 * zeroed, on the others: `valid` tells them to announce their own slot. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fp_key);
	__type(value, struct fp_slot);
} slots SEC(".maps");

/* Batches design: (flow, CPU) -> pending pairs.  Not LRU: an eviction would
 * lose pairs silently; when full, packets go out as FULL records (counted). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fp_key);
	__type(value, struct fp_batch);
} batches SEC(".maps");

/* Lazy wakeups: a consumer woken for every few records spends more CPU on
 * wakeups than on records.  Wake it only when this record (of sz bytes,
 * reserved: already counted in the ring's data) makes the ring cross
 * wakeup_bytes.  Waking at every record above the mark would cost each
 * packet a wakeup exactly when the consumer is behind (measured: 0.9-1.7 us
 * instead of 0.13).  A consumer sleeps only after draining, so the next
 * crossing wakes it; below the mark, records wait for its next poll (the
 * library polls at least every 100 ms). */
static __always_inline __u64 wakeup_flag(void *ring, __u64 sz)
{
	__u64 avail;

	if (!wakeup_bytes)
		return 0;
	sz = (sz + 8 + 7) & ~7ULL; /* with the ring's 8-byte header, rounded */
	avail = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
	return avail >= wakeup_bytes && avail - sz < wakeup_bytes ? BPF_RB_FORCE_WAKEUP :
								    BPF_RB_NO_WAKEUP;
}

static __always_inline void count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += n;
}

static __always_inline void *cpu_ring(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&rings, &cpu);
}

/* Wire segments a packet stands for: GSO super-packets become several. */
static __always_inline __u32 fp_segments(__u32 size, __u32 gso_size)
{
	if (!gso_size || size <= gso_size)
		return 1;
	return (size + gso_size - 1) / gso_size;
}

static __always_inline void count_ok(const struct fp_parsed *p, __u32 segs)
{
	count(p->proto == 6 ? FP_C_TCP : FP_C_UDP, segs);
}

/* FLOW/FULL record: the packet with its 5-tuple. */
static __always_inline int emit_full(void *ring, __u8 kind, __u32 slot, __u64 now,
				     const struct fp_key *key, const struct fp_parsed *p,
				     __u32 gso_size, __u32 segs)
{
	struct fp_rec_flow *r = bpf_ringbuf_reserve(ring, sizeof(*r), 0);

	if (!r) {
		count(FP_C_RING_FULL, segs);
		return -1;
	}
	r->ts_ns = now;
	r->kind = FP_KIND(kind);
	r->tcp_flags = p->tcp_flags;
	r->size = (__u16)p->size;
	r->slot = slot;
	r->hdr = (__u16)(p->ip_len - p->size);
	r->gso_size = (__u16)gso_size;
	r->pad = 0;
	r->key = *key;
	r->pad2 = 0;
	bpf_ringbuf_submit(r, wakeup_flag(ring, sizeof(*r)));
	count(FP_C_RECORDS, 1);
	count_ok(p, segs);
	return 0;
}

static __always_inline void do_records(void *ring, struct fp_key *key, const struct fp_parsed *p,
				       __u32 gso_size, __u32 segs)
{
	__u32 zero = 0;
	struct fp_cpu_state *st = bpf_map_lookup_elem(&cpu_state, &zero);
	struct fp_slot *s, ns = {};
	struct fp_rec_pkt *r;
	__u64 now = bpf_ktime_get_ns();
	__u64 dt;

	if (!st) {
		count(FP_C_RING_FULL, segs);
		return;
	}
	dt = now - st->last_ts;
	s = bpf_map_lookup_elem(&slots, key);
	/* Announce when the flow has no slot, when its slot may have been
	 * reused in userspace's table (mask + 1 newer slots), or when the time
	 * delta does not fit 32 bits: the FLOW record carries the full time. */
	if (!s || !s->valid || st->next_slot - s->slot > slot_mask || dt > 0xffffffffULL) {
		__u32 slot;

		if (s && s->valid && st->next_slot - s->slot <= slot_mask)
			slot = s->slot;
		else
			slot = st->next_slot++;
		if (emit_full(ring, FP_REC_FLOW, slot, now, key, p, gso_size, segs))
			return;
		st->last_ts = now;
		if (s) {
			s->slot = slot;
			s->valid = 1;
		} else {
			ns.slot = slot;
			ns.valid = 1;
			/* LRU: fails only under memory pressure; the next
			 * packet then announces again. */
			if (bpf_map_update_elem(&slots, key, &ns, BPF_ANY))
				count(FP_C_FLOW_MAP_FULL, 1);
		}
		return;
	}
	r = bpf_ringbuf_reserve(ring, sizeof(*r), 0);
	if (!r) {
		count(FP_C_RING_FULL, segs);
		return;
	}
	r->kind = FP_KIND(FP_REC_PKT);
	r->tcp_flags = p->tcp_flags;
	r->size = (__u16)p->size;
	r->slot = s->slot;
	r->dt_ns = (__u32)dt;
	r->hdr = (__u16)(p->ip_len - p->size);
	r->gso_size = (__u16)gso_size;
	bpf_ringbuf_submit(r, wakeup_flag(ring, sizeof(*r)));
	st->last_ts = now;
	count(FP_C_RECORDS, 1);
	count_ok(p, segs);
}

/* Submit b's pairs as one record (ring full: its packets are counted lost). */
static __always_inline void submit_batch(void *ring, const struct fp_key *key, struct fp_batch *b,
					 struct fp_cpu_state *st)
{
	struct fp_rec_batch *r;
	__u32 n = b->n;

	if (!n)
		return;
	b->n = 0;
	if (st->pending)
		st->pending--;
	r = bpf_ringbuf_reserve(ring, sizeof(*r), 0);
	if (!r) {
		count(FP_C_RING_FULL, n);
		return;
	}
	r->ts0 = b->ts0;
	r->kind = FP_KIND(FP_REC_BATCH);
	r->n = (__u8)n;
	r->pad = 0;
	r->pad1 = 0;
	r->key = *key;
	r->pad2 = 0;
	__builtin_memcpy(r->pairs, b->pairs, sizeof(r->pairs));
	bpf_ringbuf_submit(r, wakeup_flag(ring, sizeof(*r)));
	count(FP_C_BATCHES, 1);
	count(FP_C_RECORDS, 1);
}

static __always_inline void do_batches(void *ring, struct fp_key *key, const struct fp_parsed *p,
				       __u32 gso_size, __u32 segs)
{
	__u32 zero = 0, hdr = p->ip_len - p->size, n;
	struct fp_cpu_state *st = bpf_map_lookup_elem(&cpu_state, &zero);
	__u64 now = bpf_ktime_get_ns();
	struct fp_batch *b;
	struct fp_pair *q;

	if (!st) {
		count(FP_C_RING_FULL, segs);
		return;
	}
	/* A flush of this CPU's batches is running (we interrupted it), or we
	 * interrupted another program here: leave the batches alone. */
	if (st->flushing || st->busy) {
		count(FP_C_FLUSH_BUSY, 1);
		emit_full(ring, FP_REC_FULL, 0, now, key, p, gso_size, segs);
		return;
	}
	st->busy = 1;
	key->cpu = (__u16)bpf_get_smp_processor_id();
	b = bpf_map_lookup_elem(&batches, key);
	if (!b) {
		struct fp_batch nb = {};

		if (bpf_map_update_elem(&batches, key, &nb, BPF_NOEXIST) ||
		    !(b = bpf_map_lookup_elem(&batches, key))) {
			count(FP_C_FLOW_MAP_FULL, 1);
			emit_full(ring, FP_REC_FULL, 0, now, key, p, gso_size, segs);
			goto out;
		}
	}
	if (b->n && (now - b->ts0 >= batch_age_ns || b->n >= FP_BATCH_MAX))
		submit_batch(ring, key, b, st);
	/* GSO super-packets and headers a pair cannot hold go out whole, after
	 * the flow's earlier packets (order within the flow is kept). */
	if (segs > 1 || hdr > 1020 || (hdr & 3)) {
		submit_batch(ring, key, b, st);
		emit_full(ring, FP_REC_FULL, 0, now, key, p, gso_size, segs);
		b->last = now;
		goto out;
	}
	n = b->n;
	if (n == 0) {
		b->ts0 = now;
		st->pending++;
	}
	/* n < FP_BATCH_MAX here (a full batch was submitted above); the mask
	 * answers the verifier's "R3 unbounded memory access" (clang drops a
	 * plain range check it can prove redundant). */
	q = &b->pairs[n & (FP_BATCH_MAX - 1)];
	q->dt_ns = (__u32)(now - b->ts0);
	q->size = (__u16)p->size;
	q->hdr4 = (__u8)(hdr >> 2);
	q->tcp_flags = p->tcp_flags;
	b->n = n + 1;
	b->last = now;
	count_ok(p, 1);
	if (b->n >= FP_BATCH_MAX)
		submit_batch(ring, key, b, st);
out:
	st->busy = 0;
}

static const __u32 skip_counter[9] = {
	[FP_SKIP_TRUNCATED] = FP_C_TRUNCATED,
	[FP_SKIP_NOT_IP] = FP_C_NOT_IP,
	[FP_SKIP_IP_MALFORMED] = FP_C_IP_MALFORMED,
	[FP_SKIP_FRAGMENT] = FP_C_FRAGMENT,
	[FP_SKIP_ICMP] = FP_C_ICMP,
	[FP_SKIP_OTHER_L4] = FP_C_OTHER_L4,
	[FP_SKIP_L4_MALFORMED] = FP_C_L4_MALFORMED,
};

static __always_inline void count_skip(int reason)
{
	if (reason > 0 && reason < 9)
		count(skip_counter[reason], 1);
}

/* The shared part of both entry points, after parsing. */
static __always_inline void fp_record(const struct fp_parsed *p, __u32 ifindex, __u8 dir,
				      __u32 gso_size)
{
	struct fp_key key;
	__u32 segs;
	void *ring;

	/* GSO segments and sizes live in 16-bit record fields. */
	if (p->size > 0xffff || p->ip_len - p->size > 0xffff || gso_size > 0xffff) {
		count(FP_C_TOO_BIG, 1);
		return;
	}
	segs = fp_segments(p->size, gso_size);
	if (segs > 1)
		count(FP_C_GSO, 1);
	else
		gso_size = 0;
	ring = cpu_ring();
	if (!ring) {
		count(FP_C_RING_FULL, segs);
		return;
	}
	__builtin_memcpy(key.src, p->src, 16);
	__builtin_memcpy(key.dst, p->dst, 16);
	key.ifindex = ifindex;
	key.sport = p->sport;
	key.dport = p->dport;
	key.proto = p->proto;
	key.dir = dir;
	key.cpu = 0;
	if (design == 1)
		do_batches(ring, &key, p, gso_size, segs);
	else
		do_records(ring, &key, p, gso_size, segs);
}

SEC("xdp")
int fp_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct fp_parsed p = {};
	int r;

	count(FP_C_INGRESS, 1);
	r = fp_parse_eth(data, end, (__u32)(end - data), &p);
	if (r)
		count_skip(r);
	else
		fp_record(&p, ctx->ingress_ifindex, 0, 0);
	return XDP_PASS;
}

SEC("tc")
int fp_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct fp_parsed p = {};
	int r;

	count(FP_C_EGRESS, 1);
	r = fp_parse_eth(data, end, skb->len, &p);
	/* Headers beyond the linear part (rare on egress): make them linear
	 * (the bytes do not change) and parse again. */
	if (r == FP_SKIP_TRUNCATED && skb->len > (__u32)(end - data)) {
		if (!bpf_skb_pull_data(skb, skb->len < 512 ? skb->len : 512)) {
			data = (void *)(long)skb->data;
			end = (void *)(long)skb->data_end;
			__builtin_memset(&p, 0, sizeof(p));
			r = fp_parse_eth(data, end, skb->len, &p);
		}
	}
	if (r)
		count_skip(r);
	else
		fp_record(&p, skb->ifindex, 1, skb->gso_segs > 1 ? skb->gso_size : 0);
	return FP_TC_ACT_OK;
}

/* Batches design: push out this CPU's batches older than args[0] ns and
 * delete entries idle for args[1] ns.  Run by userspace with
 * BPF_F_TEST_RUN_ON_CPU on each CPU. */
struct flush_ctx {
	void *ring;
	struct fp_cpu_state *st;
	__u64 now;
	__u64 age;
	__u64 idle;
	__u32 cpu;
};

static long flush_one(void *map, struct fp_key *key, struct fp_batch *b, struct flush_ctx *fc)
{
	if (key->cpu != fc->cpu)
		return 0;
	if (b->n && fc->now - b->ts0 >= fc->age)
		submit_batch(fc->ring, key, b, fc->st);
	if (!b->n && fc->now - b->last >= fc->idle)
		bpf_map_delete_elem(map, key);
	return 0;
}

SEC("raw_tp")
int fp_flush(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	struct fp_cpu_state *st = bpf_map_lookup_elem(&cpu_state, &zero);
	struct flush_ctx fc;

	if (!st)
		return 0;
	/* We interrupted a datapath program on this CPU: retry later. */
	if (st->busy)
		return 1;
	fc.ring = cpu_ring();
	if (!fc.ring)
		return 0;
	fc.st = st;
	fc.now = bpf_ktime_get_ns();
	fc.age = ctx->args[0];
	fc.idle = ctx->args[1];
	fc.cpu = bpf_get_smp_processor_id();
	st->flushing = 1;
	bpf_for_each_map_elem(&batches, flush_one, &fc, 0);
	st->flushing = 0;
	return 0;
}
