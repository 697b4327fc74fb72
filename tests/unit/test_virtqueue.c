/* Split virtqueues against a fake guest RAM: what a well-behaved driver
 * does, and every way a hostile one can break the rules. */
#include "cmocka_prelude.h"

#include <stdlib.h>
#include <string.h>

#include "util/le.h"
#include "virtio/virtqueue.h"
#include "util/iov.h"

#define RAM_SIZE (1u << 20)
#define QSIZE 8
#define DESC_GPA 0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA 0x3000
#define DATA_GPA 0x10000
#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

static uint8_t *ram;
static struct guest_mem mem;
static struct virtq q;
static struct virtq_elem e;
static uint16_t avail_idx;

static void set_desc_at(uint64_t table, unsigned int i, uint64_t addr, uint32_t len,
			uint16_t flags, uint16_t next)
{
	uint8_t *d = ram + table + 16 * i;

	le64_put(d, addr);
	le32_put(d + 8, len);
	le16_put(d + 12, flags);
	le16_put(d + 14, next);
}

static void set_desc(unsigned int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	set_desc_at(DESC_GPA, i, addr, len, flags, next);
}

static void make_avail(uint16_t head)
{
	le16_put(ram + AVAIL_GPA + 4 + 2 * (avail_idx % QSIZE), head);
	avail_idx++;
	le16_put(ram + AVAIL_GPA + 2, avail_idx);
}

static uint16_t used_idx(void)
{
	return le16_get(ram + USED_GPA + 2);
}

static int setup(void **state)
{
	(void)state;
	ram = calloc(1, RAM_SIZE);
	mem = (struct guest_mem){ .host = ram, .size = RAM_SIZE, .low_size = RAM_SIZE };
	memset(&q, 0, sizeof(q));
	q.size = QSIZE;
	q.desc_gpa = DESC_GPA;
	q.avail_gpa = AVAIL_GPA;
	q.used_gpa = USED_GPA;
	q.indirect = true;
	avail_idx = 0;
	assert_int_equal(virtq_map(&q, &mem), 0);
	q.ready = true;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(ram);
	return 0;
}

static void test_map_checks(void **state)
{
	struct virtq bad;

	(void)state;
	bad = q;
	bad.size = 6; /* not a power of two */
	assert_int_equal(virtq_map(&bad, &mem), -1);
	bad = q;
	bad.size = 0;
	assert_int_equal(virtq_map(&bad, &mem), -1);
	bad = q;
	bad.desc_gpa = DESC_GPA + 8; /* descriptors are 16-byte aligned */
	assert_int_equal(virtq_map(&bad, &mem), -1);
	bad = q;
	bad.used_gpa = RAM_SIZE - 8; /* ring runs past RAM */
	assert_int_equal(virtq_map(&bad, &mem), -1);
	bad = q;
	bad.avail_gpa = 0xfffffffffffffff0ULL; /* wraps */
	assert_int_equal(virtq_map(&bad, &mem), -1);
}

static void test_chain_in_and_out(void **state)
{
	(void)state;
	memcpy(ram + DATA_GPA, "header", 6);
	set_desc(0, DATA_GPA, 6, F_NEXT, 5);
	set_desc(5, DATA_GPA + 0x100, 512, F_NEXT | F_WRITE, 2);
	set_desc(2, DATA_GPA + 0x400, 1, F_WRITE, 0);
	assert_int_equal(virtq_pop(&q, &e), 0); /* nothing available yet */
	make_avail(0);
	assert_int_equal(virtq_pop(&q, &e), 1);
	assert_int_equal(e.head, 0);
	assert_int_equal(e.out_num, 1);
	assert_int_equal(e.in_num, 2);
	assert_int_equal(e.out_len, 6);
	assert_int_equal(e.in_len, 513);
	assert_ptr_equal(e.iov[0].iov_base, ram + DATA_GPA);
	assert_ptr_equal(e.iov[2].iov_base, ram + DATA_GPA + 0x400);
	assert_int_equal(virtq_pop(&q, &e), 0);

	virtq_push(&q, 0, 513);
	assert_int_equal(used_idx(), 1);
	assert_int_equal(le32_get(ram + USED_GPA + 4), 0);
	assert_int_equal(le32_get(ram + USED_GPA + 8), 513);
}

