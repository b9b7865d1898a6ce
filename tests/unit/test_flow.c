// SPDX-License-Identifier: MIT
/* test_flow.c - flow table, blocks and FlowPic binning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow.h"
#include "core/flowpic.h"

#define SEC NS_PER_SEC
#define T0 (1500000000ULL * SEC) /* an arbitrary capture start */
#define MAX_SEEN 64

struct seen_block {
	uint64_t flow_id;
	struct block b;
	uint8_t pic[32 * 32]; /* drawn at res <= 32 */
	uint8_t fwd[32 * 32];
	uint32_t big_y0x0; /* pic[0][0] for res > 32 */
};

struct seen {
	struct seen_block blocks[MAX_SEEN];
	int nblocks;
	uint64_t ended[MAX_SEEN];
	enum flow_end_reason why[MAX_SEEN];
	struct flow flows[MAX_SEEN];
	int nflows;
};

static void on_block(void *ctx, const struct flow_table *ft, const struct flow *f,
		     const struct block *b)
{
	struct seen *s = ctx;
	struct seen_block *sb = &s->blocks[s->nblocks++];
	uint32_t res = flow_table_config(ft)->res;

	assert_true(s->nblocks <= MAX_SEEN);
	sb->flow_id = f->id;
	sb->b = *b;
	if (res <= 32) {
		flowpic_draw(ft, b, PIC_BOTH, sb->pic);
		flowpic_draw(ft, b, PIC_FWD, sb->fwd);
	} else {
		uint8_t *big = malloc((size_t)res * res);

		assert_non_null(big);
		flowpic_draw(ft, b, PIC_BOTH, big);
		sb->big_y0x0 = big[0];
		free(big);
	}
}

static void on_end(void *ctx, const struct flow_table *ft, const struct flow *f,
		   enum flow_end_reason why)
{
	struct seen *s = ctx;

	(void)ft;
	assert_true(s->nflows < MAX_SEEN);
	s->ended[s->nflows] = f->id;
	s->why[s->nflows] = why;
	s->flows[s->nflows++] = *f;
}

static struct flow_table *table(struct seen *s, uint32_t res, uint32_t max_flows,
				uint32_t max_cells)
{
	struct flow_events ev = { on_block, on_end, s };
	struct flow_config cfg;
	struct flow_table *ft;

	memset(s, 0, sizeof(*s));
	flow_config_default(&cfg);
	cfg.res = res;
	cfg.max_flows = max_flows;
	cfg.max_cells = max_cells;
	ft = flow_table_new(&cfg, &ev);
	assert_non_null(ft);
	return ft;
}

/* A TCP packet 10.0.0.a:pa -> 10.0.0.b:pb. */
static struct pkt mk(uint64_t ts, uint8_t a, uint16_t pa, uint8_t b, uint16_t pb, uint32_t size)
{
	struct pkt p = { 0 };

	p.ts_ns = ts;
	p.src[10] = p.src[11] = p.dst[10] = p.dst[11] = 0xff;
	p.src[12] = p.dst[12] = 10;
	p.src[15] = a;
	p.dst[15] = b;
	p.sport = pa;
	p.dport = pb;
	p.proto = 6;
	p.tcp_flags = 0x10;
	p.size = size;
	p.ip_len = size + 40;
	return p;
}

static void add(struct flow_table *ft, struct pkt p)
{
	assert_int_equal(flow_table_add(ft, &p), SKIP_NONE);
}

static void test_bidirectional_session(void **state)
{
	struct seen s;
	struct flow_table *ft = table(&s, 32, 16, 1 << 12);

	(void)state;
	add(ft, mk(T0, 1, 1000, 2, 80, 0));
	add(ft, mk(T0 + 1, 2, 80, 1, 1000, 500));
	add(ft, mk(T0 + 2, 1, 1000, 2, 80, 0));
	add(ft, mk(T0 + 3, 1, 1001, 2, 80, 0)); /* another port: another flow */
	flow_table_flush(ft);
	assert_int_equal(s.nflows, 2);
	assert_int_equal(s.flows[0].id, 1);
	assert_int_equal(s.flows[0].key.port_a, 1000);
	assert_int_equal(s.flows[0].packets[FLOW_DIR_FWD], 2);
	assert_int_equal(s.flows[0].packets[FLOW_DIR_REV], 1);
	assert_int_equal(s.flows[0].ip_bytes[FLOW_DIR_REV], 540);
	assert_int_equal(s.flows[0].payload[FLOW_DIR_REV], 500);
	assert_int_equal(s.why[0], FLOW_END_INPUT);
	/* FWD picture holds the initiator's two packets, BOTH all three. */
	assert_int_equal(s.blocks[0].fwd[0], 2);
	assert_int_equal(s.blocks[0].pic[0], 2);
	assert_int_equal(s.blocks[0].pic[flowpic_ybin(500, 32) * 32], 1);
	flow_table_free(ft);
}

