/* Sequences of port accesses against the PC devices on one bus: UART,
 * i8042, RTC, ACPI PM block and the PCI host with a dummy device. Any
 * pattern must be memory- and UB-safe and keep each device's invariants.
 *
 * Input: records of 3 bytes (op, a, b) followed, for writes, by up to 8
 * value bytes. op & 7 selects: 0-4 a device (a = offset, b = size-1 in
 * bits 0-2, write in bit 7), 5 UART input of (a | (b & 0x1f) << 8) bytes,
 * 6 any port (a | b << 8) with the size/direction in the next byte,
 * 7 advance the clocks. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "arch/x86/layout.h"
#include "hw/acpi_pm.h"
#include "hw/bus.h"
#include "hw/i8042.h"
#include "hw/pci.h"
#include "hw/rtc.h"
#include "hw/uart8250.h"

struct machine {
	struct bus bus;
	struct uart8250 uart;
	struct i8042 kbd;
	struct rtc rtc;
	struct acpi_pm pm;
	struct pci_host pci;
	struct pci_device dummy;
	struct power_control power;
	/* Read-only bits of the PCI config spaces, to check they stay put. */
	uint8_t ro_bridge[PCI_CONFIG_SPACE], ro_dummy[PCI_CONFIG_SPACE];
	int irq_level, irq_calls, rx_space_calls, power_requests, hook_calls;
	uint64_t tx_bytes;
};

static struct machine mc;
static time_t fake_time;
static uint64_t fake_ns;
static uint8_t pattern[8192];

static void set_irq(void *ctx, int level)
{
	struct machine *m = ctx;

	CHECK(level == 0 || level == 1);
	CHECK(level != m->irq_level); /* only transitions */
	m->irq_level = level;
	m->irq_calls++;
}

static void tx(void *ctx, uint8_t byte)
{
	struct machine *m = ctx;

	(void)byte;
	m->tx_bytes++;
}

static void rx_space(void *ctx)
{
	struct machine *m = ctx;

	m->rx_space_calls++;
}

static void power_request_cb(void *ctx, enum power_event ev, const char *source)
{
	struct machine *m = ctx;

	CHECK(ev == POWER_OFF || ev == POWER_RESET);
	CHECK(source != NULL);
	m->power_requests++;
}

static void config_written(struct pci_device *d, unsigned int offset, unsigned int size)
{
	CHECK(d == &mc.dummy);
	CHECK(size >= 1 && size <= 4);
	CHECK(offset + size <= PCI_CONFIG_SPACE);
	mc.hook_calls++;
}

static time_t fake_now(void)
{
	return fake_time;
}

static uint64_t fake_clock(void)
{
	return fake_ns;
}

static const struct {
	uint64_t base, len;
} ports[] = {
	{ COM1_PORT, UART_REGS }, { I8042_DATA_PORT, 5 },   { RTC_PORT, 2 },
	{ ACPI_PM_PORT, ACPI_PM_LEN }, { PCI_CONFIG_PORT, 8 },
};

static void snapshot_ro(const struct pci_device *d, uint8_t *ro)
{
	unsigned int i;

	for (i = 0; i < PCI_CONFIG_SPACE; i++)
		ro[i] = d->config[i] & (uint8_t)~d->wmask[i];
}

static void check_ro(const struct pci_device *d, const uint8_t *ro)
{
	unsigned int i;

	for (i = 0; i < PCI_CONFIG_SPACE; i++)
		CHECK((d->config[i] & (uint8_t)~d->wmask[i]) == ro[i]);
}

