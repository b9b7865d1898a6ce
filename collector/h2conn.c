// SPDX-License-Identifier: MIT
/*
 * conn.c - one agent connection: a non-blocking socket, TLS (OpenSSL, ALPN
 * h2) or cleartext, an nghttp2 server session fed from memory buffers,
 * output buffered while the socket is full, back-pressure through HTTP/2
 * flow control, and the one place a connection is closed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/log.h"
#include "server_int.h"
#include "rpc/tls.h"

/* ---- connections ---- */

static void h2conn_set_events(struct h2conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (ev == c->events)
		return;
	if (epoll_ctl(c->srv->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
}

void h2conn_close(struct h2conn *c, const char *why)
{
	struct server *s = c->srv;

	if (why)
		log_info("%s: connection closed: %s", c->peer, why);
	while (c->calls) {
		if (c->h2)
			nghttp2_session_set_stream_user_data(c->h2, c->calls->id, NULL);
		call_free(c->calls);
	}
	if (c->h2)
		nghttp2_session_del(c->h2);
	if (c->ssl) {
		if (c->state == CONN_H2)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->out);
	free(c);
	s->nconns--;
	s->k.connections_open--;
	s->k.connections_closed++;
	accept_resume(s); /* an fd is free again */
}

/* Raw write: bytes written, 0 would block, or a negative errno (-EIO for a
 * TLS error). */
static ssize_t h2conn_write(struct h2conn *c, const uint8_t *p, size_t n)
{
	if (c->ssl) {
		int r;

		ERR_clear_error();
		r = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
		if (r > 0)
			return r;
		r = SSL_get_error(c->ssl, r);
		return r == SSL_ERROR_WANT_WRITE || r == SSL_ERROR_WANT_READ ? 0 : -EIO;
	}
	for (;;) {
		ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	}
}

/* Keep what the socket did not take: 0, or -ENOMEM. */
static int out_append(struct h2conn *c, const uint8_t *p, size_t n)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 16384;
		uint8_t *nb;

		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		while (cap < c->out_len + n)
			cap *= 2;
		if (cap != c->out_cap) {
			nb = realloc(c->out, cap);
			if (!nb)
				return -ENOMEM;
			c->out = nb;
			c->out_cap = cap;
		}
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	return 0;
}

/* Everything nghttp2 wants to send, as far as the socket takes it.
 * 0 ok (maybe blocked), or a negative errno: the connection must close. */
static void release_windows(struct h2conn *c);

int h2conn_flush(struct h2conn *c)
{
	c->dirty = false;
	for (;;) {
		const uint8_t *p;
		ssize_t n, w;

		release_windows(c);
		if (c->out_off < c->out_len) {
			w = h2conn_write(c, c->out + c->out_off, c->out_len - c->out_off);
			if (w < 0) {
				c->srv->k.err_io++;
				return (int)w;
			}
			c->out_off += (size_t)w;
			c->srv->k.bytes_out += (uint64_t)w;
			if (c->out_off < c->out_len)
				break;
			c->out_off = c->out_len = 0;
		}
		if (!c->h2)
			break;
		n = nghttp2_session_mem_send(c->h2, &p);
		if (n < 0) {
			log_warn("%s: HTTP/2 send: %s", c->peer, nghttp2_strerror((int)n));
			return -EPROTO;
		}
		if (n == 0)
			break;
		w = h2conn_write(c, p, (size_t)n);
		if (w < 0) {
			c->srv->k.err_io++;
			return (int)w;
		}
		c->srv->k.bytes_out += (uint64_t)w;
		if (w < n && out_append(c, p + w, (size_t)(n - w)) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* The peer is not taking what we owe it: acks or bytes pile up. */
bool h2conn_backlogged(const struct h2conn *c)
{
	return c->out_len - c->out_off > OUT_MAX || c->acks_waiting > c->srv->cfg.max_pending_acks;
}

/* The backlog cleared: give the peer its window back. */
static void release_windows(struct h2conn *c)
{
	struct call *st;

	if (!c->unconsumed || !c->h2 || h2conn_backlogged(c))
		return;
	for (st = c->calls; st; st = st->next_in_conn) {
		if (st->unconsumed) {
			nghttp2_session_consume(c->h2, st->id, st->unconsumed);
			st->unconsumed = 0;
		}
	}
	c->unconsumed = 0;
}

/* The session ended (GOAWAY sent): wait for the peer to close, reading and
 * dropping what it still sends, at most LINGER_MS (server.c).  Closing at
 * once would race the peer's last writes: a gRPC client still sending its
 * message when our trailers came would report the broken connection
 * (UNAVAILABLE) instead of the call's status, and bytes left unread make the
 * kernel send a reset that can destroy our last frames before they are
 * read. */
static void h2conn_linger(struct h2conn *c)
{
	c->lingering = true;
	c->linger_since_ms = clock_mono_ms();
	h2conn_set_events(c, EPOLLIN);
}

/* Lingering: drop input until the peer closes. */
static void h2conn_drain(struct h2conn *c)
{
	struct server *s = c->srv;
	size_t total = 0;

	while (total < READ_BUDGET) {
		ssize_t n = recv(c->fd, s->rbuf, sizeof(s->rbuf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			h2conn_close(c, "HTTP/2 session ended");
			return;
		}
		total += (size_t)n;
		s->k.bytes_in += (uint64_t)n;
	}
}

/* After I/O: close if done, else set the epoll mask; track stuck time. */
void h2conn_settle(struct h2conn *c)
{
	bool blocked = c->out_off < c->out_len;

	if (c->lingering)
		return;
	if (c->state == CONN_H2 && !nghttp2_session_want_read(c->h2) &&
	    !nghttp2_session_want_write(c->h2) && !blocked) {
		h2conn_linger(c);
		return;
	}
	/* Read unless paused for the store (h2conn_read): back-pressure is
	 * otherwise the HTTP/2 window (on_data_chunk). */
	h2conn_set_events(c, (c->paused ? 0 : EPOLLIN) | (blocked ? EPOLLOUT : 0));
	if (blocked || h2conn_backlogged(c)) {
		if (!c->stuck_since_ms)
			c->stuck_since_ms = clock_mono_ms();
	} else {
		c->stuck_since_ms = 0;
	}
}

/* The server's HTTP/2 session and its SETTINGS: 0, or -ENOMEM. */
static int conn_start_h2(struct h2conn *c)
{
	struct server *s = c->srv;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->cfg.max_streams },
		/* Big windows: batches stream in without waiting for WINDOW_UPDATEs. */
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 16384 },
	};

	/* nghttp2 fails these only without memory (the arguments are ours). */
	if (nghttp2_session_server_new2(&c->h2, s->cbs, c, s->h2opt))
		return -ENOMEM;
	if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) ||
	    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 8 << 20))
		return -ENOMEM;
	c->state = CONN_H2;
	return 0;
}

