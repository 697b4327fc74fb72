#include "cmocka_prelude.h"

#include <string.h>

#include "hw/uart8250.h"
#include "util/le.h"

#define THR 0
#define RBR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

struct fake {
	int irq_calls, irq_level;
	int irq_history[64];
	uint8_t tx[8192];
	size_t ntx;
	int rx_space_calls;
};

static struct uart8250 u;
static struct fake f;

static void fake_set_irq(void *ctx, int level)
{
	struct fake *p = ctx;

	assert_ptr_equal(p, &f);
	/* Only real transitions are signalled. */
	assert_int_not_equal(level, p->irq_level);
	if (p->irq_calls < (int)ARRAY_LEN(p->irq_history))
		p->irq_history[p->irq_calls] = level;
	p->irq_calls++;
	p->irq_level = level;
}

static void fake_tx(void *ctx, uint8_t byte)
{
	struct fake *p = ctx;

	assert_true(p->ntx < sizeof(p->tx));
	p->tx[p->ntx++] = byte;
}

static void fake_rx_space(void *ctx)
{
	struct fake *p = ctx;

	p->rx_space_calls++;
}

static int setup(void **state)
{
	(void)state;
	memset(&f, 0, sizeof(f));
	uart8250_init(&u, fake_set_irq, fake_tx, fake_rx_space, &f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pthread_mutex_destroy(&u.lock);
	return 0;
}

static uint8_t rd(unsigned int off)
{
	uint64_t v = uart8250_ops.read(&u, off, 1);

	assert_true(v <= 0xff);
	return (uint8_t)v;
}

static void wr(unsigned int off, uint8_t v)
{
	uart8250_ops.write(&u, off, 1, v);
}

static void rx(const char *s)
{
	assert_int_equal(uart8250_receive(&u, (const uint8_t *)s, strlen(s)), strlen(s));
}

static void test_transmit(void **state)
{
	(void)state;
	assert_int_equal(rd(LSR), LSR_THRE | LSR_TEMT);
	wr(THR, 'h');
	wr(THR, 'i');
	wr(THR, 0x00);
	wr(THR, 0xff);
	assert_int_equal(f.ntx, 4);
	assert_memory_equal(f.tx, "hi\0\xff", 4);
	/* THR is always empty again at once. */
	assert_int_equal(rd(LSR), LSR_THRE | LSR_TEMT);
	/* Interrupts are off by default. */
	assert_int_equal(f.irq_calls, 0);
	assert_int_equal(rd(IIR), 0x01);
}

static void test_receive_order(void **state)
{
	(void)state;
	rx("abc");
	assert_int_equal(rd(LSR), LSR_THRE | LSR_TEMT | LSR_DR);
	assert_int_equal(rd(RBR), 'a');
	assert_int_equal(rd(LSR) & LSR_DR, LSR_DR);
	assert_int_equal(rd(RBR), 'b');
	rx("d");
	assert_int_equal(rd(RBR), 'c');
	assert_int_equal(rd(RBR), 'd');
	assert_int_equal(rd(LSR), LSR_THRE | LSR_TEMT);
	assert_int_equal(uart8250_rx_free(&u), UART_RX_BUF);
	/* Nothing was transmitted by receiving. */
	assert_int_equal(f.ntx, 0);
}

static void test_ring_wraps(void **state)
{
	uint8_t buf[3000];
	size_t i, round;

	(void)state;
	for (round = 0; round < 4; round++) {
		for (i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)(i * 13 + round);
		assert_int_equal(uart8250_receive(&u, buf, sizeof(buf)), sizeof(buf));
		for (i = 0; i < sizeof(buf); i++) {
			if (rd(RBR) != buf[i])
				fail_msg("round %zu byte %zu differs", round, i);
		}
		assert_int_equal(rd(LSR) & LSR_DR, 0);
	}
}

static void test_ier_and_scratch(void **state)
{
	(void)state;
	assert_int_equal(rd(IER), 0);
	wr(IER, 0xff);
	assert_int_equal(rd(IER), 0x0f);
	wr(IER, 0x05);
	assert_int_equal(rd(IER), 0x05);
	wr(SCR, 0x5a);
	assert_int_equal(rd(SCR), 0x5a);
	wr(SCR, 0xa5);
	assert_int_equal(rd(SCR), 0xa5);
	wr(LCR, 0x1b);
	assert_int_equal(rd(LCR), 0x1b);
	/* MCR keeps its five defined bits. */
	wr(MCR, 0xff);
	assert_int_equal(rd(MCR), 0x1f);
	/* LSR and MSR are read-only. */
	wr(MCR, 0);
	wr(LSR, 0x00);
	assert_int_equal(rd(LSR), LSR_THRE | LSR_TEMT);
	wr(MSR, 0x00);
	assert_int_equal(rd(MSR), 0xb0); /* DCD, DSR, CTS: the line is up */
}

static void test_dlab(void **state)
{
	(void)state;
	wr(IER, 0x03);
	rx("z");
	wr(LCR, 0x83); /* DLAB, 8N1 */
	wr(DLL, 0x01);
	wr(DLM, 0x02);
	assert_int_equal(rd(DLL), 0x01);
	assert_int_equal(rd(DLM), 0x02);
	assert_int_equal(rd(LCR), 0x83);
	/* With DLAB set, THR writes program the divisor, not the line. */
	assert_int_equal(f.ntx, 0);
	/* The received byte is still there. */
	assert_int_equal(rd(LSR) & LSR_DR, LSR_DR);
	wr(LCR, 0x03);
	assert_int_equal(rd(IER), 0x03);
	assert_int_equal(rd(RBR), 'z');
	wr(THR, 'q');
	assert_int_equal(f.ntx, 1);
	assert_int_equal(f.tx[0], 'q');
	/* The divisor is still latched. */
	wr(LCR, 0x80);
	assert_int_equal(rd(DLL), 0x01);
	assert_int_equal(rd(DLM), 0x02);
	wr(IER, 0x0c); /* DLM, not IER */
	wr(LCR, 0x00);
	assert_int_equal(rd(IER), 0x03);
}

static void test_loopback(void **state)
{
	(void)state;
	/* Linux's 8250 autoconfig: loopback with RTS and OUT2 must show CTS
	 * and DCD in MSR. */
	wr(MCR, MCR_LOOP | 0x0a);
	assert_int_equal(rd(MSR) & 0xf0, 0x90);
	wr(MCR, MCR_LOOP);
	assert_int_equal(rd(MSR) & 0xf0, 0x00);
	wr(MCR, MCR_LOOP | 0x0f);
	assert_int_equal(rd(MSR) & 0xf0, 0xf0);
	wr(MCR, MCR_LOOP | 0x01); /* DTR -> DSR */
	assert_int_equal(rd(MSR) & 0xf0, 0x20);
	wr(MCR, MCR_LOOP | 0x04); /* OUT1 -> RI */
	assert_int_equal(rd(MSR) & 0xf0, 0x40);

	/* Transmitted bytes come back instead of leaving. */
	wr(THR, 0x55);
	wr(THR, 0xaa);
	assert_int_equal(f.ntx, 0);
	assert_int_equal(rd(LSR) & LSR_DR, LSR_DR);
	assert_int_equal(rd(RBR), 0x55);
	assert_int_equal(rd(RBR), 0xaa);
	assert_int_equal(rd(LSR) & LSR_DR, 0);

	wr(MCR, 0);
	wr(THR, 'o');
	assert_int_equal(f.ntx, 1);
	assert_int_equal(rd(LSR) & LSR_DR, 0);
}

static void test_rx_interrupt(void **state)
{
	(void)state;
	wr(MCR, MCR_OUT2);
	wr(IER, 0x01); /* RDI */
	assert_int_equal(f.irq_calls, 0);
	assert_int_equal(rd(IIR), 0x01);
	rx("xy");
	assert_int_equal(f.irq_calls, 1);
	assert_int_equal(f.irq_level, 1);
	/* Reading IIR does not acknowledge received data. */
	assert_int_equal(rd(IIR), 0x04);
	assert_int_equal(f.irq_level, 1);
	assert_int_equal(rd(RBR), 'x');
	assert_int_equal(f.irq_level, 1);
	assert_int_equal(rd(RBR), 'y');
	assert_int_equal(f.irq_calls, 2);
	assert_int_equal(f.irq_level, 0);
	assert_int_equal(rd(IIR), 0x01);
	/* Disabling RDI drops a pending interrupt. */
	rx("z");
	assert_int_equal(f.irq_level, 1);
	wr(IER, 0);
	assert_int_equal(f.irq_level, 0);
	wr(IER, 1);
	assert_int_equal(f.irq_level, 1);
	/* Clearing OUT2 gates the line. */
	wr(MCR, 0);
	assert_int_equal(f.irq_level, 0);
	wr(MCR, MCR_OUT2);
	assert_int_equal(f.irq_level, 1);
	assert_int_equal(f.irq_calls, 7);
}

/* A system reset: registers back to zero, unread input gone, the line
 * lowered, and a reader blocked on a full buffer told there is room. */
static void test_reset(void **state)
{
	char full[UART_RX_BUF + 1];

	(void)state;
	wr(MCR, MCR_OUT2);
	wr(IER, 0x01);
	wr(LCR, 0x03);
	wr(SCR, 0x5a);
	memset(full, 'a', UART_RX_BUF);
	full[UART_RX_BUF] = 0;
	rx(full);
	assert_int_equal(f.irq_level, 1);
	assert_int_equal(uart8250_rx_free(&u), 0);
	uart8250_reset(&u);
	assert_int_equal(f.irq_level, 0);
	assert_int_equal(f.rx_space_calls, 1);
	assert_int_equal(uart8250_rx_free(&u), UART_RX_BUF);
	assert_int_equal(rd(IER), 0);
	assert_int_equal(rd(LCR), 0);
	assert_int_equal(rd(MCR), 0);
	assert_int_equal(rd(SCR), 0);
	assert_int_equal(rd(LSR) & LSR_DR, 0);
	assert_int_equal(rd(IIR), 0x01);
}

static void test_thr_interrupt(void **state)
{
	(void)state;
	wr(MCR, MCR_OUT2);
	wr(IER, 0x02); /* THRI: raised at once, THR is empty */
	assert_int_equal(f.irq_level, 1);
	assert_int_equal(rd(IIR), 0x02);
	/* Reading IIR acknowledged it. */
	assert_int_equal(f.irq_level, 0);
	assert_int_equal(rd(IIR), 0x01);
	/* Each transmitted byte raises it again. */
	wr(THR, 'a');
	assert_int_equal(f.irq_level, 1);
	assert_int_equal(rd(IIR), 0x02);
	assert_int_equal(f.irq_level, 0);
	/* Re-writing IER with THRI already set does not re-raise it. */
	wr(IER, 0x02);
	assert_int_equal(f.irq_level, 0);
	/* Turning it off and on again does. */
	wr(IER, 0x00);
	wr(IER, 0x02);
	assert_int_equal(f.irq_level, 1);
	/* With FIFOs on, IIR has its top bits set. */
	wr(FCR, 0x01);
	assert_int_equal(rd(IIR), 0xc2);
	assert_int_equal(rd(IIR), 0xc1);
	assert_int_equal(f.irq_level, 0);
	assert_int_equal(f.irq_history[0], 1);
	assert_int_equal(f.irq_history[1], 0);
}

static void test_interrupt_priority(void **state)
{
	(void)state;
	wr(MCR, MCR_OUT2);
	wr(IER, 0x03);
	rx("r");
	/* Received data first; reading IIR then does not eat THRI. */
	assert_int_equal(rd(IIR), 0x04);
	assert_int_equal(rd(IIR), 0x04);
	assert_int_equal(rd(RBR), 'r');
	assert_int_equal(f.irq_level, 1);
	assert_int_equal(rd(IIR), 0x02);
	assert_int_equal(rd(IIR), 0x01);
	assert_int_equal(f.irq_level, 0);
}

static void test_no_out2_no_irq(void **state)
{
	(void)state;
	wr(IER, 0x03);
	rx("abc");
	wr(THR, 'x');
	/* The interrupt is pending in IIR but the line stays low. */
	assert_int_equal(rd(IIR), 0x04);
	assert_int_equal(f.irq_calls, 0);
	/* OUT2 connects it. */
	wr(MCR, MCR_OUT2);
	assert_int_equal(f.irq_calls, 1);
	assert_int_equal(f.irq_level, 1);
}

static void test_rx_buffer_full(void **state)
{
	static uint8_t big[UART_RX_BUF + 904];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i % 251);
	assert_int_equal(uart8250_rx_free(&u), UART_RX_BUF);
	assert_int_equal(uart8250_receive(&u, big, sizeof(big)), UART_RX_BUF);
	assert_int_equal(uart8250_rx_free(&u), 0);
	assert_int_equal(uart8250_receive(&u, big, 10), 0);
	assert_int_equal(f.rx_space_calls, 0);
	/* Draining one byte of a full buffer signals space... */
	assert_int_equal(rd(RBR), 0);
	assert_int_equal(f.rx_space_calls, 1);
	assert_int_equal(uart8250_rx_free(&u), 1);
	/* ...once: not for every later byte. */
	assert_int_equal(rd(RBR), 1);
	assert_int_equal(f.rx_space_calls, 1);
	assert_int_equal(uart8250_receive(&u, big + 4990, 5), 2);
	assert_int_equal(uart8250_rx_free(&u), 0);
	for (i = 2; i < UART_RX_BUF; i++)
		assert_int_equal(rd(RBR), i % 251);
	assert_int_equal(rd(RBR), 4990 % 251);
	assert_int_equal(rd(RBR), 4991 % 251);
	assert_int_equal(f.rx_space_calls, 2);
	assert_int_equal(rd(LSR) & LSR_DR, 0);
	/* A DLAB read does not drain. */
	assert_int_equal(uart8250_receive(&u, big, sizeof(big)), UART_RX_BUF);
	wr(LCR, 0x80);
	rd(DLL);
	assert_int_equal(f.rx_space_calls, 2);
	assert_int_equal(uart8250_rx_free(&u), 0);
}

