/* SPDX-License-Identifier: MIT */
/*
 * clock.h - the clocks every program reads, in one place: monotonic time
 * (timeouts, deadlines, intervals; never steps) and wall-clock time (what is
 * stored and shown).  Header only, static inline: nothing to link.
 */
#ifndef FLOWPIC_CLOCK_H
#define FLOWPIC_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in ns. */
static inline uint64_t clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC in ms. */
static inline uint64_t clock_mono_ms(void)
{
	return clock_mono_ns() / 1000000;
}

/* CLOCK_REALTIME in ns since the Unix epoch. */
static inline uint64_t clock_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
