// SPDX-License-Identifier: MIT
/*
 * vjson.c - a small JSON reader for verdict lines; see vjson.h.  Values are
 * handed to one function by their key name whatever their depth, which is
 * all a verdict line needs.
 */
#include "vjson.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/pkt.h"

#define KEY_MAX 64
#define STR_MAX 256
#define DEPTH_MAX 8

struct jp {
	const char *p, *start, *end;
	char *err;
	size_t errlen;
	struct stream_verdict *v;
	bool is_block, scan, any;
	char type[16]; /* the line's "type" (docs/json.md), from the first pass */
	bool have_stage, have_start_ns, have_dur_ns;
	bool in_probs; /* inside "probs":{"class":p,...} */
	int early;     /* -1 unknown */
	struct vjson_classes *classes;
};

enum jtype { J_STR, J_NUM, J_BOOL, J_NULL };

struct jval {
	enum jtype t;
	char s[STR_MAX];
	double num;
	bool b;
	char numtext[64]; /* J_NUM: its text, NUL-terminated */
	size_t numlen;
};

/* "what at byte N" into err; the -EINVAL of every parse failure. */
static int fail(struct jp *j, const char *what)
{
	snprintf(j->err, j->errlen, "%s at byte %td", what, j->p - j->start + 1);
	return -EINVAL;
}

static void ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
		j->p++;
}

static int str(struct jp *j, char *out, size_t cap)
{
	size_t n = 0;

	if (j->p >= j->end || *j->p != '"')
		return fail(j, "expected a string");
	j->p++;
	while (j->p < j->end && *j->p != '"') {
		char c = *j->p++;

		if ((unsigned char)c < 0x20)
			return fail(j, "control character in a string");
		if (c == '\\') {
			if (j->p >= j->end)
				break;
			c = *j->p++;
			switch (c) {
			case 'n':
				c = '\n';
				break;
			case 't':
				c = '\t';
				break;
			case 'r':
				c = '\r';
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'u': {
				unsigned u = 0;
				int i;

				/* Four hex digits, read by hand: the line is not a C
				 * string, and sscanf would look for its end. */
				for (i = 0; i < 4; i++) {
					char h = j->p + i < j->end ? j->p[i] : 'x';
					int d = h >= '0' && h <= '9' ? h - '0' :
						h >= 'a' && h <= 'f' ? h - 'a' + 10 :
						h >= 'A' && h <= 'F' ? h - 'A' + 10 :
								       -1;

					if (d < 0)
						return fail(j, "bad \\u escape");
					u = u * 16 + (unsigned)d;
				}
				j->p += 4;
				c = u < 0x80 ? (char)u : '?';
				break;
			}
			case '"':
			case '\\':
			case '/':
				break;
			default:
				return fail(j, "bad escape in a string");
			}
		}
		if (n + 1 < cap)
			out[n++] = c;
	}
	if (j->p >= j->end)
		return fail(j, "unterminated string");
	j->p++;
	out[n] = '\0';
	return 0;
}

static uint64_t u64(const struct jval *x)
{
	/* Integers exactly from the text (ns timestamps exceed a double's 53 bits). */
	if (x->t == J_NUM && x->numlen && !memchr(x->numtext, '.', x->numlen) &&
	    !memchr(x->numtext, 'e', x->numlen) && !memchr(x->numtext, 'E', x->numlen) &&
	    x->numtext[0] != '-')
		return strtoull(x->numtext, NULL, 10);
	if (x->t != J_NUM || !(x->num > 0))
		return 0;
	/* Beyond uint64_t (or inf) saturates: converting it is undefined. */
	return x->num >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)x->num;
}

/* The index of s in names (any case), or -1 if none. */
static int named(const char *s, const char *const *names, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcasecmp(s, names[i]))
			return i;
	return -1;
}

#define IS(k, name) (!strcmp(k, name))