static void test_syn_ack_first_names_initiator(void **state)
{
	struct seen s;
	struct flow_table *ft = table(&s, 32, 16, 1 << 12);
	struct pkt p = mk(T0, 2, 443, 1, 5555, 0);

	(void)state;
	p.tcp_flags = 0x12;
	add(ft, p);
	add(ft, mk(T0 + 1, 1, 5555, 2, 443, 0));
	flow_table_flush(ft);
	assert_int_equal(s.flows[0].key.port_a, 5555);
	assert_int_equal(s.flows[0].key.a[15], 1);
	assert_int_equal(s.flows[0].packets[FLOW_DIR_FWD], 1);
	assert_int_equal(s.flows[0].packets[FLOW_DIR_REV], 1);
	flow_table_free(ft);
}

/* A TSO/GRO super-packet is counted as the wire segments the flow's SYNs
 * allow: full segments and the remainder, at its time, in the picture too. */
static void test_super_packet_split_by_syn_segment(void **state)
{
	struct seen s;
	struct flow_table *ft = table(&s, 32, 16, 1 << 12);
	struct pkt syn = mk(T0, 1, 5555, 2, 443, 0), synack = mk(T0 + 1, 2, 443, 1, 5555, 0);
	struct pkt big = mk(T0 + 2, 2, 443, 1, 5555, 10000);
	uint32_t i, drawn = 0;

	(void)state;
	syn.tcp_flags = 0x02, syn.tcp_mss = 1460, syn.tcp_ts = 1;
	synack.tcp_flags = 0x12, synack.tcp_mss = 1500, synack.tcp_ts = 1;
	add(ft, syn);
	add(ft, synack);
	add(ft, big);				    /* 6 x 1448 + 1312 */
	add(ft, mk(T0 + 3, 2, 443, 1, 5555, 1448)); /* one segment: as it is */
	flow_table_flush(ft);
	assert_int_equal(flow_tcp_segment(&s.flows[0]), 1448);
	assert_int_equal(s.flows[0].packets[FLOW_DIR_REV], 1 + 7 + 1);
	assert_int_equal(s.flows[0].payload[FLOW_DIR_REV], 10000 + 1448);
	assert_int_equal(s.flows[0].ip_bytes[FLOW_DIR_REV], 40 + 7 * 40 + 10000 + 40 + 1448);
	assert_int_equal(s.flows[0].oversize, 0);
	assert_int_equal(flow_table_stats(ft)->super_packets, 1);
	assert_int_equal(flow_table_stats(ft)->super_segments, 7);
	assert_int_equal(flow_table_stats(ft)->packets, 4);
	for (i = 0; i < 32 * 32; i++)
		drawn += s.blocks[0].pic[i];
	assert_int_equal(drawn, 2 + 7 + 1);
	flow_table_free(ft);
}

/* Without an announced segment size a big record stays one oversize packet. */
/* The segment size: the smaller MSS, less 12 when the SYN-ACK answers the
 * SYN's timestamp offer (the SYN alone when no SYN-ACK was captured). */
