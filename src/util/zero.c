#include "util/zero.h"

#include <string.h>
#include <zlib.h>

bool buffer_is_zero(const void *p, size_t len)
{
	const unsigned char *b = p;

	/* 64 bytes at a time, OR-ed without a branch per word so the compiler
	 * keeps it in vector registers; one test per block. */
	while (len >= 64) {
		uint64_t w[8], acc = 0;
		unsigned int i;

		memcpy(w, b, sizeof(w));
		for (i = 0; i < 8; i++)
			acc |= w[i];
		if (acc)
			return false;
		b += 64;
		len -= 64;
	}
	while (len--)
		if (*b++)
			return false;
	return true;
}

uint64_t zero_run(const uint8_t *p, uint64_t max, size_t page, bool zero)
{
	uint64_t n = 0;

	while (n < max && buffer_is_zero(p + n * page, page) == zero)
		n++;
	return n;
}

uint32_t crc32_of_zeros(uint32_t crc, uint64_t n)
{
	/* zlib's CRC inverts the register before and after: without those
	 * inversions, appending n zero bytes is a multiplication by x^(8n)
	 * modulo the polynomial, which crc32_combine_op does with the
	 * operator crc32_combine_gen makes for n. */
	uLong op = crc32_combine_gen((z_off_t)n);

	return (uint32_t)(~crc32_combine_op(~(uLong)crc & 0xffffffffUL, 0, op) & 0xffffffffUL);
}
