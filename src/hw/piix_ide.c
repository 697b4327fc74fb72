#include "hw/piix_ide.h"

#include <stdio.h>
#include <sys/epoll.h>
#include <stdlib.h>
#include <string.h>

#include "hw/ide.h"
#include "util/ioloop.h"
#include "util/le.h"

#define PIIX3_VENDOR 0x8086
#define PIIX3_ISA 0x7000
#define PIIX3_IDE 0x7010
#define CLASS_ISA_BRIDGE 0x060100
/* Mass storage, IDE; programming interface 80h: bus master, both
 * channels in compatibility mode (fixed ports, ISA IRQs). */
#define CLASS_IDE_COMPAT 0x010180
#define BM_BAR 4
#define BM_BAR_SIZE 16
#define IDETIM 0x40 /* 16 bits per channel; bit 15: the channel decodes */
#define IDETIM_DECODE 0x8000

static const struct {
	uint16_t cmd, ctl;
	unsigned int irq;
} legacy[2] = { { 0x1f0, 0x3f6, 14 }, { 0x170, 0x376, 15 } };

struct piix_ide {
	struct device dev;
	struct pci_device isa; /* function 0: identity only */
	struct pci_device pci; /* function 1 */
	struct ide_channel ch[2];
	struct irq_line irq[2];
	struct block_backend *disk[PIIX_IDE_MAX_DISKS];
	unsigned int ndisks;
	struct ioloop loop;
	bool loop_ready;
	struct ioloop_watch watch[PIIX_IDE_MAX_DISKS];
	struct piix_ide_env env;
	int slot;
	bool registered[4]; /* the legacy port regions on env.pio */
};

/* A channel answers its ports while the function decodes I/O and its
 * IDETIM says the channel is on (ata_piix checks the same bit). */
static bool decodes(const struct piix_ide *p, unsigned int c)
{
	return (le16_get(p->pci.config + PCI_COMMAND) & PCI_COMMAND_IO) &&
	       (le16_get(p->pci.config + IDETIM + 2 * c) & IDETIM_DECODE);
}

static bool can_dma(void *ctx)
{
	const struct piix_ide *p = ctx;

	return (le16_get(p->pci.config + PCI_COMMAND) & PCI_COMMAND_MASTER) != 0;
}

/* The legacy regions: opaque is the channel (whose ctx is the controller);
 * the ops table says which block. */
static uint64_t cmd_read(void *opaque, uint64_t off, unsigned int size)
{
	struct ide_channel *ch = opaque;
	struct piix_ide *p = ch->ctx;
	unsigned int c = (unsigned int)(ch - p->ch);

	if (!decodes(p, c))
		return ~0ULL;
	return ide_cmd_read(ch, (unsigned int)off, size);
}

static void cmd_write(void *opaque, uint64_t off, unsigned int size, uint64_t v)
{
	struct ide_channel *ch = opaque;
	struct piix_ide *p = ch->ctx;

	if (decodes(p, (unsigned int)(ch - p->ch)))
		ide_cmd_write(ch, (unsigned int)off, size, (uint32_t)v);
}

static uint64_t ctl_read(void *opaque, uint64_t off, unsigned int size)
{
	struct ide_channel *ch = opaque;
	struct piix_ide *p = ch->ctx;

	(void)off;
	(void)size;
	if (!decodes(p, (unsigned int)(ch - p->ch)))
		return ~0ULL;
	return ide_ctl_read(ch);
}

static void ctl_write(void *opaque, uint64_t off, unsigned int size, uint64_t v)
{
	struct ide_channel *ch = opaque;
	struct piix_ide *p = ch->ctx;

	(void)off;
	(void)size;
	if (decodes(p, (unsigned int)(ch - p->ch)))
		ide_ctl_write(ch, (uint8_t)v);
}

static const struct bus_ops cmd_ops = { .read = cmd_read, .write = cmd_write };
static const struct bus_ops ctl_ops = { .read = ctl_read, .write = ctl_write };

/* BAR 4: bytes 0-7 the primary channel's engine, 8-15 the secondary's. */
static uint64_t bm_read(void *opaque, uint64_t off, unsigned int size)
{
	struct piix_ide *p = opaque;

	return ide_bm_read(&p->ch[off >= 8], (unsigned int)(off & 7), size);
}

