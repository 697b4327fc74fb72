#include "hw/ide.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/le.h"

/* Status register. */
#define ST_BSY 0x80
#define ST_DRDY 0x40
#define ST_DSC 0x10
#define ST_DRQ 0x08
#define ST_ERR 0x01
#define ST_IDLE (ST_DRDY | ST_DSC)

/* Error register. */
#define ERR_AMNF 0x01 /* after a reset or diagnostic: "no error" code 01h */
#define ERR_ABRT 0x04
#define ERR_IDNF 0x10
#define ERR_UNC 0x40

/* Device control. */
#define CTL_NIEN 0x02
#define CTL_SRST 0x04
#define CTL_HOB 0x80

/* Device register. */
#define SEL_DEV 0x10
#define SEL_LBA 0x40

/* Bus-master command and status. */
#define BM_START 0x01
#define BM_TO_MEMORY 0x08 /* the engine writes guest memory (a disk read) */
#define BM_ST_ACTIVE 0x01
#define BM_ST_ERROR 0x02
#define BM_ST_INTR 0x04
#define BM_ST_CAPABLE 0x60 /* drive 0/1 DMA capable: software's bits */

/* The geometry reported for CHS addressing (what QEMU and BIOSes use). */
#define HEADS 16
#define SPT 63

#define SECTOR BLOCK_SECTOR_SIZE

enum {
	CMD_NOP = 0x00,
	CMD_RECALIBRATE = 0x10,
	CMD_READ = 0x20,
	CMD_READ_NORETRY = 0x21,
	CMD_READ_EXT = 0x24,
	CMD_READ_DMA_EXT = 0x25,
	CMD_READ_NATIVE_MAX_EXT = 0x27,
	CMD_WRITE = 0x30,
	CMD_WRITE_NORETRY = 0x31,
	CMD_WRITE_EXT = 0x34,
	CMD_WRITE_DMA_EXT = 0x35,
	CMD_VERIFY = 0x40,
	CMD_VERIFY_NORETRY = 0x41,
	CMD_VERIFY_EXT = 0x42,
	CMD_DIAGNOSTIC = 0x90,
	CMD_INIT_PARAMS = 0x91,
	CMD_READ_DMA = 0xc8,
	CMD_READ_DMA_NORETRY = 0xc9,
	CMD_WRITE_DMA = 0xca,
	CMD_WRITE_DMA_NORETRY = 0xcb,
	CMD_STANDBY_NOW = 0xe0,
	CMD_IDLE_NOW = 0xe1,
	CMD_STANDBY = 0xe2,
	CMD_IDLE = 0xe3,
	CMD_CHECK_POWER = 0xe5,
	CMD_SLEEP = 0xe6,
	CMD_FLUSH = 0xe7,
	CMD_IDENTIFY = 0xec,
	CMD_FLUSH_EXT = 0xea,
	CMD_SET_FEATURES = 0xef,
	CMD_READ_NATIVE_MAX = 0xf8,
};

static void update_irq(struct ide_channel *ch)
{
	irq_line_set(ch->irq, ch->irq_pending && !(ch->control & CTL_NIEN));
}

static void raise_irq(struct ide_channel *ch)
{
	ch->irq_pending = true;
	ch->bm_status |= BM_ST_INTR;
	ch->stats.irqs++;
	update_irq(ch);
}

static struct ide_drive *cur(struct ide_channel *ch)
{
	return &ch->drive[(ch->select & SEL_DEV) ? 1 : 0];
}

/* Command done without data (or its data all moved): ready, interrupt. */
static void finish(struct ide_channel *ch)
{
	ch->xfer = IDE_XFER_NONE;
	ch->status = ST_IDLE;
	raise_irq(ch);
}

static void fail(struct ide_channel *ch, uint8_t error)
{
	ch->xfer = IDE_XFER_NONE;
	ch->status = ST_DRDY | ST_ERR;
	ch->error = error;
	ch->stats.errors++;
	raise_irq(ch);
}

/* The ATA signature of a disk (after a reset or a diagnostic). */
static void signature(struct ide_channel *ch)
{
	ch->select = 0;
	ch->nsect = ch->lbal = 1;
	ch->lbam = ch->lbah = 0;
	ch->hob_nsect = ch->hob_lbal = ch->hob_lbam = ch->hob_lbah = 0;
	ch->error = ERR_AMNF;
	ch->status = ST_IDLE;
}

static void put_string(uint16_t *words, const char *s, unsigned int nwords)
{
	unsigned int i;
	size_t len = strlen(s);

	/* ATA strings: space padded, two characters per word, the first in
	 * the high byte. */
	for (i = 0; i < nwords * 2; i++) {
		uint8_t c = i < len ? (uint8_t)s[i] : ' ';

		if (i & 1)
			words[i / 2] |= c;
		else
			words[i / 2] = (uint16_t)(c << 8);
	}
}

