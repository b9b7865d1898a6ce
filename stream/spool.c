// SPDX-License-Identifier: MIT
/* spool.c - append-only segment files of batches; see spool.h. */
#include "spool.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "core/log.h"

#define SEG_MAGIC "FPSPOOL1"
#define SEG_VERSION 1
#define REC_MAGIC "FPSR"
/* Segment numbers of a fresh spool start here, so that spool_prepend() has room below. */
#define SEG_FIRST_ID (1ull << 32)

struct seg {
	uint64_t id;
	uint64_t size;		    /* bytes in the file */
	uint64_t records, verdicts; /* good records in it (acked or not) */
	uint64_t acked_records, acked_verdicts;
	uint64_t ack_off;     /* end of the last acknowledged record */
	uint64_t reported_to; /* corruption before this offset is already reported */
	int rfd;	      /* for reading, -1 until needed */
};

struct flight {
	uint64_t seg_id;
	uint64_t end_off;
	uint32_t verdicts;
};

struct spool {
	char *dir;
	int dfd;
	uint64_t max_bytes, seg_bytes;
	enum stream_fsync fsync_policy;
	struct seg *segs;
	size_t nsegs, capsegs;
	int wfd;      /* appends to segs[nsegs - 1] while >= 0 */
	size_t r_idx; /* read cursor: segment index and offset */
	uint64_t r_off;
	struct flight *fl; /* records read, not acked: a FIFO ring */
	size_t fl_head, fl_n, fl_cap;
	uint8_t *scratch; /* for checking records during the scan */
	size_t scratch_cap;
	struct spool_stats st;
};

struct rec_hdr {
	uint32_t len, verdicts, crc;
	uint64_t sequence;
};

static void seg_name(char *buf, size_t len, uint64_t id)
{
	snprintf(buf, len, "seg-%016" PRIx64 ".fps", id);
}

static uint32_t rec_crc(const uint8_t *hdr, const uint8_t *payload, uint32_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);

	c = crc32(c, hdr + 4, 8);  /* len, verdicts */
	c = crc32(c, hdr + 16, 8); /* sequence */
	return (uint32_t)crc32(c, payload, len);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static void rec_hdr_make(uint8_t *h, uint64_t sequence, uint32_t verdicts, const void *payload,
			 uint32_t len)
{
	memcpy(h, REC_MAGIC, 4);
	put32(h + 4, len);
	put32(h + 8, verdicts);
	put64(h + 16, sequence);
	put32(h + 12, rec_crc(h, payload, len));
}

static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

enum rec_check { REC_OK, REC_SHORT, REC_BAD_MAGIC, REC_BAD_LEN, REC_BAD_CRC, REC_IO };

static const char *rec_check_str(enum rec_check c)
{
	switch (c) {
	case REC_OK:
		return "ok";
	case REC_SHORT:
		return "cut short";
	case REC_BAD_MAGIC:
		return "no record header";
	case REC_BAD_LEN:
		return "impossible length";
	case REC_BAD_CRC:
		return "bad checksum";
	default:
		return "read error";
	}
}

/*
 * Check the record at off (file size size); the payload lands in *buf
 * (grown as needed).  REC_OK and *h, or why not.
 */
static enum rec_check rec_check(int fd, uint64_t off, uint64_t size, struct rec_hdr *h,
				uint8_t **buf, size_t *cap)
{
	uint8_t raw[SPOOL_REC_HDR];
	ssize_t n;

	if (size - off < SPOOL_REC_HDR)
		return REC_SHORT;
	n = pread_full(fd, raw, sizeof(raw), off);
	if (n < 0)
		return REC_IO;
	if ((size_t)n < sizeof(raw))
		return REC_SHORT;
	if (memcmp(raw, REC_MAGIC, 4))
		return REC_BAD_MAGIC;
	h->len = get32(raw + 4);
	h->verdicts = get32(raw + 8);
	h->crc = get32(raw + 12);
	h->sequence = get64(raw + 16);
	if (h->len > SPOOL_MAX_RECORD)
		return REC_BAD_LEN;
	if (size - off - SPOOL_REC_HDR < h->len)
		return REC_SHORT;
	if (*cap < h->len || !*buf) {
		uint8_t *nb = realloc(*buf, h->len ? h->len : 1);

		if (!nb)
			return REC_IO;
		*buf = nb;
		*cap = h->len ? h->len : 1;
	}
	n = pread_full(fd, *buf, h->len, off + SPOOL_REC_HDR);
	if (n < 0)
		return REC_IO;
	if ((size_t)n < h->len)
		return REC_SHORT;
	if (rec_crc(raw, *buf, h->len) != h->crc)
		return REC_BAD_CRC;
	return REC_OK;
}

