/* The SJA1000 CAN controller (sja1000.h). Behaviour follows NXP's data
 * sheet (SJA1000, rev. 3) and application note AN97076: the register
 * map of both modes, what reset mode does to each register, the FIFO's
 * layout and the acceptance filter's bit assignments.
 *
 * No lock here: the board serialises every call. Every register address
 * and value the guest gives is masked or range-checked before use, so no
 * access can reach outside the model's arrays. */
#include "hw/sja1000.h"

#include <errno.h>
#include <string.h>

#define EWL_DEFAULT 96
#define PASSIVE_LIMIT 128 /* a counter at or above: error passive */
#define TX_ERROR_STEP 8

/* BasicCAN addresses. */
#define BAS_CR 0
#define BAS_ACR 4
#define BAS_AMR 5
#define BAS_TX 10
#define BAS_RX 20
#define BAS_CR_IE_SHIFT 1 /* CR bits 1-4: RIE, TIE, EIE, OIE = IER bits 0-3 */

static bool pelican(const struct sja1000 *s)
{
	return s->cdr & SJA_CDR_PELICAN;
}

static bool in_reset(const struct sja1000 *s)
{
	return s->mod & SJA_MOD_RM;
}

static bool error_status(const struct sja1000 *s)
{
	return s->txerr >= s->ewlr || s->rxerr >= s->ewlr || s->bs;
}

static bool error_passive(const struct sja1000 *s)
{
	return s->txerr >= PASSIVE_LIMIT || s->rxerr >= PASSIVE_LIMIT;
}

/* The interrupt register as read: the latched bits and RI, which follows
 * the FIFO while it is enabled. */
static uint8_t ir_value(const struct sja1000 *s)
{
	uint8_t v = s->ir;

	if (s->rmc && (s->ier & SJA_IR_RI))
		v |= SJA_IR_RI;
	return v;
}

static void update_irq(struct sja1000 *s)
{
	bool level = (ir_value(s) & s->ier) != 0;

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	if (s->host.set_irq)
		s->host.set_irq(s->host.ctx, level);
}

/* An interrupt condition: latched only while enabled, as on the chip.
 * Returns whether it was. */
static bool latch(struct sja1000 *s, uint8_t bit)
{
	if (!(s->ier & bit))
		return false;
	s->ir |= bit;
	return true;
}

static void report(struct sja1000 *s, const char *event)
{
	if (s->host.report)
		s->host.report(s->host.ctx, event);
}

static void fifo_clear(struct sja1000 *s)
{
	s->rx_bytes = 0;
	s->rmc = 0;
	s->dos = false;
}

/* What reset mode does, entered by MOD.RM or by bus-off: the frame being
 * sent is aborted, the FIFO emptied, the interrupts cleared. */
static void enter_reset(struct sja1000 *s)
{
	s->mod |= SJA_MOD_RM;
	if (s->tx == SJA_TX_ON_BUS && s->host.cancel)
		s->host.cancel(s->host.ctx);
	s->tx = SJA_TX_IDLE;
	s->tx_wait_room = s->tx_wait_ir = false;
	fifo_clear(s);
	s->rbsa = 0;
	s->ir = 0;
}

static void go_bus_off(struct sja1000 *s)
{
	enter_reset(s);
	s->bs = true;
	/* The data sheet: bus-off sets TXERR to 127 (it counts the recovery
	 * down from there) and clears RXERR. */
	s->txerr = 127;
	s->rxerr = 0;
	s->bus_offs++;
	latch(s, SJA_IR_EI);
	report(s, "bus-off");
}

/* New error counter values; raises EI on a change of the error status and
 * EPI on one of error passive, and goes bus-off past 255. Returns whether
 * an interrupt was latched. */
