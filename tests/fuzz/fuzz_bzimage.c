/* bzimage_parse on arbitrary bytes, then what the loader does with a
 * header that parsed: the zero page, initrd placement, minimum RAM. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "arch/x86/bootparams.h"
#include "arch/x86/bzimage.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "util/le.h"

/* Loader parameters taken from the end of the input, so the fuzzer can
 * vary them without touching the header. */
struct params {
	uint64_t low_ram, high_ram, initrd_size, cmdline, rsdp;
};

static uint64_t tail64(const uint8_t *data, size_t size, size_t back)
{
	uint64_t v = 0;

	if (size >= BZ_HEADER_BYTES + back)
		memcpy(&v, data + size - back, 8);
	return v;
}

static void get_params(const uint8_t *data, size_t size, struct params *p)
{
	uint64_t a = tail64(data, size, 8), b = tail64(data, size, 16);

	/* The loader's caller guarantees at least 1 MiB of low RAM. */
	p->low_ram = a ? (1ULL << 20) + a % (LOW_RAM_END - (1ULL << 20) + 1) : 256ULL << 20;
	p->high_ram = (a >> 32) % (1ULL << 40);
	p->initrd_size = b & 0xffffffffu;
	p->cmdline = CMDLINE_ADDR + (b >> 32 & 0xffff);
	p->rsdp = ACPI_TABLES_ADDR + (b >> 48 & 0xfff0);
}

static int in_range(unsigned int off, unsigned int start, unsigned int len)
{
	return off >= start && off < start + len;
}

/* Offsets boot_params_build sets itself rather than copying. */
static int loader_field(unsigned int off)
{
	return in_range(off, BZ_TYPE_OF_LOADER, 2) || in_range(off, BZ_RAMDISK_IMAGE, 8) ||
	       in_range(off, BZ_HEAP_END_PTR, 2) || in_range(off, BZ_CMD_LINE_PTR, 4);
}

static void check_zero_page(const uint8_t *bp, const uint8_t *header, const struct bzimage *bz,
			    const struct e820_map *map, const struct params *p,
			    uint64_t initrd)
{
	unsigned int i;

	CHECK(bp[BZ_TYPE_OF_LOADER] == 0xff);
	CHECK(bp[BZ_LOADFLAGS] & BZ_CAN_USE_HEAP);
	CHECK(le32_get(bp + BZ_CMD_LINE_PTR) == (uint32_t)p->cmdline);
	CHECK(le32_get(bp + BZ_RAMDISK_IMAGE) == (uint32_t)initrd);
	CHECK(le64_get(bp + BP_ACPI_RSDP_ADDR) == p->rsdp);
	/* The kernel's header comes back as it was, up to where it ends
	 * (the jump at 0x200 says where), except what the loader fills in. */
	for (i = BZ_SETUP_SECTS; i < bz->header_end; i++)
		CHECK(loader_field(i) || bp[i] == header[i]);
	for (i = bz->header_end; i < BZ_HEADER_BYTES; i++)
		CHECK(loader_field(i) || bp[i] == 0);
	for (i = 0; i < BZ_SETUP_SECTS; i++)
		CHECK(bp[i] == 0 || (i >= BP_ACPI_RSDP_ADDR && i < BP_ACPI_RSDP_ADDR + 8) ||
		      (i >= BP_EXT_RAMDISK_IMAGE && i < BP_EXT_CMD_LINE_PTR + 4) ||
		      i == BP_E820_ENTRIES);
	CHECK(bp[BP_E820_ENTRIES] == map->count);
	for (i = 0; i < map->count; i++) {
		const uint8_t *e = bp + BP_E820_TABLE + 20 * i;

		CHECK(le64_get(e) == map->entry[i].addr);
		CHECK(le64_get(e + 8) == map->entry[i].size);
		CHECK(le32_get(e + 16) == map->entry[i].type);
	}
}