static void bm_write(void *opaque, uint64_t off, unsigned int size, uint64_t v)
{
	struct piix_ide *p = opaque;

	ide_bm_write(&p->ch[off >= 8], (unsigned int)(off & 7), size, (uint32_t)v);
}

static const struct bus_ops bm_ops = { .read = bm_read, .write = bm_write };

static void completion_ready(void *ctx, uint32_t events)
{
	struct ide_channel *ch = ctx;

	(void)events;
	ide_channel_complete(ch);
}

static struct ide_channel *channel_of(struct piix_ide *p, unsigned int disk)
{
	return &p->ch[disk / 2];
}

static int piix_realize(struct device *d, struct error *err)
{
	struct piix_ide *p = d->opaque;
	unsigned int i;

	if (ioloop_init(&p->loop, "ide") < 0)
		return error_set(err, "%s: cannot create its I/O thread", d->name);
	p->loop_ready = true;
	for (i = 0; i < p->ndisks; i++)
		if (ioloop_add(&p->loop, &p->watch[i], block_completion_fd(p->disk[i]), EPOLLIN,
			       completion_ready, channel_of(p, i)) < 0)
			return error_set(err, "%s: cannot watch its disk", d->name);
	if (ioloop_start(&p->loop) < 0)
		return error_set(err, "%s: cannot start its I/O thread", d->name);
	return 0;
}

static int piix_pause(struct device *d, struct error *err)
{
	struct piix_ide *p = d->opaque;

	(void)err;
	ioloop_stop(&p->loop);
	ide_channel_drain(&p->ch[0]);
	ide_channel_drain(&p->ch[1]);
	return 0;
}

static void piix_resume(struct device *d)
{
	struct piix_ide *p = d->opaque;

	if (ioloop_start(&p->loop) < 0)
		fprintf(stderr, "vireo: %s: cannot restart its I/O thread\n", d->name);
}

static void piix_reset(struct device *d)
{
	struct piix_ide *p = d->opaque;

	pci_device_restore_reset_state(&p->isa);
	pci_device_restore_reset_state(&p->pci);
	ide_channel_reset(&p->ch[0]);
	ide_channel_reset(&p->ch[1]);
}

static void piix_save(struct device *d, struct state_writer *w)
{
	struct piix_ide *p = d->opaque;

	unsigned int c;

	state_put_bytes(w, p->isa.config, PCI_CONFIG_SPACE);
	state_put_bytes(w, p->pci.config, PCI_CONFIG_SPACE);
	/* Each channel's record whole, behind its length: a channel checks
	 * that it read its record exactly. */
	for (c = 0; c < 2; c++) {
		struct state_writer cw;

		state_writer_init(&cw);
		ide_channel_save(&p->ch[c], &cw);
		if (cw.failed)
			w->failed = true;
		state_put_u32(w, (uint32_t)cw.len);
		state_put_bytes(w, cw.buf, cw.len);
		state_writer_free(&cw);
	}
}

/* The configuration spaces are checked against what this machine built:
 * identity and read-only bits must match (a record of another device is
 * refused); only writable bits are taken. */
static int load_config(struct pci_device *pd, const uint8_t *rec, struct error *err)
{
	unsigned int i;

	for (i = 0; i < PCI_CONFIG_SPACE; i++)
		if ((rec[i] & ~pd->wmask[i]) != (pd->config[i] & ~pd->wmask[i]))
			return error_set(err, "PCI configuration byte 0x%02x is 0x%02x, not 0x%02x", i,
					 rec[i], pd->config[i]);
	return 0;
}

