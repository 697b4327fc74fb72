/* The SJA1000 controller (hw/sja1000.c) driven through its registers as
 * Linux's sja1000 driver drives it, against a fake bus that records what
 * is sent and answers as a test says; and the Kvaser card around it
 * (hw/kvaser_pci.c) on a fake CAN backend: PCI identity, I/O BARs, the
 * S5920's interrupt gate on INTx, frames both ways through its I/O
 * thread, bus-off from the backend, save and load. */
#include "cmocka_prelude.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "can/can_backend.h"
#include "hw/irq.h"
#include "hw/kvaser_pci.h"
#include "hw/pci.h"
#include "hw/sja1000.h"
#include "util/le.h"

/* ---- the controller against a fake bus ---- */

#define MAX_SENT 64

struct fake_bus {
	struct can_msg sent[MAX_SENT];
	unsigned int nsent, attempts, cancels;
	int answer; /* what send() returns */
	bool irq;
	unsigned int irq_edges;
	const char *last_report;
};

static int bus_send(void *ctx, const struct can_msg *m)
{
	struct fake_bus *b = ctx;

	b->attempts++;
	if (b->answer)
		return b->answer;
	assert_true(b->nsent < MAX_SENT);
	b->sent[b->nsent++] = *m;
	return 0;
}

static void bus_cancel(void *ctx)
{
	((struct fake_bus *)ctx)->cancels++;
}

static void bus_irq(void *ctx, bool level)
{
	struct fake_bus *b = ctx;

	assert_true(level != b->irq); /* only changes */
	b->irq = level;
	if (level)
		b->irq_edges++;
}

static void bus_report(void *ctx, const char *event)
{
	((struct fake_bus *)ctx)->last_report = event;
}

struct rig {
	struct fake_bus bus;
	struct sja1000 s;
};

static int rig_setup(void **state)
{
	struct rig *r = calloc(1, sizeof(*r));
	struct sja1000_host h = { bus_send, bus_cancel, bus_irq, bus_report, &r->bus };

	sja1000_init(&r->s, &h);
	*state = r;
	return 0;
}

static int rig_teardown(void **state)
{
	free(*state);
	return 0;
}

static uint8_t rd(struct rig *r, unsigned int reg)
{
	return sja1000_read(&r->s, reg);
}

static void wr(struct rig *r, unsigned int reg, uint8_t v)
{
	sja1000_write(&r->s, reg, v);
}

/* What sja1000.c's chipset_init and sja1000_start do: PeliCAN, accept
 * all, counters cleared, operating mode, every interrupt but bus error. */
static void start(struct rig *r)
{
	wr(r, SJA_IER, 0);
	wr(r, SJA_MOD, SJA_MOD_RM);
	wr(r, SJA_CDR, 0xc8);
	for (unsigned int i = 0; i < 4; i++) {
		wr(r, SJA_ACR0 + i, 0);
		wr(r, SJA_AMR0 + i, 0xff);
	}
	wr(r, SJA_OCR, 0xda);
	wr(r, SJA_BTR0, 0x00);
	wr(r, SJA_BTR1, 0x1c);
	wr(r, SJA_TXERR, 0);
	wr(r, SJA_RXERR, 0);
	rd(r, SJA_ECC);
	rd(r, SJA_IR);
	wr(r, SJA_MOD, 0);
	assert_int_equal(rd(r, SJA_MOD) & SJA_MOD_RM, 0);
	wr(r, SJA_IER, 0x7f);
}

/* The driver's start_xmit: frame information, identifier, data, TR. */
static void xmit(struct rig *r, const struct can_msg *m)
{
	uint8_t buf[13];
	unsigned int n = sja1000_pack_frame(m, buf);

	for (unsigned int i = 0; i < n; i++)
		wr(r, SJA_FRAME + i, buf[i]);
	wr(r, SJA_CMR, SJA_CMD_TR);
}

/* The driver's sja1000_rx: the frame in the receive window, then RRB. */
static struct can_msg rx_one(struct rig *r)
{
	struct can_msg m = { 0 };
	uint8_t fi = rd(r, SJA_FRAME);
	unsigned int d;

	m.len = fi & 0x0f;
	if (fi & SJA_FI_FF) {
		m.flags |= CAN_MSG_EXT;
		m.id = (uint32_t)rd(r, 17) << 21 | (uint32_t)rd(r, 18) << 13 |
		       (uint32_t)rd(r, 19) << 5 | rd(r, 20) >> 3;
		d = 21;
	} else {
		m.id = (uint32_t)rd(r, 17) << 3 | rd(r, 18) >> 5;
		d = 19;
	}
	if (fi & SJA_FI_RTR)
		m.flags |= CAN_MSG_RTR;
	else
		for (unsigned int i = 0; i < m.len; i++)
			m.data[i] = rd(r, d + i);
	wr(r, SJA_CMR, SJA_CMD_RRB);
	return m;
}

static struct can_msg mk(uint32_t id, uint8_t flags, uint8_t len, uint8_t seed)
{
	struct can_msg m = { .id = id, .flags = flags, .len = len };

	for (unsigned int i = 0; i < len && !(flags & CAN_MSG_RTR); i++)
		m.data[i] = (uint8_t)(seed + i * 17);
	return m;
}

static void assert_same(const struct can_msg *a, const struct can_msg *b)
{
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->len, b->len);
	if (!(a->flags & CAN_MSG_RTR))
		assert_memory_equal(a->data, b->data, a->len);
}