static int add_prob(struct jp *j, const char *name, const struct jval *x)
{
	struct stream_verdict *v = j->v;
	char msg[96];

	if (x->t != J_NUM || v->nprobs >= STREAM_MAX_CLASSES) {
		snprintf(msg, sizeof(msg), "\"probs\": at most %d numbers", STREAM_MAX_CLASSES);
		return fail(j, msg);
	}
	/* A probability; anything else would not even fit a float. */
	if (!(x->num >= 0 && x->num <= 1))
		return fail(j, "\"probs\": numbers from 0 to 1");
	if (name && j->classes && strlen(name) < STREAM_CLASS_MAX) {
		memcpy(j->classes->names[v->nprobs], name, strlen(name) + 1);
		j->classes->n = v->nprobs + 1u;
	}
	v->probs[v->nprobs++] = (float)x->num;
	return 0;
}

/* One scalar value of key k (nesting ignored). */
static int field(struct jp *j, const char *k, const struct jval *x)
{
	static const char *const dirs[] = { "unspecified", "outbound", "inbound" };
	static const char *const dirs2[] = { "DIRECTION_UNSPECIFIED", "DIRECTION_OUTBOUND",
					     "DIRECTION_INBOUND" };
	static const char *const stages[] = { "unspecified", "early", "block", "final" };
	static const char *const stages2[] = { "STAGE_UNSPECIFIED", "STAGE_EARLY", "STAGE_BLOCK",
					       "STAGE_FINAL" };
	struct stream_verdict *v = j->v;
	char msg[STR_MAX + 64];

	j->any = true;
	if (IS(k, "interface") || IS(k, "iface") || (IS(k, "file") && !v->interface[0])) {
		if (x->t != J_STR || strlen(x->s) >= sizeof(v->interface))
			goto bad;
		memcpy(v->interface, x->s, strlen(x->s) + 1);
	} else if (IS(k, "src") || IS(k, "src_addr") || IS(k, "dst") || IS(k, "dst_addr")) {
		if (x->t != J_STR ||
		    pkt_addr_parse(x->s, k[0] == 's' ? v->src_addr : v->dst_addr)) {
			snprintf(msg, sizeof(msg), "\"%s\": not an IPv4 or IPv6 address", k);
			return fail(j, msg);
		}
	} else if (IS(k, "sport") || IS(k, "src_port") || IS(k, "dport") || IS(k, "dst_port")) {
		if (x->t != J_NUM || u64(x) > 65535)
			goto bad;
		*(k[0] == 's' ? &v->src_port : &v->dst_port) = (uint16_t)u64(x);
	} else if (IS(k, "proto") || IS(k, "protocol")) {
		if (x->t == J_STR && !strcasecmp(x->s, "tcp"))
			v->protocol = 6;
		else if (x->t == J_STR && !strcasecmp(x->s, "udp"))
			v->protocol = 17;
		else if (x->t == J_NUM && u64(x) < 256)
			v->protocol = (uint8_t)u64(x);
		else if (!(x->t == J_STR && !strcasecmp(x->s, "other")))
			goto bad;
	} else if (IS(k, "direction")) {
		int d = x->t == J_STR ? named(x->s, dirs, 3) : x->t == J_NUM ? (int)u64(x) : -1;

		if (d < 0 && x->t == J_STR)
			d = named(x->s, dirs2, 3);
		if (d < 0 || d > 2)
			goto bad;
		v->direction = (uint8_t)d;
	} else if (IS(k, "stage")) {
		int s = x->t == J_STR ? named(x->s, stages, 4) : x->t == J_NUM ? (int)u64(x) : -1;

		if (s < 0 && x->t == J_STR)
			s = named(x->s, stages2, 4);
		if (s < 0 || s > 3)
			goto bad;
		v->stage = (uint8_t)s;
		j->have_stage = true;
	} else if (IS(k, "reason")) {
		/* "sparse" as classify --json prints it, REASON_SPARSE, or 3.  A
		 * reason this build does not know (a newer producer's) is sent as
		 * unspecified rather than losing the verdict; an older
		 * classify's "no_blocks" is today's "sparse". */
		int r = x->t == J_STR ? stream_reason_parse(x->s) :
			x->t == J_NUM ? (int)u64(x) :
					-1;

		if (x->t == J_STR && !strcmp(x->s, "no_blocks"))
			r = STREAM_REASON_SPARSE;
		if (x->t != J_STR && x->t != J_NUM)
			goto bad;
		v->reason = (uint8_t)(r < 0 || r >= STREAM_REASON_COUNT ?
					      STREAM_REASON_UNSPECIFIED :
					      r);
	} else if (IS(k, "early")) {
		if (x->t != J_BOOL)
			goto bad;
		j->early = x->b;
	} else if (IS(k, "flow_id")) {
		v->flow_id = u64(x);
	} else if (IS(k, "start_ns") || IS(k, "start_unix_ns")) {
		v->start_unix_ns = u64(x);
		j->have_start_ns = true;
	} else if (IS(k, "start")) {
		if (!j->have_start_ns && x->t == J_NUM)
			v->start_unix_ns = (uint64_t)llround(x->num * 1e9);
	} else if (IS(k, "duration_ns")) {
		v->duration_ns = u64(x);
		j->have_dur_ns = true;
	} else if (IS(k, "duration")) {
		if (!j->have_dur_ns && x->t == J_NUM && x->num >= 0)
			v->duration_ns = (uint64_t)llround(x->num * 1e9);
	} else if (IS(k, "packets_fwd")) {
		v->packets_fwd = u64(x);
	} else if (IS(k, "packets_rev")) {
		v->packets_rev = u64(x);
	} else if (IS(k, "payload_bytes_fwd")) { /* the wire's bytes; "bytes_fwd" is IP bytes */
		v->bytes_fwd = u64(x);
	} else if (IS(k, "payload_bytes_rev")) {
		v->bytes_rev = u64(x);
	} else if (IS(k, "block_index")) {
		v->block_index = u64(x);
	} else if (IS(k, "blocks")) {
		v->blocks = (uint32_t)u64(x);
	} else if (IS(k, "class") || IS(k, "class_name")) {
		if (x->t != J_STR || strlen(x->s) >= sizeof(v->class_name))
			goto bad;
		memcpy(v->class_name, x->s, strlen(x->s) + 1);
	} else if (IS(k, "confidence")) {
		if (x->t != J_NUM || !(x->num >= 0 && x->num <= 1))
			goto bad;
		v->confidence = (float)x->num;
	} else if (IS(k, "probs")) {
		return add_prob(j, NULL, x);
	}
	return 0;
bad:
	snprintf(msg, sizeof(msg), "\"%s\": unexpected value", k);
	return fail(j, msg);
}

