/* Inside the CAN backends: what backend.c dispatches through. Each kind
 * (socketcan.c, canbus.c) embeds struct can_backend first in its own
 * state and fills the ops; device models only ever see can.h. */
#ifndef VIREO_CAN_CAN_BACKEND_H
#define VIREO_CAN_CAN_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "can/can.h"

struct candump_log;

struct can_backend_ops {
	void (*close)(struct can_backend *b);
	/* Only ever given frames that passed can_msg_valid() and that the
	 * backend's FD setting allows. */
	int (*send)(struct can_backend *b, const struct can_msg *m);
	int (*recv)(struct can_backend *b, enum can_event *ev, struct can_msg *m);
	int (*cancel)(struct can_backend *b); /* see can_backend_cancel() */
};

struct can_backend {
	const struct can_backend_ops *ops;
	char name[128];		 /* "socketcan:IFNAME" or "bus:PATH" */
	char log_ifname[64];	 /* the interface name in the candump log */
	bool fd;		 /* CAN FD frames pass */
	int rx_fd;		 /* readable while events wait; writable when send can take more */
	struct candump_log *log; /* NULL: no log */
	uint64_t rx_lost;	 /* frames lost before the backend could read them */
};

/* what: how error messages name the backend ("--can socketcan=vcan0"). */
struct can_backend *socketcan_open(const struct can_options *o, const char *what);
struct can_backend *canbus_open(const struct can_options *o, const char *what);

/* Connects to the hub at path and exchanges hellos (canbus_proto.h);
 * hello_flags are CANBUS_HELLO_*, member is the name the hub logs. Returns
 * the connected, non-blocking socket, or -1 after logging one line that
 * starts with what. */
int canbus_connect(const char *path, const char *what, uint8_t hello_flags, const char *member);

#endif
