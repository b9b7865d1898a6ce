/* SPDX-License-Identifier: MIT */
/*
 * rpc_error.h - one-line error strings for the verdict stream: the framing
 * errors of grpc_frame.h, negative errno values, and nghttp2's error codes
 * (libnghttp2 returns its own negative codes; they do not overlap the
 * framing range).
 */
#ifndef FLOWPIC_RPC_ERROR_H
#define FLOWPIC_RPC_ERROR_H

/* A short phrase for err: enum grpc_frame_err, -errno, or an nghttp2 error. */
const char *rpc_strerror(int err);

#endif
