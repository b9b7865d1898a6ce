/* SPDX-License-Identifier: MIT */
/*
 * reload.h - what flowpic-collector changes in a running server on SIGHUP
 * (main.c reads the settings again).
 */
#ifndef FLOWPIC_COLLECTOR_RELOAD_H
#define FLOWPIC_COLLECTOR_RELOAD_H

#include "identity.h"
#include "server.h"

/* The tokens new calls are checked against (both NULL: no token needed).
 * Calls already authorized keep going: each holds its own copy of its
 * token's agent_id, so the old map may be freed at once. */
void server_set_auth(struct server *s, const char *token, const struct token_map *tokens);

#endif
