/* The emulated 82540EM (hw/e1000*.c) on a PCI host, an interrupt service
 * with a fake controller and a fake network backend (fake_net.h), its I/O
 * thread running as in vireo. The test plays Linux's e1000 driver: the
 * EEPROM read bit by bit through EECD, the PHY through MDIC, descriptor
 * rings in a small guest RAM, the interrupt registers; and a hostile
 * guest: rings and buffers outside RAM, heads beyond the ring, lengths
 * that do not fit. */
#include "cmocka_prelude.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake_net.h"
#include "hw/e1000.h"
#include "hw/e1000_regs.h"
#include "net/vnet_hdr.h"
#include "util/le.h"

#define RAM_SIZE (4u << 20)
#define GSI 17
#define TX_RING 0x10000u
#define RX_RING 0x20000u
#define TX_BUFS 0x40000u
#define RX_BUFS 0x100000u

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x57 };

struct fake_chip {
	int line[IRQ_LINES];
	unsigned int raised;
};

static int chip_set_line(void *chip, unsigned int gsi, int level)
{
	struct fake_chip *c = chip;

	__atomic_store_n(&c->line[gsi], level, __ATOMIC_SEQ_CST);
	if (level)
		__atomic_add_fetch(&c->raised, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static const struct irq_chip_ops chip_ops = { .set_line = chip_set_line,
					      .send_msi = fake_net_no_msi };

static unsigned int gsi_of(unsigned int slot)
{
	(void)slot;
	return GSI;
}

struct rig {
	struct fake_net_rig base; /* RAM, PCI host, interrupts, backend */
	struct fake_chip chip;
	struct device *dev;
	int slot;
	uint64_t bar;
};

static uint32_t r32(struct rig *r, uint32_t off)
{
	return (uint32_t)pci_mmio_ops.read(&r->base.host, r->bar - FAKE_NET_MMIO_START + off, 4);
}

static void w32(struct rig *r, uint32_t off, uint32_t v)
{
	pci_mmio_ops.write(&r->base.host, r->bar - FAKE_NET_MMIO_START + off, 4, v);
}

static void cfg_write16(struct rig *r, unsigned int reg, uint16_t v)
{
	fake_net_rig_cfg_write(&r->base, r->slot, reg, 2, v);
}

static int line(struct rig *r)
{
	return __atomic_load_n(&r->chip.line[GSI], __ATOMIC_SEQ_CST);
}

static uint8_t *gpa(struct rig *r, uint64_t a)
{
	return r->base.mem.host + a;
}

static struct rig *rig_new(bool vnet_hdr)
{
	struct rig *r = calloc(1, sizeof(*r));
	struct error err = { 0 };
	struct e1000_env env;
	const struct pci_device *pd;

	assert_non_null(r);
	assert_int_equal(fake_net_rig_init(&r->base, RAM_SIZE, &chip_ops, &r->chip, vnet_hdr), 0);
	env = (struct e1000_env){ .irq = &r->base.irq, .host = &r->base.host, .mem = &r->base.mem,
				  .intx_gsi = gsi_of };
	r->dev = e1000_create(&r->base.net->base, mac, 0, &env, &err);
	assert_non_null(r->dev);
	assert_int_equal(r->dev->ops->realize(r->dev, &err), 0);
	pd = e1000_pci_device(r->dev);
	assert_non_null(pd);
	r->slot = fake_net_rig_slot(&r->base, pd);
	assert_true(r->slot < PCI_MAX_DEVICES);
	r->bar = pci_bar_address(pd, 0);
	assert_true(r->bar >= FAKE_NET_MMIO_START);
	/* The driver's pci_enable_device() (I/O too on this part) and
	 * pci_set_master(). */
	cfg_write16(r, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO | PCI_COMMAND_MASTER);
	return r;
}

static void rig_free(struct rig *r)
{
	r->dev->ops->destroy(r->dev);
	irq_service_destroy(&r->base.irq);
	guest_mem_unmap(&r->base.mem);
	free(r);
}

/* Polls cond (the I/O thread's work) for up to two seconds. */
#define WAIT_FOR(cond)                                                                  \
	do {                                                                            \
		for (int waited_ = 0; !(cond) && waited_ < 2000; waited_++)             \
			usleep(1000);                                                   \
		assert_true(cond);                                                      \
	} while (0)

/* ---- EEPROM ---- */

static void ee_write(struct rig *r, uint32_t *eecd)
{
	w32(r, E1000_EECD, *eecd);
}

static void ee_clock(struct rig *r, uint32_t *eecd)
{
	*eecd |= E1000_EECD_SK;
	ee_write(r, eecd);
	*eecd &= ~(uint32_t)E1000_EECD_SK;
	ee_write(r, eecd);
}

static void ee_shift_out(struct rig *r, uint32_t *eecd, uint16_t data, unsigned int bits)
{
	while (bits--) {
		if (data & (1u << bits))
			*eecd |= E1000_EECD_DI;
		else
			*eecd &= ~(uint32_t)E1000_EECD_DI;
		ee_write(r, eecd);
		ee_clock(r, eecd);
	}
	*eecd &= ~(uint32_t)E1000_EECD_DI;
	ee_write(r, eecd);
}

/* One word read as Linux's e1000_read_eeprom() does on a Microwire part:
 * request and grant, chip select, opcode 110 and the address, 16 bits
 * clocked out, standby. */
static uint16_t ee_read_word(struct rig *r, unsigned int addr)
{
	uint32_t eecd = r32(r, E1000_EECD);
	uint16_t v = 0;
	unsigned int i;

	assert_true(eecd & E1000_EECD_PRES);
	eecd |= E1000_EECD_REQ;
	ee_write(r, &eecd);
	assert_true(r32(r, E1000_EECD) & E1000_EECD_GNT);
	eecd &= ~(uint32_t)(E1000_EECD_DI | E1000_EECD_SK);
	ee_write(r, &eecd);
	eecd |= E1000_EECD_CS;
	ee_write(r, &eecd);
	ee_shift_out(r, &eecd, 0x6, 3);
	ee_shift_out(r, &eecd, (uint16_t)addr, 6);
	for (i = 0; i < 16; i++) {
		eecd |= E1000_EECD_SK;
		ee_write(r, &eecd);
		v = (uint16_t)(v << 1 | !!(r32(r, E1000_EECD) & E1000_EECD_DO));
		eecd &= ~(uint32_t)E1000_EECD_SK;
		ee_write(r, &eecd);
	}
	/* Release: chip select and request down. */
	eecd &= ~(uint32_t)(E1000_EECD_CS | E1000_EECD_DI | E1000_EECD_REQ);
	ee_write(r, &eecd);
	return v;
}

static void test_eeprom_image(void **state)
{
	struct e1000_eeprom ee;

	(void)state;
	e1000_eeprom_init(&ee, mac);
	assert_int_equal(e1000_eeprom_sum(&ee), E1000_EEPROM_SUM);
	assert_int_equal(ee.data[0], 0x5452);
	assert_int_equal(ee.data[1], 0x1200);
	assert_int_equal(ee.data[2], 0x5734);
	assert_int_equal(ee.data[0x0d], E1000_DEVICE_82540EM);
	assert_int_equal(ee.data[0x0e], E1000_VENDOR);
	assert_true(e1000_eeprom_state_valid(&ee));
}

static void test_eeprom_microwire_and_eerd(void **state)
{
	struct rig *r = rig_new(false);
	uint16_t words[E1000_EEPROM_WORDS], sum = 0;
	unsigned int i;

	(void)state;
	for (i = 0; i < E1000_EEPROM_WORDS; i++) {
		words[i] = ee_read_word(r, i);
		sum = (uint16_t)(sum + words[i]);
	}
	assert_int_equal(sum, E1000_EEPROM_SUM);
	assert_int_equal(words[0], mac[0] | mac[1] << 8);
	assert_int_equal(words[2], mac[4] | mac[5] << 8);
	/* EERD gives the same words. */
	for (i = 0; i < E1000_EEPROM_WORDS; i += 7) {
		uint32_t v;

		w32(r, E1000_EERD, i << E1000_EERD_ADDR_SHIFT | E1000_EERD_START);
		v = r32(r, E1000_EERD);
		assert_true(v & E1000_EERD_DONE);
		assert_int_equal(v >> E1000_EERD_DATA_SHIFT, words[i]);
	}
	/* A command that is not a read (erase, 111) makes DO stay low. */
	{
		uint32_t eecd = E1000_EECD_CS;

		ee_write(r, &eecd);
		ee_shift_out(r, &eecd, 0x7, 3);
		ee_shift_out(r, &eecd, 0, 6);
		for (i = 0; i < 16; i++) {
			ee_clock(r, &eecd);
			assert_false(r32(r, E1000_EECD) & E1000_EECD_DO);
		}
	}
	rig_free(r);
}

/* ---- PHY ---- */

static uint32_t mdic(struct rig *r, uint32_t phy, uint32_t reg, uint32_t op, uint16_t data)
{
	w32(r, E1000_MDIC, phy << E1000_MDIC_PHY_SHIFT | reg << E1000_MDIC_REG_SHIFT | op | data);
	return r32(r, E1000_MDIC);
}

static void test_phy(void **state)
{
	struct rig *r = rig_new(false);
	uint32_t v;

	(void)state;
	v = mdic(r, 1, PHY_ID1, E1000_MDIC_OP_READ, 0);
	assert_true(v & E1000_MDIC_READY);
	assert_false(v & E1000_MDIC_ERROR);
	assert_int_equal(v & 0xffff, 0x0141);
	assert_int_equal(mdic(r, 1, PHY_ID2, E1000_MDIC_OP_READ, 0) & 0xfff0, 0x0c20);
	v = mdic(r, 1, PHY_STATUS, E1000_MDIC_OP_READ, 0);
	assert_true(v & PHY_STATUS_LINK);
	assert_true(v & PHY_STATUS_AN_COMPLETE);
	/* Writes: advertisement kept, status read-only, restart self-clears. */
	mdic(r, 1, PHY_AUTONEG_ADV, E1000_MDIC_OP_WRITE, 0x01e1);
	assert_int_equal(mdic(r, 1, PHY_AUTONEG_ADV, E1000_MDIC_OP_READ, 0) & 0xffff, 0x01e1);
	mdic(r, 1, PHY_STATUS, E1000_MDIC_OP_WRITE, 0);
	assert_true(mdic(r, 1, PHY_STATUS, E1000_MDIC_OP_READ, 0) & PHY_STATUS_LINK);
	mdic(r, 1, PHY_CTRL, E1000_MDIC_OP_WRITE, 0x1000 | PHY_CTRL_RESTART_AN | PHY_CTRL_RESET);
	assert_int_equal(mdic(r, 1, PHY_CTRL, E1000_MDIC_OP_READ, 0) & 0xffff, 0x1000);
	/* Another PHY address, or no operation: error. */
	assert_true(mdic(r, 2, PHY_ID1, E1000_MDIC_OP_READ, 0) & E1000_MDIC_ERROR);
	assert_true(mdic(r, 1, PHY_ID1, 0, 0) & E1000_MDIC_ERROR);
	/* The MAC says the link is up, full duplex, 1000 Mb/s. */
	v = r32(r, E1000_STATUS);
	assert_true(v & E1000_STATUS_LU);
	assert_true(v & E1000_STATUS_FD);
	assert_int_equal(v & 0xc0, E1000_STATUS_SPEED_1000);
	rig_free(r);
}

/* ---- transmit ---- */

static void tx_ring_setup(struct rig *r, unsigned int n)
{
	memset(gpa(r, TX_RING), 0, 16 * n);
	w32(r, E1000_TDBAL, TX_RING);
	w32(r, E1000_TDBAH, 0);
	w32(r, E1000_TDLEN, 16 * n);
	w32(r, E1000_TDH, 0);
	w32(r, E1000_TDT, 0);
	w32(r, E1000_TCTL, E1000_TCTL_EN);
}

static void put_desc(struct rig *r, uint64_t ring, unsigned int i, uint64_t addr, uint32_t lower,
		     uint32_t upper)
{
	uint8_t *d = gpa(r, ring + 16 * i);

	le64_put(d, addr);
	le32_put(d + 8, lower);
	le32_put(d + 12, upper);
}

static void make_frame(uint8_t *f, size_t len, unsigned int seed)
{
	size_t i;

	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	be16_put(f + 12, 0x88b5); /* local experimental */
	for (i = 14; i < len; i++)
		f[i] = (uint8_t)(i * 7 + seed);
}

static void test_tx_legacy(void **state)
{
	struct rig *r = rig_new(false);
	uint8_t *f = gpa(r, TX_BUFS);

	(void)state;
	tx_ring_setup(r, 8);
	w32(r, E1000_IMS, E1000_ICR_TXDW);
	make_frame(f, 100, 1);
	/* In two pieces: 40 bytes, then the rest with EOP and RS. */
	put_desc(r, TX_RING, 0, TX_BUFS, 40, 0);
	put_desc(r, TX_RING, 1, TX_BUFS + 40,
		 60 | E1000_TXD_CMD_EOP | E1000_TXD_CMD_IFCS | E1000_TXD_CMD_RS, 0);
	assert_int_equal(line(r), 0);
	w32(r, E1000_TDT, 2);
	assert_int_equal(r32(r, E1000_TDH), 2);
	assert_int_equal(fake_net_sent(r->base.net), 1);
	assert_int_equal(r->base.net->sent_len[0], 100);
	assert_memory_equal(r->base.net->sent[0], f, 100);
	/* Written back: DD on the descriptor with RS only. */
	assert_false(gpa(r, TX_RING)[12] & E1000_TXD_STAT_DD);
	assert_true(gpa(r, TX_RING + 16)[12] & E1000_TXD_STAT_DD);
	assert_int_equal(line(r), 1);
	assert_true(r32(r, E1000_ICR) & E1000_ICR_TXDW);
	assert_int_equal(line(r), 0); /* reading ICR acknowledged it */
	/* Statistics: one good packet, cleared on read. */
	assert_int_equal(r32(r, E1000_GPTC), 1);
	assert_int_equal(r32(r, E1000_GPTC), 0);
	rig_free(r);
}

static void test_tx_vnet_header_and_vlan(void **state)
{
	struct rig *r = rig_new(true);
	uint8_t *f = gpa(r, TX_BUFS);
	const uint8_t *s;

	(void)state;
	assert_true(r->base.net->offloads_set > 0); /* whole frames asked of the tap */
	tx_ring_setup(r, 8);
	make_frame(f, 64, 2);
	w32(r, E1000_CTRL, r32(r, E1000_CTRL) | E1000_CTRL_VME);
	put_desc(r, TX_RING, 0, TX_BUFS, 64 | E1000_TXD_CMD_EOP | E1000_TXD_CMD_VLE, 0x0123u << 16);
	w32(r, E1000_TDT, 1);
	assert_int_equal(fake_net_sent(r->base.net), 1);
	s = r->base.net->sent[0];
	/* A zero virtio header (nothing left to offload), the tag inserted. */
	assert_int_equal(r->base.net->sent_len[0], VNET_HDR_LEN + 68);
	for (unsigned int i = 0; i < VNET_HDR_LEN; i++)
		assert_int_equal(s[i], 0);
	s += VNET_HDR_LEN;
	assert_memory_equal(s, f, 12);
	assert_int_equal(be16_get(s + 12), 0x8100);
	assert_int_equal(be16_get(s + 14), 0x0123);
	assert_memory_equal(s + 16, f + 12, 52);
	rig_free(r);
}

/* An IPv4/TCP frame as Linux's e1000_tso() leaves it: total length and
 * IP checksum zero, the TCP checksum the pseudo-header's without length. */
static size_t make_tcp_frame(uint8_t *f, size_t payload)
{
	uint8_t *ip = f + 14, *tcp = ip + 20;
	uint32_t sum;
	size_t i;

	memset(f, 0, 54);
	memset(f, 0x02, 6);
	memcpy(f + 6, mac, 6);
	be16_put(f + 12, 0x0800);
	ip[0] = 0x45;
	be16_put(ip + 4, 0x1000); /* id */
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, (uint8_t[]){ 10, 0, 2, 15 }, 4);
	memcpy(ip + 16, (uint8_t[]){ 10, 0, 2, 2 }, 4);
	be16_put(tcp, 40000);
	be16_put(tcp + 2, 5001);
	be32_put(tcp + 4, 1000); /* seq */
	tcp[12] = 5 << 4;
	tcp[13] = 0x18 | 0x01; /* PSH ACK FIN */
	sum = e1000_csum_add(0, ip + 12, 8) + 6;
	be16_put(tcp + 16, e1000_csum_fold(sum));
	for (i = 0; i < payload; i++)
		f[54 + i] = (uint8_t)(i * 13 + 5);
	return 54 + payload;
}

static bool ip_csum_ok(const uint8_t *ip)
{
	return e1000_csum_fold(e1000_csum_add(0, ip, 20)) == 0xffff;
}

static bool tcp_csum_ok(const uint8_t *ip, size_t l4len)
{
	uint32_t sum = e1000_csum_add(0, ip + 12, 8) + 6 + (uint32_t)l4len;

	return e1000_csum_fold(e1000_csum_add(sum, ip + 20, l4len)) == 0xffff;
}

static void test_tx_tso(void **state)
{
	struct rig *r = rig_new(false);
	uint8_t *f = gpa(r, TX_BUFS), ctx[16] = { 0 };
	size_t len = make_tcp_frame(f, 2500);
	unsigned int k;

	(void)state;
	tx_ring_setup(r, 8);
	/* Context: IP at 14 (checksum at 24, to 33), TCP at 34 (checksum
	 * at 50), TSE with MSS 1000 and 54 bytes of headers. */
	ctx[0] = 14;
	ctx[1] = 24;
	le16_put(ctx + 2, 33);
	ctx[4] = 34;
	ctx[5] = 50;
	le32_put(ctx + 8, 2500 | E1000_TXD_CMD_DEXT | E1000_TXD_CMD_TSE | E1000_TXD_TUCMD_IP |
				  E1000_TXD_TUCMD_TCP | E1000_TXD_CMD_RS);
	ctx[13] = 54;
	le16_put(ctx + 14, 1000);
	memcpy(gpa(r, TX_RING), ctx, 16);
	/* Data: headers, then the payload, one TSO frame. */
	put_desc(r, TX_RING, 1, TX_BUFS,
		 54 | E1000_TXD_CMD_DEXT | E1000_TXD_DTYP_D | E1000_TXD_CMD_TSE,
		 (E1000_TXD_POPTS_IXSM | E1000_TXD_POPTS_TXSM) << 8);
	put_desc(r, TX_RING, 2, TX_BUFS + 54,
		 (uint32_t)(len - 54) | E1000_TXD_CMD_DEXT | E1000_TXD_DTYP_D |
			 E1000_TXD_CMD_TSE | E1000_TXD_CMD_EOP | E1000_TXD_CMD_RS, 0);
	w32(r, E1000_TDT, 3);
	assert_int_equal(fake_net_sent(r->base.net), 3);
	for (k = 0; k < 3; k++) {
		const uint8_t *s = r->base.net->sent[k], *ip = s + 14, *tcp = ip + 20;
		size_t pay = k < 2 ? 1000 : 500;

		assert_int_equal(r->base.net->sent_len[k], 54 + pay);
		assert_int_equal(be16_get(ip + 2), 40 + pay);
		assert_int_equal(be16_get(ip + 4), 0x1000 + k);
		assert_true(ip_csum_ok(ip));
		assert_int_equal(be32_get(tcp + 4), 1000 + 1000 * k);
		/* FIN and PSH on the last segment only. */
		assert_int_equal(tcp[13] & 0x09, k == 2 ? 0x09 : 0);
		assert_true(tcp_csum_ok(ip, 20 + pay));
		assert_memory_equal(s + 54, f + 54 + 1000 * k, pay);
	}
	assert_true(gpa(r, TX_RING + 32)[12] & E1000_TXD_STAT_DD);
	rig_free(r);
}

static void test_tx_checksum_offload(void **state)
{
	struct rig *r = rig_new(false);
	uint8_t *f = gpa(r, TX_BUFS), ctx[16] = { 0 };
	size_t len = make_tcp_frame(f, 301);
	uint8_t *ip = f + 14;
	uint32_t sum;

	(void)state;
	/* What CHECKSUM_PARTIAL leaves: a whole IP header, the pseudo sum
	 * with the length in the TCP checksum field. */
	be16_put(ip + 2, (uint16_t)(len - 14));
	be16_put(ip + 10, 0);
	be16_put(ip + 10, (uint16_t)~e1000_csum_fold(e1000_csum_add(0, ip, 20)));
	sum = e1000_csum_add(0, ip + 12, 8) + 6 + (uint32_t)(len - 34);
	be16_put(f + 50, e1000_csum_fold(sum));
	tx_ring_setup(r, 8);
	ctx[4] = 34;
	ctx[5] = 50;
	le32_put(ctx + 8, E1000_TXD_CMD_DEXT | E1000_TXD_TUCMD_TCP);
	memcpy(gpa(r, TX_RING), ctx, 16);
	put_desc(r, TX_RING, 1, TX_BUFS,
		 (uint32_t)len | E1000_TXD_CMD_DEXT | E1000_TXD_DTYP_D | E1000_TXD_CMD_EOP,
		 E1000_TXD_POPTS_TXSM << 8);
	w32(r, E1000_TDT, 2);
	assert_int_equal(fake_net_sent(r->base.net), 1);
	assert_int_equal(r->base.net->sent_len[0], len);
	assert_true(tcp_csum_ok(r->base.net->sent[0] + 14, len - 34));
	rig_free(r);
}

static void test_tx_ring_wrap(void **state)
{
	struct rig *r = rig_new(false);
	unsigned int i, tail = 0;

	(void)state;
	tx_ring_setup(r, 8);
	/* 20 frames through an 8-entry ring, 3 at a time. */
	for (i = 0; i < 20; i++) {
		make_frame(gpa(r, TX_BUFS + 128 * i), 80, i);
		put_desc(r, TX_RING, tail, TX_BUFS + 128 * i,
			 80 | E1000_TXD_CMD_EOP | E1000_TXD_CMD_RS, 0);
		tail = (tail + 1) % 8;
		if (i % 3 == 2 || i == 19)
			w32(r, E1000_TDT, tail);
	}
	assert_int_equal(r32(r, E1000_TDH), 20 % 8);
	assert_int_equal(fake_net_sent(r->base.net), 20);
	for (i = 0; i < 20; i++)
		assert_int_equal(r->base.net->sent[i][14], (uint8_t)(14 * 7 + i));
	rig_free(r);
}

/* ---- receive ---- */

static void rx_ring_setup(struct rig *r, unsigned int n, uint32_t rctl)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		put_desc(r, RX_RING, i, RX_BUFS + 2048 * i, 0, 0);
	w32(r, E1000_RDBAL, RX_RING);
	w32(r, E1000_RDBAH, 0);
	w32(r, E1000_RDLEN, 16 * n);
	w32(r, E1000_RDH, 0);
	w32(r, E1000_RDT, n - 1); /* all but one, as Linux gives them */
	w32(r, E1000_RCTL, E1000_RCTL_EN | E1000_RCTL_BAM | rctl);
}

