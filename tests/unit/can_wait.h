/* Waiting for a CAN backend's next event, for the CAN unit tests. */
#ifndef VIREO_TESTS_CAN_WAIT_H
#define VIREO_TESTS_CAN_WAIT_H

#include <poll.h>
#include <stdint.h>
#include <time.h>

#include "can/can.h"

static inline int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to timeout_ms for the next event. 1: got one, 0: none came. */
static inline int next_event(struct can_backend *b, enum can_event *ev, struct can_msg *m,
			     int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = can_backend_rx_fd(b), .events = POLLIN };
		int64_t left;

		if (can_backend_recv(b, ev, m) > 0)
			return 1;
		left = end - now_ms();
		if (left <= 0)
			return 0;
		poll(&p, 1, (int)left);
	}
}

#endif
