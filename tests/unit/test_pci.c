#include "cmocka_prelude.h"

#include <errno.h>
#include <string.h>

#include "hw/bus.h"
#include "hw/pci.h"
#include "util/le.h"

#define ADDR(bus, slot, fn, reg)                                                    \
	(0x80000000u | ((uint32_t)(bus) << 16) | ((uint32_t)(slot) << 11) |         \
	 ((uint32_t)(fn) << 8) | (uint32_t)(reg))

struct power_log {
	int calls;
	enum power_event ev;
	const char *source;
	int under_lock;
};

static struct pci_host h;
static struct power_log plog;
static struct pci_device dev;
static struct power_control power;

struct hook_log {
	int calls;
	unsigned int offset, size;
	struct pci_device *d;
};
static struct hook_log hlog;

static void record_power(void *ctx, enum power_event ev, const char *source)
{
	struct power_log *p = ctx;

	p->calls++;
	p->ev = ev;
	p->source = source;
	/* The request must come after the host dropped its lock. */
	if (pthread_mutex_trylock(&h.lock) == EBUSY)
		p->under_lock = 1;
	else
		pthread_mutex_unlock(&h.lock);
}

static void record_write(struct pci_device *d, unsigned int offset, unsigned int size)
{
	hlog.calls++;
	hlog.offset = offset;
	hlog.size = size;
	hlog.d = d;
}

/* A register whose value the device makes up on each read (0xa0). */
static struct hook_log rlog;

static void fill_on_read(struct pci_device *d, unsigned int offset, unsigned int size)
{
	rlog.calls++;
	rlog.offset = offset;
	rlog.size = size;
	rlog.d = d;
	d->config[0xa0]++;
}

