// SPDX-License-Identifier: MIT
/*
 * fuzz_parse.c - libFuzzer target for parse_frame(): any bytes, any decoded
 * link type, any wire length.  The parser must never read outside the
 * frame, and a decoded packet's sizes must be consistent with its IP length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int links[] = { LINK_NULL,	     LINK_ETHERNET, LINK_RAW,  LINK_LOOP,
			     LINK_LINUX_SLL, LINK_IPV4,	    LINK_IPV6, LINK_LINUX_SLL2 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t wirelen;
	uint8_t *frame;
	struct pkt p;

	if (size < 3)
		return 0;
	wirelen = (uint32_t)(size - 3) + (uint32_t)data[1] * 256 + data[2];
	/* A copy of exactly the frame's size, so ASan sees any over-read. */
	frame = malloc(size - 3 ? size - 3 : 1);
	if (!frame)
		return 0;
	memcpy(frame, data + 3, size - 3);
	if (parse_frame(links[data[0] % 8], frame, (uint32_t)(size - 3), wirelen, &p) ==
	    SKIP_NONE) {
		if (p.proto != 6 && p.proto != 17)
			abort();
		if (p.size > p.ip_len)
			abort();
	}
	free(frame);
	return 0;
}
