/* common.c - one-line error reporting. */
#include "svcsensor/common.h"

#include <stdarg.h>

static void vreport(const char *prefix, const char *fmt, va_list ap)
{
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	/* A single fputs keeps lines from different threads whole. */
	fprintf(stderr, "%s: %s%s\n", SVC_PROG, prefix, line);
}

void svc_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("", fmt, ap);
	va_end(ap);
}

void svc_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("warning: ", fmt, ap);
	va_end(ap);
}

bool svc_due(uint64_t *next, unsigned interval, uint64_t now_s)
{
	if (!interval)
		return false;
	if (!*next || now_s + interval < *next) {
		*next = now_s + interval;
		return false;
	}
	if (now_s < *next)
		return false;
	*next = now_s + interval;
	return true;
}