static void test_tcp_segment_rules(void **state)
{
	struct flow f;

	(void)state;
	memset(&f, 0, sizeof(f));
	assert_int_equal(flow_tcp_segment(&f), 0);
	f.tcp_mss = 1460;
	assert_int_equal(flow_tcp_segment(&f), 1460);
	f.tcp_syn = FLOW_SYN_TS;
	assert_int_equal(flow_tcp_segment(&f), 1448);
	f.tcp_syn = FLOW_SYN_TS | FLOW_SYNACK_SEEN; /* offer declined */
	assert_int_equal(flow_tcp_segment(&f), 1460);
	f.tcp_syn = FLOW_SYN_TS | FLOW_SYNACK_SEEN | FLOW_SYNACK_TS;
	assert_int_equal(flow_tcp_segment(&f), 1448);
	f.tcp_syn = FLOW_SYNACK_SEEN | FLOW_SYNACK_TS; /* SYN's option cut by the snap length */
	assert_int_equal(flow_tcp_segment(&f), 1448);
}

static void test_super_packet_without_syn_is_oversize(void **state)
{
	struct seen s;
	struct flow_table *ft = table(&s, 32, 16, 1 << 12);

	(void)state;
	add(ft, mk(T0, 2, 443, 1, 5555, 10000));
	flow_table_flush(ft);
	assert_int_equal(s.flows[0].packets[FLOW_DIR_FWD], 1);
	assert_int_equal(s.flows[0].oversize, 1);
	assert_int_equal(flow_table_stats(ft)->super_packets, 0);
	flow_table_free(ft);
}

static void test_idle_timeout_splits(void **state)
{
	struct seen s;
	struct flow_table *ft = table(&s, 32, 16, 1 << 12);

	(void)state;
	add(ft, mk(T0, 1, 1, 2, 2, 10));
	add(ft, mk(T0 + 120 * SEC, 1, 1, 2, 2, 10));	 /* exactly the timeout: same flow */
	add(ft, mk(T0 + 240 * SEC + 1, 2, 2, 1, 1, 10)); /* 1 ns more: a new flow */
	flow_table_flush(ft);
	assert_int_equal(s.nflows, 2);
	assert_int_equal(s.ended[0], 1);
	assert_int_equal(s.why[0], FLOW_END_IDLE);
	assert_int_equal(s.flows[0].packets[0], 2);
	assert_int_equal(s.flows[1].id, 2);
	/* The new flow's initiator is the new first sender. */
	assert_int_equal(s.flows[1].key.a[15], 2);
	flow_table_free(ft);
}

static void test_table_bound_refuses_and_counts(void **state)
{
	struct seen s;
	struct flow_table *ft = table(&s, 32, 2, 1 << 12);
	struct pkt p = mk(T0, 1, 3, 2, 3, 0);

	(void)state;
	add(ft, mk(T0, 1, 1, 2, 1, 0));
	add(ft, mk(T0, 1, 2, 2, 2, 0));
	assert_int_equal(flow_table_add(ft, &p), SKIP_FLOW_TABLE_FULL);
	assert_int_equal(flow_table_stats(ft)->flows_refused, 1);
	/* Once the first two are idle, room again. */
	p.ts_ns = T0 + 121 * SEC;
	assert_int_equal(flow_table_add(ft, &p), SKIP_NONE);
	assert_int_equal(flow_table_stats(ft)->flows_active, 1);
	flow_table_flush(ft);
	assert_int_equal(flow_table_stats(ft)->flows, 3);
	flow_table_free(ft);
}

static void test_block_edges_and_completeness(void **state)
{
	struct seen s;
	struct flow_table *ft = table(&s, 32, 16, 1 << 12);

	(void)state;
	add(ft, mk(T0, 1, 1, 2, 2, 100));
	add(ft, mk(T0 + 60 * SEC - 1, 1, 1, 2, 2, 100)); /* last ns of block 0 */
	add(ft, mk(T0 + 60 * SEC, 1, 1, 2, 2, 100));	 /* first of block 1 */
	add(ft, mk(T0 + 100 * SEC, 1, 1, 2, 2, 100));
	add(ft, mk(T0 + 200 * SEC, 1, 1, 2, 2, 100)); /* block 3; block 2 empty */
	flow_table_flush(ft);
	assert_int_equal(s.nblocks, 3);
	assert_int_equal(s.blocks[0].b.index, 0);
	assert_int_equal(block_samples(&s.blocks[0].b), 2);
	assert_true(s.blocks[0].b.complete);
	assert_int_equal(s.blocks[0].pic[2 * 32 + 0], 1);
	assert_int_equal(s.blocks[0].pic[2 * 32 + 31], 1);
	assert_int_equal(s.blocks[1].b.index, 1);
	assert_int_equal(block_samples(&s.blocks[1].b), 2);
	assert_int_equal(s.blocks[1].b.start_ns, T0 + 60 * SEC);
	assert_true(s.blocks[1].b.complete);
	assert_int_equal(s.blocks[2].b.index, 3);
	assert_false(s.blocks[2].b.complete); /* input ended 20 s into it */
	assert_int_equal(s.flows[0].blocks, 3);
	flow_table_free(ft);
}

