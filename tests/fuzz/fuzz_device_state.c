/* Device state records from a hostile snapshot file or migration stream,
 * loaded into a real machine's devices: the legacy PC devices, a
 * virtio-blk disk, an rng, a user-mode virtio-net and the PIIX3 IDE
 * controller with a disk (all as main.c
 * builds them, with a fake interrupt controller). Any record must be
 * refused cleanly or loaded into a device that then saves, resets and
 * works as a device: never a crash, never memory outside guest RAM.
 *
 * Before the first input the VirtIO devices are brought up as a driver
 * would (features, every queue, MSI-X, DRIVER_OK) and every device's
 * record is kept, so most inputs start from a valid record.
 *
 * Input: the first byte picks the target: 0xff the whole machine
 * (devices_load_all: the section parser, counts, names, checksums);
 * bit 7 set, device (byte & 0x7f) % number of devices gets its valid
 * record with the rest of the input applied as patches (le16 offset,
 * byte to XOR in, three bytes each); bit 7 clear, that device gets the
 * rest of the input as its record. After a load that succeeded, the device is saved again (the
 * record must load back) and reset for the next input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "arch/x86/layout.h"
#include "util/le.h"
#include "virtio/virtio_pci.h"
#include "vmm/vm.h"

#define RAM (1u << 20)

static struct vm vm;
static struct vm_options opts;
static struct device *devs[DEVICE_MAX];
static struct state_writer valid[DEVICE_MAX];
static unsigned int ndevs;

static int fake_set_line(void *chip, unsigned int gsi, int level)
{
	(void)chip;
	CHECK(gsi < IRQ_LINES && (level == 0 || level == 1));
	return 0;
}

static int fake_send_msi(void *chip, uint64_t addr, uint32_t data)
{
	(void)chip;
	(void)addr;
	(void)data;
	return 0;
}

static const struct irq_chip_ops fake_chip = {
	.set_line = fake_set_line,
	.send_msi = fake_send_msi,
};

static void bar_write(struct device *d, uint64_t off, unsigned int size, uint64_t v)
{
	uint64_t base = pci_bar_address(virtio_pci_device(d), 0);

	CHECK(base >= PCI_MMIO32_START);
	pci_mmio_ops.write(&vm.pci, base - PCI_MMIO32_START + off, size, v);
}

/* What a driver does (virtio_pci.c's BAR layout): VERSION_1, every queue
 * of 16 entries in its own 16 KiB of RAM on MSI-X vector q + 1, MSI-X
 * on, DRIVER_OK. */
static void drive(struct device *d, unsigned int index)
{
	struct virtio_device *vdev = virtio_pci_vdev(d);
	unsigned int q;

	bar_write(d, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	bar_write(d, 0x08, 4, 1);
	bar_write(d, 0x0c, 4, 1);
	bar_write(d, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				  VIRTIO_STATUS_FEATURES_OK);
	for (q = 0; q < vdev->num_queues; q++) {
		uint64_t base = 0x10000 + 0x40000 * index + 0x4000 * q;

		bar_write(d, 0x16, 2, q);
		bar_write(d, 0x18, 2, 16);
		bar_write(d, 0x1a, 2, q + 1);
		bar_write(d, 0x20, 4, base);
		bar_write(d, 0x28, 4, base + 0x1000);
		bar_write(d, 0x30, 4, base + 0x2000);
		bar_write(d, 0x1c, 2, 1);
		bar_write(d, 0x4000 + 16 * (q + 1), 4, 0xfee00000);
		bar_write(d, 0x4000 + 16 * (q + 1) + 8, 4, 0x40 + q);
		bar_write(d, 0x4000 + 16 * (q + 1) + 12, 4, 0);
	}
	bar_write(d, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	CHECK(vdev->status & VIRTIO_STATUS_DRIVER_OK);
}

static void build(void)
{
	static char disk[] = "/tmp/vireo-fuzz-state-XXXXXX";
	static char ide_disk[] = "/tmp/vireo-fuzz-state-ide-XXXXXX";
	char arg[96];
	struct device *d;
	int fd;

	vm_init(&vm, &opts);
	irq_service_init(&vm.irq, &fake_chip, NULL);
	CHECK(guest_mem_map(&vm.mem, RAM) == 0);
	fd = mkstemp(disk);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 1 << 20) == 0);
	close(fd);
	snprintf(arg, sizeof(arg), "path=%s", disk);
	CHECK(parse_disk_option(arg, &opts.disk[0]) == 0);
	/* And an IDE disk (the PIIX3's record). */
	fd = mkstemp(ide_disk);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 1 << 20) == 0);
	close(fd);
	snprintf(arg, sizeof(arg), "path=%s,if=ide", ide_disk);
	CHECK(parse_disk_option(arg, &opts.disk[1]) == 0);
	opts.ndisks = 2;
	opts.nide_disks = 1;
	CHECK(parse_net_option("user", 0, &opts.net[0]) == 0);
	opts.nnets = 1;
	opts.rng = true;
	opts.no_ioeventfd = true;
	CHECK(vm_create_legacy_devices(&vm, NULL) == 0);
	CHECK(vm_create_virtio_devices(&vm, &opts, NULL) == 0);
	CHECK(vm_create_ide(&vm, &opts, NULL) == 0);
	CHECK(devices_realize_all(&vm.devices, NULL) == 0);
	for (d = vm.devices.head; d; d = d->next)
		if (virtio_pci_vdev(d))
			drive(d, ndevs++);
	ndevs = 0;
	CHECK(devices_pause_all(&vm.devices, NULL) == 0);
	unlink(disk); /* the open disks stay usable */
	unlink(ide_disk);
	for (d = vm.devices.head; d; d = d->next) {
		state_writer_init(&valid[ndevs]);
		if (d->ops->save)
			d->ops->save(d, &valid[ndevs]);
		devs[ndevs++] = d;
	}
}

/* A loaded device: its record reads back, and the reset clears it for
 * the next input. */
static void exercise(struct device *d)
{
	struct state_writer w;
	struct state_reader r;
	struct error err = { 0 };

	state_writer_init(&w);
	d->ops->save(d, &w);
	CHECK(!w.failed);
	state_reader_init(&r, w.buf, w.len);
	CHECK(d->ops->load(d, &r, &err) == 0);
	state_writer_free(&w);
	if (d->ops->reset)
		d->ops->reset(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state_reader r;
	struct error err = { 0 };
	uint8_t *patched = NULL;
	struct device *d;
	unsigned int i;

	if (!ndevs)
		build();
	if (size < 1)
		return 0;
	state_reader_init(&r, data + 1, size - 1);
	if (data[0] == 0xff) {
		if (devices_load_all(&vm.devices, &r, &err) < 0) {
			CHECK(err.set);
			return 0;
		}
		for (i = 0; i < ndevs; i++)
			if (devs[i]->ops->save)
				exercise(devs[i]);
		return 0;
	}
	i = (data[0] & 0x7f) % ndevs;
	d = devs[i];
	if (!d->ops->load)
		return 0;
	if (data[0] & 0x80) {
		patched = malloc(valid[i].len ? valid[i].len : 1);
		CHECK(patched);
		memcpy(patched, valid[i].buf, valid[i].len);
		for (size_t at = 1; valid[i].len && at + 3 <= size; at += 3)
			patched[le16_get(data + at) % valid[i].len] ^= data[at + 2];
		state_reader_init(&r, patched, valid[i].len);
	}
	if (d->ops->load(d, &r, &err) == 0)
		exercise(d);
	else
		CHECK(err.set);
	free(patched);
	return 0;
}
