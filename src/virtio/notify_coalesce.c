/* Used buffer notification coalescing: see notify_coalesce.h. */
#include "virtio/notify_coalesce.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "virtio/virtio.h"

static bool active(const struct notify_coalesce *c)
{
	return c->max_packets && c->max_usecs;
}

/* What is pending is to be notified now: without coalescing at once,
 * with it once max_packets are in. */
static bool due(const struct notify_coalesce *c)
{
	return !active(c) || c->pending >= c->max_packets;
}

/* Only while active(): usecs is at least 1, so the timer is armed, not
 * disarmed by a zero time. */
static void arm(struct notify_coalesce *c, uint32_t usecs)
{
	struct itimerspec t = { .it_value = { .tv_sec = usecs / 1000000,
					      .tv_nsec = (long)(usecs % 1000000) * 1000 } };

	if (timerfd_settime(c->timer_fd, 0, &t, NULL) == 0)
		c->armed = true;
}

static void disarm(struct notify_coalesce *c)
{
	struct itimerspec off = { 0 };

	if (c->armed)
		timerfd_settime(c->timer_fd, 0, &off, NULL);
	c->armed = false;
}

static void fire(struct notify_coalesce *c)
{
	c->pending = 0;
	disarm(c);
	c->notifications++;
	virtio_notify(c->vdev, c->queue);
}

static void timer_ready(void *ctx, uint32_t events)
{
	struct notify_coalesce *c = ctx;
	uint64_t expirations;

	(void)events;
	if (read(c->timer_fd, &expirations, sizeof(expirations)) < 0)
		return; /* disarmed (or re-armed) since it became readable */
	pthread_mutex_lock(&c->vdev->lock);
	c->armed = false;
	if (c->pending && virtio_running(c->vdev))
		fire(c);
	pthread_mutex_unlock(&c->vdev->lock);
}

int notify_coalesce_init(struct notify_coalesce *c, struct virtio_device *vdev,
			 unsigned int queue)
{
	memset(c, 0, sizeof(*c));
	c->vdev = vdev;
	c->queue = queue;
	c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	return c->timer_fd < 0 ? -errno : 0;
}

int notify_coalesce_watch(struct notify_coalesce *c, struct ioloop *loop)
{
	if (c->watched)
		return 0;
	if (ioloop_add(loop, &c->watch, c->timer_fd, EPOLLIN, timer_ready, c) < 0)
		return -1;
	c->watched = true;
	return 0;
}

void notify_coalesce_used(struct notify_coalesce *c, unsigned int n)
{
	if (!n)
		return;
	c->pending += n;
	if (due(c)) {
		fire(c);
		return;
	}
	c->coalesced++;
	/* The delay counts from the first buffer after a notification. */
	if (!c->armed)
		arm(c, c->max_usecs);
}

void notify_coalesce_set(struct notify_coalesce *c, uint32_t max_packets, uint32_t max_usecs)
{
	c->max_packets = max_packets;
	c->max_usecs = max_usecs < NOTIFY_COALESCE_MAX_USECS ? max_usecs : NOTIFY_COALESCE_MAX_USECS;
	/* "When the coalescing parameters change, the device needs to check
	 * if the new notification conditions are met." A shorter delay
	 * counts from now: when the first pending buffer came is not kept. */
	if (!c->pending)
		return;
	if (due(c))
		fire(c);
	else
		arm(c, c->max_usecs);
}

void notify_coalesce_reset(struct notify_coalesce *c)
{
	c->max_packets = c->max_usecs = 0;
	c->pending = 0;
	disarm(c);
}

void notify_coalesce_resume(struct notify_coalesce *c)
{
	if (active(c)) {
		c->pending = 1;
		arm(c, c->max_usecs);
	}
}

void notify_coalesce_close(struct notify_coalesce *c)
{
	if (c->timer_fd >= 0)
		close(c->timer_fd);
	c->timer_fd = -1;
}
