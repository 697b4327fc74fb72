/* The NXP (Philips) SJA1000 stand-alone CAN controller: its 32 registers
 * as a driver sees them, in PeliCAN mode (what Linux's sja1000 driver
 * uses) and in BasicCAN mode (the mode after a hardware reset), with the
 * 64-byte receive FIFO, the acceptance filter (single and dual), the
 * interrupt and status registers, and the error counters with error
 * warning, error passive, bus-off and its recovery.
 *
 * The model has no bus timing of its own and no lock: the board that
 * holds it (kvaser_pci.c) serialises every call and connects it to a CAN
 * backend through struct sja1000_host. What a virtual bus cannot produce
 * (bit, stuff and form errors, arbitration loss, wake-up from sleep) is
 * never signalled; transmit errors are: a frame the bus refuses counts 8
 * on the transmit error counter per attempt, as a frame that fails on
 * the wire does, and the controller retries it as the chip does, until it
 * goes out or the counter passes 255 (bus-off). */
#ifndef VIREO_HW_SJA1000_H
#define VIREO_HW_SJA1000_H

#include <stdbool.h>
#include <stdint.h>

#include "can/can.h"
#include "util/error.h"
#include "util/state.h"

#define SJA1000_REGS 32	    /* a driver's window on one controller */
#define SJA1000_RX_FIFO 64 /* bytes of receive FIFO */

/* PeliCAN register addresses. */
#define SJA_MOD 0
#define SJA_CMR 1
#define SJA_SR 2
#define SJA_IR 3
#define SJA_IER 4
#define SJA_BTR0 6
#define SJA_BTR1 7
#define SJA_OCR 8
#define SJA_ALC 11
#define SJA_ECC 12
#define SJA_EWLR 13
#define SJA_RXERR 14
#define SJA_TXERR 15
#define SJA_FRAME 16 /* TX buffer (write) / RX window (read) / ACR (reset mode) */
#define SJA_ACR0 16
#define SJA_AMR0 20
#define SJA_RMC 29
#define SJA_RBSA 30
#define SJA_CDR 31

#define SJA_MOD_RM 0x01  /* reset mode */
#define SJA_MOD_LOM 0x02 /* listen only */
#define SJA_MOD_STM 0x04 /* self test */
#define SJA_MOD_AFM 0x08 /* single acceptance filter */
#define SJA_MOD_SM 0x10	 /* sleep */

#define SJA_CMD_TR 0x01	 /* transmission request */
#define SJA_CMD_AT 0x02	 /* abort transmission */
#define SJA_CMD_RRB 0x04 /* release receive buffer */
#define SJA_CMD_CDO 0x08 /* clear data overrun */
#define SJA_CMD_SRR 0x10 /* self reception request */

#define SJA_SR_RBS 0x01 /* receive buffer status */
#define SJA_SR_DOS 0x02 /* data overrun */
#define SJA_SR_TBS 0x04 /* transmit buffer released */
#define SJA_SR_TCS 0x08 /* transmission complete */
#define SJA_SR_RS 0x10	/* receiving */
#define SJA_SR_TS 0x20	/* transmitting */
#define SJA_SR_ES 0x40	/* error status: a counter at the warning limit */
#define SJA_SR_BS 0x80	/* bus-off */

#define SJA_IR_RI 0x01
#define SJA_IR_TI 0x02
#define SJA_IR_EI 0x04
#define SJA_IR_DOI 0x08
#define SJA_IR_WUI 0x10
#define SJA_IR_EPI 0x20
#define SJA_IR_ALI 0x40
#define SJA_IR_BEI 0x80

#define SJA_FI_FF 0x80	/* extended frame */
#define SJA_FI_RTR 0x40
#define SJA_CDR_PELICAN 0x80

/* What the controller needs from its board; called with the board's lock
 * held, from whichever thread called into the model. */
