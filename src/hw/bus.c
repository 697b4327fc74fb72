#include "hw/bus.h"

#include <stdlib.h>
#include <string.h>

/* arr (count used of *capacity elements of size bytes) with room for
 * one more: itself, or grown (doubling, from first), or NULL when out of
 * memory (arr and *capacity as they were). */
static void *with_room(void *arr, unsigned int count, unsigned int *capacity, size_t size,
		       unsigned int first)
{
	unsigned int cap;
	void *grown;

	if (count < *capacity)
		return arr;
	cap = *capacity ? 2 * *capacity : first;
	grown = realloc(arr, cap * size);
	if (grown)
		*capacity = cap;
	return grown;
}

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
}

void bus_destroy(struct bus *b)
{
	free(b->region);
	b->region = NULL;
	free(b->zones);
	b->zones = NULL;
	b->nzones = b->zones_capacity = 0;
	b->count = b->capacity = 0;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, const char *name,
		 const struct bus_ops *ops, void *dev)
{
	struct bus_region *regions;
	unsigned int i;

	if (len == 0 || base + len < base)
		return -1;
	for (i = 0; i < b->count; i++) {
		const struct bus_region *r = &b->region[i];

		if (base < r->base + r->len && r->base < base + len)
			return -1;
	}
	regions = with_room(b->region, b->count, &b->capacity, sizeof(*regions), 16);
	if (!regions)
		return -1;
	b->region = regions;
	b->region[b->count++] = (struct bus_region){
		.base = base, .len = len, .name = name, .ops = ops, .dev = dev,
	};
	return 0;
}

int bus_unregister(struct bus *b, uint64_t base)
{
	unsigned int i;

	for (i = 0; i < b->count; i++) {
		if (b->region[i].base == base) {
			memmove(&b->region[i], &b->region[i + 1],
				(b->count - i - 1) * sizeof(b->region[0]));
			b->count--;
			return 0;
		}
	}
	return -1;
}

void bus_set_coalescer(struct bus *b, int (*fn)(void *ctx, uint64_t addr, uint64_t len, bool add),
		       void *ctx)
{
	b->coalesce = fn;
	b->coalesce_ctx = ctx;
}

int bus_coalesce(struct bus *b, uint64_t addr, uint64_t len, bool add)
{
	unsigned int i;

	if (add) {
		struct bus_zone *zones = with_room(b->zones, b->nzones, &b->zones_capacity,
						   sizeof(*zones), 8);

		if (!zones)
			return -1;
		b->zones = zones;
		b->zones[b->nzones++] = (struct bus_zone){
			.addr = addr, .len = len,
			.applied = b->coalesce && b->coalesce(b->coalesce_ctx, addr, len, true) == 0,
		};
		return 0;
	}
	for (i = 0; i < b->nzones; i++) {
		if (b->zones[i].addr != addr || b->zones[i].len != len)
			continue;
		if (b->zones[i].applied)
			b->coalesce(b->coalesce_ctx, addr, len, false);
		b->zones[i] = b->zones[--b->nzones];
		return 0;
	}
	return -1;
}

unsigned int bus_coalesce_apply(struct bus *b)
{
	unsigned int i, n = 0;

	for (i = 0; i < b->nzones; i++) {
		if (!b->zones[i].applied && b->coalesce)
			b->zones[i].applied =
				b->coalesce(b->coalesce_ctx, b->zones[i].addr, b->zones[i].len, true) == 0;
		n += b->zones[i].applied;
	}
	return n;
}

void bus_write_json(const struct bus *b, struct jsonw *j)
{
	unsigned int i;

	for (i = 0; i < b->count; i++) {
		jsonw_begin_object(j, b->region[i].name);
		jsonw_uint(j, "exits", __atomic_load_n(&b->region[i].exits, __ATOMIC_RELAXED));
		jsonw_end_object(j);
	}
}

static struct bus_region *lookup(struct bus *b, uint64_t addr)
{
	unsigned int i;

	for (i = 0; i < b->count; i++) {
		struct bus_region *r = &b->region[i];

		if (addr - r->base < r->len)
			return r;
	}
	return NULL;
}

void bus_access(struct bus *b, uint64_t addr, unsigned int size, int is_write, uint8_t *data)
{
	struct bus_region *r = lookup(b, addr);
	uint64_t v = 0;

	if (size == 0 || size > 8)
		return;
	if (!r) {
		__atomic_fetch_add(&b->unclaimed, 1, __ATOMIC_RELAXED);
		if (!is_write)
			memset(data, 0xff, size);
		return;
	}
	__atomic_fetch_add(&r->exits, 1, __ATOMIC_RELAXED);
	if (is_write) {
		memcpy(&v, data, size);
		if (r->ops->write)
			r->ops->write(r->dev, addr - r->base, size, v);
	} else {
		v = r->ops->read ? r->ops->read(r->dev, addr - r->base, size) : ~0ULL;
		memcpy(data, &v, size);
	}
}
