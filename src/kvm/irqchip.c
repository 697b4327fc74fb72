/* KVM's in-kernel irqchip (PICs and IOAPIC, MSI through the GSI routing
 * table) behind the machine's interrupt service (hw/irq.h). */
#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "hw/irq.h"
#include "kvm/kvm.h"

static int set_line(void *chip, unsigned int gsi, int level)
{
	return kvm_irq_line(chip, gsi, level);
}

static int send_msi(void *chip, uint64_t addr, uint32_t data)
{
	struct kvm *k = chip;
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr,
		.address_hi = (uint32_t)(addr >> 32),
		.data = data,
	};

	/* > 0: delivered; 0: the guest blocked it (e.g. a masked LAPIC). */
	return ioctl(k->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

static int route_alloc(void *chip)
{
	return kvm_msi_route_alloc(chip);
}

static int route_set(void *chip, int route, uint64_t addr, uint32_t data, bool valid)
{
	return kvm_msi_route_set(chip, (uint32_t)route, addr, data, valid);
}

static int route_bind(void *chip, int route, int fd, bool assign)
{
	return kvm_irqfd(chip, fd, (uint32_t)route, assign);
}

const struct irq_chip_ops kvm_irqchip_ops = {
	.set_line = set_line,
	.send_msi = send_msi,
	.route_alloc = route_alloc,
	.route_set = route_set,
	.route_bind = route_bind,
};
