/* The emulated Intel 82540EM (8254x manual): its PCI function, 128 KiB of
 * memory-mapped registers in BAR 0, the interrupt cause and mask registers
 * with ITR throttling on INTA#, the same registers through the I/O BAR 1
 * (IOADDR/IODATA), the EEPROM and PHY behind EECD/EERD and
 * MDIC (e1000_eeprom.c, e1000_phy.c), the statistics, and the device's
 * lifecycle and snapshot record. The descriptor rings are e1000_rings.c.
 *
 * Registers are one array of 32-bit words up to E1000_REG_END; only the
 * ones the 82540EM has are kept (the rest read 0 and ignore writes), and
 * those with side effects are handled by name. Statistics clear when read. */
#include "hw/e1000.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "hw/e1000_dev.h"
#include "net/vnet_hdr.h"
#include "util/clock.h"
#include "util/eventfd.h"
#include "util/le.h"
#include "util/log.h"

#define PCI_CLASS_ETHERNET 0x020000
#define PCI_COMMAND_MASTER_BIT 0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define ITR_UNIT_NS 256

static struct e1000 *to_e1000(struct device *d)
{
	return d->opaque;
}

bool e1000_bus_master(const struct e1000 *e)
{
	return le16_get(e->pci.config + PCI_COMMAND) & PCI_COMMAND_MASTER_BIT;
}

void e1000_stat_add(struct e1000 *e, uint32_t off, uint64_t n, bool wide)
{
	uint64_t v = e1000_reg(e, off);

	if (wide)
		v |= (uint64_t)e1000_reg(e, off + 4) << 32;
	v += n;
	if (!wide && v > UINT32_MAX)
		v = UINT32_MAX; /* the counters saturate (13.7) */
	e1000_set_reg(e, off, (uint32_t)v);
	if (wide)
		e1000_set_reg(e, off + 4, (uint32_t)(v >> 32));
}

/* ---- interrupts ---- */

