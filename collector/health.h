/* SPDX-License-Identifier: MIT */
/*
 * health.h - the standard gRPC health service, grpc.health.v1.Health/Check,
 * on the collector's port (https://github.com/grpc/grpc/blob/master/doc/health-checking.md).
 *
 * SERVING when the store is reachable, NOT_SERVING otherwise, for the
 * services "" (the server) and "flowpic.v1.Collector"; any other service
 * ends the call NOT_FOUND.  No token is needed (Kubernetes' grpc probe sends
 * none); the answer says nothing else.  A probe of the store is made at most
 * once a second, whatever the number of calls:
 * - SQLite: the file opened read-write again by its name (deleted, renamed
 *   or made read-only: NOT_SERVING), a read of its schema and a write lock
 *   taken and given back (BEGIN IMMEDIATE; ROLLBACK; a lock another process
 *   holds counts as reachable);
 * - PostgreSQL: "SELECT 1" on a connection of its own, without blocking the
 *   loop (libpq's asynchronous calls; a host name is still resolved by
 *   libpq synchronously); no answer within 2 s is NOT_SERVING.
 * The messages are encoded by hand: HealthCheckRequest { string service = 1; },
 * HealthCheckResponse { ServingStatus status = 1; }.
 */
#ifndef FLOWPIC_COLLECTOR_HEALTH_H
#define FLOWPIC_COLLECTOR_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEALTH_CHECK_PATH "/grpc.health.v1.Health/Check"

enum health_status { HEALTH_UNKNOWN = 0, HEALTH_SERVING = 1, HEALTH_NOT_SERVING = 2 };

struct server;
struct call;

/* Probe the store of this --db URL.  Without it (tests, fuzzing) the
 * status is SERVING.  0, or -ENOMEM. */
int health_setup(const char *db_url);
void health_teardown(void);

/* The store's status, at most a second old; HEALTH_UNKNOWN while a probe
 * runs (the calls waiting are woken by health_poll()). */
enum health_status health_status(uint64_t now_ms);
/* As health_status(), but while a probe runs the previous probe's answer
 * (for /healthz, which cannot wait): HEALTH_UNKNOWN only before the first. */
enum health_status health_status_last(uint64_t now_ms);
/* Drive a running probe without blocking; when it ends, wake the health
 * calls waiting for it.  Called by the loop at every step. */
void health_poll(struct server *s, uint64_t now_ms);
/* A probe runs: the loop should come back within a few ms. */
bool health_busy(void);

/* Is this call a health check (by its :path)? */
bool health_call(const struct call *st);
/* The call's request: its reply is queued, or the call failed.  0, or a
 * negative errno (the call failed). */
int health_on_message(struct call *st, const uint8_t *msg, size_t len);
/* HealthCheckResponse into out (at least 2 bytes): its length. */
size_t health_encode(enum health_status status, uint8_t *out);

#endif
