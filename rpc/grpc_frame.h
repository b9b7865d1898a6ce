/* SPDX-License-Identifier: MIT */
/*
 * grpc_frame.h - gRPC message framing on top of HTTP/2 DATA frames.
 *
 * Every gRPC message on the wire is a 5-byte prefix (1 byte compressed flag,
 * 4 bytes big-endian length) followed by the message.  HTTP/2 cuts the byte
 * stream into DATA frames anywhere, so the reader reassembles incrementally:
 * a message split over many frames, or many messages in one frame, both work.
 * Neither side advertises compression (no grpc-encoding), so a message with
 * the compressed flag set is refused, as is one above the size limit (checked
 * on the prefix, before any of its bytes are buffered).
 */
#ifndef FLOWPIC_GRPC_FRAME_H
#define FLOWPIC_GRPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define GRPC_PREFIX_LEN 5
/* gRPC's own default limit for received messages. */
#define GRPC_DEFAULT_MAX_MESSAGE (4u * 1024 * 1024)

/* Errors of the reader (negative return values); rpc_strerror() names them. */
enum grpc_frame_err {
	GRPC_FRAME_OK = 0,
	GRPC_FRAME_E_TOO_BIG = -1001,	 /* length prefix above the limit */
	GRPC_FRAME_E_COMPRESSED = -1002, /* compressed flag set: none was negotiated */
	GRPC_FRAME_E_BAD_FLAG = -1003,	 /* flag byte neither 0 nor 1 */
	GRPC_FRAME_E_TRUNCATED = -1004,	 /* stream ended inside a message */
	GRPC_FRAME_E_NOMEM = -1005,
	GRPC_FRAME_E_CALLBACK = -1006, /* the message callback refused a message */
};

/* Called once per complete message; msg is valid only during the call.
 * Return 0 to go on, a negative errno to stop (feed returns
 * GRPC_FRAME_E_CALLBACK). */
typedef int (*grpc_msg_cb)(void *ctx, const uint8_t *msg, size_t len);

struct grpc_reader {
	uint32_t max_message; /* largest message accepted, bytes */
	uint8_t hdr[GRPC_PREFIX_LEN];
	uint8_t hdr_have; /* prefix bytes seen of the current message */
	uint32_t msg_len; /* length of the current message (prefix complete) */
	uint8_t *buf;	  /* reassembly buffer for messages split over DATA frames */
	size_t buf_cap;
	size_t buf_have;
	uint64_t messages; /* messages delivered */
	int error;	   /* first error; sticky: nothing is read after it */
};

void grpc_reader_init(struct grpc_reader *r, uint32_t max_message);
void grpc_reader_free(struct grpc_reader *r);

/* Feed the payload of one DATA frame (any cut).  Calls cb for each message
 * completed.  0, or a negative enum grpc_frame_err (sticky).  A message that
 * lies whole inside data is handed to cb without a copy. */
int grpc_reader_feed(struct grpc_reader *r, const uint8_t *data, size_t len, grpc_msg_cb cb,
		     void *ctx);

/* At the end of the stream: 0 if no message is half-read, else
 * GRPC_FRAME_E_TRUNCATED. */
int grpc_reader_finish(const struct grpc_reader *r);

/* Bytes of the current, incomplete message seen so far (prefix included). */
size_t grpc_reader_partial(const struct grpc_reader *r);

/* Write the 5-byte prefix for an uncompressed message of len bytes. */
void grpc_frame_prefix(uint8_t out[GRPC_PREFIX_LEN], uint32_t len);

#endif
