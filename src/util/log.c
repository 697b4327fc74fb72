#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int raw_terminal;
static int debug_enabled = -1;

void log_set_raw_terminal(int raw)
{
	raw_terminal = raw;
}

static void vlog(const char *level, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "vireo: %s", level);

	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	/* One write per line keeps lines whole when vCPU threads log too. */
	fprintf(stderr, "%s%s", buf, raw_terminal ? "\r\n" : "\n");
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("error: ", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warning: ", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (debug_enabled < 0)
		debug_enabled = getenv("VIREO_DEBUG") != NULL;
	if (!debug_enabled)
		return;
	va_start(ap, fmt);
	vlog("debug: ", fmt, ap);
	va_end(ap);
}
