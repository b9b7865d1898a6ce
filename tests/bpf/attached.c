// SPDX-License-Identifier: MIT
/*
 * attached - print how many BPF programs sit on an interface's XDP hook and
 * tcx egress hook ("xdp=N tcx_egress=M"), for the live test's "nothing left
 * attached" checks (bpftool 7.1 predates tcx).
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define FP_BPF_TCX_EGRESS 47 /* not in libbpf 1.1's headers */

int main(int argc, char **argv)
{
	__u32 ids[64], cnt = 64, xdp_id = 0;
	int ifindex, e;

	if (argc != 2) {
		fprintf(stderr, "usage: attached IFNAME\n");
		return 2;
	}
	ifindex = (int)if_nametoindex(argv[1]);
	if (!ifindex) {
		fprintf(stderr, "attached: interface '%s' does not exist\n", argv[1]);
		return 1;
	}
	e = bpf_xdp_query_id(ifindex, 0, &xdp_id);
	if (e) {
		fprintf(stderr, "attached: XDP query on %s: %s\n", argv[1], strerror(-e));
		return 1;
	}
	e = bpf_prog_query(ifindex, (enum bpf_attach_type)FP_BPF_TCX_EGRESS, 0, NULL, ids, &cnt);
	if (e == -EINVAL)
		cnt = 0; /* kernel without tcx: nothing can be there */
	else if (e) {
		fprintf(stderr, "attached: tcx query on %s: %s\n", argv[1], strerror(-e));
		return 1;
	}
	printf("xdp=%d tcx_egress=%u\n", xdp_id ? 1 : 0, cnt);
	return 0;
}