void ide_identify(const struct ide_drive *d, uint16_t id[256])
{
	uint64_t lba28 = d->sectors < 0x0fffffff ? d->sectors : 0x0fffffff;
	uint64_t cyl = d->sectors / (HEADS * SPT);
	uint64_t chs;
	uint8_t sum = 0;
	unsigned int i;

	if (cyl > 16383)
		cyl = 16383;
	if (!cyl)
		cyl = 1;
	chs = cyl * HEADS * SPT;
	memset(id, 0, 256 * sizeof(id[0]));
	id[0] = 0x0040; /* fixed disk, not removable */
	id[1] = (uint16_t)cyl;
	id[3] = HEADS;
	id[6] = SPT;
	put_string(id + 10, d->serial, 10);
	put_string(id + 23, "1.0", 4);
	put_string(id + 27, "VIREO HARDDISK", 20);
	id[47] = 0x8000; /* no READ/WRITE MULTIPLE */
	id[49] = 0x0b00; /* IORDY, LBA, DMA */
	id[51] = 0x0200;
	id[52] = 0x0200;
	id[53] = 0x0007; /* words 54-58, 64-70 and 88 are valid */
	id[54] = (uint16_t)cyl;
	id[55] = HEADS;
	id[56] = SPT;
	id[57] = (uint16_t)chs;
	id[58] = (uint16_t)(chs >> 16);
	id[60] = (uint16_t)lba28;
	id[61] = (uint16_t)(lba28 >> 16);
	/* Multiword DMA 0-2 (a PIIX3 does no Ultra DMA), the selected one. */
	id[63] = 0x0007;
	if ((d->xfer_mode & 0xf8) == 0x20 && (d->xfer_mode & 7) <= 2)
		id[63] |= (uint16_t)(0x100 << (d->xfer_mode & 7));
	id[64] = 0x0003; /* PIO 3 and 4 */
	id[65] = id[66] = id[67] = id[68] = 120;
	id[80] = 0x00f0; /* ATA/ATAPI-4 to -7 */
	id[82] = 0x0020; /* write cache */
	id[83] = 0x7400; /* FLUSH CACHE EXT, FLUSH CACHE, 48-bit addresses */
	id[84] = 0x4000;
	id[85] = d->write_cache ? 0x0020 : 0;
	id[86] = 0x3400;
	id[87] = 0x4000;
	id[93] = 0x4001;
	id[100] = (uint16_t)d->sectors;
	id[101] = (uint16_t)(d->sectors >> 16);
	id[102] = (uint16_t)(d->sectors >> 32);
	id[103] = (uint16_t)(d->sectors >> 48);
	/* Integrity word: signature A5h, and a checksum that makes the 512
	 * bytes sum to zero. */
	id[255] = 0x00a5;
	for (i = 0; i < 255; i++)
		sum = (uint8_t)(sum + (id[i] & 0xff) + (id[i] >> 8));
	sum = (uint8_t)(sum + 0xa5);
	id[255] |= (uint16_t)((uint8_t)-sum << 8);
}

/* The sector the task file addresses and how many: 48-bit commands take
 * both halves of each register, others LBA 28 or CHS. */
static bool decode_range(struct ide_channel *ch, bool ext, uint64_t *lba, uint32_t *count)
{
	if (ext) {
		*lba = (uint64_t)ch->hob_lbah << 40 | (uint64_t)ch->hob_lbam << 32 |
		       (uint64_t)ch->hob_lbal << 24 | (uint64_t)ch->lbah << 16 |
		       (uint64_t)ch->lbam << 8 | ch->lbal;
		*count = (uint32_t)ch->hob_nsect << 8 | ch->nsect;
		if (!*count)
			*count = 65536;
	} else {
		if (ch->select & SEL_LBA) {
			*lba = (uint64_t)(ch->select & 0x0f) << 24 | (uint64_t)ch->lbah << 16 |
			       (uint64_t)ch->lbam << 8 | ch->lbal;
		} else {
			uint64_t cyl = (uint64_t)ch->lbah << 8 | ch->lbam;

			if (!ch->lbal || ch->lbal > SPT)
				return false;
			*lba = (cyl * HEADS + (ch->select & 0x0f)) * SPT + ch->lbal - 1u;
		}
		*count = ch->nsect ? ch->nsect : 256;
	}
	return *lba < cur(ch)->sectors && *count <= cur(ch)->sectors - *lba;
}

static void request_done(struct block_req *r, int64_t result);

static int submit(struct ide_channel *ch, enum block_op op, const struct iovec *iov,
		  unsigned int iovcnt, uint64_t lba)
{
	int ret;

	memset(&ch->req, 0, sizeof(ch->req));
	ch->req.op = op;
	ch->req.offset = lba * SECTOR;
	ch->req.iov = iov;
	ch->req.iovcnt = iovcnt;
	ch->req.done = request_done;
	ch->req.opaque = ch;
	ret = block_submit(ch->drive[ch->unit].blk, &ch->req);
	if (ret == 0) {
		ch->in_flight = true;
		ch->status = ST_BSY | ST_DRDY;
	}
	return ret;
}

