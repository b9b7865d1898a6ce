// SPDX-License-Identifier: MIT
/* test_parse.c - frame decoding: link types, VLAN, IPv4/IPv6, sizes, skip reasons. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "frames.h"
#include "core/parse.h"

/* Ethernet + IPv4 + TCP with payload bytes of payload (not all captured). */
static void eth_ipv4_tcp(struct frame *f, int vlans, uint16_t payload, int doff)
{
	eth(f, 0x0800, vlans);
	ipv4(f, 6, (uint16_t)(20 + doff * 4 + payload), 0, 0);
	tcp(f, 40000, 443, 0x18, doff);
}

static void test_ipv4_tcp_size_from_ip_length(void **state)
{
	struct frame f = { 0 };
	struct pkt p;

	(void)state;
	/* Only headers captured (snaplen), 1000 payload bytes on the wire. */
	eth_ipv4_tcp(&f, 0, 1000, 8);
	assert_int_equal(parse_frame(LINK_ETHERNET, f.b, f.len, f.len + 1000, &p), SKIP_NONE);
	assert_int_equal(p.proto, 6);
	assert_int_equal(p.size, 1000);
	assert_int_equal(p.ip_len, 20 + 32 + 1000);
	assert_int_equal(p.sport, 40000);
	assert_int_equal(p.dport, 443);
	assert_int_equal(p.tcp_flags, 0x18);
	assert_int_equal(p.src[15], 1);
	assert_int_equal(p.dst[15], 2);
	assert_true(pkt_addr_is_v4(p.src));
}

/* A SYN's MSS and timestamp options give the segment size (MSS - 12 with
 * timestamps), read only as far as captured; other packets give 0. */
static void test_syn_segment_size(void **state)
{
	static const uint8_t opts[20] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0,
					  0, 1, 0,    0,    0, 0, 1, 3,	 3, 7 };
	struct frame f = { 0 };
	uint32_t hdr;
	struct pkt p;

	(void)state;
	eth(&f, 0x0800, 0);
	ipv4(&f, 6, 20 + 40, 0, 0);
	hdr = f.len;
	tcp(&f, 40000, 443, 0x02, 10);
	memcpy(f.b + hdr + 20, opts, sizeof(opts));
	assert_int_equal(parse_frame(LINK_ETHERNET, f.b, f.len, f.len, &p), SKIP_NONE);
	assert_int_equal(p.tcp_mss, 1460);
	assert_int_equal(p.tcp_ts, 1);
	/* Snap length inside the timestamp option: MSS alone. */
	assert_int_equal(parse_frame(LINK_ETHERNET, f.b, hdr + 28, f.len, &p), SKIP_NONE);
	assert_int_equal(p.tcp_mss, 1460);
	assert_int_equal(p.tcp_ts, 0);
	/* Not a SYN: options are not read. */
	f.b[hdr + 13] = 0x10;
	assert_int_equal(parse_frame(LINK_ETHERNET, f.b, f.len, f.len, &p), SKIP_NONE);
	assert_int_equal(p.tcp_mss, 0);
	/* An option length running past the header stops the walk. */
	f.b[hdr + 13] = 0x12;
	f.b[hdr + 21] = 40;
	assert_int_equal(parse_frame(LINK_ETHERNET, f.b, f.len, f.len, &p), SKIP_NONE);
	assert_int_equal(p.tcp_mss, 0);
	assert_int_equal(p.tcp_ts, 0);
}

static void test_vlan_and_qinq(void **state)
{
	struct frame f1 = { 0 }, f2 = { 0 }, f5 = { 0 };
	struct pkt p;

	(void)state;
	eth_ipv4_tcp(&f1, 1, 10, 5);
	assert_int_equal(parse_frame(LINK_ETHERNET, f1.b, f1.len, f1.len, &p), SKIP_NONE);
	assert_int_equal(p.size, 10);
	eth_ipv4_tcp(&f2, 2, 20, 5);
	assert_int_equal(parse_frame(LINK_ETHERNET, f2.b, f2.len, f2.len, &p), SKIP_NONE);
	assert_int_equal(p.size, 20);
	/* Five tags: beyond PARSE_MAX_VLAN, the fifth tag's type is not IP. */
	eth_ipv4_tcp(&f5, 5, 20, 5);
	assert_int_equal(parse_frame(LINK_ETHERNET, f5.b, f5.len, f5.len, &p), SKIP_NOT_IP);
}

