/* The Kvaser card's register interface (hw/kvaser_pci.c) and its SJA1000
 * (hw/sja1000.c) under any sequence of guest accesses and bus events. Two
 * instances: the card (not realized: no thread, no PCI host), whose BARs
 * the guest reaches with any offset and size, on a fake backend whose
 * events and answers come from the input; and a bare controller on a fake
 * bus, which also gets what only the I/O thread would call (retry after
 * -EAGAIN, confirmations, bus-off). After every step the controller's
 * invariants must hold (FIFO bounds, interrupt line = IR & IER); at the
 * end both are saved and loaded into fresh instances, which must take the
 * record.
 *
 * Input: records of one op byte and its operands:
 *   0 card read   bar(1) off(1) size(1)
 *   1 card write  bar(1) off(1) size(1) value(8)
 *   2 controller read   reg(1)
 *   3 controller write  reg(1) value(1)
 *   4 a frame from the bus (to both): id(4) flags(1) len(1) data(8)
 *   5 confirmation of the frame sent (both)
 *   6 bus-off from the bus (both)
 *   7 the bus's answer to sends from now on: 0, -EAGAIN, -ENETDOWN (1)
 *   8 the controller's bus can take more (sja1000_tx_retry)
 *   9 system reset of both
 *  10 a hostile record for the card: len(2) then len bytes (capped by
 *     what is left); loaded (or refused) and the card goes on
 *  11 the same for the bare controller */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fuzz.h"
#include "can/can_backend.h"
#include "hw/kvaser_pci.h"
#include "hw/sja1000.h"

struct fake {
	struct can_backend base;
	enum can_event ev[16];
	struct can_msg m[16];
	unsigned int head, count;
	int answer;
};

static int answer_of(uint8_t b)
{
	switch (b % 3) {
	case 0:
		return 0;
	case 1:
		return -EAGAIN;
	default:
		return -ENETDOWN;
	}
}

static int fb_send(struct can_backend *b, const struct can_msg *m)
{
	struct fake *f = (struct fake *)b;

	CHECK(can_msg_valid(m) == 0 && !(m->flags & CAN_MSG_FD));
	return f->answer;
}

static int fb_recv(struct can_backend *b, enum can_event *ev, struct can_msg *m)
{
	struct fake *f = (struct fake *)b;

	if (!f->count)
		return 0;
	*ev = f->ev[f->head];
	*m = f->m[f->head];
	f->head = (f->head + 1) % 16;
	f->count--;
	return 1;
}

static int fb_cancel(struct can_backend *b)
{
	(void)b;
	return 0;
}

static void fb_close(struct can_backend *b)
{
	(void)b;
}

static const struct can_backend_ops fb_ops = { fb_close, fb_send, fb_recv, fb_cancel };

static void fb_push(struct fake *f, enum can_event ev, const struct can_msg *m)
{
	if (f->count == 16)
		return;
	f->ev[(f->head + f->count) % 16] = ev;
	f->m[(f->head + f->count) % 16] = *m;
	f->count++;
}

/* The bare controller's bus. */
static int bus_answer;
static bool bus_irq;

static int bus_send(void *ctx, const struct can_msg *m)
{
	(void)ctx;
	CHECK(m->len <= CAN_MAX_DLEN && !(m->flags & CAN_MSG_FD));
	return bus_answer;
}

static void bus_cancel(void *ctx)
{
	(void)ctx;
}

static void bus_set_irq(void *ctx, bool level)
{
	(void)ctx;
	CHECK(level != bus_irq);
	bus_irq = level;
}

static const struct sja1000_host bus_host = { bus_send, bus_cancel, bus_set_irq, NULL, NULL };

static void check_chip(const struct sja1000 *s)
{
	CHECK(s->rbsa < SJA1000_RX_FIFO);
	CHECK(s->rx_bytes <= SJA1000_RX_FIFO);
	CHECK(s->rmc <= s->rx_bytes);
	CHECK((s->rmc == 0) == (s->rx_bytes == 0));
	CHECK(!s->bs || (s->mod & SJA_MOD_RM));
	CHECK(s->tx <= SJA_TX_ON_BUS);
	CHECK(!(s->tx_wait_room || s->tx_wait_ir) || s->tx == SJA_TX_PENDING);
}

static struct device *card_new(struct fake *f)
{
	struct kvaser_pci_env env = { 0 };
	struct error err = { 0 };

	memset(f, 0, sizeof(*f));
	f->base.ops = &fb_ops;
	f->base.rx_fd = -1;
	return kvaser_pci_create(&f->base, 0, &env, &err);
}

