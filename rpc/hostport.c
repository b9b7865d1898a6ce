// SPDX-License-Identifier: MIT
/* hostport.c - HOST:PORT and [IPV6]:PORT addresses; see hostport.h. */
#include "hostport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Copy n bytes of src and a NUL into dst[cap]; 0, or -ENOSPC if they do not fit. */
static int put(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		return -ENOSPC;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

/* A connect port: digits only, 1-65535 (leading zeros allowed). */
static int port_ok(const char *p)
{
	size_t n = strlen(p);
	unsigned long long v;

	if (!n || strspn(p, "0123456789") != n)
		return 0;
	v = strtoull(p, NULL, 10); /* saturates: too many digits are > 65535 */
	return v >= 1 && v <= 65535;
}

enum rpc_hostport_error rpc_hostport_parse(const char *spec, enum rpc_hostport_mode mode,
					   char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *h = spec, *colon;
	size_t hl;

	if (!spec || !*spec)
		return RPC_HOSTPORT_EMPTY;
	if (*spec == '[') {
		const char *end = strchr(spec, ']');

		if (!end || end[1] != ':')
			return RPC_HOSTPORT_BRACKET;
		h = spec + 1;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || (mode == RPC_HOSTPORT_CONNECT && strchr(spec, ':') != colon))
			return RPC_HOSTPORT_COLON;
		hl = (size_t)(colon - spec);
	}
	if ((mode == RPC_HOSTPORT_CONNECT && (!hl || !port_ok(colon + 1))) || !colon[1] ||
	    put(host, hostlen, h, hl) < 0 || put(port, portlen, colon + 1, strlen(colon + 1)) < 0)
		return RPC_HOSTPORT_BAD;
	return RPC_HOSTPORT_OK;
}
