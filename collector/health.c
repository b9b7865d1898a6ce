// SPDX-License-Identifier: MIT
/* health.c - grpc.health.v1.Health/Check and the store probes; see health.h. */
#include "health.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "core/log.h"
#include "rpc/grpc_status.h"
#include "server_int.h"

#define FRESH_MS 1000	   /* a status this recent is answered as it is */
#define PG_TIMEOUT_MS 2000 /* a PostgreSQL probe without an answer: NOT_SERVING */
#define SERVICE_MAX 200

enum store_kind { KIND_NONE, KIND_SQLITE, KIND_PG };
enum pg_phase { PG_IDLE, PG_CONNECTING, PG_QUERY };

static struct {
	enum store_kind kind;
	char *target; /* SQLite path or libpq conninfo */
	enum health_status status;
	uint64_t at_ms; /* when status was found */
	char why[256];	/* why NOT_SERVING (logged once per change) */
	/* SQLite: the file the store opened */
	dev_t dev;
	ino_t ino;
	/* PostgreSQL */
	PGconn *pg;
	enum pg_phase phase;
	PostgresPollingStatusType want;
	uint64_t started_ms;
	bool fresh_conn;
} H;

int health_setup(const char *url)
{
	const char *t = url;

	health_teardown();
	if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11)) {
		H.kind = KIND_PG;
	} else if (!strncmp(url, "pg:", 3)) {
		H.kind = KIND_PG;
		t = url + 3;
	} else {
		H.kind = KIND_SQLITE;
		if (!strncmp(url, "sqlite:", 7))
			t = url + 7;
	}
	H.target = strdup(t);
	if (!H.target) {
		H.kind = KIND_NONE;
		return -ENOMEM;
	}
	if (H.kind == KIND_SQLITE) {
		struct stat st;

		if (stat(H.target, &st) == 0) {
			H.dev = st.st_dev;
			H.ino = st.st_ino;
		}
	}
	return 0;
}

void health_teardown(void)
{
	if (H.pg)
		PQfinish(H.pg);
	free(H.target);
	memset(&H, 0, sizeof(H));
}

/* A probe's result: logged when the status changes. */
static void found(enum health_status st, uint64_t now_ms, const char *why)
{
	if (st != H.status && H.status != HEALTH_UNKNOWN) {
		if (st == HEALTH_NOT_SERVING)
			log_warn("health: NOT_SERVING: the store is not reachable: %s", why);
		else
			log_warn("health: SERVING: the store is reachable again");
	} else if (st == HEALTH_NOT_SERVING && H.status == HEALTH_UNKNOWN) {
		log_warn("health: NOT_SERVING: the store is not reachable: %s", why);
	}
	H.status = st;
	H.at_ms = now_ms;
	snprintf(H.why, sizeof(H.why), "%s", why);
}

static void probe_sqlite(uint64_t now_ms)
{
	sqlite3 *db = NULL;
	char why[256] = "";
	struct stat st;
	int rc;

	/* By its name, as the next start would open it: the store's own
	 * descriptor goes on writing to a file deleted, replaced or made
	 * read-only (and SQLite reuses descriptors it keeps open). */
	if (stat(H.target, &st) < 0) {
		snprintf(why, sizeof(why), "%s: %s", H.target, strerror(errno));
		goto out;
	}
	if (st.st_dev != H.dev || st.st_ino != H.ino) {
		snprintf(why, sizeof(why), "%s: not the file the store opened (replaced)",
			 H.target);
		goto out;
	}
	if (access(H.target, R_OK | W_OK) < 0) {
		snprintf(why, sizeof(why), "%s: cannot be written: %s", H.target, strerror(errno));
		goto out;
	}
	rc = sqlite3_open_v2(H.target, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(why, sizeof(why), "%s: %s", H.target, sqlite3_errstr(rc));
	} else if (sqlite3_db_readonly(db, "main") == 1) {
		snprintf(why, sizeof(why), "%s: cannot be written (permissions)", H.target);
	} else {
		sqlite3_busy_timeout(db, 0);
		rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			snprintf(why, sizeof(why), "%s: %s", H.target, sqlite3_errmsg(db));
	}
out:
	sqlite3_close(db);
	found(why[0] ? HEALTH_NOT_SERVING : HEALTH_SERVING, now_ms, why);
}

