#include "cmocka_prelude.h"

#include <string.h>

#include "arch/x86/bootparams.h"
#include "arch/x86/layout.h"
#include "bzimage_fixture.h"

static uint8_t img[FIX_FILE_SIZE];
static uint8_t bp[BOOT_PARAMS_SIZE];
static struct bzimage bz;

static int setup(void **state)
{
	(void)state;
	fixture_bzimage(img, sizeof(img));
	assert_int_equal(bzimage_parse(img, BZ_HEADER_BYTES, sizeof(img), &bz), BZ_OK);
	memset(bp, 0xcc, sizeof(bp)); /* stale data the build must clear */
	return 0;
}

static int in_range(size_t off, size_t start, size_t len)
{
	return off >= start && off < start + len;
}

/* Offsets boot_params_build writes itself rather than copying. */
static int loader_field(size_t off)
{
	return in_range(off, BZ_TYPE_OF_LOADER, 1) || in_range(off, BZ_LOADFLAGS, 1) ||
	       in_range(off, BZ_RAMDISK_IMAGE, 4) || in_range(off, BZ_RAMDISK_SIZE, 4) ||
	       in_range(off, BZ_HEAP_END_PTR, 2) || in_range(off, BZ_CMD_LINE_PTR, 4);
}

static void build(const struct e820_map *map, uint64_t cmdline, uint64_t initrd,
		  uint64_t initrd_size, uint64_t rsdp)
{
	struct boot_setup s = {
		.cmdline_addr = cmdline,
		.initrd_addr = initrd,
		.initrd_size = initrd_size,
		.rsdp_addr = rsdp,
		.e820 = map,
	};

	boot_params_build(bp, img, &bz, &s);
}

static void test_header_copied(void **state)
{
	struct e820_map map;
	size_t i;

	(void)state;
	e820_build(&map, 256 << 20, 0);
	build(&map, CMDLINE_ADDR, 0, 0, 0xe0000);
	for (i = BZ_SETUP_SECTS; i < bz.header_end; i++) {
		if (!loader_field(i) && bp[i] != img[i])
			fail_msg("header byte 0x%zx: 0x%02x, image has 0x%02x", i, bp[i], img[i]);
	}
	assert_int_equal(bp[BZ_SETUP_SECTS], FIX_SETUP_SECTS);
	assert_int_equal(le16_get(bp + BZ_BOOT_FLAG), 0xaa55);
	assert_memory_equal(bp + BZ_HEADER_MAGIC, "HdrS", 4);
	assert_int_equal(le16_get(bp + BZ_VERSION), 0x020f);
	assert_int_equal(le32_get(bp + BZ_INIT_SIZE), FIX_INIT_SIZE);
	assert_int_equal(le32_get(bp + BZ_CMDLINE_SIZE), FIX_CMDLINE_SIZE);
	/* Nothing past the end of the header is taken from the image. */
	for (i = bz.header_end; i < BZ_HEADER_BYTES; i++) {
		if (bp[i] != 0)
			fail_msg("byte 0x%zx past the header is 0x%02x", i, bp[i]);
	}
}

static void test_loader_fields(void **state)
{
	struct e820_map map;

	(void)state;
	e820_build(&map, 256 << 20, 0);
	build(&map, CMDLINE_ADDR, 0x0fedc000, 0x123456, 0xe0010);
	assert_int_equal(bp[BZ_TYPE_OF_LOADER], 0xff);
	/* LOADED_HIGH kept, CAN_USE_HEAP added. */
	assert_int_equal(bp[BZ_LOADFLAGS], BZ_LOADED_HIGH | BZ_CAN_USE_HEAP);
	assert_int_equal(le16_get(bp + BZ_HEAP_END_PTR), 0xfe00);
	assert_int_equal(le32_get(bp + BZ_CMD_LINE_PTR), CMDLINE_ADDR);
	assert_int_equal(le32_get(bp + BP_EXT_CMD_LINE_PTR), 0);
	assert_int_equal(le32_get(bp + BZ_RAMDISK_IMAGE), 0x0fedc000);
	assert_int_equal(le32_get(bp + BZ_RAMDISK_SIZE), 0x123456);
	assert_int_equal(le32_get(bp + BP_EXT_RAMDISK_IMAGE), 0);
	assert_int_equal(le32_get(bp + BP_EXT_RAMDISK_SIZE), 0);
	assert_int_equal(le64_get(bp + BP_ACPI_RSDP_ADDR), 0xe0010);

	/* Addresses above 4 GiB are split into the ext_ fields. */
	build(&map, 0x123456789ULL, 0x2fedcb000ULL, 0x500000001ULL, 0x1122334455667788ULL);
	assert_int_equal(le32_get(bp + BZ_CMD_LINE_PTR), 0x23456789);
	assert_int_equal(le32_get(bp + BP_EXT_CMD_LINE_PTR), 0x1);
	assert_int_equal(le32_get(bp + BZ_RAMDISK_IMAGE), 0xfedcb000);
	assert_int_equal(le32_get(bp + BP_EXT_RAMDISK_IMAGE), 0x2);
	assert_int_equal(le32_get(bp + BZ_RAMDISK_SIZE), 0x00000001);
	assert_int_equal(le32_get(bp + BP_EXT_RAMDISK_SIZE), 0x5);
	assert_int_equal(le64_get(bp + BP_ACPI_RSDP_ADDR), 0x1122334455667788ULL);

	/* No initrd. */
	build(&map, CMDLINE_ADDR, 0, 0, 0);
	assert_int_equal(le32_get(bp + BZ_RAMDISK_IMAGE), 0);
	assert_int_equal(le32_get(bp + BZ_RAMDISK_SIZE), 0);
}

