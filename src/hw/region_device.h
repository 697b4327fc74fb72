/* A device that is one register window on a bus and nothing else: no
 * thread, no backend, no guest memory access (the legacy PC devices: the
 * UART, the i8042, the RTC, the ACPI PM block). vCPUs are its only
 * callers, so pausing the vCPUs quiesces it and it needs no pause of its
 * own. Its state is the caller's, handed over: release() frees it when
 * the device is destroyed. */
#ifndef VIREO_HW_REGION_DEVICE_H
#define VIREO_HW_REGION_DEVICE_H

#include "hw/bus.h"
#include "hw/device.h"

struct region_device_spec {
	const char *name; /* also the bus region's name in the statistics */
	const char *type;
	struct bus *bus;
	uint64_t base, len;
	const struct bus_ops *ops;
	void *state;		      /* what ops are called with */
	void (*reset)(void *state);   /* optional */
	/* Optional: what the device must do when the VM pauses and resumes
	 * beyond not being called (a timer that must stop, say). */
	void (*pause)(void *state);
	void (*resume)(void *state);
	void (*release)(void *state); /* frees state (and what it holds) */
	/* Optional: the device's state record (struct device's save/load). */
	void (*save)(void *state, struct state_writer *w);
	int (*load)(void *state, struct state_reader *r, struct error *err);
	unsigned int state_version;
};

/* Registers the region and the device in l. On failure (err set) nothing
 * is registered and the state is still the caller's. */
struct device *region_device_create(struct device_list *l, const struct region_device_spec *spec,
				    struct error *err);

#endif
