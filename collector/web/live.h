/* SPDX-License-Identifier: MIT */
/*
 * live.h - the live feed: verdicts newly stored, from the collector's store
 * thread to the dashboard's SSE clients (GET /api/live).
 *
 * The store thread's side is a tap on the collector's store (its
 * operations run on that thread only): while at least one SSE
 * client is connected, each batch put into the store's transaction has its
 * verdicts rendered as the JSON objects `flowpic-collector query` prints
 * ("type":"verdict"); when the transaction commits, those of the batches
 * that stored something go into a bounded ring (a mutex, and an eventfd
 * that wakes the web thread), the rest are freed.  A full ring drops its
 * oldest lines and counts them (web_live_dropped); the web thread empties
 * the ring at each wake-up and writes "event: verdict" to every client,
 * "event: gap" with the count when lines were dropped for it.  A batch
 * partly resent (some of its verdicts stored before) is shown whole: the
 * store's result counts per batch, not per verdict.
 */
#ifndef FLOWPIC_COLLECTOR_WEB_LIVE_H
#define FLOWPIC_COLLECTOR_WEB_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/store.h"

#define LIVE_RING_MAX 16384 /* lines waiting for the web thread, at most */

struct live;
struct web;
struct web_stats;
struct client;

/* Tap store (its ops are wrapped until live_free); counters into st.  NULL
 * and a reason in err on failure. */
struct live *live_new(struct store *store, struct web_stats *st, char *err, size_t errlen);
/* Untap the store and free what waits.  Not while the store thread may
 * commit (it is joined before). */
void live_free(struct live *l);
/* Readable when lines wait (the web thread polls it). */
int live_fd(const struct live *l);

/* Web thread: GET /api/live answered with the event stream (or 503). */
void live_subscribe(struct web *w, struct client *c);
/* Web thread: an SSE client went. */
void live_unsubscribe(struct web *w, struct client *c);
/* Web thread: the ring's lines out to every SSE client. */
void live_fanout(struct web *w);
/* Web thread: an SSE client's output went out: a gap it has to be told is
 * added to its output (true: there is more to send). */
bool live_drained(struct client *c);
/* Web thread: ": ping" to the clients whose time has come. */
void live_ping(struct web *w, uint64_t now_ms);

#endif
