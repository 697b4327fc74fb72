/* A machine's state but its RAM, as sections: what a snapshot file
 * (vmm/snapshot.c) and a migration stream (vmm/migration.c) carry. The
 * section kinds are those of vmm/snapshot_file.h: the machine (vCPU count
 * and RAM layout), each vCPU with its TSC, the interrupt controllers and
 * PIT, kvmclock, the PCI host's address register, every device. */
#ifndef VIREO_VMM_VM_STATE_H
#define VIREO_VMM_VM_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/state.h"

struct vm;

struct vm_state_section {
	uint32_t kind, index;
	struct state_writer w;
};

/* A section as received, its CRC already checked by the caller. */
struct vm_state_loaded {
	uint32_t kind, index;
	const uint8_t *buf;
	size_t len;
};

/* The paused VM's sections into m (SNAPSHOT_MAX_SECTIONS of them,
 * zeroed), *n set. 0, or -1 with err set; vm_state_free(m) either way. */
int vm_state_build(struct vm *vm, struct vm_state_section *m, unsigned int *n, struct error *err);
void vm_state_free(struct vm_state_section *m);
/* 0 if a state of a machine with ncpus vCPUs and that RAM layout fits
 * ours; else -1 with err naming the options to use, after whose ("the
 * snapshot is of"). */
int vm_state_same_machine(const char *whose, uint32_t ncpus, uint64_t size, uint64_t low,
			  uint32_t our_ncpus, uint64_t our_size, uint64_t our_low,
			  struct error *err);
/* Whether the sections are a whole state of this machine: every kind
 * once, a vCPU section per vCPU and no other, the same vCPU count and
 * RAM layout. Changes nothing. 0, or -1 with err naming the problem. */
int vm_state_check(struct vm *vm, const struct vm_state_loaded *l, unsigned int n,
		   struct error *err);
/* Loads checked sections into the VM built from the same options, its
 * RAM already in place and its vCPUs not yet run: devices, then the
 * interrupt controllers, the vCPUs, the clock. Every record is checked
 * again as it is parsed; on -1 (err set) the VM must not run. The
 * devices are left paused either way: the caller resumes them when the
 * VM is to run (devices_resume_all). A loaded device resumed at once
 * would take the requests the guest queued before the source stopped
 * and write guest RAM while the VM waits for cont (-S). */
int vm_state_apply(struct vm *vm, const struct vm_state_loaded *l, unsigned int n,
		   struct error *err);

/* The disks' writes so far made durable (before a state that names
 * them is handed over). 0, or -1 with err set. */
int vm_sync_disks(struct vm *vm, struct error *err);

/* Every disk image's lock (block/block.h): taken (0, or -1 with err
 * naming the disk another process holds) or given up. A migration hands
 * the images over with these. */
int vm_lock_disks(struct vm *vm, struct error *err);
void vm_unlock_disks(struct vm *vm);

#endif
