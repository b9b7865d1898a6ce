// SPDX-License-Identifier: MIT
/* empty.bpf.c - the baseline of bench/bpf: an XDP program that only passes. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("xdp")
int empty_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}
