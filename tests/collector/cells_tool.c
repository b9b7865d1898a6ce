// SPDX-License-Identifier: MIT
/*
 * cells_tool.c - the two ends of verdict pictures, for test_cells.py:
 *
 *   cells_tool get DB AGENT_ID RUN_ID SEQ
 *       store_get_cells() on the store DB (sqlite:PATH, postgresql://...):
 *       one JSON line {"rows":..,"cols":..,"planes":..,"dirs":..,
 *       "window_ns":..,"index":[..],"count":[..],"dense_pixels":..,
 *       "dense_sum":..} (the last two from store_cells_dense()); exit 0, or
 *       3 no picture (-ENODATA), 4 no such verdict (-ENOENT), 1 an error.
 *   cells_tool feed HOST:PORT N PICTURE_BYTES TOKEN
 *       streams N block verdicts (agent "feeder", run 7), verdict k with
 *       picture(k) below, through a picture buffer of PICTURE_BYTES, each
 *       submitted once the one before is acknowledged (so the buffer goes
 *       round many times without ever being full); prints the stream's
 *       counters as one JSON line.
 *
 * picture(k): split 32 x 32 (2 planes), n = 200 + (37 k) mod 800 pixels,
 * pixel j at index 2 j + (k mod 2) with count 1 + (j k) mod 255.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/store.h"
#include "stream/stream.h"

static int get(const char *db, const char *agent, uint64_t run, uint64_t seq)
{
	struct store_options opt = { .readonly = true, .busy_timeout_ms = 5000 };
	struct store_cells c;
	uint64_t sum = 0, pixels = 0;
	struct store *s;
	uint8_t *dense;
	char err[512];
	size_t i, len;
	int rc;

	s = store_open(db, &opt, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "cells_tool: %s\n", err);
		return 1;
	}
	rc = store_get_cells(s, agent, run, seq, &c, err, sizeof(err));
	store_close(s);
	if (rc == -ENODATA || rc == -ENOENT) {
		printf("{\"error\":\"%s\"}\n", rc == -ENODATA ? "no picture" : "no verdict");
		return rc == -ENODATA ? 3 : 4;
	}
	if (rc < 0) {
		fprintf(stderr, "cells_tool: %s\n", err);
		return 1;
	}
	len = (size_t)c.planes * c.rows * c.cols;
	dense = malloc(len);
	if (!dense || store_cells_dense(&c, dense, len) < 0) {
		fprintf(stderr, "cells_tool: store_cells_dense failed\n");
		return 1;
	}
	for (i = 0; i < len; i++) {
		pixels += dense[i] != 0;
		sum += dense[i];
	}
	printf("{\"rows\":%u,\"cols\":%u,\"planes\":%u,\"dirs\":%u,\"window_ns\":%" PRIu64
	       ",\"index\":[",
	       c.rows, c.cols, c.planes, c.dirs, c.window_ns);
	for (i = 0; i < c.n; i++)
		printf("%s%u", i ? "," : "", c.index[i]);
	printf("],\"count\":[");
	for (i = 0; i < c.n; i++)
		printf("%s%u", i ? "," : "", c.count[i]);
	printf("],\"dense_pixels\":%" PRIu64 ",\"dense_sum\":%" PRIu64 "}\n", pixels, sum);
	free(dense);
	store_cells_free(&c);
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int feed(const char *target, unsigned n, size_t picture_bytes, const char *token)
{
	static uint32_t index[1000];
	static uint8_t count[1000];
	struct stream_config cfg;
	struct stream_counters c;
	struct stream *s;
	char err[320];
	unsigned k, j, waited;

	stream_config_default(&cfg);
	cfg.target = target;
	cfg.agent_id = "feeder";
	cfg.run_id = 7;
	cfg.batch_delay_ms = 1;
	cfg.picture_bytes = picture_bytes;
	cfg.token = token;
	s = stream_new(&cfg, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "cells_tool: %s\n", err);
		return 1;
	}
	for (k = 1; k <= n; k++) {
		struct stream_verdict v;
		uint32_t pixels = 200 + (37 * k) % 800;

		memset(&v, 0, sizeof(v));
		v.stage = STREAM_STAGE_BLOCK;
		v.flow_id = k;
		v.protocol = 17;
		v.start_unix_ns = 1764230400000000000ull + k * 15000000000ull;
		snprintf(v.class_name, sizeof(v.class_name), "voip");
		for (j = 0; j < pixels; j++) {
			index[j] = 2 * j + k % 2;
			count[j] = (uint8_t)(1 + (j * k) % 255);
		}
		v.cells = (struct stream_cells){
			index, count, pixels, 32, 32, STREAM_PIC_SPLIT, 15000000000ull
		};
		if (stream_submit(s, &v, NULL) < 0) {
			fprintf(stderr, "cells_tool: verdict %u not taken\n", k);
			return 1;
		}
		for (waited = 0; waited < 5000; waited++) {
			stream_counters(s, &c);
			if (c.acked == k)
				break;
			sleep_ms(1);
		}
		if (c.acked != k) {
			stream_last_error(s, err, sizeof(err));
			fprintf(stderr, "cells_tool: verdict %u not acknowledged within 5 s: %s\n",
				k, err);
			stream_close(s, 0, NULL);
			return 1;
		}
	}
	stream_close(s, 10000, &c);
	printf("{\"submitted\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"pictures\":%" PRIu64
	       ",\"pictures_no_room\":%" PRIu64 ",\"pictures_too_big\":%" PRIu64 "}\n",
	       c.submitted, c.acked, c.pictures, c.pictures_no_room, c.pictures_too_big);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "get"))
		return get(argv[2], argv[3], strtoull(argv[4], NULL, 10),
			   strtoull(argv[5], NULL, 10));
	if (argc == 6 && !strcmp(argv[1], "feed"))
		return feed(argv[2], (unsigned)strtoul(argv[3], NULL, 10),
			    strtoull(argv[4], NULL, 10), argv[5]);
	fprintf(stderr, "usage: cells_tool get DB AGENT_ID RUN_ID SEQ | "
			"feed HOST:PORT N BYTES TOKEN\n");
	return 2;
}
