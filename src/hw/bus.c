#include "hw/bus.h"

#include <string.h>

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, const char *name,
		 const struct bus_ops *ops, void *dev)
{
	unsigned int i;

	if (b->count >= BUS_MAX_REGIONS || len == 0 || base + len < base)
		return -1;
	for (i = 0; i < b->count; i++) {
		const struct bus_region *r = &b->region[i];

		if (base < r->base + r->len && r->base < base + len)
			return -1;
	}
	b->region[b->count++] = (struct bus_region){
		.base = base, .len = len, .name = name, .ops = ops, .dev = dev,
	};
	return 0;
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