/* PIO in: reads the next chunk into the buffer. */
static void pio_read_chunk(struct ide_channel *ch)
{
	uint32_t n = ch->remaining < IDE_BUF_SECTORS ? ch->remaining : IDE_BUF_SECTORS;

	ch->iov[0].iov_base = ch->buf;
	ch->iov[0].iov_len = (size_t)n * SECTOR;
	ch->chunk = n;
	ch->pos = ch->block_end = 0; /* nothing to read until it is in */
	if (submit(ch, BLOCK_READ, ch->iov, 1, ch->lba) < 0)
		fail(ch, ERR_ABRT);
}

/* PIO out: the buffer is ready for the next chunk from the guest. */
static void pio_write_chunk(struct ide_channel *ch)
{
	ch->chunk = ch->remaining < IDE_BUF_SECTORS ? ch->remaining : IDE_BUF_SECTORS;
	ch->pos = 0;
	ch->block_end = SECTOR;
	ch->status = ST_IDLE | ST_DRQ;
}

static void start_flush(struct ide_channel *ch)
{
	if (submit(ch, BLOCK_FLUSH, NULL, 0, 0) < 0)
		fail(ch, ERR_ABRT);
}

/* The PRD table, walked from bm_prd, as iovecs over guest RAM for bytes
 * bytes: -1 when an entry is outside RAM, the table ends short or needs
 * more than IDE_MAX_PRD entries. */
static int map_prd(struct ide_channel *ch, uint64_t bytes)
{
	uint64_t got = 0, prd = ch->bm_prd;
	unsigned int n = 0;

	while (got < bytes) {
		const uint8_t *e = guest_mem_ptr(ch->mem, prd, 8);
		uint32_t addr, len;
		void *host;

		if (!e || n == IDE_MAX_PRD)
			return -1;
		addr = le32_get(e);
		len = le16_get(e + 4);
		if (!len)
			len = 0x10000;
		if (len > bytes - got)
			len = (uint32_t)(bytes - got);
		host = guest_mem_ptr(ch->mem, addr & ~1u, len);
		if (!host)
			return -1;
		ch->iov[n].iov_base = host;
		ch->iov[n].iov_len = len;
		n++;
		got += len;
		if (got < bytes && (le16_get(e + 6) & 0x8000))
			return -1; /* end of table before the end of the transfer */
		prd += 8;
	}
	ch->iovcnt = n;
	return 0;
}

/* A DMA command and a started engine: run the transfer. */
static void maybe_start_dma(struct ide_channel *ch)
{
	bool to_memory;

	if (ch->xfer != IDE_XFER_DMA || ch->in_flight || !(ch->bm_cmd & BM_START) ||
	    (ch->can_dma && !ch->can_dma(ch->ctx)))
		return;
	to_memory = ch->cmd == CMD_READ_DMA || ch->cmd == CMD_READ_DMA_NORETRY ||
		    ch->cmd == CMD_READ_DMA_EXT;
	ch->bm_status |= BM_ST_ACTIVE;
	ch->dma_bytes = (uint64_t)ch->remaining * SECTOR;
	if (map_prd(ch, ch->dma_bytes) < 0) {
		ch->bm_status = (uint8_t)((ch->bm_status & ~BM_ST_ACTIVE) | BM_ST_ERROR);
		fail(ch, ERR_ABRT);
		return;
	}
	ch->stats.dma_requests++;
	if (submit(ch, to_memory ? BLOCK_READ : BLOCK_WRITE, ch->iov, ch->iovcnt, ch->lba) < 0) {
		ch->bm_status = (uint8_t)((ch->bm_status & ~BM_ST_ACTIVE) | BM_ST_ERROR);
		fail(ch, ERR_ABRT);
	}
}

static void dma_done(struct ide_channel *ch, int64_t result)
{
	unsigned int i;
	bool to_memory = ch->req.op == BLOCK_READ;

	ch->bm_status &= (uint8_t)~BM_ST_ACTIVE;
	if (result < 0) {
		ch->bm_status |= BM_ST_ERROR;
		fail(ch, to_memory ? ERR_UNC : ERR_ABRT);
		return;
	}
	if (to_memory)
		for (i = 0; i < ch->iovcnt; i++)
			guest_mem_mark_written(ch->mem, ch->iov[i].iov_base, ch->iov[i].iov_len);
	ch->stats.dma_bytes += ch->dma_bytes;
	ch->lba += ch->remaining;
	ch->remaining = 0;
	if (!to_memory && !ch->drive[ch->unit].write_cache) {
		ch->xfer = IDE_XFER_OTHER;
		start_flush(ch);
		return;
	}
	finish(ch);
}

