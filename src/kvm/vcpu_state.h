/* A vCPU's whole architectural state as KVM holds it: registers, FPU and
 * extended state, control registers, the local APIC, MSRs, pending
 * events, debug registers and the run state. Read once right after the
 * vCPU is set up, it is the state a system reset puts back (KVM has no
 * reset ioctl and vCPUs cannot be re-created); the same capture is what a
 * snapshot will save. */
#ifndef VIREO_KVM_VCPU_STATE_H
#define VIREO_KVM_VCPU_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "kvm/kvm.h"
#include "util/error.h"
#include "util/state.h"

struct kvm_vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave *xsave; /* NULL: KVM has no XSAVE, fpu holds it */
	size_t xsave_size;
	struct kvm_fpu fpu;
	bool has_xcrs;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp_state;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_msrs *msrs; /* every MSR KVM lists that reads back */
};

/* Reads the state of the vCPU (not running: its thread parked, or not
 * started). 0, or -1 with err set. */
int kvm_vcpu_state_get(struct kvm *k, int vcpu_fd, struct kvm_vcpu_state *s, struct error *err);
/* Writes it back, in the order KVM needs (control registers and the APIC
 * base before the local APIC, MSRs after the CPUID they depend on). */
int kvm_vcpu_state_set(int vcpu_fd, const struct kvm_vcpu_state *s, struct error *err);
void kvm_vcpu_state_free(struct kvm_vcpu_state *s);

/* The state as a record (snapshots): each KVM structure with its size, so
 * a record from a KVM with other structure sizes is refused rather than
 * misread. load allocates what s holds (kvm_vcpu_state_free frees it);
 * the values themselves are KVM's to check when they are set. */
void kvm_vcpu_state_save(const struct kvm_vcpu_state *s, struct state_writer *w);
int kvm_vcpu_state_load(struct kvm_vcpu_state *s, struct state_reader *r, struct error *err);

/* The guest's TSC, which the state above leaves out: a snapshot carries
 * it so that the guest's time stamps go on from where they were. */
int kvm_vcpu_tsc_get(int vcpu_fd, uint64_t *tsc);
int kvm_vcpu_tsc_set(int vcpu_fd, uint64_t tsc);
/* One MSR's value (0 when KVM does not have it). 0, or -1. */
int kvm_vcpu_msr_get(int vcpu_fd, uint32_t index, uint64_t *value);

/* The VM-wide interrupt controllers and timer: both PICs, the IOAPIC and
 * the PIT. */
struct kvm_irqchips_state {
	struct kvm_irqchip chip[3]; /* KVM_IRQCHIP_PIC_MASTER, _SLAVE, _IOAPIC */
	struct kvm_pit_state2 pit;
};

int kvm_irqchips_get(struct kvm *k, struct kvm_irqchips_state *s, struct error *err);
int kvm_irqchips_set(struct kvm *k, const struct kvm_irqchips_state *s, struct error *err);
void kvm_irqchips_save(const struct kvm_irqchips_state *s, struct state_writer *w);
int kvm_irqchips_load(struct kvm_irqchips_state *s, struct state_reader *r, struct error *err);

#endif
