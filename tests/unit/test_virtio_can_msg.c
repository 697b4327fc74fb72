/* virtio-can TX decoding and RX encoding: every rule of the spec's
 * device requirements for what a driver may send. */
#include "cmocka_prelude.h"

#include <string.h>

#include "util/le.h"
#include "virtio/virtio_can_msg.h"

#define ALL_FEATURES                                                               \
	((1ULL << VIRTIO_CAN_F_CAN_CLASSIC) | (1ULL << VIRTIO_CAN_F_CAN_FD) |         \
	 (1ULL << VIRTIO_CAN_F_RTR_FRAMES))
#define CLASSIC_ONLY (1ULL << VIRTIO_CAN_F_CAN_CLASSIC)

static uint8_t buf[VIRTIO_CAN_HDR_SIZE + 64];

static void msg(uint16_t type, uint16_t len, uint32_t flags, uint32_t id)
{
	unsigned int i;

	memset(buf, 0, sizeof(buf));
	le16_put(buf, type);
	le16_put(buf + 2, len);
	le32_put(buf + 8, flags);
	le32_put(buf + 12, id);
	for (i = 0; i < 64; i++)
		buf[VIRTIO_CAN_HDR_SIZE + i] = (uint8_t)(0xa0 + i);
}

static uint8_t decode(size_t total, uint64_t features, struct can_msg *m)
{
	struct iovec iov = { buf, total };

	return virtio_can_decode_tx(&iov, 1, features, m);
}

static void test_classic_and_extended(void **state)
{
	struct can_msg m;

	(void)state;
	msg(VIRTIO_CAN_TX, 8, 0, 0x7ff);
	assert_int_equal(decode(24, ALL_FEATURES, &m), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(m.id, 0x7ff);
	assert_int_equal(m.len, 8);
	assert_int_equal(m.flags, 0);
	assert_int_equal(m.data[7], 0xa7);

	msg(VIRTIO_CAN_TX, 0, VIRTIO_CAN_FLAGS_EXTENDED, 0x1fffffff);
	assert_int_equal(decode(16, ALL_FEATURES, &m), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(m.flags, CAN_MSG_EXT);
	assert_int_equal(m.id, 0x1fffffff);

	/* Ids out of range. */
	msg(VIRTIO_CAN_TX, 1, 0, 0x800);
	assert_int_equal(decode(17, ALL_FEATURES, &m), VIRTIO_CAN_RESULT_NOT_OK);
	msg(VIRTIO_CAN_TX, 1, VIRTIO_CAN_FLAGS_EXTENDED, 0x20000000);
	assert_int_equal(decode(17, ALL_FEATURES, &m), VIRTIO_CAN_RESULT_NOT_OK);
	/* Classic frames carry at most 8 bytes. */
	msg(VIRTIO_CAN_TX, 9, 0, 0x100);
	assert_int_equal(decode(25, ALL_FEATURES, &m), VIRTIO_CAN_RESULT_NOT_OK);
}

static void test_fd(void **state)
{
	static const uint16_t good[] = { 0, 5, 8, 12, 16, 20, 24, 32, 48, 64 };
	static const uint16_t bad[] = { 9, 13, 33, 63, 65, 1000 };
	struct can_msg m;
	unsigned int i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(good); i++) {
		msg(VIRTIO_CAN_TX, good[i], VIRTIO_CAN_FLAGS_FD, 0x123);
		assert_int_equal(decode(16 + good[i], ALL_FEATURES, &m), VIRTIO_CAN_RESULT_OK);
		assert_int_equal(m.flags, CAN_MSG_FD);
		assert_int_equal(m.len, good[i]);
	}
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		msg(VIRTIO_CAN_TX, bad[i], VIRTIO_CAN_FLAGS_FD, 0x123);
		assert_int_equal(decode(sizeof(buf), ALL_FEATURES, &m), VIRTIO_CAN_RESULT_NOT_OK);
	}
	/* FD not negotiated. */
	msg(VIRTIO_CAN_TX, 12, VIRTIO_CAN_FLAGS_FD, 0x123);
	assert_int_equal(decode(28, CLASSIC_ONLY, &m), VIRTIO_CAN_RESULT_NOT_OK);
	/* FD together with RTR. */
	msg(VIRTIO_CAN_TX, 0, VIRTIO_CAN_FLAGS_FD | VIRTIO_CAN_FLAGS_RTR, 0x123);
	assert_int_equal(decode(16, ALL_FEATURES, &m), VIRTIO_CAN_RESULT_NOT_OK);
	/* Classic not negotiated (an FD-only driver). */
	msg(VIRTIO_CAN_TX, 2, 0, 0x123);
	assert_int_equal(decode(18, 1ULL << VIRTIO_CAN_F_CAN_FD, &m), VIRTIO_CAN_RESULT_NOT_OK);
}