static void test_reset_state(void **state)
{
	struct rig *r = *state;

	/* Hardware reset: BasicCAN, reset requested (what kvaser_pci's
	 * probe checks), the transmit buffer released. */
	assert_int_equal(rd(r, 0) & 1, 1);
	assert_int_equal(rd(r, SJA_CDR) & SJA_CDR_PELICAN, 0);
	wr(r, SJA_CDR, SJA_CDR_PELICAN);
	assert_int_equal(rd(r, SJA_MOD), SJA_MOD_RM);
	assert_int_equal(rd(r, SJA_SR), SJA_SR_TBS | SJA_SR_TCS | SJA_SR_RS | SJA_SR_TS);
	assert_int_equal(rd(r, SJA_EWLR), 96);
	assert_int_equal(rd(r, SJA_CMR), 0xff);
	start(r);
	assert_int_equal(rd(r, SJA_SR), SJA_SR_TBS | SJA_SR_TCS);
	assert_int_equal(rd(r, SJA_BTR1), 0x1c);
	/* Outside reset mode the bus timing, counters and CDR's mode stay. */
	wr(r, SJA_BTR1, 0x55);
	wr(r, SJA_TXERR, 9);
	wr(r, SJA_CDR, 0x00);
	assert_int_equal(rd(r, SJA_BTR1), 0x1c);
	assert_int_equal(rd(r, SJA_TXERR), 0);
	assert_int_equal(rd(r, SJA_CDR) & SJA_CDR_PELICAN, SJA_CDR_PELICAN);
	assert_false(r->bus.irq);
}

static void test_tx_kinds(void **state)
{
	struct rig *r = *state;
	struct can_msg want[] = {
		mk(0x123, 0, 8, 1),
		mk(0x7ff, 0, 0, 0),
		mk(0x1abcdef0, CAN_MSG_EXT, 5, 9),
		mk(0x1fffffff, CAN_MSG_EXT, 8, 3),
		mk(0x321, CAN_MSG_RTR, 4, 0),
		mk(0x12345, CAN_MSG_EXT | CAN_MSG_RTR, 8, 0),
	};

	start(r);
	for (unsigned int i = 0; i < ARRAY_LEN(want); i++) {
		xmit(r, &want[i]);
		assert_int_equal(r->bus.nsent, i + 1);
		assert_same(&r->bus.sent[i], &want[i]);
		/* On its way: buffer locked, transmitting, not complete. */
		assert_int_equal(rd(r, SJA_SR) & (SJA_SR_TBS | SJA_SR_TS | SJA_SR_TCS), SJA_SR_TS);
		/* A second request while it is sent does nothing. */
		wr(r, SJA_CMR, SJA_CMD_TR);
		assert_int_equal(r->bus.nsent, i + 1);
		assert_false(r->bus.irq);
		sja1000_tx_done(&r->s);
		assert_true(r->bus.irq);
		assert_int_equal(rd(r, SJA_IR), SJA_IR_TI);
		assert_false(r->bus.irq); /* cleared by reading IR */
		assert_int_equal(rd(r, SJA_SR) & (SJA_SR_TBS | SJA_SR_TS | SJA_SR_TCS),
				 SJA_SR_TBS | SJA_SR_TCS);
	}
	/* A data length code above 8 sends 8 bytes. */
	wr(r, SJA_FRAME, 0x0f);
	wr(r, SJA_CMR, SJA_CMD_TR);
	assert_int_equal(r->bus.sent[r->bus.nsent - 1].len, 8);
	assert_int_equal(r->s.tx_frames, ARRAY_LEN(want));
}

static void test_tx_busy_and_abort(void **state)
{
	struct rig *r = *state;
	struct can_msg m = mk(0x10, 0, 2, 5);

	start(r);
	r->bus.answer = -EAGAIN;
	xmit(r, &m);
	assert_true(r->s.tx_wait_room);
	assert_int_equal(rd(r, SJA_SR) & SJA_SR_TBS, 0);
	/* The buffer is locked: writes do not change the frame. */
	wr(r, SJA_FRAME + 3, 0xee);
	r->bus.answer = 0;
	sja1000_tx_retry(&r->s);
	assert_int_equal(r->bus.nsent, 1);
	assert_same(&r->bus.sent[0], &m);
	sja1000_tx_done(&r->s);
	rd(r, SJA_IR);
	/* Abort before the bus took it: released, not complete, TI. */
	r->bus.answer = -EAGAIN;
	xmit(r, &m);
	wr(r, SJA_CMR, SJA_CMD_AT);
	assert_int_equal(rd(r, SJA_SR) & (SJA_SR_TBS | SJA_SR_TCS), SJA_SR_TBS);
	assert_int_equal(rd(r, SJA_IR), SJA_IR_TI);
	r->bus.answer = 0;
	sja1000_tx_retry(&r->s);
	assert_int_equal(r->bus.nsent, 1); /* nothing sent after the abort */
}

static void test_rx_fifo(void **state)
{
	struct rig *r = *state;
	struct can_msg in[] = {
		mk(0x100, 0, 8, 1),		       /* 11 bytes */
		mk(0x1234567, CAN_MSG_EXT, 8, 2),      /* 13 */
		mk(0x200, CAN_MSG_RTR, 8, 0),	       /* 3: no data in the FIFO */
		mk(0x1000, CAN_MSG_EXT | CAN_MSG_RTR, 2, 0), /* 5 */
		mk(0x300, 0, 0, 0),		       /* 3 */
	};

	start(r);
	for (unsigned int i = 0; i < ARRAY_LEN(in); i++)
		assert_int_equal(sja1000_receive(&r->s, &in[i]), SJA_RX_STORED);
	assert_int_equal(rd(r, SJA_RMC), ARRAY_LEN(in));
	assert_true(r->bus.irq);
	assert_int_equal(rd(r, SJA_SR) & SJA_SR_RBS, SJA_SR_RBS);
	/* RI stays while messages wait; reading IR does not clear it. */
	assert_int_equal(rd(r, SJA_IR), SJA_IR_RI);
	assert_int_equal(rd(r, SJA_IR), SJA_IR_RI);
	for (unsigned int i = 0; i < ARRAY_LEN(in); i++) {
		struct can_msg got = rx_one(r);

		assert_same(&got, &in[i]);
		assert_int_equal(rd(r, SJA_RMC), ARRAY_LEN(in) - 1 - i);
	}
	assert_int_equal(rd(r, SJA_RBSA), 35);
	assert_int_equal(rd(r, SJA_SR) & SJA_SR_RBS, 0);
	assert_false(r->bus.irq);
	assert_int_equal(rd(r, SJA_IR), 0);
	/* The FIFO is a ring: messages wrap around its end. */
	for (unsigned int round = 0; round < 40; round++) {
		struct can_msg m = mk(0x400 + round, round & 1 ? CAN_MSG_EXT : 0, round % 9,
				      (uint8_t)round);

		assert_int_equal(sja1000_receive(&r->s, &m), SJA_RX_STORED);
		struct can_msg got = rx_one(r);
		assert_same(&got, &m);
	}
	/* Releasing an empty FIFO does nothing. */
	wr(r, SJA_CMR, SJA_CMD_RRB);
	assert_int_equal(rd(r, SJA_RMC), 0);
	assert_int_equal(r->s.rx_bytes, 0);
}

