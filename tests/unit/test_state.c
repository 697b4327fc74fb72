/* The state record writer and its reader for hostile input: fields round
 * trip little-endian; reading past the end yields zeros and is reported
 * once at the end, as are trailing bytes and a bool that is not 0 or 1. */
#include "cmocka_prelude.h"

#include <string.h>

#include "util/state.h"

static void test_round_trip(void **state)
{
	struct state_writer w;
	struct state_reader r;
	struct error err = { 0 };
	uint8_t blob[300], back[300];
	char s[256];
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)(i * 7);
	state_writer_init(&w);
	state_put_u8(&w, 0xa5);
	state_put_u16(&w, 0x1234);
	state_put_u32(&w, 0xdeadbeef);
	state_put_u64(&w, 0x0102030405060708ULL);
	state_put_bool(&w, true);
	state_put_str(&w, "virtio-blk0");
	state_put_bytes(&w, blob, sizeof(blob)); /* grows past the first 256 */
	assert_false(w.failed);
	assert_int_equal(w.len, 1 + 2 + 4 + 8 + 1 + 12 + sizeof(blob));
	assert_int_equal(w.buf[1], 0x34); /* little-endian */

	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(state_get_u8(&r), 0xa5);
	assert_int_equal(state_get_u16(&r), 0x1234);
	assert_int_equal(state_get_u32(&r), 0xdeadbeef);
	assert_int_equal(state_get_u64(&r), 0x0102030405060708ULL);
	assert_true(state_get_bool(&r));
	state_get_str(&r, s, sizeof(s));
	assert_string_equal(s, "virtio-blk0");
	state_get_bytes(&r, back, sizeof(back));
	assert_memory_equal(back, blob, sizeof(blob));
	assert_int_equal(state_reader_done(&r, &err), 0);
	/* A CRC taken piece by piece is the CRC of the whole. */
	assert_int_equal(state_crc32_more(state_crc32(blob, 100), blob + 100, sizeof(blob) - 100),
			 state_crc32(blob, sizeof(blob)));
	assert_int_equal(state_crc32_more(0, blob, sizeof(blob)), state_crc32(blob, sizeof(blob)));
	state_writer_free(&w);
}

static void test_hostile(void **state)
{
	static const uint8_t two[] = { 1, 2 };
	static const uint8_t flag[] = { 2 };
	struct state_reader r;
	struct error err = { 0 };
	uint8_t buf[4] = { 9, 9, 9, 9 };

	(void)state;
	/* Past the end: zeros, and the record is called truncated. */
	state_reader_init(&r, two, sizeof(two));
	assert_int_equal(state_get_u32(&r), 0);
	assert_int_equal(state_get_u8(&r), 0); /* sticky: nothing more is read */
	state_get_bytes(&r, buf, sizeof(buf));
	assert_int_equal(buf[0], 0);
	assert_null(state_get_span(&r, 1));
	assert_int_equal(state_reader_done(&r, &err), -1);
	assert_non_null(strstr(err.msg, "truncated"));

	/* Bytes left over. */
	memset(&err, 0, sizeof(err));
	state_reader_init(&r, two, sizeof(two));
	assert_int_equal(state_get_u8(&r), 1);
	assert_int_equal(state_reader_done(&r, &err), -1);
	assert_non_null(strstr(err.msg, "1 unexpected trailing byte"));

	/* A flag that is neither. */
	memset(&err, 0, sizeof(err));
	state_reader_init(&r, flag, sizeof(flag));
	(void)state_get_bool(&r);
	assert_int_equal(state_reader_done(&r, &err), -1);
	assert_non_null(strstr(err.msg, "malformed"));

	/* A string longer than the caller's buffer comes back empty. */
	{
		uint8_t str[] = { 5, 'a', 'b', 'c', 'd', 'e' };
		char small[4];

		state_reader_init(&r, str, sizeof(str));
		state_get_str(&r, small, sizeof(small));
		assert_string_equal(small, "");
		assert_int_equal(state_reader_done(&r, NULL), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
