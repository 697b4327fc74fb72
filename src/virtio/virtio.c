/* What every VirtIO device shares, whatever its transport: interrupts for
 * used buffers and configuration changes, and DEVICE_NEEDS_RESET. */
#include "virtio/virtio.h"

#include <stdarg.h>
#include <stdio.h>

#include "util/log.h"

bool virtio_running(const struct virtio_device *vdev)
{
	return (vdev->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

void virtio_notify(struct virtio_device *vdev, unsigned int q)
{
	if (q >= vdev->num_queues || !vdev->vq[q].ready || !virtq_should_notify(&vdev->vq[q]))
		return;
	vdev->interrupts++;
	vdev->transport->notify_queue(vdev, q);
}

void virtio_config_changed(struct virtio_device *vdev)
{
	vdev->config_generation++;
	if (vdev->status & VIRTIO_STATUS_DRIVER_OK) {
		vdev->interrupts++;
		vdev->transport->notify_config(vdev);
	}
}

void virtio_set_needs_reset(struct virtio_device *vdev, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	if (vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		return;
	vdev->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if (!vdev->needs_reset_logged) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
		log_warn("%s: %s; the device needs a reset", vdev->name, why);
		vdev->needs_reset_logged = true;
	}
	if (vdev->status & VIRTIO_STATUS_DRIVER_OK) {
		vdev->interrupts++;
		vdev->transport->notify_config(vdev);
	}
}
