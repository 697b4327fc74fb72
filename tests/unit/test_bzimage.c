#include "cmocka_prelude.h"

#include <string.h>

#include "bzimage_fixture.h"

static uint8_t img[FIX_FILE_SIZE];

static int setup(void **state)
{
	(void)state;
	fixture_bzimage(img, sizeof(img));
	return 0;
}

static enum bzimage_error parse(uint64_t file_size, struct bzimage *bz)
{
	return bzimage_parse(img, BZ_HEADER_BYTES, file_size, bz);
}

static void test_valid(void **state)
{
	struct bzimage bz;

	(void)state;
	memset(&bz, 0, sizeof(bz));
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_OK);
	assert_int_equal(bz.version, 0x020f);
	assert_int_equal(bz.setup_size, FIX_SETUP_SIZE);
	assert_int_equal(bz.header_end, 0x202 + FIX_JUMP);
	assert_int_equal(bz.kernel_size, FIX_KERNEL_SIZE);
	assert_int_equal(bz.init_size, FIX_INIT_SIZE);
	assert_int_equal(bz.initrd_addr_max, FIX_INITRD_ADDR_MAX);
	assert_int_equal(bz.cmdline_size, FIX_CMDLINE_SIZE);

	/* The whole image given as the buffer parses the same. */
	memset(&bz, 0, sizeof(bz));
	assert_int_equal(bzimage_parse(img, sizeof(img), sizeof(img), &bz), BZ_OK);
	assert_int_equal(bz.kernel_size, FIX_KERNEL_SIZE);

	/* A file longer than syssize says: the kernel is the rest of it. */
	assert_int_equal(parse(FIX_FILE_SIZE + 1000, &bz), BZ_OK);
	assert_int_equal(bz.kernel_size, FIX_KERNEL_SIZE + 1000);

	/* Exactly the minimum version. */
	le16_put(img + BZ_VERSION, BZ_MIN_VERSION);
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_OK);
	assert_int_equal(bz.version, BZ_MIN_VERSION);
}

static void test_setup_sects(void **state)
{
	struct bzimage bz;

	(void)state;
	/* setup_sects 0 means 4. */
	img[BZ_SETUP_SECTS] = 0;
	assert_int_equal(parse(5 * 512 + FIX_KERNEL_SIZE, &bz), BZ_OK);
	assert_int_equal(bz.setup_size, 5 * 512);
	assert_int_equal(bz.kernel_size, FIX_KERNEL_SIZE);
	img[BZ_SETUP_SECTS] = 1;
	assert_int_equal(parse(2 * 512 + FIX_KERNEL_SIZE, &bz), BZ_OK);
	assert_int_equal(bz.setup_size, 1024);
	img[BZ_SETUP_SECTS] = 0xff;
	assert_int_equal(parse(256 * 512 + FIX_KERNEL_SIZE, &bz), BZ_OK);
	assert_int_equal(bz.setup_size, 256 * 512);
	assert_int_equal(parse(256 * 512 + FIX_KERNEL_SIZE - 1, &bz), BZ_TRUNCATED);
}

static void test_header_end(void **state)
{
	struct bzimage bz;

	(void)state;
	img[BZ_JUMP + 1] = 0;
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_OK);
	assert_int_equal(bz.header_end, 0x202);
	img[BZ_JUMP + 1] = BZ_HEADER_BYTES - 0x202;
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_OK);
	assert_int_equal(bz.header_end, BZ_HEADER_BYTES);
	/* Never past what was read. */
	img[BZ_JUMP + 1] = BZ_HEADER_BYTES - 0x202 + 1;
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_OK);
	assert_int_equal(bz.header_end, BZ_HEADER_BYTES);
	img[BZ_JUMP + 1] = 0xff;
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_OK);
	assert_int_equal(bz.header_end, BZ_HEADER_BYTES);
}

static void test_too_small(void **state)
{
	struct bzimage bz;

	(void)state;
	assert_int_equal(bzimage_parse(img, 0, 0, &bz), BZ_TOO_SMALL);
	assert_int_equal(bzimage_parse(img, 512, 512, &bz), BZ_TOO_SMALL);
	assert_int_equal(bzimage_parse(img, BZ_HEADER_BYTES - 1, FIX_FILE_SIZE, &bz),
			 BZ_TOO_SMALL);
	/* A file smaller than the buffer read from it is inconsistent. */
	assert_int_equal(bzimage_parse(img, BZ_HEADER_BYTES, BZ_HEADER_BYTES - 1, &bz),
			 BZ_TOO_SMALL);
}