static int piix_load(struct device *d, struct state_reader *r, struct error *err)
{
	struct piix_ide *p = d->opaque;
	uint8_t isa[PCI_CONFIG_SPACE], fn1[PCI_CONFIG_SPACE];
	const uint8_t *rec[2];
	uint32_t len[2];
	unsigned int c;

	state_get_bytes(r, isa, sizeof(isa));
	state_get_bytes(r, fn1, sizeof(fn1));
	for (c = 0; c < 2; c++) {
		len[c] = state_get_u32(r);
		rec[c] = state_get_span(r, len[c]);
	}
	if (state_reader_done(r, err) < 0 || load_config(&p->isa, isa, err) < 0 ||
	    load_config(&p->pci, fn1, err) < 0)
		return -1;
	/* Each channel checks its record whole before it changes. The
	 * primary's is applied before the secondary's is checked: a refused
	 * secondary leaves the primary loaded, and the machine, which was
	 * told, does not run. */
	for (c = 0; c < 2; c++) {
		struct state_reader cr;

		state_reader_init(&cr, rec[c], len[c]);
		if (ide_channel_load(&p->ch[c], &cr, err) < 0) {
			error_prefix(err, "%s: ", p->ch[c].name);
			return -1;
		}
	}
	pthread_mutex_lock(&p->env.host->lock);
	memcpy(p->isa.config, isa, sizeof(isa));
	memcpy(p->pci.config, fn1, sizeof(fn1));
	pthread_mutex_unlock(&p->env.host->lock);
	return 0;
}

static void piix_write_stats(struct device *d, struct jsonw *j)
{
	struct piix_ide *p = d->opaque;
	unsigned int c;

	jsonw_uint(j, "bm_exits", __atomic_load_n(&p->pci.exits, __ATOMIC_RELAXED));
	for (c = 0; c < 2; c++) {
		jsonw_begin_object(j, p->ch[c].name);
		ide_channel_write_stats(&p->ch[c], j);
		jsonw_end_object(j);
	}
	/* What made the guest's FLUSH CACHE durable, disk by disk. */
	for (c = 0; c < p->ndisks; c++) {
		char name[16];

		snprintf(name, sizeof(name), "disk%u", c);
		jsonw_begin_object(j, name);
		jsonw_uint(j, "fdatasyncs", block_fdatasyncs(p->disk[c]));
		jsonw_bool(j, "direct", block_direct(p->disk[c]));
		jsonw_end_object(j);
	}
}

static struct block_backend *piix_disk(struct device *d, unsigned int n)
{
	struct piix_ide *p = d->opaque;

	return n < p->ndisks ? p->disk[n] : NULL;
}

static void unplug(struct piix_ide *p)
{
	unsigned int c;

	for (c = 0; c < 2; c++) {
		if (p->registered[2 * c]) {
			bus_coalesce(p->env.pio, legacy[c].cmd + 1, 6, false);
			bus_unregister(p->env.pio, legacy[c].cmd);
		}
		if (p->registered[2 * c + 1])
			bus_unregister(p->env.pio, legacy[c].ctl);
		p->registered[2 * c] = p->registered[2 * c + 1] = false;
	}
	if (p->slot >= 0) {
		pci_host_remove(p->env.host, &p->pci);
		pci_host_remove(p->env.host, &p->isa);
		p->slot = -1;
	}
}

static void free_piix(struct piix_ide *p, bool close_disks)
{
	unsigned int i;

	if (p->loop_ready) {
		ioloop_stop(&p->loop);
		ioloop_destroy(&p->loop);
	}
	unplug(p);
	for (i = 0; i < 2; i++) {
		ide_channel_drain(&p->ch[i]);
		irq_line_release(&p->irq[i]);
		ide_channel_destroy(&p->ch[i]);
	}
	if (close_disks)
		for (i = 0; i < p->ndisks; i++)
			block_close(p->disk[i]);
	free(p);
}

static void piix_destroy(struct device *d)
{
	free_piix(d->opaque, true);
}

static const struct device_ops piix_ops = {
	.realize = piix_realize,
	.pause = piix_pause,
	.resume = piix_resume,
	.reset = piix_reset,
	.save = piix_save,
	.load = piix_load,
	.write_stats = piix_write_stats,
	.disk = piix_disk,
	.destroy = piix_destroy,
};

