/* SPDX-License-Identifier: MIT */
/*
 * vjson.h - a verdict from one JSON line, for flowpic-send.
 *
 * Accepts the lines `flowpic classify --json` prints (docs/json.md): a
 * flow's combined verdict ("type":"flow": the flow fields of `flowpic flows
 * --json` plus "class", "confidence", "probs" as {"class":p,...}, "early",
 * "reason"), a block verdict ("type":"block"), a stored verdict from
 * `flowpic-collector query` ("type":"verdict"), and a minimal form with the
 * proto's field names where they mean the same (docs/stream.md):
 *   {"interface":"eth0","src_addr":"10.0.0.1","dst_addr":"10.0.0.2",
 *    "src_port":1234,"dst_port":443,"protocol":6,"direction":"outbound",
 *    "flow_id":7,"stage":"final","start_unix_ns":...,"duration_ns":...,
 *    "packets_fwd":..,"packets_rev":..,"payload_bytes_fwd":..,
 *    "payload_bytes_rev":..,"block_index":0,"blocks":2,"class_name":"video",
 *    "confidence":0.93,"probs":[...],"reason":"ok"}
 * The wire's Span.bytes_fwd/rev are payload bytes: they are read from
 * "payload_bytes_fwd"/"_rev"; "bytes_fwd" in a flow line is IP bytes and is
 * not sent.  Nested objects ("flow":{...}, "span":{...}) are read by their
 * leaf names.  Lines of another "type" (summary, counters, event, log) are
 * skipped.
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
