/* Puts a Linux bzImage, its initrd and command line into guest memory
 * with the zero page, e820 map and ACPI tables, ready for the 64-bit
 * entry point. Validation is split from loading so that a bad file is
 * reported before anything else happens. */
#ifndef VIREO_ARCH_X86_LINUX_LOADER_H
#define VIREO_ARCH_X86_LINUX_LOADER_H

#include <stdint.h>

#include "arch/x86/bzimage.h"
#include "mem/guest_mem.h"

struct linux_image {
	int kernel_fd;
	uint64_t kernel_file_size;
	uint8_t header[BZ_HEADER_BYTES];
	struct bzimage bz;
	int initrd_fd; /* -1 without an initrd */
	uint64_t initrd_size;
	const char *cmdline;
	/* Set by linux_image_load, for --stats-json: how the kernel got into
	 * guest memory ("cached-vmlinux": Vireo loaded the vmlinux it had
	 * decompressed; "bzimage": the guest decompresses the payload
	 * itself), and why that path (static strings). */
	const char *boot_path;
	const char *boot_path_detail;
};

/* Opens and checks the files. Logs one line and returns -1 on bad input. */
int linux_image_open(struct linux_image *img, const char *kernel, const char *initrd,
		     const char *cmdline);
/* Checks that kernel and initrd fit a guest with mem_size bytes of RAM. */
int linux_image_check_fit(const struct linux_image *img, uint64_t mem_size);
/* Loads everything; returns 0 and the entry point, or -1 (logged). */
int linux_image_load(struct linux_image *img, struct guest_mem *m, unsigned int ncpus,
		     uint64_t *entry);
void linux_image_close(struct linux_image *img);

#endif
