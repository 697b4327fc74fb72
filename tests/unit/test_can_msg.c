/* CAN frames on their own: can_msg_valid() against CAN's rules, the
 * candump -L line formatter, and the Vireo CAN bus message codec. */
#include "cmocka_prelude.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "can/can.h"
#include "can/canbus_proto.h"
#include "can/candump_log.h"

static struct can_msg msg(uint32_t id, uint8_t flags, uint8_t len)
{
	struct can_msg m;
	unsigned int i;

	memset(&m, 0, sizeof(m));
	m.id = id;
	m.flags = flags;
	m.len = len;
	for (i = 0; i < len && i < CANFD_MAX_DLEN; i++)
		m.data[i] = (uint8_t)(0x11 * (i + 1));
	return m;
}

static void test_valid_classic(void **state)
{
	struct can_msg m;
	unsigned int len;

	(void)state;
	for (len = 0; len <= 8; len++) {
		m = msg(0x123, 0, (uint8_t)len);
		assert_int_equal(can_msg_valid(&m), 0);
	}
	m = msg(0x7ff, 0, 8);
	assert_int_equal(can_msg_valid(&m), 0);
	m = msg(0x800, 0, 8); /* 12 bits without EXT */
	assert_int_equal(can_msg_valid(&m), -1);
	m = msg(0x1fffffff, CAN_MSG_EXT, 8);
	assert_int_equal(can_msg_valid(&m), 0);
	m = msg(0x20000000, CAN_MSG_EXT, 8);
	assert_int_equal(can_msg_valid(&m), -1);
	m = msg(0, 0, 9);
	assert_int_equal(can_msg_valid(&m), -1);
	m = msg(0x100, 0, 12); /* an FD length on a classic frame */
	assert_int_equal(can_msg_valid(&m), -1);
	/* BRS and ESI only exist on FD frames. */
	m = msg(0x100, CAN_MSG_BRS, 1);
	assert_int_equal(can_msg_valid(&m), -1);
	m = msg(0x100, CAN_MSG_ESI, 1);
	assert_int_equal(can_msg_valid(&m), -1);
	/* Unknown flag bits. */
	m = msg(0x100, 0x20, 1);
	assert_int_equal(can_msg_valid(&m), -1);
	m = msg(0x100, 0x80, 1);
	assert_int_equal(can_msg_valid(&m), -1);
}

static void test_valid_rtr(void **state)
{
	struct can_msg m;

	(void)state;
	m = msg(0x123, CAN_MSG_RTR, 0);
	assert_int_equal(can_msg_valid(&m), 0);
	m = msg(0x123, CAN_MSG_RTR, 8);
	assert_int_equal(can_msg_valid(&m), 0);
	m = msg(0x1abcdef, CAN_MSG_RTR | CAN_MSG_EXT, 3);
	assert_int_equal(can_msg_valid(&m), 0);
	m = msg(0x123, CAN_MSG_RTR, 9);
	assert_int_equal(can_msg_valid(&m), -1);
	/* No remote frames in CAN FD. */
	m = msg(0x123, CAN_MSG_RTR | CAN_MSG_FD, 8);
	assert_int_equal(can_msg_valid(&m), -1);
}

static void test_valid_fd(void **state)
{
	static const uint8_t ok[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64 };
	unsigned int len, i;
	struct can_msg m;

	(void)state;
	for (len = 0; len <= 255; len++) {
		bool want = false;

		for (i = 0; i < ARRAY_LEN(ok); i++)
			want |= ok[i] == len;
		m = msg(0x123, CAN_MSG_FD, (uint8_t)len);
		assert_int_equal(can_msg_valid(&m), want ? 0 : -1);
	}
	m = msg(0x123, CAN_MSG_FD | CAN_MSG_BRS | CAN_MSG_ESI, 64);
	assert_int_equal(can_msg_valid(&m), 0);
	m = msg(0x1fffffff, CAN_MSG_FD | CAN_MSG_EXT | CAN_MSG_BRS, 48);
	assert_int_equal(can_msg_valid(&m), 0);
	m = msg(0x800, CAN_MSG_FD, 8);
	assert_int_equal(can_msg_valid(&m), -1);
}

static const char *fmt(const struct can_msg *m, const char *ifname)
{
	static char line[CANDUMP_LINE_MAX];
	struct timespec ts = { .tv_sec = 1436509052, .tv_nsec = 249713123 };

	size_t n = candump_format(line, sizeof(line), &ts, ifname, m);

	assert_int_equal(n, strlen(line));
	return line;
}

