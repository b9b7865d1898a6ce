// SPDX-License-Identifier: MIT
/* backoff.c - gRPC connection backoff; see backoff.h. */
#include "backoff.h"

void backoff_init(struct backoff *b, unsigned initial_ms, double multiplier, double jitter,
		  unsigned max_ms, uint64_t seed)
{
	b->initial_ms = initial_ms;
	b->multiplier = multiplier < 1.0 ? 1.0 : multiplier;
	b->jitter = jitter < 0.0 ? 0.0 : jitter > 1.0 ? 1.0 : jitter;
	b->max_ms = max_ms < initial_ms ? initial_ms : max_ms;
	b->current_ms = b->initial_ms;
	b->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

/* Uniform in [0, 1): xorshift64*, 53 bits. */
static double uniform(struct backoff *b)
{
	uint64_t x = b->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	b->rng = x;
	return (double)((x * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

unsigned backoff_next(struct backoff *b)
{
	double base = b->current_ms;
	double d = base + (2.0 * uniform(b) - 1.0) * b->jitter * base;

	/* The spec's order: this delay uses the current base, then the base grows. */
	b->current_ms = base * b->multiplier;
	if (b->current_ms > b->max_ms)
		b->current_ms = b->max_ms;
	return d < 0 ? 0 : (unsigned)(d + 0.5);
}

void backoff_reset(struct backoff *b)
{
	b->current_ms = b->initial_ms;
}