static void unicast_frame(uint8_t *f, size_t len, unsigned int seed)
{
	make_frame(f, len, seed);
	memcpy(f, mac, 6);
	memset(f + 6, 0x02, 6);
}

static void test_rx_into_ring(void **state)
{
	struct rig *r = rig_new(false);
	uint8_t f[1514];
	const uint8_t *d;

	(void)state;
	w32(r, E1000_IMS, E1000_ICR_RXT0);
	rx_ring_setup(r, 8, 0);
	unicast_frame(f, sizeof(f), 3);
	assert_true(fake_net_push(r->base.net, f, sizeof(f)));
	WAIT_FOR(r32(r, E1000_RDH) == 1);
	d = gpa(r, RX_RING);
	/* The frame and its FCS (the driver takes 4 bytes off). */
	assert_int_equal(le16_get(d + 8), sizeof(f) + 4);
	assert_int_equal(d[12] & (E1000_RXD_STAT_DD | E1000_RXD_STAT_EOP),
			 E1000_RXD_STAT_DD | E1000_RXD_STAT_EOP);
	assert_memory_equal(gpa(r, RX_BUFS), f, sizeof(f));
	WAIT_FOR(line(r) == 1);
	assert_true(r32(r, E1000_ICR) & E1000_ICR_RXT0);
	assert_int_equal(line(r), 0);
	assert_int_equal(r32(r, E1000_GPRC), 1);

	/* A frame for another MAC is filtered; a short one is padded to 60. */
	f[5] ^= 0x40;
	assert_true(fake_net_push(r->base.net, f, 42));
	unicast_frame(f, 42, 4);
	assert_true(fake_net_push(r->base.net, f, 42));
	WAIT_FOR(r32(r, E1000_RDH) == 2);
	assert_int_equal(le16_get(gpa(r, RX_RING + 16) + 8), 64);
	assert_memory_equal(gpa(r, RX_BUFS + 2048), f, 42);
	rig_free(r);
}

