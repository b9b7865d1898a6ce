// SPDX-License-Identifier: MIT
/* metrics.c - Prometheus text exposition format 0.0.4; see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

int metrics_name(char *out, size_t len, const char *prefix, const char *name, const char *suffix)
{
	size_t n = 0, nl = strlen(name), sl = suffix ? strlen(suffix) : 0;
	const char *parts[3];
	int i;

	/* "capture_lost_total" stays one _total. */
	if (sl && nl >= sl && !strcmp(name + nl - sl, suffix))
		suffix = "";
	parts[0] = prefix ? prefix : "";
	parts[1] = name;
	parts[2] = suffix ? suffix : "";
	for (i = 0; i < 3; i++) {
		const char *p;

		for (p = parts[i]; *p; p++) {
			bool first = n == 0;

			if (n + 3 > len)
				return -ENAMETOOLONG;
			/* A leading digit cannot be replaced: put '_' before it. */
			if (first && *p >= '0' && *p <= '9') {
				out[n++] = '_';
				first = false;
			}
			out[n++] = name_char(*p, first) ? *p : '_';
		}
	}
	if (n == 0 || n >= len)
		return -ENAMETOOLONG;
	out[n] = '\0';
	return 0;
}

/* text with '\\' and newline escaped; also '"' in label values. */
static void escaped(struct sbuf *b, const char *s, bool quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '\\'	       ? "\\\\" :
				  *s == '\n'	       ? "\\n" :
				  (quote && *s == '"') ? "\\\"" :
							 NULL;

		if (!esc)
			continue;
		sbuf_add(b, run, (size_t)(s - run));
		sbuf_add(b, esc, 2);
		run = s + 1;
	}
	sbuf_add(b, run, (size_t)(s - run));
}

void metrics_family(struct sbuf *b, const char *name, enum metrics_type t, const char *help)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };

	sbuf_printf(b, "# HELP %s ", name);
	escaped(b, help ? help : "", false);
	sbuf_printf(b, "\n# TYPE %s %s\n", name, types[t]);
}

static void labels_out(struct sbuf *b, const struct metrics_label *l, size_t n)
{
	size_t i;

	if (!n)
		return;
	sbuf_add(b, "{", 1);
	for (i = 0; i < n; i++) {
		sbuf_printf(b, "%s%s=\"", i ? "," : "", l[i].name);
		escaped(b, l[i].value ? l[i].value : "", true);
		sbuf_add(b, "\"", 1);
	}
	sbuf_add(b, "}", 1);
}

void metrics_sample(struct sbuf *b, const char *name, const struct metrics_label *labels,
		    size_t nlabels, uint64_t value)
{
	sbuf_add(b, name, strlen(name));
	labels_out(b, labels, nlabels);
	sbuf_printf(b, " %" PRIu64 "\n", value);
}

int metrics_counter(struct sbuf *b, const char *prefix, const char *name, bool gauge,
		    const char *help, uint64_t value)
{
	char full[METRICS_NAME_MAX];
	int rc = metrics_name(full, sizeof(full), prefix, name, gauge ? NULL : "_total");

	if (rc < 0)
		return rc;
	metrics_family(b, full, gauge ? METRICS_GAUGE : METRICS_COUNTER, help);
	metrics_sample(b, full, NULL, 0, value);
	return 0;
}

int metrics_hist_init(struct metrics_hist *h, const double *bounds, unsigned n)
{
	unsigned i;

	memset(h, 0, sizeof(*h));
	if (n > METRICS_HIST_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!isfinite(bounds[i]) || (i && bounds[i] <= bounds[i - 1]))
			return -EINVAL;
		h->bounds[i] = bounds[i];
	}
	h->n = n;
	return 0;
}

void metrics_hist_observe(struct metrics_hist *h, double v)
{
	unsigned i;

	for (i = 0; i < h->n && v > h->bounds[i]; i++)
		;
	if (i < h->n)
		h->counts[i]++;
	h->count++;
	if (isfinite(v))
		h->sum += v;
}

void metrics_format_double(char *out, size_t len, double v)
{
	int prec;

	if (isnan(v)) {
		snprintf(out, len, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* Whole numbers as such ("10", not "1e+01": Prometheus compares le as text). */
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, len, "%.0f", v);
		return;
	}
	/* The shortest %g that reads back as the same double (0.1, not 0.1000000000000000055). */
	for (prec = 1; prec < 17; prec++) {
		snprintf(out, len, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
	snprintf(out, len, "%.17g", v);
}

void metrics_histogram(struct sbuf *b, const char *name, const char *help,
		       const struct metrics_hist *h)
{
	char bucket[METRICS_NAME_MAX + 16], le[40];
	struct metrics_label l = { "le", le };
	uint64_t cum = 0;
	unsigned i;

	metrics_family(b, name, METRICS_HISTOGRAM, help);
	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	for (i = 0; i < h->n; i++) {
		cum += h->counts[i];
		metrics_format_double(le, sizeof(le), h->bounds[i]);
		metrics_sample(b, bucket, &l, 1, cum);
	}
	snprintf(le, sizeof(le), "+Inf");
	metrics_sample(b, bucket, &l, 1, h->count);
	metrics_format_double(le, sizeof(le), h->sum);
	sbuf_printf(b, "%s_sum %s\n%s_count %" PRIu64 "\n", name, le, name, h->count);
}
