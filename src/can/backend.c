/* Backend dispatch: the public can_backend_* functions are thin wrappers
 * around the ops of whichever backend can_backend_open() chose, plus the
 * candump log that any backend can keep. */
#include "can/can.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "can/can_backend.h"
#include "can/candump_log.h"

struct can_backend *can_backend_open(const struct can_options *o)
{
	char what[512], what_log[1024];
	struct can_backend *b = NULL;

	switch (o->kind) {
	case CAN_SOCKETCAN:
		snprintf(what, sizeof(what), "--can socketcan=%s", o->ifname ? o->ifname : "");
		b = socketcan_open(o, what);
		break;
	case CAN_BUS:
		snprintf(what, sizeof(what), "--can bus=%s", o->path ? o->path : "");
		b = canbus_open(o, what);
		break;
	}
	if (!b || !o->log)
		return b;
	snprintf(what_log, sizeof(what_log), "%s,log=%s", what, o->log);
	b->log = candump_log_open(o->log, b->log_ifname, what_log);
	if (!b->log) {
		b->ops->close(b);
		return NULL;
	}
	return b;
}

void can_backend_close(struct can_backend *b)
{
	if (!b)
		return;
	candump_log_close(b->log);
	b->log = NULL;
	b->ops->close(b);
}

const char *can_backend_name(const struct can_backend *b)
{
	return b->name;
}

bool can_backend_fd(const struct can_backend *b)
{
	return b->fd;
}

int can_backend_send(struct can_backend *b, const struct can_msg *m)
{
	int r;

	if (can_msg_valid(m) < 0)
		return -EINVAL;
	if ((m->flags & CAN_MSG_FD) && !b->fd)
		return -EOPNOTSUPP;
	r = b->ops->send(b, m);
	if (r == 0 && b->log)
		candump_log_frame(b->log, m);
	return r;
}

int can_backend_rx_fd(const struct can_backend *b)
{
	return b->rx_fd;
}

uint64_t can_backend_rx_lost(const struct can_backend *b)
{
	return b->rx_lost;
}

int can_backend_cancel(struct can_backend *b)
{
	return b->ops->cancel(b);
}

int can_backend_recv(struct can_backend *b, enum can_event *ev, struct can_msg *m)
{
	int r = b->ops->recv(b, ev, m);

	if (r > 0 && *ev == CAN_EVENT_FRAME && b->log)
		candump_log_frame(b->log, m);
	return r;
}
