/* An address space (port I/O or MMIO) on which device models register
 * regions. A VM exit is dispatched to the region containing the address;
 * accesses nobody claims read as all-ones and are otherwise ignored, as on
 * a PC. Registration happens before vCPUs start, so lookups need no lock;
 * devices lock their own state. */
#ifndef VIREO_HW_BUS_H
#define VIREO_HW_BUS_H

#include <stdint.h>

struct bus_ops {
	/* offset is relative to the region base; size is 1, 2, 4 or 8. */
	uint64_t (*read)(void *dev, uint64_t offset, unsigned int size);
	void (*write)(void *dev, uint64_t offset, unsigned int size, uint64_t value);
};

struct bus_region {
	uint64_t base;
	uint64_t len;
	const char *name; /* for statistics, e.g. "uart8250@0x3f8" */
	const struct bus_ops *ops;
	void *dev;
	uint64_t exits; /* accesses that reached this device */
};

#define BUS_MAX_REGIONS 32

struct bus {
	const char *name;
	unsigned int count;
	struct bus_region region[BUS_MAX_REGIONS];
	uint64_t unclaimed; /* accesses to addresses no device claims */
};

void bus_init(struct bus *b, const char *name);
/* Returns 0, or -1 when full or overlapping an existing region. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, const char *name,
		 const struct bus_ops *ops, void *dev);
/* data points at size bytes (little-endian) to write or to fill. */
void bus_access(struct bus *b, uint64_t addr, unsigned int size, int is_write, uint8_t *data);

#endif