static int setup(void **state)
{
	(void)state;
	memset(&plog, 0, sizeof(plog));
	memset(&hlog, 0, sizeof(hlog));
	power.request = record_power;
	power.ctx = &plog;
	pci_host_init(&h, &power, 0xc0000000ULL, 0xfec00000ULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pthread_mutex_destroy(&h.lock);
	return 0;
}

static uint64_t rd(unsigned int off, unsigned int size)
{
	return pci_host_ops.read(&h, off, size);
}

static void wr(unsigned int off, unsigned int size, uint64_t v)
{
	pci_host_ops.write(&h, off, size, v);
}

static uint32_t cfg_read(uint32_t addr)
{
	wr(0, 4, addr);
	return (uint32_t)rd(4, 4);
}

static void cfg_write(uint32_t addr, uint32_t v)
{
	wr(0, 4, addr);
	wr(4, 4, v);
}

static void test_host_bridge(void **state)
{
	(void)state;
	assert_int_equal(cfg_read(ADDR(0, 0, 0, 0x00)), 0x00081b36);
	assert_int_equal(cfg_read(ADDR(0, 0, 0, 0x08)), 0x06000000); /* class, rev 0 */
	assert_int_equal(cfg_read(ADDR(0, 0, 0, 0x0c)) & 0x00ff0000, 0); /* header type 0 */
	assert_int_equal(cfg_read(ADDR(0, 0, 0, 0x10)), 0); /* no BARs */
	/* The address register reads back. */
	wr(0, 4, ADDR(0, 3, 0, 0x40));
	assert_int_equal(rd(0, 4), ADDR(0, 3, 0, 0x40));
	wr(0, 4, 0x12345678);
	assert_int_equal(rd(0, 4), 0x12345678);
}

static void test_master_abort(void **state)
{
	(void)state;
	assert_int_equal(cfg_read(ADDR(0, 5, 0, 0)), 0xffffffffu);  /* empty slot */
	assert_int_equal(cfg_read(ADDR(0, 31, 0, 0)), 0xffffffffu);
	assert_int_equal(cfg_read(ADDR(1, 0, 0, 0)), 0xffffffffu);  /* bus 1 */
	assert_int_equal(cfg_read(ADDR(255, 0, 0, 0)), 0xffffffffu);
	assert_int_equal(cfg_read(ADDR(0, 0, 1, 0)), 0xffffffffu);  /* function 1 */
	assert_int_equal(cfg_read(ADDR(0, 0, 7, 0)), 0xffffffffu);
	assert_int_equal(cfg_read(ADDR(0, 0, 0, 0) & ~0x80000000u), 0xffffffffu); /* disabled */
	/* The low two address bits do not select a byte. */
	assert_int_equal(cfg_read(ADDR(0, 0, 0, 0) | 3), 0x00081b36);
	/* Writes to nothing go nowhere. */
	cfg_write(ADDR(0, 5, 0, 0x04), 0xffffffff);
	cfg_write(ADDR(0, 0, 0, 0x04) & ~0x80000000u, 0xffffffff);
	assert_int_equal(cfg_read(ADDR(0, 0, 0, 0x04)), 0);
}

static void test_narrow_data_access(void **state)
{
	(void)state;
	wr(0, 4, ADDR(0, 0, 0, 0x00));
	assert_int_equal(rd(4, 1), 0x36);   /* 0xcfc */
	assert_int_equal(rd(5, 1), 0x1b);   /* 0xcfd */
	assert_int_equal(rd(6, 1), 0x08);   /* 0xcfe */
	assert_int_equal(rd(7, 1), 0x00);   /* 0xcff */
	assert_int_equal(rd(4, 2), 0x1b36);
	assert_int_equal(rd(6, 2), 0x0008); /* device id at 0xcfe */
	assert_int_equal(rd(5, 2), 0x081b);
	wr(0, 4, ADDR(0, 0, 0, 0x08));
	assert_int_equal(rd(7, 1), 0x06); /* base class */
	assert_int_equal(rd(6, 2), 0x0600);
	/* Accesses past the data window or to the address port in pieces. */
	assert_int_equal(rd(6, 4), ~0ULL);
	assert_int_equal(rd(0, 1), ~0ULL);
	assert_int_equal(rd(0, 2), ~0ULL);
	assert_int_equal(rd(1, 1), ~0ULL);
	/* A narrow write to 0xcf8 does not change the address. */
	wr(0, 2, 0);
	wr(2, 2, 0);
	assert_int_equal(rd(0, 4), ADDR(0, 0, 0, 0x08));
	/* Absent device, narrow read: all ones. */
	wr(0, 4, ADDR(0, 9, 0, 0));
	assert_int_equal(rd(6, 2) & 0xffff, 0xffff);
}

static void add_device(void)
{
	pci_device_init(&dev, 0x1af4, 0x1000, 0x020000, 0x01);
	pci_device_set_bar(&dev, 0, 0x1000, 0);
	pci_device_set_bar(&dev, 2, 0x100000, PCI_BAR_MEM64);
	pci_device_set_bar(&dev, 4, 0x40, PCI_BAR_IO);
	dev.config_written = record_write;
	assert_int_equal(pci_host_add(&h, &dev), 1);
}

static void test_device_identity(void **state)
{
	(void)state;
	add_device();
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x00)), 0x10001af4);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x08)), 0x02000001);
	/* Read-only identity. */
	cfg_write(ADDR(0, 1, 0, 0x00), 0x12345678);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x00)), 0x10001af4);
	cfg_write(ADDR(0, 1, 0, 0x08), 0xffffffff);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x08)), 0x02000001);
	/* Slot 2 is still empty. */
	assert_int_equal(cfg_read(ADDR(0, 2, 0, 0x00)), 0xffffffffu);
}

