/* virtio-blk (VirtIO 1.2, 5.2) on a block backend. */
#ifndef VIREO_VIRTIO_VIRTIO_BLK_H
#define VIREO_VIRTIO_VIRTIO_BLK_H

#include "virtio/virtio.h"
#include "vmm/options.h"

/* Opens the disk's backend; NULL (one line logged) if it cannot. */
struct virtio_device *virtio_blk_create(const struct disk_config *cfg, unsigned int index);
/* After the transport is gone: closes the backend, frees the device. */
void virtio_blk_destroy(struct virtio_device *vdev);

#endif
