/* virtio-can (VirtIO 1.4, device-types/can, device id 36): a CAN / CAN FD
 * controller on a CAN backend (host SocketCAN or a Vireo CAN bus). */
#ifndef VIREO_VIRTIO_VIRTIO_CAN_H
#define VIREO_VIRTIO_VIRTIO_CAN_H

#include "can/can.h"
#include "virtio/virtio.h"

/* A controller on an opened backend, which the device owns from then on
 * (the caller still closes it when this fails). NULL on failure. */
struct virtio_device *virtio_can_create(struct can_backend *backend, unsigned int index);
/* Frees the device and closes its backend. */
void virtio_can_destroy(struct virtio_device *vdev);

#endif
