/* Inside the emulated 82540EM: the device's state, shared by e1000.c
 * (PCI function, registers, interrupts, lifecycle, snapshots) and
 * e1000_rings.c (the transmit and receive descriptor rings).
 *
 * Threads: register accesses come from vCPU threads (transmit runs there,
 * when the guest writes TDT, as on the real card the write starts the
 * DMA); receive and the interrupt throttling timer run in the device's
 * I/O thread. Everything below `lock` is under it. */
#ifndef VIREO_HW_E1000_DEV_H
#define VIREO_HW_E1000_DEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hw/device.h"
#include "hw/e1000.h"
#include "hw/e1000_regs.h"
#include "util/ioloop.h"

#define E1000_TX_MAX NET_MAX_FRAME	  /* bytes one transmit frame gathers */
#define E1000_SEG_MAX (255 + 65535)	  /* a TSO segment: headers + MSS */
#define E1000_RX_MAX_LPE 16384		  /* longest frame with RCTL.LPE */
#define E1000_RX_MAX 1522		  /* without: 1518 + a VLAN tag */

struct e1000_stats {
	uint64_t interrupts;
	uint64_t rx_frames, rx_bytes, rx_dropped, rx_filtered;
	uint64_t tx_frames, tx_bytes, tx_dropped, tx_tso, tx_segments;
	uint64_t bad_descriptors; /* rings or buffers outside guest RAM */
};

/* The transmit frame being gathered from data descriptors. */
struct e1000_tx {
	struct e1000_tx_ctx ctx; /* from the last context descriptor */
	uint8_t *buf;		 /* E1000_TX_MAX bytes */
	uint32_t len;
	bool started; /* a first descriptor was taken (popts, legacy CSS/CSO) */
	bool bad;     /* too long or a buffer outside RAM: dropped at EOP */
	bool tse, vle, ic, legacy;
	uint8_t popts, css, cso;
	uint16_t vlan;
};

struct e1000 {
	struct device dev;
	struct pci_device pci;
	struct e1000_env env;
	char name[16];
	int slot;
	struct net_backend *backend;
	bool backend_hdr;
	uint8_t mac[6];

	struct ioloop loop;
	bool loop_ready, watches_added;
	struct ioloop_watch rx_watch, kick_watch, timer_watch;
	int kick_fd;  /* eventfd: the guest gave receive descriptors */
	int timer_fd; /* timerfd: the throttled interrupt may go now */
	uint8_t *seg; /* E1000_SEG_MAX: one TSO segment */

	pthread_mutex_t lock;
	uint32_t reg[E1000_REG_WORDS];
	uint32_t ioaddr; /* the register IODATA reaches (BAR 1) */
	struct e1000_eeprom ee;
	struct e1000_phy phy;
	struct e1000_tx tx;

	/* Receive: a frame read from the backend waits here (the vnet
	 * header first when the backend has one) until it fits the ring. */
	uint8_t *rx_buf;
	uint32_t rx_len; /* frame bytes after the header; 0: none */
	bool rx_armed;	 /* rx_watch asks for EPOLLIN */
	bool rx_stalled; /* waiting for the guest: RDT or RCTL wakes us */
	bool backend_broken;

	/* Interrupts: INTA# follows ICR & IMS, no sooner than ITR allows. */
	struct irq_line intx;
	bool intx_level;
	uint64_t irq_next_ns; /* earliest next assertion (ITR) */
	bool timer_armed;

	bool logged_bad_ring;
	struct e1000_stats stats;
};

static inline uint32_t e1000_reg(const struct e1000 *e, uint32_t off)
{
	return e->reg[off / 4];
}

static inline void e1000_set_reg(struct e1000 *e, uint32_t off, uint32_t v)
{
	e->reg[off / 4] = v;
}

/* e1000.c: raises interrupt causes (ICR |= cause) and updates INTA#. */
void e1000_set_cause(struct e1000 *e, uint32_t cause);
/* Whether the guest lets the card master the bus (DMA). */
bool e1000_bus_master(const struct e1000 *e);
/* Adds n to a statistics register (and its high half for 64-bit ones). */
void e1000_stat_add(struct e1000 *e, uint32_t off, uint64_t n, bool wide);

/* e1000_rings.c, with the lock held. */
/* Sends what the guest queued from TDH up to TDT. */
void e1000_tx_process(struct e1000 *e);
/* Receives from the backend into the ring while frames and descriptors
 * last; arms or disarms the backend's watch accordingly. */
void e1000_rx_process(struct e1000 *e);
/* Forgets the frame being gathered (reset). */
void e1000_tx_reset(struct e1000 *e);

#endif
