/* Where things live in guest physical memory. The low megabyte follows the
 * PC conventions Linux expects (zero page, EBDA, BIOS area); RAM above
 * LOW_RAM_END is moved above 4 GiB to leave a hole for 32-bit PCI BARs and
 * the IOAPIC/LAPIC pages. */
#ifndef VIREO_ARCH_X86_LAYOUT_H
#define VIREO_ARCH_X86_LAYOUT_H

#define GDT_ADDR 0x500ULL
#define ZERO_PAGE_ADDR 0x7000ULL
#define BOOT_STACK_TOP 0x8ff0ULL
#define PML4_ADDR 0x9000ULL
#define PDPT_ADDR 0xa000ULL
#define PD_ADDR 0xb000ULL /* four page directories: 4 GiB identity map */
#define CMDLINE_ADDR 0x20000ULL
#define CMDLINE_MAX 0x10000ULL
#define EBDA_START 0x9fc00ULL
#define BIOS_AREA_START 0xa0000ULL
#define ACPI_TABLES_ADDR 0xe0000ULL /* RSDP must be in 0xe0000-0xfffff */
#define ACPI_TABLES_MAX 0x20000ULL
#define KERNEL_LOAD_ADDR 0x100000ULL
#define KERNEL_64BIT_ENTRY_OFFSET 0x200ULL
/* A relocatable kernel decompresses to at least this address
 * (CONFIG_PHYSICAL_START) and needs init_size bytes there. */
#define KERNEL_MIN_RUN_ADDR 0x1000000ULL

#define LOW_RAM_END 0xc0000000ULL /* 3 GiB: start of the 32-bit hole */
#define HIGH_RAM_START 0x100000000ULL
#define PCI_MMIO32_START LOW_RAM_END
#define PCI_MMIO32_END 0xfec00000ULL /* exclusive; IOAPIC follows */
#define IOAPIC_ADDR 0xfec00000ULL
#define LAPIC_ADDR 0xfee00000ULL
/* Pages KVM needs for its real-mode TSS and identity map on VMX hosts. */
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL
#define KVM_TSS_ADDR 0xfffbd000ULL

/* Legacy I/O ports. */
#define COM1_PORT 0x3f8
#define COM1_IRQ 4
#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define RTC_PORT 0x70
#define PCI_CONFIG_PORT 0xcf8
#define PCI_RESET_PORT 0xcf9 /* PIIX-style reset control register */
/* Where I/O BARs go, as SeaBIOS places them (inside the root bridge's
 * _CRS I/O range, 0x0d00-0xffff). */
#define PCI_IO_START 0xc000
#define PCI_IO_END 0x10000 /* exclusive */
#define ACPI_PM_PORT 0x600 /* PM1 event block, PM1 control, PM timer */
#define ACPI_PM1_EVT_LEN 4
#define ACPI_PM1_CNT_OFFSET 4
#define ACPI_PM1_CNT_LEN 2
#define ACPI_PM_TMR_OFFSET 8
#define ACPI_PM_TMR_LEN 4
#define ACPI_PM_LEN 12
#define ACPI_SCI_IRQ 9
/* PCI INTA# of each slot, as the DSDT's _PRT routes it: IOAPIC pins 16-23,
 * shared round-robin like a PC chipset's PIRQ lines. */
#define PCI_INTX_GSI(slot) (16u + ((slot) & 7u))
#define ACPI_S5_SLP_TYP 5 /* the value our DSDT's \_S5 package names */

#endif
