// SPDX-License-Identifier: MIT
/* source.c - pcap, pcapng and CSV files as one stream of packet records; see source.h. */
#include "source.h"

#include <errno.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "flow.h"
#include "log.h"
#include "parse.h"
#include "zfile.h"

/* Bad CSV rows reported one by one, per file; the rest only counted. */
#define CSV_MAX_REPORTS 10
/* Frames decoded per call into libpcap. */
#define SOURCE_BATCH 64

struct batch_slot {
	struct pkt pkt;
	enum skip_reason why;
};

struct source {
	enum source_kind kind;
	char *path;
	struct zfile *z;
	pcap_t *pcap;
	int linktype; /* LINKTYPE_ value, -1 for CSV */
	struct csv_layout lay;
	uint64_t records;
	uint64_t line; /* CSV line number */
	uint64_t bad_rows;
	struct batch_slot batch[SOURCE_BATCH];
	int batch_len;	/* frames in batch[] */
	int batch_pos;	/* next to hand out */
	bool pcap_done; /* libpcap said end or error */
	char err[512];
	char buf[CSV_MAX_LINE + 1];
};

const char *source_kind_name(enum source_kind k)
{
	switch (k) {
	case SOURCE_PCAP:
		return "pcap";
	case SOURCE_PCAPNG:
		return "pcapng";
	case SOURCE_CSV:
		return "csv";
	}
	return "unknown";
}

/* libpcap's DLT_ values -> the LINKTYPE_ values parse.h uses. */
static int dlt_to_linktype(int dlt)
{
	if (dlt == DLT_RAW || dlt == 14) /* DLT_RAW is 12, or 14 on OpenBSD */
		return LINK_RAW;
	return dlt;
}

/*
 * Read a line into buf: 0, or 1 at end, -E2BIG when longer than CSV_MAX_LINE
 * (the rest is skipped), -EILSEQ when it holds a NUL byte.  A comment line
 * ('#') may be of any length.  Byte by byte, so NULs cannot hide the line's end.
 */
static int read_line(struct source *s)
{
	FILE *f = zfile_stream(s->z);
	size_t n = 0;
	int c, nul = 0, over = 0;

	while ((c = getc_unlocked(f)) != EOF && c != '\n') {
		if (c == 0)
			nul = 1;
		if (n < CSV_MAX_LINE)
			s->buf[n++] = (char)c;
		else
			over = 1;
	}
	if (c == EOF && n == 0 && !over)
		return 1;
	s->line++;
	s->buf[n] = 0;
	if (s->buf[0] == '#')
		return 0;
	return nul ? -EILSEQ : over ? -E2BIG : 0;
}

/* Past the comments to the header row and parse it: 0, or a negative errno
 * with "FILE:LINE: what is wrong" in err. */
static int csv_open(struct source *s, char *err, unsigned long errlen)
{
	char msg[256];
	int rc;

	/* Comment lines (the magic among them), then the header row. */
	while ((rc = read_line(s)) == 0 && s->buf[0] == '#')
		;
	if (rc == 1) {
		snprintf(err, errlen, "%s: CSV has no header row (need %s)", s->path, CSV_HEADER);
		return -EINVAL;
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s:%" PRIu64 ": CSV header %s", s->path, s->line,
			 rc == -E2BIG ? "longer than " CSV_MAX_LINE_STR " bytes" :
					"holds a NUL byte");
		return -EINVAL;
	}
	/* A UTF-8 byte order mark, as some spreadsheet programs write. */
	if (!memcmp(s->buf, "\xef\xbb\xbf", 3))
		memmove(s->buf, s->buf + 3, strlen(s->buf + 3) + 1);
	rc = csv_parse_header(s->buf, &s->lay, msg, sizeof(msg));
	if (rc < 0) {
		snprintf(err, errlen, "%s:%" PRIu64 ": %s", s->path, s->line, msg);
		return rc;
	}
	return 0;
}

/* Content sniffing: pcap and pcapng magics; CSV when the text starts like ours.
 * 0 with *kind set, or -EINVAL when the content is none of these. */
