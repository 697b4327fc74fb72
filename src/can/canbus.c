/* Vireo CAN bus backend: this controller is one member of a bus run by a
 * hub process (`vireo canbus PATH`, canbus_hub.c), reached over the unix
 * SOCK_SEQPACKET socket at PATH. Messages are canbus_proto.h's: frames go
 * to the hub, which hands them to every other member and answers TX_ACK
 * (CAN_EVENT_TX_DONE here); frames and bus-off from the others come back.
 *
 * can_backend_cancel() sends CANCEL: the hub drops the frames it has not
 * taken yet, and the TX_ACKs still to come for frames sent before it are
 * swallowed here, up to the CANCEL's own.
 *
 * rx_fd is the socket itself, so it is writable exactly when a send would
 * not fail with -EAGAIN. Should the hub go away, the controller reports
 * bus-off once and the descriptor number is pointed at an idle eventfd:
 * a closed socket would otherwise stay readable and spin the I/O loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "can/can_backend.h"
#include "can/canbus_proto.h"
#include "util/log.h"

/* How long the hub has to answer the hello. */
#define HELLO_TIMEOUT_S 5

struct canbus_client {
	struct can_backend base;
	int sock;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char what[512];
	atomic_uint next_seq;
	atomic_bool dead;
	/* can_backend_cancel(): the CANCEL's seq; its TX_ACK ends the acks
	 * to ignore (those of frames the hub took before it). */
	uint32_t cancel_seq;
	bool cancelling;  /* acks are for withdrawn frames until cancel_seq's */
	bool cancel_owed; /* the socket was full: the CANCEL goes before the next frame */
};

static struct canbus_client *to_client(struct can_backend *b)
{
	return (struct canbus_client *)b;
}

static void connect_error(const char *what, const char *path, int err)
{
	switch (err) {
	case ENOENT:
	case ECONNREFUSED:
		log_error("%s: no Vireo CAN bus at %s (start one with: vireo canbus %s)", what, path,
			  path);
		break;
	case EPROTOTYPE:
		log_error("%s: %s is a socket of another kind, not a Vireo CAN bus", what, path);
		break;
	case EAGAIN:
		log_error("%s: the Vireo CAN bus at %s takes no more connections (busy?)", what, path);
		break;
	case ENOTDIR:
		log_error("%s: no Vireo CAN bus at %s (a directory on the way is not a directory)",
			  what, path);
		break;
	default:
		log_error("%s: cannot connect to %s: %s", what, path, strerror(err));
		break;
	}
}