static int plug(struct piix_ide *p, struct error *err)
{
	static const char *const names[4] = { "ide0-cmd", "ide0-ctl", "ide1-cmd", "ide1-ctl" };
	unsigned int c;

	p->slot = pci_host_add(p->env.host, &p->isa);
	if (p->slot < 0)
		return error_set(err, "piix3-ide: no free PCI slot");
	if (pci_host_add_function(p->env.host, &p->pci, (unsigned int)p->slot, 1) < 0) {
		pci_host_remove(p->env.host, &p->isa);
		p->slot = -1;
		return error_set(err, "piix3-ide: cannot add its IDE function");
	}
	/* As firmware leaves it: I/O and bus mastering on, both channels
	 * decoding. */
	le16_put(p->pci.config + PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MASTER);
	le16_put(p->pci.config + IDETIM, IDETIM_DECODE);
	le16_put(p->pci.config + IDETIM + 2, IDETIM_DECODE);
	pci_device_save_reset_state(&p->isa);
	pci_device_save_reset_state(&p->pci);
	for (c = 0; c < 2; c++) {
		if (bus_register(p->env.pio, legacy[c].cmd, 8, names[2 * c], &cmd_ops, &p->ch[c]) < 0)
			return error_set(err, "piix3-ide: ports 0x%x-0x%x are taken", legacy[c].cmd,
					 legacy[c].cmd + 7);
		p->registered[2 * c] = true;
		/* The task file's parameter registers (features to device,
		 * ports 1-6) only latch values until the command register
		 * (port 7) is written: written without an exit each
		 * (kvm/coalesced.h), replayed before that command. The data
		 * port (0) moves a transfer on and raises interrupts: not. */
		bus_coalesce(p->env.pio, legacy[c].cmd + 1, 6, true);
		if (bus_register(p->env.pio, legacy[c].ctl, 1, names[2 * c + 1], &ctl_ops, &p->ch[c]) < 0)
			return error_set(err, "piix3-ide: port 0x%x is taken", legacy[c].ctl);
		p->registered[2 * c + 1] = true;
	}
	return 0;
}

struct device *piix_ide_create(const struct piix_ide_env *env, struct block_backend **disks,
			       const char *const *serials, unsigned int ndisks, struct error *err)
{
	static const char *const chan_names[2] = { "ide0", "ide1" };
	struct piix_ide *p;
	unsigned int i, c;

	if (!ndisks || ndisks > PIIX_IDE_MAX_DISKS) {
		error_set(err, "piix3-ide: %u disks (1 to %d)", ndisks, PIIX_IDE_MAX_DISKS);
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		error_set(err, "piix3-ide: out of memory");
		return NULL;
	}
	p->env = *env;
	p->slot = -1;
	for (c = 0; c < 2; c++) {
		if (ide_channel_init(&p->ch[c], chan_names[c], &p->irq[c], env->mem, can_dma, p,
				     err) < 0 ||
		    irq_line_claim(env->irq, legacy[c].irq, &p->irq[c]) < 0) {
			if (!p->ch[c].buf)
				error_set(err, "piix3-ide: out of memory");
			else
				error_set(err, "piix3-ide: IRQ %u is not free", legacy[c].irq);
			while (c-- > 0) {
				irq_line_release(&p->irq[c]);
				ide_channel_destroy(&p->ch[c]);
			}
			free(p);
			return NULL;
		}
	}
	for (i = 0; i < ndisks; i++) {
		p->disk[i] = disks[i];
		ide_channel_attach(&p->ch[i / 2], i % 2, disks[i], serials ? serials[i] : NULL);
	}
	p->ndisks = ndisks;
	pci_device_init(&p->isa, PIIX3_VENDOR, PIIX3_ISA, CLASS_ISA_BRIDGE, 0);
	p->isa.name = "piix3-isa";
	pci_device_init(&p->pci, PIIX3_VENDOR, PIIX3_IDE, CLASS_IDE_COMPAT, 0);
	p->pci.name = "piix3-ide";
	p->pci.wmask[IDETIM] = p->pci.wmask[IDETIM + 1] = 0xff;
	p->pci.wmask[IDETIM + 2] = p->pci.wmask[IDETIM + 3] = 0xff;
	pci_device_set_bar(&p->pci, BM_BAR, BM_BAR_SIZE, PCI_BAR_IO);
	/* Each channel's PRD table address only latches until the engine is
	 * started (the command byte): coalesced, as the task file's. */
	pci_device_coalesce(&p->pci, BM_BAR, IDE_BM_PRD, 4);
	pci_device_coalesce(&p->pci, BM_BAR, 8 + IDE_BM_PRD, 4);
	p->pci.bar_ops[BM_BAR] = &bm_ops;
	p->pci.bar_opaque[BM_BAR] = p;
	if (plug(p, err) < 0) {
		free_piix(p, false);
		return NULL;
	}
	device_init(&p->dev, "piix3-ide", "piix3-ide", &piix_ops, p);
	p->dev.state_version = 1;
	return &p->dev;
}
