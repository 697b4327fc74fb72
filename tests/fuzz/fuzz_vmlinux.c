/* The kernel cache's inputs: a compressed payload (decompressed with a
 * 1 MiB output limit into a memfd) and an ELF vmlinux header. Any bytes
 * must be rejected or accepted cleanly; accepted segments must lie inside
 * the file and not overflow. */
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "arch/x86/vmlinux.h"
#include "util/decompress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct vmlinux v;
	const char *why = NULL;
	unsigned int i;
	int64_t n;

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

	if (fd < 0)
		fd = memfd_create("fuzz", 0);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
	n = decompress_to_fd(compression_detect(data, size), data, size, fd, 1 << 20);
	CHECK(n <= (1 << 20));
	return 0;
}
