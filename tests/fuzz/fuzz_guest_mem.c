/* guest_mem_ptr with arbitrary gpa/len over a real 64 MiB mapping, split
 * into a low part and a fake high part at 4 GiB by the input. A non-NULL
 * result must lie inside the mapping and match the reference model. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "arch/x86/layout.h"
#include "vmm/guest_mem.h"

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

static void check(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint8_t *p = guest_mem_ptr(m, gpa, len);
	uint64_t high = m->size - m->low_size;
	int in_low = gpa < m->low_size && len <= m->low_size - gpa;
	int in_high = gpa >= HIGH_RAM_START && gpa - HIGH_RAM_START < high &&
		      len <= high - (gpa - HIGH_RAM_START);

	if (!m->host) {
		CHECK(!p);
		return;
	}
	if (!p) {
		CHECK(!in_low && !in_high);
		return;
	}
	CHECK(in_low || in_high);
	CHECK(p >= m->host);
	CHECK((uint64_t)(p - m->host) <= m->size);
	CHECK(len <= m->size - (uint64_t)(p - m->host));
	if (in_low)
		CHECK(p == m->host + gpa);
	else
		CHECK(p == m->host + m->low_size + (gpa - HIGH_RAM_START));
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