static int sniff(const uint8_t *m, size_t n, enum source_kind *kind)
{
	static const uint32_t pcap_magics[] = { 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1 };
	uint32_t be;
	size_t i;

	if (n < 4)
		return -EINVAL;
	be = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
	for (i = 0; i < sizeof(pcap_magics) / sizeof(pcap_magics[0]); i++) {
		if (be == pcap_magics[i]) {
			*kind = SOURCE_PCAP;
			return 0;
		}
	}
	if (be == 0x0a0d0d0a) {
		*kind = SOURCE_PCAPNG;
		return 0;
	}
	/* Text (no NUL, no control bytes but tab/CR/LF): a CSV, whose header
	 * row then says exactly what is wrong if it is not ours. */
	for (i = 0; i < n; i++)
		if (m[i] < 0x20 && m[i] != '\t' && m[i] != '\r' && m[i] != '\n')
			return -EINVAL;
	*kind = SOURCE_CSV;
	return 0;
}

const char *source_name(const char *path)
{
	return zfile_name(path);
}

struct source *source_open(const char *path, char *err, unsigned long errlen)
{
	const char *name = source_name(path);
	char ebuf[PCAP_ERRBUF_SIZE];
	const char *zerr;
	uint8_t magic[32];
	struct source *s;
	ssize_t n;

	s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(name))) {
		snprintf(err, errlen, "%s: out of memory", name);
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	s->linktype = -1;
	/* Sniff the (decompressed) content: peeked, so standard input and
	 * pipes are read once, from the start. */
	s->z = zfile_open(path, err, errlen);
	if (!s->z)
		goto err_free;
	n = zfile_peek(s->z, magic, sizeof(magic));
	zerr = zfile_error(s->z);
	if (n < 0 || (n < 4 && zerr)) {
		snprintf(err, errlen, "%s: %s", name, zerr ? zerr : strerror((int)-n));
		errno = n < 0 ? (int)-n : EIO;
		goto err_free;
	}
	if (sniff(magic, (size_t)n, &s->kind) < 0) {
		if (n == 0)
			snprintf(err, errlen, "%s: empty file, not a capture or samples CSV", name);
		else
			snprintf(
				err, errlen,
				"%s: not a pcap, pcapng or flowpic samples CSV file (starts %02x %02x %02x %02x)",
				name, magic[0], n > 1 ? magic[1] : 0, n > 2 ? magic[2] : 0,
				n > 3 ? magic[3] : 0);
		errno = EINVAL;
		goto err_free;
	}
	if (s->kind == SOURCE_CSV) {
		if (csv_open(s, err, errlen) < 0)
			goto err_free;
		return s;
	}
	ebuf[0] = 0;
	s->pcap = pcap_fopen_offline_with_tstamp_precision(zfile_stream(s->z),
							   PCAP_TSTAMP_PRECISION_NANO, ebuf);
	if (!s->pcap) {
		/* On failure libpcap leaves the stream to us (zfile_close). */
		snprintf(err, errlen, "%s: cannot read as %s: %s", name, source_kind_name(s->kind),
			 ebuf);
		errno = EINVAL;
		goto err_free;
	}
	s->linktype = dlt_to_linktype(pcap_datalink(s->pcap));
	if (!parse_link_supported(s->linktype)) {
		const char *lt = pcap_datalink_val_to_name(pcap_datalink(s->pcap));

		log_warn(
			"%s: link type %d (%s) is not decoded; its packets are counted as link_unsupported",
			name, s->linktype, lt ? lt : "unknown");
	}
	return s;

err_free:
	n = errno; /* as the failure set it, not as closing leaves it */
	zfile_close(s->z);
	free(s->path);
	free(s);
	errno = (int)n;
	return NULL;
}

void source_close(struct source *s)
{
	if (!s)
		return;
	if (s->pcap) {
		pcap_close(s->pcap); /* fcloses the stream */
		zfile_stream_closed(s->z);
	}
	if (s->kind == SOURCE_CSV && s->bad_rows > CSV_MAX_REPORTS)
		log_warn("%s: %" PRIu64 " bad rows in all (only the first %d shown)", s->path,
			 s->bad_rows, CSV_MAX_REPORTS);
	zfile_close(s->z);
	free(s->path);
	free(s);
}