/* The next offset after off where a record checks out, or size. */
static uint64_t resync(int fd, uint64_t off, uint64_t size, uint8_t **buf, size_t *cap)
{
	uint8_t chunk[65536];
	uint64_t pos = off + 1;

	while (pos + SPOOL_REC_HDR <= size) {
		ssize_t n = pread_full(fd, chunk, sizeof(chunk), pos);
		size_t i;

		if (n < 4)
			break;
		for (i = 0; i + 4 <= (size_t)n; i++) {
			struct rec_hdr h;

			if (memcmp(chunk + i, REC_MAGIC, 4))
				continue;
			if (rec_check(fd, pos + i, size, &h, buf, cap) == REC_OK)
				return pos + i;
		}
		pos += (uint64_t)n - 3;
	}
	return size;
}

static int seg_open_read(struct spool *sp, struct seg *s)
{
	char name[64];

	if (s->rfd >= 0)
		return 0;
	seg_name(name, sizeof(name), s->id);
	s->rfd = openat(sp->dfd, name, O_RDONLY | O_CLOEXEC);
	if (s->rfd < 0) {
		int e = errno;

		log_error("spool %s/%s: cannot open: %s", sp->dir, name, strerror(e));
		return -e;
	}
	return 0;
}

static int segs_reserve(struct spool *sp, size_t n)
{
	struct seg *ns;
	size_t cap;

	if (n <= sp->capsegs)
		return 0;
	cap = sp->capsegs ? sp->capsegs * 2 : 16;
	while (cap < n)
		cap *= 2;
	ns = realloc(sp->segs, cap * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	sp->segs = ns;
	sp->capsegs = cap;
	return 0;
}

/*
 * Index one segment left by a previous run: its good records, and one line
 * per damage.  0, 1 (not a segment of ours: leave it out), or -errno.
 */
static int seg_scan(struct spool *sp, struct seg *s)
{
	char name[64];
	uint8_t hdr[SPOOL_SEG_HDR];
	struct stat stt;
	uint64_t off, bad = 0;
	int err;

	seg_name(name, sizeof(name), s->id);
	err = seg_open_read(sp, s);
	if (err)
		return err;
	if (fstat(s->rfd, &stt) < 0)
		return -errno;
	s->size = (uint64_t)stt.st_size;
	if (s->size < SPOOL_SEG_HDR || pread_full(s->rfd, hdr, sizeof(hdr), 0) != SPOOL_SEG_HDR ||
	    memcmp(hdr, SEG_MAGIC, 8) || get32(hdr + 8) != SEG_VERSION) {
		log_error(
			"spool %s/%s: not a flowpic spool segment (no version %d header in its %" PRIu64
			" bytes); left alone",
			sp->dir, name, SEG_VERSION, s->size);
		sp->st.corrupt++;
		return 1;
	}
	off = SPOOL_SEG_HDR;
	while (off < s->size) {
		struct rec_hdr h;
		enum rec_check c =
			rec_check(s->rfd, off, s->size, &h, &sp->scratch, &sp->scratch_cap);
		uint64_t next;

		if (c == REC_OK) {
			s->records++;
			s->verdicts += h.verdicts;
			off += SPOOL_REC_HDR + h.len;
			continue;
		}
		if (c == REC_IO)
			return -EIO;
		next = resync(s->rfd, off, s->size, &sp->scratch, &sp->scratch_cap);
		bad++;
		sp->st.corrupt++;
		log_error("spool %s/%s: record at offset %" PRIu64 " %s; %" PRIu64
			  " bytes skipped%s",
			  sp->dir, name, off, rec_check_str(c), next - off,
			  next < s->size ? ", reading resumes at the next good record" :
					   " (end of the segment)");
		off = next;
	}
	s->reported_to = s->size;
	s->ack_off = SPOOL_SEG_HDR;
	if (bad)
		log_warn("spool %s/%s: %" PRIu64 " good records (%" PRIu64
			 " verdicts) kept, %" PRIu64 " unreadable",
			 sp->dir, name, s->records, s->verdicts, bad);
	return 0;
}

static int cmp_seg(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static void sync_maybe(struct spool *sp, int fd, enum stream_fsync when)
{
	if (sp->fsync_policy == when && fsync(fd) < 0)
		log_warn("spool %s: fsync: %s", sp->dir, strerror(errno));
}

/* Replayed segments are sent with this agent's token: a directory others
 * can write to (or that is someone else's) would let them plant verdicts.
 * 0, or -EACCES with err saying what to run. */
static int dir_check(struct spool *sp, const struct stat *st, char *err, size_t errlen)
{
	if (st->st_uid != geteuid()) {
		snprintf(err, errlen,
			 "spool %s: owned by uid %u, not by this process's user (uid %u): run "
			 "chown %u %s (or give another --spool-dir)",
			 sp->dir, (unsigned)st->st_uid, (unsigned)geteuid(), (unsigned)geteuid(),
			 sp->dir);
		return -EACCES;
	}
	if ((st->st_mode & 07777) != 0700) {
		snprintf(err, errlen,
			 "spool %s: mode %04o, expected 0700 (others could plant segments that "
			 "would be sent with this agent's token): run chmod 700 %s",
			 sp->dir, (unsigned)(st->st_mode & 07777), sp->dir);
		return -EACCES;
	}
	return 0;
}

/* Create (0700) and open the directory, check it, and take its lock.  0, or
 * -errno with err. */
static int dir_open_locked(struct spool *sp, char *err, size_t errlen)
{
	struct stat st;
	bool created;
	int e;

	created = mkdir(sp->dir, 0700) == 0;
	if (!created && errno != EEXIST) {
		e = errno;
		snprintf(err, errlen, "spool %s: cannot create the directory: %s", sp->dir,
			 strerror(e));
		return -e;
	}
	sp->dfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dfd < 0) {
		e = errno;
		/* Someone else's 0700 directory: say whose, and what to run. */
		if (e == EACCES && stat(sp->dir, &st) == 0 && dir_check(sp, &st, err, errlen) < 0)
			return -e;
		snprintf(err, errlen, "spool %s: cannot open the directory: %s", sp->dir,
			 strerror(e));
		return -e;
	}
	/* The umask may have taken bits off ours: set them exactly. */
	if (created && fchmod(sp->dfd, 0700) < 0) {
		e = errno;
		snprintf(err, errlen, "spool %s: chmod 700: %s", sp->dir, strerror(e));
		return -e;
	}
	if (fstat(sp->dfd, &st) < 0) {
		e = errno;
		snprintf(err, errlen, "spool %s: %s", sp->dir, strerror(e));
		return -e;
	}
	e = dir_check(sp, &st, err, errlen);
	if (e < 0)
		return e;
	/* One writer per spool: two agents appending to one directory would
	 * interleave segments and delete each other's records. */
	if (flock(sp->dfd, LOCK_EX | LOCK_NB) < 0) {
		e = errno;
		snprintf(err, errlen,
			 "spool %s: in use by another process (%s); give each agent "
			 "its own spool directory",
			 sp->dir, strerror(e));
		return -e;
	}
	return 0;
}

/* The segment files in the directory, by name, in order.  0, or -errno with
 * err. */
static int segs_list(struct spool *sp, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d;
	int fd, e;

	fd = dup(sp->dfd);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		e = errno;
		snprintf(err, errlen, "spool %s: cannot list: %s", sp->dir, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	while ((de = readdir(d))) {
		unsigned long long id;
		char tail[8];

		if (sscanf(de->d_name, "seg-%16llx%7s", &id, tail) != 2 || strcmp(tail, ".fps") ||
		    strlen(de->d_name) != 24)
			continue;
		e = segs_reserve(sp, sp->nsegs + 1);
		if (e < 0) {
			closedir(d);
			snprintf(err, errlen, "spool %s: out of memory", sp->dir);
			return e;
		}
		memset(&sp->segs[sp->nsegs], 0, sizeof(struct seg));
		sp->segs[sp->nsegs].id = id;
		sp->segs[sp->nsegs].rfd = -1;
		sp->nsegs++;
	}
	closedir(d);
	if (sp->nsegs)
		qsort(sp->segs, sp->nsegs, sizeof(*sp->segs), cmp_seg);
	return 0;
}

/* Scan every listed segment (leaving out what is not ours) and count.  0, or
 * -errno with err. */
static int segs_index(struct spool *sp, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < sp->nsegs; i++) {
		struct seg *s = &sp->segs[i];
		int e = seg_scan(sp, s);

		if (e < 0) {
			snprintf(err, errlen, "spool %s: reading segment %016" PRIx64 ": %s",
				 sp->dir, s->id, strerror(-e));
			return e;
		}
		if (e > 0) {
			close(s->rfd);
			memmove(s, s + 1, (sp->nsegs - i - 1) * sizeof(*s));
			sp->nsegs--;
			i--;
			continue;
		}
		sp->st.bytes += s->size;
		sp->st.records += s->records;
		sp->st.verdicts += s->verdicts;
	}
	sp->st.segments = sp->nsegs;
	sp->st.found_records = sp->st.records;
	sp->st.found_verdicts = sp->st.verdicts;
	sp->r_idx = 0;
	sp->r_off = sp->nsegs ? sp->segs[0].ack_off : 0;
	return 0;
}

struct spool *spool_open(const char *dir, uint64_t max_bytes, uint64_t segment_bytes,
			 enum stream_fsync fsync_policy, char *err, size_t errlen)
{
	struct spool *sp = calloc(1, sizeof(*sp));
	int rc;

	if (sp) {
		sp->dfd = -1;
		sp->wfd = -1;
		sp->dir = strdup(dir);
	}
	if (!sp || !sp->dir) {
		snprintf(err, errlen, "spool %s: out of memory", dir);
		spool_close(sp);
		errno = ENOMEM;
		return NULL;
	}
	sp->max_bytes = max_bytes;
	sp->seg_bytes = segment_bytes;
	sp->fsync_policy = fsync_policy;
	rc = dir_open_locked(sp, err, errlen);
	if (rc == 0)
		rc = segs_list(sp, err, errlen);
	if (rc == 0)
		rc = segs_index(sp, err, errlen);
	if (rc < 0) {
		spool_close(sp);
		errno = -rc;
		return NULL;
	}
	if (sp->st.records)
		log_info("spool %s: %" PRIu64 " batches (%" PRIu64 " verdicts) from before, "
			 "to replay",
			 dir, sp->st.records, sp->st.verdicts);
	return sp;
}

void spool_close(struct spool *sp)
{
	size_t i;

	if (!sp)
		return;
	if (sp->wfd >= 0) {
		if (sp->fsync_policy != STREAM_FSYNC_NEVER && fsync(sp->wfd) < 0)
			log_warn("spool %s: fsync: %s", sp->dir, strerror(errno));
		close(sp->wfd);
	}
	for (i = 0; i < sp->nsegs; i++)
		if (sp->segs[i].rfd >= 0)
			close(sp->segs[i].rfd);
	if (sp->dfd >= 0)
		close(sp->dfd);
	free(sp->segs);
	free(sp->fl);
	free(sp->scratch);
	free(sp->dir);
	free(sp);
}

/* Create segment id with its header; its fd, or -errno.  *s is filled. */
static int seg_create(struct spool *sp, uint64_t id, struct seg *s)
{
	uint8_t hdr[SPOOL_SEG_HDR] = { 0 };
	char name[64];
	int fd;

	seg_name(name, sizeof(name), id);
	fd = openat(sp->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;

		log_error("spool %s/%s: cannot create: %s", sp->dir, name, strerror(e));
		return -e;
	}
	memcpy(hdr, SEG_MAGIC, 8);
	put32(hdr + 8, SEG_VERSION);
	if (write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr)) {
		int e = errno ? errno : EIO;

		log_error("spool %s/%s: cannot write: %s", sp->dir, name, strerror(e));
		close(fd);
		unlinkat(sp->dfd, name, 0);
		return -e;
	}
	/* The new name must survive a power cut too, when records are to. */
	if (sp->fsync_policy != STREAM_FSYNC_NEVER)
		fsync(sp->dfd);
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->size = SPOOL_SEG_HDR;
	s->ack_off = SPOOL_SEG_HDR;
	s->reported_to = SPOOL_SEG_HDR;
	s->rfd = -1;
	return fd;
}

