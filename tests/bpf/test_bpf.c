// SPDX-License-Identifier: MIT
/*
 * test_bpf.c - the capture programs on crafted frames (bpf_prog_test_run_opts):
 * XDP and TC, both designs.  The verdict is always pass; the packets decoded
 * from the rings and the counters are exactly the expected ones.  Needs root
 * (CAP_BPF + CAP_PERFMON): fails, not skips, without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sched.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "bpf_harness.h"
#include "tests/unit/frames.h"

#define XDP_PASS_ 2
#define TC_ACT_OK_ 0

static enum capture_design design_of(void **state)
{
	return (enum capture_design)(long)*state;
}

static struct harness *h_new(void **state, uint32_t ring, uint32_t flows)
{
	struct harness *h = calloc(1, sizeof(*h));

	assert_non_null(h);
	h->c = h_open(design_of(state), ring, flows);
	assert_non_null(h->c);
	return h;
}

static void h_free(struct harness *h)
{
	capture_close(h->c);
	free(h);
}

static uint64_t now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Ethernet (+ vlans) + IPv4 + TCP (doff words) with payload bytes present. */
static void v4_tcp(struct frame *f, int vlans, uint16_t payload, int doff, uint8_t flags,
		   uint16_t sport)
{
	eth(f, 0x0800, vlans);
	ipv4(f, 6, (uint16_t)(20 + doff * 4 + payload), 0, 0);
	tcp(f, sport, 443, flags, doff);
	putn(f, 0xab, payload);
}

static void v4_udp(struct frame *f, int vlans, uint16_t payload)
{
	eth(f, 0x0800, vlans);
	ipv4(f, 17, (uint16_t)(20 + 8 + payload), 0, 0);
	udp(f, 5004, 5006, (uint16_t)(8 + payload));
	putn(f, 0xcd, payload);
}

/* Expect exactly one packet from one XDP run of f. */
static struct got *one_xdp(struct harness *h, const struct frame *f)
{
	h->n = 0;
	assert_int_equal(h_run(h, 0, f->b, f->len, 0, 0), XDP_PASS_);
	assert_true(h_drain(h) >= 0);
	assert_int_equal(h->n, 1);
	return &h->pkts[0];
}

static void test_ipv4_tcp(void **state)
{
	struct harness *h = h_new(state, 0, 0);
	struct frame f = { 0 };
	uint64_t t0 = now_real();
	struct got *g;

	v4_tcp(&f, 0, 100, 8, 0x18, 40000);
	g = one_xdp(h, &f);
	assert_int_equal(g->p.proto, 6);
	assert_int_equal(g->p.size, 100);
	assert_int_equal(g->p.ip_len, 20 + 32 + 100);
	assert_int_equal(g->p.sport, 40000);
	assert_int_equal(g->p.dport, 443);
	assert_int_equal(g->p.tcp_flags, 0x18);
	assert_true(pkt_addr_is_v4(g->p.src));
	assert_int_equal(g->p.src[15], 1);
	assert_int_equal(g->p.dst[15], 2);
	assert_int_equal(g->dir, CAPTURE_INGRESS);
	/* Monotonic BPF time converted to the wall clock. */
	assert_true(g->p.ts_ns + 1000000000ULL > t0 && g->p.ts_ns < now_real() + 1000000000ULL);
	assert_int_equal(h_counter(h, CAPTURE_C_TCP), 1);
	assert_int_equal(h_counter(h, CAPTURE_C_INGRESS), 1);
	h_free(h);
}

