/* The CPU state the 64-bit Linux boot protocol asks for at entry: long
 * mode, identity-mapped page tables, a flat GDT with __BOOT_CS = 0x10 and
 * __BOOT_DS = 0x18, interrupts off, %rsi pointing at the zero page. */
#ifndef VIREO_ARCH_X86_BOOT_CPU_H
#define VIREO_ARCH_X86_BOOT_CPU_H

#include <stdint.h>

#include "mem/guest_mem.h"

/* Writes the GDT and page tables into guest memory. */
int boot_cpu_write_tables(struct guest_mem *m);
/* Sets registers of the boot vCPU; entry is the 64-bit entry point. */
int boot_cpu_setup(int vcpu_fd, uint64_t entry, uint64_t zero_page);
/* LAPIC LINT0 = ExtINT, LINT1 = NMI, as firmware leaves them; and the
 * FPU in its reset state. For every vCPU. */
int boot_cpu_setup_lapic_fpu(int vcpu_fd);

#endif
