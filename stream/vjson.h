/* SPDX-License-Identifier: MIT */
/*
 * vjson.h - a verdict from one JSON line, for flowpic-send.
 *
 * Accepts the lines `flowpic classify --json` prints (a flow's combined
 * verdict: the flow fields of `flowpic flows --json` plus "class",
 * "confidence", "probs" as {"class":p,...}, "early", "reason"; a block verdict
 * {"block":{...}}) and a
 * minimal form with the proto's own field names (docs/stream.md):
 *   {"interface":"eth0","src_addr":"10.0.0.1","dst_addr":"10.0.0.2",
 *    "src_port":1234,"dst_port":443,"protocol":6,"direction":"outbound",
 *    "flow_id":7,"stage":"final","start_unix_ns":...,"duration_ns":...,
 *    "packets_fwd":..,"packets_rev":..,"bytes_fwd":..,"bytes_rev":..,
 *    "block_index":0,"blocks":2,"class_name":"video","confidence":0.93,
 *    "probs":[...],"reason":"ok"}
 * Nested objects ("flow":{...}, "span":{...}) are read by their leaf names.
 */
#ifndef FLOWPIC_STREAM_VJSON_H
#define FLOWPIC_STREAM_VJSON_H

#include <stddef.h>

#include "stream.h"

/* Class names, when "probs" is an object {"voip":0.9,...} (classify --json). */
struct vjson_classes {
	char names[STREAM_MAX_CLASSES][STREAM_CLASS_MAX];
	unsigned n;
};

/*
 * 0: *v filled (and *classes, if not NULL, from a "probs" object); 1: not a
 * verdict (a "summary" line, an empty line): skip; -EINVAL: malformed, one
 * line in err saying what and at which byte.
 */
int vjson_parse(const char *line, size_t len, struct stream_verdict *v,
		struct vjson_classes *classes, char *err, size_t errlen);

#endif
