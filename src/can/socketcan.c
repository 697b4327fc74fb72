/* SocketCAN backend: a CAN_RAW socket bound to a host CAN interface (a
 * real controller, or vcan for tests).
 *
 * The socket receives its own frames back (CAN_RAW_RECV_OWN_MSGS), which
 * the kernel marks with MSG_CONFIRM once the interface has sent them: each
 * becomes CAN_EVENT_TX_DONE, in send order, and is never reported as a
 * frame. Error frames are filtered down to bus-off (CAN_RAW_ERR_FILTER),
 * which becomes CAN_EVENT_BUSOFF; on vcan, where no controller reports
 * errors, any raw socket can inject one by sending a frame with id
 * CAN_ERR_FLAG | CAN_ERR_BUSOFF (`cansend vcan0 20000040#0000000000000000`). */
#include <errno.h>
#include <fcntl.h>
#include <linux/can.h>
#include <linux/can/error.h>
#include <linux/can/raw.h>
#include <net/if_arp.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "can/can_backend.h"
#include "util/log.h"

/* Receive buffer bytes (a frame costs about 1 KiB of it). */
#define RCVBUF (4 << 20)

struct socketcan {
	struct can_backend base;
	int fd;
	char ifname[IFNAMSIZ];
	char what[128];
	unsigned int unconfirmed; /* frames sent, not echoed back yet */
	unsigned int to_ignore;	  /* echoes of withdrawn frames still to come */
	uint32_t drops_seen;	  /* the socket's SO_RXQ_OVFL count so far */
};

static struct socketcan *to_socketcan(struct can_backend *b)
{
	return (struct socketcan *)b;
}

/* The kernel's rules for interface names (dev_valid_name), checked here so
 * a bad name gets a clear message; '%' is refused as well. */
