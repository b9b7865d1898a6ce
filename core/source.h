/* SPDX-License-Identifier: MIT */
/*
 * source.h - read packets from a file: pcap, pcapng (through libpcap) or the
 * project's samples CSV (csv.h), each optionally compressed with gzip or xz.
 * The type is detected from the content (peeked, never by seeking), never
 * from the name, so standard input and pipes are read like files.
 *
 * A source yields packet records or counted skips, and stops with an error
 * message naming the file and the position when the rest cannot be read
 * (truncated capture, I/O error): what was read before stays valid.
 */
#ifndef FLOWPIC_SOURCE_H
#define FLOWPIC_SOURCE_H

#include <stdint.h>

#include "pkt.h"

enum source_kind { SOURCE_PCAP, SOURCE_PCAPNG, SOURCE_CSV };

enum source_status {
	SOURCE_PACKET,	/* *out holds a TCP/UDP packet */
	SOURCE_SKIPPED, /* a record was read but skipped: *why says why */
	SOURCE_END,	/* end of input */
	SOURCE_ERROR,	/* reading stopped; source_error() says why */
};

struct source;

/*
 * Open a file, or standard input for "-" (also a pipe, FIFO or device:
 * read once as a stream, never seeked).  NULL on failure with errno set and
 * a one-line message in err ("FILE: what is wrong", with FILE as
 * source_name() gives it).
 */
struct source *source_open(const char *path, char *err, unsigned long errlen);
/* The input's name in messages and summaries: "(stdin)" for "-". */
const char *source_name(const char *path);
void source_close(struct source *s);

enum source_status source_next(struct source *s, struct pkt *out, enum skip_reason *why);

/* One-line message of the last SOURCE_ERROR (or warning), "" if none. */
const char *source_error(const struct source *s);
enum source_kind source_kind(const struct source *s);
const char *source_kind_name(enum source_kind k);
/* For pcap sources, the LINKTYPE_ value; -1 for CSV. */
int source_linktype(const struct source *s);
/* Records read so far (packets and skips), and the byte position in the file
 * (compressed bytes for compressed input) for progress and messages; the
 * size is 0 for a stream (standard input, a pipe). */
uint64_t source_records(const struct source *s);
uint64_t source_file_pos(const struct source *s);
uint64_t source_file_size(const struct source *s);

#endif