static void request_done(struct block_req *r, int64_t result)
{
	struct ide_channel *ch = r->opaque;

	ch->in_flight = false;
	if (ch->reset_pending) {
		/* The guest reset the channel meanwhile: what this request
		 * did no longer matters; the reset ends now. */
		ch->reset_pending = false;
		ch->xfer = IDE_XFER_NONE;
		signature(ch);
		return;
	}
	switch (ch->xfer) {
	case IDE_XFER_PIO_IN:
		if (result < 0) {
			fail(ch, ERR_UNC);
			return;
		}
		ch->lba += ch->chunk;
		ch->remaining -= ch->chunk;
		ch->pos = 0;
		ch->block_end = SECTOR;
		ch->status = ST_IDLE | ST_DRQ;
		raise_irq(ch);
		return;
	case IDE_XFER_PIO_OUT:
		if (result < 0) {
			fail(ch, ERR_ABRT);
			return;
		}
		if (r->op == BLOCK_WRITE) {
			ch->lba += ch->chunk;
			ch->remaining -= ch->chunk;
			if (!ch->drive[ch->unit].write_cache) {
				start_flush(ch);
				return;
			}
		}
		if (ch->remaining) {
			pio_write_chunk(ch);
			raise_irq(ch);
		} else {
			finish(ch);
		}
		return;
	case IDE_XFER_DMA:
		dma_done(ch, result);
		return;
	case IDE_XFER_OTHER:
		if (result < 0) {
			fail(ch, ERR_ABRT);
			return;
		}
		ch->stats.flushes++;
		finish(ch);
		return;
	case IDE_XFER_NONE:
		return;
	}
}

static void set_features(struct ide_channel *ch, struct ide_drive *d)
{
	switch (ch->feature) {
	case 0x02: /* enable write cache */
		d->write_cache = true;
		break;
	case 0x82:
		d->write_cache = false;
		break;
	case 0x03: /* transfer mode: PIO 0-4, multiword DMA 0-2 */
		if (!(ch->nsect <= 0x0c || (ch->nsect >= 0x20 && ch->nsect <= 0x22))) {
			fail(ch, ERR_ABRT);
			return;
		}
		d->xfer_mode = ch->nsect;
		break;
	case 0x55: /* read look-ahead off/on, reverting to defaults: accepted */
	case 0xaa:
	case 0x66:
	case 0xcc:
		break;
	default:
		fail(ch, ERR_ABRT);
		return;
	}
	finish(ch);
}

/* The native max address: the last sector, as READ NATIVE MAX returns it. */
static void native_max(struct ide_channel *ch, bool ext)
{
	uint64_t max = cur(ch)->sectors - 1;

	if (!ext && max > 0x0fffffff)
		max = 0x0fffffff;
	ch->lbal = (uint8_t)max;
	ch->lbam = (uint8_t)(max >> 8);
	ch->lbah = (uint8_t)(max >> 16);
	if (ext) {
		ch->hob_lbal = (uint8_t)(max >> 24);
		ch->hob_lbam = (uint8_t)(max >> 32);
		ch->hob_lbah = (uint8_t)(max >> 40);
	} else {
		ch->select = (uint8_t)((ch->select & 0xf0) | ((max >> 24) & 0x0f));
	}
	finish(ch);
}

static void start_transfer(struct ide_channel *ch, bool ext, bool write, bool dma)
{
	uint64_t lba;
	uint32_t count;

	if (!decode_range(ch, ext, &lba, &count)) {
		fail(ch, ERR_IDNF);
		return;
	}
	if (write && block_read_only(cur(ch)->blk)) {
		fail(ch, ERR_ABRT);
		return;
	}
	ch->lba = lba;
	ch->remaining = count;
	if (dma) {
		ch->xfer = IDE_XFER_DMA;
		ch->status = ST_IDLE | ST_DRQ;
		maybe_start_dma(ch);
	} else if (write) {
		ch->xfer = IDE_XFER_PIO_OUT;
		pio_write_chunk(ch);
	} else {
		ch->xfer = IDE_XFER_PIO_IN;
		pio_read_chunk(ch);
	}
}