static void test_rx_waits_for_descriptors_and_wraps(void **state)
{
	struct rig *r = rig_new(true); /* with a vnet header, stripped */
	uint8_t f[VNET_HDR_LEN + 200];
	unsigned int i, seen = 0, head;

	(void)state;
	rx_ring_setup(r, 8, 0); /* 7 descriptors for the card */
	memset(f, 0, VNET_HDR_LEN);
	for (i = 0; i < 20; i++) {
		unicast_frame(f + VNET_HDR_LEN, 200, i);
		assert_true(fake_net_push(r->base.net, f, sizeof(f)));
	}
	WAIT_FOR(r32(r, E1000_RDH) == 7);
	usleep(20000);
	assert_int_equal(r32(r, E1000_RDH), 7); /* nothing more without buffers */
	/* The driver takes each frame and gives its buffer back. */
	head = 0;
	while (seen < 20) {
		uint8_t *d = gpa(r, RX_RING + 16 * head);

		WAIT_FOR(d[12] & E1000_RXD_STAT_DD);
		assert_int_equal(le16_get(d + 8), 204);
		assert_int_equal(gpa(r, RX_BUFS + 2048 * head)[14], (uint8_t)(14 * 7 + seen));
		d[12] = 0;
		w32(r, E1000_RDT, head); /* the old tail slot becomes the card's */
		head = (head + 1) % 8;
		seen++;
	}
	rig_free(r);
}

