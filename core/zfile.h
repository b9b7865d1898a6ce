/* SPDX-License-Identifier: MIT */
/*
 * zfile.h - open a file as a stdio stream, decompressing gzip or xz on the
 * fly (detected from the magic bytes), so that libpcap and the CSV reader
 * read compressed captures such as ../shared/data/requet/ *.pcap.xz as is.
 *
 * "-" is standard input.  Standard input, pipes, FIFOs and devices are
 * streams: read once from the start, never seeked (the magic bytes and
 * zfile_peek() are kept in memory and handed out again).
 */
#ifndef FLOWPIC_ZFILE_H
#define FLOWPIC_ZFILE_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* The path that means standard input. */
#define ZFILE_STDIN "-"
/* Most bytes zfile_peek() gives. */
#define ZFILE_PEEK_MAX 64

enum zfile_codec { ZFILE_PLAIN, ZFILE_GZIP, ZFILE_XZ };

struct zfile;

/* NULL with errno set on failure (a message in err, naming the input as
 * zfile_name() does). */
struct zfile *zfile_open(const char *path, char *err, unsigned long errlen);
/* The input's name in messages: "(stdin)" for "-", else path. */
const char *zfile_name(const char *path);
/*
 * The first len (at most ZFILE_PEEK_MAX) bytes of the decompressed content,
 * before anything is read from the stream, which then gives them again.
 * The count (less at the end of the input), or a negative errno.
 */
ssize_t zfile_peek(struct zfile *z, void *buf, size_t len);
/* The (decompressed) stream to read. */
FILE *zfile_stream(struct zfile *z);
enum zfile_codec zfile_codec(const struct zfile *z);
/* Why decompression stopped ("gzip data corrupt", ...), or NULL. */
const char *zfile_error(const struct zfile *z);
/* Bytes of the file on disk read so far, and its size (0 for a stream). */
uint64_t zfile_raw_pos(const struct zfile *z);
uint64_t zfile_raw_size(const struct zfile *z);
/* The reader closed the stream itself (pcap_close() fcloses it). */
void zfile_stream_closed(struct zfile *z);
/* Closes the stream unless its reader did, and frees everything. */
void zfile_close(struct zfile *z);

#endif
