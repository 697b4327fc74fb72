#include "cmocka_prelude.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/zero.h"

/* A lone non-zero byte anywhere, at any alignment and length, is found;
 * the tail that is not a whole 64-byte block too. */
static void test_buffer_is_zero_finds_any_byte(void **state)
{
	static uint8_t buf[4096 + 64];
	size_t off, len, at;

	(void)state;
	for (off = 0; off < 9; off++) {
		for (len = 0; len <= 200; len++) {
			assert_true(buffer_is_zero(buf + off, len));
			for (at = 0; at < len; at++) {
				buf[off + at] = 0x80;
				assert_false(buffer_is_zero(buf + off, len));
				buf[off + at] = 0;
			}
		}
	}
	assert_true(buffer_is_zero(buf, 4096));
	buf[4095] = 1;
	assert_false(buffer_is_zero(buf, 4096));
	assert_true(buffer_is_zero(buf, 4095));
	assert_true(buffer_is_zero(buf + 4096, 64)); /* bytes past the one set */
}

/* Equal to zlib's CRC over real zeros, from any starting CRC. */
/* Runs of zero and non-zero pages, bounded by max. */
static void test_zero_run(void **state)
{
	static uint8_t ram[8 * 4096];

	(void)state;
	memset(ram, 0, sizeof(ram));
	ram[3 * 4096 + 4095] = 1; /* page 3: its last byte */
	ram[4 * 4096] = 1;	  /* page 4: its first */
	ram[6 * 4096 + 100] = 1;
	assert_int_equal(zero_run(ram, 8, 4096, true), 3);
	assert_int_equal(zero_run(ram, 2, 4096, true), 2);
	assert_int_equal(zero_run(ram, 8, 4096, false), 0);
	assert_int_equal(zero_run(ram + 3 * 4096, 5, 4096, false), 2);
	assert_int_equal(zero_run(ram + 3 * 4096, 1, 4096, false), 1);
	assert_int_equal(zero_run(ram + 5 * 4096, 3, 4096, true), 1);
	assert_int_equal(zero_run(ram + 7 * 4096, 1, 4096, true), 1);
	assert_int_equal(zero_run(ram, 0, 4096, true), 0);
}

static void test_crc32_of_zeros_matches_zlib(void **state)
{
	static const uint8_t zeros[1 << 20];
	static const uint32_t seeds[] = { 0, 1, 0xdeadbeef, 0xffffffff };
	unsigned int s;
	uint64_t n;

	(void)state;
	for (s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++)
		for (n = 0; n <= sizeof(zeros); n = n * 3 + 1)
			assert_int_equal(crc32_of_zeros(seeds[s], n),
					 (uint32_t)crc32(seeds[s], zeros, (uInt)n));
	/* Beyond 4 GiB: two halves chained give the same as one call. */
	assert_int_equal(crc32_of_zeros(crc32_of_zeros(7, 3ULL << 31), 3ULL << 31),
			 crc32_of_zeros(7, 3ULL << 32));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buffer_is_zero_finds_any_byte),
		cmocka_unit_test(test_crc32_of_zeros_matches_zlib),
		cmocka_unit_test(test_zero_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
