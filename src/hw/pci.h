/* PCI bus 0 behind a host bridge, reached through configuration mechanism
 * #1 (address at 0xcf8, data at 0xcfc-0xcff). Each function has a 256-byte
 * configuration space and a write mask, which is all BAR sizing and the
 * command register need; devices can hook writes to react to them. The
 * byte at 0xcf9 is the PIIX reset control register.
 *
 * BARs are memory (in the 32-bit MMIO window) or I/O (in the port window,
 * 0xc000-0xffff on a PC); both are assigned when a device is added, as
 * firmware would, and decoded while the command register enables them. A
 * slot holds up to 8 functions (a PIIX's ISA bridge and IDE controller). */
#ifndef VIREO_HW_PCI_H
#define VIREO_HW_PCI_H

#include <pthread.h>
#include <stdint.h>

#include "hw/bus.h"
#include "hw/power.h"

struct pci_host;

#define PCI_CONFIG_SPACE 256
#define PCI_MAX_DEVICES 32 /* slots */
#define PCI_MAX_FUNCTIONS 8
#define PCI_DEVFN(slot, fn) ((slot) * PCI_MAX_FUNCTIONS + (fn))

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_SUBSYS_ID 0x2e
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d
#define PCI_CAPABILITY_LIST 0x34
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_COMMAND_IO 0x0001
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_HEADER_MULTI_FUNCTION 0x80
#define PCI_NUM_BARS 6

#define PCI_BAR_IO 0x1
#define PCI_BAR_MEM64 0x4

/* Bytes of a BAR whose guest writes only latch values (kvm/coalesced.h),
 * and where the host last let the accelerator record them. */
struct pci_coalesce_span {
	unsigned int bar;
	uint32_t off, len;
	uint64_t at; /* 0: nowhere */
};
#define PCI_COALESCE_SPANS 8 /* the e1000's BAR 0 has 8 */

struct pci_device {
	uint8_t config[PCI_CONFIG_SPACE];
	uint8_t wmask[PCI_CONFIG_SPACE]; /* writable bits of each byte */
	/* The configuration space as firmware leaves it (BARs assigned,
	 * decoding on): what a system reset puts back. */
	uint8_t config_at_reset[PCI_CONFIG_SPACE];
	/* Called after a config write lands (e.g. a BAR or command changed). */
	void (*config_written)(struct pci_device *d, unsigned int offset, unsigned int size);
	/* Called before a config read, so that the device can fill in bytes
	 * that are not plain storage; NULL when all of them are. */
	void (*config_reading)(struct pci_device *d, unsigned int offset, unsigned int size);
	void *priv;
	/* The device's registers behind its BARs, reached wherever the guest
	 * puts them (offset is from the BAR's base): memory BARs through the
	 * MMIO window, I/O BARs through the port window. */
	uint64_t bar_size[PCI_NUM_BARS];
	const struct bus_ops *bar_ops[PCI_NUM_BARS];
	void *bar_opaque[PCI_NUM_BARS];
	const struct pci_host *host;
	const char *name; /* for statistics */
	uint64_t exits;	  /* MMIO and port accesses that reached the BARs */
	struct pci_coalesce_span coalesce[PCI_COALESCE_SPANS];
	unsigned int ncoalesce;
};

struct pci_host {
	pthread_mutex_t lock;
	uint32_t config_address;
	/* By PCI_DEVFN(slot, function); a slot's functions other than 0 are
	 * seen only when function 0 is there (and says multi-function). */
	struct pci_device *dev[PCI_MAX_DEVICES * PCI_MAX_FUNCTIONS];
	struct pci_device bridge;
	const struct power_control *power;
	uint64_t mmio_start;
	uint64_t mmio_next; /* where the next BAR is placed */
	uint64_t mmio_end;
	uint64_t io_start, io_next, io_end; /* the port window (none: 0, 0) */
	/* Where I/O and memory BARs decode, for coalesced writes; NULL in
	 * tests that have none. */
	struct bus *pio_bus, *mmio_bus;
};