static void test_candump_format(void **state)
{
	struct can_msg m;
	struct timespec zero = { 0 };
	char small[24], line[CANDUMP_LINE_MAX];
	char expect[CANDUMP_LINE_MAX];
	unsigned int i;
	size_t n;

	(void)state;
	m = msg(0x44, 0, 5);
	memcpy(m.data, "\x2a\x36\x6c\x2b\xba", 5);
	assert_string_equal(fmt(&m, "vcan0"), "(1436509052.249713) vcan0 044#2A366C2BBA\n");
	m = msg(0x7ff, 0, 0);
	assert_string_equal(fmt(&m, "vcan0"), "(1436509052.249713) vcan0 7FF#\n");
	m = msg(0x12345, CAN_MSG_EXT, 2);
	assert_string_equal(fmt(&m, "can1"), "(1436509052.249713) can1 00012345#1122\n");
	m = msg(0x123, CAN_MSG_RTR, 0);
	assert_string_equal(fmt(&m, "vcan0"), "(1436509052.249713) vcan0 123#R\n");
	m = msg(0x123, CAN_MSG_RTR, 4);
	assert_string_equal(fmt(&m, "vcan0"), "(1436509052.249713) vcan0 123#R4\n");
	m = msg(0x1abcdef0, CAN_MSG_RTR | CAN_MSG_EXT, 8);
	assert_string_equal(fmt(&m, "vcan0"), "(1436509052.249713) vcan0 1ABCDEF0#R8\n");
	m = msg(0x123, CAN_MSG_FD, 0);
	assert_string_equal(fmt(&m, "vcan0"), "(1436509052.249713) vcan0 123##4\n");
	m = msg(0x123, CAN_MSG_FD | CAN_MSG_BRS, 3);
	assert_string_equal(fmt(&m, "vcan0"), "(1436509052.249713) vcan0 123##5112233\n");
	m = msg(0x123, CAN_MSG_FD | CAN_MSG_ESI, 1);
	assert_string_equal(fmt(&m, "vcan0"), "(1436509052.249713) vcan0 123##611\n");
	m = msg(0x1fffffff, CAN_MSG_FD | CAN_MSG_EXT | CAN_MSG_BRS | CAN_MSG_ESI, 64);
	n = (size_t)snprintf(expect, sizeof(expect), "(1436509052.249713) bus 1FFFFFFF##7");
	for (i = 0; i < 64; i++)
		n += (size_t)snprintf(expect + n, sizeof(expect) - n, "%02X", m.data[i]);
	snprintf(expect + n, sizeof(expect) - n, "\n");
	assert_string_equal(fmt(&m, "bus"), expect);

	/* Spaces in a bus name would break the columns. */
	m = msg(0x1, 0, 1);
	assert_string_equal(fmt(&m, "my bus"), "(1436509052.249713) my_bus 001#11\n");
	/* Microseconds keep their leading zeros. */
	n = candump_format(line, sizeof(line), &zero, "x", &m);
	assert_int_equal(n, 20);
	assert_string_equal(line, "(0.000000) x 001#11\n");
	/* A short buffer is cut, still terminated. */
	n = candump_format(small, sizeof(small), &zero, "vcan0", &m);
	assert_int_equal(n, sizeof(small) - 1);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	/* A very long name is cut to CANDUMP_IFNAME_MAX. */
	memset(expect, 'n', 200);
	expect[200] = '\0';
	n = candump_format(line, sizeof(line), &zero, expect, &m);
	assert_int_equal(n, strlen("(0.000000) ") + CANDUMP_IFNAME_MAX + strlen(" 001#11\n"));
}

static void roundtrip(const struct canbus_pkt *in)
{
	uint8_t buf[CANBUS_MSG_SIZE];
	struct canbus_pkt out;

	canbus_encode(buf, in);
	assert_int_equal(canbus_decode(buf, sizeof(buf), &out), 0);
	assert_int_equal(out.version, in->version);
	assert_int_equal(out.type, in->type);
	assert_int_equal(out.seq, in->seq);
	assert_int_equal(out.msg.id, in->msg.id);
	assert_int_equal(out.msg.flags, in->msg.flags);
	assert_int_equal(out.msg.len, in->msg.len);
	if (!(in->msg.flags & CAN_MSG_RTR))
		assert_memory_equal(out.msg.data, in->msg.data, in->msg.len);
}

