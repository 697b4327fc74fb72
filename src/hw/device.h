/* The device model: one lifecycle for every device of the machine, the
 * legacy PC devices of hw/ and the VirtIO devices alike.
 *
 * A device is created by its own constructor (which takes its opened
 * backend, never options), registered in the machine's list, in creation
 * order, and from then on driven only through this interface:
 *
 *   created --realize--> running <--pause/resume--> paused
 *   running/paused --destroy--> gone          reset: any time, vCPUs paused
 *
 * pause() quiesces: when it returns, the device has no request in flight
 * (what the guest submitted has completed and its used entries are
 * written), writes no guest memory and raises no interrupt until resume().
 * Its backend keeps what arrives meanwhile (bounded, and counted where it
 * must drop). Devices are paused in reverse creation order and resumed in
 * creation order, so a device never sees a paused dependency while it runs.
 *
 * save() and load() turn a paused device's state into a versioned record
 * and back (snapshots, migration): load is called on a device created
 * with the same options as the one saved, realized and paused, after
 * guest RAM is in place; it checks the record before it applies it, so a
 * refused record leaves the device as it was (a VirtIO device whose own
 * part is refused after the generic part applied: as after a reset),
 * never half loaded.
 *
 * The list is changed only by the thread that owns the machine (the main
 * thread), so walking it there needs no lock. */
#ifndef VIREO_HW_DEVICE_H
#define VIREO_HW_DEVICE_H

#include <stdbool.h>

#include "util/error.h"
#include "util/jsonw.h"
#include "util/state.h"

enum device_state { DEVICE_CREATED, DEVICE_RUNNING, DEVICE_PAUSED };

struct device;
struct block_backend;

struct device_ops {
	/* Everything optional: a device without state of its own in motion
	 * (registers only, reached from vCPUs) needs none. */
	/* Starts what the device runs on its own (its I/O thread). */
	int (*realize)(struct device *d, struct error *err);
	int (*pause)(struct device *d, struct error *err);
	void (*resume)(struct device *d);
	/* Back to the power-on state (system_reset), while paused. */
	void (*reset)(struct device *d);
	/* Its state as a record (paused). A device without either op has
	 * no state beyond what its options give it: its record is empty. */
	void (*save)(struct device *d, struct state_writer *w);
	/* A record save() wrote, for a device of the same options; refused
	 * (-1, err set, never half loaded) when it is not one. */
	int (*load)(struct device *d, struct state_reader *r, struct error *err);
	/* Its n-th disk (0, 1...), NULL past the last: how the machine
	 * flushes, locks and hands over every disk whatever device serves
	 * it (virtio-blk, IDE). */
	struct block_backend *(*disk)(struct device *d, unsigned int n);
	/* The device's counters, as members of its --stats-json object. */
	void (*write_stats)(struct device *d, struct jsonw *j);
	/* Stops everything and frees the device (and the backend it owns). */
	void (*destroy)(struct device *d);
};

struct device {
	const char *name; /* unique in the machine: "uart8250@0x3f8", "virtio-blk0" */
	const char *type; /* what it is: "uart8250", "virtio-blk-pci" */
	const struct device_ops *ops;
	void *opaque;	  /* the device's own state */
	enum device_state state;
	/* The layout of what save() writes: bumped whenever it changes. */
	unsigned int state_version;
	struct device *next;
};

#define DEVICE_MAX 256 /* devices in one machine */

struct device_list {
	struct device *head;
	struct device **tail;
	unsigned int count;
};

void device_list_init(struct device_list *l);
/* Fills the generic part of d (state created). */
void device_init(struct device *d, const char *name, const char *type,
		 const struct device_ops *ops, void *opaque);
/* Appends d; -1 (err set) when a device of that name exists or the
 * machine has DEVICE_MAX devices. */
int device_register(struct device_list *l, struct device *d, struct error *err);
/* Takes d out of the list (it stays allocated). */
void device_unregister(struct device_list *l, struct device *d);
struct device *device_find(const struct device_list *l, const char *name);

/* Realizes every device still created, in order. On failure the ones
 * realized stay running (destroy_all stops them). */
int devices_realize_all(struct device_list *l, struct error *err);
/* Pauses every running device, last created first. On failure the devices
 * paused so far are resumed again and err says which device refused. */
int devices_pause_all(struct device_list *l, struct error *err);
/* Resumes every paused device, first created first. */
void devices_resume_all(struct device_list *l);
void devices_reset_all(struct device_list *l);
/* Every device's record, in creation order: a count, then per device its
 * name, type, state version, length, the record and its CRC-32. With the
 * devices paused. -1 (err set) when out of memory. */
int devices_save_all(const struct device_list *l, struct state_writer *w, struct error *err);
/* Reads what devices_save_all wrote into the devices of this machine,
 * paused. The sections are checked first (every device exactly once, the
 * same types, versions and checksums), so a snapshot of another machine
 * or a damaged one changes nothing; a record a device then refuses
 * leaves the devices before it loaded, and the machine must not run. */
int devices_load_all(struct device_list *l, struct state_reader *r, struct error *err);
/* Unregisters and destroys every device, last created first. */
void devices_destroy_all(struct device_list *l);

#endif
