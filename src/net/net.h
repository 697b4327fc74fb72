/* Network backends: where a virtio-net (or e1000) device model sends the
 * guest's Ethernet frames and gets frames for the guest. Two kinds: a tap
 * interface (the frames carry a virtio_net_hdr_v1 when the backend says
 * has_vnet_hdr, so checksum and segmentation offloads pass through) and
 * user-mode networking on libslirp (plain frames).
 *
 * Receive is pull-based: the device polls rx_fd in its I/O thread and,
 * when it is readable and the guest has buffers, calls net_recv() until it
 * returns -EAGAIN. Send never blocks: -EAGAIN means "drop or retry later". */
#ifndef VIREO_NET_NET_H
#define VIREO_NET_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "util/error.h"
#include "util/state.h"

/* The virtio 1.x net header (VirtIO 1.2, 5.1.6), which tap's
 * IFF_VNET_HDR uses too when the tap is set to little-endian v1 size. */
struct virtio_net_hdr_v1 {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};

/* Largest Ethernet frame a backend passes, without the virtio header: a
 * 64 KiB GSO packet behind an Ethernet header and a VLAN tag. */
#define NET_MAX_FRAME (65536 + 14 + 4)

/* Offloads the guest accepted on receive (what the backend may give it). */
struct net_offloads {
	bool csum, tso4, tso6, ecn, ufo;
};

struct net_options {
	enum { NET_TAP, NET_USER } kind;
	const char *ifname;	   /* tap */
	/* user: up to 8 "tcp:HOSTPORT-:GUESTPORT" (also with a host address,
	 * tcp:127.0.0.1:HOSTPORT-:GUESTPORT, and udp:) */
	const char *hostfwd[8];
	unsigned int nhostfwd;
	/* user: the guest reaches only the virtual network's own services
	 * (DHCP, ARP, hostfwd connections), never the host or the outside;
	 * QEMU's restrict=on. */
	bool restricted;
};

struct net_backend;

/* On failure logs one line naming the interface/option and returns NULL. */
struct net_backend *net_open(const struct net_options *o);
void net_close(struct net_backend *b);
const char *net_backend_name(const struct net_backend *b);
/* Whether frames in both directions start with a virtio_net_hdr_v1. */
bool net_has_vnet_hdr(const struct net_backend *b);
/* Which receive offloads the backend can use (tap: all; user: none). */
void net_set_offloads(struct net_backend *b, const struct net_offloads *o);
/* Sends one frame (with header when has_vnet_hdr). Bytes, or -errno. */
ssize_t net_send(struct net_backend *b, const struct iovec *iov, unsigned int iovcnt);
int net_rx_fd(const struct net_backend *b);
/* Receives one frame into iov (with header when has_vnet_hdr); bytes, or
 * -EAGAIN when none is waiting. A frame larger than iov is dropped
 * (returns -EMSGSIZE) so the queue never stalls on it. */
ssize_t net_recv(struct net_backend *b, const struct iovec *iov, unsigned int iovcnt);

/* Sends a RARP request (RFC 903) for mac to the broadcast address, as
 * QEMU does for each NIC after a migration, so switches learn where the
 * MAC is now; with a virtio-net header saying "no offload" when the
 * backend has headers. 0, or -errno. */
int net_announce(struct net_backend *b, const uint8_t mac[6]);

/* The backend's own state, for snapshots and migration, appended to w:
 * its kind, then what that kind keeps (tap: nothing; user: libslirp's
 * DHCP leases, IP id counter and guestfwd sockets, not the guest's NAT'ed
 * connections). */
void net_backend_save(struct net_backend *b, struct state_writer *w);
/* Whether rec (len bytes, what net_backend_save wrote) is of this
 * backend's kind: -1 with err saying both kinds when it is not. A
 * record too short to say is refused as truncated. */
int net_backend_check(const struct net_backend *b, const void *rec, size_t len,
		      struct error *err);
/* Loads rec (exactly what net_backend_save wrote) into b, a backend of
 * the same kind; -1 (err set, one line), the backend unchanged, when it
 * is not one (another kind, truncated, trailing bytes, a state the
 * backend cannot take). */
int net_backend_load(struct net_backend *b, const void *rec, size_t len, struct error *err);

#endif