static void arm_timer(struct e1000 *e, uint64_t at_ns)
{
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(at_ns / 1000000000u),
						.tv_nsec = (long)(at_ns % 1000000000u) } };

	if (e->timer_armed)
		return;
	if (timerfd_settime(e->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		e->timer_armed = true;
}

/* INTA# is high while a cause is set and unmasked (and the command
 * register allows INTx). A new assertion waits until ITR's interval since
 * the last one has passed (13.4.18): the throttle timer raises it then. */
static void update_irq(struct e1000 *e)
{
	bool want = (e1000_reg(e, E1000_ICR) & e1000_reg(e, E1000_IMS)) &&
		    !(le16_get(e->pci.config + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE);
	uint64_t now, interval;

	if (!want) {
		if (e->intx_level) {
			e->intx_level = false;
			irq_line_set(&e->intx, 0);
		}
		return;
	}
	if (e->intx_level)
		return;
	interval = (uint64_t)(e1000_reg(e, E1000_ITR) & 0xffff) * ITR_UNIT_NS;
	now = interval ? monotonic_ns() : 0;
	if (interval && now < e->irq_next_ns) {
		arm_timer(e, e->irq_next_ns);
		return;
	}
	e->intx_level = true;
	e->irq_next_ns = now + interval;
	e->stats.interrupts++;
	irq_line_set(&e->intx, 1);
}

void e1000_set_cause(struct e1000 *e, uint32_t cause)
{
	e1000_set_reg(e, E1000_ICR, e1000_reg(e, E1000_ICR) | (cause & E1000_ICR_VALID));
	update_irq(e);
}

/* ---- registers ---- */

/* The registers kept as plain storage (besides those handled by name). */
static bool reg_stored(uint32_t off)
{
	if ((off >= E1000_MTA && off < E1000_MTA + 512) || (off >= E1000_RA && off < E1000_RA + 128) ||
	    (off >= E1000_VFTA && off < E1000_VFTA + 512))
		return true;
	switch (off) {
	case E1000_CTRL_EXT:
	case E1000_FLA:
	case E1000_FCAL:
	case E1000_FCAH:
	case E1000_FCT:
	case E1000_VET:
	case E1000_FCTTV:
	case E1000_TXCW:
	case E1000_RXCW:
	case E1000_TIPG:
	case E1000_AIT:
	case E1000_LEDCTL:
	case E1000_PBA:
	case E1000_FCRTL:
	case E1000_FCRTH:
	case E1000_RDBAH:
	case E1000_RDTR:
	case E1000_RXDCTL:
	case E1000_RADV:
	case E1000_RSRPD:
	case E1000_TXDMAC:
	case E1000_TDBAH:
	case E1000_TIDV:
	case E1000_TXDCTL:
	case E1000_TADV:
	case E1000_RXCSUM:
	case E1000_WUC:
	case E1000_WUFC:
	case E1000_WUS:
	case E1000_MANC:
		return true;
	default:
		return false;
	}
}

static bool reg_is_stat(uint32_t off)
{
	return off >= E1000_STATS_START && off < E1000_STATS_END;
}

/* Everything as after power-on or CTRL.RST (the PCI function aside):
 * rings off, interrupts masked, the address filter loaded from the
 * EEPROM, the link up. */
static void reset_regs(struct e1000 *e)
{
	memset(e->reg, 0, sizeof(e->reg));
	e1000_set_reg(e, E1000_CTRL, E1000_CTRL_FD | E1000_CTRL_SLU | E1000_CTRL_SPD_1000);
	e1000_set_reg(e, E1000_STATUS, E1000_STATUS_FD | E1000_STATUS_LU | E1000_STATUS_SPEED_1000 |
					       E1000_STATUS_ASDV_1000);
	e1000_set_reg(e, E1000_VET, 0x8100);
	e1000_set_reg(e, E1000_PBA, 0x0030); /* 48 KiB receive, 16 KiB transmit */
	e1000_set_reg(e, E1000_LEDCTL, 0x07068302);
	e1000_set_reg(e, E1000_RA, le32_get(e->mac));
	e1000_set_reg(e, E1000_RA + 4, le16_get(e->mac + 4) | E1000_RAH_AV);
	e1000_set_reg(e, E1000_RXCSUM, 0x0300); /* TCP/UDP and IP checksum on */
	e1000_set_reg(e, E1000_MANC, 0);
	e1000_eeprom_init(&e->ee, e->mac);
	e1000_phy_reset(&e->phy);
	e1000_tx_reset(e);
	memset(&e->tx.ctx, 0, sizeof(e->tx.ctx));
	e->rx_len = 0;
	e->irq_next_ns = 0;
	update_irq(e);
}

static uint32_t reg_read(struct e1000 *e, uint32_t off)
{
	uint32_t v;

	if (off >= E1000_REG_END)
		return 0;
	switch (off) {
	case E1000_CTRL:
	case E1000_STATUS:
	case E1000_EERD:
	case E1000_MDIC:
	case E1000_ITR:
	case E1000_IMS:
	case E1000_RCTL:
	case E1000_TCTL:
	case E1000_RDBAL:
	case E1000_RDLEN:
	case E1000_RDH:
	case E1000_RDT:
	case E1000_TDBAL:
	case E1000_TDLEN:
	case E1000_TDH:
	case E1000_TDT:
		return e1000_reg(e, off);
	case E1000_EECD:
		return e1000_eecd_read(&e->ee);
	case E1000_ICR:
		/* Reading acknowledges every cause (13.4.17). */
		v = e1000_reg(e, E1000_ICR);
		e1000_set_reg(e, E1000_ICR, 0);
		update_irq(e);
		return v;
	default:
		break;
	}
	if (reg_is_stat(off)) {
		v = e1000_reg(e, off);
		e1000_set_reg(e, off, 0);
		return v;
	}
	return reg_stored(off) ? e1000_reg(e, off) : 0;
}

static void kick_rx(struct e1000 *e)
{
	if (!e->rx_stalled)
		return;
	e->rx_stalled = false;
	eventfd_signal(e->kick_fd);
}

static void reg_write(struct e1000 *e, uint32_t off, uint32_t v)
{
	if (off >= E1000_REG_END)
		return;
	switch (off) {
	case E1000_CTRL:
		if (v & E1000_CTRL_RST) {
			reset_regs(e);
			kick_rx(e);
			return;
		}
		if ((v & E1000_CTRL_PHY_RST) && !(e1000_reg(e, E1000_CTRL) & E1000_CTRL_PHY_RST))
			e1000_phy_reset(&e->phy);
		e1000_set_reg(e, off, v);
		return;
	case E1000_STATUS:
		return;
	case E1000_EECD:
		e1000_eecd_write(&e->ee, v);
		return;
	case E1000_EERD:
		e1000_set_reg(e, off, e1000_eerd_write(&e->ee, v));
		return;
	case E1000_MDIC:
		e1000_set_reg(e, off, e1000_mdic_write(&e->phy, v));
		if (v & E1000_MDIC_INT_EN)
			e1000_set_cause(e, E1000_ICR_MDAC);
		return;
	case E1000_ICR: /* writing ones clears them */
		e1000_set_reg(e, off, e1000_reg(e, off) & ~v);
		update_irq(e);
		return;
	case E1000_ICS:
		e1000_set_cause(e, v);
		return;
	case E1000_IMS:
		e1000_set_reg(e, off, e1000_reg(e, off) | (v & E1000_ICR_VALID));
		update_irq(e);
		return;
	case E1000_IMC:
		e1000_set_reg(e, E1000_IMS, e1000_reg(e, E1000_IMS) & ~v);
		update_irq(e);
		return;
	case E1000_ITR:
		e1000_set_reg(e, off, v & 0xffff);
		return;
	case E1000_RCTL:
		e1000_set_reg(e, off, v);
		kick_rx(e);
		return;
	case E1000_TCTL:
		e1000_set_reg(e, off, v);
		e1000_tx_process(e);
		return;
	case E1000_RDBAL:
	case E1000_TDBAL:
		e1000_set_reg(e, off, v & ~0xfu);
		return;
	case E1000_RDLEN:
	case E1000_TDLEN:
		e1000_set_reg(e, off, v & 0xfff80);
		return;
	case E1000_RDH:
	case E1000_TDH:
		e1000_set_reg(e, off, v & 0xffff);
		return;
	case E1000_RDT:
		e1000_set_reg(e, off, v & 0xffff);
		kick_rx(e);
		return;
	case E1000_TDT:
		e1000_set_reg(e, off, v & 0xffff);
		e1000_tx_process(e);
		return;
	default:
		if (reg_stored(off))
			e1000_set_reg(e, off, v);
		return;
	}
}

/* BAR 0. The registers are 32 bits wide; narrower reads see part of one
 * (with its side effects), narrower writes are ignored, 64-bit accesses
 * are two. */
static uint64_t bar_read(void *opaque, uint64_t off, unsigned int size)
{
	struct e1000 *e = opaque;
	uint64_t v;

	pthread_mutex_lock(&e->lock);
	v = reg_read(e, (uint32_t)(off & ~3u));
	if (size == 8 && !(off & 7))
		v |= (uint64_t)reg_read(e, (uint32_t)off + 4) << 32;
	else
		v >>= 8 * (off & 3);
	pthread_mutex_unlock(&e->lock);
	return v;
}

static void bar_write(void *opaque, uint64_t off, unsigned int size, uint64_t value)
{
	struct e1000 *e = opaque;

	if (off & 3 || (size != 4 && size != 8))
		return;
	pthread_mutex_lock(&e->lock);
	reg_write(e, (uint32_t)off, (uint32_t)value);
	if (size == 8)
		reg_write(e, (uint32_t)off + 4, (uint32_t)(value >> 32));
	pthread_mutex_unlock(&e->lock);
}

static const struct bus_ops bar_ops = { .read = bar_read, .write = bar_write };

/* BAR 1, the I/O window onto the registers (13.2.2): IOADDR (offset 0)
 * selects a register, IODATA (offset 4) reads or writes it. Linux's
 * driver uses it for the MAC reset only (the 82540EM "cannot ack the
 * 64-bit write" of CTRL.RST through memory). Other offsets are reserved:
 * they read as 0, writes are ignored. */
#define IOADDR 0
#define IODATA 4

static uint64_t io_read(void *opaque, uint64_t off, unsigned int size)
{
	struct e1000 *e = opaque;
	uint32_t v = 0;

	if (size != 4)
		return 0;
	pthread_mutex_lock(&e->lock);
	if (off == IOADDR)
		v = e->ioaddr;
	else if (off == IODATA)
		v = reg_read(e, e->ioaddr & (E1000_BAR_SIZE - 4));
	pthread_mutex_unlock(&e->lock);
	return v;
}

static void io_write(void *opaque, uint64_t off, unsigned int size, uint64_t value)
{
	struct e1000 *e = opaque;

	if (size != 4)
		return;
	pthread_mutex_lock(&e->lock);
	if (off == IOADDR)
		e->ioaddr = (uint32_t)value & (E1000_BAR_SIZE - 4);
	else if (off == IODATA)
		reg_write(e, e->ioaddr, (uint32_t)value);
	pthread_mutex_unlock(&e->lock);
}

static const struct bus_ops io_ops = { .read = io_read, .write = io_write };

/* The command register's Interrupt Disable and Bus Master bits. */
static void config_written(struct pci_device *d, unsigned int offset, unsigned int size)
{
	struct e1000 *e = d->priv;

	if (offset < PCI_COMMAND + 2 && offset + size > PCI_COMMAND) {
		pthread_mutex_lock(&e->lock);
		update_irq(e);
		if (e1000_bus_master(e))
			kick_rx(e);
		pthread_mutex_unlock(&e->lock);
	}
}

/* The registers whose writes must reach the card at once: MDIC (the
 * driver polls it, and it may interrupt), the interrupt cause and mask
 * registers (the line follows them: a driver that masked interrupts
 * counts on none coming), and TCTL and TDT (a frame must leave without
 * waiting for an unrelated exit). Every other write only latches a
 * value or lets the card go on at leisure, so it waits in KVM's
 * coalesced ring (kvm/coalesced.h) until the next exit to userspace --
 * at the latest the read or write of one of these, which the driver
 * always makes next: RDT after a refill is followed by IMS when NAPI
 * completes, the EEPROM and reset by reads that poll them. The set is
 * QEMU's (hw/net/e1000.c), so the two cards exit alike. In ascending
 * order: the spans between them are cut from it. */
static const uint32_t exiting_writes[] = { E1000_MDIC, E1000_ICR, E1000_ICS, E1000_IMS,
					   E1000_IMC, E1000_TCTL, E1000_TDT };

static void coalesce_latches(struct pci_device *d)
{
	uint32_t from = 0;

	for (size_t i = 0; i < sizeof(exiting_writes) / sizeof(exiting_writes[0]); i++) {
		pci_device_coalesce(d, 0, from, exiting_writes[i] - from);
		from = exiting_writes[i] + 4;
	}
	pci_device_coalesce(d, 0, from, E1000_BAR_SIZE - from);
}

static void build_config_space(struct e1000 *e)
{
	struct pci_device *d = &e->pci;

	pci_device_init(d, E1000_VENDOR, E1000_DEVICE_82540EM, PCI_CLASS_ETHERNET, 3);
	le16_put(d->config + PCI_SUBSYS_VENDOR, E1000_VENDOR);
	le16_put(d->config + PCI_SUBSYS_ID, E1000_SUBSYS_ID);
	d->config[PCI_INTERRUPT_PIN] = 1; /* INTA# */
	pci_device_set_bar(d, 0, E1000_BAR_SIZE, 0);
	pci_device_set_bar(d, 1, E1000_IO_BAR_SIZE, PCI_BAR_IO);
	coalesce_latches(d);
	d->priv = e;
	d->config_written = config_written;
	d->bar_ops[0] = &bar_ops;
	d->bar_opaque[0] = e;
	d->bar_ops[1] = &io_ops;
	d->bar_opaque[1] = e;
	d->name = e->name;
}

/* ---- the I/O thread ---- */

static void rx_ready(void *ctx, uint32_t events)
{
	struct e1000 *e = ctx;

	pthread_mutex_lock(&e->lock);
	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
		/* A tap whose interface was deleted, for one. */
		log_warn("%s: %s: error on its file descriptor; no more frames for the guest",
			 e->name, net_backend_name(e->backend));
		ioloop_remove(&e->loop, &e->rx_watch);
		e->backend_broken = true;
	} else {
		e1000_rx_process(e);
	}
	pthread_mutex_unlock(&e->lock);
}

static void kicked(void *ctx, uint32_t events)
{
	struct e1000 *e = ctx;

	(void)events;
	if (!eventfd_consume(e->kick_fd))
		return;
	pthread_mutex_lock(&e->lock);
	e1000_rx_process(e);
	pthread_mutex_unlock(&e->lock);
}

static void timer_fired(void *ctx, uint32_t events)
{
	struct e1000 *e = ctx;
	uint64_t v;

	(void)events;
	if (read(e->timer_fd, &v, sizeof(v)) < 0)
		return;
	pthread_mutex_lock(&e->lock);
	e->timer_armed = false;
	update_irq(e);
	pthread_mutex_unlock(&e->lock);
}

/* ---- lifecycle ---- */

static void unrealize(struct e1000 *e)
{
	if (e->loop_ready)
		ioloop_stop(&e->loop);
	if (e->slot >= 0) {
		pci_host_remove(e->env.host, &e->pci);
		e->slot = -1;
	}
	pthread_mutex_lock(&e->lock);
	if (e->intx_level)
		irq_line_set(&e->intx, 0);
	e->intx_level = false;
	pthread_mutex_unlock(&e->lock);
	irq_line_release(&e->intx);
	if (e->loop_ready)
		ioloop_destroy(&e->loop);
	e->loop_ready = false;
	e->watches_added = false;
}

static int e1000_realize(struct device *d, struct error *err)
{
	struct e1000 *e = to_e1000(d);
	int slot;

	if (ioloop_init(&e->loop, e->name) < 0)
		return error_set(err, "%s: cannot create its I/O thread", e->name);
	e->loop_ready = true;
	build_config_space(e);
	slot = pci_host_add(e->env.host, &e->pci);
	if (slot < 0) {
		error_set(err, "%s: no free PCI slot or MMIO space", e->name);
		goto fail;
	}
	e->slot = slot;
	if (irq_line_claim(e->env.irq, e->env.intx_gsi((unsigned int)slot), &e->intx) < 0) {
		error_set(err, "%s: no room on interrupt line %u", e->name,
			  e->env.intx_gsi((unsigned int)slot));
		goto fail;
	}
	e->pci.config[PCI_INTERRUPT_LINE] = (uint8_t)e->intx.gsi;
	/* Firmware would have enabled decoding of the BARs it assigned. */
	le16_put(e->pci.config + PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	pci_device_save_reset_state(&e->pci);
	if (ioloop_add(&e->loop, &e->kick_watch, e->kick_fd, EPOLLIN, kicked, e) < 0 ||
	    ioloop_add(&e->loop, &e->timer_watch, e->timer_fd, EPOLLIN, timer_fired, e) < 0 ||
	    ioloop_add(&e->loop, &e->rx_watch, net_rx_fd(e->backend), 0, rx_ready, e) < 0) {
		error_set(err, "%s: cannot watch its backend", e->name);
		goto fail;
	}
	e->watches_added = true;
	e->rx_armed = false;
	e->rx_stalled = true; /* until the driver enables receive */
	if (ioloop_start(&e->loop) < 0) {
		error_set(err, "%s: cannot start its I/O thread", e->name);
		goto fail;
	}
	return 0;
fail:
	unrealize(e);
	return -1;
}

/* The vCPUs are paused, so no register access (and no transmit) runs:
 * stopping the I/O thread stops receive and the throttle timer. Frames
 * wait in the backend; a timer that expires meanwhile fires on resume. */
static int e1000_pause(struct device *d, struct error *err)
{
	(void)err;
	ioloop_stop(&to_e1000(d)->loop);
	return 0;
}

static void e1000_resume(struct device *d)
{
	struct e1000 *e = to_e1000(d);

	pthread_mutex_lock(&e->lock);
	e->rx_stalled = true;
	kick_rx(e); /* whatever arrived meanwhile */
	pthread_mutex_unlock(&e->lock);
	if (ioloop_start(&e->loop) < 0)
		log_error("%s: cannot restart its I/O thread; the card stops receiving", e->name);
}

static void e1000_reset(struct device *d)
{
	struct e1000 *e = to_e1000(d);

	pthread_mutex_lock(&e->lock);
	pci_device_restore_reset_state(&e->pci);
	e->ioaddr = 0;
	reset_regs(e);
	e->rx_stalled = true;
	pthread_mutex_unlock(&e->lock);
}

static void e1000_write_stats(struct device *d, struct jsonw *j)
{
	struct e1000 *e = to_e1000(d);
	struct e1000_stats s;

	pthread_mutex_lock(&e->lock);
	s = e->stats;
	pthread_mutex_unlock(&e->lock);
	/* Every register access is an exit: MMIO that reached BAR 0. */
	jsonw_uint(j, "exits", __atomic_load_n(&e->pci.exits, __ATOMIC_RELAXED));
	jsonw_uint(j, "interrupts", s.interrupts);
	jsonw_uint(j, "rx_frames", s.rx_frames);
	jsonw_uint(j, "rx_bytes", s.rx_bytes);
	jsonw_uint(j, "rx_dropped", s.rx_dropped);
	jsonw_uint(j, "rx_filtered", s.rx_filtered);
	jsonw_uint(j, "tx_frames", s.tx_frames);
	jsonw_uint(j, "tx_bytes", s.tx_bytes);
	jsonw_uint(j, "tx_dropped", s.tx_dropped);
	jsonw_uint(j, "tx_tso", s.tx_tso);
	jsonw_uint(j, "tx_segments", s.tx_segments);
	jsonw_uint(j, "bad_descriptors", s.bad_descriptors);
}

/* ---- state (snapshots) ---- */

/* Version 1: the PCI configuration space, IOADDR, the registers, the EEPROM's
 * Microwire state, the PHY, the transmit context and the frame being
 * gathered, the received frame waiting for descriptors, and the
 * backend's own state (net_backend_save) to the end. */
#define E1000_STATE_VERSION 1

struct e1000_saved {
	uint8_t config[PCI_CONFIG_SPACE];
	uint32_t reg[E1000_REG_WORDS];
	struct e1000_eeprom ee;
	struct e1000_phy phy;
	struct e1000_tx tx; /* buf: points into the record */
	const uint8_t *tx_data, *rx_data, *backend;
	uint32_t rx_len, ioaddr;
	size_t backend_len;
};

static void save_ctx(struct state_writer *w, const struct e1000_tx_ctx *c)
{
	state_put_u8(w, c->ipcss);
	state_put_u8(w, c->ipcso);
	state_put_u16(w, c->ipcse);
	state_put_u8(w, c->tucss);
	state_put_u8(w, c->tucso);
	state_put_u16(w, c->tucse);
	state_put_u32(w, c->paylen);
	state_put_u8(w, c->hdr_len);
	state_put_u16(w, c->mss);
	state_put_bool(w, c->ipv4);
	state_put_bool(w, c->tcp);
}

static void load_ctx(struct state_reader *r, struct e1000_tx_ctx *c)
{
	c->ipcss = state_get_u8(r);
	c->ipcso = state_get_u8(r);
	c->ipcse = state_get_u16(r);
	c->tucss = state_get_u8(r);
	c->tucso = state_get_u8(r);
	c->tucse = state_get_u16(r);
	c->paylen = state_get_u32(r);
	c->hdr_len = state_get_u8(r);
	c->mss = state_get_u16(r);
	c->ipv4 = state_get_bool(r);
	c->tcp = state_get_bool(r);
}

static void e1000_save(struct device *d, struct state_writer *w)
{
	struct e1000 *e = to_e1000(d);
	const struct e1000_tx *t = &e->tx;
	unsigned int i;

	pthread_mutex_lock(&e->lock);
	state_put_bytes(w, e->pci.config, PCI_CONFIG_SPACE);
	state_put_u32(w, e->ioaddr);
	for (i = 0; i < E1000_REG_WORDS; i++)
		state_put_u32(w, e->reg[i]);
	state_put_u32(w, e->ee.eecd);
	state_put_u16(w, e->ee.in);
	state_put_u8(w, e->ee.nbits);
	state_put_bool(w, e->ee.reading);
	state_put_u8(w, e->ee.addr);
	state_put_u8(w, e->ee.bitpos);
	state_put_bool(w, e->ee.dout);
	for (i = 0; i < E1000_PHY_REGS; i++)
		state_put_u16(w, e->phy.reg[i]);
	save_ctx(w, &t->ctx);
	state_put_bool(w, t->started);
	state_put_bool(w, t->bad);
	state_put_bool(w, t->tse);
	state_put_bool(w, t->vle);
	state_put_bool(w, t->ic);
	state_put_bool(w, t->legacy);
	state_put_u8(w, t->popts);
	state_put_u8(w, t->css);
	state_put_u8(w, t->cso);
	state_put_u16(w, t->vlan);
	state_put_u32(w, t->len);
	state_put_bytes(w, t->buf, t->len);
	state_put_u32(w, e->rx_len);
	state_put_bytes(w, e->rx_buf + VNET_HDR_LEN, e->rx_len);
	pthread_mutex_unlock(&e->lock);
	net_backend_save(e->backend, w);
}

/* Reads the record whole and checks what the device relies on; nothing
 * changes yet. */
static int parse_saved(struct e1000 *e, struct state_reader *r, struct e1000_saved *s,
		       struct error *err)
{
	struct e1000_tx *t = &s->tx;
	unsigned int i;

	state_get_bytes(r, s->config, PCI_CONFIG_SPACE);
	s->ioaddr = state_get_u32(r) & (E1000_BAR_SIZE - 4);
	for (i = 0; i < E1000_REG_WORDS; i++)
		s->reg[i] = state_get_u32(r);
	s->ee = e->ee; /* the image itself is this device's (its MAC) */
	s->ee.eecd = state_get_u32(r);
	s->ee.in = state_get_u16(r);
	s->ee.nbits = state_get_u8(r);
	s->ee.reading = state_get_bool(r);
	s->ee.addr = state_get_u8(r);
	s->ee.bitpos = state_get_u8(r);
	s->ee.dout = state_get_bool(r);
	for (i = 0; i < E1000_PHY_REGS; i++)
		s->phy.reg[i] = state_get_u16(r);
	load_ctx(r, &t->ctx);
	t->started = state_get_bool(r);
	t->bad = state_get_bool(r);
	t->tse = state_get_bool(r);
	t->vle = state_get_bool(r);
	t->ic = state_get_bool(r);
	t->legacy = state_get_bool(r);
	t->popts = state_get_u8(r);
	t->css = state_get_u8(r);
	t->cso = state_get_u8(r);
	t->vlan = state_get_u16(r);
	t->len = state_get_u32(r);
	if (t->len > E1000_TX_MAX)
		return error_set(err, "a transmit frame of %u bytes, more than %d", t->len,
				 E1000_TX_MAX);
	s->tx_data = state_get_span(r, t->len);
	s->rx_len = state_get_u32(r);
	if (s->rx_len > NET_MAX_FRAME)
		return error_set(err, "a received frame of %u bytes, more than %d", s->rx_len,
				 NET_MAX_FRAME);
	s->rx_data = state_get_span(r, s->rx_len);
	s->backend_len = state_reader_left(r);
	s->backend = state_get_span(r, s->backend_len);
	if (state_reader_done(r, err) < 0)
		return -1;
	if (!e1000_eeprom_state_valid(&s->ee))
		return error_set(err, "an EEPROM state this device cannot be in");
	if (s->rx_len && s->rx_len < ETH_HDR_LEN)
		return error_set(err, "a received frame of %u bytes", s->rx_len);
	return net_backend_check(e->backend, s->backend, s->backend_len, err);
}

static int e1000_load(struct device *d, struct state_reader *r, struct error *err)
{
	struct e1000 *e = to_e1000(d);
	struct e1000_saved *s = calloc(1, sizeof(*s));
	unsigned int i;
	int ret = -1;

	if (!s)
		return error_set(err, "out of memory");
	if (parse_saved(e, r, s, err) < 0)
		goto out;
	if (net_backend_load(e->backend, s->backend, s->backend_len, err) < 0)
		goto out;
	pthread_mutex_lock(&e->lock);
	/* Only what the guest could have written of the configuration
	 * space: identity and BAR sizes stay this build's. */
	for (i = 0; i < PCI_CONFIG_SPACE; i++)
		e->pci.config[i] = (uint8_t)((e->pci.config[i] & ~e->pci.wmask[i]) |
					     (s->config[i] & e->pci.wmask[i]));
	memcpy(e->reg, s->reg, sizeof(e->reg));
	e->ioaddr = s->ioaddr;
	e->ee = s->ee;
	e->phy = s->phy;
	s->tx.buf = e->tx.buf;
	e->tx = s->tx;
	memcpy(e->tx.buf, s->tx_data, s->tx.len);
	e->rx_len = s->rx_len;
	memcpy(e->rx_buf + VNET_HDR_LEN, s->rx_data, s->rx_len);
	e->irq_next_ns = 0;
	update_irq(e);
	e->rx_stalled = true; /* resume looks at the ring again */
	pthread_mutex_unlock(&e->lock);
	ret = 0;
out:
	free(s);
	return ret;
}

static void e1000_destroy(struct device *d)
{
	struct e1000 *e = to_e1000(d);

	unrealize(e);
	log_debug("%s: rx %llu frames %llu bytes, %llu dropped; tx %llu frames %llu bytes, %llu dropped; %llu interrupts",
		  e->name, (unsigned long long)e->stats.rx_frames,
		  (unsigned long long)e->stats.rx_bytes, (unsigned long long)e->stats.rx_dropped,
		  (unsigned long long)e->stats.tx_frames, (unsigned long long)e->stats.tx_bytes,
		  (unsigned long long)e->stats.tx_dropped, (unsigned long long)e->stats.interrupts);
	net_close(e->backend);
	close(e->kick_fd);
	close(e->timer_fd);
	pthread_mutex_destroy(&e->lock);
	free(e->tx.buf);
	free(e->seg);
	free(e->rx_buf);
	free(e);
}

static const struct device_ops e1000_ops = {
	.realize = e1000_realize,
	.pause = e1000_pause,
	.resume = e1000_resume,
	.reset = e1000_reset,
	.save = e1000_save,
	.load = e1000_load,
	.write_stats = e1000_write_stats,
	.destroy = e1000_destroy,
};

struct device *e1000_create(struct net_backend *backend, const uint8_t mac[6], unsigned int index,
			    const struct e1000_env *env, struct error *err)
{
	struct e1000 *e = calloc(1, sizeof(*e));

	if (!e) {
		error_set(err, "e1000-%u: out of memory", index);
		return NULL;
	}
	snprintf(e->name, sizeof(e->name), "e1000-%u", index);
	e->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	e->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	e->tx.buf = malloc(E1000_TX_MAX);
	e->seg = malloc(E1000_SEG_MAX);
	e->rx_buf = malloc(VNET_HDR_LEN + NET_MAX_FRAME);
	if (e->kick_fd < 0 || e->timer_fd < 0 || !e->tx.buf || !e->seg || !e->rx_buf) {
		error_set(err, "%s: cannot set up: %s", e->name,
			  e->kick_fd < 0 || e->timer_fd < 0 ? strerror(errno) : "out of memory");
		if (e->kick_fd >= 0)
			close(e->kick_fd);
		if (e->timer_fd >= 0)
			close(e->timer_fd);
		free(e->tx.buf);
		free(e->seg);
		free(e->rx_buf);
		free(e);
		return NULL;
	}
	e->backend = backend;
	e->backend_hdr = net_has_vnet_hdr(backend);
	/* The card does its offloads itself: the backend gives whole frames. */
	if (e->backend_hdr)
		net_set_offloads(backend, &(struct net_offloads){ 0 });
	memcpy(e->mac, mac, 6);
	e->env = *env;
	e->slot = -1;
	pthread_mutex_init(&e->lock, NULL);
	reset_regs(e);
	device_init(&e->dev, e->name, "e1000", &e1000_ops, e);
	e->dev.state_version = E1000_STATE_VERSION;
	return &e->dev;
}

void e1000_announce(struct device *d)
{
	struct e1000 *e;
	int r;

	if (d->ops != &e1000_ops)
		return;
	e = d->opaque;
	r = net_announce(e->backend, e->mac);
	if (r < 0)
		log_warn("%s: cannot announce its MAC after the migration: %s", e->name, strerror(-r));
}

const struct pci_device *e1000_pci_device(const struct device *d)
{
	return d->ops == &e1000_ops ? &((struct e1000 *)d->opaque)->pci : NULL;
}
