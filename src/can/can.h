/* CAN backends: where a virtio-can controller's frames go and come from.
 * Two kinds: a host SocketCAN interface (CAN_RAW socket) and a Vireo CAN
 * bus (a unix-socket hub that VMs and host tools join, `vireo canbus`).
 *
 * Like the network backends, receive is pull-based: the device polls
 * rx_fd in its I/O thread and calls can_backend_recv() until it returns 0.
 * Besides frames from the bus, recv reports events: the confirmation that
 * a frame this controller sent went out on the bus (for LATE_TX_ACK, in
 * the order the frames were sent) and bus-off. A controller never
 * receives its own frames as frames. */
#ifndef VIREO_CAN_CAN_H
#define VIREO_CAN_CAN_H

#include <stdbool.h>
#include <stdint.h>

#define CAN_MSG_EXT 0x01 /* 29-bit identifier */
#define CAN_MSG_RTR 0x02 /* remote request (classic only) */
#define CAN_MSG_FD 0x04	 /* CAN FD frame */
#define CAN_MSG_BRS 0x08 /* FD: bit rate switch */
#define CAN_MSG_ESI 0x10 /* FD: error state indicator */

#define CAN_MAX_DLEN 8
#define CANFD_MAX_DLEN 64

struct can_msg {
	uint32_t id; /* 11 or 29 bits, no flag bits */
	uint8_t flags;
	uint8_t len; /* payload bytes; for RTR, the requested length */
	uint8_t data[CANFD_MAX_DLEN];
};

enum can_event {
	CAN_EVENT_FRAME,   /* a frame from the bus: *msg */
	CAN_EVENT_TX_DONE, /* our oldest unconfirmed frame is on the bus */
	CAN_EVENT_BUSOFF,  /* the controller went bus-off */
};

struct can_options {
	enum { CAN_SOCKETCAN, CAN_BUS } kind;
	const char *ifname; /* socketcan */
	const char *path;   /* bus: the hub's unix socket */
	bool fd;	    /* CAN FD frames (socketcan: needs an FD-capable MTU) */
	const char *log;    /* candump -L log of all traffic, or NULL */
};

struct can_backend;

/* On failure logs one line naming the interface or socket and returns
 * NULL. */
struct can_backend *can_backend_open(const struct can_options *o);
void can_backend_close(struct can_backend *b);
const char *can_backend_name(const struct can_backend *b);
/* Whether CAN FD frames can be sent and received. */
bool can_backend_fd(const struct can_backend *b);
/* Sends one frame. 0, -EAGAIN (bus busy: retry when rx_fd... or later),
 * or another -errno (frame refused). */
int can_backend_send(struct can_backend *b, const struct can_msg *m);
int can_backend_rx_fd(const struct can_backend *b);
/* Withdraws every frame sent and not confirmed yet, as a controller that
 * stops aborts its pending transmissions: frames the bus has not taken
 * yet never reach it where the backend can stop them (the Vireo CAN bus
 * can; a SocketCAN interface still sends what is in the kernel's queue),
 * and no CAN_EVENT_TX_DONE is reported for any of them. Returns 1 when
 * rx_fd had to be replaced: it keeps its number but has left every epoll
 * set, so a caller watching it adds it again; 0 otherwise. */
int can_backend_cancel(struct can_backend *b);
/* Frames from the bus that were lost before the backend read them (the
 * host kernel's socket queue overflowed); 0 where the backend cannot
 * tell. */
uint64_t can_backend_rx_lost(const struct can_backend *b);
/* 1: *ev (and *m for frames) filled; 0: nothing waiting. */
int can_backend_recv(struct can_backend *b, enum can_event *ev, struct can_msg *m);

/* Checks a frame against CAN's rules: id range, length (0-8 classic,
 * the FD lengths up to 64), RTR only classic. 0 or -1. */
int can_msg_valid(const struct can_msg *m);

#endif