static void test_rx_jumbo_spans_descriptors(void **state)
{
	struct rig *r = rig_new(false);
	static uint8_t f[5000];

	(void)state;
	rx_ring_setup(r, 8, E1000_RCTL_LPE);
	unicast_frame(f, sizeof(f), 9);
	assert_true(fake_net_push(r->base.net, f, sizeof(f)));
	WAIT_FOR(r32(r, E1000_RDH) == 3);
	assert_int_equal(le16_get(gpa(r, RX_RING) + 8), 2048);
	assert_false(gpa(r, RX_RING)[12] & E1000_RXD_STAT_EOP);
	assert_int_equal(le16_get(gpa(r, RX_RING + 32) + 8), 5004 - 4096);
	assert_true(gpa(r, RX_RING + 32)[12] & E1000_RXD_STAT_EOP);
	assert_memory_equal(gpa(r, RX_BUFS), f, 4096);
	assert_memory_equal(gpa(r, RX_BUFS + 4096), f + 4096, sizeof(f) - 4096);
	/* Without LPE, the same frame is too long and dropped. */
	w32(r, E1000_RCTL, E1000_RCTL_EN);
	assert_true(fake_net_push(r->base.net, f, sizeof(f)));
	unicast_frame(f, 100, 1);
	assert_true(fake_net_push(r->base.net, f, 100));
	WAIT_FOR(r32(r, E1000_RDH) == 4);
	assert_int_equal(le16_get(gpa(r, RX_RING + 48) + 8), 104);
	rig_free(r);
}

