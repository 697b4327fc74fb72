/* virtio-can (VirtIO 1.4, device-types/can, device id 36): a CAN / CAN FD
 * controller on a CAN backend (host SocketCAN or a Vireo CAN bus). */
#ifndef VIREO_VIRTIO_VIRTIO_CAN_H
#define VIREO_VIRTIO_VIRTIO_CAN_H

#include "virtio/virtio.h"
#include "vmm/options.h"

/* Opens the controller's backend; NULL (one line logged) if it cannot. */
struct virtio_device *virtio_can_create(const struct can_config *cfg, unsigned int index);
void virtio_can_destroy(struct virtio_device *vdev);

#endif