static void test_udp_size_and_bad_length(void **state)
{
	struct frame f = { 0 }, g = { 0 };
	struct pkt p;

	(void)state;
	eth(&f, 0x0800, 0);
	ipv4(&f, 17, 20 + 8 + 172, 0, 0);
	udp(&f, 5060, 5060, 8 + 172);
	assert_int_equal(parse_frame(LINK_ETHERNET, f.b, f.len, f.len + 172, &p), SKIP_NONE);
	assert_int_equal(p.size, 172);
	assert_int_equal(p.tcp_flags, 0);
	/* UDP length larger than the IP payload: malformed. */
	eth(&g, 0x0800, 0);
	ipv4(&g, 17, 20 + 8 + 10, 0, 0);
	udp(&g, 1, 2, 8 + 11);
	assert_int_equal(parse_frame(LINK_ETHERNET, g.b, g.len, g.len, &p), SKIP_L4_MALFORMED);
}

static void test_ipv4_fragments_counted(void **state)
{
	struct frame first = { 0 }, later = { 0 }, df = { 0 };
	struct pkt p;

	(void)state;
	eth(&first, 0x0800, 0);
	ipv4(&first, 17, 1500, 0x2000, 0); /* MF, offset 0 */
	udp(&first, 1, 2, 3000);
	assert_int_equal(parse_frame(LINK_ETHERNET, first.b, first.len, 1514, &p), SKIP_FRAGMENT);
	eth(&later, 0x0800, 0);
	ipv4(&later, 17, 1500, 185, 0); /* offset 1480, last */
	putn(&later, 0xaa, 8);		/* payload bytes that look like a UDP header */
	assert_int_equal(parse_frame(LINK_ETHERNET, later.b, later.len, 1514, &p), SKIP_FRAGMENT);
	/* DF alone is not a fragment. */
	eth(&df, 0x0800, 0);
	ipv4(&df, 6, 40, 0x4000, 0);
	tcp(&df, 1, 2, 0x10, 5);
	assert_int_equal(parse_frame(LINK_ETHERNET, df.b, df.len, df.len, &p), SKIP_NONE);
	assert_int_equal(p.size, 0);
}

static void test_ipv6_extension_headers(void **state)
{
	struct frame f = { 0 };
	struct pkt p;

	(void)state;
	eth(&f, 0x86dd, 0);
	/* hop-by-hop (8) + routing (24) + destination options (8) + TCP (20) + 100 */
	ipv6(&f, 0, 8 + 24 + 8 + 20 + 100);
	put8(&f, 43);
	put8(&f, 0);
	putn(&f, 0, 6);
	put8(&f, 60);
	put8(&f, 2);
	putn(&f, 0, 22);
	put8(&f, 6);
	put8(&f, 0);
	putn(&f, 0, 6);
	tcp(&f, 443, 50000, 0x10, 5);
	assert_int_equal(parse_frame(LINK_ETHERNET, f.b, f.len, f.len + 100, &p), SKIP_NONE);
	assert_int_equal(p.size, 100);
	assert_int_equal(p.ip_len, 40 + 8 + 24 + 8 + 20 + 100);
	assert_false(pkt_addr_is_v4(p.src));
	assert_int_equal(p.src[15], 1);
	assert_int_equal(p.sport, 443);
}

static void test_ipv6_fragment_header(void **state)
{
	struct frame frag = { 0 }, atomic = { 0 };
	struct pkt p;

	(void)state;
	eth(&frag, 0x86dd, 0);
	ipv6(&frag, 44, 8 + 8 + 50);
	put8(&frag, 17);
	put8(&frag, 0);
	put16(&frag, 0x0001); /* offset 0, M = 1 */
	put32(&frag, 7);
	udp(&frag, 1, 2, 8 + 100);
	assert_int_equal(parse_frame(LINK_ETHERNET, frag.b, frag.len, frag.len, &p), SKIP_FRAGMENT);
	/* Atomic fragment (offset 0, M = 0): a whole packet. */
	eth(&atomic, 0x86dd, 0);
	ipv6(&atomic, 44, 8 + 8 + 50);
	put8(&atomic, 17);
	put8(&atomic, 0);
	put16(&atomic, 0);
	put32(&atomic, 7);
	udp(&atomic, 1, 2, 8 + 50);
	assert_int_equal(parse_frame(LINK_ETHERNET, atomic.b, atomic.len, atomic.len, &p),
			 SKIP_NONE);
	assert_int_equal(p.size, 50);
}