/* ---- interrupts ---- */

static void test_interrupt_mask_and_causes(void **state)
{
	struct rig *r = rig_new(false);

	(void)state;
	w32(r, E1000_ICS, E1000_ICR_LSC);
	assert_int_equal(line(r), 0); /* masked */
	w32(r, E1000_IMS, E1000_ICR_LSC);
	assert_int_equal(r32(r, E1000_IMS), E1000_ICR_LSC);
	assert_int_equal(line(r), 1);
	w32(r, E1000_IMC, E1000_ICR_LSC);
	assert_int_equal(line(r), 0);
	w32(r, E1000_IMS, E1000_ICR_LSC);
	assert_int_equal(line(r), 1);
	/* Interrupt Disable in the command register holds it low. */
	cfg_write16(r, PCI_COMMAND, PCI_COMMAND_MEMORY | 0x4 | 0x400);
	assert_int_equal(line(r), 0);
	cfg_write16(r, PCI_COMMAND, PCI_COMMAND_MEMORY | 0x4);
	assert_int_equal(line(r), 1);
	assert_int_equal(r32(r, E1000_ICR), E1000_ICR_LSC);
	assert_int_equal(line(r), 0);
	assert_int_equal(r32(r, E1000_ICR), 0);
	/* CTRL.RST masks everything again. */
	w32(r, E1000_CTRL, E1000_CTRL_RST);
	assert_int_equal(r32(r, E1000_IMS), 0);
	assert_int_equal(r32(r, E1000_CTRL) & E1000_CTRL_RST, 0);
	rig_free(r);
}

