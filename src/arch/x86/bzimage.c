#include "arch/x86/bzimage.h"

#include "util/le.h"

enum bzimage_error bzimage_parse(const uint8_t *image, size_t len, uint64_t file_size,
				 struct bzimage *out)
{
	unsigned int setup_sects;
	uint8_t jump;
	uint64_t syssize;

	if (len < BZ_HEADER_BYTES || file_size < len)
		return BZ_TOO_SMALL;
	if (le16_get(image + BZ_BOOT_FLAG) != 0xaa55 ||
	    le32_get(image + BZ_HEADER_MAGIC) != 0x53726448 /* "HdrS" */)
		return BZ_NOT_BZIMAGE;
	out->version = le16_get(image + BZ_VERSION);
	if (out->version < BZ_MIN_VERSION)
		return BZ_TOO_OLD;
	if (!(image[BZ_LOADFLAGS] & BZ_LOADED_HIGH))
		return BZ_NOT_LOADED_HIGH;
	if (!(le16_get(image + BZ_XLOADFLAGS) & BZ_XLF_KERNEL_64))
		return BZ_NOT_64BIT;

	setup_sects = image[BZ_SETUP_SECTS];
	if (setup_sects == 0) /* historical meaning: 4 */
		setup_sects = 4;
	out->setup_size = (setup_sects + 1) * 512;
	/* The header ends where the jump at 0x200 lands; never trust it past
	 * what we read. */
	jump = image[BZ_JUMP + 1];
	out->header_end = 0x202 + jump;
	if (out->header_end > BZ_HEADER_BYTES)
		out->header_end = BZ_HEADER_BYTES;

	syssize = (uint64_t)le32_get(image + BZ_SYSSIZE) * 16;
	if (file_size <= out->setup_size || syssize == 0 ||
	    file_size - out->setup_size < syssize)
		return BZ_TRUNCATED;
	out->kernel_size = file_size - out->setup_size;
	out->init_size = le32_get(image + BZ_INIT_SIZE);
	out->initrd_addr_max = le32_get(image + BZ_INITRD_ADDR_MAX);
	out->cmdline_size = le32_get(image + BZ_CMDLINE_SIZE);
	return BZ_OK;
}

const char *bzimage_strerror(enum bzimage_error e)
{
	switch (e) {
	case BZ_OK:
		return "no error";
	case BZ_TOO_SMALL:
		return "file is too small to be a Linux bzImage";
	case BZ_NOT_BZIMAGE:
		return "not a Linux bzImage (no boot sector signature or \"HdrS\" header)";
	case BZ_TOO_OLD:
		return "kernel boot protocol is older than 2.12 (no 64-bit entry point)";
	case BZ_NOT_64BIT:
		return "kernel has no 64-bit entry point (not an x86-64 kernel?)";
	case BZ_NOT_LOADED_HIGH:
		return "a zImage, not a bzImage (kernel is not loaded high)";
	case BZ_TRUNCATED:
		return "bzImage is truncated (shorter than its header says)";
	}
	return "unknown error";
}
