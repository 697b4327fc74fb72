/* The virtio-blk request parser. The chain's buffers are guest memory: the
 * header and segments are copied out once (iov_to_buf) and only the copies
 * are checked and used. No framing is assumed: the header, the data and
 * the status byte may share or split buffers in any way (VirtIO 1.2,
 * 2.6.4: message framing). */
#include "virtio/virtio_blk_req.h"

#include <stddef.h>
#include <string.h>

#include "util/le.h"
#include "util/iov.h"

/* Copies the iovecs that cover bytes [skip, skip + len) of src into r->data. */
static void take_data(struct virtio_blk_req *r, const struct iovec *src, unsigned int n,
		      uint64_t skip, uint64_t len)
{
	r->data_len = len;
	r->data_cnt = iov_slice(r->data, VIRTQ_MAX_SEGS, src, n, skip, len);
}

/* Whether [sector, sector + count) lies within the disk. */
static bool in_range(uint64_t sector, uint64_t count, uint64_t capacity)
{
	return sector <= capacity && count <= capacity - sector;
}

/* The one discard or write-zeroes segment that follows the header. */
static uint8_t parse_segment(const struct virtq_elem *e, uint64_t out_bytes, uint64_t capacity,
			     struct virtio_blk_req *r)
{
	uint64_t seg_bytes = out_bytes - VIRTIO_BLK_OUTHDR_SIZE;
	uint8_t seg[VIRTIO_BLK_DWZ_SEG_SIZE];
	uint32_t flags, max;

	if (seg_bytes == 0 || seg_bytes % VIRTIO_BLK_DWZ_SEG_SIZE ||
	    seg_bytes / VIRTIO_BLK_DWZ_SEG_SIZE > VIRTIO_BLK_MAX_DWZ_SEG)
		return VIRTIO_BLK_S_IOERR;
	iov_to_buf(e->iov, e->out_num, VIRTIO_BLK_OUTHDR_SIZE, seg, sizeof(seg));
	r->sector = le64_get(seg);
	r->num_sectors = le32_get(seg + 8);
	flags = le32_get(seg + 12);
	/* 5.2.6.2: unknown flags, and unmap on a discard, are UNSUPP. */
	if (flags & ~(uint32_t)VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
		return VIRTIO_BLK_S_UNSUPP;
	if (r->type == VIRTIO_BLK_T_DISCARD && flags)
		return VIRTIO_BLK_S_UNSUPP;
	r->unmap = flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	max = r->type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_MAX_DISCARD_SECTORS
					      : VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS;
	if (r->num_sectors > max || !in_range(r->sector, r->num_sectors, capacity))
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

uint8_t virtio_blk_parse(const struct virtq_elem *e, uint64_t capacity, bool read_only,
			 struct virtio_blk_req *r)
{
	uint8_t hdr[VIRTIO_BLK_OUTHDR_SIZE];
	const struct iovec *in;
	uint64_t out_bytes, in_bytes;
	unsigned int i;

	memset(r, 0, offsetof(struct virtio_blk_req, data));
	r->data_cnt = 0;
	r->data_len = 0;
	if ((unsigned int)e->out_num + e->in_num > VIRTQ_MAX_SEGS)
		return VIRTIO_BLK_S_IOERR;
	in = e->iov + e->out_num;

	/* The status byte: the very last byte the device may write. */
	for (i = e->in_num; i-- > 0;) {
		if (in[i].iov_len) {
			r->status = (uint8_t *)in[i].iov_base + in[i].iov_len - 1;
			break;
		}
	}
	if (!r->status)
		return VIRTIO_BLK_S_IOERR;
	in_bytes = iov_size(in, e->in_num) - 1; /* without the status byte */

	out_bytes = iov_size(e->iov, e->out_num);
	if (out_bytes < VIRTIO_BLK_OUTHDR_SIZE)
		return VIRTIO_BLK_S_IOERR;
	iov_to_buf(e->iov, e->out_num, 0, hdr, sizeof(hdr));
	r->type = le32_get(hdr);
	r->sector = le64_get(hdr + 8);

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		if (out_bytes != VIRTIO_BLK_OUTHDR_SIZE)
			return VIRTIO_BLK_S_IOERR;
		take_data(r, in, e->in_num, 0, in_bytes);
		break;
	case VIRTIO_BLK_T_OUT:
		if (read_only || in_bytes)
			return VIRTIO_BLK_S_IOERR;
		take_data(r, e->iov, e->out_num, VIRTIO_BLK_OUTHDR_SIZE,
			  out_bytes - VIRTIO_BLK_OUTHDR_SIZE);
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (out_bytes != VIRTIO_BLK_OUTHDR_SIZE || in_bytes)
			return VIRTIO_BLK_S_IOERR;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		if (out_bytes != VIRTIO_BLK_OUTHDR_SIZE)
			return VIRTIO_BLK_S_IOERR;
		take_data(r, in, e->in_num, 0,
			  in_bytes < VIRTIO_BLK_ID_BYTES ? in_bytes : VIRTIO_BLK_ID_BYTES);
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (read_only || in_bytes)
			return VIRTIO_BLK_S_IOERR;
		return parse_segment(e, out_bytes, capacity, r);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
	/* IN and OUT: whole sectors, within the disk. */
	if (r->data_len % VIRTIO_BLK_SECTOR_SIZE ||
	    !in_range(r->sector, r->data_len / VIRTIO_BLK_SECTOR_SIZE, capacity))
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}
