#include "arch/x86/boot_cpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/layout.h"
#include "util/le.h"
#include "util/log.h"

#define CR0_PE 0x1ULL
#define CR0_ET 0x10ULL
#define CR0_NE 0x20ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

#define PTE_PRESENT 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL /* 2 MiB page in a page directory */

#define BOOT_CS 0x10
#define BOOT_DS 0x18
#define BOOT_TSS 0x20

static const uint64_t gdt[] = {
	0,
	0,
	0x00af9b000000ffffULL, /* 0x10: 64-bit code, DPL 0 */
	0x00cf93000000ffffULL, /* 0x18: flat data */
	0x00808b000000ffffULL, /* 0x20: 64-bit TSS (busy), for a valid TR */
};

int boot_cpu_write_tables(struct guest_mem *m)
{
	uint8_t *g = guest_mem_ptr(m, GDT_ADDR, sizeof(gdt));
	uint8_t *pml4 = guest_mem_ptr(m, PML4_ADDR, 4096);
	uint8_t *pdpt = guest_mem_ptr(m, PDPT_ADDR, 4096);
	uint8_t *pd = guest_mem_ptr(m, PD_ADDR, 4 * 4096);
	unsigned int i;

	if (!g || !pml4 || !pdpt || !pd)
		return -1;
	memcpy(g, gdt, sizeof(gdt));
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	le64_put(pml4, PDPT_ADDR | PTE_PRESENT | PTE_RW);
	/* Identity-map the first 4 GiB with 2 MiB pages: enough for the
	 * kernel, zero page, command line and initrd wherever they land. */
	for (i = 0; i < 4; i++)
		le64_put(pdpt + 8 * i, (PD_ADDR + 4096 * i) | PTE_PRESENT | PTE_RW);
	for (i = 0; i < 4 * 512; i++)
		le64_put(pd + 8 * i, ((uint64_t)i << 21) | PTE_PRESENT | PTE_RW | PTE_PS);
	return 0;
}

static void flat_segment(struct kvm_segment *s, uint16_t selector, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = selector;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
}

int boot_cpu_setup(int vcpu_fd, uint64_t entry, uint64_t zero_page)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
		log_error("KVM_GET_SREGS failed: %s", strerror(errno));
		return -1;
	}
	flat_segment(&sregs.cs, BOOT_CS, 0xb); /* execute/read, accessed */
	sregs.cs.l = 1;
	flat_segment(&sregs.ds, BOOT_DS, 0x3); /* read/write, accessed */
	sregs.ds.db = 1;
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.selector = BOOT_TSS;
	sregs.tr.limit = 0xffff;
	sregs.tr.type = 0xb;
	sregs.tr.present = 1;
	sregs.gdt.base = GDT_ADDR;
	sregs.gdt.limit = sizeof(gdt) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
	sregs.cr3 = PML4_ADDR;
	sregs.cr4 = CR4_PAE;
	sregs.efer = EFER_LME | EFER_LMA;
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0) {
		log_error("KVM_SET_SREGS failed: %s", strerror(errno));
		return -1;
	}

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2; /* reserved bit; interrupts off */
	regs.rip = entry;
	regs.rsi = zero_page;
	regs.rsp = BOOT_STACK_TOP;
	regs.rbp = BOOT_STACK_TOP;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0) {
		log_error("KVM_SET_REGS failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x400
#define APIC_MODE_EXTINT 0x700

#define MSR_IA32_TSC 0x10

/* Writing the same TSC value to every vCPU right after creation lets KVM
 * recognise them as synchronized, so Linux keeps the TSC as a clock. */
static int reset_tsc(int vcpu_fd)
{
	/* struct kvm_msrs ends in a flexible array: room for one entry. */
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} msrs;

	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = 1;
	msrs.hdr.entries[0].index = MSR_IA32_TSC;
	if (ioctl(vcpu_fd, KVM_SET_MSRS, &msrs) != 1) {
		log_error("KVM_SET_MSRS (TSC) failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int boot_cpu_setup_lapic_fpu(int vcpu_fd)
{
	struct kvm_lapic_state lapic;
	struct kvm_fpu fpu;
	uint32_t v;

	if (reset_tsc(vcpu_fd) < 0)
		return -1;
	if (ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic) < 0) {
		log_error("KVM_GET_LAPIC failed: %s", strerror(errno));
		return -1;
	}
	v = le32_get(lapic.regs + APIC_LVT0);
	le32_put(lapic.regs + APIC_LVT0, (v & ~0x700u) | APIC_MODE_EXTINT);
	v = le32_get(lapic.regs + APIC_LVT1);
	le32_put(lapic.regs + APIC_LVT1, (v & ~0x700u) | APIC_MODE_NMI);
	if (ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic) < 0) {
		log_error("KVM_SET_LAPIC failed: %s", strerror(errno));
		return -1;
	}
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0) {
		log_error("KVM_SET_FPU failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}
