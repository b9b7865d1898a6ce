// SPDX-License-Identifier: MIT
/*
 * test_spool.c - the on-disk spool: write, read back in order across
 * segments, acknowledge and delete, reopen (a restart) and replay, the byte
 * limit exactly, records written in front at close, and damaged segments
 * (a flipped byte, a cut tail, a foreign file): the good records kept.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "stream/spool.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/fpt-stream-spool-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[512];

	(void)state;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
	return 0;
}

/* A payload whose bytes say which batch it is. */
static void payload(uint8_t *buf, uint32_t len, uint64_t seq)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(seq * 31 + i);
}

static void append_n(struct spool *sp, uint64_t from, uint64_t to, uint32_t len)
{
	uint8_t buf[4096];
	uint64_t s;

	for (s = from; s <= to; s++) {
		payload(buf, len, s);
		assert_int_equal(spool_append(sp, s, (uint32_t)s, buf, len), 0);
	}
}

static void read_expect(struct spool *sp, uint64_t seq, uint32_t len)
{
	struct spool_record r;
	uint8_t buf[4096];

	assert_int_equal(spool_read(sp, &r), 0);
	assert_int_equal(r.sequence, seq);
	assert_int_equal(r.verdicts, seq);
	assert_int_equal(r.len, len);
	payload(buf, len, seq);
	assert_memory_equal(r.payload, buf, len);
	spool_record_free(&r);
}

static int count_segments(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while ((de = readdir(d)))
		n += !strncmp(de->d_name, "seg-", 4);
	closedir(d);
	return n;
}

/* The n-th segment file's path (name order). */
static void segment_path(int n, char *out, size_t len)
{
	struct dirent **list;
	int k = scandir(dir, &list, NULL, alphasort), i, seen = 0;

	out[0] = '\0';
	for (i = 0; i < k; i++) {
		if (!strncmp(list[i]->d_name, "seg-", 4) && seen++ == n)
			snprintf(out, len, "%s/%s", dir, list[i]->d_name);
		free(list[i]);
	}
	free(list);
}

static void test_order_ack_delete(void **state)
{
	char err[256];
	struct spool *sp = spool_open(dir, 1 << 20, 1000, STREAM_FSYNC_BATCH, err, sizeof(err));
	struct spool_stats st;
	struct spool_record r;
	uint64_t s;

	(void)state;
	assert_non_null(sp);
	assert_true(spool_is_empty(sp));
	append_n(sp, 1, 20, 200); /* 224 bytes a record: 4 segments of 5 records */
	assert_int_equal(count_segments(), 4);
	spool_get_stats(sp, &st);
	assert_int_equal(st.records, 20);
	assert_int_equal(st.verdicts, 20 * 21 / 2);
	for (s = 1; s <= 6; s++)
		read_expect(sp, s, 200);
	assert_int_equal(spool_in_flight(sp), 6);
	/* Five acks empty the first segment: deleted. */
	for (s = 1; s <= 4; s++)
		assert_int_equal(spool_ack(sp), 0);
	assert_int_equal(count_segments(), 4);
	assert_int_equal(spool_ack(sp), 0);
	assert_int_equal(count_segments(), 3);
	/* The connection breaks: reading starts again at 6. */
	spool_rewind(sp);
	for (s = 6; s <= 20; s++)
		read_expect(sp, s, 200);
	assert_int_equal(spool_read(sp, &r), -ENOENT);
	for (s = 6; s <= 20; s++)
		assert_int_equal(spool_ack(sp), 0);
	assert_int_equal(spool_ack(sp), -ENOENT);
	assert_true(spool_is_empty(sp));
	assert_int_equal(count_segments(), 0);
	spool_get_stats(sp, &st);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.verdicts, 0);
	/* And it starts afresh. */
	append_n(sp, 21, 21, 10);
	read_expect(sp, 21, 10);
	spool_close(sp);
}

