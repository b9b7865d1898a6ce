/* SPDX-License-Identifier: MIT */
/*
 * log.h - the one logging module: levels, one line per message on stderr,
 * prefixed with the program name.  Messages say what failed, on what input,
 * and what to do.
 */
#ifndef FLOWPIC_LOG_H
#define FLOWPIC_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_init(const char *progname, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* A message into a caller's error buffer instead (nothing if err is NULL or
 * errlen 0): for functions that leave the logging to their caller. */
void log_errbuf(char *err, unsigned long errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* log_errbuf(), then ret: `return log_errbuf_ret(-EINVAL, err, errlen, "...", ...);` */
#define log_errbuf_ret(ret, err, errlen, ...) (log_errbuf((err), (errlen), __VA_ARGS__), (ret))

#endif
