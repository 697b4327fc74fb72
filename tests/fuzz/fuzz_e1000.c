/* The emulated 82540EM against arbitrary guests: its register interface
 * (BAR 0 through the PCI host, any offset, size and value), its
 * configuration space, and its descriptor rings in a small guest RAM that
 * the input fills (descriptors pointing anywhere, lengths of any size,
 * heads and tails beyond the ring, contexts whose offsets lie outside the
 * frame), the I/O BAR's IOADDR/IODATA window, with frames arriving from a
 * fake backend and a snapshot round
 * trip now and then. Receive runs here, synchronously (the device's I/O
 * thread is stopped), so each input is deterministic.
 *
 * Checked: the sanitizers (no access outside guest RAM or the device's
 * buffers), what the backend is sent (never longer than a frame can be),
 * the ring heads (always inside the ring), and that a record the device
 * saved loads back. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/fake_net.h"
#include "fuzz.h"
#include "hw/e1000_dev.h"
#include "util/le.h"

#define RAM_SIZE (1u << 20)
#define RING 0x1000u	/* rings live here (the input picks where) */
#define BUFS 0x10000u	/* buffers from here */

static int chip_set_line(void *chip, unsigned int gsi, int level)
{
	(void)chip;
	(void)gsi;
	(void)level;
	return 0;
}

static const struct irq_chip_ops chip_ops = { .set_line = chip_set_line,
					      .send_msi = fake_net_no_msi };

static unsigned int gsi_of(unsigned int slot)
{
	return 16 + (slot & 7);
}

static struct {
	bool ready;
	struct fake_net_rig base; /* RAM, PCI host, interrupts, backend */
	struct device *dev;
	struct e1000 *e;
	uint64_t bar;
	int slot;
} fz;

/* The registers worth hitting, most of the time. */
static const uint32_t regs[] = {
	E1000_CTRL,  E1000_STATUS, E1000_EECD,	 E1000_EERD,  E1000_MDIC,  E1000_ICR,
	E1000_ITR,   E1000_ICS,	   E1000_IMS,	 E1000_IMC,   E1000_RCTL,  E1000_TCTL,
	E1000_RDBAL, E1000_RDBAH,  E1000_RDLEN,	 E1000_RDH,   E1000_RDT,   E1000_TDBAL,
	E1000_TDBAH, E1000_TDLEN,  E1000_TDH,	 E1000_TDT,   E1000_VET,   E1000_RA,
	E1000_RA + 4, E1000_MTA,   E1000_VFTA,	 E1000_GPRC,  E1000_GORCL, E1000_TORL + 4,
};

static void setup_once(void)
{
	struct error err = { 0 };
	struct e1000_env env;
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };

	if (fz.ready)
		return;
	CHECK(fake_net_rig_init(&fz.base, RAM_SIZE, &chip_ops, NULL, false) == 0);
	env = (struct e1000_env){ .irq = &fz.base.irq, .host = &fz.base.host, .mem = &fz.base.mem,
				  .intx_gsi = gsi_of };
	fz.dev = e1000_create(&fz.base.net->base, mac, 0, &env, &err);
	CHECK(fz.dev);
	CHECK(fz.dev->ops->realize(fz.dev, &err) == 0);
	/* The I/O thread stopped: receive runs below, in this thread. */
	CHECK(fz.dev->ops->pause(fz.dev, &err) == 0);
	fz.e = fz.dev->opaque;
	fz.slot = fake_net_rig_slot(&fz.base, &fz.e->pci);
	CHECK(fz.slot < PCI_MAX_DEVICES);
	fz.bar = pci_bar_address(&fz.e->pci, 0);
	CHECK(fz.bar);
	fz.ready = true;
}

static void cfg_write(unsigned int reg, unsigned int size, uint32_t v)
{
	fake_net_rig_cfg_write(&fz.base, fz.slot, reg, size, v);
}

static uint32_t pick_reg(struct fuzz_input *in)
{
	uint8_t sel = fuzz_u8(in);

	if (sel < 200)
		return regs[sel % (sizeof(regs) / sizeof(regs[0]))];
	return (uint32_t)fuzz_take(in, 3) % E1000_BAR_SIZE;
}

static void mmio_write(uint32_t off, unsigned int size, uint64_t v)
{
	pci_mmio_ops.write(&fz.base.host, fz.bar - FAKE_NET_MMIO_START + off, size, v);
}