static bool set_counters(struct sja1000 *s, unsigned int tx, unsigned int rx)
{
	bool es = error_status(s), ep = error_passive(s), raised = false;

	if (tx > 255) {
		go_bus_off(s);
		return true;
	}
	s->txerr = (uint8_t)tx;
	s->rxerr = (uint8_t)(rx > 255 ? 255 : rx);
	if (es != error_status(s))
		raised |= latch(s, SJA_IR_EI);
	if (ep != error_passive(s))
		raised |= latch(s, SJA_IR_EPI);
	return raised;
}

/* The transmit buffer is released: after the frame went out (ok) or was
 * aborted. */
static void tx_finish(struct sja1000 *s, bool ok)
{
	s->tx = SJA_TX_IDLE;
	s->tx_wait_room = s->tx_wait_ir = false;
	s->tcs = ok;
	latch(s, SJA_IR_TI);
}

/* Hands the pending frame to the bus, retrying after refusals as the chip
 * retransmits, each one a transmission error. A retry that changed the
 * error state waits until the guest has read IR, so that the driver sees
 * warning, passive and bus-off one at a time, as they come on a real bus. */
static void tx_attempt(struct sja1000 *s)
{
	while (s->tx == SJA_TX_PENDING && !s->tx_wait_room && !s->tx_wait_ir) {
		int r = s->host.send(s->host.ctx, &s->tx_msg);

		if (r == 0) {
			s->tx = SJA_TX_ON_BUS;
			return;
		}
		if (r == -EAGAIN) {
			s->tx_wait_room = true;
			return;
		}
		s->tx_errors++;
		if (set_counters(s, s->txerr + TX_ERROR_STEP, s->rxerr) && s->tx == SJA_TX_PENDING)
			s->tx_wait_ir = true;
		if (s->tx == SJA_TX_PENDING && s->tx_single_shot)
			tx_finish(s, false);
	}
}

/* ---- frames in the chip's layouts ---- */

unsigned int sja1000_pack_frame(const struct can_msg *m, uint8_t *out)
{
	unsigned int n, len = m->len > CAN_MAX_DLEN ? CAN_MAX_DLEN : m->len;

	out[0] = (uint8_t)len | ((m->flags & CAN_MSG_EXT) ? SJA_FI_FF : 0) |
		 ((m->flags & CAN_MSG_RTR) ? SJA_FI_RTR : 0);
	if (m->flags & CAN_MSG_EXT) {
		out[1] = (uint8_t)(m->id >> 21);
		out[2] = (uint8_t)(m->id >> 13);
		out[3] = (uint8_t)(m->id >> 5);
		out[4] = (uint8_t)(m->id << 3);
		n = 5;
	} else {
		out[1] = (uint8_t)(m->id >> 3);
		out[2] = (uint8_t)(m->id << 5);
		n = 3;
	}
	if (!(m->flags & CAN_MSG_RTR)) {
		memcpy(out + n, m->data, len);
		n += len;
	}
	return n;
}

/* BasicCAN: two identifier bytes (ID.10-3; ID.2-0, RTR, DLC), data. */
static unsigned int pack_basic(const struct can_msg *m, uint8_t *out)
{
	unsigned int len = m->len > CAN_MAX_DLEN ? CAN_MAX_DLEN : m->len;

	out[0] = (uint8_t)(m->id >> 3);
	out[1] = (uint8_t)((m->id & 7) << 5) | ((m->flags & CAN_MSG_RTR) ? 0x10 : 0) | (uint8_t)len;
	if (m->flags & CAN_MSG_RTR)
		return 2;
	memcpy(out + 2, m->data, len);
	return 2 + len;
}

/* The transmit buffer as a frame. A data length code above 8 sends 8
 * bytes, as CAN does. */
