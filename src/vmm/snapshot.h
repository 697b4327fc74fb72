/* Snapshots of a whole VM to a file and back (the format is
 * vmm/snapshot_file.h): every vCPU with its TSC, the in-kernel interrupt
 * controllers and PIT, kvmclock, the PCI host, every device's record, and
 * guest RAM. */
#ifndef VIREO_VMM_SNAPSHOT_H
#define VIREO_VMM_SNAPSHOT_H

#include <stdint.h>

#include "util/error.h"

struct vm;

struct snapshot_stats {
	uint64_t total_ms;   /* from the start of the save to the rename */
	uint64_t ram_bytes;  /* guest RAM */
	uint64_t written;    /* bytes written: metadata and RAM pages that are not zero */
};

/* Writes the paused VM to path: into a temporary file beside it (mode
 * 0600: it holds the guest's memory), synced, then renamed over path,
 * so path is either the old file or the whole new snapshot. Disk images
 * are flushed first. 0, or -1 with err set and path untouched. */
int vm_snapshot_save(struct vm *vm, const char *path, struct snapshot_stats *st,
		     struct error *err);
/* Puts the VM built from the same options back in the state saved in
 * path, before its vCPUs first run: guest RAM is mapped from the file
 * (private, faulted in as the guest touches it), everything else loaded
 * after the whole file's metadata is checked. 0, or -1 with err naming
 * the problem; the VM must not run then. */
int vm_snapshot_restore(struct vm *vm, const char *path, struct error *err);

#endif