extern const struct bus_ops pci_host_ops; /* register over 0xcf8, 8 ports */
/* Register over the whole 32-bit PCI MMIO window (mmio_start..mmio_end):
 * dispatches to the memory BAR that contains the address. */
extern const struct bus_ops pci_mmio_ops;
/* Register over the port window (io_start..io_end): dispatches to the I/O
 * BAR that contains the port. */
extern const struct bus_ops pci_io_ops;

void pci_host_init(struct pci_host *h, const struct power_control *power, uint64_t mmio_start,
		   uint64_t mmio_end);
/* The ports I/O BARs are assigned from (end exclusive); without a window
 * I/O BARs stay unassigned. Before any device is added. */
void pci_host_set_io_window(struct pci_host *h, uint64_t start, uint64_t end);
/* The buses the windows are on: coalesced BAR writes (pci_device_coalesce)
 * are set up there, and follow the BARs as the guest moves them. */
void pci_host_set_buses(struct pci_host *h, struct bus *pio, struct bus *mmio);
/* Declares that guest writes to bytes [off, off+len) of BAR bar only
 * latch values (kvm/coalesced.h says what qualifies): wherever the BAR
 * decodes, the accelerator may record them and Vireo replays them before
 * the guest's next access that exits. Before the device is added; 0, or
 * -1 when the device has PCI_COALESCE_SPANS already. */
int pci_device_coalesce(struct pci_device *d, unsigned int bar, uint32_t off, uint32_t len);
/* Moves every device's coalesced spans to where its BARs decode now:
 * after configuration spaces changed other than by a config write (a
 * state load). With the vCPUs paused. Config writes, additions, removals
 * and pci_host_reset() do it themselves. */
void pci_host_update_coalesced(struct pci_host *h);
/* Fills the identity fields and makes the standard bits writable. */
void pci_device_init(struct pci_device *d, uint16_t vendor, uint16_t device, uint32_t class_code,
		     uint8_t revision);
/* Declares BAR n as size bytes (power of two, >= 16; >= 4 for I/O). */
void pci_device_set_bar(struct pci_device *d, unsigned int n, uint64_t size, uint32_t flags);
/* Puts d in a free slot as its function 0; returns the slot or -1. BARs
 * declared with pci_device_set_bar() get addresses in their window, as
 * firmware would assign them, and the command register decodes them, so
 * the guest needs no resource allocation; a BAR that does not fit what
 * is left of its window stays unassigned. */
int pci_host_add(struct pci_host *h, struct pci_device *d);
/* Puts d at function fn (1-7) of the slot whose function 0 is there
 * already, and marks function 0 multi-function. 0, or -1 when the slot
 * has no function 0 or fn is taken or out of range. */
int pci_host_add_function(struct pci_host *h, struct pci_device *d, unsigned int slot,
			  unsigned int fn);
/* The address BAR n decodes now (guest-physical for a memory BAR, a port
 * for an I/O BAR), or 0 when its decoding is off or the BAR is
 * unassigned. Call with the host lock held (in config_written) or before
 * vCPUs run. */
uint64_t pci_bar_address(const struct pci_device *d, unsigned int n);
/* Records d's configuration space as its state after a reset (call once
 * the device is on the bus and set up as firmware would leave it). */
void pci_device_save_reset_state(struct pci_device *d);
/* Puts that state back, with the vCPUs paused (system_reset); the caller
 * then reacts to the change (BARs moved back, MSI-X off) as to a write. */
void pci_device_restore_reset_state(struct pci_device *d);
/* The host bridge's own state after a reset (the address latch); after
 * the devices' own reset, it also moves coalesced spans with the BARs. */
void pci_host_reset(struct pci_host *h);
/* Takes d off the bus (with the vCPUs paused: nothing may reach it). */
void pci_host_remove(struct pci_host *h, struct pci_device *d);

#endif
