// SPDX-License-Identifier: MIT
/*
 * query.c - the query command.
 */
#include <argp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clock.h"
#include "core/flow_json.h"
#include "json.h"
#include "core/log.h"
#include "core/number.h"
#include "query.h"
#include "store.h"

struct query_opts {
	const char *db;
	struct store_filter f;
	bool table;
	char addr[3][46]; /* normalised addr, src, dst */
	uint64_t rows;
};

enum { OPT_CLASS = 256, OPT_RECEIVED_SINCE };

static const struct argp_option query_options[] = {
	{ "db", 'd', "URL", 0,
	  "sqlite:PATH or postgresql://... (as the collector's --db; default " STORE_DEFAULT_URL
	  ", the collector's)",
	  0 },
	{ "host", 'H', "NAME", 0, "verdicts from this host only", 0 },
	{ "agent", 'a', "ID[,ID...]", 0, "verdicts from these agent_ids only", 0 },
	{ "class", OPT_CLASS, "CLASS[,CLASS...]", 0,
	  "verdicts of these classes only (voip, video, file_transfer, chat, browsing, unknown)",
	  0 },
	{ "reason", 'r', "REASON", 0,
	  "verdicts with this reason only (ok, other, sparse, disagree, low_confidence, untracked; unspecified: from agents before reasons)",
	  0 },
	{ "since", 's', "TIME", 0, "blocks starting at or after TIME", 0 },
	{ "until", 'u', "TIME", 0, "blocks starting before TIME", 0 },
	{ "received-since", OPT_RECEIVED_SINCE, "TIME", 0,
	  "verdicts the collector stored at or after TIME (--since is on the block's own time)",
	  0 },
	{ "flow", 'f', "TERMS", 0,
	  "flow filter: comma-separated addr=IP, src=IP, dst=IP, port=N, sport=N, dport=N, proto=tcp|udp|N (a bare IP means addr=IP)",
	  0 },
	{ "limit", 'n', "N", 0, "at most N verdicts (default: all)", 0 },
	{ "oldest-first", 'o', 0, 0, "oldest first (default: newest first)", 0 },
	{ "table", 't', 0, 0, "a short table for people instead of JSON lines", 0 },
	{ 0 }
};

/* Times go to the store as signed 64-bit ns: up to 2262-04-11. */
#define TIME_MAX_NS ((uint64_t)INT64_MAX)
#define BEFORE_MAX_S (100ull * 365 * 86400) /* "-Nd" etc.: at most 100 years */

int query_parse_time(const char *s, uint64_t now_ns, uint64_t *out)
{
	struct tm tm;
	const char *rest;
	uint64_t v, frac = 0;

	if (s[0] == '-') {
		size_t n = strlen(s);
		uint64_t mul;
		char num[32];

		if (n < 3 || n > 20)
			return -EINVAL;
		switch (s[n - 1]) {
		case 's':
			mul = 1;
			break;
		case 'm':
			mul = 60;
			break;
		case 'h':
			mul = 3600;
			break;
		case 'd':
			mul = 86400;
			break;
		default:
			return -EINVAL;
		}
		snprintf(num, sizeof(num), "%.*s", (int)(n - 2), s + 1);
		if (number_parse_u64(num, 0, UINT64_MAX, &v))
			return -EINVAL;
		/* Bounded before multiplying: no value wraps around. */
		if (v > BEFORE_MAX_S / mul)
			return -ERANGE;
		v = v * mul * 1000000000ull;
		*out = v > now_ns ? 0 : now_ns - v;
		return 0;
	}
	if (strchr(s, 'T') || strchr(s, '-')) {
		memset(&tm, 0, sizeof(tm));
		rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
		if (!rest) {
			memset(&tm, 0, sizeof(tm));
			rest = strptime(s, "%Y-%m-%d", &tm);
			if (!rest)
				return -EINVAL;
		}
		if (*rest == '.') {
			uint64_t scale = 100000000;

			for (rest++; *rest >= '0' && *rest <= '9'; rest++) {
				frac += (uint64_t)(*rest - '0') * scale;
				scale /= 10;
			}
		}
		if (*rest == 'Z')
			rest++;
		if (*rest)
			return -EINVAL;
		{
			time_t t = timegm(&tm);

			if (t < 0 || (uint64_t)t > TIME_MAX_NS / 1000000000ull - 1)
				return -ERANGE;
			*out = (uint64_t)t * 1000000000ull + frac;
		}
		return 0;
	}
	if (number_parse_seconds(s, out) < 0) {
		/* Digits, one dot, 9 decimals at most: a number too big. */
		const char *dot = strchr(s, '.');

		return s[0] && strspn(s, "0123456789.") == strlen(s) &&
				       (!dot || !strchr(dot + 1, '.')) ?
			       -ERANGE :
			       -EINVAL;
	}
	return *out > TIME_MAX_NS ? -ERANGE : 0;
}