static void test_restart_replay(void **state)
{
	char err[256];
	struct spool *sp = spool_open(dir, 1 << 20, 1000, STREAM_FSYNC_SEGMENT, err, sizeof(err));
	struct spool_stats st;
	uint64_t s;

	(void)state;
	append_n(sp, 1, 10, 300);
	read_expect(sp, 1, 300);
	read_expect(sp, 2, 300);
	assert_int_equal(spool_ack(sp), 0); /* 1 acknowledged, 2 in flight at the "crash" */
	spool_close(sp);

	sp = spool_open(dir, 1 << 20, 1000, STREAM_FSYNC_SEGMENT, err, sizeof(err));
	assert_non_null(sp);
	spool_get_stats(sp, &st);
	/* 1 was acknowledged but its segment still holds 2..3: replayed too (at least once). */
	assert_int_equal(st.found_records, 10);
	assert_int_equal(st.corrupt, 0);
	for (s = 1; s <= 10; s++)
		read_expect(sp, s, 300);
	/* New records go to a new segment, after the old ones. */
	append_n(sp, 11, 12, 300);
	read_expect(sp, 11, 300);
	read_expect(sp, 12, 300);
	for (s = 1; s <= 12; s++)
		spool_ack(sp);
	assert_true(spool_is_empty(sp));
	assert_int_equal(count_segments(), 0);
	spool_close(sp);
}

static void test_limit_exact(void **state)
{
	char err[256];
	/* Segment header 16 + 3 records of 24 + 100: 388 bytes; a 4th would need 512. */
	struct spool *sp = spool_open(dir, 500, 1 << 20, STREAM_FSYNC_NEVER, err, sizeof(err));
	uint8_t buf[100] = { 0 };
	struct spool_stats st;

	(void)state;
	append_n(sp, 1, 3, 100);
	assert_int_equal(spool_append(sp, 4, 4, buf, 100), -ENOSPC);
	/* Something smaller still fits: 388 + 24 + 88 = 500. */
	assert_int_equal(spool_append(sp, 5, 5, buf, 88), 0);
	assert_int_equal(spool_append(sp, 6, 6, buf, 0), -ENOSPC);
	spool_get_stats(sp, &st);
	assert_int_equal(st.bytes, 500);
	assert_int_equal(st.records, 4);
	spool_close(sp);
}

static void test_prepend(void **state)
{
	char err[256];
	struct spool *sp = spool_open(dir, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err));
	uint8_t p1[50], p2[50];
	struct spool_batch b[2] = { { 1, 1, 50, p1 }, { 2, 2, 50, p2 } };
	uint64_t s;

	(void)state;
	payload(p1, 50, 1);
	payload(p2, 50, 2);
	append_n(sp, 3, 4, 50); /* the spool holds newer batches */
	assert_int_equal(spool_prepend(sp, b, 2), 2);
	spool_close(sp);
	sp = spool_open(dir, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err));
	for (s = 1; s <= 4; s++)
		read_expect(sp, s, 50);
	spool_close(sp);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x40;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void test_corrupt_record(void **state)
{
	char err[256], path[512];
	struct spool *sp = spool_open(dir, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err));
	struct spool_stats st;
	struct spool_record r;
	uint64_t s;

	(void)state;
	append_n(sp, 1, 10, 100);
	spool_close(sp);
	segment_path(0, path, sizeof(path));
	/* A payload byte of record 3 (records are 124 bytes after the 16-byte header). */
	flip_byte(path, 16 + 2 * 124 + 24 + 50);
	/* The length field of record 7: the record no longer makes sense. */
	flip_byte(path, 16 + 6 * 124 + 5);
	sp = spool_open(dir, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err));
	assert_non_null(sp);
	spool_get_stats(sp, &st);
	assert_int_equal(st.corrupt, 2);
	assert_int_equal(st.found_records, 8);
	assert_int_equal(st.found_verdicts, 55 - 3 - 7);
	for (s = 1; s <= 10; s++)
		if (s != 3 && s != 7)
			read_expect(sp, s, 100);
	assert_int_equal(spool_read(sp, &r), -ENOENT);
	spool_get_stats(sp, &st);
	assert_int_equal(st.corrupt, 2); /* not counted again when read */
	for (s = 0; s < 8; s++)
		spool_ack(sp);
	assert_true(spool_is_empty(sp));
	spool_close(sp);
	assert_int_equal(count_segments(), 0);
}

