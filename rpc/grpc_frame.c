// SPDX-License-Identifier: MIT
/*
 * grpc_frame.c - incremental reassembly of gRPC length-prefixed messages.
 */
#include <stdlib.h>
#include <string.h>

#include "grpc_frame.h"

void grpc_reader_init(struct grpc_reader *r, uint32_t max_message)
{
	memset(r, 0, sizeof(*r));
	r->max_message = max_message ? max_message : GRPC_DEFAULT_MAX_MESSAGE;
}

void grpc_reader_free(struct grpc_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->buf_cap = 0;
	r->buf_have = 0;
}

void grpc_frame_prefix(uint8_t out[GRPC_PREFIX_LEN], uint32_t len)
{
	out[0] = 0;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

/* The prefix is complete: check it and set msg_len. */
static int prefix_done(struct grpc_reader *r)
{
	uint32_t len = (uint32_t)r->hdr[1] << 24 | (uint32_t)r->hdr[2] << 16 |
		       (uint32_t)r->hdr[3] << 8 | r->hdr[4];

	if (r->hdr[0] == 1)
		return GRPC_FRAME_E_COMPRESSED;
	if (r->hdr[0] != 0)
		return GRPC_FRAME_E_BAD_FLAG;
	if (len > r->max_message)
		return GRPC_FRAME_E_TOO_BIG;
	r->msg_len = len;
	return 0;
}

static int deliver(struct grpc_reader *r, const uint8_t *msg, size_t len, grpc_msg_cb cb, void *ctx)
{
	/* Reset before the callback so a callback may inspect a clean reader. */
	r->hdr_have = 0;
	r->msg_len = 0;
	r->buf_have = 0;
	r->messages++;
	if (cb && cb(ctx, msg, len) < 0)
		return GRPC_FRAME_E_CALLBACK;
	return 0;
}

int grpc_reader_feed(struct grpc_reader *r, const uint8_t *data, size_t len, grpc_msg_cb cb,
		     void *ctx)
{
	int err;

	if (r->error)
		return r->error;
	while (len > 0) {
		size_t take;

		if (r->hdr_have < GRPC_PREFIX_LEN) {
			take = GRPC_PREFIX_LEN - r->hdr_have;
			if (take > len)
				take = len;
			memcpy(r->hdr + r->hdr_have, data, take);
			r->hdr_have += (uint8_t)take;
			data += take;
			len -= take;
			if (r->hdr_have < GRPC_PREFIX_LEN)
				break;
			err = prefix_done(r);
			if (err)
				goto fail;
			if (r->msg_len == 0) {
				err = deliver(r, (const uint8_t *)"", 0, cb, ctx);
				if (err)
					goto fail;
				continue;
			}
		}
		if (len == 0)
			break;
		/* Fast path: the whole message lies in this frame, nothing buffered. */
		if (r->buf_have == 0 && len >= r->msg_len) {
			size_t n = r->msg_len;

			err = deliver(r, data, n, cb, ctx);
			if (err)
				goto fail;
			data += n;
			len -= n;
			continue;
		}
		take = r->msg_len - r->buf_have;
		if (take > len)
			take = len;
		if (r->buf_cap < r->buf_have + take) {
			/* Grow with the bytes that arrived, not the announced length:
			 * a peer announcing 4 MiB and sending 10 bytes costs 10 bytes. */
			size_t cap = r->buf_cap ? r->buf_cap * 2 : 4096;
			uint8_t *nb;

			if (cap < r->buf_have + take)
				cap = r->buf_have + take;
			if (cap > r->msg_len)
				cap = r->msg_len;
			nb = realloc(r->buf, cap);
			if (!nb) {
				err = GRPC_FRAME_E_NOMEM;
				goto fail;
			}
			r->buf = nb;
			r->buf_cap = cap;
		}
		memcpy(r->buf + r->buf_have, data, take);
		r->buf_have += take;
		data += take;
		len -= take;
		if (r->buf_have == r->msg_len) {
			err = deliver(r, r->buf, r->msg_len, cb, ctx);
			if (err)
				goto fail;
		}
	}
	return 0;
fail:
	r->error = err;
	return err;
}

int grpc_reader_finish(const struct grpc_reader *r)
{
	if (r->error)
		return r->error;
	return r->hdr_have ? GRPC_FRAME_E_TRUNCATED : 0;
}

size_t grpc_reader_partial(const struct grpc_reader *r)
{
	return r->hdr_have + r->buf_have;
}
