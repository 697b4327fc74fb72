/* virtio-rng (VirtIO 1.2, 5.4): entropy from the host's getrandom(). */
#ifndef VIREO_VIRTIO_VIRTIO_RNG_H
#define VIREO_VIRTIO_VIRTIO_RNG_H

#include "virtio/virtio.h"

struct virtio_device *virtio_rng_create(void);
void virtio_rng_destroy(struct virtio_device *vdev);

#endif