static void test_interrupt_throttling(void **state)
{
	struct rig *r = rig_new(false);
	struct timespec t0, t1;
	long ms;

	(void)state;
	w32(r, E1000_ITR, 40000); /* 40000 x 256 ns: about 10 ms apart */
	w32(r, E1000_IMS, E1000_ICR_LSC);
	w32(r, E1000_ICS, E1000_ICR_LSC);
	assert_int_equal(line(r), 1); /* the first one at once */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r32(r, E1000_ICR);
	assert_int_equal(line(r), 0);
	w32(r, E1000_ICS, E1000_ICR_LSC);
	assert_int_equal(line(r), 0); /* the next one waits */
	WAIT_FOR(line(r) == 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 8);
	rig_free(r);
}

/* ---- a hostile guest ---- */

static void test_hostile_descriptors(void **state)
{
	struct rig *r = rig_new(false);
	uint8_t f[200];

	(void)state;
	/* Transmit ring beyond RAM, head and tail beyond the ring. */
	w32(r, E1000_TDBAL, 0xfffffff0);
	w32(r, E1000_TDBAH, 0xffffffff);
	w32(r, E1000_TDLEN, 0x80);
	w32(r, E1000_TCTL, E1000_TCTL_EN);
	w32(r, E1000_TDT, 3);
	assert_int_equal(r32(r, E1000_TDH), 0);
	w32(r, E1000_TDBAL, TX_RING);
	w32(r, E1000_TDBAH, 0);
	w32(r, E1000_TDT, 9000);
	assert_int_equal(r32(r, E1000_TDH), 0);
	/* Buffers outside RAM, over its end, a length wrapping the address. */
	w32(r, E1000_TDT, 0);
	put_desc(r, TX_RING, 0, RAM_SIZE - 8, 100 | E1000_TXD_CMD_EOP | E1000_TXD_CMD_RS, 0);
	put_desc(r, TX_RING, 1, ~0ull - 10, 0xffff | E1000_TXD_CMD_EOP, 0);
	put_desc(r, TX_RING, 2, TX_BUFS,
		 0xfffff | E1000_TXD_CMD_DEXT | E1000_TXD_DTYP_D | E1000_TXD_CMD_EOP, 0);
	/* A TSO context whose offsets lie beyond its headers. */
	put_desc(r, TX_RING, 3, 0x00ffffff, 0 | E1000_TXD_CMD_DEXT | E1000_TXD_CMD_TSE, 0xfe000000);
	make_frame(gpa(r, TX_BUFS), 60, 0);
	put_desc(r, TX_RING, 4, TX_BUFS,
		 60 | E1000_TXD_CMD_DEXT | E1000_TXD_DTYP_D | E1000_TXD_CMD_TSE |
			 E1000_TXD_CMD_EOP, 3 << 8);
	w32(r, E1000_TDT, 5);
	assert_int_equal(r32(r, E1000_TDH), 5);
	assert_int_equal(fake_net_sent(r->base.net), 1); /* only the last, whole */
	assert_true(gpa(r, TX_RING)[12] & E1000_TXD_STAT_DD);

	/* Receive: a ring of zero length (the frame waits), a ring outside
	 * RAM (the frame is dropped), buffers outside RAM or null (the data
	 * is skipped, the descriptors written): RAM outside them intact. */
	w32(r, E1000_RCTL, E1000_RCTL_EN | E1000_RCTL_UPE);
	unicast_frame(f, sizeof(f), 1);
	assert_true(fake_net_push(r->base.net, f, sizeof(f)));
	usleep(20000);
	assert_int_equal(r->base.net->rxq_count, 1);
	w32(r, E1000_RDBAL, 0xfffff000);
	w32(r, E1000_RDBAH, 0x7fffffff);
	w32(r, E1000_RDLEN, 0x80);
	w32(r, E1000_RDT, 5);
	WAIT_FOR(__atomic_load_n(&r->base.net->rxq_count, __ATOMIC_SEQ_CST) == 0);
	put_desc(r, RX_RING, 0, RAM_SIZE - 16, 0, 0);
	put_desc(r, RX_RING, 1, ~0ull - 100, 0, 0);
	put_desc(r, RX_RING, 2, 0, 0, 0);
	w32(r, E1000_RDBAL, RX_RING);
	w32(r, E1000_RDBAH, 0);
	w32(r, E1000_RDH, 0);
	w32(r, E1000_RDT, 4);
	assert_true(fake_net_push(r->base.net, f, sizeof(f)));
	assert_true(fake_net_push(r->base.net, f, sizeof(f)));
	assert_true(fake_net_push(r->base.net, f, sizeof(f)));
	WAIT_FOR(r32(r, E1000_RDH) == 3);
	assert_true(gpa(r, RX_RING + 32)[12] & E1000_RXD_STAT_DD);
	rig_free(r);
}

