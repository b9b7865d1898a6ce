/* SPDX-License-Identifier: MIT */
/*
 * number.h - exact parsing of the numbers users type and files carry:
 * whole numbers with a range, and seconds with up to 9 decimals as
 * nanoseconds (no floating point, so "0.1" is exactly 100000000 ns).
 * Shared by the CSV reader and the command-line options.
 */
#ifndef FLOWPIC_NUMBER_H
#define FLOWPIC_NUMBER_H

#include <stdint.h>

/* The whole string is a number in [min, max], decimal or 0x hex.  0, or -EINVAL. */
int number_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* The whole string is seconds ("60", "0.5", "1516220325.884382123") -> ns.
 * 0, or -EINVAL (not such a number, more than 9 decimals, or beyond 2^64 ns). */
int number_parse_seconds(const char *s, uint64_t *ns);

#endif