static int value(struct jp *j, const char *key, int depth);

static int object(struct jp *j, int depth)
{
	if (depth > DEPTH_MAX)
		return fail(j, "nested too deep");
	j->p++; /* '{' */
	ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		char k[KEY_MAX];

		ws(j);
		if (str(j, k, sizeof(k)) < 0)
			return -EINVAL;
		ws(j);
		if (j->p >= j->end || *j->p != ':')
			return fail(j, "expected ':'");
		j->p++;
		ws(j);
		if (value(j, k, depth + 1) < 0)
			return -EINVAL;
		ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return 0;
		}
		return fail(j, "expected ',' or '}'");
	}
}

static int value(struct jp *j, const char *key, int depth)
{
	struct jval x;

	if (j->p >= j->end)
		return fail(j, "value missing");
	if (*j->p == '{') {
		int r;

		/* `flowpic classify --json`: "probs":{"voip":0.99,...} in class order. */
		j->in_probs = IS(key, "probs");
		r = object(j, depth);
		j->in_probs = false;
		return r;
	}
	if (*j->p == '[') {
		if (depth > DEPTH_MAX)
			return fail(j, "nested too deep");
		j->p++;
		ws(j);
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return 0;
		}
		for (;;) {
			ws(j);
			if (value(j, key, depth + 1) < 0)
				return -EINVAL;
			ws(j);
			if (j->p < j->end && *j->p == ',') {
				j->p++;
				continue;
			}
			if (j->p < j->end && *j->p == ']') {
				j->p++;
				return 0;
			}
			return fail(j, "expected ',' or ']'");
		}
	}
	memset(&x, 0, sizeof(x));
	if (*j->p == '"') {
		x.t = J_STR;
		if (str(j, x.s, sizeof(x.s)) < 0)
			return -EINVAL;
	} else if (j->end - j->p >= 4 && !memcmp(j->p, "true", 4)) {
		x.t = J_BOOL;
		x.b = true;
		j->p += 4;
	} else if (j->end - j->p >= 5 && !memcmp(j->p, "false", 5)) {
		x.t = J_BOOL;
		j->p += 5;
	} else if (j->end - j->p >= 4 && !memcmp(j->p, "null", 4)) {
		x.t = J_NULL;
		j->p += 4;
		return 0;
	} else {
		size_t n = 0;
		char *endp;

		/* The line is len bytes, not a C string: never look past its end. */
		while (j->p + n < j->end && n < sizeof(x.numtext) &&
		       strchr("+-0123456789.eE", j->p[n]) && j->p[n])
			n++;
		if (!n || n >= sizeof(x.numtext))
			return fail(j, "expected a value");
		memcpy(x.numtext, j->p, n);
		x.numtext[n] = '\0';
		errno = 0;
		x.num = strtod(x.numtext, &endp);
		if (*endp || errno)
			return fail(j, "bad number");
		x.t = J_NUM;
		x.numlen = n;
		j->p += n;
	}
	if (j->scan) { /* the first pass looks for the line's "type" only */
		if (depth == 1 && IS(key, "type") && x.t == J_STR)
			memcpy(j->type, x.s, sizeof(j->type) - 1);
		return 0;
	}
	if (j->in_probs)
		return add_prob(j, key, &x);
	return field(j, key, &x);
}

