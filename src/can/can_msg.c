/* The rules of a CAN frame itself, apart from any backend: the wire
 * protocols (canbus_proto.c), the backends and the devices all check
 * frames here, so this file depends on nothing else in can/. */
#include "can/can.h"

#include <stdbool.h>

/* The data lengths a CAN FD frame can have (ISO 11898-1: DLC 0-15). */
static bool fd_len_valid(unsigned int len)
{
	switch (len) {
	case 12:
	case 16:
	case 20:
	case 24:
	case 32:
	case 48:
	case 64:
		return true;
	default:
		return len <= 8;
	}
}

int can_msg_valid(const struct can_msg *m)
{
	const uint8_t known = CAN_MSG_EXT | CAN_MSG_RTR | CAN_MSG_FD | CAN_MSG_BRS | CAN_MSG_ESI;

	if (m->flags & ~known)
		return -1;
	if (m->id > ((m->flags & CAN_MSG_EXT) ? 0x1fffffffu : 0x7ffu))
		return -1;
	if (m->flags & CAN_MSG_FD) {
		if ((m->flags & CAN_MSG_RTR) || !fd_len_valid(m->len))
			return -1;
	} else {
		if ((m->flags & (CAN_MSG_BRS | CAN_MSG_ESI)) || m->len > CAN_MAX_DLEN)
			return -1;
	}
	return 0;
}
