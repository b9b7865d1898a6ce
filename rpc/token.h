/* SPDX-License-Identifier: MIT */
/*
 * token.h - the access token: agents send "authorization: Bearer <token>"
 * on every call; the collector compares it with its own in constant time
 * (both sides hashed with SHA-256 first, so neither the content nor the
 * length leaks through timing).
 */
#ifndef FLOWPIC_RPC_TOKEN_H
#define FLOWPIC_RPC_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

/* Tokens are 1..RPC_TOKEN_MAX visible ASCII characters (no spaces). */
#define RPC_TOKEN_MAX 512

/* Does the authorization header value (not NUL-terminated) carry the
 * expected token?  Scheme "Bearer" matched case-insensitively, one or more
 * spaces after it.  false for NULL/empty values. */
bool rpc_token_check(const char *expected, const char *value, size_t valuelen);

/* Is tok a usable token (1..RPC_TOKEN_MAX characters 0x21..0x7E)? */
bool rpc_token_valid(const char *tok);

/* Read a token file: the first line, surrounding white space removed.  A
 * file open to group or others (any of mode 077) gets one warning line on
 * stderr ("PROG: warning: token file F is open to group or others ...").
 * 0, or a negative errno with a one-line reason in err (-errno of fopen for a
 * missing file; -EINVAL empty or bad characters; -ENOSPC too long for out). */
int rpc_token_load(const char *path, char *out, size_t outlen, char *err, size_t errlen);

/* Write "Bearer <token>" for the authorization header; its length, or
 * -ENOSPC if it does not fit. */
int rpc_token_header(const char *token, char *out, size_t outlen);

#endif
