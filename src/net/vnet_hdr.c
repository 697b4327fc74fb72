#include "net/vnet_hdr.h"

#include <errno.h>
#include <string.h>

#include "util/iov.h"

int vnet_tx_prepare(const struct iovec *out, unsigned int out_num, size_t guest_hdr_len,
		    bool backend_hdr, struct virtio_net_hdr_v1 *hdr, struct iovec *iov)
{
	size_t skip = guest_hdr_len, frame_len = 0;
	unsigned int i, n = 0;

	memset(hdr, 0, sizeof(*hdr));
	if (guest_hdr_len > sizeof(*hdr) ||
	    iov_to_buf(out, out_num, 0, hdr, guest_hdr_len) < guest_hdr_len)
		return -EINVAL;
	/* Receive-side only; transmit headers carry zero. */
	hdr->num_buffers = 0;
	if (!backend_hdr && (hdr->flags || hdr->gso_type != VIRTIO_NET_HDR_GSO_NONE))
		return -EOPNOTSUPP;
	if (backend_hdr)
		iov[n++] = (struct iovec){ hdr, sizeof(*hdr) };
	for (i = 0; i < out_num; i++) {
		size_t len = out[i].iov_len;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		iov[n++] = (struct iovec){ (uint8_t *)out[i].iov_base + skip, len - skip };
		if (len - skip > NET_MAX_FRAME - frame_len)
			return -EMSGSIZE;
		frame_len += len - skip;
		skip = 0;
	}
	if (frame_len < ETH_HDR_LEN)
		return -EMSGSIZE;
	return (int)n;
}

bool vnet_rx_fixup_hdr(struct virtio_net_hdr_v1 *hdr, const struct net_offloads *accepted)
{
	uint8_t gso = hdr->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

	hdr->num_buffers = 0;
	if (!accepted->csum) {
		/* A partial checksum the guest cannot complete; otherwise the
		 * frame is whole, and flags must be zero (5.1.6.4.1). */
		if (hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			return false;
		hdr->flags = 0;
	}
	hdr->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
	if ((hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !accepted->ecn)
		return false;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return !(hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN);
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return accepted->tso4;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return accepted->tso6;
	case VIRTIO_NET_HDR_GSO_UDP:
		return accepted->ufo;
	default:
		return false;
	}
}

void vnet_rx_begin(struct vnet_rx *r, const void *hdr, size_t hdr_len, const void *frame,
		   size_t frame_len)
{
	r->src[0] = (struct iovec){ (void *)hdr, hdr_len };
	r->src[1] = (struct iovec){ (void *)frame, frame_len };
	r->total = hdr_len + frame_len;
	r->done = 0;
	r->nbufs = 0;
}

size_t vnet_rx_fill(struct vnet_rx *r, const struct iovec *in, unsigned int in_num)
{
	size_t written = 0;
	unsigned int i;

	for (i = 0; i < in_num && r->done < r->total; i++) {
		size_t n = iov_to_buf(r->src, 2, r->done, in[i].iov_base, in[i].iov_len);

		r->done += n;
		written += n;
	}
	r->nbufs++;
	return written;
}

void vnet_rx_set_num_buffers(const struct iovec *in, unsigned int in_num, uint16_t num)
{
	uint8_t le[2] = { (uint8_t)num, (uint8_t)(num >> 8) };
	size_t offset = VNET_NUM_BUFFERS_OFF, done = 0;
	unsigned int i;

	for (i = 0; i < in_num && done < sizeof(le); i++) {
		size_t chunk;

		if (offset >= in[i].iov_len) {
			offset -= in[i].iov_len;
			continue;
		}
		chunk = in[i].iov_len - offset;
		if (chunk > sizeof(le) - done)
			chunk = sizeof(le) - done;
		memcpy((uint8_t *)in[i].iov_base + offset, le + done, chunk);
		done += chunk;
		offset = 0;
	}
}