/* Write one record to fd at the end of s; on failure the file is cut back. */
static int rec_write(struct spool *sp, int fd, struct seg *s, uint64_t sequence, uint32_t verdicts,
		     const void *payload, uint32_t len)
{
	uint8_t h[SPOOL_REC_HDR];
	struct iovec iov[2] = { { h, sizeof(h) }, { (void *)payload, len } };
	ssize_t n;

	rec_hdr_make(h, sequence, verdicts, payload, len);
	n = writev(fd, iov, 2);
	if (n != (ssize_t)(sizeof(h) + len)) {
		int e = n < 0 ? errno : ENOSPC;

		log_error("spool %s: writing batch %" PRIu64 " (%u bytes): %s", sp->dir, sequence,
			  len, strerror(e));
		if (n > 0 && ftruncate(fd, (off_t)s->size) < 0)
			s->size += (uint64_t)n; /* the scan of a later run skips it */
		return -EIO;
	}
	s->size += sizeof(h) + len;
	s->records++;
	s->verdicts += verdicts;
	s->reported_to = s->size;
	return 0;
}

int spool_append(struct spool *sp, uint64_t sequence, uint32_t verdicts, const void *payload,
		 uint32_t len)
{
	uint64_t need = SPOOL_REC_HDR + (uint64_t)len;
	struct seg *s;
	uint64_t before;
	int err;

	if (len > SPOOL_MAX_RECORD)
		return -EINVAL;
	if (sp->wfd >= 0 && sp->segs[sp->nsegs - 1].size >= sp->seg_bytes) {
		sync_maybe(sp, sp->wfd, STREAM_FSYNC_SEGMENT);
		close(sp->wfd);
		sp->wfd = -1;
	}
	if (sp->wfd < 0)
		need += SPOOL_SEG_HDR;
	if (sp->st.bytes + need > sp->max_bytes)
		return -ENOSPC;
	if (sp->wfd < 0) {
		struct seg ns;
		uint64_t id = sp->nsegs ? sp->segs[sp->nsegs - 1].id + 1 : SEG_FIRST_ID;
		int fd;

		if (segs_reserve(sp, sp->nsegs + 1))
			return -ENOMEM;
		fd = seg_create(sp, id, &ns);
		if (fd < 0)
			return -EIO;
		sp->segs[sp->nsegs++] = ns;
		sp->wfd = fd;
		sp->st.bytes += SPOOL_SEG_HDR;
		sp->st.segments++;
	}
	s = &sp->segs[sp->nsegs - 1];
	before = s->size;
	err = rec_write(sp, sp->wfd, s, sequence, verdicts, payload, len);
	sp->st.bytes += s->size - before;
	if (err)
		return err;
	sync_maybe(sp, sp->wfd, STREAM_FSYNC_BATCH);
	sp->st.records++;
	sp->st.verdicts += verdicts;
	return 0;
}

