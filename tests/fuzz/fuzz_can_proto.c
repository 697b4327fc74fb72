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
 *    frames (any id, flags, length), bus-offs, CANCELs or other types,
 *    send raw bytes of any length, or hang up; each record says how many
 *    hub steps follow it (0: none), so several sends can reach the hub in
 *    one batch, which is when a CANCEL withdraws frames. Every message a
 *    member sends gets a unique seq, and every frame with room for it a
 *    unique tag in its payload, so the model follows each one:
 *    - a member receives only well-formed messages of the types the hub
 *      sends, FD frames only if it asked for them;
 *    - TX_ACKs come in send order, one per frame, bus-off and CANCEL,
 *      never for anything else; only frames are ever skipped (withdrawn),
 *      and only by the ack of a later bus-off or CANCEL (a frame's ack
 *      skips nothing: a withdrawn frame has a CANCEL after it in its
 *      batch, acknowledged before anything sent later);
 *    - a withdrawn frame is never delivered; a forwarded frame arrives as
 *      it was sent, never back at its sender, at most once per member;
 *    - when a member that followed the protocol hangs up (after the hub
 *      has caught up), everything it sent was acknowledged or withdrawn,
 *      and it received every acknowledged frame sent after it joined
 *      (unless the hub counted a drop for a full queue).
 *    Afterwards every member leaves and the hub must have let go of all
 *    of them. Sanitizers catch memory errors. */
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
#define MAX_ITEMS 2048 /* messages that expect an ack, per run */
#define TAG 0x56       /* first byte of a frame's tag: 'V', idx lo, idx hi, check */

enum item_state { PENDING, ACKED, WITHDRAWN };

/* A FRAME, BUSOFF or CANCEL a member sent while following the protocol:
 * its seq is its index here. */
struct item {
	uint8_t type;
	uint8_t state;
	uint8_t must; /* members (bit per slot) that must receive it once acked */
	uint8_t got;  /* members (bit per slot) that received it */
	bool tagged;  /* the payload starts with its tag */
	bool delivered;
	unsigned int conn; /* the sender's connection */
	unsigned int pos;  /* in the sender's list */
	struct can_msg msg;
};

struct member {
	int fd;		/* -1: not connected */
	unsigned int conn; /* connection number, unique in the run */
	bool hello;	/* said a valid version-1 hello */
	bool joined;	/* ...and the hub answered it: frames sent now reach it */
	bool fd_frames; /* asked for CAN FD frames */
	bool dead;	/* broke the protocol (or hello of another version) */
	uint16_t list[MAX_ITEMS]; /* its items, in send order */
	unsigned int n, acked;    /* items; how many are resolved (acked or withdrawn) */
};

static struct canbus_hub *hub;
static char hub_path[108];
static struct member members[MEMBERS];
static struct item items[MAX_ITEMS];
static unsigned int nitems, nconns;
static uint64_t dropped_before;

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

static bool hub_dropped(void)
{
	struct canbus_hub_stats st;

	canbus_hub_stats(hub, &st);
	return st.dropped != dropped_before;
}