static void test_bar_sizing(void **state)
{
	(void)state;
	add_device();
	/* Memory BARs come assigned, in order and naturally aligned, from
	 * the start of the MMIO window, as firmware would leave them. */
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x10)), 0xc0000000);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x18)), 0xc0100004);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x1c)), 0);
	/* 4 KiB 32-bit memory BAR. */
	cfg_write(ADDR(0, 1, 0, 0x10), 0xffffffff);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x10)), 0xfffff000);
	cfg_write(ADDR(0, 1, 0, 0x10), 0xfebf1234);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x10)), 0xfebf1000);
	/* Unused BAR: not writable. */
	cfg_write(ADDR(0, 1, 0, 0x14), 0xffffffff);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x14)), 0);
	/* 1 MiB 64-bit BAR: type bits read back, high half fully writable. */
	cfg_write(ADDR(0, 1, 0, 0x18), 0xffffffff);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x18)), 0xfff00004);
	cfg_write(ADDR(0, 1, 0, 0x1c), 0xffffffff);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x1c)), 0xffffffff);
	cfg_write(ADDR(0, 1, 0, 0x18), 0xe0000000);
	cfg_write(ADDR(0, 1, 0, 0x1c), 0x00000001);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x18)), 0xe0000004);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x1c)), 0x00000001);
	/* 64-byte I/O BAR. */
	cfg_write(ADDR(0, 1, 0, 0x20), 0xffffffff);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x20)), 0xffffffc1);
	/* Byte writes to a BAR are masked too. */
	wr(0, 4, ADDR(0, 1, 0, 0x10));
	wr(4, 1, 0xff);
	wr(5, 1, 0xff);
	assert_int_equal(rd(4, 4), 0xfebff000);
}

/* A system reset puts the configuration space back as firmware left it:
 * the BAR where it was assigned, decoding as it was, the address latch
 * cleared. */
static void test_reset_state(void **state)
{
	(void)state;
	add_device();
	cfg_write(ADDR(0, 1, 0, 0x04), 0x2);
	pci_device_save_reset_state(&dev);
	cfg_write(ADDR(0, 1, 0, 0x10), 0xd0000000);
	cfg_write(ADDR(0, 1, 0, 0x04), 0x6);
	cfg_write(ADDR(0, 1, 0, 0x3c), 0x0b);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x10)), 0xd0000000);
	pci_device_restore_reset_state(&dev);
	pci_host_reset(&h);
	assert_int_equal(h.config_address, 0);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x10)), 0xc0000000);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x04)) & 0xffff, 0x2);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x3c)) & 0xff, 0);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0)), dev.config[0] | dev.config[1] << 8 |
							 dev.config[2] << 16 | dev.config[3] << 24);
}

static void test_bar_large_and_invalid(void **state)
{
	struct pci_device d;

	(void)state;
	pci_device_init(&d, 1, 2, 0, 0);
	/* An 8 GiB 64-bit BAR: the size shows in the high dword. */
	pci_device_set_bar(&d, 0, 8ULL << 30, PCI_BAR_MEM64);
	assert_int_equal(le32_get(d.wmask + 0x10), 0);
	assert_int_equal(le32_get(d.wmask + 0x14), 0xfffffffe);
	assert_int_equal(le32_get(d.config + 0x10), PCI_BAR_MEM64);
	/* Invalid requests leave the device alone. */
	pci_device_set_bar(&d, 2, 0x3000, 0); /* not a power of two */
	pci_device_set_bar(&d, 3, 0, 0);
	pci_device_set_bar(&d, 6, 0x1000, 0); /* no BAR 6 */
	assert_int_equal(le32_get(d.wmask + 0x18), 0);
	assert_int_equal(le32_get(d.wmask + 0x1c), 0);
	assert_int_equal(le32_get(d.wmask + 0x28), 0);
	/* A 64-bit BAR 5 has no upper half to claim (0x28 is CardBus CIS). */
	pci_device_set_bar(&d, 5, 0x1000, PCI_BAR_MEM64);
	assert_int_equal(le32_get(d.wmask + 0x24), 0xfffff000);
	assert_int_equal(le32_get(d.wmask + 0x28), 0);
}