static void test_ipv6_extension_chain_too_long(void **state)
{
	struct frame f = { 0 };
	struct pkt p;
	int i;

	(void)state;
	eth(&f, 0x86dd, 0);
	ipv6(&f, 60, 8 * (PARSE_MAX_IPV6_EXT + 1) + 8);
	for (i = 0; i < PARSE_MAX_IPV6_EXT + 1; i++) {
		put8(&f, i < PARSE_MAX_IPV6_EXT ? 60 : 17);
		put8(&f, 0);
		putn(&f, 0, 6);
	}
	udp(&f, 1, 2, 8);
	assert_int_equal(parse_frame(LINK_ETHERNET, f.b, f.len, f.len, &p), SKIP_OTHER_L4);
}

static void test_ipv6_eight_extension_headers_then_udp(void **state)
{
	struct frame f = { 0 };
	struct pkt p;
	int i;

	(void)state;
	eth(&f, 0x86dd, 0);
	ipv6(&f, 60, 8 * PARSE_MAX_IPV6_EXT + 8 + 3);
	for (i = 0; i < PARSE_MAX_IPV6_EXT; i++) {
		put8(&f, i < PARSE_MAX_IPV6_EXT - 1 ? 60 : 17);
		put8(&f, 0);
		putn(&f, 0, 6);
	}
	udp(&f, 1, 2, 8 + 3);
	assert_int_equal(parse_frame(LINK_ETHERNET, f.b, f.len, f.len, &p), SKIP_NONE);
	assert_int_equal(p.size, 3);
}

static void test_truncated_everywhere(void **state)
{
	struct frame f = { 0 };
	struct pkt p;
	uint32_t cut;

	(void)state;
	eth_ipv4_tcp(&f, 1, 0, 5);
	/* Every cut inside the headers is "truncated", never a misread. */
	for (cut = 0; cut < 14 + 4 + 20 + 14; cut++)
		assert_int_equal(parse_frame(LINK_ETHERNET, f.b, cut, f.len, &p), SKIP_TRUNCATED);
	assert_int_equal(parse_frame(LINK_ETHERNET, f.b, cut, f.len, &p), SKIP_NONE);
}

static void test_malformed_ip(void **state)
{
	struct frame ihl = { 0 }, tot = { 0 }, ver = { 0 }, doff = { 0 };
	struct pkt p;

	(void)state;
	eth(&ihl, 0x0800, 0);
	ipv4(&ihl, 6, 40, 0, 0);
	ihl.b[14] = 0x44; /* IHL 4: 16 bytes */
	tcp(&ihl, 1, 2, 0, 5);
	assert_int_equal(parse_frame(LINK_ETHERNET, ihl.b, ihl.len, ihl.len, &p),
			 SKIP_IP_MALFORMED);
	eth(&tot, 0x0800, 0);
	ipv4(&tot, 6, 19, 0, 0);
	tcp(&tot, 1, 2, 0, 5);
	assert_int_equal(parse_frame(LINK_ETHERNET, tot.b, tot.len, tot.len, &p),
			 SKIP_IP_MALFORMED);
	eth(&ver, 0x0800, 0);
	ipv6(&ver, 6, 20); /* IPv6 header behind the IPv4 ethertype */
	assert_int_equal(parse_frame(LINK_ETHERNET, ver.b, ver.len, ver.len, &p),
			 SKIP_IP_MALFORMED);
	eth(&doff, 0x0800, 0);
	ipv4(&doff, 6, 40, 0, 0);
	tcp(&doff, 1, 2, 0, 5);
	doff.b[14 + 20 + 12] = 0x40; /* data offset 4 words < 5 */
	assert_int_equal(parse_frame(LINK_ETHERNET, doff.b, doff.len, doff.len, &p),
			 SKIP_L4_MALFORMED);
}

static void test_tso_zero_total_length(void **state)
{
	struct frame f = { 0 };
	struct pkt p;

	(void)state;
	eth(&f, 0x0800, 0);
	ipv4(&f, 6, 0, 0x4000, 0);
	tcp(&f, 1, 2, 0x10, 5);
	/* 14 + 20 + 20 + 9000 bytes on the wire, headers captured. */
	assert_int_equal(parse_frame(LINK_ETHERNET, f.b, f.len, 14 + 40 + 9000, &p), SKIP_NONE);
	assert_int_equal(p.size, 9000);
	assert_int_equal(p.ip_len, 9040);
}

