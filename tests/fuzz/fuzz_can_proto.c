/* The Vireo CAN bus against hostile members. Two halves, picked by the
 * first input byte's low bit:
 *
 * 0: the message codec alone. The rest of the input is cut into
 *    messages for canbus_decode(); whatever it accepts must re-encode and
 *    decode to the same thing, and frames it accepts follow CAN's rules.
 *
 * 1: a live hub (canbus_hub.c, one for the whole run, on a temporary
 *    socket) with up to three members on raw SEQPACKET sockets. Records
 *    make members connect, say hello (any version, any flags), send
 *    frames (any id, flags, length), send raw bytes of any length, or
 *    hang up. After each the hub runs, and everything a member receives
 *    is checked: well-formed, a type the hub may send, FD frames only for
 *    members that asked for them, and — for members that followed the
 *    protocol — one TX_ACK per frame, bus-off or CANCEL they sent (a
 *    CANCEL may withdraw frames sent since the one before it, and their
 *    TX_ACKs with them). Afterwards every member leaves and the hub must have let go
 *    of all of them. Sanitizers catch memory errors. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz.h"
#include "can/can.h"
#include "can/canbus_hub.h"
#include "can/canbus_proto.h"

/* ==== half 0: the codec ==== */

static void check_codec(const uint8_t *buf, size_t len)
{
	uint8_t again[CANBUS_MSG_SIZE];
	struct canbus_pkt p, q;

	if (canbus_decode(buf, len, &p) < 0)
		return;
	CHECK(p.type >= CANBUS_HELLO && p.type <= CANBUS_CANCEL);
	if (p.version != CANBUS_VERSION) {
		CHECK(p.type == CANBUS_HELLO);
		return;
	}
	CHECK(len == CANBUS_MSG_SIZE);
	if (p.type == CANBUS_FRAME)
		CHECK(can_msg_valid(&p.msg) == 0);
	CHECK(p.msg.len <= CANFD_MAX_DLEN);
	canbus_encode(again, &p);
	CHECK(canbus_decode(again, sizeof(again), &q) == 0);
	CHECK(q.version == p.version && q.type == p.type && q.seq == p.seq);
	CHECK(q.msg.id == p.msg.id && q.msg.flags == p.msg.flags && q.msg.len == p.msg.len);
	CHECK(!memcmp(q.msg.data, p.msg.data, sizeof(q.msg.data)));
}

static void fuzz_codec(struct fuzz_input *in)
{
	uint8_t buf[CANBUS_MSG_SIZE + 8];

	while (in->n) {
		size_t len = fuzz_u8(in) % (CANBUS_MSG_SIZE + 8 + 1);
		size_t i;

		/* Mostly exact-size messages with a valid header, so the
		 * decoder's inner checks get exercised. */
		for (i = 0; i < len; i++)
			buf[i] = fuzz_u8(in);
		check_codec(buf, len);
		if (len >= 4) {
			buf[0] = 0x56;
			buf[1] = 0x43;
			buf[2] = CANBUS_VERSION;
			check_codec(buf, len);
			check_codec(buf, CANBUS_MSG_SIZE <= len ? CANBUS_MSG_SIZE : len);
		}
	}
}

/* ==== half 1: a live hub ==== */

#define MEMBERS 3

struct member {
	int fd;		/* -1: not connected */
	bool hello;	/* said a valid version-1 hello */
	bool fd_frames; /* asked for CAN FD frames */
	bool dead;	/* broke the protocol (or hello of another version) */
	uint32_t acks_due;    /* at most: one per frame, bus-off, cancel */
	uint32_t acks_sure;   /* at least: frames a CANCEL may withdraw are not */
	uint32_t withdrawable; /* frames sent since the last CANCEL */
	uint32_t acks_got;
};

static struct canbus_hub *hub;
static char hub_path[108];
static struct member members[MEMBERS];

static void hub_cleanup(void)
{
	canbus_hub_close(hub);
	hub = NULL;
	*strrchr(hub_path, '/') = '\0';
	rmdir(hub_path);
}

static void hub_init(void)
{
	char dir[] = "/tmp/vireo-fuzz-can-XXXXXX";
	struct canbus_hub_options o = { .path = hub_path };

	CHECK(mkdtemp(dir));
	snprintf(hub_path, sizeof(hub_path), "%s/bus", dir);
	hub = canbus_hub_open(&o);
	CHECK(hub);
	atexit(hub_cleanup);
}

static void steps(int n)
{
	while (n--)
		CHECK(canbus_hub_step(hub, 0) >= 0);
}