/* Decode one frame from libpcap into the next batch slot. */
static void batch_add(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
	struct source *s = (struct source *)user;
	struct batch_slot *b = &s->batch[s->batch_len++];

	b->why = parse_frame(s->linktype, data, h->caplen, h->len, &b->pkt);
	/* With nanosecond precision requested, tv_usec holds nanoseconds.
	 * Times past the year 2554 (pcapng's 64-bit stamps) saturate. */
	b->pkt.ts_ns = (uint64_t)h->ts.tv_sec >= UINT64_MAX / NS_PER_SEC - 1 ?
			       UINT64_MAX :
			       (uint64_t)h->ts.tv_sec * NS_PER_SEC + (uint64_t)h->ts.tv_usec;
}

/*
 * Frames are read SOURCE_BATCH at a time with pcap_dispatch(): one call into
 * libpcap per batch rather than per packet (pcap_next_ex() costs a call and
 * a copy of the header each time).  An error met in a batch is reported
 * after the frames read before it.
 */
static enum source_status next_pcap(struct source *s, struct pkt *out, enum skip_reason *why)
{
	struct batch_slot *b;
	int rc;

	if (s->batch_pos == s->batch_len) {
		if (s->pcap_done)
			return s->err[0] ? SOURCE_ERROR : SOURCE_END;
		s->batch_pos = s->batch_len = 0;
		rc = pcap_dispatch(s->pcap, SOURCE_BATCH, batch_add, (u_char *)s);
		if (rc < 0) {
			const char *why_z = zfile_error(s->z);

			snprintf(s->err, sizeof(s->err),
				 "%s: reading stopped after record %" PRIu64 " (file byte %" PRIu64
				 "): %s",
				 s->path, s->records + s->batch_len, zfile_raw_pos(s->z),
				 why_z ? why_z : pcap_geterr(s->pcap));
			s->pcap_done = true;
		} else if (rc == 0) {
			s->pcap_done = true;
		}
		if (s->batch_len == 0)
			return s->err[0] ? SOURCE_ERROR : SOURCE_END;
	}
	b = &s->batch[s->batch_pos++];
	s->records++;
	*why = b->why;
	if (*why != SKIP_NONE)
		return SOURCE_SKIPPED;
	*out = b->pkt;
	return SOURCE_PACKET;
}

static enum source_status next_csv(struct source *s, struct pkt *out, enum skip_reason *why)
{
	char msg[256];
	int rc;

	do {
		rc = read_line(s);
		if (rc == 1) {
			if (ferror(zfile_stream(s->z))) {
				const char *why_z = zfile_error(s->z);

				snprintf(s->err, sizeof(s->err),
					 "%s:%" PRIu64 ": reading stopped: %s", s->path, s->line,
					 why_z ? why_z : strerror(errno));
				return SOURCE_ERROR;
			}
			return SOURCE_END;
		}
	} while (rc == 0 && (s->buf[0] == '#' || s->buf[strspn(s->buf, " \t\r\n")] == 0));
	s->records++;
	if (rc < 0) {
		*why = SKIP_CSV_BAD_LINE;
		snprintf(msg, sizeof(msg), "%s",
			 rc == -E2BIG ? "row longer than " CSV_MAX_LINE_STR " bytes" :
					"row holds a NUL byte");
	} else {
		*why = csv_parse_row(s->buf, &s->lay, out, msg, sizeof(msg));
	}
	if (*why == SKIP_CSV_BAD_LINE && ++s->bad_rows <= CSV_MAX_REPORTS)
		log_warn("%s:%" PRIu64 ": bad CSV row skipped: %s", s->path, s->line, msg);
	return *why == SKIP_NONE ? SOURCE_PACKET : SOURCE_SKIPPED;
}

enum source_status source_next(struct source *s, struct pkt *out, enum skip_reason *why)
{
	*why = SKIP_NONE;
	if (s->kind == SOURCE_CSV)
		return next_csv(s, out, why);
	return next_pcap(s, out, why);
}

const char *source_error(const struct source *s)
{
	return s->err;
}

enum source_kind source_kind(const struct source *s)
{
	return s->kind;
}

int source_linktype(const struct source *s)
{
	return s->linktype;
}

uint64_t source_records(const struct source *s)
{
	return s->records;
}

uint64_t source_file_pos(const struct source *s)
{
	return s->pcap || s->kind == SOURCE_CSV ? zfile_raw_pos(s->z) : 0;
}

uint64_t source_file_size(const struct source *s)
{
	return zfile_raw_size(s->z);
}
