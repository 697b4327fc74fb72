#include "arch/x86/linux_loader.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot_cpu.h"
#include "arch/x86/bootparams.h"
#include "arch/x86/e820.h"
#include "arch/x86/kernel_cache.h"
#include "arch/x86/vmlinux.h"
#include "arch/x86/layout.h"
#include "util/file.h"
#include "util/log.h"

#define MIB(x) ((unsigned long long)((x) + (1 << 20) - 1) >> 20)

int linux_image_open(struct linux_image *img, const char *kernel, const char *initrd,
		     const char *cmdline)
{
	enum bzimage_error e;
	size_t len;

	memset(img, 0, sizeof(*img));
	img->kernel_fd = img->initrd_fd = -1;
	img->cmdline = cmdline;
	img->kernel_fd = open_regular_file("kernel", kernel, &img->kernel_file_size);
	if (img->kernel_fd < 0)
		return -1;
	len = img->kernel_file_size < sizeof(img->header) ? (size_t)img->kernel_file_size
							   : sizeof(img->header);
	if (pread_full(img->kernel_fd, img->header, len, 0) < 0) {
		log_error("kernel '%s': read error", kernel);
		goto fail;
	}
	e = bzimage_parse(img->header, len, img->kernel_file_size, &img->bz);
	if (e != BZ_OK) {
		log_error("kernel '%s': %s", kernel, bzimage_strerror(e));
		goto fail;
	}
	/* Protocol 2.06+ states the limit; before that it was 255. */
	if (strlen(cmdline) > (img->bz.cmdline_size ? img->bz.cmdline_size : 255) ||
	    strlen(cmdline) >= CMDLINE_MAX) {
		log_error("--cmdline is %zu bytes, longer than this kernel accepts (%u)",
			  strlen(cmdline), img->bz.cmdline_size);
		goto fail;
	}
	if (initrd) {
		img->initrd_fd = open_regular_file("initrd", initrd, &img->initrd_size);
		if (img->initrd_fd < 0)
			goto fail;
		if (img->initrd_size == 0) {
			log_error("initrd '%s': file is empty", initrd);
			goto fail;
		}
	}
	return 0;
fail:
	linux_image_close(img);
	return -1;
}

void linux_image_close(struct linux_image *img)
{
	if (img->kernel_fd >= 0)
		close(img->kernel_fd);
	if (img->initrd_fd >= 0)
		close(img->initrd_fd);
	img->kernel_fd = img->initrd_fd = -1;
}

static uint64_t low_ram(uint64_t mem_size)
{
	return mem_size < LOW_RAM_END ? mem_size : LOW_RAM_END;
}

int linux_image_check_fit(const struct linux_image *img, uint64_t mem_size)
{
	uint64_t need = kernel_min_ram(&img->bz);

	if (low_ram(mem_size) < need) {
		log_error("--memory %lluM is too small for this kernel: it needs at least %lluM",
			  MIB(mem_size), MIB(need));
		return -1;
	}
	if (img->initrd_fd >= 0 &&
	    !initrd_place(&img->bz, low_ram(mem_size), need, img->initrd_size)) {
		log_error("initrd (%lluM) does not fit in guest memory (--memory %lluM, of which "
			  "the kernel needs %lluM): give more --memory",
			  MIB(img->initrd_size), MIB(mem_size), MIB(need));
		return -1;
	}
	return 0;
}

/* Loads the already-decompressed kernel from the cache; -1 to fall back
 * to loading the bzImage for the guest to decompress. Either way *why
 * says what happened. */
static int load_cached_vmlinux(const struct linux_image *img, struct guest_mem *m,
			       uint64_t *entry, const char **why)
{
	uint8_t hdr[VMLINUX_HEADER_BYTES];
	struct vmlinux v;
	const char *bad = "", *found;
	struct stat st;
	size_t len;
	int fd = kernel_cache_open(img->kernel_fd, img->header, &img->bz, &found);

	*why = found;
	if (fd < 0)
		return -1;
	*why = "cannot read the cached vmlinux";
	if (fstat(fd, &st) < 0)
		goto fail;
	len = (uint64_t)st.st_size < sizeof(hdr) ? (size_t)st.st_size : sizeof(hdr);
	if (pread_full(fd, hdr, len, 0) < 0)
		goto fail;
	if (vmlinux_parse(hdr, len, (uint64_t)st.st_size, &v, &bad) < 0) {
		log_debug("kernel cache: unusable vmlinux: %s", bad);
		*why = "the cached vmlinux is unusable";
		goto fail;
	}
	*why = "a segment of the cached vmlinux lies outside guest memory or cannot be read";
	if (vmlinux_load(&v, fd, m) < 0)
		goto fail;
	close(fd);
	*entry = v.entry;
	*why = found; /* found in the cache, or decompressed into it now */
	log_debug("booting the cached vmlinux at 0x%llx", (unsigned long long)v.entry);
	return 0;
fail:
	close(fd);
	return -1;
}

int linux_image_load(struct linux_image *img, struct guest_mem *m, unsigned int ncpus,
		     uint64_t *entry)
{
	static struct acpi_tables acpi;
	struct e820_map e820;
	struct boot_setup setup = { 0 };
	uint64_t kernel_off = img->bz.setup_size;
	uint8_t *dst;
	size_t cmdline_len = strlen(img->cmdline) + 1;

	img->boot_path = "cached-vmlinux";
	if (load_cached_vmlinux(img, m, entry, &img->boot_path_detail) < 0) {
		log_debug("booting the bzImage, the guest decompresses it: %s", img->boot_path_detail);
		img->boot_path = "bzimage";
		dst = guest_mem_ptr(m, KERNEL_LOAD_ADDR, img->bz.kernel_size);
		if (!dst || pread_full(img->kernel_fd, dst, img->bz.kernel_size, kernel_off) < 0) {
			log_error("cannot load the kernel into guest memory");
			return -1;
		}
		*entry = KERNEL_LOAD_ADDR + KERNEL_64BIT_ENTRY_OFFSET;
	}
	if (img->initrd_fd >= 0) {
		setup.initrd_size = img->initrd_size;
		setup.initrd_addr = initrd_place(&img->bz, m->low_size, kernel_min_ram(&img->bz),
						 img->initrd_size);
		dst = guest_mem_ptr(m, setup.initrd_addr, img->initrd_size);
		if (!setup.initrd_addr || !dst ||
		    pread_full(img->initrd_fd, dst, img->initrd_size, 0) < 0) {
			log_error("cannot load the initrd into guest memory");
			return -1;
		}
	}
	dst = guest_mem_ptr(m, CMDLINE_ADDR, cmdline_len);
	if (!dst)
		return -1;
	memcpy(dst, img->cmdline, cmdline_len);
	setup.cmdline_addr = CMDLINE_ADDR;

	if (acpi_build(&acpi, ACPI_TABLES_ADDR, ncpus) < 0) {
		log_error("cannot build ACPI tables for %u vCPUs", ncpus);
		return -1;
	}
	dst = guest_mem_ptr(m, ACPI_TABLES_ADDR, acpi.len);
	if (!dst || acpi.len > ACPI_TABLES_MAX)
		return -1;
	memcpy(dst, acpi.buf, acpi.len);
	setup.rsdp_addr = acpi.rsdp_addr;

	e820_build(&e820, m->low_size, guest_mem_high_size(m));
	setup.e820 = &e820;
	dst = guest_mem_ptr(m, ZERO_PAGE_ADDR, BOOT_PARAMS_SIZE);
	if (!dst)
		return -1;
	boot_params_build(dst, img->header, &img->bz, &setup);
	return boot_cpu_write_tables(m);
}
