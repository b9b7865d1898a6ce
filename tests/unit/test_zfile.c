// SPDX-License-Identifier: MIT
/*
 * test_zfile.c - core/zfile.h on streams: a pipe (also as "-", standard
 * input) written in dribbles, plain, gzip and xz: the magic is sniffed and
 * zfile_peek() gives the first bytes without seeking, and the stream then
 * gives every byte, the peeked ones again; a regular file the same way; a
 * cut xz stream and a directory fail with a reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "core/zfile.h"

#define CONTENT_LEN 300000

enum codec { PLAIN, GZIP, XZ };

static uint8_t content[CONTENT_LEN];

/* Text-like bytes that compress, but not to nothing. */
static void make_content(void)
{
	uint32_t x = 12345;
	size_t i;

	for (i = 0; i < CONTENT_LEN; i++) {
		x = x * 1103515245u + 12345u;
		content[i] = (uint8_t)("abcdefgh,.\n0123"[(x >> 16) & 15]);
	}
}

/* content encoded by codec, in a buffer from malloc(). */
static uint8_t *encode(enum codec c, size_t *len)
{
	uint8_t *out = malloc(CONTENT_LEN + 4096);
	size_t pos = 0;
	z_stream z = { 0 };

	assert_non_null(out);
	if (c == PLAIN) {
		memcpy(out, content, CONTENT_LEN);
		*len = CONTENT_LEN;
	} else if (c == GZIP) {
		assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY),
				 Z_OK);
		z.next_in = content;
		z.avail_in = CONTENT_LEN;
		z.next_out = out;
		z.avail_out = CONTENT_LEN + 4096;
		assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
		*len = z.total_out;
		deflateEnd(&z);
	} else {
		assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, content,
							 CONTENT_LEN, out, &pos,
							 CONTENT_LEN + 4096),
				 LZMA_OK);
		*len = pos;
	}
	return out;
}

/*
 * A child writes buf into a pipe: 1 byte, 2 bytes, then chunks of 997, with
 * pauses, so the reader meets short reads, the magic split among them.
 * Returns the read end; *pid the child.
 */
static int dribble(const uint8_t *buf, size_t len, pid_t *pid)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	*pid = fork();
	assert_true(*pid >= 0);
	if (*pid == 0) {
		size_t pos = 0, n;

		close(p[0]);
		while (pos < len) {
			n = pos == 0 ? 1 : pos == 1 ? 2 : 997;
			if (n > len - pos)
				n = len - pos;
			if (write(p[1], buf + pos, n) != (ssize_t)n)
				_exit(1);
			pos += n;
			if (pos <= 3)
				usleep(20000);
		}
		_exit(0);
	}
	close(p[1]);
	return p[0];
}

static void reap(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
}

/* Peek, then read everything: the content, byte for byte. */
static void read_all(struct zfile *z, size_t raw_len, bool stream)
{
	uint8_t peek[ZFILE_PEEK_MAX], *got = malloc(CONTENT_LEN + 1);
	size_t n;

	assert_non_null(got);
	assert_int_equal(zfile_peek(z, peek, 32), 32);
	assert_memory_equal(peek, content, 32);
	assert_int_equal(zfile_peek(z, peek, 8), 8); /* again: the same bytes */
	assert_memory_equal(peek, content, 8);
	n = fread(got, 1, CONTENT_LEN + 1, zfile_stream(z));
	assert_int_equal(n, CONTENT_LEN);
	assert_memory_equal(got, content, CONTENT_LEN);
	assert_null(zfile_error(z));
	if (stream) {
		assert_int_equal(zfile_raw_size(z), 0);
		assert_int_equal(zfile_raw_pos(z), raw_len);
	} else {
		assert_int_equal(zfile_raw_size(z), raw_len);
	}
	free(got);
}