static void test_rest_cleared(void **state)
{
	struct e820_map map;
	size_t i;

	(void)state;
	e820_build(&map, 256 << 20, 0);
	build(&map, CMDLINE_ADDR, 0, 0, 0xe0000);
	/* Below the header only the fields the loader sets may be non-zero. */
	for (i = 0; i < BZ_SETUP_SECTS; i++) {
		if (in_range(i, BP_ACPI_RSDP_ADDR, 8) || i == BP_E820_ENTRIES)
			continue;
		if (bp[i] != 0)
			fail_msg("byte 0x%zx is 0x%02x", i, bp[i]);
	}
	/* After the e820 table, the page is zero. */
	for (i = BP_E820_TABLE + 20 * map.count; i < BOOT_PARAMS_SIZE; i++) {
		if (bp[i] != 0)
			fail_msg("byte 0x%zx is 0x%02x", i, bp[i]);
	}
}

static void test_e820_table(void **state)
{
	struct e820_map map = { 0 };
	unsigned int i;

	(void)state;
	e820_build(&map, 3ULL << 30, 5ULL << 30);
	assert_true(map.count >= 4);
	build(&map, CMDLINE_ADDR, 0, 0, 0xe0000);
	assert_int_equal(bp[BP_E820_ENTRIES], map.count);
	for (i = 0; i < map.count; i++) {
		const uint8_t *e = bp + BP_E820_TABLE + 20 * i;

		assert_int_equal(le64_get(e), map.entry[i].addr);
		assert_int_equal(le64_get(e + 8), map.entry[i].size);
		assert_int_equal(le32_get(e + 16), map.entry[i].type);
	}
	/* Spot-check the raw layout of the last entry: RAM at 4 GiB. */
	i = map.count - 1;
	assert_int_equal(le64_get(bp + BP_E820_TABLE + 20 * i), 0x100000000ULL);
	assert_int_equal(le64_get(bp + BP_E820_TABLE + 20 * i + 8), 5ULL << 30);
	assert_int_equal(le32_get(bp + BP_E820_TABLE + 20 * i + 16), 1);
	/* The entry after the last one is not written. */
	assert_int_equal(le64_get(bp + BP_E820_TABLE + 20 * map.count), 0);

	/* Hand-made map with the maximum number of entries. */
	memset(&map, 0, sizeof(map));
	map.count = E820_MAX_ENTRIES;
	for (i = 0; i < map.count; i++)
		map.entry[i] = (struct e820_entry){ 0x1000ULL * i + 0x100000000ULL * i,
						    0x1000 + i, 1 + (i & 1) };
	build(&map, CMDLINE_ADDR, 0, 0, 0);
	assert_int_equal(bp[BP_E820_ENTRIES], E820_MAX_ENTRIES);
	for (i = 0; i < map.count; i++) {
		const uint8_t *e = bp + BP_E820_TABLE + 20 * i;

		assert_int_equal(le64_get(e), map.entry[i].addr);
		assert_int_equal(le64_get(e + 8), map.entry[i].size);
		assert_int_equal(le32_get(e + 16), map.entry[i].type);
	}
}

static void test_short_header(void **state)
{
	struct e820_map map;
	size_t i;

	(void)state;
	/* A header that ends right after the magic: later fields of the
	 * image are not copied. */
	img[BZ_JUMP + 1] = 0;
	assert_int_equal(bzimage_parse(img, BZ_HEADER_BYTES, sizeof(img), &bz), BZ_OK);
	e820_build(&map, 256 << 20, 0);
	build(&map, CMDLINE_ADDR, 0, 0, 0);
	assert_memory_equal(bp + BZ_SETUP_SECTS, img + BZ_SETUP_SECTS, 0x202 - BZ_SETUP_SECTS);
	for (i = 0x202; i < BZ_HEADER_BYTES; i++) {
		if (!loader_field(i) && bp[i] != 0)
			fail_msg("byte 0x%zx is 0x%02x", i, bp[i]);
	}
	assert_int_equal(bp[BZ_TYPE_OF_LOADER], 0xff);
	assert_int_equal(bp[BZ_LOADFLAGS], BZ_CAN_USE_HEAP);
}

