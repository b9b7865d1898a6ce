/* SPDX-License-Identifier: MIT */
/*
 * web.h - the dashboard inside flowpic-collector (--web-listen): pages,
 * a JSON API over the stored verdicts, a live feed of new ones (SSE) and
 * uploads classified like `flowpic classify`.  docs/dashboard.md has the
 * API and the security rules.
 *
 * It runs in a thread of its own with its own epoll loop and its own
 * read-only store connection, so no web request ever waits in the gRPC
 * loop.  The collector's only part is the live feed: while an SSE client
 * is connected, the verdicts of each committed batch are rendered by the
 * store thread and handed over through a bounded ring (live.h).
 */
#ifndef FLOWPIC_COLLECTOR_WEB_H
#define FLOWPIC_COLLECTOR_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "collector/counters.h"
#include "collector/store.h"

#define WEB_UPLOAD_MAX_DEFAULT (64ull << 20)
/* The static files when --web-root is not given, and the chart library. */
#define WEB_ROOT_INSTALLED "/usr/share/flowpic/web"
#define WEB_CHART_JS "/usr/share/javascript/chart.js/chart.min.js"

struct web_config {
	const char *listen;	/* "HOST:PORT", "[V6]:PORT", ":PORT" (127.0.0.1) */
	const char *token_file; /* viewer tokens: TOKEN [NAME] per line (NULL: none) */
	const char *root;	/* static files (NULL: web_default_root()) */
	uint64_t upload_max;	/* bytes of one upload to classify */
	const char *db;		/* the store's URL, opened again read-only */
	const char *cert, *key; /* TLS: HTTPS with the collector's certificate */
	const char *client_ca;	/* a client certificate of this CA logs in */
	const char *chart_js;	/* the Chart.js file (NULL: WEB_CHART_JS) */
};

struct web;

/* The build tree's collector/web/static when it exists, else
 * WEB_ROOT_INSTALLED. */
const char *web_default_root(void);

/* Bind, open the store read-only, load the tokens, start the thread; the
 * live feed taps store (the collector's, written by its store thread).  NULL
 * and a one-line reason in err on failure. */
struct web *web_start(const struct web_config *cfg, struct store *store, char *err, size_t errlen);
/* The address bound ("127.0.0.1:8080"). */
const char *web_address(const struct web *w);
/* The web_* counters into k (any thread). */
void web_counters(const struct web *w, struct collector_counters *k);
/* Stop the thread, close everything, untap the store (before store_close). */
void web_stop(struct web *w);

#endif
