#include "arch/x86/e820.h"

#include "arch/x86/layout.h"

static void add(struct e820_map *map, uint64_t addr, uint64_t size, uint32_t type)
{
	if (size == 0 || map->count >= E820_MAX_ENTRIES)
		return;
	map->entry[map->count++] = (struct e820_entry){ addr, size, type };
}

void e820_build(struct e820_map *map, uint64_t low_size, uint64_t high_size)
{
	map->count = 0;
	/* Conventional memory below the EBDA, as a PC BIOS reports it. */
	add(map, 0, EBDA_START, E820_RAM);
	add(map, EBDA_START, BIOS_AREA_START - EBDA_START, E820_RESERVED);
	/* 0xa0000-0xdffff is the legacy VGA/ROM hole and is simply absent;
	 * 0xe0000-0xfffff holds the ACPI tables, so it is reserved. */
	add(map, ACPI_TABLES_ADDR, KERNEL_LOAD_ADDR - ACPI_TABLES_ADDR, E820_RESERVED);
	if (low_size > KERNEL_LOAD_ADDR)
		add(map, KERNEL_LOAD_ADDR, low_size - KERNEL_LOAD_ADDR, E820_RAM);
	add(map, HIGH_RAM_START, high_size, E820_RAM);
}
