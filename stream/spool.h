/* SPDX-License-Identifier: MIT */
/*
 * spool.h - the on-disk spool: batches the collector has not acknowledged,
 * kept in order in a directory of append-only segment files.
 *
 * Format (docs/stream.md): a segment "seg-<16 hex digits>.fps" starts with
 * a 16-byte header ("FPSPOOL1", version, 0) and holds records; a record is a
 * 24-byte header (magic "FPSR", payload length, verdicts, CRC-32, batch
 * sequence) and the encoded Batch.  The CRC covers the header's length,
 * verdicts and sequence and the payload.  Segments are read in name order;
 * one is deleted when all its records are acknowledged.  A record that is
 * cut short or fails its CRC is reported once (one line), counted, and
 * skipped: reading resumes at the next record that checks out.
 */
#ifndef FLOWPIC_STREAM_SPOOL_H
#define FLOWPIC_STREAM_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"

#define SPOOL_SEG_HDR 16
#define SPOOL_REC_HDR 24
#define SPOOL_MAX_RECORD (64u * 1024 * 1024)

struct spool;

struct spool_stats {
	uint64_t bytes; /* all segments, headers included */
	uint64_t segments;
	uint64_t records;	/* good records not yet acknowledged */
	uint64_t verdicts;	/* ... and their verdicts */
	uint64_t corrupt;	/* records found unreadable */
	uint64_t found_records; /* at open: good records left by a previous run */
	uint64_t found_verdicts;
};

/* A record handed out by spool_read() (payload malloc'd: free with spool_record_free). */
struct spool_record {
	uint64_t sequence;
	uint32_t verdicts;
	uint32_t len;
	uint8_t *payload;
};

/* Open dir (created 0700 if missing) and index what is in it.  The
 * directory must belong to this process's effective user and be mode 0700
 * (else EACCES, and err says which chmod/chown to run): its segments are
 * replayed with the agent's token.  NULL, err and errno set on failure. */
struct spool *spool_open(const char *dir, uint64_t max_bytes, uint64_t segment_bytes,
			 enum stream_fsync fsync_policy, char *err, size_t errlen);

/* fsync what was written (per policy) and close; the files stay. */
void spool_close(struct spool *sp);

/*
 * Append a record at the tail.  0; -ENOSPC: it would take the spool over
 * max_bytes (nothing written: the caller drops and counts); -EIO (logged).
 */
int spool_append(struct spool *sp, uint64_t sequence, uint32_t verdicts, const void *payload,
		 uint32_t len);

/*
 * Write records *before* everything already spooled (a new segment named
 * below the first), in the order given: used at close for batches that were
 * in memory, which are older than the spool's.  Returns how many were
 * written; the rest did not fit (or failed) and are the caller's to count.
 */
struct spool_batch {
	uint64_t sequence;
	uint32_t verdicts;
	uint32_t len;
	const uint8_t *payload;
};
size_t spool_prepend(struct spool *sp, const struct spool_batch *b, size_t n);

/*
 * Next record not yet handed out since the last rewind, oldest first.  0;
 * -ENOENT: none; -EIO / -ENOMEM.  Records are acknowledged in the order they
 * were read.
 */
int spool_read(struct spool *sp, struct spool_record *rec);
void spool_record_free(struct spool_record *rec);

/* Records read and not yet acknowledged. */
uint64_t spool_in_flight(const struct spool *sp);

/* The oldest record read is acknowledged: forget it (delete its segment when done). */
int spool_ack(struct spool *sp);

/* The connection broke: the next spool_read() starts again at the oldest unacknowledged. */
void spool_rewind(struct spool *sp);

/* Nothing unacknowledged left (good records): new batches may bypass the spool. */
int spool_is_empty(const struct spool *sp);

void spool_get_stats(const struct spool *sp, struct spool_stats *st);

#endif
