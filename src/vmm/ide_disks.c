/* Disks from the command line: each image opened by the VMM before KVM is
 * touched (bad input reported first), then handed to the device that
 * serves it — virtio-blk (virtio_devices.c) or, for if=ide, the PIIX3 IDE
 * controller built here. */
#include <string.h>

#include "hw/piix_ide.h"
#include "vmm/vm.h"

struct block_backend *vm_open_disk(struct vm *vm, const struct disk_config *c)
{
	struct block_options bo = c->block;

	/* A live migration's source holds the image until it hands over
	 * (vmm/migration.h). */
	bo.defer_lock = vm->opts->incoming && !strncmp(vm->opts->incoming, "tcp:", 4);
	return block_open(&bo);
}

int vm_create_ide(struct vm *vm, const struct vm_options *o, struct error *err)
{
	struct piix_ide_env env = {
		.pio = &vm->pio, .host = &vm->pci, .irq = &vm->irq, .mem = &vm->mem,
	};
	struct block_backend *disks[PIIX_IDE_MAX_DISKS];
	const char *serials[PIIX_IDE_MAX_DISKS];
	unsigned int i, n = 0;
	struct device *d;

	for (i = 0; i < o->ndisks; i++) {
		if (!o->disk[i].ide)
			continue;
		disks[n] = vm_open_disk(vm, &o->disk[i]);
		if (!disks[n])
			goto fail; /* block_open logged why */
		serials[n++] = o->disk[i].serial;
	}
	if (!n)
		return 0;
	d = piix_ide_create(&env, disks, serials, n, err);
	if (!d)
		goto fail;
	if (device_register(&vm->devices, d, err) < 0) {
		d->ops->destroy(d);
		return -1;
	}
	return 0;
fail:
	while (n-- > 0)
		block_close(disks[n]);
	return -1;
}
