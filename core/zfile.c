// SPDX-License-Identifier: MIT
/*
 * zfile.c - transparent gzip/xz decompression through fopencookie(); see zfile.h.
 *
 * A regular file is read through stdio and rewound after its magic is
 * sniffed.  Anything else (standard input, a pipe, a FIFO, a device) cannot
 * be rewound: it is read with read(2), the sniffed bytes are fed to the
 * decoder (or handed out first, plain), and the peeked content is replayed
 * by the stream, so nothing is read twice.
 */
#include "zfile.h"

#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define ZBUF 65536
#define ZFILE_BUF (1 << 20)
#define ZFILE_XZ_MEMLIMIT (256ULL << 20)

struct zfile {
	enum zfile_codec codec;
	FILE *raw;    /* a regular file on disk (NULL for a stream) */
	int fd;	      /* a stream's descriptor (-1 for a regular file) */
	FILE *stream; /* what readers read */
	uint64_t raw_size;
	uint64_t raw_read; /* bytes read from a stream's descriptor */
	size_t in_pend;	   /* plain stream: sniffed bytes in in[] not yet handed out */
	size_t in_pos;
	uint8_t peek[ZFILE_PEEK_MAX]; /* content peeked, handed out first */
	size_t peek_len, peek_pos;
	z_stream gz;
	lzma_stream xz;
	int eof;	   /* raw input exhausted */
	int done;	   /* decoder said stream end */
	int stream_closed; /* fclose()d by its reader (pcap_close) */
	const char *why;   /* why decompression failed, for messages */
	uint8_t in[ZBUF];
};

