/* The device side of a split virtqueue against guest memory the input
 * fills: rings, descriptors (direct and indirect) and indices are all the
 * attacker's. Every buffer handed out must lie inside guest RAM, chains
 * must stay bounded, and nothing may crash. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "virtio/virtqueue.h"

#define RAM (64u << 10)

static struct virtq_elem e;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem mem;
	struct virtq q;
	uint8_t *ram;
	unsigned int i, j;

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
			int r = virtq_pop(&q, &e);

			if (r <= 0)
				break;
			CHECK(e.out_num + e.in_num <= VIRTQ_MAX_SEGS);
			for (j = 0; j < (unsigned int)(e.out_num + e.in_num); j++) {
				const uint8_t *b = e.iov[j].iov_base;

				CHECK(b >= ram && b + e.iov[j].iov_len <= ram + RAM);
				/* Touch the bytes, as a device would. */
				if (e.iov[j].iov_len)
					CHECK(b[0] == b[0] && b[e.iov[j].iov_len - 1] ==
								 b[e.iov[j].iov_len - 1]);
			}
			if (data[8] & 1)
				virtq_disable_notify(&q);
			virtq_push(&q, e.head, (uint32_t)e.in_len);
			(void)virtq_should_notify(&q);
			if (data[8] & 1)
				(void)virtq_enable_notify(&q);
		}
	}
	free(ram);
	return 0;
}