static void test_bad_magic(void **state)
{
	struct bzimage bz;

	(void)state;
	img[BZ_BOOT_FLAG] = 0x56;
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_NOT_BZIMAGE);
	fixture_bzimage(img, sizeof(img));
	img[BZ_BOOT_FLAG + 1] = 0;
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_NOT_BZIMAGE);
	fixture_bzimage(img, sizeof(img));
	memcpy(img + BZ_HEADER_MAGIC, "HdrT", 4);
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_NOT_BZIMAGE);
	fixture_bzimage(img, sizeof(img));
	memcpy(img + BZ_HEADER_MAGIC, "hdrs", 4);
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_NOT_BZIMAGE);
	/* All zeroes: no signature at all. */
	memset(img, 0, sizeof(img));
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_NOT_BZIMAGE);
}

static void test_too_old(void **state)
{
	struct bzimage bz;

	(void)state;
	le16_put(img + BZ_VERSION, BZ_MIN_VERSION - 1);
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_TOO_OLD);
	le16_put(img + BZ_VERSION, 0x0200);
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_TOO_OLD);
	/* Little-endian: bytes 0b 02 are 2.11, although read big-endian
	 * they would be a (new) 0x0b02. */
	img[BZ_VERSION] = 0x0b;
	img[BZ_VERSION + 1] = 0x02;
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_TOO_OLD);
	img[BZ_VERSION] = 0x0c;
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_OK);
	assert_int_equal(bz.version, 0x020c);
}

static void test_not_64bit(void **state)
{
	struct bzimage bz;

	(void)state;
	le16_put(img + BZ_XLOADFLAGS, 0x02); /* only XLF_CAN_BE_LOADED_ABOVE_4G */
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_NOT_64BIT);
	le16_put(img + BZ_XLOADFLAGS, 0xfffe);
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_NOT_64BIT);
}

static void test_not_loaded_high(void **state)
{
	struct bzimage bz;

	(void)state;
	img[BZ_LOADFLAGS] = 0x80 | 0x40 | 0x20; /* everything but LOADED_HIGH */
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_NOT_LOADED_HIGH);
}

static void test_truncated(void **state)
{
	struct bzimage bz;

	(void)state;
	/* One byte short of what syssize promises. */
	assert_int_equal(parse(FIX_FILE_SIZE - 1, &bz), BZ_TRUNCATED);
	/* No kernel after the setup at all. */
	assert_int_equal(parse(FIX_SETUP_SIZE, &bz), BZ_TRUNCATED);
	/* Setup larger than the file. */
	assert_int_equal(parse(BZ_HEADER_BYTES, &bz), BZ_TRUNCATED);
	/* syssize 0: no protected-mode kernel. */
	le32_put(img + BZ_SYSSIZE, 0);
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_TRUNCATED);
	/* A huge syssize cannot overflow the check. */
	le32_put(img + BZ_SYSSIZE, 0xffffffffu);
	assert_int_equal(parse(FIX_FILE_SIZE, &bz), BZ_TRUNCATED);
	assert_int_equal(parse(0xffffffffULL * 16 + FIX_SETUP_SIZE, &bz), BZ_OK);
	assert_int_equal(bz.kernel_size, 0xffffffffULL * 16);
	assert_int_equal(parse(0xffffffffULL * 16 + FIX_SETUP_SIZE - 1, &bz), BZ_TRUNCATED);
}

static void test_strerror(void **state)
{
	static const enum bzimage_error all[] = {
		BZ_OK, BZ_TOO_SMALL, BZ_NOT_BZIMAGE, BZ_TOO_OLD,
		BZ_NOT_64BIT, BZ_NOT_LOADED_HIGH, BZ_TRUNCATED,
	};
	size_t i, j;

	(void)state;
	/* Every error has its own message. */
	for (i = 0; i < ARRAY_LEN(all); i++) {
		assert_non_null(bzimage_strerror(all[i]));
		assert_string_not_equal(bzimage_strerror(all[i]), "unknown error");
		for (j = 0; j < i; j++)
			assert_string_not_equal(bzimage_strerror(all[i]), bzimage_strerror(all[j]));
	}
	assert_string_equal(bzimage_strerror((enum bzimage_error)99), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_valid, setup),
		cmocka_unit_test_setup(test_setup_sects, setup),
		cmocka_unit_test_setup(test_header_end, setup),
		cmocka_unit_test_setup(test_too_small, setup),
		cmocka_unit_test_setup(test_bad_magic, setup),
		cmocka_unit_test_setup(test_too_old, setup),
		cmocka_unit_test_setup(test_not_64bit, setup),
		cmocka_unit_test_setup(test_not_loaded_high, setup),
		cmocka_unit_test_setup(test_truncated, setup),
		cmocka_unit_test_setup(test_strerror, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
