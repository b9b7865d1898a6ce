// SPDX-License-Identifier: MIT
/* npy.c - growing .npy files; see npy.h. */
#include "npy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fixed header size (a multiple of 64, as format 1.0 asks): room for any
 * count, so the final header overwrites the first in place. */
#define NPY_HEADER_LEN 128

struct npy_writer {
	FILE *f;
	char dtype[8];
	uint32_t tail[3];
	int ntail;
	size_t item_size;
	uint64_t count;
};

static int write_header(struct npy_writer *w)
{
	char dict[NPY_HEADER_LEN];
	char shape[96];
	int n, i;
	size_t hlen;

	n = snprintf(shape, sizeof(shape), "(%" PRIu64 ",", w->count);
	for (i = 0; i < w->ntail; i++)
		n += snprintf(shape + n, sizeof(shape) - (size_t)n, "%s%u", i ? ", " : " ",
			      w->tail[i]);
	snprintf(shape + n, sizeof(shape) - (size_t)n, ")");
	/* 10 bytes of magic, version and length precede the dict. */
	hlen = NPY_HEADER_LEN - 10;
	n = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
		     w->dtype, shape);
	if (n < 0 || (size_t)n >= hlen)
		return -EOVERFLOW;
	memset(dict + n, ' ', hlen - (size_t)n - 1);
	dict[hlen - 1] = '\n';
	if (fseek(w->f, 0, SEEK_SET) || fwrite("\x93NUMPY\x01\x00", 1, 8, w->f) != 8 ||
	    fputc((int)(hlen & 0xff), w->f) == EOF || fputc((int)(hlen >> 8), w->f) == EOF ||
	    fwrite(dict, 1, hlen, w->f) != hlen)
		return -errno;
	return 0;
}

struct npy_writer *npy_open(const char *path, const char *dtype, size_t elem_size,
			    const uint32_t *tail, int ntail)
{
	struct npy_writer *w;
	int i, rc;

	if (ntail < 0 || ntail > 3 || strlen(dtype) >= sizeof(w->dtype)) {
		errno = EINVAL;
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	strcpy(w->dtype, dtype);
	w->ntail = ntail;
	w->item_size = elem_size;
	for (i = 0; i < ntail; i++) {
		w->tail[i] = tail[i];
		w->item_size *= tail[i];
	}
	w->f = fopen(path, "wb");
	if (!w->f)
		goto err_free;
	rc = write_header(w);
	if (rc) {
		fclose(w->f);
		errno = -rc;
		goto err_free;
	}
	return w;

err_free:
	free(w);
	return NULL;
}

int npy_append(struct npy_writer *w, const void *item)
{
	if (fwrite(item, 1, w->item_size, w->f) != w->item_size)
		return -errno;
	w->count++;
	return 0;
}

uint64_t npy_count(const struct npy_writer *w)
{
	return w->count;
}

int npy_close(struct npy_writer *w)
{
	int rc = write_header(w);

	if (fclose(w->f) && !rc)
		rc = -errno;
	free(w);
	return rc;
}