static void test_indirect(void **state)
{
	const uint64_t table = 0x8000;

	(void)state;
	set_desc_at(table, 0, DATA_GPA, 16, F_NEXT, 1);
	set_desc_at(table, 1, DATA_GPA + 16, 32, F_WRITE, 0);
	set_desc(3, table, 32, F_INDIRECT, 0);
	make_avail(3);
	assert_int_equal(virtq_pop(&q, &e), 1);
	assert_int_equal(e.head, 3);
	assert_int_equal(e.out_num, 1);
	assert_int_equal(e.in_num, 1);

	/* Not negotiated: refused. */
	make_avail(3);
	q.indirect = false;
	assert_int_equal(virtq_pop(&q, &e), -1);
	q.indirect = true;

	/* An indirect descriptor inside an indirect table. */
	set_desc_at(table, 1, table, 32, F_INDIRECT, 0);
	assert_int_equal(virtq_pop(&q, &e), -1);

	/* INDIRECT together with NEXT, and a table of odd length. */
	set_desc(3, table, 32, F_INDIRECT | F_NEXT, 0);
	assert_int_equal(virtq_pop(&q, &e), -1);
	set_desc(3, table, 24, F_INDIRECT, 0);
	assert_int_equal(virtq_pop(&q, &e), -1);
}

/* A full indirect table: VIRTQ_MAX_SEGS buffers (Linux's virtio-blk
 * sends seg_max data segments plus header and status). The descriptor
 * that points at the table is not one of them: counting it refused every
 * request of seg_max segments, which Linux makes whenever a write's pages
 * are not physically contiguous. One more entry is refused. */
static void test_indirect_full_table(void **state)
{
	const uint64_t table = 0x8000;
	unsigned int i;

	(void)state;
	for (i = 0; i < VIRTQ_MAX_SEGS; i++)
		set_desc_at(table, i, DATA_GPA + 16 * i, 16,
			    (uint16_t)((i + 1 < VIRTQ_MAX_SEGS ? F_NEXT : 0) | (i ? F_WRITE : 0)),
			    (uint16_t)(i + 1));
	set_desc(3, table, 16 * VIRTQ_MAX_SEGS, F_INDIRECT, 0);
	make_avail(3);
	assert_int_equal(virtq_pop(&q, &e), 1);
	assert_int_equal(e.out_num + e.in_num, VIRTQ_MAX_SEGS);
	set_desc(3, table, 16 * (VIRTQ_MAX_SEGS + 1), F_INDIRECT, 0);
	make_avail(3);
	assert_int_equal(virtq_pop(&q, &e), -1);
}

static void test_hostile_chains(void **state)
{
	(void)state;
	/* A loop: 0 -> 1 -> 0. */
	set_desc(0, DATA_GPA, 4, F_NEXT, 1);
	set_desc(1, DATA_GPA, 4, F_NEXT, 0);
	make_avail(0);
	assert_int_equal(virtq_pop(&q, &e), -1);

	/* next out of the table. */
	set_desc(1, DATA_GPA, 4, F_NEXT, QSIZE);
	assert_int_equal(virtq_pop(&q, &e), -1);

	/* A buffer outside RAM, and one that wraps around. */
	set_desc(0, RAM_SIZE - 2, 4, 0, 0);
	assert_int_equal(virtq_pop(&q, &e), -1);
	set_desc(0, 0xfffffffffffffffcULL, 8, 0, 0);
	assert_int_equal(virtq_pop(&q, &e), -1);

	/* Device-readable after device-writable. */
	set_desc(0, DATA_GPA, 4, F_WRITE | F_NEXT, 1);
	set_desc(1, DATA_GPA, 4, 0, 0);
	assert_int_equal(virtq_pop(&q, &e), -1);

	/* A head index out of range. */
	avail_idx--;
	make_avail(QSIZE + 1);
	assert_int_equal(virtq_pop(&q, &e), -1);

	/* The driver claims more available buffers than the ring holds. */
	le16_put(ram + AVAIL_GPA + 2, QSIZE + 1);
	assert_int_equal(virtq_pop(&q, &e), -1);
}