static void h2conn_handshake(struct h2conn *c)
{
	int r, e;
	char err[512];

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		if (!rpc_tls_alpn_is_h2(c->ssl)) {
			c->srv->k.err_tls_no_h2++;
			peer_warn(c->srv,
				  "%s: TLS peer did not negotiate ALPN h2: gRPC needs HTTP/2",
				  c->peer);
			h2conn_close(c, NULL);
			return;
		}
		c->last_active_ms = clock_mono_ms();
		if (conn_start_h2(c) < 0) {
			h2conn_close(c, "cannot start HTTP/2 session");
			return;
		}
		if (h2conn_flush(c) < 0) {
			h2conn_close(c, "write failed");
			return;
		}
		h2conn_settle(c);
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		h2conn_set_events(c, EPOLLIN);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		h2conn_set_events(c, EPOLLOUT);
		return;
	}
	c->srv->k.err_tls_handshake++;
	rpc_tls_errors("TLS handshake failed", err, sizeof(err));
	if (SSL_get_verify_result(c->ssl) != X509_V_OK)
		peer_warn(c->srv, "%s: %s (client certificate: %s)", c->peer, err,
			  rpc_tls_verify_result(c->ssl));
	else
		peer_warn(c->srv, "%s: %s", c->peer, err);
	h2conn_close(c, NULL);
}

/* The store's next group is full (--commit-max): a connection with calls,
 * which would add to it, is not read until the group goes to the store
 * thread (h2conn_resume); TCP holds its agent back.  Connections without a
 * call yet (handshakes, prefaces, first calls) are read as ever. */
static bool h2conn_pause(struct h2conn *c)
{
	if (!c->paused && c->calls && server_store_full(c->srv))
		c->paused = true;
	return c->paused;
}

void h2conn_resume(struct h2conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	h2conn_settle(c); /* level-triggered: what waits is announced again */
}

