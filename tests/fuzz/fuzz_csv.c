// SPDX-License-Identifier: MIT
/*
 * fuzz_csv.c - libFuzzer target for the samples CSV: the input is a header
 * line and a row.  A row that parses must write back and parse again to the
 * same packet record (the exact round trip the CSV promises).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *nl, err[256], again[CSV_MAX_LINE];
	struct csv_layout lay, std;
	struct pkt p, q;
	char header[] = CSV_HEADER;
	FILE *f;

	if (size > CSV_MAX_LINE * 2)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	nl = strchr(text, '\n');
	if (nl) {
		*nl = 0;
		if (csv_parse_header(text, &lay, err, sizeof(err)) == 0 &&
		    csv_parse_row(nl + 1, &lay, &p, err, sizeof(err)) != SKIP_CSV_BAD_LINE &&
		    lay.pos[CSV_IP_LEN] >= 0 && lay.pos[CSV_TCP_FLAGS] >= 0) {
			f = fmemopen(again, sizeof(again), "w");
			if (!f)
				abort();
			csv_write_pkt(f, &p);
			fclose(f);
			if (csv_parse_header(header, &std, err, sizeof(err)) ||
			    csv_parse_row(again, &std, &q, err, sizeof(err)) == SKIP_CSV_BAD_LINE ||
			    memcmp(&p, &q, sizeof(p)))
				abort();
		}
	}
	free(text);
	return 0;
}
