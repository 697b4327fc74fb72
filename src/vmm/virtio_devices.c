/* The VirtIO devices of a machine, from the command line to the PCI bus:
 * disks, NICs, the console and the RNG, each on its own virtio-pci
 * function with its own I/O thread. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "util/log.h"
#include "virtio/virtio_blk.h"
#include "virtio/virtio_can.h"
#include "virtio/virtio_console.h"
#include "virtio/virtio_net.h"
#include "virtio/virtio_pci.h"
#include "virtio/virtio_rng.h"
#include "vmm/vm.h"

static int add(struct vm *vm, struct virtio_device *vdev, void (*destroy)(struct virtio_device *))
{
	if (!vdev)
		return -1;
	vm->virtio[vm->nvirtio].vdev = vdev;
	vm->virtio[vm->nvirtio].destroy = destroy;
	vm->nvirtio++;
	return 0;
}

static void console_output(void *ctx, const uint8_t *buf, size_t len)
{
	struct vm *vm = ctx;

	console_write_buf(&vm->console, buf, len);
}

static void console_rx_space(void *ctx)
{
	struct vm *vm = ctx;
	uint64_t one = 1;

	if (write(vm->wake_fd, &one, sizeof(one)) < 0) {
		/* The loop re-polls anyway. */
	}
}

int vm_create_virtio_devices(struct vm *vm, const struct vm_options *o)
{
	struct virtio_console_io io = {
		.output = console_output, .rx_space = console_rx_space, .ctx = vm,
	};
	unsigned int i;

	/* Each backend is opened here, by the VMM, and handed to its device,
	 * which owns it from then on: the devices never see options. */
	for (i = 0; i < o->ndisks; i++) {
		struct block_backend *b = block_open(&o->disk[i].block);
		struct virtio_device *d = b ? virtio_blk_create(b, o->disk[i].serial, i) : NULL;

		if (b && !d)
			block_close(b);
		if (add(vm, d, virtio_blk_destroy) < 0)
			return -1;
	}
	for (i = 0; i < o->nnets; i++) {
		struct net_backend *b = net_open(&o->net[i].net);
		struct virtio_device *d = b ? virtio_net_create(b, o->net[i].mac, i) : NULL;

		if (b && !d)
			net_close(b);
		if (add(vm, d, virtio_net_destroy) < 0)
			return -1;
	}
	for (i = 0; i < o->ncans; i++) {
		struct can_backend *b = can_backend_open(&o->can[i].can);
		struct virtio_device *d = b ? virtio_can_create(b, i) : NULL;

		if (b && !d)
			can_backend_close(b);
		if (add(vm, d, virtio_can_destroy) < 0)
			return -1;
	}
	if (o->console == CONSOLE_VIRTIO) {
		if (add(vm, virtio_console_create(&io), virtio_console_destroy) < 0)
			return -1;
		vm->vconsole = vm->virtio[vm->nvirtio - 1].vdev;
	}
	if (o->rng && add(vm, virtio_rng_create(), virtio_rng_destroy) < 0)
		return -1;
	return 0;
}

int vm_attach_virtio_devices(struct vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->nvirtio; i++) {
		struct virtio_pci_env env = {
			.kvm = &vm->kvm,
			.irq = &vm->irq,
			.host = &vm->pci,
			.mem = &vm->mem,
			.use_ioeventfd = !vm->opts->no_ioeventfd,
		};

		vm->virtio[i].vp = virtio_pci_add(vm->virtio[i].vdev, &env);
		if (!vm->virtio[i].vp)
			return -1;
	}
	return 0;
}

void vm_detach_virtio_devices(struct vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->nvirtio; i++) {
		virtio_pci_remove(vm->virtio[i].vp);
		vm->virtio[i].vp = NULL;
	}
}

void vm_destroy_virtio_devices(struct vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->nvirtio; i++)
		vm->virtio[i].destroy(vm->virtio[i].vdev);
	vm->nvirtio = 0;
	vm->vconsole = NULL;
}

void vm_write_virtio_stats(struct vm *vm, struct json *j)
{
	unsigned int i;

	for (i = 0; i < vm->nvirtio; i++) {
		struct virtio_device *vdev = vm->virtio[i].vdev;
		const struct pci_device *pd = vm->virtio[i].vp ? virtio_pci_device(vm->virtio[i].vp)
							       : NULL;

		json_begin_object(j, vdev->name);
		/* MMIO exits that reached the device's registers; with
		 * ioeventfds, queue notifications are not among them. */
		json_uint(j, "exits", pd ? __atomic_load_n(&pd->exits, __ATOMIC_RELAXED) : 0);
		json_uint(j, "queue_notifications", vdev->notifications);
		json_uint(j, "notify_exits", __atomic_load_n(&vdev->notify_exits, __ATOMIC_RELAXED));
		json_uint(j, "interrupts", vdev->interrupts);
		if (vdev->ops->write_stats)
			vdev->ops->write_stats(vdev, j);
		json_end_object(j);
	}
}