static void tx_buffer_frame(const struct sja1000 *s, struct can_msg *m)
{
	const uint8_t *b = s->tx_buf;
	unsigned int dlc;

	memset(m, 0, sizeof(*m));
	if (!pelican(s)) {
		m->id = (uint32_t)b[0] << 3 | b[1] >> 5;
		m->flags = (b[1] & 0x10) ? CAN_MSG_RTR : 0;
		dlc = b[1] & 0x0f;
		m->len = (uint8_t)(dlc > CAN_MAX_DLEN ? CAN_MAX_DLEN : dlc);
		if (!(m->flags & CAN_MSG_RTR))
			memcpy(m->data, b + 2, m->len);
		return;
	}
	dlc = b[0] & 0x0f;
	m->len = (uint8_t)(dlc > CAN_MAX_DLEN ? CAN_MAX_DLEN : dlc);
	if (b[0] & SJA_FI_RTR)
		m->flags |= CAN_MSG_RTR;
	if (b[0] & SJA_FI_FF) {
		m->flags |= CAN_MSG_EXT;
		m->id = (uint32_t)b[1] << 21 | (uint32_t)b[2] << 13 | (uint32_t)b[3] << 5 | b[4] >> 3;
		if (!(m->flags & CAN_MSG_RTR))
			memcpy(m->data, b + 5, m->len);
	} else {
		m->id = (uint32_t)b[1] << 3 | b[2] >> 5;
		if (!(m->flags & CAN_MSG_RTR))
			memcpy(m->data, b + 3, m->len);
	}
}

/* ---- the acceptance filter ---- */

