// SPDX-License-Identifier: MIT
/* pkt.c - names of skip reasons and address formatting; see pkt.h. */
#include "pkt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

static const char *const reason_names[SKIP_REASON_COUNT] = {
	[SKIP_NONE] = "none",
	[SKIP_LINK_UNSUPPORTED] = "link_unsupported",
	[SKIP_TRUNCATED] = "truncated",
	[SKIP_NOT_IP] = "not_ip",
	[SKIP_IP_MALFORMED] = "ip_malformed",
	[SKIP_FRAGMENT] = "fragment",
	[SKIP_ICMP] = "icmp",
	[SKIP_OTHER_L4] = "other_l4",
	[SKIP_L4_MALFORMED] = "l4_malformed",
	[SKIP_FLOW_TABLE_FULL] = "flow_table_full",
	[SKIP_CSV_BAD_LINE] = "csv_bad_line",
};

const char *skip_reason_name(enum skip_reason r)
{
	if ((unsigned)r >= SKIP_REASON_COUNT)
		return "unknown";
	return reason_names[r];
}

bool pkt_addr_is_v4(const uint8_t addr[16])
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(addr, prefix, 12) == 0;
}

const char *pkt_addr_str(const uint8_t addr[16], char *buf, unsigned long len)
{
	if (pkt_addr_is_v4(addr))
		return inet_ntop(AF_INET, addr + 12, buf, (socklen_t)len);
	return inet_ntop(AF_INET6, addr, buf, (socklen_t)len);
}

int pkt_addr_parse(const char *s, uint8_t out[16])
{
	uint8_t v4[4];

	if (inet_pton(AF_INET, s, v4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, v4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, s, out) == 1 ? 0 : -EINVAL;
}
