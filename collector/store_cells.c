// SPDX-License-Identifier: MIT
/*
 * store_cells.c - verdict pictures in the store: a Cells message is stored
 * as its protobuf encoding (delta-coded indexes, packed: about 2 bytes per
 * pixel, the same bytes the agent sent) in the nullable cells column, and
 * read back for viewers as absolute indexes (store.h, store_get_cells).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

long store_cells_blob(const Flowpic__V1__Cells *c, uint8_t **buf, size_t *cap)
{
	size_t len;

	if (!c)
		return 0;
	len = flowpic__v1__cells__get_packed_size(c);
	if (len > *cap || !*buf) {
		size_t ncap = len > 256 ? len : 256;
		uint8_t *nb = realloc(*buf, ncap);

		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = ncap;
	}
	/* An empty picture (rows and cols only) still has bytes: never 0. */
	return (long)flowpic__v1__cells__pack(c, *buf);
}

/* The stored message -> out, indexes made absolute.  Checked as on the way
 * in (validate.c): a row someone else wrote is not trusted.  0 or -EBADMSG
 * / -ENOMEM with err. */
static int cells_decode(const uint8_t *blob, size_t len, struct store_cells *out, char *err,
			size_t errlen)
{
	Flowpic__V1__Cells *c = flowpic__v1__cells__unpack(NULL, len, blob);
	uint64_t total, at = 0;
	size_t i;
	int rc = 0;

	if (!c) {
		snprintf(err, errlen, "stored picture of %zu bytes does not decode as Cells", len);
		return -EBADMSG;
	}
	memset(out, 0, sizeof(*out));
	out->rows = c->rows;
	out->cols = c->cols;
	out->dirs = (uint32_t)c->dirs;
	out->planes = out->dirs == FLOWPIC__V1__PICTURE_DIRS__PICTURE_DIRS_SPLIT ? 2 : 1;
	out->window_ns = c->window_ns;
	total = (uint64_t)out->planes * out->rows * out->cols;
	if (c->n_index_delta != c->n_count || out->dirs > 3) {
		snprintf(err, errlen, "stored picture: %zu indexes, %zu counts, dirs %u",
			 c->n_index_delta, c->n_count, out->dirs);
		rc = -EBADMSG;
		goto out;
	}
	out->n = c->n_index_delta;
	out->index = malloc((out->n ? out->n : 1) * sizeof(*out->index));
	out->count = malloc(out->n ? out->n : 1);
	if (!out->index || !out->count) {
		snprintf(err, errlen, "out of memory for a picture of %zu pixels", out->n);
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < out->n; i++) {
		at += c->index_delta[i];
		if ((i && !c->index_delta[i]) || at >= total || !c->count[i] || c->count[i] > 255) {
			snprintf(err, errlen,
				 "stored picture: pixel %zu at %" PRIu64 " of %" PRIu64
				 ", count %u",
				 i, at, total, c->count[i]);
			rc = -EBADMSG;
			goto out;
		}
		out->index[i] = (uint32_t)at;
		out->count[i] = (uint8_t)c->count[i];
	}
out:
	flowpic__v1__cells__free_unpacked(c, NULL);
	if (rc < 0)
		store_cells_free(out);
	return rc;
}

int store_get_cells(struct store *s, const char *agent_id, uint64_t run_id, uint64_t seq,
		    struct store_cells *out, char *err, size_t errlen)
{
	uint8_t *blob = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (s->no_cells)
		return -ENODATA;
	rc = s->ops->get_cells(s, agent_id, run_id, seq, &blob, &len, err, errlen);
	if (rc < 0)
		return rc;
	if (!blob)
		return -ENODATA;
	rc = cells_decode(blob, len, out, err, errlen);
	free(blob);
	return rc;
}

void store_cells_free(struct store_cells *c)
{
	free(c->index);
	free(c->count);
	c->index = NULL;
	c->count = NULL;
	c->n = 0;
}

int store_cells_dense(const struct store_cells *c, uint8_t *dst, size_t len)
{
	size_t need = (size_t)c->planes * c->rows * c->cols, i;

	if (len < need)
		return -ENOSPC;
	memset(dst, 0, need);
	for (i = 0; i < c->n; i++)
		dst[c->index[i]] = c->count[i];
	return 0;
}
