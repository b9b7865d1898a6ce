/* SPDX-License-Identifier: MIT */
/*
 * parse.bpf.h - the BPF mirror of core/parse.c (Ethernet link type): the
 * same headers, the same order of checks, the same skip reasons and the same
 * size arithmetic (sizes from the IP and UDP length fields, never from the
 * frame length), so a packet gives the same struct pkt live and offline.
 * tests/bpf/test_bpf_diff.c checks that on real captures.  Every helper is
 * always-inline: the XDP and TC entry points in capture.bpf.c are thin.
 */
#ifndef FLOWPIC_PARSE_BPF_H
#define FLOWPIC_PARSE_BPF_H

#define FP_ETH_P_IP 0x0800
#define FP_ETH_P_IPV6 0x86DD
#define FP_ETH_P_8021Q 0x8100
#define FP_ETH_P_8021AD 0x88A8
#define FP_ETH_P_QINQ_OLD 0x9100

#define FP_MAX_VLAN 4	  /* PARSE_MAX_VLAN */
#define FP_MAX_IPV6_EXT 8 /* PARSE_MAX_IPV6_EXT */

struct fp_cursor {
	void *pos;
	void *end;
};

/* What a frame yields: the flow's addresses and ports, and the sizes. */
struct fp_parsed {
	__u8 src[16];
	__u8 dst[16];
	__u32 ip_len; /* IP header(s) + payload */
	__u32 size;   /* transport payload */
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 tcp_flags;
};

/* The next n bytes, or NULL when the frame ends first (n is a constant). */
static __always_inline void *fp_pull(struct fp_cursor *c, __u32 n)
{
	void *p = c->pos;

	if (p + n > c->end)
		return NULL;
	c->pos = p + n;
	return p;
}

static __always_inline __u16 fp_rd16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

static __always_inline int fp_parse_l4(struct fp_cursor *c, __u8 proto, __u32 l4_len,
				       struct fp_parsed *o)
{
	__u8 *h;

	o->proto = proto;
	if (proto == 6) {
		__u32 doff;

		h = fp_pull(c, 14);
		if (!h)
			return FP_SKIP_TRUNCATED;
		doff = (__u32)(h[12] >> 4) * 4;
		if (doff < 20 || doff > l4_len)
			return FP_SKIP_L4_MALFORMED;
		o->sport = fp_rd16(h);
		o->dport = fp_rd16(h + 2);
		o->tcp_flags = h[13];
		o->size = l4_len - doff;
		return FP_SKIP_NONE;
	}
	if (proto == 17) {
		__u32 ulen;

		h = fp_pull(c, 8);
		if (!h)
			return FP_SKIP_TRUNCATED;
		ulen = fp_rd16(h + 4);
		if (ulen < 8 || ulen > l4_len || l4_len < 8)
			return FP_SKIP_L4_MALFORMED;
		o->sport = fp_rd16(h);
		o->dport = fp_rd16(h + 2);
		o->tcp_flags = 0;
		o->size = ulen - 8;
		return FP_SKIP_NONE;
	}
	if (proto == 1 || proto == 58)
		return FP_SKIP_ICMP;
	return FP_SKIP_OTHER_L4;
}

/* wire_left: bytes on the wire from the IPv4 header on (used when the total
 * length is 0, as in TSO packets). */
static __always_inline int fp_parse_ipv4(struct fp_cursor *c, __u32 wire_left, struct fp_parsed *o)
{
	__u8 *h = fp_pull(c, 20);
	__u32 ihl, tot;

	if (!h)
		return FP_SKIP_TRUNCATED;
	if (h[0] >> 4 != 4)
		return FP_SKIP_IP_MALFORMED;
	ihl = (__u32)(h[0] & 0x0f) * 4;
	tot = fp_rd16(h + 2);
	if (tot == 0)
		tot = wire_left;
	if (ihl < 20 || tot < ihl)
		return FP_SKIP_IP_MALFORMED;
	/* Options: ihl - 20 is at most 40; the verifier sees the bound. */
	if (c->pos + (ihl - 20) > c->end)
		return FP_SKIP_TRUNCATED;
	c->pos += ihl - 20;
	if (fp_rd16(h + 6) & 0x3fff)
		return FP_SKIP_FRAGMENT;
	__builtin_memset(o->src, 0, 10);
	o->src[10] = o->src[11] = 0xff;
	__builtin_memcpy(o->src + 12, h + 12, 4);
	__builtin_memset(o->dst, 0, 10);
	o->dst[10] = o->dst[11] = 0xff;
	__builtin_memcpy(o->dst + 12, h + 16, 4);
	o->ip_len = tot;
	return fp_parse_l4(c, h[9], tot - ihl, o);
}

