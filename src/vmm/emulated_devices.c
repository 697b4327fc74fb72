/* The emulated (non-VirtIO) PCI devices of a machine, from the command
 * line to the device list: the VMM opens the backend and hands it to the
 * device, which owns it from then on (hw/device.h). */
#include "hw/e1000.h"
#include "hw/kvaser_pci.h"
#include "vmm/vm.h"

int vm_add_e1000(struct vm *vm, const struct net_config *n, unsigned int index, struct error *err)
{
	struct e1000_env env = {
		.irq = &vm->irq, .host = &vm->pci, .mem = &vm->mem, .intx_gsi = vm_pci_intx_gsi,
	};
	struct net_backend *b = net_open(&n->net);
	struct device *d;

	if (!b)
		return -1; /* the backend logged why */
	d = e1000_create(b, n->mac, index, &env, err);
	if (!d) {
		net_close(b);
		return -1;
	}
	if (device_register(&vm->devices, d, err) < 0) {
		d->ops->destroy(d);
		return -1;
	}
	return 0;
}

int vm_add_kvaser(struct vm *vm, const struct can_config *c, unsigned int index, struct error *err)
{
	struct kvaser_pci_env env = {
		.irq = &vm->irq, .host = &vm->pci, .report = vm_post_event, .report_ctx = vm,
		.intx_gsi = vm_pci_intx_gsi,
	};
	struct can_backend *b = can_backend_open(&c->can);
	struct device *d;

	if (!b)
		return -1; /* the backend logged why */
	d = kvaser_pci_create(b, index, &env, err); /* owns b, also on failure */
	if (!d)
		return -1;
	if (device_register(&vm->devices, d, err) < 0) {
		d->ops->destroy(d);
		return -1;
	}
	return 0;
}
