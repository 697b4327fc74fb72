/* virtio-blk (VirtIO 1.2, 5.2) on a block backend. */
#ifndef VIREO_VIRTIO_VIRTIO_BLK_H
#define VIREO_VIRTIO_VIRTIO_BLK_H

#include "block/block.h"
#include "virtio/virtio.h"

/* A disk on an opened backend, which the device owns from then on (the
 * caller still closes it when this fails). serial: the ID string (up to
 * 20 bytes, NULL for none). NULL on failure (one line logged). */
struct virtio_device *virtio_blk_create(struct block_backend *backend, const char *serial,
					unsigned int index);
/* After the transport is gone: closes the backend, frees the device. */
void virtio_blk_destroy(struct virtio_device *vdev);

#endif