static void check_initrd(const struct bzimage *bz, const struct params *p)
{
	uint64_t min = kernel_min_ram(bz);
	uint64_t addr = initrd_place(bz, p->low_ram, min, p->initrd_size);
	uint64_t top = p->low_ram;

	if ((uint64_t)bz->initrd_addr_max + 1 < top)
		top = (uint64_t)bz->initrd_addr_max + 1;
	if (addr) {
		CHECK(addr % 4096 == 0);
		CHECK(addr >= min);
		CHECK(p->initrd_size <= top && addr <= top - p->initrd_size);
	} else {
		/* Only refused when it really does not fit. */
		CHECK(p->initrd_size == 0 || p->initrd_size > top ||
		      ((top - p->initrd_size) & ~0xfffULL) < min);
	}
}

static void after_parse(const uint8_t *header, const struct bzimage *bz, uint64_t file_size,
			const struct params *p)
{
	struct e820_map map;
	struct boot_setup s;
	uint8_t *bp;
	uint64_t need, initrd;

	CHECK(bz->version >= BZ_MIN_VERSION);
	CHECK(bz->setup_size >= 512 && bz->setup_size <= 256 * 512);
	CHECK(bz->setup_size < file_size);
	CHECK(bz->header_end >= 0x202 && bz->header_end <= BZ_HEADER_BYTES);
	CHECK(bz->kernel_size == file_size - bz->setup_size);
	CHECK(bz->kernel_size >= (uint64_t)le32_get(header + BZ_SYSSIZE) * 16);
	CHECK(bz->kernel_size > 0);

	need = kernel_min_ram(bz);
	CHECK(need >= KERNEL_MIN_RUN_ADDR + bz->init_size);
	/* Real file sizes are below 2^63, so the sum cannot wrap. */
	CHECK(need >= KERNEL_LOAD_ADDR + bz->kernel_size);
	check_initrd(bz, p);

	e820_build(&map, p->low_ram, p->high_ram);
	initrd = initrd_place(bz, p->low_ram, need, p->initrd_size);
	s = (struct boot_setup){
		.cmdline_addr = p->cmdline,
		.initrd_addr = initrd,
		.initrd_size = initrd ? p->initrd_size : 0,
		.rsdp_addr = p->rsdp,
		.e820 = &map,
	};
	bp = malloc(BOOT_PARAMS_SIZE);
	CHECK(bp);
	boot_params_build(bp, header, bz, &s);
	check_zero_page(bp, header, bz, &map, p, initrd);
	free(bp);
}

static void try_parse(const uint8_t *data, size_t size, uint64_t file_size,
		      const struct params *p)
{
	/* As the loader does: a header buffer of min(file, header) bytes,
	 * copied to the heap at its exact size so over-reads are caught. */
	size_t len = size < BZ_HEADER_BYTES ? size : BZ_HEADER_BYTES;
	uint8_t *header = malloc(len ? len : 1);
	struct bzimage bz;
	enum bzimage_error e;

	CHECK(header);
	memcpy(header, data, len);
	memset(&bz, 0, sizeof(bz));
	e = bzimage_parse(header, len, file_size, &bz);
	CHECK(bzimage_strerror(e) != NULL);
	if (len < BZ_HEADER_BYTES)
		CHECK(e == BZ_TOO_SMALL);
	if (e == BZ_OK)
		after_parse(header, &bz, file_size, p);
	free(header);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct params p;
	uint64_t needed = 0;
	struct bzimage bz;

	get_params(data, size, &p);
	/* The input is the whole file... */
	try_parse(data, size, size, &p);
	/* ...or the start of a file just long enough for its syssize... */
	if (size >= BZ_HEADER_BYTES) {
		unsigned int sects = data[BZ_SETUP_SECTS] ? data[BZ_SETUP_SECTS] : 4;

		needed = (sects + 1) * 512ULL + (uint64_t)le32_get(data + BZ_SYSSIZE) * 16;
		if (needed > size)
			try_parse(data, size, needed, &p);
	}
	/* ...or of a huge one. */
	try_parse(data, size, INT64_MAX, &p);
	/* The whole input as the buffer, larger than a header. */
	if (size > BZ_HEADER_BYTES)
		(void)bzimage_parse(data, size, size, &bz);
	/* A buffer claiming more than the file: always refused. */
	if (size >= BZ_HEADER_BYTES)
		CHECK(bzimage_parse(data, BZ_HEADER_BYTES, BZ_HEADER_BYTES - 1, &bz) ==
		      BZ_TOO_SMALL);
	return 0;
}