static void execute(struct ide_channel *ch, uint8_t cmd)
{
	struct ide_drive *d = cur(ch);

	/* A command to a position without a drive, or while one runs, is not
	 * seen (the guest must wait for BSY and DRQ to clear first). */
	if (!d->blk || (ch->status & (ST_BSY | ST_DRQ)) || ch->in_flight)
		return;
	ch->cmd = cmd;
	ch->unit = (ch->select & SEL_DEV) ? 1 : 0;
	ch->irq_pending = false;
	update_irq(ch);
	ch->error = 0;
	ch->stats.commands++;
	switch (cmd) {
	case CMD_IDENTIFY: {
		uint16_t id[256];
		unsigned int i;

		ide_identify(d, id);
		for (i = 0; i < 256; i++)
			le16_put(ch->buf + 2 * i, id[i]);
		ch->xfer = IDE_XFER_PIO_IN;
		ch->chunk = 1;
		ch->remaining = 0;
		ch->pos = 0;
		ch->block_end = SECTOR;
		ch->status = ST_IDLE | ST_DRQ;
		raise_irq(ch);
		return;
	}
	case CMD_READ:
	case CMD_READ_NORETRY:
		start_transfer(ch, false, false, false);
		return;
	case CMD_READ_EXT:
		start_transfer(ch, true, false, false);
		return;
	case CMD_WRITE:
	case CMD_WRITE_NORETRY:
		start_transfer(ch, false, true, false);
		return;
	case CMD_WRITE_EXT:
		start_transfer(ch, true, true, false);
		return;
	case CMD_READ_DMA:
	case CMD_READ_DMA_NORETRY:
		start_transfer(ch, false, false, true);
		return;
	case CMD_READ_DMA_EXT:
		start_transfer(ch, true, false, true);
		return;
	case CMD_WRITE_DMA:
	case CMD_WRITE_DMA_NORETRY:
		start_transfer(ch, false, true, true);
		return;
	case CMD_WRITE_DMA_EXT:
		start_transfer(ch, true, true, true);
		return;
	case CMD_VERIFY:
	case CMD_VERIFY_NORETRY:
	case CMD_VERIFY_EXT: {
		uint64_t lba;
		uint32_t count;

		if (!decode_range(ch, cmd == CMD_VERIFY_EXT, &lba, &count))
			fail(ch, ERR_IDNF);
		else
			finish(ch);
		return;
	}
	case CMD_FLUSH:
	case CMD_FLUSH_EXT:
		ch->xfer = IDE_XFER_OTHER;
		start_flush(ch);
		return;
	case CMD_SET_FEATURES:
		set_features(ch, d);
		return;
	case CMD_READ_NATIVE_MAX:
	case CMD_READ_NATIVE_MAX_EXT:
		native_max(ch, cmd == CMD_READ_NATIVE_MAX_EXT);
		return;
	case CMD_CHECK_POWER:
		ch->nsect = 0xff; /* active or idle */
		finish(ch);
		return;
	case CMD_DIAGNOSTIC:
		signature(ch);
		raise_irq(ch);
		return;
	case CMD_RECALIBRATE:
	case CMD_INIT_PARAMS:
	case CMD_STANDBY_NOW:
	case CMD_IDLE_NOW:
	case CMD_STANDBY:
	case CMD_IDLE:
	case CMD_SLEEP:
		finish(ch);
		return;
	default:
		/* NOP, IDENTIFY PACKET DEVICE, READ LOG EXT, SMART, security,
		 * DATA SET MANAGEMENT...: not offered, aborted as a disk
		 * without them does. */
		fail(ch, ERR_ABRT);
		return;
	}
}

/* The data port: bytes from or into the buffer, then what the end of a
 * DRQ block means. */
static uint32_t data_read(struct ide_channel *ch, unsigned int size)
{
	uint32_t v = 0;
	unsigned int i;

	if (ch->xfer != IDE_XFER_PIO_IN || !(ch->status & ST_DRQ))
		return 0;
	for (i = 0; i < size && ch->pos < ch->block_end; i++)
		v |= (uint32_t)ch->buf[ch->pos++] << (8 * i);
	if (ch->pos < ch->block_end)
		return v;
	ch->stats.pio_sectors++;
	if (ch->block_end < ch->chunk * SECTOR) {
		ch->block_end += SECTOR;
		raise_irq(ch);
	} else if (ch->remaining) {
		pio_read_chunk(ch);
	} else {
		/* The last block of a data-in command: no interrupt. */
		ch->xfer = IDE_XFER_NONE;
		ch->status = ST_IDLE;
	}
	return v;
}

static void data_write(struct ide_channel *ch, unsigned int size, uint32_t v)
{
	unsigned int i;

	if (ch->xfer != IDE_XFER_PIO_OUT || !(ch->status & ST_DRQ))
		return;
	for (i = 0; i < size && ch->pos < ch->block_end; i++)
		ch->buf[ch->pos++] = (uint8_t)(v >> (8 * i));
	if (ch->pos < ch->block_end)
		return;
	ch->stats.pio_sectors++;
	if (ch->block_end < ch->chunk * SECTOR) {
		ch->block_end += SECTOR;
		raise_irq(ch);
		return;
	}
	ch->iov[0].iov_base = ch->buf;
	ch->iov[0].iov_len = (size_t)ch->chunk * SECTOR;
	if (submit(ch, BLOCK_WRITE, ch->iov, 1, ch->lba) < 0)
		fail(ch, ERR_ABRT);
}

static bool selected_absent(struct ide_channel *ch)
{
	return !cur(ch)->blk;
}

