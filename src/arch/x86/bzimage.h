/* Parsing and checking the setup header of a Linux x86 bzImage
 * (Documentation/arch/x86/boot.rst). Works on a byte buffer so it can be
 * unit tested and fuzzed without files. */
#ifndef VIREO_ARCH_X86_BZIMAGE_H
#define VIREO_ARCH_X86_BZIMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Offsets of setup header fields, relative to the start of the image (and
 * of struct boot_params, which embeds the header at the same offsets). */
#define BZ_SETUP_SECTS 0x1f1
#define BZ_SYSSIZE 0x1f4
#define BZ_BOOT_FLAG 0x1fe
#define BZ_JUMP 0x200
#define BZ_HEADER_MAGIC 0x202
#define BZ_VERSION 0x206
#define BZ_TYPE_OF_LOADER 0x210
#define BZ_LOADFLAGS 0x211
#define BZ_RAMDISK_IMAGE 0x218
#define BZ_RAMDISK_SIZE 0x21c
#define BZ_HEAP_END_PTR 0x224
#define BZ_CMD_LINE_PTR 0x228
#define BZ_INITRD_ADDR_MAX 0x22c
#define BZ_KERNEL_ALIGNMENT 0x230
#define BZ_RELOCATABLE 0x234
#define BZ_XLOADFLAGS 0x236
#define BZ_CMDLINE_SIZE 0x238
#define BZ_PREF_ADDRESS 0x258
#define BZ_INIT_SIZE 0x260

#define BZ_MIN_VERSION 0x020c /* 2.12: xloadflags, 64-bit entry */
#define BZ_LOADED_HIGH 0x01
#define BZ_CAN_USE_HEAP 0x80
#define BZ_XLF_KERNEL_64 0x01

/* Enough of the image to hold any setup header we understand. */
#define BZ_HEADER_BYTES 0x280

struct bzimage {
	uint16_t version;
	uint32_t setup_size;  /* bytes of real-mode setup, incl. boot sector */
	uint32_t header_end;  /* offset just past the setup header */
	uint64_t kernel_size; /* bytes of protected-mode kernel */
	uint32_t init_size;   /* memory the kernel needs to decompress */
	uint32_t initrd_addr_max;
	uint32_t cmdline_size; /* max command line length, excluding NUL */
};

enum bzimage_error {
	BZ_OK = 0,
	BZ_TOO_SMALL,	   /* not even a boot sector and header */
	BZ_NOT_BZIMAGE,	   /* magic numbers missing */
	BZ_TOO_OLD,	   /* boot protocol older than 2.12 */
	BZ_NOT_64BIT,	   /* no 64-bit entry point */
	BZ_NOT_LOADED_HIGH, /* zImage, not bzImage */
	BZ_TRUNCATED,	   /* file shorter than the header says */
};

/* Parses image[0..len). file_size is the size of the whole file (which may
 * be more than len when only the header was read). */
enum bzimage_error bzimage_parse(const uint8_t *image, size_t len, uint64_t file_size,
				 struct bzimage *out);
const char *bzimage_strerror(enum bzimage_error e);

#endif
