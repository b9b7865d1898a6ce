/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - Prometheus text exposition format 0.0.4: the text a GET
 * /metrics answers with (served by rpc/http_metrics.h).  Counters, gauges
 * and histograms, each family with its # HELP and # TYPE lines; names made
 * valid, HELP text and label values escaped as the format requires.
 *
 * Both programs build their exposition from the same (name, value) lists
 * their JSON counters line prints, so the two cannot diverge.
 */
#ifndef FLOWPIC_METRICS_H
#define FLOWPIC_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_NAME_MAX 160

/* The exposition goes into a text buffer (core/sbuf.h: zeroed is empty; oom
 * set when an allocation failed). */
#include "core/sbuf.h"

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

struct metrics_label {
	const char *name; /* [a-zA-Z_][a-zA-Z0-9_]* */
	const char *value;
};

/*
 * prefix + name + suffix, every character outside [a-zA-Z0-9_:] replaced by
 * '_' ("stream.acked" -> "stream_acked"); with suffix "_total", a name that
 * already ends in "_total" does not get it twice.  0, or -ENAMETOOLONG.
 */
int metrics_name(char *out, size_t len, const char *prefix, const char *name, const char *suffix);

/* "# HELP name text\n# TYPE name type\n"; text escaped (\\ and \n). */
void metrics_family(struct sbuf *b, const char *name, enum metrics_type t, const char *help);

/* "name{l1=\"v1\",...} value\n"; label values escaped (\\, \" and \n). */
void metrics_sample(struct sbuf *b, const char *name, const struct metrics_label *labels,
		    size_t nlabels, uint64_t value);

/*
 * One counter of a counters line as a whole family: prefix_name_total
 * (counter) or prefix_name (gauge: a value that can go down, or a
 * high-water mark).  0, or -ENAMETOOLONG (nothing written).
 */
int metrics_counter(struct sbuf *b, const char *prefix, const char *name, bool gauge,
		    const char *help, uint64_t value);

/* A histogram: cumulative counts per upper bound, +Inf, sum and count. */
#define METRICS_HIST_MAX 16
struct metrics_hist {
	unsigned n;			   /* bounds */
	double bounds[METRICS_HIST_MAX];   /* increasing upper bounds */
	uint64_t counts[METRICS_HIST_MAX]; /* observations <= bounds[i] and > bounds[i-1] */
	uint64_t count;			   /* all observations (+Inf) */
	double sum;
};

/* n (<= METRICS_HIST_MAX) increasing bounds; 0, or -EINVAL. */
int metrics_hist_init(struct metrics_hist *h, const double *bounds, unsigned n);
void metrics_hist_observe(struct metrics_hist *h, double v);

/* The family of name (HELP, TYPE histogram), then name_bucket{le=...}, name_sum, name_count. */
void metrics_histogram(struct sbuf *b, const char *name, const char *help,
		       const struct metrics_hist *h);

/* A double as Prometheus writes it: the shortest text that reads back the same, +Inf, NaN. */
void metrics_format_double(char *out, size_t len, double v);

#endif