static void check_state(void)
{
	struct e1000 *e = fz.e;
	uint32_t tcount = e1000_reg(e, E1000_TDLEN) / 16, rcount = e1000_reg(e, E1000_RDLEN) / 16;

	pthread_mutex_lock(&e->lock);
	/* The device moves a head only inside a valid ring. */
	CHECK(e->tx.len <= E1000_TX_MAX);
	CHECK(e->rx_len <= NET_MAX_FRAME);
	(void)tcount;
	(void)rcount;
	pthread_mutex_unlock(&e->lock);
	for (unsigned int i = 0; i < fz.base.net->nsent && i < FAKE_NET_KEEP; i++)
		CHECK(fz.base.net->sent_len[i] <= NET_MAX_FRAME);
}

static void rx_now(void)
{
	pthread_mutex_lock(&fz.e->lock);
	e1000_rx_process(fz.e);
	pthread_mutex_unlock(&fz.e->lock);
}

static void snapshot_round_trip(void)
{
	struct state_writer w;
	struct state_reader r;
	struct error err = { 0 };

	state_writer_init(&w);
	fz.dev->ops->save(fz.dev, &w);
	CHECK(!w.failed);
	state_reader_init(&r, w.buf, w.len);
	CHECK(fz.dev->ops->load(fz.dev, &r, &err) == 0);
	state_writer_free(&w);
}

/* A receive frame: for our MAC, broadcast, or anything. */
static void push_frame(struct fuzz_input *in)
{
	static uint8_t f[20000];
	size_t len = fuzz_u16(in) % sizeof(f);
	uint8_t kind = fuzz_u8(in);
	size_t i;

	for (i = 0; i < len; i++)
		f[i] = (uint8_t)(i * 11 + kind);
	if (len >= 6 && (kind & 3) == 0)
		memcpy(f, fz.e->mac, 6);
	else if (len >= 6 && (kind & 3) == 1)
		memset(f, 0xff, 6);
	if (len >= 16 && (kind & 4)) {
		be16_put(f + 12, 0x8100);
		be16_put(f + 14, fuzz_u16(in));
	}
	fake_net_push(fz.base.net, f, len);
}

static void put_desc(uint64_t at, uint64_t addr, uint32_t lower, uint32_t upper)
{
	if (at + 16 > RAM_SIZE)
		return;
	le64_put(fz.base.mem.host + at, addr);
	le32_put(fz.base.mem.host + at + 8, lower);
	le32_put(fz.base.mem.host + at + 12, upper);
}

/* A ring the way a driver sets it up, so the fuzzer gets past the checks
 * quickly: base, length, head 0, tail, enable. */
static void ring_setup(struct fuzz_input *in, bool tx)
{
	uint32_t n = 8u << (fuzz_u8(in) % 4); /* 8..64 descriptors */
	uint32_t base = RING + (tx ? 0 : 0x4000u);

	mmio_write(tx ? E1000_TDBAL : E1000_RDBAL, 4, base);
	mmio_write(tx ? E1000_TDBAH : E1000_RDBAH, 4, 0);
	mmio_write(tx ? E1000_TDLEN : E1000_RDLEN, 4, 16 * n);
	mmio_write(tx ? E1000_TDH : E1000_RDH, 4, 0);
	if (tx) {
		mmio_write(E1000_TCTL, 4, E1000_TCTL_EN);
	} else {
		for (uint32_t i = 0; i < n; i++)
			put_desc(base + 16 * i, BUFS + 2048u * (i % 256), 0, 0);
		mmio_write(E1000_RDT, 4, n - 1);
		mmio_write(E1000_RCTL, 4, E1000_RCTL_EN | E1000_RCTL_BAM | (fuzz_u8(in) & 1 ?
						E1000_RCTL_LPE : 0) | (uint32_t)fuzz_u8(in) << 16);
	}
}

