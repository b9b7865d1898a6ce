// SPDX-License-Identifier: MIT
/*
 * grpc_status.c - status names, grpc-message percent-encoding, grpc-timeout.
 */
#include <stdint.h>

#include "grpc_status.h"

static const char *const status_names[GRPC_STATUS_MAX + 1] = {
	"OK",
	"CANCELLED",
	"UNKNOWN",
	"INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",
	"NOT_FOUND",
	"ALREADY_EXISTS",
	"PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION",
	"ABORTED",
	"OUT_OF_RANGE",
	"UNIMPLEMENTED",
	"INTERNAL",
	"UNAVAILABLE",
	"DATA_LOSS",
	"UNAUTHENTICATED",
};

const char *grpc_status_name(int code)
{
	if (code < 0 || code > GRPC_STATUS_MAX)
		return "UNKNOWN_STATUS";
	return status_names[code];
}

int grpc_status_parse(const char *s, size_t len)
{
	long v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v > INT32_MAX ? -1 : (int)v;
}

static const char hexdig[] = "0123456789ABCDEF";

size_t grpc_message_encode(const char *msg, char *out, size_t outlen)
{
	size_t n = 0;

	if (outlen == 0)
		return 0;
	for (; *msg; msg++) {
		unsigned char c = (unsigned char)*msg;

		if (c >= 0x20 && c <= 0x7e && c != '%') {
			if (n + 1 >= outlen)
				break;
			out[n++] = (char)c;
		} else {
			if (n + 3 >= outlen)
				break;
			out[n++] = '%';
			out[n++] = hexdig[c >> 4];
			out[n++] = hexdig[c & 15];
		}
	}
	out[n] = '\0';
	return n;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t grpc_message_decode(const char *in, size_t inlen, char *out, size_t outlen)
{
	size_t i, n = 0;

	if (outlen == 0)
		return 0;
	for (i = 0; i < inlen && n + 1 < outlen; i++) {
		int hi, lo;

		if (in[i] == '%' && i + 2 < inlen && (hi = hexval(in[i + 1])) >= 0 &&
		    (lo = hexval(in[i + 2])) >= 0) {
			out[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[n++] = in[i];
		}
	}
	out[n] = '\0';
	return n;
}

long long grpc_timeout_parse(const char *s, size_t len)
{
	long long v = 0, mul;
	size_t i;

	if (len < 2 || len > 9)
		return -1;
	for (i = 0; i + 1 < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	switch (s[len - 1]) {
	case 'H':
		mul = 3600LL * 1000000000;
		break;
	case 'M':
		mul = 60LL * 1000000000;
		break;
	case 'S':
		mul = 1000000000;
		break;
	case 'm':
		mul = 1000000;
		break;
	case 'u':
		mul = 1000;
		break;
	case 'n':
		mul = 1;
		break;
	default:
		return -1;
	}
	/* 8 digits of hours fit in 2^63 ns?  99999999 h = 3.6e20 ns: no; saturate. */
	if (v > INT64_MAX / mul)
		return INT64_MAX;
	return v * mul;
}
