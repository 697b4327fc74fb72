/* The KVM accelerator: /dev/kvm, the VM file descriptor and the checks of
 * every capability Vireo relies on. */
#ifndef VIREO_KVM_KVM_H
#define VIREO_KVM_KVM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvm/coalesced.h"

struct kvm_cpuid2;
struct irq_chip_ops;

/* GSIs 0-23 are the IOAPIC's pins (0-15 also the PICs'); MSI routes get
 * GSIs from 24 up. */
#define KVM_IRQCHIP_GSIS 24
#define KVM_MAX_MSI_ROUTES 256

struct kvm_msi_route {
	uint64_t addr;
	uint32_t data;
	bool valid; /* a masked or unprogrammed vector has no route */
};

struct kvm {
	int sys_fd;
	int vm_fd;
	int vcpu_mmap_size;
	unsigned int max_vcpus;
	int has_tsc_deadline;
	int has_stats_fd;
	struct kvm_coalesced coalesced; /* writes KVM records for later */
	/* KVM_SET_GSI_ROUTING replaces the whole table, so every route lives
	 * here and each change commits them all. */
	pthread_mutex_t routes_lock;
	unsigned int nmsi;
	struct kvm_msi_route msi[KVM_MAX_MSI_ROUTES];
};

/* Opens /dev/kvm and checks the API version and required capabilities.
 * Logs one line naming what is wrong and returns -1 on failure. */
int kvm_open(struct kvm *k, const char *path);
/* Creates the VM with in-kernel irqchip and PIT. */
int kvm_create_vm(struct kvm *k);
int kvm_set_memslot(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, void *host);
/* The same slot with KVM's dirty page log on or off (migration). */
int kvm_set_dirty_logging(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, void *host,
			  bool on);
/* The slot's pages written by vCPUs since the last call, one bit per
 * page (KVM clears its log as it hands it over, unless the log is
 * manual). 0 or -errno. */
int kvm_get_dirty_log(struct kvm *k, uint32_t slot, uint64_t *bitmap);
/* The manual dirty log (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2), on before
 * logging starts or off after it ends: KVM_GET_DIRTY_LOG then leaves the
 * pages it reports unprotected and logged, and logging starts with every
 * page logged and none protected, until kvm_clear_dirty_log() says which
 * to protect again, in pieces as they are sent: KVM's lock is held for a
 * piece at a time, not for all of RAM at once, so the guest is not held
 * up that long. 0, or -errno (-ENOTSUP: KVM has no such log). */
int kvm_dirty_log_manual(struct kvm *k, bool on);
/* Pages [first, first+n) of the slot whose bits are set in bitmap (bit 0:
 * page first): out of the log and write-protected, so that the next write
 * logs them again. first a multiple of 64; n too unless the range ends
 * the slot. 0 or -errno. */
int kvm_clear_dirty_log(struct kvm *k, uint32_t slot, uint64_t first, uint32_t n,
			uint64_t *bitmap);
/* Sets an interrupt line of the in-kernel PIC/IOAPIC (GSI). */
int kvm_irq_line(struct kvm *k, uint32_t gsi, int level);
/* The VM's kvmclock (nanoseconds of guest time), read and set: guest time
 * can stop while the VM is paused. 0 or -errno. */
int kvm_get_clock(struct kvm *k, uint64_t *ns);
int kvm_set_clock(struct kvm *k, uint64_t ns);
/* KVM_GET_SUPPORTED_CPUID; caller frees. NULL on failure (logged). */
struct kvm_cpuid2 *kvm_supported_cpuid(struct kvm *k);
void kvm_close(struct kvm *k);

/* MSI routing (src/kvm/irq_routing.c). Allocates a GSI whose route is
 * empty until set; returns the GSI or -1 when none is left. */
int kvm_msi_route_alloc(struct kvm *k);
/* Points gsi at an MSI address/data (valid) or removes its route. */
int kvm_msi_route_set(struct kvm *k, uint32_t gsi, uint64_t addr, uint32_t data, bool valid);
/* Binds an eventfd to a GSI: a write to fd injects the interrupt. */
int kvm_irqfd(struct kvm *k, int fd, uint32_t gsi, bool assign);
/* Binds an eventfd to a guest-physical MMIO address: a guest write of len
 * bytes there signals fd in the kernel, with no exit to userspace. */
int kvm_ioeventfd(struct kvm *k, int fd, uint64_t addr, uint32_t len, bool assign);

/* The in-kernel irqchip as the machine's interrupt controller (chip: the
 * struct kvm), for irq_service_init() (src/kvm/irqchip.c). */
extern const struct irq_chip_ops kvm_irqchip_ops;

#endif