static void test_command_register(void **state)
{
	(void)state;
	add_device();
	cfg_write(ADDR(0, 1, 0, 0x04), 0xffffffff);
	/* I/O, memory, bus master, INTx disable; status read-only here. */
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x04)), 0x00000407);
	cfg_write(ADDR(0, 1, 0, 0x04), 0x00000002);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x04)), 0x00000002);
	/* Interrupt line is writable, the pin is not. */
	cfg_write(ADDR(0, 1, 0, 0x3c), 0xffffffff);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x3c)), 0x000000ff);
	/* The host bridge's command register too. */
	cfg_write(ADDR(0, 0, 0, 0x04), 0xffffffff);
	assert_int_equal(cfg_read(ADDR(0, 0, 0, 0x04)), 0x00000407);
}

static void test_config_written_hook(void **state)
{
	(void)state;
	add_device();
	cfg_write(ADDR(0, 1, 0, 0x10), 0xfebf0000);
	assert_int_equal(hlog.calls, 1);
	assert_ptr_equal(hlog.d, &dev);
	assert_int_equal(hlog.offset, 0x10);
	assert_int_equal(hlog.size, 4);
	/* A word write to 0xcfe lands at register + 2. */
	wr(0, 4, ADDR(0, 1, 0, 0x04));
	wr(6, 2, 0xffff);
	assert_int_equal(hlog.calls, 2);
	assert_int_equal(hlog.offset, 0x06);
	assert_int_equal(hlog.size, 2);
	wr(7, 1, 0);
	assert_int_equal(hlog.offset, 0x07);
	assert_int_equal(hlog.size, 1);
	/* Even a write that changes nothing is reported... */
	cfg_write(ADDR(0, 1, 0, 0x00), 0);
	assert_int_equal(hlog.calls, 4);
	/* ...but not reads, nor writes to other devices or nowhere. */
	cfg_read(ADDR(0, 1, 0, 0x10));
	cfg_write(ADDR(0, 0, 0, 0x04), 0x7);
	cfg_write(ADDR(0, 1, 1, 0x04), 0x7);
	cfg_write(ADDR(0, 1, 0, 0x04) & ~0x80000000u, 0x7);
	wr(0, 4, ADDR(0, 1, 0, 0x04));
	wr(6, 4, 0x7); /* beyond the data window */
	assert_int_equal(hlog.calls, 4);
}

static void test_config_reading_hook(void **state)
{
	(void)state;
	memset(&rlog, 0, sizeof(rlog));
	add_device();
	dev.config_reading = fill_on_read;
	/* Called before every read of the device, with where and how wide;
	 * the read returns what it filled in. */
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0xa0)) & 0xff, 1);
	assert_int_equal(rlog.offset, 0xa0);
	assert_int_equal(rlog.size, 4);
	wr(0, 4, ADDR(0, 1, 0, 0xa0));
	assert_int_equal(rd(4, 1), 2);
	assert_int_equal(rlog.size, 1);
	assert_int_equal(rd(5, 1), 0);
	assert_int_equal(rlog.offset, 0xa1);
	assert_int_equal(rlog.calls, 3);
	/* Not for writes, nor for absent devices. */
	cfg_write(ADDR(0, 1, 0, 0xa0), 0);
	cfg_read(ADDR(0, 2, 0, 0xa0));
	assert_int_equal(rlog.calls, 3);
	dev.config_reading = NULL;
}

static void test_slots_fill(void **state)
{
	static struct pci_device many[PCI_MAX_DEVICES];
	int i;

	(void)state;
	for (i = 1; i < PCI_MAX_DEVICES; i++) {
		pci_device_init(&many[i], 0x1234, (uint16_t)i, 0xff0000, 0);
		assert_int_equal(pci_host_add(&h, &many[i]), i);
	}
	pci_device_init(&many[0], 0x1234, 0, 0xff0000, 0);
	assert_int_equal(pci_host_add(&h, &many[0]), -1);
	assert_int_equal(cfg_read(ADDR(0, 31, 0, 0)), 0x001f1234);
	assert_int_equal(cfg_read(ADDR(0, 17, 0, 0)), 0x00111234);
}

