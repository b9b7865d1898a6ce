// SPDX-License-Identifier: MIT
/* zfile.c - transparent gzip/xz decompression through fopencookie(); see zfile.h. */
#include "zfile.h"

#include <errno.h>
#include <lzma.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define ZBUF 65536
#define ZFILE_BUF (1 << 20)
#define ZFILE_XZ_MEMLIMIT (256ULL << 20)

struct zfile {
	enum zfile_codec codec;
	FILE *raw;    /* the file on disk */
	FILE *stream; /* what readers read */
	uint64_t raw_size;
	z_stream gz;
	lzma_stream xz;
	int eof;	   /* raw input exhausted */
	int done;	   /* decoder said stream end */
	int stream_closed; /* fclose()d by its reader (pcap_close) */
	const char *why;   /* why decompression failed, for messages */
	uint8_t in[ZBUF];
};

static ssize_t z_read(void *cookie, char *buf, size_t len)
{
	struct zfile *z = cookie;
	size_t produced = 0;

	while (produced < len && !z->done) {
		uint8_t *next_in;
		size_t avail_in;
		int rc;

		avail_in = z->codec == ZFILE_GZIP ? z->gz.avail_in : z->xz.avail_in;
		if (avail_in == 0 && !z->eof) {
			size_t n = fread(z->in, 1, ZBUF, z->raw);

			if (n == 0) {
				if (ferror(z->raw))
					return -1;
				z->eof = 1;
			}
			next_in = z->in;
			avail_in = n;
			if (z->codec == ZFILE_GZIP) {
				z->gz.next_in = next_in;
				z->gz.avail_in = (uInt)avail_in;
			} else {
				z->xz.next_in = next_in;
				z->xz.avail_in = avail_in;
			}
		}
		if (z->codec == ZFILE_GZIP) {
			z->gz.next_out = (Bytef *)buf + produced;
			z->gz.avail_out = (uInt)(len - produced);
			rc = inflate(&z->gz, Z_NO_FLUSH);
			produced = len - z->gz.avail_out;
			if (rc == Z_STREAM_END) {
				/* A member ended: the file ends too, or another
				 * member follows (concatenated gzip). */
				if (z->gz.avail_in == 0 && !z->eof) {
					size_t n = fread(z->in, 1, ZBUF, z->raw);

					if (n == 0 && ferror(z->raw))
						return -1;
					z->eof = n == 0;
					z->gz.next_in = z->in;
					z->gz.avail_in = (uInt)n;
				}
				if (z->gz.avail_in == 0)
					z->done = 1;
				else
					inflateReset(&z->gz);
			} else if (rc == Z_BUF_ERROR && z->eof && z->gz.avail_in == 0) {
				z->why = "gzip data ends early (file cut short?)";
				errno = EPROTO;
				return produced ? (ssize_t)produced : -1;
			} else if (rc != Z_OK && rc != Z_BUF_ERROR) {
				z->why = "gzip data corrupt";
				errno = EPROTO;
				return produced ? (ssize_t)produced : -1;
			}
		} else {
			lzma_ret rc2;

			z->xz.next_out = (uint8_t *)buf + produced;
			z->xz.avail_out = len - produced;
			rc2 = lzma_code(&z->xz, z->eof ? LZMA_FINISH : LZMA_RUN);
			produced = len - z->xz.avail_out;
			if (rc2 == LZMA_STREAM_END) {
				z->done = 1;
			} else if (rc2 != LZMA_OK) {
				z->why = rc2 == LZMA_MEMLIMIT_ERROR ?
						 "xz dictionary needs more than 256 MiB (refused)" :
					 rc2 == LZMA_BUF_ERROR ?
						 "xz data ends early (file cut short?)" :
						 "xz data corrupt";
				errno = EPROTO;
				return produced ? (ssize_t)produced : -1;
			}
		}
	}
	return (ssize_t)produced;
}

static int z_close(void *cookie)
{
	struct zfile *z = cookie;

	z->stream_closed = 1;
	return 0;
}

