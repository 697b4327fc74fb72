/* Zero-filled memory: found without comparing against a zero buffer, and
 * checksummed without reading it. Guest RAM is mostly zero pages; saving
 * and migrating it spends its time here. */
#ifndef VIREO_UTIL_ZERO_H
#define VIREO_UTIL_ZERO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when all len bytes at p are zero. len a multiple of 64 reads
 * fastest (whole pages are). */
bool buffer_is_zero(const void *p, size_t len);

/* How many pages of page bytes, from p on and at most max, are all zero
 * (zero true) or each not all zero (zero false), in a row: how saving and
 * migrating RAM cut it into runs to write and runs to skip. */
uint64_t zero_run(const uint8_t *p, uint64_t max, size_t page, bool zero);

/* The CRC-32 (zlib's, as state_crc32_more) of what crc covered followed
 * by n zero bytes, in time logarithmic in n. */
uint32_t crc32_of_zeros(uint32_t crc, uint64_t n);

#endif