static void member_connect(struct member *m)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(m, 0, sizeof(*m));
	m->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(m->fd >= 0);
	memcpy(sa.sun_path, hub_path, strlen(hub_path));
	CHECK(connect(m->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
}

/* What the hub should make of bytes a member sent. */
static void model(struct member *m, const uint8_t *buf, size_t len)
{
	struct canbus_pkt p;

	if (m->dead)
		return;
	if (len == 0 || canbus_decode(buf, len, &p) < 0) {
		m->dead = true;
		return;
	}
	if (!m->hello) {
		if (p.type != CANBUS_HELLO || p.version != CANBUS_VERSION) {
			m->dead = true;
			return;
		}
		m->hello = true;
		m->fd_frames = p.msg.flags & CANBUS_HELLO_FD;
		return;
	}
	switch (p.type) {
	case CANBUS_FRAME:
		m->withdrawable++;
		/* fall through */
	case CANBUS_BUSOFF:
		m->acks_due++;
		m->acks_sure++;
		break;
	case CANBUS_CANCEL:
		m->acks_due++;
		m->acks_sure = m->acks_sure + 1 - m->withdrawable;
		m->withdrawable = 0;
		break;
	default:
		m->dead = true;
	}
}

static void member_send(struct member *m, const uint8_t *buf, size_t len)
{
	ssize_t n;

	if (m->fd < 0)
		member_connect(m);
	n = send(m->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n == (ssize_t)len)
		model(m, buf, len);
	else
		CHECK(n < 0 && (errno == EAGAIN || errno == EPIPE || errno == ECONNRESET ||
				errno == EMSGSIZE));
}

/* Reads everything waiting for the member and checks it. */
static void member_drain(struct member *m)
{
	uint8_t buf[CANBUS_MSG_SIZE + 1];
	struct canbus_pkt p;

	if (m->fd < 0)
		return;
	for (;;) {
		ssize_t n = recv(m->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);

		if (n <= 0)
			return;
		CHECK(n == CANBUS_MSG_SIZE);
		CHECK(canbus_decode(buf, (size_t)n, &p) == 0);
		CHECK(p.version == CANBUS_VERSION);
		switch (p.type) {
		case CANBUS_HELLO:
			break;
		case CANBUS_FRAME:
			CHECK(can_msg_valid(&p.msg) == 0);
			CHECK(!(p.msg.flags & CAN_MSG_FD) || m->fd_frames || m->dead);
			break;
		case CANBUS_TX_ACK:
			m->acks_got++;
			break;
		case CANBUS_BUSOFF:
			break;
		default:
			CHECK(0);
		}
	}
}

static void member_close(struct member *m)
{
	if (m->fd < 0)
		return;
	member_drain(m);
	/* Followed the protocol: every frame was acknowledged. A member cut
	 * off may lose acks still queued when it was dropped. */
	if (!m->dead)
		CHECK(m->acks_got >= m->acks_sure && m->acks_got <= m->acks_due);
	else
		CHECK(m->acks_got <= m->acks_due);
	close(m->fd);
	m->fd = -1;
}

static void fuzz_hub(struct fuzz_input *in)
{
	struct canbus_hub_stats st;
	unsigned int i, rounds = 0;

	if (!hub)
		hub_init();
	for (i = 0; i < MEMBERS; i++)
		members[i].fd = -1;
	while (in->n && rounds++ < 256) {
		uint8_t op = fuzz_u8(in);
		struct member *m = &members[op % MEMBERS];
		uint8_t buf[CANBUS_MSG_SIZE + 64];
		struct canbus_pkt p;
		size_t len, k;

		memset(&p, 0, sizeof(p));
		switch ((op >> 2) & 3) {
		case 0: /* hello, usually of our version */
			p.type = CANBUS_HELLO;
			p.version = fuzz_u8(in);
			if (p.version & 0x80)
				p.version = CANBUS_VERSION;
			p.msg.flags = fuzz_u8(in);
			p.msg.len = fuzz_u8(in) % (CANFD_MAX_DLEN + 1);
			for (k = 0; k < p.msg.len; k++)
				p.msg.data[k] = fuzz_u8(in);
			canbus_encode(buf, &p);
			member_send(m, buf, CANBUS_MSG_SIZE);
			break;
		case 1: /* a frame, valid or not, or a bus-off or another type */
			p.version = CANBUS_VERSION;
			p.type = (op & 0x40) ? (uint8_t)(fuzz_u8(in) % 7) : CANBUS_FRAME;
			p.seq = fuzz_u32(in);
			p.msg.id = fuzz_u32(in);
			if (!(op & 0x80))
				p.msg.id &= 0x7ff;
			p.msg.flags = fuzz_u8(in);
			if (!(op & 0x20))
				p.msg.flags &= CAN_MSG_EXT | CAN_MSG_RTR | CAN_MSG_FD | CAN_MSG_BRS;
			p.msg.len = fuzz_u8(in);
			if (!(op & 0x10))
				p.msg.len %= 9;
			for (k = 0; k < CANFD_MAX_DLEN && k < p.msg.len; k++)
				p.msg.data[k] = fuzz_u8(in);
			canbus_encode(buf, &p);
			/* The encoder writes what it is given; fix the length
			 * byte it may have clamped. */
			buf[13] = p.msg.len;
			member_send(m, buf, CANBUS_MSG_SIZE);
			break;
		case 2: /* raw bytes */
			len = fuzz_u8(in) % sizeof(buf);
			for (k = 0; k < len; k++)
				buf[k] = fuzz_u8(in);
			member_send(m, buf, len);
			break;
		case 3: /* hang up */
			steps(2);
			member_close(m);
			break;
		}
		steps(3);
		for (i = 0; i < MEMBERS; i++)
			member_drain(&members[i]);
	}
	steps(4);
	for (i = 0; i < MEMBERS; i++)
		member_close(&members[i]);
	/* The hub lets go of everyone who left. */
	for (i = 0; i < 100; i++) {
		canbus_hub_stats(hub, &st);
		if (!st.members)
			break;
		CHECK(canbus_hub_step(hub, 10) >= 0);
	}
	CHECK(st.members == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };

	if (!size)
		return 0;
	if (fuzz_u8(&in) & 1)
		fuzz_hub(&in);
	else
		fuzz_codec(&in);
	return 0;
}