size_t spool_prepend(struct spool *sp, const struct spool_batch *b, size_t n)
{
	uint64_t id = sp->nsegs ? sp->segs[0].id - 1 : SEG_FIRST_ID;
	struct seg ns;
	size_t i, done = 0;
	int fd;

	if (!n || sp->st.bytes + SPOOL_SEG_HDR + SPOOL_REC_HDR + b[0].len > sp->max_bytes)
		return 0;
	if (segs_reserve(sp, sp->nsegs + 1))
		return 0;
	fd = seg_create(sp, id, &ns);
	if (fd < 0)
		return 0;
	sp->st.bytes += SPOOL_SEG_HDR;
	for (i = 0; i < n; i++) {
		uint64_t before = ns.size;

		if (sp->st.bytes + SPOOL_REC_HDR + b[i].len > sp->max_bytes)
			break;
		if (rec_write(sp, fd, &ns, b[i].sequence, b[i].verdicts, b[i].payload, b[i].len))
			break;
		sp->st.bytes += ns.size - before;
		sp->st.records++;
		sp->st.verdicts += b[i].verdicts;
		done++;
	}
	if (sp->fsync_policy != STREAM_FSYNC_NEVER && fsync(fd) < 0)
		log_warn("spool %s: fsync: %s", sp->dir, strerror(errno));
	close(fd);
	memmove(sp->segs + 1, sp->segs, sp->nsegs * sizeof(*sp->segs));
	sp->segs[0] = ns;
	sp->nsegs++;
	sp->st.segments++;
	/* The read cursor stays where it was, one segment further on. */
	sp->r_idx++;
	return done;
}

