// SPDX-License-Identifier: MIT
/* parse.c - frames -> struct pkt; see parse.h. */
#include "parse.h"

#include <string.h>

#include "cursor.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define ETH_P_QINQ_OLD 0x9100

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_AH_ 51
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_DSTOPTS_ 60
#define IPPROTO_MH_ 135

int parse_link_supported(int linktype)
{
	switch (linktype) {
	case LINK_NULL:
	case LINK_ETHERNET:
	case LINK_RAW:
	case LINK_LOOP:
	case LINK_LINUX_SLL:
	case LINK_IPV4:
	case LINK_IPV6:
	case LINK_LINUX_SLL2:
		return 1;
	}
	return 0;
}

/* A SYN's MSS and timestamp options, as far as they were captured. */
static void syn_options(const uint8_t *opt, size_t len, struct pkt *out)
{
	size_t i = 0;

	while (i < len) {
		uint8_t kind = opt[i], olen;

		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= len)
			break;
		olen = opt[i + 1];
		if (olen < 2 || i + olen > len)
			break;
		if (kind == 2 && olen == 4)
			out->tcp_mss = rd16(opt + i + 2);
		else if (kind == 8 && olen == 10)
			out->tcp_ts = 1;
		i += olen;
	}
}

/* TCP or UDP header at c; l4_len is the transport length from the IP header. */
static enum skip_reason parse_l4(struct cursor *c, uint8_t proto, uint32_t l4_len, struct pkt *out)
{
	const uint8_t *h;

	out->proto = proto;
	if (proto == IPPROTO_TCP_) {
		uint32_t doff;

		/* Ports, flags and data offset: the first 14 bytes. */
		h = cursor_pull(c, 14);
		if (!h)
			return SKIP_TRUNCATED;
		doff = (uint32_t)(h[12] >> 4) * 4;
		if (doff < 20 || doff > l4_len)
			return SKIP_L4_MALFORMED;
		out->sport = rd16(h);
		out->dport = rd16(h + 2);
		out->tcp_flags = h[13];
		out->size = l4_len - doff;
		out->tcp_mss = 0;
		out->tcp_ts = 0;
		if ((h[13] & 0x02) && doff > 20) {
			/* Options: best effort within the snap length. */
			size_t n = cursor_left(c) < doff - 14 ? cursor_left(c) : doff - 14;
			const uint8_t *o = cursor_pull(c, n);

			if (o && n > 6)
				syn_options(o + 6, n - 6, out);
		}
		return SKIP_NONE;
	}
	if (proto == IPPROTO_UDP_) {
		uint32_t ulen;

		h = cursor_pull(c, 8);
		if (!h)
			return SKIP_TRUNCATED;
		ulen = rd16(h + 4);
		/* The IP length is the authority; a UDP length beyond it is malformed.
		 * UDP length 0 is legal only for IPv6 jumbograms (not decoded). */
		if (ulen < 8 || ulen > l4_len || l4_len < 8)
			return SKIP_L4_MALFORMED;
		out->sport = rd16(h);
		out->dport = rd16(h + 2);
		out->tcp_flags = 0;
		out->tcp_mss = 0;
		out->tcp_ts = 0;
		out->size = ulen - 8;
		return SKIP_NONE;
	}
	if (proto == IPPROTO_ICMP_ || proto == IPPROTO_ICMPV6_)
		return SKIP_ICMP;
	return SKIP_OTHER_L4;
}

static enum skip_reason parse_ipv4(struct cursor *c, uint32_t wirelen_left, struct pkt *out)
{
	const uint8_t *h = cursor_pull(c, 20);
	uint32_t ihl, tot, frag;

	if (!h)
		return SKIP_TRUNCATED;
	if (h[0] >> 4 != 4)
		return SKIP_IP_MALFORMED;
	ihl = (uint32_t)(h[0] & 0x0f) * 4;
	tot = rd16(h + 2);
	/* TSO packets captured on the sending host carry total length 0: the
	 * frame's wire length is then the only truth we have. */
	if (tot == 0)
		tot = wirelen_left;
	if (ihl < 20 || tot < ihl)
		return SKIP_IP_MALFORMED;
	if (!cursor_pull(c, ihl - 20))
		return SKIP_TRUNCATED;
	frag = rd16(h + 6);
	/* More-fragments set, or a non-zero offset: a piece of a datagram. */
	if (frag & 0x3fff)
		return SKIP_FRAGMENT;
	memset(out->src, 0, 10);
	out->src[10] = out->src[11] = 0xff;
	memcpy(out->src + 12, h + 12, 4);
	memset(out->dst, 0, 10);
	out->dst[10] = out->dst[11] = 0xff;
	memcpy(out->dst + 12, h + 16, 4);
	out->ip_len = tot;
	return parse_l4(c, h[9], tot - ihl, out);
}

static enum skip_reason parse_ipv6(struct cursor *c, struct pkt *out)
{
	const uint8_t *h = cursor_pull(c, 40);
	uint32_t left; /* payload bytes not yet consumed by headers */
	uint8_t next;
	int i;

	if (!h)
		return SKIP_TRUNCATED;
	if (h[0] >> 4 != 6)
		return SKIP_IP_MALFORMED;
	left = rd16(h + 4);
	/* Payload length 0 means a jumbogram (hop-by-hop option): not decoded. */
	if (left == 0)
		return SKIP_IP_MALFORMED;
	next = h[6];
	memcpy(out->src, h + 8, 16);
	memcpy(out->dst, h + 24, 16);
	out->ip_len = 40 + left;

