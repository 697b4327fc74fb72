/* Little-endian loads and stores on unaligned byte buffers: guest memory
 * and most file formats are little-endian and rarely aligned. And the
 * big-endian ones: network order, and qcow2's on-disk structures. */
#ifndef VIREO_UTIL_LE_H
#define VIREO_UTIL_LE_H

#include <stdint.h>
#include <string.h>

/* Vireo only runs on x86-64 hosts, which are little-endian. */

static inline uint16_t le16_get(const void *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t le32_get(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t le64_get(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void le16_put(void *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline void le32_put(void *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline void le64_put(void *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline void be16_put(void *p, uint16_t v)
{
	uint8_t *b = p;

	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static inline uint16_t be16_get(const void *p)
{
	return __builtin_bswap16(le16_get(p));
}

static inline uint32_t be32_get(const void *p)
{
	return __builtin_bswap32(le32_get(p));
}

static inline uint64_t be64_get(const void *p)
{
	return __builtin_bswap64(le64_get(p));
}

static inline void be32_put(void *p, uint32_t v)
{
	le32_put(p, __builtin_bswap32(v));
}

static inline void be64_put(void *p, uint64_t v)
{
	le64_put(p, __builtin_bswap64(v));
}

#endif