static int fl_push(struct spool *sp, const struct flight *f)
{
	if (sp->fl_n == sp->fl_cap) {
		size_t cap = sp->fl_cap ? sp->fl_cap * 2 : 16, i;
		struct flight *nf = malloc(cap * sizeof(*nf));

		if (!nf)
			return -ENOMEM;
		for (i = 0; i < sp->fl_n; i++)
			nf[i] = sp->fl[(sp->fl_head + i) % sp->fl_cap];
		free(sp->fl);
		sp->fl = nf;
		sp->fl_cap = cap;
		sp->fl_head = 0;
	}
	sp->fl[(sp->fl_head + sp->fl_n) % sp->fl_cap] = *f;
	sp->fl_n++;
	return 0;
}

/* Delete segment 0 and account what was still in it. */
static void seg_delete_head(struct spool *sp)
{
	struct seg *s = &sp->segs[0];
	char name[64];

	seg_name(name, sizeof(name), s->id);
	if (s->rfd >= 0)
		close(s->rfd);
	if (sp->wfd >= 0 && sp->nsegs == 1) {
		close(sp->wfd);
		sp->wfd = -1;
	}
	if (unlinkat(sp->dfd, name, 0) < 0)
		log_warn("spool %s/%s: cannot delete: %s", sp->dir, name, strerror(errno));
	sp->st.bytes -= s->size;
	/* Good records never acknowledged here were unreadable when read again. */
	sp->st.records -= s->records - s->acked_records;
	sp->st.verdicts -= s->verdicts - s->acked_verdicts;
	sp->st.segments--;
	memmove(sp->segs, sp->segs + 1, (sp->nsegs - 1) * sizeof(*sp->segs));
	sp->nsegs--;
	if (sp->r_idx)
		sp->r_idx--;
}

