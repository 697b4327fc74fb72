/* The IDE channel as ata_piix drives it, over a real raw image: the
 * signature after a reset, IDENTIFY, PIO reads and writes (an interrupt
 * per sector, chunks larger than the staging buffer), bus-master DMA
 * through a PRD table in guest RAM, FLUSH CACHE, the interrupt rules
 * (status read clears, nIEN masks), 48-bit registers, and what a hostile
 * guest gets: out-of-range sectors, PRD entries outside RAM, short PRD
 * tables, and records that do not fit. */
#include "cmocka_prelude.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "hw/ide.h"
#include "hw/irq.h"
#include "mem/guest_mem.h"
#include "util/le.h"
#include "util/state.h"

#define RAM (4u << 20)
#define SECTORS 4096 /* 2 MiB image */
#define PRD_TABLE 0x10000
#define DMA_BUF 0x100000

#define ST_BSY 0x80
#define ST_DRDY 0x40
#define ST_DRQ 0x08
#define ST_ERR 0x01

struct fixture {
	char path[64];
	struct block_backend *disk;
	struct guest_mem mem;
	struct irq_service svc;
	struct irq_line line;
	struct ide_channel ch;
	int level;	 /* the line as the chip last saw it */
	unsigned int raises; /* 0 -> 1 transitions */
	bool master;	 /* the function may master the bus */
};

static struct fixture *fx;

static int set_line(void *chip, unsigned int gsi, int level)
{
	struct fixture *f = chip;

	assert_int_equal(gsi, 14);
	if (level && !f->level)
		f->raises++;
	f->level = level;
	return 0;
}

static int send_msi(void *chip, uint64_t addr, uint32_t data)
{
	(void)chip;
	(void)addr;
	(void)data;
	fail_msg("IDE sent an MSI");
	return 0;
}

static const struct irq_chip_ops chip_ops = { .set_line = set_line, .send_msi = send_msi };

static bool can_dma(void *ctx)
{
	return ((struct fixture *)ctx)->master;
}

