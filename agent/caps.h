/* SPDX-License-Identifier: MIT */
/*
 * caps.h - the capabilities the agent holds once the BPF programs are
 * attached: it drops them, and leaves root for an unprivileged user, since
 * reading ring buffers and maps through file descriptors already open, and
 * closing the links, needs neither.
 * Whether the capabilities to load and attach are there is the capture
 * library's to check (capture_open() fails with EPERM and one line naming
 * the missing ones).
 */
#ifndef FLOWPIC_AGENT_CAPS_H
#define FLOWPIC_AGENT_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The unprivileged user the agent runs as once attached. */
struct caps_user {
	char name[64];
	uid_t uid;
	gid_t gid;
};

/*
 * Whom to become: name (--user), or "" for the default: the user flowpic if
 * it exists, else nobody.  1 and *out; 0 when no switch is needed (not
 * running as root); -ENOENT/-EINVAL with err (no such user, or it is root).
 */
int caps_pick_user(const char *name, struct caps_user *out, char *err, size_t errlen);

/*
 * Drop every capability (effective, permitted, inheritable, the bounding
 * set and the ambient set) but CAP_NET_ADMIN when keep_net_admin (needed to
 * remove a netlink TC filter at exit on kernels without tcx links), and set
 * no_new_privs, so neither this process nor anything it runs can gain them
 * back.  With to (not NULL), the process also becomes that user (real,
 * effective and saved uid and gid; no supplementary groups) in between, so
 * whatever it opens later (the spool, new connections) is opened as that
 * user and a flaw in the packet or network path holds no root files.
 * 0, or a negative errno with err set.
 */
int caps_drop_all(bool keep_net_admin, const struct caps_user *to, char *err, size_t errlen);

/* The effective set as text ("=" when empty), for the log. */
void caps_describe(char *buf, size_t len);

#endif
