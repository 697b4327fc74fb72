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
/* The disk's backend, for queries (NULL when vdev is not a virtio-blk). */
struct block_backend *virtio_blk_backend(const struct virtio_device *vdev);
/* After the transport is gone: closes the backend, frees the device. */
void virtio_blk_destroy(struct virtio_device *vdev);

#endif
