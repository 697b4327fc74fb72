/* An IDE channel driven by a hostile guest: any sequence of task-file,
 * control and bus-master register accesses, with guest RAM (where PRD
 * tables and their buffers live) filled from the input too, over a real
 * 1 MiB raw image. Whatever the sequence, the channel must stay memory-
 * and UB-safe (ASan sees any host access outside the buffers), keep its
 * transfer bookkeeping inside its buffer, drive its interrupt line only
 * to 0 or 1, and end with nothing in flight once drained.
 *
 * Input: records of 2 bytes (op, arg) and, for writes, 4 value bytes.
 * op & 7: 0 command block read (arg & 7 = register, arg >> 3 & 3 = size
 * 1/2/4), 1 command block write, 2 control read, 3 control write, 4 bus-
 * master read (arg & 7 offset, size as above), 5 bus-master write, 6 let
 * completions run (drain), 7 put the 4 value bytes into guest RAM at
 * (arg << 12 | value & 0xfff) (PRD entries, buffers). op >> 3 & 1 selects
 * the drive bit of the device register before the access. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "block/block.h"
#include "hw/ide.h"
#include "hw/irq.h"
#include "mem/guest_mem.h"
#include "util/le.h"

#define RAM (1u << 20)
#define DISK (1u << 20)

static struct guest_mem mem;
static struct irq_service svc;
static struct irq_line line;
static struct ide_channel ch;
static struct block_backend *disk;
static int last_level = -1;

static int fake_set_line(void *chip, unsigned int gsi, int level)
{
	(void)chip;
	CHECK(gsi == 14 && (level == 0 || level == 1));
	last_level = level;
	return 0;
}

static int fake_send_msi(void *chip, uint64_t addr, uint32_t data)
{
	(void)chip;
	(void)addr;
	(void)data;
	CHECK(0); /* IDE has no MSI */
	return 0;
}

static const struct irq_chip_ops fake_chip = { .set_line = fake_set_line, .send_msi = fake_send_msi };

static bool dma_allowed(void *ctx)
{
	(void)ctx;
	return true;
}

static void setup(void)
{
	char path[] = "/tmp/fuzz-ide-XXXXXX";
	struct block_options o = { .path = path, .format = "raw", .engine = "threads" };
	struct error err = { 0 };
	int fd = mkstemp(path);

	CHECK(fd >= 0 && ftruncate(fd, DISK) == 0);
	close(fd);
	disk = block_open(&o);
	unlink(path);
	CHECK(disk != NULL);
	CHECK(guest_mem_map(&mem, RAM) == 0);
	irq_service_init(&svc, &fake_chip, NULL);
	CHECK(irq_line_claim(&svc, 14, &line) == 0);
	CHECK(ide_channel_init(&ch, "ide0", &line, &mem, dma_allowed, NULL, &err) == 0);
	ide_channel_attach(&ch, 0, disk, NULL);
}

static void check_invariants(void)
{
	CHECK(ch.pos <= ch.block_end);
	CHECK(ch.block_end <= ch.chunk * BLOCK_SECTOR_SIZE);
	CHECK(ch.chunk <= IDE_BUF_SECTORS);
	CHECK(ch.xfer <= IDE_XFER_OTHER);
	CHECK(ch.unit <= 1);
	CHECK(ch.iovcnt <= IDE_MAX_PRD);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	static const unsigned int sizes[4] = { 1, 2, 4, 1 };

	if (!disk)
		setup();
	ide_channel_reset(&ch);
	while (in.n) {
		uint8_t op = fuzz_u8(&in), arg = fuzz_u8(&in);
		unsigned int sz = sizes[(arg >> 3) & 3];
		uint32_t v;

		if (op & 8)
			ide_cmd_write(&ch, 6, 1, 0xe0 | (op & 0x10)); /* LBA, drive bit */
		switch (op & 7) {
		case 0:
			ide_cmd_read(&ch, arg & 7, (arg & 7) ? 1 : sz);
			break;
		case 1:
			v = (uint32_t)fuzz_take(&in, 4);
			ide_cmd_write(&ch, arg & 7, (arg & 7) ? 1 : sz, v);
			break;
		case 2:
			ide_ctl_read(&ch);
			break;
		case 3:
			ide_ctl_write(&ch, (uint8_t)fuzz_take(&in, 4));
			break;
		case 4:
			ide_bm_read(&ch, arg & 7, sz);
			break;
		case 5:
			v = (uint32_t)fuzz_take(&in, 4);
			ide_bm_write(&ch, arg & 7, sz, v);
			break;
		case 6:
			ide_channel_drain(&ch);
			CHECK(!ch.in_flight);
			break;
		case 7: {
			uint32_t w = (uint32_t)fuzz_take(&in, 4);
			uint8_t *p = guest_mem_ptr(&mem, ((uint64_t)arg << 12 | (w & 0xfff)) & (RAM - 4), 4);

			CHECK(p != NULL);
			le32_put(p, w);
			break;
		}
		}
		check_invariants();
	}
	ide_channel_drain(&ch);
	CHECK(!ch.in_flight && !ch.reset_pending);
	check_invariants();
	return 0;
}
