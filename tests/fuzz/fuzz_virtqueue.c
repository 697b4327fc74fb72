/* The device side of a split virtqueue against guest memory the input
 * fills: rings, descriptors (direct and indirect) and indices are all the
 * attacker's. Nothing may crash; every chain handed out must lie inside
 * guest RAM and stay bounded, and must be what the ring says: the head
 * the avail ring names, and the buffers found by walking its descriptors
 * as the VirtIO split ring defines them (one level of indirection, NEXT
 * links, device-readable before device-writable; empty buffers carry
 * nothing and are left out), walked here over a copy of RAM taken before
 * the device looked. Each push must land in the used ring as given.
 *
 * Input: byte 0 queue size (2^(n % 9)), le16 desc, avail and used
 * addresses, byte 7 flags (1: EVENT_IDX, 2: INDIRECT_DESC), byte 8 bit 0
 * notification suppression; guest RAM from byte 16 on. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util/le.h"
#include "virtio/virtqueue.h"

#define RAM (64u << 10)
#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

static struct virtq_elem e;
static uint8_t before[RAM];

/* The chain at head, walked over the copy: checks e against it. */
static void check_chain(const struct virtq *q, const uint8_t *ram)
{
	uint64_t table = q->desc_gpa, n = q->size, i = e.head;
	unsigned int k = 0, steps = 0, out = 0, in = 0;
	size_t out_len = 0, in_len = 0;

	for (;;) {
		const uint8_t *d;
		uint64_t addr;
		uint32_t len;
		uint16_t flags;

		CHECK(i < n && table + 16 * (i + 1) <= RAM);
		CHECK(++steps <= 2 * VIRTQ_MAX_SEGS + 1); /* accepted, so finite */
		d = before + table + 16 * i;
		addr = le64_get(d);
		len = le32_get(d + 8);
		flags = le16_get(d + 12);
		if (flags & F_INDIRECT) {
			CHECK(q->indirect && table == q->desc_gpa);
			table = addr;
			n = len / 16;
			i = 0;
			continue;
		}
		if (flags & F_WRITE) {
			in_len += len;
		} else {
			CHECK(in == 0);
			out_len += len;
		}
		if (len) {
			CHECK(k < (unsigned int)(e.out_num + e.in_num));
			CHECK(e.iov[k].iov_base == ram + addr && e.iov[k].iov_len == len);
			k++;
			if (flags & F_WRITE)
				in++;
			else
				out++;
		}
		if (!(flags & F_NEXT))
			break;
		i = le16_get(d + 14);
	}
	CHECK(k == (unsigned int)(e.out_num + e.in_num) && out == e.out_num && in == e.in_num);
	CHECK(out_len == e.out_len && in_len == e.in_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem mem;
	struct virtq q;
	uint8_t *ram;
	unsigned int i, j;
	uint16_t taken = 0;

	if (size < 16)
		return 0;
	ram = calloc(1, RAM);
	if (!ram)
		return 0;
	mem = (struct guest_mem){ .host = ram, .size = RAM, .low_size = RAM };
	memset(&q, 0, sizeof(q));
	q.size = (uint16_t)(1u << (data[0] % 9)); /* 1 .. 256 */
	q.desc_gpa = (uint64_t)(data[1] | data[2] << 8) & ~15ULL;
	q.avail_gpa = (uint64_t)(data[3] | data[4] << 8) & ~1ULL;
	q.used_gpa = (uint64_t)(data[5] | data[6] << 8) & ~3ULL;
	q.event_idx = data[7] & 1;
	q.indirect = data[7] & 2;
	memcpy(ram, data + 16, size - 16 < RAM ? size - 16 : RAM);
	if (virtq_map(&q, &mem) == 0) {
		q.ready = true;
		for (i = 0; i < 64; i++) {
			int r;

			memcpy(before, ram, RAM);
			r = virtq_pop(&q, &e);
			if (r <= 0)
				break;
			/* The head is the next one the avail ring lists. */
			CHECK(e.head < q.size);
			CHECK(e.head == le16_get(before + q.avail_gpa + 4 + 2 * (taken % q.size)));
			CHECK(e.out_num + e.in_num <= VIRTQ_MAX_SEGS);
			for (j = 0; j < (unsigned int)(e.out_num + e.in_num); j++) {
				const uint8_t *b = e.iov[j].iov_base;

				CHECK(b >= ram && b + e.iov[j].iov_len <= ram + RAM);
				/* Touch the bytes, as a device would. */
				if (e.iov[j].iov_len)
					CHECK(b[0] == b[0] && b[e.iov[j].iov_len - 1] ==
								 b[e.iov[j].iov_len - 1]);
			}
			check_chain(&q, ram);
			if (data[8] & 1)
				virtq_disable_notify(&q);
			virtq_push(&q, e.head, (uint32_t)e.in_len);
			/* Entry then index, where the used ring is. */
			CHECK(le32_get(ram + q.used_gpa + 4 + 8 * (taken % q.size)) == e.head);
			CHECK(le32_get(ram + q.used_gpa + 8 + 8 * (taken % q.size)) == (uint32_t)e.in_len);
			taken++;
			CHECK(le16_get(ram + q.used_gpa + 2) == taken);
			(void)virtq_should_notify(&q);
			if (data[8] & 1)
				(void)virtq_enable_notify(&q);
		}
	}
	free(ram);
	return 0;
}
