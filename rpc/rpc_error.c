// SPDX-License-Identifier: MIT
/*
 * rpc_error.c - one phrase per error code.
 */
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "grpc_frame.h"
#include "rpc_error.h"

const char *rpc_strerror(int err)
{
	switch (err) {
	case GRPC_FRAME_OK:
		return "ok";
	case GRPC_FRAME_E_TOO_BIG:
		return "gRPC message larger than the limit";
	case GRPC_FRAME_E_COMPRESSED:
		return "compressed gRPC message, but no compression was negotiated";
	case GRPC_FRAME_E_BAD_FLAG:
		return "gRPC message prefix with an invalid flag byte";
	case GRPC_FRAME_E_TRUNCATED:
		return "stream ended inside a gRPC message";
	case GRPC_FRAME_E_NOMEM:
		return "out of memory reassembling a gRPC message";
	case GRPC_FRAME_E_CALLBACK:
		return "gRPC message refused";
	}
	/* nghttp2's codes are -500 .. -999; -errno values are small. */
	if (err <= -500 && err > -1000)
		return nghttp2_strerror(err);
	if (err < 0 && err > -500)
		return strerror(-err);
	return "unknown error";
}