/* Bits of v that the mask does not exclude must equal the code's. */
static bool match(uint32_t v, uint32_t code, uint32_t mask)
{
	return ((v ^ code) & ~mask) == 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool accepted(const struct sja1000 *s, const struct can_msg *m)
{
	bool ext = m->flags & CAN_MSG_EXT, rtr = m->flags & CAN_MSG_RTR;
	unsigned int ndata = rtr ? 0 : m->len;
	uint32_t v, code, mask;

	if (!pelican(s))
		return match(m->id >> 3, s->acr[0], s->amr[0]);
	if (s->mod & SJA_MOD_AFM) {
		/* Single filter, 32 bits. Standard: ID.10-0, RTR, 4 unused
		 * bits, data 1 and 2; extended: ID.28-0, RTR, 2 unused bits.
		 * Data bytes the frame does not have are not compared. */
		code = be32(s->acr);
		mask = be32(s->amr);
		if (ext) {
			v = m->id << 3 | (rtr ? 4u : 0);
			mask |= 3;
		} else {
			v = m->id << 21 | (rtr ? 1u << 20 : 0);
			mask |= 0xfu << 16;
			if (ndata > 0)
				v |= (uint32_t)m->data[0] << 8;
			else
				mask |= 0xff00;
			if (ndata > 1)
				v |= m->data[1];
			else
				mask |= 0xff;
		}
		return match(v, code, mask);
	}
	/* Dual filter. Extended: each filter is ID.28-13 (ACR0-1 and
	 * ACR2-3). Standard: filter 1 is ID.10-0, RTR and data byte 1 (its
	 * upper half in ACR1's low bits, its lower half in ACR3's low bits);
	 * filter 2 is ID.10-0 and RTR in ACR2 and ACR3's high bits. */
	if (ext) {
		v = m->id >> 13;
		return match(v, (uint32_t)s->acr[0] << 8 | s->acr[1],
			     (uint32_t)s->amr[0] << 8 | s->amr[1]) ||
		       match(v, (uint32_t)s->acr[2] << 8 | s->acr[3],
			     (uint32_t)s->amr[2] << 8 | s->amr[3]);
	}
	v = m->id << 5 | (rtr ? 0x10u : 0);
	code = (uint32_t)s->acr[0] << 8 | (s->acr[1] & 0xf0);
	mask = (uint32_t)s->amr[0] << 8 | (s->amr[1] & 0xf0);
	if (match(v, code, mask)) {
		if (ndata == 0)
			return true;
		if (match(m->data[0], (uint32_t)(s->acr[1] & 0x0f) << 4 | (s->acr[3] & 0x0f),
			  (uint32_t)(s->amr[1] & 0x0f) << 4 | (s->amr[3] & 0x0f)))
			return true;
	}
	return match(v, (uint32_t)s->acr[2] << 8 | (s->acr[3] & 0xf0),
		     (uint32_t)s->amr[2] << 8 | (s->amr[3] & 0xf0));
}

/* ---- the receive FIFO ---- */

bool sja1000_online(const struct sja1000 *s)
{
	return !in_reset(s) && !s->bs;
}

static bool supported(const struct sja1000 *s, const struct can_msg *m)
{
	if (m->flags & CAN_MSG_FD)
		return false;
	return pelican(s) || !(m->flags & CAN_MSG_EXT);
}

static unsigned int packed_len(const struct sja1000 *s, const struct can_msg *m)
{
	uint8_t buf[16];

	return pelican(s) ? sja1000_pack_frame(m, buf) : pack_basic(m, buf);
}

bool sja1000_rx_fits(const struct sja1000 *s, const struct can_msg *m)
{
	if (!sja1000_online(s) || !supported(s, m))
		return true; /* not received: no room needed */
	return s->rx_bytes + packed_len(s, m) <= SJA1000_RX_FIFO;
}

/* Stores m (accepted) in the FIFO; false on overrun. */
static bool fifo_push(struct sja1000 *s, const struct can_msg *m)
{
	uint8_t buf[16];
	unsigned int n = pelican(s) ? sja1000_pack_frame(m, buf) : pack_basic(m, buf), i;

	if (s->rx_bytes + n > SJA1000_RX_FIFO) {
		/* DOI comes with DOS's 0-to-1 transition only (datasheet, IR.3):
		 * frames lost before the driver's CDO raise nothing more, so an
		 * overrunning flood costs the guest one interrupt per CDO, not
		 * one per lost frame. */
		if (!s->dos)
			latch(s, SJA_IR_DOI);
		s->dos = true;
		s->rx_overruns++;
		return false;
	}
	for (i = 0; i < n; i++)
		s->rx_fifo[(s->rbsa + s->rx_bytes + i) % SJA1000_RX_FIFO] = buf[i];
	s->rx_bytes = (uint8_t)(s->rx_bytes + n);
	s->rmc++;
	s->rx_frames++;
	return true;
}

enum sja1000_rx_result sja1000_receive(struct sja1000 *s, const struct can_msg *m)
{
	enum sja1000_rx_result r;

	if (!sja1000_online(s))
		return SJA_RX_OFFLINE;
	if (!supported(s, m))
		return SJA_RX_UNSUPPORTED;
	if (!accepted(s, m)) {
		s->rx_filtered++;
		return SJA_RX_FILTERED;
	}
	r = fifo_push(s, m) ? SJA_RX_STORED : SJA_RX_OVERRUN;
	/* A frame received without error counts the receive counter down. */
	if (r == SJA_RX_STORED && s->rxerr)
		set_counters(s, s->txerr, s->rxerr - 1u);
	update_irq(s);
	return r;
}

/* The length of the oldest message, from its header in the FIFO. */
static unsigned int head_len(const struct sja1000 *s)
{
	uint8_t h0 = s->rx_fifo[s->rbsa], h1 = s->rx_fifo[(s->rbsa + 1) % SJA1000_RX_FIFO];
	unsigned int dlc;

	if (!pelican(s)) {
		dlc = h1 & 0x0f;
		return 2 + ((h1 & 0x10) ? 0 : (dlc > 8 ? 8 : dlc));
	}
	dlc = h0 & 0x0f;
	return ((h0 & SJA_FI_FF) ? 5 : 3) + ((h0 & SJA_FI_RTR) ? 0 : (dlc > 8 ? 8 : dlc));
}

static void release_rx(struct sja1000 *s)
{
	unsigned int n;

	if (!s->rmc)
		return;
	n = head_len(s);
	if (n > s->rx_bytes || s->rmc == 1)
		n = s->rx_bytes; /* (only a corrupt record could make it so) */
	s->rbsa = (uint8_t)((s->rbsa + n) % SJA1000_RX_FIFO);
	s->rx_bytes = (uint8_t)(s->rx_bytes - n);
	s->rmc--;
}

/* ---- the host's side ---- */

void sja1000_tx_done(struct sja1000 *s)
{
	struct can_msg m;

	if (s->tx != SJA_TX_ON_BUS)
		return;
	m = s->tx_msg;
	s->tx_frames++;
	tx_finish(s, true);
	if (s->txerr)
		set_counters(s, s->txerr - 1u, s->rxerr);
	if (s->tx_self && sja1000_online(s) && accepted(s, &m))
		fifo_push(s, &m);
	update_irq(s);
}

void sja1000_tx_retry(struct sja1000 *s)
{
	if (!s->tx_wait_room)
		return;
	s->tx_wait_room = false;
	tx_attempt(s);
	update_irq(s);
}

void sja1000_bus_off(struct sja1000 *s)
{
	if (!sja1000_online(s))
		return;
	go_bus_off(s);
	update_irq(s);
}

/* ---- registers ---- */

static void command(struct sja1000 *s, uint8_t val)
{
	if (val & SJA_CMD_RRB)
		release_rx(s);
	if (val & SJA_CMD_CDO)
		s->dos = false;
	if ((val & SJA_CMD_AT) && s->tx == SJA_TX_PENDING && !(val & (SJA_CMD_TR | SJA_CMD_SRR)))
		tx_finish(s, false); /* not handed to the bus yet: aborted */
	if ((val & (SJA_CMD_TR | SJA_CMD_SRR)) && s->tx == SJA_TX_IDLE && !in_reset(s) && !s->bs &&
	    !(s->mod & SJA_MOD_LOM)) {
		tx_buffer_frame(s, &s->tx_msg);
		s->tx = SJA_TX_PENDING;
		s->tcs = false;
		s->tx_single_shot = val & SJA_CMD_AT;
		s->tx_self = pelican(s) && (val & SJA_CMD_SRR);
		tx_attempt(s);
	}
}

static void set_mode(struct sja1000 *s, uint8_t val)
{
	bool was_reset = in_reset(s);
	uint8_t keep = was_reset ? 0 : (SJA_MOD_LOM | SJA_MOD_STM | SJA_MOD_AFM);
	uint8_t m = (uint8_t)((s->mod & keep) | (val & ~keep & 0x1f));

	if (was_reset)
		m &= (uint8_t)~SJA_MOD_SM; /* no sleep in reset mode */
	if (!was_reset && (m & SJA_MOD_RM)) {
		enter_reset(s);
		s->mod = m;
		return;
	}
	s->mod = m;
	if (was_reset && !(m & SJA_MOD_RM) && s->bs) {
		/* Bus-off recovery: the chip waits for 128 x 11 recessive bits,
		 * which a virtual bus has at once. */
		s->bs = false;
		s->txerr = s->rxerr = 0;
		latch(s, SJA_IR_EI);
		report(s, "restart");
	}
}

static uint8_t status(const struct sja1000 *s)
{
	uint8_t v = 0;

	if (s->rmc)
		v |= SJA_SR_RBS;
	if (s->dos)
		v |= SJA_SR_DOS;
	if (s->tx == SJA_TX_IDLE)
		v |= SJA_SR_TBS;
	else
		v |= SJA_SR_TS;
	if (s->tcs)
		v |= SJA_SR_TCS;
	if (in_reset(s))
		v |= SJA_SR_RS | SJA_SR_TS;
	if (error_status(s))
		v |= SJA_SR_ES;
	if (s->bs)
		v |= SJA_SR_BS;
	return v;
}

static uint8_t read_ir(struct sja1000 *s)
{
	uint8_t v = ir_value(s);

	s->ir = 0;
	if (s->tx_wait_ir) {
		s->tx_wait_ir = false;
		tx_attempt(s);
	}
	return v;
}

static uint8_t read_pelican(struct sja1000 *s, unsigned int reg)
{
	switch (reg) {
	case SJA_MOD:
		return s->mod;
	case SJA_CMR:
		return 0xff; /* write-only */
	case SJA_SR:
		return status(s);
	case SJA_IR:
		return read_ir(s);
	case SJA_IER:
		return s->ier;
	case SJA_BTR0:
		return s->btr0;
	case SJA_BTR1:
		return s->btr1;
	case SJA_OCR:
		return s->ocr;
	case SJA_ALC:
	case SJA_ECC:
		return 0; /* no arbitration lost, no bus error captured */
	case SJA_EWLR:
		return s->ewlr;
	case SJA_RXERR:
		return s->rxerr;
	case SJA_TXERR:
		return s->txerr;
	case SJA_RMC:
		return s->rmc;
	case SJA_RBSA:
		return s->rbsa;
	case SJA_CDR:
		return s->cdr;
	}
	if (reg >= SJA_FRAME && reg < SJA_FRAME + 13) {
		if (in_reset(s))
			return reg < SJA_FRAME + 8 ? (reg < SJA_AMR0 ? s->acr[reg - SJA_ACR0]
								   : s->amr[reg - SJA_AMR0])
						   : 0;
		return s->rx_fifo[(s->rbsa + reg - SJA_FRAME) % SJA1000_RX_FIFO];
	}
	return 0; /* reserved, test */
}

/* The clock divider: its mode bit (PeliCAN) only in reset mode. Both
 * modes have it at the same address. */
static void write_cdr(struct sja1000 *s, uint8_t val, bool reset)
{
	s->cdr = reset ? val : (uint8_t)((s->cdr & SJA_CDR_PELICAN) | (val & ~SJA_CDR_PELICAN));
}

/* Bus timing and output control, in reset mode, at the same addresses in
 * both modes; false: reg is none of them. */
static bool write_timing(struct sja1000 *s, unsigned int reg, uint8_t val)
{
	switch (reg) {
	case SJA_BTR0:
		s->btr0 = val;
		return true;
	case SJA_BTR1:
		s->btr1 = val;
		return true;
	case SJA_OCR:
		s->ocr = val;
		return true;
	}
	return false;
}

static void write_pelican(struct sja1000 *s, unsigned int reg, uint8_t val)
{
	bool reset = in_reset(s);

	switch (reg) {
	case SJA_MOD:
		set_mode(s, val);
		return;
	case SJA_CMR:
		command(s, val);
		return;
	case SJA_IER:
		s->ier = val;
		return;
	case SJA_RMC:
	case SJA_SR:
	case SJA_IR:
		return;
	case SJA_CDR:
		write_cdr(s, val, reset);
		return;
	}
	if (reg >= SJA_FRAME && reg < SJA_FRAME + 13) {
		if (reset) {
			if (reg < SJA_AMR0)
				s->acr[reg - SJA_ACR0] = val;
			else if (reg < SJA_AMR0 + 4)
				s->amr[reg - SJA_AMR0] = val;
		} else if (s->tx == SJA_TX_IDLE) {
			s->tx_buf[reg - SJA_FRAME] = val; /* locked while sending */
		}
		return;
	}
	if (!reset)
		return; /* the rest is writable in reset mode only */
	if (write_timing(s, reg, val))
		return;
	switch (reg) {
	case SJA_EWLR:
		s->ewlr = val;
		break;
	case SJA_RXERR:
		s->rxerr = val;
		break;
	case SJA_TXERR:
		s->txerr = val;
		break;
	case SJA_RBSA:
		s->rbsa = val % SJA1000_RX_FIFO;
		break;
	}
}

/* BasicCAN: the control register holds RR and the four interrupt
 * enables (receive, transmit, error, overrun = IER bits 0-3). */
static uint8_t read_basic(struct sja1000 *s, unsigned int reg)
{
	switch (reg) {
	case BAS_CR:
		return (uint8_t)(0x20 | (s->mod & SJA_MOD_RM) | (s->ier & 0x0f) << BAS_CR_IE_SHIFT);
	case SJA_CMR:
		return 0xff;
	case SJA_SR:
		return status(s);
	case SJA_IR:
		return (uint8_t)(0xe0 | (read_ir(s) & 0x1f));
	case BAS_ACR:
		return in_reset(s) ? s->acr[0] : 0xff;
	case BAS_AMR:
		return in_reset(s) ? s->amr[0] : 0xff;
	case SJA_BTR0:
		return s->btr0;
	case SJA_BTR1:
		return s->btr1;
	case SJA_OCR:
		return s->ocr;
	case SJA_CDR:
		return s->cdr;
	}
	if (reg >= BAS_TX && reg < BAS_TX + 10)
		return in_reset(s) ? 0xff : s->tx_buf[reg - BAS_TX];
	if (reg >= BAS_RX && reg < BAS_RX + 10)
		return s->rx_fifo[(s->rbsa + reg - BAS_RX) % SJA1000_RX_FIFO];
	return 0xff;
}

static void write_basic(struct sja1000 *s, unsigned int reg, uint8_t val)
{
	bool reset = in_reset(s);

	switch (reg) {
	case BAS_CR:
		s->ier = (uint8_t)((s->ier & 0xf0) | ((val >> BAS_CR_IE_SHIFT) & 0x0f));
		set_mode(s, (uint8_t)((s->mod & ~SJA_MOD_RM) | (val & SJA_MOD_RM)));
		return;
	case SJA_CMR:
		command(s, val & 0x0f); /* bit 4 is go-to-sleep, not SRR */
		return;
	case SJA_CDR:
		write_cdr(s, val, reset);
		return;
	}
	if (reg >= BAS_TX && reg < BAS_TX + 10) {
		if (!reset && s->tx == SJA_TX_IDLE)
			s->tx_buf[reg - BAS_TX] = val;
		return;
	}
	if (!reset)
		return;
	switch (reg) {
	case BAS_ACR:
		s->acr[0] = val;
		break;
	case BAS_AMR:
		s->amr[0] = val;
		break;
	default:
		write_timing(s, reg, val);
		break;
	}
}

uint8_t sja1000_read(struct sja1000 *s, unsigned int reg)
{
	uint8_t v;

	reg %= SJA1000_REGS;
	v = pelican(s) ? read_pelican(s, reg) : read_basic(s, reg);
	update_irq(s);
	return v;
}

void sja1000_write(struct sja1000 *s, unsigned int reg, uint8_t val)
{
	reg %= SJA1000_REGS;
	if (pelican(s))
		write_pelican(s, reg, val);
	else
		write_basic(s, reg, val);
	update_irq(s);
}

/* ---- reset, state ---- */

void sja1000_hw_reset(struct sja1000 *s)
{
	if (s->tx == SJA_TX_ON_BUS && s->host.cancel)
		s->host.cancel(s->host.ctx);
	s->mod = SJA_MOD_RM;
	s->cdr = 0;
	s->ier = s->ir = 0;
	s->btr0 = s->btr1 = s->ocr = 0;
	s->ewlr = EWL_DEFAULT;
	s->rxerr = s->txerr = 0;
	memset(s->acr, 0, sizeof(s->acr));
	memset(s->amr, 0, sizeof(s->amr));
	memset(s->tx_buf, 0, sizeof(s->tx_buf));
	memset(s->rx_fifo, 0, sizeof(s->rx_fifo));
	s->rbsa = 0;
	fifo_clear(s);
	s->bs = false;
	s->tcs = true;
	s->tx = SJA_TX_IDLE;
	s->tx_single_shot = s->tx_self = s->tx_wait_room = s->tx_wait_ir = false;
	update_irq(s);
}

void sja1000_init(struct sja1000 *s, const struct sja1000_host *host)
{
	memset(s, 0, sizeof(*s));
	s->host = *host;
	sja1000_hw_reset(s);
}

/* Record layout, version 1 of the board's record (kvaser_pci.c). */
void sja1000_save(const struct sja1000 *s, struct state_writer *w)
{
	bool sent = s->tx == SJA_TX_ON_BUS;

	state_put_u8(w, s->mod);
	state_put_u8(w, s->cdr);
	state_put_u8(w, s->ier);
	state_put_u8(w, (uint8_t)(s->ir | (sent && (s->ier & SJA_IR_TI) ? SJA_IR_TI : 0)));
	state_put_u8(w, s->btr0);
	state_put_u8(w, s->btr1);
	state_put_u8(w, s->ocr);
	state_put_u8(w, s->ewlr);
	state_put_u8(w, s->rxerr);
	state_put_u8(w, s->txerr);
	state_put_bytes(w, s->acr, 4);
	state_put_bytes(w, s->amr, 4);
	state_put_bytes(w, s->tx_buf, sizeof(s->tx_buf));
	state_put_bytes(w, s->rx_fifo, sizeof(s->rx_fifo));
	state_put_u8(w, s->rbsa);
	state_put_u8(w, s->rx_bytes);
	state_put_u8(w, s->rmc);
	state_put_bool(w, s->dos);
	state_put_bool(w, s->bs);
	state_put_bool(w, s->tcs || sent);
	/* TX: idle, or pending (requested, not on the bus: sent again after
	 * the load), with its frame. */
	state_put_u8(w, s->tx == SJA_TX_PENDING ? 1 : 0);
	state_put_bool(w, s->tx_single_shot);
	state_put_bool(w, s->tx_self);
}

int sja1000_load(struct sja1000 *s, struct state_reader *r, struct error *err)
{
	struct sja1000 n = *s;
	uint8_t tx;

	n.mod = state_get_u8(r);
	n.cdr = state_get_u8(r);
	n.ier = state_get_u8(r);
	n.ir = state_get_u8(r);
	n.btr0 = state_get_u8(r);
	n.btr1 = state_get_u8(r);
	n.ocr = state_get_u8(r);
	n.ewlr = state_get_u8(r);
	n.rxerr = state_get_u8(r);
	n.txerr = state_get_u8(r);
	state_get_bytes(r, n.acr, 4);
	state_get_bytes(r, n.amr, 4);
	state_get_bytes(r, n.tx_buf, sizeof(n.tx_buf));
	state_get_bytes(r, n.rx_fifo, sizeof(n.rx_fifo));
	n.rbsa = state_get_u8(r);
	n.rx_bytes = state_get_u8(r);
	n.rmc = state_get_u8(r);
	n.dos = state_get_bool(r);
	n.bs = state_get_bool(r);
	n.tcs = state_get_bool(r);
	tx = state_get_u8(r);
	n.tx_single_shot = state_get_bool(r);
	n.tx_self = state_get_bool(r);
	if (state_reader_done(r, err) < 0)
		return -1;
	if (n.mod & ~0x1f)
		return error_set(err, "SJA1000 mode 0x%02x has undefined bits", n.mod);
	if (n.rbsa >= SJA1000_RX_FIFO || n.rx_bytes > SJA1000_RX_FIFO || n.rmc > n.rx_bytes ||
	    (n.rmc == 0) != (n.rx_bytes == 0))
		return error_set(err, "SJA1000 receive FIFO state is inconsistent (start %u, %u bytes, "
				      "%u messages)", n.rbsa, n.rx_bytes, n.rmc);
	if (tx > 1)
		return error_set(err, "SJA1000 transmit state %u is undefined", tx);
	if (n.bs && !(n.mod & SJA_MOD_RM))
		return error_set(err, "SJA1000 bus-off outside reset mode");
	n.tx = tx ? SJA_TX_PENDING : SJA_TX_IDLE;
	if (n.tx == SJA_TX_PENDING)
		tx_buffer_frame(&n, &n.tx_msg);
	/* A pending frame is sent once the host can take it: the board
	 * calls sja1000_tx_retry() when its backend is writable. */
	n.tx_wait_room = n.tx == SJA_TX_PENDING;
	n.tx_wait_ir = false;
	n.irq_level = s->irq_level;
	*s = n;
	update_irq(s);
	return 0;
}
