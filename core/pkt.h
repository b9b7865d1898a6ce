/* SPDX-License-Identifier: MIT */
/*
 * pkt.h - the packet record every source produces (pcap, CSV, later the BPF
 * ring buffers), and the numbered reasons a packet is not turned into a
 * sample.  Everything downstream of a source sees only these records.
 */
#ifndef FLOWPIC_PKT_H
#define FLOWPIC_PKT_H

#include <stdbool.h>
#include <stdint.h>

/* Largest transport payload that goes into a FlowPic; the seed's 1500-byte MTU. */
#define PKT_MAX_SIZE 1500

/*
 * One TCP or UDP packet as seen on the wire.  Addresses are 16 bytes; IPv4
 * is stored as an IPv4-mapped IPv6 address (::ffff:a.b.c.d) so one key type
 * serves both families.
 */
struct pkt {
	uint64_t ts_ns;	   /* capture time, ns since the Unix epoch */
	uint8_t src[16];   /* source address (network order) */
	uint8_t dst[16];   /* destination address (network order) */
	uint32_t ip_len;   /* IP header(s) + payload, from the IP length fields */
	uint32_t size;	   /* transport payload bytes: the seed's sample size */
	uint16_t sport;	   /* host order */
	uint16_t dport;	   /* host order */
	uint8_t proto;	   /* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t tcp_flags; /* TCP flags byte, 0 for UDP */
	uint16_t tcp_mss;  /* a SYN's MSS option, 0 when none (or not captured) */
	uint8_t tcp_ts;	   /* 1: a SYN with a timestamp option */
	uint8_t pad[7];
	/* The flow table splits TSO/GRO super-packets by the segment size the
	 * handshake set: the smaller MSS, less 12 bytes when the SYN-ACK (the
	 * answer to the SYN's offer) carries timestamps. */
};

/*
 * Why a packet read from a source did not become a flow sample.  Numbered
 * and stable: the numbers appear in JSON output and (later) in the agent's
 * counters and the .proto.  Add new reasons at the end.
 */
enum skip_reason {
	SKIP_NONE = 0,
	SKIP_LINK_UNSUPPORTED, /* link type we do not decode (radiotap, 802.11, ...) */
	SKIP_TRUNCATED,	       /* headers cut short by the snap length or frame end */
	SKIP_NOT_IP,	       /* ARP, LLDP, 802.3 LLC, ... */
	SKIP_IP_MALFORMED,     /* bad version, header length, or length fields */
	SKIP_FRAGMENT,	       /* IPv4 or IPv6 fragment: ports unknown or partial */
	SKIP_ICMP,	       /* ICMP and ICMPv6 */
	SKIP_OTHER_L4,	       /* any other IP protocol (ESP, GRE, SCTP, tunnels, ...) */
	SKIP_L4_MALFORMED,     /* TCP data offset or UDP length inconsistent */
	SKIP_FLOW_TABLE_FULL,  /* the flow table was at its bound */
	SKIP_CSV_BAD_LINE,     /* a CSV row that does not parse */
	SKIP_REASON_COUNT
};

/* Stable snake_case name of a reason, for JSON keys and messages. */
const char *skip_reason_name(enum skip_reason r);

/* True when the address is IPv4-mapped (::ffff:0:0/96). */
bool pkt_addr_is_v4(const uint8_t addr[16]);

/* Format an address as text (dotted quad for IPv4-mapped). buf >= 46 bytes. */
const char *pkt_addr_str(const uint8_t addr[16], char *buf, unsigned long len);

/* The reverse: a dotted quad (stored IPv4-mapped) or an IPv6 address.  0, or -EINVAL. */
int pkt_addr_parse(const char *s, uint8_t out[16]);

#endif