static void test_rx_overrun(void **state)
{
	struct rig *r = *state;
	struct can_msg big = mk(0x111, 0, 8, 7); /* 11 bytes: five fit in 64 */
	unsigned int i;

	start(r);
	for (i = 0; i < 5; i++) {
		assert_true(sja1000_rx_fits(&r->s, &big));
		assert_int_equal(sja1000_receive(&r->s, &big), SJA_RX_STORED);
	}
	assert_false(sja1000_rx_fits(&r->s, &big));
	assert_int_equal(sja1000_receive(&r->s, &big), SJA_RX_OVERRUN);
	assert_int_equal(rd(r, SJA_RMC), 5);
	assert_int_equal(rd(r, SJA_SR) & SJA_SR_DOS, SJA_SR_DOS);
	/* A 3-byte frame still fits in the 9 bytes left. */
	assert_int_equal(sja1000_receive(&r->s, &(struct can_msg){ .id = 1 }), SJA_RX_STORED);
	assert_int_equal(rd(r, SJA_IR), SJA_IR_RI | SJA_IR_DOI);
	/* Lost again before the driver's CDO: DOS stays set and DOI, set
	 * only on DOS's 0-to-1 transition (datasheet, IR.3), stays clear. */
	assert_int_equal(sja1000_receive(&r->s, &big), SJA_RX_OVERRUN);
	assert_int_equal(rd(r, SJA_SR) & SJA_SR_DOS, SJA_SR_DOS);
	assert_int_equal(rd(r, SJA_IR) & SJA_IR_DOI, 0);
	wr(r, SJA_CMR, SJA_CMD_CDO);
	assert_int_equal(rd(r, SJA_SR) & SJA_SR_DOS, 0);
	/* After the CDO the next loss is a new transition. */
	assert_int_equal(sja1000_receive(&r->s, &big), SJA_RX_OVERRUN);
	assert_int_equal(rd(r, SJA_IR) & SJA_IR_DOI, SJA_IR_DOI);
	wr(r, SJA_CMR, SJA_CMD_CDO);
	assert_int_equal(r->s.rx_overruns, 3); /* every lost frame counted */
	/* Reset mode empties the FIFO. */
	wr(r, SJA_MOD, SJA_MOD_RM);
	assert_int_equal(rd(r, SJA_RMC), 0);
	assert_int_equal(sja1000_receive(&r->s, &big), SJA_RX_OFFLINE);
	assert_false(r->bus.irq);
}

/* Loads the filter in reset mode and goes back to operating mode. */
static void filter(struct rig *r, bool single, const uint8_t acr[4], const uint8_t amr[4])
{
	wr(r, SJA_MOD, SJA_MOD_RM);
	for (unsigned int i = 0; i < 4; i++) {
		wr(r, SJA_ACR0 + i, acr[i]);
		wr(r, SJA_AMR0 + i, amr[i]);
	}
	for (unsigned int i = 0; i < 4; i++) {
		assert_int_equal(rd(r, SJA_ACR0 + i), acr[i]);
		assert_int_equal(rd(r, SJA_AMR0 + i), amr[i]);
	}
	wr(r, SJA_MOD, single ? SJA_MOD_AFM : 0);
	assert_int_equal(rd(r, SJA_MOD), single ? SJA_MOD_AFM : 0);
}

static bool takes(struct rig *r, uint32_t id, uint8_t flags, uint8_t len, uint8_t d0, uint8_t d1)
{
	struct can_msg m = { .id = id, .flags = flags, .len = len, .data = { d0, d1 } };
	enum sja1000_rx_result res = sja1000_receive(&r->s, &m);

	assert_true(res == SJA_RX_STORED || res == SJA_RX_FILTERED);
	if (res == SJA_RX_STORED)
		wr(r, SJA_CMR, SJA_CMD_RRB);
	return res == SJA_RX_STORED;
}

