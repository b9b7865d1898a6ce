/* SPDX-License-Identifier: MIT */
/*
 * hostport.h - "HOST:PORT" and "[IPV6]:PORT" addresses, as both ends give
 * them: the agent's --collector (connect) and the collector's --listen.
 * Only the split and its checks; resolving is the caller's (getaddrinfo).
 */
#ifndef FLOWPIC_RPC_HOSTPORT_H
#define FLOWPIC_RPC_HOSTPORT_H

#include <stddef.h>

enum rpc_hostport_mode {
	/* To connect to: a host (name or IPv4; IPv6 only in brackets), one
	 * colon, a numeric port 1-65535. */
	RPC_HOSTPORT_CONNECT,
	/* To listen on: the host may be empty (":50051", all addresses) and
	 * the port is split at the last colon ("::1:50051" is host "::1"); the
	 * port is any non-empty service (0: a free port). */
	RPC_HOSTPORT_LISTEN,
};

/* What was wrong with an address, for the caller's message. */
enum rpc_hostport_error {
	RPC_HOSTPORT_OK = 0,
	RPC_HOSTPORT_EMPTY,   /* NULL or "" */
	RPC_HOSTPORT_BRACKET, /* "[" without "]:" after the address */
	RPC_HOSTPORT_COLON,   /* no colon; connect: more than one without brackets */
	RPC_HOSTPORT_BAD,     /* host or port empty, too long, or (connect) a bad port */
};

/*
 * Split spec into host (without brackets) and port, each NUL-terminated in
 * the caller's buffers; a part that does not fit is RPC_HOSTPORT_BAD.
 * RPC_HOSTPORT_OK (0) or what was wrong; host and port are undefined then.
 */
enum rpc_hostport_error rpc_hostport_parse(const char *spec, enum rpc_hostport_mode mode,
					   char *host, size_t hostlen, char *port, size_t portlen);

#endif
