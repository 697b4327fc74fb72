/* An address space (port I/O or MMIO) on which device models register
 * regions. A VM exit is dispatched to the region containing the address;
 * accesses nobody claims read as all-ones and are otherwise ignored, as on
 * a PC. Regions come and go at run time (a device added or removed), but
 * only while no vCPU runs (before they start, or with all of them
 * paused): lookups from vCPU threads then need no lock, and a device is
 * never called after its region is gone. Devices lock their own state. */
#ifndef VIREO_HW_BUS_H
#define VIREO_HW_BUS_H

#include <stdint.h>

#include "util/jsonw.h"

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

struct bus {
	const char *name;
	unsigned int count, capacity;
	struct bus_region *region; /* by registration order */
	uint64_t unclaimed; /* accesses to addresses no device claims */
};

void bus_init(struct bus *b, const char *name);
void bus_destroy(struct bus *b);
/* Returns 0, or -1 when out of memory, empty, or overlapping an existing
 * region. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, const char *name,
		 const struct bus_ops *ops, void *dev);
/* Removes the region that starts at base; -1 when there is none. */
int bus_unregister(struct bus *b, uint64_t base);
/* data points at size bytes (little-endian) to write or to fill. */
void bus_access(struct bus *b, uint64_t addr, unsigned int size, int is_write, uint8_t *data);
/* Each region's exit count, as objects named after the regions. */
void bus_write_json(const struct bus *b, struct jsonw *j);

#endif