static void machine_init(struct machine *m)
{
	memset(m, 0, sizeof(*m));
	m->power.request = power_request_cb;
	m->power.ctx = m;
	bus_init(&m->bus, "pio");
	uart8250_init(&m->uart, set_irq, tx, rx_space, m);
	i8042_init(&m->kbd, &m->power);
	rtc_init(&m->rtc);
	m->rtc.now = fake_now;
	acpi_pm_init(&m->pm, &m->power);
	m->pm.clock_ns = fake_clock;
	pci_host_init(&m->pci, &m->power, 0xc0000000ULL, 0xfec00000ULL);
	pci_device_init(&m->dummy, 0x1af4, 0x1000, 0x020000, 1);
	pci_device_set_bar(&m->dummy, 0, 0x1000, 0);
	pci_device_set_bar(&m->dummy, 1, 0x40, PCI_BAR_IO);
	pci_device_set_bar(&m->dummy, 2, 0x100000, PCI_BAR_MEM64);
	pci_device_set_bar(&m->dummy, 4, 8ULL << 30, PCI_BAR_MEM64);
	m->dummy.config_written = config_written;
	CHECK(pci_host_add(&m->pci, &m->dummy) == 1);
	snapshot_ro(&m->pci.bridge, m->ro_bridge);
	snapshot_ro(&m->dummy, m->ro_dummy);
	CHECK(!bus_register(&m->bus, COM1_PORT, UART_REGS, "uart", &uart8250_ops, &m->uart));
	CHECK(!bus_register(&m->bus, I8042_DATA_PORT, 5, "i8042", &i8042_ops, &m->kbd));
	CHECK(!bus_register(&m->bus, RTC_PORT, 2, "rtc", &rtc_ops, &m->rtc));
	CHECK(!bus_register(&m->bus, ACPI_PM_PORT, ACPI_PM_LEN, "pm", &acpi_pm_ops, &m->pm));
	CHECK(!bus_register(&m->bus, PCI_CONFIG_PORT, 8, "pci", &pci_host_ops, &m->pci));
}

static void machine_destroy(struct machine *m)
{
	pthread_mutex_destroy(&m->uart.lock);
	pthread_mutex_destroy(&m->kbd.lock);
	pthread_mutex_destroy(&m->rtc.lock);
	pthread_mutex_destroy(&m->pm.lock);
	pthread_mutex_destroy(&m->pci.lock);
	bus_destroy(&m->bus); /* the regions are heap-allocated now */
}

static void check_invariants(struct machine *m)
{
	const struct uart8250 *u = &m->uart;

	CHECK(u->rx_count <= UART_RX_BUF);
	CHECK(u->rx_head < UART_RX_BUF);
	CHECK(u->ier <= 0x0f);
	CHECK(u->mcr <= 0x1f);
	CHECK(u->irq_level == m->irq_level);
	/* The line is high exactly when an enabled interrupt is pending and
	 * OUT2 connects it. */
	CHECK(m->irq_level == ((u->mcr & 0x08) &&
			       (((u->ier & 1) && u->rx_count) ||
				((u->ier & 2) && u->thre_pending))));
	CHECK((m->pm.pm1_cnt & 1) == 1);	 /* SCI_EN */
	CHECK((m->pm.pm1_cnt & 0x2000) == 0); /* SLP_EN reads as 0 */
	CHECK(m->rtc.index < 128);
	CHECK((m->rtc.cmos[0x0a] & 0x80) == 0);
	CHECK(m->rtc.cmos[0x0d] == 0x80);
}