int canbus_connect(const char *path, const char *what, uint8_t hello_flags, const char *member)
{
	struct timeval tv = { .tv_sec = HELLO_TIMEOUT_S };
	uint8_t buf[CANBUS_MSG_SIZE + 1];
	struct canbus_pkt p;
	struct sockaddr_un sa;
	size_t name_len;
	int send_err = 0;
	ssize_t n;
	int fd;

	if (!*path) {
		log_error("%s: empty socket path", what);
		return -1;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("%s: socket path too long (at most %zu bytes)", what,
			  sizeof(sa.sun_path) - 1);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("%s: cannot create a unix socket: %s", what, strerror(errno));
		return -1;
	}
	/* A hub answers at once; one that does not is not a hub. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		log_error("%s: cannot set socket timeouts: %s", what, strerror(errno));
		goto fail;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		connect_error(what, path, errno);
		goto fail;
	}
	memset(&p, 0, sizeof(p));
	p.version = CANBUS_VERSION;
	p.type = CANBUS_HELLO;
	p.msg.flags = hello_flags;
	name_len = strlen(member);
	p.msg.len = (uint8_t)(name_len < CANFD_MAX_DLEN ? name_len : CANFD_MAX_DLEN);
	memcpy(p.msg.data, member, p.msg.len);
	canbus_encode(buf, &p);
	if (send(fd, buf, CANBUS_MSG_SIZE, MSG_NOSIGNAL) != CANBUS_MSG_SIZE) {
		send_err = errno;
		/* A full hub answers before the hello and hangs up: its
		 * answer says more than EPIPE. */
		if (send_err != EPIPE && send_err != ECONNRESET) {
			log_error("%s: cannot greet the Vireo CAN bus at %s: %s", what, path,
				  strerror(send_err));
			goto fail;
		}
	}
	/* ECONNRESET is reported once, ahead of what the hub sent before
	 * hanging up (a full hub does that): read on. */
	do {
		n = recv(fd, buf, sizeof(buf), MSG_TRUNC | (send_err ? MSG_DONTWAIT : 0));
	} while (n < 0 && (errno == EINTR || errno == ECONNRESET));
	if (send_err && n <= 0) {
		log_error("%s: cannot greet the Vireo CAN bus at %s: %s", what, path,
			  strerror(send_err));
		goto fail;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			log_error("%s: the program listening at %s does not answer like a Vireo CAN bus",
				  what, path);
		else
			log_error("%s: no answer from the Vireo CAN bus at %s: %s", what, path,
				  strerror(errno));
		goto fail;
	}
	if (n == 0) {
		log_error("%s: the program listening at %s closed the connection (not a Vireo CAN bus?)",
			  what, path);
		goto fail;
	}
	if (canbus_decode(buf, (size_t)n, &p) < 0 || p.type != CANBUS_HELLO) {
		log_error("%s: %s answers, but not like a Vireo CAN bus", what, path);
		goto fail;
	}
	if (p.msg.flags & CANBUS_HELLO_FULL) {
		log_error("%s: the Vireo CAN bus at %s has no room for another member", what, path);
		goto fail;
	}
	if (p.version != CANBUS_VERSION) {
		log_error("%s: the Vireo CAN bus at %s speaks protocol version %u, this Vireo version %u",
			  what, path, p.version, CANBUS_VERSION);
		goto fail;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		log_error("%s: cannot make the socket non-blocking: %s", what, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static int send_pkt(struct canbus_client *c, const struct canbus_pkt *p)
{
	uint8_t buf[CANBUS_MSG_SIZE];
	ssize_t n;

	canbus_encode(buf, p);
	do {
		n = send(c->sock, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? -EAGAIN : -errno;
	return n == CANBUS_MSG_SIZE ? 0 : -EIO;
}

static int send_cancel(struct canbus_client *c)
{
	struct canbus_pkt p;
	int r;

	memset(&p, 0, sizeof(p));
	p.version = CANBUS_VERSION;
	p.type = CANBUS_CANCEL;
	p.seq = c->cancel_seq;
	r = send_pkt(c, &p);
	if (r != -EAGAIN)
		c->cancel_owed = false; /* sent, or the hub is gone */
	return r;
}

static int canbus_send(struct can_backend *b, const struct can_msg *m)
{
	struct canbus_client *c = to_client(b);
	struct canbus_pkt p;
	int r;

	if (atomic_load(&c->dead))
		return -ENOTCONN;
	if (c->cancel_owed && (r = send_cancel(c)) < 0)
		return r;
	memset(&p, 0, sizeof(p));
	p.version = CANBUS_VERSION;
	p.type = CANBUS_FRAME;
	p.seq = atomic_fetch_add(&c->next_seq, 1);
	p.msg = *m;
	return send_pkt(c, &p);
}

static int canbus_cancel(struct can_backend *b)
{
	struct canbus_client *c = to_client(b);

	if (atomic_load(&c->dead))
		return 0;
	c->cancel_seq = atomic_fetch_add(&c->next_seq, 1);
	c->cancelling = true;
	c->cancel_owed = true;
	/* With the socket full the frames in it cannot be withdrawn: they
	 * go out once the hub reads them, unless the CANCEL gets in first
	 * (it is sent before the next frame). */
	if (send_cancel(c) == -EAGAIN)
		log_debug("%s: socket full, the cancel waits", c->what);
	return 0;
}

/* The hub is gone: bus-off, and a quiet descriptor from now on. */
static void hub_gone(struct canbus_client *c)
{
	int quiet;

	log_warn("%s: the Vireo CAN bus hub went away; the controller is bus-off", c->what);
	atomic_store(&c->dead, true);
	quiet = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (quiet >= 0) {
		/* Also drops the socket from any epoll set watching it. */
		if (dup3(quiet, c->sock, O_CLOEXEC) < 0)
			log_debug("%s: dup3: %s", c->what, strerror(errno));
		close(quiet);
	} else {
		shutdown(c->sock, SHUT_RDWR);
	}
}

static int canbus_recv(struct can_backend *b, enum can_event *ev, struct can_msg *m)
{
	struct canbus_client *c = to_client(b);
	uint8_t buf[CANBUS_MSG_SIZE + 1];
	struct canbus_pkt p;

	while (!atomic_load(&c->dead)) {
		ssize_t n = recv(c->sock, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0) {
			/* ECONNRESET comes once, before the messages the hub
			 * sent before it went; the end is n == 0. */
			if (errno == EINTR || errno == ECONNRESET)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_debug("%s: receive: %s", c->what, strerror(errno));
			return 0;
		}
		if (n == 0) {
			hub_gone(c);
			*ev = CAN_EVENT_BUSOFF;
			return 1;
		}
		if (canbus_decode(buf, (size_t)n, &p) < 0) {
			log_debug("%s: ignoring a malformed message from the hub", c->what);
			continue;
		}
		switch (p.type) {
		case CANBUS_FRAME:
			if ((p.msg.flags & CAN_MSG_FD) && !b->fd)
				continue;
			*m = p.msg;
			*ev = CAN_EVENT_FRAME;
			return 1;
		case CANBUS_TX_ACK:
			if (c->cancelling) {
				/* A withdrawn frame's, or the CANCEL's own. */
				if (p.seq == c->cancel_seq && !c->cancel_owed)
					c->cancelling = false;
				continue;
			}
			*ev = CAN_EVENT_TX_DONE;
			return 1;
		case CANBUS_BUSOFF:
			*ev = CAN_EVENT_BUSOFF;
			return 1;
		default:
			continue;
		}
	}
	return 0;
}

static void canbus_close(struct can_backend *b)
{
	struct canbus_client *c = to_client(b);

	close(c->sock);
	free(c);
}

static const struct can_backend_ops canbus_ops = {
	.close = canbus_close,
	.send = canbus_send,
	.recv = canbus_recv,
	.cancel = canbus_cancel,
};

struct can_backend *canbus_open(const struct can_options *o, const char *what)
{
	const char *path = o->path ? o->path : "";
	const char *base;
	struct canbus_client *c;
	char member[64];
	size_t i;
	int fd;

	snprintf(member, sizeof(member), "vireo[%d]", (int)getpid());
	fd = canbus_connect(path, what, o->fd ? CANBUS_HELLO_FD : 0, member);
	if (fd < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		log_error("%s: out of memory", what);
		close(fd);
		return NULL;
	}
	c->sock = fd;
	snprintf(c->path, sizeof(c->path), "%s", path);
	snprintf(c->what, sizeof(c->what), "%s", what);
	atomic_init(&c->next_seq, 0);
	atomic_init(&c->dead, false);
	c->base.ops = &canbus_ops;
	snprintf(c->base.name, sizeof(c->base.name), "bus:%s", path);
	/* The log names the bus after the socket file: /run/can/body -> body. */
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	snprintf(c->base.log_ifname, sizeof(c->base.log_ifname), "%s", *base ? base : "canbus");
	for (i = 0; c->base.log_ifname[i]; i++)
		if (c->base.log_ifname[i] == ' ')
			c->base.log_ifname[i] = '_';
	c->base.fd = o->fd;
	c->base.rx_fd = fd;
	return &c->base;
}
