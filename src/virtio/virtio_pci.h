/* The virtio-pci transport, modern only (VirtIO 1.2, 4.1): vendor 0x1af4,
 * device 0x1040 + device id; common/notify/ISR/device configuration in one
 * 64-bit memory BAR, described by vendor capabilities; MSI-X with one
 * vector per queue plus one for configuration changes; INTx (level, ISR
 * bit) when the driver does not enable MSI-X.
 *
 * Queue notifications are KVM ioeventfds on each queue's notify address
 * that wake the device's I/O thread; interrupts are irqfds on MSI routes.
 * With use_ioeventfd off, a notification is an MMIO exit that the vCPU
 * thread forwards to the same eventfd: the slow path, for comparison. */
#ifndef VIREO_VIRTIO_VIRTIO_PCI_H
#define VIREO_VIRTIO_VIRTIO_PCI_H

#include <stdbool.h>

#include "hw/device.h"
#include "hw/irq.h"
#include "hw/pci.h"
#include "kvm/kvm.h"
#include "virtio/virtio.h"

struct virtio_pci_env {
	struct kvm *kvm; /* queue notifications (ioeventfd) */
	struct irq_service *irq; /* INTx line and MSI-X vectors */
	struct pci_host *host;
	const struct guest_mem *mem;
	bool use_ioeventfd;
	unsigned int (*intx_gsi)(unsigned int slot); /* the platform's INTA# routing */
};

/* The device (hw/device.h) for vdev on virtio-pci; registered by the
 * caller. It takes over vdev: destroying the device destroys vdev (and
 * the backend vdev owns). realize puts it on the PCI bus (a slot, its
 * INTx line, MSI-X vectors, ioeventfds) and starts its I/O thread; pause
 * lets requests in flight finish, then stops the thread. NULL on failure
 * (err set; vdev is still the caller's). */
struct device *virtio_pci_create(struct virtio_device *vdev, const struct virtio_pci_env *env,
				 struct error *err);
/* The VirtIO device and PCI function behind a device, or NULL when d is
 * not a virtio-pci device. */
struct virtio_device *virtio_pci_vdev(const struct device *d);
const struct pci_device *virtio_pci_device(const struct device *d);

#endif