/* ---- snapshots ---- */

static void test_save_load(void **state)
{
	struct rig *a = rig_new(false), *b = rig_new(false);
	struct state_writer w;
	struct state_reader rd;
	struct error err = { 0 };
	uint8_t f[100];

	(void)state;
	tx_ring_setup(a, 8);
	rx_ring_setup(a, 8, 0);
	w32(a, E1000_IMS, E1000_ICR_RXT0 | E1000_ICR_LSC);
	w32(a, E1000_ICS, E1000_ICR_LSC);
	assert_int_equal(line(a), 1);
	assert_int_equal(a->dev->ops->pause(a->dev, &err), 0);
	state_writer_init(&w);
	a->dev->ops->save(a->dev, &w);
	assert_false(w.failed);
	assert_int_equal(b->dev->ops->pause(b->dev, &err), 0);
	memcpy(b->base.mem.host, a->base.mem.host, RAM_SIZE);
	/* A truncated record is refused and changes nothing. */
	state_reader_init(&rd, w.buf, w.len - 1);
	assert_int_equal(b->dev->ops->load(b->dev, &rd, &err), -1);
	assert_int_equal(r32(b, E1000_IMS), 0);
	err.set = false;
	state_reader_init(&rd, w.buf, w.len);
	assert_int_equal(b->dev->ops->load(b->dev, &rd, &err), 0);
	b->dev->ops->resume(b->dev);
	assert_int_equal(line(b), 1);
	assert_int_equal(r32(b, E1000_IMS), E1000_ICR_RXT0 | E1000_ICR_LSC);
	assert_int_equal(r32(b, E1000_RDT), 7);
	/* The loaded card receives into the ring the first one set up. */
	assert_true(r32(b, E1000_ICR) & E1000_ICR_LSC);
	unicast_frame(f, sizeof(f), 5);
	assert_true(fake_net_push(b->base.net, f, sizeof(f)));
	WAIT_FOR(r32(b, E1000_RDH) == 1);
	assert_memory_equal(gpa(b, RX_BUFS), f, sizeof(f));
	state_writer_free(&w);
	a->dev->ops->resume(a->dev);
	rig_free(a);
	rig_free(b);
}

