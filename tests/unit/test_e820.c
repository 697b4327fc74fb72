#include "cmocka_prelude.h"

#include <string.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "mem/guest_mem.h"

/* What the code deliberately leaves out of RAM below 1 MiB: the EBDA page
 * (reserved), the VGA/ROM hole (absent) and the BIOS area holding the
 * ACPI tables (reserved). */
#define LOW_HOLES (KERNEL_LOAD_ADDR - EBDA_START)

static void build_for(struct e820_map *map, uint64_t size)
{
	struct guest_mem m;

	guest_mem_layout(&m, size);
	memset(map, 0xa5, sizeof(*map));
	e820_build(map, m.low_size, guest_mem_high_size(&m));
}

static uint64_t ram_total(const struct e820_map *map)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < map->count; i++)
		if (map->entry[i].type == E820_RAM)
			sum += map->entry[i].size;
	return sum;
}

/* Sorted, non-empty, non-overlapping; only RAM and reserved entries. */
static void check_well_formed(const struct e820_map *map)
{
	unsigned int i;

	assert_true(map->count > 0);
	assert_true(map->count <= E820_MAX_ENTRIES);
	for (i = 0; i < map->count; i++) {
		const struct e820_entry *e = &map->entry[i];

		assert_true(e->size > 0);
		assert_true(e->addr + e->size > e->addr);
		assert_true(e->type == E820_RAM || e->type == E820_RESERVED);
		if (i > 0) {
			const struct e820_entry *p = &map->entry[i - 1];

			if (p->addr + p->size > e->addr)
				fail_msg("entry %u [0x%llx+0x%llx) overlaps or precedes entry %u "
					 "at 0x%llx", i - 1, (unsigned long long)p->addr,
					 (unsigned long long)p->size, i,
					 (unsigned long long)e->addr);
		}
	}
}

/* No RAM in [start, end). */
static void check_no_ram_in(const struct e820_map *map, uint64_t start, uint64_t end)
{
	unsigned int i;

	for (i = 0; i < map->count; i++) {
		const struct e820_entry *e = &map->entry[i];

		if (e->type == E820_RAM && e->addr < end && start < e->addr + e->size)
			fail_msg("RAM entry [0x%llx+0x%llx) in the hole [0x%llx, 0x%llx)",
				 (unsigned long long)e->addr, (unsigned long long)e->size,
				 (unsigned long long)start, (unsigned long long)end);
	}
}

static void check_entry(const struct e820_map *map, unsigned int i, uint64_t addr,
			uint64_t size, uint32_t type)
{
	assert_true(i < map->count);
	assert_int_equal(map->entry[i].addr, addr);
	assert_int_equal(map->entry[i].size, size);
	assert_int_equal(map->entry[i].type, type);
}

/* The low megabyte is the same for every size. */
static void check_low_megabyte(const struct e820_map *map)
{
	check_entry(map, 0, 0, 0x9fc00, E820_RAM);
	check_entry(map, 1, 0x9fc00, 0x400, E820_RESERVED);
	check_entry(map, 2, 0xe0000, 0x20000, E820_RESERVED);
	check_no_ram_in(map, 0x9fc00, 0x100000);
}

static void test_256m(void **state)
{
	struct e820_map map;

	(void)state;
	build_for(&map, 256ULL << 20);
	check_well_formed(&map);
	assert_int_equal(map.count, 4);
	check_low_megabyte(&map);
	check_entry(&map, 3, 0x100000, (256ULL << 20) - 0x100000, E820_RAM);
	assert_int_equal(ram_total(&map), (256ULL << 20) - LOW_HOLES);
}

static void test_3g(void **state)
{
	struct e820_map map;

	(void)state;
	build_for(&map, 3ULL << 30);
	check_well_formed(&map);
	/* Exactly fills low RAM: nothing above 4 GiB. */
	assert_int_equal(map.count, 4);
	check_low_megabyte(&map);
	check_entry(&map, 3, 0x100000, LOW_RAM_END - 0x100000, E820_RAM);
	assert_int_equal(ram_total(&map), (3ULL << 30) - LOW_HOLES);
	check_no_ram_in(&map, LOW_RAM_END, UINT64_MAX);
}

static void test_4g(void **state)
{
	struct e820_map map;

	(void)state;
	build_for(&map, 4ULL << 30);
	check_well_formed(&map);
	assert_int_equal(map.count, 5);
	check_low_megabyte(&map);
	check_entry(&map, 3, 0x100000, LOW_RAM_END - 0x100000, E820_RAM);
	/* The gigabyte above 3 GiB is moved to 4 GiB. */
	check_entry(&map, 4, HIGH_RAM_START, 1ULL << 30, E820_RAM);
	check_no_ram_in(&map, LOW_RAM_END, HIGH_RAM_START);
	assert_int_equal(ram_total(&map), (4ULL << 30) - LOW_HOLES);
}

static void test_8g(void **state)
{
	struct e820_map map;

	(void)state;
	build_for(&map, 8ULL << 30);
	check_well_formed(&map);
	assert_int_equal(map.count, 5);
	check_low_megabyte(&map);
	check_entry(&map, 4, HIGH_RAM_START, 5ULL << 30, E820_RAM);
	check_no_ram_in(&map, LOW_RAM_END, HIGH_RAM_START);
	assert_int_equal(ram_total(&map), (8ULL << 30) - LOW_HOLES);
}

static void test_odd_sizes(void **state)
{
	static const uint64_t sizes[] = {
		1ULL << 20, (1ULL << 20) + 1, (3ULL << 30) - 4096, (3ULL << 30) + 4096,
		(3ULL << 30) + 1, 1ULL << 40,
	};
	struct e820_map map;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(sizes); i++) {
		build_for(&map, sizes[i]);
		check_well_formed(&map);
		check_low_megabyte(&map);
		check_no_ram_in(&map, LOW_RAM_END, HIGH_RAM_START);
		assert_int_equal(ram_total(&map), sizes[i] - LOW_HOLES);
	}
	/* Exactly 1 MiB: no RAM entry above the BIOS area at all. */
	build_for(&map, 1ULL << 20);
	assert_int_equal(map.count, 3);
}

static void test_rebuild_resets(void **state)
{
	struct e820_map map;

	(void)state;
	build_for(&map, 8ULL << 30);
	assert_int_equal(map.count, 5);
	/* Building again replaces the map instead of appending to it. */
	e820_build(&map, 256ULL << 20, 0);
	assert_int_equal(map.count, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_256m),
		cmocka_unit_test(test_3g),
		cmocka_unit_test(test_4g),
		cmocka_unit_test(test_8g),
		cmocka_unit_test(test_odd_sizes),
		cmocka_unit_test(test_rebuild_resets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
