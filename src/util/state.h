/* A device's state as bytes, for snapshots and migration: what a save
 * function writes and its load function reads back, field by field,
 * little-endian, in an order the device defines (the record's version,
 * kept beside it, names that order).
 *
 * The reader is for hostile input (a snapshot file, a migration stream):
 * reading past the end yields zeros and sets a sticky flag, so a load
 * function reads every field, then checks them and the flag once
 * (state_reader_done) before it changes anything. */
#ifndef VIREO_UTIL_STATE_H
#define VIREO_UTIL_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct state_writer {
	uint8_t *buf;
	size_t len, cap;
	bool failed; /* out of memory: the record is incomplete */
};

void state_writer_init(struct state_writer *w);
void state_writer_free(struct state_writer *w);
void state_put_u8(struct state_writer *w, uint8_t v);
void state_put_u16(struct state_writer *w, uint16_t v);
void state_put_u32(struct state_writer *w, uint32_t v);
void state_put_u64(struct state_writer *w, uint64_t v);
void state_put_bool(struct state_writer *w, bool v);
void state_put_bytes(struct state_writer *w, const void *p, size_t n);
/* A string of at most 255 bytes (longer ones are cut). */
void state_put_str(struct state_writer *w, const char *s);

struct state_reader {
	const uint8_t *p;
	size_t len, off;
	bool short_read; /* a read went past the end */
	bool bad_bool;	 /* a bool byte was neither 0 nor 1 */
};

void state_reader_init(struct state_reader *r, const void *p, size_t len);
uint8_t state_get_u8(struct state_reader *r);
uint16_t state_get_u16(struct state_reader *r);
uint32_t state_get_u32(struct state_reader *r);
uint64_t state_get_u64(struct state_reader *r);
bool state_get_bool(struct state_reader *r);
/* Copies n bytes (zeros past the end). */
void state_get_bytes(struct state_reader *r, void *p, size_t n);
/* Points at the next n bytes without copying; NULL past the end. */
const uint8_t *state_get_span(struct state_reader *r, size_t n);
/* A string written by state_put_str, NUL-terminated into s (size >= 256). */
void state_get_str(struct state_reader *r, char *s, size_t size);
static inline size_t state_reader_left(const struct state_reader *r)
{
	return r->len - r->off;
}
/* CRC-32 (zlib's) of n bytes: what guards each record in a file. */
uint32_t state_crc32(const void *p, size_t n);
/* The CRC-32 of what crc covered followed by these n bytes (crc 0: none
 * yet), for data checksummed piece by piece. */
uint32_t state_crc32_more(uint32_t crc, const void *p, size_t n);

/* 0 when the record was read whole and exactly; else -1 with err saying
 * how it is not (too short, too long, or malformed). */
int state_reader_done(const struct state_reader *r, struct error *err);

#endif
