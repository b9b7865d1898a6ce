/* SPDX-License-Identifier: MIT */
/*
 * publish.h - the stored verdicts onto a NATS JetStream stream (--nats).
 *
 * Each verdict of a committed batch becomes one message on subject
 * flowpic.v1.verdicts.<agent_id> (the agent_id made a subject token),
 * payload a protobuf flowpic.v1.Batch of that one verdict with the batch's
 * agent, sequence and model, header Nats-Msg-Id agent_id/run_id/seq, so a
 * resend is dropped by the stream's duplicate window.  A thread of its own
 * publishes the commits in order (libnats' async publish, resending what
 * was not acknowledged) and tells the loop through an eventfd which commits
 * JetStream has acknowledged: only then are their batches acked to agents.
 * docs/collector.md, "Publishing to NATS JetStream", has the policy.
 */
#ifndef FLOWPIC_COLLECTOR_PUBLISH_H
#define FLOWPIC_COLLECTOR_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "flowpic.pb-c.h"
#include "store.h"

#define PUBLISH_STREAM_DEFAULT "FLOWPIC_VERDICTS"
#define PUBLISH_SUBJECT_PREFIX "flowpic.v1.verdicts."
#define PUBLISH_BACKLOG_DEFAULT 100000
#define PUBLISH_SERVERS_MAX 16
#define PUBLISH_DUP_WINDOW_S 120 /* the stream's duplicate window, when we create it */
#define PUBLISH_ACK_WAIT_MS 2000 /* no ack this long: the message is sent again */

struct publish_config {
	const char *servers; /* URL[,URL...], at most PUBLISH_SERVERS_MAX */
	const char *stream;
	const char *creds; /* NULL: none */
	const char *ca;	   /* TLS: CA certificate(s) to verify the servers (NULL: no TLS
			       * unless a tls:// URL, then the system's) */
	const char *cert;  /* TLS client certificate and its key (NULL: none) */
	const char *key;
	int replicas;	      /* for a stream we create */
	uint64_t backlog_max; /* verdicts published but not yet acknowledged, at most */
};

struct publisher;

/* Connect, create the stream if missing, start the thread.  No server
 * reachable yet is not a failure: the library goes on trying in the
 * background, the thread creates the stream once connected, and acks wait
 * for JetStream meanwhile (--nats-backlog bounds them).  NULL and a
 * one-line reason in err for what cannot work (a bad URL list or TLS file,
 * a stream a reachable server refuses). */
struct publisher *publisher_open(const struct publish_config *cfg, char *err, size_t errlen);
/* Stop the thread (what is not acknowledged is dropped) and disconnect. */
void publisher_close(struct publisher *p);
/* Readable when commits were acknowledged (publisher_done clears it). */
int publisher_fd(const struct publisher *p);

/* The store thread's side (the thread that calls store_put_batch and
 * store_commit).  Keep a batch's verdicts for the open transaction, in
 * the order of store_put_batch (the k-th staged batch is the store's k-th);
 * 0, or -ENOMEM (nothing kept). */
int publisher_stage(struct publisher *p, const Flowpic__V1__Batch *b);
/* The transaction is lost: forget what was staged. */
void publisher_drop(struct publisher *p);
/* The transaction committed: publish the verdicts of its batches stored
 * without error.  The group's id (> 0, in commit order), or -ENOBUFS when
 * the backlog would pass its bound (nothing published, staging dropped). */
int64_t publisher_commit(struct publisher *p, const struct store_batch_result *res, size_t nres);
/* Every group up to this id is acknowledged by JetStream. */
uint64_t publisher_done(struct publisher *p);
/* Wait up to ms for every group to be acknowledged (shutting down). */
void publisher_flush(struct publisher *p, int ms);
/* The nats_* counters into k. */
void publisher_counters(const struct publisher *p, struct collector_counters *k);

/* server.c: the loop watches p's eventfd and holds acks for it; the store
 * thread stages and commits.  Before the first batch (-EBUSY after). */
struct server;
int server_set_publisher(struct server *s, struct publisher *p);

/* --db none (bridge mode): a store that keeps nothing; every valid
 * verdict counts as stored, so the publisher sends them all. */
struct store *store_none_open(void);

#endif
