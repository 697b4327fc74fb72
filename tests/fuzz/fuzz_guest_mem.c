/* guest_mem_ptr with arbitrary gpa/len over a real 64 MiB mapping, split
 * into a low part and a fake high part at 4 GiB by the input. The result
 * is checked against a model written from the layout, not from the code:
 * an explicit list of RAM regions (guest address, length, offset in the
 * mapping), and a range is RAM when every one of its bytes lies in the
 * same region, at consecutive offsets. Short ranges are walked byte by
 * byte; long ones are compared as intervals in 128-bit arithmetic, where
 * nothing can wrap. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "arch/x86/layout.h"
#include "mem/guest_mem.h"

#define MAP_SIZE (64ULL << 20)

static struct guest_mem real;

static uint64_t take64(const uint8_t **p, size_t *n)
{
	uint64_t v = 0;
	size_t k = *n < 8 ? *n : 8;

	memcpy(&v, *p, k);
	*p += k;
	*n -= k;
	return v;
}

/* Interesting addresses: the edges of both parts, the hole, the top. */
static uint64_t pick_addr(uint64_t raw, const struct guest_mem *m)
{
	uint64_t high = m->size - m->low_size;
	uint64_t bases[] = { 0, m->low_size, LOW_RAM_END, HIGH_RAM_START,
			     HIGH_RAM_START + high, 0 };
	unsigned int sel = raw & 7;
	int64_t delta = (int64_t)(raw >> 3) >> 40; /* small, signed */

	if (sel >= 6)
		return raw; /* anything at all */
	return bases[sel] + (uint64_t)delta;
}

static uint64_t pick_len(uint64_t raw, const struct guest_mem *m)
{
	switch (raw & 3) {
	case 0:
		return raw >> 2 & 0xffff;
	case 1:
		return m->size - (raw >> 2 & 0xffff);
	case 2:
		return ~0ULL - (raw >> 2 & 0xffff);
	default:
		return raw;
	}
}

struct region {
	uint64_t gpa, len, off; /* guest address, bytes, offset in the mapping */
};

/* RAM as the layout defines it: the low part at 0, the rest at 4 GiB;
 * empty parts are no region at all. */
static unsigned int regions(const struct guest_mem *m, struct region r[2])
{
	unsigned int n = 0;

	if (m->low_size)
		r[n++] = (struct region){ 0, m->low_size, 0 };
	if (m->size > m->low_size)
		r[n++] = (struct region){ HIGH_RAM_START, m->size - m->low_size, m->low_size };
	return n;
}

/* The region holding guest byte a, or -1. */
static int region_of(const struct region *r, unsigned int n, uint64_t a)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (a >= r[i].gpa && a - r[i].gpa < r[i].len)
			return (int)i;
	return -1;
}

#define BYTEWISE_MAX 4096

/* Offset in the mapping of [gpa, gpa + len), or -1 if it is not RAM in
 * one piece. A zero-length range is RAM where its address is. */
static int64_t model(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	struct region r[2];
	unsigned int n = regions(m, r), i;
	int k;

	if (len <= BYTEWISE_MAX) {
		k = region_of(r, n, gpa);
		if (k < 0)
			return -1;
		for (i = 1; i < len; i++) {
			unsigned __int128 a = (unsigned __int128)gpa + i;

			/* Past 2^64 or in another region: not one piece. */
			if (a >> 64 || region_of(r, n, (uint64_t)a) != k)
				return -1;
		}
		return (int64_t)(r[k].off + (gpa - r[k].gpa));
	}
	for (i = 0; i < n; i++) {
		unsigned __int128 start = r[i].gpa, end = start + r[i].len;

		if (gpa >= start && gpa < end && (unsigned __int128)gpa + len <= end)
			return (int64_t)(r[i].off + (gpa - r[i].gpa));
	}
	return -1;
}

static void check(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint8_t *p = guest_mem_ptr(m, gpa, len);
	int64_t want;

	if (!m->host) {
		CHECK(!p);
		return;
	}
	want = model(m, gpa, len);
	if (want < 0) {
		CHECK(!p);
		return;
	}
	CHECK(p == m->host + want);
	/* The range is really mapped. */
	if (len) {
		volatile uint8_t first = p[0], last = p[len - 1];

		(void)first;
		(void)last;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem fake;
	uint64_t split;

	if (!real.host && guest_mem_map(&real, MAP_SIZE) < 0)
		__builtin_trap();
	split = take64(&data, &size);
	/* The same mapping, with only its first part low and the rest at
	 * 4 GiB (a real split needs 3 GiB of RAM). */
	fake = real;
	fake.low_size = split % (MAP_SIZE + 1);
	while (size > 0) {
		uint64_t a = take64(&data, &size), l = take64(&data, &size);

		check(&real, pick_addr(a, &real), pick_len(l, &real));
		check(&fake, pick_addr(a, &fake), pick_len(l, &fake));
		check(&fake, a, l);
	}
	/* Unmapped memory never yields a pointer. */
	fake.host = NULL;
	check(&fake, split, 1);
	return 0;
}
