#include "hw/pci.h"

#include <string.h>

#include "util/le.h"

#define CONFIG_ENABLE 0x80000000u
#define CMD_IO PCI_COMMAND_IO
#define CMD_MEMORY PCI_COMMAND_MEMORY
#define CMD_MASTER PCI_COMMAND_MASTER
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

void pci_host_set_buses(struct pci_host *h, struct bus *pio, struct bus *mmio)
{
	h->pio_bus = pio;
	h->mmio_bus = mmio;
}

int pci_device_coalesce(struct pci_device *d, unsigned int bar, uint32_t off, uint32_t len)
{
	if (d->ncoalesce == PCI_COALESCE_SPANS || bar >= PCI_NUM_BARS || !len)
		return -1;
	d->coalesce[d->ncoalesce++] = (struct pci_coalesce_span){ .bar = bar, .off = off, .len = len };
	return 0;
}

/* Each span of d to where its BAR decodes now (gone: nowhere). With the
 * host lock held, or before vCPUs run. */
static void update_coalesced(struct pci_host *h, struct pci_device *d, bool gone)
{
	unsigned int i;

	for (i = 0; i < d->ncoalesce; i++) {
		struct pci_coalesce_span *s = &d->coalesce[i];
		bool io = le32_get(d->config + PCI_BAR0 + 4 * s->bar) & PCI_BAR_IO;
		struct bus *bus = io ? h->pio_bus : h->mmio_bus;
		uint64_t base = gone ? 0 : pci_bar_address(d, s->bar);
		uint64_t want = base && s->off + s->len <= d->bar_size[s->bar] ? base + s->off : 0;

		if (!bus || want == s->at)
			continue;
		if (s->at)
			bus_coalesce(bus, s->at, s->len, false);
		s->at = want && bus_coalesce(bus, want, s->len, true) == 0 ? want : 0;
	}
}

void pci_host_update_coalesced(struct pci_host *h)
{
	unsigned int slot;

	pthread_mutex_lock(&h->lock);
	for (slot = 0; slot < PCI_MAX_DEVICES * PCI_MAX_FUNCTIONS; slot++)
		if (h->dev[slot])
			update_coalesced(h, h->dev[slot], false);
	pthread_mutex_unlock(&h->lock);
}

void pci_host_set_io_window(struct pci_host *h, uint64_t start, uint64_t end)
{
	h->io_start = h->io_next = start;
	h->io_end = end;
}

/* Places size bytes (a power of two, aligned to it) at *next in a window
 * ending at end: the base, or 0 when it does not fit. */
static uint64_t place(uint64_t *next, uint64_t end, uint64_t size)
{
	uint64_t base = (*next + size - 1) & ~(size - 1);

	if (!*next || base < *next || base + size > end || base + size < base)
		return 0;
	*next = base + size;
	return base;
}

/* A BAR that does not fit what is left of its window stays unassigned
 * (0), as firmware leaves what it cannot place; the guest may place it.
 * Decoding is turned on for the kinds of BAR that were placed. */
static void assign_bars(struct pci_host *h, struct pci_device *d)
{
	uint16_t cmd = le16_get(d->config + PCI_COMMAND);
	unsigned int n;

	for (n = 0; n < PCI_NUM_BARS; n++) {
		uint32_t flags = le32_get(d->config + PCI_BAR0 + 4 * n);
		uint64_t size = d->bar_size[n], base;

		if (!size)
			continue;
		if (flags & PCI_BAR_IO) {
			base = place(&h->io_next, h->io_end, size);
			if (!base)
				continue;
			le32_put(d->config + PCI_BAR0 + 4 * n, (uint32_t)base | PCI_BAR_IO);
			cmd |= CMD_IO;
			continue;
		}
		base = place(&h->mmio_next, h->mmio_end, size);
		if (!base)
			continue;
		le32_put(d->config + PCI_BAR0 + 4 * n, (uint32_t)base | (flags & 0xf));
		if (flags & PCI_BAR_MEM64)
			le32_put(d->config + PCI_BAR0 + 4 * n + 4, (uint32_t)(base >> 32));
		cmd |= CMD_MEMORY;
	}
	le16_put(d->config + PCI_COMMAND, cmd);
}

int pci_host_add(struct pci_host *h, struct pci_device *d)
{
	int slot;

	for (slot = 0; slot < PCI_MAX_DEVICES; slot++) {
		if (!h->dev[PCI_DEVFN(slot, 0)]) {
			assign_bars(h, d);
			d->host = h;
			h->dev[PCI_DEVFN(slot, 0)] = d;
			update_coalesced(h, d, false);
			return slot;
		}
	}
	return -1;
}

int pci_host_add_function(struct pci_host *h, struct pci_device *d, unsigned int slot,
			  unsigned int fn)
{
	struct pci_device *f0;

	if (slot >= PCI_MAX_DEVICES || fn == 0 || fn >= PCI_MAX_FUNCTIONS ||
	    !(f0 = h->dev[PCI_DEVFN(slot, 0)]) || h->dev[PCI_DEVFN(slot, fn)])
		return -1;
	assign_bars(h, d);
	d->host = h;
	h->dev[PCI_DEVFN(slot, fn)] = d;
	f0->config[PCI_HEADER_TYPE] |= PCI_HEADER_MULTI_FUNCTION;
	f0->config_at_reset[PCI_HEADER_TYPE] |= PCI_HEADER_MULTI_FUNCTION;
	update_coalesced(h, d, false);
	return 0;
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
	pci_host_update_coalesced(h);
}

