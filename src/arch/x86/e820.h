/* The BIOS-style memory map handed to Linux in the zero page. */
#ifndef VIREO_ARCH_X86_E820_H
#define VIREO_ARCH_X86_E820_H

#include <stdint.h>

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_MAX_ENTRIES 8

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

struct e820_map {
	unsigned int count;
	struct e820_entry entry[E820_MAX_ENTRIES];
};

/* Map for a guest with low_size bytes at 0 and high_size bytes at 4 GiB.
 * low_size must be at least 1 MiB (the caller checks the kernel fits). */
void e820_build(struct e820_map *map, uint64_t low_size, uint64_t high_size);

#endif
