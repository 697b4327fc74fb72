#include "virtio/virtio_can_msg.h"

#include <string.h>

#include "util/le.h"
#include "virtio/virtqueue.h"
#include "util/iov.h"

#define KNOWN_FLAGS (VIRTIO_CAN_FLAGS_EXTENDED | VIRTIO_CAN_FLAGS_FD | VIRTIO_CAN_FLAGS_RTR)

static int has(uint64_t features, unsigned int bit)
{
	return (features >> bit) & 1;
}

uint8_t virtio_can_decode_tx(const struct iovec *iov, unsigned int n, uint64_t features,
			     struct can_msg *m)
{
	uint8_t hdr[VIRTIO_CAN_HDR_SIZE];
	uint32_t flags, id;
	uint16_t len;

	memset(m, 0, sizeof(*m));
	if (iov_to_buf(iov, n, 0, hdr, sizeof(hdr)) != sizeof(hdr) ||
	    le16_get(hdr) != VIRTIO_CAN_TX)
		return VIRTIO_CAN_RESULT_NOT_OK;
	len = le16_get(hdr + 2);
	flags = le32_get(hdr + 8);
	id = le32_get(hdr + 12);
	if (flags & ~KNOWN_FLAGS)
		return VIRTIO_CAN_RESULT_NOT_OK;
	if (flags & VIRTIO_CAN_FLAGS_FD) {
		if (!has(features, VIRTIO_CAN_F_CAN_FD) || (flags & VIRTIO_CAN_FLAGS_RTR))
			return VIRTIO_CAN_RESULT_NOT_OK;
		m->flags |= CAN_MSG_FD;
	} else if (!has(features, VIRTIO_CAN_F_CAN_CLASSIC)) {
		return VIRTIO_CAN_RESULT_NOT_OK;
	}
	if (flags & VIRTIO_CAN_FLAGS_RTR) {
		if (!has(features, VIRTIO_CAN_F_RTR_FRAMES))
			return VIRTIO_CAN_RESULT_NOT_OK;
		m->flags |= CAN_MSG_RTR;
	}
	if (flags & VIRTIO_CAN_FLAGS_EXTENDED)
		m->flags |= CAN_MSG_EXT;
	if (len > CANFD_MAX_DLEN)
		return VIRTIO_CAN_RESULT_NOT_OK;
	m->id = id;
	m->len = (uint8_t)len;
	if (can_msg_valid(m) < 0)
		return VIRTIO_CAN_RESULT_NOT_OK;
	/* A remote request carries no data, only the length it asks for. */
	if (!(m->flags & CAN_MSG_RTR) &&
	    iov_to_buf(iov, n, VIRTIO_CAN_HDR_SIZE, m->data, len) != len)
		return VIRTIO_CAN_RESULT_NOT_OK;
	return VIRTIO_CAN_RESULT_OK;
}

size_t virtio_can_encode_rx(const struct can_msg *m, uint8_t *buf)
{
	uint32_t flags = 0;
	size_t payload = (m->flags & CAN_MSG_RTR) ? 0 : m->len;

	if (m->flags & CAN_MSG_EXT)
		flags |= VIRTIO_CAN_FLAGS_EXTENDED;
	if (m->flags & CAN_MSG_FD)
		flags |= VIRTIO_CAN_FLAGS_FD;
	if (m->flags & CAN_MSG_RTR)
		flags |= VIRTIO_CAN_FLAGS_RTR;
	memset(buf, 0, VIRTIO_CAN_HDR_SIZE);
	le16_put(buf, VIRTIO_CAN_RX);
	le16_put(buf + 2, m->len);
	le32_put(buf + 8, flags);
	le32_put(buf + 12, m->id);
	if (payload > CANFD_MAX_DLEN)
		payload = CANFD_MAX_DLEN;
	memcpy(buf + VIRTIO_CAN_HDR_SIZE, m->data, payload);
	return VIRTIO_CAN_HDR_SIZE + payload;
}

int virtio_can_rx_allowed(const struct can_msg *m, uint64_t features)
{
	if (m->flags & CAN_MSG_FD)
		return has(features, VIRTIO_CAN_F_CAN_FD);
	if ((m->flags & CAN_MSG_RTR) && !has(features, VIRTIO_CAN_F_RTR_FRAMES))
		return 0;
	return has(features, VIRTIO_CAN_F_CAN_CLASSIC);
}
