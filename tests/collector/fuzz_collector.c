// SPDX-License-Identifier: MIT
/*
 * fuzz_collector.c - libFuzzer on the whole server side of one connection:
 * bytes go through a socketpair into a real flowpic-collector server
 * (nghttp2 session, gRPC framing, protobuf-c, an in-memory SQLite store,
 * group commit and acks) until it closes the connection or goes quiet.
 *
 * Input: byte 0 picks the opening.  Even: the client preface, SETTINGS and a
 * valid Collector.Stream request on stream 1 come first, so the rest lands in
 * DATA frames, gRPC prefixes and Batch messages; odd: only the preface, the
 * rest is raw HTTP/2.  Anything may happen except a crash, a leak or
 * undefined behaviour.
 *
 * Built with FUZZ_COLLECTOR_TOKEN (fuzz_collector_token), the server
 * requires a token, and the request of an even opening carries the right
 * one (byte 0 & 2), a wrong one (& 4), or none: the authentication path,
 * the refusals and what follows them on the same connection.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "collector/server.h"
#include "collector/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct server *srv;
static struct store *store;
static unsigned runs;

static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#ifdef FUZZ_COLLECTOR_TOKEN
#define TOKEN "fuzz-token"
#endif

/* HEADERS (END_HEADERS) on stream 1: literal fields without indexing. */
static size_t request(uint8_t *out, uint8_t mode)
{
	static const char *const h[][2] = {
		{ ":method", "POST" },
		{ ":scheme", "http" },
		{ ":path", "/flowpic.v1.Collector/Stream" },
		{ ":authority", "fuzz" },
		{ "content-type", "application/grpc" },
		{ "te", "trailers" },
		{ "authorization", "Bearer fuzz-token" },
		{ "authorization", "Bearer wrong-token" },
	};
	size_t n = 9, i;

	for (i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
		if ((i == 6 && !(mode & 2)) || (i == 7 && !(mode & 4)))
			continue;
		size_t kl = strlen(h[i][0]), vl = strlen(h[i][1]);

		out[n++] = 0;
		out[n++] = (uint8_t)kl;
		memcpy(out + n, h[i][0], kl);
		n += kl;
		out[n++] = (uint8_t)vl;
		memcpy(out + n, h[i][1], vl);
		n += vl;
	}
	out[0] = 0;
	out[1] = (uint8_t)((n - 9) >> 8);
	out[2] = (uint8_t)(n - 9);
	out[3] = 1; /* HEADERS */
	out[4] = 4; /* END_HEADERS */
	out[5] = out[6] = out[7] = 0;
	out[8] = 1;
	return n;
}

static void setup(void)
{
	struct store_options so = { .busy_timeout_ms = 100 };
	struct server_config cfg;
	struct store *st;
	char err[512];

	log_init("fuzz_collector", LOG_ERROR);
	store = st = store_open("sqlite::memory:", &so, err, sizeof(err));
	if (!st)
		abort();
	server_config_default(&cfg);
	cfg.listen = "127.0.0.1:0";
	cfg.max_message = 65536;
#ifdef TOKEN
	cfg.token = TOKEN;
#endif
	srv = server_new(&cfg, st, err, sizeof(err));
	if (!srv)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t settings[9] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };
	uint8_t head[512], sink[65536];
	size_t n = 0;
	int sv[2], i;

	/* A fresh in-memory store now and then: what inputs store stays bounded. */
	if (srv && ++runs % 2000 == 0) {
		server_free(srv);
		store_close(store);
		srv = NULL;
	}
	if (!srv)
		setup();
	if (size < 1 || size > 60000)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	memcpy(head, preface, sizeof(preface) - 1);
	n = sizeof(preface) - 1;
	if (!(data[0] & 1)) {
		memcpy(head + n, settings, sizeof(settings));
		n += sizeof(settings);
		n += request(head + n, data[0]);
	}
	if (server_adopt(srv, sv[0], "fuzz") == 0) {
		/* The socketpair buffer holds the whole input: write, half-close. */
		if (write(sv[1], head, n) < 0 || write(sv[1], data + 1, size - 1) < 0)
			abort();
		shutdown(sv[1], SHUT_WR);
		for (i = 0; i < 64 && server_connections(srv); i++) {
			server_step(srv, 0);
			while (recv(sv[1], sink, sizeof(sink), MSG_DONTWAIT) > 0)
				;
		}
		server_close_all(srv);
	}
	close(sv[1]);
	return 0;
}
