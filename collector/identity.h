/* SPDX-License-Identifier: MIT */
/*
 * identity.h - who may write as which agent.  A token file holds one token
 * per line, optionally followed by the agent_id it is for:
 *
 *     # comments and blank lines are skipped
 *     Zk3...q9  web1        a call with this token may only write agent_id "web1"
 *     p0V...2a  db7
 *     Hx8...ff              no agent_id: this token may write as any agent
 *
 * A file of one bare token (the old format) means that token, any agent.
 * With --agent-id-from-cert, an agent's agent_id must also equal the common
 * name (CN) of its mutual-TLS client certificate.
 */
#ifndef FLOWPIC_COLLECTOR_IDENTITY_H
#define FLOWPIC_COLLECTOR_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#define IDENTITY_MAX_TOKENS 10000

struct token_map;

/* Read a token file (format above).  NULL and a one-line reason in err (the
 * file and line) on failure.  Warns when the file is open to group or
 * others. */
struct token_map *token_map_load(const char *path, char *err, size_t errlen);
/* One token for any agent (--token).  NULL without memory. */
struct token_map *token_map_single(const char *token);
void token_map_free(struct token_map *m);
size_t token_map_size(const struct token_map *m);

/* Does the authorization header value (not NUL-terminated) carry one of the
 * tokens?  Every entry is compared, in constant time each.  On a match,
 * *agent_id is the token's agent (NULL: any). */
bool token_map_check(const struct token_map *m, const char *value, size_t len,
		     const char **agent_id);

/* The CN of the peer's verified client certificate into out: 0, or -ENOENT
 * when there is none (no TLS, no certificate, no CN). */
int identity_peer_cn(SSL *ssl, char *out, size_t outlen);

#endif