static void test_acceptance_filter(void **state)
{
	struct rig *r = *state;

	start(r);
	/* Single, standard: id 0x123 exactly, RTR and data don't care. */
	filter(r, true, (uint8_t[]){ 0x24, 0x60, 0, 0 }, (uint8_t[]){ 0x00, 0x1f, 0xff, 0xff });
	assert_true(takes(r, 0x123, 0, 2, 1, 2));
	assert_true(takes(r, 0x123, CAN_MSG_RTR, 0, 0, 0));
	assert_false(takes(r, 0x122, 0, 2, 1, 2));
	assert_false(takes(r, 0x523, 0, 2, 1, 2));
	/* Extended frames go through the 29-bit layout: 0x123 << 18 does not
	 * match this code (0x24 0x60 0 0 is id 0x048C0000 >> 3...). */
	assert_false(takes(r, 0x123, CAN_MSG_EXT, 0, 0, 0));
	/* Single, standard with the first data byte: id 0x100-0x107, data[0]
	 * 0xAB; a frame without data passes on the id alone. */
	filter(r, true, (uint8_t[]){ 0x20, 0x00, 0xab, 0 }, (uint8_t[]){ 0x00, 0xff, 0x00, 0xff });
	assert_true(takes(r, 0x105, 0, 1, 0xab, 0));
	assert_false(takes(r, 0x105, 0, 1, 0xac, 0));
	assert_true(takes(r, 0x105, 0, 0, 0, 0));
	assert_false(takes(r, 0x108, 0, 1, 0xab, 0));
	/* Single, extended: id 0x1abcdef0, RTR must be 0. */
	{
		uint32_t c = 0x1abcdef0u << 3;
		uint8_t acr[4] = { (uint8_t)(c >> 24), (uint8_t)(c >> 16), (uint8_t)(c >> 8), (uint8_t)c };

		filter(r, true, acr, (uint8_t[]){ 0, 0, 0, 0x03 });
		assert_true(takes(r, 0x1abcdef0, CAN_MSG_EXT, 3, 0, 0));
		assert_false(takes(r, 0x1abcdef0, CAN_MSG_EXT | CAN_MSG_RTR, 3, 0, 0));
		assert_false(takes(r, 0x1abcdef1, CAN_MSG_EXT, 3, 0, 0));
		assert_false(takes(r, 0x7f0, 0, 0, 0, 0));
	}
	/* Dual, standard: filter 1 id 0x7e0 with data[0] 0x5A (nibbles in
	 * ACR1 and ACR3), filter 2 id 0x010 any data. */
	filter(r, false, (uint8_t[]){ 0xfc, 0x05, 0x02, 0x0a },
	       (uint8_t[]){ 0x00, 0x10, 0x00, 0x10 });
	assert_true(takes(r, 0x7e0, 0, 1, 0x5a, 0));
	assert_false(takes(r, 0x7e0, 0, 1, 0x5b, 0));
	assert_true(takes(r, 0x010, 0, 3, 0x99, 0));
	assert_true(takes(r, 0x010, CAN_MSG_RTR, 3, 0, 0));
	assert_false(takes(r, 0x011, 0, 0, 0, 0));
	/* Dual, extended: filter 1 on ID.28-13 = 0x1234, filter 2 on 0xffff. */
	filter(r, false, (uint8_t[]){ 0x12, 0x34, 0xff, 0xff }, (uint8_t[]){ 0, 0, 0, 0 });
	assert_true(takes(r, 0x1234u << 13 | 0x1fff, CAN_MSG_EXT, 0, 0, 0));
	assert_true(takes(r, 0xffffu << 13, CAN_MSG_EXT, 0, 0, 0));
	assert_false(takes(r, 0x1235u << 13, CAN_MSG_EXT, 0, 0, 0));
	assert_int_equal(r->s.rx_filtered, 11);
}

static void test_interrupt_enable(void **state)
{
	struct rig *r = *state;
	struct can_msg m = mk(0x42, 0, 1, 1);

	start(r);
	wr(r, SJA_IER, 0);
	/* Disabled conditions are not latched, and RI needs RIE. */
	assert_int_equal(sja1000_receive(&r->s, &m), SJA_RX_STORED);
	xmit(r, &m);
	sja1000_tx_done(&r->s);
	assert_false(r->bus.irq);
	assert_int_equal(rd(r, SJA_IR), 0);
	wr(r, SJA_IER, SJA_IR_RI);
	assert_true(r->bus.irq);
	assert_int_equal(rd(r, SJA_IR), SJA_IR_RI);
	wr(r, SJA_CMR, SJA_CMD_RRB);
	assert_false(r->bus.irq);
}

static void test_error_counters_and_bus_off(void **state)
{
	struct rig *r = *state;
	struct can_msg m = mk(0x55, 0, 1, 0x55);
	uint8_t ir;

	start(r);
	/* Every attempt refused: +8 a try, and the controller stops at each
	 * change of state until the driver has read IR. */
	r->bus.answer = -ENETDOWN;
	xmit(r, &m);
	assert_int_equal(r->bus.attempts, 12);
	assert_int_equal(rd(r, SJA_TXERR), 96);
	assert_int_equal(rd(r, SJA_SR) & (SJA_SR_ES | SJA_SR_BS), SJA_SR_ES);
	assert_true(r->bus.irq);
	ir = rd(r, SJA_IR); /* the driver's handler: warning */
	assert_int_equal(ir, SJA_IR_EI);
	assert_int_equal(r->bus.attempts, 16); /* retried up to error passive */
	assert_int_equal(rd(r, SJA_TXERR), 128);
	assert_int_equal(rd(r, SJA_IR), SJA_IR_EPI);
	/* Then bus-off: reset mode, TXERR 127, RXERR 0, EI with BS. */
	assert_int_equal(r->bus.attempts, 32);
	assert_int_equal(rd(r, SJA_SR) & (SJA_SR_ES | SJA_SR_BS | SJA_SR_TBS),
			 SJA_SR_ES | SJA_SR_BS | SJA_SR_TBS);
	assert_int_equal(rd(r, SJA_MOD) & SJA_MOD_RM, SJA_MOD_RM);
	assert_int_equal(rd(r, SJA_TXERR), 127);
	assert_int_equal(rd(r, SJA_IR), SJA_IR_EI);
	assert_string_equal(r->bus.last_report, "bus-off");
	assert_int_equal(r->s.tx_errors, 32);
	assert_int_equal(r->s.bus_offs, 1);
	/* Bus-off: nothing is received or sent. */
	assert_int_equal(sja1000_receive(&r->s, &m), SJA_RX_OFFLINE);
	r->bus.answer = 0;
	/* Restart as the driver does (sja1000_start): counters written in
	 * reset mode, then operating mode: bus-off recovery. */
	start(r);
	assert_int_equal(rd(r, SJA_SR) & (SJA_SR_ES | SJA_SR_BS), 0);
	assert_int_equal(rd(r, SJA_TXERR), 0);
	assert_string_equal(r->bus.last_report, "restart");
	xmit(r, &m);
	assert_int_equal(r->bus.nsent, 1);
	sja1000_tx_done(&r->s);
	assert_int_equal(rd(r, SJA_IR), SJA_IR_TI);

	/* The warning limit is the driver's to set; counters written in
	 * reset mode count; successful frames count them down. */
	wr(r, SJA_MOD, SJA_MOD_RM);
	wr(r, SJA_EWLR, 10);
	wr(r, SJA_TXERR, 9);
	wr(r, SJA_RXERR, 130);
	wr(r, SJA_MOD, 0);
	assert_int_equal(rd(r, SJA_SR) & SJA_SR_ES, SJA_SR_ES);
	assert_int_equal(sja1000_receive(&r->s, &m), SJA_RX_STORED);
	assert_int_equal(rd(r, SJA_RXERR), 129);
	/* RXERR 129 -> 127 crosses back to error active: EPI. */
	rx_one(r);
	rd(r, SJA_IR);
	assert_int_equal(sja1000_receive(&r->s, &m), SJA_RX_STORED);
	assert_int_equal(rd(r, SJA_IR) & SJA_IR_EPI, 0);
	rx_one(r);
	assert_int_equal(sja1000_receive(&r->s, &m), SJA_RX_STORED);
	assert_int_equal(rd(r, SJA_RXERR), 127);
	assert_int_equal(rd(r, SJA_IR) & SJA_IR_EPI, SJA_IR_EPI);
}