static void test_other_link_types(void **state)
{
	struct frame sll = { 0 }, sll2 = { 0 }, raw = { 0 }, null = { 0 }, loop = { 0 };
	struct pkt p;

	(void)state;
	putn(&sll, 0, 14);
	put16(&sll, 0x0800);
	ipv4(&sll, 17, 28 + 5, 0, 0);
	udp(&sll, 53, 53, 13);
	assert_int_equal(parse_frame(LINK_LINUX_SLL, sll.b, sll.len, sll.len, &p), SKIP_NONE);
	assert_int_equal(p.size, 5);

	put16(&sll2, 0x86dd);
	putn(&sll2, 0, 18);
	ipv6(&sll2, 17, 8 + 7);
	udp(&sll2, 53, 53, 15);
	assert_int_equal(parse_frame(LINK_LINUX_SLL2, sll2.b, sll2.len, sll2.len, &p), SKIP_NONE);
	assert_int_equal(p.size, 7);

	ipv4(&raw, 6, 40, 0, 0);
	tcp(&raw, 1, 2, 0x02, 5);
	assert_int_equal(parse_frame(LINK_RAW, raw.b, raw.len, raw.len, &p), SKIP_NONE);
	assert_int_equal(parse_frame(LINK_IPV4, raw.b, raw.len, raw.len, &p), SKIP_NONE);
	assert_int_equal(parse_frame(LINK_IPV6, raw.b, raw.len, raw.len, &p), SKIP_IP_MALFORMED);

	/* BSD null: family in the writer's byte order (2 little endian here). */
	put8(&null, 2);
	putn(&null, 0, 3);
	ipv4(&null, 6, 40, 0, 0);
	tcp(&null, 1, 2, 0x02, 5);
	assert_int_equal(parse_frame(LINK_NULL, null.b, null.len, null.len, &p), SKIP_NONE);
	/* OpenBSD loop: network order; 24 = IPv6 on BSD. */
	put32(&loop, 24);
	ipv6(&loop, 6, 20);
	tcp(&loop, 1, 2, 0x02, 5);
	assert_int_equal(parse_frame(LINK_LOOP, loop.b, loop.len, loop.len, &p), SKIP_NONE);

	assert_int_equal(parse_frame(127, raw.b, raw.len, raw.len, &p), SKIP_LINK_UNSUPPORTED);
	assert_false(parse_link_supported(127));
}

static void test_not_ip_and_other_protocols(void **state)
{
	struct frame arp = { 0 }, icmp = { 0 }, gre = { 0 }, icmp6 = { 0 };
	struct pkt p;

	(void)state;
	eth(&arp, 0x0806, 0);
	putn(&arp, 0, 28);
	assert_int_equal(parse_frame(LINK_ETHERNET, arp.b, arp.len, arp.len, &p), SKIP_NOT_IP);
	eth(&icmp, 0x0800, 0);
	ipv4(&icmp, 1, 28, 0, 0);
	putn(&icmp, 0, 8);
	assert_int_equal(parse_frame(LINK_ETHERNET, icmp.b, icmp.len, icmp.len, &p), SKIP_ICMP);
	eth(&icmp6, 0x86dd, 0);
	ipv6(&icmp6, 58, 8);
	putn(&icmp6, 0, 8);
	assert_int_equal(parse_frame(LINK_ETHERNET, icmp6.b, icmp6.len, icmp6.len, &p), SKIP_ICMP);
	eth(&gre, 0x0800, 0);
	ipv4(&gre, 47, 24, 0, 0);
	putn(&gre, 0, 4);
	assert_int_equal(parse_frame(LINK_ETHERNET, gre.b, gre.len, gre.len, &p), SKIP_OTHER_L4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_tcp_size_from_ip_length),
		cmocka_unit_test(test_syn_segment_size),
		cmocka_unit_test(test_vlan_and_qinq),
		cmocka_unit_test(test_udp_size_and_bad_length),
		cmocka_unit_test(test_ipv4_fragments_counted),
		cmocka_unit_test(test_ipv6_extension_headers),
		cmocka_unit_test(test_ipv6_fragment_header),
		cmocka_unit_test(test_ipv6_extension_chain_too_long),
		cmocka_unit_test(test_ipv6_eight_extension_headers_then_udp),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_malformed_ip),
		cmocka_unit_test(test_tso_zero_total_length),
		cmocka_unit_test(test_other_link_types),
		cmocka_unit_test(test_not_ip_and_other_protocols),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
