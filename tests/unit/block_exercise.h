/* What the protocol tests (NBD, RBD) share: requests through the block
 * layer's own API, waited for as a device's I/O thread waits, and a
 * workload checked against a reference in memory. */
#ifndef VIREO_TESTS_UNIT_BLOCK_EXERCISE_H
#define VIREO_TESTS_UNIT_BLOCK_EXERCISE_H

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"

struct waiter {
	unsigned int calls;
	int64_t result;
	int64_t worst;
};

static inline void count_done(struct block_req *r, int64_t result)
{
	struct waiter *w = r->opaque;

	w->calls++;
	w->result = result;
	if (result < w->worst)
		w->worst = result;
}

static inline void wait_for(struct block_backend *b, struct waiter *w, unsigned int n, int max_s)
{
	struct pollfd p = { .fd = block_completion_fd(b), .events = POLLIN };
	int rounds = 0;

	while (w->calls < n) {
		if (poll(&p, 1, 100) == 0 && ++rounds > max_s * 10)
			fail_msg("%u of %u requests never completed", n - w->calls, n);
		block_process_completions(b);
	}
}

static inline int64_t do_io(struct block_backend *b, enum block_op op, uint64_t off,
			    void *buf, uint64_t len)
{
	struct iovec iov = { buf, (size_t)len };
	struct waiter w = { 0 };
	struct block_req r = { .op = op, .offset = off, .iov = &iov, .iovcnt = buf ? 1 : 0,
			       .len = buf ? 0 : len, .done = count_done, .opaque = &w };
	int err = block_submit(b, &r);

	if (err)
		return err;
	wait_for(b, &w, 1, 60);
	return w.result;
}

/* Random writes and reads with many in flight, flush, write-zeroes and a
 * discard that reads back as zeroes: against a reference in memory. */
static inline void exercise(struct block_backend *b, uint64_t size)
{
	uint8_t *ref = calloc(1, size), *got = malloc(size), *bufs = malloc(32 * 65536);
	struct block_req r[32];
	struct iovec iov[32];
	struct waiter w = { 0 };
	unsigned int i, round;

	assert_non_null(ref);
	do_io(b, BLOCK_READ, 0, ref, size); /* start from what is there */
	srand(7);
	for (round = 0; round < 20; round++) {
		w.calls = 0;
		for (i = 0; i < 32; i++) {
			uint64_t len = (uint64_t)(1 + rand() % 128) * 512;
			uint64_t off = (uint64_t)(rand() % (int)((size - len) / 512)) * 512;
			size_t j;

			/* Disjoint in a round: each request its own slice. */
			off = (size / 32) * i + off % (size / 32 - len);
			off &= ~511ull;
			for (j = 0; j < len; j++)
				bufs[i * 65536 + j] = (uint8_t)rand();
			memcpy(ref + off, bufs + i * 65536, len);
			iov[i] = (struct iovec){ bufs + i * 65536, (size_t)len };
			r[i] = (struct block_req){ .op = BLOCK_WRITE, .offset = off, .iov = &iov[i],
						   .iovcnt = 1, .done = count_done, .opaque = &w };
			assert_int_equal(block_submit(b, &r[i]), 0);
		}
		wait_for(b, &w, 32, 60);
		assert_true(w.worst >= 0);
	}
	assert_int_equal(do_io(b, BLOCK_FLUSH, 0, NULL, 0), 0);
	assert_int_equal(do_io(b, BLOCK_WRITE_ZEROES, 65536, NULL, 131072), 0);
	memset(ref + 65536, 0, 131072);
	assert_int_equal(do_io(b, BLOCK_DISCARD, size / 2, NULL, 1 << 20), 0);
	memset(ref + size / 2, 0, 1 << 20);
	assert_int_equal(do_io(b, BLOCK_READ, 0, got, size), (int64_t)size);
	assert_memory_equal(got, ref, size);
	free(ref);
	free(got);
	free(bufs);
}

#endif
