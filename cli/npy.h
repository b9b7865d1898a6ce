/* SPDX-License-Identifier: MIT */
/*
 * npy.h - write a NumPy .npy file (format 1.0) whose first dimension grows
 * as items are appended; the header is rewritten with the final count on
 * close.  numpy.load() reads the result directly, and numpy.load(...,
 * mmap_mode="r") maps it without copying.
 */
#ifndef FLOWPIC_CLI_NPY_H
#define FLOWPIC_CLI_NPY_H

#include <stddef.h>
#include <stdint.h>

struct npy_writer;

/*
 * dtype: a NumPy type string such as "|u1" or "<i4" (item size elem_size);
 * tail: the item's shape after the first dimension (ntail <= 3).
 * NULL with errno set on failure.
 */
struct npy_writer *npy_open(const char *path, const char *dtype, size_t elem_size,
			    const uint32_t *tail, int ntail);
/* Append one item (the product of tail elements).  0 or -errno. */
int npy_append(struct npy_writer *w, const void *item);
uint64_t npy_count(const struct npy_writer *w);
/* Finish the header and close.  0 or -errno; frees w either way. */
int npy_close(struct npy_writer *w);

#endif
