// SPDX-License-Identifier: MIT
/* log.c - one line per message on stderr, text or JSON; see log.h. */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"

static const char *log_prog = "flowpic";
static enum log_level log_level = LOG_WARN;
static enum log_format log_format = LOG_FORMAT_TEXT;
static bool log_stamp; /* text lines start with the time */

static const char *const level_names[] = { "error", "warn", "info", "debug" };

#define HELD_MAX 64
static bool holding;
static struct {
	enum log_level level;
	char *msg;
} held[HELD_MAX];
static unsigned nheld;

/* systemd sets JOURNAL_STREAM=DEV:INODE when stderr goes to the journal,
 * which stamps every line itself. */
static bool stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return env && sscanf(env, "%llu:%llu", &dev, &ino) == 2 && !fstat(STDERR_FILENO, &st) &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *progname, enum log_level level)
{
	const char *env = getenv("FLOWPIC_LOG_FORMAT");

	log_prog = progname;
	log_level = level;
	/* A terminal is read now; a file or pipe is read later, and needs the time. */
	log_stamp = !isatty(STDERR_FILENO) && !stderr_is_journal();
	if (env && log_parse_format(env, &log_format) < 0)
		log_warn("FLOWPIC_LOG_FORMAT '%.40s': give text or json; logging as text", env);
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

void log_set_format(enum log_format format)
{
	log_format = format;
}

enum log_format log_get_format(void)
{
	return log_format;
}

int log_parse_format(const char *s, enum log_format *out)
{
	if (!strcmp(s, "text"))
		*out = LOG_FORMAT_TEXT;
	else if (!strcmp(s, "json"))
		*out = LOG_FORMAT_JSON;
	else
		return -EINVAL;
	return 0;
}

int log_parse_level(const char *s, enum log_level *out)
{
	int i;

	for (i = LOG_ERROR; i <= LOG_DEBUG; i++)
		if (!strcmp(s, level_names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
	return level_names[level];
}

size_t log_json_escape(const char *s, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	if (!outlen)
		return 0;
	while (*p) {
		char esc[8];
		const char *piece = esc;
		size_t n;

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\', esc[1] = (char)*p, n = 2;
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", *p);
			p++;
		} else if (*p < 0x80) {
			piece = (const char *)p, n = 1;
			p++;
		} else if ((n = utf8_len(p, 4)) != 0) { /* NUL ends a sequence early */
			piece = (const char *)p;
			p += n;
		} else {
			piece = "\\ufffd", n = 6; /* not UTF-8: JSON text must be */
			p++;
		}
		if (o + n >= outlen)
			break;
		memcpy(out + o, piece, n);
		o += n;
	}
	out[o] = '\0';
	return o;
}

/* The line written with one write(2), so that threads' lines do not mix. */
static void emit(const char *line, size_t len)
{
	while (len) {
		ssize_t w = write(STDERR_FILENO, line, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		line += w;
		len -= (size_t)w;
	}
}

/* Now as 2026-12-06T09:10:11.123Z, then end. */
static void log_time_utc(char *out, size_t len, const char *end)
{
	struct timespec ts;
	char when[24];
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%03ldZ%s", when, ts.tv_nsec / 1000000, end);
}

static void emit_json(enum log_level level, const char *msg)
{
	size_t cap = strlen(msg) * 6 + 256, n;
	char *line, when[40];

	line = malloc(cap);
	if (!line)
		return;
	log_time_utc(when, sizeof(when), "");
	n = (size_t)snprintf(line, cap, "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"", when,
			     level_names[level]);
	n += log_json_escape(log_prog, line + n, cap - n);
	n += (size_t)snprintf(line + n, cap - n, "\",\"msg\":\"");
	n += log_json_escape(msg, line + n, cap - n);
	n += (size_t)snprintf(line + n, cap - n, "\",\"type\":\"log\"}\n");
	emit(line, n);
	free(line);
}

static void write_msg(enum log_level level, const char *msg);

void log_hold(void)
{
	holding = true;
}

void log_release(void)
{
	unsigned i;

	holding = false;
	for (i = 0; i < nheld; i++) {
		write_msg(held[i].level, held[i].msg);
		free(held[i].msg);
	}
	nheld = 0;
}

static void write_msg(enum log_level level, const char *msg)
{
	static const char *const text_names[] = { "error", "warning", "info", "debug" };

	if (holding) {
		if (nheld < HELD_MAX && (held[nheld].msg = strdup(msg)) != NULL)
			held[nheld++].level = level;
		return;
	}
	if (log_format == LOG_FORMAT_JSON) {
		emit_json(level, msg);
	} else {
		size_t len = strlen(log_prog) + strlen(msg) + 48;
		char *line = malloc(len), when[40] = "";

		if (line) {
			if (log_stamp)
				log_time_utc(when, sizeof(when), " ");
			emit(line, (size_t)snprintf(line, len, "%s%s: %s: %s\n", when, log_prog,
						    text_names[level], msg));
			free(line);
		}
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char buf[2048], *msg = buf;
	va_list ap;
	int n;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf)) {
		msg = malloc((size_t)n + 1);
		if (!msg) {
			msg = buf;
		} else {
			va_start(ap, fmt);
			vsnprintf(msg, (size_t)n + 1, fmt, ap);
			va_end(ap);
		}
	}
	write_msg(level, msg);
	if (msg != buf)
		free(msg);
}

void log_errbuf(char *err, unsigned long errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
