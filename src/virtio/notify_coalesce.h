/* Used buffer notification coalescing for one virtqueue (VirtIO 1.3,
 * 5.1.6.5.6, virtio-net's VIRTIO_NET_F_NOTF_COAL): with max_packets and
 * max_usecs both non-zero, the notification for used buffers waits until
 * max_packets of them were used since the last one, or max_usecs went by
 * since the first of them, whichever comes first; with either zero,
 * every batch of used buffers is notified at once, as without the
 * feature. The driver's own suppression (EVENT_IDX) still applies: this
 * only decides when virtio_notify() is asked. Everything under the
 * device's lock; the timer fires in the device's I/O thread. */
#ifndef VIREO_VIRTIO_NOTIFY_COALESCE_H
#define VIREO_VIRTIO_NOTIFY_COALESCE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/ioloop.h"

struct virtio_device;

/* The longest delay honoured: the spec lets a device notify more often
 * than asked, and a guest that asks for more than this (u32 microseconds
 * is over an hour) would only stall its own network. */
#define NOTIFY_COALESCE_MAX_USECS 1000000u

struct notify_coalesce {
	struct virtio_device *vdev;
	unsigned int queue;
	uint32_t max_packets, max_usecs; /* as the driver set them (usecs capped) */
	uint32_t pending;		 /* buffers used since the last notification */
	bool armed;			 /* the timer runs for them */
	int timer_fd;
	struct ioloop_watch watch;
	bool watched;
	uint64_t notifications, coalesced; /* asked of virtio_notify; held back */
};

int notify_coalesce_init(struct notify_coalesce *c, struct virtio_device *vdev,
			 unsigned int queue);
/* Adds the timer to the device's loop (once; the loop outlives resets). */
int notify_coalesce_watch(struct notify_coalesce *c, struct ioloop *loop);
/* n buffers were used (pushed) on the queue: notify now or later. */
void notify_coalesce_used(struct notify_coalesce *c, unsigned int n);
/* New parameters; what is pending is notified if they say it is due. */
void notify_coalesce_set(struct notify_coalesce *c, uint32_t max_packets, uint32_t max_usecs);
/* Device reset: parameters 0 (the spec's initial values), nothing pending. */
void notify_coalesce_reset(struct notify_coalesce *c);
/* After a restore: whatever was held when the state was saved is
 * notified within max_usecs (at worst one spurious notification). */
void notify_coalesce_resume(struct notify_coalesce *c);
void notify_coalesce_close(struct notify_coalesce *c);

#endif
