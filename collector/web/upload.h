/* SPDX-License-Identifier: MIT */
/*
 * upload.h - POST /api/classify: a capture uploaded (pcap, pcapng or a
 * samples CSV, plain, gzip or xz: told from its bytes as the CLI does),
 * received into a memfd within --web-upload-max, and classified in a
 * worker thread by the library `flowpic classify` runs on (classifier_file)
 * with its JSON line writers (core/flow_json.h, core/summary_json.h), with
 * each block's picture as the agent sends it (core/model_picture.h).  One
 * upload at a time; a second gets 503.  Nothing is stored but with store=1:
 * then the worker stores the verdicts as agent "upload" on a writable store
 * connection of its own, in one transaction (docs/dashboard.md, "API").
 */
#ifndef FLOWPIC_COLLECTOR_WEB_UPLOAD_H
#define FLOWPIC_COLLECTOR_WEB_UPLOAD_H

#include <stddef.h>

struct web;
struct client;

int upload_init(struct web *w, char *err, size_t errlen);
void upload_free(struct web *w);
/* Readable when the worker is done (the web thread polls it). */
int upload_fd(const struct web *w);
/* The head of POST /api/classify is in: 0 and the memfd ready, or -1 and
 * answered (413 over the limit, 503 busy, 400 empty, 500). */
int upload_prepare(struct web *w, struct client *c);
/* Body bytes into the memfd: 0, or -1 and answered (500). */
int upload_write(struct web *w, struct client *c, const char *buf, size_t n);
/* The body is whole: classify it (the client waits). */
void upload_start(struct web *w, struct client *c);
/* The worker finished: answer its client if still there. */
void upload_done(struct web *w);
/* The client went: its result is dropped when it comes. */
void upload_forget(struct web *w, struct client *c);

#endif