static void test_reset_register(void **state)
{
	(void)state;
	wr(1, 1, 0x02); /* system reset bit without "reset CPU" */
	assert_int_equal(plog.calls, 0);
	wr(1, 1, 0x00);
	assert_int_equal(plog.calls, 0);
	wr(1, 1, 0x06);
	assert_int_equal(plog.calls, 1);
	assert_int_equal(plog.ev, POWER_RESET);
	assert_non_null(plog.source);
	assert_false(plog.under_lock);
	wr(1, 1, 0x04);
	assert_int_equal(plog.calls, 2);
	/* Only a byte write to 0xcf9 resets. */
	wr(1, 2, 0x0606);
	wr(0, 4, 0x00000600);
	wr(0, 4, 0x06060606);
	assert_int_equal(plog.calls, 2);
	/* Reading 0xcf9 has no effect. */
	rd(1, 1);
	assert_int_equal(plog.calls, 2);
	/* Without a power controller the write is ignored. */
	pthread_mutex_destroy(&h.lock);
	pci_host_init(&h, NULL, 0xc0000000ULL, 0xfec00000ULL);
	wr(1, 1, 0x06);
	assert_int_equal(plog.calls, 2);
}

static void test_through_bus(void **state)
{
	struct bus b;
	uint8_t data[4];
	uint32_t v;

	(void)state;
	bus_init(&b, "pio");
	assert_int_equal(bus_register(&b, 0xcf8, 8, "pci", &pci_host_ops, &h), 0);
	v = ADDR(0, 0, 0, 0);
	memcpy(data, &v, 4);
	bus_access(&b, 0xcf8, 4, 1, data);
	memset(data, 0, sizeof(data));
	bus_access(&b, 0xcfe, 2, 0, data);
	assert_int_equal(data[0], 0x08);
	assert_int_equal(data[1], 0x00);
	bus_access(&b, 0xcfc, 4, 0, data);
	memcpy(&v, data, 4);
	assert_int_equal(v, 0x00081b36);
	/* A byte read of the address port: all ones. */
	bus_access(&b, 0xcf8, 1, 0, data);
	assert_int_equal(data[0], 0xff);
	data[0] = 0x06;
	bus_access(&b, 0xcf9, 1, 1, data);
	assert_int_equal(plog.calls, 1);
	assert_int_equal(plog.ev, POWER_RESET);
	bus_destroy(&b);
}

/* A BAR's registers: reads return the offset plus a tag, writes are kept. */
struct fake_regs {
	uint64_t tag;
	uint64_t last_off, last_val;
	unsigned int last_size, writes, reads;
};

static uint64_t fake_read(void *opaque, uint64_t off, unsigned int size)
{
	struct fake_regs *r = opaque;

	(void)size;
	r->reads++;
	return r->tag + off;
}

static void fake_write(void *opaque, uint64_t off, unsigned int size, uint64_t v)
{
	struct fake_regs *r = opaque;

	r->writes++;
	r->last_off = off;
	r->last_size = size;
	r->last_val = v;
}

static const struct bus_ops fake_ops = { .read = fake_read, .write = fake_write };

/* I/O BARs are placed in the port window (aligned to their size) and the
 * command register decodes them; they answer port accesses only, and
 * only while decoding is on and the BAR is inside the window. */
