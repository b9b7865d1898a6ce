// SPDX-License-Identifier: MIT
/*
 * test_rpc_tls.c - the TLS contexts of rpc/tls.c in real handshakes over a
 * socketpair: server name checks (DNS and IP), ALPN h2 required, TLS 1.2 as
 * the floor, mutual TLS refusing a missing or foreign client certificate,
 * TLS 1.2 with AEAD suites only (RFC 7540 9.2.2: a real `openssl s_client`
 * offering only CBC suites is refused, an ECDHE-GCM one is served), and
 * one-line errors for bad files.  Certificates: make_certs.sh (argv[1]).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>

#include "rpc/tls.h"

static char dir[512];

static const char *f(const char *name)
{
	static char buf[8][600];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

struct result {
	int server_ok, client_ok;
	bool server_h2, client_h2;
	long client_verify;
};

/* Drive both ends of a handshake in one thread. */
static struct result handshake(SSL_CTX *sctx, SSL_CTX *cctx, const char *name)
{
	struct result r = { 0 };
	int sv[2], i, sdone = 0, cdone = 0;
	SSL *s, *c;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	s = SSL_new(sctx);
	c = SSL_new(cctx);
	SSL_set_fd(s, sv[0]);
	SSL_set_fd(c, sv[1]);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	assert_int_equal(rpc_tls_client_prepare(c, name), 0);
	for (i = 0; i < 200 && (!sdone || !cdone); i++) {
		int rv;

		if (!cdone) {
			rv = SSL_do_handshake(c);
			if (rv == 1)
				cdone = 1, r.client_ok = 1;
			else if (SSL_get_error(c, rv) != SSL_ERROR_WANT_READ)
				cdone = 1;
		}
		if (!sdone) {
			rv = SSL_do_handshake(s);
			if (rv == 1)
				sdone = 1, r.server_ok = 1;
			else if (SSL_get_error(s, rv) != SSL_ERROR_WANT_READ)
				sdone = 1;
		}
	}
	ERR_clear_error();
	r.server_h2 = r.server_ok && rpc_tls_alpn_is_h2(s);
	r.client_h2 = r.client_ok && rpc_tls_alpn_is_h2(c);
	r.client_verify = SSL_get_verify_result(c);
	if (r.client_ok)
		assert_true(SSL_version(c) >= TLS1_2_VERSION);
	SSL_free(s);
	SSL_free(c);
	close(sv[0]);
	close(sv[1]);
	return r;
}

static SSL_CTX *server_named(const char *who, bool mtls)
{
	char cert[640], key[640];
	struct rpc_tls_config cfg = { .cert_file = cert,
				      .key_file = key,
				      .ca_file = mtls ? f("ca.pem") : NULL };
	char err[512];
	SSL_CTX *ctx;

	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, who);
	snprintf(key, sizeof(key), "%s/%s.key", dir, who);
	ctx = rpc_tls_server_ctx(&cfg, err, sizeof(err));
	if (!ctx)
		fail_msg("%s", err);
	return ctx;
}

static SSL_CTX *server(bool mtls)
{
	return server_named("server", mtls);
}

static SSL_CTX *client(const char *who)
{
	struct rpc_tls_config cfg = { .ca_file = f("ca.pem") };
	char err[512], cert[64], key[64];
	SSL_CTX *ctx;

	if (who) {
		snprintf(cert, sizeof(cert), "%s.pem", who);
		snprintf(key, sizeof(key), "%s.key", who);
		cfg.cert_file = f(cert);
		cfg.key_file = f(key);
	}
	ctx = rpc_tls_client_ctx(&cfg, err, sizeof(err));
	if (!ctx)
		fail_msg("%s", err);
	return ctx;
}

static void test_tls(void **state)
{
	SSL_CTX *s = server(false), *c = client(NULL);
	struct result r;

	(void)state;
	r = handshake(s, c, "localhost");
	assert_true(r.server_ok && r.client_ok && r.server_h2 && r.client_h2);
	r = handshake(s, c, "127.0.0.1");
	assert_true(r.server_ok && r.client_ok);
	/* The certificate does not name this host. */
	r = handshake(s, c, "collector.example");
	assert_false(r.client_ok);
	assert_int_equal(r.client_verify, X509_V_ERR_HOSTNAME_MISMATCH);
	SSL_CTX_free(s);
	SSL_CTX_free(c);
}

static void test_untrusted_server(void **state)
{
	struct rpc_tls_config cfg = { .ca_file = f("otherca.pem") };
	char err[256];
	SSL_CTX *s = server(false), *c = rpc_tls_client_ctx(&cfg, err, sizeof(err));
	struct result r;

	(void)state;
	assert_non_null(c);
	r = handshake(s, c, "localhost");
	assert_false(r.client_ok);
	SSL_CTX_free(s);
	SSL_CTX_free(c);
}