static void test_bin_edges(void **state)
{
	struct seen s;
	struct flow_table *ft = table(&s, 32, 16, 1 << 12);

	(void)state;
	/* 60 s / 32 = 1.875 s per column; 1500 B / 32 = 46.875 B per row. */
	assert_int_equal(flowpic_xbin(1875000000ULL - 1, 60 * SEC, 32), 0);
	assert_int_equal(flowpic_xbin(1875000000ULL, 60 * SEC, 32), 1);
	assert_int_equal(flowpic_xbin(60 * SEC - 1, 60 * SEC, 32), 31);
	assert_int_equal(flowpic_ybin(46, 32), 0);
	assert_int_equal(flowpic_ybin(47, 32), 1);
	assert_int_equal(flowpic_ybin(1499, 32), 31);
	assert_int_equal(flowpic_ybin(1499, 1500), 1499);
	add(ft, mk(T0, 1, 1, 2, 2, 46));
	add(ft, mk(T0 + 1875000000ULL, 1, 1, 2, 2, 47));
	add(ft, mk(T0 + 1875000001ULL, 1, 1, 2, 2, 1499));
	add(ft, mk(T0 + 1875000002ULL, 1, 1, 2, 2, 1500)); /* over: counted, not drawn */
	add(ft, mk(T0 + 1875000003ULL, 1, 1, 2, 2, 9000));
	flow_table_flush(ft);
	assert_int_equal(s.blocks[0].pic[0 * 32 + 0], 1);
	assert_int_equal(s.blocks[0].pic[1 * 32 + 1], 1);
	assert_int_equal(s.blocks[0].pic[31 * 32 + 1], 1);
	assert_int_equal(block_samples(&s.blocks[0].b), 3);
	assert_int_equal(s.flows[0].oversize, 2);
	assert_int_equal(s.flows[0].packets[0], 5);
	assert_int_equal(flow_table_stats(ft)->oversize, 2);
	flow_table_free(ft);
}

static void test_saturation_across_chunks(void **state)
{
	struct seen s;
	struct flow_table *ft = table(&s, 1500, 16, 1 << 12);
	uint32_t i;

	(void)state;
	/* 200 packets in cell (0, 0), then 40 other sizes in the same column
	 * (filling more than one chunk), then 200 more in (0, 0): the cell is
	 * stored twice and must read back as min(400, 255). */
	for (i = 0; i < 200; i++)
		add(ft, mk(T0 + i, 1, 1, 2, 2, 0));
	for (i = 1; i <= 40; i++)
		add(ft, mk(T0 + 200 + i, 1, 1, 2, 2, i));
	for (i = 0; i < 200; i++)
		add(ft, mk(T0 + 300 + i, 1, 1, 2, 2, 0));
	flow_table_flush(ft);
	assert_int_equal(s.blocks[0].big_y0x0, 255);
	assert_int_equal(block_samples(&s.blocks[0].b), 440);
	flow_table_free(ft);
}