/* Drop the segments read to the end with nothing of theirs in flight. */
static void collect(struct spool *sp)
{
	for (;;) {
		const struct seg *s;
		int reader_past, writer;

		if (!sp->nsegs)
			return;
		s = &sp->segs[0];
		writer = sp->wfd >= 0 && sp->nsegs == 1;
		reader_past = sp->r_idx > 0 || (sp->r_off >= s->size && !writer);
		if (sp->r_idx == 0 && writer && sp->r_off >= s->size && !sp->fl_n) {
			/* Everything written was acknowledged: start afresh. */
			seg_delete_head(sp);
			sp->r_off = 0;
			return;
		}
		if (!reader_past)
			return;
		if (sp->fl_n && sp->fl[sp->fl_head].seg_id == s->id)
			return;
		seg_delete_head(sp);
		if (!sp->nsegs)
			sp->r_off = 0;
		else if (sp->r_idx == 0 && sp->r_off < sp->segs[0].ack_off)
			sp->r_off = sp->segs[0].ack_off;
	}
}

int spool_read(struct spool *sp, struct spool_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	while (sp->r_idx < sp->nsegs) {
		struct seg *s = &sp->segs[sp->r_idx];
		struct rec_hdr h;
		enum rec_check c;
		uint8_t *buf = NULL;
		size_t cap = 0;
		struct flight f;
		int err;

		if (sp->r_off < SPOOL_SEG_HDR)
			sp->r_off = SPOOL_SEG_HDR;
		if (sp->r_off >= s->size) {
			if (sp->r_idx + 1 >= sp->nsegs)
				break;
			sp->r_idx++;
			sp->r_off = SPOOL_SEG_HDR;
			collect(sp);
			continue;
		}
		err = seg_open_read(sp, s);
		if (err)
			return err;
		c = rec_check(s->rfd, sp->r_off, s->size, &h, &buf, &cap);
		if (c == REC_IO) {
			free(buf);
			return -EIO;
		}
		if (c != REC_OK) {
			uint64_t next = resync(s->rfd, sp->r_off, s->size, &buf, &cap);

			if (sp->r_off >= s->reported_to) {
				log_error("spool %s/%016" PRIx64 ": record at offset %" PRIu64
					  " %s when read back; %" PRIu64 " bytes skipped",
					  sp->dir, s->id, sp->r_off, rec_check_str(c),
					  next - sp->r_off);
				sp->st.corrupt++;
				s->reported_to = next;
			}
			free(buf);
			sp->r_off = next;
			continue;
		}
		f.seg_id = s->id;
		f.end_off = sp->r_off + SPOOL_REC_HDR + h.len;
		f.verdicts = h.verdicts;
		if (fl_push(sp, &f)) {
			free(buf);
			return -ENOMEM;
		}
		sp->r_off = f.end_off;
		rec->sequence = h.sequence;
		rec->verdicts = h.verdicts;
		rec->len = h.len;
		rec->payload = buf;
		return 0;
	}
	collect(sp);
	return -ENOENT;
}

