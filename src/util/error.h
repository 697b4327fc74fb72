/* Errors as values: a function that can fail for a reason a user should
 * read fills a struct error and returns -1, and the caller decides where
 * the message goes (the terminal, or a QMP client's error reply). */
#ifndef VIREO_UTIL_ERROR_H
#define VIREO_UTIL_ERROR_H

#include <stdbool.h>

#define ERROR_MSG_MAX 256

struct error {
	bool set;
	char msg[ERROR_MSG_MAX];
};

/* Records the message (the first one wins: the root cause) and returns -1,
 * so a failure path can end with "return error_set(err, ...)". With err
 * NULL the message is logged instead. */
int error_set(struct error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Puts context in front of the recorded message ("virtio-blk0: ..."). */
void error_prefix(struct error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs the recorded message, if any, as an error. */
void error_report(const struct error *err);

#endif