static bool ifname_valid(const char *name)
{
	const char *p;

	if (!*name || strlen(name) >= IFNAMSIZ || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (p = name; *p; p++)
		if (*p == '/' || *p == ':' || *p == '%' || *p == ' ' || (*p >= '\t' && *p <= '\r'))
			return false;
	return true;
}

static const char *link_type_name(unsigned int type)
{
	switch (type) {
	case ARPHRD_ETHER:
		return "Ethernet";
	case ARPHRD_LOOPBACK:
		return "loopback";
	case ARPHRD_NONE:
		return "no link layer (tun?)";
	case ARPHRD_IEEE80211:
		return "wireless";
	default:
		return NULL;
	}
}

/* A frame length on the wire: FD frames only have certain lengths, and a
 * controller pads a frame to the next one (what the kernel's
 * can_fd_len2dlc does). */
static unsigned int fd_wire_len(unsigned int len)
{
	static const uint8_t lens[] = { 12, 16, 20, 24, 32, 48, 64 };
	unsigned int i;

	if (len <= 8)
		return len;
	for (i = 0; i < sizeof(lens); i++)
		if (len <= lens[i])
			return lens[i];
	return CANFD_MAX_DLEN;
}

static int socketcan_send(struct can_backend *b, const struct can_msg *m)
{
	struct socketcan *s = to_socketcan(b);
	struct canfd_frame f;
	size_t size;
	ssize_t n;

	memset(&f, 0, sizeof(f));
	f.can_id = m->id;
	if (m->flags & CAN_MSG_EXT)
		f.can_id |= CAN_EFF_FLAG;
	f.len = m->len;
	if (m->flags & CAN_MSG_FD) {
		f.flags = CANFD_FDF;
		if (m->flags & CAN_MSG_BRS)
			f.flags |= CANFD_BRS;
		if (m->flags & CAN_MSG_ESI)
			f.flags |= CANFD_ESI;
		memcpy(f.data, m->data, m->len);
		size = CANFD_MTU;
	} else {
		/* struct can_frame is struct canfd_frame's first 16 bytes:
		 * can_id, len (can_dlc), padding, res0, len8_dlc, data[8]. */
		if (m->flags & CAN_MSG_RTR)
			f.can_id |= CAN_RTR_FLAG;
		else
			memcpy(f.data, m->data, m->len);
		size = CAN_MTU;
	}
	do {
		n = write(s->fd, &f, size);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) ? -EAGAIN : -errno;
	if ((size_t)n != size)
		return -EIO;
	s->unconfirmed++;
	return 0;
}

/* Turns a frame from the socket into *m; false for frames a controller
 * could not have received (they are dropped). */
static bool frame_to_msg(const struct canfd_frame *f, bool fd_frame, struct can_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (f->can_id & CAN_EFF_FLAG) {
		m->flags |= CAN_MSG_EXT;
		m->id = f->can_id & CAN_EFF_MASK;
	} else {
		m->id = f->can_id & CAN_SFF_MASK;
	}
	if (fd_frame) {
		if (f->can_id & CAN_RTR_FLAG || f->len > CANFD_MAX_DLEN)
			return false;
		m->flags |= CAN_MSG_FD;
		if (f->flags & CANFD_BRS)
			m->flags |= CAN_MSG_BRS;
		if (f->flags & CANFD_ESI)
			m->flags |= CAN_MSG_ESI;
		/* The padding bytes stay zero. */
		memcpy(m->data, f->data, f->len);
		m->len = (uint8_t)fd_wire_len(f->len);
		return true;
	}
	if (f->len > CAN_MAX_DLEN)
		return false;
	m->len = f->len;
	if (f->can_id & CAN_RTR_FLAG)
		m->flags |= CAN_MSG_RTR; /* len: the requested length */
	else
		memcpy(m->data, f->data, f->len);
	return true;
}

/* SO_RXQ_OVFL: each message carries the socket's count of frames the
 * kernel dropped because its receive queue was full. */
static void note_drops(struct socketcan *s, struct msghdr *mh)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		uint32_t drops;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL ||
		    c->cmsg_len < CMSG_LEN(sizeof(drops)))
			continue;
		memcpy(&drops, CMSG_DATA(c), sizeof(drops));
		/* The counter is the socket's: a renewed socket starts at 0. */
		if (drops > s->drops_seen) {
			s->base.rx_lost += drops - s->drops_seen;
			s->drops_seen = drops;
		}
	}
}

static int socketcan_recv(struct can_backend *b, enum can_event *ev, struct can_msg *m)
{
	struct socketcan *s = to_socketcan(b);
	struct canfd_frame f;

	for (;;) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(uint32_t))];
		} ctl;
		struct iovec iov = { &f, sizeof(f) };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = &ctl,
				     .msg_controllen = sizeof(ctl) };
		ssize_t n = recvmsg(s->fd, &mh, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				/* ENETDOWN, ENODEV...: reported once by the
				 * socket; frames may come again later. */
				log_debug("%s: receive: %s", b->name, strerror(errno));
			return 0;
		}
		note_drops(s, &mh);
		if ((size_t)n != CAN_MTU && (size_t)n != CANFD_MTU)
			continue;
		if (mh.msg_flags & MSG_CONFIRM) {
			/* One of ours, now on the bus. */
			if (s->unconfirmed)
				s->unconfirmed--;
			if (s->to_ignore) {
				s->to_ignore--;
				continue;
			}
			*ev = CAN_EVENT_TX_DONE;
			return 1;
		}
		if (f.can_id & CAN_ERR_FLAG) {
			if (!((f.can_id & CAN_ERR_MASK) & CAN_ERR_BUSOFF))
				continue;
			*ev = CAN_EVENT_BUSOFF;
			return 1;
		}
		if (!frame_to_msg(&f, (size_t)n == CANFD_MTU, m))
			continue;
		*ev = CAN_EVENT_FRAME;
		return 1;
	}
}

