/* SPDX-License-Identifier: MIT */
/*
 * caps.h - the capabilities the agent holds once the BPF programs are
 * attached: it drops them, since reading ring buffers and maps through file
 * descriptors already open, and closing the links, needs none of them.
 * Whether the capabilities to load and attach are there is the capture
 * library's to check (capture_open() fails with EPERM and one line naming
 * the missing ones).
 */
#ifndef FLOWPIC_AGENT_CAPS_H
#define FLOWPIC_AGENT_CAPS_H

#include <stdbool.h>
#include <stddef.h>

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