static void test_overlapping_blocks(void **state)
{
	struct flow_events ev = { on_block, on_end, NULL };
	struct flow_config cfg;
	struct flow_table *ft;
	struct seen s;

	(void)state;
	memset(&s, 0, sizeof(s));
	ev.ctx = &s;
	flow_config_default(&cfg);
	cfg.hop_ns = 30 * SEC;
	ft = flow_table_new(&cfg, &ev);
	assert_non_null(ft);
	add(ft, mk(T0, 1, 1, 2, 2, 0));
	add(ft, mk(T0 + 45 * SEC, 1, 1, 2, 2, 0));
	add(ft, mk(T0 + 95 * SEC, 1, 1, 2, 2, 0));
	flow_table_flush(ft);
	/* Blocks 0 [0,60), 1 [30,90), 2 [60,120), 3 [90,150). */
	assert_int_equal(s.nblocks, 4);
	assert_int_equal(s.blocks[0].b.index, 0);
	assert_int_equal(block_samples(&s.blocks[0].b), 2);
	assert_int_equal(s.blocks[0].pic[45 * 32 / 60], 1);
	assert_int_equal(s.blocks[1].b.index, 1);
	assert_int_equal(s.blocks[1].pic[15 * 32 / 60], 1);
	assert_int_equal(s.blocks[2].b.index, 2);
	assert_int_equal(block_samples(&s.blocks[2].b), 1);
	assert_int_equal(s.blocks[3].b.index, 3);
	assert_int_equal(s.blocks[3].pic[5 * 32 / 60], 1);
	flow_table_free(ft);
}

/* Live: flow_table_advance() hands out a block once its window has passed,
 * without a packet; a packet timed inside that block that arrives afterwards
 * is counted late, and later packets go into the next block as usual. */
static void test_advance_closes_due_blocks(void **state)
{
	struct flow_events ev = { on_block, on_end, NULL };
	struct flow_config cfg;
	struct flow_table *ft;
	struct seen s;
	int i;

	(void)state;
	memset(&s, 0, sizeof(s));
	ev.ctx = &s;
	flow_config_default(&cfg);
	cfg.idle_timeout_ns = 300 * SEC;
	ft = flow_table_new(&cfg, &ev);
	assert_non_null(ft);
	for (i = 0; i < 50; i++)
		add(ft, mk(T0 + (uint64_t)i * SEC / 50, 1, 1, 2, 2, 100));
	flow_table_advance(ft, T0 + 59 * SEC);
	assert_int_equal(s.nblocks, 0);
	flow_table_advance(ft, T0 + 61 * SEC);
	assert_int_equal(s.nblocks, 1);
	assert_true(s.blocks[0].b.complete);
	assert_int_equal(block_samples(&s.blocks[0].b), 50);
	assert_int_equal(s.nflows, 0);
	/* Captured at 59.5 s, read after the block closed: late, not drawn. */
	add(ft, mk(T0 + 59 * SEC + SEC / 2, 1, 1, 2, 2, 100));
	assert_int_equal(flow_table_stats(ft)->samples_late, 1);
	add(ft, mk(T0 + 62 * SEC, 1, 1, 2, 2, 100));
	add(ft, mk(T0 + 63 * SEC, 2, 2, 1, 1, 100));
	flow_table_flush(ft);
	assert_int_equal(s.nblocks, 2);
	assert_int_equal(s.blocks[1].b.index, 1);
	assert_int_equal(block_samples(&s.blocks[1].b), 2);
	assert_false(s.blocks[1].b.complete);
	assert_int_equal(flow_table_stats(ft)->samples, 52);
	assert_int_equal(s.flows[0].packets[0] + s.flows[0].packets[1], 53);
	flow_table_free(ft);
}

static void test_cell_pool_bound(void **state)
{
	struct seen s;
	struct flow_table *ft = table(&s, 32, 16, CELL_CHUNK_CELLS);
	uint32_t i;

	(void)state;
	/* 31 distinct cells: one chunk holds 30. */
	for (i = 0; i < 31; i++)
		add(ft, mk(T0 + i * 1875000000ULL, 1, 1, 2, 2, 0));
	flow_table_flush(ft);
	assert_int_equal(flow_table_stats(ft)->cells_refused, 1);
	assert_int_equal(s.flows[0].cells_refused, 1);
	assert_int_equal(block_samples(&s.blocks[0].b), 30);
	assert_int_equal(s.blocks[0].b.cells_refused, 1);
	flow_table_free(ft);
}

static void test_reordered_time_is_clamped(void **state)
{
	struct seen s;
	struct flow_table *ft = table(&s, 32, 16, 1 << 12);

	(void)state;
	add(ft, mk(T0, 1, 1, 2, 2, 0));
	add(ft, mk(T0 + 10 * SEC, 1, 1, 2, 2, 0));
	add(ft, mk(T0 + 5 * SEC, 1, 1, 2, 2, 0)); /* late: drawn at 10 s */
	flow_table_flush(ft);
	assert_int_equal(s.flows[0].reordered, 1);
	assert_int_equal(s.blocks[0].pic[10 * 32 / 60], 2);
	flow_table_free(ft);
}