static void test_vlan_qinq_udp(void **state)
{
	struct harness *h = h_new(state, 0, 0);
	struct frame f1 = { 0 }, f2 = { 0 }, f4 = { 0 }, f5 = { 0 };

	v4_udp(&f1, 1, 172);
	assert_int_equal(one_xdp(h, &f1)->p.size, 172);
	v4_udp(&f2, 2, 0);
	assert_int_equal(one_xdp(h, &f2)->p.size, 0);
	assert_int_equal(h->pkts[0].p.ip_len, 28);
	v4_udp(&f4, 4, 9);
	assert_int_equal(one_xdp(h, &f4)->p.size, 9);
	/* Five tags: past the bound, as core/parse.c: not IP. */
	v4_udp(&f5, 5, 9);
	h->n = 0;
	assert_int_equal(h_run(h, 0, f5.b, f5.len, 0, 0), XDP_PASS_);
	assert_int_equal(h_drain(h), 0);
	assert_int_equal(h_counter(h, CAPTURE_C_NOT_IP), 1);
	assert_int_equal(h_counter(h, CAPTURE_C_UDP), 3);
	h_free(h);
}

static void test_ipv6_ext_headers(void **state)
{
	struct harness *h = h_new(state, 0, 0);
	struct frame f = { 0 }, g = { 0 }, a = { 0 };
	struct got *p;

	/* hop-by-hop (8) + destination options (16) + TCP (20) + 50. */
	eth(&f, 0x86dd, 0);
	ipv6(&f, 0, 8 + 16 + 20 + 50);
	put8(&f, 60);
	put8(&f, 0);
	putn(&f, 0, 6);
	put8(&f, 6);
	put8(&f, 1);
	putn(&f, 0, 14);
	tcp(&f, 1234, 80, 0x10, 5);
	putn(&f, 1, 50);
	p = one_xdp(h, &f);
	assert_int_equal(p->p.size, 50);
	assert_int_equal(p->p.ip_len, 40 + 8 + 16 + 20 + 50);
	assert_false(pkt_addr_is_v4(p->p.src));
	assert_int_equal(p->p.src[0], 0x20);
	assert_int_equal(p->p.dst[15], 2);

	/* Atomic fragment header (offset 0, M 0) then UDP: a whole packet. */
	eth(&g, 0x86dd, 0);
	ipv6(&g, 44, 8 + 8 + 30);
	put8(&g, 17);
	put8(&g, 0);
	put16(&g, 0);
	put32(&g, 7);
	udp(&g, 53, 5353, 8 + 30);
	putn(&g, 0, 30);
	assert_int_equal(one_xdp(h, &g)->p.size, 30);

	/* Nine destination-option headers: one more than the walk's bound. */
	eth(&a, 0x86dd, 0);
	ipv6(&a, 60, 9 * 8 + 8);
	for (int i = 0; i < 9; i++) {
		put8(&a, i < 8 ? 60 : 17);
		put8(&a, 0);
		putn(&a, 0, 6);
	}
	udp(&a, 1, 2, 8);
	h->n = 0;
	assert_int_equal(h_run(h, 0, a.b, a.len, 0, 0), XDP_PASS_);
	assert_int_equal(h_drain(h), 0);
	assert_int_equal(h_counter(h, CAPTURE_C_OTHER_L4), 1);
	h_free(h);
}

