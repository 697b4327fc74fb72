/* The kernel cache's inputs: a compressed payload (decompressed with a
 * 1 MiB output limit into a memfd) and an ELF vmlinux. Any bytes must be
 * rejected or accepted cleanly. An accepted vmlinux must be what its
 * program headers say, read here independently of the parser: exactly
 * its PT_LOAD entries, in order. It is then loaded (vmlinux_load, from a
 * memfd holding the input, as the loader does from the cache file) into
 * a small guest RAM prefilled with a pattern, and RAM must equal a model
 * built byte by byte: every PT_LOAD's file bytes at its paddr, zeros up
 * to memsz, later segments over earlier ones, and nothing else touched.
 * Loading fails exactly when a segment is not in RAM. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "arch/x86/vmlinux.h"
#include "util/decompress.h"
#include "util/le.h"

#define RAM_SIZE (256u << 10)
#define PATTERN 0xa5
#define PT_LOAD 1

static uint8_t shadow[RAM_SIZE];
static struct guest_mem ram;

/* The program headers as the ELF format defines them (the parser already
 * accepted the header, so the table is inside hdr). */
static unsigned int elf_loads(const uint8_t *hdr, struct vmlinux_segment *out, unsigned int max)
{
	uint64_t phoff = le64_get(hdr + 32);
	unsigned int phnum = le16_get(hdr + 56), i, n = 0;

	for (i = 0; i < phnum; i++) {
		const uint8_t *ph = hdr + phoff + 56ULL * i;

		if (le32_get(ph) != PT_LOAD)
			continue;
		CHECK(n < max);
		out[n++] = (struct vmlinux_segment){
			.offset = le64_get(ph + 8),
			.paddr = le64_get(ph + 24),
			.filesz = le64_get(ph + 32),
			.memsz = le64_get(ph + 40),
		};
	}
	return n;
}

static int in_ram(const struct vmlinux_segment *s)
{
	return s->paddr < RAM_SIZE && s->memsz <= RAM_SIZE - s->paddr;
}

static void check_load(const uint8_t *data, size_t size, int fd)
{
	struct vmlinux_segment want[VMLINUX_MAX_SEGMENTS];
	size_t len = size < VMLINUX_HEADER_BYTES ? size : VMLINUX_HEADER_BYTES;
	const char *why = NULL;
	struct vmlinux v;
	unsigned int i, n;
	uint64_t k;
	int fits = 1;

	/* As the loader reads the cache file: its first 4 KiB. */
	if (vmlinux_parse(data, len, size, &v, &why) < 0) {
		CHECK(why != NULL);
		return;
	}
	n = elf_loads(data, want, VMLINUX_MAX_SEGMENTS);
	CHECK(n == v.count);
	for (i = 0; i < n; i++) {
		CHECK(!memcmp(&v.seg[i], &want[i], sizeof(want[i])));
		CHECK(want[i].filesz <= want[i].memsz);
		CHECK(want[i].offset <= size && want[i].filesz <= size - want[i].offset);
		fits &= in_ram(&want[i]);
	}

	CHECK(ftruncate(fd, 0) == 0);
	CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);
	memset(ram.host, PATTERN, RAM_SIZE);
	if (vmlinux_load(&v, fd, &ram) < 0) {
		CHECK(!fits);
		return;
	}
	CHECK(fits);
	memset(shadow, PATTERN, RAM_SIZE);
	for (i = 0; i < n; i++)
		for (k = 0; k < want[i].memsz; k++)
			shadow[want[i].paddr + k] =
				k < want[i].filesz ? data[want[i].offset + k] : 0;
	CHECK(!memcmp(shadow, ram.host, RAM_SIZE));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1, elf_fd = -1;
	struct vmlinux v;
	const char *why = NULL;
	unsigned int i;
	int64_t n;

	if (!ram.host)
		CHECK(guest_mem_map(&ram, RAM_SIZE) == 0);
	if (elf_fd < 0)
		elf_fd = memfd_create("fuzz-vmlinux", 0);
	CHECK(elf_fd >= 0);

	/* The whole input as the header buffer. */
	if (vmlinux_parse(data, size, size, &v, &why) == 0) {
		CHECK(v.count > 0 && v.count <= VMLINUX_MAX_SEGMENTS);
		for (i = 0; i < v.count; i++) {
			CHECK(v.seg[i].offset <= size);
			CHECK(v.seg[i].filesz <= size - v.seg[i].offset);
			CHECK(v.seg[i].filesz <= v.seg[i].memsz);
			CHECK(v.seg[i].paddr + v.seg[i].memsz >= v.seg[i].paddr);
			CHECK(v.seg[i].paddr + v.seg[i].memsz <= v.end);
		}
	} else {
		CHECK(why != NULL);
	}
	check_load(data, size, elf_fd);

	if (fd < 0)
		fd = memfd_create("fuzz", 0);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
	n = decompress_to_fd(compression_detect(data, size), data, size, fd, 1 << 20);
	CHECK(n <= (1 << 20));
	return 0;
}