static void test_fcr(void **state)
{
	(void)state;
	rx("abc");
	wr(FCR, 0x01);
	assert_int_equal(rd(IIR) & 0xc0, 0xc0);
	/* Enabling the FIFO alone keeps the data. */
	assert_int_equal(rd(LSR) & LSR_DR, LSR_DR);
	wr(FCR, 0x03); /* clear the receive FIFO */
	assert_int_equal(rd(LSR) & LSR_DR, 0);
	assert_int_equal(uart8250_rx_free(&u), UART_RX_BUF);
	assert_int_equal(rd(IIR) & 0xc0, 0xc0);
	/* New data after a clear is read in order. */
	rx("de");
	assert_int_equal(rd(RBR), 'd');
	assert_int_equal(rd(RBR), 'e');
	wr(FCR, 0x00);
	assert_int_equal(rd(IIR), 0x01);
	/* A pending RX interrupt goes away with the data. */
	wr(MCR, MCR_OUT2);
	wr(IER, 0x01);
	rx("f");
	assert_int_equal(f.irq_level, 1);
	wr(FCR, 0x02);
	assert_int_equal(f.irq_level, 0);
	assert_int_equal(rd(IIR), 0x01);
}

static void test_null_callbacks(void **state)
{
	(void)state;
	/* A UART without sinks must still work. */
	uart8250_init(&u, NULL, NULL, NULL, NULL);
	wr(MCR, MCR_OUT2);
	wr(IER, 0x03);
	wr(THR, 'x');
	rx("y");
	assert_int_equal(rd(IIR), 0x04);
	assert_int_equal(rd(RBR), 'y');
	assert_int_equal(u.irq_level, 1); /* THRI still pending */
}

/* The registers and unread input go into the record and come back; a
 * record claiming more input than the buffer holds is refused. */
static void test_state(void **state)
{
	struct state_writer w;
	struct state_reader r;
	struct error err = { 0 };
	struct uart8250 other;

	(void)state;
	wr(7, 0x5a); /* scratch */
	rx("abc");
	assert_int_equal(rd(0), 'a');
	state_writer_init(&w);
	uart8250_save(&u, &w);
	uart8250_init(&other, NULL, NULL, NULL, NULL);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(uart8250_load(&other, &r, &err), 0);
	assert_int_equal(uart8250_ops.read(&other, 7, 1), 0x5a);
	assert_int_equal(uart8250_ops.read(&other, 0, 1), 'b');
	assert_int_equal(uart8250_ops.read(&other, 0, 1), 'c');
	le32_put(w.buf + 8, UART_RX_BUF + 1);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(uart8250_load(&other, &r, &err), -1);
	assert_non_null(strstr(err.msg, "receive buffer"));
	state_writer_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_transmit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_wraps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ier_and_scratch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dlab, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thr_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_priority, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_out2_no_irq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_buffer_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fcr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_null_callbacks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
