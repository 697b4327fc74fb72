#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

int error_set(struct error *err, const char *fmt, ...)
{
	char buf[ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!err) {
		log_error("%s", buf);
	} else if (!err->set) {
		memcpy(err->msg, buf, sizeof(buf));
		err->set = true;
	}
	return -1;
}

void error_prefix(struct error *err, const char *fmt, ...)
{
	char prefix[ERROR_MSG_MAX], joined[2 * ERROR_MSG_MAX];
	va_list ap;

	if (!err || !err->set)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(joined, sizeof(joined), "%s%s", prefix, err->msg);
	/* Truncated to the message's size, still terminated. */
	memcpy(err->msg, joined, sizeof(err->msg) - 1);
	err->msg[sizeof(err->msg) - 1] = '\0';
}

void error_report(const struct error *err)
{
	if (err && err->set)
		log_error("%s", err->msg);
}