static void test_alpn_and_version(void **state)
{
	static const unsigned char http11[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
	SSL_CTX *s = server(false), *c = SSL_CTX_new(TLS_client_method());
	struct result r;

	(void)state;
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	/* No ALPN at all: the handshake passes, but it is not h2 (the
	 * collector closes such a connection). */
	r = handshake(s, c, NULL);
	assert_true(r.server_ok);
	assert_false(r.server_h2);
	/* Only http/1.1 offered: refused in the handshake. */
	SSL_CTX_set_alpn_protos(c, http11, sizeof(http11));
	r = handshake(s, c, NULL);
	assert_false(r.server_ok);
	/* TLS 1.1 at most: below our floor. */
	SSL_CTX_set_alpn_protos(c, (const unsigned char *)"\x02h2", 3);
	SSL_CTX_set_min_proto_version(c, TLS1_VERSION);
	SSL_CTX_set_max_proto_version(c, TLS1_1_VERSION);
	r = handshake(s, c, NULL);
	assert_false(r.server_ok);
	SSL_CTX_free(s);
	SSL_CTX_free(c);
}

/* A real `openssl s_client -tls1_2 -cipher CIPHER` against sctx on
 * loopback: did our side complete the handshake, and did s_client exit 0? */
static void s_client(SSL_CTX *sctx, const char *cipher, bool *server_ok, bool *client_ok)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 10 };
	socklen_t alen = sizeof(a);
	char target[64];
	int lfd, fd, st;
	pid_t pid;
	SSL *s;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	snprintf(target, sizeof(target), "127.0.0.1:%u", ntohs(a.sin_port));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execlp("openssl", "openssl", "s_client", "-connect", target, "-tls1_2", "-cipher",
		       cipher, "-alpn", "h2", "-servername", "localhost", (char *)NULL);
		_exit(127);
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	s = SSL_new(sctx);
	SSL_set_fd(s, fd);
	*server_ok = SSL_accept(s) == 1;
	if (*server_ok)
		SSL_shutdown(s);
	ERR_clear_error();
	SSL_free(s);
	close(fd);
	close(lfd);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 127); /* openssl ran */
	*client_ok = WEXITSTATUS(st) == 0;
}

static void test_aead_only(void **state)
{
	SSL_CTX *ec = server(false), *rsa = server_named("server-rsa", false), *c = client(NULL);
	bool sok, cok;
	struct result r;

	(void)state;
	/* CBC suites (and static RSA) are refused by the server ... */
	s_client(rsa, "AES128-SHA", &sok, &cok);
	assert_false(sok || cok);
	s_client(ec, "ECDHE-ECDSA-AES128-SHA", &sok, &cok);
	assert_false(sok || cok);
	s_client(rsa, "ECDHE-RSA-AES256-SHA384", &sok, &cok);
	assert_false(sok || cok);
	/* ... AEAD ones are served. */
	s_client(ec, "ECDHE-ECDSA-AES128-GCM-SHA256", &sok, &cok);
	assert_true(sok && cok);
	s_client(rsa, "ECDHE-RSA-AES256-GCM-SHA384", &sok, &cok);
	assert_true(sok && cok);
	s_client(ec, "ECDHE-ECDSA-CHACHA20-POLY1305", &sok, &cok);
	assert_true(sok && cok);
	/* Our client refuses a TLS 1.2 server that offers only CBC. */
	SSL_CTX_set_max_proto_version(ec, TLS1_2_VERSION);
	assert_int_equal(SSL_CTX_set_cipher_list(ec, "ECDHE-ECDSA-AES128-SHA"), 1);
	r = handshake(ec, c, "localhost");
	assert_false(r.client_ok || r.server_ok);
	assert_int_equal(SSL_CTX_set_cipher_list(ec, "ECDHE-ECDSA-AES128-GCM-SHA256"), 1);
	r = handshake(ec, c, "localhost");
	assert_true(r.client_ok && r.server_ok);
	SSL_CTX_free(ec);
	SSL_CTX_free(rsa);
	SSL_CTX_free(c);
}

static void test_mtls(void **state)
{
	SSL_CTX *s = server(true), *none = client(NULL), *good = client("client"),
		*rogue = client("rogue");
	struct result r;

	(void)state;
	r = handshake(s, good, "localhost");
	assert_true(r.server_ok && r.client_ok && r.server_h2);
	r = handshake(s, none, "localhost");
	assert_false(r.server_ok);
	r = handshake(s, rogue, "localhost");
	assert_false(r.server_ok);
	SSL_CTX_free(s);
	SSL_CTX_free(none);
	SSL_CTX_free(good);
	SSL_CTX_free(rogue);
}

static void test_errors(void **state)
{
	struct rpc_tls_config cfg = { .cert_file = f("missing.pem"), .key_file = f("server.key") };
	char err[512];

	(void)state;
	assert_null(rpc_tls_server_ctx(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "missing.pem"));
	assert_null(strchr(err, '\n'));
	cfg.cert_file = f("server.pem");
	cfg.key_file = f("client.key");
	assert_null(rpc_tls_server_ctx(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "does not match"));
	cfg.key_file = NULL;
	assert_null(rpc_tls_server_ctx(&cfg, err, sizeof(err)));
	assert_null(rpc_tls_client_ctx(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "both"));
	cfg = (struct rpc_tls_config){ .cert_file = f("server.pem"),
				       .key_file = f("server.key"),
				       .ca_file = f("nothere.pem") };
	assert_null(rpc_tls_server_ctx(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "nothere.pem"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_untrusted_server),
		cmocka_unit_test(test_alpn_and_version),
		cmocka_unit_test(test_aead_only),
		cmocka_unit_test(test_mtls),
		cmocka_unit_test(test_errors),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test_rpc_tls CERT_DIR (made by make_certs.sh)\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
