/* The virtio-net header (VirtIO 1.2, 5.1.6) between a guest's buffers and
 * a backend: pure functions over iovecs, so they can be tested and fuzzed
 * without a virtqueue, and shared by any device model that talks to a tap.
 *
 * Transmit: a guest chain is [header][frame...] in any layout; the header
 * is copied out once (the guest may change its memory at any time) and
 * the backend gets our copy followed by the frame's pieces in place.
 * Receive: a frame is [header][frame] scattered over one receive chain,
 * or several with mergeable buffers (num_buffers in the first header). */
#ifndef VIREO_NET_VNET_HDR_H
#define VIREO_NET_VNET_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "net/net.h"

#define VNET_HDR_LEN 12	       /* VERSION_1 or MRG_RXBUF: with num_buffers */
#define VNET_HDR_LEGACY_LEN 10 /* neither: without */
#define VNET_NUM_BUFFERS_OFF 10
#define ETH_HDR_LEN 14

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80

/* Builds what a backend is sent for one transmit chain's device-readable
 * buffers out[0..out_num): guest_hdr_len header bytes are copied into
 * *hdr (num_buffers zeroed), and iov[] gets &hdr first when backend_hdr,
 * then the frame's pieces. iov must have room for out_num + 1 entries.
 * Returns the number of iov entries, or:
 *   -EINVAL      fewer bytes than a header;
 *   -EMSGSIZE    a frame shorter than an Ethernet header or longer than
 *                NET_MAX_FRAME;
 *   -EOPNOTSUPP  checksum or segmentation asked of a backend without
 *                headers (we never offered them then). */
int vnet_tx_prepare(const struct iovec *out, unsigned int out_num, size_t guest_hdr_len,
		    bool backend_hdr, struct virtio_net_hdr_v1 *hdr, struct iovec *iov);

/* Makes a backend's receive header fit what the guest accepted: false if
 * the frame needs an offload the guest cannot take (drop it). */
bool vnet_rx_fixup_hdr(struct virtio_net_hdr_v1 *hdr, const struct net_offloads *accepted);

/* One received frame being scattered into receive chains. */
struct vnet_rx {
	struct iovec src[2]; /* the header as the guest sees it, the frame */
	size_t total;	     /* bytes of both */
	size_t done;	     /* bytes written so far */
	unsigned int nbufs;  /* chains filled so far */
};

void vnet_rx_begin(struct vnet_rx *r, const void *hdr, size_t hdr_len, const void *frame,
		   size_t frame_len);
/* Copies the next bytes into one chain's device-writable buffers (as much
 * as fits) and returns how many: the chain's used length. */
size_t vnet_rx_fill(struct vnet_rx *r, const struct iovec *in, unsigned int in_num);
static inline bool vnet_rx_complete(const struct vnet_rx *r)
{
	return r->done == r->total;
}
/* Stores num_buffers (little-endian) in the header at the start of the
 * first chain's writable buffers. */
void vnet_rx_set_num_buffers(const struct iovec *in, unsigned int in_num, uint16_t num);

#endif
