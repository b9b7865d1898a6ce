// SPDX-License-Identifier: MIT
/*
 * tls.c - OpenSSL server and client contexts (TLS 1.2+, ALPN h2, mTLS).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls.h"

/* ALPN wire format: length-prefixed protocol names. */
static const unsigned char alpn_h2[] = { 2, 'h', '2' };

char *rpc_tls_errors(const char *prefix, char *buf, size_t len)
{
	unsigned long e;
	size_t n;
	int first = 1;

	if (len == 0)
		return buf;
	n = (size_t)snprintf(buf, len, "%s", prefix ? prefix : "TLS");
	while ((e = ERR_get_error()) != 0) {
		char one[256];

		ERR_error_string_n(e, one, sizeof(one));
		if (n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", first ? ": " : "; ", one);
		first = 0;
	}
	if (first && n < len)
		snprintf(buf + n, len - n, ": (no OpenSSL detail)");
	return buf;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char *sel;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, alpn_h2, sizeof(alpn_h2), in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL; /* gRPC is HTTP/2 only */
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *ctx_common(const SSL_METHOD *method, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	if (!ctx) {
		rpc_tls_errors("TLS context", err, errlen);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* RFC 7540 9.2.2: TLS 1.2 with ephemeral key exchange and AEAD ciphers
	 * only (no CBC, no static RSA); TLS 1.3 suites are all AEAD. */
	if (SSL_CTX_set_cipher_list(ctx, RPC_TLS12_CIPHERS) != 1) {
		rpc_tls_errors("TLS 1.2 cipher list", err, errlen);
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* RFC 7540 9.2: no renegotiation and no compression under HTTP/2. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

/* Certificate chain and key into ctx: 0, or -EINVAL with OpenSSL's reasons
 * in err (OpenSSL does not tell a missing file from a bad one). */
static int load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
	char pre[512];

	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(pre, sizeof(pre), "certificate %s: cannot load (PEM chain expected)",
			 cert);
		rpc_tls_errors(pre, err, errlen);
		return -EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		int reason = ERR_GET_REASON(ERR_peek_last_error());

		/* OpenSSL checks the pair while loading the key. */
		if (reason == X509_R_KEY_VALUES_MISMATCH || reason == X509_R_KEY_TYPE_MISMATCH)
			snprintf(pre, sizeof(pre), "key %s does not match certificate %s", key,
				 cert);
		else
			snprintf(pre, sizeof(pre), "key %s: cannot load (PEM key expected)", key);
		rpc_tls_errors(pre, err, errlen);
		return -EINVAL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(pre, sizeof(pre), "key %s does not match certificate %s", key, cert);
		rpc_tls_errors(pre, err, errlen);
		return -EINVAL;
	}
	return 0;
}

SSL_CTX *rpc_tls_server_ctx(const struct rpc_tls_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	char pre[512];

	if (!cfg->cert_file || !cfg->key_file) {
		snprintf(err, errlen, "TLS server: give both a certificate and a key");
		return NULL;
	}
	ctx = ctx_common(TLS_server_method(), err, errlen);
	if (!ctx)
		return NULL;
	if (load_pair(ctx, cfg->cert_file, cfg->key_file, err, errlen) < 0)
		goto fail_ctx;
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	if (cfg->ca_file) {
		STACK_OF(X509_NAME) * names;

		if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
			snprintf(pre, sizeof(pre), "client CA %s: cannot load", cfg->ca_file);
			rpc_tls_errors(pre, err, errlen);
			goto fail_ctx;
		}
		names = SSL_load_client_CA_file(cfg->ca_file);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	/* Resumed sessions would skip the client-certificate check of a new
	 * handshake only if the cache were shared across CAs; keep it simple. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;
fail_ctx:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *rpc_tls_client_ctx(const struct rpc_tls_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	char pre[512];

	ctx = ctx_common(TLS_client_method(), err, errlen);
	if (!ctx)
		return NULL;
	if (cfg->cert_file || cfg->key_file) {
		if (!cfg->cert_file || !cfg->key_file) {
			snprintf(err, errlen,
				 "TLS client: give both a certificate and a key for mutual TLS");
			goto fail_ctx;
		}
		if (load_pair(ctx, cfg->cert_file, cfg->key_file, err, errlen) < 0)
			goto fail_ctx;
	}
	if (cfg->ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
			snprintf(pre, sizeof(pre), "server CA %s: cannot load", cfg->ca_file);
			rpc_tls_errors(pre, err, errlen);
			goto fail_ctx;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		rpc_tls_errors("system CA store: cannot load", err, errlen);
		goto fail_ctx;
	}
	SSL_CTX_set_verify(ctx, cfg->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2)) != 0) {
		rpc_tls_errors("ALPN h2", err, errlen);
		goto fail_ctx;
	}
	return ctx;
fail_ctx:
	SSL_CTX_free(ctx);
	return NULL;
}

int rpc_tls_client_prepare(SSL *ssl, const char *server_name)
{
	unsigned char addr[16];

	if (!server_name || !*server_name)
		return 0;
	/* An IP address is checked against the certificate's IP SANs and is
	 * not sent as SNI (RFC 6066 3: host names only). */
	if (inet_pton(AF_INET, server_name, addr) == 1 ||
	    inet_pton(AF_INET6, server_name, addr) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name) == 1 ?
			       0 :
			       -EINVAL;
	if (SSL_set_tlsext_host_name(ssl, server_name) != 1)
		return -EINVAL;
	return SSL_set1_host(ssl, server_name) == 1 ? 0 : -EINVAL;
}

bool rpc_tls_alpn_is_h2(const SSL *ssl)
{
	const unsigned char *p = NULL;
	unsigned int n = 0;

	SSL_get0_alpn_selected(ssl, &p, &n);
	return n == 2 && p && p[0] == 'h' && p[1] == '2';
}

const char *rpc_tls_verify_result(const SSL *ssl)
{
	long r = SSL_get_verify_result(ssl);

	return X509_verify_cert_error_string(r);
}
