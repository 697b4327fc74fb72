/* virtio-console (VirtIO 1.2, 5.3) with a single port: the guest's hvc0,
 * wired to Vireo's terminal. Output goes to a callback; input is pushed by
 * the event loop with virtio_console_receive(), as far as the guest has
 * given buffers, and rx_space() says when it gives more. */
#ifndef VIREO_VIRTIO_VIRTIO_CONSOLE_H
#define VIREO_VIRTIO_VIRTIO_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "virtio/virtio.h"

struct virtio_console_io {
	void (*output)(void *ctx, const uint8_t *buf, size_t len);
	void (*rx_space)(void *ctx);
	void *ctx;
};

struct virtio_device *virtio_console_create(const struct virtio_console_io *io);
void virtio_console_destroy(struct virtio_device *vdev);
/* Bytes the guest took (0 when it has no buffers, or is not running). */
size_t virtio_console_receive(struct virtio_device *vdev, const uint8_t *buf, size_t len);

#endif
