/* A Kvaser PCIcan card with one SJA1000 CAN controller (sja1000.h), as
 * QEMU emulates it as kvaser_pci: what Linux's unmodified kvaser_pci and
 * sja1000 drivers run on. PCI 10e8:8406 (the AMCC S5920 bridge's ids),
 * three I/O BARs: 0 the S5920's registers (the interrupt control and
 * status register INTCSR gates the card's interrupt onto INTA#), 1 the
 * controllers, 32 bytes each (one here: the driver finds one by probing),
 * 2 the Xilinx registers (the logic's version). INTA# is level-triggered
 * and shared (hw/irq.h).
 *
 * The controller is reached from vCPU threads (register accesses) and from
 * the card's I/O thread, which reads the CAN backend: frames from the bus,
 * confirmations of the frames sent, bus-off. One lock covers both. */
#ifndef VIREO_HW_KVASER_PCI_H
#define VIREO_HW_KVASER_PCI_H

#include "can/can.h"
#include "hw/device.h"
#include "hw/irq.h"
#include "hw/pci.h"
#include "util/error.h"

struct kvaser_pci_env {
	struct irq_service *irq;
	struct pci_host *host;
	/* Optional: events for QMP ("VIREO_CAN_BUS_OFF", "VIREO_CAN_RESTART"),
	 * from any thread. */
	void (*report)(void *ctx, const char *device, const char *event);
	void *report_ctx;
	/* The GSI a slot's INTA# is routed to (the DSDT's _PRT). */
	unsigned int (*intx_gsi)(unsigned int slot);
};

/* The card on backend b (which it owns from then on, also on failure),
 * named "kvaser-pci<index>". NULL with err set on failure. */
struct device *kvaser_pci_create(struct can_backend *b, unsigned int index,
				 const struct kvaser_pci_env *env, struct error *err);

/* For tests and fuzzing: the card's registers, BAR by BAR (0-2), as the
 * port window reaches them. */
uint64_t kvaser_pci_bar_read(struct device *d, unsigned int bar, uint64_t off, unsigned int size);
void kvaser_pci_bar_write(struct device *d, unsigned int bar, uint64_t off, unsigned int size,
			  uint64_t value);
const struct pci_device *kvaser_pci_device(const struct device *d);

#endif