/* The image's sector n holds bytes (n * 7 + i) & 0xff. */
static uint8_t pattern(uint64_t n, unsigned int i)
{
	return (uint8_t)(n * 7 + i);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct block_options o = { .format = "raw", .engine = "threads" };
	struct error err = { 0 };
	uint8_t *img = malloc((size_t)SECTORS * 512);
	unsigned int n, i;
	int fd;

	assert_non_null(f);
	snprintf(f->path, sizeof(f->path), "/tmp/test-ide-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	for (n = 0; n < SECTORS; n++)
		for (i = 0; i < 512; i++)
			img[n * 512 + i] = pattern(n, i);
	assert_int_equal(write(fd, img, (size_t)SECTORS * 512), SECTORS * 512);
	close(fd);
	free(img);
	o.path = f->path;
	f->disk = block_open(&o);
	assert_non_null(f->disk);
	assert_int_equal(guest_mem_map(&f->mem, RAM), 0);
	irq_service_init(&f->svc, &chip_ops, f);
	assert_int_equal(irq_line_claim(&f->svc, 14, &f->line), 0);
	assert_int_equal(ide_channel_init(&f->ch, "ide0", &f->line, &f->mem, can_dma, f, &err), 0);
	ide_channel_attach(&f->ch, 0, f->disk, "unit-serial");
	f->master = true;
	fx = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ide_channel_drain(&f->ch);
	ide_channel_destroy(&f->ch);
	irq_line_release(&f->line);
	irq_service_destroy(&f->svc);
	block_close(f->disk);
	guest_mem_unmap(&f->mem);
	unlink(f->path);
	free(f);
	return 0;
}

static uint8_t rd(unsigned int reg)
{
	return (uint8_t)ide_cmd_read(&fx->ch, reg, 1);
}

static void wr(unsigned int reg, uint8_t v)
{
	ide_cmd_write(&fx->ch, reg, 1, v);
}

/* The device's status once what it started has come back. */
static uint8_t settle(void)
{
	ide_channel_drain(&fx->ch);
	return ide_ctl_read(&fx->ch);
}

static void task(uint8_t cmd, uint64_t lba, uint32_t count, bool ext)
{
	if (ext) {
		wr(2, (uint8_t)(count >> 8));
		wr(3, (uint8_t)(lba >> 24));
		wr(4, (uint8_t)(lba >> 32));
		wr(5, (uint8_t)(lba >> 40));
	}
	wr(2, (uint8_t)count);
	wr(3, (uint8_t)lba);
	wr(4, (uint8_t)(lba >> 8));
	wr(5, (uint8_t)(lba >> 16));
	wr(6, (uint8_t)(0x40 | (ext ? 0 : (lba >> 24) & 0xf)));
	wr(7, cmd);
}

static void test_signature_after_reset(void **state)
{
	(void)state;
	ide_ctl_write(&fx->ch, 0x04 | 0x02); /* SRST, nIEN */
	assert_true(ide_ctl_read(&fx->ch) & ST_BSY);
	ide_ctl_write(&fx->ch, 0x02);
	assert_int_equal(rd(1), 0x01); /* diagnostic code: no error */
	assert_int_equal(rd(2), 1);
	assert_int_equal(rd(3), 1);
	assert_int_equal(rd(4), 0);
	assert_int_equal(rd(5), 0); /* 00/00: an ATA device, not ATAPI */
	assert_int_equal(rd(7), 0x50);
	assert_int_equal(fx->raises, 0);
	/* The slave position is empty: it reads zeroes, and a command to
	 * it does nothing. */
	wr(6, 0x10);
	assert_int_equal(rd(7), 0);
	assert_int_equal(rd(2), 0);
	wr(7, 0xec);
	wr(6, 0x00);
	assert_int_equal(rd(7), 0x50);
}

static void test_identify(void **state)
{
	uint16_t id[256];
	uint8_t sum = 0;
	char model[41];
	unsigned int i;

	(void)state;
	wr(6, 0);
	wr(7, 0xec);
	assert_int_equal(fx->level, 1);
	assert_int_equal(ide_ctl_read(&fx->ch), 0x58); /* DRDY DSC DRQ; alt status keeps INTRQ */
	assert_int_equal(fx->level, 1);
	assert_int_equal(rd(7), 0x58);
	assert_int_equal(fx->level, 0); /* status read clears INTRQ */
	for (i = 0; i < 256; i++)
		id[i] = (uint16_t)ide_cmd_read(&fx->ch, 0, 2);
	assert_int_equal(rd(7), 0x50); /* the last data-in block: no interrupt, idle */
	assert_int_equal(fx->raises, 1);
	for (i = 0; i < 512; i++)
		sum = (uint8_t)(sum + ((const uint8_t *)id)[i]);
	assert_int_equal(sum, 0);
	assert_int_equal(id[255] & 0xff, 0xa5);
	assert_int_equal(id[60] | (uint32_t)id[61] << 16, SECTORS);
	assert_int_equal(id[100], SECTORS);
	assert_true(id[83] & (1 << 10)); /* LBA48 */
	assert_int_equal(id[63] & 7, 7);  /* multiword DMA 0-2 */
	for (i = 0; i < 20; i++) {
		model[2 * i] = (char)(id[27 + i] >> 8);
		model[2 * i + 1] = (char)id[27 + i];
	}
	model[40] = 0;
	assert_memory_equal(model, "VIREO HARDDISK", 14);
	assert_int_equal(id[10] >> 8, 'u'); /* "unit-serial", high byte first */
	/* SET FEATURES transfer mode MWDMA2 shows in word 63. */
	wr(1, 0x03);
	wr(2, 0x22);
	wr(7, 0xef);
	assert_int_equal(rd(7), 0x50);
	wr(7, 0xec);
	rd(7);
	for (i = 0; i < 256; i++)
		id[i] = (uint16_t)ide_cmd_read(&fx->ch, 0, 2);
	assert_int_equal(id[63], 0x0407);
	/* An unknown transfer mode is aborted. */
	wr(2, 0x45);
	wr(7, 0xef);
	assert_int_equal(rd(7), ST_DRDY | ST_ERR);
	assert_int_equal(rd(1), 0x04);
}

/* READ SECTORS of 300 sectors (more than the 256 staged at once): an
 * interrupt before each sector, the data the image holds, 32-bit and
 * 16-bit data port accesses alike. */
static void test_pio_read(void **state)
{
	unsigned int s, i;

	(void)state;
	task(0x24, 1000, 300, true);
	for (s = 0; s < 300; s++) {
		assert_int_equal(settle() & (ST_BSY | ST_DRQ), ST_DRQ);
		assert_int_equal(fx->level, 1);
		assert_int_equal(rd(7) & ST_DRQ, ST_DRQ);
		assert_int_equal(fx->level, 0);
		for (i = 0; i < 512; i += 4) {
			uint32_t v = ide_cmd_read(&fx->ch, 0, s & 1 ? 4 : 2);

			assert_int_equal(v & 0xff, pattern(1000 + s, i));
			if (!(s & 1)) {
				v |= ide_cmd_read(&fx->ch, 0, 2) << 16;
			}
			assert_int_equal(v >> 24, pattern(1000 + s, i + 3));
		}
	}
	assert_int_equal(rd(7), 0x50);
	assert_int_equal(fx->raises, 300);
	assert_int_equal(fx->ch.stats.pio_sectors, 300);
}

static void test_pio_write(void **state)
{
	uint8_t buf[512];
	unsigned int s, i;
	int fd;

	(void)state;
	task(0x30, 10, 0, false); /* 0: 256 sectors */
	for (s = 0; s < 256; s++) {
		/* The first block is asked for without an interrupt. */
		assert_int_equal(settle() & (ST_BSY | ST_DRQ), ST_DRQ);
		assert_int_equal(fx->raises, s);
		rd(7);
		for (i = 0; i < 512; i += 2)
			ide_cmd_write(&fx->ch, 0, 2, (uint32_t)(0xa000 + s + i));
	}
	assert_int_equal(settle(), 0x50);
	assert_int_equal(fx->raises, 256); /* 255 blocks asked for, and the end */
	fd = open(fx->path, O_RDONLY);
	for (s = 0; s < 256; s += 85) {
		assert_int_equal(pread(fd, buf, 512, (10 + s) * 512), 512);
		assert_int_equal(le16_get(buf + 4), (uint16_t)(0xa000 + s + 4));
	}
	assert_int_equal(pread(fd, buf, 512, 9 * 512), 512);
	assert_int_equal(buf[0], pattern(9, 0)); /* the sector before is untouched */
	close(fd);
}

static void put_prd(unsigned int i, uint32_t addr, uint32_t len, bool last)
{
	uint8_t *e = guest_mem_ptr(&fx->mem, PRD_TABLE + 8 * i, 8);

	le32_put(e, addr);
	le32_put(e + 4, (len & 0xffff) | (last ? 0x80000000u : 0));
}

static void bm_start(bool to_memory)
{
	ide_bm_write(&fx->ch, IDE_BM_PRD, 4, PRD_TABLE);
	ide_bm_write(&fx->ch, IDE_BM_CMD, 1, to_memory ? 0x08 : 0);
	ide_bm_write(&fx->ch, IDE_BM_CMD, 1, to_memory ? 0x09 : 1);
}

static void test_dma_read_and_write(void **state)
{
	uint8_t *buf = guest_mem_ptr(&fx->mem, DMA_BUF, 0x30000);
	unsigned int i;

	(void)state;
	/* READ DMA of 16 sectors into two pieces (4 KiB + 4 KiB). */
	put_prd(0, DMA_BUF, 4096, false);
	put_prd(1, DMA_BUF + 0x8000, 4096, true);
	task(0xc8, 200, 16, false);
	bm_start(true);
	assert_int_equal(settle(), 0x50);
	assert_int_equal(fx->level, 1);
	assert_int_equal(ide_bm_read(&fx->ch, IDE_BM_STATUS, 1) & 7, 0x04); /* INTR, not active */
	for (i = 0; i < 4096; i++)
		assert_int_equal(buf[i], pattern(200 + i / 512, i % 512));
	for (i = 0; i < 4096; i++)
		assert_int_equal(buf[0x8000 + i], pattern(208 + i / 512, i % 512));
	rd(7);
	ide_bm_write(&fx->ch, IDE_BM_STATUS, 1, 0x04); /* write 1 to clear */
	assert_int_equal(ide_bm_read(&fx->ch, IDE_BM_STATUS, 1) & 4, 0);
	ide_bm_write(&fx->ch, IDE_BM_CMD, 1, 0);
	/* WRITE DMA EXT of those 16 sectors back to sector 3000; the engine
	 * started before the command this time. A PRD of 0 bytes is 64 KiB. */
	memset(buf + 0x20000, 0x5c, 0x10000);
	put_prd(0, DMA_BUF + 0x20000, 0, true);
	ide_bm_write(&fx->ch, IDE_BM_PRD, 4, PRD_TABLE);
	ide_bm_write(&fx->ch, IDE_BM_CMD, 1, 1);
	task(0x35, 3000, 16, true);
	assert_int_equal(settle(), 0x50);
	/* More table than transfer: the engine stays active (the PRD table
	 * was not exhausted), the interrupt is there. */
	assert_int_equal(ide_bm_read(&fx->ch, IDE_BM_STATUS, 1) & 7, 0x04);
	ide_bm_write(&fx->ch, IDE_BM_CMD, 1, 0);
	{
		uint8_t back[512];
		int fd = open(fx->path, O_RDONLY);

		assert_int_equal(pread(fd, back, 512, 3015 * 512), 512);
		close(fd);
		assert_int_equal(back[0], 0x5c);
		assert_int_equal(back[511], 0x5c);
	}
	assert_int_equal(fx->ch.stats.dma_bytes, 2 * 8192);
}

/* What a hostile guest gets: errors, never a transfer outside RAM. */
static void test_dma_hostile(void **state)
{
	(void)state;
	/* A PRD entry past the end of RAM. */
	put_prd(0, RAM - 512, 1024, true);
	task(0xc8, 0, 2, false);
	bm_start(true);
	assert_int_equal(settle(), ST_DRDY | ST_ERR);
	assert_int_equal(rd(1), 0x04);
	assert_int_equal(ide_bm_read(&fx->ch, IDE_BM_STATUS, 1) & 7, 0x06); /* error, intr */
	ide_bm_write(&fx->ch, IDE_BM_STATUS, 1, 0x06);
	ide_bm_write(&fx->ch, IDE_BM_CMD, 1, 0);
	/* A table that ends before the transfer does. */
	put_prd(0, DMA_BUF, 512, true);
	task(0xc8, 0, 2, false);
	bm_start(true);
	assert_int_equal(settle(), ST_DRDY | ST_ERR);
	ide_bm_write(&fx->ch, IDE_BM_CMD, 1, 0);
	/* The PRD table itself outside RAM. */
	ide_bm_write(&fx->ch, IDE_BM_PRD, 4, 0xfffffff0);
	task(0xc8, 0, 1, false);
	ide_bm_write(&fx->ch, IDE_BM_CMD, 1, 9);
	assert_int_equal(settle(), ST_DRDY | ST_ERR);
	ide_bm_write(&fx->ch, IDE_BM_CMD, 1, 0);
	/* Sectors past the end of the disk: IDNF, nothing submitted. */
	task(0x20, SECTORS - 1, 2, false);
	assert_int_equal(rd(7), ST_DRDY | ST_ERR);
	assert_int_equal(rd(1), 0x10);
	task(0x24, 1ULL << 40, 1, true);
	assert_int_equal(rd(1), 0x10);
	/* Bus mastering off in the PCI function: a DMA command waits. */
	fx->master = false;
	put_prd(0, DMA_BUF, 512, true);
	task(0xc8, 0, 1, false);
	bm_start(true);
	assert_int_equal(settle() & ST_DRQ, ST_DRQ);
	assert_false(fx->ch.in_flight);
	fx->master = true;
	/* A command written while one waits is not seen; a reset ends it. */
	wr(7, 0xec);
	assert_int_equal(fx->ch.cmd, 0xc8);
	ide_ctl_write(&fx->ch, 4);
	ide_ctl_write(&fx->ch, 0);
	assert_int_equal(rd(7), 0x50);
	/* An unknown command is aborted. */
	wr(7, 0xb0); /* SMART */
	assert_int_equal(rd(7), ST_DRDY | ST_ERR);
	assert_int_equal(rd(1), 0x04);
}

static void test_interrupt_mask_and_flush(void **state)
{
	(void)state;
	ide_ctl_write(&fx->ch, 0x02); /* nIEN */
	wr(7, 0xe7);
	assert_int_equal(settle(), 0x50);
	assert_int_equal(fx->level, 0); /* masked */
	ide_ctl_write(&fx->ch, 0);
	assert_int_equal(fx->level, 1); /* INTRQ was pending: it shows now */
	rd(7);
	assert_int_equal(fx->level, 0);
	assert_int_equal(fx->ch.stats.flushes, 1);
	assert_int_equal(block_fdatasyncs(fx->disk), 1);
	/* Write cache off: each write is followed by a flush. */
	wr(1, 0x82);
	wr(7, 0xef);
	rd(7);
	task(0x30, 5, 1, false);
	{
		unsigned int i;

		for (i = 0; i < 128; i++)
			ide_cmd_write(&fx->ch, 0, 4, 0);
	}
	assert_int_equal(settle(), 0x50);
	assert_int_equal(block_fdatasyncs(fx->disk), 2);
}

static void test_lba48_registers_and_native_max(void **state)
{
	(void)state;
	wr(2, 0x12);
	wr(2, 0x34);
	ide_ctl_write(&fx->ch, 0x80); /* HOB */
	assert_int_equal(rd(2), 0x12);
	ide_ctl_write(&fx->ch, 0);
	assert_int_equal(rd(2), 0x34);
	/* READ NATIVE MAX ADDRESS EXT: the last sector. */
	wr(6, 0x40);
	wr(7, 0x27);
	assert_int_equal(rd(7), 0x50);
	assert_int_equal(rd(3) | rd(4) << 8 | rd(5) << 16, SECTORS - 1);
	wr(7, 0xe5); /* CHECK POWER MODE */
	assert_int_equal(rd(2), 0xff);
	/* CHS: cylinder 1, head 2, sector 3 = LBA (1 * 16 + 2) * 63 + 2. */
	wr(2, 1);
	wr(3, 3);
	wr(4, 1);
	wr(5, 0);
	wr(6, 0x02);
	wr(7, 0x20);
	assert_int_equal(settle() & ST_DRQ, ST_DRQ);
	assert_int_equal(ide_cmd_read(&fx->ch, 0, 1), pattern(18 * 63 + 2, 0));
}

/* A record taken in the middle of a PIO read loads into a fresh channel
 * that goes on from the same byte; broken records change nothing. */
static void test_save_load(void **state)
{
	struct ide_channel other;
	struct state_writer w;
	struct state_reader r;
	struct error err = { 0 };
	unsigned int i;

	(void)state;
	task(0x20, 40, 2, false);
	settle();
	rd(7);
	for (i = 0; i < 100; i++)
		ide_cmd_read(&fx->ch, 0, 2);
	state_writer_init(&w);
	ide_channel_save(&fx->ch, &w);
	assert_false(w.failed);
	assert_int_equal(ide_channel_init(&other, "ide0", &fx->line, &fx->mem, can_dma, fx, &err), 0);
	ide_channel_attach(&other, 0, fx->disk, NULL);
	/* Truncated: refused. */
	state_reader_init(&r, w.buf, w.len - 1);
	assert_int_equal(ide_channel_load(&other, &r, &err), -1);
	assert_int_equal(other.xfer, IDE_XFER_NONE);
	/* Whole: the next word is the 101st of sector 40. */
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(ide_channel_load(&other, &r, &err), 0);
	assert_int_equal(ide_cmd_read(&other, 0, 1), pattern(40, 200));
	/* A record whose position runs past its buffer: refused. */
	{
		uint8_t *bad = malloc(w.len);
		size_t pos_at = 16 + 1 + 4 + 1 + 1 + 1 + 8 + 4 + 4; /* the pos field */

		memcpy(bad, w.buf, w.len);
		le32_put(bad + pos_at, 100000);
		state_reader_init(&r, bad, w.len);
		assert_int_equal(ide_channel_load(&other, &r, &err), -1);
		free(bad);
	}
	ide_channel_destroy(&other);
	state_writer_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_signature_after_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pio_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pio_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_read_and_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_mask_and_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lba48_registers_and_native_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
