/* The IDE controller of an Intel PIIX3 (82371SB), as QEMU's pc machine
 * has it: PCI function 1 (8086:7010) of a slot whose function 0 is the
 * PIIX3's ISA bridge (8086:7000). Both channels in compatibility mode:
 * the legacy ports 0x1f0-0x1f7/0x3f6 (IRQ 14) and 0x170-0x177/0x376
 * (IRQ 15), and bus-master DMA through the I/O BAR 4. Linux's ata_piix
 * drives it unmodified. Up to four disks: primary master and slave, then
 * secondary master and slave. */
#ifndef VIREO_HW_PIIX_IDE_H
#define VIREO_HW_PIIX_IDE_H

#include "block/block.h"
#include "hw/bus.h"
#include "hw/device.h"
#include "hw/irq.h"
#include "hw/pci.h"
#include "mem/guest_mem.h"
#include "util/error.h"

#define PIIX_IDE_MAX_DISKS 4

struct piix_ide_env {
	struct bus *pio;	 /* the legacy ports */
	struct pci_host *host;
	struct irq_service *irq; /* ISA IRQs 14 and 15 */
	const struct guest_mem *mem;
};

/* The controller with ndisks disks (it owns the backends from then on;
 * serials[i] may be NULL), on the PCI bus and its ports; registered by
 * the caller. NULL on failure (err set; the backends are still the
 * caller's). */
struct device *piix_ide_create(const struct piix_ide_env *env, struct block_backend **disks,
			       const char *const *serials, unsigned int ndisks, struct error *err);

#endif
