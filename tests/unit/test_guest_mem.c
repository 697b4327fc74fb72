#include "cmocka_prelude.h"

#include <string.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "mem/guest_mem.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

static void test_layout(void **state)
{
	struct guest_mem m;

	(void)state;
	memset(&m, 0xa5, sizeof(m));
	guest_mem_layout(&m, 64 * MIB);
	assert_null(m.host);
	assert_int_equal(m.size, 64 * MIB);
	assert_int_equal(m.low_size, 64 * MIB);
	assert_int_equal(guest_mem_high_size(&m), 0);
	/* Layout alone maps nothing. */
	assert_null(guest_mem_ptr(&m, 0, 1));
	assert_int_equal(guest_mem_resident(&m), 0);

	guest_mem_layout(&m, 3 * GIB - 1);
	assert_int_equal(m.low_size, 3 * GIB - 1);
	assert_int_equal(guest_mem_high_size(&m), 0);
	guest_mem_layout(&m, 3 * GIB);
	assert_int_equal(m.low_size, 3 * GIB);
	assert_int_equal(guest_mem_high_size(&m), 0);
	guest_mem_layout(&m, 3 * GIB + 16 * MIB);
	assert_int_equal(m.low_size, LOW_RAM_END);
	assert_int_equal(guest_mem_high_size(&m), 16 * MIB);
	guest_mem_layout(&m, 8 * GIB);
	assert_int_equal(m.low_size, 3 * GIB);
	assert_int_equal(guest_mem_high_size(&m), 5 * GIB);
	assert_int_equal(m.size, 8 * GIB);
}

static void test_small(void **state)
{
	struct guest_mem m;
	const uint64_t sz = 64 * MIB;
	uint8_t *p;

	(void)state;
	assert_int_equal(guest_mem_map(&m, sz), 0);
	assert_non_null(m.host);
	assert_int_equal(m.low_size, sz);
	/* On a 2 MiB host boundary, so KVM can use huge pages. */
	assert_int_equal((uintptr_t)m.host % (2 * MIB), 0);

	assert_ptr_equal(guest_mem_ptr(&m, 0, 1), m.host);
	assert_ptr_equal(guest_mem_ptr(&m, 0, sz), m.host);
	assert_null(guest_mem_ptr(&m, 0, sz + 1));
	assert_ptr_equal(guest_mem_ptr(&m, 0x7000, 4096), m.host + 0x7000);
	assert_ptr_equal(guest_mem_ptr(&m, sz - 1, 1), m.host + sz - 1);
	assert_ptr_equal(guest_mem_ptr(&m, sz - 16, 16), m.host + sz - 16);
	assert_null(guest_mem_ptr(&m, sz - 16, 17));
	assert_null(guest_mem_ptr(&m, sz, 1));
	assert_null(guest_mem_ptr(&m, sz + 4096, 1));
	/* Nothing at 4 GiB without high RAM. */
	assert_null(guest_mem_ptr(&m, HIGH_RAM_START, 1));
	assert_null(guest_mem_ptr(&m, HIGH_RAM_START, 0));
	/* Lengths that would wrap around. */
	assert_null(guest_mem_ptr(&m, ~0ULL - 1, 16));
	assert_null(guest_mem_ptr(&m, ~0ULL, 1));
	assert_null(guest_mem_ptr(&m, 0, UINT64_MAX));
	assert_null(guest_mem_ptr(&m, 1, UINT64_MAX));
	assert_null(guest_mem_ptr(&m, sz - 1, UINT64_MAX));
	/* len 0: a pointer anywhere inside RAM, NULL at or past its end. */
	assert_ptr_equal(guest_mem_ptr(&m, 0, 0), m.host);
	assert_ptr_equal(guest_mem_ptr(&m, sz - 1, 0), m.host + sz - 1);
	assert_null(guest_mem_ptr(&m, sz, 0));

	/* The memory is really there, first to last byte. */
	p = guest_mem_ptr(&m, 0, 1);
	*p = 0x11;
	p = guest_mem_ptr(&m, sz - 1, 1);
	*p = 0x22;
	assert_int_equal(m.host[0], 0x11);
	assert_int_equal(m.host[sz - 1], 0x22);

	guest_mem_unmap(&m);
	assert_null(m.host);
	assert_null(guest_mem_ptr(&m, 0, 1));
	guest_mem_unmap(&m); /* harmless twice */
}