/* Every skip reason: one frame each, nothing recorded, its counter = 1. */
static void test_skips_counted(void **state)
{
	struct harness *h = h_new(state, 0, 0);
	struct frame arp = { 0 }, cut = { 0 }, tcut = { 0 }, ihl = { 0 }, tot = { 0 };
	struct frame doff = { 0 }, ulen = { 0 }, frag = { 0 }, frag6 = { 0 };
	struct frame icmp = { 0 }, icmp6 = { 0 }, gre = { 0 }, ver = { 0 }, jumbo = { 0 };
	struct {
		struct frame *f;
		enum capture_counter c;
	} cases[] = {
		{ &arp, CAPTURE_C_NOT_IP },	    { &cut, CAPTURE_C_TRUNCATED },
		{ &tcut, CAPTURE_C_TRUNCATED },	    { &ihl, CAPTURE_C_IP_MALFORMED },
		{ &tot, CAPTURE_C_IP_MALFORMED },   { &ver, CAPTURE_C_IP_MALFORMED },
		{ &jumbo, CAPTURE_C_IP_MALFORMED }, { &doff, CAPTURE_C_L4_MALFORMED },
		{ &ulen, CAPTURE_C_L4_MALFORMED },  { &frag, CAPTURE_C_FRAGMENT },
		{ &frag6, CAPTURE_C_FRAGMENT },	    { &icmp, CAPTURE_C_ICMP },
		{ &icmp6, CAPTURE_C_ICMP },	    { &gre, CAPTURE_C_OTHER_L4 },
	};
	struct capture_counters before, after;
	unsigned int i, j;

	eth(&arp, 0x0806, 0);
	putn(&arp, 0, 28);
	eth(&cut, 0x0800, 0);
	putn(&cut, 0x45, 10); /* IPv4 header cut at 10 bytes */
	eth(&tcut, 0x0800, 0);
	ipv4(&tcut, 6, 20 + 20, 0, 0);
	putn(&tcut, 0, 8); /* TCP header cut */
	eth(&ihl, 0x0800, 0);
	ipv4(&ihl, 17, 40, 0, 0);
	ihl.b[14] = 0x44; /* IHL 16 bytes */
	udp(&ihl, 1, 2, 8);
	eth(&tot, 0x0800, 0);
	ipv4(&tot, 17, 12, 0, 0); /* total length < header */
	udp(&tot, 1, 2, 8);
	eth(&ver, 0x0800, 0);
	ipv4(&ver, 17, 28, 0, 0);
	ver.b[14] = 0x65; /* version 6 under ethertype IPv4 */
	udp(&ver, 1, 2, 8);
	eth(&jumbo, 0x86dd, 0);
	ipv6(&jumbo, 17, 0); /* payload length 0: jumbogram */
	udp(&jumbo, 1, 2, 8);
	eth(&doff, 0x0800, 0);
	ipv4(&doff, 6, 40, 0, 0);
	tcp(&doff, 1, 2, 0, 5);
	doff.b[14 + 20 + 12] = 0x40; /* data offset 16 bytes */
	eth(&ulen, 0x0800, 0);
	ipv4(&ulen, 17, 20 + 8 + 10, 0, 0);
	udp(&ulen, 1, 2, 8 + 11);
	putn(&ulen, 0, 10);
	eth(&frag, 0x0800, 0);
	ipv4(&frag, 17, 20 + 8 + 100, 0x2000, 0); /* MF */
	udp(&frag, 1, 2, 8 + 100);
	eth(&frag6, 0x86dd, 0);
	ipv6(&frag6, 44, 8 + 8);
	put8(&frag6, 17);
	put8(&frag6, 0);
	put16(&frag6, 0x00a8); /* offset 21, M 0 */
	put32(&frag6, 9);
	udp(&frag6, 1, 2, 8);
	eth(&icmp, 0x0800, 0);
	ipv4(&icmp, 1, 20 + 8, 0, 0);
	putn(&icmp, 0, 8);
	eth(&icmp6, 0x86dd, 0);
	ipv6(&icmp6, 58, 8);
	putn(&icmp6, 0, 8);
	eth(&gre, 0x0800, 0);
	ipv4(&gre, 47, 20 + 4, 0, 0);
	putn(&gre, 0, 4);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int which = 0; which < 2; which++) {
			/* The kernel's test run refuses an IPv4 skb shorter than
			 * an IPv4 header (EINVAL); the stack never sends one. */
			if (which == 1 && cases[i].f == &cut)
				continue;
			capture_counters(h->c, &before);
			h->n = 0;
			int v = h_run(h, which, cases[i].f->b, cases[i].f->len, 0, 0);

			if (v != (which ? TC_ACT_OK_ : XDP_PASS_))
				fail_msg("case %u (%s): verdict %d", i, which ? "tc" : "xdp", v);
			assert_int_equal(h_drain(h), 0);
			capture_counters(h->c, &after);
			for (j = 0; j < CAPTURE_C_COUNT; j++) {
				uint64_t want = before.v[j];

				if (j == cases[i].c)
					want++;
				if (j == (which ? CAPTURE_C_EGRESS : CAPTURE_C_INGRESS))
					want++;
				if (after.v[j] != want)
					fail_msg("case %u (%s): counter %s is %llu, want %llu", i,
						 which ? "tc" : "xdp", capture_counter_name(j),
						 (unsigned long long)after.v[j],
						 (unsigned long long)want);
			}
		}
	}
	h_free(h);
}