static void member_connect(struct member *m)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	unsigned int slot = (unsigned int)(m - members), i;

	m->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(m->fd >= 0);
	memcpy(sa.sun_path, hub_path, strlen(hub_path));
	CHECK(connect(m->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	m->conn = ++nconns;
	m->hello = m->joined = m->fd_frames = m->dead = false;
	m->n = m->acked = 0;
	/* A new member in this slot: nothing is owed to it yet. */
	for (i = 0; i < nitems; i++) {
		items[i].must &= (uint8_t)~(1u << slot);
		items[i].got &= (uint8_t)~(1u << slot);
	}
}

static bool tag_of(const struct can_msg *msg, unsigned int *idx)
{
	if ((msg->flags & CAN_MSG_RTR) || msg->len < 4)
		return false;
	*idx = msg->data[1] | (unsigned int)msg->data[2] << 8;
	return msg->data[0] == TAG && msg->data[3] == (uint8_t)(TAG ^ msg->data[1] ^ msg->data[2]);
}

/* What the hub should make of bytes a member sent; seq (already in buf)
 * is the index the message gets if it is an item. */
static void model(struct member *m, const uint8_t *buf, size_t len)
{
	unsigned int slot = (unsigned int)(m - members), i;
	struct canbus_pkt p;
	struct item *it;

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
	if (p.type != CANBUS_FRAME && p.type != CANBUS_BUSOFF && p.type != CANBUS_CANCEL) {
		m->dead = true;
		return;
	}
	CHECK(p.seq == nitems && nitems < MAX_ITEMS);
	it = &items[nitems];
	memset(it, 0, sizeof(*it));
	it->type = p.type;
	it->state = PENDING;
	it->conn = m->conn;
	it->pos = m->n;
	if (p.type == CANBUS_FRAME) {
		unsigned int idx;

		it->msg = p.msg;
		it->tagged = tag_of(&p.msg, &idx);
		CHECK(!it->tagged || idx == nitems);
		/* Who is on the bus now, and takes this kind of frame. */
		for (i = 0; i < MEMBERS; i++)
			if (i != slot && members[i].fd >= 0 && members[i].joined && !members[i].dead &&
			    (!(p.msg.flags & CAN_MSG_FD) || members[i].fd_frames))
				it->must |= (uint8_t)(1u << i);
	}
	m->list[m->n++] = (uint16_t)nitems++;
}

/* Sends len bytes; a message of the protocol's size gets the next seq,
 * and a frame with room for it its tag, so that every one is known. */
static void member_send(struct member *m, uint8_t *buf, size_t len)
{
	struct canbus_pkt p;
	ssize_t n;

	if (nitems >= MAX_ITEMS)
		return;
	if (m->fd < 0)
		member_connect(m);
	if (len == CANBUS_MSG_SIZE) {
		buf[4] = (uint8_t)nitems;
		buf[5] = (uint8_t)(nitems >> 8);
		buf[6] = buf[7] = 0;
		if (canbus_decode(buf, len, &p) == 0 && p.type == CANBUS_FRAME &&
		    !(p.msg.flags & CAN_MSG_RTR) && p.msg.len >= 4) {
			buf[16] = TAG;
			buf[17] = buf[4];
			buf[18] = buf[5];
			buf[19] = (uint8_t)(TAG ^ buf[4] ^ buf[5]);
		}
	}
	n = send(m->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n == (ssize_t)len)
		model(m, buf, len);
	else
		CHECK(n < 0 && (errno == EAGAIN || errno == EPIPE || errno == ECONNRESET ||
				errno == EMSGSIZE));
}

static void got_frame(struct member *m, const struct canbus_pkt *p)
{
	unsigned int slot = (unsigned int)(m - members), idx;
	struct item *it;

	CHECK(can_msg_valid(&p->msg) == 0);
	CHECK(!(p->msg.flags & CAN_MSG_FD) || m->fd_frames || m->dead);
	CHECK(p->seq == 0);
	/* Every frame members send with room for a tag carries one. */
	if ((p->msg.flags & CAN_MSG_RTR) || p->msg.len < 4)
		return;
	CHECK(tag_of(&p->msg, &idx));
	CHECK(idx < nitems);
	it = &items[idx];
	CHECK(it->type == CANBUS_FRAME && it->tagged);
	CHECK(it->conn != m->conn);		/* never back to its sender */
	CHECK(it->state != WITHDRAWN);		/* withdrawn frames never go out */
	CHECK(!(it->got & (1u << slot)));	/* at most once */
	CHECK(p->msg.id == it->msg.id && p->msg.flags == it->msg.flags &&
	      p->msg.len == it->msg.len && !memcmp(p->msg.data, it->msg.data, p->msg.len));
	it->got |= (uint8_t)(1u << slot);
	it->delivered = true;
}

/* A TX_ACK: for the member's next unresolved item, or for a later one
 * when the frames between were withdrawn by a CANCEL. */
static void got_ack(struct member *m, uint32_t seq)
{
	struct item *it;
	unsigned int k;

	CHECK(seq < nitems);
	it = &items[seq];
	CHECK(it->conn == m->conn && it->state == PENDING);
	CHECK(it->pos >= m->acked);
	/* A frame is acked only after everything before it was resolved:
	 * a withdrawn frame has a CANCEL after it in its batch. */
	if (it->type == CANBUS_FRAME)
		CHECK(it->pos == m->acked);
	for (k = m->acked; k < it->pos; k++) {
		struct item *w = &items[m->list[k]];

		CHECK(w->type == CANBUS_FRAME && w->state == PENDING);
		CHECK(!w->delivered);
		w->state = WITHDRAWN;
	}
	it->state = ACKED;
	m->acked = it->pos + 1;
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
			/* The answer to its hello, once. */
			CHECK(m->hello || m->dead);
			CHECK(!m->joined);
			m->joined = true;
			break;
		case CANBUS_FRAME:
			got_frame(m, &p);
			break;
		case CANBUS_TX_ACK:
			got_ack(m, p.seq);
			break;
		case CANBUS_BUSOFF:
			CHECK(p.seq == 0);
			break;
		default:
			CHECK(0);
		}
	}
}

/* Steps the hub and drains everyone until the hub has nothing left to do. */
static void settle(void)
{
	unsigned int i, round;

	for (round = 0; round < 64; round++) {
		int r = canbus_hub_step(hub, 0);

		CHECK(r >= 0);
		for (i = 0; i < MEMBERS; i++)
			member_drain(&members[i]);
		if (r == 0)
			break;
	}
}

static void member_close(struct member *m)
{
	unsigned int slot = (unsigned int)(m - members), i;

	if (m->fd < 0)
		return;
	settle();
	if (!m->dead) {
		/* Followed the protocol and the hub caught up: everything it
		 * sent was acknowledged or withdrawn... */
		CHECK(m->acked == m->n);
		/* ...and every acknowledged frame sent since it joined reached
		 * it, unless the hub dropped some for a full queue. */
		if (!hub_dropped())
			for (i = 0; i < nitems; i++)
				if ((items[i].must & (1u << slot)) && items[i].state == ACKED &&
				    items[i].tagged)
					CHECK(items[i].got & (1u << slot));
	}
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
	nitems = 0;
	nconns = 0;
	canbus_hub_stats(hub, &st);
	dropped_before = st.dropped;
	while (in->n && rounds++ < 256) {
		uint8_t op = fuzz_u8(in), after = fuzz_u8(in);
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
		case 1: /* a frame (valid or not), a bus-off, a CANCEL or another type */
			p.version = CANBUS_VERSION;
			p.type = CANBUS_FRAME;
			if (op & 0x40) {
				uint8_t t = fuzz_u8(in);

				/* Mostly the two a member may send besides frames. */
				p.type = (t & 0x80) ? (uint8_t)(t % 7)
						    : (t & 1) ? CANBUS_CANCEL : CANBUS_BUSOFF;
			}
			if (p.type == CANBUS_FRAME) {
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
			}
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
			member_close(m);
			break;
		}
		/* 0: batch with the next record; else let the hub run. */
		steps(after % 4);
		for (i = 0; i < MEMBERS; i++)
			member_drain(&members[i]);
	}
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
