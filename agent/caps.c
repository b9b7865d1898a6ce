// SPDX-License-Identifier: MIT
/* caps.c - check and drop capabilities with libcap; see caps.h. */
#include "caps.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

static bool cap_has(cap_t c, cap_value_t v)
{
	cap_flag_value_t f = CAP_CLEAR;

	return cap_get_flag(c, v, CAP_EFFECTIVE, &f) == 0 && f == CAP_SET;
}

int caps_check_attach(char *err, size_t errlen)
{
	char missing[128] = "";
	cap_t c = cap_get_proc();
	bool sys;

	if (!c) {
		snprintf(err, errlen, "cannot read the process capabilities: %s", strerror(errno));
		return -errno;
	}
	/* Kernels >= 5.8 split CAP_BPF and CAP_PERFMON out of CAP_SYS_ADMIN. */
	sys = cap_has(c, CAP_SYS_ADMIN);
	if (!sys && !cap_has(c, CAP_BPF))
		strcat(missing, ", CAP_BPF");
	if (!sys && !cap_has(c, CAP_PERFMON))
		strcat(missing, ", CAP_PERFMON");
	if (!cap_has(c, CAP_NET_ADMIN))
		strcat(missing, ", CAP_NET_ADMIN");
	cap_free(c);
	if (!missing[0])
		return 0;
	snprintf(err, errlen, "missing capability %s to load and attach the BPF programs: run as "
		 "root (sudo flowpic-agent ...) or give the program the capabilities "
		 "(setcap cap_bpf,cap_perfmon,cap_net_admin+ep flowpic-agent)", missing + 2);
	return -EPERM;
}

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
			snprintf(err, errlen, "cannot drop capability %d from the bounding set: %s", v,
				 strerror(errno));
			return -errno;
		}
	}
	if (cap_reset_ambient() && errno != EINVAL) {
		snprintf(err, errlen, "cannot clear the ambient capabilities: %s", strerror(errno));
		return -errno;
	}
	c = cap_init();	/* all clear */
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
