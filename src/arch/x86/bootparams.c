#include "arch/x86/bootparams.h"

#include <string.h>

#include "arch/x86/layout.h"
#include "util/le.h"

void boot_params_build(uint8_t out[BOOT_PARAMS_SIZE], const uint8_t *header,
		       const struct bzimage *bz, const struct boot_setup *s)
{
	unsigned int i, n;

	memset(out, 0, BOOT_PARAMS_SIZE);
	/* The kernel expects its own setup header back, at the same offset. */
	memcpy(out + BZ_SETUP_SECTS, header + BZ_SETUP_SECTS, bz->header_end - BZ_SETUP_SECTS);

	out[BZ_TYPE_OF_LOADER] = 0xff; /* "undefined" loader */
	out[BZ_LOADFLAGS] |= BZ_CAN_USE_HEAP;
	le16_put(out + BZ_HEAP_END_PTR, 0xfe00);
	le32_put(out + BZ_CMD_LINE_PTR, (uint32_t)s->cmdline_addr);
	le32_put(out + BP_EXT_CMD_LINE_PTR, (uint32_t)(s->cmdline_addr >> 32));
	le32_put(out + BZ_RAMDISK_IMAGE, (uint32_t)s->initrd_addr);
	le32_put(out + BP_EXT_RAMDISK_IMAGE, (uint32_t)(s->initrd_addr >> 32));
	le32_put(out + BZ_RAMDISK_SIZE, (uint32_t)s->initrd_size);
	le32_put(out + BP_EXT_RAMDISK_SIZE, (uint32_t)(s->initrd_size >> 32));
	le64_put(out + BP_ACPI_RSDP_ADDR, s->rsdp_addr);

	n = s->e820->count < BP_E820_MAX ? s->e820->count : BP_E820_MAX;
	out[BP_E820_ENTRIES] = (uint8_t)n;
	for (i = 0; i < n; i++) {
		uint8_t *e = out + BP_E820_TABLE + 20 * i;

		le64_put(e, s->e820->entry[i].addr);
		le64_put(e + 8, s->e820->entry[i].size);
		le32_put(e + 16, s->e820->entry[i].type);
	}
}

uint64_t kernel_min_ram(const struct bzimage *bz)
{
	uint64_t loaded = KERNEL_LOAD_ADDR + bz->kernel_size;
	uint64_t running = KERNEL_MIN_RUN_ADDR + bz->init_size;

	return loaded > running ? loaded : running;
}

uint64_t initrd_place(const struct bzimage *bz, uint64_t low_ram_size, uint64_t min_addr,
		      uint64_t size)
{
	uint64_t top = low_ram_size;
	uint64_t addr;

	if ((uint64_t)bz->initrd_addr_max + 1 < top)
		top = (uint64_t)bz->initrd_addr_max + 1;
	if (size == 0 || size > top)
		return 0;
	addr = (top - size) & ~0xfffULL;
	if (addr < min_addr)
		return 0;
	return addr;
}
