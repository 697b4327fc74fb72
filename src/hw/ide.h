/* One IDE (parallel ATA) channel: the task file registers its two drive
 * positions share (command block at 0x1f0/0x170, control at 0x3f6/0x376),
 * ATA disks behind it on block backends, and the channel's half of a
 * bus-master DMA engine (SFF-8038i: command, status, PRD table address).
 *
 * What Linux's libata (ata_piix) drives: software reset and the ATA
 * signature, IDENTIFY DEVICE, SET FEATURES, READ/WRITE SECTORS (PIO, one
 * interrupt per sector) and READ/WRITE DMA through the PRD table, their
 * 48-bit EXT forms, FLUSH CACHE, the power and verify commands it issues,
 * and the interrupt protocol (INTRQ raised at each DRQ block and at
 * completion, cleared by reading the status register, masked by nIEN).
 *
 * The guest is hostile: LBA ranges are checked against the disk, PRD
 * entries must lie in guest RAM, and nothing it writes sizes a host
 * buffer. One request per channel is in flight at a time (ATA runs one
 * command per channel); its completion comes back through the drive's
 * block backend and is handed to ide_channel_complete() in the device's
 * I/O thread. Every entry point takes the channel's lock. */
#ifndef VIREO_HW_IDE_H
#define VIREO_HW_IDE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block/block.h"
#include "hw/irq.h"
#include "mem/guest_mem.h"
#include "util/error.h"
#include "util/jsonw.h"
#include "util/state.h"

#define IDE_BUF_SECTORS 256 /* PIO is staged in chunks of this many sectors */
#define IDE_SERIAL_MAX 20   /* IDENTIFY words 10-19 */
#define IDE_MAX_PRD 1024    /* PRD entries one DMA command may use (an iovec each) */

/* Port offsets in the bus-master block (per channel, 8 bytes). */
#define IDE_BM_CMD 0
#define IDE_BM_STATUS 2
#define IDE_BM_PRD 4

enum ide_xfer {
	IDE_XFER_NONE,
	IDE_XFER_PIO_IN,  /* the guest reads the buffer through the data port */
	IDE_XFER_PIO_OUT, /* the guest fills it */
	IDE_XFER_DMA,	  /* a DMA command waits for (or runs on) the engine */
	IDE_XFER_OTHER,	  /* a command without data (FLUSH) in flight */
};

struct ide_drive {
	struct block_backend *blk; /* NULL: no drive at this position */
	uint64_t sectors;
	char serial[IDE_SERIAL_MAX + 1];
	bool write_cache; /* SET FEATURES 0x02/0x82; off: each write is flushed */
	uint8_t xfer_mode; /* SET FEATURES 0x03: the mode the host chose, 0: default */
};

struct ide_stats {
	uint64_t commands, pio_sectors, dma_requests, dma_bytes, flushes, errors, irqs;
};

struct ide_channel {
	pthread_mutex_t lock;
	const char *name; /* "ide0" */
	struct ide_drive drive[2];
	/* The task file. The 48-bit commands read each of these registers
	 * twice: hob_* hold the value written before the last one. */
	uint8_t feature, nsect, lbal, lbam, lbah;
	uint8_t hob_feature, hob_nsect, hob_lbal, hob_lbam, hob_lbah;
	uint8_t select; /* the device register: DEV (bit 4), LBA (bit 6), LBA 27:24 */
	uint8_t status, error;
	uint8_t control; /* device control: nIEN, SRST, HOB */
	bool irq_pending; /* INTRQ (before nIEN) */
	/* The command in progress. */
	enum ide_xfer xfer;
	uint8_t cmd;
	unsigned int unit; /* the drive it runs on */
	uint64_t lba;	    /* next sector to move between the disk and the buffer */
	uint32_t remaining; /* sectors after those in the buffer */
	uint32_t chunk;	    /* sectors in the buffer */
	uint32_t pos, block_end; /* data port position; end of the current DRQ block */
	bool in_flight;		 /* a block request is out */
	bool flush_pending;	 /* write cache off: a FLUSH follows this write */
	bool reset_pending;	 /* SRST ended while a request was out */
	uint8_t *buf;		 /* IDE_BUF_SECTORS sectors */
	/* Bus-master DMA. */
	uint8_t bm_cmd, bm_status;
	uint32_t bm_prd;
	struct block_req req;
	struct iovec iov[IDE_MAX_PRD];
	unsigned int iovcnt;
	uint64_t dma_bytes; /* of the command in flight */
	/* Environment. */
	struct irq_line *irq;
	const struct guest_mem *mem;
	/* Whether the PCI function may master the bus now (command register). */
	bool (*can_dma)(void *ctx);
	void *ctx;
	struct ide_stats stats;
};

/* 0, or -1 out of memory (err set). */
int ide_channel_init(struct ide_channel *ch, const char *name, struct irq_line *irq,
		     const struct guest_mem *mem, bool (*can_dma)(void *), void *ctx,
		     struct error *err);
/* Puts a disk at unit 0 (master) or 1 (slave), before the guest runs. The
 * channel does not own blk. serial may be NULL (one is made up). */
void ide_channel_attach(struct ide_channel *ch, unsigned int unit, struct block_backend *blk,
			const char *serial);
void ide_channel_destroy(struct ide_channel *ch);

/* The command block (offset 0-7; the data port takes 1, 2 or 4 bytes). */
uint32_t ide_cmd_read(struct ide_channel *ch, unsigned int offset, unsigned int size);
void ide_cmd_write(struct ide_channel *ch, unsigned int offset, unsigned int size, uint32_t v);
/* The control block: alternate status (read), device control (write). */
uint8_t ide_ctl_read(struct ide_channel *ch);
void ide_ctl_write(struct ide_channel *ch, uint8_t v);
/* The channel's 8 bytes of the bus-master block. */
uint32_t ide_bm_read(struct ide_channel *ch, unsigned int offset, unsigned int size);
void ide_bm_write(struct ide_channel *ch, unsigned int offset, unsigned int size, uint32_t v);

/* Runs the completions of the drives' backends (the I/O thread, when a
 * completion fd is readable). */
void ide_channel_complete(struct ide_channel *ch);
/* Waits for the request in flight, if any (pause; no handler thread). */
void ide_channel_drain(struct ide_channel *ch);
/* Power-on state (system reset; nothing in flight). */
void ide_channel_reset(struct ide_channel *ch);

void ide_channel_save(struct ide_channel *ch, struct state_writer *w);
/* Checked whole before anything changes; nothing in flight. */
int ide_channel_load(struct ide_channel *ch, struct state_reader *r, struct error *err);
void ide_channel_write_stats(struct ide_channel *ch, struct jsonw *j);

/* The 256 words of IDENTIFY DEVICE for d (exposed for tests). */
void ide_identify(const struct ide_drive *d, uint16_t id[256]);

#endif
