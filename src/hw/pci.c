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
	d->bar_size[n] = size;
	if (flags & PCI_BAR_IO) {
		le32_put(d->wmask + off, (uint32_t)mask & ~0x3u);
	} else {
		le32_put(d->wmask + off, (uint32_t)mask & ~0xfu);
		if ((flags & PCI_BAR_MEM64) && n < 5)
			le32_put(d->wmask + off + 4, (uint32_t)(mask >> 32));
	}
}

void pci_host_init(struct pci_host *h, const struct power_control *power, uint64_t mmio_start,
		   uint64_t mmio_end)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	h->power = power;
	h->mmio_start = h->mmio_next = mmio_start;
	h->mmio_end = mmio_end;
	/* Red Hat's generic "QEMU PCIe host bridge" id: no chipset quirks. */
	pci_device_init(&h->bridge, 0x1b36, 0x0008, PCI_CLASS_HOST_BRIDGE, 0);
	h->dev[0] = &h->bridge;
}

/* A BAR that does not fit what is left of the window stays unassigned
 * (0), as firmware leaves what it cannot place; the guest may place it. */
static void assign_bars(struct pci_host *h, struct pci_device *d)
{
	unsigned int n;

	for (n = 0; n < PCI_NUM_BARS; n++) {
		uint32_t flags = le32_get(d->config + PCI_BAR0 + 4 * n);
		uint64_t size = d->bar_size[n], base;

		if (!size || (flags & PCI_BAR_IO))
			continue;
		base = (h->mmio_next + size - 1) & ~(size - 1);
		if (base < h->mmio_next || base + size > h->mmio_end || base + size < base)
			continue;
		h->mmio_next = base + size;
		le32_put(d->config + PCI_BAR0 + 4 * n, (uint32_t)base | (flags & 0xf));
		if (flags & PCI_BAR_MEM64)
			le32_put(d->config + PCI_BAR0 + 4 * n + 4, (uint32_t)(base >> 32));
	}
}

int pci_host_add(struct pci_host *h, struct pci_device *d)
{
	int slot;

	for (slot = 0; slot < PCI_MAX_DEVICES; slot++) {
		if (!h->dev[slot]) {
			assign_bars(h, d);
			d->host = h;
			h->dev[slot] = d;
			return slot;
		}
	}
	return -1;
}

void pci_device_save_reset_state(struct pci_device *d)
{
	memcpy(d->config_at_reset, d->config, sizeof(d->config));
}

void pci_device_restore_reset_state(struct pci_device *d)
{
	memcpy(d->config, d->config_at_reset, sizeof(d->config));
}

void pci_host_reset(struct pci_host *h)
{
	pthread_mutex_lock(&h->lock);
	h->config_address = 0;
	pthread_mutex_unlock(&h->lock);
}

void pci_host_remove(struct pci_host *h, struct pci_device *d)
{
	int slot;

	pthread_mutex_lock(&h->lock);
	for (slot = 0; slot < PCI_MAX_DEVICES; slot++)
		if (h->dev[slot] == d)
			h->dev[slot] = NULL;
	pthread_mutex_unlock(&h->lock);
}

uint64_t pci_bar_address(const struct pci_device *d, unsigned int n)
{
	uint32_t lo;
	uint64_t base;

	if (n >= PCI_NUM_BARS || !d->bar_size[n] ||
	    !(le16_get(d->config + PCI_COMMAND) & CMD_MEMORY))
		return 0;
	lo = le32_get(d->config + PCI_BAR0 + 4 * n);
	if (lo & PCI_BAR_IO)
		return 0;
	base = lo & ~0xfULL;
	if ((lo & PCI_BAR_MEM64) && n < 5)
		base |= (uint64_t)le32_get(d->config + PCI_BAR0 + 4 * n + 4) << 32;
	/* The host bridge forwards only its window (while the guest sizes a
	 * BAR, the BAR holds all-ones, far outside it). */
	if (!d->host || base < d->host->mmio_start || base + d->bar_size[n] < base ||
	    base + d->bar_size[n] > d->host->mmio_end)
		return 0;
	return base;
}

/* The BAR that decodes addr, looked up under the host lock (BARs move
 * only through config writes, which take it too). */
static struct pci_device *bar_at(struct pci_host *h, uint64_t addr, unsigned int *bar,
				 uint64_t *offset)
{
	unsigned int slot, n;

	for (slot = 0; slot < PCI_MAX_DEVICES; slot++) {
		struct pci_device *d = h->dev[slot];

		if (!d)
			continue;
		for (n = 0; n < PCI_NUM_BARS; n++) {
			uint64_t base;

			if (!d->bar_ops[n])
				continue;
			base = pci_bar_address(d, n);
			if (base && addr - base < d->bar_size[n]) {
				*bar = n;
				*offset = addr - base;
				return d;
			}
		}
	}
	return NULL;
}

static uint64_t mmio_read(void *opaque, uint64_t offset, unsigned int size)
{
	struct pci_host *h = opaque;
	struct pci_device *d;
	uint64_t off;
	unsigned int n;

	pthread_mutex_lock(&h->lock);
	d = bar_at(h, h->mmio_start + offset, &n, &off);
	pthread_mutex_unlock(&h->lock);
	if (!d)
		return ~0ULL;
	__atomic_fetch_add(&d->exits, 1, __ATOMIC_RELAXED);
	return d->bar_ops[n]->read(d->bar_opaque[n], off, size);
}

static void mmio_write(void *opaque, uint64_t offset, unsigned int size, uint64_t value)
{
	struct pci_host *h = opaque;
	struct pci_device *d;
	uint64_t off;
	unsigned int n;

	pthread_mutex_lock(&h->lock);
	d = bar_at(h, h->mmio_start + offset, &n, &off);
	pthread_mutex_unlock(&h->lock);
	if (!d)
		return;
	__atomic_fetch_add(&d->exits, 1, __ATOMIC_RELAXED);
	d->bar_ops[n]->write(d->bar_opaque[n], off, size, value);
}

const struct bus_ops pci_mmio_ops = { .read = mmio_read, .write = mmio_write };

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
		if (d && d->config_reading)
			d->config_reading(d, reg + (unsigned int)(offset - OFFSET_DATA), size);
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