static void test_bus_off_from_bus(void **state)
{
	struct rig *r = *state;
	struct can_msg m = mk(0x66, 0, 1, 0);

	start(r);
	assert_int_equal(sja1000_receive(&r->s, &m), SJA_RX_STORED);
	xmit(r, &m); /* on the bus, unconfirmed */
	sja1000_bus_off(&r->s);
	assert_int_equal(r->bus.cancels, 1); /* the frame is withdrawn */
	assert_int_equal(rd(r, SJA_RMC), 0);
	assert_int_equal(rd(r, SJA_SR) & (SJA_SR_BS | SJA_SR_TBS), SJA_SR_BS | SJA_SR_TBS);
	assert_int_equal(rd(r, SJA_IR), SJA_IR_EI);
	/* A late confirmation changes nothing. */
	sja1000_tx_done(&r->s);
	assert_int_equal(r->s.tx_frames, 0);
	/* Another bus-off while off is the same bus-off. */
	sja1000_bus_off(&r->s);
	assert_int_equal(r->s.bus_offs, 1);
	start(r);
	assert_int_equal(rd(r, SJA_SR) & SJA_SR_BS, 0);
}

static void test_single_shot_and_self_reception(void **state)
{
	struct rig *r = *state;
	struct can_msg m = mk(0x77, 0, 3, 3);
	uint8_t buf[13];
	unsigned int n = sja1000_pack_frame(&m, buf);

	start(r);
	/* TR with AT: one attempt only. */
	r->bus.answer = -EIO;
	for (unsigned int i = 0; i < n; i++)
		wr(r, SJA_FRAME + i, buf[i]);
	wr(r, SJA_CMR, SJA_CMD_TR | SJA_CMD_AT);
	assert_int_equal(r->bus.attempts, 1);
	assert_int_equal(rd(r, SJA_SR) & (SJA_SR_TBS | SJA_SR_TCS), SJA_SR_TBS);
	assert_int_equal(rd(r, SJA_TXERR), 8);
	assert_int_equal(rd(r, SJA_IR), SJA_IR_TI);
	/* SRR: sent, and received back once on the bus. */
	r->bus.answer = 0;
	wr(r, SJA_CMR, SJA_CMD_SRR);
	assert_int_equal(r->bus.nsent, 1);
	sja1000_tx_done(&r->s);
	assert_int_equal(rd(r, SJA_TXERR), 7);
	assert_int_equal(rd(r, SJA_IR), SJA_IR_TI | SJA_IR_RI);
	struct can_msg got = rx_one(r);
	assert_same(&got, &m);
	/* Listen only: no transmission. */
	wr(r, SJA_MOD, SJA_MOD_RM);
	wr(r, SJA_MOD, SJA_MOD_LOM);
	wr(r, SJA_CMR, SJA_CMD_TR);
	assert_int_equal(r->bus.nsent, 1);
}

static void test_basiccan(void **state)
{
	struct rig *r = *state;
	struct can_msg m = mk(0x2a5, 0, 2, 4), ext = mk(0x100000, CAN_MSG_EXT, 0, 0);

	/* BasicCAN after a hardware reset: CR holds RR and the enables. */
	wr(r, 4, 0x54); /* acceptance code: ID.10-3 */
	wr(r, 5, 0x00);
	wr(r, 0, 0x02 | 0x04); /* out of reset, RIE, TIE */
	assert_int_equal(rd(r, 0) & 0x1f, 0x06);
	assert_int_equal(sja1000_receive(&r->s, &m), SJA_RX_STORED);
	assert_int_equal(sja1000_receive(&r->s, &ext), SJA_RX_UNSUPPORTED);
	assert_int_equal(sja1000_receive(&r->s, &(struct can_msg){ .id = 0x2a8 }),
			 SJA_RX_FILTERED);
	assert_true(r->bus.irq);
	assert_int_equal(rd(r, 3) & 0x1f, SJA_IR_RI);
	assert_int_equal(rd(r, 20), 0x54);
	assert_int_equal(rd(r, 21), (0x2a5 & 7) << 5 | 2);
	assert_int_equal(rd(r, 22), m.data[0]);
	wr(r, 1, SJA_CMD_RRB);
	assert_false(r->bus.irq);
	/* Transmit buffer at 10-19. */
	wr(r, 10, 0x24);
	wr(r, 11, 3 << 5 | 0x10 | 1); /* id 0x123, RTR, length 1 */
	wr(r, 1, SJA_CMD_TR);
	assert_int_equal(r->bus.nsent, 1);
	assert_int_equal(r->bus.sent[0].id, 0x123);
	assert_int_equal(r->bus.sent[0].flags, CAN_MSG_RTR);
	assert_int_equal(r->bus.sent[0].len, 1);
	sja1000_tx_done(&r->s);
	assert_int_equal(rd(r, 3), 0xe0 | SJA_IR_TI);
}