static void test_truncated_and_foreign(void **state)
{
	char err[256], path[512], other[512];
	struct spool *sp = spool_open(dir, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err));
	struct spool_stats st;
	struct spool_record r;
	uint64_t s;
	int fd;

	(void)state;
	append_n(sp, 1, 5, 100);
	spool_close(sp);
	segment_path(0, path, sizeof(path));
	/* A crash in the middle of the 5th record's write. */
	assert_int_equal(truncate(path, 16 + 4 * 124 + 60), 0);
	/* And a file that only looks like a segment by its name. */
	snprintf(other, sizeof(other), "%s/seg-00000000ffffffff.fps", dir);
	fd = open(other, O_CREAT | O_WRONLY, 0600);
	assert_int_equal(write(fd, "hello, not a spool", 18), 18);
	close(fd);
	sp = spool_open(dir, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err));
	assert_non_null(sp);
	spool_get_stats(sp, &st);
	assert_int_equal(st.corrupt, 2);
	assert_int_equal(st.found_records, 4);
	for (s = 1; s <= 4; s++)
		read_expect(sp, s, 100);
	for (s = 1; s <= 4; s++)
		spool_ack(sp);
	/* New records after a damaged tail go to a new segment and read back fine. */
	append_n(sp, 6, 6, 100);
	read_expect(sp, 6, 100);
	assert_int_equal(spool_read(sp, &r), -ENOENT);
	spool_ack(sp);
	spool_close(sp);
	/* The foreign file is left alone; ours are gone once acknowledged. */
	assert_int_equal(access(other, F_OK), 0);
	assert_int_equal(count_segments(), 1);
}

static void test_open_errors(void **state)
{
	char err[256];
	struct spool *sp;

	(void)state;
	/* One spool, one writer. */
	sp = spool_open(dir, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err));
	assert_non_null(sp);
	assert_null(spool_open(dir, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err)));
	assert_non_null(strstr(err, "in use by another process"));
	spool_close(sp);
	sp = spool_open(dir, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err));
	assert_non_null(sp);
	spool_close(sp);
	assert_null(spool_open("/proc/fpt-stream-no/such", 1 << 20, 1 << 20, STREAM_FSYNC_BATCH,
			       err, sizeof(err)));
	assert_non_null(strstr(err, "spool /proc/fpt-stream-no/such"));
}

/* A spool others can write to, or someone else's, is refused; one the
 * spool creates is 0700 whatever the umask. */
static void test_dir_mode_owner(void **state)
{
	char err[512], sub[300];
	struct spool *sp;
	struct stat st;
	mode_t old;

	(void)state;
	assert_int_equal(chmod(dir, 0755), 0);
	assert_null(spool_open(dir, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err)));
	assert_int_equal(errno, EACCES);
	assert_non_null(strstr(err, "mode 0755, expected 0700"));
	assert_non_null(strstr(err, "chmod 700"));
	assert_int_equal(chmod(dir, 0770), 0);
	assert_null(spool_open(dir, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err)));
	assert_int_equal(chmod(dir, 0700), 0);
	sp = spool_open(dir, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err));
	assert_non_null(sp);
	spool_close(sp);
	if (geteuid() == 0) {
		assert_int_equal(chown(dir, 65534, 65534), 0);
		assert_null(
			spool_open(dir, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err)));
		assert_non_null(strstr(err, "owned by uid 65534"));
		assert_non_null(strstr(err, "chown 0"));
		assert_int_equal(chown(dir, 0, 0), 0);
	}
	snprintf(sub, sizeof(sub), "%s/new", dir);
	old = umask(0277);
	sp = spool_open(sub, 1 << 20, 1 << 20, STREAM_FSYNC_BATCH, err, sizeof(err));
	umask(old);
	assert_non_null(sp);
	spool_close(sp);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(rmdir(sub), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_ack_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_and_foreign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_mode_owner, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
