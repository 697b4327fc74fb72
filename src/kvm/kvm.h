/* The KVM accelerator: /dev/kvm, the VM file descriptor and the checks of
 * every capability Vireo relies on. */
#ifndef VIREO_KVM_KVM_H
#define VIREO_KVM_KVM_H

#include <stdint.h>

struct kvm_cpuid2;

struct kvm {
	int sys_fd;
	int vm_fd;
	int vcpu_mmap_size;
	unsigned int max_vcpus;
	int has_tsc_deadline;
	int has_stats_fd;
};

/* Opens /dev/kvm and checks the API version and required capabilities.
 * Logs one line naming what is wrong and returns -1 on failure. */
int kvm_open(struct kvm *k, const char *path);
/* Creates the VM with in-kernel irqchip and PIT. */
int kvm_create_vm(struct kvm *k);
int kvm_set_memslot(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, void *host);
/* Sets an interrupt line of the in-kernel PIC/IOAPIC (GSI). */
int kvm_irq_line(struct kvm *k, uint32_t gsi, int level);
/* KVM_GET_SUPPORTED_CPUID; caller frees. NULL on failure (logged). */
struct kvm_cpuid2 *kvm_supported_cpuid(struct kvm *k);
void kvm_close(struct kvm *k);

#endif