/* An address in its canonical text form: 0, or -EINVAL. */
static int parse_ip(const char *s, char *out)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, s, a) == 1)
		return inet_ntop(AF_INET, a, out, 46) ? 0 : -EINVAL;
	if (inet_pton(AF_INET6, s, a) == 1)
		return inet_ntop(AF_INET6, a, out, 46) ? 0 : -EINVAL;
	return -EINVAL;
}

static void parse_flow(struct argp_state *state, struct query_opts *o, const char *expr)
{
	char buf[512], *save = NULL, *t;

	snprintf(buf, sizeof(buf), "%s", expr);
	for (t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		char *eq = strchr(t, '=');
		const char *k = eq ? t : "addr", *v = eq ? eq + 1 : t;
		uint64_t n;

		if (eq)
			*eq = '\0';
		if (!strcmp(k, "addr") || !strcmp(k, "src") || !strcmp(k, "dst")) {
			int i = k[0] == 'a' ? 0 : k[0] == 's' ? 1 : 2;

			if (parse_ip(v, o->addr[i]))
				argp_error(state, "--flow %s=%s: not an IPv4 or IPv6 address", k,
					   v);
			if (i == 0)
				o->f.addr = o->addr[0];
			else if (i == 1)
				o->f.src = o->addr[1];
			else
				o->f.dst = o->addr[2];
		} else if (!strcmp(k, "port") || !strcmp(k, "sport") || !strcmp(k, "dport")) {
			if (number_parse_u64(v, 0, 65535, &n))
				argp_error(state, "--flow %s=%s: give a port from 0 to 65535", k,
					   v);
			if (k[0] == 'p')
				o->f.port = (int)n;
			else if (k[0] == 's')
				o->f.sport = (int)n;
			else
				o->f.dport = (int)n;
		} else if (!strcmp(k, "proto")) {
			if (!strcasecmp(v, "tcp"))
				o->f.proto = 6;
			else if (!strcasecmp(v, "udp"))
				o->f.proto = 17;
			else if (!number_parse_u64(v, 0, 255, &n))
				o->f.proto = (int)n;
			else
				argp_error(state, "--flow proto=%s: give tcp, udp or a number", v);
		} else {
			argp_error(
				state,
				"--flow: unknown term '%s' (addr, src, dst, port, sport, dport, proto)",
				k);
		}
	}
}

static bool valid_reason(const char *s)
{
	static const char *const names[] = { "ok",	   "other",	     "sparse",
					     "disagree",   "low_confidence", "untracked",
					     "unspecified" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i]))
			return true;
	return false;
}

static bool valid_class(const char *s)
{
	static const char *const names[] = { "voip", "video",	 "file_transfer",
					     "chat", "browsing", "unknown" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i]))
			return true;
	return false;
}

/* A comma list into vals (pointing into arg, which argp lets us cut). */
static void parse_list(struct argp_state *state, const char *flag, char *arg,
		       bool (*valid)(const char *), const char *want, const char **vals, int *n)
{
	char *item;

	while ((item = strsep(&arg, ",")) != NULL) {
		if (!*item)
			argp_error(state, "--%s: an empty name in the list", flag);
		if (valid && !valid(item))
			argp_error(state, "--%s '%s': give %s", flag, item, want);
		if (*n == STORE_FILTER_LIST_MAX)
			argp_error(state, "--%s: at most %d names", flag, STORE_FILTER_LIST_MAX);
		vals[(*n)++] = item;
	}
}

