/* virtio-net (VirtIO 1.2, 5.1) on a network backend (tap or user mode). */
#ifndef VIREO_VIRTIO_VIRTIO_NET_H
#define VIREO_VIRTIO_VIRTIO_NET_H

#include <stdint.h>

#include "net/net.h"
#include "virtio/virtio.h"

/* A NIC with MAC address mac on an opened backend, which the device owns
 * from then on (the caller still closes it when this fails). NULL on
 * failure (one line logged). */
struct virtio_device *virtio_net_create(struct net_backend *backend, const uint8_t mac[6],
					unsigned int index);
/* Frees the device and closes its backend. */
void virtio_net_destroy(struct virtio_device *vdev);

#endif
