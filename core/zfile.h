/* SPDX-License-Identifier: MIT */
/*
 * zfile.h - open a file as a stdio stream, decompressing gzip or xz on the
 * fly (detected from the magic bytes), so that libpcap and the CSV reader
 * read compressed captures such as ../shared/data/requet/ *.pcap.xz as is.
 */
#ifndef FLOWPIC_ZFILE_H
#define FLOWPIC_ZFILE_H

#include <stdint.h>
#include <stdio.h>

enum zfile_codec { ZFILE_PLAIN, ZFILE_GZIP, ZFILE_XZ };

struct zfile;

/* NULL with errno set on failure (a message in err). */
struct zfile *zfile_open(const char *path, char *err, unsigned long errlen);
/* The (decompressed) stream to read. */
FILE *zfile_stream(struct zfile *z);
enum zfile_codec zfile_codec(const struct zfile *z);
/* Why decompression stopped ("gzip data corrupt", ...), or NULL. */
const char *zfile_error(const struct zfile *z);
/* Bytes of the file on disk read so far, and its size. */
uint64_t zfile_raw_pos(const struct zfile *z);
uint64_t zfile_raw_size(const struct zfile *z);
/* The reader closed the stream itself (pcap_close() fcloses it). */
void zfile_stream_closed(struct zfile *z);
/* Closes the stream unless its reader did, and frees everything. */
void zfile_close(struct zfile *z);

#endif
