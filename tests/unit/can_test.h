/* For the CAN unit tests: waiting for a backend's next event, checking what
 * it is, and making frames to send. Include after cmocka_prelude.h. */
#ifndef VIREO_TESTS_CAN_TEST_H
#define VIREO_TESTS_CAN_TEST_H

#include <poll.h>
#include <stdint.h>
#include <string.h>
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

static inline void assert_same_frame(const struct can_msg *got, const struct can_msg *want)
{
	assert_int_equal(got->id, want->id);
	assert_int_equal(got->flags, want->flags);
	assert_int_equal(got->len, want->len);
	if (!(want->flags & CAN_MSG_RTR))
		assert_memory_equal(got->data, want->data, want->len);
}

/* The next event, within 5 s, is a frame equal to *want. */
static inline void expect_frame(struct can_backend *b, const struct can_msg *want)
{
	enum can_event ev;
	struct can_msg m;

	assert_int_equal(next_event(b, &ev, &m, 5000), 1);
	assert_int_equal(ev, CAN_EVENT_FRAME);
	assert_same_frame(&m, want);
}

/* The next event, within 5 s, is want. */
static inline void expect_event(struct can_backend *b, enum can_event want)
{
	enum can_event ev;
	struct can_msg m;

	assert_int_equal(next_event(b, &ev, &m, 5000), 1);
	assert_int_equal(ev, want);
}

/* Nothing comes within ms. */
static inline void expect_quiet(struct can_backend *b, int ms)
{
	enum can_event ev;
	struct can_msg m;

	assert_int_equal(next_event(b, &ev, &m, ms), 0);
}

/* A frame whose payload (none for RTR) is derived from seed. */
static inline struct can_msg frame(uint32_t id, uint8_t flags, uint8_t len, uint8_t seed)
{
	struct can_msg m;
	unsigned int i;

	memset(&m, 0, sizeof(m));
	m.id = id;
	m.flags = flags;
	m.len = len;
	if (!(flags & CAN_MSG_RTR))
		for (i = 0; i < len; i++)
			m.data[i] = (uint8_t)(seed + i * 7);
	return m;
}

#endif
