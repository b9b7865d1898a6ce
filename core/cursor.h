/* SPDX-License-Identifier: MIT */
/*
 * cursor.h - a bounds-checked read cursor over a captured frame.  Every
 * header is taken through cursor_pull(), which fails instead of reading past
 * the captured bytes.
 */
#ifndef FLOWPIC_CURSOR_H
#define FLOWPIC_CURSOR_H

#include <stddef.h>
#include <stdint.h>

struct cursor {
	const uint8_t *pos;
	const uint8_t *end;
};

/* Return a pointer to the next n bytes and advance, or NULL if fewer remain. */
static inline const uint8_t *cursor_pull(struct cursor *c, size_t n)
{
	const uint8_t *p = c->pos;

	if ((size_t)(c->end - c->pos) < n)
		return NULL;
	c->pos += n;
	return p;
}

static inline size_t cursor_left(const struct cursor *c)
{
	return (size_t)(c->end - c->pos);
}

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
