// SPDX-License-Identifier: MIT
/*
 * counters.c - the counters as one JSON line.
 */
#include <inttypes.h>

#include "counters.h"

void collector_counters_print(const struct collector_counters *c, FILE *out)
{
	fputs("{\"event\":\"counters\"", out);
#define X(name) fprintf(out, ",\"" #name "\":%" PRIu64, c->name);
	COLLECTOR_COUNTERS(X)
#undef X
	fputs("}\n", out);
	fflush(out);
}