static void test_io_bars(void **state)
{
	struct pci_device d;
	struct fake_regs io = { .tag = 0x1000 }, io2 = { .tag = 0x2000 }, mem = { .tag = 0x3000 };

	(void)state;
	pci_host_set_io_window(&h, 0xc000, 0x10000);
	pci_device_init(&d, 0x8086, 0x7010, 0x010180, 0);
	pci_device_set_bar(&d, 0, 0x1000, 0);
	pci_device_set_bar(&d, 1, 0x8, PCI_BAR_IO);
	pci_device_set_bar(&d, 4, 0x10, PCI_BAR_IO);
	d.bar_ops[0] = &fake_ops;
	d.bar_opaque[0] = &mem;
	d.bar_ops[1] = &fake_ops;
	d.bar_opaque[1] = &io;
	d.bar_ops[4] = &fake_ops;
	d.bar_opaque[4] = &io2;
	assert_int_equal(pci_host_add(&h, &d), 1);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x14)), 0xc001);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x20)), 0xc011); /* aligned to 16 */
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x04)) & 0x3, 0x3); /* I/O and memory on */
	assert_int_equal(pci_bar_address(&d, 1), 0xc000);
	assert_int_equal(pci_bar_address(&d, 4), 0xc010);
	/* Ports reach the I/O BARs, offsets from their bases. */
	assert_int_equal(pci_io_ops.read(&h, 0x3, 1), 0x1003);
	assert_int_equal(pci_io_ops.read(&h, 0x1e, 2), 0x200e);
	pci_io_ops.write(&h, 0x12, 4, 0xdeadbeef);
	assert_int_equal(io2.writes, 1);
	assert_int_equal(io2.last_off, 2);
	assert_int_equal(io2.last_size, 4);
	assert_int_equal(io2.last_val, 0xdeadbeef);
	/* Between and past the BARs: nothing. */
	assert_int_equal(pci_io_ops.read(&h, 0x8, 1), ~0ULL);
	assert_int_equal(pci_io_ops.read(&h, 0x20, 4), ~0ULL);
	/* The memory window does not reach I/O BARs at the same numbers, nor
	 * the port window the memory BAR. */
	assert_int_equal(pci_mmio_ops.read(&h, 0x3, 1), 0x3003);
	pthread_mutex_lock(&h.lock);
	assert_int_equal(pci_bar_address(&d, 0), 0xc0000000);
	pthread_mutex_unlock(&h.lock);
	assert_int_equal(io.reads, 1);
	/* I/O decoding off: the ports read all-ones, writes go nowhere. */
	cfg_write(ADDR(0, 1, 0, 0x04), 0x2);
	assert_int_equal(pci_io_ops.read(&h, 0x3, 1), ~0ULL);
	pci_io_ops.write(&h, 0x12, 1, 1);
	assert_int_equal(io2.writes, 1);
	assert_int_equal(pci_mmio_ops.read(&h, 0x4, 4), 0x3004);
	/* Sized (all ones) or moved outside the window: not decoded. */
	cfg_write(ADDR(0, 1, 0, 0x04), 0x3);
	cfg_write(ADDR(0, 1, 0, 0x20), 0xffffffff);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x20)), 0xfffffff1);
	assert_int_equal(pci_bar_address(&d, 4), 0);
	cfg_write(ADDR(0, 1, 0, 0x20), 0x0100);
	assert_int_equal(pci_bar_address(&d, 4), 0);
	/* Moved by the guest inside the window: decoded there. */
	cfg_write(ADDR(0, 1, 0, 0x20), 0xd000);
	assert_int_equal(pci_bar_address(&d, 4), 0xd000);
	assert_int_equal(pci_io_ops.read(&h, 0x1001, 1), 0x2001);
	/* Without a window, I/O BARs stay unassigned and I/O decoding off. */
	pthread_mutex_destroy(&h.lock);
	pci_host_init(&h, NULL, 0xc0000000ULL, 0xfec00000ULL);
	pci_device_init(&d, 0x8086, 0x7010, 0x010180, 0);
	pci_device_set_bar(&d, 4, 0x10, PCI_BAR_IO);
	assert_int_equal(pci_host_add(&h, &d), 1);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x20)), 0x1);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x04)) & 0x3, 0);
}