static void test_proto_layout(void **state)
{
	struct canbus_pkt p = { .version = CANBUS_VERSION, .type = CANBUS_FRAME, .seq = 0x01020304 };
	uint8_t buf[CANBUS_MSG_SIZE], want[CANBUS_MSG_SIZE];

	(void)state;
	p.msg = msg(0x1abcdef, CAN_MSG_EXT | CAN_MSG_FD | CAN_MSG_BRS, 12);
	canbus_encode(buf, &p);
	memset(want, 0, sizeof(want));
	memcpy(want, "\x56\x43\x01\x02\x04\x03\x02\x01\xef\xcd\xab\x01\x0d\x0c\x00\x00", 16);
	memcpy(want + 16, p.msg.data, 12);
	assert_memory_equal(buf, want, sizeof(want));
	roundtrip(&p);

	p.msg = msg(0x123, CAN_MSG_RTR, 6);
	roundtrip(&p);
	canbus_encode(buf, &p);
	memset(want, 0, sizeof(want));
	assert_memory_equal(buf + 16, want, 64); /* no data in a remote request */
	p.msg = msg(0x7ff, 0, 8);
	roundtrip(&p);

	memset(&p, 0, sizeof(p));
	p.version = CANBUS_VERSION;
	p.type = CANBUS_HELLO;
	p.msg.flags = CANBUS_HELLO_FD;
	p.msg.len = 5;
	memcpy(p.msg.data, "vireo", 5);
	roundtrip(&p);
	p.type = CANBUS_TX_ACK;
	p.msg = msg(0, 0, 0);
	p.seq = 77;
	roundtrip(&p);
	p.type = CANBUS_BUSOFF;
	roundtrip(&p);
	p.type = CANBUS_CANCEL;
	roundtrip(&p);
}

static void test_proto_rejects(void **state)
{
	struct canbus_pkt p = { .version = CANBUS_VERSION, .type = CANBUS_FRAME };
	uint8_t buf[CANBUS_MSG_SIZE + 1], good[CANBUS_MSG_SIZE];
	struct canbus_pkt out;

	(void)state;
	p.msg = msg(0x100, 0, 8);
	canbus_encode(good, &p);
	assert_int_equal(canbus_decode(good, sizeof(good), &out), 0);
	/* Wrong sizes. */
	memcpy(buf, good, sizeof(good));
	buf[CANBUS_MSG_SIZE] = 0;
	assert_int_equal(canbus_decode(buf, CANBUS_MSG_SIZE + 1, &out), -1);
	assert_int_equal(canbus_decode(buf, CANBUS_MSG_SIZE - 1, &out), -1);
	assert_int_equal(canbus_decode(buf, 0, &out), -1);
	/* Magic, version, type. */
	memcpy(buf, good, sizeof(good));
	buf[0] ^= 1;
	assert_int_equal(canbus_decode(buf, CANBUS_MSG_SIZE, &out), -1);
	memcpy(buf, good, sizeof(good));
	buf[2] = 2;
	assert_int_equal(canbus_decode(buf, CANBUS_MSG_SIZE, &out), -1);
	memcpy(buf, good, sizeof(good));
	buf[3] = 0;
	assert_int_equal(canbus_decode(buf, CANBUS_MSG_SIZE, &out), -1);
	buf[3] = 6;
	assert_int_equal(canbus_decode(buf, CANBUS_MSG_SIZE, &out), -1);
	/* Frames breaking CAN's rules. */
	memcpy(buf, good, sizeof(good));
	buf[13] = 9;
	assert_int_equal(canbus_decode(buf, CANBUS_MSG_SIZE, &out), -1);
	memcpy(buf, good, sizeof(good));
	buf[9] = 0x08; /* id 0x800 without EXT */
	assert_int_equal(canbus_decode(buf, CANBUS_MSG_SIZE, &out), -1);
	memcpy(buf, good, sizeof(good));
	buf[12] = CAN_MSG_FD | CAN_MSG_RTR;
	assert_int_equal(canbus_decode(buf, CANBUS_MSG_SIZE, &out), -1);
	/* A hello's name fits in data. */
	p.type = CANBUS_HELLO;
	p.msg = msg(0, 0, 0);
	canbus_encode(buf, &p);
	buf[13] = 65;
	assert_int_equal(canbus_decode(buf, CANBUS_MSG_SIZE, &out), -1);
	/* Another version's hello is understood enough to be answered,
	 * whatever its length. */
	buf[2] = 7;
	assert_int_equal(canbus_decode(buf, 4, &out), 0);
	assert_int_equal(out.type, CANBUS_HELLO);
	assert_int_equal(out.version, 7);
	assert_int_equal(canbus_decode(buf, 3, &out), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_classic), cmocka_unit_test(test_valid_rtr),
		cmocka_unit_test(test_valid_fd),      cmocka_unit_test(test_candump_format),
		cmocka_unit_test(test_proto_layout),  cmocka_unit_test(test_proto_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
