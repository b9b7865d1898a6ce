/* SPDX-License-Identifier: MIT */
/*
 * backoff.h - gRPC's connection backoff (grpc/doc/connection-backoff.md):
 * the first retry after initial_ms, each next one multiplier times later,
 * capped at max_ms, each spread by +-jitter; reset after a connection that
 * worked.  Deterministic for a given seed (tests).
 */
#ifndef FLOWPIC_STREAM_BACKOFF_H
#define FLOWPIC_STREAM_BACKOFF_H

#include <stdint.h>

struct backoff {
	double initial_ms;
	double multiplier;
	double jitter; /* 0 .. 1: the delay is base * (1 +- jitter) */
	double max_ms;
	double current_ms; /* base of the next delay */
	uint64_t rng;	   /* xorshift64* state */
};

void backoff_init(struct backoff *b, unsigned initial_ms, double multiplier, double jitter,
		  unsigned max_ms, uint64_t seed);

/* Delay before the next attempt (ms), and advance. */
unsigned backoff_next(struct backoff *b);

/* A connection worked: the next delay is initial_ms again. */
void backoff_reset(struct backoff *b);

#endif
