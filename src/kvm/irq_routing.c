/* KVM's GSI routing table, eventfd-driven interrupts (irqfd) and queue
 * notifications (ioeventfd). Once Vireo sets the routing table, KVM's
 * default one is gone, so the default PIC/IOAPIC routes are part of every
 * table committed here. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm/kvm.h"
#include "util/log.h"

#define PIC_MASTER 0
#define PIC_SLAVE 1
#define IOAPIC 2

static void irqchip_route(struct kvm_irq_routing_entry *e, uint32_t gsi, uint32_t chip,
			  uint32_t pin)
{
	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

/* Called with routes_lock held. */
static int commit_routes(struct kvm *k)
{
	struct kvm_irq_routing *r;
	uint32_t gsi, n = 0;
	unsigned int i;
	int ret;

	r = calloc(1, sizeof(*r) + (16 + KVM_IRQCHIP_GSIS + KVM_MAX_MSI_ROUTES) *
					   sizeof(r->entries[0]));
	if (!r)
		return -1;
	/* The same as KVM's default: GSI 0-15 on the PICs and the IOAPIC
	 * (GSI 2 is the PIC cascade, so only the IOAPIC), 16-23 IOAPIC. */
	for (gsi = 0; gsi < KVM_IRQCHIP_GSIS; gsi++) {
		if (gsi < 16 && gsi != 2)
			irqchip_route(&r->entries[n++], gsi, gsi < 8 ? PIC_MASTER : PIC_SLAVE,
				      gsi % 8);
		irqchip_route(&r->entries[n++], gsi, IOAPIC, gsi);
	}
	for (i = 0; i < k->nmsi; i++) {
		struct kvm_irq_routing_entry *e = &r->entries[n];

		if (!k->msi[i].valid)
			continue;
		memset(e, 0, sizeof(*e));
		e->gsi = KVM_IRQCHIP_GSIS + i;
		e->type = KVM_IRQ_ROUTING_MSI;
		e->u.msi.address_lo = (uint32_t)k->msi[i].addr;
		e->u.msi.address_hi = (uint32_t)(k->msi[i].addr >> 32);
		e->u.msi.data = k->msi[i].data;
		n++;
	}
	r->nr = n;
	ret = ioctl(k->vm_fd, KVM_SET_GSI_ROUTING, r);
	if (ret < 0)
		log_error("KVM_SET_GSI_ROUTING failed: %s", strerror(errno));
	free(r);
	return ret;
}

int kvm_msi_route_alloc(struct kvm *k)
{
	int gsi = -1;

	pthread_mutex_lock(&k->routes_lock);
	if (k->nmsi < KVM_MAX_MSI_ROUTES) {
		k->msi[k->nmsi].valid = false;
		gsi = (int)(KVM_IRQCHIP_GSIS + k->nmsi++);
	}
	pthread_mutex_unlock(&k->routes_lock);
	return gsi;
}

int kvm_msi_route_set(struct kvm *k, uint32_t gsi, uint64_t addr, uint32_t data, bool valid)
{
	struct kvm_msi_route *m;
	int ret = 0;

	if (gsi < KVM_IRQCHIP_GSIS || gsi - KVM_IRQCHIP_GSIS >= k->nmsi)
		return -1;
	pthread_mutex_lock(&k->routes_lock);
	m = &k->msi[gsi - KVM_IRQCHIP_GSIS];
	if (m->valid != valid || (valid && (m->addr != addr || m->data != data))) {
		m->addr = addr;
		m->data = data;
		m->valid = valid;
		ret = commit_routes(k);
	}
	pthread_mutex_unlock(&k->routes_lock);
	return ret;
}

int kvm_irqfd(struct kvm *k, int fd, uint32_t gsi, bool assign)
{
	struct kvm_irqfd irqfd = {
		.fd = (uint32_t)fd,
		.gsi = gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (ioctl(k->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		log_error("KVM_IRQFD (GSI %u) failed: %s", gsi, strerror(errno));
		return -1;
	}
	return 0;
}

int kvm_ioeventfd(struct kvm *k, int fd, uint64_t addr, uint32_t len, bool assign)
{
	struct kvm_ioeventfd io = {
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	if (ioctl(k->vm_fd, KVM_IOEVENTFD, &io) < 0) {
		log_error("KVM_IOEVENTFD at 0x%llx failed: %s", (unsigned long long)addr,
			  strerror(errno));
		return -1;
	}
	return 0;
}
