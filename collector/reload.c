// SPDX-License-Identifier: MIT
/* reload.c - changes to a running server on SIGHUP; see reload.h. */
#include "reload.h"

#include "server_int.h"

void server_set_auth(struct server *s, const char *token, const struct token_map *tokens)
{
	s->cfg.token = token;
	s->cfg.tokens = tokens;
}