static void socketcan_close(struct can_backend *b)
{
	struct socketcan *s = to_socketcan(b);

	close(s->fd);
	free(s);
}


static int set_opt(int fd, int opt, const void *val, socklen_t len, const char *what,
		   const char *optname)
{
	if (setsockopt(fd, SOL_CAN_RAW, opt, val, len) == 0)
		return 0;
	log_error("%s: cannot set %s on the CAN_RAW socket: %s", what, optname, strerror(errno));
	return -1;
}

/* Whether this kernel has CAN_RAW sockets at all (for hints). */
static bool kernel_has_can(void)
{
	int fd = socket(PF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* The interface checks, made on a unix socket (interface ioctls work on
 * any socket), so they give their own answer even without CAN support.
 * Fills *mtu. 0, or -1 after logging. */
static int check_interface(const char *what, const char *name, int *mtu)
{
	struct ifreq ifr;
	const char *type;
	int ctl, r = -1;

	if (!if_nametoindex(name)) {
		if (errno == ENODEV || errno == ENXIO)
			log_error("%s: no network interface named %s%s", what, name,
				  kernel_has_can() ? "" : " (and this kernel has no SocketCAN support)");
		else
			log_error("%s: cannot look up interface %s: %s", what, name, strerror(errno));
		return -1;
	}
	ctl = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ctl < 0) {
		log_error("%s: cannot create a socket: %s", what, strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(ctl, SIOCGIFHWADDR, &ifr) < 0) {
		log_error("%s: cannot read the link type of %s: %s", what, name, strerror(errno));
		goto out;
	}
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_CAN) {
		type = link_type_name(ifr.ifr_hwaddr.sa_family);
		if (type)
			log_error("%s: %s is not a CAN interface (it is %s)", what, name, type);
		else
			log_error("%s: %s is not a CAN interface (link type %u)", what, name,
				  ifr.ifr_hwaddr.sa_family);
		goto out;
	}
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(ctl, SIOCGIFMTU, &ifr) < 0) {
		log_error("%s: cannot read the MTU of %s: %s", what, name, strerror(errno));
		goto out;
	}
	*mtu = ifr.ifr_mtu;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(ctl, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP))
		log_warn("%s: %s is down; frames pass once it is up (ip link set %s up)", what, name,
			 name);
	r = 0;
out:
	close(ctl);
	return r;
}

/* A non-blocking CAN_RAW socket bound to the interface, set up as the
 * backend needs it. -1 after logging one line that starts with what. */