/* Many flows coming and going: the table must agree with a brute-force list. */
static void test_table_against_reference(void **state)
{
	enum { N = 300, STEPS = 20000 };
	struct seen s;
	struct flow_table *ft;
	uint64_t last[N] = { 0 };
	uint64_t flows = 0;
	unsigned seed = 12345;
	int i;

	(void)state;
	ft = table(&s, 32, N, 1 << 16);
	s.nflows = 0;
	for (i = 0; i < STEPS; i++) {
		int k = (int)(rand_r(&seed) % N);
		uint64_t now = T0 + (uint64_t)i * 50 * 1000000ULL; /* 50 ms steps */
		struct pkt p = mk(now, (uint8_t)(k % 7), (uint16_t)k, 200, 80, 10);

		if (rand_r(&seed) % 2) { /* either direction */
			p = mk(now, 200, 80, (uint8_t)(k % 7), (uint16_t)k, 10);
		}
		/* Reference: a flow is new when unseen or idle > 120 s. */
		if (!last[k] || now > last[k] + 120 * SEC)
			flows++;
		last[k] = now;
		add(ft, p);
		s.nflows = 0; /* only counts matter here */
		s.nblocks = 0;
	}
	assert_int_equal(flow_table_stats(ft)->flows, flows);
	flow_table_free(ft);
}

static struct flow_table *aug_table(struct seen *s, struct flow_augment aug)
{
	struct flow_events ev = { on_block, on_end, s };
	struct flow_config cfg;
	struct flow_table *ft;

	memset(s, 0, sizeof(*s));
	flow_config_default(&cfg);
	cfg.aug = aug;
	ft = flow_table_new(&cfg, &ev);
	assert_non_null(ft);
	return ft;
}

static void test_augment_time_scale_and_shift(void **state)
{
	struct flow_augment scale = { .seed = 7, .scale_min = 2000, .scale_max = 2000 };
	struct flow_augment shift = { .seed = 7, .shift_ns = 30 * SEC };
	struct flow_table *ft;
	struct seen s;
	uint64_t x;

	(void)state;
	/* x2 ("change RTT"): a packet 10 s into the flow is drawn at 20 s. */
	ft = aug_table(&s, scale);
	add(ft, mk(T0, 1, 1, 2, 2, 0));
	add(ft, mk(T0 + 10 * SEC, 1, 1, 2, 2, 0));
	flow_table_flush(ft);
	assert_int_equal(s.blocks[0].pic[0], 1);
	assert_int_equal(s.blocks[0].pic[20 * 32 / 60], 1);
	assert_int_equal(s.flows[0].aug_scale, 2000);
	flow_table_free(ft);
	/* A shift moves the whole flow right by this flow's draw, below 30 s. */
	ft = aug_table(&s, shift);
	add(ft, mk(T0, 1, 1, 2, 2, 0));
	flow_table_flush(ft);
	assert_true(s.flows[0].aug_shift_ns < 30 * SEC);
	x = s.flows[0].aug_shift_ns * 32 / (60 * SEC);
	assert_int_equal(s.blocks[0].pic[x], 1);
	flow_table_free(ft);
}

static void test_augment_drop_is_counted_and_reproducible(void **state)
{
	struct flow_augment drop = { .seed = 3, .drop_ppm = 250000 };
	uint64_t samples[2];
	struct flow_table *ft;
	struct seen s;
	int run, i;

	(void)state;
	for (run = 0; run < 2; run++) {
		ft = aug_table(&s, drop);
		for (i = 0; i < 4000; i++)
			add(ft, mk(T0 + (uint64_t)i * 1000000, 1, 1, 2, 2, 100));
		flow_table_flush(ft);
		samples[run] = flow_table_stats(ft)->samples;
		assert_int_equal(samples[run] + flow_table_stats(ft)->aug_dropped, 4000);
		/* 25 % dropped: 1000 expected, sd ~27 */
		assert_in_range(flow_table_stats(ft)->aug_dropped, 850, 1150);
		flow_table_free(ft);
	}
	assert_int_equal(samples[0], samples[1]);
}