static void test_save_load(void **state)
{
	struct rig *r = *state;
	struct rig *r2 = calloc(1, sizeof(*r2));
	struct sja1000_host h = { bus_send, bus_cancel, bus_irq, bus_report, &r2->bus };
	struct state_writer w;
	struct state_reader rd2;
	struct error err = { 0 };
	struct can_msg a = mk(0x101, 0, 4, 1), b = mk(0x1f00001, CAN_MSG_EXT, 6, 2);

	start(r);
	assert_int_equal(sja1000_receive(&r->s, &a), SJA_RX_STORED);
	assert_int_equal(sja1000_receive(&r->s, &b), SJA_RX_STORED);
	r->bus.answer = -EAGAIN;
	xmit(r, &a); /* pending */
	state_writer_init(&w);
	sja1000_save(&r->s, &w);
	sja1000_init(&r2->s, &h);
	state_reader_init(&rd2, w.buf, w.len);
	assert_int_equal(sja1000_load(&r2->s, &rd2, &err), 0);
	assert_true(r2->bus.irq); /* RI pending: the line follows the state */
	struct can_msg got = rx_one(r2);
	assert_same(&got, &a);
	got = rx_one(r2);
	assert_same(&got, &b);
	/* The pending frame goes out once the host can send. */
	sja1000_tx_retry(&r2->s);
	assert_int_equal(r2->bus.nsent, 1);
	assert_same(&r2->bus.sent[0], &a);
	/* Damaged records are refused whole, the model unchanged. */
	w.buf[w.len - 9] = 70; /* rbsa (nine bytes from the end) out of range */
	state_reader_init(&rd2, w.buf, w.len);
	assert_int_equal(sja1000_load(&r2->s, &rd2, &err), -1);
	state_reader_init(&rd2, w.buf, w.len - 1);
	assert_int_equal(sja1000_load(&r2->s, &rd2, &err), -1);
	assert_int_equal(rd(r2, SJA_RMC), 0);
	state_writer_free(&w);
	sja1000_tx_done(&r2->s);
	rd(r2, SJA_IR);

	/* A frame on the bus, unconfirmed, is saved as sent: the restored
	 * controller has it complete (TI), the saved one still waits. */
	r->bus.answer = 0;
	sja1000_tx_retry(&r->s);
	assert_int_equal(rd(r, SJA_SR) & (SJA_SR_TBS | SJA_SR_TS), SJA_SR_TS);
	state_writer_init(&w);
	sja1000_save(&r->s, &w);
	assert_int_equal(rd(r, SJA_SR) & (SJA_SR_TBS | SJA_SR_TS), SJA_SR_TS);
	state_reader_init(&rd2, w.buf, w.len);
	assert_int_equal(sja1000_load(&r2->s, &rd2, &err), 0);
	assert_int_equal(rd(r2, SJA_SR) & (SJA_SR_TBS | SJA_SR_TCS | SJA_SR_TS),
			 SJA_SR_TBS | SJA_SR_TCS);
	assert_int_equal(rd(r2, SJA_IR) & SJA_IR_TI, SJA_IR_TI);
	state_writer_free(&w);
	free(r2);
}

/* ---- the card on a fake backend ---- */

struct fake_backend {
	struct can_backend base;
	pthread_mutex_t lock;
	struct can_msg rx[256];
	enum can_event rx_ev[256];
	unsigned int rx_head, rx_tail;
	struct can_msg sent[64];
	unsigned int nsent, cancels;
	bool closed;
};

static int fb_send(struct can_backend *b, const struct can_msg *m)
{
	struct fake_backend *f = (struct fake_backend *)b;
	uint64_t one = 1;

	pthread_mutex_lock(&f->lock);
	f->sent[f->nsent++ % 64] = *m;
	/* Confirmed at once, as a bus with room does. */
	f->rx_ev[f->rx_tail % 256] = CAN_EVENT_TX_DONE;
	f->rx_tail++;
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(write(b->rx_fd, &one, sizeof(one)), sizeof(one));
	return 0;
}

