#include "cmocka_prelude.h"

#include <string.h>

#include "hw/bus.h"
#include "util/le.h"

struct fake_dev {
	int reads, writes;
	uint64_t offset, value;
	unsigned int size;
	uint64_t read_value;
};

static uint64_t fake_read(void *dev, uint64_t offset, unsigned int size)
{
	struct fake_dev *d = dev;

	d->reads++;
	d->offset = offset;
	d->size = size;
	return d->read_value;
}

static void fake_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	struct fake_dev *d = dev;

	d->writes++;
	d->offset = offset;
	d->size = size;
	d->value = value;
}

static const struct bus_ops fake_ops = { .read = fake_read, .write = fake_write };
static const struct bus_ops no_ops = { 0 };

static struct bus b;
static struct fake_dev a, c;

static int setup(void **state)
{
	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&c, 0, sizeof(c));
	bus_init(&b, "test");
	assert_int_equal(bus_register(&b, 0x100, 8, "a", &fake_ops, &a), 0);
	assert_int_equal(bus_register(&b, 0x200, 1, "c", &fake_ops, &c), 0);
	return 0;
}

static void test_init(void **state)
{
	(void)state;
	bus_init(&b, "pio");
	assert_string_equal(b.name, "pio");
	assert_int_equal(b.count, 0);
	assert_int_equal(b.unclaimed, 0);
}

static void test_overlap_rejected(void **state)
{
	(void)state;
	assert_int_equal(bus_register(&b, 0x100, 8, "dup", &fake_ops, &c), -1);
	assert_int_equal(bus_register(&b, 0x104, 8, "tail", &fake_ops, &c), -1);
	assert_int_equal(bus_register(&b, 0xfc, 5, "head", &fake_ops, &c), -1);
	assert_int_equal(bus_register(&b, 0x107, 1, "last", &fake_ops, &c), -1);
	assert_int_equal(bus_register(&b, 0x102, 2, "inside", &fake_ops, &c), -1);
	assert_int_equal(bus_register(&b, 0x0, 0x1000, "around", &fake_ops, &c), -1);
	assert_int_equal(bus_register(&b, 0x200, 1, "c again", &fake_ops, &c), -1);
	/* Empty and wrapping regions. */
	assert_int_equal(bus_register(&b, 0x300, 0, "empty", &fake_ops, &c), -1);
	assert_int_equal(bus_register(&b, UINT64_MAX, 2, "wrap", &fake_ops, &c), -1);
	assert_int_equal(bus_register(&b, 0x400, UINT64_MAX, "wrap", &fake_ops, &c), -1);
	assert_int_equal(b.count, 2);
	/* Adjacent on either side is fine. */
	assert_int_equal(bus_register(&b, 0x108, 8, "after", &fake_ops, &c), 0);
	assert_int_equal(bus_register(&b, 0xf8, 8, "before", &fake_ops, &c), 0);
	assert_int_equal(b.count, 4);
	assert_string_equal(b.region[2].name, "after");
	assert_int_equal(b.region[3].base, 0xf8);
	assert_int_equal(b.region[3].len, 8);
}

/* No fixed limit: regions grow with the machine, and go away again. */
static void test_many_and_unregister(void **state)
{
	uint8_t data[1] = { 0 };
	unsigned int i;

	(void)state;
	for (i = 0; i < 200; i++)
		assert_int_equal(bus_register(&b, 0x1000 + 16 * i, 16, "r", &fake_ops, &c), 0);
	assert_int_equal(b.count, 202);
	bus_access(&b, 0x1000 + 16 * 150 + 3, 1, 0, data);
	assert_int_equal(c.reads, 1);

	/* Gone: the address is unclaimed, the device is not called. */
	assert_int_equal(bus_unregister(&b, 0x1000 + 16 * 150), 0);
	assert_int_equal(bus_unregister(&b, 0x1000 + 16 * 150), -1);
	assert_int_equal(b.count, 201);
	bus_access(&b, 0x1000 + 16 * 150 + 3, 1, 0, data);
	assert_int_equal(c.reads, 1);
	assert_int_equal(data[0], 0xff);
	assert_int_equal(b.unclaimed, 1);
	/* Its neighbours are untouched, and the space can be taken again. */
	bus_access(&b, 0x1000 + 16 * 151, 1, 0, data);
	assert_int_equal(c.reads, 2);
	assert_int_equal(bus_register(&b, 0x1000 + 16 * 150, 16, "again", &fake_ops, &a), 0);
	bus_access(&b, 0x1000 + 16 * 150, 1, 0, data);
	assert_int_equal(a.reads, 1);
}

