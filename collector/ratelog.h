/* SPDX-License-Identifier: MIT */
/*
 * ratelog.h - at most RATELOG_PER_SEC lines per second from one source of
 * log lines, then one line saying how many were left out.  For lines a peer
 * can cause at will (refused calls and connections, accept failures at the
 * fd limit): the counters still count every event, while the log stays
 * readable and cannot fill the disk.  Header only.
 */
#ifndef FLOWPIC_COLLECTOR_RATELOG_H
#define FLOWPIC_COLLECTOR_RATELOG_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"

#define RATELOG_PER_SEC 10

struct ratelog {
	uint64_t start_ms;   /* the current one-second window */
	uint32_t lines;	     /* printed in it */
	uint64_t suppressed; /* left out in it */
};

/* When the window is over, start another and say what the last one left
 * out.  Also called from a timer, so the count appears when a burst ends. */
static inline void ratelog_flush(struct ratelog *r, uint64_t now_ms)
{
	if (now_ms - r->start_ms < 1000)
		return;
	if (r->suppressed)
		log_warn("%" PRIu64 " more warnings like the above left out in the last %" PRIu64
			 " ms (the counters count every event)",
			 r->suppressed, now_ms - r->start_ms);
	r->start_ms = now_ms;
	r->lines = 0;
	r->suppressed = 0;
}

/* May one more line be printed now?  false: it is counted as left out. */
static inline bool ratelog_allow(struct ratelog *r, uint64_t now_ms)
{
	ratelog_flush(r, now_ms);
	if (r->lines >= RATELOG_PER_SEC) {
		r->suppressed++;
		return false;
	}
	r->lines++;
	return true;
}

#endif
