#include "arch/x86/vmlinux.h"

#include <string.h>

#include "util/file.h"
#include "util/le.h"

#define PT_LOAD 1
#define EM_X86_64 62
#define ET_EXEC 2
#define PHDR_SIZE 56
/* Addresses above this are not physical memory a guest can have. */
#define MAX_PHYS (1ULL << 46)

int vmlinux_parse(const uint8_t *hdr, size_t len, uint64_t file_size, struct vmlinux *out,
		  const char **why)
{
	uint64_t phoff, entry;
	unsigned int phnum, i;
	int entry_found = 0;

	memset(out, 0, sizeof(*out));
	if (len < 64 || memcmp(hdr, "\177ELF", 4) || hdr[4] != 2 /* 64-bit */ ||
	    hdr[5] != 1 /* little-endian */) {
		*why = "not a 64-bit little-endian ELF file";
		return -1;
	}
	if (le16_get(hdr + 16) != ET_EXEC || le16_get(hdr + 18) != EM_X86_64) {
		*why = "not an x86-64 executable";
		return -1;
	}
	entry = le64_get(hdr + 24);
	phoff = le64_get(hdr + 32);
	phnum = le16_get(hdr + 56);
	if (le16_get(hdr + 54) != PHDR_SIZE || phnum == 0 || phoff > len ||
	    (uint64_t)phnum * PHDR_SIZE > len - phoff) {
		*why = "bad program header table";
		return -1;
	}
	for (i = 0; i < phnum; i++) {
		const uint8_t *ph = hdr + phoff + (uint64_t)i * PHDR_SIZE;
		struct vmlinux_segment s;
		uint64_t vaddr;

		if (le32_get(ph) != PT_LOAD)
			continue;
		s.offset = le64_get(ph + 8);
		vaddr = le64_get(ph + 16);
		s.paddr = le64_get(ph + 24);
		s.filesz = le64_get(ph + 32);
		s.memsz = le64_get(ph + 40);
		if (out->count == VMLINUX_MAX_SEGMENTS || s.filesz > s.memsz ||
		    s.offset > file_size || s.filesz > file_size - s.offset ||
		    s.paddr > MAX_PHYS || s.memsz > MAX_PHYS - s.paddr) {
			*why = "bad loadable segment";
			return -1;
		}
		/* Linux links vmlinux with a physical entry (phys_startup_64);
		 * accept a virtual one too and translate it. */
		if (entry >= s.paddr && entry - s.paddr < s.memsz) {
			out->entry = entry;
			entry_found = 1;
		} else if (!entry_found && entry >= vaddr && entry - vaddr < s.memsz) {
			out->entry = s.paddr + (entry - vaddr);
			entry_found = 1;
		}
		if (s.paddr + s.memsz > out->end)
			out->end = s.paddr + s.memsz;
		out->seg[out->count++] = s;
	}
	if (!entry_found) {
		*why = "entry point outside every loadable segment";
		return -1;
	}
	return 0;
}

int vmlinux_load(const struct vmlinux *v, int fd, struct guest_mem *m)
{
	unsigned int i;

	for (i = 0; i < v->count; i++) {
		const struct vmlinux_segment *s = &v->seg[i];
		uint8_t *dst = guest_mem_ptr(m, s->paddr, s->memsz);

		if (!dst || pread_full(fd, dst, s->filesz, s->offset) < 0)
			return -1;
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	return 0;
}