static void test_split(void **state)
{
	struct guest_mem m;
	const uint64_t high = 16 * MIB;
	uint8_t *p;

	(void)state;
	assert_int_equal(guest_mem_map(&m, 3 * GIB + high), 0);
	assert_int_equal((uintptr_t)m.host % (2 * MIB), 0);
	assert_int_equal(m.low_size, 3 * GIB);
	assert_int_equal(guest_mem_high_size(&m), high);

	/* The end of low RAM. */
	assert_ptr_equal(guest_mem_ptr(&m, 3 * GIB - 1, 1), m.host + 3 * GIB - 1);
	assert_ptr_equal(guest_mem_ptr(&m, 3 * GIB - 4096, 4096), m.host + 3 * GIB - 4096);
	assert_null(guest_mem_ptr(&m, 3 * GIB - 1, 2)); /* into the hole */
	/* The hole between 3 and 4 GiB. */
	assert_null(guest_mem_ptr(&m, 3 * GIB, 1));
	assert_null(guest_mem_ptr(&m, 3 * GIB, 0));
	assert_null(guest_mem_ptr(&m, IOAPIC_ADDR, 4));
	assert_null(guest_mem_ptr(&m, LAPIC_ADDR, 4));
	assert_null(guest_mem_ptr(&m, HIGH_RAM_START - 1, 1));
	assert_null(guest_mem_ptr(&m, HIGH_RAM_START - 1, 2)); /* across into high */
	/* A range spanning both parts is not contiguous on the host side. */
	assert_null(guest_mem_ptr(&m, 3 * GIB - 1, GIB + 2));
	/* High RAM, right after low RAM in the mapping. */
	assert_ptr_equal(guest_mem_ptr(&m, HIGH_RAM_START, 1), m.host + 3 * GIB);
	assert_ptr_equal(guest_mem_ptr(&m, HIGH_RAM_START, high), m.host + 3 * GIB);
	assert_null(guest_mem_ptr(&m, HIGH_RAM_START, high + 1));
	assert_ptr_equal(guest_mem_ptr(&m, HIGH_RAM_START + high - 8, 8),
			 m.host + 3 * GIB + high - 8);
	assert_null(guest_mem_ptr(&m, HIGH_RAM_START + high - 8, 9));
	assert_ptr_equal(guest_mem_ptr(&m, HIGH_RAM_START + high - 1, 0),
			 m.host + 3 * GIB + high - 1);
	assert_null(guest_mem_ptr(&m, HIGH_RAM_START + high, 1));
	assert_null(guest_mem_ptr(&m, HIGH_RAM_START + high, 0));
	assert_null(guest_mem_ptr(&m, HIGH_RAM_START + 1, UINT64_MAX));
	assert_null(guest_mem_ptr(&m, ~0ULL - 1, 16));
	assert_null(guest_mem_ptr(&m, ~0ULL, 0));

	/* Writes through both parts land in the one mapping. */
	p = guest_mem_ptr(&m, HIGH_RAM_START + high - 1, 1);
	*p = 0x5a;
	assert_int_equal(m.host[m.size - 1], 0x5a);
	p = guest_mem_ptr(&m, 3 * GIB - 1, 1);
	*p = 0xa5;
	assert_int_equal(m.host[3 * GIB - 1], 0xa5);
	guest_mem_unmap(&m);
}

static void test_resident(void **state)
{
	struct guest_mem m;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), before, after;

	(void)state;
	assert_int_equal(guest_mem_map(&m, 64 * MIB), 0);
	before = guest_mem_resident(&m);
	assert_true(before <= 64 * MIB);
	/* Touch three pages far apart. */
	m.host[0] = 1;
	m.host[32 * MIB] = 1;
	m.host[64 * MIB - 1] = 1;
	after = guest_mem_resident(&m);
	assert_true(after >= 3 * page);
	assert_true(after <= 64 * MIB);
	assert_int_equal(after % page, 0);
	guest_mem_unmap(&m);
	assert_int_equal(guest_mem_resident(&m), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_small),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_resident),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