/* Read what the socket has (up to the budget) into nghttp2. */
void h2conn_read(struct h2conn *c)
{
	struct server *s = c->srv;
	size_t total = 0;

	if (h2conn_pause(c)) {
		h2conn_settle(c);
		return;
	}

	while (total < READ_BUDGET) {
		ssize_t n, used;

		if (c->ssl) {
			int r, e;

			ERR_clear_error();
			r = SSL_read(c->ssl, s->rbuf, sizeof(s->rbuf));
			if (r <= 0) {
				e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					break;
				if (e == SSL_ERROR_ZERO_RETURN) {
					h2conn_close(c, "peer closed");
					return;
				}
				s->k.err_io++;
				h2conn_close(c, "TLS read failed");
				return;
			}
			n = r;
		} else {
			n = recv(c->fd, s->rbuf, sizeof(s->rbuf), 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				s->k.err_io++;
				h2conn_close(c, strerror(errno));
				return;
			}
			if (n == 0) {
				h2conn_close(c, "peer closed");
				return;
			}
		}
		total += (size_t)n;
		s->k.bytes_in += (uint64_t)n;
		used = nghttp2_session_mem_recv(c->h2, s->rbuf, (size_t)n);
		if (used < 0) {
			h2_error(c, nghttp2_strerror((int)used));
			if (used != NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
				nghttp2_session_terminate_session(c->h2, NGHTTP2_PROTOCOL_ERROR);
				h2conn_flush(c);
			}
			h2conn_close(c, NULL);
			return;
		}
		/* Acks and window updates out as we go. */
		if (h2conn_flush(c) < 0) {
			h2conn_close(c, "write failed");
			return;
		}
		if (!nghttp2_session_want_read(c->h2))
			break; /* ending (GOAWAY sent): h2conn_settle closes it */
		if (h2conn_pause(c))
			break; /* the rest stays in the socket (and OpenSSL) */
	}
	if (h2conn_flush(c) < 0) {
		h2conn_close(c, "write failed");
		return;
	}
	h2conn_settle(c);
}

void h2conn_event(struct h2conn *c, uint32_t ev)
{
	if (c->lingering) {
		h2conn_drain(c);
		return;
	}
	if (c->state == CONN_TLS_HANDSHAKE) {
		h2conn_handshake(c);
		return;
	}
	if (ev & (EPOLLERR | EPOLLHUP) && !(ev & EPOLLIN)) {
		h2conn_close(c, "socket error or hang-up");
		return;
	}
	if (ev & EPOLLOUT) {
		if (h2conn_flush(c) < 0) {
			h2conn_close(c, "write failed");
			return;
		}
	}
	if (ev & EPOLLIN) {
		h2conn_read(c);
		return;
	}
	h2conn_settle(c);
}

void peer_name(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(out, len, "%s:%u", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(out, len, "[%s]:%u", host, port);
	} else {
		snprintf(out, len, "unknown peer");
	}
}

/* The peer's address as a key for --max-per-source: an IPv4 address (also
 * when mapped into IPv6), or an IPv6 /64 (one host usually has all of it).
 * key[0] = 0: no address (a socketpair). */
static void source_key(int fd, uint8_t key[9])
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	memset(key, 0, 9);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl))
		return;
	if (ss.ss_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	} else if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			key[0] = 4;
			memcpy(key + 1, a->s6_addr + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, a->s6_addr, 8);
		}
	}
}

static uint32_t from_source(const struct server *s, const uint8_t key[9])
{
	const struct h2conn *c;
	uint32_t n = 0;

	for (c = s->conns; c; c = c->next)
		n += !memcmp(c->source, key, sizeof(c->source));
	return n;
}

/* A connected socket becomes a connection (TLS or h2c as configured).
 * 0, or a negative errno (fd closed; -EMFILE: --max-connections reached). */
int h2conn_adopt(struct server *s, int fd, const char *peer)
{
	struct h2conn *c;
	uint8_t source[sizeof(c->source)];
	struct epoll_event e;
	int one = 1, rc;
	uint32_t n;

	if (s->nconns >= s->cfg.max_connections) {
		s->k.err_refused_max_connections++;
		peer_warn(s, "%s: refused: %u connections open (--max-connections)", peer,
			  s->nconns);
		close(fd);
		return -EMFILE;
	}
	source_key(fd, source);
	if (source[0] && (n = from_source(s, source)) >= s->cfg.max_per_source) {
		s->k.err_refused_per_source++;
		peer_warn(s,
			  "%s: refused: %u connections open from this address (--max-per-source)",
			  peer, n);
		close(fd);
		return -EMFILE;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->srv = s;
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->created_ms = c->last_active_ms = clock_mono_ms();
	c->authed = !s->cfg.token && !s->cfg.tokens;
	memcpy(c->source, source, sizeof(c->source));
	if (s->cfg.tls) {
		c->ssl = SSL_new(s->cfg.tls);
		rc = -ENOMEM;
		if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1)
			goto fail;
		SSL_set_accept_state(c->ssl);
		c->state = CONN_TLS_HANDSHAKE;
	} else if ((rc = conn_start_h2(c)) < 0) {
		goto fail;
	}
	e.events = EPOLLIN;
	e.data.ptr = c;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e)) {
		rc = -errno;
		goto fail;
	}
	c->events = EPOLLIN;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	s->k.connections_accepted++;
	s->k.connections_open++;
	log_info("%s: connected", peer);
	if (c->h2 && (rc = h2conn_flush(c)) < 0) {
		h2conn_close(c, "write failed");
		return rc;
	}
	return 0;
fail:
	if (c->h2)
		nghttp2_session_del(c->h2);
	SSL_free(c->ssl);
	close(fd);
	free(c);
	return rc;
}