static void test_augment_mss_recuts_tcp_payload(void **state)
{
	struct flow_augment mss = { .seed = 5, .mss_min = 1000, .mss_max = 1000 };
	struct flow_table *ft;
	struct seen s;
	struct pkt u;
	int i;

	(void)state;
	ft = aug_table(&s, mss);
	/* Three full 1448-byte segments re-cut at 1000: 1000 (448 carried),
	 * 1000 (896), 1000 + 1000 (344); the 100-byte segment ends the write
	 * and takes the carry: 444.  Bytes are kept, segments are 5. */
	for (i = 0; i < 3; i++)
		add(ft, mk(T0 + (uint64_t)i * 4 * SEC, 1, 1, 2, 2, 1448));
	add(ft, mk(T0 + 12 * SEC, 1, 1, 2, 2, 100));
	/* UDP is not re-cut. */
	u = mk(T0, 1, 7, 2, 7, 1448);
	u.proto = 17;
	add(ft, u);
	flow_table_flush(ft);
	assert_int_equal(s.nflows, 2);
	assert_int_equal(s.flows[0].aug_mss, 1000);
	assert_int_equal(s.flows[0].payload[0], 4444);
	assert_int_equal(s.flows[1].aug_mss, 0);
	assert_int_equal(flow_table_stats(ft)->samples, 6);
	/* 4 s apart, time bins of 60/32 s: 0, 2, 4 (two segments), 6 */
	assert_int_equal(s.blocks[0].pic[flowpic_ybin(1000, 32) * 32 + 0], 1);
	assert_int_equal(s.blocks[0].pic[flowpic_ybin(1000, 32) * 32 + 2], 1);
	assert_int_equal(s.blocks[0].pic[flowpic_ybin(1000, 32) * 32 + 4], 2);
	assert_int_equal(s.blocks[0].pic[flowpic_ybin(444, 32) * 32 + 6], 1);
	flow_table_free(ft);
}

static void test_augment_size_jitter_stays_in_range(void **state)
{
	struct flow_augment jitter = { .seed = 9, .size_jitter = 20 };
	uint32_t lo = flowpic_ybin(480, 32), hi = flowpic_ybin(520, 32), y, x, in = 0, out = 0;
	struct flow_table *ft;
	struct seen s;
	int i;

	(void)state;
	ft = aug_table(&s, jitter);
	for (i = 0; i < 200; i++)
		add(ft, mk(T0 + (uint64_t)i * (SEC / 4), 1, 1, 2, 2, 500));
	flow_table_flush(ft);
	for (y = 0; y < 32; y++)
		for (x = 0; x < 32; x++)
			*(y >= lo && y <= hi ? &in : &out) += s.blocks[0].pic[y * 32 + x];
	assert_int_equal(in, 200);
	assert_int_equal(out, 0);
	/* 500 +- 20 straddles two size bins: both are drawn. */
	assert_true(lo < hi);
	for (x = 0, in = 0; x < 32; x++)
		in += s.blocks[0].pic[lo * 32 + x] ? 1 : 0;
	assert_true(in > 0 && in < 32);
	flow_table_free(ft);
}

static void test_block_index_beyond_32_bits(void **state)
{
	struct flow_events ev = { on_block, on_end, NULL };
	struct flow_config cfg;
	struct flow_table *ft;
	struct seen s;

	(void)state;
	memset(&s, 0, sizeof(s));
	ev.ctx = &s;
	flow_config_default(&cfg);
	cfg.window_ns = cfg.hop_ns = 1000; /* 1 us blocks */
	cfg.idle_timeout_ns = 4000 * SEC;
	ft = flow_table_new(&cfg, &ev);
	assert_non_null(ft);
	add(ft, mk(T0, 1, 1, 2, 2, 0));
	add(ft, mk(T0 + 3000 * SEC + 999, 1, 1, 2, 2, 0)); /* block 3e9, last ns of it */
	add(ft, mk(T0 + 6000 * SEC + 500, 1, 1, 2, 2, 0)); /* block 6e9 > 2^32 */
	flow_table_flush(ft);
	assert_int_equal(s.nblocks, 3);
	assert_int_equal(s.blocks[1].b.index, 3000000000ULL);
	assert_int_equal(s.blocks[1].pic[31], 1); /* x = 999 * 32 / 1000 */
	assert_int_equal(s.blocks[2].b.index, 6000000000ULL);
	assert_int_equal(s.blocks[2].pic[16], 1);
	flow_table_free(ft);
}

