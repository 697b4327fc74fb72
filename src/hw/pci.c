#include "hw/pci.h"

#include <string.h>

#include "util/le.h"

#define CONFIG_ENABLE 0x80000000u
#define CMD_IO 0x0001
#define CMD_MEMORY 0x0002
#define CMD_MASTER 0x0004
#define CMD_INTX_DISABLE 0x0400
#define PCI_CLASS_HOST_BRIDGE 0x060000

#define OFFSET_ADDRESS 0
#define OFFSET_RESET 1
#define OFFSET_DATA 4
#define RESET_CPU 0x04

void pci_device_init(struct pci_device *d, uint16_t vendor, uint16_t device, uint32_t class_code,
		     uint8_t revision)
{
	memset(d, 0, sizeof(*d));
	le16_put(d->config + PCI_VENDOR_ID, vendor);
	le16_put(d->config + PCI_DEVICE_ID, device);
	d->config[PCI_REVISION] = revision;
	d->config[PCI_CLASS_PROG] = (uint8_t)class_code;
	le16_put(d->config + PCI_CLASS_PROG + 1, (uint16_t)(class_code >> 8));
	le16_put(d->wmask + PCI_COMMAND, CMD_IO | CMD_MEMORY | CMD_MASTER | CMD_INTX_DISABLE);
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
}

void pci_device_set_bar(struct pci_device *d, unsigned int n, uint64_t size, uint32_t flags)
{
	unsigned int off = PCI_BAR0 + 4 * n;
	uint64_t mask = ~(size - 1);

	if (n >= 6 || size == 0 || (size & (size - 1)))
		return;
	le32_put(d->config + off, flags);
	if (flags & PCI_BAR_IO) {
		le32_put(d->wmask + off, (uint32_t)mask & ~0x3u);
	} else {
		le32_put(d->wmask + off, (uint32_t)mask & ~0xfu);
		if ((flags & PCI_BAR_MEM64) && n < 5)
			le32_put(d->wmask + off + 4, (uint32_t)(mask >> 32));
	}
}

void pci_host_init(struct pci_host *h, const struct power_control *power)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	h->power = power;
	/* Red Hat's generic "QEMU PCIe host bridge" id: no chipset quirks. */
	pci_device_init(&h->bridge, 0x1b36, 0x0008, PCI_CLASS_HOST_BRIDGE, 0);
	h->dev[0] = &h->bridge;
}

int pci_host_add(struct pci_host *h, struct pci_device *d)
{
	int slot;

	for (slot = 0; slot < PCI_MAX_DEVICES; slot++) {
		if (!h->dev[slot]) {
			h->dev[slot] = d;
			return slot;
		}
	}
	return -1;
}

/* The device and register the current config address selects, or NULL. */
static struct pci_device *selected(struct pci_host *h, unsigned int *reg)
{
	uint32_t a = h->config_address;
	unsigned int bus = (a >> 16) & 0xff, slot = (a >> 11) & 0x1f, fn = (a >> 8) & 7;

	*reg = a & 0xfc;
	if (!(a & CONFIG_ENABLE) || bus != 0 || fn != 0)
		return NULL;
	return h->dev[slot];
}

static uint64_t pci_read(void *opaque, uint64_t offset, unsigned int size)
{
	struct pci_host *h = opaque;
	struct pci_device *d;
	unsigned int reg;
	uint64_t v = 0;

	pthread_mutex_lock(&h->lock);
	if (offset == OFFSET_ADDRESS && size == 4) {
		v = h->config_address;
	} else if (offset >= OFFSET_DATA && offset + size <= OFFSET_DATA + 4) {
		d = selected(h, &reg);
		if (d)
			memcpy(&v, d->config + reg + (offset - OFFSET_DATA), size);
		else
			v = ~0ULL; /* no device: all ones, as a master abort */
	} else {
		v = ~0ULL;
	}
	pthread_mutex_unlock(&h->lock);
	return v;
}

static void config_write(struct pci_device *d, unsigned int off, unsigned int size, uint64_t v)
{
	unsigned int i;

	for (i = 0; i < size; i++) {
		uint8_t m = d->wmask[off + i], b = (uint8_t)(v >> (8 * i));

		d->config[off + i] = (uint8_t)((d->config[off + i] & ~m) | (b & m));
	}
	if (d->config_written)
		d->config_written(d, off, size);
}

static void pci_write(void *opaque, uint64_t offset, unsigned int size, uint64_t value)
{
	struct pci_host *h = opaque;
	struct pci_device *d;
	unsigned int reg;
	int reset = 0;

	pthread_mutex_lock(&h->lock);
	if (offset == OFFSET_ADDRESS && size == 4) {
		h->config_address = (uint32_t)value;
	} else if (offset == OFFSET_RESET && size == 1) {
		reset = (value & RESET_CPU) != 0;
	} else if (offset >= OFFSET_DATA && offset + size <= OFFSET_DATA + 4) {
		d = selected(h, &reg);
		if (d)
			config_write(d, reg + (unsigned int)(offset - OFFSET_DATA), size, value);
	}
	pthread_mutex_unlock(&h->lock);
	if (reset)
		power_request(h->power, POWER_RESET, "reset control register (0xcf9)");
}

const struct bus_ops pci_host_ops = { .read = pci_read, .write = pci_write };
