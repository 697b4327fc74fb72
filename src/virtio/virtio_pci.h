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
};

struct virtio_pci;

/* Puts vdev on the PCI bus and starts its I/O thread. NULL on failure
 * (logged). */
struct virtio_pci *virtio_pci_add(struct virtio_device *vdev, const struct virtio_pci_env *env);
/* Stops the I/O thread, resets the device and frees the transport. */
void virtio_pci_remove(struct virtio_pci *vp);
const struct pci_device *virtio_pci_device(const struct virtio_pci *vp);

#endif
