/* virtio-blk requests (VirtIO 1.2, 5.2.6): the wire format and a parser
 * that turns one descriptor chain into a checked request. Pure: no device
 * state, no KVM, so it can be unit tested and fuzzed on its own. */
#ifndef VIREO_VIRTIO_VIRTIO_BLK_REQ_H
#define VIREO_VIRTIO_VIRTIO_BLK_REQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/virtqueue.h"

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types. */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

/* Status byte values. */
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_OUTHDR_SIZE 16 /* le32 type, le32 reserved, le64 sector */
#define VIRTIO_BLK_DWZ_SEG_SIZE 16 /* le64 sector, le32 num_sectors, le32 flags */
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1

/* Limits the device advertises in its configuration space, and enforces. */
#define VIRTIO_BLK_SEG_MAX (VIRTQ_MAX_SEGS - 2) /* the header and status take two */
#define VIRTIO_BLK_SIZE_MAX (1u << 20)
#define VIRTIO_BLK_MAX_DISCARD_SECTORS (1u << 22)      /* 2 GiB */
#define VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS (1u << 16) /* 32 MiB: may be written out */
#define VIRTIO_BLK_MAX_DWZ_SEG 1
#define VIRTIO_BLK_DISCARD_ALIGNMENT 8 /* sectors: a file system block */

struct virtio_blk_req {
	uint32_t type;
	uint64_t sector;	/* IN/OUT: first sector; DISCARD/WRITE_ZEROES: the segment's */
	uint32_t num_sectors;	/* DISCARD/WRITE_ZEROES */
	bool unmap;		/* WRITE_ZEROES may deallocate */
	uint8_t *status;	/* the last byte of the in buffers; NULL if none */
	/* IN: the in buffers without the status byte; OUT: the out buffers
	 * after the header; GET_ID: where the id goes. */
	struct iovec data[VIRTQ_MAX_SEGS];
	unsigned int data_cnt;
	uint64_t data_len;
};

/* Checks one chain against the rules of 5.2.6 and a disk of capacity
 * sectors. Returns the status the request gets before any I/O:
 * VIRTIO_BLK_S_OK (r is filled: do the I/O), VIRTIO_BLK_S_IOERR (bad
 * header, buffers that do not fit the type, not whole sectors, out of
 * range, a write to a read-only disk, no status byte), VIRTIO_BLK_S_UNSUPP
 * (unknown type or flags). r->status is set whenever the chain has room
 * for it, whatever the result. */
uint8_t virtio_blk_parse(const struct virtq_elem *e, uint64_t capacity, bool read_only,
			 struct virtio_blk_req *r);

#endif