static int open_raw(const char *what, const char *name, bool fd_frames)
{
	can_err_mask_t err_mask = CAN_ERR_BUSOFF;
	struct sockaddr_can addr;
	int fd, one = 1;

	fd = socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
	if (fd < 0) {
		if (errno == EAFNOSUPPORT)
			log_error("%s: this kernel has no SocketCAN support (socket(PF_CAN): %s; modprobe can)",
				  what, strerror(errno));
		else if (errno == EPROTONOSUPPORT)
			log_error("%s: this kernel has no CAN_RAW sockets (modprobe can_raw)", what);
		else
			log_error("%s: cannot create a CAN_RAW socket: %s", what, strerror(errno));
		return -1;
	}
	if ((fd_frames &&
	     set_opt(fd, CAN_RAW_FD_FRAMES, &one, sizeof(one), what, "CAN_RAW_FD_FRAMES") < 0) ||
	    set_opt(fd, CAN_RAW_RECV_OWN_MSGS, &one, sizeof(one), what, "CAN_RAW_RECV_OWN_MSGS") <
		    0 ||
	    set_opt(fd, CAN_RAW_ERR_FILTER, &err_mask, sizeof(err_mask), what,
		    "CAN_RAW_ERR_FILTER") < 0)
		goto fail;
	/* A frame stays charged to the socket until the interface has sent
	 * it, so a small send buffer acts like a controller's TX FIFO:
	 * write() says EAGAIN while it is full and poll() says POLLOUT when
	 * frames have gone out. With the default (large) buffer the
	 * interface queue overflows first, with ENOBUFS, which nothing can
	 * wait for. The kernel doubles this: about ten frames in flight. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){ 4096 }, sizeof(int)) < 0)
		log_debug("%s: SO_SNDBUF: %s", what, strerror(errno));
	/* Frames from the bus wait here while the guest has no RX buffers
	 * (its driver refills them in batches, and a busy host may not run
	 * the guest for a while): room for about a second of a busy 500
	 * kbit/s bus rather than the default's ~0.1 s. Over rmem_max only
	 * with CAP_NET_ADMIN. What still overflows is counted. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){ RCVBUF }, sizeof(int)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ RCVBUF }, sizeof(int)) < 0)
		log_debug("%s: SO_RCVBUF: %s", what, strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) < 0)
		log_debug("%s: SO_RXQ_OVFL: %s", what, strerror(errno));
	memset(&addr, 0, sizeof(addr));
	addr.can_family = AF_CAN;
	addr.can_ifindex = (int)if_nametoindex(name);
	if (!addr.can_ifindex || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		log_error("%s: cannot bind a CAN_RAW socket to %s: %s", what, name, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* Frames in the kernel's queue cannot be taken back, but their echoes
 * can be kept from being taken for later frames' confirmations: a new
 * socket never gets them. (Counting them off instead would go wrong for
 * frames the interface drops without an echo, when it goes down.) */
static int socketcan_cancel(struct can_backend *b)
{
	struct socketcan *s = to_socketcan(b);
	int fd;

	if (!s->unconfirmed)
		return 0;
	fd = open_raw(s->what, s->ifname, b->fd);
	if (fd < 0 || dup3(fd, s->fd, O_CLOEXEC) < 0) {
		log_warn("%s: cannot renew the CAN_RAW socket; counting off %u echoes instead",
			 s->what, s->unconfirmed);
		if (fd >= 0)
			close(fd);
		s->to_ignore = s->unconfirmed;
		return 0;
	}
	close(fd);
	s->unconfirmed = 0;
	s->to_ignore = 0;
	s->drops_seen = 0;
	return 1;
}

static const struct can_backend_ops socketcan_ops = {
	.close = socketcan_close,
	.send = socketcan_send,
	.recv = socketcan_recv,
	.cancel = socketcan_cancel,
};

struct can_backend *socketcan_open(const struct can_options *o, const char *what)
{
	const char *name = o->ifname ? o->ifname : "";
	struct socketcan *s;
	int fd, mtu = 0;

	if (!ifname_valid(name)) {
		log_error("%s: invalid interface name (1 to %d characters, no '/', ':', '%%' or spaces)",
			  what, IFNAMSIZ - 1);
		return NULL;
	}
	if (check_interface(what, name, &mtu) < 0)
		return NULL;
	/* CANFD_MTU, or a CAN XL MTU (XL interfaces carry FD frames too). */
	if (o->fd && mtu < (int)CANFD_MTU) {
		log_error("%s,fd=on: %s is not CAN FD capable (MTU %d; CAN FD needs %zu: ip link set %s mtu %zu)",
			  what, name, mtu, CANFD_MTU, name, CANFD_MTU);
		return NULL;
	}
	fd = open_raw(what, name, o->fd);
	if (fd < 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		log_error("%s: out of memory", what);
		close(fd);
		return NULL;
	}
	s->fd = fd;
	snprintf(s->ifname, sizeof(s->ifname), "%s", name);
	snprintf(s->what, sizeof(s->what), "%s", what);
	s->base.ops = &socketcan_ops;
	snprintf(s->base.name, sizeof(s->base.name), "socketcan:%s", name);
	snprintf(s->base.log_ifname, sizeof(s->base.log_ifname), "%s", name);
	s->base.fd = o->fd;
	s->base.rx_fd = fd;
	return &s->base;
}