int vjson_parse(const char *line, size_t len, struct stream_verdict *v,
		struct vjson_classes *classes, char *err, size_t errlen)
{
	struct jp j = { .p = line,
			.start = line,
			.end = line + len,
			.err = err,
			.errlen = errlen,
			.v = v,
			.early = -1,
			.classes = classes };

	memset(v, 0, sizeof(*v));
	if (classes)
		classes->n = 0;
	ws(&j);
	if (j.p == j.end)
		return 1;
	if (*j.p != '{')
		return fail(&j, "expected a JSON object");
	/* Two passes: the "type" may come last, and decides how the rest reads. */
	j.scan = true;
	if (object(&j, 0) < 0)
		return -EINVAL;
	ws(&j);
	if (j.p != j.end)
		return fail(&j, "text after the object");
	if (j.type[0] && strcmp(j.type, "flow") && strcmp(j.type, "block") &&
	    strcmp(j.type, "verdict"))
		return 1; /* summary, counters, event, log: not a verdict */
	j.is_block = !strcmp(j.type, "block");
	j.scan = false;
	j.p = j.start;
	j.any = false;
	ws(&j);
	if (object(&j, 0) < 0)
		return -EINVAL;
	if (!v->class_name[0]) {
		j.p = line;
		snprintf(err, errlen, "no \"class\" (or \"class_name\"): not a verdict");
		return -EINVAL;
	}
	if (!j.have_stage) {
		if (j.early == 1)
			v->stage = STREAM_STAGE_EARLY;
		else
			v->stage = j.is_block ? STREAM_STAGE_BLOCK : STREAM_STAGE_FINAL;
	}
	return 0;
}