/* The port window fills up: a BAR that does not fit stays unassigned. */
static void test_io_window_full(void **state)
{
	struct pci_device a, b;

	(void)state;
	pci_host_set_io_window(&h, 0xff00, 0x10000);
	pci_device_init(&a, 1, 1, 0, 0);
	pci_device_set_bar(&a, 0, 0x80, PCI_BAR_IO);
	pci_device_set_bar(&a, 1, 0x100, PCI_BAR_IO);
	pci_device_init(&b, 1, 2, 0, 0);
	pci_device_set_bar(&b, 0, 0x80, PCI_BAR_IO);
	assert_int_equal(pci_host_add(&h, &a), 1);
	assert_int_equal(pci_host_add(&h, &b), 2);
	assert_int_equal(le32_get(a.config + 0x10), 0xff01);
	assert_int_equal(le32_get(a.config + 0x14), 0x1); /* 256 more do not fit */
	assert_int_equal(le32_get(b.config + 0x10), 0xff81);
	assert_int_equal(pci_bar_address(&a, 1), 0);
}

/* Functions 1-7 of a slot: reached by their own config addresses, the
 * slot's function 0 marked multi-function, and refused where the slot has
 * no function 0 or the function is taken. */
static void test_multi_function(void **state)
{
	struct pci_device isa, ide, other;

	(void)state;
	pci_device_init(&isa, 0x8086, 0x7000, 0x060100, 0);
	pci_device_init(&ide, 0x8086, 0x7010, 0x010180, 0);
	pci_device_init(&other, 1, 2, 0, 0);
	assert_int_equal(pci_host_add_function(&h, &ide, 1, 1), -1); /* no function 0 */
	assert_int_equal(pci_host_add(&h, &isa), 1);
	pci_device_save_reset_state(&isa);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x0c)) & 0x00ff0000, 0);
	assert_int_equal(pci_host_add_function(&h, &ide, 1, 0), -1);
	assert_int_equal(pci_host_add_function(&h, &ide, 1, 8), -1);
	assert_int_equal(pci_host_add_function(&h, &ide, 32, 1), -1);
	assert_int_equal(pci_host_add_function(&h, &ide, 1, 1), 0);
	assert_int_equal(pci_host_add_function(&h, &other, 1, 1), -1); /* taken */
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x0c)) & 0x00ff0000, 0x00800000);
	assert_int_equal(cfg_read(ADDR(0, 1, 1, 0x00)), 0x70108086);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x00)), 0x70008086);
	assert_int_equal(cfg_read(ADDR(0, 1, 2, 0x00)), 0xffffffffu);
	/* Writes land in the function addressed. */
	cfg_write(ADDR(0, 1, 1, 0x3c), 0x0e);
	assert_int_equal(ide.config[0x3c], 0x0e);
	assert_int_equal(isa.config[0x3c], 0);
	/* The multi-function bit survives a reset. */
	pci_device_restore_reset_state(&isa);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x0c)) & 0x00ff0000, 0x00800000);
	/* The next device takes the next free slot, not a function. */
	assert_int_equal(pci_host_add(&h, &other), 2);
	pci_host_remove(&h, &ide);
	assert_int_equal(cfg_read(ADDR(0, 1, 1, 0x00)), 0xffffffffu);
	assert_int_equal(cfg_read(ADDR(0, 1, 0, 0x00)), 0x70008086);
}

/* The accelerator's zones as the host asks for them (a fake coalescer). */
struct zone_log {
	unsigned int n;
	uint64_t addr[8], len[8];
	int calls, refuse;
};

static int record_zone(void *ctx, uint64_t addr, uint64_t len, bool add)
{
	struct zone_log *z = ctx;
	unsigned int i;

	z->calls++;
	if (add) {
		if (z->refuse)
			return -1;
		assert_true(z->n < 8);
		z->addr[z->n] = addr;
		z->len[z->n++] = len;
		return 0;
	}
	for (i = 0; i < z->n; i++) {
		if (z->addr[i] == addr && z->len[i] == len) {
			z->addr[i] = z->addr[--z->n];
			z->len[i] = z->len[z->n];
			return 0;
		}
	}
	fail_msg("removing a zone %#llx+%llu that is not there", (unsigned long long)addr,
		 (unsigned long long)len);
	return -1;
}

