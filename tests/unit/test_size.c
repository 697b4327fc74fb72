#include "cmocka_prelude.h"

#include "util/size.h"

static uint64_t size_ok(const char *s)
{
	uint64_t v = 0xdeadbeef;

	if (parse_size(s, &v) != 0)
		fail_msg("parse_size(\"%s\") failed", s);
	return v;
}

static void size_bad(const char *s)
{
	uint64_t v = 0x1234;

	if (parse_size(s, &v) != -1)
		fail_msg("parse_size(\"%s\") accepted it as %llu", s ? s : "(null)",
			 (unsigned long long)v);
	/* A rejected string leaves the output alone. */
	assert_int_equal(v, 0x1234);
}

static void test_size_suffixes(void **state)
{
	(void)state;
	assert_int_equal(size_ok("4096"), 4096);
	assert_int_equal(size_ok("0"), 0);
	assert_int_equal(size_ok("1k"), 1024);
	assert_int_equal(size_ok("1K"), 1024);
	assert_int_equal(size_ok("1024k"), 1024 * 1024);
	assert_int_equal(size_ok("512M"), 512ULL << 20);
	assert_int_equal(size_ok("512m"), 512ULL << 20);
	assert_int_equal(size_ok("2G"), 2ULL << 30);
	assert_int_equal(size_ok("3g"), 3ULL << 30);
	assert_int_equal(size_ok("1T"), 1ULL << 40);
	assert_int_equal(size_ok("512MiB"), 512ULL << 20);
	assert_int_equal(size_ok("512MIB"), 512ULL << 20);
	assert_int_equal(size_ok("2GB"), 2ULL << 30);
	assert_int_equal(size_ok("8kb"), 8192);
	assert_int_equal(size_ok("007M"), 7ULL << 20);
}

static void test_size_limits(void **state)
{
	(void)state;
	/* The largest value of each suffix that fits in 64 bits. */
	assert_int_equal(size_ok("18446744073709551615"), UINT64_MAX);
	assert_int_equal(size_ok("16777215T"), 16777215ULL << 40);
	assert_int_equal(size_ok("17179869183G"), 17179869183ULL << 30);
	size_bad("16777216T");
	size_bad("17179869184G");
	size_bad("18446744073709551616");
	size_bad("99999999999T");
	size_bad("99999999999999999999999");
}

static void test_size_malformed(void **state)
{
	(void)state;
	size_bad(NULL);
	size_bad("");
	size_bad("M");
	size_bad("-1");
	size_bad("+1");
	size_bad(" 1");
	size_bad("1 ");
	size_bad("12X");
	size_bad("1G5");
	size_bad("1GG");
	size_bad("1MiBx");
	size_bad("1i");
	size_bad("1iB");
	size_bad("0x10");
	size_bad("1.5G");
}

static void test_uint(void **state)
{
	unsigned int v = 77;

	(void)state;
	assert_int_equal(parse_uint("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_uint("1", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(parse_uint("254", &v), 0);
	assert_int_equal(v, 254);
	assert_int_equal(parse_uint("4294967295", &v), 0);
	assert_int_equal(v, 4294967295u);

	v = 77;
	assert_int_equal(parse_uint("4294967296", &v), -1);
	assert_int_equal(parse_uint("99999999999999999999999", &v), -1);
	assert_int_equal(parse_uint("", &v), -1);
	assert_int_equal(parse_uint(NULL, &v), -1);
	assert_int_equal(parse_uint("x", &v), -1);
	assert_int_equal(parse_uint("-1", &v), -1);
	assert_int_equal(parse_uint(" 1", &v), -1);
	assert_int_equal(parse_uint("4k", &v), -1);
	assert_int_equal(parse_uint("1 ", &v), -1);
	assert_int_equal(v, 77);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_suffixes),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_size_malformed),
		cmocka_unit_test(test_uint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