static int teardown(void **state)
{
	(void)state;
	bus_destroy(&b);
	return 0;
}

static void test_dispatch(void **state)
{
	uint8_t data[8];

	(void)state;
	/* Write: offset relative to the base, little-endian value. */
	data[0] = 0x34;
	data[1] = 0x12;
	data[2] = 0xee; /* beyond size: not part of the value */
	bus_access(&b, 0x103, 2, 1, data);
	assert_int_equal(a.writes, 1);
	assert_int_equal(a.offset, 3);
	assert_int_equal(a.size, 2);
	assert_int_equal(a.value, 0x1234);
	assert_int_equal(a.reads, 0);

	/* Read: only size bytes of the result are stored. */
	a.read_value = 0x1122334455667788ULL;
	memset(data, 0xcc, sizeof(data));
	bus_access(&b, 0x105, 4, 0, data);
	assert_int_equal(a.reads, 1);
	assert_int_equal(a.offset, 5);
	assert_int_equal(a.size, 4);
	assert_int_equal(data[0], 0x88);
	assert_int_equal(data[1], 0x77);
	assert_int_equal(data[2], 0x66);
	assert_int_equal(data[3], 0x55);
	assert_int_equal(data[4], 0xcc);

	/* 8-byte access. */
	memset(data, 0, sizeof(data));
	bus_access(&b, 0x100, 8, 0, data);
	assert_int_equal(le64_get(data), 0x1122334455667788ULL);
	memcpy(data, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	bus_access(&b, 0x100, 8, 1, data);
	assert_int_equal(a.value, 0x0807060504030201ULL);

	/* The other region gets its own accesses. */
	c.read_value = 0x5a;
	bus_access(&b, 0x200, 1, 0, data);
	assert_int_equal(data[0], 0x5a);
	assert_int_equal(c.reads, 1);
	assert_int_equal(c.offset, 0);
	assert_int_equal(a.reads, 2);
}

static void test_unclaimed(void **state)
{
	uint8_t data[8];

	(void)state;
	memset(data, 0, sizeof(data));
	bus_access(&b, 0x0ff, 4, 0, data); /* just below a */
	assert_memory_equal(data, "\xff\xff\xff\xff\0\0\0\0", 8);
	assert_int_equal(b.unclaimed, 1);
	memset(data, 0, sizeof(data));
	bus_access(&b, 0x108, 2, 0, data); /* just past a */
	assert_memory_equal(data, "\xff\xff\0\0\0\0\0\0", 8);
	bus_access(&b, 0x201, 1, 0, data);
	bus_access(&b, UINT64_MAX, 8, 0, data);
	assert_memory_equal(data, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
	assert_int_equal(b.unclaimed, 4);
	/* Writes are dropped but counted, and do not touch data. */
	memset(data, 0x11, sizeof(data));
	bus_access(&b, 0x50, 4, 1, data);
	assert_memory_equal(data, "\x11\x11\x11\x11\x11\x11\x11\x11", 8);
	assert_int_equal(b.unclaimed, 5);
	assert_int_equal(a.reads + a.writes + c.reads + c.writes, 0);
	assert_int_equal(b.region[0].exits, 0);
	assert_int_equal(b.region[1].exits, 0);
}

static void test_exit_counters(void **state)
{
	uint8_t data[8] = { 0 };
	int i;

	(void)state;
	for (i = 0; i < 5; i++)
		bus_access(&b, 0x100 + (uint64_t)i, 1, i & 1, data);
	for (i = 0; i < 3; i++)
		bus_access(&b, 0x200, 1, 1, data);
	assert_int_equal(b.region[0].exits, 5);
	assert_int_equal(b.region[1].exits, 3);
	assert_int_equal(a.reads, 3);
	assert_int_equal(a.writes, 2);
	assert_int_equal(b.unclaimed, 0);
}

static void test_bad_sizes(void **state)
{
	uint8_t data[16];

	(void)state;
	memset(data, 0x22, sizeof(data));
	bus_access(&b, 0x100, 0, 0, data);
	bus_access(&b, 0x100, 9, 0, data);
	bus_access(&b, 0x100, 16, 1, data);
	bus_access(&b, 0x50, 0, 0, data);
	bus_access(&b, 0x50, 9, 0, data);
	assert_int_equal(a.reads + a.writes, 0);
	assert_int_equal(b.region[0].exits, 0);
	assert_int_equal(b.unclaimed, 0);
	for (unsigned int i = 0; i < sizeof(data); i++)
		assert_int_equal(data[i], 0x22);
}

static void test_missing_ops(void **state)
{
	uint8_t data[4] = { 0 };

	(void)state;
	assert_int_equal(bus_register(&b, 0x300, 4, "no ops", &no_ops, NULL), 0);
	bus_access(&b, 0x301, 2, 0, data);
	assert_int_equal(data[0], 0xff);
	assert_int_equal(data[1], 0xff);
	assert_int_equal(data[2], 0);
	bus_access(&b, 0x301, 2, 1, data);
	assert_int_equal(b.region[2].exits, 2);
	assert_int_equal(b.unclaimed, 0);
}

static void test_high_addresses(void **state)
{
	uint8_t data[4] = { 0 };

	(void)state;
	/* MMIO-style addresses far from zero. */
	assert_int_equal(bus_register(&b, 0xfee00000ULL, 0x1000, "lapic", &fake_ops, &c), 0);
	assert_int_equal(bus_register(&b, 0xfffffffffffff000ULL, 0xfff, "top", &fake_ops, &a),
			 0);
	bus_access(&b, 0xfee00ffcULL, 4, 0, data);
	assert_int_equal(c.offset, 0xffc);
	bus_access(&b, 0xfffffffffffffffeULL, 1, 0, data);
	assert_int_equal(a.offset, 0xffe);
	/* The last byte of the address space is not in "top". */
	bus_access(&b, UINT64_MAX, 1, 0, data);
	assert_int_equal(b.unclaimed, 1);
}

/* Coalesced zones asked for before the accelerator can take them (the
 * devices are made before the VM) wait on the bus and are handed over by
 * bus_coalesce_apply(); a removed zone leaves the accelerator only if it
 * had it. */
struct accel {
	int ready, added, removed;
	uint64_t last_addr, last_len;
};

static int accel_zone(void *ctx, uint64_t addr, uint64_t len, bool add)
{
	struct accel *acc = ctx;

	if (!acc->ready)
		return -1;
	if (add)
		acc->added++;
	else
		acc->removed++;
	acc->last_addr = addr;
	acc->last_len = len;
	return 0;
}

static void test_coalesce_before_the_vm(void **state)
{
	struct accel acc = { 0 };
	struct bus nb;
	unsigned int i;

	(void)state;
	bus_init(&nb, "pio");
	/* No coalescer at all: kept, nothing else. */
	assert_int_equal(bus_coalesce(&nb, 0x1f1, 6, true), 0);
	assert_int_equal(bus_coalesce_apply(&nb), 0);
	bus_set_coalescer(&nb, accel_zone, &acc);
	/* Not ready (no VM yet): kept for later. */
	assert_int_equal(bus_coalesce(&nb, 0x171, 6, true), 0);
	for (i = 0; i < 20; i++) /* past the first allocation */
		assert_int_equal(bus_coalesce(&nb, 0x1000 + 16 * i, 4, true), 0);
	assert_int_equal(bus_coalesce(&nb, 0x1000, 4, false), 0); /* never applied: no call */
	assert_int_equal(acc.removed, 0);
	assert_int_equal(bus_coalesce(&nb, 0x1000, 4, false), -1); /* gone already */
	acc.ready = 1;
	assert_int_equal(bus_coalesce_apply(&nb), 21);
	assert_int_equal(acc.added, 21);
	assert_int_equal(bus_coalesce_apply(&nb), 21); /* nothing twice */
	assert_int_equal(acc.added, 21);
	/* Now taken at once, and removed from the accelerator. */
	assert_int_equal(bus_coalesce(&nb, 0x3000, 8, true), 0);
	assert_int_equal(acc.added, 22);
	assert_int_equal(bus_coalesce(&nb, 0x171, 6, false), 0);
	assert_int_equal(acc.removed, 1);
	assert_int_equal(acc.last_addr, 0x171);
	assert_int_equal(acc.last_len, 6);
	bus_destroy(&nb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_init, teardown),
		cmocka_unit_test_setup_teardown(test_overlap_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_and_unregister, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dispatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unclaimed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_high_addresses, setup, teardown),
		cmocka_unit_test(test_coalesce_before_the_vm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