void spool_record_free(struct spool_record *rec)
{
	free(rec->payload);
	rec->payload = NULL;
}

uint64_t spool_in_flight(const struct spool *sp)
{
	return sp->fl_n;
}

int spool_ack(struct spool *sp)
{
	struct flight f;
	size_t i;

	if (!sp->fl_n)
		return -ENOENT;
	f = sp->fl[sp->fl_head];
	sp->fl_head = (sp->fl_head + 1) % sp->fl_cap;
	sp->fl_n--;
	for (i = 0; i < sp->nsegs; i++) {
		struct seg *s = &sp->segs[i];

		if (s->id != f.seg_id)
			continue;
		s->acked_records++;
		s->acked_verdicts += f.verdicts;
		s->ack_off = f.end_off;
		sp->st.records--;
		sp->st.verdicts -= f.verdicts;
		break;
	}
	collect(sp);
	return 0;
}

void spool_rewind(struct spool *sp)
{
	sp->fl_n = 0;
	sp->fl_head = 0;
	sp->r_idx = 0;
	sp->r_off = sp->nsegs ? sp->segs[0].ack_off : 0;
}

int spool_is_empty(const struct spool *sp)
{
	return sp->st.records == 0 && sp->fl_n == 0;
}

void spool_get_stats(const struct spool *sp, struct spool_stats *st)
{
	*st = sp->st;
}
