/* TCP sockets named as QEMU's migration URIs name them: "HOST:PORT",
 * "[V6ADDR]:PORT", an empty host for every address of this host. */
#ifndef VIREO_UTIL_TCP_H
#define VIREO_UTIL_TCP_H

#include <stdbool.h>

#include "util/error.h"

/* Connected to hostport, or (passive) bound and listening on it for one
 * connection at a time. The fd (close-on-exec), or -1 with err naming
 * the address and the problem. */
int tcp_socket(const char *hostport, bool passive, struct error *err);

#endif