/* TC egress: a plain packet, and a GSO super-packet as its wire segments. */
static void test_tc_egress_gso(void **state)
{
	struct harness *h = h_new(state, 0, 0);
	struct frame f = { 0 }, u = { 0 };
	unsigned int i;

	/* 3000 payload bytes by the IP length; only the headers are in the
	 * frame (sizes come from the length fields). */
	eth(&f, 0x0800, 0);
	ipv4(&f, 6, 20 + 32 + 3000, 0, 0);
	tcp(&f, 50000, 443, 0x19, 8); /* FIN|PSH|ACK */
	h->n = 0;
	assert_int_equal(h_run(h, 1, f.b, f.len, 0, 0), TC_ACT_OK_);
	assert_true(h_drain(h) >= 0);
	assert_int_equal(h->n, 1);
	assert_int_equal(h->pkts[0].dir, CAPTURE_EGRESS);
	assert_int_equal(h->pkts[0].p.size, 3000);
	assert_int_equal(h->pkts[0].ifindex, 1); /* test runs use loopback */

	h->n = 0;
	assert_int_equal(h_run(h, 1, f.b, f.len, 3, 1448), TC_ACT_OK_);
	assert_true(h_drain(h) >= 0);
	assert_int_equal(h->n, 3);
	assert_int_equal(h->pkts[0].p.size, 1448);
	assert_int_equal(h->pkts[1].p.size, 1448);
	assert_int_equal(h->pkts[2].p.size, 3000 - 2 * 1448);
	for (i = 0; i < 3; i++) {
		assert_int_equal(h->pkts[i].p.ip_len, 20 + 32 + h->pkts[i].p.size);
		assert_int_equal(h->pkts[i].p.ts_ns, h->pkts[0].p.ts_ns);
		assert_int_equal(h->pkts[i].dir, CAPTURE_EGRESS);
	}
	/* FIN and PSH only on the last segment. */
	assert_int_equal(h->pkts[0].p.tcp_flags, 0x10);
	assert_int_equal(h->pkts[2].p.tcp_flags, 0x19);
	assert_int_equal(h_counter(h, CAPTURE_C_GSO), 1);
	assert_int_equal(h_counter(h, CAPTURE_C_TCP), 4);

	/* UDP GSO: 4 segments of 1000 and one of 200. */
	eth(&u, 0x0800, 0);
	ipv4(&u, 17, 20 + 8 + 4200, 0, 0);
	udp(&u, 9000, 9001, 8 + 4200);
	h->n = 0;
	assert_int_equal(h_run(h, 1, u.b, u.len, 5, 1000), TC_ACT_OK_);
	assert_true(h_drain(h) >= 0);
	assert_int_equal(h->n, 5);
	assert_int_equal(h->pkts[4].p.size, 200);
	assert_int_equal(h->pkts[4].p.ip_len, 228);
	assert_int_equal(h_counter(h, CAPTURE_C_UDP), 5);
	h_free(h);
}

/* Many packets of a few flows: all delivered, in order per flow, the ring
 * record count as the design promises. */
