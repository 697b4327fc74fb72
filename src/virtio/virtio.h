/* The VirtIO device model interface (VirtIO 1.2). A device (blk, net,
 * console, rng, ...) fills a struct virtio_device and its ops; a transport
 * (virtio-pci) owns feature negotiation, device status, the queues'
 * configuration and interrupts, and calls the ops. Devices know nothing
 * of PCI, and nothing of files or sockets either: those are backends.
 *
 * Threads and locking: each device has an I/O thread (vdev->loop) in which
 * queue_notify runs; config accesses, status changes and reset come from
 * vCPU threads. All ops are called with vdev->lock held, and a device must
 * hold it too when it touches its queues from elsewhere (a backend's own
 * thread, for example). */
#ifndef VIREO_VIRTIO_VIRTIO_H
#define VIREO_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/jsonw.h"
#include "util/state.h"
#include "virtio/virtqueue.h"
#include "mem/guest_mem.h"
#include "util/ioloop.h"

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Reserved feature bits (6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

/* Device ids (5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_CAN 36

#define VIRTIO_MAX_QUEUES 8

struct virtio_device;

struct virtio_device_ops {
	/* Device-specific configuration space; the transport has checked that
	 * [offset, offset + size) lies within config_size. */
	void (*config_read)(struct virtio_device *vdev, uint32_t offset, void *data,
			    uint32_t size);
	void (*config_write)(struct virtio_device *vdev, uint32_t offset, const void *data,
			     uint32_t size);
	/* DRIVER_OK: features are final and the enabled queues are mapped.
	 * Return -1 to refuse (the device then needs a reset). */
	int (*activate)(struct virtio_device *vdev);
	/* The driver made buffers available in queue q (I/O thread). */
	void (*queue_notify)(struct virtio_device *vdev, unsigned int q);
	/* Device reset by the driver (status 0) or at VM teardown: forget all
	 * in-flight requests; no buffer may be used after this returns. */
	void (*reset)(struct virtio_device *vdev);
	/* Optional: the device's own counters, as members of the JSON
	 * object --stats-json writes for it. */
	void (*write_stats)(struct virtio_device *vdev, struct jsonw *j);
	/* Optional: requests taken from the queues and not yet answered
	 * (pause waits until there are none). NULL: never any. */
	unsigned int (*in_flight)(struct virtio_device *vdev);
	/* Optional: the device's own state beyond the generic VirtIO state
	 * (features, status, queues), for snapshots. load is called on a
	 * device the transport has just brought to the saved status (and
	 * activated, if it was running); it checks the record before it
	 * changes anything. */
	void (*save)(struct virtio_device *vdev, struct state_writer *w);
	int (*load)(struct virtio_device *vdev, struct state_reader *r, struct error *err);
	/* Optional: whether the own record (len bytes save wrote) is of a
	 * device set up like this one; asked before the transport checks
	 * its part, whose refusal would hide the reason (virtio-net on
	 * another kind of backend: the features it offered differ). */
	int (*check_saved)(struct virtio_device *vdev, const uint8_t *own, size_t len,
			   struct error *err);
	/* Optional: after a migration's switch-over, before the guest runs
	 * again, tells the network where the device is now (virtio-net: a
	 * RARP broadcast from its MAC, as QEMU's self-announce, so switches
	 * learn the new port at once). */
	void (*announce)(struct virtio_device *vdev);
	/* After the transport is gone: frees the device and its backend. */
	void (*destroy)(struct virtio_device *vdev);
};

struct virtio_transport_ops {
	void (*notify_queue)(struct virtio_device *vdev, unsigned int q);
	void (*notify_config)(struct virtio_device *vdev);
};

struct virtio_device {
	/* Filled by the device before it is added to a transport. */
	const char *name; /* "virtio-blk0": thread and statistics name */
	uint16_t device_id;
	uint64_t host_features; /* offered: VERSION_1 and device bits */
	uint32_t config_size;
	unsigned int num_queues;
	uint16_t queue_max_size[VIRTIO_MAX_QUEUES];
	const struct virtio_device_ops *ops;
	/* The layout of what ops->save writes: 0 for the first, bumped
	 * whenever it changes (the transport makes it part of the record's
	 * version). */
	unsigned int state_revision;

	/* Filled by the transport. */
	pthread_mutex_t lock;
	const struct guest_mem *mem;
	struct ioloop loop;
	uint64_t guest_features; /* accepted by the driver (FEATURES_OK) */
	uint8_t status;
	uint8_t config_generation;
	struct virtq vq[VIRTIO_MAX_QUEUES];
	const struct virtio_transport_ops *transport;
	void *transport_priv;
	bool needs_reset_logged;
	uint64_t notifications; /* queue kicks seen (ioeventfd or MMIO) */
	uint64_t notify_exits;	/* atomic: MMIO writes to the notify region that
				 * exited to Vireo (no ioeventfd took them) */
	uint64_t interrupts;	/* interrupts raised */
	/* Filled by the VMM (optional): reports something that happened to
	 * the device (a QMP event, e.g. a CAN controller's bus-off). Safe
	 * from any thread. */
	void (*report)(void *ctx, const char *device, const char *event);
	void *report_ctx;
};

static inline bool virtio_has_feature(const struct virtio_device *vdev, unsigned int bit)
{
	return (vdev->guest_features >> bit) & 1;
}

/* Tells the driver that queue q has used buffers, if it wants to know
 * (EVENT_IDX / NO_INTERRUPT). Called with the lock held. */
void virtio_notify(struct virtio_device *vdev, unsigned int q);
/* The device configuration changed (config generation and interrupt). */
void virtio_config_changed(struct virtio_device *vdev);
/* The driver broke the rules: DEVICE_NEEDS_RESET, a config interrupt, and
 * one log line per device until the next reset. Lock held. */
void virtio_set_needs_reset(struct virtio_device *vdev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Reports an event of the device to the VMM, if it listens. */
static inline void virtio_report(struct virtio_device *vdev, const char *event)
{
	if (vdev->report)
		vdev->report(vdev->report_ctx, vdev->name, event);
}
/* Whether the device runs (DRIVER_OK, not NEEDS_RESET): queues may be
 * used. Lock held. */
bool virtio_running(const struct virtio_device *vdev);

#endif
