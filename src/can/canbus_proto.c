/* Vireo CAN bus messages: see canbus_proto.h for the layout. */
#include "can/canbus_proto.h"

#include <string.h>

#include "util/le.h"

enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 2,
	OFF_TYPE = 3,
	OFF_SEQ = 4,
	OFF_ID = 8,
	OFF_FLAGS = 12,
	OFF_LEN = 13,
	OFF_RESERVED = 14,
	OFF_DATA = 16,
};

_Static_assert(OFF_DATA + CANFD_MAX_DLEN == CANBUS_MSG_SIZE, "message layout");

void canbus_encode(uint8_t out[CANBUS_MSG_SIZE], const struct canbus_pkt *p)
{
	unsigned int len = p->msg.len;

	memset(out, 0, CANBUS_MSG_SIZE);
	le16_put(out + OFF_MAGIC, CANBUS_MAGIC);
	out[OFF_VERSION] = p->version;
	out[OFF_TYPE] = p->type;
	le32_put(out + OFF_SEQ, p->seq);
	if (p->type != CANBUS_FRAME && p->type != CANBUS_HELLO)
		return;
	if (p->type == CANBUS_FRAME)
		le32_put(out + OFF_ID, p->msg.id);
	out[OFF_FLAGS] = p->msg.flags;
	out[OFF_LEN] = p->msg.len;
	if (len > CANFD_MAX_DLEN)
		len = CANFD_MAX_DLEN;
	/* A remote request carries a length but no data. */
	if (p->type == CANBUS_FRAME && (p->msg.flags & CAN_MSG_RTR))
		len = 0;
	memcpy(out + OFF_DATA, p->msg.data, len);
}

int canbus_decode(const void *buf, size_t len, struct canbus_pkt *p)
{
	const uint8_t *in = buf;

	memset(p, 0, sizeof(*p));
	if (len < OFF_SEQ || le16_get(in + OFF_MAGIC) != CANBUS_MAGIC)
		return -1;
	p->version = in[OFF_VERSION];
	p->type = in[OFF_TYPE];
	/* Another version's hello must be answered, whatever its size. */
	if (p->type == CANBUS_HELLO && p->version != CANBUS_VERSION)
		return 0;
	if (len != CANBUS_MSG_SIZE || p->version != CANBUS_VERSION)
		return -1;
	p->seq = le32_get(in + OFF_SEQ);
	switch (p->type) {
	case CANBUS_HELLO:
		p->msg.flags = in[OFF_FLAGS];
		p->msg.len = in[OFF_LEN];
		if (p->msg.len > CANFD_MAX_DLEN)
			return -1;
		memcpy(p->msg.data, in + OFF_DATA, p->msg.len);
		return 0;
	case CANBUS_FRAME:
		p->msg.id = le32_get(in + OFF_ID);
		p->msg.flags = in[OFF_FLAGS];
		p->msg.len = in[OFF_LEN];
		if (can_msg_valid(&p->msg) < 0)
			return -1;
		if (!(p->msg.flags & CAN_MSG_RTR))
			memcpy(p->msg.data, in + OFF_DATA, p->msg.len);
		return 0;
	case CANBUS_TX_ACK:
	case CANBUS_BUSOFF:
	case CANBUS_CANCEL:
		return 0;
	default:
		return -1;
	}
}
