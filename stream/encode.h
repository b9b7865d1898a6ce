/* SPDX-License-Identifier: MIT */
/*
 * encode.h - flowpic.v1 messages with nanopb: a Batch straight from the
 * stream's verdict array into a caller-owned buffer, and an Ack from the
 * collector.  No allocation: the buffer is sized once with
 * encode_batch_bound().
 */
#ifndef FLOWPIC_STREAM_ENCODE_H
#define FLOWPIC_STREAM_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"

/* What every batch of a run repeats: flowpic.v1.Agent and flowpic.v1.Model. */
struct encode_header {
	char host[256];
	char agent_id[128];
	char version[64];
	uint64_t run_id;
	char model_name[64];
	char model_version[64];
	char classes[STREAM_MAX_CLASSES][STREAM_CLASS_MAX];
	unsigned nclasses;
};

/* A verdict as it waits in a batch: the submitted one and its seq, and its
 * picture already encoded (v.cells' pointers are not read here). */
struct encode_verdict {
	uint64_t seq;
	struct stream_verdict v;
	const uint8_t *pic; /* the encoded flowpic.v1.Cells, or NULL: none */
	uint32_t pic_len;
	uint64_t pic_end; /* the stream's: its picture buffer position after pic */
};

/* Largest encoding of a Batch with n verdicts (without pictures) and
 * ncounters counters. */
size_t encode_batch_bound(unsigned n, unsigned ncounters);
/* What pictures add to it: n verdicts whose encoded pictures total bytes. */
size_t encode_pictures_bound(unsigned n, size_t bytes);

/*
 * A picture (struct stream_cells) checked: 0; -EINVAL with one line in err
 * (sizes, dirs, indexes not increasing or beyond the planes, a count of 0);
 * -E2BIG: more than STREAM_PICTURE_CELLS_MAX pixels.
 */
int encode_cells_check(const struct stream_cells *c, char *err, size_t errlen);
/* Its encoding as flowpic.v1.Cells (index delta-coded): the length, at
 * most STREAM_PICTURE_BYTES_MAX for a checked picture. */
size_t encode_cells_size(const struct stream_cells *c);
/* Encode it into buf (cap bytes): the length, or -ENOSPC. */
long encode_cells(uint8_t *buf, size_t cap, const struct stream_cells *c);

/*
 * Encode a Batch into buf (cap bytes).  Returns the length, or -ENOSPC /
 * -EINVAL with a message in err.
 */
long encode_batch(uint8_t *buf, size_t cap, const struct encode_header *h, uint64_t sequence,
		  const struct encode_verdict *v, unsigned n, const struct stream_counter *c,
		  unsigned ncounters, char *err, size_t errlen);

struct encode_ack {
	uint64_t sequence;
	uint32_t stored;
	uint32_t duplicates;
};

/* Decode an Ack; 0 or -EBADMSG with a message in err. */
int encode_decode_ack(const uint8_t *buf, size_t len, struct encode_ack *ack, char *err,
		      size_t errlen);

/* Encode an Ack (used by tests). Returns the length or -ENOSPC. */
long encode_ack(uint8_t *buf, size_t cap, const struct encode_ack *ack);

#endif
