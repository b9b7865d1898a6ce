// SPDX-License-Identifier: MIT
/* number.c - exact number parsing; see number.h. */
#include "number.h"

#include <errno.h>
#include <stdlib.h>

#define NS_PER_SEC_ 1000000000ULL

int number_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	int base = 10;

	/* strtoull would take a sign or leading space: a user's typo, refused. */
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16;
	errno = 0;
	*out = strtoull(s, &end, base);
	if (errno || *end || *out < min || *out > max)
		return -EINVAL;
	return 0;
}

int number_parse_seconds(const char *s, uint64_t *ns)
{
	uint64_t sec = 0, frac = 0;
	int digits = 0;

	if (!*s || *s == '.')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		/* sec * 1e9 + 999999999 must fit in 64 bits. */
		if (sec > (UINT64_MAX / NS_PER_SEC_ - 9) / 10)
			return -EINVAL;
		sec = sec * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++) {
			if (++digits > 9)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*s - '0');
		}
		if (digits == 0)
			return -EINVAL;
	}
	if (*s)
		return -EINVAL;
	for (; digits < 9; digits++)
		frac *= 10;
	*ns = sec * NS_PER_SEC_ + frac;
	return 0;
}
