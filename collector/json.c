// SPDX-License-Identifier: MIT
/*
 * json.c - growable buffer and JSON string escaping.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "json.h"

void sbuf_json_str(struct sbuf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	sbuf_add(b, "\"", 1);
	while (i < n) {
		size_t run = i, l;

		/* Copy plain runs in one go. */
		while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' &&
		       s[run] != '\\')
			run++;
		if (run > i) {
			sbuf_add(b, (const char *)s + i, run - i);
			i = run;
			continue;
		}
		if (s[i] == '"' || s[i] == '\\') {
			char e[2] = { '\\', (char)s[i] };

			sbuf_add(b, e, 2);
			i++;
		} else if (s[i] < 0x20) {
			sbuf_printf(b, "\\u%04x", s[i]);
			i++;
		} else if ((l = utf8_len(s + i, n - i)) != 0) {
			sbuf_add(b, (const char *)s + i, l);
			i += l;
		} else {
			sbuf_add(b, "\xef\xbf\xbd", 3);
			i++;
		}
	}
	sbuf_add(b, "\"", 1);
}

/* ---- checking JSON text read back from a store ---- */

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return s;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The end of the number at s, or NULL. */
static const char *number_end(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (is_digit(*s))
			s++;
	else
		return NULL;
	if (*s == '.') {
		if (!is_digit(*++s))
			return NULL;
		while (is_digit(*s))
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!is_digit(*s))
			return NULL;
		while (is_digit(*s))
			s++;
	}
	return s;
}

bool json_is_number(const char *s)
{
	const char *e = number_end(s);

	return e && !*e;
}

static const char *string_end(const char *s)
{
	if (*s++ != '"')
		return NULL;
	for (; *s != '"'; s++) {
		if ((unsigned char)*s < 0x20)
			return NULL; /* also the end of the text */
		if (*s == '\\') {
			s++;
			if (*s == 'u') {
				int i;

				for (i = 1; i <= 4; i++)
					if (!s[i] || !strchr("0123456789abcdefABCDEF", s[i]))
						return NULL;
				s += 4;
			} else if (!*s || !strchr("\"\\/bfnrt", *s)) {
				return NULL;
			}
		}
	}
	return s + 1;
}

static const char *value_end(const char *s, int depth)
{
	char close;

	s = skip_ws(s);
	if (*s == '"')
		return string_end(s);
	if (!strncmp(s, "true", 4))
		return s + 4;
	if (!strncmp(s, "false", 5))
		return s + 5;
	if (!strncmp(s, "null", 4))
		return s + 4;
	if (*s != '{' && *s != '[')
		return number_end(s);
	if (depth >= 32)
		return NULL;
	close = *s == '{' ? '}' : ']';
	s = skip_ws(s + 1);
	if (*s == close)
		return s + 1;
	for (;;) {
		if (close == '}') {
			s = string_end(skip_ws(s));
			if (!s)
				return NULL;
			s = skip_ws(s);
			if (*s++ != ':')
				return NULL;
		}
		s = value_end(s, depth + 1);
		if (!s)
			return NULL;
		s = skip_ws(s);
		if (*s == close)
			return s + 1;
		if (*s++ != ',')
			return NULL;
	}
}

bool json_is_valid(const char *s)
{
	const char *e = value_end(s, 0);

	return e && !*skip_ws(e);
}