static void test_zero_length_buffers_skipped(void **state)
{
	(void)state;
	set_desc(0, 0xdeadbeef000ULL, 0, F_NEXT, 1); /* no bytes: no address check */
	set_desc(1, DATA_GPA, 8, F_WRITE, 0);
	make_avail(0);
	assert_int_equal(virtq_pop(&q, &e), 1);
	assert_int_equal(e.out_num, 0);
	assert_int_equal(e.in_num, 1);
}

static void test_notify_flags(void **state)
{
	(void)state;
	set_desc(0, DATA_GPA, 8, F_WRITE, 0);
	make_avail(0);
	assert_int_equal(virtq_pop(&q, &e), 1);
	virtq_push(&q, 0, 8);
	assert_true(virtq_should_notify(&q));
	le16_put(ram + AVAIL_GPA, 1); /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	virtq_push(&q, 0, 8);
	assert_false(virtq_should_notify(&q));

	virtq_disable_notify(&q);
	assert_int_equal(le16_get(ram + USED_GPA), 1); /* VIRTQ_USED_F_NO_NOTIFY */
	assert_false(virtq_enable_notify(&q));
	assert_int_equal(le16_get(ram + USED_GPA), 0);
	make_avail(0);
	virtq_disable_notify(&q);
	assert_true(virtq_enable_notify(&q)); /* work arrived meanwhile */
}

static void test_event_idx(void **state)
{
	unsigned int i;

	(void)state;
	q.event_idx = true;
	set_desc(0, DATA_GPA, 8, F_WRITE, 0);
	/* The driver wants an interrupt when used_idx passes 2 (used_event). */
	le16_put(ram + AVAIL_GPA + 4 + 2 * QSIZE, 2);
	for (i = 0; i < 4; i++) {
		make_avail(0);
		assert_int_equal(virtq_pop(&q, &e), 1);
		/* avail_event follows what we took. */
		assert_int_equal(le16_get(ram + USED_GPA + 4 + 8 * QSIZE), i + 1);
		virtq_push(&q, 0, 8);
		/* First push always notifies; then only when crossing 2 -> 3. */
		assert_int_equal(virtq_should_notify(&q), i == 0 || i == 2);
	}
	/* Notifications off: avail_event no longer advances. */
	virtq_disable_notify(&q);
	make_avail(0);
	assert_int_equal(virtq_pop(&q, &e), 1);
	assert_int_equal(le16_get(ram + USED_GPA + 4 + 8 * QSIZE), 4);
	assert_false(virtq_enable_notify(&q));
	assert_int_equal(le16_get(ram + USED_GPA + 4 + 8 * QSIZE), 5);
}

static void test_unpop(void **state)
{
	(void)state;
	set_desc(0, DATA_GPA, 8, F_WRITE, 0);
	make_avail(0);
	assert_int_equal(virtq_pop(&q, &e), 1);
	assert_true(virtq_empty(&q));
	virtq_unpop(&q, 1);
	assert_false(virtq_empty(&q));
	assert_int_equal(virtq_pop(&q, &e), 1);
}

static void test_iov_copies(void **state)
{
	uint8_t a[3], b[5], out[8];
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };

	(void)state;
	assert_int_equal(iov_from_buf(iov, 2, 2, "abcdefgh", 8), 6);
	assert_int_equal(a[2], 'a');
	assert_int_equal(b[4], 'f');
	assert_int_equal(iov_to_buf(iov, 2, 2, out, sizeof(out)), 6);
	assert_memory_equal(out, "abcdef", 6);
	assert_int_equal(iov_to_buf(iov, 2, 100, out, sizeof(out)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_map_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_in_and_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_full_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_length_buffers_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iov_copies, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
