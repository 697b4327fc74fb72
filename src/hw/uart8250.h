/* A 16550A-compatible UART (the PC's COM1). Transmitted bytes go to a
 * sink callback immediately, so THR is always empty; received bytes wait
 * in a buffer the guest drains through RBR. */
#ifndef VIREO_HW_UART8250_H
#define VIREO_HW_UART8250_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "hw/bus.h"
#include "util/state.h"

#define UART_RX_BUF 4096
#define UART_REGS 8

struct uart8250 {
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	int thre_pending; /* THR-empty interrupt not yet acknowledged */
	int irq_level;	  /* what we last drove on the interrupt line */
	uint8_t rx[UART_RX_BUF];
	size_t rx_head, rx_count;

	void (*set_irq)(void *ctx, int level);
	void (*tx)(void *ctx, uint8_t byte);
	/* Called when the receive buffer stops being full. */
	void (*rx_space)(void *ctx);
	void *ctx;
};

extern const struct bus_ops uart8250_ops;

void uart8250_init(struct uart8250 *u, void (*set_irq)(void *, int), void (*tx)(void *, uint8_t),
		   void (*rx_space)(void *), void *ctx);
/* Back to the power-on registers, the receive buffer emptied and the
 * interrupt line lowered (system_reset). */
void uart8250_reset(struct uart8250 *u);
/* Queues input for the guest; returns how many bytes were accepted. */
size_t uart8250_receive(struct uart8250 *u, const uint8_t *buf, size_t n);
size_t uart8250_rx_free(struct uart8250 *u);
/* The registers and the input the guest has not read (vCPUs paused). */
void uart8250_save(struct uart8250 *u, struct state_writer *w);
/* Refuses (-1, err set, u unchanged) a record uart8250_save did not write. */
int uart8250_load(struct uart8250 *u, struct state_reader *r, struct error *err);

#endif
