// SPDX-License-Identifier: MIT
/* csv.c - the samples CSV; see csv.h. */
#include "csv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "number.h"

static const char *const col_names[CSV_NCOLS] = { "time",      "proto",	  "src",   "sport",
						  "dst",       "dport",	  "size",  "ip_len",
						  "tcp_flags", "tcp_mss", "tcp_ts" };

void csv_write_header(FILE *out)
{
	fputs(CSV_MAGIC "\n" CSV_HEADER "\n", out);
}

void csv_write_pkt(FILE *out, const struct pkt *p)
{
	char s[64], d[64];

	fprintf(out, "%" PRIu64 ".%09" PRIu64 ",%u,%s,%u,%s,%u,%u,%u,%u,", p->ts_ns / NS_PER_SEC,
		p->ts_ns % NS_PER_SEC, p->proto, pkt_addr_str(p->src, s, sizeof(s)), p->sport,
		pkt_addr_str(p->dst, d, sizeof(d)), p->dport, p->size, p->ip_len, p->tcp_flags);
	/* Only SYNs carry options: empty fields elsewhere keep rows short. */
	if (p->tcp_mss || p->tcp_ts)
		fprintf(out, "%u,%u\n", p->tcp_mss, p->tcp_ts);
	else
		fputs(",\n", out);
}

/* Split on commas in place; returns the number of fields (at most max). */
static int split(char *line, char **fields, int max)
{
	int n = 0;
	char *p = line;

	line[strcspn(line, "\r\n")] = 0;
	while (n < max) {
		fields[n++] = p;
		p = strchr(p, ',');
		if (!p)
			break;
		*p++ = 0;
	}
	return p ? -E2BIG : n;
}

#define CSV_MAX_FIELDS 64

int csv_parse_header(char *line, struct csv_layout *lay, char *err, unsigned long errlen)
{
	char *f[CSV_MAX_FIELDS];
	int n = split(line, f, CSV_MAX_FIELDS), i, c;

	if (n < 0) {
		snprintf(err, errlen, "header has more than %d columns", CSV_MAX_FIELDS);
		return n;
	}
	for (c = 0; c < CSV_NCOLS; c++)
		lay->pos[c] = -1;
	lay->nfields = n;
	for (i = 0; i < n; i++) {
		for (c = 0; c < CSV_NCOLS; c++) {
			if (strcmp(f[i], col_names[c]))
				continue;
			if (lay->pos[c] >= 0) {
				snprintf(err, errlen, "column '%s' appears twice", col_names[c]);
				return -EINVAL;
			}
			lay->pos[c] = i;
		}
	}
	for (c = 0; c <= CSV_SIZE; c++) {
		if (lay->pos[c] < 0) {
			snprintf(err, errlen, "header lacks the column '%s' (need %s)",
				 col_names[c], "time,proto,src,sport,dst,dport,size");
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	return number_parse_u64(s, 0, max, out);
}

#define BAD(...) \
	do { \
		snprintf(err, errlen, __VA_ARGS__); \
		return SKIP_CSV_BAD_LINE; \
	} while (0)

enum skip_reason csv_parse_row(char *line, const struct csv_layout *lay, struct pkt *out, char *err,
			       unsigned long errlen)
{
	char *f[CSV_MAX_FIELDS];
	int n = split(line, f, CSV_MAX_FIELDS);
	uint64_t v;

	if (n != lay->nfields)
		BAD("%d fields, the header has %d", n < 0 ? CSV_MAX_FIELDS + 1 : n, lay->nfields);
	memset(out, 0, sizeof(*out));
	if (number_parse_seconds(f[lay->pos[CSV_TIME]], &out->ts_ns))
		BAD("time '%.40s' is not seconds with at most 9 decimals", f[lay->pos[CSV_TIME]]);
	if (!strcmp(f[lay->pos[CSV_PROTO]], "tcp"))
		v = 6;
	else if (!strcmp(f[lay->pos[CSV_PROTO]], "udp"))
		v = 17;
	else if (parse_uint(f[lay->pos[CSV_PROTO]], 255, &v))
		BAD("proto '%.40s' is not 0-255, tcp or udp", f[lay->pos[CSV_PROTO]]);
	out->proto = (uint8_t)v;
	if (pkt_addr_parse(f[lay->pos[CSV_SRC]], out->src))
		BAD("src '%.60s' is not an IPv4 or IPv6 address", f[lay->pos[CSV_SRC]]);
	if (pkt_addr_parse(f[lay->pos[CSV_DST]], out->dst))
		BAD("dst '%.60s' is not an IPv4 or IPv6 address", f[lay->pos[CSV_DST]]);
	if (parse_uint(f[lay->pos[CSV_SPORT]], 65535, &v))
		BAD("sport '%.40s' is not 0-65535", f[lay->pos[CSV_SPORT]]);
	out->sport = (uint16_t)v;
	if (parse_uint(f[lay->pos[CSV_DPORT]], 65535, &v))
		BAD("dport '%.40s' is not 0-65535", f[lay->pos[CSV_DPORT]]);
	out->dport = (uint16_t)v;
	/* Up to 32 bits: TSO and BIG TCP segments exceed 64 KiB. */
	if (parse_uint(f[lay->pos[CSV_SIZE]], 0xffffffffu, &v))
		BAD("size '%.40s' is not a byte count", f[lay->pos[CSV_SIZE]]);
	out->size = (uint32_t)v;
	if (lay->pos[CSV_TCP_FLAGS] >= 0) {
		if (parse_uint(f[lay->pos[CSV_TCP_FLAGS]], 255, &v))
			BAD("tcp_flags '%.40s' is not 0-255", f[lay->pos[CSV_TCP_FLAGS]]);
		out->tcp_flags = (uint8_t)v;
	}
	if (lay->pos[CSV_TCP_MSS] >= 0 && f[lay->pos[CSV_TCP_MSS]][0]) {
		if (parse_uint(f[lay->pos[CSV_TCP_MSS]], 65535, &v))
			BAD("tcp_mss '%.40s' is not 0-65535", f[lay->pos[CSV_TCP_MSS]]);
		out->tcp_mss = (uint16_t)v;
	}
	if (lay->pos[CSV_TCP_TS] >= 0 && f[lay->pos[CSV_TCP_TS]][0]) {
		if (parse_uint(f[lay->pos[CSV_TCP_TS]], 1, &v))
			BAD("tcp_ts '%.40s' is not 0 or 1", f[lay->pos[CSV_TCP_TS]]);
		out->tcp_ts = (uint8_t)v;
	}
	if (lay->pos[CSV_IP_LEN] >= 0) {
		if (parse_uint(f[lay->pos[CSV_IP_LEN]], 0xffffffffu, &v))
			BAD("ip_len '%.40s' is not a byte count", f[lay->pos[CSV_IP_LEN]]);
		out->ip_len = (uint32_t)v;
	} else {
		/* Smallest IP + transport headers: an estimate, said in docs/csv.md. */
		out->ip_len = out->size + (pkt_addr_is_v4(out->src) ? 20 : 40) +
			      (out->proto == 6 ? 20 : 8);
	}
	if (out->proto != 6 && out->proto != 17)
		return out->proto == 1 || out->proto == 58 ? SKIP_ICMP : SKIP_OTHER_L4;
	return SKIP_NONE;
}
