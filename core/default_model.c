// SPDX-License-Identifier: MIT
/*
 * default_model.c - model/default.fpcnn compiled into the library, so every
 * program classifies without a model file.  .incbin copies the file's bytes
 * at assembly time; core/CMakeLists.txt makes this object depend on the
 * file, so a replaced model rebuilds it.
 */
#include <stddef.h>

#include "classify.h"

#ifndef FLOWPIC_DEFAULT_MODEL_PATH
#error "FLOWPIC_DEFAULT_MODEL_PATH must name model/default.fpcnn (core/CMakeLists.txt)"
#endif

/* 32-byte aligned like the tensors inside it (MODEL_ALIGN), though the
 * loader copies it anyway. */
__asm__(".section .rodata.flowpic_default_model,\"a\",@progbits\n"
	".balign 32\n"
	".globl flowpic_default_model_start\n"
	".hidden flowpic_default_model_start\n"
	"flowpic_default_model_start:\n"
	".incbin \"" FLOWPIC_DEFAULT_MODEL_PATH "\"\n"
	".globl flowpic_default_model_end\n"
	".hidden flowpic_default_model_end\n"
	"flowpic_default_model_end:\n"
	".previous\n");

extern const unsigned char flowpic_default_model_start[];
extern const unsigned char flowpic_default_model_end[];

const void *classifier_default_model(size_t *len)
{
	*len = (size_t)(flowpic_default_model_end - flowpic_default_model_start);
	return flowpic_default_model_start;
}
