/* SPDX-License-Identifier: MIT */
/*
 * grpc_status.h - gRPC status codes (grpc-status trailer), the percent-encoded
 * grpc-message trailer, and the header names and values both sides send.
 */
#ifndef FLOWPIC_GRPC_STATUS_H
#define FLOWPIC_GRPC_STATUS_H

#include <stddef.h>

/* The codes of grpc/doc/statuscodes.md; the numbers are the wire values. */
enum grpc_status {
	GRPC_STATUS_OK = 0,
	GRPC_STATUS_CANCELLED = 1,
	GRPC_STATUS_UNKNOWN = 2,
	GRPC_STATUS_INVALID_ARGUMENT = 3,
	GRPC_STATUS_DEADLINE_EXCEEDED = 4,
	GRPC_STATUS_NOT_FOUND = 5,
	GRPC_STATUS_ALREADY_EXISTS = 6,
	GRPC_STATUS_PERMISSION_DENIED = 7,
	GRPC_STATUS_RESOURCE_EXHAUSTED = 8,
	GRPC_STATUS_FAILED_PRECONDITION = 9,
	GRPC_STATUS_ABORTED = 10,
	GRPC_STATUS_OUT_OF_RANGE = 11,
	GRPC_STATUS_UNIMPLEMENTED = 12,
	GRPC_STATUS_INTERNAL = 13,
	GRPC_STATUS_UNAVAILABLE = 14,
	GRPC_STATUS_DATA_LOSS = 15,
	GRPC_STATUS_UNAUTHENTICATED = 16,
};
#define GRPC_STATUS_MAX 16

/* Header names and values of a gRPC call over HTTP/2. */
#define GRPC_CONTENT_TYPE "application/grpc"
#define GRPC_HDR_STATUS "grpc-status"
#define GRPC_HDR_MESSAGE "grpc-message"
#define GRPC_HDR_TIMEOUT "grpc-timeout"
#define GRPC_HDR_ENCODING "grpc-encoding"
#define GRPC_HDR_ACCEPT_ENCODING "grpc-accept-encoding"
#define GRPC_HDR_AUTHORIZATION "authorization"

/* "UNAUTHENTICATED" for 16; "UNKNOWN_STATUS" outside 0..16. */
const char *grpc_status_name(int code);

/* Parse a grpc-status value (decimal, 0..2^31): the code, or -1 if not a number. */
int grpc_status_parse(const char *s, size_t len);

/* Percent-encode msg for the grpc-message trailer (gRPC spec: bytes outside
 * 0x20..0x7E and '%' become %XX).  Writes a NUL-terminated string of at most
 * outlen - 1 bytes, cut at a whole escape; returns its length. */
size_t grpc_message_encode(const char *msg, char *out, size_t outlen);

/* Decode a grpc-message value; malformed escapes are kept as they are (the
 * spec: never fail on a bad message).  NUL-terminated; returns the length. */
size_t grpc_message_decode(const char *in, size_t inlen, char *out, size_t outlen);

/* grpc-timeout ("100m", "5S", ... at most 8 digits and a unit H M S m u n)
 * -> nanoseconds, or -1 if malformed. */
long long grpc_timeout_parse(const char *s, size_t len);

#endif