struct sja1000_host {
	/* Hands a frame to the bus: 0 (sja1000_tx_done() follows once it is
	 * on the bus), -EAGAIN (the bus cannot take it now: call
	 * sja1000_tx_retry() when it can), another -errno (refused: a
	 * transmission error). */
	int (*send)(void *ctx, const struct can_msg *m);
	/* Withdraws the frame handed over and not confirmed (the controller
	 * went to reset mode or bus-off). */
	void (*cancel)(void *ctx);
	/* The interrupt output, active high (the chip's INT pin inverted). */
	void (*set_irq)(void *ctx, bool level);
	/* Optional: "bus-off", "restart". */
	void (*report)(void *ctx, const char *event);
	void *ctx;
};

enum sja1000_tx_state {
	SJA_TX_IDLE,	/* transmit buffer released */
	SJA_TX_PENDING, /* requested, not handed to the bus yet */
	SJA_TX_ON_BUS,	/* handed to the bus, not confirmed */
};

struct sja1000 {
	struct sja1000_host host;
	uint8_t mod; /* PeliCAN MOD; in BasicCAN, RM is the control register's RR */
	uint8_t cdr, ier, ir; /* ir: latched bits (RI is computed) */
	uint8_t btr0, btr1, ocr, ewlr, rxerr, txerr;
	uint8_t acr[4], amr[4];
	uint8_t tx_buf[13];
	uint8_t rx_fifo[SJA1000_RX_FIFO];
	uint8_t rbsa;	  /* start of the oldest message */
	uint8_t rx_bytes; /* bytes of the messages in the FIFO */
	uint8_t rmc;	  /* messages in the FIFO */
	bool dos, bs, tcs;
	enum sja1000_tx_state tx;
	bool tx_single_shot; /* TR with AT: no retransmission */
	bool tx_self;	     /* SRR: the frame is received back too */
	bool tx_wait_room;   /* waiting for sja1000_tx_retry() */
	bool tx_wait_ir;     /* retrying once the guest has read IR */
	struct can_msg tx_msg;
	bool irq_level;
	/* Counters for statistics. */
	uint64_t tx_frames, rx_frames, rx_filtered, rx_overruns, tx_errors, bus_offs;
};

/* Power-on state (a hardware reset: BasicCAN, reset mode). */
void sja1000_init(struct sja1000 *s, const struct sja1000_host *host);
void sja1000_hw_reset(struct sja1000 *s);

uint8_t sja1000_read(struct sja1000 *s, unsigned int reg);
void sja1000_write(struct sja1000 *s, unsigned int reg, uint8_t val);

/* Whether a frame from the bus would be taken now, and fit: false while
 * the FIFO is too full for it (then sja1000_receive() would overrun). */
bool sja1000_rx_fits(const struct sja1000 *s, const struct can_msg *m);
/* Whether the controller listens at all (operating mode, not bus-off). */
bool sja1000_online(const struct sja1000 *s);

enum sja1000_rx_result {
	SJA_RX_STORED,
	SJA_RX_FILTERED, /* not accepted by the acceptance filter */
	SJA_RX_OVERRUN,	 /* no room in the FIFO: data overrun */
	SJA_RX_OFFLINE,	 /* reset mode or bus-off: not received */
	SJA_RX_UNSUPPORTED, /* CAN FD, or extended in BasicCAN mode */
};
/* A frame from the bus. */
enum sja1000_rx_result sja1000_receive(struct sja1000 *s, const struct can_msg *m);

/* The frame handed over is on the bus. */
void sja1000_tx_done(struct sja1000 *s);
/* The bus can take a frame again (after send() said -EAGAIN). */
void sja1000_tx_retry(struct sja1000 *s);
/* The bus put the controller in bus-off (the backend's CAN_EVENT_BUSOFF). */
void sja1000_bus_off(struct sja1000 *s);
/* The controller's state as a record. A frame on the bus, unconfirmed,
 * is recorded as sent (the source's bus has it): a load finds the
 * transmission complete, the model saved is not changed. */
void sja1000_save(const struct sja1000 *s, struct state_writer *w);
/* Checks the whole record, then applies it (and sets the interrupt
 * line); -1 with err set, the model unchanged, when it is not one. */
int sja1000_load(struct sja1000 *s, struct state_reader *r, struct error *err);

/* A frame in the FIFO's PeliCAN layout (frame information, identifier,
 * data); returns its length. Shared with the tests. */
unsigned int sja1000_pack_frame(const struct can_msg *m, uint8_t *out);

#endif