/* Raw bytes: 0 at the end, -1 with errno on error. */
static ssize_t raw_read(struct zfile *z, void *buf, size_t len)
{
	ssize_t n;

	if (z->raw) {
		n = (ssize_t)fread(buf, 1, len, z->raw);
		return n == 0 && ferror(z->raw) ? -1 : n;
	}
	do
		n = read(z->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		z->raw_read += (uint64_t)n;
	return n;
}

/* A plain stream: the sniffed bytes first, then the descriptor. */
static ssize_t plain_read(struct zfile *z, char *buf, size_t len)
{
	if (z->in_pos < z->in_pend) {
		size_t n = z->in_pend - z->in_pos < len ? z->in_pend - z->in_pos : len;

		memcpy(buf, z->in + z->in_pos, n);
		z->in_pos += n;
		return (ssize_t)n;
	}
	return raw_read(z, buf, len);
}

static ssize_t z_read(struct zfile *z, char *buf, size_t len)
{
	size_t produced = 0;

	if (z->codec == ZFILE_PLAIN)
		return plain_read(z, buf, len);
	while (produced < len && !z->done) {
		uint8_t *next_in;
		size_t avail_in;
		int rc;

		avail_in = z->codec == ZFILE_GZIP ? z->gz.avail_in : z->xz.avail_in;
		if (avail_in == 0 && !z->eof) {
			ssize_t n;

			/* A stream hands out what it has rather than wait
			 * for more input (a live capture piped in). */
			if (produced && !z->raw)
				break;
			n = raw_read(z, z->in, ZBUF);
			if (n < 0)
				return -1;
			if (n == 0)
				z->eof = 1;
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
					ssize_t n = raw_read(z, z->in, ZBUF);

					if (n < 0)
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

/* The stream's read: the peeked bytes first, then the content. */
static ssize_t z_cookie_read(void *cookie, char *buf, size_t len)
{
	struct zfile *z = cookie;

	if (z->peek_pos < z->peek_len) {
		size_t n = z->peek_len - z->peek_pos < len ? z->peek_len - z->peek_pos : len;

		memcpy(buf, z->peek + z->peek_pos, n);
		z->peek_pos += n;
		return (ssize_t)n;
	}
	return z_read(z, buf, len);
}

static int z_close(void *cookie)
{
	struct zfile *z = cookie;

	z->stream_closed = 1;
	return 0;
}

const char *zfile_name(const char *path)
{
	return strcmp(path, ZFILE_STDIN) ? path : "(stdin)";
}

/* Read up to len bytes, retrying short reads (a pipe): the count, or -1. */
static ssize_t raw_read_full(struct zfile *z, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = raw_read(z, buf + got, len - got);

		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

struct zfile *zfile_open(const char *path, char *err, unsigned long errlen)
{
	static const uint8_t xz_magic[6] = { 0xfd, '7', 'z', 'X', 'Z', 0 };
	cookie_io_functions_t io = { .read = z_cookie_read, .close = z_close };
	const char *name = zfile_name(path);
	struct zfile *z;
	struct stat st;
	ssize_t n;
	int fd, e;

	z = calloc(1, sizeof(*z));
	if (!z) {
		snprintf(err, errlen, "%s: out of memory", name);
		errno = ENOMEM;
		return NULL;
	}
	z->fd = -1;
	/* Standard input is duplicated so closing is the same for every input. */
	fd = strcmp(path, ZFILE_STDIN) ? open(path, O_RDONLY | O_CLOEXEC) :
					 fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s: cannot open: %s", name, strerror(e));
		goto err_free;
	}
	if (fstat(fd, &st)) {
		e = errno;
		snprintf(err, errlen, "%s: cannot stat: %s", name, strerror(e));
		goto err_fd;
	}
	if (S_ISDIR(st.st_mode)) {
		e = EISDIR;
		snprintf(err, errlen, "%s: is a directory, not a capture or samples CSV", name);
		goto err_fd;
	}
	if (S_ISREG(st.st_mode)) {
		z->raw_size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
		z->raw = fdopen(fd, "rb");
		if (!z->raw) {
			e = errno;
			snprintf(err, errlen, "%s: cannot open: %s", name, strerror(e));
			goto err_fd;
		}
		/* Large reads: stdio's default 4 KiB buffer costs a read() call per
		 * 4 KiB, a fifth of the time of a whole pcap -> FlowPics run. */
		setvbuf(z->raw, NULL, _IOFBF, ZFILE_BUF);
		/* One thread reads a source: stdio's per-call locking (libpcap makes
		 * two fread() calls per packet) buys nothing. */
		__fsetlocking(z->raw, FSETLOCKING_BYCALLER);
	} else {
		z->fd = fd; /* a pipe, FIFO or device: read once, never rewound */
	}
	n = raw_read_full(z, z->in, sizeof(xz_magic));
	if (n < 0) {
		e = errno;
		snprintf(err, errlen, "%s: cannot read: %s", name, strerror(e));
		goto err_close;
	}
	if (z->raw) {
		rewind(z->raw);
		z->in_pend = 0;
	} else {
		z->in_pend = (size_t)n; /* the decoder's (or the reader's) first bytes */
	}
	if (n >= 2 && z->in[0] == 0x1f && z->in[1] == 0x8b) {
		z->codec = ZFILE_GZIP;
		/* 15 + 16: zlib window, gzip header expected. */
		if (inflateInit2(&z->gz, 15 + 16) != Z_OK)
			goto err_codec;
		z->gz.next_in = z->in;
		z->gz.avail_in = (uInt)z->in_pend;
	} else if (n == 6 && !memcmp(z->in, xz_magic, 6)) {
		z->codec = ZFILE_XZ;
		/* A bound on the decoder's memory: the file's header chooses the
		 * dictionary size (xz -9 needs 65 MiB; a crafted file asks 4 GiB). */
		if (lzma_stream_decoder(&z->xz, ZFILE_XZ_MEMLIMIT, LZMA_CONCATENATED) != LZMA_OK)
			goto err_codec;
		z->xz.next_in = z->in;
		z->xz.avail_in = z->in_pend;
	} else {
		z->codec = ZFILE_PLAIN;
		if (z->raw) {
			z->stream = z->raw; /* the fast path: libpcap reads the file */
			return z;
		}
	}
	z->stream = fopencookie(z, "rb", io);
	if (!z->stream) {
		if (z->codec == ZFILE_GZIP)
			inflateEnd(&z->gz);
		else if (z->codec == ZFILE_XZ)
			lzma_end(&z->xz);
		goto err_codec;
	}
	setvbuf(z->stream, NULL, _IOFBF, ZFILE_BUF);
	__fsetlocking(z->stream, FSETLOCKING_BYCALLER);
	return z;

err_codec:
	e = ENOMEM;
	snprintf(err, errlen, "%s: cannot start the decompressor", name);
err_close:
	if (z->raw) {
		fclose(z->raw);
		fd = -1;
	}
err_fd:
	if (fd >= 0)
		close(fd);
err_free:
	free(z);
	errno = e;
	return NULL;
}

ssize_t zfile_peek(struct zfile *z, void *buf, size_t len)
{
	ssize_t n;

	if (len > ZFILE_PEEK_MAX)
		len = ZFILE_PEEK_MAX;
	if (z->stream == z->raw) { /* a plain regular file: read, then rewind */
		n = (ssize_t)fread(buf, 1, len, z->raw);
		if (n == 0 && ferror(z->raw))
			return -EIO;
		rewind(z->raw);
		return n;
	}
	/* Through the decoder, kept for the stream to hand out first. */
	while (z->peek_len < len) {
		n = z_read(z, (char *)z->peek + z->peek_len, len - z->peek_len);
		if (n < 0) {
			if (!z->peek_len)
				return -(errno ? errno : EIO);
			break;
		}
		if (n == 0)
			break;
		z->peek_len += (size_t)n;
	}
	memcpy(buf, z->peek, z->peek_len < len ? z->peek_len : len);
	return (ssize_t)(z->peek_len < len ? z->peek_len : len);
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
	long pos;

	if (!z->raw)
		return z->raw_read;
	pos = ftell(z->raw);
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
	if (z->stream == z->raw)
		z->raw = NULL; /* it was the stream */
}

void zfile_close(struct zfile *z)
{
	if (!z)
		return;
	if (!z->stream_closed && z->stream != z->raw)
		fclose(z->stream); /* the cookie's close only sets the flag */
	if (z->codec == ZFILE_GZIP)
		inflateEnd(&z->gz);
	else if (z->codec == ZFILE_XZ)
		lzma_end(&z->xz);
	if (z->raw)
		fclose(z->raw);
	if (z->fd >= 0)
		close(z->fd);
	free(z);
}
