/* Little-endian loads and stores on unaligned byte buffers: guest memory
 * and file formats are little-endian and rarely aligned. And the one
 * big-endian store the frames Vireo builds itself need (network order). */
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

#endif
