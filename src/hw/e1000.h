/* An emulated Intel 82540EM Gigabit Ethernet controller (PCI 8086:100e,
 * the card QEMU calls "e1000"), driven by Linux's unmodified e1000
 * driver, on any network backend (net/net.h). */
#ifndef VIREO_HW_E1000_H
#define VIREO_HW_E1000_H

#include <stdint.h>

#include "hw/device.h"
#include "hw/irq.h"
#include "hw/pci.h"
#include "mem/guest_mem.h"
#include "net/net.h"
#include "util/error.h"

struct e1000_env {
	struct irq_service *irq;
	struct pci_host *host;
	const struct guest_mem *mem;
	/* The interrupt line (GSI) INTA# of a slot is wired to. */
	unsigned int (*intx_gsi)(unsigned int slot);
};

/* A device (not yet realized: realize puts it on the PCI bus and starts
 * its I/O thread) that owns backend from then on; NULL with err set (the
 * backend still the caller's) when out of memory. */
struct device *e1000_create(struct net_backend *backend, const uint8_t mac[6], unsigned int index,
			    const struct e1000_env *env, struct error *err);
/* After a migration: tells the network where the card's MAC is now (a
 * RARP broadcast, net_announce); nothing when d is not an e1000. */
void e1000_announce(struct device *d);
/* The PCI function of an e1000 device, or NULL when d is not one. */
const struct pci_device *e1000_pci_device(const struct device *d);

#endif
