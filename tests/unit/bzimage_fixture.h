/* A synthetic bzImage: boot sector, setup header and a fake kernel. */
#ifndef VIREO_TESTS_BZIMAGE_FIXTURE_H
#define VIREO_TESTS_BZIMAGE_FIXTURE_H

#include <stdint.h>
#include <string.h>

#include "arch/x86/bzimage.h"
#include "util/le.h"

#define FIX_SETUP_SECTS 7			 /* setup = 8 * 512 bytes */
#define FIX_SETUP_SIZE ((FIX_SETUP_SECTS + 1) * 512)
#define FIX_SYSSIZE 0x100			 /* 16-byte paragraphs: 4 KiB kernel */
#define FIX_KERNEL_SIZE (FIX_SYSSIZE * 16)
#define FIX_FILE_SIZE (FIX_SETUP_SIZE + FIX_KERNEL_SIZE)
#define FIX_INIT_SIZE 0x01800000u
#define FIX_INITRD_ADDR_MAX 0x7fffffffu
#define FIX_CMDLINE_SIZE 2047u
#define FIX_JUMP 0x66 /* header ends at 0x268, as in current kernels */

static inline void fixture_bzimage(uint8_t *img, size_t len)
{
	size_t i;

	/* Filler that is not zero, so that copies can be checked. */
	for (i = 0; i < len; i++)
		img[i] = (uint8_t)(i * 7 + 3);
	img[BZ_SETUP_SECTS] = FIX_SETUP_SECTS;
	le32_put(img + BZ_SYSSIZE, FIX_SYSSIZE);
	le16_put(img + BZ_BOOT_FLAG, 0xaa55);
	img[BZ_JUMP] = 0xeb;
	img[BZ_JUMP + 1] = FIX_JUMP;
	memcpy(img + BZ_HEADER_MAGIC, "HdrS", 4);
	le16_put(img + BZ_VERSION, 0x020f);
	img[BZ_TYPE_OF_LOADER] = 0;
	img[BZ_LOADFLAGS] = BZ_LOADED_HIGH;
	le32_put(img + BZ_RAMDISK_IMAGE, 0);
	le32_put(img + BZ_RAMDISK_SIZE, 0);
	le16_put(img + BZ_HEAP_END_PTR, 0);
	le32_put(img + BZ_CMD_LINE_PTR, 0);
	le32_put(img + BZ_INITRD_ADDR_MAX, FIX_INITRD_ADDR_MAX);
	le16_put(img + BZ_XLOADFLAGS, BZ_XLF_KERNEL_64 | 0x02);
	le32_put(img + BZ_CMDLINE_SIZE, FIX_CMDLINE_SIZE);
	le32_put(img + BZ_INIT_SIZE, FIX_INIT_SIZE);
}

#endif