struct zfile *zfile_open(const char *path, char *err, unsigned long errlen)
{
	static const uint8_t xz_magic[6] = { 0xfd, '7', 'z', 'X', 'Z', 0 };
	cookie_io_functions_t io = { .read = z_read, .close = z_close };
	uint8_t magic[6] = { 0 };
	struct zfile *z;
	struct stat st;
	size_t n;

	z = calloc(1, sizeof(*z));
	if (!z) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	z->raw = fopen(path, "rb");
	if (!z->raw) {
		int e = errno;

		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
		free(z);
		errno = e;
		return NULL;
	}
	if (fstat(fileno(z->raw), &st)) {
		int e = errno;

		snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(e));
		fclose(z->raw);
		free(z);
		errno = e;
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		/* The content is read twice (sniffed, then parsed): files only. */
		snprintf(err, errlen,
			 "%s: %s, not a regular file: save the capture to a file first", path,
			 S_ISDIR(st.st_mode) ? "is a directory" : "is a pipe or device");
		fclose(z->raw);
		free(z);
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		return NULL;
	}
	z->raw_size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
	/* Large reads: stdio's default 4 KiB buffer costs a read() call per
	 * 4 KiB, a fifth of the time of a whole pcap -> FlowPics run. */
	setvbuf(z->raw, NULL, _IOFBF, ZFILE_BUF);
	/* One thread reads a source: stdio's per-call locking (libpcap makes
	 * two fread() calls per packet) buys nothing. */
	__fsetlocking(z->raw, FSETLOCKING_BYCALLER);
	n = fread(magic, 1, sizeof(magic), z->raw);
	rewind(z->raw);
	if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
		z->codec = ZFILE_GZIP;
		/* 15 + 16: zlib window, gzip header expected. */
		if (inflateInit2(&z->gz, 15 + 16) != Z_OK)
			goto err_codec;
	} else if (n == 6 && !memcmp(magic, xz_magic, 6)) {
		z->codec = ZFILE_XZ;
		/* A bound on the decoder's memory: the file's header chooses the
		 * dictionary size (xz -9 needs 65 MiB; a crafted file asks 4 GiB). */
		if (lzma_stream_decoder(&z->xz, ZFILE_XZ_MEMLIMIT, LZMA_CONCATENATED) != LZMA_OK)
			goto err_codec;
	} else {
		z->codec = ZFILE_PLAIN;
		z->stream = z->raw;
		return z;
	}
	z->stream = fopencookie(z, "rb", io);
	if (!z->stream) {
		if (z->codec == ZFILE_GZIP)
			inflateEnd(&z->gz);
		else
			lzma_end(&z->xz);
		goto err_codec;
	}
	setvbuf(z->stream, NULL, _IOFBF, ZFILE_BUF);
	__fsetlocking(z->stream, FSETLOCKING_BYCALLER);
	return z;

err_codec:
	snprintf(err, errlen, "%s: cannot start the decompressor", path);
	fclose(z->raw);
	free(z);
	errno = ENOMEM;
	return NULL;
}

FILE *zfile_stream(struct zfile *z)
{
	return z->stream;
}

enum zfile_codec zfile_codec(const struct zfile *z)
{
	return z->codec;
}

uint64_t zfile_raw_pos(const struct zfile *z)
{
	long pos = z->raw ? ftell(z->raw) : -1;

	return pos > 0 ? (uint64_t)pos : 0;
}

const char *zfile_error(const struct zfile *z)
{
	return z->why;
}

uint64_t zfile_raw_size(const struct zfile *z)
{
	return z->raw_size;
}

void zfile_stream_closed(struct zfile *z)
{
	z->stream_closed = 1;
	if (z->codec == ZFILE_PLAIN)
		z->raw = NULL; /* it was the stream */
}

void zfile_close(struct zfile *z)
{
	if (!z)
		return;
	if (!z->stream_closed)
		fclose(z->stream); /* the cookie's close only sets the flag */
	if (z->codec == ZFILE_GZIP)
		inflateEnd(&z->gz);
	else if (z->codec == ZFILE_XZ)
		lzma_end(&z->xz);
	if (z->raw && z->codec != ZFILE_PLAIN)
		fclose(z->raw);
	free(z);
}
