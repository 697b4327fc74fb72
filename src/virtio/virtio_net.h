/* virtio-net (VirtIO 1.2, 5.1) on a network backend (tap or user mode). */
#ifndef VIREO_VIRTIO_VIRTIO_NET_H
#define VIREO_VIRTIO_VIRTIO_NET_H

#include "virtio/virtio.h"
#include "vmm/options.h"

/* Opens the NIC's backend; NULL (one line logged) if it cannot. */
struct virtio_device *virtio_net_create(const struct net_config *cfg, unsigned int index);
void virtio_net_destroy(struct virtio_device *vdev);

#endif
