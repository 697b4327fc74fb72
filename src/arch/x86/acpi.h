/* ACPI tables for the guest: RSDP -> XSDT -> {FADT -> {FACS, DSDT}, MADT}.
 * They describe the vCPUs and IOAPIC (MADT), the PM1 registers used for
 * poweroff and the reset register (FADT), \_S5 and the PCI root bridge
 * (DSDT). Built into a byte buffer that is copied to ACPI_TABLES_ADDR. */
#ifndef VIREO_ARCH_X86_ACPI_H
#define VIREO_ARCH_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 254 /* 8-bit xAPIC ids; 255 is broadcast */
#define ACPI_RESET_VALUE 0x06 /* written to PCI_RESET_PORT: "hard reset" */

struct acpi_tables {
	uint64_t base; /* guest physical address of buf[0] */
	size_t len;
	uint64_t rsdp_addr;
	uint8_t buf[8192];
};

/* Returns 0, or -1 if the tables would not fit (too many CPUs). */
int acpi_build(struct acpi_tables *t, uint64_t base, unsigned int ncpus);
/* Sum of bytes; an ACPI table is valid when this is 0 mod 256. */
uint8_t acpi_checksum(const void *p, size_t len);

#endif