static __always_inline int fp_parse_ipv6(struct fp_cursor *c, struct fp_parsed *o)
{
	__u8 *h = fp_pull(c, 40);
	__u32 left, len;
	__u8 next;
	__u8 *e;
	int i;

	if (!h)
		return FP_SKIP_TRUNCATED;
	if (h[0] >> 4 != 6)
		return FP_SKIP_IP_MALFORMED;
	left = fp_rd16(h + 4);
	if (left == 0)
		return FP_SKIP_IP_MALFORMED;
	next = h[6];
	__builtin_memcpy(o->src, h + 8, 16);
	__builtin_memcpy(o->dst, h + 24, 16);
	o->ip_len = 40 + left;

#pragma unroll
	for (i = 0; i < FP_MAX_IPV6_EXT; i++) {
		switch (next) {
		case 0:	  /* hop-by-hop */
		case 43:  /* routing */
		case 60:  /* destination options */
		case 135: /* mobility */
			e = fp_pull(c, 8);
			if (!e)
				return FP_SKIP_TRUNCATED;
			len = ((__u32)e[1] + 1) * 8;
			break;
		case 51: /* AH */
			e = fp_pull(c, 8);
			if (!e)
				return FP_SKIP_TRUNCATED;
			len = ((__u32)e[1] + 2) * 4;
			break;
		case 44: /* fragment: offset or M set; else atomic (RFC 6946) */
			e = fp_pull(c, 8);
			if (!e)
				return FP_SKIP_TRUNCATED;
			if (fp_rd16(e + 2) & 0xfff9)
				return FP_SKIP_FRAGMENT;
			len = 8;
			break;
		default:
			return fp_parse_l4(c, next, left, o);
		}
		if (len > left)
			return FP_SKIP_IP_MALFORMED;
		/* len - 8 <= 2040: a bounded variable offset. */
		if (c->pos + (len - 8) > c->end)
			return FP_SKIP_TRUNCATED;
		c->pos += len - 8;
		left -= len;
		next = e[0];
	}
	/* One header past the bound: only a transport header is decoded. */
	if (next != 6 && next != 17 && next != 58)
		return FP_SKIP_OTHER_L4;
	return fp_parse_l4(c, next, left, o);
}

/* An Ethernet frame from data to end; wire_len: the frame's length on the
 * wire (skb->len at TC, where an outer VLAN tag may sit in the skb metadata
 * instead of the data: the sizes do not depend on it). */
static __always_inline int fp_parse_eth(void *data, void *end, __u32 wire_len, struct fp_parsed *o)
{
	struct fp_cursor c = { data, end };
	__u8 *h = fp_pull(&c, 14);
	__u16 type;
	int i;

	if (!h)
		return FP_SKIP_TRUNCATED;
	type = fp_rd16(h + 12);
#pragma unroll
	for (i = 0; i < FP_MAX_VLAN; i++) {
		if (type != FP_ETH_P_8021Q && type != FP_ETH_P_8021AD && type != FP_ETH_P_QINQ_OLD)
			break;
		h = fp_pull(&c, 4);
		if (!h)
			return FP_SKIP_TRUNCATED;
		type = fp_rd16(h + 2);
	}
	if (type == FP_ETH_P_IP)
		return fp_parse_ipv4(&c, wire_len - 14 - 4 * (__u32)i, o);
	if (type == FP_ETH_P_IPV6)
		return fp_parse_ipv6(&c, o);
	return FP_SKIP_NOT_IP;
}

#endif
