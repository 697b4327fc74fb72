/* An address space (port I/O or MMIO) on which device models register
 * regions. A VM exit is dispatched to the region containing the address;
 * accesses nobody claims read as all-ones and are otherwise ignored, as on
 * a PC. Regions come and go at run time (a device added or removed), but
 * only while no vCPU runs (before they start, or with all of them
 * paused): lookups from vCPU threads then need no lock, and a device is
 * never called after its region is gone. Devices lock their own state. */
#ifndef VIREO_HW_BUS_H
#define VIREO_HW_BUS_H

#include <stdbool.h>
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
	/* The accelerator's coalesced writes (kvm/coalesced.h), if any, and
	 * the zones asked for: devices are made before the VM exists, so a
	 * zone waits here until bus_coalesce_apply() can hand it over. */
	int (*coalesce)(void *ctx, uint64_t addr, uint64_t len, bool add);
	void *coalesce_ctx;
	struct bus_zone {
		uint64_t addr, len;
		bool applied;
	} *zones;
	unsigned int nzones, zones_capacity;
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
/* Where the accelerator can record guest writes without an exit. */
void bus_set_coalescer(struct bus *b, int (*fn)(void *ctx, uint64_t addr, uint64_t len, bool add),
		       void *ctx);
/* Lets (add) or stops letting guest writes to [addr, addr+len) reach the
 * devices later, replayed in order before the next access that exits
 * (kvm/coalesced.h says which registers qualify: writes that only latch
 * a value). The zone is kept here and handed to the coalescer now if it
 * takes it, else at bus_coalesce_apply(); without one, or if it
 * refuses, the writes simply exit as any. 0, or -1 when out of memory
 * (add) or no such zone (remove). */
int bus_coalesce(struct bus *b, uint64_t addr, uint64_t len, bool add);
/* Hands the zones the coalescer has not taken yet to it (once the VM
 * exists). Returns how many it now has. */
unsigned int bus_coalesce_apply(struct bus *b);
/* Each region's exit count, as objects named after the regions. */
void bus_write_json(const struct bus *b, struct jsonw *j);

#endif