static int fb_recv(struct can_backend *b, enum can_event *ev, struct can_msg *m)
{
	struct fake_backend *f = (struct fake_backend *)b;
	uint64_t v;
	int r = 0;

	pthread_mutex_lock(&f->lock);
	if (f->rx_head != f->rx_tail) {
		*ev = f->rx_ev[f->rx_head % 256];
		*m = f->rx[f->rx_head % 256];
		f->rx_head++;
		r = 1;
	}
	if (f->rx_head == f->rx_tail && read(b->rx_fd, &v, sizeof(v)) < 0) {
		/* already drained */
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

static int fb_cancel(struct can_backend *b)
{
	((struct fake_backend *)b)->cancels++;
	return 0;
}

static void fb_close(struct can_backend *b)
{
	struct fake_backend *f = (struct fake_backend *)b;

	close(b->rx_fd);
	f->closed = true;
}

static const struct can_backend_ops fb_ops = { fb_close, fb_send, fb_recv, fb_cancel };

static void fb_push(struct fake_backend *f, enum can_event ev, const struct can_msg *m)
{
	uint64_t one = 1;

	pthread_mutex_lock(&f->lock);
	f->rx_ev[f->rx_tail % 256] = ev;
	f->rx[f->rx_tail % 256] = m ? *m : (struct can_msg){ 0 };
	f->rx_tail++;
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(write(f->base.rx_fd, &one, sizeof(one)), sizeof(one));
}

struct fake_irqchip {
	int level[IRQ_LINES];
	unsigned int edges;
};

static int fc_set_line(void *chip, unsigned int gsi, int level)
{
	struct fake_irqchip *c = chip;

	if (level && !c->level[gsi])
		c->edges++;
	c->level[gsi] = level;
	return 0;
}

static int fc_send_msi(void *chip, uint64_t addr, uint32_t data)
{
	(void)chip, (void)addr, (void)data;
	return 0;
}

static const struct irq_chip_ops fc_ops = { .set_line = fc_set_line, .send_msi = fc_send_msi };

struct card {
	struct fake_irqchip chip;
	struct irq_service irq;
	struct pci_host host;
	struct fake_backend *fb;
	struct device *d;
	unsigned int gsi;
};

static unsigned int intx_gsi(unsigned int slot)
{
	return PCI_INTX_GSI(slot);
}

static struct card *card_new(void)
{
	struct card *c = calloc(1, sizeof(*c));
	struct kvaser_pci_env env;
	struct error err = { 0 };

	irq_service_init(&c->irq, &fc_ops, &c->chip);
	pci_host_init(&c->host, NULL, 0xc0000000ULL, 0xfec00000ULL);
	pci_host_set_io_window(&c->host, 0xc000, 0x10000);
	c->fb = calloc(1, sizeof(*c->fb));
	c->fb->base.ops = &fb_ops;
	c->fb->base.rx_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&c->fb->lock, NULL);
	env = (struct kvaser_pci_env){ .irq = &c->irq, .host = &c->host, .intx_gsi = intx_gsi };
	c->d = kvaser_pci_create(&c->fb->base, 0, &env, &err);
	assert_non_null(c->d);
	assert_int_equal(c->d->ops->realize(c->d, &err), 0);
	c->gsi = PCI_INTX_GSI(1u);
	return c;
}

static void card_free(struct card *c)
{
	c->d->ops->destroy(c->d);
	assert_true(c->fb->closed);
	free(c->fb);
	irq_service_destroy(&c->irq);
	free(c);
}

static uint8_t sja_rd(struct card *c, unsigned int reg)
{
	return (uint8_t)kvaser_pci_bar_read(c->d, 1, reg, 1);
}

static void sja_wr(struct card *c, unsigned int reg, uint8_t v)
{
	kvaser_pci_bar_write(c->d, 1, reg, 1, v);
}

/* Waits up to 3 s for cond. */
#define WAIT_FOR(cond)                                                                 \
	do {                                                                           \
		for (int w_ = 0; w_ < 3000 && !(cond); w_++)                           \
			usleep(1000);                                                  \
		assert_true(cond);                                                     \
	} while (0)

static void test_card(void **state)
{
	struct card *c = card_new();
	const struct pci_device *p = kvaser_pci_device(c->d);
	struct can_msg m = mk(0x3c3, 0, 3, 9);
	struct fake_backend *fb = c->fb;
	unsigned int i;

	(void)state;
	assert_int_equal(le16_get(p->config + PCI_VENDOR_ID), 0x10e8);
	assert_int_equal(le16_get(p->config + PCI_DEVICE_ID), 0x8406);
	assert_int_equal(p->config[PCI_INTERRUPT_PIN], 1);
	assert_int_equal(p->config[PCI_INTERRUPT_LINE], c->gsi);
	for (i = 0; i < 3; i++) {
		assert_int_equal(le32_get(p->config + PCI_BAR0 + 4 * i) & PCI_BAR_IO, PCI_BAR_IO);
		assert_true(pci_bar_address(p, i) >= 0xc000);
	}
	/* Through the port window, as the guest reaches it. */
	assert_int_equal(pci_io_ops.read(&c->host, pci_bar_address(p, 2) + 7 - 0xc000, 1), 14 << 4);
	/* The driver's probe: reset mode set and read back, channel by
	 * channel; only the first has a controller. */
	for (i = 0; i < 4; i++) {
		sja_wr(c, i * 32, 1);
		assert_int_equal(sja_rd(c, i * 32) & 1, i == 0);
	}
	/* Accesses past a BAR's end, and wide ones, stay inside it. */
	assert_int_equal(kvaser_pci_bar_read(c->d, 2, 6, 4), 0xffff0000u | (14 << 12));
	kvaser_pci_bar_write(c->d, 1, 0x7e, 8, ~0ULL);
	assert_int_equal(kvaser_pci_bar_read(c->d, 3, 0, 1), ~0ULL);

	/* PeliCAN, accept all, operating mode, interrupts on. */
	sja_wr(c, SJA_CDR, 0xc8);
	for (i = 0; i < 4; i++)
		sja_wr(c, SJA_AMR0 + i, 0xff);
	sja_wr(c, SJA_MOD, 0);
	sja_wr(c, SJA_IER, 0x7f);
	/* A frame from the bus; INTA# only once the S5920 lets it through. */
	fb_push(fb, CAN_EVENT_FRAME, &m);
	WAIT_FOR(sja_rd(c, SJA_RMC) == 1);
	assert_int_equal(c->chip.level[c->gsi], 0);
	assert_int_equal(kvaser_pci_bar_read(c->d, 0, 0x38, 4) & 0x800000, 0x800000);
	kvaser_pci_bar_write(c->d, 0, 0x38, 4, 0x2000);
	assert_int_equal(c->chip.level[c->gsi], 1);
	assert_int_equal(sja_rd(c, SJA_FRAME + 1), 0x3c3 >> 3);
	sja_wr(c, SJA_CMR, SJA_CMD_RRB);
	assert_int_equal(c->chip.level[c->gsi], 0);
	/* More frames than the FIFO holds wait in the backend: none lost.
	 * The next batch comes once the FIFO is empty and the handler has
	 * read IR with nothing pending, as Linux's does before it returns. */
	for (i = 0; i < 40; i++)
		fb_push(fb, CAN_EVENT_FRAME, &(struct can_msg){ .id = i, .len = 8 });
	WAIT_FOR(sja_rd(c, SJA_RMC) == 5); /* 5 x 11 bytes of 64 */
	for (i = 0; i < 5; i++)
		sja_wr(c, SJA_CMR, SJA_CMD_RRB);
	usleep(50000);
	assert_int_equal(sja_rd(c, SJA_RMC), 0); /* not under the handler */
	assert_int_equal(sja_rd(c, SJA_IR), 0);
	for (i = 5; i < 40; i++) {
		WAIT_FOR(sja_rd(c, SJA_RMC) > 0 || (sja_rd(c, SJA_IR), false));
		assert_int_equal(sja_rd(c, SJA_FRAME + 1), i >> 3);
		assert_int_equal(sja_rd(c, SJA_FRAME + 2), (i & 7) << 5);
		sja_wr(c, SJA_CMR, SJA_CMD_RRB);
	}
	assert_int_equal(sja_rd(c, SJA_SR) & SJA_SR_DOS, 0);
	/* A frame to the bus, confirmed through the I/O thread: TI. */
	sja_rd(c, SJA_IR);
	sja_wr(c, SJA_FRAME, 1);
	sja_wr(c, SJA_FRAME + 1, 0x12);
	sja_wr(c, SJA_FRAME + 2, 0x20);
	sja_wr(c, SJA_FRAME + 3, 0xaa);
	sja_wr(c, SJA_CMR, SJA_CMD_TR);
	WAIT_FOR(c->chip.level[c->gsi] == 1);
	assert_int_equal(sja_rd(c, SJA_IR), SJA_IR_TI);
	assert_int_equal(fb->nsent, 1);
	assert_int_equal(fb->sent[0].id, 0x91);
	/* Bus-off from the backend. */
	fb_push(fb, CAN_EVENT_BUSOFF, NULL);
	WAIT_FOR(c->chip.level[c->gsi] == 1);
	assert_int_equal(sja_rd(c, SJA_SR) & SJA_SR_BS, SJA_SR_BS);
	assert_int_equal(sja_rd(c, SJA_IR), SJA_IR_EI);
	/* PCI Interrupt Disable masks INTA#. */
	sja_wr(c, SJA_MOD, 0); /* recovery: EI */
	assert_int_equal(c->chip.level[c->gsi], 1);
	{
		struct pci_device *pd = (struct pci_device *)p;

		le16_put(pd->config + PCI_COMMAND, le16_get(pd->config + PCI_COMMAND) | 0x400);
		pd->config_written(pd, PCI_COMMAND, 2);
		assert_int_equal(c->chip.level[c->gsi], 0);
		le16_put(pd->config + PCI_COMMAND, le16_get(pd->config + PCI_COMMAND) & ~0x400);
		pd->config_written(pd, PCI_COMMAND, 2);
		assert_int_equal(c->chip.level[c->gsi], 1);
	}
	card_free(c);
}

static void test_card_save_load(void **state)
{
	struct card *a = card_new(), *b;
	struct state_writer w;
	struct state_reader r;
	struct error err = { 0 };
	struct can_msg m = mk(0x1a2b3c4, CAN_MSG_EXT, 8, 4);
	unsigned int i;

	(void)state;
	sja_wr(a, SJA_CDR, 0x80);
	for (i = 0; i < 4; i++)
		sja_wr(a, SJA_AMR0 + i, 0xff);
	sja_wr(a, SJA_MOD, 0);
	sja_wr(a, SJA_IER, 0x01);
	kvaser_pci_bar_write(a->d, 0, 0x38, 4, 0x2000);
	fb_push(a->fb, CAN_EVENT_FRAME, &m);
	WAIT_FOR(sja_rd(a, SJA_RMC) == 1);
	assert_int_equal(a->d->ops->pause(a->d, &err), 0);
	state_writer_init(&w);
	a->d->ops->save(a->d, &w);
	assert_false(w.failed);
	card_free(a);

	b = card_new();
	assert_int_equal(b->d->ops->pause(b->d, &err), 0);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(b->d->ops->load(b->d, &r, &err), 0);
	b->d->ops->resume(b->d);
	assert_int_equal(b->chip.level[b->gsi], 1);
	assert_int_equal(sja_rd(b, SJA_RMC), 1);
	assert_int_equal(sja_rd(b, SJA_FRAME), SJA_FI_FF | 8);
	assert_int_equal(sja_rd(b, SJA_FRAME + 5), m.data[0]);
	/* A truncated record is refused and changes nothing. */
	state_reader_init(&r, w.buf, w.len - 3);
	assert_int_equal(b->d->ops->load(b->d, &r, &err), -1);
	assert_int_equal(sja_rd(b, SJA_RMC), 1);
	/* A system reset: power-on state, line low. */
	b->d->ops->reset(b->d);
	assert_int_equal(b->chip.level[b->gsi], 0);
	assert_int_equal(sja_rd(b, 0) & 1, 1);
	state_writer_free(&w);
	card_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reset_state, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_tx_kinds, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_tx_busy_and_abort, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_rx_fifo, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_rx_overrun, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_acceptance_filter, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_enable, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_error_counters_and_bus_off, rig_setup,
						rig_teardown),
		cmocka_unit_test_setup_teardown(test_bus_off_from_bus, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_single_shot_and_self_reception, rig_setup,
						rig_teardown),
		cmocka_unit_test_setup_teardown(test_basiccan, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_save_load, rig_setup, rig_teardown),
		cmocka_unit_test(test_card),
		cmocka_unit_test(test_card_save_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
