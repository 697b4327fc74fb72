/* KVM's coalesced I/O: guest writes to registers that only latch a value
 * (a frame's bytes before the command that sends it, an ATA command's
 * parameters before the command itself) are recorded by KVM in a ring
 * shared with Vireo instead of exiting to userspace each. Vireo replays
 * them, in order, after every return from KVM_RUN and before it handles
 * the exit that came with it: a device sees every access in the guest's
 * order, only later. So only registers whose writes have no effect a
 * guest could observe before its next exit to userspace may be
 * coalesced: no interrupt, no DMA, no change to what a read returns
 * without the read itself exiting (reads are never coalesced).
 *
 * The exits into KVM remain (each write still leaves the guest); what is
 * saved is the trip to userspace and back, the expensive part. */
#ifndef VIREO_KVM_COALESCED_H
#define VIREO_KVM_COALESCED_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct kvm_coalesced_mmio_ring;

struct kvm_coalesced {
	int page_offset; /* the ring's page in a vCPU's mapping; 0: none */
	bool pio;	 /* port I/O too (KVM_CAP_COALESCED_PIO) */
	struct kvm_coalesced_mmio_ring *ring; /* once a vCPU is mapped */
	uint32_t entries;
	pthread_mutex_t lock; /* one replay at a time, in ring order */
	uint64_t replayed;    /* writes taken from the ring */
	uint64_t bad;	      /* entries KVM should never have written */
};

/* A write taken from the ring: pio (a port) or MMIO, len 1-8 bytes. */
typedef void (*kvm_coalesced_fn)(void *ctx, bool pio, uint64_t addr, unsigned int len,
				 const uint8_t *data);

/* What KVM offers (sys_fd: /dev/kvm). */
void kvm_coalesced_probe(struct kvm_coalesced *c, int sys_fd);
/* The ring, in a vCPU's mapping of mmap_size bytes at run. */
void kvm_coalesced_attach(struct kvm_coalesced *c, void *run, int mmap_size);
/* Registers (add) or removes a zone of len bytes at addr. 0, or -1 when
 * KVM cannot (then writes there simply exit as before). */
int kvm_coalesced_zone(struct kvm_coalesced *c, int vm_fd, uint64_t addr, uint64_t len, bool pio,
		       bool add);
/* Replays the ring's writes through fn, oldest first. */
void kvm_coalesced_replay(struct kvm_coalesced *c, kvm_coalesced_fn fn, void *ctx);
void kvm_coalesced_destroy(struct kvm_coalesced *c);

#endif
