/* virtio-can messages (VirtIO 1.4, device-types/can): the 16-byte
 * little-endian header shared by TX and RX, and the control requests.
 * Pure functions, unit tested and fuzzed without KVM. */
#ifndef VIREO_VIRTIO_VIRTIO_CAN_MSG_H
#define VIREO_VIRTIO_VIRTIO_CAN_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "can/can.h"

#define VIRTIO_CAN_F_CAN_CLASSIC 0
#define VIRTIO_CAN_F_CAN_FD 1
#define VIRTIO_CAN_F_RTR_FRAMES 2
#define VIRTIO_CAN_F_LATE_TX_ACK 3

#define VIRTIO_CAN_TX 0x0001
#define VIRTIO_CAN_RX 0x0101
#define VIRTIO_CAN_SET_CTRL_MODE_START 0x0201
#define VIRTIO_CAN_SET_CTRL_MODE_STOP 0x0202

#define VIRTIO_CAN_RESULT_OK 0
#define VIRTIO_CAN_RESULT_NOT_OK 1

#define VIRTIO_CAN_FLAGS_EXTENDED 0x8000
#define VIRTIO_CAN_FLAGS_FD 0x4000
#define VIRTIO_CAN_FLAGS_RTR 0x2000

#define VIRTIO_CAN_S_CTRL_BUSOFF 1
#define VIRTIO_CAN_HDR_SIZE 16

/* Decodes a TX request from the device-readable buffers (header, then
 * the payload) against the negotiated features. Returns RESULT_OK with
 * *m filled, or RESULT_NOT_OK for anything the spec says to refuse: an
 * unknown msg_type, undefined flag bits, a frame type that was not
 * negotiated, an id or length out of range, a payload shorter than its
 * length. */
uint8_t virtio_can_decode_tx(const struct iovec *iov, unsigned int n, uint64_t features,
			     struct can_msg *m);
/* Encodes an RX message (header and payload) into buf, which has room
 * for VIRTIO_CAN_HDR_SIZE + CANFD_MAX_DLEN bytes; returns its size. */
size_t virtio_can_encode_rx(const struct can_msg *m, uint8_t *buf);
/* Whether a frame from the bus may be given to a driver with these
 * features (an FD frame to a classic-only driver may not). */
int virtio_can_rx_allowed(const struct can_msg *m, uint64_t features);

#endif
