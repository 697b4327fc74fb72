#include "cmocka_prelude.h"

#include <stdint.h>
#include <string.h>

#include "util/iov.h"

/* Three pieces of one 16-byte buffer, with an empty one in the middle:
 * bytes 0-4, (none), 5-10, 11-15. */
static uint8_t backing[16];
static struct iovec pieces[4];

static void make_pieces(void)
{
	for (unsigned int i = 0; i < sizeof(backing); i++)
		backing[i] = (uint8_t)i;
	pieces[0] = (struct iovec){ backing, 5 };
	pieces[1] = (struct iovec){ backing + 5, 0 };
	pieces[2] = (struct iovec){ backing + 5, 6 };
	pieces[3] = (struct iovec){ backing + 11, 5 };
}

static void test_iov_size_saturates(void **state)
{
	struct iovec huge[2] = { { NULL, SIZE_MAX - 1 }, { NULL, 2 } };

	(void)state;
	make_pieces();
	assert_int_equal(iov_size(pieces, 4), 16);
	assert_int_equal(iov_size(pieces, 0), 0);
	assert_true(iov_size(huge, 2) == SIZE_MAX);
}

static void test_iov_to_buf_offsets(void **state)
{
	uint8_t out[16];

	(void)state;
	make_pieces();
	/* Across every boundary, from every offset, for every length. */
	for (size_t off = 0; off <= 16; off++) {
		for (size_t len = 0; len <= 17; len++) {
			size_t want = off + len > 16 ? 16 - off : len;

			memset(out, 0xee, sizeof(out));
			assert_int_equal(iov_to_buf(pieces, 4, off, out, len), want);
			for (size_t k = 0; k < want; k++)
				assert_int_equal(out[k], off + k);
			if (want < sizeof(out))
				assert_int_equal(out[want], 0xee);
		}
	}
	/* An offset past the end copies nothing. */
	assert_int_equal(iov_to_buf(pieces, 4, 100, out, 4), 0);
}

static void test_iov_from_buf_writes_only_its_range(void **state)
{
	const uint8_t in[4] = { 0xa0, 0xa1, 0xa2, 0xa3 };

	(void)state;
	make_pieces();
	assert_int_equal(iov_from_buf(pieces, 4, 3, in, sizeof(in)), 4);
	for (unsigned int i = 0; i < 16; i++)
		assert_int_equal(backing[i], i >= 3 && i < 7 ? 0xa0 + i - 3 : i);
	/* Clipped at the end of the list. */
	assert_int_equal(iov_from_buf(pieces, 4, 14, in, sizeof(in)), 2);
	assert_int_equal(backing[15], 0xa1);
}

static void test_iov_slice(void **state)
{
	struct iovec out[4];
	unsigned int n;

	(void)state;
	make_pieces();
	n = iov_slice(out, 4, pieces, 4, 3, 10); /* bytes 3..12 */
	assert_int_equal(n, 3);
	assert_ptr_equal(out[0].iov_base, backing + 3);
	assert_int_equal(out[0].iov_len, 2);
	assert_ptr_equal(out[1].iov_base, backing + 5);
	assert_int_equal(out[1].iov_len, 6);
	assert_ptr_equal(out[2].iov_base, backing + 11);
	assert_int_equal(out[2].iov_len, 2);
	assert_int_equal(iov_size(out, n), 10);
	/* Too small a destination: stops, and the caller can tell. */
	n = iov_slice(out, 1, pieces, 4, 0, 16);
	assert_int_equal(n, 1);
	assert_int_equal(iov_size(out, n), 5);
	/* Past the end: nothing. */
	assert_int_equal(iov_slice(out, 4, pieces, 4, 16, 4), 0);
}

static void test_iov_drop_front(void **state)
{
	struct iovec copy[4], *v = copy;
	unsigned int n = 4;

	(void)state;
	make_pieces();
	memcpy(copy, pieces, sizeof(copy));
	iov_drop_front(&v, &n, 7); /* past the 5, the empty one, and 2 of the 6 */
	assert_int_equal(n, 2);
	assert_ptr_equal(v[0].iov_base, backing + 7);
	assert_int_equal(v[0].iov_len, 4);
	assert_int_equal(iov_size(v, n), 9);
	iov_drop_front(&v, &n, 100);
	assert_int_equal(n, 0);
}

/* One range end to end (empty buffers anywhere) is flat; a gap, an
 * overlap or the wrong order is not; nothing at all has no start. */
static void test_iov_flat(void **state)
{
	static uint8_t m[64];
	struct iovec one[3] = { { m, 16 }, { m + 16, 0 }, { m + 16, 48 } };
	struct iovec gap[2] = { { m, 16 }, { m + 17, 8 } };
	struct iovec swapped[2] = { { m + 16, 16 }, { m, 16 } };
	struct iovec empty[2] = { { m, 0 }, { m + 5, 0 } };

	(void)state;
	assert_ptr_equal(iov_flat(one, 3), m);
	assert_ptr_equal(iov_flat(one + 1, 2), m + 16);
	assert_null(iov_flat(gap, 2));
	assert_null(iov_flat(swapped, 2));
	assert_null(iov_flat(empty, 2));
	assert_null(iov_flat(NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iov_size_saturates),
		cmocka_unit_test(test_iov_to_buf_offsets),
		cmocka_unit_test(test_iov_from_buf_writes_only_its_range),
		cmocka_unit_test(test_iov_slice),
		cmocka_unit_test(test_iov_drop_front),
		cmocka_unit_test(test_iov_flat),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