static void pipe_codec(enum codec c, bool as_stdin)
{
	char path[64], err[256];
	size_t len;
	uint8_t *enc = encode(c, &len);
	pid_t pid;
	int fd = dribble(enc, len, &pid), saved = -1;
	struct zfile *z;

	if (as_stdin) {
		saved = dup(STDIN_FILENO);
		assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
		snprintf(path, sizeof(path), "-");
	} else {
		snprintf(path, sizeof(path), "/dev/fd/%d", fd);
	}
	z = zfile_open(path, err, sizeof(err));
	assert_non_null(z);
	assert_int_equal(zfile_codec(z), c == PLAIN ? ZFILE_PLAIN :
					 c == GZIP  ? ZFILE_GZIP :
						      ZFILE_XZ);
	read_all(z, len, true);
	zfile_close(z);
	if (as_stdin) {
		assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
		close(saved);
	}
	close(fd);
	reap(pid);
	free(enc);
}

static void test_pipe_plain(void **state)
{
	(void)state;
	pipe_codec(PLAIN, false);
}

static void test_pipe_gzip(void **state)
{
	(void)state;
	pipe_codec(GZIP, false);
}

static void test_pipe_xz(void **state)
{
	(void)state;
	pipe_codec(XZ, false);
}

static void test_stdin_gzip(void **state)
{
	(void)state;
	pipe_codec(GZIP, true);
	pipe_codec(PLAIN, true);
}

/* A regular file: sniffed and peeked by rewinding, the same bytes. */
static void test_regular_file(void **state)
{
	enum codec c;

	(void)state;
	for (c = PLAIN; c <= XZ; c++) {
		char path[] = "/tmp/test_zfile.XXXXXX", err[256];
		size_t len;
		uint8_t *enc = encode(c, &len);
		int fd = mkstemp(path);
		struct zfile *z;

		assert_true(fd >= 0);
		assert_int_equal(write(fd, enc, len), (ssize_t)len);
		close(fd);
		z = zfile_open(path, err, sizeof(err));
		assert_non_null(z);
		read_all(z, len, false);
		zfile_close(z);
		unlink(path);
		free(enc);
	}
}

/* An xz stream cut short: what was there is read, then the reason. */
static void test_pipe_xz_cut(void **state)
{
	char path[64], err[256];
	uint8_t buf[4096];
	size_t len, total = 0, n;
	uint8_t *enc = encode(XZ, &len);
	pid_t pid;
	int fd = dribble(enc, len / 2, &pid);
	struct zfile *z;

	(void)state;
	snprintf(path, sizeof(path), "/dev/fd/%d", fd);
	z = zfile_open(path, err, sizeof(err));
	assert_non_null(z);
	assert_int_equal(zfile_peek(z, buf, 16), 16);
	while ((n = fread(buf, 1, sizeof(buf), zfile_stream(z))) > 0)
		total += n;
	assert_true(total > 0 && total < CONTENT_LEN);
	assert_true(ferror(zfile_stream(z)));
	assert_string_equal(zfile_error(z), "xz data ends early (file cut short?)");
	zfile_close(z);
	close(fd);
	reap(pid);
	free(enc);
}

/* An empty pipe: peek gives 0 bytes; a directory is refused by name. */
static void test_empty_and_directory(void **state)
{
	char err[256];
	uint8_t buf[8];
	struct zfile *z;
	int p[2], saved = dup(STDIN_FILENO);

	(void)state;
	assert_int_equal(pipe(p), 0);
	close(p[1]);
	assert_int_equal(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
	z = zfile_open("-", err, sizeof(err));
	assert_non_null(z);
	assert_int_equal(zfile_peek(z, buf, sizeof(buf)), 0);
	zfile_close(z);
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
	close(p[0]);
	assert_string_equal(zfile_name("-"), "(stdin)");
	assert_string_equal(zfile_name("a.pcap"), "a.pcap");

	errno = 0;
	assert_null(zfile_open("/tmp", err, sizeof(err)));
	assert_int_equal(errno, EISDIR);
	assert_non_null(strstr(err, "/tmp: is a directory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipe_plain),
		cmocka_unit_test(test_pipe_gzip),
		cmocka_unit_test(test_pipe_xz),
		cmocka_unit_test(test_stdin_gzip),
		cmocka_unit_test(test_regular_file),
		cmocka_unit_test(test_pipe_xz_cut),
		cmocka_unit_test(test_empty_and_directory),
	};

	signal(SIGPIPE, SIG_IGN);
	make_content();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
