/* Per-vCPU CPUID: KVM's supported set, with the APIC id and a topology of
 * one socket holding ncpus single-threaded cores, so Linux counts exactly
 * the vCPUs it is given. */
#ifndef VIREO_ARCH_X86_CPUID_H
#define VIREO_ARCH_X86_CPUID_H

#include <linux/kvm.h>

struct cpuid_config {
	unsigned int apic_id;
	unsigned int ncpus;
	int tsc_deadline; /* KVM emulates the TSC-deadline timer */
};

/* Rewrites the entries of c in place for one vCPU. */
void cpuid_patch(struct kvm_cpuid2 *c, const struct cpuid_config *cfg);
/* Bits needed to number ncpus cores (x2APIC id shift). */
unsigned int cpuid_core_bits(unsigned int ncpus);

#endif