static void test_initrd_place(void **state)
{
	struct bzimage b = { .initrd_addr_max = 0x7fffffff };
	uint64_t a;

	(void)state;
	/* Below the top of low RAM, page aligned. */
	a = initrd_place(&b, 256 << 20, 0x2800000, 0x123456);
	assert_int_equal(a, 0x0fedc000);
	assert_true(a + 0x123456 <= 256 << 20);
	/* A page-multiple size ends exactly at the top. */
	assert_int_equal(initrd_place(&b, 256 << 20, 0x2800000, 0x100000), 0x0ff00000);
	/* The kernel's limit wins over RAM when lower... */
	assert_int_equal(initrd_place(&b, 3ULL << 30, 0x2800000, 0x100000), 0x7ff00000);
	/* ...and an unaligned top is rounded down. */
	assert_int_equal(initrd_place(&b, 0x10000800, 0, 0x1000), 0x0ffff000);
	b.initrd_addr_max = 0x37ffffff;
	assert_int_equal(initrd_place(&b, 3ULL << 30, 0x2800000, 0x1000), 0x37fff000);
	/* initrd_addr_max = 4 GiB - 1 must not wrap. */
	b.initrd_addr_max = 0xffffffff;
	assert_int_equal(initrd_place(&b, 3ULL << 30, 0, 0x1000), 0xbffff000);
	assert_int_equal(initrd_place(&b, 0x100000000ULL, 0, 0x1000), 0xfffff000);
	b.initrd_addr_max = 0;
	assert_int_equal(initrd_place(&b, 3ULL << 30, 0, 1), 0);

	b.initrd_addr_max = 0x7fffffff;
	/* Exactly fits between min_addr and the top. */
	assert_int_equal(initrd_place(&b, 64 << 20, 32 << 20, 32 << 20), 32 << 20);
	/* One byte more does not. */
	assert_int_equal(initrd_place(&b, 64 << 20, 32 << 20, (32 << 20) + 1), 0);
	/* Rounding down pushes it under min_addr. */
	assert_int_equal(initrd_place(&b, (64 << 20) + 0x800, (32 << 20) + 0x800, 32 << 20), 0);
	/* Larger than all of RAM; empty. */
	assert_int_equal(initrd_place(&b, 64 << 20, 0, (64 << 20) + 1), 0);
	assert_int_equal(initrd_place(&b, 64 << 20, 0, UINT64_MAX), 0);
	assert_int_equal(initrd_place(&b, 64 << 20, 0, 0), 0);
	/* min_addr above RAM. */
	assert_int_equal(initrd_place(&b, 64 << 20, 128 << 20, 0x1000), 0);
}

static void test_kernel_min_ram(void **state)
{
	struct bzimage b = { 0 };

	(void)state;
	/* Decompression space dominates for a typical kernel. */
	b.kernel_size = 10 << 20;
	b.init_size = FIX_INIT_SIZE;
	assert_int_equal(kernel_min_ram(&b), KERNEL_MIN_RUN_ADDR + FIX_INIT_SIZE);
	/* A kernel bigger than its init_size window needs its own size. */
	b.kernel_size = 64 << 20;
	assert_int_equal(kernel_min_ram(&b), KERNEL_LOAD_ADDR + (64 << 20));
	b.kernel_size = 0;
	b.init_size = 0;
	assert_int_equal(kernel_min_ram(&b), KERNEL_MIN_RUN_ADDR);
	b.init_size = 0xffffffff;
	assert_int_equal(kernel_min_ram(&b), KERNEL_MIN_RUN_ADDR + 0xffffffffULL);
	/* The parsed fixture: 4 KiB kernel, 24 MiB init_size. */
	assert_int_equal(kernel_min_ram(&bz), 0x1000000 + 0x1800000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_header_copied, setup),
		cmocka_unit_test_setup(test_loader_fields, setup),
		cmocka_unit_test_setup(test_rest_cleared, setup),
		cmocka_unit_test_setup(test_e820_table, setup),
		cmocka_unit_test_setup(test_short_header, setup),
		cmocka_unit_test_setup(test_initrd_place, setup),
		cmocka_unit_test_setup(test_kernel_min_ram, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