uint32_t ide_cmd_read(struct ide_channel *ch, unsigned int offset, unsigned int size)
{
	bool hob;
	uint32_t v = 0;

	pthread_mutex_lock(&ch->lock);
	hob = (ch->control & CTL_HOB) != 0;
	/* A position without a drive reads as zeroes (as QEMU's does, which
	 * libata's presence check expects). */
	if (selected_absent(ch) && offset != 6) {
		pthread_mutex_unlock(&ch->lock);
		return 0;
	}
	switch (offset) {
	case 0:
		v = data_read(ch, size);
		break;
	case 1:
		v = hob ? ch->hob_feature : ch->error;
		break;
	case 2:
		v = hob ? ch->hob_nsect : ch->nsect;
		break;
	case 3:
		v = hob ? ch->hob_lbal : ch->lbal;
		break;
	case 4:
		v = hob ? ch->hob_lbam : ch->lbam;
		break;
	case 5:
		v = hob ? ch->hob_lbah : ch->lbah;
		break;
	case 6:
		v = ch->select | 0xa0; /* bits 7 and 5 are obsolete ones */
		break;
	case 7:
		v = ch->status;
		ch->irq_pending = false;
		update_irq(ch);
		break;
	}
	pthread_mutex_unlock(&ch->lock);
	return v;
}

/* A register write pushes the old value into the high-order copy. */
static void push(uint8_t *reg, uint8_t *hob, uint8_t v)
{
	*hob = *reg;
	*reg = v;
}

void ide_cmd_write(struct ide_channel *ch, unsigned int offset, unsigned int size, uint32_t v)
{
	uint8_t b = (uint8_t)v;

	pthread_mutex_lock(&ch->lock);
	if (offset != 0)
		ch->control &= (uint8_t)~CTL_HOB; /* any task file write clears HOB */
	switch (offset) {
	case 0:
		data_write(ch, size, v);
		break;
	case 1:
		push(&ch->feature, &ch->hob_feature, b);
		break;
	case 2:
		push(&ch->nsect, &ch->hob_nsect, b);
		break;
	case 3:
		push(&ch->lbal, &ch->hob_lbal, b);
		break;
	case 4:
		push(&ch->lbam, &ch->hob_lbam, b);
		break;
	case 5:
		push(&ch->lbah, &ch->hob_lbah, b);
		break;
	case 6:
		ch->select = b & 0x5f;
		break;
	case 7:
		execute(ch, b);
		break;
	}
	pthread_mutex_unlock(&ch->lock);
}

uint8_t ide_ctl_read(struct ide_channel *ch)
{
	uint8_t v;

	pthread_mutex_lock(&ch->lock);
	v = selected_absent(ch) ? 0 : ch->status;
	pthread_mutex_unlock(&ch->lock);
	return v;
}

void ide_ctl_write(struct ide_channel *ch, uint8_t v)
{
	pthread_mutex_lock(&ch->lock);
	if ((v & CTL_SRST) && !(ch->control & CTL_SRST)) {
		/* Reset asserted: whatever ran is abandoned. */
		ch->xfer = IDE_XFER_NONE;
		ch->status = ST_BSY;
		ch->irq_pending = false;
	} else if (!(v & CTL_SRST) && (ch->control & CTL_SRST)) {
		/* Released: the drives show their signature, unless a request
		 * is still out (BSY until it is back). */
		if (ch->in_flight) {
			ch->reset_pending = true;
		} else {
			signature(ch);
		}
	}
	ch->control = v;
	update_irq(ch);
	pthread_mutex_unlock(&ch->lock);
}

static uint8_t bm_read_byte(struct ide_channel *ch, unsigned int offset)
{
	switch (offset) {
	case IDE_BM_CMD:
		return ch->bm_cmd;
	case IDE_BM_STATUS:
		return ch->bm_status;
	case IDE_BM_PRD:
	case IDE_BM_PRD + 1:
	case IDE_BM_PRD + 2:
	case IDE_BM_PRD + 3:
		return (uint8_t)(ch->bm_prd >> (8 * (offset - IDE_BM_PRD)));
	default:
		return 0;
	}
}

static void bm_write_byte(struct ide_channel *ch, unsigned int offset, uint8_t v)
{
	switch (offset) {
	case IDE_BM_CMD: {
		bool start = (v & BM_START) && !(ch->bm_cmd & BM_START);

		if (!(v & BM_START))
			ch->bm_status &= (uint8_t)~BM_ST_ACTIVE; /* the engine stops */
		ch->bm_cmd = v & (BM_START | BM_TO_MEMORY);
		if (start)
			maybe_start_dma(ch);
		break;
	}
	case IDE_BM_STATUS:
		/* Interrupt and error are cleared by writing ones; the capable
		 * bits are plain storage. */
		ch->bm_status = (uint8_t)((ch->bm_status & ~(BM_ST_INTR | BM_ST_ERROR | BM_ST_CAPABLE)) |
					  (ch->bm_status & (BM_ST_INTR | BM_ST_ERROR) & ~v) |
					  (v & BM_ST_CAPABLE));
		break;
	case IDE_BM_PRD:
	case IDE_BM_PRD + 1:
	case IDE_BM_PRD + 2:
	case IDE_BM_PRD + 3: {
		unsigned int shift = 8 * (offset - IDE_BM_PRD);

		ch->bm_prd = (ch->bm_prd & ~(0xffu << shift)) | ((uint32_t)v << shift);
		ch->bm_prd &= ~3u; /* dword aligned */
		break;
	}
	default:
		break;
	}
}

