// SPDX-License-Identifier: MIT
/*
 * identity.c - token files that map tokens to agent ids, and the agent id
 * of a client certificate (identity.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/x509.h>

#include "identity.h"
#include "core/log.h"
#include "rpc/token.h"

struct token_entry {
	char *token;
	char *agent_id; /* NULL: any agent */
};

struct token_map {
	struct token_entry *e;
	size_t n;
};

void token_map_free(struct token_map *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++) {
		free(m->e[i].token);
		free(m->e[i].agent_id);
	}
	free(m->e);
	free(m);
}

size_t token_map_size(const struct token_map *m)
{
	return m ? m->n : 0;
}

static int add(struct token_map *m, const char *token, const char *agent_id)
{
	struct token_entry *ne = realloc(m->e, (m->n + 1) * sizeof(*ne));

	if (!ne)
		return -ENOMEM;
	m->e = ne;
	ne[m->n].token = strdup(token);
	ne[m->n].agent_id = agent_id ? strdup(agent_id) : NULL;
	if (!ne[m->n].token || (agent_id && !ne[m->n].agent_id)) {
		free(ne[m->n].token);
		free(ne[m->n].agent_id);
		return -ENOMEM;
	}
	m->n++;
	return 0;
}

struct token_map *token_map_single(const char *token)
{
	struct token_map *m = calloc(1, sizeof(*m));

	if (m && add(m, token, NULL) < 0) {
		token_map_free(m);
		return NULL;
	}
	return m;
}

/* An agent_id in a token file: visible ASCII, as sane ids are. */
static bool valid_agent_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 256)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

struct token_map *token_map_load(const char *path, char *err, size_t errlen)
{
	struct token_map *m = calloc(1, sizeof(*m));
	char line[RPC_TOKEN_MAX + 512];
	FILE *f = fopen(path, "re");
	struct stat st;
	int lineno = 0;

	if (!m || !f) {
		snprintf(err, errlen, "token file %s: %s", path, strerror(m ? errno : ENOMEM));
		goto fail;
	}
	/* Tokens are passwords: say so when others may read (or replace) them. */
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
		log_warn("token file %s is open to group or others (mode %04o): run chmod 600 %s",
			 path, (unsigned)(st.st_mode & 07777), path);
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *tok, *agent, *extra;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "token file %s:%d: line too long", path, lineno);
			goto fail;
		}
		tok = strtok_r(line, " \t\r\n", &save);
		if (!tok || tok[0] == '#')
			continue;
		agent = strtok_r(NULL, " \t\r\n", &save);
		extra = strtok_r(NULL, " \t\r\n", &save);
		if (!rpc_token_valid(tok)) {
			snprintf(err, errlen,
				 "token file %s:%d: a token is 1 to %d visible ASCII characters",
				 path, lineno, RPC_TOKEN_MAX);
			goto fail;
		}
		if (agent && (!valid_agent_id(agent) || extra)) {
			snprintf(err, errlen,
				 "token file %s:%d: give TOKEN [AGENT_ID] (an agent_id is 1 to 256 "
				 "visible ASCII characters)",
				 path, lineno);
			goto fail;
		}
		if (m->n == IDENTITY_MAX_TOKENS) {
			snprintf(err, errlen, "token file %s:%d: more than %d tokens", path, lineno,
				 IDENTITY_MAX_TOKENS);
			goto fail;
		}
		if (add(m, tok, agent) < 0) {
			snprintf(err, errlen, "token file %s: out of memory", path);
			goto fail;
		}
	}
	if (ferror(f) || m->n == 0) {
		snprintf(err, errlen, "token file %s: %s", path,
			 ferror(f) ? strerror(errno) : "no token in it");
		goto fail;
	}
	fclose(f);
	explicit_bzero(line, sizeof(line));
	return m;
fail:
	if (f)
		fclose(f);
	explicit_bzero(line, sizeof(line));
	token_map_free(m);
	return NULL;
}

bool token_map_check(const struct token_map *m, const char *value, size_t len,
		     const char **agent_id)
{
	bool found = false;
	size_t i;

	/* No early exit: the time does not say which entry matched. */
	for (i = 0; i < m->n; i++) {
		if (rpc_token_check(m->e[i].token, value, len) && !found) {
			found = true;
			*agent_id = m->e[i].agent_id;
		}
	}
	return found;
}

int identity_peer_cn(SSL *ssl, char *out, size_t outlen)
{
	X509 *cert;
	int n;

	if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK)
		return -ENOENT;
	cert = SSL_get1_peer_certificate(ssl);
	if (!cert)
		return -ENOENT;
	n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, out,
				      (int)outlen);
	X509_free(cert);
	return n > 0 && (size_t)n < outlen ? 0 : -ENOENT;
}