void pci_host_remove(struct pci_host *h, struct pci_device *d)
{
	int slot;

	pthread_mutex_lock(&h->lock);
	update_coalesced(h, d, true);
	for (slot = 0; slot < PCI_MAX_DEVICES * PCI_MAX_FUNCTIONS; slot++)
		if (h->dev[slot] == d)
			h->dev[slot] = NULL;
	pthread_mutex_unlock(&h->lock);
}

uint64_t pci_bar_address(const struct pci_device *d, unsigned int n)
{
	uint16_t cmd = le16_get(d->config + PCI_COMMAND);
	uint32_t lo;
	uint64_t base;

	if (n >= PCI_NUM_BARS || !d->bar_size[n])
		return 0;
	lo = le32_get(d->config + PCI_BAR0 + 4 * n);
	if (lo & PCI_BAR_IO) {
		base = lo & ~0x3ULL;
		/* Ports outside the window (all-ones while sizing) are not
		 * forwarded to the bus. */
		if (!(cmd & CMD_IO) || !d->host || base < d->host->io_start ||
		    base + d->bar_size[n] > d->host->io_end)
			return 0;
		return base;
	}
	if (!(cmd & CMD_MEMORY))
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

/* The BAR of the kind asked (I/O or memory) that decodes addr, looked up
 * under the host lock (BARs move only through config writes, which take
 * it too). */
static struct pci_device *bar_at(struct pci_host *h, uint64_t addr, uint32_t io,
				 unsigned int *bar, uint64_t *offset)
{
	unsigned int slot, n;

	for (slot = 0; slot < PCI_MAX_DEVICES * PCI_MAX_FUNCTIONS; slot++) {
		struct pci_device *d = h->dev[slot];

		if (!d)
			continue;
		for (n = 0; n < PCI_NUM_BARS; n++) {
			uint64_t base;

			if (!d->bar_ops[n] ||
			    (le32_get(d->config + PCI_BAR0 + 4 * n) & PCI_BAR_IO) != io)
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

static uint64_t bar_read(struct pci_host *h, uint64_t addr, uint32_t io, unsigned int size)
{
	struct pci_device *d;
	uint64_t off;
	unsigned int n;

	pthread_mutex_lock(&h->lock);
	d = bar_at(h, addr, io, &n, &off);
	pthread_mutex_unlock(&h->lock);
	if (!d)
		return ~0ULL;
	__atomic_fetch_add(&d->exits, 1, __ATOMIC_RELAXED);
	return d->bar_ops[n]->read(d->bar_opaque[n], off, size);
}

static void bar_write(struct pci_host *h, uint64_t addr, uint32_t io, unsigned int size,
		      uint64_t value)
{
	struct pci_device *d;
	uint64_t off;
	unsigned int n;

	pthread_mutex_lock(&h->lock);
	d = bar_at(h, addr, io, &n, &off);
	pthread_mutex_unlock(&h->lock);
	if (!d)
		return;
	__atomic_fetch_add(&d->exits, 1, __ATOMIC_RELAXED);
	d->bar_ops[n]->write(d->bar_opaque[n], off, size, value);
}

static uint64_t mmio_read(void *opaque, uint64_t offset, unsigned int size)
{
	struct pci_host *h = opaque;

	return bar_read(h, h->mmio_start + offset, 0, size);
}

static void mmio_write(void *opaque, uint64_t offset, unsigned int size, uint64_t value)
{
	struct pci_host *h = opaque;

	bar_write(h, h->mmio_start + offset, 0, size, value);
}

const struct bus_ops pci_mmio_ops = { .read = mmio_read, .write = mmio_write };

static uint64_t io_read(void *opaque, uint64_t offset, unsigned int size)
{
	struct pci_host *h = opaque;

	return bar_read(h, h->io_start + offset, PCI_BAR_IO, size);
}

static void io_write(void *opaque, uint64_t offset, unsigned int size, uint64_t value)
{
	struct pci_host *h = opaque;

	bar_write(h, h->io_start + offset, PCI_BAR_IO, size, value);
}

const struct bus_ops pci_io_ops = { .read = io_read, .write = io_write };

/* The device and register the current config address selects, or NULL. */
static struct pci_device *selected(struct pci_host *h, unsigned int *reg)
{
	uint32_t a = h->config_address;
	unsigned int bus = (a >> 16) & 0xff, slot = (a >> 11) & 0x1f, fn = (a >> 8) & 7;

	*reg = a & 0xfc;
	if (!(a & CONFIG_ENABLE) || bus != 0)
		return NULL;
	return h->dev[PCI_DEVFN(slot, fn)];
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
		if (d) {
			config_write(d, reg + (unsigned int)(offset - OFFSET_DATA), size, value);
			update_coalesced(h, d, false);
		}
	}
	pthread_mutex_unlock(&h->lock);
	if (reset)
		power_request(h->power, POWER_RESET, "reset control register (0xcf9)");
}

const struct bus_ops pci_host_ops = { .read = pci_read, .write = pci_write };
