/* SPDX-License-Identifier: MIT */
/*
 * csv.h - the samples CSV: one row per TCP/UDP packet record, the project's
 * exchange format (the seed's FlowCsvClassifier input).  Documented in
 * docs/csv.md.  A first line "# flowpic samples v1" names the format; then a
 * header row names the columns, in any order:
 *
 *   time     seconds since the Unix epoch, up to 9 decimals (exact, no float)
 *   proto    6 / 17, or tcp / udp
 *   src, sport, dst, dport   the packet's own source and destination
 *   size     transport payload bytes
 *   ip_len   (optional) IP length; estimated from size when absent
 *   tcp_flags (optional) TCP flags byte, decimal or 0x hex
 *   tcp_mss, tcp_ts (optional) a SYN's MSS and timestamp options (struct
 *            pkt), empty on other packets
 *
 * Other columns (a label, a flow id) are ignored.  Rows in capture order.
 * Writing then reading gives the same packet records bit for bit, so
 * pcap -> CSV -> FlowPics equals pcap -> FlowPics.
 */
#ifndef FLOWPIC_CSV_H
#define FLOWPIC_CSV_H

#include <stdio.h>

#include "pkt.h"

#define CSV_MAGIC "# flowpic samples v1"
#define CSV_HEADER "time,proto,src,sport,dst,dport,size,ip_len,tcp_flags,tcp_mss,tcp_ts"
#define CSV_MAX_LINE 1024
#define CSV_MAX_LINE_STR "1024"

enum csv_col {
	CSV_TIME,
	CSV_PROTO,
	CSV_SRC,
	CSV_SPORT,
	CSV_DST,
	CSV_DPORT,
	CSV_SIZE,
	CSV_IP_LEN,
	CSV_TCP_FLAGS,
	CSV_TCP_MSS,
	CSV_TCP_TS,
	CSV_NCOLS
};

/* Column positions from a header row. */
struct csv_layout {
	int pos[CSV_NCOLS]; /* field index of each column, -1 when absent */
	int nfields;
};

/* Write the magic line and the header. */
void csv_write_header(FILE *out);
void csv_write_pkt(FILE *out, const struct pkt *p);

/* Parse a header row (modified in place).  0, or a negative errno (-EINVAL,
 * -E2BIG: too many columns) with a reason in err. */
int csv_parse_header(char *line, struct csv_layout *lay, char *err, unsigned long errlen);

/* Parse a data row (modified in place).  SKIP_NONE with *out filled; a
 * skip reason (non-TCP/UDP protocol); or SKIP_CSV_BAD_LINE with err set. */
enum skip_reason csv_parse_row(char *line, const struct csv_layout *lay, struct pkt *out, char *err,
			       unsigned long errlen);

#endif
