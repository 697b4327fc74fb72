/* virtio-can TX decoding over arbitrary driver buffers (split anywhere,
 * any features): a decoded frame must be a valid CAN frame that the
 * negotiated features allow, and must survive an RX round trip. */
#include <string.h>

#include "fuzz.h"
#include "virtio/virtio_can_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iovec iov[4];
	struct can_msg m, back;
	uint8_t out[VIRTIO_CAN_HDR_SIZE + CANFD_MAX_DLEN];
	uint64_t features;
	size_t cut[3], i, start = 0;
	unsigned int n = 0;

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
	if (virtio_can_decode_tx(iov, n, features, &m) != VIRTIO_CAN_RESULT_OK)
		return 0;
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