static void test_rtr(void **state)
{
	struct can_msg m;

	(void)state;
	/* A remote request: a length, no data bytes needed. */
	msg(VIRTIO_CAN_TX, 4, VIRTIO_CAN_FLAGS_RTR, 0x321);
	assert_int_equal(decode(16, ALL_FEATURES, &m), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(m.flags, CAN_MSG_RTR);
	assert_int_equal(m.len, 4);
	assert_int_equal(decode(16, CLASSIC_ONLY, &m), VIRTIO_CAN_RESULT_NOT_OK);
}

static void test_malformed(void **state)
{
	struct can_msg m;

	(void)state;
	msg(VIRTIO_CAN_RX, 0, 0, 1); /* not a TX message */
	assert_int_equal(decode(16, ALL_FEATURES, &m), VIRTIO_CAN_RESULT_NOT_OK);
	msg(VIRTIO_CAN_TX, 0, 0x1, 1); /* undefined flag bit */
	assert_int_equal(decode(16, ALL_FEATURES, &m), VIRTIO_CAN_RESULT_NOT_OK);
	msg(VIRTIO_CAN_TX, 0, 0x80000000u, 1);
	assert_int_equal(decode(16, ALL_FEATURES, &m), VIRTIO_CAN_RESULT_NOT_OK);
	msg(VIRTIO_CAN_TX, 8, 0, 1); /* payload shorter than its length */
	assert_int_equal(decode(20, ALL_FEATURES, &m), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(decode(10, ALL_FEATURES, &m), VIRTIO_CAN_RESULT_NOT_OK); /* no header */
}

static void test_split_buffers(void **state)
{
	struct iovec iov[3];
	struct can_msg m;

	(void)state;
	msg(VIRTIO_CAN_TX, 8, VIRTIO_CAN_FLAGS_EXTENDED, 0x1abcdef);
	iov[0] = (struct iovec){ buf, 5 };
	iov[1] = (struct iovec){ buf + 5, 13 };
	iov[2] = (struct iovec){ buf + 18, 6 };
	assert_int_equal(virtio_can_decode_tx(iov, 3, ALL_FEATURES, &m), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(m.id, 0x1abcdef);
	assert_memory_equal(m.data, buf + 16, 8);
}

static void test_rx_encoding(void **state)
{
	struct can_msg m = { .id = 0x1234567, .flags = CAN_MSG_EXT | CAN_MSG_FD, .len = 12 };
	uint8_t out[VIRTIO_CAN_HDR_SIZE + 64];

	(void)state;
	memset(m.data, 0x5a, sizeof(m.data));
	assert_int_equal(virtio_can_encode_rx(&m, out), 28);
	assert_int_equal(le16_get(out), VIRTIO_CAN_RX);
	assert_int_equal(le16_get(out + 2), 12);
	assert_int_equal(le32_get(out + 8), VIRTIO_CAN_FLAGS_EXTENDED | VIRTIO_CAN_FLAGS_FD);
	assert_int_equal(le32_get(out + 12), 0x1234567);
	assert_int_equal(out[27], 0x5a);

	m = (struct can_msg){ .id = 0x10, .flags = CAN_MSG_RTR, .len = 3 };
	assert_int_equal(virtio_can_encode_rx(&m, out), 16);
	assert_int_equal(le16_get(out + 2), 3);
	assert_int_equal(le32_get(out + 8), VIRTIO_CAN_FLAGS_RTR);

	/* What a driver did not negotiate does not reach it. */
	assert_false(virtio_can_rx_allowed(&m, CLASSIC_ONLY));
	assert_true(virtio_can_rx_allowed(&m, ALL_FEATURES));
	m.flags = CAN_MSG_FD;
	assert_false(virtio_can_rx_allowed(&m, CLASSIC_ONLY));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classic_and_extended),
		cmocka_unit_test(test_fd),
		cmocka_unit_test(test_rtr),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_split_buffers),
		cmocka_unit_test(test_rx_encoding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
