/* The "zero page" (struct boot_params) a 64-bit Linux kernel reads at
 * entry: a copy of its own setup header plus what the loader fills in. */
#ifndef VIREO_ARCH_X86_BOOTPARAMS_H
#define VIREO_ARCH_X86_BOOTPARAMS_H

#include <stdint.h>

#include "arch/x86/bzimage.h"
#include "arch/x86/e820.h"

#define BOOT_PARAMS_SIZE 4096
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128

struct boot_setup {
	uint64_t cmdline_addr;
	uint64_t initrd_addr; /* 0 when there is no initrd */
	uint64_t initrd_size;
	uint64_t rsdp_addr;
	const struct e820_map *e820;
};

/* header: the first BZ_HEADER_BYTES of the image, already parsed into bz. */
void boot_params_build(uint8_t out[BOOT_PARAMS_SIZE], const uint8_t *header,
		       const struct bzimage *bz, const struct boot_setup *s);

/* Where to put an initrd of size bytes: as high as the kernel allows,
 * page aligned, at or above min_addr. Returns 0 if it does not fit. */
uint64_t initrd_place(const struct bzimage *bz, uint64_t low_ram_size, uint64_t min_addr,
		      uint64_t size);

/* The lowest guest RAM size this kernel can decompress and run in. */
uint64_t kernel_min_ram(const struct bzimage *bz);

#endif
