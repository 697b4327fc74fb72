/* The Vireo CAN bus wire protocol, version 1.
 *
 * A hub (`vireo canbus PATH`) listens on a unix SOCK_SEQPACKET socket at
 * PATH. Each member (a Vireo CAN controller, or a host tool) connects and
 * exchanges messages of exactly CANBUS_MSG_SIZE bytes, one per packet.
 * Multi-byte fields are little-endian:
 *
 *   offset size field
 *        0    2 magic    0x4356 (bytes 'V' 'C')
 *        2    1 version  1
 *        3    1 type     CANBUS_HELLO / FRAME / TX_ACK / BUSOFF / CANCEL
 *        4    4 seq      FRAME, BUSOFF, CANCEL: the sender's number for
 *                        it; TX_ACK: the number being acknowledged;
 *                        else 0
 *        8    4 id       FRAME: CAN identifier (11 or 29 bits, no flag
 *                        bits); else 0
 *       12    1 flags    FRAME: CAN_MSG_* (can.h: EXT 0x01, RTR 0x02,
 *                        FD 0x04, BRS 0x08, ESI 0x10);
 *                        HELLO: CANBUS_HELLO_* capabilities
 *       13    1 len      FRAME: payload bytes (RTR: the requested length);
 *                        HELLO: bytes of name in data
 *       14    2 reserved 0
 *       16   64 data     FRAME: payload, zero after len;
 *                        HELLO: the member's name for the hub's log
 *
 * Conversation:
 *   1. The member connects and sends HELLO (its version, capabilities).
 *   2. The hub answers HELLO with its own version. If the versions differ,
 *      the hub closes the connection after that answer; a member must
 *      likewise give up on a hub whose version differs from its own. A
 *      hub with no room for another member answers a HELLO flagged
 *      CANBUS_HELLO_FULL straight away, and closes the connection.
 *   3. The member sends FRAME messages. The hub forwards each, as a FRAME
 *      with the same contents (seq 0), to every other member that has
 *      said hello (FD frames only to members with CANBUS_HELLO_FD) and to
 *      the bridged SocketCAN interface if any, then answers the sender
 *      TX_ACK with the frame's seq: the frame is on the bus (virtio-can's
 *      LATE_TX_ACK). TX_ACKs come in send order and are never dropped.
 *   4. BUSOFF from a member is forwarded (seq 0) to all other members and
 *      acknowledged like a frame; a member receiving it is bus-off.
 *   5. CANCEL from a member withdraws its frames that the hub has not
 *      taken yet, as a controller that stops aborts its pending
 *      transmissions: the hub reads what a member has sent in batches,
 *      and frames ahead of a CANCEL in the same batch are dropped, neither
 *      forwarded nor acknowledged. Frames the hub had already taken went
 *      out and are acknowledged as usual. The CANCEL itself is
 *      acknowledged (TX_ACK with its seq) in order, so a member knows that
 *      every TX_ACK after that one is for a frame it sent after it.
 *
 * Members only see traffic sent after they joined. The hub keeps a bounded
 * queue per member: when a member does not read, what it would have
 * received is dropped (and counted) rather than slowing the bus. The hub
 * stops reading from a member whose own queue is full, so a member that
 * never reads eventually cannot send (its sends fail with EAGAIN) but
 * never loses an acknowledgement.
 *
 * Anything malformed (wrong size, magic or version after the hello, an
 * unknown type, a frame breaking CAN's rules, a message the member may
 * not send) makes the hub disconnect that member. */
#ifndef VIREO_CAN_CANBUS_PROTO_H
#define VIREO_CAN_CANBUS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "can/can.h"

#define CANBUS_MSG_SIZE 80
#define CANBUS_MAGIC 0x4356
#define CANBUS_VERSION 1

enum canbus_type {
	CANBUS_HELLO = 1,
	CANBUS_FRAME = 2,
	CANBUS_TX_ACK = 3,
	CANBUS_BUSOFF = 4,
	CANBUS_CANCEL = 5,
};

/* HELLO flags */
#define CANBUS_HELLO_FD 0x01   /* member: it takes CAN FD frames */
#define CANBUS_HELLO_FULL 0x80 /* hub: no room for another member; it hangs up */

struct canbus_pkt {
	uint8_t version;
	uint8_t type;
	uint32_t seq;
	/* FRAME: the frame. HELLO: flags = CANBUS_HELLO_*, data[0..len) =
	 * the name (not NUL-terminated on the wire). Otherwise zero. */
	struct can_msg msg;
};

/* Writes p as CANBUS_MSG_SIZE bytes (unused fields zero). */
void canbus_encode(uint8_t out[CANBUS_MSG_SIZE], const struct canbus_pkt *p);
/* Reads a message of len bytes. 0 when it is well-formed: magic, version
 * CANBUS_VERSION, the right size, a known type, a valid frame for FRAME,
 * a name of at most 64 bytes for HELLO. A HELLO of another version (any
 * size from 4 bytes) is accepted with only version and type filled, so
 * that it can be answered. -1 otherwise. */
int canbus_decode(const void *buf, size_t len, struct canbus_pkt *p);

#endif