	for (i = 0;; i++) {
		const uint8_t *e;
		uint32_t len;

		/* PARSE_MAX_IPV6_EXT headers are walked; one more is undecodable. */
		if (i == PARSE_MAX_IPV6_EXT && next != IPPROTO_TCP_ && next != IPPROTO_UDP_ &&
		    next != IPPROTO_ICMPV6_)
			return SKIP_OTHER_L4;
		switch (next) {
		case IPPROTO_HOPOPTS_:
		case IPPROTO_ROUTING_:
		case IPPROTO_DSTOPTS_:
		case IPPROTO_MH_:
			e = cursor_pull(c, 8);
			if (!e)
				return SKIP_TRUNCATED;
			len = ((uint32_t)e[1] + 1) * 8;
			break;
		case IPPROTO_AH_:
			e = cursor_pull(c, 8);
			if (!e)
				return SKIP_TRUNCATED;
			len = ((uint32_t)e[1] + 2) * 4;
			break;
		case IPPROTO_FRAGMENT_:
			e = cursor_pull(c, 8);
			if (!e)
				return SKIP_TRUNCATED;
			/* Offset or M flag set: a fragment.  Neither: an atomic
			 * fragment (RFC 6946), a whole packet. */
			if (rd16(e + 2) & 0xfff9)
				return SKIP_FRAGMENT;
			len = 8;
			break;
		default:
			return parse_l4(c, next, left, out);
		}
		if (len > left)
			return SKIP_IP_MALFORMED;
		if (!cursor_pull(c, len - 8))
			return SKIP_TRUNCATED;
		left -= len;
		next = e[0];
	}
}

enum skip_reason parse_ip(const uint8_t *data, uint32_t caplen, uint32_t wirelen, struct pkt *out)
{
	struct cursor c = { data, data + caplen };

	if (caplen < 1)
		return SKIP_TRUNCATED;
	switch (data[0] >> 4) {
	case 4:
		return parse_ipv4(&c, wirelen, out);
	case 6:
		return parse_ipv6(&c, out);
	}
	return SKIP_NOT_IP;
}

/* wire_left: bytes of the frame on the wire from the cursor on. */
static enum skip_reason parse_ethertype(uint16_t type, struct cursor *c, uint32_t wire_left,
					struct pkt *out)
{
	if (type == ETH_P_IP)
		return parse_ipv4(c, wire_left, out);
	if (type == ETH_P_IPV6)
		return parse_ipv6(c, out);
	return SKIP_NOT_IP;
}

static enum skip_reason parse_ethernet(struct cursor *c, uint32_t wirelen, struct pkt *out)
{
	const uint8_t *h = cursor_pull(c, 14);
	uint16_t type;
	int i;

	if (!h)
		return SKIP_TRUNCATED;
	type = rd16(h + 12);
	for (i = 0; i < PARSE_MAX_VLAN; i++) {
		if (type != ETH_P_8021Q && type != ETH_P_8021AD && type != ETH_P_QINQ_OLD)
			break;
		h = cursor_pull(c, 4);
		if (!h)
			return SKIP_TRUNCATED;
		type = rd16(h + 2);
	}
	return parse_ethertype(type, c, wirelen - 14 - 4 * (uint32_t)i, out);
}

/* BSD null/loop: a 4-byte address family; IPv6 has several values by OS. */
static enum skip_reason parse_null(struct cursor *c, int net_order, uint32_t wirelen,
				   struct pkt *out)
{
	const uint8_t *h = cursor_pull(c, 4);
	uint32_t fam;

	if (!h)
		return SKIP_TRUNCATED;
	if (net_order) {
		fam = rd32(h);
	} else {
		/* Host order of the writer, unknown to us: families are small,
		 * so a value above 0xffff was written in the other order. */
		fam = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
		      (uint32_t)h[3] << 24;
		if (fam > 0xffff)
			fam = rd32(h);
	}
	switch (fam) {
	case 2:
		return parse_ethertype(ETH_P_IP, c, wirelen - 4, out);
	case 10:
	case 24:
	case 28:
	case 30:
		return parse_ethertype(ETH_P_IPV6, c, wirelen - 4, out);
	}
	return SKIP_NOT_IP;
}

enum skip_reason parse_frame(int linktype, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
			     struct pkt *out)
{
	struct cursor c = { data, data + caplen };
	const uint8_t *h;

	if (wirelen < caplen)
		wirelen = caplen;
	switch (linktype) {
	case LINK_ETHERNET:
		return parse_ethernet(&c, wirelen, out);
	case LINK_LINUX_SLL:
		h = cursor_pull(&c, 16);
		if (!h)
			return SKIP_TRUNCATED;
		return parse_ethertype(rd16(h + 14), &c, wirelen - 16, out);
	case LINK_LINUX_SLL2:
		h = cursor_pull(&c, 20);
		if (!h)
			return SKIP_TRUNCATED;
		return parse_ethertype(rd16(h), &c, wirelen - 20, out);
	case LINK_RAW:
		return parse_ip(data, caplen, wirelen, out);
	case LINK_IPV4:
		return parse_ethertype(ETH_P_IP, &c, wirelen, out);
	case LINK_IPV6:
		return parse_ethertype(ETH_P_IPV6, &c, wirelen, out);
	case LINK_NULL:
		return parse_null(&c, 0, wirelen, out);
	case LINK_LOOP:
		return parse_null(&c, 1, wirelen, out);
	}
	return SKIP_LINK_UNSUPPORTED;
}
