/* PCI bus 0 behind a host bridge, reached through configuration mechanism
 * #1 (address at 0xcf8, data at 0xcfc-0xcff). Each function has a 256-byte
 * configuration space and a write mask, which is all BAR sizing and the
 * command register need; devices can hook writes to react to them. The
 * byte at 0xcf9 is the PIIX reset control register. */
#ifndef VIREO_HW_PCI_H
#define VIREO_HW_PCI_H

#include <pthread.h>
#include <stdint.h>

#include "hw/bus.h"
#include "hw/power.h"

#define PCI_CONFIG_SPACE 256
#define PCI_MAX_DEVICES 32

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

#define PCI_BAR_IO 0x1
#define PCI_BAR_MEM64 0x4

struct pci_device {
	uint8_t config[PCI_CONFIG_SPACE];
	uint8_t wmask[PCI_CONFIG_SPACE]; /* writable bits of each byte */
	/* Called after a config write lands (e.g. a BAR or command changed). */
	void (*config_written)(struct pci_device *d, unsigned int offset, unsigned int size);
	void *priv;
};

struct pci_host {
	pthread_mutex_t lock;
	uint32_t config_address;
	struct pci_device *dev[PCI_MAX_DEVICES]; /* by slot, function 0 */
	struct pci_device bridge;
	const struct power_control *power;
};

extern const struct bus_ops pci_host_ops; /* register over 0xcf8, 8 ports */

void pci_host_init(struct pci_host *h, const struct power_control *power);
/* Fills the identity fields and makes the standard bits writable. */
void pci_device_init(struct pci_device *d, uint16_t vendor, uint16_t device, uint32_t class_code,
		     uint8_t revision);
/* Declares BAR n as size bytes (power of two, >= 16; >= 4 for I/O). */
void pci_device_set_bar(struct pci_device *d, unsigned int n, uint64_t size, uint32_t flags);
/* Puts d in a free slot; returns the slot or -1. */
int pci_host_add(struct pci_host *h, struct pci_device *d);

#endif
