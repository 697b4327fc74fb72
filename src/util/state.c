#include "util/state.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void state_writer_init(struct state_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void state_writer_free(struct state_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

void state_put_bytes(struct state_writer *w, const void *p, size_t n)
{
	if (w->failed || n == 0)
		return;
	if (n > w->cap - w->len) {
		size_t cap = w->cap ? w->cap : 256;
		uint8_t *nb;

		while (cap - w->len < n) {
			if (cap > SIZE_MAX / 2) {
				w->failed = true;
				return;
			}
			cap *= 2;
		}
		nb = realloc(w->buf, cap);
		if (!nb) {
			w->failed = true;
			return;
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_le(struct state_writer *w, uint64_t v, unsigned int n)
{
	uint8_t b[8];
	unsigned int i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	state_put_bytes(w, b, n);
}

void state_put_u8(struct state_writer *w, uint8_t v)
{
	put_le(w, v, 1);
}

void state_put_u16(struct state_writer *w, uint16_t v)
{
	put_le(w, v, 2);
}

void state_put_u32(struct state_writer *w, uint32_t v)
{
	put_le(w, v, 4);
}

void state_put_u64(struct state_writer *w, uint64_t v)
{
	put_le(w, v, 8);
}

void state_put_bool(struct state_writer *w, bool v)
{
	put_le(w, v ? 1 : 0, 1);
}

void state_put_str(struct state_writer *w, const char *s)
{
	size_t n = strlen(s);

	if (n > 255)
		n = 255;
	state_put_u8(w, (uint8_t)n);
	state_put_bytes(w, s, n);
}

uint32_t state_crc32(const void *p, size_t n)
{
	return state_crc32_more(0, p, n);
}

uint32_t state_crc32_more(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;
	uLong c = crc;

	while (n) {
		uInt chunk = n > 0x40000000u ? 0x40000000u : (uInt)n; /* zlib takes a uInt */

		c = crc32(c, b, chunk);
		b += chunk;
		n -= chunk;
	}
	return (uint32_t)c;
}

void state_reader_init(struct state_reader *r, const void *p, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->p = p;
	r->len = len;
}

const uint8_t *state_get_span(struct state_reader *r, size_t n)
{
	const uint8_t *s;

	if (r->short_read || n > r->len - r->off) {
		r->short_read = true;
		return NULL;
	}
	s = r->p + r->off;
	r->off += n;
	return s;
}

void state_get_bytes(struct state_reader *r, void *p, size_t n)
{
	const uint8_t *s = state_get_span(r, n);

	if (s)
		memcpy(p, s, n);
	else
		memset(p, 0, n);
}

static uint64_t get_le(struct state_reader *r, unsigned int n)
{
	const uint8_t *s = state_get_span(r, n);
	uint64_t v = 0;
	unsigned int i;

	for (i = 0; s && i < n; i++)
		v |= (uint64_t)s[i] << (8 * i);
	return v;
}

uint8_t state_get_u8(struct state_reader *r)
{
	return (uint8_t)get_le(r, 1);
}

uint16_t state_get_u16(struct state_reader *r)
{
	return (uint16_t)get_le(r, 2);
}

uint32_t state_get_u32(struct state_reader *r)
{
	return (uint32_t)get_le(r, 4);
}

uint64_t state_get_u64(struct state_reader *r)
{
	return get_le(r, 8);
}

bool state_get_bool(struct state_reader *r)
{
	uint8_t v = state_get_u8(r);

	if (v > 1)
		r->bad_bool = true;
	return v == 1;
}

void state_get_str(struct state_reader *r, char *s, size_t size)
{
	size_t n = state_get_u8(r);
	const uint8_t *p = state_get_span(r, n);

	if (!p || n >= size)
		n = 0;
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
}

int state_reader_done(const struct state_reader *r, struct error *err)
{
	if (r->short_read)
		return error_set(err, "state record is truncated");
	if (r->bad_bool)
		return error_set(err, "state record is malformed (a flag is neither 0 nor 1)");
	if (r->off != r->len)
		return error_set(err, "state record has %zu unexpected trailing bytes",
				 r->len - r->off);
	return 0;
}
