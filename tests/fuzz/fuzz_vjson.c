// SPDX-License-Identifier: MIT
/*
 * fuzz_vjson.c - libFuzzer target for flowpic-send's verdict JSON reader
 * (stream/vjson.c).  The line is handed over exactly as long as it is (no
 * NUL after it), so a read past its end is caught.  A line taken must give
 * a verdict stream_submit() would take (counts in range); a refused one
 * gets one line in err.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream/vjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vjson_classes classes;
	struct stream_verdict v;
	char err[256] = "";
	char *line;
	int rc;

	if (size > 1 << 16)
		return 0;
	line = malloc(size ? size : 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	rc = vjson_parse(line, size, &v, &classes, err, sizeof(err));
	if (rc == 0 && (v.nprobs > STREAM_MAX_CLASSES || v.direction > STREAM_DIR_INBOUND ||
			v.stage > STREAM_STAGE_FINAL || v.reason >= STREAM_REASON_COUNT ||
			classes.n > STREAM_MAX_CLASSES ||
			memchr(v.class_name, 0, sizeof(v.class_name)) == NULL))
		abort();
	if (rc < 0 && (!err[0] || strchr(err, '\n')))
		abort();
	if (rc != 0 && rc != 1 && rc != -EINVAL)
		abort();
	free(line);
	return 0;
}