uint32_t ide_bm_read(struct ide_channel *ch, unsigned int offset, unsigned int size)
{
	uint32_t v = 0;
	unsigned int i;

	pthread_mutex_lock(&ch->lock);
	for (i = 0; i < size && offset + i < 8; i++)
		v |= (uint32_t)bm_read_byte(ch, offset + i) << (8 * i);
	pthread_mutex_unlock(&ch->lock);
	return v;
}

void ide_bm_write(struct ide_channel *ch, unsigned int offset, unsigned int size, uint32_t v)
{
	unsigned int i;

	pthread_mutex_lock(&ch->lock);
	/* The PRD address first when a wide write covers both, then the
	 * command (a start sees the new table). */
	for (i = size; i-- > 0;)
		if (offset + i < 8)
			bm_write_byte(ch, offset + i, (uint8_t)(v >> (8 * i)));
	pthread_mutex_unlock(&ch->lock);
}

void ide_channel_complete(struct ide_channel *ch)
{
	unsigned int i;

	pthread_mutex_lock(&ch->lock);
	for (i = 0; i < 2; i++)
		if (ch->drive[i].blk)
			block_process_completions(ch->drive[i].blk);
	pthread_mutex_unlock(&ch->lock);
}

void ide_channel_drain(struct ide_channel *ch)
{
	unsigned int i;

	pthread_mutex_lock(&ch->lock);
	/* A completion may chain a flush: drain until nothing is left. */
	while (ch->in_flight)
		for (i = 0; i < 2; i++)
			if (ch->drive[i].blk)
				block_drain(ch->drive[i].blk);
	pthread_mutex_unlock(&ch->lock);
}

void ide_channel_reset(struct ide_channel *ch)
{
	unsigned int i;

	pthread_mutex_lock(&ch->lock);
	signature(ch);
	ch->feature = ch->hob_feature = 0;
	ch->control = 0;
	ch->irq_pending = false;
	ch->xfer = IDE_XFER_NONE;
	ch->reset_pending = false;
	ch->bm_cmd = 0;
	ch->bm_status = 0;
	ch->bm_prd = 0;
	for (i = 0; i < 2; i++) {
		ch->drive[i].write_cache = true;
		ch->drive[i].xfer_mode = 0;
	}
	update_irq(ch);
	pthread_mutex_unlock(&ch->lock);
}

int ide_channel_init(struct ide_channel *ch, const char *name, struct irq_line *irq,
		     const struct guest_mem *mem, bool (*can_dma)(void *), void *ctx,
		     struct error *err)
{
	memset(ch, 0, sizeof(*ch));
	ch->buf = calloc(IDE_BUF_SECTORS, SECTOR);
	if (!ch->buf)
		return error_set(err, "%s: out of memory", name);
	pthread_mutex_init(&ch->lock, NULL);
	ch->name = name;
	ch->irq = irq;
	ch->mem = mem;
	ch->can_dma = can_dma;
	ch->ctx = ctx;
	signature(ch);
	ch->drive[0].write_cache = ch->drive[1].write_cache = true;
	return 0;
}

void ide_channel_attach(struct ide_channel *ch, unsigned int unit, struct block_backend *blk,
			const char *serial)
{
	struct ide_drive *d = &ch->drive[unit & 1];

	d->blk = blk;
	d->sectors = block_size(blk) / SECTOR;
	if (serial)
		snprintf(d->serial, sizeof(d->serial), "%s", serial);
	else
		snprintf(d->serial, sizeof(d->serial), "VIREO-%s-%u", ch->name, unit & 1);
}

void ide_channel_destroy(struct ide_channel *ch)
{
	free(ch->buf);
	ch->buf = NULL;
	pthread_mutex_destroy(&ch->lock);
}

/* The record: the task file, the command in progress (its buffer while
 * the guest moves PIO data), the engine's registers, the drives'
 * settings. Nothing is in flight when it is taken (the device paused). */