static void test_many_packets(void **state)
{
	struct harness *h = h_new(state, 0, 0);
	struct frame f[3];
	unsigned int i, k, n = 100;
	uint64_t last[3] = { 0 };

	memset(f, 0, sizeof(f));
	for (k = 0; k < 3; k++)
		v4_tcp(&f[k], 0, (uint16_t)(10 + k), 5, 0x10, (uint16_t)(1000 + k));
	h->n = 0;
	for (i = 0; i < n; i++)
		for (k = 0; k < 3; k++)
			assert_int_equal(h_run(h, 0, f[k].b, f[k].len, 0, 0), XDP_PASS_);
	assert_true(h_drain(h) >= 0);
	assert_int_equal(h->n, 3 * n);
	for (i = 0; i < h->n; i++) {
		k = h->pkts[i].p.sport - 1000u;
		assert_true(k < 3);
		assert_int_equal(h->pkts[i].p.size, 10 + k);
		assert_true(h->pkts[i].p.ts_ns >= last[k]);
		last[k] = h->pkts[i].p.ts_ns;
	}
	if (design_of(state) == CAPTURE_RECORDS) {
		/* One record per packet (3 of them announce their flow). */
		assert_int_equal(h_counter(h, CAPTURE_C_RECORDS), 3 * n);
	} else {
		/* Per flow: 3 full batches of 32, then a flush of the last 4. */
		assert_int_equal(h_counter(h, CAPTURE_C_BATCHES), 3 * 4);
	}
	assert_int_equal(h_counter(h, CAPTURE_C_DELIVERED), 3 * n);
	h_free(h);
}

/* The same flows on alternating CPUs: each CPU has its own ring, slots and
 * batches; every packet comes back with its own flow's key. */
static void test_cpu_migration(void **state)
{
	struct harness *h = h_new(state, 0, 0);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t old, one;
	struct frame f[2];
	unsigned int i, k;

	if (ncpu < 2)
		fail_msg("needs 2 CPUs to move between (have %ld)", ncpu);
	memset(f, 0, sizeof(f));
	for (k = 0; k < 2; k++)
		v4_tcp(&f[k], 0, (uint16_t)(100 + k), 5, 0x10, (uint16_t)(3000 + k));
	assert_int_equal(sched_getaffinity(0, sizeof(old), &old), 0);
	h->n = 0;
	for (i = 0; i < 40; i++) {
		CPU_ZERO(&one);
		CPU_SET((int)(i % 2), &one);
		assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
		for (k = 0; k < 2; k++)
			assert_int_equal(h_run(h, 0, f[k].b, f[k].len, 0, 0), XDP_PASS_);
	}
	assert_int_equal(sched_setaffinity(0, sizeof(old), &old), 0);
	assert_true(h_drain(h) >= 0);
	assert_int_equal(h->n, 80);
	for (i = 0; i < h->n; i++)
		assert_int_equal(h->pkts[i].p.size, 100u + (h->pkts[i].p.sport - 3000u));
	h_free(h);
}

/* A small ring not drained: what does not fit is counted, never silent. */
static void test_ring_full_counted(void **state)
{
	struct harness *h = h_new(state, 4096, 0);
	struct frame f = { 0 };
	unsigned int i, n = 2000;
	uint64_t lost;

	v4_udp(&f, 0, 20);
	for (i = 0; i < n; i++)
		assert_int_equal(h_run(h, 0, f.b, f.len, 0, 0), XDP_PASS_);
	h->n = 0;
	assert_true(h_drain(h) >= 0);
	lost = h_counter(h, CAPTURE_C_RING_FULL);
	assert_true(lost > 0);
	assert_int_equal(h->n + lost, n);
	assert_true(capture_counter_is_loss(CAPTURE_C_RING_FULL));
	h_free(h);
}

/* Batches: a full flow map sends packets as FULL records: counted, not lost. */
static void test_flow_map_full(void **state)
{
	struct harness *h = h_new(state, 0, 2);
	struct frame f[4];
	unsigned int k;

	memset(f, 0, sizeof(f));
	h->n = 0;
	for (k = 0; k < 4; k++) {
		v4_tcp(&f[k], 0, 5, 5, 0x10, (uint16_t)(2000 + k));
		assert_int_equal(h_run(h, 0, f[k].b, f[k].len, 0, 0), XDP_PASS_);
	}
	assert_true(h_drain(h) >= 0);
	assert_int_equal(h->n, 4);
	if (design_of(state) == CAPTURE_BATCHES)
		assert_int_equal(h_counter(h, CAPTURE_C_FLOW_MAP_FULL), 2);
	assert_int_equal(h_counter(h, CAPTURE_C_RING_FULL), 0);
	h_free(h);
}