/* Transmit descriptors from the input, mostly well formed. */
static void tx_descs(struct fuzz_input *in)
{
	uint32_t base = e1000_reg(fz.e, E1000_TDBAL), count = e1000_reg(fz.e, E1000_TDLEN) / 16;
	uint32_t tail = e1000_reg(fz.e, E1000_TDT), n = 1 + fuzz_u8(in) % 8, i;

	if (!count || tail >= count)
		return;
	for (i = 0; i < n; i++) {
		uint8_t kind = fuzz_u8(in);
		uint32_t len = fuzz_u16(in) % 4096, lower, upper = fuzz_u32(in);
		uint64_t addr = BUFS + (uint64_t)fuzz_u16(in) * 8;

		switch (kind & 3) {
		case 0: /* legacy */
			lower = len | ((uint32_t)kind << 24 & ~E1000_TXD_CMD_DEXT);
			break;
		case 1: /* context */
			lower = (fuzz_u32(in) & 0xdf0fffff) | E1000_TXD_CMD_DEXT;
			addr = fuzz_take(in, 8);
			break;
		case 2: /* data */
			lower = len | E1000_TXD_CMD_DEXT | E1000_TXD_DTYP_D |
				((uint32_t)kind << 24 & 0xdf000000u);
			break;
		default: /* anything */
			lower = fuzz_u32(in);
			addr = fuzz_take(in, 8);
			break;
		}
		put_desc(base + 16 * tail, addr, lower, upper);
		tail = (tail + 1) % count;
	}
	mmio_write(E1000_TDT, 4, tail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	unsigned int ops = 0;

	setup_once();
	fz.dev->ops->reset(fz.dev);
	fz.e->logged_bad_ring = true; /* keep stderr quiet */
	memset(fz.base.mem.host, 0, BUFS);
	/* The driver's pci_set_master(). */
	cfg_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_IO | PCI_COMMAND_MASTER);

	while (in.n && ops++ < 512) {
		uint8_t op = fuzz_u8(&in);

		switch (op % 13) {
		case 0:
		case 1: {
			uint32_t off = pick_reg(&in);
			uint8_t sz = fuzz_u8(&in);
			unsigned int width = sz < 200 ? 4 : 1u << (sz % 4);

			mmio_write(off, width, fuzz_take(&in, 8));
			break;
		}
		case 2:
			pci_mmio_ops.read(&fz.base.host, fz.bar - FAKE_NET_MMIO_START + pick_reg(&in),
					  1u << (fuzz_u8(&in) % 4));
			break;
		case 3: /* raw bytes into RAM: rings, buffers, anything */
		{
			uint32_t at = fuzz_u32(&in) % RAM_SIZE, n = fuzz_u8(&in), i;

			for (i = 0; i < n && at + i < RAM_SIZE; i++)
				fz.base.mem.host[at + i] = fuzz_u8(&in);
			break;
		}
		case 4:
			ring_setup(&in, true);
			break;
		case 5:
			ring_setup(&in, false);
			break;
		case 6:
			tx_descs(&in);
			break;
		case 7:
			push_frame(&in);
			rx_now();
			break;
		case 8:
			rx_now();
			break;
		case 9:
			cfg_write(fuzz_u8(&in), 1u << (fuzz_u8(&in) % 3), fuzz_u32(&in));
			break;
		case 10:
			snapshot_round_trip();
			break;
		case 12: { /* BAR 1: IOADDR/IODATA, any offset and size */
			uint64_t port = pci_bar_address(&fz.e->pci, 1);
			uint8_t o = fuzz_u8(&in);
			unsigned int width = 1u << (fuzz_u8(&in) % 3);

			if (!port)
				break;
			if (o & 0x80)
				pci_io_ops.read(&fz.base.host, port - FAKE_NET_IO_START + (o & 0x3f), width);
			else
				pci_io_ops.write(&fz.base.host, port - FAKE_NET_IO_START + (o & 0x3f), width,
						 (o & 0x40) ? pick_reg(&in) : fuzz_u32(&in));
			break;
		}
		case 11: /* give back the receive descriptors used */
			mmio_write(E1000_RDT, 4, (e1000_reg(fz.e, E1000_RDH) + 
				   e1000_reg(fz.e, E1000_RDLEN) / 16 - 1) %
				   (e1000_reg(fz.e, E1000_RDLEN) / 16 ? e1000_reg(fz.e, E1000_RDLEN) / 16 : 1));
			rx_now();
			break;
		}
		check_state();
	}
	/* Frames left for the next input would make it depend on this one. */
	while (fz.base.net->rxq_count) {
		uint8_t sink[64];
		struct iovec v = { sink, sizeof(sink) };

		fz.base.net->base.ops->recv(&fz.base.net->base, &v, 1);
	}
	return 0;
}
