/* virtio_blk_parse() on arbitrary chains: any number of out and in
 * buffers of any length, overlapping anywhere in one arena whose bytes
 * (headers, segments) also come from the input. Whatever the chain, the
 * parser must stay memory- and UB-safe, and what it accepts must hold up:
 * the status byte is the chain's last writable byte, data buffers lie
 * inside the chain's own buffers in the right direction, never cover the
 * status, and are whole sectors within the disk.
 *
 * Input: out_num, in_num, flags (bit 0: read-only), 8 bytes of capacity,
 * then 4 bytes per buffer (le16 arena offset, le16 length); the rest fills
 * the arena from its start. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "util/le.h"
#include "virtio/virtio_blk_req.h"

#define ARENA 65536

static uint8_t arena[ARENA];
static struct virtq_elem elem;
static struct virtio_blk_req req;

/* The data must be exactly bytes [skip, skip + data_len) of src, buffer
 * by buffer, in order. */
static void check_layout(const struct iovec *src, unsigned int n, uint64_t skip)
{
	unsigned int i, d = 0;
	uint64_t left = req.data_len;

	for (i = 0; i < n && left; i++) {
		uint64_t k = src[i].iov_len;

		if (skip >= k) {
			skip -= k;
			continue;
		}
		k -= skip;
		if (k > left)
			k = left;
		if (k) {
			CHECK(d < req.data_cnt);
			CHECK(req.data[d].iov_base == (uint8_t *)src[i].iov_base + skip);
			CHECK(req.data[d].iov_len == k);
			d++;
		}
		left -= k;
		skip = 0;
	}
	CHECK(left == 0 && d == req.data_cnt);
}

static uint64_t total(const struct iovec *iov, unsigned int n)
{
	uint64_t t = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* Whether a chain buffer other than the status byte's own (the last
 * non-empty in buffer, index last) overlaps the status byte: buffers may
 * alias anywhere, and then the same bytes are both data and status by
 * the guest's own doing. */
static int status_aliased(unsigned int last)
{
	unsigned int i;

	for (i = 0; i < (unsigned int)(elem.out_num + elem.in_num); i++) {
		const uint8_t *b = elem.iov[i].iov_base;

		if (i != last && req.status >= b && req.status < b + elem.iov[i].iov_len)
			return 1;
	}
	return 0;
}

static void check_accepted(uint64_t capacity, int ro, unsigned int last)
{
	const struct iovec *in = elem.iov + elem.out_num;
	uint64_t sum = 0, in_total = total(in, elem.in_num);
	unsigned int i;

	for (i = 0; i < req.data_cnt; i++) {
		CHECK(req.data[i].iov_len > 0);
		sum += req.data[i].iov_len;
	}
	/* Writes come from the readable buffers after the header; reads and
	 * ids go to the writable ones and stop short of the status byte. */
	if (req.type == VIRTIO_BLK_T_OUT) {
		check_layout(elem.iov, elem.out_num, VIRTIO_BLK_OUTHDR_SIZE);
		CHECK(req.data_len == total(elem.iov, elem.out_num) - VIRTIO_BLK_OUTHDR_SIZE);
	} else {
		check_layout(in, elem.in_num, 0);
		CHECK(req.data_len < total(in, elem.in_num));
	}
	CHECK(sum == req.data_len);
	/* The data never cover the status byte: the device writes the status
	 * after the data, so data over it would be overwritten (reads) or the
	 * status taken for data (writes). Only where no other buffer aliases
	 * it can the parser keep them apart. */
	if (!status_aliased(last)) {
		for (i = 0; i < req.data_cnt; i++) {
			const uint8_t *b = req.data[i].iov_base;

			CHECK(!(req.status >= b && req.status < b + req.data[i].iov_len));
		}
	}
	/* The in buffers are the data (reads, ids) then the status, and
	 * nothing else: requests without data have the status byte alone. */
	switch (req.type) {
	case VIRTIO_BLK_T_IN:
		CHECK(req.data_len == in_total - 1);
		break;
	case VIRTIO_BLK_T_GET_ID:
		CHECK(req.data_len == (in_total - 1 < VIRTIO_BLK_ID_BYTES ? in_total - 1
									  : VIRTIO_BLK_ID_BYTES));
		break;
	default:
		CHECK(in_total == 1);
	}
	switch (req.type) {
	case VIRTIO_BLK_T_OUT:
		CHECK(!ro);
		/* fall through */
	case VIRTIO_BLK_T_IN:
		CHECK(req.data_len % VIRTIO_BLK_SECTOR_SIZE == 0);
		CHECK(req.sector <= capacity);
		CHECK(req.data_len / VIRTIO_BLK_SECTOR_SIZE <= capacity - req.sector);
		break;
	case VIRTIO_BLK_T_GET_ID:
		CHECK(req.data_len <= VIRTIO_BLK_ID_BYTES);
		break;
	case VIRTIO_BLK_T_FLUSH:
		CHECK(req.data_len == 0);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		CHECK(!ro);
		CHECK(req.data_len == 0);
		CHECK(req.sector <= capacity && req.num_sectors <= capacity - req.sector);
		CHECK(req.num_sectors <= (req.type == VIRTIO_BLK_T_DISCARD
						  ? VIRTIO_BLK_MAX_DISCARD_SECTORS
						  : VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS));
		CHECK(!(req.type == VIRTIO_BLK_T_DISCARD && req.unmap));
		break;
	default:
		CHECK(0); /* unknown types are never accepted */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	unsigned int out_num, in_num, i, last = 0;
	uint64_t capacity;
	uint8_t status;
	int ro, has_status = 0;

	out_num = fuzz_u8(&in);
	in_num = fuzz_u8(&in);
	ro = fuzz_u8(&in) & 1;
	capacity = fuzz_take(&in, 8);
	/* Small disks hit the range checks; sometimes anything at all. */
	if (!(capacity >> 63))
		capacity %= 1ULL << 24;
	if (out_num + in_num > VIRTQ_MAX_SEGS)
		in_num = VIRTQ_MAX_SEGS - out_num;

	memset(&elem, 0, sizeof(elem));
	elem.out_num = (uint16_t)out_num;
	elem.in_num = (uint16_t)in_num;
	for (i = 0; i < out_num + in_num; i++) {
		size_t off = fuzz_take(&in, 2), len = fuzz_take(&in, 2);

		if (len > ARENA - off)
			len = ARENA - off;
		elem.iov[i].iov_base = arena + off;
		elem.iov[i].iov_len = len;
		if (i < out_num)
			elem.out_len += len;
		else
			elem.in_len += len;
		if (i >= out_num && len) {
			has_status = 1;
			last = i;
		}
	}
	memset(arena, 0, ARENA);
	memcpy(arena, in.p, in.n < ARENA ? in.n : ARENA);

	status = virtio_blk_parse(&elem, capacity, ro, &req);
	CHECK(status == VIRTIO_BLK_S_OK || status == VIRTIO_BLK_S_IOERR ||
	      status == VIRTIO_BLK_S_UNSUPP);
	/* The status byte is the last byte of the last non-empty in buffer. */
	if (has_status)
		CHECK(req.status == (uint8_t *)elem.iov[last].iov_base + elem.iov[last].iov_len - 1);
	else
		CHECK(req.status == NULL && status == VIRTIO_BLK_S_IOERR);
	if (status == VIRTIO_BLK_S_OK)
		check_accepted(capacity, ro, last);
	return 0;
}
