/* The Kvaser PCIcan card (kvaser_pci.h): the PCI function, the S5920's
 * interrupt gate, the Xilinx version register, and the SJA1000 on a CAN
 * backend.
 *
 * Threads: vCPUs reach the registers (the BAR handlers); the card's I/O
 * thread reads the backend (frames, TX confirmations, bus-off) and, when
 * the backend said -EAGAIN, waits for it to take more. k->lock covers the
 * controller, the backend and the interrupt line; the PCI host's lock,
 * when held (config writes), is taken before it.
 *
 * The bus has no timing here. Frames from the bus are put in the
 * controller's FIFO by the I/O thread, as many as fit, and only once the
 * guest has emptied it: the rest wait (one frame here, the others in the
 * backend: the host socket's queue). While frames wait, the next batch
 * comes only after the guest's interrupt handler is done with this one
 * (it read IR and found nothing pending; without the receive interrupt
 * enabled, once the FIFO is empty). So a guest that keeps up loses
 * nothing, and Linux's sja1000 handler, which reads for as long as the
 * status register shows a frame, ends after each batch, letting the
 * kernel pass the frames on: refilled under it, it read for as long as
 * the host sent, and its backlog (1,000 frames) overflowed. The FIFO's
 * data overrun is the chip's rule, for frames the controller loops back
 * to itself (SRR) when its FIFO is full. */
#include "hw/kvaser_pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hw/sja1000.h"
#include "util/eventfd.h"
#include "util/ioloop.h"
#include "util/le.h"
#include "util/log.h"

#define KVASER_VENDOR 0x10e8 /* AMCC */
#define KVASER_DEVICE 0x8406
#define KVASER_CLASS 0x0c0900 /* serial bus controller: CAN bus */

#define BAR_S5920 0
#define BAR_SJA 1
#define BAR_XILINX 2
#define S5920_SIZE 0x80
#define SJA_SIZE 0x80 /* four controllers' room, 32 bytes each */
#define XILINX_SIZE 0x08

#define S5920_INTCSR 0x38
#define S5920_PTCR 0x60
#define INTCSR_ADDON_INTENABLE 0x00002000u
#define INTCSR_INTERRUPT_ASSERTED 0x00800000u
#define XILINX_VERINT 7
#define XILINX_VERSION 14 /* what the Linux driver's register values are for */

#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PAUSE_WAIT_MS 200
#define RX_BUDGET 64 /* events per wake-up, so vCPUs get the lock in between */

struct kvaser {
	struct device dev;
	struct pci_device pci;
	struct kvaser_pci_env env;
	char name[24];
	int slot;
	pthread_mutex_t lock;
	struct sja1000 chip;
	struct can_backend *backend;
	struct ioloop loop;
	bool loop_ready;
	struct ioloop_watch watch;
	bool watching;
	/* Written when the I/O thread has frames to deliver (the FIFO was
	 * emptied with one held, and the guest's handler is done). */
	int kick_fd;
	struct ioloop_watch kick_watch;
	bool kick_watching;
	uint32_t watched; /* the events asked for now */
	uint32_t intcsr, ptcr;
	struct irq_line intx;
	bool intx_claimed, intx_asserted, chip_irq;
	/* A frame from the bus waiting for room in the FIFO. */
	bool held;
	struct can_msg held_msg;
	unsigned int in_flight; /* frames handed to the backend, unconfirmed */
	uint64_t interrupts, rx_dropped;
};

/* ---- interrupts ---- */

