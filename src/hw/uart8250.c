#include "hw/uart8250.h"

#include <string.h>

/* Register offsets and bits, as in the National PC16550D data sheet. */
#define REG_RBR_THR_DLL 0
#define REG_IER_DLM 1
#define REG_IIR_FCR 2
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5
#define REG_MSR 6
#define REG_SCR 7

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO_ENABLED 0xc0
#define FCR_ENABLE_FIFO 0x01
#define FCR_CLEAR_RCVR 0x02
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08 /* on a PC, gates the interrupt line */
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

void uart8250_init(struct uart8250 *u, void (*set_irq)(void *, int), void (*tx)(void *, uint8_t),
		   void (*rx_space)(void *), void *ctx)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	u->set_irq = set_irq;
	u->tx = tx;
	u->rx_space = rx_space;
	u->ctx = ctx;
}

static uint8_t iir(const struct uart8250 *u)
{
	uint8_t fifo = (u->fcr & FCR_ENABLE_FIFO) ? IIR_FIFO_ENABLED : 0;

	if ((u->ier & IER_RDI) && u->rx_count)
		return fifo | IIR_RDI;
	if ((u->ier & IER_THRI) && u->thre_pending)
		return fifo | IIR_THRI;
	return fifo | IIR_NO_INT;
}

/* Drives the line to match the pending state; IRQ 4 is edge-triggered,
 * so a new interrupt is a low-to-high transition. */
static void update_irq(struct uart8250 *u)
{
	int level = !(iir(u) & IIR_NO_INT) && (u->mcr & MCR_OUT2);

	if (level != u->irq_level) {
		u->irq_level = level;
		if (u->set_irq)
			u->set_irq(u->ctx, level);
	}
}

void uart8250_reset(struct uart8250 *u)
{
	int was_full;

	pthread_mutex_lock(&u->lock);
	was_full = u->rx_count == UART_RX_BUF;
	u->ier = u->lcr = u->mcr = u->scr = u->dll = u->dlm = u->fcr = 0;
	u->thre_pending = 0;
	/* What the guest had not read yet is lost with the reset, as on a
	 * real UART; the console's own buffer feeds the next boot. */
	u->rx_head = u->rx_count = 0;
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	if (was_full && u->rx_space)
		u->rx_space(u->ctx);
}

static size_t rx_push(struct uart8250 *u, const uint8_t *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n && u->rx_count < UART_RX_BUF; i++) {
		u->rx[(u->rx_head + u->rx_count) % UART_RX_BUF] = buf[i];
		u->rx_count++;
	}
	return i;
}

static uint8_t rx_pop(struct uart8250 *u, int *was_full)
{
	uint8_t c;

	*was_full = u->rx_count == UART_RX_BUF;
	if (!u->rx_count)
		return 0;
	c = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_RX_BUF;
	u->rx_count--;
	return c;
}

static uint8_t msr(const struct uart8250 *u)
{
	/* In loopback the modem inputs mirror the outputs (the driver's
	 * detection test relies on this); otherwise the line is "up". */
	if (u->mcr & MCR_LOOP)
		return (uint8_t)(((u->mcr & MCR_DTR) ? MSR_DSR : 0) |
				 ((u->mcr & MCR_RTS) ? MSR_CTS : 0) |
				 ((u->mcr & MCR_OUT1) ? MSR_RI : 0) |
				 ((u->mcr & MCR_OUT2) ? MSR_DCD : 0));
	return MSR_DCD | MSR_DSR | MSR_CTS;
}

static uint64_t uart_read(void *dev, uint64_t offset, unsigned int size)
{
	struct uart8250 *u = dev;
	uint8_t v = 0xff;
	int was_full = 0;

	(void)size;
	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case REG_RBR_THR_DLL:
		v = (u->lcr & LCR_DLAB) ? u->dll : rx_pop(u, &was_full);
		break;
	case REG_IER_DLM:
		v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
		break;
	case REG_IIR_FCR:
		v = iir(u);
		/* Reading IIR acknowledges a THR-empty interrupt. */
		if ((v & 0x0f) == IIR_THRI)
			u->thre_pending = 0;
		break;
	case REG_LCR:
		v = u->lcr;
		break;
	case REG_MCR:
		v = u->mcr;
		break;
	case REG_LSR:
		v = LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0);
		break;
	case REG_MSR:
		v = msr(u);
		break;
	case REG_SCR:
		v = u->scr;
		break;
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	if (was_full && u->rx_space)
		u->rx_space(u->ctx);
	return v;
}