static int readable(struct capture *c)
{
	struct epoll_event ev;
	int ep = epoll_create1(0), n;

	ev.events = EPOLLIN;
	ev.data.u32 = 0;
	assert_true(ep >= 0);
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, capture_fd(c), &ev), 0);
	n = epoll_wait(ep, &ev, 1, 0);
	close(ep);
	return n;
}

/* Lazy wakeups (default): the fd turns readable only once a ring holds
 * 1/8 of its size; eager: at the first record.  Records design, 64 KiB. */
static void test_wakeups(void **state)
{
	struct capture_config cfg;
	struct harness *h = calloc(1, sizeof(*h));
	struct frame f = { 0 };
	char err[512];
	unsigned int i;

	cpu_set_t old, one;

	(void)state;
	assert_non_null(h);
	v4_udp(&f, 0, 20);
	/* One CPU: all records in one ring. */
	assert_int_equal(sched_getaffinity(0, sizeof(old), &old), 0);
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	for (int eager = 0; eager < 2; eager++) {
		capture_config_default(&cfg);
		cfg.design = CAPTURE_RECORDS;
		cfg.ring_bytes = 65536;
		cfg.eager_wakeup = eager;
		h->c = capture_open(&cfg, err, sizeof(err));
		assert_non_null(h->c);
		assert_int_equal(h_run(h, 0, f.b, f.len, 0, 0), XDP_PASS_);
		assert_int_equal(readable(h->c), eager ? 1 : 0);
		/* 24 bytes per record in the ring: 400 pass the 8 KiB mark. */
		for (i = 0; i < 400; i++)
			assert_int_equal(h_run(h, 0, f.b, f.len, 0, 0), XDP_PASS_);
		assert_int_equal(readable(h->c), 1);
		h->n = 0;
		assert_true(h_drain(h) >= 0);
		assert_int_equal(h->n, 401);
		capture_close(h->c);
	}
	assert_int_equal(sched_setaffinity(0, sizeof(old), &old), 0);
	free(h);
}

static void test_counter_names(void **state)
{
	unsigned int i;

	(void)state;
	for (i = 0; i < CAPTURE_C_COUNT; i++)
		assert_non_null(capture_counter_name(i));
	assert_null(capture_counter_name(CAPTURE_C_COUNT));
}

static void test_open_errors(void **state)
{
	struct capture_config cfg;
	char err[512] = "";

	(void)state;
	capture_config_default(&cfg);
	cfg.ifaces[0] = "fpt-bpf-nosuch0";
	cfg.n_ifaces = 1;
	assert_null(capture_open(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "fpt-bpf-nosuch0"));
	assert_non_null(strstr(err, "does not exist"));
	cfg.n_ifaces = 0;
	cfg.ring_bytes = 5000;
	assert_null(capture_open(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "power of 2"));
}

#define BOTH(t) \
	cmocka_unit_test_prestate(t, (void *)(long)CAPTURE_RECORDS), \
		cmocka_unit_test_prestate(t, (void *)(long)CAPTURE_BATCHES)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_ipv4_tcp),
		BOTH(test_vlan_qinq_udp),
		BOTH(test_ipv6_ext_headers),
		BOTH(test_skips_counted),
		BOTH(test_tc_egress_gso),
		BOTH(test_many_packets),
		BOTH(test_cpu_migration),
		BOTH(test_ring_full_counted),
		BOTH(test_flow_map_full),
		cmocka_unit_test(test_wakeups),
		cmocka_unit_test(test_counter_names),
		cmocka_unit_test(test_open_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
