/* SPDX-License-Identifier: MIT */
/*
 * utf8.h - the one UTF-8 check of the JSON writers (flow lines, the
 * collector's documents and queries, JSON logs): JSON text must be UTF-8,
 * and names that come from outside (file names, agent strings) may not be;
 * a writer puts U+FFFD where this says 0.
 */
#ifndef FLOWPIC_CORE_UTF8_H
#define FLOWPIC_CORE_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (1..4; n bytes available), or 0
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
size_t utf8_len(const unsigned char *s, size_t n);

#endif
