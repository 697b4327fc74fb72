/* TCP sockets named as QEMU's migration URIs name them: "HOST:PORT",
 * "[V6ADDR]:PORT", an empty host for every address of this host. */
#ifndef VIREO_UTIL_TCP_H
#define VIREO_UTIL_TCP_H

#include <stdbool.h>

#include "util/error.h"

/* Connected to hostport (with tcp_nodelay), or (passive) bound and
 * listening on it for one connection at a time. The fd (close-on-exec),
 * or -1 with err naming the address and the problem. */
int tcp_socket(const char *hostport, bool passive, struct error *err);
/* Small writes go out at once (TCP_NODELAY). A migration ends with small
 * records one way and a small reply the other, each waited for: with
 * Nagle's algorithm a small segment waits for the ACK of the one before,
 * which the peer delays (up to 200 ms) while it has nothing to send. */
void tcp_nodelay(int fd);
/* A receive buffer of bytes (the kernel doubles it) instead of the one
 * TCP grows by itself (up to 6 MiB on Linux); on a listening socket, for
 * its connections. See migration_incoming.c for why. */
void tcp_set_rcvbuf(int fd, int bytes);
/* Waits until at most bytes of what was written to fd are still waiting
 * for the peer's acknowledgement, or timeout_ms passed (or fd is no
 * socket). */
void tcp_wait_sent(int fd, int bytes, unsigned int timeout_ms);

#endif