/* Saves a's state and loads it into a fresh card; it must be taken. */
static void round_trip_card(struct device *a)
{
	struct state_writer w;
	struct state_reader r;
	struct error err = { 0 };
	struct fake f2;
	struct device *b = card_new(&f2);

	CHECK(b);
	state_writer_init(&w);
	a->ops->save(a, &w);
	CHECK(!w.failed);
	state_reader_init(&r, w.buf, w.len);
	CHECK(b->ops->load(b, &r, &err) == 0);
	state_writer_free(&w);
	b->ops->destroy(b);
}

static void round_trip_chip(const struct sja1000 *s)
{
	struct state_writer w;
	struct state_reader r;
	struct error err = { 0 };
	struct sja1000 n;
	bool irq = bus_irq;

	state_writer_init(&w);
	sja1000_save(s, &w);
	CHECK(!w.failed);
	bus_irq = false;
	sja1000_init(&n, &bus_host);
	state_reader_init(&r, w.buf, w.len);
	CHECK(sja1000_load(&n, &r, &err) == 0);
	check_chip(&n);
	CHECK(n.rx_bytes == s->rx_bytes && n.rmc == s->rmc && n.rbsa == s->rbsa);
	CHECK(memcmp(n.rx_fifo, s->rx_fifo, sizeof(n.rx_fifo)) == 0);
	state_writer_free(&w);
	bus_irq = irq;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	struct fake f;
	struct device *card = card_new(&f);
	struct sja1000 chip;
	unsigned int steps = 0;

	CHECK(card);
	bus_answer = 0;
	bus_irq = false;
	sja1000_init(&chip, &bus_host);
	while (in.n && steps++ < 4096) {
		uint8_t op = fuzz_u8(&in) % 12;
		unsigned int bar, off, sz;
		struct can_msg m;
		uint64_t v;

		switch (op) {
		case 0:
			bar = fuzz_u8(&in) % 3;
			off = fuzz_u8(&in);
			sz = 1u << (fuzz_u8(&in) % 4);
			v = kvaser_pci_bar_read(card, bar, off, sz);
			CHECK(sz == 8 || v >> (8 * sz) == 0);
			break;
		case 1:
			bar = fuzz_u8(&in) % 3;
			off = fuzz_u8(&in);
			sz = 1u << (fuzz_u8(&in) % 4);
			kvaser_pci_bar_write(card, bar, off, sz, fuzz_take(&in, 8));
			break;
		case 2:
			sja1000_read(&chip, fuzz_u8(&in));
			break;
		case 3:
			off = fuzz_u8(&in);
			sja1000_write(&chip, off, fuzz_u8(&in));
			break;
		case 4:
			memset(&m, 0, sizeof(m));
			m.id = fuzz_u32(&in);
			m.flags = fuzz_u8(&in) & (CAN_MSG_EXT | CAN_MSG_RTR);
			m.len = fuzz_u8(&in) % (CAN_MAX_DLEN + 1);
			for (unsigned int i = 0; i < CAN_MAX_DLEN; i++)
				m.data[i] = fuzz_u8(&in);
			m.id &= (m.flags & CAN_MSG_EXT) ? 0x1fffffff : 0x7ff;
			fb_push(&f, CAN_EVENT_FRAME, &m);
			sja1000_receive(&chip, &m);
			break;
		case 5:
			memset(&m, 0, sizeof(m));
			fb_push(&f, CAN_EVENT_TX_DONE, &m);
			sja1000_tx_done(&chip);
			break;
		case 6:
			memset(&m, 0, sizeof(m));
			fb_push(&f, CAN_EVENT_BUSOFF, &m);
			sja1000_bus_off(&chip);
			break;
		case 7:
			v = fuzz_u8(&in);
			f.answer = bus_answer = answer_of((uint8_t)v);
			break;
		case 8:
			sja1000_tx_retry(&chip);
			break;
		case 9:
			card->ops->reset(card);
			sja1000_hw_reset(&chip);
			break;
		case 10:
		case 11: {
			struct state_reader r;
			struct error err = { 0 };
			size_t n = fuzz_u16(&in);

			if (n > in.n)
				n = in.n;
			state_reader_init(&r, in.p, n);
			if (op == 10)
				card->ops->load(card, &r, &err);
			else if (sja1000_load(&chip, &r, &err) == 0)
				bus_irq = chip.irq_level;
			in.p += n;
			in.n -= n;
			break;
		}
		}
		check_chip(&chip);
		CHECK(bus_irq == (((chip.ir | (chip.rmc ? SJA_IR_RI : 0)) & chip.ier) != 0));
	}
	round_trip_chip(&chip);
	round_trip_card(card);
	card->ops->destroy(card);
	return 0;
}