/* --since, --until, --received-since: a time, or the usage error. */
static uint64_t parse_time_opt(struct argp_state *state, const char *flag, const char *arg)
{
	uint64_t v;
	int rc = query_parse_time(arg, clock_real_ns(), &v);

	if (rc == -ERANGE)
		argp_error(state,
			   "--%s '%s': out of range (times from 1970 to 2262; -N[smhd] at "
			   "most 100 years before now)",
			   flag, arg);
	if (rc < 0)
		argp_error(
			state,
			"--%s '%s': give Unix seconds, YYYY-MM-DDTHH:MM:SSZ (UTC) or -30m/-2h/-1d",
			flag, arg);
	return v;
}

static error_t query_parse(int key, char *arg, struct argp_state *state)
{
	struct query_opts *o = state->input;
	uint64_t v;

	switch (key) {
	case 'd':
		o->db = arg;
		break;
	case 'H':
		o->f.host = arg;
		break;
	case 'a':
		parse_list(state, "agent", arg, NULL, NULL, o->f.agent_ids, &o->f.n_agent_ids);
		break;
	case OPT_CLASS:
		parse_list(state, "class", arg, valid_class,
			   "voip, video, file_transfer, chat, browsing or unknown", o->f.classes,
			   &o->f.n_classes);
		break;
	case OPT_RECEIVED_SINCE:
		o->f.has_received_since = true;
		o->f.received_since_ns = parse_time_opt(state, "received-since", arg);
		break;
	case 'r':
		if (!valid_reason(arg))
			argp_error(state,
				   "--reason '%s': give ok, other, sparse, disagree, "
				   "low_confidence, untracked or unspecified",
				   arg);
		o->f.reason = arg;
		break;
	case 's':
	case 'u':
		v = parse_time_opt(state, key == 's' ? "since" : "until", arg);
		if (key == 's') {
			o->f.has_since = true;
			o->f.since_ns = v;
		} else {
			o->f.has_until = true;
			o->f.until_ns = v;
		}
		break;
	case 'f':
		parse_flow(state, o, arg);
		break;
	case 'n':
		if (number_parse_u64(arg, 1, UINT32_MAX, &o->f.limit))
			argp_error(state, "--limit '%s': give a whole number from 1", arg);
		break;
	case 'o':
		o->f.ascending = true;
		break;
	case 't':
		o->table = true;
		break;
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument '%s'", arg);
		break;
	case ARGP_KEY_END:
		if (!o->db)
			o->db = STORE_DEFAULT_URL;
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static const char query_doc[] =
	"Print stored verdicts, newest first, as JSON lines (one object per verdict) or a table."
	"\n\nExamples (the database defaults to the collector's, " STORE_DEFAULT_URL "):\n"
	"  flowpic-collector query --class video,voip --since -1h\n"
	"  flowpic-collector query --agent web1,web2 --received-since -10m --table\n"
	"  flowpic-collector query --db sqlite:/var/lib/flowpic-collector/verdicts.db \\\n"
	"      --class unknown --reason sparse --table\n"
	"  flowpic-collector query --host web1 --flow addr=10.0.0.5,port=443 --table\n"
	"  flowpic-collector query --db postgresql://flowpic@db/flowpic \\\n"
	"      --since 2026-11-27T00:00:00Z --until 2026-11-28T00:00:00Z --limit 100\n"
	"\nTIME: Unix seconds (\"1764230400.5\"), UTC \"YYYY-MM-DD[THH:MM:SS[.frac]][Z]\", "
	"or before now: -30s, -30m, -2h, -1d.\n"
	"\nExit status: 0 done (also when nothing matched); 1 the store could not be read; "
	"2 bad arguments.";

void query_json_row(struct sbuf *b, const char *const *vals, const char *extra)
{
	int i;

	sbuf_add(b, "{", 1);
	for (i = 0; i < store_ncols; i++) {
		const char *v = vals[i];

		sbuf_printf(b, "%s\"%s\":", i ? "," : "", store_cols[i].name);
		if (!v)
			sbuf_puts(b, "null");
		else if (store_cols[i].type == COL_TEXT)
			sbuf_json_str(b, v, strlen(v));
		else if (store_cols[i].type == COL_PROTO)
			sbuf_printf(b, "\"%s\"", flow_proto_name((uint8_t)atoi(v)));
		else if (store_cols[i].type == COL_JSON ? json_is_valid(v) : json_is_number(v))
			sbuf_puts(b, v); /* numbers and the stored probs JSON */
		else if (store_cols[i].type == COL_JSON)
			sbuf_json_str(b, v, strlen(v)); /* not JSON: as a string */
		else
			sbuf_puts(b, "null"); /* "Inf", "NaN", "Infinity": no JSON number */
	}
	if (extra)
		sbuf_puts(b, extra);
	sbuf_puts(b, ",\"type\":\"verdict\"}");
}

static int print_json(void *ctx, const char *const *vals)
{
	struct query_opts *o = ctx;
	static struct sbuf b;

	sbuf_reset(&b);
	query_json_row(&b, vals, NULL);
	sbuf_add(&b, "\n", 1);
	fwrite(b.p, 1, b.len, stdout);
	o->rows++;
	return 0;
}

static const char *val(const char *const *vals, const char *name)
{
	int i;

	for (i = 0; i < store_ncols; i++)
		if (!strcmp(store_cols[i].name, name))
			return vals[i] ? vals[i] : "";
	return "";
}

/* Stored strings come from agents: anything but printable ASCII is shown
 * as \xNN (and a backslash as \\), so no escape sequence reaches the
 * terminal. */
static const char *printable(const char *in, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *in && n + 5 < outlen; in++) {
		unsigned char c = (unsigned char)*in;

		if (c == '\\') {
			out[n++] = '\\';
			out[n++] = '\\';
		} else if (c >= 0x20 && c < 0x7f) {
			out[n++] = (char)c;
		} else {
			n += (size_t)snprintf(out + n, outlen - n, "\\x%02x", c);
		}
	}
	out[n] = '\0';
	return out;
}

static int print_row(void *ctx, const char *const *vals)
{
	struct query_opts *o = ctx;
	char host[64], cls[64], reason[64], stage[64], src[200], dst[200], sport[32], dport[32];
	uint64_t ns = strtoull(val(vals, "start_ns"), NULL, 10);
	time_t t = (time_t)(ns / 1000000000ull);
	char when[32], flow[480];
	struct tm tm;
	int proto = atoi(val(vals, "proto"));

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(flow, sizeof(flow), "%s:%s > %s:%s %s",
		 printable(val(vals, "src"), src, sizeof(src)),
		 printable(val(vals, "sport"), sport, sizeof(sport)),
		 printable(val(vals, "dst"), dst, sizeof(dst)),
		 printable(val(vals, "dport"), dport, sizeof(dport)),
		 flow_proto_name((uint8_t)proto));
	if (o->rows == 0)
		printf("%-19s  %-14s  %-13s  %-14s  %5s  %-6s  %s\n", "start (UTC)", "host",
		       "class", "reason", "conf", "stage", "flow");
	printf("%-19s  %-14.14s  %-13.13s  %-14.14s  %5.2f  %-6.6s  %s\n", when,
	       printable(val(vals, "host"), host, sizeof(host)),
	       printable(val(vals, "class"), cls, sizeof(cls)),
	       printable(val(vals, "reason"), reason, sizeof(reason)),
	       atof(val(vals, "confidence")), printable(val(vals, "stage"), stage, sizeof(stage)),
	       flow);
	o->rows++;
	return 0;
}

int collector_query(int argc, char **argv)
{
	struct argp argp = { query_options, query_parse, NULL, query_doc, NULL, NULL, NULL };
	struct store_options so = { .readonly = true, .busy_timeout_ms = 5000 };
	struct query_opts o;
	struct store *s;
	char err[1024];
	int rc;

	memset(&o, 0, sizeof(o));
	o.f.port = o.f.sport = o.f.dport = o.f.proto = -1;
	argp_parse(&argp, argc, argv, 0, NULL, &o);
	s = store_open(o.db, &so, err, sizeof(err));
	if (!s) {
		log_error("%s", err);
		return 1;
	}
	rc = store_query(s, &o.f, o.table ? print_row : print_json, &o, err, sizeof(err));
	if (rc < 0)
		log_error("%s", err);
	else if (o.table)
		printf("(%" PRIu64 " verdicts)\n", o.rows);
	store_close(s);
	fflush(stdout);
	return rc < 0 ? 1 : 0;
}