static void update_intx(struct kvaser *k)
{
	bool level = k->chip_irq && (k->intcsr & INTCSR_ADDON_INTENABLE) &&
		     !(le16_get(k->pci.config + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE);

	if (!k->intx_claimed || level == k->intx_asserted)
		return;
	k->intx_asserted = level;
	if (level)
		k->interrupts++;
	irq_line_set(&k->intx, level);
}

/* ---- the controller's host side ---- */

static void backend_ready(void *ctx, uint32_t events);

static uint32_t wanted_events(const struct kvaser *k)
{
	return (k->held ? 0 : EPOLLIN) | (k->chip.tx_wait_room ? EPOLLOUT : 0);
}

static void update_watch(struct kvaser *k)
{
	uint32_t ev = wanted_events(k);

	if (!k->watching || ev == k->watched)
		return;
	if (ioloop_modify(&k->loop, &k->watch, ev) == 0)
		k->watched = ev;
}

static int chip_send(void *ctx, const struct can_msg *m)
{
	struct kvaser *k = ctx;
	int r = can_backend_send(k->backend, m);

	if (r == 0)
		k->in_flight++;
	return r;
}

static void chip_cancel(void *ctx)
{
	struct kvaser *k = ctx;

	if (!k->in_flight)
		return;
	k->in_flight = 0;
	if (can_backend_cancel(k->backend) == 1 && k->watching) {
		/* The backend renewed its descriptor: watch the new one. */
		k->watched = wanted_events(k);
		if (ioloop_add(&k->loop, &k->watch, can_backend_rx_fd(k->backend), k->watched,
			       backend_ready, k) < 0)
			k->watching = false;
	}
}

static void chip_set_irq(void *ctx, bool level)
{
	struct kvaser *k = ctx;

	k->chip_irq = level;
	update_intx(k);
}

static void chip_report(void *ctx, const char *event)
{
	struct kvaser *k = ctx;
	bool off = !strcmp(event, "bus-off");

	log_info("%s: %s", k->name, off ? "bus-off" : "restarted after bus-off");
	if (k->env.report)
		k->env.report(k->env.report_ctx, k->name,
			      off ? "VIREO_CAN_BUS_OFF" : "VIREO_CAN_RESTART");
}

/* A frame from the bus to the controller; false when it must wait: the
 * controller listens, and either this is not a batch (fill) or it does
 * not fit. */
static bool deliver(struct kvaser *k, const struct can_msg *m, bool fill)
{
	if (!sja1000_online(&k->chip)) {
		k->rx_dropped++; /* reset mode or bus-off: not listening */
		return true;
	}
	if (!fill || !sja1000_rx_fits(&k->chip, m))
		return false;
	sja1000_receive(&k->chip, m);
	return true;
}

static void kick(struct kvaser *k)
{
	if (k->kick_fd >= 0)
		eventfd_signal(k->kick_fd);
}

/* The backend's events. From the I/O thread (fill: frames go into the
 * FIFO if it was empty), or from a vCPU (confirmations and bus-off only:
 * the first frame is held for the I/O thread, which after_access()
 * wakes). */
static void process_backend(struct kvaser *k, bool io_thread)
{
	unsigned int budget = RX_BUDGET;
	bool fill = io_thread && k->chip.rmc == 0;
	enum can_event ev;
	struct can_msg m;

	if (k->held) {
		if (!deliver(k, &k->held_msg, fill))
			return;
		k->held = false;
	}
	while (budget-- && can_backend_recv(k->backend, &ev, &m) > 0) {
		switch (ev) {
		case CAN_EVENT_TX_DONE:
			if (k->in_flight) {
				k->in_flight--;
				sja1000_tx_done(&k->chip);
			}
			break;
		case CAN_EVENT_BUSOFF:
			sja1000_bus_off(&k->chip);
			break;
		case CAN_EVENT_FRAME:
			if (!deliver(k, &m, fill)) {
				k->held = true;
				k->held_msg = m;
				return;
			}
			break;
		}
	}
}

static void backend_ready(void *ctx, uint32_t events)
{
	struct kvaser *k = ctx;

	pthread_mutex_lock(&k->lock);
	if (events & EPOLLOUT)
		sja1000_tx_retry(&k->chip);
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		process_backend(k, true);
	update_watch(k);
	pthread_mutex_unlock(&k->lock);
}

static void kicked(void *ctx, uint32_t events)
{
	struct kvaser *k = ctx;

	(void)events;
	(void)eventfd_consume(k->kick_fd); /* false: woken for nothing, look anyway */
	pthread_mutex_lock(&k->lock);
	process_backend(k, true);
	update_watch(k);
	pthread_mutex_unlock(&k->lock);
}

/* ---- registers ---- */

static uint8_t s5920_byte(struct kvaser *k, uint64_t off)
{
	uint32_t v;

	if (off - S5920_INTCSR < 4) {
		v = k->intcsr & ~INTCSR_INTERRUPT_ASSERTED;
		if (k->chip_irq)
			v |= INTCSR_INTERRUPT_ASSERTED;
		return (uint8_t)(v >> (8 * (off - S5920_INTCSR)));
	}
	if (off - S5920_PTCR < 4)
		return (uint8_t)(k->ptcr >> (8 * (off - S5920_PTCR)));
	return 0;
}

static void s5920_write_byte(struct kvaser *k, uint64_t off, uint8_t v)
{
	unsigned int shift;

	if (off - S5920_INTCSR < 4) {
		shift = 8 * (unsigned int)(off - S5920_INTCSR);
		k->intcsr = (k->intcsr & ~(0xffu << shift)) | (uint32_t)v << shift;
		k->intcsr &= ~INTCSR_INTERRUPT_ASSERTED; /* status, not stored */
		update_intx(k);
	} else if (off - S5920_PTCR < 4) {
		shift = 8 * (unsigned int)(off - S5920_PTCR);
		k->ptcr = (k->ptcr & ~(0xffu << shift)) | (uint32_t)v << shift;
	}
}

static const uint64_t bar_sizes[3] = { S5920_SIZE, SJA_SIZE, XILINX_SIZE };

/* One byte of a BAR; bytes past its end read as all-ones. Only the first
 * controller's 32 bytes of BAR 1 are there: the others read 0, so the
 * driver's probe (reset mode set and read back) finds one controller. */
static uint8_t read_byte(struct kvaser *k, unsigned int bar, uint64_t off)
{
	if (off >= bar_sizes[bar])
		return 0xff;
	switch (bar) {
	case BAR_S5920:
		return s5920_byte(k, off);
	case BAR_SJA:
		return off < SJA1000_REGS ? sja1000_read(&k->chip, (unsigned int)off) : 0;
	default:
		return off == XILINX_VERINT ? XILINX_VERSION << 4 : 0;
	}
}

static void write_byte(struct kvaser *k, unsigned int bar, uint64_t off, uint8_t v)
{
	if (off >= bar_sizes[bar])
		return;
	if (bar == BAR_S5920)
		s5920_write_byte(k, off, v);
	else if (bar == BAR_SJA && off < SJA1000_REGS)
		sja1000_write(&k->chip, (unsigned int)off, v);
}

/* After the guest touched the controller. With a frame held, the I/O
 * thread is woken to fill the FIFO once it is empty and the guest's
 * handler is done with it (handler_done: IR was read with nothing
 * pending), or at once when the controller does not listen (the frame is
 * dropped). The TX may wait for the backend. */
static void after_access(struct kvaser *k, bool handler_done)
{
	if (k->held && (!sja1000_online(&k->chip) ||
			(k->chip.rmc == 0 && (handler_done || !(k->chip.ier & SJA_IR_RI)))))
		kick(k);
	update_watch(k);
}

static uint64_t bar_read(struct kvaser *k, unsigned int bar, uint64_t off, unsigned int size)
{
	bool handler_done = false;
	uint64_t v = 0;
	unsigned int i;

	if (bar > BAR_XILINX || size == 0 || size > 8)
		return ~0ULL;
	pthread_mutex_lock(&k->lock);
	for (i = 0; i < size; i++) {
		uint8_t b = read_byte(k, bar, off + i);

		/* BasicCAN's IR reads its bits 5-7 as ones. */
		if (bar == BAR_SJA && off + i == SJA_IR &&
		    !(b & ((k->chip.cdr & SJA_CDR_PELICAN) ? 0xff : 0x1f)))
			handler_done = true;
		v |= (uint64_t)b << (8 * i);
	}
	after_access(k, handler_done);
	pthread_mutex_unlock(&k->lock);
	return v;
}

static void bar_write(struct kvaser *k, unsigned int bar, uint64_t off, unsigned int size,
		      uint64_t value)
{
	unsigned int i;

	if (bar > BAR_XILINX || size == 0 || size > 8)
		return;
	pthread_mutex_lock(&k->lock);
	for (i = 0; i < size; i++)
		write_byte(k, bar, off + i, (uint8_t)(value >> (8 * i)));
	/* A command (a frame sent, a receive buffer released): what the
	 * backend has for the controller now is taken here, on the vCPU's
	 * own time, rather than when the I/O thread is next scheduled. A
	 * vcan interface confirms a frame within the send itself, and on a
	 * busy host the I/O thread may wait for the vCPU's time slice to end
	 * (milliseconds) before it runs. */
	if (bar == BAR_SJA && off <= SJA_CMR && off + size > SJA_CMR)
		process_backend(k, false);
	after_access(k, false);
	pthread_mutex_unlock(&k->lock);
}

#define BAR_OPS(n, tag)                                                                    \
	static uint64_t tag##_read(void *opaque, uint64_t off, unsigned int size)          \
	{                                                                                  \
		return bar_read(opaque, n, off, size);                                     \
	}                                                                                  \
	static void tag##_write(void *opaque, uint64_t off, unsigned int size, uint64_t v) \
	{                                                                                  \
		bar_write(opaque, n, off, size, v);                                        \
	}                                                                                  \
	static const struct bus_ops tag##_ops = { .read = tag##_read, .write = tag##_write }

BAR_OPS(BAR_S5920, s5920);
BAR_OPS(BAR_SJA, sja);
BAR_OPS(BAR_XILINX, xilinx);

static void config_written(struct pci_device *d, unsigned int offset, unsigned int size)
{
	struct kvaser *k = d->priv;

	if (offset < PCI_COMMAND + 2 && offset + size > PCI_COMMAND) {
		pthread_mutex_lock(&k->lock);
		update_intx(k);
		pthread_mutex_unlock(&k->lock);
	}
}

/* ---- the device model ---- */

static void unrealize(struct kvaser *k)
{
	if (k->loop_ready)
		ioloop_stop(&k->loop);
	if (k->watching)
		ioloop_remove(&k->loop, &k->watch);
	k->watching = false;
	if (k->kick_watching)
		ioloop_remove(&k->loop, &k->kick_watch);
	k->kick_watching = false;
	if (k->slot >= 0) {
		pci_host_remove(k->env.host, &k->pci);
		k->slot = -1;
	}
	if (k->intx_claimed)
		irq_line_release(&k->intx);
	k->intx_claimed = false;
	if (k->loop_ready)
		ioloop_destroy(&k->loop);
	k->loop_ready = false;
}

static int kv_realize(struct device *d, struct error *err)
{
	struct kvaser *k = d->opaque;
	enum can_event ev;
	struct can_msg m;
	int slot;

	if (ioloop_init(&k->loop, k->name) < 0)
		return error_set(err, "%s: cannot create its I/O thread", k->name);
	k->loop_ready = true;
	slot = pci_host_add(k->env.host, &k->pci);
	if (slot < 0) {
		error_set(err, "%s: no free PCI slot or I/O port space", k->name);
		goto fail;
	}
	k->slot = slot;
	if (pci_bar_address(&k->pci, BAR_S5920) == 0 || pci_bar_address(&k->pci, BAR_SJA) == 0 ||
	    pci_bar_address(&k->pci, BAR_XILINX) == 0) {
		error_set(err, "%s: no room for its I/O BARs in the PCI port window", k->name);
		goto fail;
	}
	if (irq_line_claim(k->env.irq, k->env.intx_gsi((unsigned int)slot), &k->intx) < 0) {
		error_set(err, "%s: no room on interrupt line %u", k->name,
			  k->env.intx_gsi((unsigned int)slot));
		goto fail;
	}
	k->intx_claimed = true;
	k->pci.config[PCI_INTERRUPT_LINE] = (uint8_t)k->intx.gsi;
	pci_device_save_reset_state(&k->pci);
	/* What the bus carried before the VM ran is not for it. */
	while (can_backend_recv(k->backend, &ev, &m) > 0)
		;
	k->watched = EPOLLIN;
	if (ioloop_add(&k->loop, &k->watch, can_backend_rx_fd(k->backend), k->watched,
		       backend_ready, k) < 0) {
		error_set(err, "%s: cannot watch its CAN backend", k->name);
		goto fail;
	}
	k->watching = true;
	if (ioloop_add(&k->loop, &k->kick_watch, k->kick_fd, EPOLLIN, kicked, k) < 0) {
		error_set(err, "%s: cannot set up its I/O thread", k->name);
		goto fail;
	}
	k->kick_watching = true;
	if (ioloop_start(&k->loop) < 0) {
		error_set(err, "%s: cannot start its I/O thread", k->name);
		goto fail;
	}
	return 0;
fail:
	unrealize(k);
	return -1;
}

static unsigned int in_flight(struct kvaser *k)
{
	unsigned int n;

	pthread_mutex_lock(&k->lock);
	n = k->in_flight;
	pthread_mutex_unlock(&k->lock);
	return n;
}

/* With the vCPUs paused: the frame handed to the bus is given a moment
 * to be confirmed (through the I/O thread), then the thread stops. The
 * confirmation may not come: it waits in the backend behind frames from
 * the bus that wait for room in the FIFO, which the paused guest does not
 * read. Then the frame stays on the bus as the VM pauses (its
 * confirmation is taken after resume); a save records it as sent, since
 * the bus has it. */
static int kv_pause(struct device *d, struct error *err)
{
	struct kvaser *k = d->opaque;
	unsigned int waited = 0;

	(void)err;
	while (in_flight(k) && waited++ < PAUSE_WAIT_MS)
		usleep(1000);
	ioloop_stop(&k->loop);
	return 0;
}

static void kv_resume(struct device *d)
{
	struct kvaser *k = d->opaque;

	if (ioloop_start(&k->loop) < 0)
		log_error("%s: cannot restart its I/O thread", k->name);
}

static void kv_reset(struct device *d)
{
	struct kvaser *k = d->opaque;

	pthread_mutex_lock(&k->lock);
	pci_device_restore_reset_state(&k->pci);
	k->intcsr = k->ptcr = 0;
	k->held = false;
	sja1000_hw_reset(&k->chip);
	update_intx(k);
	update_watch(k);
	pthread_mutex_unlock(&k->lock);
}

#define KV_STATE_VERSION 1

static void kv_save(struct device *d, struct state_writer *w)
{
	struct kvaser *k = d->opaque;

	pthread_mutex_lock(&k->lock);
	state_put_bytes(w, k->pci.config, PCI_CONFIG_SPACE);
	state_put_u32(w, k->intcsr);
	state_put_u32(w, k->ptcr);
	state_put_bool(w, k->held);
	state_put_u32(w, k->held_msg.id);
	state_put_u8(w, k->held_msg.flags);
	state_put_u8(w, k->held_msg.len);
	state_put_bytes(w, k->held_msg.data, CAN_MAX_DLEN);
	sja1000_save(&k->chip, w);
	pthread_mutex_unlock(&k->lock);
}

static int kv_load(struct device *d, struct state_reader *r, struct error *err)
{
	struct kvaser *k = d->opaque;
	uint8_t config[PCI_CONFIG_SPACE];
	struct can_msg held = { 0 };
	uint32_t intcsr, ptcr;
	bool is_held;
	unsigned int i;
	int ret;

	state_get_bytes(r, config, sizeof(config));
	intcsr = state_get_u32(r);
	ptcr = state_get_u32(r);
	is_held = state_get_bool(r);
	held.id = state_get_u32(r);
	held.flags = state_get_u8(r);
	held.len = state_get_u8(r);
	state_get_bytes(r, held.data, CAN_MAX_DLEN);
	if (is_held && (held.len > CAN_MAX_DLEN || (held.flags & CAN_MSG_FD) ||
			can_msg_valid(&held) < 0))
		return error_set(err, "the CAN frame waiting for the controller is not a valid one");
	pthread_mutex_lock(&k->lock);
	/* The controller's part is checked whole before anything changes. */
	ret = sja1000_load(&k->chip, r, err);
	if (ret == 0) {
		for (i = 0; i < PCI_CONFIG_SPACE; i++)
			k->pci.config[i] = (uint8_t)((k->pci.config[i] & ~k->pci.wmask[i]) |
						     (config[i] & k->pci.wmask[i]));
		k->intcsr = intcsr & ~INTCSR_INTERRUPT_ASSERTED;
		k->ptcr = ptcr;
		k->held = is_held;
		k->held_msg = held;
		k->in_flight = 0;
		if (k->held)
			kick(k); /* delivered once the I/O thread runs */
		update_intx(k);
		update_watch(k);
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}

static void kv_write_stats(struct device *d, struct jsonw *j)
{
	struct kvaser *k = d->opaque;

	pthread_mutex_lock(&k->lock);
	jsonw_uint(j, "exits", __atomic_load_n(&k->pci.exits, __ATOMIC_RELAXED));
	jsonw_uint(j, "interrupts", k->interrupts);
	jsonw_uint(j, "tx_frames", k->chip.tx_frames);
	jsonw_uint(j, "tx_errors", k->chip.tx_errors);
	jsonw_uint(j, "rx_frames", k->chip.rx_frames);
	jsonw_uint(j, "rx_filtered", k->chip.rx_filtered);
	jsonw_uint(j, "rx_overruns", k->chip.rx_overruns);
	jsonw_uint(j, "rx_dropped", k->rx_dropped);
	jsonw_uint(j, "rx_lost", can_backend_rx_lost(k->backend));
	jsonw_uint(j, "bus_offs", k->chip.bus_offs);
	pthread_mutex_unlock(&k->lock);
}

static void kv_destroy(struct device *d)
{
	struct kvaser *k = d->opaque;

	unrealize(k);
	can_backend_close(k->backend);
	if (k->kick_fd >= 0)
		close(k->kick_fd);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static const struct device_ops kv_ops = {
	.realize = kv_realize,
	.pause = kv_pause,
	.resume = kv_resume,
	.reset = kv_reset,
	.save = kv_save,
	.load = kv_load,
	.write_stats = kv_write_stats,
	.destroy = kv_destroy,
};

struct device *kvaser_pci_create(struct can_backend *b, unsigned int index,
				 const struct kvaser_pci_env *env, struct error *err)
{
	struct kvaser *k = calloc(1, sizeof(*k));
	struct sja1000_host host;

	if (!k) {
		can_backend_close(b);
		error_set(err, "kvaser-pci%u: out of memory", index);
		return NULL;
	}
	snprintf(k->name, sizeof(k->name), "kvaser-pci%u", index);
	k->backend = b;
	k->env = *env;
	k->slot = -1;
	k->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (k->kick_fd < 0) {
		can_backend_close(b);
		free(k);
		error_set(err, "kvaser-pci%u: cannot create an eventfd", index);
		return NULL;
	}
	pthread_mutex_init(&k->lock, NULL);
	host = (struct sja1000_host){ .send = chip_send,
				      .cancel = chip_cancel,
				      .set_irq = chip_set_irq,
				      .report = chip_report,
				      .ctx = k };
	sja1000_init(&k->chip, &host);
	pci_device_init(&k->pci, KVASER_VENDOR, KVASER_DEVICE, KVASER_CLASS, 0);
	le16_put(k->pci.config + PCI_SUBSYS_VENDOR, KVASER_VENDOR);
	le16_put(k->pci.config + PCI_SUBSYS_ID, KVASER_DEVICE);
	k->pci.config[PCI_INTERRUPT_PIN] = 1; /* INTA# */
	pci_device_set_bar(&k->pci, BAR_S5920, S5920_SIZE, PCI_BAR_IO);
	pci_device_set_bar(&k->pci, BAR_SJA, SJA_SIZE, PCI_BAR_IO);
	pci_device_set_bar(&k->pci, BAR_XILINX, XILINX_SIZE, PCI_BAR_IO);
	/* Writes to the controller's addresses 16-28 only fill the transmit
	 * buffer (or, in reset mode, the acceptance code and mask): nothing
	 * happens until the command register sends the frame. A frame is
	 * then one exit to userspace instead of a dozen (kvm/coalesced.h);
	 * reads there (the receive buffer) still exit. */
	pci_device_coalesce(&k->pci, BAR_SJA, SJA_FRAME, 13);
	k->pci.bar_ops[BAR_S5920] = &s5920_ops;
	k->pci.bar_ops[BAR_SJA] = &sja_ops;
	k->pci.bar_ops[BAR_XILINX] = &xilinx_ops;
	for (unsigned int i = 0; i < 3; i++)
		k->pci.bar_opaque[i] = k;
	k->pci.priv = k;
	k->pci.name = k->name;
	k->pci.config_written = config_written;
	device_init(&k->dev, k->name, "kvaser-pci", &kv_ops, k);
	k->dev.state_version = KV_STATE_VERSION;
	return &k->dev;
}

uint64_t kvaser_pci_bar_read(struct device *d, unsigned int bar, uint64_t off, unsigned int size)
{
	return bar_read(d->opaque, bar, off, size);
}

void kvaser_pci_bar_write(struct device *d, unsigned int bar, uint64_t off, unsigned int size,
			  uint64_t value)
{
	bar_write(d->opaque, bar, off, size, value);
}

const struct pci_device *kvaser_pci_device(const struct device *d)
{
	return d->ops == &kv_ops ? &((struct kvaser *)d->opaque)->pci : NULL;
}
