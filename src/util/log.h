/* One-line diagnostics. Every message is prefixed with "vireo: " so a user
 * can tell Vireo's own output apart from what the guest prints. */
#ifndef VIREO_UTIL_LOG_H
#define VIREO_UTIL_LOG_H

#include <stdarg.h>

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only printed when VIREO_DEBUG is set in the environment. */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Messages go to stderr with a trailing "\r\n" while the terminal is in raw
 * mode, so they do not staircase across the screen. */
void log_set_raw_terminal(int raw);

#endif
