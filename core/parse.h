/* SPDX-License-Identifier: MIT */
/*
 * parse.h - decode one captured frame into a struct pkt.
 *
 * Link types: Ethernet (802.1Q / QinQ tags), Linux cooked v1 and v2, raw
 * IPv4/IPv6, BSD null and loopback.  IPv4 and IPv6 (bounded walk of the
 * extension headers).  Sizes come from the IP length fields, never from the
 * captured length, so captures cut by a small snap length still give the
 * packet's true size.  Every frame either yields a packet or a skip reason.
 */
#ifndef FLOWPIC_PARSE_H
#define FLOWPIC_PARSE_H

#include <stdint.h>

#include "pkt.h"

/* libpcap LINKTYPE_ values we decode (the file-format numbers, not DLT_). */
enum link_type {
	LINK_NULL = 0, /* BSD loopback, host-order family */
	LINK_ETHERNET = 1,
	LINK_RAW = 101,	 /* raw IPv4 or IPv6, version from the first nibble */
	LINK_LOOP = 108, /* OpenBSD loopback, network-order family */
	LINK_LINUX_SLL = 113,
	LINK_IPV4 = 228,
	LINK_IPV6 = 229,
	LINK_LINUX_SLL2 = 276,
};

/* Maximum extension headers walked in one IPv6 packet. */
#define PARSE_MAX_IPV6_EXT 8
/* Maximum stacked VLAN tags (QinQ and deeper). */
#define PARSE_MAX_VLAN 4

/* True when parse_frame() can decode this LINKTYPE_ value. */
int parse_link_supported(int linktype);

/*
 * Decode a frame.  data/caplen: the captured bytes; wirelen: the frame's
 * length on the wire (used only when an IPv4 total length is 0, as in
 * captures of TSO packets on the sending host).  On success fills *out
 * (ts_ns is left to the caller) and returns SKIP_NONE.
 */
enum skip_reason parse_frame(int linktype, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
			     struct pkt *out);

/* Decode from the IP header on (first nibble picks the version). */
enum skip_reason parse_ip(const uint8_t *data, uint32_t caplen, uint32_t wirelen, struct pkt *out);

#endif