static void port_access(struct machine *m, uint64_t port, unsigned int sz, int is_write,
			const uint8_t *value, size_t vlen)
{
	uint8_t buf[16];
	unsigned int i;
	size_t rx_before = m->uart.rx_count;
	uint64_t exits = 0, unclaimed = m->bus.unclaimed;
	int claimed = -1;

	for (i = 0; i < m->bus.count; i++)
		if (port - m->bus.region[i].base < m->bus.region[i].len) {
			claimed = (int)i;
			exits = m->bus.region[i].exits;
		}
	memset(buf, 0xa5, sizeof(buf));
	if (is_write)
		memcpy(buf, value, vlen < sz ? vlen : sz);
	bus_access(&m->bus, port, sz, is_write, buf);
	/* Bytes past the access are never touched. */
	for (i = sz; i < sizeof(buf); i++)
		CHECK(buf[i] == 0xa5);
	if (claimed < 0) {
		CHECK(m->bus.unclaimed == unclaimed + 1);
		if (!is_write)
			for (i = 0; i < sz; i++)
				CHECK(buf[i] == 0xff);
	} else {
		CHECK(m->bus.region[claimed].exits == exits + 1);
		CHECK(m->bus.unclaimed == unclaimed);
	}
	if (is_write && port - PCI_CONFIG_PORT < 8) {
		check_ro(&m->pci.bridge, m->ro_bridge);
		check_ro(&m->dummy, m->ro_dummy);
	}
	if (!is_write && port == COM1_PORT + 5 && !(m->uart.lcr & 0x80)) {
		/* LSR: THR always empty; DR while data waits. */
		CHECK((buf[0] & 0x60) == 0x60);
		CHECK(!!(buf[0] & 1) == (rx_before > 0));
	}
	if (port == COM1_PORT && !is_write && !(m->uart.lcr & 0x80) && rx_before)
		CHECK(m->uart.rx_count == rx_before - 1);
	if (!is_write && port == PCI_CONFIG_PORT + 4 && sz == 4 &&
	    m->pci.config_address == 0x80000000u)
		CHECK(buf[0] == 0x36 && buf[1] == 0x1b && buf[2] == 0x08 && buf[3] == 0x00);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct machine *m = &mc;
	unsigned int steps = 0;

	if (!pattern[1])
		for (size_t i = 0; i < sizeof(pattern); i++)
			pattern[i] = (uint8_t)(i * 31 + 7);
	fake_time = 1795381717; /* 2026-11-22 21:08:37 UTC */
	fake_ns = 0;
	machine_init(m);
	while (size >= 3 && steps++ < 1024) {
		uint8_t op = data[0], a = data[1], b = data[2];

		data += 3;
		size -= 3;
		switch (op & 7) {
		case 0: case 1: case 2: case 3: case 4: {
			unsigned int dev = op & 7;
			uint64_t port = ports[dev].base + a % (ports[dev].len + 1);
			unsigned int sz = (b & 7) + 1;
			int is_write = b >> 7;
			size_t vlen = 0;

			if (is_write) {
				vlen = size < sz ? size : sz;
				/* A PCI address write can be steered to an
				 * enabled config address of bus 0. */
				if (dev == 4 && (op & 0x80) && vlen == 4 && sz == 4) {
					uint8_t v[4] = { (uint8_t)(data[0] & 0xfc),
							 (uint8_t)(data[1] & 0x08), 0, 0x80 };

					port_access(m, port, sz, 1, v, 4);
					data += vlen;
					size -= vlen;
					break;
				}
			}
			port_access(m, port, sz, is_write, data, vlen);
			data += vlen;
			size -= vlen;
			break;
		}
		case 5: {
			size_t n = a | (size_t)(b & 0x1f) << 8, before = uart8250_rx_free(&m->uart);
			size_t got = uart8250_receive(&m->uart, pattern, n);

			CHECK(got == (n < before ? n : before));
			CHECK(uart8250_rx_free(&m->uart) == before - got);
			break;
		}
		case 6: {
			uint64_t port = a | (uint64_t)b << 8;
			uint8_t how = size ? data[0] : 0;
			unsigned int sz = how & 15; /* 0 and 9..15 are refused */
			int is_write = how >> 7;

			if (size) {
				data++;
				size--;
			}
			if (sz == 0 || sz > 8) {
				uint8_t buf[16];
				uint64_t unclaimed = m->bus.unclaimed;

				memset(buf, 0x5a, sizeof(buf));
				bus_access(&m->bus, port, sz, is_write, buf);
				CHECK(m->bus.unclaimed == unclaimed);
				for (unsigned int i = 0; i < sizeof(buf); i++)
					CHECK(buf[i] == 0x5a);
				break;
			}
			port_access(m, port, sz, is_write, data, size < sz ? size : sz);
			if (is_write) {
				size_t vlen = size < sz ? size : sz;

				data += vlen;
				size -= vlen;
			}
			break;
		}
		default:
			/* Clocks: nanoseconds for the PM timer, seconds for the
			 * RTC (kept within years 1970-2242). */
			fake_ns += (uint64_t)a << (b & 63);
			fake_time = (time_t)(((uint64_t)fake_time + ((uint64_t)b << (a & 31))) %
					     (1ULL << 33));
			break;
		}
		check_invariants(m);
	}
	machine_destroy(m);
	return 0;
}