static void uart_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	struct uart8250 *u = dev;
	uint8_t v = (uint8_t)value;
	int transmit = 0, was_full = u->rx_count == UART_RX_BUF;

	(void)size;
	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case REG_RBR_THR_DLL:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
		} else if (u->mcr & MCR_LOOP) {
			rx_push(u, &v, 1);
			u->thre_pending = 1;
		} else {
			transmit = 1;
			u->thre_pending = 1;
		}
		break;
	case REG_IER_DLM:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
		} else {
			/* Enabling THRI while THR is empty raises it at once. */
			if (!(u->ier & IER_THRI) && (v & IER_THRI))
				u->thre_pending = 1;
			u->ier = v & 0x0f;
		}
		break;
	case REG_IIR_FCR:
		u->fcr = v & FCR_ENABLE_FIFO;
		if (v & FCR_CLEAR_RCVR)
			u->rx_head = u->rx_count = 0;
		break;
	case REG_LCR:
		u->lcr = v;
		break;
	case REG_MCR:
		u->mcr = v & 0x1f;
		break;
	case REG_SCR:
		u->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	/* Outside the lock: the sink may block on a slow terminal. */
	if (transmit && u->tx)
		u->tx(u->ctx, v);
	/* A FIFO reset can empty a full buffer: input may flow again. */
	if (was_full && offset == REG_IIR_FCR && (v & FCR_CLEAR_RCVR) && u->rx_space)
		u->rx_space(u->ctx);
}

const struct bus_ops uart8250_ops = { .read = uart_read, .write = uart_write };

size_t uart8250_receive(struct uart8250 *u, const uint8_t *buf, size_t n)
{
	size_t done;

	pthread_mutex_lock(&u->lock);
	done = rx_push(u, buf, n);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return done;
}

size_t uart8250_rx_free(struct uart8250 *u)
{
	size_t n;

	pthread_mutex_lock(&u->lock);
	n = UART_RX_BUF - u->rx_count;
	pthread_mutex_unlock(&u->lock);
	return n;
}

void uart8250_save(struct uart8250 *u, struct state_writer *w)
{
	size_t i;

	pthread_mutex_lock(&u->lock);
	state_put_u8(w, u->ier);
	state_put_u8(w, u->lcr);
	state_put_u8(w, u->mcr);
	state_put_u8(w, u->scr);
	state_put_u8(w, u->dll);
	state_put_u8(w, u->dlm);
	state_put_u8(w, u->fcr);
	state_put_bool(w, u->thre_pending);
	state_put_u32(w, (uint32_t)u->rx_count);
	for (i = 0; i < u->rx_count; i++)
		state_put_u8(w, u->rx[(u->rx_head + i) % UART_RX_BUF]);
	pthread_mutex_unlock(&u->lock);
}

int uart8250_load(struct uart8250 *u, struct state_reader *r, struct error *err)
{
	uint8_t regs[7];
	bool thre;
	uint32_t count;
	const uint8_t *rx;

	state_get_bytes(r, regs, sizeof(regs));
	thre = state_get_bool(r);
	count = state_get_u32(r);
	if (count > UART_RX_BUF)
		return error_set(err, "receive buffer of %u bytes, more than %d", count,
				 UART_RX_BUF);
	rx = state_get_span(r, count);
	if (state_reader_done(r, err) < 0)
		return -1;
	pthread_mutex_lock(&u->lock);
	u->ier = regs[0];
	u->lcr = regs[1];
	u->mcr = regs[2];
	u->scr = regs[3];
	u->dll = regs[4];
	u->dlm = regs[5];
	u->fcr = regs[6];
	u->thre_pending = thre;
	u->rx_head = 0;
	u->rx_count = count;
	if (count)
		memcpy(u->rx, rx, count);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return 0;
}