/* BAR 1: IOADDR selects a register, IODATA reaches it (what Linux uses
 * for the MAC reset). */
static void test_io_bar(void **state)
{
	struct rig *r = rig_new(false);
	const struct pci_device *pd = e1000_pci_device(r->dev);
	uint64_t port = pci_bar_address(pd, 1);

	(void)state;
	assert_true(port >= FAKE_NET_IO_START && port < FAKE_NET_IO_END);
	assert_true(le32_get(pd->config + PCI_BAR0 + 4) & PCI_BAR_IO);
	pci_io_ops.write(&r->base.host, port - FAKE_NET_IO_START + 0, 4, E1000_IMS);
	pci_io_ops.write(&r->base.host, port - FAKE_NET_IO_START + 4, 4, E1000_ICR_LSC);
	assert_int_equal(r32(r, E1000_IMS), E1000_ICR_LSC);
	assert_int_equal(pci_io_ops.read(&r->base.host, port - FAKE_NET_IO_START + 0, 4), E1000_IMS);
	assert_int_equal(pci_io_ops.read(&r->base.host, port - FAKE_NET_IO_START + 4, 4), E1000_ICR_LSC);
	pci_io_ops.write(&r->base.host, port - FAKE_NET_IO_START + 0, 4, E1000_CTRL);
	pci_io_ops.write(&r->base.host, port - FAKE_NET_IO_START + 4, 4, E1000_CTRL_RST);
	assert_int_equal(r32(r, E1000_IMS), 0);
	/* Reserved offsets and other sizes: nothing. */
	pci_io_ops.write(&r->base.host, port - FAKE_NET_IO_START + 8, 4, 0xffffffff);
	assert_int_equal(pci_io_ops.read(&r->base.host, port - FAKE_NET_IO_START + 8, 4), 0);
	pci_io_ops.write(&r->base.host, port - FAKE_NET_IO_START + 0, 2, E1000_STATUS);
	assert_int_equal(pci_io_ops.read(&r->base.host, port - FAKE_NET_IO_START + 0, 4), E1000_CTRL);
	rig_free(r);
}

/* Which writes may wait in KVM's coalesced ring: all but those that
 * change the interrupt line, start a transmission or answer a poll (the
 * set QEMU's card exits on, so both count alike in bench/seeds). */
static void test_coalesced_writes(void **state)
{
	static const uint32_t exiting[] = { E1000_MDIC, E1000_ICR, E1000_ICS, E1000_IMS,
					    E1000_IMC, E1000_TCTL, E1000_TDT };
	struct rig *r = rig_new(false);
	const struct pci_device *pd = e1000_pci_device(r->dev);

	(void)state;
	for (uint32_t off = 0; off < 0x20000; off += 4) {
		bool must_exit = false, coalesced = false;

		for (size_t i = 0; i < sizeof(exiting) / sizeof(exiting[0]); i++)
			must_exit |= off == exiting[i];
		for (unsigned int i = 0; i < pd->ncoalesce; i++)
			coalesced |= pd->coalesce[i].bar == 0 && off >= pd->coalesce[i].off &&
				     off + 4 <= pd->coalesce[i].off + pd->coalesce[i].len;
		if (coalesced == must_exit)
			fail_msg("register 0x%05x: %s", off, must_exit ? "coalesced" : "exits");
	}
	rig_free(r);
}

static void test_announce(void **state)
{
	struct rig *r = rig_new(true);
	const uint8_t *s;

	(void)state;
	e1000_announce(r->dev);
	assert_int_equal(fake_net_sent(r->base.net), 1);
	assert_int_equal(r->base.net->sent_len[0], VNET_HDR_LEN + 60);
	s = r->base.net->sent[0] + VNET_HDR_LEN;
	assert_memory_equal(s, "\xff\xff\xff\xff\xff\xff", 6);
	assert_memory_equal(s + 6, mac, 6);
	assert_int_equal(be16_get(s + 12), 0x8035); /* RARP */
	assert_int_equal(be16_get(s + 20), 3);	    /* reverse request */
	assert_memory_equal(s + 22, mac, 6);
	rig_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eeprom_image),
		cmocka_unit_test(test_eeprom_microwire_and_eerd),
		cmocka_unit_test(test_phy),
		cmocka_unit_test(test_tx_legacy),
		cmocka_unit_test(test_tx_vnet_header_and_vlan),
		cmocka_unit_test(test_tx_tso),
		cmocka_unit_test(test_tx_checksum_offload),
		cmocka_unit_test(test_tx_ring_wrap),
		cmocka_unit_test(test_rx_into_ring),
		cmocka_unit_test(test_rx_waits_for_descriptors_and_wraps),
		cmocka_unit_test(test_rx_jumbo_spans_descriptors),
		cmocka_unit_test(test_interrupt_mask_and_causes),
		cmocka_unit_test(test_interrupt_throttling),
		cmocka_unit_test(test_hostile_descriptors),
		cmocka_unit_test(test_save_load),
		cmocka_unit_test(test_io_bar),
		cmocka_unit_test(test_coalesced_writes),
		cmocka_unit_test(test_announce),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
