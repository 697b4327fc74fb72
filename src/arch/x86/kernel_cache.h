/* Booting a bzImage means decompressing its kernel, which the guest would
 * otherwise do on every boot (most of a microVM's boot time). Vireo
 * decompresses the payload once, on the host, into a cache keyed by a hash
 * of the bzImage's content, and then loads the ELF
 * vmlinux straight into guest memory and enters it at startup_64.
 *
 * The cache lives in $VIREO_CACHE, else $XDG_CACHE_HOME/vireo, else
 * ~/.cache/vireo; VIREO_KERNEL_CACHE=off disables it. Any problem (no
 * writable cache, unknown compression, a corrupt payload) falls back to
 * the guest decompressing, exactly as without the cache. */
#ifndef VIREO_ARCH_X86_KERNEL_CACHE_H
#define VIREO_ARCH_X86_KERNEL_CACHE_H

#include <stdint.h>

#include "arch/x86/bzimage.h"

/* Returns a read-only fd on the cached vmlinux of the bzImage open as
 * kernel_fd (creating it if needed), or -1 to fall back; *why says which
 * (found, decompressed now, or the reason for the fallback), so that the
 * boot path taken is never a silent guess. */
int kernel_cache_open(int kernel_fd, const uint8_t *header, const struct bzimage *bz,
		      const char **why);

#endif