/* Coalesced spans follow their BAR: registered where it decodes, moved
 * with it, removed while it does not decode (I/O off, sized, outside the
 * window) and when the device goes; a state load that moved BARs behind
 * the host's back is caught up by pci_host_update_coalesced(). */
static void test_coalesced_spans(void **state)
{
	struct pci_device d;
	struct fake_regs io = { .tag = 0x1000 };
	struct bus pio, mmio;
	struct zone_log z = { 0 };

	(void)state;
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	bus_set_coalescer(&pio, record_zone, &z);
	pci_host_set_io_window(&h, 0xc000, 0x10000);
	pci_host_set_buses(&h, &pio, &mmio);
	pci_device_init(&d, 0x10e8, 0x8406, 0x0c0900, 0);
	pci_device_set_bar(&d, 1, 0x80, PCI_BAR_IO);
	d.bar_ops[1] = &fake_ops;
	d.bar_opaque[1] = &io;
	assert_int_equal(pci_device_coalesce(&d, 1, 16, 13), 0);
	assert_int_equal(pci_device_coalesce(&d, 1, 0x7c, 8), 0); /* past the BAR's end: never */
	for (unsigned int i = 2; i < PCI_COALESCE_SPANS; i++)
		assert_int_equal(pci_device_coalesce(&d, 1, i - 2, 1), 0);
	assert_int_equal(pci_device_coalesce(&d, 1, 0x40, 1), -1); /* PCI_COALESCE_SPANS */
	d.ncoalesce = 2;
	assert_int_equal(pci_host_add(&h, &d), 1);
	assert_int_equal(z.n, 1);
	assert_int_equal(z.addr[0], 0xc010);
	assert_int_equal(z.len[0], 13);
	/* A config write that leaves the BAR where it is changes nothing. */
	z.calls = 0;
	cfg_write(ADDR(0, 1, 0, 0x3c), 0x0b);
	assert_int_equal(z.calls, 0);
	/* Moved by the guest. */
	cfg_write(ADDR(0, 1, 0, 0x14), 0xd000);
	assert_int_equal(z.n, 1);
	assert_int_equal(z.addr[0], 0xd010);
	/* Sized: not decoded, no zone; back: the zone again. */
	cfg_write(ADDR(0, 1, 0, 0x14), 0xffffffff);
	assert_int_equal(z.n, 0);
	cfg_write(ADDR(0, 1, 0, 0x14), 0xd000);
	assert_int_equal(z.addr[0], 0xd010);
	/* I/O decoding off and on. */
	cfg_write(ADDR(0, 1, 0, 0x04), 0x0);
	assert_int_equal(z.n, 0);
	cfg_write(ADDR(0, 1, 0, 0x04), 0x1);
	assert_int_equal(z.n, 1);
	/* The configuration space replaced wholesale (a state load). */
	le32_put(d.config + PCI_BAR0 + 4, 0xe001);
	pci_host_update_coalesced(&h);
	assert_int_equal(z.n, 1);
	assert_int_equal(z.addr[0], 0xe010);
	/* A refusing accelerator: nothing recorded, nothing to remove later
	 * (record_zone fails the test on a removal of what it lacks). */
	z.refuse = 1;
	cfg_write(ADDR(0, 1, 0, 0x14), 0xc000);
	assert_int_equal(z.n, 0);
	z.refuse = 0;
	cfg_write(ADDR(0, 1, 0, 0x14), 0xc080);
	assert_int_equal(z.addr[0], 0xc090);
	/* The device leaves: its zone goes with it. */
	pci_host_remove(&h, &d);
	assert_int_equal(z.n, 0);
	bus_destroy(&pio);
	bus_destroy(&mmio);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_host_bridge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_master_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_narrow_data_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_large_and_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_written_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_reading_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots_fill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_through_bus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_bars, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_window_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multi_function, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coalesced_spans, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
