/* SPDX-License-Identifier: MIT */
/*
 * frames.h - build test frames byte by byte: Ethernet (with VLAN tags), IPv4,
 * IPv6 with extension headers, TCP and UDP.  Lengths in the headers are
 * written as a real stack would, so the parser's size arithmetic is tested
 * against independent numbers.
 */
#ifndef FLOWPIC_TEST_FRAMES_H
#define FLOWPIC_TEST_FRAMES_H

#include <stdint.h>
#include <string.h>

struct frame {
	uint8_t b[2048];
	uint32_t len;
};

static inline void put8(struct frame *f, uint8_t v)
{
	f->b[f->len++] = v;
}

static inline void put16(struct frame *f, uint16_t v)
{
	put8(f, (uint8_t)(v >> 8));
	put8(f, (uint8_t)v);
}

static inline void put32(struct frame *f, uint32_t v)
{
	put16(f, (uint16_t)(v >> 16));
	put16(f, (uint16_t)v);
}

static inline void putn(struct frame *f, uint8_t v, uint32_t n)
{
	memset(f->b + f->len, v, n);
	f->len += n;
}

/* Ethernet header; vlans: number of 802.1Q tags before the ethertype. */
static inline void eth(struct frame *f, uint16_t type, int vlans)
{
	putn(f, 0x02, 6);
	putn(f, 0x04, 6);
	while (vlans-- > 0) {
		put16(f, vlans ? 0x88a8 : 0x8100);
		put16(f, 100);
	}
	put16(f, type);
}

/* IPv4 header with total length tot, 10.0.0.1 -> 10.0.0.2 unless swapped. */
static inline void ipv4(struct frame *f, uint8_t proto, uint16_t tot, uint16_t frag, int swap)
{
	put8(f, 0x45);
	put8(f, 0);
	put16(f, tot);
	put16(f, 1);
	put16(f, frag);
	put8(f, 64);
	put8(f, proto);
	put16(f, 0);
	put32(f, swap ? 0x0a000002 : 0x0a000001);
	put32(f, swap ? 0x0a000001 : 0x0a000002);
}

/* IPv6 header, payload length plen, 2001:db8::1 -> 2001:db8::2. */
static inline void ipv6(struct frame *f, uint8_t next, uint16_t plen)
{
	put32(f, 0x60000000);
	put16(f, plen);
	put8(f, next);
	put8(f, 64);
	put32(f, 0x20010db8);
	putn(f, 0, 11);
	put8(f, 1);
	put32(f, 0x20010db8);
	putn(f, 0, 11);
	put8(f, 2);
}

/* TCP header of doff 32-bit words (options zero-filled). */
static inline void tcp(struct frame *f, uint16_t sport, uint16_t dport, uint8_t flags, int doff)
{
	put16(f, sport);
	put16(f, dport);
	put32(f, 1);
	put32(f, 0);
	put8(f, (uint8_t)(doff << 4));
	put8(f, flags);
	put16(f, 65535);
	put32(f, 0);
	putn(f, 0, (uint32_t)(doff - 5) * 4);
}

static inline void udp(struct frame *f, uint16_t sport, uint16_t dport, uint16_t ulen)
{
	put16(f, sport);
	put16(f, dport);
	put16(f, ulen);
	put16(f, 0);
}

#endif
