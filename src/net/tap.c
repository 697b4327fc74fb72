/* tap backend: a kernel tap interface through /dev/net/tun. Frames in both
 * directions carry a 12-byte little-endian virtio_net_hdr_v1
 * (IFF_VNET_HDR), so checksum and segmentation offloads cross the tap
 * untouched: a guest TSO frame of 64 KiB is one writev(), and the host
 * stack hands the guest large unchecksummed frames when the guest said it
 * copes with them. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/net_backend.h"
#include "util/iov.h"
#include "util/log.h"

struct tap {
	struct net_backend base;
	int fd;
	char ifname[IFNAMSIZ];
	unsigned int offloads; /* TUN_F_* in force */
};

static struct tap *to_tap(struct net_backend *b)
{
	return (struct tap *)b;
}

/* The kernel's own rules (dev_valid_name), checked here so a bad name gets
 * a clear message instead of EINVAL; '%' is refused too, because the kernel
 * would treat the name as a pattern and pick a different interface. */
static bool ifname_valid(const char *name)
{
	const char *p;

	if (!*name || strlen(name) >= IFNAMSIZ || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (p = name; *p; p++)
		if (*p == '/' || *p == ':' || *p == '%' || isspace((unsigned char)*p))
			return false;
	return true;
}

static const char *tunsetiff_hint(int err)
{
	switch (err) {
	case EPERM:
		return " (needs CAP_NET_ADMIN or a tap owned by this user)";
	case EBUSY:
		return " (already in use by another program)";
	case EINVAL:
		return " (an existing interface that is not a single-queue tap?)";
	default:
		return "";
	}
}

static ssize_t tap_send(struct net_backend *b, const struct iovec *iov, unsigned int iovcnt)
{
	struct tap *t = to_tap(b);
	ssize_t n;

	do {
		n = writev(t->fd, iov, (int)iovcnt);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

#define TAP_RECV_IOV 64

static ssize_t tap_recv(struct net_backend *b, const struct iovec *iov, unsigned int iovcnt)
{
	struct tap *t = to_tap(b);
	size_t room = iov_size(iov, iovcnt);
	struct iovec v[TAP_RECV_IOV + 1];
	uint8_t scratch;
	ssize_t n;

	/* A frame that does not fit is truncated by tun, and depending on
	 * the kernel read() returns the copied or the full length. One
	 * scratch byte after the caller's buffers tells either way. */
	if (iovcnt > TAP_RECV_IOV)
		iovcnt = TAP_RECV_IOV;
	memcpy(v, iov, iovcnt * sizeof(*v));
	v[iovcnt] = (struct iovec){ &scratch, 1 };
	do {
		n = readv(t->fd, v, (int)iovcnt + 1);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	/* The frame is gone from the queue either way. */
	if ((size_t)n > room)
		return -EMSGSIZE;
	return n;
}

static unsigned int tun_offload_flags(const struct net_offloads *o)
{
	unsigned int f = 0;

	/* Segmentation offloads are only meaningful with partial checksums
	 * (the kernel refuses TSO without TUN_F_CSUM). */
	if (!o->csum)
		return 0;
	f |= TUN_F_CSUM;
	if (o->tso4)
		f |= TUN_F_TSO4;
	if (o->tso6)
		f |= TUN_F_TSO6;
	if (o->ecn && (o->tso4 || o->tso6))
		f |= TUN_F_TSO_ECN;
	if (o->ufo)
		f |= TUN_F_UFO;
	return f;
}

static void tap_set_offloads(struct net_backend *b, const struct net_offloads *o)
{
	struct tap *t = to_tap(b);
	unsigned int f = tun_offload_flags(o);

	if (ioctl(t->fd, TUNSETOFFLOAD, f) == 0) {
		t->offloads = f;
		return;
	}
	/* Some kernels dropped UFO; the rest still helps. */
	if ((f & TUN_F_UFO) && ioctl(t->fd, TUNSETOFFLOAD, f & ~TUN_F_UFO) == 0) {
		t->offloads = f & ~TUN_F_UFO;
		return;
	}
	log_warn("tap interface '%s': cannot set offloads 0x%x: %s", t->ifname, f,
		 strerror(errno));
	/* Without offloads the kernel checksums and segments for the guest,
	 * so falling back to none is always safe. */
	if (ioctl(t->fd, TUNSETOFFLOAD, 0) == 0)
		t->offloads = 0;
}

static void tap_close(struct net_backend *b)
{
	struct tap *t = to_tap(b);

	close(t->fd);
	free(t);
}

/* No save/load: a tap's state is the kernel's, on each host its own. */
static const struct net_backend_ops tap_ops = {
	.kind = "tap",
	.close = tap_close,
	.set_offloads = tap_set_offloads,
	.send = tap_send,
	.recv = tap_recv,
};

struct net_backend *tap_open(const struct net_options *o)
{
	const char *name = o->ifname ? o->ifname : "";
	int hdr_size = (int)sizeof(struct virtio_net_hdr_v1);
	int little_endian = 1;
	struct ifreq ifr;
	struct tap *t;
	int fd, err;

	if (!ifname_valid(name)) {
		log_error("--net tap=%s: invalid interface name (1 to %d characters, no '/', ':', '%%' or spaces)",
			  name, IFNAMSIZ - 1);
		return NULL;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		log_error("--net tap=%s: cannot open /dev/net/tun: %s", name, strerror(errno));
		return NULL;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = errno;
		log_error("tap interface '%s': %s%s", name, strerror(err), tunsetiff_hint(err));
		goto fail;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_size) < 0) {
		log_error("tap interface '%s': cannot use %d-byte virtio-net headers: %s", name,
			  hdr_size, strerror(errno));
		goto fail;
	}
	/* Little-endian headers are what the host uses anyway on x86-64;
	 * saying so keeps that true should a tap ever default otherwise. */
	if (ioctl(fd, TUNSETVNETLE, &little_endian) < 0 && errno != EINVAL)
		log_debug("tap interface '%s': TUNSETVNETLE: %s", name, strerror(errno));
	/* No offloads until the guest accepts some: the kernel then
	 * completes checksums and segments before frames reach us. */
	if (ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		log_error("tap interface '%s': cannot clear offloads: %s", name, strerror(errno));
		goto fail;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		log_error("tap interface '%s': out of memory", name);
		goto fail;
	}
	t->fd = fd;
	snprintf(t->ifname, sizeof(t->ifname), "%s", name);
	t->base.ops = &tap_ops;
	snprintf(t->base.name, sizeof(t->base.name), "tap:%s", name);
	t->base.has_vnet_hdr = true;
	t->base.rx_fd = fd;
	return &t->base;
fail:
	close(fd);
	return NULL;
}
