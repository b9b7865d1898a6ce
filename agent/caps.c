// SPDX-License-Identifier: MIT
/* caps.c - drop and describe capabilities with libcap; see caps.h. */
#include "caps.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

int caps_pick_user(const char *name, struct caps_user *out, char *err, size_t errlen)
{
	const char *want = name && *name ? name : "flowpic";
	struct passwd *pw;

	if (geteuid() != 0)
		return 0; /* already unprivileged: nothing to leave */
	errno = 0;
	pw = getpwnam(want);
	if (!pw && !(name && *name)) {
		want = "nobody";
		errno = 0;
		pw = getpwnam(want);
	}
	if (!pw) {
		snprintf(err, errlen,
			 "no user '%s' to run as after attaching%s%s; give --user NAME", want,
			 errno ? ": " : "", errno ? strerror(errno) : "");
		return -ENOENT;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(err, errlen,
			 "user '%s' is root (uid %u, gid %u): give an unprivileged --user", want,
			 (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
		return -EINVAL;
	}
	snprintf(out->name, sizeof(out->name), "%s", pw->pw_name);
	out->uid = pw->pw_uid;
	out->gid = pw->pw_gid;
	return 1;
}

/* Become to (keeping the permitted set when keep, for CAP_NET_ADMIN).  0, or
 * a negative errno with err. */
static int switch_user(const struct caps_user *to, bool keep, char *err, size_t errlen)
{
	uid_t r, e, sv;

	if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)) {
		snprintf(err, errlen, "cannot keep capabilities across the user switch: %s",
			 strerror(errno));
		return -errno;
	}
	/* glibc applies these to every thread of the process. */
	if (setgroups(0, NULL) || setresgid(to->gid, to->gid, to->gid) ||
	    setresuid(to->uid, to->uid, to->uid)) {
		snprintf(err, errlen, "cannot switch to user %s (uid %u): %s", to->name,
			 (unsigned)to->uid, strerror(errno));
		return -errno;
	}
	if (keep)
		prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	if (getresuid(&r, &e, &sv) || r != to->uid || e != to->uid || sv != to->uid) {
		snprintf(err, errlen, "switched to user %s, yet uid is still %u", to->name,
			 (unsigned)e);
		return -EPERM;
	}
	return 0;
}

int caps_drop_all(bool keep_net_admin, const struct caps_user *to, char *err, size_t errlen)
{
	cap_value_t v, keep = CAP_NET_ADMIN;
	cap_t c;
	int rc = 0;

	/* The bounding set needs CAP_SETPCAP, so it goes first. */
	for (v = 0; v <= CAP_LAST_CAP; v++) {
		if (keep_net_admin && v == keep)
			continue;
		if (CAP_IS_SUPPORTED(v) && cap_drop_bound(v) && errno != EINVAL && errno != EPERM) {
			snprintf(err, errlen, "cannot drop capability %d from the bounding set: %s",
				 v, strerror(errno));
			return -errno;
		}
	}
	if (cap_reset_ambient() && errno != EINVAL) {
		snprintf(err, errlen, "cannot clear the ambient capabilities: %s", strerror(errno));
		return -errno;
	}
	if (to) {
		rc = switch_user(to, keep_net_admin, err, errlen);
		if (rc)
			return rc;
	}
	c = cap_init(); /* all clear */
	if (c && keep_net_admin &&
	    (cap_set_flag(c, CAP_EFFECTIVE, 1, &keep, CAP_SET) ||
	     cap_set_flag(c, CAP_PERMITTED, 1, &keep, CAP_SET))) {
		snprintf(err, errlen, "cannot keep CAP_NET_ADMIN: %s", strerror(errno));
		cap_free(c);
		return -EINVAL;
	}
	if (!c || cap_set_proc(c)) {
		snprintf(err, errlen, "cannot drop capabilities: %s", strerror(errno));
		rc = -errno;
	}
	cap_free(c);
	if (!rc && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		snprintf(err, errlen, "cannot set no_new_privs: %s", strerror(errno));
		rc = -errno;
	}
	return rc;
}

void caps_describe(char *buf, size_t len)
{
	cap_t c = cap_get_proc();
	char *t = c ? cap_to_text(c, NULL) : NULL;

	snprintf(buf, len, "%s", t ? t : "?");
	cap_free(t);
	cap_free(c);
}