static void test_complete_in_flow_time(void **state)
{
	struct flow_augment half = { .seed = 1, .scale_min = 500, .scale_max = 500 };
	struct flow_table *ft;
	struct seen s;
	int i;

	(void)state;
	/* 100 s of capture at half speed is 50 s of flow time: block 0 is partial. */
	ft = aug_table(&s, half);
	for (i = 0; i <= 100; i++)
		add(ft, mk(T0 + (uint64_t)i * SEC, 1, 1, 2, 2, 0));
	flow_table_flush(ft);
	assert_int_equal(s.nblocks, 1);
	assert_false(s.blocks[0].b.complete);
	flow_table_free(ft);
}

static void test_out_of_order_flows_still_expire(void **state)
{
	struct seen s;
	struct flow_table *ft = table(&s, 32, 16, 1 << 12);

	(void)state;
	add(ft, mk(T0, 1, 1, 2, 2, 0));		    /* A */
	add(ft, mk(T0 + 60 * SEC, 1, 3, 2, 3, 0));  /* B */
	add(ft, mk(T0 + 50 * SEC, 1, 1, 2, 2, 0));  /* A again, older than B */
	add(ft, mk(T0 + 171 * SEC, 1, 4, 2, 4, 0)); /* C: A has been idle 121 s */
	assert_int_equal(s.nflows, 1);
	assert_int_equal(s.ended[0], 1);
	assert_int_equal(s.why[0], FLOW_END_IDLE);
	flow_table_flush(ft);
	flow_table_free(ft);
}

static void test_all_refused_block_not_emitted(void **state)
{
	struct seen s;
	struct flow_table *ft = table(&s, 32, 16, CELL_CHUNK_CELLS);
	uint32_t i;

	(void)state;
	/* Flow 1 takes the only chunk; flow 2 gets no cell at all. */
	add(ft, mk(T0, 1, 1, 2, 2, 0));
	add(ft, mk(T0 + 1, 1, 9, 2, 9, 0));
	for (i = 1; i < 32; i++) /* all within block 0 */
		add(ft, mk(T0 + i * 1875000000ULL, 1, 1, 2, 2, 0));
	flow_table_flush(ft);
	assert_int_equal(flow_table_stats(ft)->blocks, 1);
	assert_int_equal(flow_table_stats(ft)->blocks_empty, 1);
	assert_int_equal(s.nblocks, 1);
	assert_int_equal(s.blocks[0].flow_id, 1);
	flow_table_free(ft);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bidirectional_session),
		cmocka_unit_test(test_syn_ack_first_names_initiator),
		cmocka_unit_test(test_super_packet_split_by_syn_segment),
		cmocka_unit_test(test_super_packet_without_syn_is_oversize),
		cmocka_unit_test(test_tcp_segment_rules),
		cmocka_unit_test(test_idle_timeout_splits),
		cmocka_unit_test(test_table_bound_refuses_and_counts),
		cmocka_unit_test(test_block_edges_and_completeness),
		cmocka_unit_test(test_bin_edges),
		cmocka_unit_test(test_saturation_across_chunks),
		cmocka_unit_test(test_overlapping_blocks),
		cmocka_unit_test(test_advance_closes_due_blocks),
		cmocka_unit_test(test_cell_pool_bound),
		cmocka_unit_test(test_reordered_time_is_clamped),
		cmocka_unit_test(test_table_against_reference),
		cmocka_unit_test(test_augment_time_scale_and_shift),
		cmocka_unit_test(test_augment_drop_is_counted_and_reproducible),
		cmocka_unit_test(test_augment_mss_recuts_tcp_payload),
		cmocka_unit_test(test_augment_size_jitter_stays_in_range),
		cmocka_unit_test(test_block_index_beyond_32_bits),
		cmocka_unit_test(test_complete_in_flow_time),
		cmocka_unit_test(test_out_of_order_flows_still_expire),
		cmocka_unit_test(test_all_refused_block_not_emitted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