static void notice_ignore(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static void pg_drop(void)
{
	if (H.pg)
		PQfinish(H.pg);
	H.pg = NULL;
	H.phase = PG_IDLE;
}

/* The libpq message as one line. */
static void pg_fail(uint64_t now_ms, const char *what)
{
	char why[256];
	size_t n;

	snprintf(why, sizeof(why), "PostgreSQL: %s%s", what,
		 H.pg ? PQerrorMessage(H.pg) : "out of memory");
	for (n = strlen(why); n && (why[n - 1] == '\n' || why[n - 1] == ' '); n--)
		why[n - 1] = '\0';
	for (n = 0; why[n]; n++)
		if (why[n] == '\n')
			why[n] = ' ';
	pg_drop();
	found(HEALTH_NOT_SERVING, now_ms, why);
}

static void pg_send(uint64_t now_ms)
{
	if (!PQsendQuery(H.pg, "SELECT 1") || PQflush(H.pg) < 0) {
		pg_fail(now_ms, "");
		return;
	}
	H.phase = PG_QUERY;
}

static void pg_start(uint64_t now_ms, bool reconnect)
{
	H.started_ms = now_ms;
	if (H.pg && !reconnect && PQstatus(H.pg) == CONNECTION_OK) {
		H.fresh_conn = false;
		pg_send(now_ms);
		return;
	}
	pg_drop();
	H.started_ms = now_ms;
	H.fresh_conn = true;
	H.pg = PQconnectStart(H.target);
	if (!H.pg || PQstatus(H.pg) == CONNECTION_BAD) {
		pg_fail(now_ms, "");
		return;
	}
	PQsetNoticeProcessor(H.pg, notice_ignore, NULL);
	PQsetnonblocking(H.pg, 1);
	H.phase = PG_CONNECTING;
	H.want = PGRES_POLLING_WRITING;
}

/* Is the connection's socket ready for what libpq waits for? */
static bool pg_ready(short events)
{
	struct pollfd p = { .fd = PQsocket(H.pg), .events = events };

	return p.fd >= 0 && poll(&p, 1, 0) > 0;
}

/* One step of a running probe: true when it ended. */
static bool pg_step(uint64_t now_ms)
{
	PGresult *r;
	bool ok = false, any = false;

	if (now_ms - H.started_ms > PG_TIMEOUT_MS) {
		pg_drop();
		found(HEALTH_NOT_SERVING, now_ms, "PostgreSQL: no answer to SELECT 1 within 2 s");
		return true;
	}
	if (H.phase == PG_CONNECTING) {
		if (!pg_ready(H.want == PGRES_POLLING_READING ? POLLIN : POLLOUT))
			return false;
		H.want = PQconnectPoll(H.pg);
		if (H.want == PGRES_POLLING_FAILED) {
			pg_fail(now_ms, "");
			return true;
		}
		if (H.want == PGRES_POLLING_OK)
			pg_send(now_ms);
		return H.phase == PG_IDLE;
	}
	if (!pg_ready(POLLIN))
		return false;
	if (!PQconsumeInput(H.pg))
		goto failed;
	if (PQisBusy(H.pg))
		return false;
	while ((r = PQgetResult(H.pg)) != NULL) {
		any = true;
		ok = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
	}
	if (any && ok) {
		H.phase = PG_IDLE;
		found(HEALTH_SERVING, now_ms, "");
		return true;
	}
failed:
	/* A kept connection may have died with a server restart: one new try. */
	if (!H.fresh_conn) {
		pg_start(now_ms, true);
		return H.phase == PG_IDLE;
	}
	pg_fail(now_ms, "");
	return true;
}

enum health_status health_status(uint64_t now_ms)
{
	if (H.kind == KIND_NONE)
		return HEALTH_SERVING;
	if (H.status != HEALTH_UNKNOWN && now_ms - H.at_ms < FRESH_MS)
		return H.status;
	if (H.kind == KIND_SQLITE) {
		probe_sqlite(now_ms);
		return H.status;
	}
	if (H.phase == PG_IDLE)
		pg_start(now_ms, false);
	return H.phase == PG_IDLE ? H.status : HEALTH_UNKNOWN;
}

enum health_status health_status_last(uint64_t now_ms)
{
	enum health_status st = health_status(now_ms);

	return st == HEALTH_UNKNOWN ? H.status : st;
}

bool health_busy(void)
{
	return H.kind == KIND_PG && H.phase != PG_IDLE;
}

bool health_call(const struct call *st)
{
	return !strcmp(st->path, HEALTH_CHECK_PATH);
}

void health_poll(struct server *s, uint64_t now_ms)
{
	struct h2conn *c;
	struct call *st;

	if (!health_busy() || !pg_step(now_ms))
		return;
	for (c = s->conns; c; c = c->next)
		for (st = c->calls; st; st = st->next_in_conn)
			if (health_call(st) && ackq_count(&st->ready))
				call_wake(st);
}

/* HealthCheckRequest: field 1 (service, a string); other fields skipped as
 * protobuf requires.  0, or -EBADMSG. */
static int decode_request(const uint8_t *p, size_t len, char *service, size_t cap)
{
	size_t i = 0;

	service[0] = '\0';
	while (i < len) {
		uint64_t tag = 0, v = 0;
		unsigned shift;

		for (shift = 0; i < len && shift < 64; shift += 7) {
			tag |= (uint64_t)(p[i] & 0x7f) << shift;
			if (!(p[i++] & 0x80))
				goto have_tag;
		}
		return -EBADMSG;
have_tag:
		if ((tag >> 3) == 0)
			return -EBADMSG;
		switch (tag & 7) {
		case 0:
			while (i < len && (p[i] & 0x80))
				i++;
			if (i++ >= len)
				return -EBADMSG;
			break;
		case 1:
		case 5:
			if (len - i < ((tag & 7) == 1 ? 8u : 4u))
				return -EBADMSG;
			i += (tag & 7) == 1 ? 8 : 4;
			break;
		case 2:
			for (shift = 0; shift < 64; shift += 7) {
				if (i >= len)
					return -EBADMSG;
				v |= (uint64_t)(p[i] & 0x7f) << shift;
				if (!(p[i++] & 0x80))
					break;
			}
			if (v > len - i)
				return -EBADMSG;
			if ((tag >> 3) == 1) {
				if (v >= cap)
					return -EBADMSG;
				memcpy(service, p + i, v);
				service[v] = '\0';
			}
			i += v;
			break;
		default:
			return -EBADMSG;
		}
	}
	return 0;
}

int health_on_message(struct call *st, const uint8_t *msg, size_t len)
{
	struct server *s = st->c->srv;
	char service[SERVICE_MAX + 1];
	struct ack a;
	size_t i;

	if (st->batches) {
		call_fail(st, GRPC_STATUS_INVALID_ARGUMENT, &s->k.err_bad_protobuf,
			  "a health Check call takes one request");
		return -EINVAL;
	}
	if (decode_request(msg, len, service, sizeof(service)) < 0) {
		call_fail(st, GRPC_STATUS_INVALID_ARGUMENT, &s->k.err_bad_protobuf,
			  "malformed HealthCheckRequest (%zu bytes)", len);
		return -EBADMSG;
	}
	if (service[0] && strcmp(service, "flowpic.v1.Collector")) {
		for (i = 0; service[i]; i++) /* the name goes into a log line */
			if ((unsigned char)service[i] < 0x20 || (unsigned char)service[i] > 0x7e)
				service[i] = '?';
		call_fail(st, GRPC_STATUS_NOT_FOUND, &s->k.err_unknown_method,
			  "health of unknown service '%.60s' (known: \"\", flowpic.v1.Collector)",
			  service);
		return -ENOENT;
	}
	/* The reply is owed: data_read sends the status found then. */
	memset(&a, 0, sizeof(a));
	if (ackq_push(&st->ready, &a) < 0) {
		call_fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
		return -ENOMEM;
	}
	st->c->acks_waiting++;
	st->batches++;
	call_wake(st);
	return 0;
}

size_t health_encode(enum health_status status, uint8_t *out)
{
	out[0] = 0x08; /* field 1, varint */
	out[1] = (uint8_t)status;
	return 2;
}
