/* SPDX-License-Identifier: MIT */
/*
 * caps.h - the capabilities the agent needs, checked up front so a missing
 * one is one clear line instead of a libbpf error, and dropped once the BPF
 * programs are attached: reading ring buffers and maps through file
 * descriptors already open, and closing the links, needs none of them.
 */
#ifndef FLOWPIC_AGENT_CAPS_H
#define FLOWPIC_AGENT_CAPS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Check that the effective set allows loading and attaching BPF programs:
 * CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN) and CAP_NET_ADMIN.  0, or -EPERM
 * with one line in err naming what is missing and what to do.
 */
int caps_check_attach(char *err, size_t errlen);

/*
 * Drop every capability (effective, permitted, inheritable, the bounding
 * set and the ambient set) but CAP_NET_ADMIN when keep_net_admin (needed to
 * remove a netlink TC filter at exit on kernels without tcx links), and set
 * no_new_privs, so neither this process nor anything it runs can gain them
 * back.  0, or a negative errno with err set.
 */
int caps_drop_all(bool keep_net_admin, char *err, size_t errlen);

/* The effective set as text ("=" when empty), for the log. */
void caps_describe(char *buf, size_t len);

#endif
