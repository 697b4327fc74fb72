#include "arch/x86/cpuid.h"

#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define TOPO_LEVEL_SMT 1
#define TOPO_LEVEL_CORE 2

unsigned int cpuid_core_bits(unsigned int ncpus)
{
	unsigned int bits = 0;

	while ((1u << bits) < ncpus)
		bits++;
	return bits;
}

static void topology_leaf(struct kvm_cpuid_entry2 *e, const struct cpuid_config *cfg)
{
	/* Leaf 0xb/0x1f: level 0 = SMT (one thread per core), level 1 =
	 * core (ncpus per package), then the terminating invalid level. */
	switch (e->index) {
	case 0:
		e->eax = 0;
		e->ebx = 1;
		e->ecx = (TOPO_LEVEL_SMT << 8) | e->index;
		break;
	case 1:
		e->eax = cpuid_core_bits(cfg->ncpus);
		e->ebx = cfg->ncpus;
		e->ecx = (TOPO_LEVEL_CORE << 8) | e->index;
		break;
	default:
		e->eax = 0;
		e->ebx = 0;
		e->ecx = e->index;
		break;
	}
	e->edx = cfg->apic_id;
}

void cpuid_patch(struct kvm_cpuid2 *c, const struct cpuid_config *cfg)
{
	unsigned int i;

	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | (cfg->apic_id << 24) |
				 ((cfg->ncpus & 0xffu) << 16);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (cfg->tsc_deadline)
				e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
			if (cfg->ncpus > 1)
				e->edx |= CPUID_1_EDX_HTT;
			else
				e->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 4:
			/* Intel cache leaves: cores per package, and caches
			 * private to a core except the last level. */
			if ((e->eax & 0x1f) == 0)
				break;
			e->eax &= 0x3ff;
			/* A 6-bit field: at most 64 cores can be named. */
			e->eax |= ((cfg->ncpus > 64 ? 64 : cfg->ncpus) - 1) << 26;
			if (((e->eax >> 5) & 7) >= 3)
				e->eax |= ((cfg->ncpus - 1) & 0xfff) << 14;
			break;
		case 0xb:
		case 0x1f:
			topology_leaf(e, cfg);
			break;
		case 0x80000008:
			/* AMD: number of cores minus one, and APIC id bits. */
			e->ecx = (e->ecx & ~0xf0ffu) | (cpuid_core_bits(cfg->ncpus) << 12) |
				 ((cfg->ncpus - 1) & 0xff);
			break;
		case 0x8000001e:
			e->eax = cfg->apic_id;
			e->ebx = cfg->apic_id & 0xff; /* core id; one thread per core */
			e->ecx = 0;		      /* node 0 */
			break;
		default:
			break;
		}
	}
}