void ide_channel_save(struct ide_channel *ch, struct state_writer *w)
{
	uint8_t regs[16] = {
		ch->feature, ch->nsect, ch->lbal, ch->lbam, ch->lbah,
		ch->hob_feature, ch->hob_nsect, ch->hob_lbal, ch->hob_lbam, ch->hob_lbah,
		ch->select, ch->status, ch->error, ch->control, ch->cmd, ch->bm_cmd,
	};
	bool pio;
	unsigned int i;

	pthread_mutex_lock(&ch->lock);
	pio = ch->xfer == IDE_XFER_PIO_IN || ch->xfer == IDE_XFER_PIO_OUT;
	state_put_bytes(w, regs, sizeof(regs));
	state_put_u8(w, ch->bm_status);
	state_put_u32(w, ch->bm_prd);
	state_put_bool(w, ch->irq_pending);
	state_put_u8(w, (uint8_t)ch->xfer);
	state_put_u8(w, (uint8_t)ch->unit);
	state_put_u64(w, ch->lba);
	state_put_u32(w, ch->remaining);
	state_put_u32(w, ch->chunk);
	state_put_u32(w, ch->pos);
	state_put_u32(w, ch->block_end);
	state_put_u32(w, pio ? ch->chunk * SECTOR : 0);
	if (pio)
		state_put_bytes(w, ch->buf, (size_t)ch->chunk * SECTOR);
	for (i = 0; i < 2; i++) {
		state_put_bool(w, ch->drive[i].write_cache);
		state_put_u8(w, ch->drive[i].xfer_mode);
	}
	pthread_mutex_unlock(&ch->lock);
}

int ide_channel_load(struct ide_channel *ch, struct state_reader *r, struct error *err)
{
	uint8_t regs[16], bm_status, xfer, unit, xmode[2];
	uint32_t prd, remaining, chunk, pos, block_end, buflen;
	uint64_t lba;
	bool irq, wc[2];
	const uint8_t *data;
	unsigned int i;

	state_get_bytes(r, regs, sizeof(regs));
	bm_status = state_get_u8(r);
	prd = state_get_u32(r);
	irq = state_get_bool(r);
	xfer = state_get_u8(r);
	unit = state_get_u8(r);
	lba = state_get_u64(r);
	remaining = state_get_u32(r);
	chunk = state_get_u32(r);
	pos = state_get_u32(r);
	block_end = state_get_u32(r);
	buflen = state_get_u32(r);
	data = buflen <= IDE_BUF_SECTORS * SECTOR ? state_get_span(r, buflen) : NULL;
	for (i = 0; i < 2; i++) {
		wc[i] = state_get_bool(r);
		xmode[i] = state_get_u8(r);
	}
	if (state_reader_done(r, err) < 0)
		return -1;
	/* Saved drained: no request out, so no command waits on one (a DMA
	 * command can only be waiting for the engine's start). */
	if (xfer >= IDE_XFER_OTHER || unit > 1 || chunk > IDE_BUF_SECTORS ||
	    pos > block_end || block_end > chunk * SECTOR || (block_end % SECTOR) ||
	    buflen > IDE_BUF_SECTORS * SECTOR ||
	    ((xfer == IDE_XFER_PIO_IN || xfer == IDE_XFER_PIO_OUT) && buflen != chunk * SECTOR))
		return error_set(err, "inconsistent command state");
	if (xfer != IDE_XFER_NONE &&
	    (!ch->drive[unit].blk || lba > ch->drive[unit].sectors ||
	     remaining > ch->drive[unit].sectors - lba))
		return error_set(err, "a command beyond its disk");
	pthread_mutex_lock(&ch->lock);
	ch->feature = regs[0];
	ch->nsect = regs[1];
	ch->lbal = regs[2];
	ch->lbam = regs[3];
	ch->lbah = regs[4];
	ch->hob_feature = regs[5];
	ch->hob_nsect = regs[6];
	ch->hob_lbal = regs[7];
	ch->hob_lbam = regs[8];
	ch->hob_lbah = regs[9];
	ch->select = regs[10];
	ch->status = regs[11];
	ch->error = regs[12];
	ch->control = regs[13];
	ch->cmd = regs[14];
	ch->bm_cmd = regs[15];
	ch->bm_status = bm_status;
	ch->bm_prd = prd & ~3u;
	ch->irq_pending = irq;
	ch->xfer = (enum ide_xfer)xfer;
	ch->unit = unit;
	ch->lba = lba;
	ch->remaining = remaining;
	ch->chunk = chunk;
	ch->pos = pos;
	ch->block_end = block_end;
	if (buflen)
		memcpy(ch->buf, data, buflen);
	for (i = 0; i < 2; i++) {
		ch->drive[i].write_cache = wc[i];
		ch->drive[i].xfer_mode = xmode[i];
	}
	ch->in_flight = ch->reset_pending = false;
	update_irq(ch);
	pthread_mutex_unlock(&ch->lock);
	return 0;
}

void ide_channel_write_stats(struct ide_channel *ch, struct jsonw *j)
{
	pthread_mutex_lock(&ch->lock);
	jsonw_uint(j, "commands", ch->stats.commands);
	jsonw_uint(j, "pio_sectors", ch->stats.pio_sectors);
	jsonw_uint(j, "dma_requests", ch->stats.dma_requests);
	jsonw_uint(j, "dma_bytes", ch->stats.dma_bytes);
	jsonw_uint(j, "flushes", ch->stats.flushes);
	jsonw_uint(j, "errors", ch->stats.errors);
	jsonw_uint(j, "interrupts", ch->stats.irqs);
	pthread_mutex_unlock(&ch->lock);
}
