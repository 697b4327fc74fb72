/* The ELF vmlinux inside a bzImage: where its loadable segments go in
 * physical memory and where its 64-bit entry point (startup_64) is. */
#ifndef VIREO_ARCH_X86_VMLINUX_H
#define VIREO_ARCH_X86_VMLINUX_H

#include <stddef.h>
#include <stdint.h>

#include "mem/guest_mem.h"

#define VMLINUX_MAX_SEGMENTS 16
#define VMLINUX_HEADER_BYTES 4096 /* ELF header and program headers */

struct vmlinux_segment {
	uint64_t offset; /* in the file */
	uint64_t paddr;
	uint64_t filesz;
	uint64_t memsz;
};

struct vmlinux {
	uint64_t entry; /* physical address of the 64-bit entry point */
	uint64_t end;	/* highest physical address used */
	unsigned int count;
	struct vmlinux_segment seg[VMLINUX_MAX_SEGMENTS];
};

/* Parses hdr[0..len) (the start of a file of file_size bytes). Returns 0,
 * or -1 with *why set. Checks every offset, size and address for overflow
 * and for lying inside the file. */
int vmlinux_parse(const uint8_t *hdr, size_t len, uint64_t file_size, struct vmlinux *out,
		  const char **why);
/* Loads the parsed segments from fd (the file) into guest RAM: each
 * segment's file bytes at its paddr, zeros up to memsz. -1 if a segment
 * is not in RAM or the file cannot be read (RAM may be partly written). */
int vmlinux_load(const struct vmlinux *v, int fd, struct guest_mem *m);

#endif
