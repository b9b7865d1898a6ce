/* SPDX-License-Identifier: MIT */
/*
 * tls.h - OpenSSL contexts for the verdict stream: TLS 1.2 or later (1.2
 * with AEAD suites only), ALPN
 * "h2" (gRPC needs HTTP/2; a peer that cannot agree on it is refused during
 * the handshake), and mutual TLS with a CA of our own.
 *
 * Server: a certificate and key; with a client CA every client must show a
 * certificate signed by it (no certificate, or another CA's = handshake
 * failure).  Client: the CA that signed the server's certificate (default:
 * the system store), the name to verify, and optionally its own certificate
 * and key for mutual TLS.
 */
#ifndef FLOWPIC_RPC_TLS_H
#define FLOWPIC_RPC_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* TLS 1.2 suites of both ends (OpenSSL cipher string): ECDHE or DHE key
 * exchange with AES-GCM or ChaCha20-Poly1305, as HTTP/2 requires (RFC 7540
 * 9.2.2); a peer offering only CBC or static-RSA suites fails the handshake. */
#define RPC_TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!PSK:!SRP"

struct rpc_tls_config {
	const char *cert_file;	 /* PEM certificate chain: server always, client for mTLS */
	const char *key_file;	 /* PEM private key of cert_file */
	const char *ca_file;	 /* server: CA of client certificates (enables mTLS);
				  * client: CA of the server (NULL: system store) */
	const char *server_name; /* client: SNI and the name verified (NULL: no name check) */
	bool insecure;		 /* client: skip verification (tests of refusal only) */
};

/* A server context; NULL and a one-line reason in err on failure. */
SSL_CTX *rpc_tls_server_ctx(const struct rpc_tls_config *cfg, char *err, size_t errlen);

/* A client context; NULL and a one-line reason in err on failure. */
SSL_CTX *rpc_tls_client_ctx(const struct rpc_tls_config *cfg, char *err, size_t errlen);

/* For a client SSL: set SNI and the host name to verify (cfg->server_name).
 * 0, or -EINVAL. */
int rpc_tls_client_prepare(SSL *ssl, const char *server_name);

/* After the handshake: did the peers agree on "h2"? */
bool rpc_tls_alpn_is_h2(const SSL *ssl);

/* Drain OpenSSL's error queue into one line: "prefix: reason; reason".
 * Returns buf. */
char *rpc_tls_errors(const char *prefix, char *buf, size_t len);

/* Certificate verification result of the peer as one phrase
 * ("certificate has expired", "ok", "no certificate"). */
const char *rpc_tls_verify_result(const SSL *ssl);

#endif
