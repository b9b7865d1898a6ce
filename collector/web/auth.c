// SPDX-License-Identifier: MIT
/*
 * auth.c - who may look: viewer tokens (a login form, compared in constant
 * time by the token file's own check) or a verified client certificate,
 * sessions in memory (bounded, 12 h), and the CSRF token every POST but
 * the login must carry.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>

#include "collector/json.h"
#include "rpc/token.h"
#include "web_int.h"

#define COOKIE "fp_session"

static int random_hex(char *out, size_t nbytes)
{
	unsigned char r[32];
	size_t i;

	if (nbytes > sizeof(r) || getrandom(r, nbytes, 0) != (ssize_t)nbytes)
		return -EIO;
	for (i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	explicit_bzero(r, sizeof(r));
	return 0;
}

/* A new session in a free or expired slot (or the one closest to
 * expiring): NULL when no random bytes could be had. */
static struct session *session_new(struct web *w, const char *user, const char *via)
{
	uint64_t now = web_now_ms();
	struct session *s = &w->sessions[0];
	size_t i;

	for (i = 0; i < WEB_MAX_SESSIONS; i++) {
		struct session *t = &w->sessions[i];

		if (!t->id[0] || t->expires_ms <= now) {
			s = t;
			break;
		}
		if (t->expires_ms < s->expires_ms)
			s = t;
	}
	memset(s, 0, sizeof(*s));
	if (random_hex(s->id, 32) < 0 || random_hex(s->csrf, 32) < 0) {
		memset(s, 0, sizeof(*s));
		return NULL;
	}
	snprintf(s->user, sizeof(s->user), "%s", user);
	s->via = via;
	s->expires_ms = now + WEB_SESSION_S * 1000ull;
	return s;
}

static void set_cookie(struct web *w, struct client *c, const char *value, int max_age)
{
	snprintf(c->set_cookie, sizeof(c->set_cookie),
		 "Set-Cookie: " COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d%s\r\n",
		 value, max_age, w->tls ? "; Secure" : "");
}

/* The fp_session value of the Cookie header (64 hex digits), or NULL. */
static const char *cookie_value(const struct client *c, size_t *len)
{
	size_t n, i = 0, klen = strlen(COOKIE);
	const char *v = http1_field(&c->req, "Cookie", &n);

	while (v && i < n) {
		size_t end = i, start;

		while (end < n && v[end] != ';')
			end++;
		start = i;
		while (start < end && v[start] == ' ')
			start++;
		if (end - start > klen && !memcmp(v + start, COOKIE, klen) &&
		    v[start + klen] == '=') {
			*len = end - start - klen - 1;
			while (*len && v[start + klen + 1 + *len - 1] == ' ')
				(*len)--;
			return v + start + klen + 1;
		}
		i = end + 1;
	}
	return NULL;
}

const struct session *auth_session(struct web *w, struct client *c)
{
	const struct session *found = NULL;
	uint64_t now = web_now_ms();
	size_t len = 0, i;
	const char *v = cookie_value(c, &len);
	struct session *s;

	if (v && len == 64) {
		/* Every slot compared, in constant time each. */
		for (i = 0; i < WEB_MAX_SESSIONS; i++) {
			const struct session *t = &w->sessions[i];

			if (t->id[0] && CRYPTO_memcmp(t->id, v, 64) == 0 && t->expires_ms > now &&
			    !found)
				found = t;
		}
	}
	if (found || !c->cert_cn[0])
		return found;
	/* A verified client certificate logs in by itself. */
	s = session_new(w, c->cert_cn, "cert");
	if (!s)
		return NULL;
	WEB_BUMP(w, web_logins);
	set_cookie(w, c, s->id, WEB_SESSION_S);
	return s;
}

bool auth_csrf_ok(const struct client *c, const struct session *s)
{
	size_t n;
	const char *v = http1_field(&c->req, "X-CSRF-Token", &n);

	return s && v && n == 64 && CRYPTO_memcmp(v, s->csrf, 64) == 0;
}

/* Origin, or else Referer, when sent, must name this server (the Host). */
static bool same_origin(const struct client *c)
{
	size_t hn, on, an;
	const char *host = http1_field(&c->req, "Host", &hn);
	const char *o = http1_field(&c->req, "Origin", &on), *auth;

	if (!o)
		o = http1_field(&c->req, "Referer", &on);
	if (!o)
		return true; /* a client that sends neither (curl, a test) */
	if (!host)
		return false;
	auth = on > 3 ? memmem(o, on, "://", 3) : NULL;
	if (!auth)
		return false;
	auth += 3;
	an = on - (size_t)(auth - o);
	an = strcspn(auth, "/") < an ? strcspn(auth, "/") : an;
	return an == hn && !memcmp(auth, host, hn);
}

void auth_login(struct web *w, struct client *c, const char *body, size_t len)
{
	const char *name = NULL;
	char tok[RPC_TOKEN_MAX + 16], bearer[RPC_TOKEN_MAX + 32];
	struct session *s;
	int n;

	if (!same_origin(c)) {
		WEB_BUMP(w, web_login_failed);
		http_error(w, c, 403, "login from another origin refused");
		return;
	}
	n = http_form(body, len, "token", tok, sizeof(tok));
	if (n <= 0 || !w->tokens ||
	    snprintf(bearer, sizeof(bearer), "Bearer %s", tok) >= (int)sizeof(bearer) ||
	    !token_map_check(w->tokens, bearer, strlen(bearer), &name)) {
		explicit_bzero(tok, sizeof(tok));
		explicit_bzero(bearer, sizeof(bearer));
		WEB_BUMP(w, web_login_failed);
		http_redirect(w, c, "/login?failed=1");
		return;
	}
	explicit_bzero(tok, sizeof(tok));
	explicit_bzero(bearer, sizeof(bearer));
	s = session_new(w, name ? name : "viewer", "token");
	if (!s) {
		http_error(w, c, 500, "no random bytes for a session");
		return;
	}
	WEB_BUMP(w, web_logins);
	set_cookie(w, c, s->id, WEB_SESSION_S);
	http_redirect(w, c, "/");
}

void auth_logout(struct web *w, struct client *c)
{
	struct session *s = (struct session *)c->sess;

	if (s)
		memset(s, 0, sizeof(*s));
	set_cookie(w, c, "", 0);
	http_redirect(w, c, "/login");
}

void auth_session_json(struct web *w, struct client *c)
{
	struct sbuf b = { 0 };

	sbuf_puts(&b, "{\"user\":");
	sbuf_json_str(&b, c->sess->user, strlen(c->sess->user));
	sbuf_printf(&b, ",\"csrf\":\"%s\",\"via\":\"%s\"}", c->sess->csrf, c->sess->via);
	http_json(w, c, &b);
	sbuf_free(&b);
}
