// SPDX-License-Identifier: MIT
/*
 * fuzz_model.c - libFuzzer target for the model file loader (core/model_file.c)
 * and the CNN engine on what it accepts.
 *
 * An input of even length gets a valid envelope (magic, version, size and
 * CRC-32 rewritten) so the fuzzer reaches the checks of strings, layers and
 * tensors; odd lengths go in as they are (the envelope checks).  A model
 * that loads must encode, load again and encode to the same bytes, and run
 * on an empty and a full picture without undefined behaviour: the loader's
 * accumulator bound is what keeps the int32 arithmetic from overflowing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/cnn.h"
#include "core/model_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Pictures larger than this are not run (the loader allows big inputs;
 * running them would only make the fuzzer slow). */
#define MAX_PIC (64 * 64 * 2)

static void run(const struct model *m)
{
	static uint8_t pic[MAX_PIC];
	size_t n = (size_t)m->res * m->res * m->in_channels;
	struct cnn_result out;
	struct cnn *c;

	if (n > MAX_PIC || model_tensor_size(m, -1) > MAX_PIC)
		return;
	c = cnn_new(m, 0);
	if (!c)
		abort(); /* a checked model must be runnable */
	memset(pic, 0, n);
	if (cnn_run(c, pic, &out) || out.cls >= m->n_classes)
		abort();
	memset(pic, 255, n);
	if (cnn_run(c, pic, &out) || out.cls >= m->n_classes)
		abort();
	cnn_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf, *enc = NULL, *enc2 = NULL;
	size_t elen = 0, elen2 = 0;
	struct model *m, *m2;
	char err[256];

	if (size > 1 << 20)
		return 0;
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (!(size & 1) && size >= 384) {
		uint64_t fs = size;
		uint32_t v = MODEL_FORMAT_VERSION, crc;

		memcpy(buf, MODEL_MAGIC, 8);
		memcpy(buf + 8, &v, 4);
		memcpy(buf + 16, &fs, 8);
		crc = (uint32_t)crc32(crc32(0, Z_NULL, 0), buf, (uInt)(size - 4));
		memcpy(buf + size - 4, &crc, 4);
	}
	m = model_load_mem(buf, size, "fuzz", err, sizeof(err));
	if (m) {
		if (model_encode(m, &enc, &elen))
			abort();
		m2 = model_load_mem(enc, elen, "fuzz-encoded", err, sizeof(err));
		if (!m2 || model_encode(m2, &enc2, &elen2) || elen2 != elen ||
		    memcmp(enc, enc2, elen))
			abort(); /* the canonical file must read back as itself */
		run(m);
		model_free(m2);
		model_free(m);
		free(enc);
		free(enc2);
	} else if (!err[0] || strchr(err, '\n')) {
		abort(); /* a refusal is one line */
	}
	free(buf);
	return 0;
}
