/* SPDX-License-Identifier: MIT */
/*
 * conffile.h - settings from a config file and from FLOWPIC_* environment
 * variables, the same way for flowpic-agent and flowpic-collector.
 *
 * The program gives its settings through two callbacks: lookup (the
 * canonical name of a key, or NULL) and set (the value as text, checked by
 * the same code as the flag's).  Precedence is the caller's order of calls:
 * defaults, conffile_load(), conffile_env(), then the flags.
 *
 * File format: one "key = value" per line; blank lines and lines whose
 * first non-blank character is '#' are ignored; keys are the long flag
 * names ('-' and '_' are the same); the value is the rest of the line with
 * surrounding blanks removed, optionally in double quotes; switches take
 * true/false, yes/no, on/off or 1/0.  A key may appear once.  Every bad line
 * is reported as "FILE:LINE: what is wrong".
 *
 * Environment: FLOWPIC_<KEY>, the key upper-cased with '-' as '_'
 * (FLOWPIC_IDLE_TIMEOUT=60).  An empty value counts as unset.  A FLOWPIC_
 * variable that is no key of the program gets one warning line, unless it
 * is one of conffile_env_known[] (names the packaging, scripts and tests
 * use for something else).
 */
#ifndef FLOWPIC_CONFFILE_H
#define FLOWPIC_CONFFILE_H

#include <stdbool.h>
#include <stddef.h>

struct conffile_ops {
	const char *prog; /* "flowpic-agent": named in "unknown key" messages */
	/* The setting's canonical name (a string that lives as long as the
	 * program), or NULL when key is none. */
	const char *(*lookup)(void *ctx, const char *key);
	/* Set it from text: 0, or -EINVAL with what is wrong in err.  where:
	 * "FILE:LINE" or "FLOWPIC_KEY", for callers that check later. */
	int (*set)(void *ctx, const char *name, const char *value, const char *where, char *err,
		   size_t errlen);
	/* One line per problem ("FILE:LINE: ..."). */
	void (*report)(void *ctx, const char *line);
};

/* FLOWPIC_ names that are not settings and must not warn, NULL-ended. */
extern const char *const conffile_env_known[];

/*
 * Read a config file.  Returns the number of bad lines (each reported; the
 * rest is still read), or a negative errno when the file cannot be read
 * (one line reported).
 */
int conffile_load(const char *path, const struct conffile_ops *ops, void *ctx);

/*
 * Apply the FLOWPIC_* variables of envp (environ).  Returns the number of
 * bad values (each reported as "FLOWPIC_NAME: what is wrong"); unknown
 * names are warned about (log_warn) and ignored.
 */
int conffile_env(char **envp, const struct conffile_ops *ops, void *ctx);

/* true/yes/on/1 or false/no/off/0 (any case): 0, or -EINVAL. */
int conffile_bool(const char *v, bool *out);

/* Names compare with '-' and '_' as the same character. */
bool conffile_name_eq(const char *a, const char *b);

#endif
