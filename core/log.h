/* SPDX-License-Identifier: MIT */
/*
 * log.h - the one logging module: levels, one line per message on stderr,
 * prefixed with the program name.  Messages say what failed, on what input,
 * and what to do.
 *
 * Two formats: text (default) "PROG: LEVEL: message", and json, one object
 * per line for log collectors:
 *   {"ts":"2026-01-02T03:04:05.678Z","level":"warn","prog":"PROG","msg":"..."}
 * The environment variable FLOWPIC_LOG_FORMAT (text or json) sets it for
 * every program at log_init(); --log-format overrides it.
 */
#ifndef FLOWPIC_LOG_H
#define FLOWPIC_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

void log_init(const char *progname, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_format(enum log_format format);
enum log_format log_get_format(void);
/* "text" or "json": 0, or -EINVAL. */
int log_parse_format(const char *s, enum log_format *out);
/* "error", "warn", "info" or "debug": 0, or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level); /* "error", "warn", ... */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Keep messages (up to 64) instead of writing them, until log_release():
 * while the settings that choose the format are still being read, so that
 * their errors come out in the format asked for. */
void log_hold(void);
void log_release(void);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* s as the inside of a JSON string (no quotes) into out, NUL-terminated and
 * cut at a character boundary when it does not fit: '"', '\\' and control
 * characters escaped, invalid UTF-8 bytes as U+FFFD.  The length written. */
size_t log_json_escape(const char *s, char *out, size_t outlen);

/* A message into a caller's error buffer instead (nothing if err is NULL or
 * errlen 0): for functions that leave the logging to their caller. */
void log_errbuf(char *err, unsigned long errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* log_errbuf(), then ret: `return log_errbuf_ret(-EINVAL, err, errlen, "...", ...);` */
#define log_errbuf_ret(ret, err, errlen, ...) (log_errbuf((err), (errlen), __VA_ARGS__), (ret))

#endif
