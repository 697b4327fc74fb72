/* virtio-can TX decoding over arbitrary driver buffers (split anywhere,
 * any features). Whether a message is accepted, and what it decodes to,
 * is checked against a model written from the VirtIO CAN message format
 * (5.22.6.2: le16 msg_type, le16 length, le32 reserved, le32 flags, le32
 * can_id, then the payload): known flags only, each frame type only with
 * its feature, identifiers and lengths CAN allows, the payload all there.
 * A decoded frame must also survive an RX round trip.
 *
 * Input: features (low 4 bits), three cut points, then the message. */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "util/le.h"
#include "virtio/virtio_can_msg.h"

static bool feature(uint64_t features, unsigned int bit)
{
	return (features >> bit) & 1;
}

/* CAN FD's data lengths: 0 to 8, then the eight DLCs above. */
static bool fd_len(unsigned int len)
{
	static const unsigned int big[] = { 12, 16, 20, 24, 32, 48, 64 };
	unsigned int i;

	if (len <= 8)
		return true;
	for (i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		if (len == big[i])
			return true;
	return false;
}

/* What the message in buf[0..size) should decode to; false: refused. */
static bool model(const uint8_t *buf, size_t size, uint64_t features, struct can_msg *m)
{
	uint32_t flags, id;
	uint16_t len;

	memset(m, 0, sizeof(*m));
	if (size < VIRTIO_CAN_HDR_SIZE || le16_get(buf) != VIRTIO_CAN_TX)
		return false;
	len = le16_get(buf + 2);
	flags = le32_get(buf + 8);
	id = le32_get(buf + 12);
	if (flags & ~(uint32_t)(VIRTIO_CAN_FLAGS_EXTENDED | VIRTIO_CAN_FLAGS_FD |
				VIRTIO_CAN_FLAGS_RTR))
		return false;
	if (flags & VIRTIO_CAN_FLAGS_FD) {
		/* FD has no remote frames. */
		if (!feature(features, VIRTIO_CAN_F_CAN_FD) || (flags & VIRTIO_CAN_FLAGS_RTR) ||
		    !fd_len(len))
			return false;
		m->flags |= CAN_MSG_FD;
	} else {
		if (!feature(features, VIRTIO_CAN_F_CAN_CLASSIC) || len > 8)
			return false;
	}
	if (flags & VIRTIO_CAN_FLAGS_RTR) {
		if (!feature(features, VIRTIO_CAN_F_RTR_FRAMES))
			return false;
		m->flags |= CAN_MSG_RTR;
	}
	if (flags & VIRTIO_CAN_FLAGS_EXTENDED) {
		if (id > 0x1fffffff)
			return false;
		m->flags |= CAN_MSG_EXT;
	} else if (id > 0x7ff) {
		return false;
	}
	m->id = id;
	m->len = (uint8_t)len;
	/* A remote request carries no data, only the length it asks for. */
	if (!(flags & VIRTIO_CAN_FLAGS_RTR)) {
		if (size - VIRTIO_CAN_HDR_SIZE < len)
			return false;
		memcpy(m->data, buf + VIRTIO_CAN_HDR_SIZE, len);
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iovec iov[4];
	struct can_msg m, want, back;
	uint8_t out[VIRTIO_CAN_HDR_SIZE + CANFD_MAX_DLEN];
	uint64_t features;
	size_t cut[3], i, start = 0;
	unsigned int n = 0;
	uint8_t r;

	if (size < 4)
		return 0;
	features = data[0] & 0xf;
	for (i = 0; i < 3; i++)
		cut[i] = data[1 + i];
	data += 4;
	size -= 4;
	for (i = 0; i < 3 && start < size; i++) {
		size_t len = cut[i] < size - start ? cut[i] : size - start;

		iov[n++] = (struct iovec){ (void *)(data + start), len };
		start += len;
	}
	if (start < size)
		iov[n++] = (struct iovec){ (void *)(data + start), size - start };
	r = virtio_can_decode_tx(iov, n, features, &m);
	CHECK(r == VIRTIO_CAN_RESULT_OK || r == VIRTIO_CAN_RESULT_NOT_OK);
	CHECK((r == VIRTIO_CAN_RESULT_OK) == model(data, size, features, &want));
	if (r != VIRTIO_CAN_RESULT_OK)
		return 0;
	CHECK(m.id == want.id && m.flags == want.flags && m.len == want.len);
	CHECK(!memcmp(m.data, want.data, sizeof(m.data)));
	CHECK(can_msg_valid(&m) == 0);
	CHECK(virtio_can_rx_allowed(&m, features));
	CHECK(virtio_can_encode_rx(&m, out) <= sizeof(out));
	{
		struct iovec o = { out, sizeof(out) };

		/* An RX message is a TX message but for its type. */
		out[0] = (uint8_t)VIRTIO_CAN_TX;
		out[1] = 0;
		CHECK(virtio_can_decode_tx(&o, 1, features, &back) == VIRTIO_CAN_RESULT_OK);
		CHECK(back.id == m.id && back.flags == m.flags && back.len == m.len);
		CHECK((m.flags & CAN_MSG_RTR) || !memcmp(back.data, m.data, m.len));
	}
	return 0;
}
