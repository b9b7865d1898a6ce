// SPDX-License-Identifier: MIT
/* caps.c - drop and describe capabilities with libcap; see caps.h. */
#include "caps.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

int caps_drop_all(bool keep_net_admin, char *err, size_t errlen)
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
