// SPDX-License-Identifier: MIT
/*
 * token.c - bearer-token check in constant time, token files.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "token.h"

bool rpc_token_valid(const char *tok)
{
	size_t n;

	if (!tok)
		return false;
	for (n = 0; tok[n]; n++)
		if ((unsigned char)tok[n] < 0x21 || (unsigned char)tok[n] > 0x7e ||
		    n >= RPC_TOKEN_MAX)
			return false;
	return n > 0;
}

bool rpc_token_check(const char *expected, const char *value, size_t valuelen)
{
	unsigned char want[SHA256_DIGEST_LENGTH], got[SHA256_DIGEST_LENGTH];
	size_t i = 6;

	if (!expected || !value || valuelen < 8 || strncasecmp(value, "Bearer", 6) != 0 ||
	    value[6] != ' ')
		return false;
	while (i < valuelen && value[i] == ' ')
		i++;
	if (i == valuelen)
		return false;
	SHA256((const unsigned char *)expected, strlen(expected), want);
	SHA256((const unsigned char *)value + i, valuelen - i, got);
	return CRYPTO_memcmp(want, got, sizeof(want)) == 0;
}

/* The token is a password: say so when others may read (or replace) it.
 * A warning, not a refusal, so a deployment keeps running while fixed. */
static void warn_mode(FILE *f, const char *path)
{
	struct stat st;

	if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
		fprintf(stderr,
			"%s: warning: token file %s is open to group or others (mode %04o): run "
			"chmod 600 %s\n",
			program_invocation_short_name, path, (unsigned)(st.st_mode & 07777), path);
}

int rpc_token_load(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	char line[RPC_TOKEN_MAX + 64];
	FILE *f = fopen(path, "r");
	size_t b, e;

	if (!f) {
		int rc = -errno;

		snprintf(err, errlen, "token file %s: %s", path, strerror(-rc));
		return rc;
	}
	warn_mode(f, path);
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		snprintf(err, errlen, "token file %s: empty", path);
		return -EINVAL;
	}
	fclose(f);
	for (b = 0; line[b] == ' ' || line[b] == '\t'; b++)
		;
	e = strlen(line);
	while (e > b && (line[e - 1] == '\n' || line[e - 1] == '\r' || line[e - 1] == ' ' ||
			 line[e - 1] == '\t'))
		e--;
	line[e] = '\0';
	if (!rpc_token_valid(line + b)) {
		snprintf(
			err, errlen,
			"token file %s: the first line must be 1 to %d visible ASCII characters, no spaces",
			path, RPC_TOKEN_MAX);
		return -EINVAL;
	}
	if (e - b + 1 > outlen) {
		snprintf(err, errlen, "token file %s: token too long", path);
		return -ENOSPC;
	}
	memcpy(out, line + b, e - b + 1);
	OPENSSL_cleanse(line, sizeof(line));
	return 0;
}

int rpc_token_header(const char *token, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "Bearer %s", token);

	return n < 0 || (size_t)n >= outlen ? -ENOSPC : n;
}
