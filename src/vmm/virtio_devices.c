/* The VirtIO devices of a machine, from the command line to the device
 * list: the VMM opens each backend, hands it to its device, and puts the
 * device on virtio-pci (each with its own I/O thread once realized). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/eventfd.h"
#include "util/log.h"
#include "virtio/virtio_blk.h"
#include "virtio/virtio_can.h"
#include "virtio/virtio_console.h"
#include "virtio/virtio_net.h"
#include "virtio/virtio_pci.h"
#include "virtio/virtio_rng.h"
#include "vmm/vm.h"

/* Wraps vdev in virtio-pci and registers it; destroys vdev on failure. */
static int add(struct vm *vm, struct virtio_device *vdev, struct error *err)
{
	struct virtio_pci_env env = {
		.kvm = &vm->kvm,
		.irq = &vm->irq,
		.host = &vm->pci,
		.mem = &vm->mem,
		.use_ioeventfd = !vm->opts->no_ioeventfd,
		.intx_gsi = vm_pci_intx_gsi,
	};
	struct device *d;

	if (!vdev)
		return -1; /* the backend or the device logged why */
	vdev->report = vm_post_event;
	vdev->report_ctx = vm;
	d = virtio_pci_create(vdev, &env, err);
	if (!d) {
		vdev->ops->destroy(vdev);
		return -1;
	}
	if (device_register(&vm->devices, d, err) < 0) {
		d->ops->destroy(d);
		return -1;
	}
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

	eventfd_signal(vm->wake_fd);
}

static size_t console_receive(void *ctx, const uint8_t *buf, size_t len)
{
	return virtio_console_receive(ctx, buf, len);
}

int vm_create_virtio_devices(struct vm *vm, const struct vm_options *o, struct error *err)
{
	struct virtio_console_io io = {
		.output = console_output, .rx_space = console_rx_space, .ctx = vm,
	};
	unsigned int i, nblk;

	/* Each backend is opened here, by the VMM, and handed to its device,
	 * which owns it from then on: the devices never see options. The
	 * backends log what is wrong with them (one line naming the file or
	 * interface). */
	for (i = 0, nblk = 0; i < o->ndisks; i++) {
		struct block_backend *b;
		struct virtio_device *d;

		if (o->disk[i].ide)
			continue;
		b = vm_open_disk(vm, &o->disk[i]);
		d = b ? virtio_blk_create(b, o->disk[i].serial, nblk++) : NULL;
		if (b && !d)
			block_close(b);
		if (add(vm, d, err) < 0)
			return -1;
	}
	for (i = 0; i < o->nnets; i++) {
		struct net_backend *b;
		struct virtio_device *d;

		/* The NICs keep the command line's order on the bus, whatever
		 * their model. */
		if (o->net[i].model == NET_MODEL_E1000) {
			if (vm_add_e1000(vm, &o->net[i], i, err) < 0)
				return -1;
			continue;
		}
		b = net_open(&o->net[i].net);
		d = b ? virtio_net_create(b, o->net[i].mac, i) : NULL;
		if (b && !d)
			net_close(b);
		if (add(vm, d, err) < 0)
			return -1;
	}
	for (i = 0; i < o->ncans; i++) {
		struct can_backend *b;
		struct virtio_device *d;

		/* The same for the CAN controllers. */
		if (o->can[i].model == CAN_MODEL_KVASER) {
			if (vm_add_kvaser(vm, &o->can[i], i, err) < 0)
				return -1;
			continue;
		}
		b = can_backend_open(&o->can[i].can);
		d = b ? virtio_can_create(b, i) : NULL;

		if (b && !d)
			can_backend_close(b);
		if (add(vm, d, err) < 0)
			return -1;
	}
	if (o->console == CONSOLE_VIRTIO) {
		struct virtio_device *d = virtio_console_create(&io);

		if (add(vm, d, err) < 0)
			return -1;
		vm->console_receive = console_receive;
		vm->console_ctx = d;
	}
	if (o->rng && add(vm, virtio_rng_create(), err) < 0)
		return -1;
	return 0;
}
